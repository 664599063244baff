"""Device physics of the programming-pulse models, against closed forms and published numbers."""
from __future__ import annotations

import math

import numba
import numpy as np
import pytest
from scipy import stats
from scipy.integrate import solve_ivp

from memsim.devices import pulse_models as pm
from memsim.devices.cards import CardError, MemristorCard, available_cards, card_from_dict, load_card
from memsim.programming import make_programmer

G0, G1 = 1e-7, 1e-5
SPAN = G1 - G0


def card(model, g_min=G0, g_max=G1, **params):
    d = dict(kind="memristor", name=f"test_{model}", source="test", model=model, g_min=g_min, g_max=g_max)
    d.update(params)
    return card_from_dict("memristor", d)


# ------------------------------------------------------------------------------ NeuroSim labels


def test_a_of_nl_reproduces_neurosim_anchors():
    # MLP_NeuroSim V3 getParamA: a(0.5)=2.5199, a(1)=1.2517, a(2)=0.6090, a(3)=0.3868, a(9)=0.0228
    a = pm.a_of_nl([0.5, 1.0, 2.0, 3.0, 9.0])
    np.testing.assert_allclose(a, [2.5199, 1.2517, 0.6090, 0.3868, 0.0228], atol=6e-5)
    # finer entries of the same table (6 digits), incl. the Ag:a-Si labels 2.4 and 4.88
    nl = [0.01, 0.1, 1.5, 2.4, 4.88]
    np.testing.assert_allclose(pm.a_of_nl(nl), [126.268958, 12.625807, 0.825164, 0.499181, 0.200303], rtol=3e-6)
    assert pm.a_of_nl(-4.88) == pytest.approx(-0.200303, rel=3e-6)
    np.testing.assert_allclose(pm.nl_of_a(pm.a_of_nl([-6.76, -0.63, 0.04, 3.68])), [-6.76, -0.63, 0.04, 3.68],
                               rtol=1e-9)
    with pytest.raises(ValueError):
        pm.a_of_nl(10.2)


def neurosim_formula(p, a, p_max, lo, hi):
    b = (hi - lo) / (1.0 - np.exp(-p_max / a))
    return b * (1.0 - np.exp(-p / a)) + lo


def test_neurosim_curve_equals_formula_exactly():
    c = load_card("memristor", "agsi")
    g = pm.response_curve(c, (1000, 1000), noise=False)
    lo, hi = c.g_min, c.g_max
    a_up = pm.a_of_nl(2.4) * 97
    a_dn = pm.a_of_nl(-4.88) * 100
    assert a_up == pytest.approx(0.499181 * 97, rel=3e-6) and a_dn == pytest.approx(-0.200303 * 100, rel=3e-6)
    p_up = np.minimum(np.arange(1001), 97)
    np.testing.assert_allclose(g[:1001], neurosim_formula(p_up, a_up, 97, lo, hi), rtol=1e-12, atol=0)
    p_dn = np.maximum(100 - np.arange(1001), 0)
    np.testing.assert_allclose(g[1000:], neurosim_formula(p_dn, a_dn, 100, lo, hi), rtol=1e-12, atol=0)
    # published shape: saturating exactly at the bounds after 97 up / 100 down pulses,
    # concave potentiation (NL > 0), depression steepest at the top (NL < 0)
    assert g[97] == hi and g[1000 + 100] == lo
    up, dn = np.diff(g[:98]), -np.diff(g[1000:1101])
    assert np.all(up > 0) and np.all(np.diff(up) < 0)
    assert np.all(dn > 0) and np.all(np.diff(dn) < 0)
    assert np.all((g >= lo) & (g <= hi))


