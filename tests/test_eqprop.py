"""Theorem 1: the EqProp estimate equals the gradient of the loss (finite differences)."""
import numpy as np
import pytest

from conftest import make_net
from memsim.circuit import input_voltages, target_voltages
from memsim.energy import loss
from memsim.eqprop import conductance_gradients, run_phases
from memsim.solve import input_drive, pack, solve


def _loss(net, v_in, target):
    p = pack(net)
    V = np.zeros((len(v_in), net.spec.n_free))
    solve(p, input_drive(p, v_in), V, tol=1e-14)
    return loss(net, V, target).mean()


def _finite_difference(net, v_in, target, rel=1e-4):
    out = []
    for arr in net.parameters():
        g = np.zeros_like(arr)
        for idx in np.ndindex(arr.shape):
            o = arr[idx]
            h = rel * o
            arr[idx] = o + h
            lp = _loss(net, v_in, target)
            arr[idx] = o - h
            lm = _loss(net, v_in, target)
            arr[idx] = o
            g[idx] = (lp - lm) / (2 * h)
        out.append(g)
    return np.concatenate([g.ravel() for g in out])


def _eqprop(net, v_in, target, beta, mode):
    p = pack(net)
    V = np.zeros((len(v_in), net.spec.n_free))
    ph = run_phases(p, input_drive(p, v_in), V, target, beta, mode, tol=1e-14)
    return np.concatenate([g.ravel() for g in conductance_gradients(net, v_in, ph, beta, mode)])


@pytest.mark.parametrize("sizes,amp", [((12, 6, 4), None), ((10, 6, 5, 4), "ebana10"), ((10, 6, 5, 4), "unity")])
def test_centred_eqprop_matches_finite_differences(sizes, amp):
    rng = np.random.default_rng(11)
    net = make_net(sizes, amp, seed=4, g_lo=1e-6, g_hi=1e-5)
    x = rng.uniform(0, 1, (3, net.spec.n_features))
    v_in = input_voltages(net.spec, x)
    target = target_voltages(rng.integers(0, net.spec.n_classes, 3), net.spec.n_classes, 0.3)
    fd = _finite_difference(net, v_in, target)
    ep = _eqprop(net, v_in, target, 1e-9, "centred")
    cos = ep @ fd / np.linalg.norm(ep) / np.linalg.norm(fd)
    rel = np.linalg.norm(ep - fd) / np.linalg.norm(fd)
    # the issue asks for cos >= 0.999 and 1 % error; Theorem 1 holds to solver precision
    assert cos > 1 - 1e-9
    assert rel < 1e-5


def test_amplifier_weighting_is_required():
    """With A_b = 1/A the gradient of the conductances upstream of an amplifier carries A/A_b = A^2:
    dropping that factor would break the agreement (so the test above can fail)."""
    rng = np.random.default_rng(5)
    net = make_net((10, 6, 5, 4), "ebana10", seed=4, g_lo=1e-6, g_hi=1e-5)
    x = rng.uniform(0, 1, (2, net.spec.n_features))
    v_in = input_voltages(net.spec, x)
    target = target_voltages(rng.integers(0, 2, 2), 2, 0.3)
    fd = _finite_difference(net, v_in, target)
    ep = _eqprop(net, v_in, target, 1e-9, "centred")
    n0 = net.weights[0].size
    A = net.spec.amplifier
    ratio = A.gain / A.backward_gain
    np.testing.assert_allclose(ep[:n0], fd[:n0], rtol=1e-4, atol=1e-6 * np.abs(fd[:n0]).max())
    assert ratio == 100.0
    assert np.linalg.norm(ep[:n0] / ratio - fd[:n0]) > 0.5 * np.linalg.norm(fd[:n0])


@pytest.mark.parametrize("mode", ["positive", "negative"])
def test_one_sided_estimates_have_order_beta_bias(mode):
    rng = np.random.default_rng(3)
    net = make_net((12, 6, 4), seed=8, g_lo=1e-6, g_hi=1e-5)
    x = rng.uniform(0, 1, (3, net.spec.n_features))
    v_in = input_voltages(net.spec, x)
    target = target_voltages(rng.integers(0, 2, 3), 2, 0.3)
    exact = _eqprop(net, v_in, target, 1e-10, "centred")
    errs = [np.linalg.norm(_eqprop(net, v_in, target, b, mode) - exact) for b in (4e-7, 2e-7)]
    # halving beta halves the one-sided error (first order), centred is far better at the same beta
    assert errs[1] == pytest.approx(errs[0] / 2, rel=0.1)
    assert np.linalg.norm(_eqprop(net, v_in, target, 4e-7, "centred") - exact) < 0.05 * errs[0]
