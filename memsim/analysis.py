"""Reading runs and sweeps for people: summary tables and PNG figures.

Figures need matplotlib (the optional extra ``memsim[plot]``); everything else here needs only
numpy and h5py. Figures are drawn with matplotlib's object API on the Agg canvas (no display, no
pyplot state), at a fixed size in inches (pixels = inches x ``dpi``).

Run figures (:func:`plot_run`, ``memsim plot RUN.h5 --what ...``):

- ``learning-curve``: train/test accuracy and losses per epoch;
- ``conductances``: each crossbar's final conductance map and histogram (siemens shown in uS);
- ``pulses``: programming pulses per epoch and their running total (and energy when counted);
- ``trajectory``: node-voltage transients of a traced sample, one panel per phase, read from
  ``/trajectories/sample_<i>/<phase>/{time, voltage}`` (train with ``--trace K`` to record them).

Sweep report (:func:`write_report`, ``memsim report SWEEP_DIR -o DIR``): the metric against
each axis with its seed spread, heatmaps for pairs of axes, every run's learning curve and a
markdown summary (``report.md``) that shows them.
"""
from __future__ import annotations

import itertools
import json
import math
import re
import warnings
from pathlib import Path
from typing import Any

import numpy as np

PLOTS = ("learning-curve", "conductances", "pulses", "trajectory")
PHASES = ("free", "nudge_plus", "nudge_minus")
FIGSIZE = (6.4, 4.8)  # inches: 640 x 480 pixels at the default dpi
DPI = 100
METRIC_LABELS = {"test_accuracy": "test accuracy", "train_accuracy": "train accuracy", "test_loss": "test loss",
                 "train_loss": "train loss", "clipped_fraction": "clipped hidden nodes", "pulses": "pulses",
                 "programming_energy": "programming energy (J)", "wall_time": "wall time (s)"}
PERCENT_METRICS = ("test_accuracy", "train_accuracy", "clipped_fraction")


class PlotDependencyError(RuntimeError):
    """matplotlib (the ``plot`` extra) is not installed."""


class NoTracesError(ValueError):
    """The run file holds no node-voltage trajectories."""


def require_matplotlib():
    """``(Figure, FigureCanvasAgg)``; :class:`PlotDependencyError` with the install line if missing."""
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError:
        raise PlotDependencyError("drawing figures needs matplotlib, which is not installed: "
                                  "pip install 'memsim[plot]' (or: pip install 'matplotlib>=3.7')") from None
    return Figure, FigureCanvasAgg


def new_figure(figsize=FIGSIZE):
    Figure, Canvas = require_matplotlib()
    fig = Figure(figsize=figsize, layout="constrained")
    Canvas(fig)
    return fig


def save_figure(fig, path: str | Path, dpi: int = DPI) -> Path:
    """Write ``fig`` as PNG (exactly figsize x dpi pixels)."""
    path = Path(path)
    if path.parent and not path.parent.exists():
        raise FileNotFoundError(f"output folder {path.parent} does not exist")
    fig.savefig(path, dpi=dpi, format="png")
    return path


def _as_run(run):
    from memsim.h5io import Run, open_run

    return run if isinstance(run, Run) else open_run(run)


def _pct(metric: str) -> float:
    return 100.0 if metric in PERCENT_METRICS else 1.0


def _label(metric: str) -> str:
    lab = METRIC_LABELS.get(metric, metric.replace("_", " "))
    return lab + (" (%)" if metric in PERCENT_METRICS else "")


# ------------------------------------------------------------------------------------------------
# run figures