def test_neurosim_negative_nl_flips_curvature_and_zero_is_linear():
    convex = card("neurosim", levels_up=50, levels_down=50, nl_up=-2.0, nl_down=2.0)
    g = pm.response_curve(convex, (50, 50), noise=False)
    up, dn = np.diff(g[:51]), -np.diff(g[50:])
    assert np.all(np.diff(up) > 0)  # accelerating potentiation
    assert np.all(np.diff(dn) > 0)  # depression steepest near g_min
    linear = card("neurosim", levels_up=40, levels_down=40, nl_up=0.0, nl_down=0.0)
    g = pm.response_curve(linear, (40, 40), noise=False)
    np.testing.assert_allclose(g[:41], G0 + SPAN * np.arange(41) / 40, rtol=1e-12)


# ------------------------------------------------------------------------------ step models


def test_softbounds_matches_closed_form():
    dw, ud = 1e-8, 0.2
    c = card("softbounds", dw_min=dw, up_down=ud)
    g = pm.response_curve(c, (1000, 1000), noise=False)
    a_up, a_dn = 2 * dw * (1 + ud) / SPAN, 2 * dw * (1 - ud) / SPAN
    n = np.arange(1001)
    expect_up = G1 - SPAN * (1 - a_up) ** n
    np.testing.assert_allclose(g[:1001], expect_up, rtol=1e-11)
    expect_dn = G0 + (expect_up[-1] - G0) * (1 - a_dn) ** n
    np.testing.assert_allclose(g[1000:], expect_dn, rtol=1e-11)
    # step at mid-window is dw_min*(1 +- up_down) (aihwkit's convention)
    mid = pm.response_curve(c, [1, -1], g0=0.5 * (G0 + G1), noise=False)
    assert mid[1] - mid[0] == pytest.approx(dw * (1 + ud), rel=1e-9)
    assert mid[1] - mid[2] == pytest.approx(2 * dw * (1 - ud) * (mid[1] - G0) / SPAN, rel=1e-9)


def recurrence(step_up, step_dn, n_up, n_dn, g0=G0, lo=G0, hi=G1):
    g = [g0]
    for pol in [1] * n_up + [-1] * n_dn:
        x = g[-1]
        x = x + (step_up(x) if pol > 0 else -step_dn(x))
        g.append(min(max(x, lo), hi))
    return np.array(g)


@pytest.mark.parametrize("model", ["expstep", "powstep"])
def test_exp_and_pow_steps_follow_their_law(model):
    dw, ud, gu, gd = 2e-8, 0.1, 3.0, 1.5
    c = card(model, dw_min=dw, up_down=ud, gamma_up=gu, gamma_down=gd)
    g = pm.response_curve(c, (1000, 1000), noise=False)
    u = lambda x: (x - G0) / SPAN  # noqa: E731
    if model == "expstep":
        up = lambda x: dw * (1 + ud) * math.exp(gu * (0.5 - u(x)))  # noqa: E731
        dn = lambda x: dw * (1 - ud) * math.exp(gd * (u(x) - 0.5))  # noqa: E731
    else:
        up = lambda x: dw * (1 + ud) * (2 * (1 - u(x))) ** gu  # noqa: E731
        dn = lambda x: dw * (1 - ud) * (2 * u(x)) ** gd  # noqa: E731
    np.testing.assert_allclose(g, recurrence(up, dn, 1000, 1000), rtol=1e-12)
    s_up, s_dn = np.diff(g[:1001]), -np.diff(g[1000:])
    assert np.all(s_up >= 0) and np.all(s_dn >= 0)  # monotone
    assert np.all((g >= G0) & (g <= G1))  # bounded
    # saturating: steps shrink toward the bound, which the device approaches
    assert np.all(np.diff(s_up[s_up > 0]) <= 1e-22) and np.all(np.diff(s_dn[s_dn > 0]) <= 1e-22)
    assert g[1000] > G0 + 0.8 * SPAN and g[-1] < G0 + 0.2 * SPAN
    assert s_up[0] > 4 * s_up[s_up > 0][-1] and s_dn[0] > 2 * s_dn[s_dn > 0][-1]
    assert abs(s_up[0]) != pytest.approx(abs(s_dn[0]))  # asymmetric


