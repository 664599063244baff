"""The command line: a run end to end, and one-line errors with a non-zero exit for bad input."""
import json
import subprocess
import sys

import pytest
from click.testing import CliRunner

from memsim.cli.main import main

SMALL = ["--epochs", "1", "--train-limit", "200", "--test-limit", "50", "--hidden", "10", "-q"]


@pytest.fixture(scope="module")
def run_file(tmp_path_factory):
    out = tmp_path_factory.mktemp("cli") / "run.h5"
    r = CliRunner().invoke(main, ["train", *SMALL, "-o", str(out)])
    assert r.exit_code == 0, r.output
    assert "test accuracy" in r.output
    return out


def test_info_prints_the_run(run_file):
    r = CliRunner().invoke(main, ["info", str(run_file)])
    assert r.exit_code == 0
    assert "status    complete" in r.output and "128-10-20" in r.output


def test_settle_reports_voltages_by_node_name_and_timing(run_file):
    r = CliRunner().invoke(main, ["settle", str(run_file), "--sample", "3", "--phase", "nudge_plus", "--samples", "4"])
    assert r.exit_code == 0, r.output
    d = json.loads(r.output)
    v = d["node_voltages"]
    assert {"inp0", "inn63", "h1_0", "h1_9", "outp0", "outn9"} <= set(v)
    assert v["inn5"] == pytest.approx(-v["inp5"])
    assert d["timing"]["samples"] == 4 and d["timing"]["seconds_per_equilibrium"] > 0


def test_config_show_prints_resolved_values():
    r = CliRunner().invoke(main, ["config", "--hidden", "30,20", "--beta", "2e-7"])
    assert r.exit_code == 0
    assert "hidden = [30, 20]" in r.output and "beta = 2e-07" in r.output


BAD = [
    (["train", "--dataset", "cifar"], "'dataset' = 'cifar'; allowed: digits"),
    (["train", "--dataset", "mnist", "--data-dir", "/nonexistent"], "train-images-idx3-ubyte"),
    (["train", "--hidden", "-5"], "hidden"),
    (["train", "--hidden", "0"], "hidden"),
    (["train", "--epochs", "-1"], "epochs"),
    (["train", "--beta", "nan"], "beta"),
    (["train", "--v-lo", "1", "--v-hi", "0"], "v_lo"),
    (["train", "--device", "unobtainium"], "unknown memristor card"),
    (["info", "/nonexistent.h5"], "no such file"),
]


@pytest.mark.parametrize("args,message", BAD)
def test_bad_input_is_one_line_and_non_zero(tmp_path, args, message):
    out = tmp_path / "x.h5"
    r = CliRunner().invoke(main, [*args, "-o", str(out)] if args[0] == "train" else args)
    assert r.exit_code != 0
    assert message in r.output
    assert "Traceback" not in r.output
    assert len(r.output.strip().splitlines()) == 1
    assert not out.exists()


def test_unreadable_run_file(tmp_path):
    p = tmp_path / "junk.h5"
    p.write_bytes(b"junk")
    for cmd in (["info"], ["settle"], ["export-spice"]):
        r = CliRunner().invoke(main, [*cmd, str(p)])
        assert r.exit_code != 0 and "junk.h5" in r.output and "Traceback" not in r.output


def test_output_file_is_protected(run_file):
    r = CliRunner().invoke(main, ["train", *SMALL, "-o", str(run_file)])
    assert r.exit_code != 0 and "--overwrite" in r.output


def test_python_dash_m_works():
    r = subprocess.run([sys.executable, "-m", "memsim", "--help"], capture_output=True, text=True)
    assert r.returncode == 0 and "train" in r.stdout
