"""HDF5 run files (h5py): the layout of DESIGN.md section 4, written as the run goes.

Root attributes: ``memsim_version``, ``format`` (``"memsim-run"``), ``format_version``, ``config``
(JSON of the resolved config), ``created`` (ISO time), ``seed``, ``status`` (``running``,
``complete``, ``interrupted``, ``failed``), ``epochs_done``.

Groups: ``/metrics/<name>`` (1-D, one row per epoch, resizable, chunked), ``/network`` (final
conductances ``crossbar_<k>``, ``bias_plus_<l>``, ``bias_minus_<l>`` in siemens, circuit constants
and device cards as attributes), ``/snapshots/epoch_<e>/...``, ``/trajectories/sample_<i>/<phase>``
and ``/checkpoint`` (what ``--resume`` needs: RNG state, schedule position).
"""
from __future__ import annotations

import datetime as _dt
import json
import contextlib
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import h5py
import numpy as np

import memsim
from memsim.circuit import CircuitSpec, Network
from memsim.devices.cards import card_from_dict, card_to_dict

FORMAT = "memsim-run"
FORMAT_VERSION = 1
REQUIRED_METRICS = ("epoch", "train_loss", "train_accuracy", "test_accuracy", "wall_time", "pulses")
METRIC_UNITS = {"train_loss": "V^2", "test_loss": "V^2", "wall_time": "s", "programming_energy": "J",
                "pulses": "1", "epoch": "1", "train_accuracy": "1", "test_accuracy": "1"}


class RunFileError(ValueError):
    """A run file that is missing, not HDF5, not a memsim run, or of an unknown version."""


def _now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")


def _put(g: h5py.Group, name: str, data: np.ndarray, unit: str = "S", compress: bool = False) -> None:
    """Write ``data`` to ``g[name]``, in place when the dataset exists with the same shape and
    dtype (HDF5 does not reclaim deleted datasets' space: rewriting would grow the file)."""
    data = np.asarray(data)
    if name in g and g[name].shape == data.shape and g[name].dtype == data.dtype:
        g[name][...] = data
    else:
        if name in g:
            del g[name]
        g.create_dataset(name, data=data, **({"compression": "gzip", "compression_opts": 4} if compress else {}))
    if unit:
        g[name].attrs["unit"] = unit


def _write_network(g: h5py.Group, net: Network) -> None:
    for k, w in enumerate(net.weights):
        _put(g, f"crossbar_{k}", w)
    for l, (bp, bm) in enumerate(zip(net.bias_plus, net.bias_minus)):
        _put(g, f"bias_plus_{l}", bp)
        _put(g, f"bias_minus_{l}", bm)
    for key, arr in net.extra.items():
        _put(g, key, arr, unit="", compress=True)  # per-device records: pulse totals, stuck flags
    spec = net.spec
    a = g.attrs
    a["sizes"] = np.asarray(spec.sizes, dtype=np.int64)
    a["g_in"] = spec.input_gain
    a["V_b"] = spec.bias_voltage
    a["V_lo"] = spec.v_lo
    a["V_hi"] = spec.v_hi
    a["temperature"] = spec.temperature
    a["diode_card"] = json.dumps(card_to_dict(spec.diode))
    a["amplifier_card"] = json.dumps(card_to_dict(spec.amplifier)) if spec.amplifier else ""
    a["memristor_card"] = json.dumps(card_to_dict(spec.memristor)) if spec.memristor else ""
    a["units"] = "g_in, V_b, V_lo, V_hi: V; temperature: K; conductances: S"


def _read_network(g: h5py.Group) -> Network:
    a = g.attrs
    amp = str(a.get("amplifier_card", ""))
    mem = str(a.get("memristor_card", ""))

    def card(kind, text):
        d = json.loads(text)
        d.pop("kind", None)
        return card_from_dict(kind, d, origin="run file")

    spec = CircuitSpec(tuple(int(s) for s in a["sizes"]), float(a["g_in"]), float(a["V_b"]), float(a["V_lo"]),
                       float(a["V_hi"]), card("diode", a["diode_card"]), card("amplifier", amp) if amp else None,
                       float(a["temperature"]), card("memristor", mem) if mem else None)
    L = spec.n_free_layers
    weights = [g[f"crossbar_{k}"][()] for k in range(L)]
    bp = [g[f"bias_plus_{l}"][()] for l in range(L)]
    bm = [g[f"bias_minus_{l}"][()] for l in range(L)]
    return Network(spec, weights, bp, bm)


