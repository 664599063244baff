"""Analyse a device-nonideality sweep from Python.

Make a small sweep first (about 10 s on 2 cores), then run this script on it::

    memsim sweep --axis device.g_max=log:5e-6:2e-5:3 --axis lr=1000,3000 --seeds 2 \
        --epochs 2 --hidden 20 --train-limit 400 --test-limit 200 --out sweeps/gmax
    python examples/analyse_sweep.py sweeps/gmax

It prints the index, the grid of mean test accuracies, the best point and its learning curve,
compares each run's final conductances with the device bounds, and (with matplotlib installed)
writes the same report as ``memsim report``.
"""
from __future__ import annotations

import sys

import numpy as np

import memsim


def main(sweep_dir: str) -> None:
    sw = memsim.open_sweep(sweep_dir)
    print(sw)
    print("axes:", {k: sw.axis_values[k] for k in sw.axes}, "seeds:", sw.seeds)

    # The index: one entry per run, as numpy arrays.
    idx = sw.index
    for i in range(len(sw)):
        axes = ", ".join(f"{k}={idx[k][i]}" for k in sw.axes)
        print(f"  {idx['path'][i]}  {axes}  seed {idx['seed'][i]}  {idx['status'][i]:>9s}  "
              f"test acc {100 * idx['test_accuracy'][i]:6.2f}%  {idx['error'][i]}")

    # The grid: shape (axis 1, ..., axis n, seeds); NaN where a run has not finished.
    acc = sw.grid("test_accuracy")
    with np.errstate(invalid="ignore"):
        mean = np.nanmean(acc, axis=-1)
    print("mean test accuracy over seeds, grid", sw.axes, ":\n", np.round(100 * mean, 2))

    # Per point summaries, best point.
    summary = [s for s in sw.summary("test_accuracy") if s["n"]]
    if not summary:
        print("no run has finished yet")
        return
    best = max(summary, key=lambda s: s["mean"])
    print("best point:", {k: best[k] for k in sw.axes}, f"mean {100 * best['mean']:.2f}% over {best['n']} seeds")

    # Per-run access: the run files of the best point (memsim.h5io.Run objects).
    rows = sw.where(status="complete", **{k: best[k] for k in sw.axes})
    for i in rows:
        run = sw.run(int(i))
        m = run.metrics
        print(f"  seed {run.seed}: test accuracy per epoch", np.round(100 * m["test_accuracy"], 1))
        net = run.network()
        card = net.spec.memristor
        at_bounds = np.mean([np.mean((w <= card.g_min * 1.001) | (w >= card.g_max * 0.999)) for w in net.weights])
        print(f"    memristor {card.name}: {100 * at_bounds:.1f}% of the crossbar devices sit at a bound")

    # Figures and report.md (needs matplotlib: pip install 'memsim[plot]').
    try:
        from memsim.analysis import write_report

        rep = write_report(sw, sw.path / "report")
        print("report:", rep["markdown"], "figures:", [p.name for p in rep["figures"]])
    except RuntimeError as exc:  # matplotlib missing
        print(exc)


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: python examples/analyse_sweep.py SWEEP_DIR")
    main(sys.argv[1])
