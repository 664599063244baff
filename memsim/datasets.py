"""Datasets: the bundled 8x8 digits and MNIST-format IDX files (MNIST, Fashion-MNIST).

Features are scaled to ``[0, 1]`` (float64); labels are int64 class indices.
"""
from __future__ import annotations

import gzip
import os
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import numpy as np

DIGITS_SPLIT_SEED = 20200601
FASHION_SYSTEM_DIR = Path("/usr/share/datasets/fashion-mnist")
IDX_DATASETS = ("mnist", "fashion-mnist")
DATASETS = ("digits", *IDX_DATASETS)
IDX_FILES = {
    "train_images": "train-images-idx3-ubyte",
    "train_labels": "train-labels-idx1-ubyte",
    "test_images": "t10k-images-idx3-ubyte",
    "test_labels": "t10k-labels-idx1-ubyte",
}
_IDX_DTYPES = {0x08: np.uint8, 0x09: np.int8, 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


class DatasetError(ValueError):
    """A dataset that is unknown, missing or malformed."""


@dataclass
class Dataset:
    name: str
    x_train: np.ndarray  # (n_train, F) float64 in [0, 1]
    y_train: np.ndarray  # (n_train,) int64
    x_test: np.ndarray
    y_test: np.ndarray
    n_classes: int

    @property
    def n_features(self) -> int:
        return self.x_train.shape[1]


def load_digits(test_fraction: float = 0.2) -> Dataset:
    """The bundled UCI 8x8 digits: 1,797 samples, 64 features, a fixed stratified split."""
    with resources.files("memsim.data").joinpath("digits.csv.gz").open("rb") as fh:
        raw = np.loadtxt(gzip.open(fh), delimiter=",")
    x = raw[:, :64] / 16.0
    y = raw[:, 64].astype(np.int64)
    rng = np.random.default_rng(DIGITS_SPLIT_SEED)
    test = np.zeros(len(y), dtype=bool)
    for c in range(10):
        idx = rng.permutation(np.flatnonzero(y == c))
        test[idx[: int(round(test_fraction * len(idx)))]] = True
    tr, te = np.flatnonzero(~test), np.flatnonzero(test)
    tr, te = rng.permutation(tr), rng.permutation(te)
    return Dataset("digits", x[tr], y[tr], x[te], y[te], 10)


def read_idx(path: str | Path) -> np.ndarray:
    """Read an IDX file (optionally gzip-compressed); errors name the file and the problem."""
    path = Path(path)
    try:
        opener = gzip.open if path.suffix == ".gz" else open
        with opener(path, "rb") as fh:
            data = fh.read()
    except (OSError, EOFError) as exc:
        raise DatasetError(f"{path}: cannot be read as an IDX file ({exc})") from None
    if len(data) < 4 or data[0] != 0 or data[1] != 0 or data[2] not in _IDX_DTYPES:
        raise DatasetError(f"{path}: not an IDX file (bad magic number {data[:4].hex() or 'empty'})")
    dtype = np.dtype(_IDX_DTYPES[data[2]])
    ndim = data[3]
    header = 4 + 4 * ndim
    if len(data) < header:
        raise DatasetError(f"{path}: truncated IDX header")
    shape = tuple(int.from_bytes(data[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim))
    n = int(np.prod(shape)) if shape else 1
    if len(data) - header < n * dtype.itemsize:
        raise DatasetError(
            f"{path}: truncated IDX file: header says {shape} ({n * dtype.itemsize} bytes of data), "
            f"file holds {len(data) - header}")
    return np.frombuffer(data, dtype=dtype, count=n, offset=header).reshape(shape)


def write_idx(path: str | Path, array: np.ndarray) -> None:
    """Write ``array`` (uint8) as an IDX file (gzip-compressed if the name ends in .gz)."""
    array = np.ascontiguousarray(array, dtype=np.uint8)
    head = bytes([0, 0, 0x08, array.ndim]) + b"".join(int(s).to_bytes(4, "big") for s in array.shape)
    opener = gzip.open if str(path).endswith(".gz") else open
    with opener(path, "wb") as fh:
        fh.write(head + array.tobytes())


def _candidate_dirs(name: str, data_dir: str | Path | None) -> list[Path]:
    dirs: list[Path] = []
    for base in [data_dir, os.environ.get("MEMSIM_DATA")]:
        if base:
            dirs += [Path(base), Path(base) / name]
    if name == "fashion-mnist":
        dirs.append(FASHION_SYSTEM_DIR)
    return dirs


def _find(dirs: list[Path], stem: str) -> tuple[Path | None, list[Path]]:
    tried = []
    for d in dirs:
        for suffix in ("", ".gz"):
            p = d / (stem + suffix)
            tried.append(p)
            if p.is_file():
                return p, tried
    return None, tried


def load_idx_dataset(name: str, data_dir: str | Path | None = None) -> Dataset:
    """MNIST or Fashion-MNIST from IDX files in ``data_dir``, ``$MEMSIM_DATA`` (or a sub-folder
    named after the dataset) or, for Fashion-MNIST, the Debian package's folder."""
    dirs = _candidate_dirs(name, data_dir)
    arrays = {}
    for key, stem in IDX_FILES.items():
        path, tried = _find(dirs, stem)
        if path is None:
            hint = " (install the Debian package dataset-fashion-mnist, or" if name == "fashion-mnist" else " ("
            raise DatasetError(
                f"{name}: file {stem}[.gz] not found; tried: {', '.join(map(str, tried)) or 'no folder'}"
                f"{hint} pass --data-dir or set MEMSIM_DATA)")
        arrays[key] = read_idx(path)
    xtr, xte = arrays["train_images"], arrays["test_images"]
    ytr, yte = arrays["train_labels"].astype(np.int64), arrays["test_labels"].astype(np.int64)
    if len(xtr) != len(ytr) or len(xte) != len(yte):
        raise DatasetError(f"{name}: image and label counts differ ({len(xtr)}/{len(ytr)}, {len(xte)}/{len(yte)})")
    for y in (ytr, yte):
        if y.size and (y.min() < 0 or y.max() > 9):
            raise DatasetError(f"{name}: labels outside 0..9")
    scale = 255.0
    return Dataset(name, xtr.reshape(len(xtr), -1) / scale, ytr, xte.reshape(len(xte), -1) / scale, yte, 10)


def load_dataset(name: str, data_dir: str | Path | None = None, train_limit: int | None = None,
                 test_limit: int | None = None) -> Dataset:
    """Load a dataset by name (``digits``, ``mnist``, ``fashion-mnist``), optionally truncated."""
    if name == "digits":
        ds = load_digits()
    elif name in IDX_DATASETS:
        ds = load_idx_dataset(name, data_dir)
    else:
        raise DatasetError(f"unknown dataset {name!r} (known: {', '.join(DATASETS)})")
    if train_limit:
        ds.x_train, ds.y_train = ds.x_train[:train_limit], ds.y_train[:train_limit]
    if test_limit:
        ds.x_test, ds.y_test = ds.x_test[:test_limit], ds.y_test[:test_limit]
    for arr, what in ((ds.x_train, "training"), (ds.x_test, "test")):
        if not np.isfinite(arr).all():
            raise DatasetError(f"{name}: non-finite values in the {what} features")
    return ds
