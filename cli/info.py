"""``memsim info RUN.h5``: what a run holds; ``memsim info SWEEP_DIR``: a sweep's table."""
from __future__ import annotations

from pathlib import Path

import click
import numpy as np

from memsim.cli.errors import clean_errors


@click.command()
@click.argument("run_file", metavar="RUN_FILE|SWEEP_DIR", type=click.Path())
@click.option("--metric", default="test_accuracy", show_default=True,
              help="Sweeps: the index column tabulated against the axes.")
@clean_errors
def info(run_file, metric):
    """Print a run's config, status, per-epoch metrics and network; or, for a sweep folder, its
    axes against the final test accuracy (mean, spread over seeds) and its failed runs."""
    from memsim.h5io import open_run
    from memsim.sweep import is_sweep_dir

    if is_sweep_dir(run_file) or Path(run_file).is_dir():
        from memsim.analysis import sweep_text
        from memsim.sweep import open_sweep

        sweep = open_sweep(run_file)
        if metric not in sweep.index:
            raise ValueError(f"unknown metric {metric!r} for a sweep (e.g. test_accuracy, train_loss, wall_time)")
        click.echo(sweep_text(sweep, metric))
        return

    run = open_run(run_file)
    a = run.attrs
    click.echo(f"run       {run.path}")
    click.echo(f"status    {run.status}  (memsim {a.get('memsim_version')}, created {a.get('created')}, seed {run.seed})")
    cfg = run.config
    click.echo("config    " + ", ".join(f"{k}={cfg[k]}" for k in sorted(cfg)))
    m = run.metrics
    n = len(m.get("epoch", []))
    click.echo(f"epochs    {n} finished")
    if n:
        cols = [c for c in ("epoch", "train_loss", "train_accuracy", "test_accuracy", "clipped_fraction", "mean_sweeps",
                            "pulses", "wall_time") if c in m]
        click.echo("  " + "  ".join(f"{c:>16s}" for c in cols))
        for i in range(n):
            click.echo("  " + "  ".join(f"{m[c][i]:16.6g}" for c in cols))
    try:
        net = run.network()
    except Exception as exc:  # noqa: BLE001 - a run without a network is still worth showing
        click.echo(f"network   unavailable ({exc})")
        return
    spec = net.spec
    click.echo(f"network   sizes {'-'.join(map(str, spec.sizes))}, g_in {spec.input_gain} V, V_b {spec.bias_voltage} V, "
               f"diode rails [{spec.v_lo}, {spec.v_hi}] V, diode {spec.diode.name}, "
               f"amplifier {spec.amplifier.name if spec.amplifier else 'none'}, "
               f"memristor {spec.memristor.name if spec.memristor else '-'}; {net.n_devices} devices")
    for k, w in enumerate(net.weights):
        click.echo(f"  crossbar {k}  {w.shape[0]}x{w.shape[1]}  G mean {np.mean(w) * 1e6:.3f} uS, "
                   f"min {w.min() * 1e6:.3f} uS, max {w.max() * 1e6:.3f} uS")
