"""ngspice ``.tran`` netlists of one EqProp phase, and running them.

A phase's transient netlist is the ``.op`` netlist of :func:`memsim.netlist.write_netlist` (same
node names, elements, options and diode model) extended with what the transient engine
(:mod:`memsim.transient`) simulates:

* a capacitor ``C_<node> <node> 0 <C> IC=<v0>`` from every free node to ground, its initial
  voltage the state the previous phase left (``uic``: ngspice starts from these, no ``.op``);
* the switching sources: the inputs step (or ramp linearly over ``rise_time``, a ``PWL``) from
  ``x_prev`` to ``x``; the nudge steps (or ramps) from ``beta_prev`` to the phase's beta (a ``B``
  source ``I = beta(t) * (V(outp) - V(outn) - y)`` when it ramps; the ``.op`` netlist's
  ``Gnudge``/``Inudge`` pair otherwise);
* amplifiers with a single pole (``tau > 0``): the clipped VCVS drives ``ur`` through an RC lag
  (``R = 1 ohm``, ``C = tau``, ``IC = u0``) buffered by a unity VCVS onto the amplifier node, so
  ``tau du/dt = clip(A*h + V_os) - u`` exactly as in memsim;
* ``.options method=gear`` (L-stable, no trapezoidal ringing after the step), a tiny ``chgtol``
  so that pF charges are controlled by ``reltol``, and ``.tran tstep tstop 0 tmax uic``.

:func:`run_tran` runs it with ngspice and returns the waveforms; :func:`export_phase_tran` makes
the netlist of one sample and phase of a network with the initial state and duration from memsim's
own transient (what ``memsim export-spice --tran`` writes).

Units: seconds, volts, farads, siemens.
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass

import numpy as np

from memsim.circuit import Network, input_voltages, node_names
from memsim.netlist import PHASES, _num, write_netlist
from memsim.spice import node_name, raw_variables, run_ngspice, strip_control

RAW_FILE = "memsim_tran.raw"


def tran_control_block(raw_file: str) -> str:
    """A ``.control`` block that runs the netlist's ``.tran`` and writes an ASCII rawfile."""
    return "\n".join([".control", "set filetype=ascii", "run", f"write {raw_file}", "quit", ".endc"])


def _phase_beta(phase: str, beta: float) -> float:
    return {"free": 0.0, "nudge_plus": float(beta), "nudge_minus": -float(beta)}[phase]


