"""Memristor programming-pulse physics: Numba kernels and the card-to-array conversion.

A device has one float state ``x``. A programming pulse (polarity, amplitude in volts, width in
seconds, one standard-normal noise draw) maps ``x`` to a new state through the device model; the
state gives the conductance in siemens, which never leaves the device's window ``[lo, hi]``, itself
inside the card's ``[g_min, g_max]``. "Up" (potentiation, SET) pulses raise ``G``, "down"
(depression, RESET) pulses lower it.

Models (card key ``model``); ``u = (G - lo)/(hi - lo)`` is the position in the window:

============  ============  ====================================================================
model         state         one noise-free pulse
============  ============  ====================================================================
linear        G (S)         ``G +- s``: constant step ``s`` (S); ``levels`` quantises the window
softbounds    G (S)         up ``a_up*(hi - G)``, down ``a_dn*(G - lo)``; ``a = 2*dw/(hi - lo)``,
                            so ``dw`` is the step at mid-window (IBM aihwkit SoftBoundsDevice)
expstep       G (S)         up ``dw_up*exp(gamma_up*(1/2 - u))``, down ``dw_dn*exp(gamma_dn*(u - 1/2))``
powstep       G (S)         up ``dw_up*(2*(1 - u))**gamma_up``, down ``dw_dn*(2*u)**gamma_dn``
piecewise     G (S)         step read from a measured table (``table_g``, ``table_up``,
                            ``table_down``, siemens), linearly interpolated in ``G``
neurosim      G (S)         NeuroSim's curve ``G(P) = B*(1 - exp(-P/A)) + lo``,
                            ``B = (hi - lo)/(1 - exp(-P_max/A))``, ``A = a(NL)*P_max``: an up
                            pulse moves the pulse number ``P = G^-1(G)`` of the up curve by +1
                            (at most ``P_max = levels_up``), a down pulse moves ``P`` of the down
                            curve by -1 (at least 0). Negative ``NL`` gives negative ``A``: the
                            curvature flips. ``NL = 0`` is the straight line.
vteam         x (m), [0, D] VTEAM threshold rate ``dx/dt = k_off*(v/v_off - 1)**a_off`` for
                            ``v > v_off > 0``, ``k_on*(v/v_on - 1)**a_on`` for ``v < v_on < 0``
                            (``k_on < 0``), zero between; integrated over the rectangular pulse
                            (closed form without window, RK4 substeps with the Biolek window).
                            ``R = R_off*x/D + R_on*(1 - x/D)`` with ``R_on = 1/hi``,
                            ``R_off = 1/lo``: ``x = 0`` is ON (``G = hi``), so SET pulses are
                            negative (below ``v_on``) and RESET pulses positive.
============  ============  ====================================================================

NeuroSim's nonlinearity label: ``a(NL)`` solves ``max_p (g_a(p) - p) = 0.07*sqrt(2)*|NL|`` for the
normalised curve ``g_a(p) = (1 - exp(-p/a))/(1 - exp(-1/a))`` on ``p in [0, 1]``: the largest
distance between the curve and the straight line, measured perpendicular to it, is ``0.07*NL``.
This rule (inferred here from NeuroSim's table, which does not state it) reproduces the tabulated
``a`` of MLP_NeuroSim V3's ``getParamA`` (a(0.5)=2.5199, a(1)=1.2517, a(2)=0.6090, a(3)=0.3868,
a(9)=0.0228, and every entry from 0.01 to 9) to its six digits; it is defined for
``|NL| < 1/(0.07*sqrt(2)) = 10.10``.

Card keys (``params``; S, V, s, m): linear ``levels`` or ``dw_min`` (neither: the programmer's
step, default range/1000); softbounds ``dw_min``, ``up_down`` (up step ``dw_min*(1 + up_down)``,
down ``dw_min*(1 - up_down)``); expstep/powstep the same plus ``gamma_up``, ``gamma_down``;
piecewise ``table_up``, ``table_down`` and optional ``table_g`` (default: equally spaced nodes);
neurosim ``levels_up``, ``levels_down``, ``nl_up``, ``nl_down``; vteam ``d``, ``k_on``, ``k_off``,
``alpha_on``, ``alpha_off``, ``v_on``, ``v_off``, ``window`` ("none" or "biolek"), ``window_p``
(Biolek exponent ``2p``), ``substeps``. Unknown keys are errors.

Non-idealities, every model:

- cycle-to-cycle noise ``c2c_sigma``: each pulse's step is ``step*(1 + sigma*xi)``
  (``c2c_reference = "step"``, as aihwkit's ``dw_min_std``) or ``step + sigma*(hi - lo)*xi``
  (``"range"``: NeuroSim's definition, a fraction of the conductance range per pulse, so a train
  of ``n`` pulses spreads by ``sigma*range*sqrt(n)``); for vteam the range is ``D``. The result
  is clipped to the window. A pulse that does nothing (sub-threshold) draws no noise.
- device-to-device spread, drawn once per device from the seed ("fabrication"): ``dw_min_dtod``
  (relative, on the steps; ``k_dtod`` for vteam), ``up_down_dtod`` (absolute, on the up/down
  asymmetry), ``gamma_dtod`` (relative, exp/pow shapes), ``nl_dtod`` (absolute, on NeuroSim's NL
  labels, as NeuroSim's ``sigmaDtoD``), ``v_th_dtod`` (relative, vteam thresholds),
  ``bounds_dtod`` (the window of each device shrinks from each end by ``bounds_dtod*range*|N(0,1)|``,
  at most a quarter of the range: the card's bounds stay hard limits), ``drift_dtod`` (relative,
  on the drift rate or exponent).
- stuck devices: ``p_stuck_min``, ``p_stuck_max`` (probabilities); a stuck device holds exactly
  ``g_min`` or ``g_max`` whatever it is sent (its pulses are still counted and cost energy).
- read noise ``read_noise``: the circuit sees ``G*(1 + read_noise*N(0,1))`` (at least 0), drawn
  afresh at every read; the state does not change.
- retention drift between epochs (``drift_model``): ``"exponential"``:
  ``G -> G_rest + (G - G_rest)*exp(-dt/drift_tau)``; ``"powerlaw"``:
  ``G -> G_rest + (G - G_rest)*((age + dt + t0)/(age + t0))**(-drift_nu)`` where ``age`` is the
  time since the device was last pulsed and ``t0 = drift_t0``. ``G_rest = drift_rest`` (S, default
  ``g_min``). Both compose: two drifts of ``dt1`` and ``dt2`` equal one of ``dt1 + dt2``.

Pulses: ``v_up``, ``t_up``, ``v_down``, ``t_down`` (volts, seconds; default +1 V / -1 V, 100 ns)
and an optional ``breakdown_voltage``. The energy of one pulse is ``V**2 * t * (G_before +
G_after)/2`` joules.

Random numbers are counter-based: splitmix64 hashes of the seed, a stream, the device's index and
its own pulse counter, turned into normals by the ziggurat method. Results do not depend on the
number of threads or on how trains are split across calls, and resuming needs only the counters.
"""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np
from numba import prange

from memsim.jit import njit, pjit

MODELS = ("linear", "softbounds", "expstep", "powstep", "piecewise", "neurosim", "vteam")
M_LINEAR, M_SOFT, M_EXP, M_POW, M_PIECE, M_NEURO, M_VTEAM = range(7)
MODEL_CODES = {name: i for i, name in enumerate(MODELS)}

