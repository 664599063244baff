"""Transient emulation: EqProp phases as settled transients of the circuit with node capacitances.

The circuit (what is solved)
----------------------------
Every free node ``n`` has a capacitance ``C_n`` (farads) to ground: 1 pF by default, a realistic
parasitic, overridable per layer or per node (:func:`node_capacitance`). Its voltage obeys
``C_n dV_n/dt = I_n(V, U, t)``, the net current of :func:`memsim.energy.node_currents`.

With an amplifier card whose ``time_constant`` ``tau_a`` is positive, each amplifier output ``u``
is a state with a single pole: ``tau_a du/dt = clip(A*h + V_os, +-V_sat) - u``. At DC ``u`` equals
``clip(A*h + V_os)``, so every equilibrium (and therefore the EqProp gradient) is unchanged; only
the way the circuit gets there changes. (During the transient the circuit is not the gradient flow
of an energy: the lag makes the amplified couplings non-reciprocal. That does not matter here: a
phase is only used once it has settled.)

The solver (how)
----------------
Every implicit stage is one call of the DC block solver :func:`memsim.solve.solve` with the
capacitive term: a stage ``C (V' - Z)/(k*h) = I(V', U')`` is ``solve(..., cap=C/(k*h),
v_prev=Z)``. Backward Euler (``method="be"``, ``k = 1``, ``Z = V_n``) is exactly one solve per step;
TR-BDF2 (``method="trbdf2"``, default; Bank et al. 1985, Hosea & Shampine 1996, ``gamma = 2 -
sqrt(2)``) is a trapezoidal stage to ``t + gamma*h`` then a BDF2 stage to ``t + h``, both with the
same ``k = 1 - 1/sqrt(2)``: second order and L-stable. The amplifier pole needs no new kernel: in a
stage the lagged output is ``u' = alpha*Zu + (1 - alpha)*clip(A*h' + V_os)`` with ``alpha =
tau_a/(tau_a + k*h)``; the solver gets the amplifiers with gain, offset and saturation scaled by
``1 - alpha`` and the constant ``alpha*Zu`` as extra currents folded into ``v_prev``.

Step control
------------
Local error: TR-BDF2's embedded estimate ``2|c| h (f_n/g - f_g/(g(1-g)) + f_{n+1}/(1-g))`` (``c =
(-3g^2+4g-2)/(12(2-g))``), backward Euler's ``h/2 |f_{n+1} - f_n|``, against ``atol + rtol * S`` per
sample where ``S`` is the sample's swing in this phase (largest node excursion so far, or the
linear prediction ``|I_n|/G_n`` at the event, whichever is larger): errors are relative to what
the phase moves, so a 0.1 mV nudge is resolved as well as a 1 V input step. The first step after an
event is a fraction of the fastest node time constant ``min C_n/G_n``; steps then grow
geometrically (at most ``growth`` per step, at most ``h_max``, default ``100*tau_slow``) while the
circuit settles, land on the corners of source ramps and restart smaller past them. A stage is
solved only as tightly as needed (1% of the local error tolerance, 10% of the remaining distance to
equilibrium), to the solver's ``tol`` for the steps that decide settling.

Settling
--------
A sample has settled when ``max |dV/dt| * tau_slow < settle_tol`` (volts; also ``|du/dt|``), with
``tau_slow`` the slowest time constant of the circuit: ``1/lambda_min`` of ``C^-1 J`` for the
linear part of the Jacobian ``J`` (diodes only add conductance, so it bounds the true slowest mode
from above) or the amplifier pole, whichever is slower. Then ``|V - V_dc|`` is about
``settle_tol`` (default: the solver's ``tol``) or less. A settled sample is frozen (it is its own
circuit) and the others go on; the phase ends when all have settled, and raises
:class:`SettleError` naming the phase when its time limit ``t_max`` (default ``max(1 ms,
1e4*tau_slow)``) or the next scheduled event comes first. A ``-beta`` nudge stronger than the
conductance holding the outputs leaves no stable equilibrium (DC finds a saddle): that phase raises
:class:`UnstableCircuitError` before integrating.

The reported settling time is physical: once the remaining transient is below the local error
tolerance, the growing steps no longer resolve its timing (they only drive it to zero), so the
time is the best bound ``t_k + tau_slow*ln(s_k/settle_tol)`` over the steps that still resolve it
(``s_k = max|dV/dt|*tau_slow``). The clock (``PhaseStats.t_end``) runs on to where the integration
ended.

Units: seconds, volts, amperes, siemens, farads.
"""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Callable

import numpy as np
from numba import prange

from memsim.devices.amplifier import amplifier_output
from memsim.devices.diode import diode_current_and_conductance
from memsim.energy import outputs
from memsim.eqprop import MODES, Phases
from memsim.events import EventQueue, Ramp
from memsim.jit import SERIAL_BELOW, batch_threads, pjit
from memsim.solve import ConvergenceError, PackedNetwork, SolveStats, solve

DEFAULT_CAPACITANCE = 1e-12  # F: parasitic capacitance of a node to ground
METHODS = ("trbdf2", "be")

_GAMMA = 2.0 - math.sqrt(2.0)
_KAPPA = 1.0 - 1.0 / math.sqrt(2.0)  # gamma/2 == (1-gamma)/(2-gamma)
_ERRC = abs((-3 * _GAMMA**2 + 4 * _GAMMA - 2) / (12 * (2 - _GAMMA)))


class SettleError(RuntimeError):
    """A phase that did not settle within its time limit (or before the next event)."""

    def __init__(self, message, phase=None, sample=None, time=None):
        super().__init__(message)
        self.phase, self.sample, self.time = phase, sample, time


class UnstableCircuitError(SettleError):
    """A phase whose circuit has no stable equilibrium (a ``-beta`` nudge stronger than the
    conductance holding the outputs): a transient runs away, the DC solver finds a saddle.

    Checked on the linearised circuit without diode conduction, which can only stabilise it, so a
    marginal case that conducting diodes would rescue is (conservatively) rejected too."""


# --------------------------------------------------------------------------------------------
# options, capacitances, time constants