def write_tran_netlist(net: Network, x: np.ndarray, phase: str = "free", beta: float = 0.0,
                       target: np.ndarray | None = None, *, tstop: float, v0: np.ndarray | None = None,
                       u0: np.ndarray | None = None, capacitance=1e-12, tstep: float | None = None,
                       tmax: float | None = None, x_prev: np.ndarray | None = None,
                       beta_prev: float | None = None, rise_time: float = 0.0, amp_tau: float | None = None,
                       diode: str = "model", exact_vt: bool = True, title: str = "") -> str:
    """The ngspice ``.tran`` netlist (text) of one phase of ``net`` for the sample ``x``.

    ``phase``/``beta``/``target`` as in :func:`memsim.netlist.write_netlist` (beta in siemens, the
    phase's signed nudge is ``0``, ``+beta`` or ``-beta``). ``v0`` ``(N,)``: free-node voltages at
    t = 0 (the previous state; zeros when None); ``u0``: amplifier outputs at t = 0 (``(N,)`` in
    free-node order, used on amplified nodes; None: at rest ``clip(A*v0 + V_os)``).
    ``capacitance``: scalar or ``(N,)`` farads. ``tstop`` (s) the simulated duration; ``tstep``
    the output interval (default ``tstop/1000``); ``tmax`` the largest internal step (default
    ``tstep``). ``x_prev``: the inputs before the switch (None: the inputs are already ``x``);
    ``beta_prev``: the signed nudge before (None: the phase's own, no switch); ``rise_time``: the
    sources' linear ramp (0: a step at t = 0). ``amp_tau``: amplifier pole (s; None: the card's).
    """
    from memsim.transient import check_capacitance

    spec = net.spec
    if phase not in PHASES:
        raise ValueError(f"phase must be one of {', '.join(PHASES)}, got {phase!r}")
    if not (tstop > 0 and math.isfinite(tstop)):
        raise ValueError(f"tstop must be finite and > 0 s, got {tstop!r}")
    tstep = tstop / 1000.0 if tstep is None else float(tstep)
    tmax = tstep if tmax is None else float(tmax)
    if not (0 < tstep <= tstop and tmax > 0):
        raise ValueError(f"need 0 < tstep <= tstop and tmax > 0 (got tstep={tstep!r}, tstop={tstop!r}, tmax={tmax!r})")
    if not (rise_time >= 0 and math.isfinite(rise_time)):
        raise ValueError(f"rise_time must be finite and >= 0 s, got {rise_time!r}")
    N = spec.n_free
    C = check_capacitance(capacitance, spec)
    v0 = np.zeros(N) if v0 is None else np.asarray(v0, dtype=np.float64).ravel()
    if v0.shape != (N,) or not np.isfinite(v0).all():
        raise ValueError(f"v0 must hold {N} finite free-node voltages, got shape {v0.shape}")
    b_new = _phase_beta(phase, beta)
    b_old = b_new if beta_prev is None else float(beta_prev)
    y = None
    if b_new != 0.0 or b_old != 0.0:
        if target is None:
            raise ValueError(f"a nudged phase (beta {b_new:g} S, before {b_old:g} S) needs a target ((C,) volts)")
        y = np.asarray(target, dtype=np.float64).ravel()

    base = write_netlist(net, x, phase, beta, target, title=title, exact_vt=exact_vt, diode=diode)
    text = strip_control(base).rstrip("\n")
    lines = text.split("\n")

    names = node_names(spec)
    free = names["free"]
    amp = spec.amplifier
    tau = (amp.time_constant if amp is not None else 0.0) if amp_tau is None else float(amp_tau)
    amplified = [l for l in range(spec.n_free_layers) if spec.has_amplifier(l)]
    lag = tau > 0.0 and bool(amplified)

    # -- inputs: step (DC new value + initial state) or ramp (PWL) ---------------------------
    ramp_inputs = x_prev is not None and rise_time > 0.0
    if ramp_inputs:
        v_new = input_voltages(spec, np.asarray(x, dtype=np.float64).ravel()[None, :])[0]
        v_old = input_voltages(spec, np.asarray(x_prev, dtype=np.float64).ravel()[None, :])[0]
        repl = {}
        for nm, a, b in zip(names["inputs"], v_old, v_new):
            repl[f"V{nm}".lower()] = f"V{nm} {nm} 0 PWL(0 {_num(a)} {_num(rise_time)} {_num(b)})"
        n_done = 0
        for i, ln in enumerate(lines):
            key = ln.split(" ", 1)[0].lower()
            if key in repl:
                lines[i] = repl[key]
                n_done += 1
        if n_done != len(repl):
            raise RuntimeError(f"tran netlist: found {n_done} of {len(repl)} input sources in the .op netlist")

    # -- nudge: ramp as a B source --------------------------------------------------------------
    ramp_nudge = rise_time > 0.0 and b_old != b_new
    if ramp_nudge or (b_new == 0.0 and b_old != 0.0):
        lines = [ln for ln in lines if not re.match(r"^(Gnudge|Inudge)\d+\s", ln, re.IGNORECASE)]
        Cc = spec.n_classes
        frac = f"min(time/{_num(rise_time)}, 1)" if rise_time > 0.0 else "1"
        lines.append(f"* nudge ramp: beta(t) from {_num(b_old)} S to {_num(b_new)} S over {_num(rise_time)} s")
        bexpr = f"({_num(b_old)} + ({_num(b_new - b_old)})*{frac})"
        for k in range(Cc):
            p, n = f"outp{k}", f"outn{k}"
            lines.append(f"Bnudge{k} {p} {n} I = {bexpr}*(V({p},{n}) - ({_num(y[k])}))")

    # -- amplifier pole -------------------------------------------------------------------------
    if lag:
        if u0 is None:
            u_init = np.clip(amp.gain * v0 + amp.offset, -amp.saturation, amp.saturation)
        else:
            u_init = np.asarray(u0, dtype=np.float64).ravel()
            if u_init.shape != (N,):
                raise ValueError(f"u0 must hold {N} values (free-node order), got shape {u_init.shape}")
        off = spec.free_offsets
        extra = [f"* amplifier pole: tau = {_num(tau)} s (RC lag of 1 ohm and tau farads, unity buffer)"]
        for l in amplified:
            for j in range(spec.free_sizes[l]):
                ua, ur, ul = f"ua{l + 1}_{j}", f"ur{l + 1}_{j}", f"ul{l + 1}_{j}"
                pat = re.compile(rf"^([EB]amp{l}_{j})\s+{ua}\s", re.IGNORECASE)
                hit = [i for i, ln in enumerate(lines) if pat.match(ln)]
                if len(hit) != 1:
                    raise RuntimeError(f"tran netlist: amplifier {l}_{j} not found in the .op netlist")
                i = hit[0]
                lines[i] = pat.sub(lambda m: f"{m.group(1)} {ur} ", lines[i])
                extra += [f"Rlag{l}_{j} {ur} {ul} 1", f"Clag{l}_{j} {ul} 0 {_num(tau)} IC={_num(u_init[off[l] + j])}",
                          f"Elag{l}_{j} {ua} 0 {ul} 0 1"]
        lines += extra

    # -- capacitors with initial conditions, analysis ----------------------------------------
    lines.insert(1, f"* transient of phase {phase}: node capacitances to ground, initial state from the previous "
                    f"phase (uic), {_num(tstop)} s")
    lines.append("* node capacitances (F) to ground with the initial state")
    for q, nm in enumerate(free):
        lines.append(f"C_{nm} {nm} 0 {_num(C[q])} IC={_num(v0[q])}")
    lines.append(".options method=gear maxord=2 chgtol=1e-24 trtol=1")
    lines.append(f".tran {_num(tstep)} {_num(tstop)} 0 {_num(tmax)} uic")
    lines.append(tran_control_block(RAW_FILE))
    lines.append(".end")
    return "\n".join(lines) + "\n"


