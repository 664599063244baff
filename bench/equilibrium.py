"""Equilibrium benchmark: memsim's DC solver against ngspice on a paper-size network.

The network is the size of Kendall et al. (2020): 784 features (1568 input nodes), 100 hidden
diode neurons, 10 classes (20 output nodes), random conductances uniform in [g_min, g_max]
(0.1 - 10 uS, EBANA's range). Inputs are Fashion-MNIST test images when the IDX files are in
/usr/share/datasets/fashion-mnist (else uniform noise in [0, 1]).

Measured:
* memsim: equilibria per second of ``input_drive`` + ``solve`` on a batch (tolerance 1e-9 V),
  median of repeats after a JIT warm-up; cold start (from zeros, free phase) and warm start
  (the nudged phase from the free equilibrium);
* ngspice: wall time of one ``.op`` of the same exported netlist (process start, parse and
  solve), for a few samples, and the largest |V_memsim - V_ngspice| over all nodes;
* the ratio of the two per-equilibrium times.

Usage: ``python bench/equilibrium.py [--batch 256] [--hidden 100] [--spice-samples 2] [--no-spice]``
"""
from __future__ import annotations

import argparse
import gzip
import os
import platform
import statistics
import time
from pathlib import Path

import numba
import numpy as np

from memsim.circuit import CircuitSpec, init_network, input_voltages, node_names, target_voltages
from memsim.devices.cards import load_card
from memsim.netlist import named_voltages, write_netlist
from memsim.solve import input_drive, pack, solve
from memsim.spice import ngspice_available, run_op

FASHION = Path("/usr/share/datasets/fashion-mnist")


def read_idx_gz(path: Path) -> np.ndarray:
    """A gzip-compressed IDX file of unsigned bytes (the MNIST format) as an array."""
    data = gzip.open(path, "rb").read()
    if data[:3] != b"\x00\x00\x08":
        raise ValueError(f"{path}: not an unsigned-byte IDX file")
    ndim = data[3]
    shape = tuple(int.from_bytes(data[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim))
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim).reshape(shape)


def load_inputs(n: int, rng: np.random.Generator, uniform: bool) -> tuple[np.ndarray, np.ndarray, str]:
    imgs, labs = FASHION / "t10k-images-idx3-ubyte.gz", FASHION / "t10k-labels-idx1-ubyte.gz"
    if not uniform and imgs.is_file() and labs.is_file():
        x = read_idx_gz(imgs).reshape(-1, 784).astype(np.float64) / 255.0
        y = read_idx_gz(labs).astype(np.int64)
        idx = rng.choice(len(x), size=n, replace=len(x) < n)
        return x[idx], y[idx], "Fashion-MNIST test images"
    return rng.uniform(0.0, 1.0, size=(n, 784)), rng.integers(0, 10, n), "uniform [0, 1]"


