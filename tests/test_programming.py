"""Desired updates -> pulses -> devices: the Programmer's schemes, bookkeeping and non-idealities."""
from __future__ import annotations

import math

import numba
import numpy as np
import pytest

from memsim.devices import pulse_models as pm
from memsim.devices.cards import available_cards, card_from_dict, load_card
from memsim.programming import Programmer, make_programmer

G0, G1 = 1e-7, 1e-5
SPAN = G1 - G0
SHAPES = [(7, 5), (5,)]


def card(model, g_min=G0, g_max=G1, **params):
    d = dict(kind="memristor", name=f"test_{model}", source="test", model=model, g_min=g_min, g_max=g_max)
    d.update(params)
    return card_from_dict("memristor", d)


def noisy_softbounds(**kw):
    p = dict(dw_min=2e-8, up_down=0.1, c2c_sigma=0.3, dw_min_dtod=0.3, up_down_dtod=0.05, bounds_dtod=0.05,
             p_stuck_min=0.05, p_stuck_max=0.05, read_noise=0.02, drift_model="powerlaw", drift_nu=0.05,
             drift_t0=1.0, drift_dtod=0.2)
    p.update(kw)
    return card("softbounds", **p)


def fresh(pr, seed=0):
    rng = np.random.default_rng(seed)
    params = [rng.uniform(pr.g_min + 0.2 * (pr.g_max - pr.g_min), pr.g_max - 0.2 * (pr.g_max - pr.g_min), sh)
              for sh in pr.shapes]
    pr.initialize(params)
    return params


def random_dg(pr, rng, scale=6.0):
    return [rng.normal(0.0, scale * pr.step_up, sh) for sh in pr.shapes]


# ------------------------------------------------------------------------------ basics


@pytest.mark.parametrize("scheme", ["ideal", "deterministic", "stochastic"])
def test_zero_pulses_change_nothing(scheme):
    for name in available_cards("memristor")["memristor"]:
        pr = make_programmer(name, scheme, SHAPES, seed=2, c2c_sigma=0.2)
        params = fresh(pr)
        before = [p.copy() for p in params]
        x0 = pr.x.copy()
        out = pr.program(params, [np.zeros(sh) for sh in SHAPES])
        assert out["pulses"] == 0 and out["energy"] == 0.0, name
        for a, b in zip(params, before):
            np.testing.assert_array_equal(a, b)
        np.testing.assert_array_equal(pr.x, x0)
        assert all(np.all(t == 0) for t in pr.pulse_totals())


def test_programmer_applies_the_device_model_pulse_by_pulse():
    # one device, noisy: the programmer's trains reproduce the single-pulse kernel exactly
    c = load_card("memristor", "agsi")
    pr = make_programmer(c, "deterministic", [(1,)], seed=5)
    params = [np.array([c.g_min])]
    pr.initialize(params)
    pols = [1] * 60 + [-1] * 30 + [1] * 10
    got = [params[0][0]]
    for pol in pols:
        pr.program(params, [np.array([pol * pr.step_up if pol > 0 else -pr.step_down])])
        got.append(params[0][0])
    ref = pm.response_curve(c, pols, seed=5)
    np.testing.assert_array_equal(np.array(got), ref)
    # and one train of n pulses equals n single pulses
    pr2 = make_programmer(c, "deterministic", [(1,)], seed=5)
    p2 = [np.array([c.g_min])]
    pr2.initialize(p2)
    pr2.program(p2, [np.array([60 * pr.step_up])])
    assert p2[0][0] == got[60]
    assert pr.pulse_totals()[0][0] == 100 and pr2.pulse_totals()[0][0] == 60


def test_shapes_are_checked():
    pr = make_programmer("ideal", "deterministic", SHAPES, seed=0)
    params = fresh(pr)
    with pytest.raises(ValueError):
        pr.program(params, [np.zeros((5, 7)), np.zeros(5)])
    with pytest.raises(ValueError):
        pr.program(params[:1], [np.zeros((7, 5))])
    with pytest.raises(ValueError):
        make_programmer("ideal", "annealing", SHAPES, seed=0)


# ------------------------------------------------------------------------------ schemes


