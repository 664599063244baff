"""The output cost the network is trained on, and the nudge that makes EqProp follow its gradient.

Two costs of the differential outputs ``d_k = V(out_k+) - V(out_k-)`` (volts), both in V^2 so
that ``beta`` (siemens) and the learning rate mean the same for either:

``mse``
    squared error ``L = sum_k (d_k - a*y_k)^2 / 2`` to the one-hot label ``y`` scaled by the
    target amplitude ``a`` (V).
``xent``
    softmax cross-entropy of the logits ``d/s``, scaled to volts squared:
    ``L = s^2 * (logsumexp(d/s) - d_y/s)``, with the logit scale ``s`` (V);
    ``dL/dd = s * (softmax(d/s) - y)``.

The nudge is a resistor of conductance ``beta`` from each output pair to a target voltage
(``beta (t_k - d_k)`` into ``out_k+``, the opposite into ``out_k-``): the nudged network
minimises ``E + beta * (d - t)^2 / 2``. Theorem 1 only uses the derivative of the nudge at the free
equilibrium ``d0``: choosing ``t = d0 - dL/dd(d0)`` makes the nudge current there
``-beta * dL/dd(d0)``, the current source DESIGN.md prescribes, so the EqProp estimate is the
gradient of ``L`` (exact as ``beta -> 0``; the centred estimate errs by O(beta^2)). For ``mse``
this target is the label itself, independent of ``d0``. For ``xent`` the periphery reads the
free-phase outputs and sets the target voltages before the nudged phases: one softmax per sample,
as a chip's controller would.
"""
from __future__ import annotations

from typing import Callable

import numpy as np

from memsim.circuit import target_voltages

COSTS = ("mse", "xent")


def one_hot(y: np.ndarray, n_classes: int) -> np.ndarray:
    """``(B, C)`` float one-hot rows of the integer labels ``y``."""
    return target_voltages(y, n_classes, 1.0)


def _softmax(z: np.ndarray) -> np.ndarray:
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def cost_value(kind: str, d: np.ndarray, y: np.ndarray, amplitude: float, scale: float) -> np.ndarray:
    """Per-sample cost (V^2), shape ``(B,)``, of the differential outputs ``d`` (``(B, C)`` V) for
    the labels ``y``; ``amplitude`` (V) is the ``mse`` target, ``scale`` (V) the ``xent`` logit scale."""
    d = np.asarray(d, dtype=np.float64)
    t = one_hot(y, d.shape[1])
    if kind == "mse":
        return 0.5 * ((d - amplitude * t) ** 2).sum(axis=1)
    if kind == "xent":
        z = d / scale
        m = z.max(axis=1, keepdims=True)
        lse = np.log(np.exp(z - m).sum(axis=1)) + m[:, 0]
        return scale * scale * (lse - (z * t).sum(axis=1))
    raise ValueError(f"unknown cost {kind!r} (known: {', '.join(COSTS)})")


def cost_gradient(kind: str, d: np.ndarray, y: np.ndarray, amplitude: float, scale: float) -> np.ndarray:
    """``dL/dd`` (V), shape ``(B, C)``: the per-sample cost's derivative w.r.t. the outputs."""
    d = np.asarray(d, dtype=np.float64)
    t = one_hot(y, d.shape[1])
    if kind == "mse":
        return d - amplitude * t
    if kind == "xent":
        return scale * (_softmax(d / scale) - t)
    raise ValueError(f"unknown cost {kind!r} (known: {', '.join(COSTS)})")


def nudge_target(kind: str, d_free: np.ndarray, y: np.ndarray, amplitude: float, scale: float) -> np.ndarray:
    """Differential target voltages (V), ``(B, C)``, for the nudge resistors: ``d_free - dL/dd``
    at the free equilibrium's outputs ``d_free`` (for ``mse``: ``amplitude`` times the one-hot label)."""
    if kind == "mse":
        return target_voltages(y, np.shape(d_free)[1], amplitude)
    return np.asarray(d_free, dtype=np.float64) - cost_gradient(kind, d_free, y, amplitude, scale)


def nudge_targets(kind: str, y: np.ndarray, n_classes: int, amplitude: float,
                  scale: float) -> np.ndarray | Callable[[np.ndarray], np.ndarray]:
    """What :func:`memsim.eqprop.run_phases` takes as ``target`` for labels ``y``: the targets
    themselves for ``mse``; for ``xent`` the function of the free phase's outputs that gives them."""
    if kind == "mse":
        return target_voltages(y, n_classes, amplitude)
    if kind not in COSTS:
        raise ValueError(f"unknown cost {kind!r} (known: {', '.join(COSTS)})")
    return lambda d_free: nudge_target(kind, d_free, y, amplitude, scale)
