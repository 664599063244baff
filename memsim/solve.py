"""Equilibrium of the canonical network by exact block coordinate descent (Numba kernels).

Given its neighbouring layers, each node of a layer is independent: its KCL is a scalar, strictly
monotone equation (conductances, the diode pair, the amplifier's backward current), solved by
safeguarded Newton. Odd and even free layers are updated alternately until the largest change of a
sweep is below ``tol`` volts. The output layer is linear; with the nudge its ``out+``/``out-`` pairs
are coupled and solved exactly as 2x2 systems.

The same kernel is the implicit (backward-Euler) transient step: each node carries a capacitive
term ``cap = C_n/h`` (siemens) towards ``v_prev``; ``cap = 0`` is the DC problem.

The input layer's contribution (``drive0 = V_in @ W_0``) is computed once per sample, outside the
sweeps.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numba import prange

from memsim.circuit import Network, input_voltages
from memsim.devices.amplifier import amplifier_output, amplifier_output_slope
from memsim.devices.diode import diode_current_and_conductance
from memsim.jit import batch_threads, njit, pjit


class ConvergenceError(RuntimeError):
    """A solve that did not reach its tolerance; names the layer, sample and residual."""

    def __init__(self, message, layer=None, sample=None, residual=None):
        super().__init__(message)
        self.layer, self.sample, self.residual = layer, sample, residual


# --------------------------------------------------------------------------------------------
# scalar node problem


@njit
def node_kcl(v, a, g, diode_on, v_lo, v_hi, i_s, n_vt, r_s, amp_on, gain, back, off, vsat, s_up, t_up):
    """Net current (A) into a node at voltage ``v`` and its derivative (S, always < 0).

    ``a - g*v`` are the linear branches; the diode pair clamps to ``[v_lo, v_hi]``; with an
    amplifier the node also sources ``-back*(s_up*u(v) - t_up)``.
    """
    f = a - g * v
    df = -g
    if diode_on:
        i1, g1 = diode_current_and_conductance(v - v_hi, i_s, n_vt, r_s)
        i2, g2 = diode_current_and_conductance(v_lo - v, i_s, n_vt, r_s)
        f += i2 - i1
        df -= g1 + g2
    if amp_on:
        u = amplifier_output(v, gain, off, vsat)
        f -= back * (s_up * u - t_up)
        df -= back * s_up * amplifier_output_slope(v, gain, off, vsat)
    return f, df


@njit
def solve_node(v0, a, g, diode_on, v_lo, v_hi, i_s, n_vt, r_s, amp_on, gain, back, off, vsat, s_up, t_up):
    """Root (V) of the node's KCL by safeguarded Newton (bracketing + bisection), from ``v0``."""
    lo = -math.inf
    hi = math.inf
    v = v0
    f, df = node_kcl(v, a, g, diode_on, v_lo, v_hi, i_s, n_vt, r_s, amp_on, gain, back, off, vsat, s_up, t_up)
    dx_old = math.inf
    for _ in range(200):
        if f == 0.0:
            return v
        if f > 0.0:
            lo = v
        else:
            hi = v
        dx = -f / df
        if abs(dx) <= 1e-14 + 1e-13 * abs(v):
            return v + dx
        vn = v + dx
        if lo > -math.inf and hi < math.inf:
            # safeguard: bisect when Newton leaves the bracket or stalls (slow far in a diode's
            # exponential, where each Newton step only moves by about n*Vt)
            if vn <= lo or vn >= hi or abs(dx) > 0.5 * abs(dx_old):
                vn = 0.5 * (lo + hi)
        elif dx > 2.0:
            vn = v + 2.0
        elif dx < -2.0:
            vn = v - 2.0
        dx_old = vn - v
        v = vn
        f, df = node_kcl(v, a, g, diode_on, v_lo, v_hi, i_s, n_vt, r_s, amp_on, gain, back, off, vsat, s_up, t_up)
    return v


# --------------------------------------------------------------------------------------------
# batched block coordinate descent