def learning_curve_figure(run):
    """Accuracy (left axis, %) and loss (right axis, V^2) per epoch."""
    run = _as_run(run)
    m = run.metrics
    fig = new_figure()
    ax = fig.add_subplot()
    n = len(m.get("epoch", []))
    title = f"{run.path.name}: {run.config.get('dataset', '')} (status {run.status})"
    if n == 0:
        ax.text(0.5, 0.5, "no finished epoch", ha="center", va="center", transform=ax.transAxes)
        ax.set_title(title)
        return fig
    ep = m["epoch"]
    for name, style in (("train_accuracy", "o--"), ("test_accuracy", "o-")):
        if name in m:
            ax.plot(ep, 100 * m[name], style, label=METRIC_LABELS[name])
    ax.set_xlabel("epoch")
    ax.set_ylabel("accuracy (%)")
    ax.set_ylim(0, 100)
    ax.grid(alpha=0.3)
    ax2 = ax.twinx()
    for name, style in (("train_loss", "s--"), ("test_loss", "s-")):
        if name in m and np.isfinite(m[name]).any():
            ax2.plot(ep, m[name], style, color="tab:red" if name == "test_loss" else "tab:pink", alpha=0.8,
                     label=METRIC_LABELS[name])
    ax2.set_ylabel("loss (V$^2$)")
    lines = ax.get_legend_handles_labels()
    lines2 = ax2.get_legend_handles_labels()
    ax.legend(lines[0] + lines2[0], lines[1] + lines2[1], loc="center right", fontsize="small")
    ax.set_title(title)
    if n <= 20:
        ax.set_xticks(ep)
    return fig


def conductances_figure(run):
    """Per crossbar: the final conductance map (uS) and its histogram."""
    run = _as_run(run)
    net = run.network()
    L = len(net.weights)
    fig = new_figure((9.6, 3.0 * L))
    card = net.spec.memristor
    gmin = card.g_min * 1e6 if card else None
    gmax = card.g_max * 1e6 if card else None
    for k, w in enumerate(net.weights):
        w_us = np.asarray(w) * 1e6
        ax = fig.add_subplot(L, 2, 2 * k + 1)
        im = ax.imshow(w_us.T, aspect="auto", interpolation="nearest", cmap="viridis", vmin=gmin, vmax=gmax)
        ax.set_title(f"crossbar {k}: {w.shape[0]} x {w.shape[1]}", fontsize="small")
        ax.set_xlabel(f"layer {k} node")
        ax.set_ylabel(f"layer {k + 1} node")
        fig.colorbar(im, ax=ax, label="G (uS)")
        ax = fig.add_subplot(L, 2, 2 * k + 2)
        ax.hist(w_us.ravel(), bins=50, color="tab:blue")
        if gmin is not None:
            for g in (gmin, gmax):
                ax.axvline(g, color="k", ls=":", lw=1)
        ax.set_xlabel("G (uS)")
        ax.set_ylabel("devices")
        ax.set_title(f"mean {w_us.mean():.3g} uS, {w.size} devices", fontsize="small")
    fig.suptitle(f"{run.path.name}: final conductances" + (f" (memristor {card.name})" if card else ""))
    return fig


def pulses_figure(run):
    """Programming pulses per epoch (bars), their running total, and energy when counted."""
    run = _as_run(run)
    m = run.metrics
    fig = new_figure()
    ax = fig.add_subplot()
    n = len(m.get("epoch", []))
    if n == 0:
        ax.text(0.5, 0.5, "no finished epoch", ha="center", va="center", transform=ax.transAxes)
        return fig
    ep = m["epoch"]
    pulses = np.nan_to_num(m.get("pulses", np.zeros(n)))
    ax.bar(ep, pulses, color="tab:blue", alpha=0.7, label="pulses per epoch")
    ax.set_xlabel("epoch")
    ax.set_ylabel("pulses per epoch")
    ax2 = ax.twinx()
    ax2.plot(ep, np.cumsum(pulses), "o-", color="tab:orange", label="total pulses")
    ax2.set_ylabel("total pulses")
    energy = m.get("programming_energy")
    title = f"{run.path.name}: programming pulses (programming {run.config.get('programming', '?')})"
    if energy is not None and np.nansum(energy) > 0:
        title += f", energy {np.nansum(energy):.3g} J"
    if not pulses.any():
        ax.text(0.5, 0.5, "no pulses counted\n(ideal programming writes conductances directly)", ha="center",
                va="center", transform=ax.transAxes, color="0.4")
    ax.set_title(title, fontsize="medium")
    h1, l1 = ax.get_legend_handles_labels()
    h2, l2 = ax2.get_legend_handles_labels()
    ax.legend(h1 + h2, l1 + l2, loc="upper left", fontsize="small")
    if n <= 20:
        ax.set_xticks(ep)
    return fig