@dataclass
class TranResult:
    """ngspice waveforms: ``time`` ``(T,)`` s and ``voltages`` ``{node (lower case): (T,) V}``."""

    time: np.ndarray
    voltages: dict[str, np.ndarray]

    def free_voltages(self, spec) -> np.ndarray:
        """The free nodes' voltages ``(T, N)`` in solver order (memsim's node names)."""
        return np.stack([self.voltages[n.lower()] for n in node_names(spec)["free"]], axis=1)


def parse_tran_raw(text: str) -> TranResult:
    """Waveforms from an ngspice ASCII rawfile of a transient analysis (first plot)."""
    lines = text.splitlines()
    names, kinds, i_val, npts = raw_variables(lines)
    nvar = len(names)
    tokens = " ".join(lines[i_val + 1:]).split()
    rec = nvar + 1  # each point: its index, then the values
    npts = min(npts, len(tokens) // rec)
    if npts < 1 or names[0] != "time":
        raise RuntimeError("ngspice rawfile: no transient points")
    try:
        data = np.asarray(tokens[: npts * rec], dtype=np.float64).reshape(npts, rec)[:, 1:]
    except ValueError:
        raise RuntimeError("ngspice rawfile: values not understood (complex data?)") from None
    out = {}
    for i, (name, kind) in enumerate(zip(names, kinds)):
        if kind == "voltage":
            out[node_name(name)] = data[:, i]
    return TranResult(data[:, 0], out)


def run_tran(netlist: str, timeout: float = 600) -> TranResult:
    """Run the ``.tran`` of ``netlist`` (its ``.control`` block replaced) with ngspice."""
    body = strip_control(netlist)
    if not re.search(r"^[ \t]*\.tran\b", body, re.IGNORECASE | re.MULTILINE):
        raise ValueError("netlist has no .tran line (use memsim.spice.run_op for an operating point)")
    text = run_ngspice(body + tran_control_block("tran.raw") + "\n.end\n", "tran.raw", timeout, "transient")
    res = parse_tran_raw(text)
    return res


def export_phase_tran(net: Network, x: np.ndarray, phase: str = "free", beta: float = 0.0,
                      target: np.ndarray | None = None, capacitance=1e-12, options=None,
                      tstop: float | None = None, points: int = 1000, title: str = "",
                      diode: str = "model") -> str:
    """The ``.tran`` netlist of one sample and phase as the transient engine runs it.

    The phase starts from the state the previous phase settled to (free: zeros with the inputs
    switched on at t = 0; ``nudge_plus``: the free equilibrium, nudge on; ``nudge_minus``: the
    ``+beta`` equilibrium, nudge flipped), computed by :func:`memsim.transient.run_phases_transient`
    with ``options``; ``tstop`` defaults to twice the phase's settling time there.
    """
    from memsim.circuit import input_voltages as _iv
    from memsim.solve import input_drive, pack
    from memsim.transient import TransientOptions, run_phases_transient

    if phase not in PHASES:
        raise ValueError(f"phase must be one of {', '.join(PHASES)}, got {phase!r}")
    spec = net.spec
    opt = options or TransientOptions()
    x = np.asarray(x, dtype=np.float64).ravel()
    if phase != "free" and target is None:
        raise ValueError(f"phase {phase!r} needs a target ((C,) volts)")
    tgt = np.zeros((1, spec.n_classes)) if target is None else np.asarray(target, dtype=np.float64).reshape(1, -1)
    packed = pack(net)
    d0 = input_drive(packed, _iv(spec, x[None, :]))
    V = np.zeros((1, spec.n_free))
    b = float(beta) if beta else 1e-30
    ph = run_phases_transient(packed, d0, V, tgt, b, "centred", options=opt, capacitance=capacitance,
                              drive0_old=np.zeros_like(d0))
    start = {"free": np.zeros(spec.n_free), "nudge_plus": ph.free[0], "nudge_minus": ph.plus[0]}[phase]
    beta_prev = {"free": 0.0, "nudge_plus": 0.0, "nudge_minus": float(beta)}[phase]
    if tstop is None:
        tstop = 2.0 * float(np.max(ph.stats[phase].settle_time))
        tstop = tstop if tstop > 0 else 10.0 * ph.stats[phase].tau_slow
    return write_tran_netlist(net, x, phase, beta, None if target is None else tgt[0], tstop=tstop, v0=start,
                              capacitance=capacitance, tstep=tstop / points,
                              x_prev=np.zeros_like(x) if phase == "free" else None,
                              beta_prev=beta_prev, rise_time=opt.rise_time, amp_tau=opt.amp_tau,
                              diode=diode, title=title)
