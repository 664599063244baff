"""Equilibrium Propagation: free and nudged phases, Theorem-1 conductance gradients.

For every conductance the gradient uses only the voltage drop across it in two equilibria
(Kendall et al. 2020, Theorem 1)::

    centred   dLoss/dG ~ ((dV^{+beta})^2 - (dV^{-beta})^2) / (4*beta)
    positive  dLoss/dG ~ ((dV^{+beta})^2 - (dV^{0})^2)      / (2*beta)
    negative  dLoss/dG ~ ((dV^{0})^2     - (dV^{-beta})^2)  / (2*beta)

averaged over the batch. With amplifiers between hidden layers the energy downstream of an
amplifier is weighted by ``A_b/A``; a conductance's gradient is then multiplied by the ratio of its
region's weight to the output region's (see :func:`memsim.energy.region_weights`).

Units: conductances in siemens, voltages in volts, beta in siemens; gradients in V^2/S.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from memsim.circuit import Network
from memsim.energy import layer_sources, outputs, region_weights
from memsim.solve import ConvergenceError, PackedNetwork, SolveStats, solve

MODES = ("centred", "positive", "negative")
PHASES = ("free", "nudge_plus", "nudge_minus")


@dataclass
class Phases:
    """Settled node voltages ``(B, N)`` of each phase and the solver statistics."""

    free: np.ndarray
    plus: np.ndarray | None = None
    minus: np.ndarray | None = None
    stats: dict[str, SolveStats] = field(default_factory=dict)


def run_phases(packed: PackedNetwork, drive0: np.ndarray, V: np.ndarray,
               target: np.ndarray | Callable[[np.ndarray], np.ndarray], beta: float,
               mode: str = "centred", tol: float = 1e-9, max_sweeps: int = 10_000, sample_offset: int = 0) -> Phases:
    """Free phase from the warm start ``V`` (updated in place to the free state), then the nudged
    phase(s) the estimator ``mode`` needs, each warm-started from the free equilibrium.

    ``target``: the nudge's differential target voltages ``(B, C)`` (V), or a function of the free
    phase's differential outputs that returns them (:func:`memsim.cost.nudge_target`)."""
    if mode not in MODES:
        raise ValueError(f"unknown EqProp mode {mode!r} (known: {', '.join(MODES)})")

    def settle(name, V_ph, b, tgt):
        try:
            st[name] = solve(packed, drive0, V_ph, b, tgt, tol=tol, max_sweeps=max_sweeps,
                             sample_offset=sample_offset)
        except ConvergenceError as exc:
            raise ConvergenceError(f"phase {name}: {exc}", exc.layer, exc.sample, exc.residual) from None

    st: dict[str, SolveStats] = {}
    settle("free", V, 0.0, None)
    ph = Phases(free=V.copy(), stats=st)
    if callable(target):
        target = target(outputs(packed.net, ph.free))
    if mode in ("centred", "positive"):
        ph.plus = V.copy()
        settle("nudge_plus", ph.plus, beta, target)
    if mode in ("centred", "negative"):
        ph.minus = V.copy()
        settle("nudge_minus", ph.minus, -beta, target)
    return ph


def _drop_square_difference(s_a, v_a, s_b, v_b):
    """``sum_b [(s_a[b,i] - v_a[b,j])^2 - (s_b[b,i] - v_b[b,j])^2]``, shape ``(n_i, n_j)``.

    Written as sums and differences of the two states before the products, so that the small
    difference between two nearby equilibria is not lost to cancellation.
    """
    ds, ss = s_a - s_b, s_a + s_b
    dv, sv = v_a - v_b, v_a + v_b
    out = -(ds.T @ sv) - (ss.T @ dv)
    out += (ds * ss).sum(0)[:, None]
    out += (dv * sv).sum(0)[None, :]
    return out


def conductance_gradients(net: Network, v_in: np.ndarray, ph: Phases, beta: float,
                          mode: str = "centred") -> list[np.ndarray]:
    """Theorem-1 estimates of ``dLoss/dG`` (mean over the batch), one array per entry of
    ``net.parameters()`` (crossbars, then bias+ and bias- conductances per free layer)."""
    if mode == "centred":
        a, b, denom = ph.plus, ph.minus, 4.0 * beta
    elif mode == "positive":
        a, b, denom = ph.plus, ph.free, 2.0 * beta
    elif mode == "negative":
        a, b, denom = ph.free, ph.minus, 2.0 * beta
    else:
        raise ValueError(f"unknown EqProp mode {mode!r} (known: {', '.join(MODES)})")
    spec = net.spec
    B = a.shape[0]
    off = spec.free_offsets
    src_a, src_b = layer_sources(net, a), layer_sources(net, b)
    w = region_weights(net)
    factor = w / w[-1]
    denom = denom * B
    grads_w, grads_bp, grads_bm = [], [], []
    vb = spec.bias_voltage
    for k in range(spec.n_free_layers):
        va, vbk = a[:, off[k]:off[k + 1]], b[:, off[k]:off[k + 1]]
        sa, sb = (v_in, v_in) if k == 0 else (src_a[k - 1], src_b[k - 1])
        grads_w.append(factor[k] * _drop_square_difference(sa, va, sb, vbk) / denom)
        dv, sv = va - vbk, va + vbk
        grads_bp.append(factor[k] * (dv * (sv - 2.0 * vb)).sum(0) / denom)
        grads_bm.append(factor[k] * (dv * (sv + 2.0 * vb)).sum(0) / denom)
    return [*grads_w, *grads_bp, *grads_bm]
