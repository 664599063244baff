"""Kirchhoff currents, co-content energy and loss of the canonical network (plain numpy).

These are the reference definitions the kernels are checked against: written independently of
:mod:`memsim.solve`, vectorised over the batch. Units: volts, amperes, siemens, watts.
"""
from __future__ import annotations

import numpy as np

from memsim.circuit import Network


def _diode_iv(v, i_s, n_vt, r_s):
    from memsim.devices.diode import diode_current

    f = np.vectorize(lambda x: diode_current(float(x), i_s, n_vt, r_s), otypes=[float])
    return f(v)


def _diode_p(v, i_s, n_vt, r_s):
    from memsim.devices.diode import diode_cocontent

    f = np.vectorize(lambda x: diode_cocontent(float(x), i_s, n_vt, r_s), otypes=[float])
    return f(v)


def layer_sources(net: Network, V: np.ndarray) -> list[np.ndarray]:
    """Per free layer, the voltages (V) that drive the crossbar above it: the node voltages, or the
    amplifier outputs ``clip(A*h + V_os, +-V_sat)`` for amplified layers."""
    spec = net.spec
    off = spec.free_offsets
    out = []
    amp = spec.amplifier
    for l in range(spec.n_free_layers):
        v = V[:, off[l]:off[l + 1]]
        if spec.has_amplifier(l):
            v = np.clip(amp.gain * v + amp.offset, -amp.saturation, amp.saturation)
        out.append(v)
    return out


def outputs(net: Network, V: np.ndarray) -> np.ndarray:
    """Differential outputs ``d_k = V(out_k+) - V(out_k-)`` (volts), shape ``(B, C)``."""
    C = net.spec.n_classes
    out = V[:, -2 * C:]
    return out[:, :C] - out[:, C:]


def loss(net: Network, V: np.ndarray, target: np.ndarray) -> np.ndarray:
    """Per-sample squared error ``sum_k (d_k - y_k)^2 / 2`` (V^2)."""
    return 0.5 * ((outputs(net, V) - target) ** 2).sum(axis=1)


def node_currents(net: Network, drive0: np.ndarray, V: np.ndarray, beta: float = 0.0,
                  target: np.ndarray | None = None) -> np.ndarray:
    """Net current (A) into every free node, ``(B, N)``: zero at an exact equilibrium (KCL).

    ``drive0 = V_in @ W_0`` is the input sources' contribution (A).
    """
    spec = net.spec
    off = spec.free_offsets
    L = spec.n_free_layers
    src = layer_sources(net, V)
    vt = spec.diode.emission_coefficient * spec.thermal_voltage
    d = spec.diode
    amp = spec.amplifier
    I = np.zeros_like(V)
    for l in range(L):
        v = V[:, off[l]:off[l + 1]]
        w_in = net.weights[l]
        if l == 0:
            i = drive0 - v * w_in.sum(axis=0)
        else:
            s = src[l - 1]
            i = s @ w_in - v * w_in.sum(axis=0)
        i = i + net.bias_plus[l] * (spec.bias_voltage - v) + net.bias_minus[l] * (-spec.bias_voltage - v)
        if l < L - 1:
            w_up = net.weights[l + 1]
            v_up = V[:, off[l + 1]:off[l + 2]]
            drawn = src[l] * w_up.sum(axis=1) - v_up @ w_up.T  # current the crossbar draws from the source
            i = i - (amp.backward_gain * drawn if spec.has_amplifier(l) else drawn)
            i = i - _diode_iv(v - spec.v_hi, d.saturation_current, vt, d.series_resistance)
            i = i + _diode_iv(spec.v_lo - v, d.saturation_current, vt, d.series_resistance)
        else:
            if beta != 0.0:
                e = outputs(net, V) - target
                i = i + np.concatenate([-beta * e, beta * e], axis=1)
        I[:, off[l]:off[l + 1]] = i
    return I


def region_weights(net: Network) -> np.ndarray:
    """Weight of each crossbar's (and free layer's) energy in the total: the product of
    ``A_b/A`` over the amplifiers upstream of it (1 without amplifiers). Length L."""
    spec = net.spec
    w = np.ones(spec.n_free_layers)
    r = 1.0
    for k in range(spec.n_free_layers):
        if k > 0 and spec.has_amplifier(k - 1):
            r *= spec.amplifier.backward_gain / spec.amplifier.gain
        w[k] = r
    return w


def total_energy(net: Network, v_in: np.ndarray, V: np.ndarray, beta: float = 0.0,
                 target: np.ndarray | None = None) -> np.ndarray:
    """Per sample ``F = sum_regions w * E + w_out * beta * Loss`` (watts).

    ``E`` sums the co-contents of every branch: ``G*dV^2/2`` per conductance and the Shockley
    co-content per diode. Without saturation its gradient w.r.t. node ``j`` of layer ``l`` is
    ``-w_l`` times the net current into the node (see DESIGN.md).
    """
    spec = net.spec
    off = spec.free_offsets
    L = spec.n_free_layers
    src = layer_sources(net, V)
    w = region_weights(net)
    d = spec.diode
    vt = d.emission_coefficient * spec.thermal_voltage
    E = np.zeros(V.shape[0])
    for l in range(L):
        v = V[:, off[l]:off[l + 1]]
        s = v_in if l == 0 else src[l - 1]
        drop = s[:, :, None] - v[:, None, :]
        e = 0.5 * np.einsum("bij,ij->b", drop**2, net.weights[l])
        e += 0.5 * ((spec.bias_voltage - v) ** 2 * net.bias_plus[l]).sum(1)
        e += 0.5 * ((-spec.bias_voltage - v) ** 2 * net.bias_minus[l]).sum(1)
        if l < L - 1:
            e += _diode_p(v - spec.v_hi, d.saturation_current, vt, d.series_resistance).sum(1)
            e += _diode_p(spec.v_lo - v, d.saturation_current, vt, d.series_resistance).sum(1)
        E += w[l] * e
    if beta != 0.0:
        E += w[-1] * beta * loss(net, V, target)
    return E
