"""Training throughput on the paper-size network: EqProp on the analog circuit vs numpy backprop.

The analog network is the size of Kendall et al. (2020): 784 features (1568 input nodes), 100
hidden diode neurons, 10 classes (20 output nodes), with the ``kendall2020`` preset's circuit
constants. One training step is everything ``memsim train`` does per batch: clamp the inputs,
settle the free phase and both nudged phases (centred EqProp), compute the Theorem-1 gradients and
apply the conductance update. The software baseline is the same-size MLP (784-100-10, hard
sigmoid) trained by backprop with Adam in numpy (``memsim.baseline``), measured at the same batch
sizes in the same process.

Measured: training samples per second (median of ``--repeats`` timings of ``--samples`` samples
each, after a warm-up that compiles the Numba kernels), and the ratio backprop / EqProp.
Inputs are Fashion-MNIST training images when the IDX files are installed (else uniform noise).

BLAS threads: OpenBLAS' worker threads busy-wait between calls, and Numba's parallel kernels run
between the BLAS calls of every step; on a 2-core machine the two thread pools fight over the cores
(measured: ~60x slower steps). ``--blas-threads 1`` (the default) sets ``OPENBLAS_NUM_THREADS``
and friends before numpy is imported; ``--blas-threads 0`` leaves the library default, to
reproduce the contention.

Numba's OpenMP threading layer has the same problem when another process holds a core: its idle
threads spin, and a parallel kernel over a batch of 4 waits for the slowest. ``--omp-passive``
(``OMP_WAIT_POLICY=PASSIVE``), ``--threading-layer workqueue`` or ``--numba-threads 1`` avoid it.

Usage: ``python bench/train_throughput.py [--batch-sizes 1,4,32,256] [--samples 1024]
[--repeats 3] [--blas-threads 1] [--numba-threads N] [--threading-layer workqueue] [--omp-passive]``
"""
from __future__ import annotations

import argparse
import os
import sys