class RunWriter:
    """Writes one training run.

    Every write is a :meth:`transaction` on a copy of the file that then atomically replaces it
    (``os.replace``), so a process killed while training (even with SIGKILL) or a full disk leaves
    a valid file holding every committed epoch. Use :meth:`create` for a new run, :meth:`append`
    to resume one.
    """

    def __init__(self, path: str | Path):
        self.path = Path(path)

    @classmethod
    def create(cls, path: str | Path, config: dict, seed: int, overwrite: bool = False) -> "RunWriter":
        path = Path(path)
        if path.exists() and not overwrite:
            raise FileExistsError(f"{path} exists; pass --overwrite to replace it or --resume to continue it")
        if not path.parent.exists():
            raise FileNotFoundError(f"output folder {path.parent} does not exist")
        tmp = path.with_name(path.name + ".tmp")
        try:
            with h5py.File(tmp, "w") as f:
                f.attrs["memsim_version"] = memsim.__version__
                f.attrs["format"] = FORMAT
                f.attrs["format_version"] = FORMAT_VERSION
                f.attrs["config"] = json.dumps(config, sort_keys=True)
                f.attrs["created"] = _now()
                f.attrs["seed"] = int(seed)
                f.attrs["status"] = "running"
                f.attrs["epochs_done"] = 0
                m = f.create_group("metrics")
                for name in REQUIRED_METRICS:
                    cls._new_metric(m, name)
                for g in ("network", "snapshots", "trajectories", "checkpoint"):
                    f.create_group(g)
            os.replace(tmp, path)
        except OSError as exc:
            tmp.unlink(missing_ok=True)
            raise OSError(f"cannot write {path}: {exc}") from None
        return cls(path)

    @classmethod
    def append(cls, path: str | Path) -> "RunWriter":
        check_run_file(path)
        w = cls(path)
        with w.transaction() as f:
            f.attrs["status"] = "running"
        return w

    @contextlib.contextmanager
    def transaction(self, extra_bytes: int = 0):
        """The run file opened for writing, as a copy: on success the copy atomically replaces the
        file, on any failure it is removed. The file on disk is always one complete version.
        Free space for the copy plus ``extra_bytes`` is checked before anything is written."""
        tmp = self.path.with_name(self.path.name + ".tmp")
        try:
            size = self.path.stat().st_size
            free = shutil.disk_usage(self.path.parent).free
        except OSError as exc:
            raise OSError(f"cannot write {self.path}: {exc}") from None
        need = size + int(extra_bytes) + (1 << 16)
        if free < need:
            raise OSError(f"cannot write {self.path}: no space left on device (need about {need / 1e6:.1f} MB, "
                          f"{free / 1e6:.1f} MB free); the file keeps every finished epoch")
        try:
            shutil.copyfile(self.path, tmp)
            with h5py.File(tmp, "r+") as f:
                yield f
            os.replace(tmp, self.path)
        except OSError as exc:
            tmp.unlink(missing_ok=True)
            raise OSError(f"cannot write {self.path}: {exc}") from None
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise

    open = transaction  # ``with writer.open() as f:`` reads naturally too

    @staticmethod
    def _new_metric(m: h5py.Group, name: str) -> h5py.Dataset:
        ds = m.create_dataset(name, shape=(0,), maxshape=(None,), chunks=(64,), dtype="f8")
        ds.attrs["unit"] = METRIC_UNITS.get(name, "")
        return ds

    @classmethod
    def append_metrics(cls, f: h5py.File, row: dict[str, float]) -> None:
        """Append one epoch's row; every metric dataset grows by one (NaN where absent)."""
        m = f["metrics"]
        n = m["epoch"].shape[0]
        for name in row:
            if name not in m:
                ds = cls._new_metric(m, name)
                ds.resize((n,))
                ds[:] = np.nan
        for name in m:
            ds = m[name]
            ds.resize((n + 1,))
            ds[n] = float(row.get(name, np.nan))

    @staticmethod
    def truncate_metrics(f: h5py.File, n_rows: int) -> None:
        """Drop metric rows beyond ``n_rows`` (rows of an epoch that did not finish)."""
        for ds in f["metrics"].values():
            if ds.shape[0] > n_rows:
                ds.resize((n_rows,))

    @staticmethod
    def write_network(f: h5py.File, net: Network) -> None:
        _write_network(f["network"], net)

    @staticmethod
    def write_snapshot(f: h5py.File, epoch: int, net: Network) -> None:
        g = f["snapshots"].require_group(f"epoch_{epoch}")
        for k, w in enumerate(net.weights):
            _put(g, f"crossbar_{k}", w)
        for l, (bp, bm) in enumerate(zip(net.bias_plus, net.bias_minus)):
            _put(g, f"bias_plus_{l}", bp)
            _put(g, f"bias_minus_{l}", bm)

    @staticmethod
    def write_trajectories(f: h5py.File, epoch: int, traces: dict, spec) -> None:
        """Node-voltage transients of traced samples, H5MD-like: ``/trajectories/sample_<i>/<phase>/``
        with ``time`` (s, first axis) and ``voltage`` (V, time x free nodes); the latest epoch's."""
        from memsim.circuit import node_names

        root = f["trajectories"]
        root.attrs["epoch"] = int(epoch)
        root.attrs["node_names"] = json.dumps(node_names(spec)["free"])
        for i, phases in traces.items():
            for phase, (t, v) in phases.items():
                g = root.require_group(f"sample_{i}").require_group(phase)
                for name in ("time", "voltage"):
                    if name in g:
                        del g[name]
                g.create_dataset("time", data=t, maxshape=(None,), chunks=True).attrs["unit"] = "s"
                g.create_dataset("voltage", data=v, maxshape=(None, v.shape[1]), chunks=True).attrs["unit"] = "V"
                g.attrs["epoch"] = int(epoch)
                g.attrs["settle_time"] = float(t[-1])
                g.attrs["steps"] = int(len(t) - 1)

    @staticmethod
    def write_checkpoint(f: h5py.File, epochs_done: int, state: dict[str, Any]) -> None:
        """The resume state after ``epochs_done`` epochs (atomic with the rest of the commit)."""
        g = f.require_group("checkpoint")
        for key in [k for k in g if k not in state]:  # e.g. a finished epoch's mid-epoch progress
            del g[key]
        for key in [k for k in g.attrs if k not in state and k != "epochs_done"]:
            del g.attrs[key]
        for key, val in state.items():
            if isinstance(val, np.ndarray):
                _put(g, key, val, unit="", compress=True)
            else:
                g.attrs[key] = json.dumps(val)
        g.attrs["epochs_done"] = int(epochs_done)
        f.attrs["epochs_done"] = int(epochs_done)

    def set_status(self, status: str, error: str = "") -> None:
        with self.transaction() as f:
            f.attrs["status"] = status
            f.attrs["finished"] = _now()
            if error:
                f.attrs["error"] = error


