"""``memsim plot RUN.h5 --what ...``: PNG figures of one run."""
from __future__ import annotations

from pathlib import Path

import click

from memsim.cli.errors import clean_errors


@click.command()
@click.argument("run_file", type=click.Path())
@click.option("--what", type=click.Choice(["learning-curve", "conductances", "pulses", "trajectory"]),
              default="learning-curve", show_default=True, help="The figure to draw.")
@click.option("-o", "--out", type=click.Path(dir_okay=False),
              help="PNG file to write. Default: <run>_<what>.png next to the run file.")
@click.option("--sample", type=click.IntRange(min=0), help="trajectory: the traced sample (default: the first).")
@click.option("--dpi", type=click.IntRange(min=10, max=1200), default=100, show_default=True,
              help="Pixels per inch (a learning curve is 6.4 x 4.8 in).")
@clean_errors
def plot(run_file, what, out, sample, dpi):
    """Draw a figure of a run file: the learning curve, the final conductances, the programming
    pulses, or the node-voltage trajectories of a traced sample (train with --trace K).

    Needs matplotlib: pip install 'memsim[plot]'.
    """
    from memsim.analysis import plot_run, require_matplotlib
    from memsim.h5io import open_run

    require_matplotlib()
    run = open_run(run_file)
    if out is None:
        p = Path(run_file)
        out = str(p.with_name(f"{p.stem}_{what}.png"))
    path = plot_run(run, what, out, sample=sample, dpi=dpi)
    click.echo(f"memsim: wrote {path}")