def timed(fn, repeats: int) -> list[float]:
    out = []
    for _ in range(repeats):
        out.append(fn())
    return out


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--batch", type=int, default=256, help="samples solved at once (default 256)")
    ap.add_argument("--hidden", type=int, default=100, help="hidden neurons (default 100)")
    ap.add_argument("--tol", type=float, default=1e-9, help="solver tolerance in volts (default 1e-9)")
    ap.add_argument("--repeats", type=int, default=7, help="timed repeats; the median is reported (default 7)")
    ap.add_argument("--spice-samples", type=int, default=2, help="samples run through ngspice (default 2)")
    ap.add_argument("--spice-diode", choices=("model", "shockley", "both"), default="both",
                    help="ngspice diode: its junction .model, memsim's exact Shockley law as a B source, or both")
    ap.add_argument("--no-spice", action="store_true", help="skip ngspice")
    ap.add_argument("--input-gain", type=float, default=20.0, help="input sources +-g_in*x, volts (default 20)")
    ap.add_argument("--rails", type=float, default=0.1, help="diode rails at +-RAILS volts (default 0.1)")
    ap.add_argument("--g-min", type=float, default=1e-7, help="smallest conductance, S (default 0.1 uS)")
    ap.add_argument("--g-max", type=float, default=1e-5, help="largest conductance, S (default 10 uS)")
    ap.add_argument("--beta", type=float, default=1e-6, help="nudge for the warm-start phase, S (default 1 uS)")
    ap.add_argument("--diode", default="knee015", help="diode card (default knee015)")
    ap.add_argument("--uniform", action="store_true", help="uniform random inputs even if Fashion-MNIST is present")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)

    rng = np.random.default_rng(args.seed)
    spec = CircuitSpec((1568, args.hidden, 20), input_gain=args.input_gain, bias_voltage=1.0,
                       v_lo=-args.rails, v_hi=args.rails, diode=load_card("diode", args.diode))
    net = init_network(spec, rng, args.g_min, args.g_max)
    x, labels, source = load_inputs(args.batch, rng, args.uniform)
    target = target_voltages(labels, spec.n_classes, 0.5)
    packed = pack(net)
    B, N = args.batch, spec.n_free

    # JIT warm-up (compilation or cache load) on a small batch, both phases
    Vw = np.zeros((2, N))
    dw = input_drive(packed, input_voltages(spec, x[:2]))
    solve(packed, dw, Vw, tol=args.tol)
    solve(packed, dw, Vw, beta=args.beta, target=target[:2], tol=args.tol)

    sweeps = {}

    def cold():
        V = np.zeros((B, N))
        t0 = time.perf_counter()
        d0 = input_drive(packed, input_voltages(spec, x))
        st = solve(packed, d0, V, tol=args.tol)
        dt = time.perf_counter() - t0
        sweeps["cold"] = float(np.mean(st.sweeps))
        return dt

    V_free = np.zeros((B, N))
    st = solve(packed, input_drive(packed, input_voltages(spec, x)), V_free, tol=args.tol)

    def warm():
        V = V_free.copy()
        t0 = time.perf_counter()
        d0 = input_drive(packed, input_voltages(spec, x))
        st = solve(packed, d0, V, beta=args.beta, target=target, tol=args.tol)
        dt = time.perf_counter() - t0
        sweeps["warm"] = float(np.mean(st.sweeps))
        return dt

    def drive_only():
        t0 = time.perf_counter()
        input_drive(packed, input_voltages(spec, x))
        return time.perf_counter() - t0

    t_drive = statistics.median(timed(drive_only, args.repeats))
    t_cold = statistics.median(timed(cold, args.repeats))
    t_warm = statistics.median(timed(warm, args.repeats))
    h = V_free[:, : args.hidden]
    clipped = float(((h > spec.v_hi) | (h < spec.v_lo)).mean())

    spice_rows = []
    if not args.no_spice and args.spice_samples > 0:
        if not ngspice_available():
            print("ngspice not found: skipping the SPICE comparison")
        else:
            modes = ("model", "shockley") if args.spice_diode == "both" else (args.spice_diode,)
            names = node_names(spec)
            keys = names["inputs"] + names["free"]
            for mode in modes:
                times, gen, errs = [], [], []
                for s in range(min(args.spice_samples, B)):
                    t0 = time.perf_counter()
                    nl = write_netlist(net, x[s], "free", diode=mode, title=f"memsim bench sample {s}")
                    t1 = time.perf_counter()
                    volts = run_op(nl)
                    t2 = time.perf_counter()
                    ours = named_voltages(net, x[s], V_free[s])
                    errs.append(max(abs(ours[k] - volts[k]) for k in keys))
                    gen.append(t1 - t0)
                    times.append(t2 - t1)
                spice_rows.append((mode, statistics.median(times), statistics.median(gen), max(errs),
                                   len(nl.splitlines())))

    per_cold, per_warm = t_cold / B, t_warm / B
    print(f"## Equilibrium benchmark: {spec.sizes[0]}-{args.hidden}-{spec.sizes[-1]} nodes "
          f"({net.n_devices:,} conductances), batch {B}, tol {args.tol:g} V\n")
    print(f"- inputs: {source}, g_in = {args.input_gain:g} V; conductances U[{args.g_min:g}, {args.g_max:g}] S; "
          f"diode {spec.diode.name} on rails +-{args.rails:g} V; {clipped:.0%} of hidden nodes clipped")
    print(f"- machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, "
          f"Numba {numba.__version__} with {numba.get_num_threads()} threads; median of {args.repeats} repeats\n")
    print("| measurement | value |")
    print("| --- | --- |")
    print(f"| memsim cold start (zeros, free phase): batch time | {t_cold * 1e3:.2f} ms ({sweeps['cold']:.1f} sweeps) |")
    print(f"| memsim cold start: equilibria/s | {1 / per_cold:,.0f} ({per_cold * 1e6:.1f} us each) |")
    print(f"| of which the input drive `V_in @ W_0` (per batch) | {t_drive * 1e3:.2f} ms |")
    print(f"| memsim warm start (nudge +{args.beta:g} S from free): batch time | {t_warm * 1e3:.2f} ms ({sweeps['warm']:.1f} sweeps) |")
    print(f"| memsim warm start: equilibria/s | {1 / per_warm:,.0f} ({per_warm * 1e6:.1f} us each) |")
    for mode, t_sp, t_gen, err, lines in spice_rows:
        print(f"| ngspice `.op` ({mode} diode, {lines:,}-line netlist): s/op | {t_sp:.2f} s (netlist written in {t_gen:.2f} s) |")
        print(f"| max \\|V_memsim - V_ngspice\\| ({mode} diode, {min(args.spice_samples, B)} sample(s), all nodes) | {err:.1e} V |")
        print(f"| speed-up vs ngspice ({mode}): cold / warm | {t_sp / per_cold:,.0f}x / {t_sp / per_warm:,.0f}x |")


if __name__ == "__main__":
    main()