def test_expstep_continuum_closed_form():
    # small steps: exp(gamma*u_n) = exp(gamma*u_0) + gamma*(dw*exp(gamma/2)/span)*n
    dw, gam = 1e-9, 3.0
    c = card("expstep", dw_min=dw, gamma_up=gam, gamma_down=gam)
    g = pm.response_curve(c, (3000, 0), noise=False)
    n = np.arange(3001)
    u = np.log(1.0 + gam * dw * math.exp(gam / 2) / SPAN * n) / gam
    np.testing.assert_allclose(g, G0 + SPAN * u, rtol=2e-3)


def test_powstep_continuum_closed_form():
    # (1-u_n)**(1-gamma) = 1 - (1-gamma)*(dw*2**gamma/span)*n for gamma != 1
    dw, gam = 1e-9, 2.0
    c = card("powstep", dw_min=dw, gamma_up=gam, gamma_down=gam)
    g = pm.response_curve(c, (3000, 0), noise=False)
    n = np.arange(3001)
    one_minus_u = (1.0 - (1.0 - gam) * dw * 2**gam / SPAN * n) ** (1.0 / (1.0 - gam))
    np.testing.assert_allclose(g, G1 - SPAN * one_minus_u, rtol=2e-3)


def test_linear_levels_are_exact():
    c = card("linear", levels=10)
    g = pm.response_curve(c, (1000, 1000), noise=False)
    np.testing.assert_allclose(g[:11], G0 + SPAN * np.arange(11) / 10, rtol=1e-12)
    np.testing.assert_allclose(g[1000:1011], G1 - SPAN * np.arange(11) / 10, rtol=1e-12)
    assert np.all(g[10:1001] == G1) and np.all(g[1011:] == G0)


