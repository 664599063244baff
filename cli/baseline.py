"""``memsim baseline``: same-size software networks trained by backprop (numpy), as yardsticks."""
from __future__ import annotations

import datetime as _dt
import sys
from pathlib import Path

import click

from memsim.cli.errors import clean_errors, fail


@click.command()
@click.option("--dataset", default="digits", show_default=True,
              type=click.Choice(["digits", "mnist", "fashion-mnist"]), help="Dataset.")
@click.option("--data-dir", help="Folder with the IDX files (or set MEMSIM_DATA).")
@click.option("--model", default="mlp", show_default=True, type=click.Choice(["logreg", "mlp", "mlp-positive"]),
              help="logreg: F-C softmax; mlp: F-H-C, hard sigmoid; mlp-positive: (x,-x) inputs, weights >= 0, "
                   "differential outputs (2F-H-2C), like the analog network.")
@click.option("--hidden", default=100, show_default=True, type=int, help="Hidden units (mlp models).")
@click.option("--epochs", default=10, show_default=True, type=int)
@click.option("--batch-size", default=32, show_default=True, type=int)
@click.option("--optimizer", default="adam", show_default=True, type=click.Choice(["adam", "sgd"]))
@click.option("--lr", type=float, help="Learning rate (default: 1e-3 for Adam, 0.1 for SGD).")
@click.option("--lr-decay", default=1.0, show_default=True, type=float, help="Learning-rate factor per epoch.")
@click.option("--momentum", default=0.0, show_default=True, type=float, help="SGD momentum.")
@click.option("--seed", default=0, show_default=True, type=int)
@click.option("--train-limit", default=0, type=int, help="Use only the first N training samples.")
@click.option("--test-limit", default=0, type=int, help="Use only the first N test samples.")
@click.option("--float32", "use_float32", is_flag=True, help="Compute in float32 (faster) instead of float64.")
@click.option("-o", "--out", type=click.Path(dir_okay=False),
              help="Run file (HDF5). Default: runs/baseline-<model>-<dataset>-<time>.h5")
@click.option("--overwrite", is_flag=True, help="Replace an existing run file.")
@click.option("-q", "--quiet", is_flag=True, help="No per-epoch lines.")
@clean_errors
def baseline(dataset, data_dir, model, hidden, epochs, batch_size, optimizer, lr, lr_decay, momentum, seed,
             train_limit, test_limit, use_float32, out, overwrite, quiet):
    """Train a software baseline (logistic regression or an MLP) by backprop in numpy and write a run
    file with the same /metrics as ``memsim train``."""
    from memsim.baseline import BaselineConfig, default_lr, network_sizes, run_baseline

    if train_limit < 0 or test_limit < 0:
        fail("--train-limit and --test-limit must be >= 0")
    cfg = BaselineConfig(model=model, dataset=dataset, data_dir=data_dir, train_limit=train_limit,
                         test_limit=test_limit, hidden=hidden, epochs=epochs, batch_size=batch_size,
                         optimizer=optimizer, lr=default_lr(optimizer) if lr is None else lr, lr_decay=lr_decay,
                         momentum=momentum, seed=seed, dtype="float32" if use_float32 else "float64")
    cfg.validate()
    if out is None:
        stamp = _dt.datetime.now().strftime("%Y%m%d-%H%M%S")
        Path("runs").mkdir(exist_ok=True)
        out = f"runs/baseline-{model}-{dataset}-{stamp}.h5"

    def on_epoch(r):
        if not quiet:
            click.echo(f"epoch {r.epoch:3d}  train loss {r.train_loss:.4f}  train acc {100 * r.train_accuracy:5.2f}%"
                       f"  test acc {100 * r.test_accuracy:5.2f}%  {r.wall_time:.1f} s", err=True)

    try:
        trainer = run_baseline(cfg, out, overwrite=overwrite, on_epoch=on_epoch)
    except KeyboardInterrupt:
        click.echo(f"memsim: interrupted; {out} holds every finished epoch", err=True)
        sys.exit(130)
    from memsim.h5io import open_run

    m = open_run(out).metrics
    sizes = network_sizes(cfg, trainer.data.n_features, trainer.data.n_classes)
    if len(m["epoch"]):
        click.echo(f"memsim: baseline {model} {sizes} on {dataset}, {optimizer}, {int(m['epoch'][-1])} epochs in "
                   f"{m['wall_time'].sum():.1f} s: test accuracy {100 * m['test_accuracy'][-1]:.2f}% "
                   f"(train {100 * m['train_accuracy'][-1]:.2f}%), run file {out}")
    else:
        click.echo(f"memsim: 0 epochs trained; run file {out}")