@dataclass
class TransientOptions:
    """Numerical and physical settings of the transient engine (all SI units)."""

    method: str = "trbdf2"  # "trbdf2" (second order) or "be" (backward Euler)
    rtol: float = 5e-3  # local error relative to the phase's swing (waveforms to ~0.5% of it)
    atol: float = 1e-8  # V: absolute local error floor (keep it ~10x above the solver tolerance)
    settle_tol: float | None = None  # V: |dV/dt|*tau_slow that counts as settled (None: the solver tol)
    t_max: float | None = None  # s: time limit of a phase (None: max(1 ms, 1e4 * tau_slow))
    h_max: float | None = None  # s: largest step (None: 100 * tau_slow, where the tail damps ~20x a step)
    max_steps: int = 5000  # accepted + rejected steps per phase
    growth: float = 10.0  # largest step growth factor
    h0: float | None = None  # s: first step after an event (None: from the fastest time constant)
    rise_time: float = 0.0  # s: linear ramp of switching sources (inputs, nudge)
    amp_tau: float | None = None  # s: amplifier pole (None: the amplifier card's time_constant)
    tau_slow: float | None = None  # s: override of the settle time constant (None: computed)
    serial_below: int = SERIAL_BELOW  # batches smaller than this run the kernels on one thread (a parallel launch
    #                         costs more than it saves there, badly so on a loaded machine)

    def check(self):
        if self.method not in METHODS:
            raise ValueError(f"transient method must be one of {', '.join(METHODS)}, got {self.method!r}")
        for name in ("rtol", "growth"):
            v = getattr(self, name)
            if not (v > 0 and math.isfinite(v)):
                raise ValueError(f"transient option {name} must be finite and > 0, got {v!r}")
        if self.growth <= 1.0:
            raise ValueError(f"transient option growth must be > 1, got {self.growth!r}")
        for name in ("atol", "rise_time"):
            v = getattr(self, name)
            if not (v >= 0 and math.isfinite(v)):
                raise ValueError(f"transient option {name} must be finite and >= 0, got {v!r}")
        for name in ("settle_tol", "h0", "tau_slow", "t_max", "h_max"):
            v = getattr(self, name)
            if v is not None and not (v > 0 and math.isfinite(v)):
                raise ValueError(f"transient option {name} must be finite and > 0 (or None), got {v!r}")
        if self.amp_tau is not None and not (self.amp_tau >= 0 and math.isfinite(self.amp_tau)):
            raise ValueError(f"transient option amp_tau must be finite and >= 0 s (or None), got {self.amp_tau!r}")
        if int(self.max_steps) < 1:
            raise ValueError(f"transient option max_steps must be >= 1, got {self.max_steps!r}")
        return self


def node_capacitance(spec, default: float = DEFAULT_CAPACITANCE, per_layer=None) -> np.ndarray:
    """Capacitance (F) of every free node to ground, ``(N,)`` in solver order.

    ``per_layer`` optionally overrides free layers: a mapping ``{layer: value}`` or a sequence with
    one entry per free layer (``None`` keeps the default); each value a scalar or an array of the
    layer's size. Raises :class:`ValueError` for a zero, negative or non-finite capacitance.
    """
    off = spec.free_offsets
    L = spec.n_free_layers
    C = np.full(spec.n_free, float(default))
    if per_layer is not None:
        items = per_layer.items() if isinstance(per_layer, dict) else enumerate(per_layer)
        for l, val in items:
            if val is None:
                continue
            if not 0 <= int(l) < L:
                raise ValueError(f"capacitance override for free layer {l}: the network has layers 0..{L - 1}")
            n = off[l + 1] - off[l]
            arr = np.asarray(val, dtype=np.float64)
            if arr.ndim == 0:
                arr = np.full(n, float(arr))
            if arr.shape != (n,):
                raise ValueError(f"capacitance of free layer {l}: expected a scalar or {n} values, "
                                 f"got shape {arr.shape}")
            C[off[l]:off[l + 1]] = arr
    return check_capacitance(C, spec)


def check_capacitance(C, spec) -> np.ndarray:
    """``C`` as a ``(N,)`` float array (a scalar is broadcast); raises naming the first bad node."""
    N = spec.n_free
    arr = np.asarray(C, dtype=np.float64)
    if arr.ndim == 0:
        arr = np.full(N, float(arr))
    if arr.shape != (N,):
        raise ValueError(f"node capacitance: expected a scalar or {N} values (one per free node), "
                         f"got shape {arr.shape}")
    bad = ~(np.isfinite(arr) & (arr > 0))
    if bad.any():
        q = int(np.flatnonzero(bad)[0])
        layer = int(np.searchsorted(spec.free_offsets, q, side="right") - 1)
        j = q - int(spec.free_offsets[layer])
        raise ValueError(f"node capacitance must be finite and > 0 F: free layer {layer}, node {j} has "
                         f"{float(arr[q])!r} F "
                         f"(a node without capacitance has no dynamics; use the DC engine for that)")
    return np.ascontiguousarray(arr)


def _amp_info(packed: PackedNetwork):
    """Mask ``(N,)`` of amplified nodes (their outputs ``u`` drive the next crossbar)."""
    N = packed.gdiag.shape[0]
    mask = np.zeros(N, dtype=bool)
    for l in range(packed.has_amp.shape[0]):
        if packed.has_amp[l]:
            mask[packed.noff[l]:packed.noff[l + 1]] = True
    return mask


def _layer_weights(packed: PackedNetwork) -> np.ndarray:
    """Energy weight of each free layer's region: product of ``A_b/A`` of the amplifiers upstream."""
    L = packed.has_amp.shape[0]
    w = np.ones(L)
    r = 1.0
    for k in range(L):
        if k > 0 and packed.has_amp[k - 1]:
            sl = slice(packed.noff[k - 1], packed.noff[k])
            r *= float(np.mean(packed.amp_back[sl]) / np.mean(packed.amp_gain[sl]))
        w[k] = r
    return w


