"""Entry point: ``memsim <command>``."""
from __future__ import annotations

import click

import memsim


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(memsim.__version__, prog_name="memsim")
def main():
    """memsim: emulate analog neural networks (memristor crossbars, diodes, amplifiers) and train
    them end to end with Equilibrium Propagation."""


def _register():
    from memsim.cli.info import info
    from memsim.cli.spice import export_spice, settle
    from memsim.cli.train import config_cmd, train
    from memsim.cli.sweep import sweep
    from memsim.cli.plot import plot
    from memsim.cli.report import report

    main.add_command(train)
    main.add_command(config_cmd)
    main.add_command(info)
    main.add_command(export_spice)
    main.add_command(settle)
    main.add_command(sweep)
    main.add_command(plot)
    main.add_command(report)
    from memsim.cli.baseline import baseline; main.add_command(baseline)  # noqa: E702


_register()