@pjit
def solve_batch(V, drive0, wflat, woff, sizes, noff, gdiag, ibias, rowsum_up, has_diode, has_amp,
                v_lo, v_hi, i_s, n_vt, r_s, amp_gain, amp_back, amp_off, amp_sat,
                beta, target, cap, v_prev, tol, max_sweeps, sweeps_out, delta_out, work):
    """Solve every sample of the batch in place (``V``: ``(B, N)`` free-node voltages, warm start).

    drive0   (B, sizes[1])  input current sum_i W0[i,j]*V_in[i] (A)
    wflat    crossbars 1..L-1 flattened row-major; crossbar k starts at woff[k]
    sizes    node counts (inputs first); noff start of each free layer in V (length L+1)
    gdiag    (N,) conductance of each node's linear branches (S); ibias (N,) bias-rail current (A)
    rowsum_up (N,) sum of the crossbar above (S), used for amplified layers
    has_diode, has_amp  (L,) int flags per free layer
    beta     nudge (S); target (B, C) differential targets (V)
    cap      (N,) capacitive conductance C/h (S); v_prev (B, N) previous voltages (V)
    work     (B, 2, max layer size) scratch
    Returns nothing; per sample the sweep count and the last sweep's largest change (V) are
    written to ``sweeps_out`` and ``delta_out``.
    """
    B = V.shape[0]
    L = sizes.shape[0] - 1
    C = sizes[L] // 2
    for b in prange(B):
        v = V[b]
        below = work[b, 0]
        above = work[b, 1]
        dmax = math.inf
        sweep = 0
        while sweep < max_sweeps:
            sweep += 1
            dmax = 0.0
            for parity in range(2):
                for l in range(parity, L, 2):
                    o = noff[l]
                    n = sizes[l + 1]
                    # current from the layer below (inputs precomputed)
                    if l == 0:
                        for j in range(n):
                            below[j] = drive0[b, j]
                    else:
                        for j in range(n):
                            below[j] = 0.0
                        po = noff[l - 1]
                        w0 = woff[l]
                        for i in range(sizes[l]):
                            if has_amp[l - 1]:
                                s = amplifier_output(v[po + i], amp_gain[po + i], amp_off[po + i], amp_sat[po + i])
                            else:
                                s = v[po + i]
                            base = w0 + i * n
                            for j in range(n):
                                below[j] += wflat[base + j] * s
                    # current from the layer above
                    if l < L - 1:
                        no = noff[l + 1]
                        nn = sizes[l + 2]
                        w1 = woff[l + 1]
                        for j in range(n):
                            acc = 0.0
                            base = w1 + j * nn
                            for m in range(nn):
                                acc += wflat[base + m] * v[no + m]
                            above[j] = acc
                    else:
                        for j in range(n):
                            above[j] = 0.0
                    if l == L - 1:
                        # output layer: linear, out+/out- pairs coupled by the nudge
                        for k in range(C):
                            jp = o + k
                            jm = o + C + k
                            ap = below[k] + above[k] + ibias[jp] + cap[jp] * v_prev[b, jp]
                            am = below[C + k] + above[C + k] + ibias[jm] + cap[jm] * v_prev[b, jm]
                            gp = gdiag[jp] + cap[jp]
                            gm = gdiag[jm] + cap[jm]
                            if beta == 0.0:
                                vp = ap / gp
                                vm = am / gm
                            else:
                                y = target[b, k]
                                a11 = gp + beta
                                a22 = gm + beta
                                r1 = ap + beta * y
                                r2 = am - beta * y
                                det = a11 * a22 - beta * beta
                                vp = (r1 * a22 + beta * r2) / det
                                vm = (a11 * r2 + beta * r1) / det
                            d = max(abs(vp - v[jp]), abs(vm - v[jm]))
                            if d > dmax:
                                dmax = d
                            v[jp] = vp
                            v[jm] = vm
                    else:
                        amp_on = has_amp[l] != 0
                        diode_on = has_diode[l] != 0
                        for j in range(n):
                            q = o + j
                            a = below[j] + ibias[q] + cap[q] * v_prev[b, q]
                            if not amp_on:
                                a += above[j]
                            g = gdiag[q] + cap[q]
                            vn = solve_node(v[q], a, g, diode_on, v_lo[q], v_hi[q], i_s, n_vt, r_s,
                                            amp_on, amp_gain[q], amp_back[q], amp_off[q], amp_sat[q],
                                            rowsum_up[q], above[j])
                            d = abs(vn - v[q])
                            if d > dmax:
                                dmax = d
                            v[q] = vn
            if not (dmax >= tol):  # converged (or NaN: reported by the caller)
                break
        sweeps_out[b] = sweep
        delta_out[b] = dmax