def test_piecewise_table_steps():
    s = 3e-8
    flat = card("piecewise", table_up=[s, s], table_down=[2 * s, 2 * s])
    g = pm.response_curve(flat, (1000, 1000), noise=False)
    n_up = int(SPAN // s)
    np.testing.assert_allclose(g[: n_up + 1], G0 + s * np.arange(n_up + 1), rtol=1e-12)
    assert np.all(g[n_up + 1 : 1001] == G1) and g[-1] == G0
    tg, tu, td = [G0, 5e-6, G1], [1e-7, 5e-8, 0.0], [0.0, 4e-8, 1e-7]
    table = card("piecewise", table_g=tg, table_up=tu, table_down=td)
    g = pm.response_curve(table, (1000, 1000), noise=False)
    ref = recurrence(lambda x: np.interp(x, tg, tu), lambda x: np.interp(x, tg, td), 1000, 1000)
    np.testing.assert_allclose(g, ref, rtol=1e-12)
    # the bundled measured-style table: monotone, bounded, saturating, asymmetric
    c = load_card("memristor", "agsi_table")
    g = pm.response_curve(c, (1000, 1000), noise=False)
    up, dn = np.diff(g[:1001]), -np.diff(g[1000:])
    assert np.all(up >= 0) and np.all(dn >= 0) and g.min() >= c.g_min and g.max() <= c.g_max
    assert g[1000] > c.g_min + 0.99 * (c.g_max - c.g_min) and g[-1] < c.g_min + 0.05 * (c.g_max - c.g_min)
    assert up[0] > 3 * up[60] and dn[0] > 3 * dn[60]


def test_piecewise_fit_from_measured_curves():
    c = load_card("memristor", "agsi")
    up = pm.response_curve(c, (97, 0), noise=False)
    dn = pm.response_curve(c, (0, 100), g0=c.g_max, noise=False)
    keys = pm.piecewise_table_from_curves(up, dn, c.g_min, c.g_max, nodes=21)
    fit = card("piecewise", g_min=c.g_min, g_max=c.g_max, **keys)
    g = pm.response_curve(fit, (97, 0), noise=False)
    # NeuroSim's exponential curve has steps linear in G, so a linear table reproduces it closely
    np.testing.assert_allclose(g, up, rtol=0.02)


# ------------------------------------------------------------------------------ VTEAM

VT = dict(d=3e-9, k_on=-10.0, k_off=5e-4, alpha_on=3.0, alpha_off=1.0, v_on=-0.2, v_off=0.02)


def vteam_card(window="none", **kw):
    p = dict(VT, v_up=-0.21, t_up=10e-9, v_down=0.03, t_down=50e-9, window=window)
    p.update(kw)
    return card("vteam", g_min=1e-3, g_max=2e-2, **p)


def g_of_x(x, d=3e-9, r_on=50.0, r_off=1000.0):
    return 1.0 / (r_off * x / d + r_on * (1 - x / d))


def test_vteam_subthreshold_pulses_change_nothing():
    c = vteam_card(v_up=-0.199, v_down=0.0199, c2c_sigma=0.2)
    g0 = 5e-3
    g = pm.response_curve(c, (1000, 1000), g0=g0)
    assert np.all(g == g[0]) and g[0] == pytest.approx(g0, rel=1e-12)


def test_vteam_suprathreshold_matches_integrated_rate_equation():
    c = vteam_card()
    d = VT["d"]
    x0 = 0.6 * d
    g0 = g_of_x(x0)
    g = pm.response_curve(c, (1000, 1000), g0=g0, noise=False)
    rate_on = -10.0 * (0.21 / 0.2 - 1) ** 3  # m/s, x shrinks: SET
    rate_off = 5e-4 * (0.03 / 0.02 - 1)
    n = np.arange(1001)
    x_up = np.clip(x0 + n * rate_on * 10e-9, 0, d)
    np.testing.assert_allclose(g[:1001], g_of_x(x_up), rtol=1e-9)
    x_dn = np.clip(x_up[-1] + n * rate_off * 50e-9, 0, d)
    np.testing.assert_allclose(g[1000:], g_of_x(x_dn), rtol=1e-9)
    assert g[1000] == pytest.approx(2e-2) and g[-1] == pytest.approx(1e-3)
    # amplitude and width matter: double width doubles the move, -0.22 V moves 8x as far as -0.21 V
    one = pm.response_curve(c, [1], g0=g0, noise=False)
    wide = pm.response_curve(vteam_card(t_up=20e-9), [1], g0=g0, noise=False)
    strong = pm.response_curve(vteam_card(v_up=-0.22), [1], g0=g0, noise=False)
    x = lambda gg: d * (1 / gg - 50.0) / 950.0  # noqa: E731
    dx1 = x(one[1]) - x0
    assert x(wide[1]) - x0 == pytest.approx(2 * dx1, rel=1e-9)
    assert x(strong[1]) - x0 == pytest.approx(8 * dx1, rel=1e-6)


def test_vteam_biolek_window_matches_ode_solution():
    q = 2.0  # window_p = 1
    c = vteam_card(window="biolek", window_p=1.0, substeps=8)
    d = VT["d"]
    x0 = 0.7 * d
    g = pm.response_curve(c, (300, 300), g0=g_of_x(x0), noise=False)
    rate_on = -10.0 * (0.21 / 0.2 - 1) ** 3
    rate_off = 5e-4 * 0.5

    def rhs(rate):
        def f(t, x):
            w = min(max(x[0] / d, 0.0), 1.0)
            return [rate * (1 - (w**q if rate > 0 else (1 - w) ** q))]
        return f

    t_on = np.arange(301) * 10e-9
    sol = solve_ivp(rhs(rate_on), (0, t_on[-1]), [x0], t_eval=t_on, rtol=1e-12, atol=1e-24, method="DOP853")
    np.testing.assert_allclose(g[:301], g_of_x(sol.y[0]), rtol=1e-8)
    t_off = np.arange(301) * 50e-9
    sol2 = solve_ivp(rhs(rate_off), (0, t_off[-1]), [sol.y[0][-1]], t_eval=t_off, rtol=1e-12, atol=1e-24,
                     method="DOP853")
    np.testing.assert_allclose(g[300:], g_of_x(sol2.y[0]), rtol=1e-8)


# ------------------------------------------------------------------------------ noise


def test_c2c_noise_relative_to_step_has_the_configured_spread():
    sigma, n = 0.2, 200_000
    c = card("softbounds", dw_min=1e-8, c2c_sigma=sigma)
    pr = make_programmer(c, "deterministic", [(n,)], seed=3)
    gm = 0.5 * (G0 + G1)
    params = [np.full(n, gm)]
    pr.initialize(params)
    pr.program(params, [np.full(n, pr.step_up)])  # exactly one pulse each
    step = params[0] - gm
    nominal = 2e-8 / SPAN * (G1 - gm)
    assert np.mean(step) == pytest.approx(nominal, abs=4 * sigma * nominal / math.sqrt(n))
    rel_sd = np.std(step) / nominal
    assert rel_sd == pytest.approx(sigma, abs=4 * sigma / math.sqrt(2 * n))


def test_c2c_noise_relative_to_range_as_neurosim():
    c = load_card("memristor", "agsi")  # 3.5 % of the range per pulse
    n = 100_000
    pr = make_programmer(c, "deterministic", [(n,)], seed=4)
    lo, hi = c.g_min, c.g_max
    a = pm.a_of_nl(2.4) * 97
    g_mid = neurosim_formula(48, a, 97, lo, hi)
    params = [np.full(n, g_mid)]
    pr.initialize(params)
    assert np.all(params[0] == params[0][0]) and params[0][0] == pytest.approx(g_mid, rel=1e-12)
    pr.program(params, [np.full(n, pr.step_up)])
    dev = params[0] - neurosim_formula(49, a, 97, lo, hi)
    sd = 0.035 * (hi - lo)
    assert np.mean(dev) == pytest.approx(0.0, abs=4 * sd / math.sqrt(n))
    assert np.std(dev) == pytest.approx(sd, rel=4 / math.sqrt(2 * n))


@numba.njit
def _normal_moments(key, n, edges, counts):
    m1 = m2 = m4 = 0.0
    for c in range(n):
        z = pm.gauss(key, c)
        m1 += z
        m2 += z * z
        m4 += z**4
        for j in range(edges.size):
            if abs(z) > edges[j]:
                counts[j] += 1
    return m1 / n, m2 / n, m4 / n


def test_counter_based_normals_are_standard():
    n = 20_000_000
    edges = np.array([1.0, 2.0, 3.0, 3.25, 3.44, 4.0])
    counts = np.zeros(edges.size, dtype=np.int64)
    m1, m2, m4 = _normal_moments(np.uint64(pm.stream_key(7, pm.STREAM_C2C, 11)), n, edges, counts)
    assert abs(m1) < 5 / math.sqrt(n) and m2 == pytest.approx(1.0, abs=5 * math.sqrt(2 / n))
    assert m4 == pytest.approx(3.0, abs=5 * math.sqrt(96 / n))
    p = 2 * stats.norm.sf(edges)  # the tails, where a ziggurat goes wrong
    np.testing.assert_array_less(np.abs(counts / n - p), 5 * np.sqrt(p * (1 - p) / n))
    # consecutive draws are independent
    key = pm.stream_key(1, pm.STREAM_C2C, 2)
    z = np.array([pm.gauss(key, c) for c in range(20_000)])
    assert abs(np.corrcoef(z[:-1], z[1:])[0, 1]) < 5 / math.sqrt(z.size)


# ------------------------------------------------------------------------------ cards


def test_every_bundled_card_builds_and_programs():
    names = available_cards("memristor")["memristor"]
    assert {"ideal", "agsi", "taox_hfox", "pcmo", "alox_hfo2", "softbounds", "vteam"} <= set(names)
    for name in names:
        c = load_card("memristor", name)
        assert isinstance(c, MemristorCard) and c.source
        for scheme in ("ideal", "deterministic", "stochastic"):
            pr = make_programmer(c, scheme, [(6, 5), (5,)], seed=1)
            rng = np.random.default_rng(0)
            params = [rng.uniform(c.g_min, c.g_max, (6, 5)), rng.uniform(c.g_min, c.g_max, 5)]
            pr.initialize(params)
            for _ in range(5):
                dg = [rng.normal(0, 20 * pr.step_up, p.shape) for p in params]
                out = pr.program(params, dg)
                assert out["pulses"] == sum(out["pulses_per_array"]) >= 0 and out["energy"] >= 0
                for p in params:
                    assert np.all((p >= c.g_min) & (p <= c.g_max)), name


def base_card(**kw):
    d = dict(kind="memristor", name="bad", source="test", model="neurosim", g_min=3e-9, g_max=3.8e-8,
             levels_up=97, levels_down=100, nl_up=2.4, nl_down=-4.88, v_up=3.2, t_up=3e-4, v_down=-2.8,
             t_down=3e-4, breakdown_voltage=5.0)
    d.update(kw)
    return d


@pytest.mark.parametrize("changes, field", [
    (dict(g_min=4e-8), "g_min"),
    (dict(model="memristive"), "model"),
    (dict(t_up=-3e-4), "t_up"),
    (dict(t_down=0.0), "t_down"),
    (dict(levels_up=-5), "levels_up"),
    (dict(levels_down=0), "levels_down"),
    (dict(levels_up=9.5), "levels_up"),
    (dict(v_up=6.0), "v_up"),
    (dict(v_down=-5.5), "v_down"),
    (dict(nl_up=12.0), "nl_up"),
    (dict(c2c_sigma=-0.1), "c2c_sigma"),
    (dict(c2c_reference="weight"), "c2c_reference"),
    (dict(p_stuck_min=0.7, p_stuck_max=0.6), "p_stuck_max"),
    (dict(drift_model="exponential"), "drift_tau"),
    (dict(drift_rest=1.0), "drift_rest"),
    (dict(c2c_sigmaa=0.1), "c2c_sigmaa"),
    (dict(nl_down=None), "nl_down"),
])
def test_bad_cards_raise_card_error_naming_the_field(changes, field):
    d = base_card(**changes)
    d = {k: v for k, v in d.items() if v is not None}
    with pytest.raises(CardError) as info:
        card_from_dict("memristor", d)
    msg = str(info.value)
    assert "'bad'" in msg and field in msg


@pytest.mark.parametrize("model, params, field", [
    ("softbounds", dict(dw_min=-1e-9), "dw_min"),
    ("softbounds", dict(dw_min=6e-6), "dw_min"),
    ("softbounds", dict(dw_min=1e-8, up_down=1.5), "up_down"),
    ("expstep", dict(dw_min=1e-8, gamma_up=-1.0, gamma_down=1.0), "gamma_up"),
    ("powstep", dict(dw_min=1e-8, gamma_up=1.0), "gamma_down"),
    ("piecewise", dict(table_up=[1e-8, 1e-8], table_down=[1e-8]), "table_down"),
    ("piecewise", dict(table_up=[1e-8, -1e-8], table_down=[1e-8, 1e-8]), "table_up"),
    ("piecewise", dict(table_g=[1e-7, 1e-6, 1e-6], table_up=[1e-8] * 3, table_down=[1e-8] * 3), "table_g"),
    ("linear", dict(levels=0), "levels"),
    ("vteam", dict(VT, k_on=10.0, v_up=-0.3, v_down=0.1, t_up=1e-9, t_down=1e-9), "k_on"),
    ("vteam", dict(VT, v_up=-0.3, v_down=0.1, t_up=1e-9), "t_down"),
    ("vteam", dict(VT, v_up=-0.3, v_down=0.1, t_up=1e-9, t_down=1e-9, window="joglekar"), "window"),
])
def test_bad_model_params(model, params, field):
    with pytest.raises(CardError) as info:
        card(model, **params)
    assert field in str(info.value) and "test_" + model in str(info.value)


def test_overrides_are_checked_too():
    with pytest.raises(CardError, match="v_up"):
        make_programmer("vteam", "deterministic", [(2,)], seed=0, v_up=-1.5)  # breakdown 1 V
    with pytest.raises(CardError, match="c2c_sigma"):
        make_programmer("softbounds", "deterministic", [(2,)], seed=0, c2c_sigma=-1)
