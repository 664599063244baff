"""``memsim sweep``: a grid of non-ideality settings times seeds, each point a training run."""
from __future__ import annotations

import sys
import time

import click

from memsim.cli.errors import clean_errors, fail
from memsim.cli.train import FLAG_FIELDS, config_options


def _train_flags(fn):
    """The config flags of ``memsim train`` (``--epochs``, ``--hidden``, ...) but ``--config``."""

    def dummy():
        pass

    config_options(dummy)
    params = [p for p in getattr(dummy, "__click_params__", []) if p.name != "config_file"]
    fn.__click_params__ = getattr(fn, "__click_params__", []) + params
    return fn


def _fmt_time(s: float) -> str:
    s = int(round(s))
    h, rem = divmod(s, 3600)
    m, sec = divmod(rem, 60)
    return f"{h}:{m:02d}:{sec:02d}" if h else f"{m}:{sec:02d}"


class SweepProgress:
    """One progress bar for the sweep on stderr: runs done/total, failures, ETA.

    On a terminal the bar is redrawn in place; otherwise one line per finished run.
    """

    def __init__(self, quiet: bool = False, stream=None, width: int = 30):
        self.quiet = quiet
        self.stream = stream or sys.stderr
        self.width = width
        self.tty = bool(getattr(self.stream, "isatty", lambda: False)())

    def start(self, total, done, todo, where):
        self.total, self.done0, self.done, self.failed = total, done, done, 0
        self.t0 = time.monotonic()
        if self.quiet:
            return
        skipped = f", {done} finished before" if done else ""
        click.echo(f"memsim: sweep of {total} runs: {todo} to run on {where}{skipped}", err=True)
        self._draw()

    def _eta(self) -> str:
        ran = self.done - self.done0
        left = self.total - self.done
        if ran <= 0:
            return "ETA --:--"
        if left <= 0:
            return f"in {_fmt_time(time.monotonic() - self.t0)}"
        return f"ETA {_fmt_time((time.monotonic() - self.t0) / ran * left)}"

    def _bar(self) -> str:
        n = int(self.width * self.done / max(self.total, 1))
        fail_s = f", {self.failed} failed" if self.failed else ""
        return f"sweep [{'#' * n}{'-' * (self.width - n)}] {self.done}/{self.total} runs{fail_s}  {self._eta()}"

    def _draw(self):
        if self.tty:
            self.stream.write("\r" + self._bar() + "\x1b[K")
            self.stream.flush()

    def result(self, row, res, counts):
        status = row["status"]
        if status in ("complete", "failed"):
            self.done += 1
        if status == "failed":
            self.failed += 1
        if self.quiet and status != "failed":
            return
        axes = ", ".join(f"{k}={_display(v)}" for k, v in row["axes"].items())
        what = f"{row['path']} ({axes}{', ' if axes else ''}seed {row['seed']})"
        if status == "complete":
            line = f"{what}: test accuracy {100 * row['test_accuracy']:.2f}%"
        elif status == "failed":
            line = f"{what}: FAILED: {row['error']}"
        else:
            line = f"{what}: {status} ({row['error'] or 'stopped'})"
        if self.tty:
            if status == "failed" or self.quiet:
                self.stream.write("\r\x1b[K" + line + "\n")
            self._draw()
        else:
            self.stream.write(f"[{self.done}/{self.total}] {line}  {self._eta()}\n")
            self.stream.flush()

    def close(self):
        if self.tty and not self.quiet:
            self.stream.write("\r" + self._bar() + "\x1b[K\n")
            self.stream.flush()


def _display(v):
    from memsim.sweep import display_value

    return display_value(v)


@click.command()
@click.option("--base", "base_file", type=click.Path(dir_okay=False),
              help="TOML file of config fields (top level or [train]); an optional [sweep] table may hold "
                   "axes = {key = \"values\"} and seeds.")
@click.option("--axis", "axes", multiple=True, metavar="KEY=VALUES",
              help="A sweep axis (repeat for a grid). KEY: a config field (lr, beta, hidden, device, ...) or a "
                   "card parameter (device.g_max, diode.series_resistance, ...). VALUES: a comma list, "
                   "start:stop:num or log:start:stop:num; ';' between values of list fields (hidden=20;40,20).")
@click.option("--seeds", default=None, help="Seeds per grid point: a count N (seeds seed..seed+N-1) or a list 0,5,7. "
                                            "Default 1.")