# per-device parameter columns (rows of the ``dp`` array)
C_LO, C_HI, C_SU, C_SD, C_QU, C_QD, C_DRIFT, C_AUX = range(8)
N_DEV_PARAMS = 8
# meaning of C_SU/C_SD/C_QU/C_QD per model:
#   linear     step up (S), step down (S), -, -
#   softbounds a_up, a_dn (1/pulse), -, -
#   expstep    dw_up*exp(gamma_up/2), dw_dn*exp(gamma_dn/2) (S), gamma_up, gamma_dn
#   powstep    dw_up*2**gamma_up, dw_dn*2**gamma_dn (S), gamma_up, gamma_dn
#   piecewise  multiplier of the up table, of the down table, -, -
#   neurosim   A_up, A_dn (pulses; 0 = straight line), P_max up, P_max down
#   vteam      k_off (m/s, > 0), |k_on| (m/s), v_on (V, < 0), v_off (V, > 0)

# global constants (the ``gc`` array)
K_SIGMA, K_REF, K_D, K_AON, K_AOFF, K_WIN, K_WQ, K_SUB, K_GMIN, K_GMAX, K_SNAP = range(11)
N_CONST = 12

# random streams
STREAM_C2C, STREAM_BINOM, STREAM_READ, STREAM_ROW, STREAM_COL = 1, 2, 3, 4, 5

NL_SCALE = 0.07 * math.sqrt(2.0)  # max (curve - line) per unit of NeuroSim's NL label
NL_MAX = 1.0 / NL_SCALE  # 10.10...

STUCK_NONE, STUCK_MIN, STUCK_MAX = 0, 1, 2
DRIFT_MODELS = ("none", "exponential", "powerlaw")

# --------------------------------------------------------------------------------------------
# counter-based random numbers

_GOLD = np.uint64(0x9E3779B97F4A7C15)
_MIX1 = np.uint64(0xBF58476D1CE4E5B9)
_MIX2 = np.uint64(0x94D049BB133111EB)
_ALT = np.uint64(0xD1B54A32D192ED03)
_TWO53 = 1.0 / 9007199254740992.0


@njit
def mix64(z):
    """splitmix64 finaliser of a uint64 (a bijection with full avalanche)."""
    z = z ^ (z >> np.uint64(30))
    z = z * _MIX1
    z = z ^ (z >> np.uint64(27))
    z = z * _MIX2
    return z ^ (z >> np.uint64(31))


@njit
def stream_key(seed, stream, index):
    """Key of the random stream ``stream`` of item ``index`` (a device, a row) for ``seed``."""
    z = mix64(np.uint64(seed) + np.uint64(stream) * _GOLD)
    return mix64(z ^ (np.uint64(index) * _ALT + _GOLD))


@njit
def uniform(key, counter):
    """The ``counter``-th uniform in [0, 1) of stream ``key`` (53 bits)."""
    h = mix64(np.uint64(key) + (np.uint64(counter) + np.uint64(1)) * _GOLD)
    return np.float64(h >> np.uint64(11)) * _TWO53


def _ziggurat_tables(layers=128, r=3.442619855899, v=9.91256303526217e-3):
    """Layer edges ``x`` and edge ratios of Marsaglia & Tsang's normal ziggurat (128 layers)."""
    x = np.zeros(layers + 1)
    f = lambda t: math.exp(-0.5 * t * t)  # noqa: E731
    x[0] = v / f(r)
    x[1] = r
    for i in range(2, layers):
        x[i] = math.sqrt(-2.0 * math.log(v / x[i - 1] + f(x[i - 1])))
    x[layers] = 0.0
    return x, x[1:] / x[:-1]


_ZIG_X, _ZIG_RATIO = _ziggurat_tables()
_ZIG_R = 3.442619855899


@njit
def gauss(key, counter):
    """The ``counter``-th standard normal of stream ``key``.

    Ziggurat method (Marsaglia & Tsang 2000, in Doornik's ZIGNOR form, 128 layers): one hash per
    normal on the fast path (98.8 %); the rare slow paths hash ``(key, counter, attempt)`` further,
    so the draw depends on nothing but its position in the stream.
    """
    s0 = np.uint64(key) + (np.uint64(counter) + np.uint64(1)) * _GOLD
    a = np.uint64(0)
    while True:
        h = mix64(s0 ^ (a * _ALT))
        a += np.uint64(1)
        i = np.int64(h & np.uint64(127))
        u = 2.0 * (np.float64(h >> np.uint64(11)) + 0.5) * _TWO53 - 1.0  # (-1, 1)
        if abs(u) < _ZIG_RATIO[i]:
            return u * _ZIG_X[i]
        h2 = mix64(h ^ _MIX2)
        if i == 0:  # the tail beyond R: sample it until accepted (Marsaglia's tail method)
            while True:
                u1 = (np.float64(h2 >> np.uint64(11)) + 0.5) * _TWO53
                h3 = mix64(h2 ^ _MIX1)
                u2 = (np.float64(h3 >> np.uint64(11)) + 0.5) * _TWO53
                t = -math.log(u1) / _ZIG_R
                if -2.0 * math.log(u2) >= t * t:
                    return t + _ZIG_R if u < 0.0 else -(t + _ZIG_R)
                h2 = mix64(h3 ^ _MIX2)
        xx = u * _ZIG_X[i]
        f0 = math.exp(-0.5 * (_ZIG_X[i] * _ZIG_X[i] - xx * xx))
        f1 = math.exp(-0.5 * (_ZIG_X[i + 1] * _ZIG_X[i + 1] - xx * xx))
        u3 = (np.float64(h2 >> np.uint64(11)) + 0.5) * _TWO53
        if f1 + u3 * (f0 - f1) < 1.0:
            return xx


@njit
def gauss_quick(key, counter):
    """:func:`gauss`, with the ziggurat's fast path small enough to inline in a pulse loop."""
    h = mix64(np.uint64(key) + (np.uint64(counter) + np.uint64(1)) * _GOLD)
    i = np.int64(h & np.uint64(127))
    u = 2.0 * (np.float64(h >> np.uint64(11)) + 0.5) * _TWO53 - 1.0
    if abs(u) < _ZIG_RATIO[i]:
        return u * _ZIG_X[i]
    return gauss(key, counter)


@njit
def binomial_inverse(trials, p, u):
    """Binomial(trials, p) sample by inversion of the uniform ``u``."""
    if p <= 0.0:
        return 0
    if p >= 1.0:
        return trials
    q = 1.0 - p
    pmf = q**trials
    cdf = pmf
    ratio = p / q
    k = 0
    while u >= cdf and k < trials:
        pmf *= (trials - k) / (k + 1.0) * ratio
        k += 1
        cdf += pmf
    return k


@njit
def popcount64(x):
    """Number of set bits of a uint64."""
    x = x - ((x >> np.uint64(1)) & np.uint64(0x5555555555555555))
    x = (x & np.uint64(0x3333333333333333)) + ((x >> np.uint64(2)) & np.uint64(0x3333333333333333))
    x = (x + (x >> np.uint64(4))) & np.uint64(0x0F0F0F0F0F0F0F0F)
    return np.int64((x * np.uint64(0x0101010101010101)) >> np.uint64(56))


# --------------------------------------------------------------------------------------------
# scalar device physics


@njit
def neurosim_b(a, p_max, lo, hi):
    """NeuroSim's ``B = (hi - lo)/(1 - exp(-P_max/A))`` (S); ``a = 0`` (straight line) gives 0."""
    if a == 0.0:
        return 0.0
    return (hi - lo) / (-math.expm1(-p_max / a))


@njit
def neurosim_conductance_b(p, a, b, p_max, lo, hi):
    """:func:`neurosim_conductance` with ``B`` given."""
    if p <= 0.0:
        return lo
    if p >= p_max:
        return hi
    if a == 0.0:
        return lo + (hi - lo) * p / p_max
    return lo + b * (-math.expm1(-p / a))


@njit
def neurosim_pulse_number_b(g, a, b, p_max, lo, hi):
    """:func:`neurosim_pulse_number` with ``B`` given."""
    if a == 0.0:
        p = p_max * (g - lo) / (hi - lo)
    else:
        y = (g - lo) / b
        if y >= 1.0:
            return p_max
        p = -a * math.log1p(-y)
    r = math.floor(p + 0.5)
    if abs(p - r) < 1e-9:  # a level, up to rounding of the inversion: keep pulse numbers integral
        p = r
    if p < 0.0:
        p = 0.0
    elif p > p_max:
        p = p_max
    return p