def read_trajectories(path: str | Path) -> dict[int, dict[str, dict[str, Any]]]:
    """``{sample: {phase: {"time", "voltage", "nodes", "attrs"}}}`` from ``/trajectories``.

    Reads ``/trajectories/sample_<i>/<phase>/{time, voltage}``; where the samples are grouped per
    epoch (``/trajectories/epoch_<e>/sample_<i>/...``) the last epoch is read. Empty if none.
    """
    import h5py

    from memsim.h5io import check_run_file

    check_run_file(path)
    out: dict[int, dict[str, dict[str, Any]]] = {}
    with h5py.File(path, "r") as f:
        g = f.get("trajectories")
        if g is None:
            return out
        epochs = sorted((int(k.split("_", 1)[1]), k) for k in g if re.fullmatch(r"epoch_\d+", k))
        if epochs and not any(re.fullmatch(r"sample_\d+", k) for k in g):
            g = g[epochs[-1][1]]
        for name in g:
            mt = re.fullmatch(r"sample_(\d+)", name)
            if not mt or not isinstance(g[name], h5py.Group):
                continue
            phases = {}
            for ph, pg in g[name].items():
                if not isinstance(pg, h5py.Group) or "time" not in pg:
                    continue
                vname = "voltage" if "voltage" in pg else ("value" if "value" in pg else None)
                if vname is None:
                    continue
                nodes = pg[vname].attrs.get("nodes", pg.attrs.get("nodes", None))
                if nodes is not None:
                    nodes = [n.decode() if isinstance(n, bytes) else str(n) for n in np.atleast_1d(nodes)]
                phases[ph] = {"time": pg["time"][()], "voltage": pg[vname][()], "nodes": nodes,
                              "attrs": dict(pg.attrs)}
            if phases:
                out[int(mt.group(1))] = phases
    return out


def trajectory_figure(run, sample: int | None = None, max_nodes: int = 24):
    """Node voltages against time for one traced sample, one panel per phase."""
    run = _as_run(run)
    traces = read_trajectories(run.path)
    if not traces:
        raise NoTracesError(f"{run.path}: the run has no traces (no /trajectories/sample_<i>); "
                            f"train with --trace K to record the phase transients of K samples")
    if sample is None:
        sample = min(traces)
    if sample not in traces:
        raise NoTracesError(f"{run.path}: no trace of sample {sample} (traced samples: "
                            f"{', '.join(map(str, sorted(traces)))})")
    phases = traces[sample]
    order = [p for p in PHASES if p in phases] + sorted(p for p in phases if p not in PHASES)
    fig = new_figure((4.0 * len(order), 4.0))
    share = None
    for i, ph in enumerate(order):
        d = phases[ph]
        t = np.asarray(d["time"], dtype=float).ravel()
        v = np.asarray(d["voltage"], dtype=float)
        if v.ndim == 1:
            v = v[:, None]
        elif v.shape[0] != len(t) and v.shape[1] == len(t):
            v = v.T
        n_nodes = v.shape[1]
        ax = fig.add_subplot(1, len(order), i + 1, sharey=share)
        share = share or ax
        scale, unit = _time_unit(t)
        names = d["nodes"] or [f"node {j}" for j in range(n_nodes)]
        for j in range(min(n_nodes, max_nodes)):
            ax.plot(t * scale, v[:, j], lw=1, label=names[j] if j < len(names) else f"node {j}")
        more = f" (first {max_nodes} of {n_nodes} nodes)" if n_nodes > max_nodes else ""
        ax.set_title(f"{ph}{more}", fontsize="small")
        ax.set_xlabel(f"time ({unit})")
        if i == 0:
            ax.set_ylabel("node voltage (V)")
        ax.grid(alpha=0.3)
        if n_nodes <= 8:
            ax.legend(fontsize="x-small")
    fig.suptitle(f"{run.path.name}: sample {sample}")
    return fig


