"""The Shockley diode kernels against their closed forms."""
import math

import numpy as np
import pytest

from memsim.devices.diode import (
    diode_cocontent,
    diode_current,
    diode_current_and_conductance,
    junction_voltage,
    thermal_voltage,
)

VT = thermal_voltage(300.15)


def test_thermal_voltage_is_kT_over_q():
    assert VT == pytest.approx(1.380649e-23 * 300.15 / 1.602176634e-19, rel=1e-15)
    assert VT == pytest.approx(0.025865, abs=1e-5)


@pytest.mark.parametrize("v", [-1.0, -0.1, 0.0, 0.2, 0.5, 0.7])
def test_no_series_resistance_is_shockley(v):
    i_s, n = 2.52e-9, 1.752
    i, g = diode_current_and_conductance(v, i_s, n * VT, 0.0)
    assert i == pytest.approx(i_s * math.expm1(v / (n * VT)), rel=1e-13, abs=1e-30)
    assert g == pytest.approx(i_s / (n * VT) * math.exp(v / (n * VT)), rel=1e-13)


@pytest.mark.parametrize("v", [-2.0, -0.3, 0.0, 0.3, 0.6, 0.8, 1.2])
def test_series_resistance_satisfies_branch_equation(v):
    i_s, n_vt, r_s = 2.52e-9, 1.752 * VT, 50.0
    i = diode_current(v, i_s, n_vt, r_s)
    vd = junction_voltage(v, i_s, n_vt, r_s)
    # V = Vd + I*Rs and I = Is*(exp(Vd/nVt) - 1)
    assert vd + i * r_s == pytest.approx(v, abs=1e-12)
    assert i == pytest.approx(i_s * math.expm1(vd / n_vt), rel=1e-12, abs=1e-24)
    if v > 0.7:
        assert i * r_s > 1e-4  # the resistance really limits the current here


@pytest.mark.parametrize("r_s", [0.0, 0.568, 200.0])
def test_conductance_is_derivative_and_cocontent_integrates_current(r_s):
    i_s, n_vt = 2.52e-9, 1.752 * VT
    for v in np.linspace(-0.8, 0.9, 18):
        h = 1e-6
        i_p = diode_current(v + h, i_s, n_vt, r_s)
        i_m = diode_current(v - h, i_s, n_vt, r_s)
        _, g = diode_current_and_conductance(v, i_s, n_vt, r_s)
        assert g == pytest.approx((i_p - i_m) / (2 * h), rel=1e-5, abs=1e-15)
        p_p = diode_cocontent(v + h, i_s, n_vt, r_s)
        p_m = diode_cocontent(v - h, i_s, n_vt, r_s)
        assert diode_current(v, i_s, n_vt, r_s) == pytest.approx((p_p - p_m) / (2 * h), rel=1e-5, abs=1e-16)
    assert diode_cocontent(0.0, i_s, n_vt, r_s) == pytest.approx(0.0, abs=1e-30)


def test_kernels_stay_finite_far_beyond_the_knee():
    i, g = diode_current_and_conductance(50.0, 1e-9, VT, 0.0)
    assert math.isfinite(i) and math.isfinite(g) and g > 0
    assert math.isfinite(diode_cocontent(50.0, 1e-9, VT, 0.0))
