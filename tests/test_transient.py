"""The transient engine: exact exponentials, ngspice .tran, settling onto the DC equilibrium.

Waveforms are compared as a fraction of the phase's swing (largest excursion of any node from its
initial value) at every sampled time: ngspice's output points (memsim's dense output, cubic
Hermite between its steps) and memsim's own steps (ngspice's dense output, linearly interpolated).
"""
import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from conftest import make_net
from memsim.circuit import input_voltages, target_voltages
from memsim.eqprop import conductance_gradients, run_phases
from memsim.energy import node_currents
from memsim.solve import input_drive, pack, solve
from memsim.spice import ngspice_available
from memsim.transient import (
    PhaseStats,
    SettleError,
    TransientOptions,
    TransientSimulator,
    UnstableCircuitError,
    node_capacitance,
    node_currents_state,
    phase_trajectories,
    run_phases_transient,
    slowest_rate,
    time_constants,
)

needs_spice = pytest.mark.skipif(not ngspice_available(), reason="ngspice not found (apt-get install ngspice, "
                                                                  "or set MEMSIM_NGSPICE)")
BETA = 3e-6
WAVE_TOL = 0.01  # of the swing


def _case(sizes, amp=None, seed=0, n=2, **kw):
    net = make_net(sizes, amp, seed=seed, diode=kw.pop("diode", "knee015"), **kw)
    rng = np.random.default_rng(seed + 100)
    x = rng.uniform(0, 1, (n, net.spec.n_features))
    y = target_voltages(rng.integers(0, net.spec.n_classes, n), net.spec.n_classes, 0.5)
    p = pack(net)
    return net, p, x, y, input_drive(p, input_voltages(net.spec, x))


def _dc(p, d0, y, beta=BETA, tol=1e-13):
    return run_phases(p, d0, np.zeros((len(d0), p.gdiag.size)), y, beta, tol=tol)


# --------------------------------------------------------------------------------------------
# the physics without ngspice


def test_node_currents_with_state_match_the_reference_kcl():
    for sizes, amp in (((12, 6, 4), None), ((16, 10, 8, 6), "ebana10")):
        net, p, x, y, d0 = _case(sizes, amp, n=3)
        V = 0.3 * np.random.default_rng(1).normal(size=(3, net.spec.n_free))
        ref = node_currents(net, d0, V, BETA, y)
        np.testing.assert_allclose(node_currents_state(p, d0, V, None, BETA, y), ref, rtol=1e-12, atol=1e-17)
        # a lagging amplifier at rest (u = clip(A h + V_os)) gives the same currents
        amp_c = net.spec.amplifier
        U = np.clip(amp_c.gain * V + amp_c.offset, -amp_c.saturation, amp_c.saturation) if amp_c else V
        np.testing.assert_allclose(node_currents_state(p, d0, V, U, BETA, y), ref, rtol=1e-12, atol=1e-17)