def _time_unit(t: np.ndarray) -> tuple[float, str]:
    """A scale and unit that show the time span as a number of at least 1."""
    span = float(np.nanmax(np.abs(t))) if t.size else 0.0
    if not span > 0:
        return 1.0, "s"
    for scale, unit in ((1.0, "s"), (1e3, "ms"), (1e6, "us"), (1e9, "ns")):
        if span * scale >= 1:
            return scale, unit
    return 1e9, "ns"


def plot_run(run, what: str, out: str | Path, sample: int | None = None, dpi: int = DPI) -> Path:
    """Draw figure ``what`` (one of :data:`PLOTS`) of a run file to the PNG ``out``."""
    require_matplotlib()
    if what not in PLOTS:
        raise ValueError(f"unknown figure {what!r} (known: {', '.join(PLOTS)})")
    run = _as_run(run)
    fig = {"learning-curve": learning_curve_figure, "conductances": conductances_figure,
           "pulses": pulses_figure}.get(what, None)
    fig = trajectory_figure(run, sample) if what == "trajectory" else fig(run)
    return save_figure(fig, out, dpi)


# ------------------------------------------------------------------------------------------------
# sweeps: tables


def _fmt_metric(v: float, metric: str) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "-"
    if metric in PERCENT_METRICS:
        return f"{100 * v:.2f}%"
    return f"{v:.4g}"


def sweep_table(sweep, metric: str = "test_accuracy") -> list[list[str]]:
    """Header and rows: axis values, mean/std/min/max of ``metric`` over the finished seeds, counts."""
    from memsim.sweep import display_value

    head = [*sweep.axes, f"{METRIC_LABELS.get(metric, metric)} mean", "std", "min", "max", "seeds", "failed", "pending"]
    rows = []
    for s in sweep.summary(metric):
        std = s["std"]
        rows.append([*(display_value(s[k]) for k in sweep.axes), _fmt_metric(s["mean"], metric),
                     _fmt_metric(std, metric) if s["n"] > 1 else "-", _fmt_metric(s["min"], metric),
                     _fmt_metric(s["max"], metric), f"{s['n']}/{len(sweep.seeds)}", str(s["failed"]),
                     str(s["pending"])])
    return [head, *rows]


