"""The HDF5 run file: documented layout, reopening, overwrite protection, resume."""
import json

import h5py
import numpy as np
import pytest

from memsim.config import make_config
from memsim.h5io import REQUIRED_METRICS, RunFileError, open_run
from memsim.train import resolved_config, run_training

SMALL = dict(epochs=2, train_limit=300, test_limit=100, hidden=[20], snapshot_every=1)


def test_layout_matches_design(tmp_path):
    cfg = make_config(SMALL)
    out = tmp_path / "run.h5"
    run_training(cfg, str(out))
    with h5py.File(out, "r") as f:
        for key in ("memsim_version", "config", "created", "seed"):
            assert key in f.attrs
        assert f.attrs["status"] == "complete"
        assert json.loads(f.attrs["config"]) == resolved_config(cfg).to_dict()
        assert resolved_config(cfg).beta == pytest.approx(1e-7)  # the ideal card's automatic nudge
        for name in REQUIRED_METRICS:
            ds = f["metrics"][name]
            assert ds.shape == (2,) and ds.maxshape == (None,) and ds.chunks is not None
        np.testing.assert_array_equal(f["metrics/epoch"][()], [1, 2])
        net = f["network"]
        assert net["crossbar_0"].shape == (128, 20) and net["crossbar_1"].shape == (20, 20)
        for key in ("g_in", "V_b", "V_lo", "V_hi", "diode_card", "sizes"):
            assert key in net.attrs
        assert set(f["snapshots"]) == {"epoch_1", "epoch_2"}
        np.testing.assert_array_equal(f["snapshots/epoch_2/crossbar_1"][()], net["crossbar_1"][()])
    run = open_run(out)
    assert run.status == "complete"
    assert run.network().spec.sizes == (128, 20, 20)
    assert 0.0 <= run.metrics["test_accuracy"][-1] <= 1.0


def test_existing_file_is_not_overwritten(tmp_path):
    out = tmp_path / "run.h5"
    out.write_bytes(b"precious")
    with pytest.raises(FileExistsError, match="--overwrite"):
        run_training(make_config(SMALL), str(out))
    assert out.read_bytes() == b"precious"


def test_resume_continues_bit_for_bit(tmp_path):
    full = tmp_path / "full.h5"
    part = tmp_path / "part.h5"
    cfg = make_config({**SMALL, "epochs": 3, "snapshot_every": 0})
    a = run_training(cfg, str(full))
    # the same run stopped after one epoch (its file says epochs=3; it finished 1) ...
    b = run_training(make_config({**SMALL, "epochs": 1, "snapshot_every": 0}), str(part))
    with h5py.File(part, "r+") as f:
        f.attrs["config"] = cfg.to_json()
        f.attrs["status"] = "interrupted"
    # ... resumed
    c = run_training(cfg, str(part), resume=True)
    for p, q in zip(a.net.parameters(), c.net.parameters()):
        np.testing.assert_array_equal(p, q)
    ra, rc = open_run(full), open_run(part)
    assert rc.status == "complete"
    np.testing.assert_array_equal(ra.metrics["test_accuracy"], rc.metrics["test_accuracy"])
    del b


@pytest.mark.parametrize("content", [b"", b"not hdf5 at all", b"\x89HDF\r\n\x1a\n" + b"\0" * 40])
def test_foreign_or_damaged_files_give_a_clear_error(tmp_path, content):
    p = tmp_path / "bad.h5"
    p.write_bytes(content)
    with pytest.raises(RunFileError, match="bad.h5"):
        open_run(p)


def test_hdf5_of_another_program_is_refused(tmp_path):
    p = tmp_path / "other.h5"
    with h5py.File(p, "w") as f:
        f["x"] = 1
    with pytest.raises(RunFileError, match="not a memsim run"):
        open_run(p)


def test_transient_resume_and_traces(tmp_path):
    cfg = make_config({**SMALL, "epochs": 2, "snapshot_every": 0, "engine": "transient", "train_limit": 60,
                       "test_limit": 20, "hidden": [10], "trace": 2})
    full = tmp_path / "full.h5"
    a = run_training(cfg, str(full))
    part = tmp_path / "part.h5"
    run_training(make_config({**cfg.to_dict(), "epochs": 1}), str(part))
    with h5py.File(part, "r+") as f:
        f.attrs["config"] = cfg.to_json()
    c = run_training(cfg, str(part), resume=True)
    for p, q in zip(a.net.parameters(), c.net.parameters()):
        np.testing.assert_array_equal(p, q)
    with h5py.File(full, "r") as f:
        g = f["trajectories/sample_1/nudge_minus"]
        t, v = g["time"][()], g["voltage"][()]
        assert g["time"].attrs["unit"] == "s" and g["voltage"].attrs["unit"] == "V"
        assert t[0] == 0 and np.all(np.diff(t) > 0) and v.shape == (len(t), 10 + 20)
        assert f["metrics/emulated_time"][-1] > 0


def test_resume_with_noisy_pulse_programming_is_bit_for_bit(tmp_path):
    base = {**SMALL, "snapshot_every": 0, "memristor": "agsi", "programming": "deterministic", "drift_time": 0.0}
    cfg = make_config({**base, "epochs": 3})
    a = run_training(cfg, str(tmp_path / "full.h5"))
    part = tmp_path / "part.h5"
    run_training(make_config({**base, "epochs": 1}), str(part))
    with h5py.File(part, "r+") as f:
        f.attrs["config"] = resolved_config(cfg).to_json()
    c = run_training(cfg, str(part), resume=True)
    for p, q in zip(a.net.parameters(), c.net.parameters()):
        np.testing.assert_array_equal(p, q)
    with h5py.File(tmp_path / "full.h5", "r") as f:
        assert f["metrics/pulses"][-1] > 0 and f["metrics/programming_energy"][-1] > 0
        assert f["network/pulse_totals_crossbar_0"].shape == (128, 20)
        assert f["network/device_params_crossbar_1"].shape[:2] == (20, 20)


def test_mid_epoch_checkpoint_resumes_bit_for_bit(tmp_path):
    from memsim.train import StopRequested

    base = {**SMALL, "epochs": 2, "snapshot_every": 0, "memristor": "agsi", "programming": "deterministic"}
    a = run_training(make_config(base), str(tmp_path / "full.h5"))

    class StopAt:
        """Raise a stop request after the given batch of epoch 2 (as a signal would)."""

        def epoch_start(self, e, n):
            self.e = e

        def batch_done(self, i, n):
            if self.e == 2 and i == 47:
                raise StopRequested("SIGTERM")

        def epoch_end(self, e, row):
            pass

    part = tmp_path / "part.h5"
    cfg = make_config({**base, "checkpoint_every": 20})
    with pytest.raises(StopRequested):
        run_training(cfg, str(part), reporter=StopAt())
    run = open_run(part)
    ck = run.checkpoint()
    assert run.status == "interrupted" and len(run.metrics["epoch"]) == 1
    assert ck["epoch_next_batch"] == 40 and ck["epochs_done"] == 1  # the last checkpoint before batch 47
    c = run_training(cfg, str(part), resume=True)
    for p, q in zip(a.net.parameters(), c.net.parameters()):
        np.testing.assert_array_equal(p, q)
    full, done = open_run(tmp_path / "full.h5"), open_run(part)
    for key in ("test_accuracy", "train_accuracy", "pulses", "programming_energy"):
        np.testing.assert_allclose(done.metrics[key], full.metrics[key], rtol=1e-12)
    assert "epoch_order" not in done.checkpoint()  # the finished epoch left no stale progress
