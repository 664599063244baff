"""Sweeps: the grid runs (local processes, Dask), resumes, survives SIGTERM, refuses bad input."""
from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import h5py
import numpy as np
import pytest
from click.testing import CliRunner

import memsim
from memsim.cli.main import main
from memsim.devices.cards import load_card
from memsim.sweep import (
    INDEX_NAME,
    SweepError,
    open_sweep,
    parse_values,
    plan_sweep,
    resolve_key,
    write_index,
)

TINY = ["--epochs", "1", "--train-limit", "200", "--test-limit", "100", "--hidden", "20"]
AXES = ["--axis", "device.g_max=1e-5,2e-5", "--axis", "lr=1000,3000"]


def invoke(*args):
    return CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)


def mtimes(folder: Path) -> dict[str, int]:
    return {str(p.relative_to(folder)): p.stat().st_mtime_ns for p in sorted(folder.rglob("*.h5"))}


@pytest.fixture(scope="module")
def local_sweep(tmp_path_factory):
    out = tmp_path_factory.mktemp("sweeps") / "grid"
    res = invoke("sweep", *AXES, "--seeds", 2, "--workers", 2, "--out", out, *TINY)
    return out, res


# ------------------------------------------------------------------------------------------------
# the grid, locally


def test_local_sweep_runs_every_point_and_seed(local_sweep):
    out, res = local_sweep
    assert res.exit_code == 0, res.output
    assert "8 to run on 2 local worker processes" in res.output
    assert "[8/8]" in res.output  # the sweep's progress: runs done / total
    sw = open_sweep(out)
    assert len(sw) == 8
    assert list(sw.index["status"]) == ["complete"] * 8
    assert sw.axes == ["device.g_max", "lr"]
    assert sw.axis_values == {"device.g_max": [1e-5, 2e-5], "lr": [1000.0, 3000.0]}
    assert sw.seeds == [0, 1]
    assert list(sw.index["seed"]) == [0, 1] * 4
    np.testing.assert_array_equal(sw.index["device.g_max"], [1e-5] * 4 + [2e-5] * 4)
    np.testing.assert_array_equal(sw.index["lr"], [1000, 1000, 3000, 3000] * 2)
    paths = set(sw.index["path"])
    assert len(paths) == 8
    for i in range(8):
        run = sw.run(i)
        assert run.status == "complete"
        assert run.seed == sw.index["seed"][i]
        assert run.config["lr"] == [sw.index["lr"][i]]
        assert run.config["epochs"] == 1 and run.config["hidden"] == [20]
        # device.g_max reached the device: the run's memristor card has that bound
        assert run.network().spec.memristor.g_max == pytest.approx(sw.index["device.g_max"][i])
        assert sw.index["test_accuracy"][i] == run.metrics["test_accuracy"][-1]
        assert sw.index["train_loss"][i] == run.metrics["train_loss"][-1]
        assert sw.index["epochs_done"][i] == 1
    # the index is the one of section 4's style: readable with plain h5py
    with h5py.File(out / INDEX_NAME) as f:
        assert f.attrs["format"] == "memsim-sweep"
        assert json.loads(f.attrs["spec"])["seeds"] == [0, 1]
        assert f["columns/status"].shape == (8,)
    assert not list(out.glob(f"{INDEX_NAME}.tmp*"))


def test_rerun_does_no_work(local_sweep):
    out, _ = local_sweep
    before = mtimes(out)
    res = invoke("sweep", *AXES, "--seeds", 2, "--workers", 2, "--out", out, *TINY)
    assert res.exit_code == 0, res.output
    assert "nothing to do" in res.output
    assert mtimes(out) == before  # neither the runs nor the index were rewritten


def test_info_prints_the_sweep_table(local_sweep):
    out, _ = local_sweep
    res = invoke("info", out)
    assert res.exit_code == 0, res.output
    text = res.output
    assert "8 complete, 0 failed" in text
    assert "device.g_max" in text and "lr" in text
    sw = open_sweep(out)
    for s in sw.summary():
        assert f"{100 * s['mean']:.2f}%" in text
    table = [ln for ln in text.splitlines() if ln.strip().startswith(("1e-05", "2e-05"))]
    assert len(table) == 4
    # a run file still gets the run output
    res = invoke("info", out / sw.index["path"][0])
    assert res.exit_code == 0 and "crossbar 0" in res.output


