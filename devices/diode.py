"""Shockley diode with optional series resistance, as Numba kernels.

Units: volts, amperes, siemens, joules-per-second (co-content is in watts: V*A).

The junction obeys ``I = Is * (exp(Vd / (n*Vt)) - 1)``; with a series resistance ``Rs`` the
branch voltage is ``V = Vd + I*Rs``. For ``Rs > 0`` the junction voltage ``Vd`` is found by a
monotone Newton iteration started from an upper bound (the map ``Vd -> Vd + Rs*I(Vd)`` is convex
and increasing, so Newton from the right converges without overshoot).

The co-content of the branch, ``p(V) = integral_0^V I(s) ds``, is
``Is*n*Vt*(exp(Vd/(n*Vt)) - 1) - Is*Vd + Rs*I**2/2``.

To keep the kernels finite for absurd trial voltages, the exponential is continued linearly
above ``exp(EXP_LIMIT)`` (currents of ~1e26 A: never reached at an equilibrium).
"""
from __future__ import annotations

import math

from memsim.jit import njit

BOLTZMANN = 1.380649e-23  # J/K (CODATA 2018, exact)
ELEMENTARY_CHARGE = 1.602176634e-19  # C (CODATA 2018, exact)
EXP_LIMIT = 80.0


@njit
def thermal_voltage(temperature_k):
    """Thermal voltage ``k*T/q`` in volts for a temperature in kelvin."""
    return BOLTZMANN * temperature_k / ELEMENTARY_CHARGE


@njit
def _exp_lin(x):
    """``exp(x)`` continued linearly (value and slope matched) above ``EXP_LIMIT``."""
    if x <= EXP_LIMIT:
        return math.exp(x)
    return math.exp(EXP_LIMIT) * (1.0 + x - EXP_LIMIT)


@njit
def _dexp_lin(x):
    if x <= EXP_LIMIT:
        return math.exp(x)
    return math.exp(EXP_LIMIT)


@njit
def junction_voltage(v, i_s, n_vt, r_s):
    """Junction voltage ``Vd`` (volts) for a branch voltage ``v`` across diode plus ``r_s`` ohms."""
    if r_s <= 0.0:
        return v
    i0 = i_s * (_exp_lin(v / n_vt) - 1.0)
    if abs(i0) * r_s < 1e-9 * n_vt:
        # negligible drop on Rs: one fixed-point correction is exact to (i0*Rs)^2/(n*Vt) < 1e-18 V
        return v - i0 * r_s
    # Upper bound of the root: I >= -Is gives Vd <= v + Is*Rs; I >= 0 for v > 0 gives Vd <= v and
    # Rs*Is*(exp(Vd/nVt) - 1) <= v gives Vd <= nVt*log1p(v/(Rs*Is)).
    if v <= 0.0:
        vd = v + i_s * r_s
    else:
        vd = min(v, n_vt * math.log1p(v / (r_s * i_s)))
    for _ in range(200):
        e = _exp_lin(vd / n_vt)
        f = vd + r_s * i_s * (e - 1.0) - v
        df = 1.0 + r_s * i_s * _dexp_lin(vd / n_vt) / n_vt
        step = f / df
        vd -= step
        if abs(step) <= 1e-15 + 1e-14 * abs(vd):
            break
    return vd


@njit
def diode_current(v, i_s, n_vt, r_s):
    """Branch current (amperes) of a diode with series resistance for branch voltage ``v`` (volts)."""
    vd = junction_voltage(v, i_s, n_vt, r_s)
    return i_s * (_exp_lin(vd / n_vt) - 1.0)


@njit
def diode_current_and_conductance(v, i_s, n_vt, r_s):
    """Branch current (A) and small-signal conductance ``dI/dV`` (S) at branch voltage ``v`` (V)."""
    vd = junction_voltage(v, i_s, n_vt, r_s)
    i = i_s * (_exp_lin(vd / n_vt) - 1.0)
    gd = i_s * _dexp_lin(vd / n_vt) / n_vt
    return i, gd / (1.0 + gd * r_s)


@njit
def diode_cocontent(v, i_s, n_vt, r_s):
    """Co-content ``integral_0^v I(s) ds`` (watts) of the diode branch at branch voltage ``v``."""
    vd = junction_voltage(v, i_s, n_vt, r_s)
    x = vd / n_vt
    if x <= EXP_LIMIT:
        em1 = math.expm1(x)
    else:
        # integral of the linear continuation of exp beyond EXP_LIMIT
        el = math.exp(EXP_LIMIT)
        d = x - EXP_LIMIT
        em1 = el - 1.0 + el * (d + 0.5 * d * d)
    i = i_s * (_exp_lin(x) - 1.0)
    return i_s * n_vt * em1 - i_s * vd + 0.5 * r_s * i * i
