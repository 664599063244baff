"""Transient benchmark: EqProp phases as settled transients vs the DC path vs ngspice ``.tran``.

The network is the paper's size (Kendall et al. 2020): 784 features (1568 input nodes), 100 hidden
diode neurons, 10 classes (20 output nodes), conductances uniform in [0.1, 10] uS, 1 pF on every
node, batch 256. Inputs are Fashion-MNIST test images when the IDX files are in
/usr/share/datasets/fashion-mnist (else uniform noise in [0, 1]).

Measured (median of repeats after a JIT warm-up, one process, so timings share the same noise):

* DC: ``memsim.eqprop.run_phases`` (free phase from zeros, then +beta and -beta from the free
  state), block-solver sweeps per phase and wall time;
* transient: ``memsim.transient.run_phases_transient`` with its default options (TR-BDF2, rtol
  5e-3) and a fast setting (backward Euler, rtol 0.1): implicit steps and stage solves per settled
  phase, sweeps, wall time per phase, physical settling time;
* ngspice: one sample's free phase exported with ``memsim.tran_netlist.write_tran_netlist`` and run
  as ``.tran`` (process start, parse and simulation); its waveform against memsim's and the ratio of
  the per-phase, per-sample times;
* training: ``Trainer.epoch`` on the bundled digits data (default config: 128-100-20, batch 4) with
  the DC path and with the transient engine patched in, the wall-time ratio.

Usage: ``python bench/transient.py [--batch 256] [--repeats 5] [--threads N] [--no-spice] [--no-train]``
"""
from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import numba
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from equilibrium import load_inputs  # noqa: E402  (bench/equilibrium.py: Fashion-MNIST or noise)

from memsim.circuit import CircuitSpec, init_network, input_voltages, target_voltages  # noqa: E402
from memsim.devices.cards import load_card  # noqa: E402
from memsim.eqprop import run_phases  # noqa: E402
from memsim.solve import input_drive, pack  # noqa: E402
from memsim.spice import ngspice_available  # noqa: E402
from memsim.transient import TransientOptions, run_phases_transient  # noqa: E402

PHASES = ("free", "nudge_plus", "nudge_minus")


def median_time(fn, repeats):
    out, res = [], None
    for _ in range(repeats):
        t0 = time.perf_counter()
        res = fn()
        out.append(time.perf_counter() - t0)
    return statistics.median(out), min(out), res