def test_rc_nodes_follow_the_exact_exponential():
    """No hidden layer: every output node is an RC to its sources, V(t) = V_inf + (V0 - V_inf) e^{-t/tau}."""
    net, p, x, y, d0 = _case((4, 4), n=2)
    C = node_capacitance(net.spec, per_layer=[np.array([1e-12, 2e-12, 0.5e-12, 1e-12])])
    V0 = np.array([[0.3, -0.2, 0.0, 0.1], [0.0, 0.0, 0.0, 0.0]])
    ph = run_phases_transient(p, d0, V0.copy(), y, 0.0, "positive", capacitance=C, trace=[0, 1])
    st_free = ph.stats["free"]
    tr = st_free.trace
    v_inf = (d0 + p.ibias) / p.gdiag
    tau = C / p.gdiag
    exact = v_inf + (V0 - v_inf) * np.exp(-tr.time[:, None, None] / tau)
    swing = np.abs(v_inf - V0).max()
    err = np.abs(tr.voltage - exact).max()
    assert err < WAVE_TOL * swing  # default rtol 5e-3: ~0.35% here
    dense = np.linspace(0, tr.time[-1] / 20, 500)
    exact_d = v_inf + (V0 - v_inf) * np.exp(-dense[:, None, None] / tau)
    assert np.abs(tr.at(dense) - exact_d).max() < WAVE_TOL * swing
    # local error control of a second-order method: the global error goes as rtol^(2/3)
    fine = run_phases_transient(p, d0, V0.copy(), y, 0.0, "positive", capacitance=C, trace=[0],
                                options=TransientOptions(rtol=5e-5)).stats["free"].trace
    exact_f = v_inf[:1] + (V0[:1] - v_inf[:1]) * np.exp(-fine.time[:, None, None] / tau)
    assert np.abs(fine.voltage - exact_f).max() < err / 10
    np.testing.assert_allclose(ph.free, v_inf, atol=1e-9)
    # settling: |V - V_inf| * tau_slow/tau_n < tol; the reported time is a tight upper bound
    tol = 1e-9
    assert st_free.tau_slow == pytest.approx(tau.max(), rel=1e-9)
    t_star = (tau * np.log(np.maximum(np.abs(V0 - v_inf) * tau.max() / tau / tol, 1.0))).max(axis=1)
    assert np.all(st_free.settle_time >= 0.98 * t_star) and np.all(st_free.settle_time <= 1.15 * t_star)
    # the implicit steps grow geometrically: a settled phase in a few dozen steps
    assert st_free.steps.max() <= 30 and (np.diff(tr.time[1:]) > 0).all()


@pytest.mark.parametrize("method", ["trbdf2", "be"])
def test_settled_phases_equal_the_dc_equilibria(method):
    net, p, x, y, d0 = _case((12, 8, 4), None, seed=3, n=4, input_gain=6.0)
    dc = _dc(p, d0, y)
    V = np.zeros((4, net.spec.n_free))
    ph = run_phases_transient(p, d0, V, y, BETA, options=TransientOptions(method=method))
    for a, b in ((ph.free, dc.free), (ph.plus, dc.plus), (ph.minus, dc.minus)):
        assert np.abs(a - b).max() < 1e-8
    np.testing.assert_array_equal(V, ph.free)  # like run_phases: V ends at the free state
    for name in ("free", "nudge_plus", "nudge_minus"):
        s = ph.stats[name]
        assert isinstance(s, PhaseStats) and s.sweeps.shape == (4,) and np.isfinite(s.sweeps.mean())
        assert (s.steps >= 1).all() and (s.solves >= s.steps).all() and (s.settle_time > 0).all()
        assert s.t_end >= s.settle_time.max() > 0
    # the diodes clamp (a nonlinear transient) and the nudge moves the outputs
    h = ph.free[:, :8]
    assert ((h > net.spec.v_hi) | (h < net.spec.v_lo)).mean() > 0.2
    assert np.abs(ph.plus - ph.free)[:, 8:].max() > 1e-4


def test_same_conductance_updates_as_the_dc_path():
    net, p, x, y, d0 = _case((12, 8, 6, 4), "ebana10", seed=5, n=6, input_gain=6.0)
    v_in = input_voltages(net.spec, x)
    g_dc = conductance_gradients(net, v_in, run_phases(p, d0, np.zeros((6, net.spec.n_free)), y, BETA, tol=1e-9), BETA)
    ph = run_phases_transient(p, d0, np.zeros((6, net.spec.n_free)), y, BETA, tol=1e-9)
    g_tr = conductance_gradients(net, v_in, ph, BETA)
    for a, b in zip(g_tr, g_dc):
        assert np.abs(a - b).max() <= 1e-4 * np.abs(b).max()


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 10_000), n_in=st.sampled_from([2, 4, 8]), hidden=st.lists(st.integers(1, 7), max_size=3),
       n_out=st.sampled_from([2, 4]), amp=st.sampled_from([None, "ebana10", "unity"]),
       beta=st.sampled_from([1e-7, 3e-6]), method=st.sampled_from(["trbdf2", "be"]))