def read_file(path: str | Path) -> h5py.File:
    """Open an HDF5 file read-only without taking its lock (a reader never blocks a training run:
    the writer commits by replacing the file, so a reader always sees one complete version)."""
    return h5py.File(path, "r", locking=False)


def check_run_file(path: str | Path) -> None:
    """Raise :class:`RunFileError` unless ``path`` is a readable memsim run of a known version."""
    path = Path(path)
    if not path.is_file():
        raise RunFileError(f"{path}: no such file")
    try:
        with read_file(path) as f:
            fmt = f.attrs.get("format")
            ver = f.attrs.get("format_version")
            if fmt != FORMAT:
                raise RunFileError(f"{path}: not a memsim run file (format attribute {fmt!r})")
            if ver != FORMAT_VERSION:
                raise RunFileError(f"{path}: run file format version {ver!r}; this memsim reads version {FORMAT_VERSION}")
            for g in ("metrics", "network"):
                if g not in f:
                    raise RunFileError(f"{path}: damaged run file (no /{g} group)")
    except OSError as exc:
        raise RunFileError(f"{path}: not a readable HDF5 file ({exc})") from None


@dataclass
class Run:
    """A run file read back: config, metrics (numpy arrays), status, network."""

    path: Path
    config: dict
    attrs: dict
    metrics: dict[str, np.ndarray]

    @property
    def status(self) -> str:
        return str(self.attrs.get("status", "unknown"))

    @property
    def seed(self) -> int:
        return int(self.attrs.get("seed", 0))

    def network(self) -> Network:
        with read_file(self.path) as f:
            if "crossbar_0" not in f["network"]:
                raise RunFileError(f"{self.path}: the run holds no network yet (no finished epoch)")
            return _read_network(f["network"])

    def checkpoint(self) -> dict:
        with read_file(self.path) as f:
            g = f.get("checkpoint")
            if g is None:
                return {}
            out: dict[str, Any] = {k: g[k][()] for k in g}
            for k, v in g.attrs.items():
                out[k] = json.loads(v) if isinstance(v, str) else v
            return out


def open_run(path: str | Path) -> Run:
    """Read a run file (raises :class:`RunFileError` for missing, foreign or damaged files)."""
    check_run_file(path)
    path = Path(path)
    try:
        with read_file(path) as f:
            attrs = {k: (v.decode() if isinstance(v, bytes) else v) for k, v in f.attrs.items()}
            config = json.loads(attrs.get("config", "{}"))
            metrics = {k: ds[()] for k, ds in f["metrics"].items()}
    except (OSError, KeyError, ValueError) as exc:
        raise RunFileError(f"{path}: damaged run file ({exc})") from None
    return Run(path, config, attrs, metrics)

