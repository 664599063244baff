"""The IDX loader (MNIST / Fashion-MNIST format) on small files the tests write."""
from __future__ import annotations

import gzip

import numpy as np
import pytest

from memsim.datasets import DatasetError, IDX_FILES, load_dataset, load_idx_dataset, read_idx, write_idx


def _write_set(folder, n_train=12, n_test=5, side=4, gz=True, seed=0, labels_hi=9):
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    arrays = {
        "train_images": rng.integers(0, 256, size=(n_train, side, side), dtype=np.uint8),
        "train_labels": rng.integers(0, labels_hi + 1, size=n_train).astype(np.uint8),
        "test_images": rng.integers(0, 256, size=(n_test, side, side), dtype=np.uint8),
        "test_labels": rng.integers(0, labels_hi + 1, size=n_test).astype(np.uint8),
    }
    for key, arr in arrays.items():
        write_idx(folder / (IDX_FILES[key] + (".gz" if gz else "")), arr)
    return arrays


@pytest.mark.parametrize("suffix", ["", ".gz"])
@pytest.mark.parametrize("shape", [(7,), (3, 5), (4, 2, 3)])
def test_roundtrip_shape_and_dtype(tmp_path, suffix, shape):
    a = np.arange(int(np.prod(shape)), dtype=np.uint8).reshape(shape)
    p = tmp_path / f"a.idx{suffix}"
    write_idx(p, a)
    b = read_idx(p)
    assert b.shape == shape
    assert b.dtype == np.uint8
    np.testing.assert_array_equal(a, b)


def test_header_is_big_endian_mnist_format(tmp_path):
    p = tmp_path / "x-idx3-ubyte"
    write_idx(p, np.zeros((2, 28, 28), dtype=np.uint8))
    raw = p.read_bytes()
    assert raw[:4] == bytes([0, 0, 0x08, 3])
    assert int.from_bytes(raw[4:8], "big") == 2
    assert int.from_bytes(raw[8:12], "big") == 28
    assert len(raw) == 16 + 2 * 28 * 28


def test_other_idx_dtypes_are_read(tmp_path):
    # a big-endian int32 IDX file written by hand (type code 0x0C)
    a = np.array([[1, -2, 300], [4, 5, -70000]], dtype=">i4")
    p = tmp_path / "i32.idx"
    p.write_bytes(bytes([0, 0, 0x0C, 2]) + (2).to_bytes(4, "big") + (3).to_bytes(4, "big") + a.tobytes())
    b = read_idx(p)
    assert b.shape == (2, 3)
    np.testing.assert_array_equal(b.astype(np.int64), a.astype(np.int64))


def test_load_idx_dataset_shapes_scaling_labels(tmp_path):
    arrays = _write_set(tmp_path / "fm", n_train=12, n_test=5, side=4)
    ds = load_idx_dataset("fashion-mnist", tmp_path / "fm")
    assert ds.x_train.shape == (12, 16) and ds.x_test.shape == (5, 16)
    assert ds.x_train.dtype == np.float64 and ds.y_train.dtype == np.int64
    assert ds.n_features == 16 and ds.n_classes == 10
    assert 0.0 <= ds.x_train.min() and ds.x_train.max() <= 1.0
    np.testing.assert_allclose(ds.x_train, arrays["train_images"].reshape(12, -1) / 255.0)
    np.testing.assert_array_equal(ds.y_test, arrays["test_labels"])
    assert ds.y_train.min() >= 0 and ds.y_train.max() <= 9


def test_uncompressed_files_and_dataset_subfolder(tmp_path):
    # data_dir may hold the files directly or in a sub-folder named after the dataset
    _write_set(tmp_path / "mnist", gz=False)
    ds = load_idx_dataset("mnist", tmp_path)
    assert ds.x_train.shape == (12, 16)


def test_load_dataset_limits(tmp_path):
    _write_set(tmp_path, n_train=12, n_test=5)
    ds = load_dataset("mnist", tmp_path, train_limit=7, test_limit=3)
    assert len(ds.x_train) == len(ds.y_train) == 7
    assert len(ds.x_test) == len(ds.y_test) == 3


def test_env_var_data_dir(tmp_path, monkeypatch):
    _write_set(tmp_path / "somewhere")
    monkeypatch.setenv("MEMSIM_DATA", str(tmp_path / "somewhere"))
    assert load_idx_dataset("mnist").x_test.shape == (5, 16)