def test_ideal_scheme_is_the_exact_clipped_update():
    pr = make_programmer("ideal", "ideal", SHAPES, seed=0)
    params = fresh(pr)
    rng = np.random.default_rng(1)
    for _ in range(5):
        dg = [rng.normal(0, 3e-6, sh) for sh in SHAPES]
        expect = [np.clip(p + d, 1e-9, 2e-5) for p, d in zip(params, dg)]
        out = pr.program(params, dg)
        for p, e in zip(params, expect):
            np.testing.assert_array_equal(p, e)
        assert out["pulses"] == 0 and out["energy"] == 0.0


def test_deterministic_with_tiny_step_approximates_ideal():
    step = 2e-5 * 1e-5
    pr = make_programmer("ideal", "deterministic", SHAPES, seed=0, dG_step=step, n_max=10**7)
    ref = make_programmer("ideal", "ideal", SHAPES, seed=0)
    params = fresh(pr)
    exact = [p.copy() for p in params]
    ref.initialize(exact)
    rng = np.random.default_rng(2)
    for _ in range(4):
        dg = [rng.normal(0, 2e-6, sh) for sh in SHAPES]
        out = pr.program(params, dg)
        ref.program(exact, dg)
        # the device lags the exact update by its residue (half a step), by a step after a clip
        for p, e in zip(params, exact):
            np.testing.assert_allclose(p, e, rtol=0, atol=step + 1e-18)
    assert out["pulses"] > 10_000


def test_residue_is_carried_or_dropped():
    for carry, expect in ((True, 4), (False, 0)):
        pr = make_programmer("ideal", "deterministic", [(1,)], seed=0, carry_residue=carry)
        params = [np.array([1e-5])]
        pr.initialize(params)
        total = sum(pr.program(params, [np.array([0.4 * pr.step_up])])["pulses"] for _ in range(10))
        assert total == expect
        if carry:
            assert params[0][0] == pytest.approx(1e-5 + 4 * pr.step_up, rel=1e-12)


def test_pulse_cap():
    pr = make_programmer("ideal", "deterministic", [(3,)], seed=0, n_max=7)
    params = [np.full(3, 1e-5)]
    pr.initialize(params)
    out = pr.program(params, [np.array([100, -3, 2.6]) * pr.step_up])
    assert out["pulses"] == 7 + 3 + 3
    np.testing.assert_array_equal(pr.last_pulses()[0], [7, -3, 3])
    np.testing.assert_allclose(params[0], 1e-5 + np.array([7, -3, 3]) * pr.step_up, rtol=1e-12)


def test_default_steps_follow_the_card():
    assert make_programmer("agsi", "deterministic", [(1,)], 0).dG_step == pytest.approx(
        ((3.8462e-8 - 3.0769e-9) / 97, (3.8462e-8 - 3.0769e-9) / 100))
    assert make_programmer("softbounds", "deterministic", [(1,)], 0).dG_step == (8.25e-9, 8.25e-9)
    vt = make_programmer("vteam", "deterministic", [(1,)], 0)
    assert vt.dG_step == pytest.approx(((2e-2 - 1e-3) / 240, (2e-2 - 1e-3) / 240), rel=1e-9)
    assert make_programmer("ideal", "deterministic", [(1,)], 0, dG_step=1e-9).dG_step == (1e-9, 1e-9)


def test_stochastic_scheme_is_unbiased_in_pulse_count():
    n = 60_000
    pr = make_programmer("ideal", "stochastic", [(n,)], seed=3)
    params = [np.full(n, 1e-5)]
    pr.initialize(params)
    m = 3.3
    pr.program(params, [np.full(n, -m * pr.step_down)])
    counts = pr.pulse_totals()[0]
    p = m / 31
    assert counts.mean() == pytest.approx(m, abs=4 * math.sqrt(31 * p * (1 - p) / n))
    assert counts.var() == pytest.approx(31 * p * (1 - p), rel=0.05)
    np.testing.assert_allclose(params[0], 1e-5 - counts * pr.step_down, rtol=1e-12)  # all down