@njit
def neurosim_conductance(p, a, p_max, lo, hi):
    """NeuroSim curve: conductance (S) after ``p`` pulses; ``a`` in pulses (0: straight line).

    Exactly ``lo`` at ``p <= 0`` and ``hi`` at ``p >= p_max``."""
    return neurosim_conductance_b(p, a, neurosim_b(a, p_max, lo, hi), p_max, lo, hi)


@njit
def neurosim_pulse_number(g, a, p_max, lo, hi):
    """Inverse of :func:`neurosim_conductance`: the pulse number of conductance ``g`` (S),
    snapped to the nearest integer when within 1e-9 of it (levels stay exact)."""
    return neurosim_pulse_number_b(g, a, neurosim_b(a, p_max, lo, hi), p_max, lo, hi)


@njit
def neurosim_step(g, pol, a, b, p_max, lo, hi):
    """Conductance change (S) of one NeuroSim pulse from ``g`` on the curve ``(a, b, p_max)``."""
    if pol > 0:
        p = neurosim_pulse_number_b(g, a, b, p_max, lo, hi) + 1.0
    else:
        p = neurosim_pulse_number_b(g, a, b, p_max, lo, hi) - 1.0
    return neurosim_conductance_b(p, a, b, p_max, lo, hi) - g


@njit
def vteam_rate(v, k_off, k_on_mag, v_on, v_off, a_on, a_off):
    """VTEAM ``dx/dt`` (m/s) at a constant voltage ``v`` (V); zero between the thresholds."""
    if v > v_off:
        return k_off * (v / v_off - 1.0) ** a_off
    if v < v_on:
        return -k_on_mag * (v / v_on - 1.0) ** a_on
    return 0.0


@njit
def _biolek(x, rate, d, q):
    w = x / d
    if w < 0.0:
        w = 0.0
    elif w > 1.0:
        w = 1.0
    if rate > 0.0:
        return 1.0 - w**q
    return 1.0 - (1.0 - w) ** q


@njit
def vteam_displacement(x, rate, t, d, window, q, substeps):
    """State change (m) over a rectangular pulse of ``t`` seconds at constant ``rate`` (m/s).

    ``window = 0``: ``rate*t`` exactly; ``window = 1``: Biolek window ``1 - (x/D)**q`` when ``x``
    grows, ``1 - (1 - x/D)**q`` when it shrinks, integrated by ``substeps`` RK4 steps.
    """
    if rate == 0.0:
        return 0.0
    if window == 0:
        return rate * t
    h = t / substeps
    y = x
    for _ in range(substeps):
        k1 = rate * _biolek(y, rate, d, q)
        k2 = rate * _biolek(y + 0.5 * h * k1, rate, d, q)
        k3 = rate * _biolek(y + 0.5 * h * k2, rate, d, q)
        k4 = rate * _biolek(y + h * k3, rate, d, q)
        y += h * (k1 + 2.0 * k2 + 2.0 * k3 + k4) / 6.0
    return y - x


@njit
def table_interp(tg, tv, g):
    """Piecewise-linear ``tv(g)`` on the increasing nodes ``tg`` (constant beyond the ends)."""
    n = tg.size
    if g <= tg[0]:
        return tv[0]
    if g >= tg[n - 1]:
        return tv[n - 1]
    lo = 0
    hi = n - 1
    while hi - lo > 1:
        mid = (lo + hi) >> 1
        if tg[mid] <= g:
            lo = mid
        else:
            hi = mid
    w = (g - tg[lo]) / (tg[hi] - tg[lo])
    return tv[lo] + w * (tv[hi] - tv[lo])


@njit
def clip_window(g, lo, hi):
    """``g`` clipped to the device window ``[lo, hi]`` (S)."""
    if g < lo:
        return lo
    if g > hi:
        return hi
    return g


@njit
def conductance_of(model, x, dp, k, gc):
    """Conductance (S) of device ``k`` in state ``x``, inside its window ``[lo, hi]``."""
    lo = dp[k, C_LO]
    hi = dp[k, C_HI]
    if model == M_VTEAM:
        w = x / gc[K_D]
        g = 1.0 / (w / lo + (1.0 - w) / hi)
    else:
        g = x
    return clip_window(g, lo, hi)


@njit
def state_of(model, g, dp, k, gc):
    """State of device ``k`` at conductance ``g`` (S; clipped to the device window)."""
    lo = dp[k, C_LO]
    hi = dp[k, C_HI]
    g = clip_window(g, lo, hi)
    if model == M_VTEAM:
        d = gc[K_D]
        r_on = 1.0 / hi
        r_off = 1.0 / lo
        x = d * (1.0 / g - r_on) / (r_off - r_on)
        if x < 0.0:
            x = 0.0
        elif x > d:
            x = d
        return x
    return g


@njit
def device_conductance(model, x, stuck, dp, k, gc):
    """Conductance (S) including stuck-at faults."""
    if stuck == STUCK_MIN:
        return gc[K_GMIN]
    if stuck == STUCK_MAX:
        return gc[K_GMAX]
    return conductance_of(model, x, dp, k, gc)


@njit
def g_step(model, g, pol, lo, hi, su, sd, qu, qd, tab_g, tab_up, tab_dn):
    """Noise-free conductance step (S) of one pulse for the conductance-state models
    (linear, softbounds, expstep, powstep, piecewise, neurosim); ``su..qd`` are the device's
    ``C_SU..C_QD`` parameters."""
    if model == M_LINEAR:
        return su if pol > 0 else -sd
    if model == M_SOFT:
        return su * (hi - g) if pol > 0 else -sd * (g - lo)
    if model == M_EXP:
        u = (g - lo) / (hi - lo)
        if pol > 0:
            return su * math.exp(-qu * u)
        return -sd * math.exp(-qd * (1.0 - u))
    if model == M_POW:
        u = (g - lo) / (hi - lo)
        if u < 0.0:
            u = 0.0
        elif u > 1.0:
            u = 1.0
        if pol > 0:
            return su * (1.0 - u) ** qu
        return -sd * u**qd
    if model == M_PIECE:
        if pol > 0:
            return su * table_interp(tab_g, tab_up, g)
        return -sd * table_interp(tab_g, tab_dn, g)
    # neurosim
    if pol > 0:
        return neurosim_step(g, pol, su, neurosim_b(su, qu, lo, hi), qu, lo, hi)
    return neurosim_step(g, pol, sd, neurosim_b(sd, qd, lo, hi), qd, lo, hi)


@njit
def pulse_step(model, x, pol, v, t, xi, dp, k, gc, tab_g, tab_up, tab_dn):
    """New state of device ``k`` after one pulse.

    ``pol`` is +1 (up) or -1 (down), ``v`` the amplitude (V), ``t`` the width (s), ``xi`` the
    pulse's standard-normal draw. Only vteam uses ``v`` and ``t`` (its polarity is the sign of
    ``v``); the other models step by their step law whatever the amplitude.
    """
    lo = dp[k, C_LO]
    hi = dp[k, C_HI]
    sigma = gc[K_SIGMA]
    by_range = gc[K_REF] != 0.0
    if model == M_VTEAM:
        d = gc[K_D]
        rate = vteam_rate(v, dp[k, C_SU], dp[k, C_SD], dp[k, C_QU], dp[k, C_QD], gc[K_AON], gc[K_AOFF])
        if rate == 0.0:
            return x
        dx = vteam_displacement(x, rate, t, d, int(gc[K_WIN]), gc[K_WQ], int(gc[K_SUB]))
        if by_range:
            xn = x + dx + sigma * d * xi
        else:
            xn = x + dx * (1.0 + sigma * xi)
        if xn < 0.0:
            xn = 0.0
        elif xn > d:
            xn = d
        return xn
    g = x
    step = g_step(model, g, pol, lo, hi, dp[k, C_SU], dp[k, C_SD], dp[k, C_QU], dp[k, C_QD], tab_g, tab_up, tab_dn)
    if by_range:
        gn = g + step + sigma * (hi - lo) * xi
    else:
        gn = g + step * (1.0 + sigma * xi)
    if gn < lo:
        gn = lo
    elif gn > hi:
        gn = hi
    return gn