# --------------------------------------------------------------------------------------------
# packing a network into kernel arrays


@dataclass
class PackedNetwork:
    """A :class:`Network` converted once into the contiguous arrays the kernels take."""

    net: Network
    w0: np.ndarray
    wflat: np.ndarray
    woff: np.ndarray
    sizes: np.ndarray
    noff: np.ndarray
    gdiag: np.ndarray
    ibias: np.ndarray
    rowsum_up: np.ndarray
    has_diode: np.ndarray
    has_amp: np.ndarray
    v_lo: np.ndarray
    v_hi: np.ndarray
    amp_gain: np.ndarray
    amp_back: np.ndarray
    amp_off: np.ndarray
    amp_sat: np.ndarray
    i_s: float
    n_vt: float
    r_s: float


def pack(net: Network, amp_gain=None, amp_back=None, amp_off=None) -> PackedNetwork:
    """Pack ``net``'s conductances and constants for :func:`solve_batch`.

    ``amp_gain``, ``amp_back``, ``amp_off`` optionally override the amplifier card per free node
    (length N arrays: device-to-device spread of the amplifiers).
    """
    spec = net.spec
    sizes = np.asarray(spec.sizes, dtype=np.int64)
    L = spec.n_free_layers
    noff = spec.free_offsets
    N = spec.n_free
    woff = np.zeros(L, dtype=np.int64)
    parts = []
    pos = 0
    for k in range(1, L):
        woff[k] = pos
        parts.append(np.ascontiguousarray(net.weights[k], dtype=np.float64).ravel())
        pos += net.weights[k].size
    wflat = np.concatenate(parts) if parts else np.zeros(1)
    has_amp = np.array([spec.has_amplifier(l) for l in range(L)], dtype=np.int64)
    has_diode = np.array([l < L - 1 for l in range(L)], dtype=np.int64)
    gdiag = np.empty(N)
    ibias = np.empty(N)
    rowsum_up = np.zeros(N)
    for l in range(L):
        sl = slice(noff[l], noff[l + 1])
        g = net.weights[l].sum(axis=0) + net.bias_plus[l] + net.bias_minus[l]
        if l < L - 1:
            up = net.weights[l + 1].sum(axis=1)
            rowsum_up[sl] = up
            if not has_amp[l]:
                g = g + up
        gdiag[sl] = g
        ibias[sl] = spec.bias_voltage * (net.bias_plus[l] - net.bias_minus[l])
    amp = spec.amplifier
    full = lambda val: np.full(N, val, dtype=np.float64)  # noqa: E731
    return PackedNetwork(
        net=net,
        w0=np.ascontiguousarray(net.weights[0], dtype=np.float64),
        wflat=wflat,
        woff=woff,
        sizes=sizes,
        noff=noff,
        gdiag=gdiag,
        ibias=ibias,
        rowsum_up=rowsum_up,
        has_diode=has_diode,
        has_amp=has_amp,
        v_lo=full(spec.v_lo),
        v_hi=full(spec.v_hi),
        amp_gain=np.asarray(amp_gain, dtype=np.float64) if amp_gain is not None else full(amp.gain if amp else 1.0),
        amp_back=np.asarray(amp_back, dtype=np.float64) if amp_back is not None else full(amp.backward_gain if amp else 1.0),
        amp_off=np.asarray(amp_off, dtype=np.float64) if amp_off is not None else full(amp.offset if amp else 0.0),
        amp_sat=full(amp.saturation if amp else math.inf),
        i_s=spec.diode.saturation_current,
        n_vt=spec.diode.emission_coefficient * spec.thermal_voltage,
        r_s=spec.diode.series_resistance,
    )


def input_drive(packed: PackedNetwork, v_in: np.ndarray) -> np.ndarray:
    """Current (A) the input sources push into the first free layer: ``V_in @ W_0``, ``(B, n_1)``."""
    return np.ascontiguousarray(v_in @ packed.w0)