def parse_args(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--batch-sizes", default="1,4,32,256", help="comma-separated batch sizes")
    ap.add_argument("--samples", type=int, default=1024, help="training samples per timing (at least one batch)")
    ap.add_argument("--repeats", type=int, default=3, help="timings per batch size (median reported)")
    ap.add_argument("--hidden", type=int, default=100)
    ap.add_argument("--preset", default="kendall2020", help="config preset of the analog network")
    ap.add_argument("--blas-threads", type=int, default=1,
                    help="OpenBLAS/MKL/OpenMP threads (0: leave the library default)")
    ap.add_argument("--numba-threads", type=int, default=0, help="Numba threads (0: all cores)")
    ap.add_argument("--threading-layer", choices=["default", "workqueue", "omp", "tbb"], default="default",
                    help="Numba threading layer (sets NUMBA_THREADING_LAYER)")
    ap.add_argument("--omp-passive", action="store_true",
                    help="OMP_WAIT_POLICY=PASSIVE: idle OpenMP threads sleep instead of spinning")
    ap.add_argument("--seed", type=int, default=0)
    return ap.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.blas_threads > 0:
        for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
            os.environ[var] = str(args.blas_threads)
    if args.numba_threads > 0:
        os.environ["NUMBA_NUM_THREADS"] = str(args.numba_threads)
    if args.threading_layer != "default":
        os.environ["NUMBA_THREADING_LAYER"] = args.threading_layer
    if args.omp_passive:
        os.environ["OMP_WAIT_POLICY"] = "PASSIVE"

    import platform
    import statistics
    import time

    import numba
    import numpy as np

    from memsim.baseline import BaselineConfig, BaselineTrainer
    from memsim.config import make_config
    from memsim.datasets import Dataset, DatasetError, load_dataset
    from memsim.presets import preset
    from memsim.train import Trainer

    try:
        batch_sizes = [int(b) for b in args.batch_sizes.split(",") if b.strip()]
    except ValueError:
        print(f"error: --batch-sizes must be integers, got {args.batch_sizes!r}", file=sys.stderr)
        return 2
    if not batch_sizes or min(batch_sizes) < 1 or args.samples < 1 or args.repeats < 1:
        print("error: batch sizes, --samples and --repeats must be positive", file=sys.stderr)
        return 2
    n_need = max(args.samples, max(batch_sizes))
    rng = np.random.default_rng(args.seed)
    try:
        data = load_dataset("fashion-mnist", None, max(n_need, 4096), 256)
        source = "Fashion-MNIST training images"
    except DatasetError:
        x = rng.uniform(0, 1, size=(max(n_need, 4096), 784))
        y = rng.integers(0, 10, len(x))
        data = Dataset("uniform", x, y, x[:256], y[:256], 10)
        source = "uniform noise in [0, 1] (Fashion-MNIST not installed)"

    values = preset(args.preset) if args.preset else {}
    values.update({"dataset": "fashion-mnist", "hidden": args.hidden, "seed": args.seed})

    def eqprop_rate(B: int) -> tuple[float, float]:
        cfg = make_config({**values, "batch_size": B})
        tr = Trainer(cfg, data)
        n_steps = max(1, round(args.samples / B))
        idx = rng.permutation(len(data.x_train))
        # warm-up: JIT compile (cached) and a few steps so that the conductances are not at init
        for s in range(min(3, n_steps)):
            sl = idx[(s * B) % (len(idx) - B + 1):][:B]
            tr.step(data.x_train[sl], data.y_train[sl])
        times = []
        sweeps = []
        for _ in range(args.repeats):
            starts = rng.integers(0, len(idx) - B + 1, size=n_steps)
            t0 = time.perf_counter()
            for s in starts:
                sl = idx[s:s + B]
                r = tr.step(data.x_train[sl], data.y_train[sl])
                sweeps.append(r["sweeps"])
            times.append(time.perf_counter() - t0)
        return n_steps * B / statistics.median(times), float(np.mean(sweeps))

    def backprop_rate(B: int) -> float:
        cfg = BaselineConfig(model="mlp", dataset="fashion-mnist", hidden=args.hidden, batch_size=B, lr=1e-3,
                             seed=args.seed)
        tr = BaselineTrainer(cfg, data)
        x = data.x_train
        n_steps = max(1, round(args.samples / B))
        for s in range(min(3, n_steps)):
            tr.step(x[s * B:(s + 1) * B], data.y_train[s * B:(s + 1) * B])
        times = []
        for _ in range(args.repeats):
            starts = rng.integers(0, len(x) - B + 1, size=n_steps)
            t0 = time.perf_counter()
            for s in starts:
                tr.step(x[s:s + B], data.y_train[s:s + B])
            times.append(time.perf_counter() - t0)
        return n_steps * B / statistics.median(times)

    rows = []
    for B in batch_sizes:
        e_rate, sw = eqprop_rate(B)
        b_rate = backprop_rate(B)
        rows.append((B, e_rate, sw, b_rate))
        print(f"batch {B}: EqProp {e_rate:,.0f} samples/s, backprop {b_rate:,.0f} samples/s", file=sys.stderr, flush=True)

    print(f"# Training throughput: EqProp (analog {2 * 784}-{args.hidden}-20) vs backprop (numpy {784}-{args.hidden}-10)")
    print()
    print(f"- machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores; Python "
          f"{platform.python_version()}, numpy {np.__version__}, numba {numba.__version__} "
          f"({numba.config.NUMBA_NUM_THREADS} threads, layer {numba.threading_layer() if _threading_ready() else 'n/a'})")
    print(f"- BLAS threads: {os.environ.get('OPENBLAS_NUM_THREADS', 'library default')}; OMP_WAIT_POLICY: "
          f"{os.environ.get('OMP_WAIT_POLICY', 'default')}; preset {args.preset!r}; "
          f"inputs: {source}")
    print(f"- per batch size: median of {args.repeats} timings of ~{args.samples} samples; EqProp step = free + "
          f"nudge+ + nudge- + gradients + update; backprop step = forward + backward + Adam")
    print()
    print("| batch | EqProp samples/s | mean sweeps/phase | backprop samples/s | backprop / EqProp |")
    print("| ---: | ---: | ---: | ---: | ---: |")
    for B, e_rate, sw, b_rate in rows:
        print(f"| {B} | {e_rate:,.0f} | {sw:.1f} | {b_rate:,.0f} | {b_rate / e_rate:.1f} |")
    return 0


def _threading_ready() -> bool:
    try:
        import numba

        numba.threading_layer()
        return True
    except ValueError:  # no parallel kernel has run yet
        return False


if __name__ == "__main__":
    sys.exit(main())