def test_program_outer_coincidences():
    rows, cols, lr = 300, 200, 2.0
    pr = make_programmer("ideal", "stochastic", [(rows, cols), (rows,)], seed=4)
    params = [np.full((rows, cols), 1e-5), np.full(rows, 1e-5)]
    pr.initialize(params)
    rng = np.random.default_rng(0)
    x = rng.choice([-1.0, 1.0], rows) * rng.uniform(0.5, 1.0, rows)
    d = rng.choice([-1.0, 1.0], cols) * rng.uniform(0.5, 1.0, cols)
    scale = 3.0 * pr.step_up / lr  # E[pulses] = lr*|x_i d_j|/step up to 3
    out = pr.program_outer(params, [x, x], [d * scale, None], lr)
    dg = params[0] - 1e-5
    n = np.rint(np.abs(dg) / pr.step_up)
    moved = n > 0
    assert np.all(np.sign(dg[moved]) == np.sign(np.outer(x, d))[moved])
    expect = lr * np.abs(np.outer(x, d * scale)) / pr.step_up
    assert n.sum() / expect.sum() == pytest.approx(1.0, abs=0.03)
    assert out["pulses_per_array"][0] == int(n.sum())
    # several rank-one terms at once; other schemes program the summed outer product
    det = make_programmer("ideal", "deterministic", [(rows, cols), (rows,)], seed=4)
    p_det = [np.full((rows, cols), 1e-5), np.full(rows, 1e-5)]
    det.initialize(p_det)
    xs, ds = np.stack([x, -x]), np.stack([d, 2 * d]) * scale
    det.program_outer(p_det, [xs, xs], [ds, None], lr)
    dg_sum = lr * (np.outer(x, d) - 2 * np.outer(x, d)) * scale
    np.testing.assert_allclose(p_det[0], 1e-5 + np.rint(dg_sum / det.step_up) * det.step_up, rtol=1e-12)


# ------------------------------------------------------------------------------ energy


def test_energy_is_v2_g_t_per_pulse():
    c = card("linear", levels=100, v_up=2.0, t_up=1e-6, v_down=-1.5, t_down=2e-6, p_stuck_max=0.5)
    pr = make_programmer(c, "deterministic", [(200,)], seed=1)
    params = [np.full(200, G0 + 10 * SPAN / 100)]
    pr.initialize(params)
    stuck = pr.stuck_mask()[0] == pm.STUCK_MAX
    assert 60 < stuck.sum() < 140
    g_before = params[0].copy()
    s = SPAN / 100
    out = pr.program(params, [np.full(200, 20 * s)])
    j = np.arange(20)
    g_init = g_before[~stuck][0]
    assert g_init == pytest.approx(G0 + 10 * s, rel=1e-12)
    healthy_e = 4.0 * 1e-6 * np.sum(0.5 * ((g_init + j * s) + (g_init + (j + 1) * s)))
    stuck_e = 20 * 4.0 * 1e-6 * G1
    assert out["energy"] == pytest.approx((~stuck).sum() * healthy_e + stuck.sum() * stuck_e, rel=1e-12)
    out = pr.program(params, [np.full(200, -5 * s)])
    assert out["pulses"] == 1000
    assert out["energy"] == pytest.approx(
        (~stuck).sum() * 2.25 * 2e-6 * np.sum(G0 + (30 - j[:5] - 0.5) * s) + stuck.sum() * 5 * 2.25 * 2e-6 * G1,
        rel=1e-12)


# ------------------------------------------------------------------------------ non-idealities


def test_device_to_device_spread_is_fixed_by_the_seed():
    c = card("softbounds", dw_min=2e-8, dw_min_dtod=0.3, bounds_dtod=0.1)
    shapes = [(100, 100)]
    a = make_programmer(c, "deterministic", shapes, seed=7).device_parameters()[0]
    b = make_programmer(c, "deterministic", shapes, seed=7).device_parameters()[0]
    other = make_programmer(c, "deterministic", shapes, seed=8).device_parameters()[0]
    np.testing.assert_array_equal(a, b)
    assert not np.allclose(a, other)
    lo, hi = a[..., pm.C_LO], a[..., pm.C_HI]
    assert np.all(lo >= G0) and np.all(hi <= G1) and np.all(hi - lo >= 0.5 * SPAN)
    # the step at mid-window, a*(hi - lo)/2, spreads by dw_min_dtod around dw_min
    dw = a[..., pm.C_SU] * (hi - lo) / 2
    assert np.mean(dw) == pytest.approx(2e-8, rel=4 * 0.3 / 100)
    assert np.std(dw) / 2e-8 == pytest.approx(0.3, abs=4 * 0.3 / math.sqrt(2 * 1e4))
    # shrink of the window: half-normal with scale bounds_dtod*span
    assert np.mean(lo - G0) / SPAN == pytest.approx(0.1 * math.sqrt(2 / math.pi), rel=0.05)
    # and the devices respond differently to the same pulses
    pr = make_programmer(c, "deterministic", shapes, seed=7, c2c_sigma=0.0)
    params = [np.full(shapes[0], 0.5 * (G0 + G1))]
    pr.initialize(params)
    pr.program(params, [np.full(shapes[0], 10 * pr.step_up)])
    assert np.std(params[0]) > 0


