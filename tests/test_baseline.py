"""The numpy backprop baselines: gradients, constraints, accuracy on digits, run files, CLI."""
from __future__ import annotations

import numpy as np
import pytest
from click.testing import CliRunner

from memsim.baseline import (BaselineConfig, BaselineError, BaselineTrainer, forward, init_params, loss_and_grads,
                             model_inputs, project, run_baseline)
from memsim.datasets import load_digits


@pytest.fixture(scope="module")
def digits():
    return load_digits()


def _numerical_grad(model, params, x, y, key, idx, eps=1e-6):
    p = params[key]
    old = p[idx]
    p[idx] = old + eps
    lp = loss_and_grads(model, params, x, y)[0]
    p[idx] = old - eps
    lm = loss_and_grads(model, params, x, y)[0]
    p[idx] = old
    return (lp - lm) / (2 * eps)


@pytest.mark.parametrize("model", ["logreg", "mlp", "mlp-positive"])
def test_backprop_matches_finite_differences(model):
    rng = np.random.default_rng(3)
    F, C, H, B = 7, 4, 6, 5
    params = init_params(model, F, C, H, rng)
    # non-zero, non-symmetric parameters; keep hidden pre-activations away from the hard-sigmoid kinks
    for k, v in params.items():
        v[...] = rng.normal(0.0, 0.5, size=v.shape)
    project(model, params)
    x = model_inputs(model, rng.uniform(0, 1, size=(B, F)))
    y = rng.integers(0, C, size=B)
    if model != "logreg":
        z = x @ params["W1"] + params["b1"]
        assert np.min(np.abs(np.abs(z) - 2.0)) > 1e-3  # no sample sits on a kink
        assert ((np.abs(z) < 2.0).mean()) > 0.3  # and the active region is exercised
    _, grads, logits = loss_and_grads(model, params, x, y)
    assert logits.shape == (B, C)
    for key, g in grads.items():
        assert g.shape == params[key].shape
        num = np.zeros_like(g)
        for idx in np.ndindex(*g.shape):
            num[idx] = _numerical_grad(model, params, x, y, key, idx)
        np.testing.assert_allclose(g, num, rtol=1e-6, atol=1e-9, err_msg=f"{model} {key}")


def test_loss_is_cross_entropy_of_softmax():
    rng = np.random.default_rng(0)
    params = init_params("logreg", 3, 4, 1, rng)
    params["W1"][...] = rng.normal(size=(3, 4))
    x = rng.uniform(size=(6, 3))
    y = rng.integers(0, 4, 6)
    loss, _, logits = loss_and_grads("logreg", params, x, y)
    p = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    assert loss == pytest.approx(-np.log(p[np.arange(6), y]).mean(), rel=1e-12)


def test_positive_model_shape_and_constraint(digits):
    cfg = BaselineConfig(model="mlp-positive", dataset="digits", epochs=1, batch_size=16, lr=0.05)
    tr = BaselineTrainer(cfg, digits)
    assert tr.params["W1"].shape == (128, 100)  # inputs (x, -x)
    assert tr.params["W2"].shape == (100, 20)  # differential outputs
    tr.epoch()
    assert tr.params["W1"].min() >= 0.0 and tr.params["W2"].min() >= 0.0
    # the constraint is active: Adam pushed some weights to the bound
    assert (tr.params["W1"] == 0.0).any()
    logits, _ = forward("mlp-positive", tr.params, model_inputs("mlp-positive", digits.x_test[:3]))
    assert logits.shape == (3, 10)


@pytest.mark.parametrize("model,band", [("logreg", 0.93), ("mlp", 0.95), ("mlp-positive", 0.94)])
def test_accuracy_band_on_digits(digits, model, band):
    cfg = BaselineConfig(model=model, dataset="digits", epochs=20, batch_size=32, lr=0.01, seed=0)
    tr = BaselineTrainer(cfg, digits)
    for _ in range(cfg.epochs):
        r = tr.epoch()
    assert r.test_accuracy > band, f"{model}: {r.test_accuracy:.4f}"


def test_sgd_learns(digits):
    cfg = BaselineConfig(model="mlp", dataset="digits", epochs=15, batch_size=16, optimizer="sgd", lr=0.1,
                         momentum=0.9)
    tr = BaselineTrainer(cfg, digits)
    for _ in range(cfg.epochs):
        r = tr.epoch()
    assert r.test_accuracy > 0.93


def test_seeded_runs_are_reproducible(digits):
    cfg = BaselineConfig(model="mlp", dataset="digits", epochs=2, lr=0.01, seed=5)
    a, b = BaselineTrainer(cfg, digits), BaselineTrainer(cfg, digits)
    a.epoch()
    b.epoch()
    np.testing.assert_array_equal(a.params["W1"], b.params["W1"])


@pytest.mark.parametrize("bad", [{"model": "svm"}, {"optimizer": "rmsprop"}, {"hidden": 0}, {"lr": -1.0},
                                 {"batch_size": 0}, {"momentum": 1.0}])
def test_bad_options_raise(bad):
    with pytest.raises(BaselineError):
        BaselineConfig(**bad).validate()


def test_run_file_has_the_metrics_layout(tmp_path):
    from memsim.h5io import REQUIRED_METRICS, open_run

    out = tmp_path / "b.h5"
    run_baseline(BaselineConfig(model="logreg", dataset="digits", epochs=3, lr=0.01), str(out))
    run = open_run(out)
    assert run.status == "complete"
    for name in REQUIRED_METRICS:
        assert name in run.metrics and len(run.metrics[name]) == 3
    np.testing.assert_array_equal(run.metrics["epoch"], [1, 2, 3])
    assert (run.metrics["pulses"] == 0).all()
    assert (run.metrics["wall_time"] > 0).all()
    assert run.config["model"] == "logreg"
    assert 0.8 < run.metrics["test_accuracy"][-1] <= 1.0


def test_cli_baseline(tmp_path):
    from memsim.cli.main import main
    from memsim.h5io import open_run

    out = tmp_path / "m.h5"
    r = CliRunner().invoke(main, ["baseline", "--model", "mlp", "--epochs", "3", "--lr", "0.01", "-q",
                                  "-o", str(out)])
    assert r.exit_code == 0, r.output
    assert "test accuracy" in r.output and "64-100-10" in r.output
    assert len(open_run(out).metrics["epoch"]) == 3
    # a second run to the same file needs --overwrite: one-line error, non-zero exit
    r2 = CliRunner().invoke(main, ["baseline", "--epochs", "1", "-o", str(out)])
    assert r2.exit_code != 0
    assert "memsim: error:" in r2.output and "--overwrite" in r2.output
    assert "Traceback" not in r2.output
    r3 = CliRunner().invoke(main, ["baseline", "--epochs", "1", "--overwrite", "-q", "-o", str(out)])
    assert r3.exit_code == 0, r3.output


@pytest.mark.parametrize("args,needle", [(["--hidden", "0"], "hidden"), (["--lr", "-1"], "lr"),
                                         (["--batch-size", "0"], "batch_size")])
def test_cli_bad_values_are_one_line_errors(tmp_path, args, needle):
    from memsim.cli.main import main

    r = CliRunner().invoke(main, ["baseline", *args, "-o", str(tmp_path / "x.h5")])
    assert r.exit_code == 2
    assert "memsim: error:" in r.output and needle in r.output
    assert "Traceback" not in r.output
    assert not (tmp_path / "x.h5").exists()