def format_table(table: list[list[str]], indent: str = "  ") -> str:
    widths = [max(len(r[i]) for r in table) for i in range(len(table[0]))]
    lines = []
    for j, r in enumerate(table):
        lines.append(indent + "  ".join(c.rjust(w) for c, w in zip(r, widths)))
        if j == 0:
            lines.append(indent + "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def sweep_text(sweep, metric: str = "test_accuracy") -> str:
    """What ``memsim info SWEEP_DIR`` prints."""
    from memsim.sweep import display_value

    c = sweep.counts
    a = sweep.attrs
    base = sweep.base_config
    lines = [f"sweep     {sweep.path}",
             f"runs      {len(sweep)}: {c['complete']} complete, {c['failed']} failed, "
             f"{c['pending'] + c['interrupted']} to run (memsim {a.get('memsim_version')}, created {a.get('created')}, "
             f"updated {a.get('updated')})",
             f"base      {_base_summary(base)}",
             f"seeds     {', '.join(map(str, sweep.seeds))}"]
    for k in sweep.axes:
        lines.append(f"axis      {k} ({sweep.scales[k]}): {', '.join(display_value(v) for v in sweep.axis_values[k])}")
    if not sweep.axes:
        lines.append("axis      none (the base config, once per seed)")
    lines.append(f"{METRIC_LABELS.get(metric, metric)} after the last epoch, over the seeds:")
    lines.append(format_table(sweep_table(sweep, metric)))
    failed = np.flatnonzero(np.asarray(sweep.index["status"]) == "failed")
    if failed.size:
        lines.append("failed runs:")
        for i in failed:
            lines.append(f"  {sweep.index['path'][i]} (seed {sweep.index['seed'][i]}): {sweep.index['error'][i]}")
    return "\n".join(lines)


def _base_summary(base: dict) -> str:
    from memsim.config import TrainConfig

    default = TrainConfig().to_dict()
    hidden = "-".join(str(h) for h in base.get("hidden", []))
    changed = [f"{k}={base[k]}" for k in sorted(base) if k not in ("hidden", "dataset", "epochs", "seed")
               and base[k] != default.get(k)]
    s = f"{base.get('dataset')} hidden {hidden}, {base.get('epochs')} epochs"
    return s + (", " + ", ".join(changed) if changed else "")


# ------------------------------------------------------------------------------------------------
# sweeps: figures and the report


def _safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", name)


def _axis_positions(sweep, key: str) -> tuple[np.ndarray, list[str], bool]:
    """x positions, tick labels, and whether the axis is numeric."""
    from memsim.sweep import display_value

    vals = sweep.axis_values[key]
    labels = [display_value(v) for v in vals]
    nums = []
    for v in vals:
        if isinstance(v, tuple) and len(v) == 1:
            v = v[0]
        if isinstance(v, (int, float)) and not isinstance(v, bool):
            nums.append(float(v))
        else:
            return np.arange(len(vals), dtype=float), labels, False
    return np.asarray(nums), labels, True


def _nan_stats(a: np.ndarray, axis: int):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return np.nanmean(a, axis=axis), np.nanmin(a, axis=axis), np.nanmax(a, axis=axis), np.nanstd(a, axis=axis)


def metric_vs_axis_figure(sweep, key: str, metric: str = "test_accuracy", max_lines: int = 8):
    """``metric`` against axis ``key``: mean over seeds, bars from the lowest to the highest seed,
    every seed as a dot; one line per combination of the other axes (pooled when there are more
    than ``max_lines``)."""
    from memsim.sweep import display_value

    g = sweep.grid(metric) * _pct(metric)
    j = sweep.axes.index(key)
    S = len(sweep.seeds)
    others = [k for k in sweep.axes if k != key]
    gj = np.moveaxis(g, j, 0)
    nj = gj.shape[0]
    n_other = int(np.prod([len(sweep.axis_values[k]) for k in others])) if others else 1
    gj = gj.reshape(nj, n_other, S)
    if n_other > max_lines:
        gj = gj.reshape(nj, 1, n_other * S)
        line_labels = [f"all {n_other} combinations of {', '.join(others)} pooled"]
    elif others:
        combos = list(itertools.product(*[sweep.axis_values[k] for k in others]))
        line_labels = [", ".join(f"{k}={display_value(v)}" for k, v in zip(others, c)) for c in combos]
    else:
        line_labels = [None]
    x, labels, numeric = _axis_positions(sweep, key)
    fig = new_figure()
    ax = fig.add_subplot()
    n_lines = gj.shape[1]
    offsets = (np.arange(n_lines) - (n_lines - 1) / 2) * (0.06 if not numeric else 0.0)
    for li in range(n_lines):
        data = gj[:, li, :]
        mean, lo, hi, _ = _nan_stats(data, 1)
        xs = x + offsets[li]
        label = line_labels[li]
        if label and not np.isfinite(data).any():
            label += " (no finished run)"
        line = ax.errorbar(xs, mean, yerr=[mean - lo, hi - mean], fmt="o-", capsize=3, label=label)
        color = line[0].get_color()
        for s in range(data.shape[1]):
            ax.plot(xs, data[:, s], ".", color=color, alpha=0.35, ms=5)
    if numeric and sweep.scales.get(key) == "log" and (x > 0).all():
        ax.set_xscale("log")
    if not numeric or len(x) <= 12:
        ax.set_xticks(x)
        ax.set_xticklabels(labels, rotation=30 if max(len(s) for s in labels) > 6 else 0)
        ax.minorticks_off()
    ax.set_xlabel(key)
    ax.set_ylabel(_label(metric))
    if metric in PERCENT_METRICS:
        ax.set_ylim(0, 100)
    ax.grid(alpha=0.3)
    ax.set_title(f"{METRIC_LABELS.get(metric, metric)} vs {key}: mean of {S} seed{'s' if S != 1 else ''} "
                 f"(bars: min-max, dots: seeds)", fontsize="small")
    if any(line_labels):
        ax.legend(fontsize="x-small", loc="best")
    return fig


def heatmap_figure(sweep, key_a: str, key_b: str, metric: str = "test_accuracy"):
    """Mean ``metric`` over seeds (and any other axes) on the ``key_a`` x ``key_b`` grid."""
    g = sweep.grid(metric) * _pct(metric)
    ia, ib = sweep.axes.index(key_a), sweep.axes.index(key_b)
    rest = [i for i in range(len(sweep.axes)) if i not in (ia, ib)]
    h = np.moveaxis(g, [ia, ib], [0, 1])
    h = h.reshape(h.shape[0], h.shape[1], -1)
    mean, _, _, std = _nan_stats(h, 2)
    _, la, _ = _axis_positions(sweep, key_a)
    _, lb, _ = _axis_positions(sweep, key_b)
    fig = new_figure()
    ax = fig.add_subplot()
    kw = {"vmin": 0, "vmax": 100} if metric in PERCENT_METRICS else {}
    im = ax.imshow(mean.T, origin="lower", aspect="auto", cmap="viridis", interpolation="nearest", **kw)
    fig.colorbar(im, ax=ax, label=_label(metric))
    ax.set_xticks(range(len(la)))
    ax.set_xticklabels(la, rotation=30 if max(len(s) for s in la) > 6 else 0)
    ax.set_yticks(range(len(lb)))
    ax.set_yticklabels(lb)
    ax.set_xlabel(key_a)
    ax.set_ylabel(key_b)
    if mean.size <= 64:
        for i in range(mean.shape[0]):
            for k in range(mean.shape[1]):
                if np.isfinite(mean[i, k]):
                    txt = f"{mean[i, k]:.1f}" + (f"\n±{std[i, k]:.1f}" if h.shape[2] > 1 else "")
                    ax.text(i, k, txt, ha="center", va="center", fontsize="x-small",
                            color="w" if (mean[i, k] < (50 if kw else np.nanmean(mean))) else "k")
    extra = f", averaged over {', '.join(sweep.axes[i] for i in rest)}" if rest else ""
    ax.set_title(f"mean {METRIC_LABELS.get(metric, metric)} over seeds{extra}", fontsize="small")
    return fig


def learning_curves_figure(sweep, metric: str = "test_accuracy", max_legend: int = 10):
    """``metric`` per epoch of every finished run, one colour per grid point."""
    from memsim.sweep import display_value

    fig = new_figure()
    ax = fig.add_subplot()
    n_points = int(np.max(sweep.index["point"])) + 1 if len(sweep) else 0
    from matplotlib import colormaps

    cmap = colormaps["viridis"]
    seen = set()
    for row, run in sweep.runs("complete"):
        m = run.metrics
        if metric not in m or not len(m["epoch"]):
            continue
        p = int(row["point"])
        color = cmap(p / max(n_points - 1, 1))
        label = None
        if p not in seen and n_points <= max_legend:
            label = ", ".join(f"{k}={display_value(row[k])}" for k in sweep.axes) or "base"
            seen.add(p)
        ax.plot(m["epoch"], m[metric] * _pct(metric), "o-", color=color, alpha=0.7, ms=3, lw=1, label=label)
    ax.set_xlabel("epoch")
    ax.set_ylabel(_label(metric))
    if metric in PERCENT_METRICS:
        ax.set_ylim(0, 100)
    ax.grid(alpha=0.3)
    ax.set_title(f"{METRIC_LABELS.get(metric, metric)} per epoch, every finished run", fontsize="small")
    if seen:
        ax.legend(fontsize="x-small")
    return fig


def write_report(sweep, out_dir: str | Path, metric: str = "test_accuracy", dpi: int = DPI,
                 max_heatmaps: int = 6) -> dict[str, Any]:
    """Figures and ``report.md`` for a sweep (a :class:`memsim.sweep.Sweep` or its folder) in ``out_dir``.

    Returns ``{"markdown": Path, "figures": [Path, ...]}``.
    """
    from memsim.sweep import Sweep, open_sweep

    require_matplotlib()
    if not isinstance(sweep, Sweep):
        sweep = open_sweep(sweep)
    if metric not in sweep.index:
        raise ValueError(f"unknown metric {metric!r} (the index has: "
                         f"{', '.join(k for k in sweep.index if k not in ('row', 'point', 'status', 'error', 'path', 'finished'))})")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    figs: list[tuple[str, str]] = []
    c = sweep.counts
    if c["complete"]:
        for key in sweep.axes:
            name = f"{_safe(metric)}_vs_{_safe(key)}.png"
            save_figure(metric_vs_axis_figure(sweep, key, metric), out / name, dpi)
            figs.append((name, f"{METRIC_LABELS.get(metric, metric)} vs {key}"))
        for ka, kb in list(itertools.combinations(sweep.axes, 2))[:max_heatmaps]:
            name = f"heatmap_{_safe(ka)}__{_safe(kb)}.png"
            save_figure(heatmap_figure(sweep, ka, kb, metric), out / name, dpi)
            figs.append((name, f"{METRIC_LABELS.get(metric, metric)}: {ka} x {kb}"))
        name = "learning_curves.png"
        save_figure(learning_curves_figure(sweep, metric if metric in ("test_accuracy", "train_accuracy", "train_loss",
                                                                        "test_loss") else "test_accuracy"),
                    out / name, dpi)
        figs.append((name, "learning curves"))
    md = _report_markdown(sweep, metric, figs)
    (out / "report.md").write_text(md)
    return {"markdown": out / "report.md", "figures": [out / name for name, _ in figs]}


def _report_markdown(sweep, metric: str, figs: list[tuple[str, str]]) -> str:
    from memsim.sweep import display_value

    c = sweep.counts
    a = sweep.attrs
    lab = METRIC_LABELS.get(metric, metric)
    L = [f"# Sweep report: `{sweep.path.name}`", "",
         f"memsim {a.get('memsim_version')}; sweep created {a.get('created')}, updated {a.get('updated')}; "
         f"folder `{sweep.path}`.", "",
         f"- **runs**: {len(sweep)} ({c['complete']} complete, {c['failed']} failed, "
         f"{c['pending'] + c['interrupted']} not finished)",
         f"- **seeds**: {', '.join(map(str, sweep.seeds))}",
         f"- **base**: {_base_summary(sweep.base_config)}"]
    for k in sweep.axes:
        L.append(f"- **axis `{k}`** ({sweep.scales[k]}): {', '.join(display_value(v) for v in sweep.axis_values[k])}")
    summ = [s for s in sweep.summary(metric) if s["n"]]
    if summ:
        higher_better = "loss" not in metric and metric not in ("wall_time", "pulses", "programming_energy")
        best = (max if higher_better else min)(summ, key=lambda s: s["mean"])
        where = ", ".join(f"`{k}` = {display_value(best[k])}" for k in sweep.axes) or "the base config"
        L += ["", f"**Best point**: {where}: {lab} {_fmt_metric(best['mean'], metric)} "
                  f"(mean of {best['n']} seed{'s' if best['n'] != 1 else ''}, "
                  f"min {_fmt_metric(best['min'], metric)}, max {_fmt_metric(best['max'], metric)})."]
    L += ["", f"## {lab.capitalize()} after the last epoch", ""]
    table = sweep_table(sweep, metric)
    L.append("| " + " | ".join(table[0]) + " |")
    L.append("|" + "|".join("---:" for _ in table[0]) + "|")
    for r in table[1:]:
        L.append("| " + " | ".join(r) + " |")
    if figs:
        L += ["", "## Figures", ""]
        for name, title in figs:
            L += [f"### {title}", "", f"![{title}]({name})", ""]
    else:
        L += ["", "No run has finished yet: no figures.", ""]
    failed = np.flatnonzero(np.asarray(sweep.index["status"]) == "failed")
    if failed.size:
        L += ["## Failed runs", "", "| run | " + " | ".join(sweep.axes) + " | seed | error |",
              "|---|" + "---|" * len(sweep.axes) + "---|---|"]
        for i in failed:
            r = sweep.row(int(i))
            err = str(r["error"]).replace("|", "\\|")
            L.append(f"| `{r['path']}` | " + " | ".join(display_value(r[k]) for k in sweep.axes)
                     + f" | {r['seed']} | {err} |")
        L.append("")
    L += ["## Base config", "", "```json", json.dumps(sweep.base_config, indent=1, sort_keys=True), "```", ""]
    return "\n".join(L)