@njit
def apply_train(model, x, pol, n, v, t, dp, k, gc, tab_g, tab_up, tab_dn, key, counter0):
    """``n`` identical pulses on device ``k`` from state ``x``: returns (new state, energy in J).

    Same result as ``n`` calls of :func:`pulse_step`, pulse ``j`` drawing the normal number
    ``counter0 + j`` of stream ``key``; its energy is ``v**2 * t * (G_before + G_after)/2``.
    """
    lo = dp[k, C_LO]
    hi = dp[k, C_HI]
    su = dp[k, C_SU]
    sd = dp[k, C_SD]
    qu = dp[k, C_QU]
    qd = dp[k, C_QD]
    sigma = gc[K_SIGMA]
    by_range = gc[K_REF] != 0.0
    half = 0.5 * v * v * t
    e = 0.0
    if model == M_VTEAM:
        d = gc[K_D]
        rate = vteam_rate(v, su, sd, qu, qd, gc[K_AON], gc[K_AOFF])
        g_prev = conductance_of(model, x, dp, k, gc)
        if rate == 0.0:
            return x, n * 2.0 * half * g_prev
        win = int(gc[K_WIN])
        wq = gc[K_WQ]
        nsub = int(gc[K_SUB])
        for j in range(n):
            dx = vteam_displacement(x, rate, t, d, win, wq, nsub)
            if sigma > 0.0:
                xi = gauss_quick(key, counter0 + j)
                if by_range:
                    x = x + dx + sigma * d * xi
                else:
                    x = x + dx * (1.0 + sigma * xi)
            else:
                x = x + dx
            if x < 0.0:
                x = 0.0
            elif x > d:
                x = d
            g = conductance_of(model, x, dp, k, gc)
            e += half * (g_prev + g)
            g_prev = g
        return x, e
    g = x
    if g < lo:
        g = lo
    elif g > hi:
        g = hi
    noise = sigma * (hi - lo) if by_range else sigma
    # NeuroSim: this train's curve, once
    na = su if pol > 0 else sd
    npm = qu if pol > 0 else qd
    nb = neurosim_b(na, npm, lo, hi) if model == M_NEURO else 0.0
    for j in range(n):
        if model == M_NEURO:
            step = neurosim_step(g, pol, na, nb, npm, lo, hi)
        else:
            step = g_step(model, g, pol, lo, hi, su, sd, qu, qd, tab_g, tab_up, tab_dn)
        if sigma > 0.0:
            xi = gauss_quick(key, counter0 + j)
            if by_range:
                gn = g + step + noise * xi
            else:
                gn = g + step * (1.0 + noise * xi)
        else:
            gn = g + step
        if gn < lo:
            gn = lo
        elif gn > hi:
            gn = hi
        e += half * (g + gn)
        g = gn
    return g, e


# --------------------------------------------------------------------------------------------
# array kernels (flat arrays; ``id0`` is the global index of element 0, for the random streams)


@njit
def _pulse_device(model, x, stuck, dp, gc, tab_g, tab_up, tab_dn, count, age, npulse, pol,
                  v_up, t_up, v_dn, t_dn, seed, id0, g_out, e_out, k):
    n = npulse[k]
    e = 0.0
    if n > 0:
        if pol[k] > 0:
            v = v_up
            t = t_up
        else:
            v = v_dn
            t = t_dn
        if stuck[k] != STUCK_NONE:
            e = n * v * v * t * device_conductance(model, x[k], stuck[k], dp, k, gc)
        else:
            key = stream_key(seed, STREAM_C2C, id0 + k)
            xn, e = apply_train(model, x[k], pol[k], n, v, t, dp, k, gc, tab_g, tab_up, tab_dn, key, count[k])
            x[k] = xn
            age[k] = 0.0
        count[k] += n
    e_out[k] = e
    g_out[k] = device_conductance(model, x[k], stuck[k], dp, k, gc)


@pjit
def apply_pulses(model, x, stuck, dp, gc, tab_g, tab_up, tab_dn, count, age, npulse, pol,
                 v_up, t_up, v_dn, t_dn, seed, id0, g_out, e_out):
    """Apply ``npulse[k]`` pulses of polarity ``pol[k]`` to every device ``k`` (in parallel).

    Updates the states ``x``, the cumulative pulse counters ``count`` and the ages (time since
    the last pulse, s); writes the conductances (S) to ``g_out`` and each device's energy (J) to
    ``e_out``. Stuck devices take their pulses without moving. The pulse amplitudes ``v_up``,
    ``v_dn`` are in volts, the widths ``t_up``, ``t_dn`` in seconds; ``seed`` and ``id0`` (the
    global index of element 0) key the noise.
    """
    for k in prange(x.size):
        _pulse_device(model, x, stuck, dp, gc, tab_g, tab_up, tab_dn, count, age, npulse, pol,
                      v_up, t_up, v_dn, t_dn, seed, id0, g_out, e_out, k)


@njit
def apply_pulses_serial(model, x, stuck, dp, gc, tab_g, tab_up, tab_dn, count, age, npulse, pol,
                        v_up, t_up, v_dn, t_dn, seed, id0, g_out, e_out):
    """:func:`apply_pulses` on one thread (small arrays: no thread start-up)."""
    for k in range(x.size):
        _pulse_device(model, x, stuck, dp, gc, tab_g, tab_up, tab_dn, count, age, npulse, pol,
                      v_up, t_up, v_dn, t_dn, seed, id0, g_out, e_out, k)


@njit
def _count_deterministic(dG, resid, step_up, step_dn, n_max, carry, npulse, pol, k):
    target = dG[k] + resid[k]
    if target > 0.0:
        s = step_up
        p = 1
    elif target < 0.0:
        s = step_dn
        p = -1
    else:
        s = step_up
        p = 0
    m = math.floor(abs(target) / s + 0.5)
    r = target - p * m * s
    if m > n_max:
        m = n_max
    npulse[k] = np.int64(m)
    pol[k] = p
    resid[k] = r if carry else 0.0


@pjit
def counts_deterministic(dG, resid, step_up, step_dn, n_max, carry, npulse, pol):
    """Pulse counts ``round(|dG + residue|/step)`` (capped at ``n_max``) and signs (S in, counts out).

    The residue below half a step is kept in ``resid`` when ``carry`` (else zeroed); what a cap
    cuts off is dropped.
    """
    for k in prange(dG.size):
        _count_deterministic(dG, resid, step_up, step_dn, n_max, carry, npulse, pol, k)


@njit
def counts_deterministic_serial(dG, resid, step_up, step_dn, n_max, carry, npulse, pol):
    """:func:`counts_deterministic` on one thread."""
    for k in range(dG.size):
        _count_deterministic(dG, resid, step_up, step_dn, n_max, carry, npulse, pol, k)


@njit
def _count_stochastic(dG, step_up, step_dn, bl, seed, id0, update, npulse, pol, k):
    d = dG[k]
    n = 0
    p = 0
    if d != 0.0:
        s = step_up if d > 0.0 else step_dn
        u = uniform(stream_key(seed, STREAM_BINOM, id0 + k), update)
        n = binomial_inverse(bl, abs(d) / (s * bl), u)
        p = 1 if d > 0.0 else -1
    npulse[k] = n
    pol[k] = p


