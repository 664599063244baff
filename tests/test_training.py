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
