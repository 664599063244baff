"""ngspice netlists of the canonical network (DESIGN.md section 1), one sample and phase each.

The netlist uses exactly the node names of :func:`memsim.circuit.node_names` (``inp{i}``/``inn{i}``
inputs, ``h{l}_{j}`` hidden nodes, ``u{l}_{j}`` amplifier outputs, ``outp{k}``/``outn{k}`` outputs),
so that ngspice's operating point and memsim's equilibrium can be compared node by node
(:func:`named_voltages` gives memsim's side as the same mapping).

Elements and conventions (checked against :func:`memsim.energy.node_currents`, the reference KCL):

* inputs: ideal sources ``V(inp_i) = +g_in*x_i``, ``V(inn_i) = -g_in*x_i``; rails ``rail_bp``
  (``+V_b``), ``rail_bn`` (``-V_b``), ``rail_lo`` (``V_lo``), ``rail_hi`` (``V_hi``);
* every conductance ``G > 0`` a resistor ``R = 1/G`` (``G = 0`` is an open circuit: omitted);
* every hidden node a diode pair: ``node -> rail_hi`` and ``rail_lo -> node`` (anode -> cathode),
  one ``.model`` from the :class:`~memsim.devices.cards.DiodeCard` (``IS``, ``N``, ``RS``);
* amplifiers: forward ``u = clip(A*h + V_os, +-V_sat)`` (a B source with ``min``/``max`` when
  ``V_sat`` is finite, else an E element referenced to an offset rail) feeding ``u`` through a
  0 V sense source; backward an F element drawing ``A_b * I_u`` from ``h`` to ground;
* nudge (``nudge_plus``: ``+beta``, ``nudge_minus``: ``-beta``): a G element ``outp -> outn``
  controlled by ``V(outp) - V(outn)`` with transconductance ``beta`` (``-beta*d`` into ``outp``,
  ``+beta*d`` into ``outn``) and a DC current source putting ``+beta*y`` into ``outp`` and
  ``-beta*y`` into ``outn``: together ``-beta*(d - y)`` and ``+beta*(d - y)``.

Two deliberate details make ngspice reproduce memsim's physics to ~1e-7 V:

* ``gmin`` is set to 1e-18 S (ngspice's default 1e-12 S sits in parallel with every diode);
* ngspice 39 computes ``Vt = k*T/q`` with the CODATA 2014 constants, memsim with the exact
  SI 2019 ones (``Vt`` differs by 3.4e-7 relative, ~1e-7 V on a diode drop). With
  ``exact_vt=True`` (default) the netlist's temperature is scaled by that ratio so that ngspice's
  ``Vt`` equals memsim's; ``temp`` and ``tnom`` are set equal, so ``IS`` is not temperature-scaled.

What is *not* the same: below ``-3*n*Vt`` of reverse bias ngspice's diode replaces
``Is*(exp(V/nVt) - 1)`` by ``-Is*(1 + (3*nVt/(e*V))^3)`` (at most 0.4% of ``Is`` apart, i.e.
~1e-11 A for the bundled cards), which is why agreement is ~1e-7 V rather than 1e-12 V.
"""
from __future__ import annotations

import math

import numpy as np

from memsim.circuit import Network, input_voltages, node_names

PHASES = ("free", "nudge_plus", "nudge_minus")
DIODE_MODES = ("model", "shockley")

# ngspice 39 (src/include/ngspice/const.h): CODATA 2014 values, and 0 C in kelvin
NGSPICE_BOLTZMANN = 1.38064852e-23
NGSPICE_CHARGE = 1.6021766208e-19
NGSPICE_CTOK = 273.15

RAW_FILE = "memsim_op.raw"


def _num(v: float) -> str:
    """A number in a form ngspice reads back exactly (17 significant digits)."""
    v = float(v)
    if not math.isfinite(v):
        raise ValueError(f"non-finite circuit value {v!r} cannot be written to a netlist")
    return repr(v) if v != 0.0 else "0"


def spice_temperature(temperature_k: float, exact_vt: bool = True) -> float:
    """Temperature (Celsius) to give ngspice for a memsim temperature in kelvin.

    With ``exact_vt`` it is scaled so that ngspice's ``k*T/q`` (CODATA 2014 constants) equals
    memsim's (SI 2019 exact constants).
    """
    from memsim.devices.diode import BOLTZMANN, ELEMENTARY_CHARGE

    t = float(temperature_k)
    if exact_vt:
        t *= (BOLTZMANN / ELEMENTARY_CHARGE) / (NGSPICE_BOLTZMANN / NGSPICE_CHARGE)
    return t - NGSPICE_CTOK


def _layer_node_names(spec) -> list[list[str]]:
    """Per free layer, its node names (the ``free`` list of :func:`node_names`, split)."""
    free = node_names(spec)["free"]
    off = spec.free_offsets
    return [free[off[l]:off[l + 1]] for l in range(spec.n_free_layers)]


def _amp_names(spec, l: int) -> list[str]:
    return [f"u{l + 1}_{j}" for j in range(spec.free_sizes[l])]