def test_settled_transient_equals_dc_for_random_networks(seed, n_in, hidden, n_out, amp, beta, method):
    sizes = (n_in, *hidden, n_out)
    amp = amp if len(hidden) >= 2 else None
    net, p, x, y, d0 = _case(sizes, amp, seed=seed, n=3, input_gain=5.0)
    assume(slowest_rate(p, node_capacitance(net.spec), -beta) > 0)  # a -beta nudge too strong: no stable state
    dc = _dc(p, d0, y, beta)
    ph = run_phases_transient(p, d0, np.zeros((3, net.spec.n_free)), y, beta,
                              options=TransientOptions(method=method))
    for a, b in ((ph.free, dc.free), (ph.plus, dc.plus), (ph.minus, dc.minus)):
        assert np.abs(a - b).max() < 1e-7


def test_amplifier_pole_changes_the_transient_not_the_equilibrium():
    net, p, x, y, d0 = _case((8, 6, 6, 4), "ebana10", seed=2, n=2, input_gain=6.0)
    fast = run_phases_transient(p, d0, np.zeros((2, net.spec.n_free)), y, BETA, trace=[0],
                                options=TransientOptions(amp_tau=0.0))
    slow = run_phases_transient(p, d0, np.zeros((2, net.spec.n_free)), y, BETA, trace=[0],
                                options=TransientOptions(amp_tau=2e-7))
    for a, b in ((fast.free, slow.free), (fast.plus, slow.plus), (fast.minus, slow.minus)):
        assert np.abs(a - b).max() < 1e-8
    assert slow.stats["free"].tau_slow == pytest.approx(2e-7)
    assert slow.stats["free"].settle_time.max() > 2 * fast.stats["free"].settle_time.max()
    # mid-transient the second hidden layer lags behind its no-lag self
    t = np.array([5e-8])
    lag = np.abs(slow.stats["free"].trace.at(t) - fast.stats["free"].trace.at(t))[0, 0, 6:12].max()
    assert lag > 1e-2


def test_ramped_sources_and_event_loop():
    net, p, x, y, d0 = _case((8, 6, 4), seed=4, n=2, input_gain=5.0)
    rise = 2e-7
    ph = run_phases_transient(p, d0, np.zeros((2, net.spec.n_free)), y, BETA, drive0_old=np.zeros_like(d0),
                              options=TransientOptions(rise_time=rise), trace=[1])
    dc = _dc(p, d0, y)
    assert np.abs(ph.minus - dc.minus).max() < 1e-8
    for name in ("free", "nudge_plus", "nudge_minus"):
        s = ph.stats[name]
        assert (s.settle_time > rise).all()  # never settled while a source still moves
        assert np.isclose(s.trace.time, rise, rtol=1e-12, atol=0).any()  # the ramp's corner is a step end
    # a fixed schedule: read-back, programming (conductances change), nudge; then the settled state
    sim = TransientSimulator(p, np.zeros((2, net.spec.n_free)), d0, y)
    net2 = net.copy()
    net2.weights[1] *= 0.5
    q = sim.queue
    q.schedule(3e-6, "read_back")
    q.schedule(3.5e-6, "program", apply=lambda s: pack(net2))
    q.schedule(4e-6, "nudge_on", beta=BETA)
    stats = sim.advance_to(5e-6, trace=[0])
    assert sim.now == 5e-6 and [r[0] for r in sim.readings] == [3e-6]
    np.testing.assert_allclose(sim.readings[0][1], dc.free, atol=1e-6)  # a waveform point, not a settled state
    assert np.isclose(stats.trace.time, 4e-6).any() and stats.t_end == pytest.approx(5e-6)
    sim.settle("check")
    assert np.abs(sim.V - _dc(pack(net2), d0, y).plus).max() < 1e-8