@pjit
def counts_stochastic(dG, step_up, step_dn, bl, seed, id0, update, npulse, pol):
    """Pulse counts of the stochastic scheme: Binomial(bl, min(1, |dG|/(bl*step))) per device.

    This is the distribution of the coincidences a device sees when its row and column trains of
    ``bl`` slots fire with probabilities whose product is ``|dG|/(bl*step)``.
    """
    for k in prange(dG.size):
        _count_stochastic(dG, step_up, step_dn, bl, seed, id0, update, npulse, pol, k)


@njit
def counts_stochastic_serial(dG, step_up, step_dn, bl, seed, id0, update, npulse, pol):
    """:func:`counts_stochastic` on one thread."""
    for k in range(dG.size):
        _count_stochastic(dG, step_up, step_dn, bl, seed, id0, update, npulse, pol, k)


@njit
def bernoulli_masks(prob, bl, key, counter0, out):
    """Bit trains: ``out[i]`` has bit ``b < bl`` set with probability ``prob[i]`` (uint64)."""
    for i in range(prob.size):
        m = np.uint64(0)
        p = prob[i]
        if p > 0.0:
            base = counter0 + i * bl
            for b in range(bl):
                if uniform(key, base + b) < p:
                    m |= np.uint64(1) << np.uint64(b)
        out[i] = m


@njit
def counts_coincidence(rmask, rsign, cmask, csign, npulse, pol):
    """Pulses of a rank-one stochastic update: coincidences of row ``i`` and column ``j`` trains."""
    nc = cmask.size
    for i in range(rmask.size):
        for j in range(nc):
            k = i * nc + j
            n = popcount64(rmask[i] & cmask[j])
            npulse[k] = n
            pol[k] = rsign[i] * csign[j] if n > 0 else 0


@njit
def apply_exact(model, x, stuck, dp, gc, dG, g_out):
    """Ideal programming: ``G <- clip(G + dG, lo, hi)`` exactly (stuck devices hold)."""
    if model == M_LINEAR:  # the state is the conductance: one clip per device (the training hot path)
        g_lo_stuck = gc[K_GMIN]
        g_hi_stuck = gc[K_GMAX]
        for k in range(x.size):
            st = stuck[k]
            if st == STUCK_NONE:
                g = clip_window(x[k] + dG[k], dp[k, C_LO], dp[k, C_HI])
                x[k] = g
                g_out[k] = g
            else:
                g_out[k] = g_lo_stuck if st == STUCK_MIN else g_hi_stuck
        return
    for k in range(x.size):
        if stuck[k] == STUCK_NONE and dG[k] != 0.0:
            g = conductance_of(model, x[k], dp, k, gc) + dG[k]
            x[k] = state_of(model, g, dp, k, gc)
        g_out[k] = device_conductance(model, x[k], stuck[k], dp, k, gc)


@njit
def set_states(model, g_in, stuck, dp, gc, x, g_out):
    """States from conductances (S), snapped to what each device can hold; writes ``g_out``.

    NeuroSim devices and linear devices with ``levels`` snap to their nearest level (NeuroSim: of
    the up curve, as if programmed from ``lo`` by up pulses); the others are continuous.
    """
    snap = gc[K_SNAP] != 0.0
    for k in range(x.size):
        lo = dp[k, C_LO]
        hi = dp[k, C_HI]
        if stuck[k] != STUCK_NONE:
            g = device_conductance(model, 0.0, stuck[k], dp, k, gc)
        else:
            g = g_in[k]
            if g < lo:
                g = lo
            elif g > hi:
                g = hi
            if model == M_NEURO:
                a = dp[k, C_SU]
                pm = dp[k, C_QU]
                p = math.floor(neurosim_pulse_number(g, a, pm, lo, hi) + 0.5)
                g = neurosim_conductance(p, a, pm, lo, hi)
            elif model == M_LINEAR and snap:
                s = dp[k, C_SU]
                g = lo + math.floor((g - lo) / s + 0.5) * s
                if g > hi:
                    g = hi
        x[k] = state_of(model, g, dp, k, gc)
        g_out[k] = device_conductance(model, x[k], stuck[k], dp, k, gc)


@njit
def states_to_conductances(model, x, stuck, dp, gc, g_out):
    """Conductances (S) of all devices."""
    for k in range(x.size):
        g_out[k] = device_conductance(model, x[k], stuck[k], dp, k, gc)


@njit
def read_conductances(g_in, sigma, seed, id0, counter, g_out):
    """Read-out ``G*(1 + sigma*N(0,1))`` (at least 0), the ``counter``-th read of each device."""
    for k in range(g_in.size):
        g = g_in[k]
        if sigma > 0.0:
            g = g * (1.0 + sigma * gauss(stream_key(seed, STREAM_READ, id0 + k), counter))
            if g < 0.0:
                g = 0.0
        g_out[k] = g


@njit
def apply_drift(model, x, stuck, dp, gc, age, dt, kind, tau, nu, t0, rest, g_out):
    """Retention drift over ``dt`` seconds toward ``rest`` siemens (``kind`` 1: exp, 2: power)."""
    for k in range(x.size):
        if stuck[k] == STUCK_NONE:
            g = conductance_of(model, x[k], dp, k, gc)
            if kind == 1:
                f = math.exp(-dt * dp[k, C_DRIFT] / tau)
            else:
                f = ((age[k] + dt + t0) / (age[k] + t0)) ** (-nu * dp[k, C_DRIFT])
            x[k] = state_of(model, rest + (g - rest) * f, dp, k, gc)
        age[k] += dt
        g_out[k] = device_conductance(model, x[k], stuck[k], dp, k, gc)


@njit
def response_kernel(model, x0, pols, v_up, t_up, v_dn, t_dn, dp, gc, tab_g, tab_up, tab_dn, key):
    """Conductance (S) of device 0 of ``dp`` before and after each pulse of ``pols`` (+1/-1/0)."""
    out = np.empty(pols.size + 1)
    x = x0
    out[0] = conductance_of(model, x, dp, 0, gc)
    for j in range(pols.size):
        p = pols[j]
        if p != 0:
            if p > 0:
                x, _ = apply_train(model, x, 1, 1, v_up, t_up, dp, 0, gc, tab_g, tab_up, tab_dn, key, j)
            else:
                x, _ = apply_train(model, x, -1, 1, v_dn, t_dn, dp, 0, gc, tab_g, tab_up, tab_dn, key, j)
        out[j + 1] = conductance_of(model, x, dp, 0, gc)
    return out


# --------------------------------------------------------------------------------------------
# NeuroSim's nonlinearity label


def _max_deviation(a):
    """``max_p (g_a(p) - p)`` of the normalised NeuroSim curve, for ``a > 0`` (array-friendly)."""
    a = np.asarray(a, dtype=float)
    c = -np.expm1(-1.0 / a)
    ac = a * c
    return (1.0 - ac) / c + a * np.log(ac)


def a_of_nl(nl):
    """NeuroSim's normalised ``A/P_max`` for nonlinearity label(s) ``nl`` (sign kept; 0 -> 0).

    Solves ``max_p (g_a(p) - p) = 0.07*sqrt(2)*|nl|`` by bisection in ``log a`` (see the module
    docstring); ``0`` stands for the straight line (``A = infinity``).
    """
    nl = np.asarray(nl, dtype=float)
    mag = np.abs(nl)
    if np.any(mag >= NL_MAX) or not np.all(np.isfinite(mag)):
        raise ValueError(f"NeuroSim nonlinearity labels must satisfy |NL| < {NL_MAX:.4f}")
    target = NL_SCALE * np.where(mag > 0, mag, 1.0)
    lo = np.full(mag.shape, math.log(1e-6))
    hi = np.full(mag.shape, math.log(1e9))
    for _ in range(120):  # the deviation falls monotonically with a
        mid = 0.5 * (lo + hi)
        too_curved = _max_deviation(np.exp(mid)) > target
        lo = np.where(too_curved, mid, lo)
        hi = np.where(too_curved, hi, mid)
    a = np.exp(0.5 * (lo + hi))
    out = np.where(mag > 0, np.sign(nl) * a, 0.0)
    return out if out.ndim else float(out)


