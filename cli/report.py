"""``memsim report SWEEP_DIR -o DIR``: figures and a markdown summary of a sweep."""
from __future__ import annotations

import click

from memsim.cli.errors import clean_errors


@click.command()
@click.argument("sweep_dir", type=click.Path())
@click.option("-o", "--out", type=click.Path(file_okay=False),
              help="Folder for report.md and the figures. Default: SWEEP_DIR/report.")
@click.option("--metric", default="test_accuracy", show_default=True,
              help="Index column to report (test_accuracy, train_accuracy, test_loss, train_loss, "
                   "clipped_fraction, pulses, programming_energy, wall_time).")
@click.option("--dpi", type=click.IntRange(min=10, max=1200), default=100, show_default=True,
              help="Pixels per inch (figures are 6.4 x 4.8 in).")
@clean_errors
def report(sweep_dir, out, metric, dpi):
    """Report a sweep: the metric against each axis with its seed spread, heatmaps for pairs of
    axes, learning curves, and report.md with a table and the figures.

    Needs matplotlib: pip install 'memsim[plot]'.
    """
    from pathlib import Path

    from memsim.analysis import require_matplotlib, write_report
    from memsim.sweep import open_sweep

    require_matplotlib()
    sweep = open_sweep(sweep_dir)
    out = out or str(Path(sweep.path) / "report")
    rep = write_report(sweep, out, metric=metric, dpi=dpi)
    figs = [p.name for p in rep["figures"]]
    click.echo(f"memsim: wrote {rep['markdown']} ({len(figs)} figures: {', '.join(figs) or 'none'})")