def test_report_draws_pngs(local_sweep, tmp_path):
    pytest.importorskip("matplotlib", reason="the report needs matplotlib (pip install 'memsim[plot]')")
    out, _ = local_sweep
    res = invoke("report", out, "-o", tmp_path / "rep")
    assert res.exit_code == 0, res.output
    md = (tmp_path / "rep" / "report.md").read_text()
    pngs = sorted((tmp_path / "rep").glob("*.png"))
    names = {p.name for p in pngs}
    assert {"test_accuracy_vs_device.g_max.png", "test_accuracy_vs_lr.png",
            "heatmap_device.g_max__lr.png", "learning_curves.png"} <= names
    for p in pngs:
        assert f"]({p.name})" in md
        assert png_size(p) == (640, 480)
    assert "| device.g_max | lr |" in md


def png_size(path: Path) -> tuple[int, int]:
    import struct

    data = Path(path).read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", f"{path} is not a PNG"
    assert data[12:16] == b"IHDR"
    assert data.endswith(b"IEND\xaeB`\x82"), f"{path} is truncated"
    return struct.unpack(">II", data[16:24])


# ------------------------------------------------------------------------------------------------
# Dask


def test_dask_cluster_gives_the_same_metrics(local_sweep, tmp_path):
    distributed = pytest.importorskip("distributed", reason="dask.distributed is not installed "
                                                            "(pip install 'memsim[dask]')")
    ref, _ = local_sweep
    with distributed.LocalCluster(n_workers=1, threads_per_worker=1, processes=False, protocol="tcp",
                                  host="127.0.0.1", dashboard_address=None) as cluster:
        address = cluster.scheduler_address
        assert address.startswith("tcp://127.0.0.1:")
        res = invoke("sweep", *AXES, "--seeds", 2, "--scheduler", address, "--out", tmp_path / "dask", *TINY)
    assert res.exit_code == 0, res.output
    assert "Dask scheduler" in res.output
    a, b = open_sweep(ref), open_sweep(tmp_path / "dask")
    assert list(b.index["status"]) == ["complete"] * 8
    np.testing.assert_array_equal(a.index["seed"], b.index["seed"])
    for m in ("test_accuracy", "train_accuracy", "train_loss", "test_loss"):
        np.testing.assert_allclose(b.index[m], a.index[m], rtol=1e-12, atol=0, err_msg=m)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_unreachable_scheduler_fails_fast(tmp_path):
    address = f"tcp://127.0.0.1:{_free_port()}"
    t0 = time.monotonic()
    res = invoke("sweep", "--axis", "lr=1000,3000", "--scheduler", address, "--connect-timeout", 2,
                 "--out", tmp_path / "s", *TINY)
    assert time.monotonic() - t0 < 15
    assert res.exit_code == 2
    try:
        import distributed  # noqa: F401

        assert f"cannot reach the Dask scheduler at {address}" in res.output
    except ImportError:
        assert "pip install 'memsim[dask]'" in res.output
    assert not (tmp_path / "s").exists()


# ------------------------------------------------------------------------------------------------
# interruption, failures, resumption


def _index_status(out: Path):
    try:
        return list(open_sweep(out).index["status"])
    except (SweepError, OSError):
        return []


