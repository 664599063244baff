"""``memsim train`` and ``memsim config``."""
from __future__ import annotations

import datetime as _dt
import sys
from pathlib import Path

import click

from memsim.cli.errors import clean_errors, fail
from memsim.config import load_config_file, make_config

# CLI option name -> config field
FLAG_FIELDS = {
    "dataset": "dataset", "data_dir": "data_dir", "hidden": "hidden", "epochs": "epochs",
    "batch_size": "batch_size", "lr": "lr", "lr_decay": "lr_decay", "beta": "beta", "seed": "seed",
    "mode": "eqprop_mode", "input_gain": "input_gain", "bias_voltage": "bias_voltage", "v_lo": "v_lo",
    "v_hi": "v_hi", "target": "target_amplitude", "loss": "loss", "logit_scale": "logit_scale", "diode": "diode", "amplifier": "amplifier",
    "device": "memristor", "programming": "programming", "engine": "engine", "tol": "tol",
    "snapshot_every": "snapshot_every", "checkpoint_every": "checkpoint_every", "train_limit": "train_limit", "test_limit": "test_limit",
    "trace": "trace", "capacitance": "capacitance", "dg_step": "dG_step", "n_max": "n_max",
    "carry_residue": "carry_residue", "drift_time": "drift_time", "gradient_sign": "gradient_sign", "init_scale": "init_scale", "temperature": "temperature",
}


def config_options(fn):
    opts = [
        click.option("--config", "config_file", type=click.Path(dir_okay=False), help="TOML file of config fields."),
        click.option("--preset", help="Named preset of tuned fields (e.g. kendall2020); flags override it."),
        click.option("--dataset", help="digits (bundled), mnist or fashion-mnist."),
        click.option("--data-dir", help="Folder with the IDX files (or set MEMSIM_DATA)."),
        click.option("--hidden", help="Hidden nodes per layer, e.g. 100 or 100,50."),
        click.option("--epochs", type=int),
        click.option("--batch-size", type=int),
        click.option("--lr", help="Learning rate(s), one or one per crossbar: dG = -lr*u^2*dLoss/dG, "
                                  "u = the card's g_max/20 (1 uS for the ideal card)."),
        click.option("--lr-decay", type=float, help="Learning-rate factor per epoch."),
        click.option("--beta", type=float, help="Nudge strength (S); default 0.1*u (0.1 uS for the ideal card)."),
        click.option("--mode", type=click.Choice(["centred", "positive", "negative"]), help="EqProp estimator."),
        click.option("--seed", type=int),
        click.option("--input-gain", type=float, help="Input gain g_in (V)."),
        click.option("--bias-voltage", type=float, help="Bias rails +-V_b (V)."),
        click.option("--v-lo", type=float, help="Lower diode rail (V)."),
        click.option("--v-hi", type=float, help="Upper diode rail (V)."),
        click.option("--target", type=float, help="Differential output target amplitude (V), loss mse."),
        click.option("--loss", type=click.Choice(["mse", "xent"]),
                     help="Output cost: squared error to the target, or softmax cross-entropy (nudge targets "
                          "set from the free phase's outputs)."),
        click.option("--logit-scale", type=float, help="xent: the softmax acts on the outputs / this voltage (V)."),
        click.option("--diode", help="Diode card (name or .toml path)."),
        click.option("--amplifier", help="Amplifier card (between hidden layers)."),
        click.option("--device", help="Memristor card (name or .toml path)."),
        click.option("--programming", type=click.Choice(["ideal", "deterministic", "stochastic"]),
                     help="How updates reach the devices: exact, pulse trains, or stochastic pulse coincidences."),
        click.option("--dg-step", type=float, help="Conductance step (S) one pulse is assumed to make; default the card's."),
        click.option("--n-max", type=int, help="Pulses per device and update, at most (100)."),
        click.option("--carry-residue/--drop-residue", default=None,
                     help="Keep the part of an update below one pulse for the next update (default) or drop it."),
        click.option("--drift-time", type=float, help="Retention time between epochs (s) for the card's drift model."),
        click.option("--engine", type=click.Choice(["dc", "transient"]),
                     help="dc: jump to settled states (default); transient: settle each phase in time."),
        click.option("--capacitance", type=float, help="Node capacitance to ground (F), transient engine and traces."),
        click.option("--trace", type=int, help="Save the phase transients of this many test samples each epoch."),
        click.option("--tol", type=float, help="Solver tolerance (V)."),
        click.option("--init-scale", type=float, help="Initial conductances span this fraction of [G_min, G_max]."),
        click.option("--temperature", type=float, help="Temperature (K)."),
        click.option("--snapshot-every", type=int, help="Save conductances every N epochs."),
        click.option("--checkpoint-every", type=int,
                     help="Also checkpoint every N batches (resume continues mid-epoch); default: each epoch."),
        click.option("--train-limit", type=int, help="Use only the first N training samples."),
        click.option("--test-limit", type=int, help="Use only the first N test samples."),
        click.option("--gradient-sign", type=float, hidden=True),
    ]
    for o in reversed(opts):
        fn = o(fn)
    return fn