def test_truncated_file_is_a_clear_error(tmp_path):
    p = tmp_path / "t.idx"
    write_idx(p, np.zeros((10, 4, 4), dtype=np.uint8))
    p.write_bytes(p.read_bytes()[:-20])
    with pytest.raises(DatasetError, match="truncated") as exc:
        read_idx(p)
    assert str(p) in str(exc.value)


def test_truncated_header_is_a_clear_error(tmp_path):
    p = tmp_path / "h.idx"
    p.write_bytes(bytes([0, 0, 0x08, 3]) + (10).to_bytes(4, "big"))
    with pytest.raises(DatasetError, match="truncated"):
        read_idx(p)


def test_truncated_gzip_is_a_clear_error(tmp_path):
    p = tmp_path / "t.idx.gz"
    write_idx(p, np.arange(4000, dtype=np.int64).astype(np.uint8).reshape(10, 20, 20))
    raw = p.read_bytes()
    p.write_bytes(raw[: len(raw) // 2])
    with pytest.raises(DatasetError) as exc:
        read_idx(p)
    assert str(p) in str(exc.value)


@pytest.mark.parametrize("head", [b"", b"\x00", b"PK\x03\x04", bytes([0, 0, 0x42, 1]), bytes([1, 0, 8, 1])])
def test_wrong_magic_is_a_clear_error(tmp_path, head):
    p = tmp_path / "bad.idx"
    p.write_bytes(head + b"\x00" * 8)
    with pytest.raises(DatasetError, match="not an IDX file") as exc:
        read_idx(p)
    assert str(p) in str(exc.value)


def test_gz_name_without_gzip_content_is_a_clear_error(tmp_path):
    p = tmp_path / "plain.idx.gz"
    write_idx(tmp_path / "plain.idx", np.zeros(5, dtype=np.uint8))
    p.write_bytes((tmp_path / "plain.idx").read_bytes())
    with pytest.raises(DatasetError, match=str(p.name)):
        read_idx(p)


def test_missing_files_name_the_paths_tried(tmp_path, monkeypatch):
    monkeypatch.delenv("MEMSIM_DATA", raising=False)
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(DatasetError) as exc:
        load_idx_dataset("mnist", empty)
    msg = str(exc.value)
    assert "train-images-idx3-ubyte" in msg
    assert str(empty / "train-images-idx3-ubyte") in msg
    assert str(empty / "train-images-idx3-ubyte.gz") in msg
    assert str(empty / "mnist" / "train-images-idx3-ubyte") in msg
    assert "--data-dir" in msg


def test_missing_single_file_is_named(tmp_path):
    _write_set(tmp_path)
    (tmp_path / (IDX_FILES["test_labels"] + ".gz")).unlink()
    with pytest.raises(DatasetError, match="t10k-labels-idx1-ubyte"):
        load_idx_dataset("mnist", tmp_path)


def test_count_mismatch_is_an_error(tmp_path):
    _write_set(tmp_path)
    write_idx(tmp_path / (IDX_FILES["train_labels"] + ".gz"), np.zeros(11, dtype=np.uint8))
    with pytest.raises(DatasetError, match="counts differ"):
        load_idx_dataset("mnist", tmp_path)


def test_label_out_of_range_is_an_error(tmp_path):
    _write_set(tmp_path)
    write_idx(tmp_path / (IDX_FILES["test_labels"] + ".gz"), np.full(5, 10, dtype=np.uint8))
    with pytest.raises(DatasetError, match="labels outside"):
        load_idx_dataset("mnist", tmp_path)


def test_cli_missing_dataset_is_one_line(tmp_path, monkeypatch):
    from click.testing import CliRunner

    from memsim.cli.main import main

    monkeypatch.delenv("MEMSIM_DATA", raising=False)
    r = CliRunner().invoke(main, ["baseline", "--dataset", "mnist", "--data-dir", str(tmp_path), "--epochs", "1",
                                  "-o", str(tmp_path / "r.h5")])
    assert r.exit_code != 0
    err = (r.stderr if hasattr(r, "stderr") else r.output).strip()
    assert err.startswith("memsim: error:") and "train-images-idx3-ubyte" in err
    assert len(err.splitlines()) == 1
    assert "Traceback" not in r.output
