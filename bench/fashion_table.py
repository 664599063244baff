"""The Fashion-MNIST table: the analog network trained with EqProp against software baselines.

Rows (10 epochs each, full Fashion-MNIST: 60,000 training and 10,000 test images):

* ``eqprop``        analog 1568-100-20 (784 pixels and their inverted copies, 100 diode neurons,
                    10 differential outputs), ``memsim train --preset kendall2020`` (cross-entropy cost);
* ``eqprop-mse``    the same network trained on the squared-error cost (the paper's), with that
                    cost's tuned settings (target 0.5 V, input gain 100 V, lr 6000/2000, decay 0.75);
* ``mlp``           software MLP 784-100-10, hard sigmoid, backprop with Adam (``memsim baseline``);
* ``logreg``        logistic regression 784-10, Adam;
* ``mlp-positive``  the MLP under the analog network's constraints (inputs (x, -x), weights >= 0,
                    differential outputs: 1568-100-20), Adam.

Each row is a run file in ``--runs-dir``; an existing complete file with the requested epochs is
read, not rerun (``--rerun`` forces new runs, ``--no-run`` only reads). The script prints the
markdown table (network | dataset | epochs | test error | wall time), optionally writes it
(``--write FILE``), and draws the learning curves (train and test error per epoch, every row) to
``--png`` (default ``<runs-dir>/learning-curves.png``) when matplotlib is installed (``pip install memsim[plot]``).

Runs are started as ``python -m memsim ...`` child processes with ``OPENBLAS_NUM_THREADS=1`` and
``OMP_WAIT_POLICY=PASSIVE`` unless already set (see bench/train_throughput.py: multi-threaded BLAS
and spinning OpenMP threads next to Numba's kernels are many times slower on a small, shared
machine). Wall time is the run file's ``/metrics/wall_time`` summed over the epochs
(training plus the per-epoch test evaluation, without process start and JIT loading).

Usage: ``python bench/fashion_table.py [--runs-dir runs/fashion] [--epochs 10] [--rows eqprop,mlp,logreg]
[--seeds 0,1,2] [--png FILE.png] [--write bench/RESULTS-fashion.md] [--rerun | --no-run]``
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROWS = {
    "eqprop": ("EqProp, analog 1568-100-20, cross-entropy cost (`kendall2020` preset)", "train",
               ["--preset", "kendall2020"]),
    "eqprop-mse": ("EqProp, analog 1568-100-20, squared-error cost", "train",
                   ["--preset", "kendall2020", "--loss", "mse", "--target", "0.5", "--input-gain", "100",
                    "--lr", "6000,2000", "--lr-decay", "0.75"]),
    "mlp": ("backprop MLP 784-100-10 (hard sigmoid, Adam)", "baseline", ["--model", "mlp"]),
    "logreg": ("logistic regression 784-10 (Adam)", "baseline", ["--model", "logreg"]),
    "mlp-positive": ("backprop MLP 1568-100-20, weights >= 0, inputs (x, -x) (Adam)", "baseline",
                     ["--model", "mlp-positive"]),
}


SHORT = {"eqprop": "EqProp analog, cross-entropy", "eqprop-mse": "EqProp analog, squared error", "mlp": "backprop MLP 784-100-10", "logreg": "logistic regression",
         "mlp-positive": "backprop MLP, weights >= 0"}


def parse_args(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs-dir", default="runs/fashion", help="folder of the run files (created)")
    ap.add_argument("--epochs", type=int, default=10)
    ap.add_argument("--rows", default="eqprop,eqprop-mse,mlp,logreg,mlp-positive",
                    help=f"comma-separated rows, of: {', '.join(ROWS)}")
    ap.add_argument("--dataset", default="fashion-mnist")
    ap.add_argument("--data-dir", help="folder with the IDX files (default: memsim's search path)")
    ap.add_argument("--seeds", default="0",
                    help="comma-separated seeds; with several, the table gives seed 0's run (or the first "
                         "seed's) and the mean and standard deviation over all of them")
    ap.add_argument("--train-limit", type=int, default=0, help="first N training samples only (quick checks)")
    ap.add_argument("--test-limit", type=int, default=0, help="first N test samples only (quick checks)")
    ap.add_argument("--png", help="learning-curve figure (default: <runs-dir>/learning-curves.png; '' for none)")
    ap.add_argument("--write", help="also write the markdown table to this file")
    g = ap.add_mutually_exclusive_group()
    g.add_argument("--rerun", action="store_true", help="run every row again, replacing its run file")
    g.add_argument("--no-run", action="store_true", help="only read existing run files")
    return ap.parse_args(argv)


def _complete(path: Path, epochs: int) -> bool:
    from memsim.h5io import RunFileError, open_run

    if not path.is_file():
        return False
    try:
        run = open_run(path)
    except RunFileError:
        return False
    n = len(run.metrics.get("epoch", []))
    return run.status == "complete" and n == epochs and int(run.config.get("epochs", -1)) == epochs


def _run_row(key: str, path: Path, args, seed: int) -> None:
    _, command, extra = ROWS[key]
    cmd = [sys.executable, "-m", "memsim", command, "--dataset", args.dataset, "--epochs", str(args.epochs),
           "--seed", str(seed), "-o", str(path), "--overwrite", *extra]
    if command == "train":
        cmd += ["--quiet"]
    if args.data_dir:
        cmd += ["--data-dir", args.data_dir]
    if args.train_limit:
        cmd += ["--train-limit", str(args.train_limit)]
    if args.test_limit:
        cmd += ["--test-limit", str(args.test_limit)]
    env = dict(os.environ)
    env.setdefault("OPENBLAS_NUM_THREADS", "1")
    env.setdefault("OMP_NUM_THREADS", "1")
    env.setdefault("MKL_NUM_THREADS", "1")
    env.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # Numba's OpenMP threads sleep when idle
    print(f"[fashion_table] {key}: {' '.join(cmd[1:])}", file=sys.stderr, flush=True)
    t0 = time.perf_counter()
    r = subprocess.run(cmd, env=env)
    if r.returncode != 0:
        raise SystemExit(f"[fashion_table] {key}: the run failed (exit {r.returncode})")
    print(f"[fashion_table] {key}: done in {time.perf_counter() - t0:.0f} s (process)", file=sys.stderr, flush=True)


def _fmt_time(s: float) -> str:
    return f"{s:.0f} s" if s < 120 else f"{s / 60:.1f} min ({s:.0f} s)"


def _dataset_label(run, dataset: str) -> str:
    c = run.config
    lim = [f"{c[k]:,} {w}" for k, w in (("train_limit", "train"), ("test_limit", "test")) if c.get(k)]
    return f"{dataset} ({', '.join(lim)})" if lim else dataset


def _final_error(run) -> float:
    m = run.metrics
    return 100 * (1 - m["test_accuracy"][-1]) if len(m["epoch"]) else float("nan")


def table(rows: list[tuple[str, list]], dataset: str) -> str:
    """One line per row: the first seed's run (final and best-epoch test error, wall time) and, with
    several seeds, the mean +- standard deviation of the final test error over them."""
    many = any(len(runs) > 1 for _, runs in rows)
    head = "| network | dataset | epochs | test error | wall time |" + (" seeds: mean +- sd |" if many else "")
    lines = [head, "| --- | --- | ---: | ---: | ---: |" + (" ---: |" if many else "")]
    for key, runs in rows:
        run = runs[0]
        m = run.metrics
        n = len(m["epoch"])
        err = _final_error(run)
        best = 100 * (1 - m["test_accuracy"].max()) if n else float("nan")
        line = (f"| {ROWS[key][0]} | {_dataset_label(run, dataset)} | {n} | {err:.2f}% (best epoch {best:.2f}%) | "
                f"{_fmt_time(float(m['wall_time'].sum()))} |")
        if many:
            e = np.array([_final_error(r) for r in runs])
            line += f" {e.mean():.2f} +- {e.std(ddof=1) if len(e) > 1 else 0.0:.2f}% ({len(e)}) |"
        lines.append(line)
    return "\n".join(lines)


def learning_curves(rows: list[tuple[str, object]], png: str, dataset: str) -> bool:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("[fashion_table] matplotlib is not installed (pip install memsim[plot]): no figure", file=sys.stderr)
        return False
    fig, ax = plt.subplots(figsize=(7, 4.5))
    colors = {"eqprop": "C3", "eqprop-mse": "C4", "mlp": "C0", "logreg": "C2", "mlp-positive": "C1"}
    for key, runs in rows:
        m = runs[0].metrics
        ep = m["epoch"]
        c = colors.get(key)
        label = SHORT.get(key, key)
        ax.plot(ep, 100 * (1 - m["test_accuracy"]), "-o", color=c, ms=4, label=f"{label}: test")
        ax.plot(ep, 100 * (1 - m["train_accuracy"]), "--", color=c, alpha=0.7, label=f"{label}: train")
    ax.set_xlabel("epoch")
    ax.xaxis.get_major_locator().set_params(integer=True)
    ax.set_ylabel("error (%)")
    ax.set_title(f"{dataset}: EqProp on the analog network vs backprop (train error: running, during the epoch)",
                 fontsize=9)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, ncol=2)
    fig.tight_layout()
    Path(png).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(png, dpi=120)
    plt.close(fig)
    return True


def main(argv=None) -> int:
    args = parse_args(argv)
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
    from memsim.h5io import open_run

    keys = [k.strip() for k in args.rows.split(",") if k.strip()]
    unknown = [k for k in keys if k not in ROWS]
    if unknown:
        print(f"error: unknown row(s) {', '.join(unknown)} (known: {', '.join(ROWS)})", file=sys.stderr)
        return 2
    try:
        seeds = [int(v) for v in args.seeds.split(",") if v.strip()]
    except ValueError:
        print(f"error: --seeds must be comma-separated integers, got {args.seeds!r}", file=sys.stderr)
        return 2
    if not seeds:
        print("error: --seeds is empty", file=sys.stderr)
        return 2
    runs_dir = Path(args.runs_dir)
    runs_dir.mkdir(parents=True, exist_ok=True)
    rows = []
    for key in keys:
        limits = f"-{args.train_limit}x{args.test_limit}" if args.train_limit or args.test_limit else ""
        runs = []
        for seed in seeds:
            tag = "" if seed == 0 else f"-seed{seed}"
            path = runs_dir / f"{key}-{args.dataset}{limits}-{args.epochs}ep{tag}.h5"
            if args.rerun or not _complete(path, args.epochs):
                if args.no_run:
                    print(f"[fashion_table] {key}: no complete run file {path}; skipped (--no-run)", file=sys.stderr)
                    continue
                _run_row(key, path, args, seed)
            runs.append(open_run(path))
        if runs:
            rows.append((key, runs))
    if not rows:
        print("error: no runs to tabulate", file=sys.stderr)
        return 1
    md = table(rows, args.dataset)
    print(md)
    if args.write:
        Path(args.write).write_text(md + "\n")
    png = str(runs_dir / "learning-curves.png") if args.png is None else args.png
    if png:
        if learning_curves(rows, png, args.dataset):
            print(f"\nlearning curves: {png}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