def nl_of_a(a):
    """Inverse of :func:`a_of_nl` (signed)."""
    a = np.asarray(a, dtype=float)
    out = np.sign(a) * _max_deviation(np.abs(a)) / NL_SCALE
    return out if out.ndim else float(out)


# --------------------------------------------------------------------------------------------
# card validation (called by MemristorCard.check)

COMMON_KEYS = {
    "c2c_sigma", "c2c_reference", "p_stuck_min", "p_stuck_max", "read_noise",
    "drift_model", "drift_tau", "drift_nu", "drift_t0", "drift_rest", "drift_dtod",
    "v_up", "t_up", "v_down", "t_down", "breakdown_voltage", "bounds_dtod", "dw_min_dtod",
}
MODEL_KEYS = {
    "linear": ({"levels", "dw_min"}, set()),
    "softbounds": ({"dw_min", "up_down", "up_down_dtod"}, {"dw_min"}),
    "expstep": ({"dw_min", "up_down", "up_down_dtod", "gamma_up", "gamma_down", "gamma_dtod"},
                {"dw_min", "gamma_up", "gamma_down"}),
    "powstep": ({"dw_min", "up_down", "up_down_dtod", "gamma_up", "gamma_down", "gamma_dtod"},
                {"dw_min", "gamma_up", "gamma_down"}),
    "piecewise": ({"table_g", "table_up", "table_down"}, {"table_up", "table_down"}),
    "neurosim": ({"levels_up", "levels_down", "nl_up", "nl_down", "nl_dtod"},
                 {"levels_up", "levels_down", "nl_up", "nl_down"}),
    "vteam": ({"d", "k_on", "k_off", "alpha_on", "alpha_off", "v_on", "v_off", "window", "window_p",
               "substeps", "k_dtod", "v_th_dtod"},
              {"d", "k_on", "k_off", "alpha_on", "alpha_off", "v_on", "v_off", "v_up", "v_down", "t_up",
               "t_down"}),
}
PULSE_DEFAULTS = {"v_up": 1.0, "t_up": 1e-7, "v_down": -1.0, "t_down": 1e-7}
DEFAULT_LINEAR_STEPS = 1000  # an analog (levels-free) linear device: default step range/1000


class _Bad(Exception):
    def __init__(self, field, message):
        super().__init__(message)
        self.field, self.message = field, message


def _num(params, key, default=None, *, lo=None, hi=None, lo_open=False, hi_open=False, integer=False):
    v = params.get(key, default)
    if v is None:
        return None
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        raise _Bad(key, f"must be a number, got {v!r}")
    if integer and (not isinstance(v, int) and not float(v).is_integer()):
        raise _Bad(key, f"must be an integer, got {v!r}")
    v = float(v)
    if not math.isfinite(v):
        raise _Bad(key, f"must be finite, got {v!r}")
    if lo is not None and (v < lo or (lo_open and v == lo)):
        raise _Bad(key, f"must be {'>' if lo_open else '>='} {lo:g}, got {v!r}")
    if hi is not None and (v > hi or (hi_open and v == hi)):
        raise _Bad(key, f"must be {'<' if hi_open else '<='} {hi:g}, got {v!r}")
    return int(v) if integer else v


def _choice(params, key, choices, default):
    v = params.get(key, default)
    if v not in choices:
        raise _Bad(key, f"must be one of {', '.join(map(repr, choices))}, got {v!r}")
    return v


def _table(params, key, n=None):
    v = params.get(key)
    if v is None:
        return None
    try:
        arr = np.asarray(v, dtype=float)
    except (TypeError, ValueError):
        raise _Bad(key, f"must be a list of numbers, got {v!r}") from None
    if arr.ndim != 1 or arr.size < 2 or not np.all(np.isfinite(arr)):
        raise _Bad(key, "must be a list of at least 2 finite numbers")
    if n is not None and arr.size != n:
        raise _Bad(key, f"must have {n} entries (as the other tables), got {arr.size}")
    return arr


def validate_params(model: str, g_min: float, g_max: float, params: dict) -> None:
    """Check a memristor card's model and ``params``; raise ``_Bad(field, message)``."""
    if model not in MODEL_KEYS:
        raise _Bad("model", f"unknown model {model!r} (known: {', '.join(MODELS)})")
    allowed, required = MODEL_KEYS[model]
    unknown = sorted(set(params) - allowed - COMMON_KEYS)
    if unknown:
        raise _Bad(unknown[0], f"unknown parameter for model {model!r} (allowed: "
                   f"{', '.join(sorted(allowed | COMMON_KEYS))})")
    for key in sorted(required):
        if key not in params:
            raise _Bad(key, f"is required by model {model!r}")
    span = g_max - g_min
    # non-idealities
    _num(params, "c2c_sigma", 0.0, lo=0.0)
    _choice(params, "c2c_reference", ("step", "range"), "step")
    p0 = _num(params, "p_stuck_min", 0.0, lo=0.0, hi=1.0)
    p1 = _num(params, "p_stuck_max", 0.0, lo=0.0, hi=1.0)
    if p0 + p1 > 1.0:
        raise _Bad("p_stuck_max", f"p_stuck_min + p_stuck_max must be <= 1, got {p0 + p1!r}")
    _num(params, "read_noise", 0.0, lo=0.0)
    drift = _choice(params, "drift_model", DRIFT_MODELS, "none")
    _num(params, "drift_tau", 1.0, lo=0.0, lo_open=True)
    _num(params, "drift_nu", 0.0, lo=0.0)
    _num(params, "drift_t0", 1.0, lo=0.0, lo_open=True)
    _num(params, "drift_rest", g_min, lo=g_min, hi=g_max)
    _num(params, "drift_dtod", 0.0, lo=0.0)
    if drift == "exponential" and "drift_tau" not in params:
        raise _Bad("drift_tau", "is required by drift_model 'exponential'")
    if drift == "powerlaw" and "drift_nu" not in params:
        raise _Bad("drift_nu", "is required by drift_model 'powerlaw'")
    for key in ("bounds_dtod", "dw_min_dtod", "up_down_dtod", "gamma_dtod", "nl_dtod", "k_dtod", "v_th_dtod"):
        _num(params, key, 0.0, lo=0.0)
    # pulses
    vu = _num(params, "v_up", PULSE_DEFAULTS["v_up"])
    vd = _num(params, "v_down", PULSE_DEFAULTS["v_down"])
    _num(params, "t_up", PULSE_DEFAULTS["t_up"], lo=0.0, lo_open=True)
    _num(params, "t_down", PULSE_DEFAULTS["t_down"], lo=0.0, lo_open=True)
    vb = _num(params, "breakdown_voltage", None, lo=0.0, lo_open=True)
    if vb is not None:
        for key, v in (("v_up", vu), ("v_down", vd)):
            if abs(v) > vb:
                raise _Bad(key, f"pulse amplitude {v:g} V exceeds breakdown_voltage {vb:g} V")
    # model parameters
    if model == "linear":
        levels = _num(params, "levels", None, lo=1, integer=True)
        _num(params, "dw_min", None, lo=0.0, lo_open=True, hi=span)
        if levels is not None and "dw_min" in params:
            raise _Bad("dw_min", "give either levels or dw_min, not both")
    elif model in ("softbounds", "expstep", "powstep"):
        dw = _num(params, "dw_min", None, lo=0.0, lo_open=True)
        ud = _num(params, "up_down", 0.0, lo=-1.0, hi=1.0, lo_open=True, hi_open=True)
        if dw * (1.0 + abs(ud)) >= 0.5 * span:
            raise _Bad("dw_min", f"dw_min*(1 + |up_down|) must be below half the range "
                       f"({0.5 * span:g} S), got {dw * (1.0 + abs(ud)):g} S")
        if model != "softbounds":
            _num(params, "gamma_up", None, lo=0.0)
            _num(params, "gamma_down", None, lo=0.0)
    elif model == "piecewise":
        up = _table(params, "table_up")
        dn = _table(params, "table_down", up.size)
        tg = _table(params, "table_g", up.size)
        for key, arr in (("table_up", up), ("table_down", dn)):
            if np.any(arr < 0) or not np.any(arr > 0):
                raise _Bad(key, "steps must be >= 0 siemens and not all zero")
        if tg is not None:
            if np.any(np.diff(tg) <= 0):
                raise _Bad("table_g", "nodes must be strictly increasing")
            if tg[0] < g_min or tg[-1] > g_max:
                raise _Bad("table_g", f"nodes must lie in [g_min, g_max] = [{g_min:g}, {g_max:g}] S")
    elif model == "neurosim":
        _num(params, "levels_up", None, lo=1, integer=True)
        _num(params, "levels_down", None, lo=1, integer=True)
        _num(params, "nl_up", None, lo=-NL_MAX, hi=NL_MAX, lo_open=True, hi_open=True)
        _num(params, "nl_down", None, lo=-NL_MAX, hi=NL_MAX, lo_open=True, hi_open=True)
    elif model == "vteam":
        if g_min <= 0:
            raise _Bad("g_min", "must be > 0 for vteam (R_off = 1/g_min)")
        _num(params, "d", None, lo=0.0, lo_open=True)
        _num(params, "k_off", None, lo=0.0, lo_open=True)
        _num(params, "k_on", None, hi=0.0, hi_open=True)
        _num(params, "alpha_on", None, lo=0.0, lo_open=True)
        _num(params, "alpha_off", None, lo=0.0, lo_open=True)
        _num(params, "v_on", None, hi=0.0, hi_open=True)
        _num(params, "v_off", None, lo=0.0, lo_open=True)
        _choice(params, "window", ("none", "biolek"), "none")
        _num(params, "window_p", 1.0, lo=0.0, lo_open=True)
        _num(params, "substeps", 4, lo=1, integer=True)