def resolve_config(config_file, flags):
    from memsim.presets import preset

    flags = dict(flags)
    name = flags.pop("preset", None)
    values = preset(name) if name else {}
    if config_file:
        values.update(load_config_file(config_file))
    for flag, field in FLAG_FIELDS.items():
        if flags.get(flag) is not None:
            values[field] = flags[flag]
    return make_config(values)


class _Progress:
    """Per-epoch progress bar on stderr and a line per finished epoch."""

    def __init__(self, quiet: bool, epochs: int):
        self.quiet = quiet
        self.epochs = epochs
        self.bar = None

    def epoch_start(self, e, n):
        if self.quiet:
            return
        self.bar = click.progressbar(length=n, label=f"epoch {e}/{self.epochs}", file=sys.stderr,
                                     show_eta=True, show_percent=True, width=30)
        self.bar.__enter__()
        self._done = 0

    def batch_done(self, i, n):
        if self.bar is not None and (i - self._done >= max(1, n // 100) or i == n):
            self.bar.update(i - self._done)
            self._done = i

    def epoch_end(self, e, row):
        if self.bar is not None:
            self.bar.__exit__(None, None, None)
            self.bar = None
        if not self.quiet:
            click.echo(f"epoch {e:3d}  train loss {row['train_loss']:.4f}  train acc {100 * row['train_accuracy']:5.2f}%"
                       f"  test acc {100 * row['test_accuracy']:5.2f}%  clipped {100 * row['clipped_fraction']:4.1f}%"
                       f"  {row['wall_time']:.1f} s", err=True)


@click.command()
@config_options
@click.option("-o", "--out", type=click.Path(dir_okay=False), help="Run file (HDF5). Default: runs/<dataset>-<time>.h5")
@click.option("--overwrite", is_flag=True, help="Replace an existing run file.")
@click.option("--resume", "resume_path", type=click.Path(dir_okay=False), help="Continue the run in this file.")
@click.option("-q", "--quiet", is_flag=True, help="No progress bar.")
@clean_errors
def train(config_file, out, overwrite, resume_path, quiet, **flags):
    """Train an analog network with EqProp (default: the bundled digits, 128-100-20, about 10 s)."""
    from memsim.train import StopRequested, run_training

    if resume_path:
        given = [k for k, v in flags.items() if v is not None]
        if given or config_file:
            fail(f"--resume continues a run with its stored config; drop --{given[0].replace('_', '-') if given else 'config'}")
        from memsim.h5io import open_run

        run = open_run(resume_path)
        cfg = make_config(run.config)
        out = resume_path
    else:
        cfg = resolve_config(config_file, flags)
        if out is None:
            stamp = _dt.datetime.now().strftime("%Y%m%d-%H%M%S")
            Path("runs").mkdir(exist_ok=True)
            out = f"runs/{cfg.dataset}-{stamp}.h5"
    try:
        trainer = run_training(cfg, out, overwrite=overwrite, resume=bool(resume_path),
                               reporter=_Progress(quiet, cfg.epochs))
    except StopRequested as sig:
        click.echo(f"memsim: interrupted by {sig}; {out} holds every finished epoch (resume with "
                   f"memsim train --resume {out})", err=True)
        raise SystemExit(130)
    from memsim.h5io import open_run

    run = open_run(out)
    m = run.metrics
    sizes = "-".join(str(s) for s in trainer.spec.sizes)
    if len(m["epoch"]):
        click.echo(f"memsim: trained {cfg.dataset} {sizes} for {int(m['epoch'][-1])} epochs in {m['wall_time'].sum():.1f} s: "
                   f"test accuracy {100 * m['test_accuracy'][-1]:.2f}% (train {100 * m['train_accuracy'][-1]:.2f}%), "
                   f"hidden nodes clipped {100 * m['clipped_fraction'][-1]:.0f}%, run file {out}")
    else:
        click.echo(f"memsim: 0 epochs trained; run file {out}")


@click.command("config")
@config_options
@click.option("--show", is_flag=True, default=True, help="Print the resolved config as TOML.")
@clean_errors
def config_cmd(config_file, show, **flags):
    """Validate a config (file and flags) and print it resolved."""
    cfg = resolve_config(config_file, flags)
    for k, v in cfg.to_dict().items():
        if v is None:
            click.echo(f"# {k} = (unset)")
        elif isinstance(v, str):
            click.echo(f'{k} = "{v}"')
        elif isinstance(v, list):
            click.echo(f"{k} = [{', '.join(repr(x) for x in v)}]")
        else:
            click.echo(f"{k} = {v!r}")