def test_sigterm_midway_then_resume_loses_no_finished_run(tmp_path):
    out = tmp_path / "killed"
    args = ["sweep", "--axis", "lr=1000,1500,2000,2500,3000", "--workers", "1", "--out", str(out),
            "--epochs", "3", "--train-limit", "600", "--test-limit", "100", "--hidden", "20"]
    proc = subprocess.Popen([sys.executable, "-m", "memsim", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 120
        while _index_status(out).count("complete") < 2:
            assert proc.poll() is None, proc.communicate()[0]
            assert time.monotonic() < deadline, "the sweep did not finish 2 runs in time"
            time.sleep(0.05)
        proc.send_signal(signal.SIGTERM)
        output = proc.communicate(timeout=60)[0]
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, output
    assert "interrupted by SIGTERM" in output
    sw = open_sweep(out)
    status = list(sw.index["status"])
    done = [i for i, s in enumerate(status) if s == "complete"]
    assert 2 <= len(done) < 5, status
    for i in done:
        assert sw.run(i).status == "complete"
    for i, s in enumerate(status):
        assert s in ("complete", "interrupted", "pending")
        if s == "interrupted":  # stopped at a batch boundary with its finished epochs kept
            assert sw.run(i).status == "interrupted"
    kept = {sw.index["path"][i]: (out / sw.index["path"][i]).stat().st_mtime_ns for i in done}
    acc = {sw.index["path"][i]: sw.index["test_accuracy"][i] for i in done}

    res = invoke(*args)
    assert res.exit_code == 0, res.output
    assert f"{len(done)} finished before" in res.output
    sw = open_sweep(out)
    assert list(sw.index["status"]) == ["complete"] * 5
    for p, t in kept.items():
        assert (out / p).stat().st_mtime_ns == t  # finished runs were not redone
        i = list(sw.index["path"]).index(p)
        assert sw.index["test_accuracy"][i] == acc[p]
    for i in range(5):
        np.testing.assert_array_equal(sw.run(i).metrics["epoch"], [1, 2, 3])


def test_failing_point_is_recorded_and_others_finish(tmp_path):
    out = tmp_path / "fail"
    args = ["sweep", "--axis", "max_sweeps=1,2000", "--workers", "1", "--out", out, *TINY]
    res = invoke(*args)
    assert res.exit_code == 1, res.output
    assert "FAILED" in res.output and "1 of 2 runs failed" in res.output
    sw = open_sweep(out)
    assert list(sw.index["status"]) == ["failed", "complete"]
    assert "ConvergenceError" in sw.index["error"][0] and "did not converge" in sw.index["error"][0]
    assert np.isnan(sw.index["test_accuracy"][0]) and np.isfinite(sw.index["test_accuracy"][1])
    assert sw.index["error"][1] == ""
    good = out / sw.index["path"][1]
    t = good.stat().st_mtime_ns
    res = invoke(*args)  # the failed point is retried, the finished one kept
    assert res.exit_code == 1
    assert "1 to run" in res.output
    assert good.stat().st_mtime_ns == t
    assert list(open_sweep(out).index["status"]) == ["failed", "complete"]


# ------------------------------------------------------------------------------------------------
# bad input


@pytest.mark.parametrize("axis, words", [
    ("foo=1,2", ["unknown axis key 'foo'", "epochs", "lr", "device.<param>"]),
    ("device.c2c=0,0.01", ["'device.c2c'", "no parameter 'c2c'", "g_max"]),
    ("devise.g_max=1e-5", ["'devise.g_max'", "did you mean device.g_max"]),
    ("seed=1,2", ["--seeds"]),
    ("epochs=a,b", ["axis 'epochs'", "'a' is not a number"]),
    ("epochs=1:2:3", ["axis 'epochs'", "not an integer"]),
    ("lr=log:0:1:3", ["positive"]),
    ("programming=ideal,magic", ["programming", "magic"]),
    ("hidden=0,5", ["hidden"]),
    ("device.g_max=1e-10", ["g_min", "must be below g_max"]),
    ("lr", ["KEY=VALUES"]),
])
def test_bad_axis_is_a_clear_error(tmp_path, axis, words):
    res = invoke("sweep", "--axis", axis, "--out", tmp_path / "s", *TINY)
    assert res.exit_code == 2, res.output
    assert res.output.startswith("memsim: error: ")
    for w in words:
        assert w in res.output
    assert "Traceback" not in res.output
    assert not (tmp_path / "s").exists()


def test_sweep_dir_of_another_config_needs_force(tmp_path):
    out = tmp_path / "s"
    args = ["sweep", "--axis", "lr=1000", "--workers", "0", "--out", out, "--train-limit", 50, "--test-limit", 20,
            "--hidden", 10]
    assert invoke(*args, "--epochs", 1).exit_code == 0
    old = open_sweep(out)
    before = mtimes(out)
    res = invoke(*args, "--epochs", 2)
    assert res.exit_code == 2
    assert "another base config/axes" in res.output and "epochs 1 -> 2" in res.output and "--force" in res.output
    assert mtimes(out) == before
    res = invoke("sweep", "--axis", "lr=1000,2000", "--workers", "0", "--out", out, "--epochs", 1)
    assert res.exit_code == 2 and "axes" in res.output
    res = invoke(*args, "--epochs", 2, "--force")
    assert res.exit_code == 0, res.output
    new = open_sweep(out)
    assert new.attrs["fingerprint"] != old.attrs["fingerprint"]
    assert new.run(0).metrics["epoch"].tolist() == [1, 2]
    # a folder that holds something else is refused too
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "notes.txt").write_text("mine")
    res = invoke(*args, "--epochs", 1, "--out", tmp_path / "other")
    assert res.exit_code == 2 and "holds no memsim sweep" in res.output


# ------------------------------------------------------------------------------------------------
# pieces


def test_axis_values():
    assert parse_values("1e-6,2e-6", "beta") == ([1e-6, 2e-6], "list")
    assert parse_values("0:1:5", "beta") == ([0.0, 0.25, 0.5, 0.75, 1.0], "linear")
    assert parse_values("0.1:0.3:3", "beta")[0] == [0.1, 0.2, 0.3]
    vals, scale = parse_values("log:1e-6:1e-4:3", "beta")
    assert scale == "log" and vals == pytest.approx([1e-6, 1e-5, 1e-4], rel=1e-12)
    assert parse_values("10:30:3", "epochs", int) == ([10, 20, 30], "linear")
    assert parse_values("20,40", "hidden", int, True)[0] == [(20,), (40,)]
    assert parse_values("20;40,20", "hidden", int, True)[0] == [(20,), (40, 20)]
    assert parse_values("ideal,mycard", "memristor", str)[0] == ["ideal", "mycard"]
    for bad in ("", "1,,2", "1:2", "log:1:2:0", "1:x:3", "1,1"):
        with pytest.raises(SweepError):
            parse_values(bad, "beta")


def test_axis_keys():
    assert resolve_key("device").field == "memristor"
    assert resolve_key("mode").field == "eqprop_mode"
    assert resolve_key("lr-decay").field == "lr_decay"
    assert resolve_key("train.epochs").field == "epochs"
    t = resolve_key("device.g_max")
    assert (t.card_kind, t.param, t.field) == ("memristor", "g_max", None)
    t = resolve_key("diode.series_resistance")
    assert (t.card_kind, t.param) == ("diode", "series_resistance")
    for bad in ("foo", "device.", "gadget.g_max", "a/b", "seed"):
        with pytest.raises(SweepError):
            resolve_key(bad)


def test_card_axes_write_derived_cards(tmp_path):
    plan = plan_sweep({"epochs": 1}, ["device.g_max=1e-5,2e-5", "diode.series_resistance=0,10"], 1, tmp_path / "s")
    assert len(plan.runs) == 4
    r = plan.runs[3]
    assert r.axis_values == (2e-5, 10.0)
    assert set(r.cards) == {Path(r.config["memristor"]).relative_to(plan.out).as_posix(),
                            Path(r.config["diode"]).relative_to(plan.out).as_posix()}
    for rel, text in r.cards.items():
        p = plan.out / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(text)
    mem = load_card("memristor", r.config["memristor"])
    assert mem.g_max == 2e-5 and mem.g_min == load_card("memristor", "ideal").g_min
    dio = load_card("diode", r.config["diode"])
    assert dio.series_resistance == 10.0
    assert dio.saturation_current == load_card("diode", "1n4148").saturation_current
    # pulse-model parameters the card does not set yet, validated like any card
    plan = plan_sweep({"programming": "deterministic"}, ["device.c2c_sigma=0,0.05", "device.levels=20,200"], 1,
                      tmp_path / "u")
    r = plan.runs[3]
    (plan.out / "cards").mkdir(parents=True)
    for rel, text in r.cards.items():
        (plan.out / rel).write_text(text)
    mem = load_card("memristor", r.config["memristor"])
    assert mem.params == {"c2c_sigma": 0.05, "levels": 200} and isinstance(mem.params["levels"], int)
    with pytest.raises(SweepError, match="c2c_sigma"):
        plan_sweep({}, ["device.c2c_sigma=-1"], 1, tmp_path / "v")
    # a sweep of the card itself plus one of its parameters
    plan = plan_sweep({}, {"device": "ideal", "device.g_max": [1e-5]}, [3, 4], tmp_path / "t")
    assert [r.seed for r in plan.runs] == [3, 4]


def test_index_is_replaced_atomically(local_sweep, tmp_path):
    """A write that fails half-way leaves the previous index intact and no temporary file."""
    out, _ = local_sweep
    folder = tmp_path / "copy"
    folder.mkdir()
    (folder / INDEX_NAME).write_bytes((out / INDEX_NAME).read_bytes())
    sw = open_sweep(folder)
    plan = plan_sweep(sw.base_config, {k: sw.axis_values[k] for k in sw.axes}, sw.seeds, folder)
    rows = [{"row": 0, "point": 0, "seed": 0, "axes": {}, "status": "complete"}]  # no metric columns
    with pytest.raises(KeyError):
        write_index(folder, plan.spec, plan.fingerprint, plan.axes, rows, "now")
    assert (folder / INDEX_NAME).read_bytes() == (out / INDEX_NAME).read_bytes()
    assert [p.name for p in folder.iterdir()] == [INDEX_NAME]


def test_open_sweep_python_api(local_sweep):
    out, _ = local_sweep
    sw = memsim.open_sweep(out)
    assert sw.shape == (2, 2, 2)
    g = sw.grid("test_accuracy")
    assert g.shape == (2, 2, 2) and np.isfinite(g).all()
    i = sw.where(**{"device.g_max": 2e-5, "lr": 3000})
    assert len(i) == 2 and set(sw.index["seed"][i]) == {0, 1}
    assert g[1, 1, 0] == sw.index["test_accuracy"][i[0]]
    assert len(list(sw.runs())) == 8
    assert memsim.open_sweep(out / INDEX_NAME).path == out
    run = memsim.open_run(sw.run_path(0))
    assert run.metrics["test_accuracy"][-1] == sw.index["test_accuracy"][0]
    with pytest.raises(SweepError):
        memsim.open_sweep(out / "runs")