def test_trajectories_for_tracing():
    net, p, x, y, d0 = _case((8, 6, 4), seed=6, n=3)
    ph = run_phases_transient(p, d0, np.zeros((3, net.spec.n_free)), y, BETA, trace=[0, 2])
    tr = phase_trajectories(ph)
    assert sorted(tr) == [0, 2] and sorted(tr[2]) == ["free", "nudge_minus", "nudge_plus"]
    for b in (0, 2):
        for name, final in (("free", ph.free), ("nudge_plus", ph.plus), ("nudge_minus", ph.minus)):
            t, v = tr[b][name]
            assert t.ndim == 1 and v.shape == (t.size, net.spec.n_free) and t[0] == 0.0
            assert (np.diff(t) > 0).all()
            np.testing.assert_array_equal(v[-1], final[b])
    np.testing.assert_array_equal(tr[0]["nudge_plus"][1][0], ph.free[0])  # each phase starts where the last settled
    st0 = ph.stats["free"].trace
    np.testing.assert_allclose(st0.at(st0.time), st0.voltage, atol=1e-15)


# --------------------------------------------------------------------------------------------
# errors


def test_bad_capacitance_is_rejected():
    net, p, x, y, d0 = _case((8, 6, 4))
    with pytest.raises(ValueError, match=r"capacitance must be finite and > 0 F: free layer 0, node 0 has 0\.0"):
        run_phases_transient(p, d0, np.zeros((2, net.spec.n_free)), y, BETA, capacitance=0.0)
    with pytest.raises(ValueError, match=r"free layer 1, node 2 has -1e-12"):
        node_capacitance(net.spec, per_layer={1: np.array([1e-12, 1e-12, -1e-12, 1e-12])})
    with pytest.raises(ValueError, match="expected a scalar or 6 values"):
        node_capacitance(net.spec, per_layer=[np.ones(3)])
    with pytest.raises(ValueError, match="layers 0..1"):
        node_capacitance(net.spec, per_layer={2: 1e-12})
    with pytest.raises(ValueError, match="method"):
        TransientOptions(method="rk4").check()
    with pytest.raises(ValueError, match="t_max"):
        TransientOptions(t_max=0.0).check()


def test_a_time_limit_too_short_names_the_phase():
    net, p, x, y, d0 = _case((8, 6, 4))
    with pytest.raises(SettleError, match=r"phase 'free' did not settle within 1e-09 s.*t_max") as info:
        run_phases_transient(p, d0, np.zeros((2, net.spec.n_free)), y, BETA, options=TransientOptions(t_max=1e-9))
    assert info.value.phase == "free"
    sim = TransientSimulator(p, np.zeros((2, net.spec.n_free)), d0, y)
    sim.settle("free")
    sim.options.t_max = 1e-10
    sim.queue.schedule(sim.now, "nudge_on", beta=BETA)
    with pytest.raises(SettleError, match="phase 'nudge_plus' did not settle") as info:
        sim.settle("nudge_plus")
    assert info.value.phase == "nudge_plus"
    # the next scheduled event is a limit too
    sim = TransientSimulator(p, np.zeros((2, net.spec.n_free)), d0, y)
    sim.queue.schedule(5e-10, "nudge_on", beta=BETA)
    with pytest.raises(SettleError, match="phase 'free'"):
        sim.settle("free")


def test_a_nudge_without_stable_equilibrium_is_refused():
    """-beta stronger than the conductance holding the outputs: the DC solver returns a saddle, a real
    circuit runs away; the transient engine says so."""
    net, p, x, y, d0 = _case((2, 1, 4), seed=164, n=3, input_gain=5.0)
    assert slowest_rate(p, node_capacitance(net.spec), -3e-6) < 0 < slowest_rate(p, node_capacitance(net.spec), 3e-6)
    with pytest.raises(UnstableCircuitError, match="phase 'nudge_minus'.*no stable equilibrium.*beta = -3e-06 S"):
        run_phases_transient(p, d0, np.zeros((3, net.spec.n_free)), y, 3e-6)
    ph = run_phases_transient(p, d0, np.zeros((3, net.spec.n_free)), y, 3e-6, mode="positive")
    assert ph.minus is None and ph.plus is not None


