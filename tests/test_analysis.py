"""Analysis: run figures (memsim plot), sweep tables (memsim info) and reports (memsim report)."""
from __future__ import annotations

import shutil
import struct
import sys
from pathlib import Path

import h5py
import numpy as np
import pytest
from click.testing import CliRunner

import memsim
from memsim.cli.main import main
from memsim.sweep import sweep

SMALL = {"epochs": 2, "train_limit": 100, "test_limit": 50, "hidden": [10]}


def invoke(*args):
    return CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)


def png_pixels(path: Path) -> np.ndarray:
    """Check the PNG signature, IHDR and IEND, decode it, and return its pixels."""
    data = Path(path).read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", f"{path} is not a PNG"
    assert data[12:16] == b"IHDR"
    assert data.endswith(b"IEND\xaeB`\x82"), f"{path} is truncated"
    w, h = struct.unpack(">II", data[16:24])
    import matplotlib.image

    img = matplotlib.image.imread(path)
    assert img.shape[:2] == (h, w)
    assert img[..., :3].std() > 0.01, f"{path} is blank"
    return img


@pytest.fixture(scope="module")
def small_sweep(tmp_path_factory):
    """A 2x2 grid x 2 seeds, run in this process (workers=0), with one failing point."""
    out = tmp_path_factory.mktemp("an") / "sw"
    res = sweep({"beta": "1e-7,2e-7", "max_sweeps": "1,2000"}, base=SMALL, seeds=2, out=out, workers=0)
    assert res.total == 8 and res.complete == 4 and res.failed == 4
    return out


@pytest.fixture(scope="module")
def mpl():
    return pytest.importorskip("matplotlib", reason="figures need matplotlib (pip install 'memsim[plot]')")


def test_sweep_table_and_info(small_sweep):
    sw = memsim.open_sweep(small_sweep)
    summ = sw.summary()
    assert len(summ) == 4
    for s in summ:
        if s["max_sweeps"] == 1:
            assert s["n"] == 0 and s["failed"] == 2 and np.isnan(s["mean"])
        else:
            acc = sw.grid()[sw.axis_values["beta"].index(s["beta"]), 1]
            assert s["n"] == 2 and s["mean"] == pytest.approx(acc.mean())
            assert s["std"] == pytest.approx(acc.std(ddof=1))
    res = invoke("info", small_sweep)
    assert res.exit_code == 0, res.output
    assert "4 complete, 4 failed" in res.output
    assert "beta" in res.output and "max_sweeps" in res.output
    assert "failed runs:" in res.output and "ConvergenceError" in res.output
    res = invoke("info", small_sweep, "--metric", "train_loss")
    assert res.exit_code == 0 and "train loss mean" in res.output


def test_report_writes_figures_and_markdown(small_sweep, tmp_path, mpl):
    res = invoke("report", small_sweep, "-o", tmp_path / "rep", "--dpi", 50)
    assert res.exit_code == 0, res.output
    rep = tmp_path / "rep"
    md = (rep / "report.md").read_text()
    figs = sorted(rep.glob("*.png"))
    assert {p.name for p in figs} == {"test_accuracy_vs_beta.png", "test_accuracy_vs_max_sweeps.png",
                                      "heatmap_beta__max_sweeps.png", "learning_curves.png"}
    for p in figs:
        img = png_pixels(p)
        assert img.shape[:2] == (240, 320)  # 6.4 x 4.8 in at 50 dpi
        assert f"]({p.name})" in md
    assert "## Failed runs" in md and "ConvergenceError" in md
    assert "**Best point**" in md and "`max_sweeps` = 2000" in md


def test_report_of_one_axis_has_no_heatmap(tmp_path, mpl):
    out = tmp_path / "one"
    sweep({"lr": [1000, 3000]}, base={**SMALL, "epochs": 1}, seeds=1, out=out, workers=0)
    from memsim.analysis import write_report

    rep = write_report(out, tmp_path / "rep")
    assert [p.name for p in rep["figures"]] == ["test_accuracy_vs_lr.png", "learning_curves.png"]
    for p in rep["figures"]:
        assert png_pixels(p).shape[:2] == (480, 640)


@pytest.fixture(scope="module")
def run_file(small_sweep):
    sw = memsim.open_sweep(small_sweep)
    return sw.run_path(int(sw.where(status="complete")[0]))


@pytest.mark.parametrize("what, size", [("learning-curve", (480, 640)), ("pulses", (480, 640)),
                                        ("conductances", (600, 960))])
def test_plot_run(run_file, tmp_path, mpl, what, size):
    out = tmp_path / f"{what}.png"
    res = invoke("plot", run_file, "--what", what, "-o", out)
    assert res.exit_code == 0, res.output
    assert png_pixels(out).shape[:2] == size


def test_plot_trajectory(run_file, tmp_path, mpl):
    res = invoke("plot", run_file, "--what", "trajectory", "-o", tmp_path / "t.png")
    assert res.exit_code == 2
    assert "no traces" in res.output and "--trace" in res.output
    assert not (tmp_path / "t.png").exists()
    traced = tmp_path / "traced.h5"
    shutil.copy(run_file, traced)
    t = np.linspace(0, 2e-6, 50)
    with h5py.File(traced, "r+") as f:
        for k, ph in enumerate(("free", "nudge_plus", "nudge_minus")):
            g = f.require_group(f"trajectories/sample_3/{ph}")
            g["time"] = t
            g["voltage"] = np.tanh(np.outer(t / 5e-7, np.linspace(-1, 1, 6))) * (0.5 + 0.1 * k)
    res = invoke("plot", traced, "--what", "trajectory", "-o", tmp_path / "t.png")
    assert res.exit_code == 0, res.output
    assert png_pixels(tmp_path / "t.png").shape[:2] == (400, 1200)  # one 4 x 4 in panel per phase
    res = invoke("plot", traced, "--what", "trajectory", "--sample", 7, "-o", tmp_path / "t7.png")
    assert res.exit_code == 2 and "traced samples: 3" in res.output


def test_plot_bad_input(tmp_path, mpl):
    res = invoke("plot", tmp_path / "nope.h5", "-o", tmp_path / "x.png")
    assert res.exit_code == 2 and "no such file" in res.output
    res = invoke("report", tmp_path, "-o", tmp_path / "r")
    assert res.exit_code == 2 and "not a memsim sweep folder" in res.output


def test_missing_matplotlib_is_a_clear_error(run_file, small_sweep, tmp_path, monkeypatch):
    for name in [m for m in sys.modules if m == "matplotlib" or m.startswith("matplotlib.")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    res = invoke("plot", run_file, "-o", tmp_path / "x.png")
    assert res.exit_code == 2
    assert "needs matplotlib" in res.output and "pip install 'memsim[plot]'" in res.output
    res = invoke("report", small_sweep, "-o", tmp_path / "r")
    assert res.exit_code == 2 and "memsim[plot]" in res.output
    assert not (tmp_path / "x.png").exists()
    res = invoke("info", small_sweep)  # tables need no matplotlib
    assert res.exit_code == 0