def write_netlist(net: Network, x: np.ndarray, phase: str = "free", beta: float = 0.0,
                  target: np.ndarray | None = None, title: str = "", exact_vt: bool = True,
                  diode: str = "model") -> str:
    """The ngspice netlist (text) of ``net`` for one sample ``x`` (``(F,)`` features in [0, 1]).

    ``phase`` is ``"free"`` (no nudge, ``beta`` ignored), ``"nudge_plus"`` (``+beta``) or
    ``"nudge_minus"`` (``-beta``); ``beta`` in siemens; ``target`` the ``(C,)`` differential
    target voltages (required for a nudged phase with ``beta != 0``).

    ``diode="model"`` (default) writes each diode as an ngspice junction diode (``D`` element and a
    ``.model`` line from the card): what a circuit designer would simulate. ``diode="shockley"``
    writes it as a B source with memsim's exact law ``Is*(exp(V/(n*Vt)) - 1)`` (continued linearly
    above ``exp(80)`` as memsim does) behind a resistor ``RS``: it removes ngspice's reverse-bias
    approximation, so both simulators solve the very same equations (agreement ~1e-12 V).
    ``exact_vt``: see the module docstring. The netlist ends with a
    ``.control`` block that runs ``.op`` and writes every node voltage to ``memsim_op.raw``
    (ASCII rawfile, full precision) in the working directory; :func:`memsim.spice.run_op`
    replaces that block with its own.
    """
    spec = net.spec
    if diode not in DIODE_MODES:
        raise ValueError(f"diode must be one of {', '.join(DIODE_MODES)}, got {diode!r}")
    if phase not in PHASES:
        raise ValueError(f"phase must be one of {', '.join(PHASES)}, got {phase!r}")
    x = np.asarray(x, dtype=np.float64).ravel()
    F, C = spec.n_features, spec.n_classes
    if x.shape != (F,):
        raise ValueError(f"x must hold {F} features for sizes {spec.sizes}, got shape {x.shape}")
    if not np.isfinite(x).all():
        raise ValueError("x has non-finite features")
    beta_s = {"free": 0.0, "nudge_plus": float(beta), "nudge_minus": -float(beta)}[phase]
    if beta_s != 0.0:
        if target is None:
            raise ValueError(f"phase {phase!r} with beta={beta:g} S needs a target ((C,) volts)")
        y = np.asarray(target, dtype=np.float64).ravel()
        if y.shape != (C,):
            raise ValueError(f"target must hold {C} values (one per class), got shape {y.shape}")
    for p in net.parameters():
        if not np.isfinite(p).all() or (p < 0).any():
            raise ValueError("conductances must be finite and >= 0 S")

    L = spec.n_free_layers
    layers = _layer_node_names(spec)
    inputs = node_names(spec)["inputs"]
    amp = spec.amplifier
    d = spec.diode
    t_c = spice_temperature(spec.temperature, exact_vt)

    out: list[str] = []
    w = out.append
    head = title.strip().splitlines()[0] if title.strip() else "memsim canonical network"
    w(head)  # first line of a SPICE deck is its title
    w(f"* memsim netlist: sizes {list(spec.sizes)}, phase {phase}, beta {_num(beta_s)} S")
    w(f"* diode card {d.name!r}: IS={d.saturation_current:g} A N={d.emission_coefficient:g} RS={d.series_resistance:g} ohm")
    if amp is not None:
        w(f"* amplifier card {amp.name!r}: A={amp.gain:g} A_b={amp.backward_gain:g} V_os={amp.offset:g} V V_sat={amp.saturation:g} V")
    w(f"* temperature {spec.temperature:g} K"
      + (" (scaled so that ngspice's CODATA-2014 k/q gives memsim's Vt)" if exact_vt else ""))
    w(f".options temp={_num(t_c)} tnom={_num(t_c)}")
    w(".options reltol=1e-6 vntol=1e-9 abstol=1e-15 gmin=1e-18")
    if diode == "model":
        rs = f" RS={_num(d.series_resistance)}" if d.series_resistance > 0 else ""
        w(f".model dmem D(IS={_num(d.saturation_current)} N={_num(d.emission_coefficient)}{rs} TNOM={_num(t_c)})")
    else:
        from memsim.devices.diode import EXP_LIMIT

        i_s, n_vt = _num(d.saturation_current), _num(d.emission_coefficient * spec.thermal_voltage)
        lim = _num(EXP_LIMIT)
        w(f".param is_d={i_s} nvt_d={n_vt} xl_d={lim}")
        w(".func ishock(v) {is_d*((v/nvt_d < xl_d) ? exp(v/nvt_d) : exp(xl_d)*(1+v/nvt_d-xl_d)) - is_d}")

    def diode_elem(name, anode, cathode):
        if diode == "model":
            return [f"D{name} {anode} {cathode} dmem"]
        lines = []
        if d.series_resistance > 0:
            mid = f"xd{name}"
            lines.append(f"Rs{name} {anode} {mid} {_num(d.series_resistance)}")
            anode = mid
        lines.append(f"B{name} {anode} {cathode} I = ishock(V({anode},{cathode}))")
        return lines

    w("* rails")
    w(f"Vrail_bp rail_bp 0 DC {_num(spec.bias_voltage)}")
    w(f"Vrail_bn rail_bn 0 DC {_num(-spec.bias_voltage)}")
    if L > 1:
        w(f"Vrail_lo rail_lo 0 DC {_num(spec.v_lo)}")
        w(f"Vrail_hi rail_hi 0 DC {_num(spec.v_hi)}")
    use_e = amp is not None and not math.isfinite(amp.saturation)
    if use_e and amp.offset != 0.0 and any(spec.has_amplifier(l) for l in range(L)):
        w(f"Vrail_os rail_os 0 DC {_num(amp.offset)}")
    os_node = "rail_os" if (use_e and amp.offset != 0.0) else "0"

    w("* inputs: +g_in*x, -g_in*x")
    v_in = input_voltages(spec, x[None, :])[0]
    for name, v in zip(inputs, v_in):
        w(f"V{name} {name} 0 DC {_num(v)}")

    # the nodes that drive crossbar k: inputs, or the previous layer (its amplifier outputs)
    def sources(k):
        if k == 0:
            return inputs
        return _amp_names(spec, k - 1) if spec.has_amplifier(k - 1) else layers[k - 1]

    for k in range(L):
        W = np.asarray(net.weights[k], dtype=np.float64)
        src, dst = sources(k), layers[k]
        w(f"* crossbar {k}: {len(src)} x {len(dst)}")
        for i, a in enumerate(src):
            row = W[i]
            for j in np.flatnonzero(row > 0.0):
                w(f"R{k}_{i}_{j} {a} {dst[j]} {_num(1.0 / row[j])}")

    for l in range(L):
        w(f"* layer {l}: bias conductances" + (", diode pairs" if l < L - 1 else ""))
        bp, bm = net.bias_plus[l], net.bias_minus[l]
        for j, n in enumerate(layers[l]):
            if bp[j] > 0:
                w(f"Rbp{l}_{j} {n} rail_bp {_num(1.0 / bp[j])}")
            if bm[j] > 0:
                w(f"Rbn{l}_{j} {n} rail_bn {_num(1.0 / bm[j])}")
            if l < L - 1:
                out.extend(diode_elem(f"hi{l}_{j}", n, "rail_hi"))
                out.extend(diode_elem(f"lo{l}_{j}", "rail_lo", n))
        if spec.has_amplifier(l):
            w(f"* layer {l}: bidirectional amplifiers (forward VCVS, backward CCCS through a 0 V sense source)")
            for j, (h, u) in enumerate(zip(layers[l], _amp_names(spec, l))):
                ua = f"ua{l + 1}_{j}"
                if use_e:
                    w(f"Eamp{l}_{j} {ua} {os_node} {h} 0 {_num(amp.gain)}")
                else:
                    s = amp.saturation
                    w(f"Bamp{l}_{j} {ua} 0 V = max(min({_num(amp.gain)}*V({h})+({_num(amp.offset)}), "
                      f"{_num(s)}), {_num(-s)})")
                w(f"Vsense{l}_{j} {ua} {u} DC 0")
                w(f"Fback{l}_{j} {h} 0 Vsense{l}_{j} {_num(amp.backward_gain)}")

    if beta_s != 0.0:
        w(f"* nudge: -beta*(d_k - y_k) into outp_k, +beta*(d_k - y_k) into outn_k (beta = {_num(beta_s)} S)")
        for k in range(C):
            p, n = f"outp{k}", f"outn{k}"
            w(f"Gnudge{k} {p} {n} {p} {n} {_num(beta_s)}")
            if y[k] != 0.0:
                w(f"Inudge{k} {n} {p} DC {_num(beta_s * y[k])}")

    w(control_block(RAW_FILE))
    w(".end")
    return "\n".join(out) + "\n"


def control_block(raw_file: str) -> str:
    """A ``.control`` block that runs the operating point and writes it as an ASCII rawfile."""
    return "\n".join([
        ".control",
        "set filetype=ascii",
        "op",
        f"write {raw_file}",
        "quit",
        ".endc",
    ])


def named_voltages(net: Network, x: np.ndarray, V: np.ndarray) -> dict[str, float]:
    """memsim's node voltages of one sample by netlist node name: inputs, free nodes, amplifier
    outputs. ``x``: ``(F,)`` features; ``V``: ``(N,)`` free-node voltages from the solver."""
    from memsim.energy import layer_sources

    spec = net.spec
    names = node_names(spec)
    x = np.asarray(x, dtype=np.float64).ravel()
    V = np.asarray(V, dtype=np.float64).ravel()
    out = dict(zip(names["inputs"], input_voltages(spec, x[None, :])[0].tolist()))
    out.update(zip(names["free"], V.tolist()))
    src = layer_sources(net, V[None, :])
    amp_v = [src[l][0] for l in range(spec.n_free_layers) if spec.has_amplifier(l)]
    if amp_v:
        out.update(zip(names["amplifier"], np.concatenate(amp_v).tolist()))
    return out
