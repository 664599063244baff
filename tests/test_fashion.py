"""Smoke training on Fashion-MNIST (the Debian package's IDX files): the paper-size analog network
(1568-100-20) learns far above chance on a 1,000-sample slice, and a broken trainer does not."""
from __future__ import annotations

import numpy as np
import pytest

from memsim.datasets import FASHION_SYSTEM_DIR, IDX_FILES

_have = all((FASHION_SYSTEM_DIR / (stem + sfx)).is_file() or (FASHION_SYSTEM_DIR / stem).is_file()
            for stem in IDX_FILES.values() for sfx in (".gz",))
pytestmark = pytest.mark.skipif(
    not _have, reason=f"Fashion-MNIST IDX files not in {FASHION_SYSTEM_DIR} (Debian package dataset-fashion-mnist)")

N_TRAIN, N_TEST = 1000, 1000


def _openblas_thread_setters():
    """(set, get) of every OpenBLAS loaded in this process (numpy's, scipy's), found by symbol."""
    import ctypes

    out = []
    try:
        paths = {line.split()[-1] for line in open("/proc/self/maps") if "openblas" in line.lower()}
    except OSError:
        return out
    for path in sorted(paths):
        try:
            lib = ctypes.CDLL(path)
        except OSError:
            continue
        for suffix in ("64_", "", "_64"):
            for prefix in ("scipy_openblas", "openblas"):
                st, gt = f"{prefix}_set_num_threads{suffix}", f"{prefix}_get_num_threads{suffix}"
                if hasattr(lib, st) and hasattr(lib, gt):
                    out.append((getattr(lib, st), getattr(lib, gt)))
    return out


@pytest.fixture(scope="module", autouse=True)
def one_blas_thread():
    """OpenBLAS' busy-waiting threads next to Numba's threads make the training steps many times
    slower on a 2-core machine (the trainer does not limit them yet); run this module with one."""
    setters = _openblas_thread_setters()
    old = [get() for _, get in setters]
    for set_, _ in setters:
        set_(1)
    yield
    for (set_, _), n in zip(setters, old):
        set_(n)


@pytest.fixture(scope="module")
def fashion():
    from memsim.datasets import load_dataset

    return load_dataset("fashion-mnist", None, N_TRAIN, N_TEST)


def _train(data, epochs, **over):
    from memsim.config import make_config
    from memsim.presets import preset
    from memsim.train import Trainer

    cfg = make_config({**preset("kendall2020"), "dataset": "fashion-mnist", "train_limit": N_TRAIN,
                       "test_limit": N_TEST, "epochs": epochs, **over})
    tr = Trainer(cfg, data)
    rows = [tr.epoch() for _ in range(epochs)]
    return tr, rows


def test_dataset_is_the_real_fashion_mnist(fashion):
    assert fashion.x_train.shape == (N_TRAIN, 784) and fashion.x_test.shape == (N_TEST, 784)
    assert 0.0 <= fashion.x_train.min() and fashion.x_train.max() <= 1.0
    assert set(np.unique(fashion.y_train)) == set(range(10))


def test_paper_size_network_learns_fashion_slice(fashion):
    tr, rows = _train(fashion, epochs=3)
    assert tr.spec.sizes == (1568, 100, 20)
    acc = rows[-1].test_accuracy
    # chance is 10%; a trainer with a wrong sign or no learning stays far below this
    assert acc > 0.65, f"test accuracy {acc:.3f} after {len(rows)} epochs on {N_TRAIN} samples"
    assert rows[-1].clipped_fraction > 0.0  # the diodes take part (the network is not linear)


def test_flipped_gradient_does_not_learn(fashion):
    _, rows = _train(fashion, epochs=1, gradient_sign=-1.0)
    assert rows[-1].test_accuracy < 0.5