def linear_jacobian(packed: PackedNetwork, beta: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    """The weighted Hessian ``H`` (S, ``(N, N)``) of the linear part of the energy (conductances,
    unsaturated amplifiers, nudge) and the region weight of every node (``(N,)``)."""
    net = packed.net
    L = packed.has_amp.shape[0]
    noff = packed.noff
    N = packed.gdiag.shape[0]
    w = _layer_weights(packed)
    H = np.zeros((N, N))
    wn = np.empty(N)
    for k in range(L):
        dst = slice(noff[k], noff[k + 1])
        wn[dst] = w[k]
        W = np.asarray(net.weights[k], dtype=np.float64)
        d = w[k] * (W.sum(0) + net.bias_plus[k] + net.bias_minus[k])
        H[dst, dst] += np.diag(d)
        if k > 0:
            src = slice(noff[k - 1], noff[k])
            a = packed.amp_gain[src] if packed.has_amp[k - 1] else np.ones(noff[k] - noff[k - 1])
            H[src, src] += np.diag(w[k] * W.sum(1) * a * a)
            blk = w[k] * a[:, None] * W
            H[src, dst] -= blk
            H[dst, src] -= blk.T
    if beta != 0.0:
        C = (noff[L] - noff[L - 1]) // 2
        o = noff[L - 1]
        for k in range(C):
            p, m = o + k, o + C + k
            H[p, p] += w[-1] * beta
            H[m, m] += w[-1] * beta
            H[p, m] -= w[-1] * beta
            H[m, p] -= w[-1] * beta
    return H, wn


def slowest_rate(packed: PackedNetwork, capacitance: np.ndarray, beta: float = 0.0,
                 dense_limit: int = 2000) -> float | None:
    """``lambda_min`` (1/s) of ``C^-1 J`` for the linear part ``J`` of the circuit's Jacobian with
    the nudge ``beta``: the slowest decay rate (a lower bound: diodes only add conductance). It is
    <= 0 when a ``-beta`` nudge makes the circuit unstable. None above ``dense_limit`` nodes."""
    C = np.asarray(capacitance, dtype=np.float64)
    if C.shape[0] > dense_limit:
        return None
    H, wn = linear_jacobian(packed, beta)
    s = 1.0 / np.sqrt(wn * C)
    return float(np.linalg.eigvalsh(H * s[:, None] * s[None, :])[0])


def time_constants(packed: PackedNetwork, capacitance: np.ndarray, beta: float = 0.0,
                   amp_tau: float = 0.0, dense_limit: int = 2000) -> tuple[float, float]:
    """``(tau_fast, tau_slow)`` in seconds.

    ``tau_fast = min_n C_n/G_n`` (``G_n`` the node's total linear conductance) sets the first step
    after an event. ``tau_slow`` bounds the slowest mode from above: ``1/lambda_min`` of the
    generalised eigenproblem ``(H, w*C)`` of the linear part (exact eigenvalues up to
    ``dense_limit`` nodes; beyond, the bound ``max_n C_n/G_ground,n`` from the conductance of each
    node to fixed sources), or the amplifier pole ``amp_tau`` if slower.
    """
    C = np.asarray(capacitance, dtype=np.float64)
    mask = _amp_info(packed)
    g_tot = packed.gdiag + np.where(mask, packed.amp_back * packed.rowsum_up * np.abs(packed.amp_gain), 0.0)
    L = packed.has_amp.shape[0]
    o = packed.noff[L - 1]
    g_tot = g_tot.copy()
    g_tot[o:] += 2.0 * abs(beta)
    tau_fast = float(np.min(C / np.maximum(g_tot, 1e-300)))
    N = C.shape[0]
    lam = slowest_rate(packed, C, beta, dense_limit)
    if lam is None or not lam > 0:
        # grounded conductance: inputs (layer 0), bias rails, nudge (negative for -beta)
        net = packed.net
        g = np.empty(N)
        for k in range(L):
            sl = slice(packed.noff[k], packed.noff[k + 1])
            g[sl] = net.bias_plus[k] + net.bias_minus[k] + (net.weights[0].sum(0) if k == 0 else 0.0)
        g[o:] -= 2.0 * max(0.0, -beta)
        lam = float(np.min(np.maximum(g, 1e-300) / C))
    tau_slow = max(1.0 / lam, float(amp_tau))
    return tau_fast, tau_slow


# --------------------------------------------------------------------------------------------
# node currents with the amplifier state (the right-hand side of C dV/dt = I)


@pjit
def node_currents_batch(V, U, use_state, drive0, wflat, woff, sizes, noff, gdiag, ibias, rowsum_up, has_diode,
                        has_amp, v_lo, v_hi, i_s, n_vt, r_s, amp_gain, amp_back, amp_off, amp_sat, beta, target, out):
    """Net current (A) into every free node, ``out`` ``(B, N)``, the same KCL as the solver's.

    ``U`` ``(B, N)``: the amplifier outputs of amplified nodes when ``use_state`` (a lagging
    amplifier), else they are ``clip(A*V + V_os)``.
    """
    B = V.shape[0]
    L = sizes.shape[0] - 1
    C = sizes[L] // 2
    for b in prange(B):
        v = V[b]
        for l in range(L):
            o = noff[l]
            n = sizes[l + 1]
            for j in range(n):
                q = o + j
                if l == 0:
                    acc = drive0[b, j]
                else:
                    acc = 0.0
                    po = noff[l - 1]
                    w0 = woff[l]
                    for i in range(sizes[l]):
                        if has_amp[l - 1]:
                            if use_state:
                                s = U[b, po + i]
                            else:
                                s = amplifier_output(v[po + i], amp_gain[po + i], amp_off[po + i], amp_sat[po + i])
                        else:
                            s = v[po + i]
                        acc += wflat[w0 + i * n + j] * s
                f = acc + ibias[q] - gdiag[q] * v[q]
                if l < L - 1:
                    no = noff[l + 1]
                    nn = sizes[l + 2]
                    base = woff[l + 1] + j * nn
                    up = 0.0
                    for m in range(nn):
                        up += wflat[base + m] * v[no + m]
                    if has_amp[l]:
                        if use_state:
                            u = U[b, q]
                        else:
                            u = amplifier_output(v[q], amp_gain[q], amp_off[q], amp_sat[q])
                        f -= amp_back[q] * (rowsum_up[q] * u - up)
                    else:
                        f += up
                    if has_diode[l]:
                        i1, g1 = diode_current_and_conductance(v[q] - v_hi[q], i_s, n_vt, r_s)
                        i2, g2 = diode_current_and_conductance(v_lo[q] - v[q], i_s, n_vt, r_s)
                        f += i2 - i1
                elif beta != 0.0:
                    k = j if j < C else j - C
                    e = v[o + k] - v[o + C + k] - target[b, k]
                    f += -beta * e if j < C else beta * e
                out[b, q] = f


def node_currents_state(packed: PackedNetwork, drive0, V, U=None, beta=0.0, target=None) -> np.ndarray:
    """Net current (A) into every free node ``(B, N)``; ``U`` the lagging amplifier outputs or None."""
    B, N = V.shape
    C = packed.sizes[-1] // 2
    tgt = np.zeros((B, C)) if target is None else np.ascontiguousarray(target, dtype=np.float64)
    out = np.empty((B, N))
    use = U is not None
    node_currents_batch(np.ascontiguousarray(V), np.ascontiguousarray(U if use else V), use,
                        np.ascontiguousarray(drive0, dtype=np.float64), packed.wflat, packed.woff, packed.sizes,
                        packed.noff, packed.gdiag, packed.ibias, packed.rowsum_up, packed.has_diode, packed.has_amp,
                        packed.v_lo, packed.v_hi, packed.i_s, packed.n_vt, packed.r_s, packed.amp_gain,
                        packed.amp_back, packed.amp_off, packed.amp_sat, float(beta), tgt, out)
    return out


# --------------------------------------------------------------------------------------------
# results


@dataclass
class Trajectory:
    """Node voltages of traced samples during one phase.

    ``time`` ``(T,)`` s from the phase's event; ``voltage`` ``(T, K, N)`` V of the K traced samples
    (free nodes, solver order); ``rate`` ``(T, K, N)`` V/s (``dV/dt``, for Hermite interpolation);
    ``amplifier`` ``(T, K, N_amp)`` V the amplifier outputs (empty last axis without amplifiers);
    ``samples`` the traced samples' indices in the batch; ``t0`` the phase's start on the clock.
    """

    time: np.ndarray
    voltage: np.ndarray
    rate: np.ndarray
    amplifier: np.ndarray
    samples: np.ndarray
    t0: float = 0.0

    def sample(self, k: int) -> tuple[np.ndarray, np.ndarray]:
        """``(time (T,), voltage (T, N))`` of the k-th traced sample."""
        return self.time, self.voltage[:, k, :]

    def at(self, times) -> np.ndarray:
        """Voltages ``(len(times), K, N)`` at arbitrary phase times, by cubic Hermite interpolation
        between accepted steps (third-order accurate, like the steps themselves)."""
        t = np.asarray(times, dtype=np.float64)
        T = self.time
        i = np.clip(np.searchsorted(T, t, side="right") - 1, 0, len(T) - 2)
        t0, t1 = T[i], T[i + 1]
        h = (t1 - t0)
        s = np.clip((t - t0) / np.where(h > 0, h, 1.0), 0.0, 1.0)[:, None, None]
        h = h[:, None, None]
        y0, y1 = self.voltage[i], self.voltage[i + 1]
        f0, f1 = self.rate[i], self.rate[i + 1]
        h00 = 2 * s**3 - 3 * s**2 + 1
        h10 = s**3 - 2 * s**2 + s
        h01 = -2 * s**3 + 3 * s**2
        h11 = s**3 - s**2
        return h00 * y0 + h10 * h * f0 + h01 * y1 + h11 * h * f1


@dataclass
class PhaseStats(SolveStats):
    """Per-sample statistics of a transient phase (a :class:`~memsim.solve.SolveStats`).

    ``sweeps`` (B,): block-solver sweeps summed over every implicit stage (rejected ones included);
    ``delta`` (B,): last stage's largest change of its last sweep (V); ``steps`` (B,): accepted
    steps until the sample settled; ``solves`` (B,): implicit stage solves; ``rejected`` (B,):
    rejected steps; ``settle_time`` (B,): s from the event until the sample is within
    ``settle_tol`` of its equilibrium (physical; an upper bound: the smallest ``t_k +
    tau_slow*ln(s_k/settle_tol)`` over the steps, ``s_k = max|dV/dt|*tau_slow``, since once the
    remaining transient is below the local error tolerance the growing steps no longer resolve its
    timing). ``t_end`` (s): where the integration of the phase ended (the clock then; the
    numerical tail can run past the physical settle time); ``tau_slow``/``tau_fast`` (s);
    ``trace``: a :class:`Trajectory` when samples were traced.
    """

    steps: np.ndarray = None
    solves: np.ndarray = None
    rejected: np.ndarray = None
    settle_time: np.ndarray = None
    t_end: float = 0.0
    tau_slow: float = math.nan
    tau_fast: float = math.nan
    phase: str = ""
    trace: Trajectory | None = None


# --------------------------------------------------------------------------------------------
# the simulator: state, sources, events, steps


class TransientSimulator:
    """A batch of circuits (one per sample) on one clock, driven by an :class:`EventQueue`.

    ``V`` ``(B, N)`` initial free-node voltages (copied); ``drive0`` ``(B, n_1)`` the input current
    of the initial inputs (A, :func:`memsim.solve.input_drive`); ``U`` initial amplifier outputs
    ``(B, N)`` (None: at rest, ``clip(A*V + V_os)``); ``capacitance`` scalar or ``(N,)`` F.
    Events (``inputs`` with ``drive0``, ``nudge_on``/``nudge_flip`` with ``beta``, ``nudge_off``,
    ``program`` with ``apply`` a callable ``(sim) -> PackedNetwork | None``, ``read_back``) are
    applied by :meth:`settle` and :meth:`advance_to`.
    """

    def __init__(self, packed: PackedNetwork, V: np.ndarray, drive0: np.ndarray, target: np.ndarray | None = None,
                 capacitance=DEFAULT_CAPACITANCE, U: np.ndarray | None = None,
                 options: TransientOptions | None = None, tol: float = 1e-9, max_sweeps: int = 10_000,
                 t0: float = 0.0):
        self.options = (options or TransientOptions()).check()
        self.packed = packed
        spec = packed.net.spec
        self.C = check_capacitance(capacitance, spec)
        self.V = np.array(V, dtype=np.float64)
        B, N = self.V.shape
        if N != spec.n_free:
            raise ValueError(f"V has {N} nodes per sample, the network has {spec.n_free} free nodes")
        self.target = (np.zeros((B, spec.n_classes)) if target is None
                       else np.ascontiguousarray(target, dtype=np.float64))
        self.tol = float(tol)
        self.max_sweeps = int(max_sweeps)
        self.sample_offset = 0  # added to sample indices in error messages (the batch's first sample)
        self.queue = EventQueue(t0)
        self.drive = Ramp.constant(np.ascontiguousarray(drive0, dtype=np.float64))
        self.beta = Ramp.constant(0.0)
        self.amp_mask = _amp_info(packed)
        self._diode_mask = np.zeros(spec.n_free, dtype=bool)
        for l in range(packed.has_diode.shape[0]):
            if packed.has_diode[l]:
                self._diode_mask[packed.noff[l]:packed.noff[l + 1]] = True
        amp = spec.amplifier
        tau = self.options.amp_tau if self.options.amp_tau is not None else (amp.time_constant if amp else 0.0)
        self.amp_tau = float(tau) if self.amp_mask.any() else 0.0
        if self.amp_tau > 0.0:
            self.U = self._u_rest(self.V) if U is None else np.array(U, dtype=np.float64)
        else:
            self.U = None
        self.readings: list[tuple[float, np.ndarray]] = []
        # the settle time constant is computed once for the strongest nudge seen (a -beta nudge
        # slows the outputs; one bound for every phase saves an eigenvalue problem per phase)
        self.beta_bound = 0.0
        self._tau_cache: dict[float, tuple[float, float]] = {}

    # -- basic quantities --------------------------------------------------------------------
    @property
    def now(self) -> float:
        return self.queue.now

    def _u_rest(self, V):
        p = self.packed
        U = np.zeros_like(V)
        m = self.amp_mask
        U[:, m] = np.clip(p.amp_gain[m] * V[:, m] + p.amp_off[m], -p.amp_sat[m], p.amp_sat[m])
        return U

    def time_constants(self, beta: float) -> tuple[float, float]:
        key = float(beta)
        if key not in self._tau_cache:
            tf, ts = time_constants(self.packed, self.C, key, self.amp_tau)
            if self.options.tau_slow is not None:
                ts = self.options.tau_slow
            self._tau_cache[key] = (tf, ts, slowest_rate(self.packed, self.C, key))
        return self._tau_cache[key][:2]

    def _check_stable(self, name: str, beta: float) -> float:
        """The settle time constant's nudge: the strongest ``-beta`` seen, or the phase's own when
        that one leaves no stable equilibrium; raises :class:`UnstableCircuitError` when the
        phase's own nudge leaves none."""
        key = -self.beta_bound
        self.time_constants(key)
        lam = self._tau_cache[key][2]
        if lam is not None and lam <= 0.0 and beta != key:
            key = min(beta, 0.0)
            self.time_constants(key)
            lam = self._tau_cache[key][2]
        if lam is not None and lam <= 0.0:
            raise UnstableCircuitError(
                f"phase {name!r}: the circuit (linearised, diodes off) has no stable equilibrium with the nudge "
                f"beta = {beta:.4g} S (slowest "
                f"mode grows at {-lam:.3g} 1/s): a -beta nudge must stay below the conductance that holds the "
                f"outputs; the DC solver would return an unstable stationary point. Use a smaller beta.",
                phase=name)
        return key

    def rates(self, V, U, t, idx=None):
        """``(dV/dt, du/dt)`` (V/s) at time ``t`` for the samples ``idx`` (all when None)."""
        d0 = self.drive(t)
        tgt = self.target
        if idx is not None:
            d0, tgt = d0[idx], tgt[idx]
        I = node_currents_state(self.packed, d0, V, U, self.beta(t), tgt)
        f = I / self.C
        g = None
        if U is not None:
            g = np.zeros_like(U)
            m = self.amp_mask
            p = self.packed
            u_rest = np.clip(p.amp_gain[m] * V[:, m] + p.amp_off[m], -p.amp_sat[m], p.amp_sat[m])
            g[:, m] = (u_rest - U[:, m]) / self.amp_tau
        return f, g

    # -- events ------------------------------------------------------------------------------
    def apply(self, ev) -> None:
        """Apply one event at the current time."""
        t = self.now
        if ev.kind == "inputs":
            self.drive = Ramp(self.drive(t), np.ascontiguousarray(ev.data["drive0"], dtype=np.float64), t, ev.rise_time)
            if "target" in ev.data:
                self.target = np.ascontiguousarray(ev.data["target"], dtype=np.float64)
        elif ev.kind in ("nudge_on", "nudge_flip"):
            if "target" in ev.data:
                self.target = np.ascontiguousarray(ev.data["target"], dtype=np.float64)
            self.beta = Ramp(self.beta(t), float(ev.data["beta"]), t, ev.rise_time)
        elif ev.kind == "nudge_off":
            self.beta = Ramp(self.beta(t), 0.0, t, ev.rise_time)
        elif ev.kind == "program":
            fn = ev.data.get("apply")
            new = fn(self) if fn is not None else None
            if new is not None:
                self.packed = new
                self._tau_cache.clear()
        elif ev.kind == "read_back":
            self.readings.append((t, self.V.copy()))

    def apply_due(self) -> None:
        """Apply every event scheduled at or before the current time."""
        while self.queue and self.queue.next_time <= self.now:
            self.apply(self.queue.pop())

    # -- stepping ----------------------------------------------------------------------------
    def _stage(self, t, kh, Z, Zu, V, idx, stats_sw, stats_dl, solves):
        """One implicit stage ``C (V' - Z)/kh = I(V', U', t)``; solves ``V`` in place.

        Returns ``(U', dV/dt, du/dt)`` at the stage's end (``U'``/``du/dt`` None without lag).
        """
        p = self.packed
        cap = self.C / kh
        d0 = self.drive(t)
        tgt = self.target
        if idx is not None:
            d0, tgt = d0[idx], tgt[idx]
        Unew = g = None
        if self.U is not None:
            alpha = self.amp_tau / (self.amp_tau + kh)
            m = self.amp_mask
            s = 1.0 - alpha
            pk = dataclasses.replace(p, amp_gain=np.where(m, s * p.amp_gain, p.amp_gain),
                                     amp_off=np.where(m, s * p.amp_off, p.amp_off),
                                     amp_sat=np.where(m, s * p.amp_sat, p.amp_sat))
            c = np.where(m, alpha * Zu, 0.0)
            extra = np.zeros_like(Z)
            for l in range(p.has_amp.shape[0]):
                if p.has_amp[l]:
                    sl = slice(p.noff[l], p.noff[l + 1])
                    nx = slice(p.noff[l + 1], p.noff[l + 2])
                    extra[:, sl] -= p.amp_back[sl] * p.rowsum_up[sl] * c[:, sl]
                    extra[:, nx] += c[:, sl] @ p.net.weights[l + 1]
            v_prev = Z + extra / cap
        else:
            pk = p
            v_prev = Z
        st = solve(pk, d0, V, self.beta(t), tgt, cap=cap, v_prev=np.ascontiguousarray(v_prev),
                   tol=self._stage_tol, max_sweeps=self.max_sweeps)
        stats_sw += st.sweeps
        stats_dl[...] = st.delta
        solves += 1
        f = (V - Z) / kh
        if self.U is not None:
            m = self.amp_mask
            Unew = np.where(m, c + (1.0 - alpha) * np.clip(p.amp_gain * V + p.amp_off, -p.amp_sat, p.amp_sat), 0.0)
            g = (Unew - Zu) / kh
        return Unew, f, g

    def _guess(self, Va, Z, fa, kh):
        """Warm start of a stage ``C (V - Z)/kh = I(V)``: one Jacobi step from ``Va`` (where
        ``I = C*fa``) with each node's own linear conductance, ``V = Va + (C (Z - Va)/kh + C fa) /
        (C/kh + G)``: exact for an isolated linear node, never overshooting for a stiff one."""
        c = self.C / kh
        return Va + (c * (Z - Va) + self.C * fa) / (c + self._g_node + self._diode_conductance(Va))

    def _diode_conductance(self, V):
        """Small-signal conductance (S) of each node's diode pair at ``V`` (0 for diode-free nodes)."""
        p = self.packed
        m = self._diode_mask
        out = np.zeros_like(V)
        if m.any():
            v = V[:, m]
            x1 = np.minimum((v - p.v_hi[m]) / p.n_vt, 80.0)
            x2 = np.minimum((p.v_lo[m] - v) / p.n_vt, 80.0)
            g = (p.i_s / p.n_vt) * (np.exp(x1) + np.exp(x2))
            if p.r_s > 0:
                g = g / (1.0 + g * p.r_s)
            out[:, m] = g
        return out

    def _step(self, t, h, V, U, f, g, idx, sw, dl, solves):
        """One step of the configured method from ``(V, U)`` at ``t``: new state, rates, error estimate."""
        lag = U is not None
        if self.options.method == "be":
            V1 = self._guess(V, V, f, h)
            U1, f1, g1 = self._stage(t + h, h, V, U, V1, idx, sw, dl, solves)
            est = 0.5 * h * (f1 - f)
            est_u = 0.5 * h * (g1 - g) if lag else None
            return V1, U1, f1, g1, est, est_u
        k = _KAPPA * h
        # trapezoidal stage to t + gamma*h
        Z = V + k * f
        Zu = U + k * g if lag else None
        Vg = self._guess(V, Z, f, k)
        Ug, fg, gg = self._stage(t + _GAMMA * h, k, Z, Zu, Vg, idx, sw, dl, solves)
        # BDF2 stage to t + h
        a = 1.0 / (_GAMMA * (2.0 - _GAMMA))
        b = (1.0 - _GAMMA) ** 2 * a
        Z = a * Vg - b * V
        Zu = a * Ug - b * U if lag else None
        V1 = self._guess(Vg, Z, fg, k)
        U1, f1, g1 = self._stage(t + h, k, Z, Zu, V1, idx, sw, dl, solves)
        c0, c1, c2 = 1.0 / _GAMMA, 1.0 / (_GAMMA * (1.0 - _GAMMA)), 1.0 / (1.0 - _GAMMA)
        est = (2.0 * _ERRC * h) * (c0 * f - c1 * fg + c2 * f1)
        est_u = (2.0 * _ERRC * h) * (c0 * g - c1 * gg + c2 * g1) if lag else None
        return V1, U1, f1, g1, est, est_u

    def _integrate(self, name: str, t_stop: float, settle: bool, trace=None) -> PhaseStats:
        """Integrate from ``now`` until every sample has settled (``settle``; then ``t_stop`` None
        means the phase's time limit or the next event) or until ``t_stop``."""
        with batch_threads(self.V.shape[0], self.options.serial_below):
            return self._integrate_batch(name, t_stop, settle, trace)

    def _integrate_batch(self, name, t_stop, settle, trace):
        opt = self.options
        V, U = self.V, self.U
        B, N = V.shape
        t_start = self.now
        self._stage_tol = self.tol
        self._g_node = self.packed.gdiag + np.where(self.amp_mask, self.packed.amp_back * self.packed.rowsum_up
                                                    * np.abs(self.packed.amp_gain), 0.0)
        s_act = np.full(B, np.inf)  # latest max|dV/dt|*tau_slow per sample
        settle_tol = opt.settle_tol if opt.settle_tol is not None else self.tol
        self.beta_bound = max(self.beta_bound, abs(float(self.beta.new)), abs(float(self.beta.old)))
        tau_fast, tau_slow = self.time_constants(self._check_stable(name, float(self.beta.new)))
        if t_stop is None:
            t_max = opt.t_max if opt.t_max is not None else max(1e-3, 1e4 * tau_slow)
            t_stop = min(t_start + t_max, self.queue.next_time)
        h_max = opt.h_max if opt.h_max is not None else 100.0 * tau_slow
        ramp_end = max(self.drive.t_end, self.beta.t_end)
        bps = sorted({b for r in (self.drive, self.beta) for b in r.breakpoints() if b > t_start})
        p_order = 2.0 if opt.method == "be" else 3.0

        steps = np.zeros(B, dtype=np.int64)
        sweeps = np.zeros(B, dtype=np.int64)
        solves = np.zeros(B, dtype=np.int64)
        rejected = np.zeros(B, dtype=np.int64)
        delta = np.zeros(B)
        settle_time = np.full(B, np.nan)

        f, g = self.rates(V, U, t_start)
        G = np.maximum(self.packed.gdiag, 1e-300)
        scale = np.abs(f * (self.C / G)).max(axis=1)  # linear prediction of each sample's swing (V)
        V0 = V.copy()
        swing = np.zeros(B)

        tr_idx = None if trace is None else np.asarray(trace, dtype=np.int64)
        tr_t, tr_v, tr_f, tr_u = [], [], [], []

        def record(t):
            if tr_idx is None:
                return
            tr_t.append(t - t_start)
            tr_v.append(V[tr_idx].copy())
            tr_f.append(f[tr_idx].copy())
            if U is not None:
                tr_u.append(U[tr_idx][:, self.amp_mask].copy())
            else:
                tr_u.append(self._u_rest(V[tr_idx])[:, self.amp_mask])

        def settled_now(fv, gv):
            s = np.abs(fv).max(axis=1)
            if gv is not None:
                s = np.maximum(s, np.abs(gv).max(axis=1))
            return s * tau_slow < settle_tol, s * tau_slow

        # physical settle time: the tail beyond a step decays at least as fast as tau_slow, so
        # t_k + tau_slow*ln(s_k/settle_tol) bounds it from above; the best bound over the steps
        estimate = np.full(B, np.inf)

        def bound(t, s, ids, tl):
            # only from steps that resolve the remaining transient (s well above the local error
            # tolerance: an L-stable step can annihilate a mode it does not resolve)
            cand = (t - t_start) + tau_slow * np.log(np.maximum(s / settle_tol, 1.0))
            ok = s >= 10.0 * tl
            estimate[ids[ok]] = np.minimum(estimate[ids[ok]], cand[ok])

        record(t_start)
        active = np.arange(B)
        if settle and t_start >= ramp_end:
            done, s0 = settled_now(f, g)
            bound(t_start, s0, active, opt.atol + opt.rtol * scale)
            settle_time[done] = 0.0
            active = active[~done]

        if opt.h0 is not None:
            h = opt.h0
        else:
            c = 0.5 if opt.method == "be" else _ERRC
            h = tau_fast * min(1.0, 0.5 * (opt.rtol / c) ** (1.0 / p_order))
        h_min = 1e-9 * tau_fast
        t = t_start
        n_tries = 0
        full = active.size == B
        while active.size:
            if t >= t_stop * (1 - 1e-15) and t_stop < math.inf:
                if not settle:
                    break
                _, s = settled_now(f[active], g[active] if g is not None else None)
                w = int(active[np.argmax(s)])
                raise SettleError(
                    f"phase {name!r} did not settle within {t - t_start:.4g} s: {active.size} of {B} samples still "
                    f"moving (sample {w}: max |dV/dt| * tau_slow = {s.max():.3g} V, tolerance {settle_tol:.3g} V, "
                    f"tau_slow = {tau_slow:.3g} s); raise the phase's time limit (t_max, now {t_stop - t_start:.3g} s) "
                    f"or lower the capacitances", phase=name, sample=w, time=t)
            if n_tries >= opt.max_steps:
                raise SettleError(f"phase {name!r}: {opt.max_steps} steps did not reach the end of the phase "
                                  f"(t = {t - t_start:.4g} s, step {h:.3g} s)", phase=name, time=t)
            n_tries += 1
            hh = min(h, h_max, t_stop - t)
            hit_bp = False
            for bp in bps:
                if t < bp < t + hh * (1 + 1e-12):
                    hh, hit_bp = bp - t, True
                    break
            # stage solves need only be accurate well below the local error tolerance and, near
            # the end, below the settle tolerance (the rates come from the solved stages)
            kh = hh if opt.method == "be" else _KAPPA * hh
            tl = opt.atol + opt.rtol * np.maximum(swing[active], scale[active])
            self._stage_tol = max(self.tol, min(1e-2 * float(tl.min()),
                                                0.1 * float(s_act[active].min()) * min(1.0, kh / tau_slow)))
            idx = None if full else active
            Va = V if full else V[active]
            Ua = None if U is None else (U if full else U[active])
            fa = f if full else f[active]
            ga = None if g is None else (g if full else g[active])
            sw = np.zeros(active.size, dtype=np.int64)
            dl = np.zeros(active.size)
            ns = np.zeros(active.size, dtype=np.int64)
            try:
                V1, U1, f1, g1, est, est_u = self._step(t, hh, Va, Ua, fa, ga, idx, sw, dl, ns)
            except ConvergenceError as exc:
                b = None if exc.sample is None else int(active[exc.sample]) + self.sample_offset
                res = "" if exc.residual is None else f", largest KCL residual {exc.residual:.3g} A"
                raise ConvergenceError(
                    f"transient phase {name!r}: an implicit stage did not converge (sample {b}, layer {exc.layer}"
                    f"{res}) at t = {t - t_start:.4g} s with step {hh:.3g} s", exc.layer, b, exc.residual) from None
            sweeps[active] += sw
            solves[active] += ns
            delta[active] = dl
            sw_new = np.maximum(swing[active], np.abs(V1 - V0[active]).max(axis=1))
            tol_b = opt.atol + opt.rtol * np.maximum(sw_new, scale[active])
            e = np.abs(est).max(axis=1)
            if est_u is not None:
                e = np.maximum(e, np.abs(est_u).max(axis=1))
            err_b = e / tol_b
            err = float(err_b.max()) if err_b.size else 0.0
            if not np.isfinite(V1).all():
                err = math.inf
            if err <= 1.0 or hh <= h_min:
                if not np.isfinite(V1).all():
                    b, q = np.argwhere(~np.isfinite(V1))[0]
                    b = int(active[b]) + self.sample_offset
                    raise ConvergenceError(f"transient phase {name!r}: non-finite voltage at node {q} of sample "
                                           f"{b} (t = {t - t_start:.4g} s)", sample=b)
                t = min(t + hh, t_stop)
                if full:
                    V[...] = V1
                    f = f1
                    if U is not None:
                        U[...] = U1
                        g = g1
                else:
                    V[active] = V1
                    f[active] = f1
                    if U is not None:
                        U[active] = U1
                        g[active] = g1
                swing[active] = sw_new
                steps[active] += 1
                record(t)
                _, s1 = settled_now(f1, g1)
                s_act[active] = s1
                # a settle decision needs rates from tightly solved stages (a loose stage's error
                # hides in V itself, not in dV/dt)
                if settle and t >= ramp_end:
                    bound(t, s1, active, tol_b)
                if settle and t >= ramp_end and self._stage_tol <= self.tol:
                    done, s1 = settled_now(f1, g1)
                    if done.any():
                        settle_time[active[done]] = np.minimum(estimate[active[done]], t - t_start)
                        active = active[~done]
                        full = False
                fac = opt.growth if err == 0.0 else min(opt.growth, max(0.2, 0.9 * err ** (-1.0 / p_order)))
                # past a ramp's corner the sources' slope jumps: restart with a smaller step
                h = hh * fac if not hit_bp else 0.1 * hh
            else:
                rejected[active] += 1
                h = hh * max(0.1, 0.9 * err ** (-1.0 / p_order)) if math.isfinite(err) else hh * 0.1
                if h < h_min:
                    raise SettleError(f"phase {name!r}: step size underflow ({h:.3g} s) at t = {t - t_start:.4g} s",
                                      phase=name, time=t)
        self.f_last = f
        self.queue.advance_to(t if settle else max(t, self.now))
        trj = None
        if tr_idx is not None:
            trj = Trajectory(np.array(tr_t), np.array(tr_v), np.array(tr_f), np.array(tr_u), tr_idx, t_start)
        return PhaseStats(sweeps, delta, steps, solves, rejected, settle_time, t - t_start, tau_slow, tau_fast,
                          name, trj)

    # -- phases --------------------------------------------------------------------------------
    def settle(self, name: str, trace=None) -> PhaseStats:
        """Apply the events due now, then integrate until every sample has settled.

        The phase's limit is ``options.t_max`` after its start (default ``max(1 ms, 1e4*tau_slow)``)
        or the next pending event,
        whichever is first; :class:`SettleError` (naming the phase) if it comes before settling.
        ``trace``: batch indices of samples whose trajectory is recorded (``stats.trace``).
        """
        self.apply_due()
        return self._integrate(name, None, True, trace)

    def advance_to(self, t: float, name: str = "advance", trace=None) -> PhaseStats:
        """Integrate up to time ``t`` (s) without a settle requirement, applying the events on the
        way (an event loop over a fixed schedule). Returns the statistics (and trace) of the
        whole stretch, segments between events joined (times from the start of the stretch; an
        event's instant appears twice, before and after it)."""
        t = float(t)
        if t < self.now:
            raise ValueError(f"advance_to: {t:.6g} s is before the clock ({self.now:.6g} s)")
        t_begin = self.now
        segs = []
        self.apply_due()
        while True:
            stop = min(t, self.queue.next_time)
            segs.append(self._integrate(name, stop, False, trace))
            if stop >= t:
                break
            self.apply_due()
        self.apply_due()
        out = segs[0]
        for sg in segs[1:]:
            out.sweeps = out.sweeps + sg.sweeps
            out.steps = out.steps + sg.steps
            out.solves = out.solves + sg.solves
            out.rejected = out.rejected + sg.rejected
            out.delta = sg.delta
            if out.trace is not None:
                a, b = out.trace, sg.trace
                shift = b.t0 - a.t0
                a.time = np.concatenate([a.time, b.time + shift])
                a.voltage = np.concatenate([a.voltage, b.voltage])
                a.rate = np.concatenate([a.rate, b.rate])
                a.amplifier = np.concatenate([a.amplifier, b.amplifier])
        out.t_end = self.now - t_begin
        return out


# --------------------------------------------------------------------------------------------
# the function the trainer calls


def run_phases_transient(packed: PackedNetwork, drive0_new: np.ndarray, V: np.ndarray,
                         target: np.ndarray | Callable[[np.ndarray], np.ndarray], beta: float,
                         mode: str = "centred", tol: float = 1e-9,
                         capacitance=DEFAULT_CAPACITANCE, *, drive0_old: np.ndarray | None = None,
                         U: np.ndarray | None = None, options: TransientOptions | None = None, trace=None,
                         max_sweeps: int = 10_000, sample_offset: int = 0) -> Phases:
    """EqProp phases as settled transients; the same :class:`~memsim.eqprop.Phases` as
    :func:`memsim.eqprop.run_phases` (and ``V`` updated in place to the free state).

    Events on one clock: at t = 0 the inputs switch to ``drive0_new`` (A, ``(B, n_1)``; from
    ``drive0_old`` with ``options.rise_time``, or as a step onto the initial state ``V`` when
    ``drive0_old`` is None); the free phase settles; the nudge turns on (``+beta`` S, or ``-beta``
    in ``mode="negative"``) and settles; in ``mode="centred"`` it flips to ``-beta`` and settles;
    the nudge turns off. Each phase starts from the state the previous one settled to.
    ``target``: the nudge's differential targets (V), or a function of the free phase's outputs
    that returns them (set when the nudge turns on), as in :func:`memsim.eqprop.run_phases`.

    ``capacitance``: node capacitances (F), a scalar or ``(N,)`` (:func:`node_capacitance`).
    ``tol``: the block solver's tolerance (V) and, unless ``options.settle_tol`` is set, the
    settle tolerance (``|dV/dt| * tau_slow``, V). ``max_sweeps`` and ``sample_offset`` (added to
    sample indices in error messages) as in :func:`memsim.eqprop.run_phases`, whose positional
    arguments this function shares. ``trace``: batch indices to record
    (:func:`phase_trajectories`). ``ph.stats[phase]`` is a :class:`PhaseStats` (``.sweeps``,
    ``.steps``, ``.settle_time``, ``.t_end``, ``.trace``...). Raises :class:`SettleError` naming
    the phase when one does not settle within ``options.t_max``.
    """
    if mode not in MODES:
        raise ValueError(f"unknown EqProp mode {mode!r} (known: {', '.join(MODES)})")
    opt = (options or TransientOptions()).check()
    start = drive0_new if drive0_old is None else drive0_old
    target_of = target if callable(target) else None
    sim = TransientSimulator(packed, V, start, None if target_of else target, capacitance, U, opt, tol, max_sweeps)
    sim.beta_bound = abs(float(beta))
    sim.sample_offset = int(sample_offset)
    q = sim.queue
    q.schedule(0.0, "inputs", rise_time=opt.rise_time, drive0=drive0_new)
    st = {"free": sim.settle("free", trace)}
    ph = Phases(free=sim.V.copy(), stats=st)
    nudge = {"target": target_of(outputs(packed.net, ph.free))} if target_of else {}
    if mode in ("centred", "positive"):
        q.schedule(sim.now, "nudge_on", rise_time=opt.rise_time, beta=beta, **nudge)
        st["nudge_plus"] = sim.settle("nudge_plus", trace)
        ph.plus = sim.V.copy()
    if mode == "centred":
        q.schedule(sim.now, "nudge_flip", rise_time=opt.rise_time, beta=-beta)
        st["nudge_minus"] = sim.settle("nudge_minus", trace)
        ph.minus = sim.V.copy()
    elif mode == "negative":
        q.schedule(sim.now, "nudge_on", rise_time=opt.rise_time, beta=-beta, **nudge)
        st["nudge_minus"] = sim.settle("nudge_minus", trace)
        ph.minus = sim.V.copy()
    q.schedule(sim.now, "nudge_off", rise_time=opt.rise_time)
    sim.apply_due()
    V[...] = ph.free
    return ph


def phase_trajectories(ph: Phases) -> dict[int, dict[str, tuple[np.ndarray, np.ndarray]]]:
    """The traced trajectories of a :func:`run_phases_transient` result, per traced sample (its
    batch index) and phase: ``{b: {"free": (time (T,) s, voltage (T, N) V), "nudge_plus": ...}}``.
    Time counts from the phase's event (0 = the switch)."""
    out: dict[int, dict[str, tuple[np.ndarray, np.ndarray]]] = {}
    for name, st in ph.stats.items():
        tr = getattr(st, "trace", None)
        if tr is None:
            continue
        for k, b in enumerate(tr.samples):
            out.setdefault(int(b), {})[name] = (tr.time.copy(), np.ascontiguousarray(tr.voltage[:, k, :]))
    return out