def test_time_constants_bound_the_slowest_mode():
    """tau_slow from the linear part bounds the slowest mode of the full Jacobian at a solution."""
    net, p, x, y, d0 = _case((10, 6, 6, 4), "ebana10", seed=8, n=1, input_gain=5.0)
    C = node_capacitance(net.spec, per_layer=[None, 3e-12, None])
    V = np.zeros((1, net.spec.n_free))
    solve(p, d0, V, tol=1e-13)
    N = net.spec.n_free
    J = np.zeros((N, N))
    for q in range(N):
        e = np.zeros((1, N))
        e[0, q] = 1e-7
        J[:, q] = (node_currents_state(p, d0, V + e) - node_currents_state(p, d0, V - e))[0] / 2e-7
    slowest = 1.0 / np.min(np.linalg.eigvals(-J / C[:, None]).real)
    tau_fast, tau_slow = time_constants(p, C)
    assert slowest <= tau_slow * (1 + 1e-9) and tau_slow < 5 * slowest
    assert tau_fast <= (C / p.gdiag).min()


# --------------------------------------------------------------------------------------------
# against ngspice .tran


def _compare_with_spice(net, x, y, phase, v0, stats, beta_prev=0.0, tstop=None, diode="shockley", cap=1e-12):
    from memsim.tran_netlist import run_tran, write_tran_netlist

    tr = stats.trace
    tstop = tstop or 2.0 * float(stats.settle_time.max())
    nl = write_tran_netlist(net, x, phase, BETA, y, tstop=tstop, v0=v0, capacitance=cap, tstep=tstop / 2000,
                            beta_prev=beta_prev, diode=diode)
    res = run_tran(nl)
    spice = res.free_voltages(net.spec)
    swing = np.abs(spice - spice[0]).max()
    ours_at_spice = tr.at(res.time)[:, 0, :]
    err1 = np.abs(ours_at_spice - spice).max() / swing
    keep = tr.time <= res.time[-1]
    spice_at_ours = np.stack([np.interp(tr.time[keep], res.time, spice[:, q]) for q in range(spice.shape[1])], 1)
    err2 = np.abs(spice_at_ours - tr.voltage[keep, 0, :]).max() / swing
    return err1, err2, spice[-1], swing


@pytest.mark.spice
@needs_spice
def test_rc_and_diode_clamped_nodes_match_ngspice():
    # RC nodes: no hidden layer
    net, p, x, y, d0 = _case((4, 4), n=1)
    V0 = np.array([[0.3, -0.2, 0.0, 0.1]])
    ph = run_phases_transient(p, d0, V0.copy(), y, 0.0, "positive", trace=[0])
    e1, e2, final, _ = _compare_with_spice(net, x[0], None, "free", V0[0], ph.stats["free"])
    assert e1 < WAVE_TOL and e2 < WAVE_TOL, (e1, e2)
    # diode-clamped hidden nodes, cut off from the outputs: each is an RC with a diode pair
    net, p, x, y, d0 = _case((2, 2, 2), n=1, input_gain=4.0)
    net.weights[1][:] = 0.0
    net.weights[0][:] = np.array([[2e-5, 1e-6], [1e-6, 2e-5]])  # one node pushed up, one down
    p = pack(net)
    d0 = input_drive(p, input_voltages(net.spec, np.array([[0.9]])))
    ph = run_phases_transient(p, d0, np.zeros((1, 4)), y, 0.0, "positive", trace=[0])
    h = ph.free[0, :2]
    assert h[0] > net.spec.v_hi + 0.05 and h[1] < net.spec.v_lo - 0.05  # both diodes conduct
    for diode in ("shockley", "model"):
        e1, e2, final, _ = _compare_with_spice(net, np.array([0.9]), None, "free", np.zeros(4), ph.stats["free"],
                                               diode=diode)
        assert e1 < WAVE_TOL and e2 < WAVE_TOL, (diode, e1, e2)


