"""The output costs: closed forms, and EqProp with the cross-entropy nudge against finite
differences of the circuit's cross-entropy (Theorem 1 for a cost other than squared error)."""
import numpy as np
import pytest

from conftest import make_net
from memsim.circuit import input_voltages, target_voltages
from memsim.config import ConfigError, make_config
from memsim.cost import cost_gradient, cost_value, nudge_target
from memsim.datasets import load_dataset
from memsim.energy import outputs
from memsim.eqprop import conductance_gradients, run_phases
from memsim.solve import input_drive, pack, solve
from memsim.train import Trainer


def test_cross_entropy_is_the_scaled_negative_log_softmax():
    rng = np.random.default_rng(0)
    d = rng.normal(0, 0.3, (5, 4))
    y = rng.integers(0, 4, 5)
    s = 0.2
    p = np.exp(d / s) / np.exp(d / s).sum(1, keepdims=True)
    np.testing.assert_allclose(cost_value("xent", d, y, 1.0, s), -s * s * np.log(p[np.arange(5), y]), rtol=1e-13)
    # large logits do not overflow (log-sum-exp)
    assert np.isfinite(cost_value("xent", d * 1e4, y, 1.0, s)).all()
    np.testing.assert_allclose(cost_value("mse", d, y, 0.5, s),
                               0.5 * ((d - target_voltages(y, 4, 0.5)) ** 2).sum(1), rtol=0, atol=0)


@pytest.mark.parametrize("kind", ["mse", "xent"])
def test_cost_gradient_matches_finite_differences(kind):
    rng = np.random.default_rng(1)
    d = rng.normal(0, 0.3, (3, 5))
    y = rng.integers(0, 5, 3)
    g = cost_gradient(kind, d, y, 0.5, 0.15)
    h = 1e-6
    fd = np.zeros_like(d)
    for idx in np.ndindex(d.shape):
        dp, dm = d.copy(), d.copy()
        dp[idx] += h
        dm[idx] -= h
        fd[idx] = (cost_value(kind, dp, y, 0.5, 0.15)[idx[0]] - cost_value(kind, dm, y, 0.5, 0.15)[idx[0]]) / (2 * h)
    np.testing.assert_allclose(g, fd, rtol=1e-7, atol=1e-10)


def test_nudge_targets():
    d = np.array([[0.1, -0.2, 0.05]])
    # mse: the label itself, whatever the outputs
    np.testing.assert_array_equal(nudge_target("mse", d, np.array([2]), 0.5, 0.1), [[0, 0, 0.5]])
    # xent: the target pulls the true class up and the others down, by less than the logit scale
    t = nudge_target("xent", d, np.array([2]), 0.5, 0.1)
    step = t - d
    assert step[0, 2] > 0 and (step[0, :2] < 0).all() and np.abs(step).max() < 0.1
    np.testing.assert_allclose(step.sum(), 0.0, atol=1e-15)  # softmax minus one-hot sums to zero


def _xent(net, v_in, y, s):
    p = pack(net)
    V = np.zeros((len(v_in), net.spec.n_free))
    solve(p, input_drive(p, v_in), V, tol=1e-14)
    return cost_value("xent", outputs(net, V), y, 1.0, s).mean()


