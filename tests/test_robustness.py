"""Hostile inputs: random configs and random bytes as run files give success or a clean error,
never a traceback; non-finite phases stop the run naming layer, sample and phase."""
import math
import os
import subprocess

import numpy as np
import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from memsim.cli.main import main
from memsim.config import FIELDS, ConfigError, make_config
from memsim.h5io import open_run
from memsim.solve import ConvergenceError

values = st.one_of(st.none(), st.booleans(), st.integers(-10**6, 10**6), st.floats(allow_nan=True),
                   st.text(max_size=8), st.lists(st.integers(-5, 300), max_size=3))


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(st.sampled_from(sorted(FIELDS) + ["bogus"]), values, max_size=6))
def test_random_configs_validate_or_fail_cleanly(d):
    try:
        cfg = make_config(d)
    except ConfigError as exc:
        assert str(exc) and "\n" not in str(exc)
        return
    assert cfg.v_lo < cfg.v_hi and cfg.beta >= 0 and all(h > 0 for h in cfg.hidden)
    assert math.isfinite(cfg.input_gain) and cfg.batch_size >= 1


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.binary(max_size=600), st.sampled_from(["info", "settle", "export-spice", "train --resume"]))
def test_random_bytes_as_run_file_never_give_a_traceback(tmp_path, data, cmd):
    p = tmp_path / "fuzz.h5"
    p.write_bytes(data)
    args = cmd.split() + [str(p)]
    r = CliRunner().invoke(main, args)
    assert r.exit_code == 2, r.output
    assert r.output.startswith("memsim: error:") and "Traceback" not in r.output


@settings(max_examples=40, deadline=None)
@given(st.lists(st.sampled_from(["--epochs", "--hidden", "--beta", "--lr", "--batch-size", "--tol", "--v-lo",
                                 "--input-gain", "--dataset", "--seed", "--lr-decay"]), min_size=1, max_size=3),
       st.lists(st.sampled_from(["-1", "0", "nan", "inf", "1e309", "abc", "3,x", "", "1e-30", "digits"]),
                min_size=3, max_size=3))
def test_random_cli_flags_give_a_clean_error_or_a_valid_config(flags, vals):
    args = ["config"]
    for f, v in zip(flags, vals):
        args += [f, v]
    r = CliRunner().invoke(main, args)
    assert "Traceback" not in r.output
    assert r.exit_code in (0, 2), r.output


@pytest.mark.skipif(os.geteuid() == 0, reason="root ignores directory permissions")
def test_read_only_output_folder(tmp_path):
    d = tmp_path / "ro"
    d.mkdir()
    d.chmod(0o500)
    r = CliRunner().invoke(main, ["train", "--epochs", "1", "-q", "-o", str(d / "run.h5")])
    assert r.exit_code == 2 and "cannot write" in r.output
    assert not list(d.iterdir())


def test_unwritable_output_gives_a_clean_error(tmp_path):
    r = CliRunner().invoke(main, ["train", "--epochs", "1", "-q", "-o", str(tmp_path / "no" / "dir" / "run.h5")])
    assert r.exit_code == 2 and "does not exist" in r.output


def test_non_finite_phase_stops_naming_layer_sample_and_phase(tmp_path, monkeypatch):
    from memsim import train as train_mod

    cfg = make_config({"epochs": 3, "train_limit": 80, "test_limit": 20, "hidden": [8]})
    calls = {"n": 0}
    orig = train_mod.Trainer.apply_gradients

    def poisoned(self, grads):
        orig(self, grads)
        calls["n"] += 1
        if self.epochs_done == 1 and calls["n"] > 25:  # in epoch 2
            self.net.weights[1][3, 5] = np.nan

    monkeypatch.setattr(train_mod.Trainer, "apply_gradients", poisoned)
    out = tmp_path / "run.h5"
    with pytest.raises(ConvergenceError, match=r"phase free: .*non-finite voltage in layer \d, sample (2[4-9]|[3-7]\d)\b"):
        train_mod.run_training(cfg, str(out))
    run = open_run(out)
    assert run.status == "failed" and "non-finite" in run.attrs["error"]
    assert len(run.metrics["epoch"]) == 1  # the last good epoch is kept
    assert np.isfinite(run.network().weights[1]).all()


@pytest.fixture
def small_fs(tmp_path):
    """A mounted tmpfs of a given size and mode (needs the right to mount; skipped elsewhere)."""
    mounted = []

    def make(size, mode="rw"):
        d = tmp_path / f"fs{len(mounted)}"
        d.mkdir()
        r = subprocess.run(["mount", "-t", "tmpfs", "-o", f"{mode},size={size}", "tmpfs", str(d)],
                           capture_output=True, text=True)
        if r.returncode != 0:
            pytest.skip(f"cannot mount a tmpfs here ({r.stderr.strip() or 'not permitted'})")
        mounted.append(d)
        return d

    yield make
    for d in mounted:
        subprocess.run(["umount", str(d)], capture_output=True)


def test_disk_full_keeps_every_finished_epoch(small_fs):
    d = small_fs("1200k")
    out = d / "run.h5"
    r = CliRunner().invoke(main, ["train", "--epochs", "8", "--snapshot-every", "1", "-q", "-o", str(out)])
    assert r.exit_code == 2 and "no space left on device" in r.output, r.output
    run = open_run(out)  # still a valid file
    assert run.status != "complete"
    n = len(run.metrics["epoch"])
    assert 1 <= n < 8 and int(run.attrs["epochs_done"]) == n
    assert not (d / "run.h5.tmp").exists()


def test_read_only_filesystem(small_fs):
    d = small_fs("64k", "ro")
    r = CliRunner().invoke(main, ["train", "--epochs", "1", "-q", "-o", str(d / "run.h5")])
    assert r.exit_code == 2 and "Read-only file system" in r.output
    assert not list(d.iterdir())