def check_card(card) -> None:
    """Raise :class:`~memsim.devices.cards.CardError` naming the card and field if ``card`` is bad."""
    from .cards import CardError

    try:
        validate_params(card.model, card.g_min, card.g_max, dict(card.params))
    except _Bad as bad:
        raise CardError(f"memristor card {card.name!r}: field {bad.field!r} {bad.message}") from None


# --------------------------------------------------------------------------------------------
# card -> arrays


@dataclass(frozen=True)
class DeviceSpec:
    """A memristor card turned into what the kernels take (one model for all devices)."""

    card: Any
    model: int
    gc: np.ndarray  # global constants (K_* indices)
    tab_g: np.ndarray  # piecewise table nodes (S) (length 1 dummies for other models)
    tab_up: np.ndarray
    tab_dn: np.ndarray
    v_up: float  # V
    t_up: float  # s
    v_down: float  # V
    t_down: float  # s
    step_up: float  # S, nominal conductance change of one up pulse
    step_down: float  # S
    read_noise: float
    drift_kind: int  # 0 none, 1 exponential, 2 powerlaw
    drift_tau: float  # s
    drift_nu: float
    drift_t0: float  # s
    drift_rest: float  # S

    @property
    def name(self):
        return self.card.name


def _p(card, key, default=None):
    return card.params.get(key, default)


def device_spec(card, linear_step: float | None = None) -> DeviceSpec:
    """Convert a (checked) memristor card. ``linear_step`` (S) sets the step of a levels-free
    linear device (an analog device takes whatever step it is programmed with)."""
    check_card(card)
    model = MODEL_CODES[card.model]
    g0, g1 = float(card.g_min), float(card.g_max)
    span = g1 - g0
    gc = np.zeros(N_CONST)
    gc[K_SIGMA] = float(_p(card, "c2c_sigma", 0.0))
    gc[K_REF] = 1.0 if _p(card, "c2c_reference", "step") == "range" else 0.0
    gc[K_GMIN], gc[K_GMAX] = g0, g1
    v_up = float(_p(card, "v_up", PULSE_DEFAULTS["v_up"]))
    t_up = float(_p(card, "t_up", PULSE_DEFAULTS["t_up"]))
    v_dn = float(_p(card, "v_down", PULSE_DEFAULTS["v_down"]))
    t_dn = float(_p(card, "t_down", PULSE_DEFAULTS["t_down"]))
    tab_g = tab_up = tab_dn = np.zeros(1)
    if model == M_LINEAR:
        if _p(card, "levels") is not None:
            su = sd = span / int(_p(card, "levels"))
            gc[K_SNAP] = 1.0
        elif _p(card, "dw_min") is not None:
            su = sd = float(_p(card, "dw_min"))
        else:
            su = sd = float(linear_step) if linear_step else span / DEFAULT_LINEAR_STEPS
    elif model in (M_SOFT, M_EXP, M_POW):
        su = sd = float(_p(card, "dw_min"))
    elif model == M_PIECE:
        tab_up = np.asarray(_p(card, "table_up"), dtype=float)
        tab_dn = np.asarray(_p(card, "table_down"), dtype=float)
        tg = _p(card, "table_g")
        tab_g = np.linspace(g0, g1, tab_up.size) if tg is None else np.asarray(tg, dtype=float)
        grid = np.linspace(g0, g1, 1001)
        su = float(np.mean(np.interp(grid, tab_g, tab_up)))
        sd = float(np.mean(np.interp(grid, tab_g, tab_dn)))
    elif model == M_NEURO:
        su = span / int(_p(card, "levels_up"))
        sd = span / int(_p(card, "levels_down"))
    else:  # vteam
        d = float(_p(card, "d"))
        gc[K_D] = d
        gc[K_AON] = float(_p(card, "alpha_on"))
        gc[K_AOFF] = float(_p(card, "alpha_off"))
        gc[K_WIN] = 1.0 if _p(card, "window", "none") == "biolek" else 0.0
        gc[K_WQ] = 2.0 * float(_p(card, "window_p", 1.0))
        gc[K_SUB] = float(_p(card, "substeps", 4))
        steps = []
        for v, t in ((v_up, t_up), (v_dn, t_dn)):
            rate = vteam_rate(v, float(_p(card, "k_off")), -float(_p(card, "k_on")), float(_p(card, "v_on")),
                              float(_p(card, "v_off")), gc[K_AON], gc[K_AOFF])
            dx = abs(vteam_displacement(0.5 * d, rate, t, d, int(gc[K_WIN]), gc[K_WQ], int(gc[K_SUB])))
            # nominal step: the range over the number of pulses that cross the window
            steps.append(span * min(1.0, dx / d) if dx > 0 else span)
        su, sd = steps
    drift_kind = DRIFT_MODELS.index(_p(card, "drift_model", "none"))
    return DeviceSpec(
        card=card, model=model, gc=gc, tab_g=np.ascontiguousarray(tab_g, dtype=float),
        tab_up=np.ascontiguousarray(tab_up, dtype=float), tab_dn=np.ascontiguousarray(tab_dn, dtype=float),
        v_up=v_up, t_up=t_up, v_down=v_dn, t_down=t_dn, step_up=float(su), step_down=float(sd),
        read_noise=float(_p(card, "read_noise", 0.0)), drift_kind=drift_kind,
        drift_tau=float(_p(card, "drift_tau", 1.0)), drift_nu=float(_p(card, "drift_nu", 0.0)),
        drift_t0=float(_p(card, "drift_t0", 1.0)), drift_rest=float(_p(card, "drift_rest", g0)),
    )


