"""Programmable resistor (memristor) conductance state: the first, linear bounded model.

The conductance ``G`` (siemens) is the state; an update asks for ``dG`` and the device gives
``clip(G + dG, G_min, G_max)`` - bounds that are never crossed. Pulse-level models (nonlinear,
asymmetric, noisy, quantised steps) extend this in :mod:`memsim.programming`.
"""
from __future__ import annotations

import numpy as np

from memsim.jit import njit


@njit
def apply_linear_update(conductance, delta, g_min, g_max):
    """In place: ``G <- clip(G + dG, g_min, g_max)`` over flat float64 arrays (siemens)."""
    flat = conductance.ravel()
    d = delta.ravel()
    for k in range(flat.size):
        g = flat[k] + d[k]
        if g < g_min:
            g = g_min
        elif g > g_max:
            g = g_max
        flat[k] = g


def clip_to_bounds(conductance: np.ndarray, g_min: float, g_max: float) -> np.ndarray:
    """Return ``conductance`` clipped to ``[g_min, g_max]`` siemens."""
    return np.clip(conductance, g_min, g_max)