@pytest.mark.spice
@needs_spice
@pytest.mark.parametrize("amp", [None, "ebana10"])
def test_eqprop_phases_replayed_in_ngspice(amp):
    sizes = (8, 6, 4) if amp is None else (8, 6, 6, 4)
    net, p, x, y, d0 = _case(sizes, amp, seed=3, n=1, input_gain=4.0)
    ph = run_phases_transient(p, d0, np.zeros((1, net.spec.n_free)), y, BETA, trace=[0])
    dc = _dc(p, d0, y)
    for phase, v0, bprev, final_dc in (("free", np.zeros(net.spec.n_free), 0.0, dc.free),
                                       ("nudge_plus", ph.free[0], 0.0, dc.plus),
                                       ("nudge_minus", ph.plus[0], BETA, dc.minus)):
        st_ph = ph.stats[phase]
        # ngspice runs long enough to settle far below 1e-6 V
        e1, e2, final, swing = _compare_with_spice(net, x[0], y[0], phase, v0, st_ph, bprev,
                                                   tstop=st_ph.settle_time.max() + 15 * st_ph.tau_slow)
        assert e1 < WAVE_TOL and e2 < WAVE_TOL, (phase, e1, e2)
        assert np.abs(final - final_dc[0]).max() < 1e-6, phase
        assert np.abs(ph.stats[phase].trace.voltage[-1, 0] - final_dc[0]).max() < 1e-8
        assert swing > 1e-3  # the phase does move


@pytest.mark.spice
@needs_spice
def test_export_phase_tran_runs():
    from memsim.tran_netlist import export_phase_tran, run_tran

    net, p, x, y, d0 = _case((8, 6, 4), seed=1, n=1)
    text = export_phase_tran(net, x[0], "nudge_minus", BETA, y[0], title="test export")
    assert ".tran" in text and "uic" in text and "IC=" in text and text.startswith("test export")
    res = run_tran(text)
    assert np.abs(res.free_voltages(net.spec)[-1] - _dc(p, d0, y).minus[0]).max() < 1e-5


@pytest.mark.spice
@needs_spice
def test_ramped_sources_and_amplifier_pole_replayed_in_ngspice():
    """Inputs ramping up from zero, the nudge ramping on and flipping (a B source), lagging amplifiers."""
    net, p, x, y, d0 = _case((8, 6, 6, 4), "ebana10", seed=3, n=1, input_gain=4.0)
    rise = 3e-8
    opt = TransientOptions(rise_time=rise)
    ph = run_phases_transient(p, d0, np.zeros((1, net.spec.n_free)), y, BETA, drive0_old=np.zeros_like(d0),
                              options=opt, trace=[0])
    from memsim.tran_netlist import run_tran, write_tran_netlist

    for phase, v0, bprev, x_prev in (("free", np.zeros(net.spec.n_free), 0.0, np.zeros_like(x[0])),
                                     ("nudge_plus", ph.free[0], 0.0, None), ("nudge_minus", ph.plus[0], BETA, None)):
        s = ph.stats[phase]
        tstop = 2.0 * float(s.settle_time.max())
        nl = write_tran_netlist(net, x[0], phase, BETA, y[0], tstop=tstop, tstep=tstop / 2000, v0=v0, x_prev=x_prev,
                                beta_prev=bprev, rise_time=rise, diode="shockley")
        assert ("PWL(" in nl) == (phase == "free") and ("Bnudge0" in nl) == (phase != "free") and "Clag0_0" in nl
        res = run_tran(nl)
        spice = res.free_voltages(net.spec)
        err = np.abs(s.trace.at(res.time)[:, 0, :] - spice).max() / np.abs(spice - spice[0]).max()
        assert err < WAVE_TOL, (phase, err)