def test_neurosim_nl_spread():
    pr = make_programmer("agsi", "deterministic", [(20_000,)], seed=1, nl_dtod=0.5)
    dp = pr.device_parameters()[0]
    nl = pm.nl_of_a(dp[:, pm.C_SU] / 97)
    assert np.mean(nl) == pytest.approx(2.4, abs=0.02) and np.std(nl) == pytest.approx(0.5, rel=0.03)


def test_stuck_devices_never_move():
    shapes = [(100, 50), (50,)]
    pr = make_programmer(noisy_softbounds(p_stuck_min=0.1, p_stuck_max=0.05), "deterministic", shapes, seed=9)
    params = fresh(pr)
    stuck = np.concatenate([s.ravel() for s in pr.stuck_mask()])
    n = stuck.size
    assert (stuck == 1).mean() == pytest.approx(0.1, abs=4 * math.sqrt(0.1 * 0.9 / n))
    assert (stuck == 2).mean() == pytest.approx(0.05, abs=4 * math.sqrt(0.05 * 0.95 / n))
    start = np.concatenate([p.ravel() for p in params])
    assert np.all(start[stuck == 1] == G0) and np.all(start[stuck == 2] == G1)
    rng = np.random.default_rng(0)
    for k in range(10):
        pr.program(params, random_dg(pr, rng, 30))
        pr.drift(params, 100.0)
    now = np.concatenate([p.ravel() for p in params])
    np.testing.assert_array_equal(now[stuck != 0], start[stuck != 0])
    assert np.mean(now[stuck == 0] != start[stuck == 0]) > 0.95
    totals = np.concatenate([t.ravel() for t in pr.pulse_totals()])
    assert totals[stuck != 0].sum() > 0  # they were sent pulses all the same


def test_read_noise_leaves_states_alone():
    n = 100_000
    pr = make_programmer(noisy_softbounds(p_stuck_min=0, p_stuck_max=0, bounds_dtod=0), "deterministic",
                         [(n,)], seed=3)
    params = fresh(pr)
    before = params[0].copy()
    x0 = pr.x.copy()
    r1 = pr.read(params)[0]
    r2 = pr.read(params)[0]
    np.testing.assert_array_equal(params[0], before)
    np.testing.assert_array_equal(pr.x, x0)
    ratio = r1 / before
    assert ratio.mean() == pytest.approx(1.0, abs=4 * 0.02 / math.sqrt(n))
    assert ratio.std() == pytest.approx(0.02, rel=4 / math.sqrt(2 * n))
    assert not np.array_equal(r1, r2)
    quiet = make_programmer("ideal", "deterministic", SHAPES, seed=0)
    p = fresh(quiet)
    for a, b in zip(quiet.read(p), p):
        np.testing.assert_array_equal(a, b)


def test_exponential_drift_closed_form():
    c = card("linear", drift_model="exponential", drift_tau=50.0, drift_rest=2e-6, p_stuck_max=0.2)
    pr = make_programmer(c, "ideal", [(1000,)], seed=1)
    params = fresh(pr)
    g0 = params[0].copy()
    stuck = pr.stuck_mask()[0] != 0
    pr.drift(params, 20.0)
    expect = 2e-6 + (g0 - 2e-6) * math.exp(-20.0 / 50.0)
    np.testing.assert_allclose(params[0][~stuck], expect[~stuck], rtol=1e-13)
    np.testing.assert_array_equal(params[0][stuck], g0[stuck])


