"""``memsim info RUN.h5``: what a run holds."""
from __future__ import annotations

import click
import numpy as np

from memsim.cli.errors import clean_errors


@click.command()
@click.argument("run_file", type=click.Path())
@clean_errors
def info(run_file):
    """Print a run's config, status, per-epoch metrics and network."""
    from memsim.h5io import open_run

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
