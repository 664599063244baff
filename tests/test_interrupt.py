"""Runs that survive: SIGTERM/SIGINT stop at a clean point, SIGKILL loses at most the current
epoch, resume finishes the run as if it had not stopped."""
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from memsim.h5io import RunFileError, open_run

ARGS = ["--epochs", "25", "--train-limit", "240", "--test-limit", "40", "--hidden", "12", "--seed", "5", "-q"]


def _start(out, *extra):
    env = dict(os.environ, NUMBA_NUM_THREADS="1")
    return subprocess.Popen([sys.executable, "-m", "memsim", "train", *ARGS, *extra, "-o", str(out)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)


def _wait_for_epochs(out, n, proc, timeout=120):
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        assert proc.poll() is None, proc.stderr.read().decode()
        try:
            if len(open_run(out).metrics["epoch"]) >= n:
                return
        except (RunFileError, OSError, KeyError):
            pass
        time.sleep(0.02)
    raise AssertionError("the run made no progress")


def _resume(out):
    r = subprocess.run([sys.executable, "-m", "memsim", "train", "--resume", str(out), "-q"],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    return open_run(out)


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    out = tmp_path_factory.mktemp("ref") / "ref.h5"
    r = subprocess.run([sys.executable, "-m", "memsim", "train", *ARGS, "-o", str(out)], capture_output=True,
                       text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    return open_run(out)


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_signal_stops_cleanly_and_resume_is_bit_for_bit(tmp_path, reference, sig):
    out = tmp_path / "run.h5"
    p = _start(out)
    _wait_for_epochs(out, 2, p)
    p.send_signal(sig)
    _, err = p.communicate(timeout=60)
    assert p.returncode == 130, err.decode()
    assert b"interrupted" in err and b"Traceback" not in err
    run = open_run(out)
    assert run.status == "interrupted"
    n = len(run.metrics["epoch"])
    assert 2 <= n < 25 and int(run.attrs["epochs_done"]) == n
    done = _resume(out)
    assert done.status == "complete" and len(done.metrics["epoch"]) == 25
    for a, b in zip(reference.network().parameters(), done.network().parameters()):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(reference.metrics["test_accuracy"], done.metrics["test_accuracy"])


@pytest.mark.parametrize("delay", [0.0, 0.13, 0.37])
def test_sigkill_leaves_a_readable_file_that_resumes(tmp_path, reference, delay):
    out = tmp_path / "run.h5"
    p = _start(out)
    _wait_for_epochs(out, 1, p)
    time.sleep(delay)
    p.kill()
    p.wait(timeout=30)
    run = open_run(out)  # readable: every committed epoch is there
    n = len(run.metrics["epoch"])
    assert n >= 1 and int(run.attrs["epochs_done"]) == n
    done = _resume(out)
    assert len(done.metrics["epoch"]) == 25
    for a, b in zip(reference.network().parameters(), done.network().parameters()):
        np.testing.assert_array_equal(a, b)


def test_sigkill_mid_epoch_with_batch_checkpoints(tmp_path, reference):
    out = tmp_path / "run.h5"
    p = _start(out, "--checkpoint-every", "7")
    t0 = time.monotonic()
    while time.monotonic() - t0 < 120:  # wait for a mid-epoch checkpoint
        try:
            if "epoch_order" in open_run(out).checkpoint():
                break
        except (RunFileError, OSError, KeyError):
            pass
        time.sleep(0.01)
    p.kill()
    p.wait(timeout=30)
    run = open_run(out)
    ck = run.checkpoint()
    if "epoch_order" in ck:  # killed before that epoch's end replaced the checkpoint
        assert ck["epoch_next_batch"] % 7 == 0
    done = _resume(out)
    assert len(done.metrics["epoch"]) == 25
    for a, b in zip(reference.network().parameters(), done.network().parameters()):
        np.testing.assert_array_equal(a, b)