@pytest.mark.parametrize("sizes,amp", [((12, 6, 4), None), ((10, 6, 5, 4), "ebana10")])
def test_cross_entropy_eqprop_matches_finite_differences(sizes, amp):
    s = 0.05
    rng = np.random.default_rng(7)
    net = make_net(sizes, amp, seed=2, g_lo=1e-6, g_hi=1e-5)
    x = rng.uniform(0, 1, (3, net.spec.n_features))
    y = rng.integers(0, net.spec.n_classes, 3)
    v_in = input_voltages(net.spec, x)
    fd = []
    for arr in net.parameters():
        g = np.zeros_like(arr)
        for idx in np.ndindex(arr.shape):
            o = arr[idx]
            h = 1e-4 * o
            arr[idx] = o + h
            lp = _xent(net, v_in, y, s)
            arr[idx] = o - h
            lm = _xent(net, v_in, y, s)
            arr[idx] = o
            g[idx] = (lp - lm) / (2 * h)
        fd.append(g.ravel())
    fd = np.concatenate(fd)
    p = pack(net)
    V = np.zeros((3, net.spec.n_free))
    beta = 1e-9
    ph = run_phases(p, input_drive(p, v_in), V, lambda d: nudge_target("xent", d, y, 1.0, s), beta, tol=1e-14)
    ep = np.concatenate([g.ravel() for g in conductance_gradients(net, v_in, ph, beta)])
    cos = ep @ fd / np.linalg.norm(ep) / np.linalg.norm(fd)
    assert cos > 1 - 1e-9
    assert np.linalg.norm(ep - fd) / np.linalg.norm(fd) < 1e-5
    # it is the cross-entropy's gradient, not the squared error's
    V0 = np.zeros((3, net.spec.n_free))
    ph_mse = run_phases(p, input_drive(p, v_in), V0, target_voltages(y, net.spec.n_classes, 1.0), beta, tol=1e-14)
    mse = np.concatenate([g.ravel() for g in conductance_gradients(net, v_in, ph_mse, beta)])
    assert mse @ fd / np.linalg.norm(mse) / np.linalg.norm(fd) < 0.99


@pytest.fixture(scope="module")
def digits():
    return load_dataset("digits")


def test_cross_entropy_training_learns_and_a_flipped_one_does_not(digits):
    def run(**kw):
        tr = Trainer(make_config({"epochs": 3, "loss": "xent", "lr": [15000.0], **kw}), digits)
        return [tr.epoch() for _ in range(3)]

    res = run()
    assert res[-1].test_accuracy > 0.90
    assert res[-1].train_loss < res[0].train_loss
    assert run(gradient_sign=-1.0)[-1].test_accuracy < 0.5


def test_cross_entropy_on_the_transient_engine_gives_the_dc_updates(digits):
    kw = {"train_limit": 24, "test_limit": 8, "hidden": [12], "seed": 4, "tol": 1e-12, "loss": "xent", "epochs": 1}
    dc = Trainer(make_config(kw), digits)
    dc.epoch()
    tr = Trainer(make_config({**kw, "engine": "transient"}), digits)
    tr.epoch()
    for p, q in zip(dc.net.parameters(), tr.net.parameters()):
        np.testing.assert_allclose(q, p, rtol=0, atol=1e-4 * np.abs(p).max())


def test_bad_cost_options_are_rejected():
    with pytest.raises(ConfigError, match="loss"):
        make_config({"loss": "hinge"})
    with pytest.raises(ConfigError, match="logit_scale"):
        make_config({"logit_scale": 0.0})


def test_settle_nudges_a_cross_entropy_run_as_training_does(tmp_path):
    import json

    from click.testing import CliRunner

    from memsim.cli.main import main
    from memsim.h5io import open_run

    out = tmp_path / "xent.h5"
    r = CliRunner().invoke(main, ["train", "--loss", "xent", "--logit-scale", "0.2", "--epochs", "1",
                                  "--train-limit", "200", "--test-limit", "20", "--hidden", "10", "-q", "-o", str(out)])
    assert r.exit_code == 0, r.output
    run = open_run(out)
    assert run.config["loss"] == "xent" and run.config["logit_scale"] == 0.2
    net = run.network()
    x, y = load_dataset("digits").x_test[2:3], load_dataset("digits").y_test[2:3]
    beta = run.config["beta"]
    p = pack(net)
    v_in = input_voltages(net.spec, x)
    ph = run_phases(p, input_drive(p, v_in), np.zeros((1, net.spec.n_free)),
                    lambda d: nudge_target("xent", d, y, 1.0, 0.2), beta, tol=1e-12)
    r = CliRunner().invoke(main, ["settle", str(out), "--sample", "2", "--phase", "nudge_plus"])
    assert r.exit_code == 0, r.output
    volts = json.loads(r.output)["node_voltages"]
    C = net.spec.n_classes
    d_cli = np.array([volts[f"outp{k}"] - volts[f"outn{k}"] for k in range(C)])
    d_free, d_plus = outputs(net, ph.free)[0], outputs(net, ph.plus)[0]
    np.testing.assert_allclose(d_cli, d_plus, atol=1e-10)
    # the nudge pulls the true class up, towards lower cross-entropy
    assert d_plus[y[0]] > d_free[y[0]]