def _factor(rng, n, sigma):
    """Multiplicative device-to-device factors ``max(0, 1 + sigma*N(0,1))``."""
    if sigma <= 0:
        return np.ones(n)
    return np.maximum(0.0, 1.0 + sigma * rng.standard_normal(n))


def fabricate(spec: DeviceSpec, n: int, seed: int, d2d: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """Per-device parameters ``dp`` (n x N_DEV_PARAMS) and stuck flags (int8) for ``n`` devices.

    Drawn once from ``seed`` ("fabrication"): the same seed gives the same devices. ``d2d=False``
    gives nominal devices (no spread, none stuck).
    """
    card = spec.card
    rng = np.random.default_rng(np.random.SeedSequence([int(seed), 0xD2D]))
    g0, g1 = float(card.g_min), float(card.g_max)
    span = g1 - g0
    dp = np.zeros((n, N_DEV_PARAMS))

    def spread(key):
        return float(_p(card, key, 0.0)) if d2d else 0.0

    # windows: shrink from each end by a half-normal amount, at most a quarter of the range
    sb = spread("bounds_dtod")
    lo = np.full(n, g0)
    hi = np.full(n, g1)
    if sb > 0:
        lo = g0 + span * np.minimum(0.25, sb * np.abs(rng.standard_normal(n)))
        hi = g1 - span * np.minimum(0.25, sb * np.abs(rng.standard_normal(n)))
    dp[:, C_LO] = lo
    dp[:, C_HI] = hi
    w = hi - lo
    m = spec.model
    if m in (M_LINEAR, M_SOFT, M_EXP, M_POW, M_PIECE):
        f = _factor(rng, n, spread("dw_min_dtod"))
        ud = np.full(n, float(_p(card, "up_down", 0.0)))
        if spread("up_down_dtod") > 0:
            ud = ud + spread("up_down_dtod") * rng.standard_normal(n)
        ud = np.clip(ud, -0.99, 0.99)
        if m == M_LINEAR:
            dp[:, C_SU] = spec.step_up * f
            dp[:, C_SD] = spec.step_down * f
        elif m == M_PIECE:
            dp[:, C_SU] = f * (1.0 + ud)
            dp[:, C_SD] = f * (1.0 - ud)
        else:
            dw_up = spec.step_up * f * (1.0 + ud)
            dw_dn = spec.step_down * f * (1.0 - ud)
            if m == M_SOFT:
                dp[:, C_SU] = np.minimum(2.0 * dw_up / w, 1.0)
                dp[:, C_SD] = np.minimum(2.0 * dw_dn / w, 1.0)
            else:
                gu = float(_p(card, "gamma_up")) * _factor(rng, n, spread("gamma_dtod"))
                gd = float(_p(card, "gamma_down")) * _factor(rng, n, spread("gamma_dtod"))
                dp[:, C_QU] = gu
                dp[:, C_QD] = gd
                if m == M_EXP:
                    dp[:, C_SU] = dw_up * np.exp(0.5 * gu)
                    dp[:, C_SD] = dw_dn * np.exp(0.5 * gd)
                else:
                    dp[:, C_SU] = dw_up * 2.0**gu
                    dp[:, C_SD] = dw_dn * 2.0**gd
    elif m == M_NEURO:
        snl = spread("nl_dtod")
        lim = NL_MAX * 0.999
        pu, pd = float(_p(card, "levels_up")), float(_p(card, "levels_down"))
        if snl > 0:
            nl_up = float(_p(card, "nl_up")) + snl * rng.standard_normal(n)
            nl_dn = float(_p(card, "nl_down")) + snl * rng.standard_normal(n)
            dp[:, C_SU] = a_of_nl(np.clip(nl_up, -lim, lim)) * pu
            dp[:, C_SD] = a_of_nl(np.clip(nl_dn, -lim, lim)) * pd
        else:
            dp[:, C_SU] = a_of_nl(float(_p(card, "nl_up"))) * pu
            dp[:, C_SD] = a_of_nl(float(_p(card, "nl_down"))) * pd
        dp[:, C_QU] = pu
        dp[:, C_QD] = pd
    else:  # vteam
        fk = _factor(rng, n, spread("k_dtod"))
        fv = _factor(rng, n, spread("v_th_dtod"))
        dp[:, C_SU] = float(_p(card, "k_off")) * fk
        dp[:, C_SD] = -float(_p(card, "k_on")) * fk
        dp[:, C_QU] = float(_p(card, "v_on")) * np.maximum(fv, 1e-3)
        dp[:, C_QD] = float(_p(card, "v_off")) * np.maximum(fv, 1e-3)
    dp[:, C_DRIFT] = _factor(rng, n, spread("drift_dtod"))
    stuck = np.zeros(n, dtype=np.int8)
    p0 = float(_p(card, "p_stuck_min", 0.0)) if d2d else 0.0
    p1 = float(_p(card, "p_stuck_max", 0.0)) if d2d else 0.0
    if p0 > 0 or p1 > 0:
        u = rng.random(n)
        stuck[u < p0] = STUCK_MIN
        stuck[(u >= p0) & (u < p0 + p1)] = STUCK_MAX
    return np.ascontiguousarray(dp), stuck


def response_curve(card, pulses: Sequence[int] | tuple[int, int], g0: float | None = None, seed: int = 0,
                   noise: bool = True) -> np.ndarray:
    """Conductance (S) of one nominal device (no spread, not stuck) before and after each pulse.

    ``pulses`` is a list or array of +1 (up), -1 (down) or 0 (none), or a tuple
    ``(n_up, n_down)`` for ``n_up`` up pulses then ``n_down`` down pulses. The device starts at ``g0`` (default
    ``g_min``). ``noise=False`` turns cycle-to-cycle noise off.
    """
    if isinstance(pulses, tuple):
        if len(pulses) != 2 or min(pulses) < 0:
            raise ValueError("a tuple of pulses is (n_up, n_down) with counts >= 0; give a list for a sequence")
        pols = np.concatenate([np.ones(int(pulses[0]), np.int64), -np.ones(int(pulses[1]), np.int64)])
    else:
        pols = np.asarray(pulses, dtype=np.int64)
    spec = device_spec(card)
    if not noise:
        spec = dataclasses.replace(spec, gc=spec.gc.copy())
        spec.gc[K_SIGMA] = 0.0
    dp, _ = fabricate(spec, 1, seed, d2d=False)
    x0 = state_of(spec.model, float(card.g_min if g0 is None else g0), dp, 0, spec.gc)
    key = np.uint64(stream_key(int(seed), STREAM_C2C, 0))
    return response_kernel(spec.model, x0, pols, spec.v_up, spec.t_up, spec.v_down, spec.t_down, dp, spec.gc,
                           spec.tab_g, spec.tab_up, spec.tab_dn, key)


def piecewise_table_from_curves(g_up: Sequence[float], g_down: Sequence[float], g_min: float, g_max: float,
                                nodes: int = 11) -> dict[str, list[float]]:
    """Card keys of a ``piecewise`` model fitted to measured pulse responses.

    ``g_up``: conductances (S) read after successive up pulses (rising); ``g_down``: after
    successive down pulses (falling). Each step is placed at the conductance it started from and
    interpolated onto ``nodes`` equally spaced nodes in ``[g_min, g_max]``. Returns
    ``{"table_g", "table_up", "table_down"}`` ready for a card.
    """
    gu = np.asarray(g_up, dtype=float)
    gd = np.asarray(g_down, dtype=float)
    grid = np.linspace(g_min, g_max, nodes)
    su = np.diff(gu)
    sd = -np.diff(gd)
    order_u = np.argsort(gu[:-1])
    order_d = np.argsort(gd[:-1])
    up = np.interp(grid, gu[:-1][order_u], su[order_u])
    dn = np.interp(grid, gd[:-1][order_d], sd[order_d])
    return {"table_g": grid.tolist(), "table_up": np.maximum(up, 0).tolist(), "table_down": np.maximum(dn, 0).tolist()}