@dataclass
class SolveStats:
    sweeps: np.ndarray  # (B,) sweeps used per sample
    delta: np.ndarray  # (B,) largest voltage change of the last sweep (V)


def solve(packed: PackedNetwork, drive0: np.ndarray, V: np.ndarray, beta: float = 0.0,
          target: np.ndarray | None = None, cap: np.ndarray | None = None, v_prev: np.ndarray | None = None,
          tol: float = 1e-9, max_sweeps: int = 10_000, check: bool = True, sample_offset: int = 0) -> SolveStats:
    """Solve the equilibrium in place in ``V`` (``(B, N)`` volts, the warm start on entry).

    ``drive0`` from :func:`input_drive`; ``beta`` the nudge (S) towards ``target`` (``(B, C)`` V);
    ``cap``/``v_prev`` the backward-Euler capacitive term (omit for DC).
    ``sample_offset`` is added to the sample index in error messages (the batch's first sample).
    Raises :class:`ConvergenceError` (naming sample, layer and residual) when ``check`` and a sample
    did not converge or went non-finite.
    """
    B, N = V.shape
    C = packed.net.spec.n_classes
    if target is None:
        target = np.zeros((B, C))
    if cap is None:
        cap = np.zeros(N)
    if v_prev is None:
        v_prev = V
    sweeps = np.zeros(B, dtype=np.int64)
    delta = np.zeros(B)
    work = np.zeros((B, 2, int(max(packed.sizes[1:]))))
    with batch_threads(B):
        solve_batch(V, drive0, packed.wflat, packed.woff, packed.sizes, packed.noff, packed.gdiag, packed.ibias,
                    packed.rowsum_up, packed.has_diode, packed.has_amp, packed.v_lo, packed.v_hi,
                    packed.i_s, packed.n_vt, packed.r_s, packed.amp_gain, packed.amp_back, packed.amp_off,
                    packed.amp_sat, float(beta), np.ascontiguousarray(target, dtype=np.float64), cap,
                    np.ascontiguousarray(v_prev), float(tol), int(max_sweeps), sweeps, delta, work)
    stats = SolveStats(sweeps, delta)
    if check:
        bad = ~(delta < tol) | ~np.isfinite(V).all(axis=1)
        if bad.any():
            b = int(np.flatnonzero(bad)[0])
            noff = packed.noff
            finite = np.isfinite(V[b])
            if not finite.all():
                q = int(np.flatnonzero(~finite)[0])
                layer = int(np.searchsorted(noff, q, side="right") - 1)
                raise ConvergenceError(
                    f"equilibrium solve produced a non-finite voltage in layer {layer}, sample {b + sample_offset}",
                    layer=layer, sample=b + sample_offset, residual=math.nan)
            from memsim.energy import node_currents

            cur = np.abs(node_currents(packed.net, drive0[b:b + 1], V[b:b + 1], beta,
                                       None if target is None else target[b:b + 1]))[0]
            q = int(np.argmax(cur))
            layer = int(np.searchsorted(noff, q, side="right") - 1)
            raise ConvergenceError(
                f"equilibrium solve did not converge: sample {b + sample_offset}, layer {layer}, largest KCL residual "
                f"{cur[q]:.3g} A, last sweep changed a node by {float(delta[b]):.3g} V after {int(sweeps[b])} "
                f"sweeps (tolerance {tol:g} V)", layer=layer, sample=b + sample_offset, residual=float(cur[q]))
    return stats


def free_equilibrium(net: Network, x: np.ndarray, tol: float = 1e-9, V0: np.ndarray | None = None,
                     beta: float = 0.0, target: np.ndarray | None = None) -> np.ndarray:
    """Convenience: the equilibrium voltages ``(B, N)`` of ``net`` for features ``x`` (``(B, F)``)."""
    packed = pack(net)
    drive0 = input_drive(packed, input_voltages(net.spec, x))
    V = np.zeros((len(x), net.spec.n_free)) if V0 is None else np.array(V0, dtype=np.float64)
    solve(packed, drive0, V, beta=beta, target=target, tol=tol)
    return V
