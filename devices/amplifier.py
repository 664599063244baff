"""Bidirectional amplifier between hidden layers (Numba kernels).

Forward (a VCVS): the next crossbar is driven by ``u = clip(A*h + V_os, -V_sat, V_sat)`` volts.
Backward (a CCCS): the current ``I_u`` (amperes) that the crossbar draws from ``u`` is drawn from
the hidden node ``h`` multiplied by the backward gain ``A_b``.

For ``A_b > 0`` and no saturation the network stays energy-based with the downstream energy
weighted by ``A_b/A`` (see DESIGN.md, section 1).
"""
from __future__ import annotations

from memsim.jit import njit


@njit
def amplifier_output(h, gain, offset, v_sat):
    """Forward output voltage ``u`` (V) for input node voltage ``h`` (V)."""
    u = gain * h + offset
    if u > v_sat:
        return v_sat
    if u < -v_sat:
        return -v_sat
    return u


@njit
def amplifier_output_slope(h, gain, offset, v_sat):
    """``du/dh`` (dimensionless): ``gain`` inside the linear range, 0 when saturated."""
    u = gain * h + offset
    if u > v_sat or u < -v_sat:
        return 0.0
    return gain