@click.option("-o", "--out", required=True, type=click.Path(file_okay=False), help="Sweep folder (created).")
@click.option("--workers", type=click.IntRange(min=0), default=None,
              help="Local worker processes (default: the CPU count; 0 runs in this process).")
@click.option("--scheduler", metavar="ADDRESS", help="Run on an existing Dask cluster (tcp://host:port).")
@click.option("--connect-timeout", type=click.FloatRange(min=0.1), default=5.0, show_default=True,
              help="Seconds to wait for the Dask scheduler.")
@click.option("--force", is_flag=True, help="Replace a sweep of another base config/axes in --out.")
@click.option("-q", "--quiet", is_flag=True, help="No progress bar (failures are still printed).")
@_train_flags
@clean_errors
def sweep(base_file, axes, seeds, out, workers, scheduler, connect_timeout, force, quiet, **flags):
    """Sweep device non-idealities: every point of the grid of --axis values, for each seed, is a
    training run with its own HDF5 file; SWEEP_DIR/index.h5 lists them with their final metrics.

    Re-running the same command skips finished runs, resumes interrupted ones and retries failed
    ones. Example:

    \b
      memsim sweep --axis device.g_max=log:2e-6:2e-5:3 --axis lr=1000,3000 \\
          --seeds 3 --epochs 2 --out sweeps/gmax
    """
    from memsim.config import make_config
    from memsim.presets import preset
    from memsim.sweep import SweepInterrupted, load_sweep_file, plan_sweep, run_sweep

    if scheduler and workers is not None:
        fail("--workers sets local worker processes; a Dask cluster (--scheduler) brings its own workers")
    flags = dict(flags)
    name = flags.pop("preset", None)
    values = preset(name) if name else {}
    file_axes, file_seeds = {}, None
    if base_file:
        file_values, file_axes, file_seeds = load_sweep_file(base_file)
        values.update(file_values)
    for flag, field in FLAG_FIELDS.items():
        if flags.get(flag) is not None:
            values[field] = flags[flag]
    base = make_config(values)
    axis_items = list(file_axes.items())
    from memsim.sweep import parse_axis, resolve_key

    def ident(key):
        t = resolve_key(key)
        return t.field, t.card_kind, t.param

    cli_axes = [parse_axis(a) for a in axes]
    cli_targets = {ident(k) for k, _ in cli_axes}
    axis_items = [(k, v) for k, v in axis_items if ident(k) not in cli_targets] + cli_axes  # flags win
    seed_spec = seeds if seeds is not None else (file_seeds if file_seeds is not None else 1)
    plan = plan_sweep(base, axis_items, seed_spec, out)
    progress = SweepProgress(quiet)
    try:
        res = run_sweep(plan, workers=workers, scheduler=scheduler, force=force, reporter=progress,
                        connect_timeout=connect_timeout)
    except KeyboardInterrupt:
        click.echo(f"memsim: sweep interrupted before any run started; {out} is unchanged or resumable", err=True)
        raise SystemExit(130)
    except SweepInterrupted as exc:
        r = exc.result
        click.echo(f"memsim: sweep interrupted by {exc.signal_name}: {r.complete} of {r.total} runs finished and "
                   f"recorded in {out}/index.h5; re-run the same command to continue", err=True)
        raise SystemExit(130)
    if res.ran == 0 and res.skipped == res.total:
        click.echo(f"memsim: sweep {out}: all {res.total} runs already finished; nothing to do")
    else:
        click.echo(f"memsim: sweep {out}: {res.total} runs: {res.complete} complete ({res.ran} run now, "
                   f"{res.skipped} finished before), {res.failed} failed; index {out}/index.h5")
    best = _best(res)
    if best:
        click.echo(best)
    if res.failed:
        click.echo(f"memsim: {res.failed} of {res.total} runs failed (errors in memsim info {out}); "
                   f"re-run the command to retry them", err=True)
        raise SystemExit(1)


def _best(res) -> str:
    import math

    done = [r for r in res.rows if r["status"] == "complete" and not math.isnan(r["test_accuracy"])]
    if not done:
        return ""
    b = max(done, key=lambda r: r["test_accuracy"])
    axes = ", ".join(f"{k}={_display(v)}" for k, v in b["axes"].items())
    return (f"memsim: best test accuracy {100 * b['test_accuracy']:.2f}% "
            f"({axes + ', ' if axes else ''}seed {b['seed']}): {b['path']}")