def training_ratio(train_limit: int, repeats: int):
    """Seconds per epoch of the default digits run: DC, transient (patched in), transient-fast."""
    import memsim.train as train_mod
    from memsim.config import make_config
    from memsim.datasets import load_dataset

    cfg = make_config({"train_limit": train_limit, "test_limit": 64, "epochs": 1})
    data = load_dataset(cfg.dataset, None, train_limit, 64)
    original = train_mod.run_phases

    def engine(options):
        def run(packed, drive0, V, target, beta, mode="centred", tol=1e-9, max_sweeps=10_000, sample_offset=0):
            return run_phases_transient(packed, drive0, V, target, beta, mode, tol, options=options,
                                        max_sweeps=max_sweeps, sample_offset=sample_offset)
        return run

    out = {}
    try:
        for name, fn in (("dc", original), ("transient", engine(TransientOptions())),
                         ("transient, fast", engine(TransientOptions(method="be", rtol=0.1)))):
            train_mod.run_phases = fn
            times = []
            for r in range(repeats + 1):
                tr = train_mod.Trainer(cfg, data)
                t0 = time.perf_counter()
                res = tr.epoch()
                if r:  # the first is a warm-up
                    times.append(time.perf_counter() - t0)
            out[name] = (statistics.median(times), res.train_accuracy, res.test_accuracy)
    finally:
        train_mod.run_phases = original
    return out, cfg


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--batch", type=int, default=256)
    ap.add_argument("--hidden", type=int, default=100)
    ap.add_argument("--repeats", type=int, default=5, help="timed repeats; the median is reported (default 5)")
    ap.add_argument("--beta", type=float, default=1e-6, help="nudge, S (default 1 uS)")
    ap.add_argument("--capacitance", type=float, default=1e-12, help="node capacitance, F (default 1 pF)")
    ap.add_argument("--input-gain", type=float, default=20.0)
    ap.add_argument("--rails", type=float, default=0.1)
    ap.add_argument("--diode", default="knee015")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=0, help="Numba threads for both engines (default: all)")
    ap.add_argument("--uniform", action="store_true")
    ap.add_argument("--no-spice", action="store_true")
    ap.add_argument("--no-train", action="store_true")
    ap.add_argument("--train-limit", type=int, default=256, help="digits samples per timed epoch (default 256)")
    args = ap.parse_args(argv)
    if args.threads:
        numba.set_num_threads(args.threads)

    rng = np.random.default_rng(args.seed)
    spec = CircuitSpec((1568, args.hidden, 20), input_gain=args.input_gain, bias_voltage=1.0, v_lo=-args.rails,
                       v_hi=args.rails, diode=load_card("diode", args.diode))
    net = init_network(spec, rng, 1e-7, 1e-5)
    x, labels, source = load_inputs(args.batch, rng, args.uniform)
    target = target_voltages(labels, spec.n_classes, 0.5)
    packed = pack(net)
    B, N = args.batch, spec.n_free
    d0 = input_drive(packed, input_voltages(spec, x))
    C = args.capacitance

    settings = {"default (TR-BDF2, rtol 5e-3)": TransientOptions(),
                "fast (BE, rtol 0.1)": TransientOptions(method="be", rtol=0.1)}
    # warm-up (JIT compile or cache load)
    run_phases(packed, d0[:2], np.zeros((2, N)), target[:2], args.beta)
    for o in settings.values():
        run_phases_transient(packed, d0[:2], np.zeros((2, N)), target[:2], args.beta, capacitance=C, options=o)

    t_dc, t_dc_min, ph_dc = median_time(lambda: run_phases(packed, d0, np.zeros((B, N)), target, args.beta),
                                        args.repeats)
    rows = []
    for label, o in settings.items():
        t_tr, t_tr_min, ph = median_time(
            lambda o=o: run_phases_transient(packed, d0, np.zeros((B, N)), target, args.beta, capacitance=C, options=o),
            args.repeats)
        err = max(np.abs(getattr(ph, a) - getattr(ph_dc, a)).max() for a in ("free", "plus", "minus"))
        rows.append((label, o, t_tr, t_tr_min, ph, err))

    spice = None
    if not args.no_spice:
        if not ngspice_available():
            print("ngspice not found: skipping the .tran comparison\n")
        else:
            from memsim.tran_netlist import run_tran, write_tran_netlist

            ph1 = run_phases_transient(packed, d0[:1], np.zeros((1, N)), target[:1], args.beta, capacitance=C,
                                       trace=[0])
            st1 = ph1.stats["free"]
            tstop = 2.0 * float(st1.settle_time[0])
            t0 = time.perf_counter()
            nl = write_tran_netlist(net, x[0], "free", tstop=tstop, tstep=tstop / 200, capacitance=C,
                                    title="memsim bench: free phase of sample 0")
            t1 = time.perf_counter()
            res = run_tran(nl)
            t2 = time.perf_counter()
            Vs = res.free_voltages(spec)
            ours = st1.trace.at(res.time)[:, 0, :]
            swing = float(np.abs(Vs - Vs[0]).max())
            spice = dict(seconds=t2 - t1, write=t1 - t0, lines=len(nl.splitlines()), points=len(res.time),
                         wave=float(np.abs(Vs - ours).max()) / swing,
                         final=float(np.abs(Vs[-1] - ph_dc.free[0]).max()),
                         tstop=tstop)

    train = None
    if not args.no_train:
        train = training_ratio(args.train_limit, max(1, args.repeats // 2))

    # ------------------------------------------------------------------------------------------
    print(f"## Transient benchmark: {spec.sizes[0]}-{args.hidden}-{spec.sizes[-1]} nodes "
          f"({net.n_devices:,} conductances), batch {B}, C = {C:g} F per node, beta = {args.beta:g} S\n")
    print(f"- inputs: {source}, g_in = {args.input_gain:g} V; conductances U[1e-7, 1e-5] S; diode {spec.diode.name} "
          f"on rails +-{args.rails:g} V; solver tol 1e-9 V, settle tol 1e-9 V (|dV/dt| * tau_slow)")
    print(f"- machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, Numba "
          f"{numba.__version__} with {numba.get_num_threads()} threads, load average "
          f"{os.getloadavg()[0]:.1f}; median (min) of {args.repeats} repeats; the CPUs are shared, so timings "
          f"are noisy (compare within this table)\n")
    per_dc = t_dc / 3
    print("| engine | implicit steps / phase | stage solves / phase | sweeps / phase | ms / settled phase "
          "(batch) | us / phase / sample | vs DC | settling time (median) | max \\|V - V_DC\\| |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    sw_dc = np.mean([ph_dc.stats[p].sweeps.mean() for p in PHASES])
    print(f"| DC (`run_phases`) | - | 1 | {sw_dc:.1f} | {per_dc * 1e3:.1f} ({t_dc_min / 3 * 1e3:.1f}) | "
          f"{per_dc / B * 1e6:.0f} | 1x | - | - |")
    for label, o, t_tr, t_tr_min, ph, err in rows:
        steps = np.mean([ph.stats[p].steps.mean() for p in PHASES])
        solves = np.mean([ph.stats[p].solves.mean() for p in PHASES])
        sweeps = np.mean([ph.stats[p].sweeps.mean() for p in PHASES])
        settle = np.median(np.concatenate([ph.stats[p].settle_time for p in PHASES]))
        per = t_tr / 3
        print(f"| transient, {label} | {steps:.1f} | {solves:.1f} | {sweeps:.1f} | {per * 1e3:.1f} "
              f"({t_tr_min / 3 * 1e3:.1f}) | {per / B * 1e6:.0f} | {t_tr / t_dc:.1f}x | {settle * 1e9:.1f} ns | "
              f"{err:.1e} V |")
    for p in PHASES:
        s = rows[0][4].stats[p]
        print(f"|  default, phase {p} | {s.steps.mean():.1f} | {s.solves.mean():.1f} | {s.sweeps.mean():.1f} | | | | "
              f"{np.median(s.settle_time) * 1e9:.1f} ns | |")
    if spice:
        per_sample = rows[0][2] / 3 / B
        print(f"| ngspice `.tran` (one sample, free phase, {spice['lines']:,}-line netlist, {spice['tstop'] * 1e9:.0f} ns, "
              f"{spice['points']} points) | | | | {spice['seconds'] * 1e3:,.0f} | {spice['seconds'] * 1e6:,.0f} | "
              f"{spice['seconds'] / per_sample:,.0f}x slower than the transient (default) | | "
              f"{spice['final']:.1e} V at its end |")
        print(f"\n- ngspice waveform vs memsim's (default options, Hermite between steps): max difference "
              f"{spice['wave']:.2%} of the swing; netlist written in {spice['write']:.2f} s")
    if train:
        res, cfg = train
        dc = res["dc"][0]
        print(f"\n### Training (digits, {cfg.train_limit} samples, default config: 128-100-20, batch "
              f"{cfg.batch_size}, one epoch incl. test evaluation on 64 samples by DC)\n")
        print("| engine | s / epoch | vs DC | train acc | test acc |")
        print("| --- | --- | --- | --- | --- |")
        for name, (t, tra, tea) in res.items():
            print(f"| {name} | {t:.2f} | {t / dc:.1f}x | {tra:.3f} | {tea:.3f} |")


if __name__ == "__main__":
    main()
