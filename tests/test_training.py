"""Training on the bundled digits: EqProp learns; the same trainer with the update's sign flipped
(a broken trainer) does not."""
import numpy as np
import pytest

from memsim.config import make_config
from memsim.datasets import load_dataset
from memsim.train import Trainer


@pytest.fixture(scope="module")
def digits():
    return load_dataset("digits")


def _train(digits, epochs, **kw):
    tr = Trainer(make_config({"epochs": epochs, **kw}), digits)
    res = [tr.epoch() for _ in range(epochs)]
    return tr, res


def test_eqprop_training_beats_90_percent_in_three_epochs(digits):
    tr, res = _train(digits, 3)
    assert res[-1].test_accuracy > 0.90
    assert res[-1].train_loss < res[0].train_loss
    # the diodes do clip: this is not a linear network
    assert res[-1].clipped_fraction > 0.2


def test_a_sign_flipped_trainer_does_not_learn(digits):
    _, res = _train(digits, 3, gradient_sign=-1.0)
    assert res[-1].test_accuracy < 0.5


def test_training_is_reproducible_from_the_seed(digits):
    kw = dict(train_limit=0, seed=3)
    a, _ = _train(digits, 1, **kw)
    b, _ = _train(digits, 1, **kw)
    for p, q in zip(a.net.parameters(), b.net.parameters()):
        np.testing.assert_array_equal(p, q)


def test_updates_stay_inside_the_device_bounds(digits):
    tr, _ = _train(digits, 1, lr=3e5)  # absurd rate: every update hits a bound
    card = tr.spec.memristor
    for p in tr.net.parameters():
        assert p.min() >= card.g_min and p.max() <= card.g_max


def test_transient_and_dc_engines_give_the_same_updates(digits):
    # Solved to 1e-12 V, where both engines are exact (at the default 1e-9 V, DC against itself
    # at 1e-12 V already differs by ~4e-5 of the conductances after these 10 batches).
    kw = dict(train_limit=40, test_limit=20, hidden=[16], seed=2, tol=1e-12)
    dc, r_dc = _train(digits, 1, **kw)
    tr, r_tr = _train(digits, 1, engine="transient", **kw)
    for p, q in zip(dc.net.parameters(), tr.net.parameters()):
        np.testing.assert_allclose(q, p, rtol=0, atol=1e-4 * np.abs(p).max())
    assert r_tr[0].test_accuracy == r_dc[0].test_accuracy
    assert r_tr[0].extra["emulated_time"] > 0 and 1 <= r_tr[0].extra["steps_per_phase"] <= 60


def test_pulse_programming_with_a_tiny_step_matches_the_analog_update(digits):
    kw = dict(train_limit=12, test_limit=30, hidden=[8], seed=4, tol=1e-12)
    analog, _ = _train(digits, 1, **kw)
    # ideal (linear, noise-free) device, 0.1 nS pulses: updates are ~0.4 uS (thousands of pulses
    # per device), quantisation ~1e-4 of them, the residue carried
    pulsed, r = _train(digits, 1, programming="deterministic", dG_step=1e-10, n_max=10**9, **kw)
    assert r[0].pulses > 1e7
    for p, q in zip(analog.net.parameters(), pulsed.net.parameters()):
        np.testing.assert_allclose(q, p, rtol=0, atol=1e-5 * np.abs(p).max())


def test_a_realistic_card_counts_pulses_and_energy_and_learns_less(digits):
    kw = dict(train_limit=400, test_limit=200, seed=1)
    _, ideal = _train(digits, 2, **kw)
    tr, agsi = _train(digits, 2, memristor="agsi", programming="deterministic", **kw)
    r = agsi[-1]
    assert r.pulses > 0 and r.programming_energy > 0
    assert r.pulses == sum(r.extra[f"pulses_layer_{k}"] for k in range(2))
    # 3.2 V / -2.8 V pulses of 300 us into tens of nanosiemens: ~1e-10 J each
    assert 1e-12 < r.programming_energy / r.pulses < 1e-9
    assert r.test_accuracy > 0.3  # it learns, with its nonlinear, asymmetric, noisy 97/100 levels
    assert r.test_accuracy < ideal[-1].test_accuracy
    totals = tr.programmer.pulse_totals()
    assert sum(int(t.sum()) for t in totals) == sum(x.pulses for x in agsi)


@pytest.mark.parametrize("hidden,lr,floor", [([64, 32], [300.0, 3000.0, 3000.0], 0.85),
                                             ([64, 32, 32], [30.0, 3000.0, 3000.0, 3000.0], 0.75)])
def test_deeper_networks_with_amplifiers_learn(digits, hidden, lr, floor):
    """2 and 3 hidden layers joined by bidirectional amplifiers (A = 10, A_b = 1/10). The gradient of
    a crossbar carries A/A_b = 100 per amplifier downstream of it, so its learning rate is given lower
    (one rate per crossbar)."""
    _, res = _train(digits, 3, hidden=hidden, lr=lr, amplifier="ebana10")
    assert res[-1].test_accuracy > floor
    assert res[-1].clipped_fraction > 0.2
    _, flipped = _train(digits, 1, hidden=hidden, lr=lr, amplifier="ebana10", gradient_sign=-1.0)
    assert flipped[-1].test_accuracy < 0.5