def test_powerlaw_drift_composes_and_restarts_after_pulses():
    c = card("softbounds", dw_min=2e-8, drift_model="powerlaw", drift_nu=0.1, drift_t0=1.0)
    a = make_programmer(c, "deterministic", [(50,)], seed=1)
    b = make_programmer(c, "deterministic", [(50,)], seed=1)
    pa, pb = fresh(a), fresh(b)
    a.drift(pa, 3.0)
    a.drift(pa, 7.0)
    b.drift(pb, 10.0)
    np.testing.assert_allclose(pa[0], pb[0], rtol=1e-13)
    g0 = fresh(b)[0]
    b.drift(pb, 10.0)  # ages were reset by initialize
    np.testing.assert_allclose(pb[0], G0 + (g0 - G0) * 11.0**-0.1, rtol=1e-12)


# ------------------------------------------------------------------------------ resume


@pytest.mark.parametrize("scheme", ["deterministic", "stochastic"])
def test_state_dict_round_trip_continues_identically(scheme):
    shapes = [(40, 30), (30,)]
    c = noisy_softbounds()

    def run(pr, params, rng, steps):
        outs = []
        for _ in range(steps):
            outs.append(pr.program(params, random_dg(pr, rng)))
            outs.append(pr.read(params))
            pr.drift(params, 5.0)
        x = rng.normal(size=(2, 40))
        d = rng.normal(size=(2, 30)) * 1e-8
        outs.append(pr.program_outer(params, [x, d * 1e8], [d, None], 3.0))
        return outs

    a = make_programmer(c, scheme, shapes, seed=11)
    pa = fresh(a)
    run(a, pa, np.random.default_rng(0), 3)
    saved = {k: (v.copy() if isinstance(v, np.ndarray) else v) for k, v in a.state_dict().items()}
    p_saved = [p.copy() for p in pa]
    out_a = run(a, pa, np.random.default_rng(1), 3)

    b = make_programmer(c, scheme, shapes, seed=999)  # the state dict carries the seed
    b.load_state_dict(saved)
    pb = [p.copy() for p in p_saved]
    out_b = run(b, pb, np.random.default_rng(1), 3)
    for x, y in zip(pa, pb):
        np.testing.assert_array_equal(x, y)
    for oa, ob in zip(out_a, out_b):
        if isinstance(oa, dict):
            assert oa == ob
        else:
            for x, y in zip(oa, ob):
                np.testing.assert_array_equal(x, y)
    for x, y in zip(a.pulse_totals(), b.pulse_totals()):
        np.testing.assert_array_equal(x, y)
    sa, sb = a.state_dict(), b.state_dict()
    for k in sa:
        np.testing.assert_array_equal(sa[k], sb[k])


def test_results_do_not_depend_on_thread_count():
    shapes = [(300, 100)]
    outs = []
    n0 = numba.get_num_threads()
    try:
        for threads in (1, n0):
            numba.set_num_threads(threads)
            pr = make_programmer(noisy_softbounds(), "deterministic", shapes, seed=5)
            params = fresh(pr)
            rng = np.random.default_rng(0)
            for _ in range(3):
                pr.program(params, random_dg(pr, rng, 10))
            outs.append(params[0].copy())
    finally:
        numba.set_num_threads(n0)
    np.testing.assert_array_equal(outs[0], outs[1])


def test_make_programmer_accepts_names_and_options():
    pr = make_programmer("softbounds", "stochastic", SHAPES, seed=0, BL=15, update_management=False,
                         c2c_sigma=0.0, g_max=2e-5)
    assert isinstance(pr, Programmer) and pr.bl == 15 and not pr.update_management
    assert pr.card.params["c2c_sigma"] == 0.0 and pr.g_max == 2e-5


def test_first_program_adopts_params_as_initial_conductances():
    pr = make_programmer("ideal", "deterministic", [(3,)], seed=0)
    params = [np.array([1e-6, 5e-6, 1e-5])]
    pr.program(params, [np.zeros(3)])
    np.testing.assert_array_equal(params[0], [1e-6, 5e-6, 1e-5])
    pr.program(params, [np.full(3, 2 * pr.step_up)])
    np.testing.assert_allclose(params[0], np.array([1e-6, 5e-6, 1e-5]) + 2 * pr.step_up, rtol=1e-12)
