"""DC equilibrium by block coordinate descent: Kirchhoff's current law and the energy minimum."""
import numpy as np
import pytest

from conftest import make_net
from memsim.circuit import input_voltages, target_voltages
from memsim.energy import node_currents, total_energy
from memsim.solve import ConvergenceError, input_drive, pack, solve

CASES = [((12, 6, 4), None), ((16, 10, 8, 6), "ebana10"), ((16, 10, 8, 6), "unity"), ((12, 8, 6, 5, 4), "ebana10"),
         ((10, 4), None)]


def _solved(net, x, beta=0.0, target=None, tol=1e-12):
    p = pack(net)
    d0 = input_drive(p, input_voltages(net.spec, x))
    V = np.zeros((len(x), net.spec.n_free))
    stats = solve(p, d0, V, beta, target, tol=tol)
    return V, d0, stats


@pytest.mark.parametrize("sizes,amp", CASES)
@pytest.mark.parametrize("beta", [0.0, 3e-7, -3e-7])
def test_kcl_holds_at_every_node(sizes, amp, beta, rng):
    net = make_net(sizes, amp, seed=len(sizes))
    x = rng.uniform(0, 1, (6, net.spec.n_features))
    t = target_voltages(rng.integers(0, net.spec.n_classes, 6), net.spec.n_classes, 0.5)
    V, d0, _ = _solved(net, x, beta, t)
    I = node_currents(net, d0, V, beta, t)
    # microsiemens conductances, volts: currents of microamperes; KCL to below a picoampere
    assert np.abs(I).max() < 1e-12
    # and the diodes matter: some hidden node is outside its window in the clamped circuit
    if len(sizes) > 2:
        h = V[:, : net.spec.free_offsets[-2]]
        assert h.max() > net.spec.v_hi or h.min() < net.spec.v_lo


@pytest.mark.parametrize("sizes,amp", CASES)
def test_equilibrium_minimises_the_energy(sizes, amp, rng):
    """Without saturation the weighted co-content is convex with its minimum at the solution."""
    net = make_net(sizes, amp, seed=7)
    x = rng.uniform(0, 1, (4, net.spec.n_features))
    V, _, _ = _solved(net, x)
    v_in = input_voltages(net.spec, x)
    E0 = total_energy(net, v_in, V)
    for _ in range(5):
        dV = rng.normal(size=V.shape) * 1e-3
        assert (total_energy(net, v_in, V + dV) > E0).all()
    # first-order optimality: the directional derivative vanishes (relative to the curvature)
    # odd part of E along a 10 uV probe against its even part (curvature): the odd part is only
    # the diodes' cubic term (~1e-6 of it) plus roundoff; a 1 uV error at one node gives ~1e-2
    dV = rng.normal(size=V.shape) * 1e-5
    Ep, Em = total_energy(net, v_in, V + dV), total_energy(net, v_in, V - dV)
    assert np.all(np.abs(Ep - Em) < 1e-3 * np.abs(Ep + Em - 2 * E0))


def test_a_broken_kernel_would_be_caught(rng):
    """The KCL check is sensitive: moving one node by 1 uV shows a residual far above 1e-12 A."""
    net = make_net((12, 6, 4), seed=3)
    x = rng.uniform(0, 1, (2, net.spec.n_features))
    V, d0, _ = _solved(net, x)
    V[0, 2] += 1e-6
    assert np.abs(node_currents(net, d0, V)).max() > 1e-11


def test_warm_start_gives_the_same_solution_in_fewer_sweeps(rng):
    net = make_net((16, 10, 8, 6), "ebana10", seed=2)
    x = rng.uniform(0, 1, (5, net.spec.n_features))
    V, d0, cold = _solved(net, x)
    p = pack(net)
    V2 = V + rng.normal(size=V.shape) * 1e-4
    warm = solve(p, d0, V2, tol=1e-12)
    np.testing.assert_allclose(V2, V, atol=1e-10)
    assert warm.sweeps.mean() < cold.sweeps.mean()


def test_non_convergence_names_sample_layer_and_residual(rng):
    net = make_net((16, 10, 8, 6), "ebana10", seed=2)
    x = rng.uniform(0, 1, (3, net.spec.n_features))
    p = pack(net)
    V = np.zeros((3, net.spec.n_free))
    with pytest.raises(ConvergenceError, match=r"sample 0, layer \d+, largest KCL residual") as e:
        solve(p, input_drive(p, input_voltages(net.spec, x)), V, tol=1e-12, max_sweeps=2)
    assert e.value.sample == 0 and e.value.residual > 0


def test_amplifier_saturation_clips_the_forward_drive(rng):
    from memsim.energy import layer_sources

    net = make_net((16, 10, 8, 6), "ebana10", seed=5, input_gain=40.0, v_lo=-2.0, v_hi=2.0)
    x = rng.uniform(0, 1, (4, net.spec.n_features))
    V, d0, _ = _solved(net, x)
    assert np.abs(node_currents(net, d0, V)).max() < 1e-12
    u = layer_sources(net, V)[0]
    assert np.abs(u).max() <= net.spec.amplifier.saturation + 1e-12
    assert np.isclose(np.abs(u).max(), net.spec.amplifier.saturation)  # some amplifier saturates
