"""Device-nonideality sweeps: a grid of config values times seeds, each point one training run.

A sweep folder holds::

    SWEEP_DIR/index.h5       one row per run: axis values, seed, status, error, final metrics, path
    SWEEP_DIR/runs/*.h5      the run files (layout of memsim.h5io), one per grid point and seed
    SWEEP_DIR/cards/*.toml   device cards derived from the base cards by ``device.<param>`` axes
    SWEEP_DIR/.lock          held (flock) while a sweep runs in the folder

**Axis keys.** ``KEY=VALUES`` where KEY is

- a config field of :class:`memsim.config.TrainConfig` (``lr``, ``beta``, ``hidden``,
  ``programming``, ...), dashes read as underscores, or a command-line alias of one: ``device``
  (the memristor card, field ``memristor``), ``mode`` (``eqprop_mode``), ``target``
  (``target_amplitude``); ``train.<field>`` is the same as ``<field>``;
- ``<card>.<param>`` with ``<card>`` one of ``device`` (= ``memristor``), ``diode``,
  ``amplifier``: one parameter of that device card, e.g. ``device.g_max``. The point's card is the
  base card (``memristor``/``diode``/``amplifier`` field, itself sweepable) with the parameter
  replaced; it is written to ``cards/<kind>_<hash>.toml`` and the run uses that file. A parameter
  is known when it is a field of the card (memristor: ``g_min``, ``g_max``, ``model``), a key of
  the card's ``params`` table, or a parameter its pulse model accepts (``c2c_sigma``, ``levels``,
  ``nl_up``, ..., from :mod:`memsim.devices.pulse_models`; see :func:`card_parameters`). The
  derived card is validated like any card before the sweep starts.

**Values.** A comma list (``1e-6,2e-6``; text for text fields: ``device=ideal,mycard``), a linear
range ``start:stop:num`` or a logarithmic one ``log:start:stop:num``. Fields holding several
numbers (``hidden``, ``lr``) take one number per value (``hidden=20,40``) or, with ``;`` between
values, several (``hidden=20;40,20``). Integer fields need integral values.

**Running.** :func:`run_sweep` runs every (point, seed) not finished yet: in local worker
processes (``spawn``, one Numba thread each) or on an existing Dask cluster (``scheduler``). Each
finished run updates ``index.h5`` atomically (a new file, then :func:`os.replace`). Re-running
skips finished runs, resumes interrupted ones from their last finished epoch and retries failed
ones; a failing point records its error and the others go on. SIGINT/SIGTERM stop the sweep at
the workers' next batch boundary (a second signal stops at once).

**Reading.** :func:`open_sweep` (also ``memsim.open_sweep``) returns a :class:`Sweep`.
"""
from __future__ import annotations

import contextlib
import dataclasses
import datetime as _dt
import difflib
import hashlib
import itertools
import json
import math
import os
import re
import signal
import threading
import time
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

import numpy as np

from memsim.config import FIELDS, ConfigError, TrainConfig, make_config
from memsim.signals import SignalGuard

SWEEP_FORMAT = "memsim-sweep"
SWEEP_FORMAT_VERSION = 1
INDEX_NAME = "index.h5"
RUNS_DIR = "runs"
CARDS_DIR = "cards"
LOCK_NAME = ".lock"

#: final metrics (last epoch) copied into the index
FINAL_METRICS = ("train_loss", "train_accuracy", "test_loss", "test_accuracy", "clipped_fraction", "mean_sweeps")
#: metrics summed over the epochs
TOTAL_METRICS = ("pulses", "programming_energy", "wall_time")
METRIC_COLUMNS = FINAL_METRICS + TOTAL_METRICS
STATUSES = ("pending", "complete", "failed", "interrupted")

ALIASES = {"device": "memristor", "mode": "eqprop_mode", "target": "target_amplitude"}
CARD_PREFIXES = {"device": "memristor", "memristor": "memristor", "diode": "diode", "amplifier": "amplifier"}
NOT_SWEEPABLE = {"seed": "use --seeds (seeds=...) for the seeds of each point"}
_THREAD_ENV = ("NUMBA_NUM_THREADS", "OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")


class SweepError(ValueError):
    """A sweep that cannot start: bad axis, value, sweep folder or scheduler."""


class SweepInterrupted(Exception):
    """The sweep stopped on SIGINT/SIGTERM; its index holds every run finished so far."""

    def __init__(self, signal_name: str, result: "SweepResult"):
        super().__init__(signal_name)
        self.signal_name = signal_name
        self.result = result


def _now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")


# ------------------------------------------------------------------------------------------------
# axis keys and values


@dataclass(frozen=True)
class AxisTarget:
    """What an axis key sets: a config ``field`` or the parameter ``param`` of a ``card_kind`` card."""

    key: str
    field: str | None = None
    card_kind: str | None = None
    param: str | None = None

    @property
    def is_card(self) -> bool:
        return self.card_kind is not None


@dataclass
class Axis:
    """One sweep axis: its key, what it sets, its values (in grid order) and how they were spaced."""

    key: str
    target: AxisTarget
    values: list
    scale: str = "list"  # list | linear | log

    def to_json(self) -> dict:
        return {"key": self.key, "values": [_jsonable(v) for v in self.values], "scale": self.scale}


def _jsonable(v):
    if isinstance(v, tuple):
        return [_jsonable(x) for x in v]
    if isinstance(v, np.generic):
        return v.item()
    return v


def _known_keys_text() -> str:
    fields = ", ".join(sorted(FIELDS))
    return (f"config fields: {fields}; aliases: device (memristor card), mode, target; "
            f"card parameters as device.<param>, diode.<param>, amplifier.<param> (e.g. device.g_max)")


def resolve_key(key: str) -> AxisTarget:
    """The target of an axis key (config field or card parameter); :class:`SweepError` if unknown.

    Card parameters are checked against the actual card when the grid is planned.
    """
    raw = key
    key = key.strip()
    if not key or "/" in key or "=" in key:
        raise SweepError(f"bad axis key {raw!r}; {_known_keys_text()}")
    if key.startswith("train."):
        key = key[len("train."):]
    if "." in key:
        prefix, _, param = key.partition(".")
        kind = CARD_PREFIXES.get(prefix.replace("-", "_"))
        if kind is None or not param or "." in param:
            close = difflib.get_close_matches(prefix, list(CARD_PREFIXES), n=1)
            hint = f" (did you mean {close[0]}.{param}?)" if close else ""
            raise SweepError(f"unknown axis key {raw!r}{hint}: dotted keys name a device card parameter "
                             f"(device.<param>, diode.<param>, amplifier.<param>); {_known_keys_text()}")
        return AxisTarget(raw.strip(), card_kind=kind, param=param.replace("-", "_"))
    name = key.replace("-", "_")
    name = ALIASES.get(name, name)
    if name in NOT_SWEEPABLE:
        raise SweepError(f"axis key {raw!r} cannot be swept: {NOT_SWEEPABLE[name]}")
    if name not in FIELDS:
        close = difflib.get_close_matches(name, list(FIELDS) + list(ALIASES), n=2)
        hint = f" (did you mean {' or '.join(close)}?)" if close else ""
        raise SweepError(f"unknown axis key {raw!r}{hint}; {_known_keys_text()}")
    return AxisTarget(raw.strip(), field=name)


def _field_type(name: str) -> tuple[bool, type]:
    """(is_tuple, element type) of a config field."""
    default = FIELDS[name].default
    if isinstance(default, tuple):
        return True, type(default[0])
    if name == "data_dir" or isinstance(default, str):
        return False, str
    if isinstance(default, bool):
        return False, bool
    if isinstance(default, int):
        return False, int
    return False, float


def _parse_number(tok: str, key: str, elem: type):
    tok = tok.strip()
    try:
        v = float(tok)
    except ValueError:
        raise SweepError(f"axis {key!r}: {tok!r} is not a number ({key} takes {elem.__name__} values)") from None
    if not math.isfinite(v):
        raise SweepError(f"axis {key!r}: {tok!r} is not a finite number")
    if elem is int:
        if v != int(v):
            raise SweepError(f"axis {key!r}: {tok!r} is not an integer ({key} takes int values)")
        return int(v)
    return v


def _tidy(v: float) -> float:
    """Round range values to 12 significant digits (linspace gives 0.30000000000000004)."""
    return float(f"{v:.12g}")


def parse_values(spec: str | Sequence, key: str, elem: type = float, is_tuple: bool = False) -> tuple[list, str]:
    """Values of one axis from its text (comma list, ``start:stop:num``, ``log:start:stop:num``).

    ``elem`` is the element type (float, int, str; ``None`` reads numbers where it can, else text).
    Returns ``(values, scale)``.
    """
    if not isinstance(spec, str):  # a list given through the Python API or a [sweep] table
        vals = list(spec)
        if not vals:
            raise SweepError(f"axis {key!r}: no values")
        out = []
        for v in vals:
            if is_tuple:
                seq = v if isinstance(v, (list, tuple)) else [v]
                out.append(tuple(_parse_number(str(x), key, elem) for x in seq))
            elif elem is str:
                if not isinstance(v, str):
                    raise SweepError(f"axis {key!r}: {v!r} is not text ({key} takes text values)")
                out.append(v)
            elif elem is None:
                out.append(v if isinstance(v, str) else _parse_number(str(v), key, float))
            else:
                if isinstance(v, (bool, str)) and elem is not bool:
                    if isinstance(v, str):
                        out.append(_parse_number(v, key, elem))
                        continue
                    raise SweepError(f"axis {key!r}: {v!r} is not a number")
                out.append(_parse_number(str(v), key, elem))
        _check_unique(out, key)
        return out, "list"
    text = spec.strip()
    if not text:
        raise SweepError(f"axis {key!r}: no values (give a comma list, start:stop:num or log:start:stop:num)")
    if is_tuple and ";" in text:
        out = []
        for part in text.split(";"):
            toks = [t for t in re.split(r"[,\s]+", part.strip()) if t]
            if not toks:
                raise SweepError(f"axis {key!r}: empty value in {spec!r}")
            out.append(tuple(_parse_number(t, key, elem) for t in toks))
        _check_unique(out, key)
        return out, "list"
    is_range = text.startswith("log:") or text.count(":") == 2
    if elem is str or (elem is None and not is_range):
        toks = [t.strip() for t in text.split(",")]
        if any(not t for t in toks):
            raise SweepError(f"axis {key!r}: empty value in {spec!r}")
        if elem is None:  # a parameter of unknown type: integers, numbers, else text
            vals = []
            for t in toks:
                try:
                    vals.append(int(t))
                except ValueError:
                    try:
                        vals.append(_parse_number(t, key, float))
                    except SweepError:
                        vals.append(t)
            toks = vals
        _check_unique(toks, key)
        return toks, "list"
    if elem is None:
        elem = float
    if text.startswith("log:") or text.count(":") == 2:
        log = text.startswith("log:")
        parts = (text[4:] if log else text).split(":")
        form = "log:start:stop:num" if log else "start:stop:num"
        if len(parts) != 3:
            raise SweepError(f"axis {key!r}: {spec!r} is not {form}")
        start = _parse_number(parts[0], key, float)
        stop = _parse_number(parts[1], key, float)
        try:
            num = int(parts[2])
        except ValueError:
            raise SweepError(f"axis {key!r}: the count in {spec!r} must be a positive integer") from None
        if num < 1:
            raise SweepError(f"axis {key!r}: the count in {spec!r} must be a positive integer")
        if log:
            if start <= 0 or stop <= 0:
                raise SweepError(f"axis {key!r}: log ranges need positive ends, got {spec!r}")
            raw = np.logspace(math.log10(start), math.log10(stop), num)
        else:
            raw = np.linspace(start, stop, num)
        vals = [_tidy(float(v)) for v in raw]
        if elem is int:
            vals = [_parse_number(repr(v), key, int) for v in vals]
        if is_tuple:
            vals = [(v,) for v in vals]
        _check_unique(vals, key)
        return vals, "log" if log else "linear"
    toks = [t for t in text.split(",")]
    if any(not t.strip() for t in toks):
        raise SweepError(f"axis {key!r}: empty value in {spec!r}")
    vals = [_parse_number(t, key, elem) for t in toks]
    if is_tuple:
        vals = [(v,) for v in vals]
    _check_unique(vals, key)
    return vals, "list"


def _check_unique(vals: list, key: str) -> None:
    seen = set()
    for v in vals:
        if v in seen:
            raise SweepError(f"axis {key!r}: value {display_value(v)} appears twice")
        seen.add(v)


def display_value(v) -> str:
    """An axis value as text (``1e-05``, ``20,10``, ``ideal``)."""
    if isinstance(v, (tuple, list)):
        if len(v) == 1:
            return display_value(v[0])
        return ",".join(display_value(x) for x in v)
    if isinstance(v, float):
        return f"{v:.6g}"
    return str(v)


def parse_axis(text: str) -> tuple[str, str]:
    """``"KEY=VALUES"`` -> ``(KEY, VALUES)``."""
    key, sep, values = text.partition("=")
    if not sep or not key.strip():
        raise SweepError(f"axis {text!r}: write KEY=VALUES (e.g. device.g_max=log:1e-6:1e-4:3 or lr=1000,3000)")
    return key.strip(), values.strip()


# ------------------------------------------------------------------------------------------------
# device cards


def card_parameters(kind: str, card) -> list[str]:
    """Names of the parameters of ``card`` an axis ``<card>.<param>`` may set.

    The card's own fields (but ``name``/``source``/``params``), the keys of its ``params`` table,
    and for a memristor every parameter its pulse model accepts: the model's keys and the common
    non-ideality keys of :mod:`memsim.devices.pulse_models` (``MODEL_KEYS``, ``COMMON_KEYS``).
    """
    names = [f.name for f in dataclasses.fields(card) if f.name not in ("name", "source", "params")]
    names += [k for k in (getattr(card, "params", {}) or {}) if k not in names]
    model = getattr(card, "model", None)
    if kind == "memristor" and model is not None:
        try:
            from memsim.devices import pulse_models as pm

            model_keys = set(pm.MODEL_KEYS.get(model, (set(),))[0])
            common = set(pm.COMMON_KEYS)
        except (ImportError, AttributeError):  # no declared schema: the card's own keys only
            model_keys, common = set(), set()
        names += [k for k in sorted(model_keys) if k not in names]
        names += [k for k in sorted(common) if k not in names]
    return names


def _card_param_type(card, param: str):
    if param in {f.name for f in dataclasses.fields(card)}:
        v = getattr(card, param)
    else:
        v = (getattr(card, "params", {}) or {}).get(param)
    if isinstance(v, bool):
        return bool
    if isinstance(v, int):
        return int
    if isinstance(v, float):
        return float
    if isinstance(v, str):
        return str
    return None  # declared but not set on this card: numbers where they parse, else text


def _toml_value(v) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        if math.isnan(v):
            return "nan"
        if math.isinf(v):
            return "inf" if v > 0 else "-inf"
        return repr(v)
    if isinstance(v, str):
        return json.dumps(v)
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(_toml_value(x) for x in v) + "]"
    raise SweepError(f"cannot write {v!r} into a card file")


def card_toml(d: dict) -> str:
    """A card mapping (``card_to_dict``) as TOML text that :func:`load_card` reads back."""
    lines = []
    params = d.get("params") or {}
    for k, v in d.items():
        if k == "params" or v is None:
            continue
        lines.append(f"{k} = {_toml_value(v)}")
    if params:
        lines.append("")
        lines.append("[params]")
        for k, v in params.items():
            lines.append(f"{k} = {_toml_value(v)}")
    return "\n".join(lines) + "\n"


# ------------------------------------------------------------------------------------------------
# the plan: every (point, seed) with its resolved config


@dataclass
class PlannedRun:
    row: int
    point: int
    seed: int
    axis_values: tuple
    config: dict  # resolved config (card paths included), as make_config takes it
    path: str  # relative to the sweep folder
    cards: dict = field(default_factory=dict)  # relative card path -> TOML text


@dataclass
class SweepPlan:
    out: Path
    base: TrainConfig
    axes: list[Axis]
    seeds: list[int]
    runs: list[PlannedRun]

    @property
    def spec(self) -> dict:
        return {"base": self.base.to_dict(), "axes": [a.to_json() for a in self.axes], "seeds": list(self.seeds)}

    @property
    def fingerprint(self) -> str:
        return hashlib.sha256(json.dumps(self.spec, sort_keys=True).encode()).hexdigest()

    @property
    def n_points(self) -> int:
        return len(self.runs) // max(len(self.seeds), 1)


def _seeds(seeds: int | Sequence[int] | str, base_seed: int) -> list[int]:
    if isinstance(seeds, str):
        text = seeds.strip()
        if "," in text:
            try:
                out = [int(s) for s in text.split(",") if s.strip()]
            except ValueError:
                raise SweepError(f"--seeds {seeds!r}: give a count (3) or a comma list of integers (0,5,7)") from None
        else:
            try:
                n = int(text)
            except ValueError:
                raise SweepError(f"--seeds {seeds!r}: give a count (3) or a comma list of integers (0,5,7)") from None
            if n < 1:
                raise SweepError(f"--seeds {seeds!r}: the count must be at least 1")
            out = [base_seed + i for i in range(n)]
    elif isinstance(seeds, (int, np.integer)) and not isinstance(seeds, bool):
        if seeds < 1:
            raise SweepError(f"seeds = {seeds}: the count must be at least 1")
        out = [base_seed + i for i in range(int(seeds))]
    else:
        out = [int(s) for s in seeds]
    if not out:
        raise SweepError("no seeds")
    if len(set(out)) != len(out):
        raise SweepError(f"seeds {out}: a seed appears twice")
    if any(s < 0 for s in out):
        raise SweepError(f"seeds {out}: seeds must be >= 0")
    return out


def build_axes(axes: dict[str, Any] | Sequence[str] | Sequence[tuple[str, Any]], base: TrainConfig) -> list[Axis]:
    """Axes from ``{"key": "values" | [values]}``, ``["key=values", ...]`` or ``[(key, values), ...]``."""
    if isinstance(axes, dict):
        items = list(axes.items())
    else:
        items = [parse_axis(a) if isinstance(a, str) else tuple(a) for a in axes]
    out: list[Axis] = []
    seen: dict[tuple, str] = {}
    for key, spec in items:
        target = resolve_key(key)
        ident = (target.field,) if target.field else (target.card_kind, target.param)
        if ident in seen:
            raise SweepError(f"axis {key!r} sets the same thing as axis {seen[ident]!r}")
        seen[ident] = key
        if target.field:
            is_tuple, elem = _field_type(target.field)
            if elem is bool:
                elem = int
        else:
            from memsim.devices.cards import CardError, load_card

            name = getattr(base, target.card_kind)
            try:
                card = load_card(target.card_kind, name)
            except CardError as exc:
                raise SweepError(f"axis {key!r}: {exc}") from None
            is_tuple, elem = False, _card_param_type(card, target.param)
            if target.param not in card_parameters(target.card_kind, card) and not _card_axis_given(items, target):
                _unknown_param(key, target, card)
        values, scale = parse_values(spec, key, elem, is_tuple)
        out.append(Axis(target.key, target, values, scale))
    return out


def _card_axis_given(items, target: AxisTarget) -> bool:
    """Whether the card itself is swept (then parameters are checked per point)."""
    for key, _ in items:
        try:
            t = resolve_key(key)
        except SweepError:
            continue
        if t.field == target.card_kind:
            return True
    return False


def _unknown_param(key: str, target: AxisTarget, card) -> None:
    params = card_parameters(target.card_kind, card)
    close = [p for p in params if p.startswith(target.param)][:1] or difflib.get_close_matches(target.param, params, n=1)
    hint = f" (did you mean {key.partition('.')[0]}.{close[0]}?)" if close else ""
    model = getattr(card, "model", None)
    what = f"{target.card_kind} card {card.name!r}" + (f" (model {model!r})" if model else "")
    raise SweepError(f"unknown axis key {key!r}{hint}: the {what} has no parameter {target.param!r}; "
                     f"its parameters: {', '.join(params)}; config fields: {', '.join(sorted(FIELDS))}")


def plan_sweep(base: TrainConfig | dict | None, axes, seeds: int | Sequence[int] | str, out: str | Path) -> SweepPlan:
    """Validate the whole grid up front and resolve every run's config (nothing is written)."""
    from memsim.devices.cards import CardError, card_from_dict, card_to_dict, load_card

    if base is None:
        base = make_config({})
    elif isinstance(base, dict):
        base = make_config(base)
    out = Path(out).absolute()
    axis_list = axes if axes and isinstance(axes, list) and isinstance(axes[0], Axis) else build_axes(axes or [], base)
    seed_list = _seeds(seeds, base.seed)
    base_values = base.to_dict()
    points = list(itertools.product(*[a.values for a in axis_list])) if axis_list else [()]
    width = max(3, len(str(len(points) - 1)))
    card_cache: dict[tuple[str, str], Any] = {}
    runs: list[PlannedRun] = []
    for p, combo in enumerate(points):
        desc = ", ".join(f"{a.key}={display_value(v)}" for a, v in zip(axis_list, combo)) or "(base)"
        values = dict(base_values)
        overrides: dict[str, dict[str, Any]] = {}
        for a, v in zip(axis_list, combo):
            if a.target.field:
                values[a.target.field] = list(v) if isinstance(v, tuple) else v
            else:
                overrides.setdefault(a.target.card_kind, {})[a.target.param] = v
        try:
            cfg = make_config(values)
        except ConfigError as exc:
            raise SweepError(f"sweep point {desc}: {exc}") from None
        cards: dict[str, str] = {}
        for kind, params in overrides.items():
            name = getattr(cfg, kind)
            try:
                card = card_cache.get((kind, name)) or load_card(kind, name)
            except CardError as exc:
                raise SweepError(f"sweep point {desc}: {exc}") from None
            card_cache[(kind, name)] = card
            d = card_to_dict(card)
            d.setdefault("params", {})
            own = {f.name for f in dataclasses.fields(card)}
            tags = []
            for param, v in params.items():
                if param not in card_parameters(kind, card):
                    key = next(a.key for a in axis_list if a.target.card_kind == kind and a.target.param == param)
                    _unknown_param(key, AxisTarget(key, card_kind=kind, param=param), card)
                if param in own:
                    d[param] = v
                else:
                    d["params"][param] = v
                tags.append(f"{param}={display_value(v)}")
            d["name"] = f"{card.name}[{','.join(tags)}]"
            d["source"] = f"{card.source} | memsim sweep: {', '.join(tags)}"
            if kind != "memristor":
                d.pop("params", None)
            elif not d["params"]:
                d.pop("params")
            try:
                card_from_dict(kind, d, origin=f"{kind} card for sweep point {desc}")
            except CardError as exc:
                raise SweepError(f"sweep point {desc}: {exc}") from None
            text = card_toml(d)
            rel = f"{CARDS_DIR}/{kind}_{hashlib.sha256(text.encode()).hexdigest()[:12]}.toml"
            cards[rel] = text
            values[kind] = str(out / rel)
        if overrides:
            cfg = make_config(values)
        for seed in seed_list:
            run_cfg = dataclasses.replace(cfg, seed=seed)
            rel = f"{RUNS_DIR}/p{p:0{width}d}_s{seed}.h5"
            runs.append(PlannedRun(len(runs), p, seed, tuple(combo), run_cfg.to_dict(), rel, cards))
    return SweepPlan(out, base, axis_list, seed_list, runs)


def load_sweep_file(path: str | Path) -> tuple[dict, dict, Any]:
    """``(config values, axes, seeds)`` from a TOML file: config fields (top level or ``[train]``)
    and an optional ``[sweep]`` table with ``axes = {key = "values" | [values]}`` and ``seeds``."""
    try:
        data = tomllib.loads(Path(path).read_text())
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"config file {path}: cannot be read ({exc})") from None
    sweep = data.pop("sweep", {}) or {}
    values = dict(data.get("train", data))
    values.pop("sweep", None)
    if not isinstance(sweep, dict):
        raise ConfigError(f"config file {path}: [sweep] must be a table")
    unknown = set(sweep) - {"axes", "seeds"}
    if unknown:
        raise ConfigError(f"config file {path}: unknown key(s) in [sweep]: {', '.join(sorted(unknown))} (known: axes, seeds)")
    axes = sweep.get("axes", {}) or {}
    if not isinstance(axes, dict):
        raise ConfigError(f"config file {path}: [sweep] axes must be a table of key = values")
    return values, dict(axes), sweep.get("seeds")


# ------------------------------------------------------------------------------------------------
# the index file


def _row_from_plan(r: PlannedRun, axes: list[Axis]) -> dict:
    row = {"row": r.row, "point": r.point, "seed": r.seed, "axes": dict(zip([a.key for a in axes], r.axis_values)),
           "status": "pending", "error": "", "path": r.path, "epochs_done": 0, "finished": ""}
    for m in METRIC_COLUMNS:
        row[m] = math.nan
    return row


def _axis_column(axis: Axis, rows: list[dict]):
    vals = [r["axes"][axis.key] for r in rows]
    if all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in vals):
        return np.asarray(vals, dtype=np.float64), "number"
    if all(isinstance(v, tuple) and len(v) == 1 and isinstance(v[0], (int, float)) for v in vals):
        return np.asarray([v[0] for v in vals], dtype=np.float64), "number"
    return np.asarray([display_value(v) for v in vals], dtype=object), "text"


def write_index(out: Path, spec: dict, fingerprint: str, axes: list[Axis], rows: list[dict], created: str) -> None:
    """Write ``out/index.h5`` atomically: a new file next to it, fsync, then :func:`os.replace`."""
    import h5py

    import memsim

    path = Path(out) / INDEX_NAME
    tmp = path.with_name(f"{INDEX_NAME}.tmp-{os.getpid()}-{threading.get_ident()}")
    str_dt = h5py.string_dtype()
    try:
        with h5py.File(tmp, "w") as f:
            a = f.attrs
            a["format"] = SWEEP_FORMAT
            a["format_version"] = SWEEP_FORMAT_VERSION
            a["memsim_version"] = memsim.__version__
            a["spec"] = json.dumps(spec, sort_keys=True)
            a["fingerprint"] = fingerprint
            a["created"] = created
            a["updated"] = _now()
            a["axes"] = json.dumps([ax.key for ax in axes])
            a["n_rows"] = len(rows)
            counts = {s: sum(r["status"] == s for r in rows) for s in STATUSES}
            a["counts"] = json.dumps(counts)
            c = f.create_group("columns")
            for name in ("row", "point", "seed", "epochs_done"):
                c.create_dataset(name, data=np.asarray([r[name] for r in rows], dtype=np.int64))
            for name in ("status", "error", "path", "finished"):
                c.create_dataset(name, data=np.asarray([str(r[name]) for r in rows], dtype=object), dtype=str_dt)
            for name in METRIC_COLUMNS:
                c.create_dataset(name, data=np.asarray([r[name] for r in rows], dtype=np.float64))
            g = f.create_group("axes")
            for i, ax in enumerate(axes):
                data, kind = _axis_column(ax, rows)
                ds = g.create_dataset(f"axis_{i}", data=data, dtype=str_dt if kind == "text" else np.float64)
                ds.attrs["key"] = ax.key
                ds.attrs["scale"] = ax.scale
                ds.attrs["kind"] = kind
                ds.attrs["values"] = json.dumps([_jsonable(v) for v in ax.values])
        with open(tmp, "rb+") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def _read_index_file(path: Path) -> dict:
    import h5py

    if not path.is_file():
        raise SweepError(f"{path.parent}: not a memsim sweep folder (no {INDEX_NAME})")
    try:
        with h5py.File(path, "r") as f:
            a = dict(f.attrs)
            if a.get("format") != SWEEP_FORMAT:
                raise SweepError(f"{path}: not a memsim sweep index (format attribute {a.get('format')!r})")
            if a.get("format_version") != SWEEP_FORMAT_VERSION:
                raise SweepError(f"{path}: sweep index version {a.get('format_version')!r}; this memsim reads "
                                 f"version {SWEEP_FORMAT_VERSION}")
            cols = {}
            for name, ds in f["columns"].items():
                cols[name] = ds.asstr()[()] if h5py.check_string_dtype(ds.dtype) else ds[()]
            axes = []
            for i in range(len(f["axes"])):
                ds = f["axes"][f"axis_{i}"]
                data = ds.asstr()[()] if h5py.check_string_dtype(ds.dtype) else ds[()]
                axes.append({"key": str(ds.attrs["key"]), "scale": str(ds.attrs["scale"]), "kind": str(ds.attrs["kind"]),
                             "values": json.loads(ds.attrs["values"]), "column": data})
    except OSError as exc:
        raise SweepError(f"{path}: not a readable HDF5 file ({exc})") from None
    except KeyError as exc:
        raise SweepError(f"{path}: damaged sweep index ({exc})") from None
    spec = json.loads(str(a["spec"]))
    return {"attrs": a, "spec": spec, "columns": cols, "axes": axes}


def _rows_from_index(data: dict, plan: SweepPlan) -> dict[int, dict]:
    """Stored rows (same fingerprint) keyed by row number."""
    cols = data["columns"]
    out = {}
    for i in range(len(cols["row"])):
        r = int(cols["row"][i])
        if r >= len(plan.runs):
            continue
        row = _row_from_plan(plan.runs[r], plan.axes)
        row["status"] = str(cols["status"][i])
        row["error"] = str(cols["error"][i])
        row["epochs_done"] = int(cols["epochs_done"][i])
        row["finished"] = str(cols["finished"][i])
        for m in METRIC_COLUMNS:
            if m in cols:
                row[m] = float(cols[m][i])
        out[r] = row
    return out


# ------------------------------------------------------------------------------------------------
# one run (executed in a worker process, a Dask worker or in-process)

_STOP = threading.Event()


class _StopReporter:
    """Raises StopRequested between batches once this worker was asked to stop."""

    def epoch_start(self, e, n):
        self._check()

    def batch_done(self, i, n):
        self._check()

    def epoch_end(self, e, row):
        pass

    @staticmethod
    def _check():
        if _STOP.is_set():
            from memsim.train import StopRequested

            raise StopRequested("SIGTERM")


def _worker_init() -> None:
    """Local worker processes: ignore SIGINT (the parent decides), SIGTERM asks for a clean stop."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, lambda signum, frame: _STOP.set())


def _limit_threads(n: int) -> None:
    try:
        import numba

        numba.set_num_threads(max(1, min(int(n), numba.config.NUMBA_NUM_THREADS)))
    except Exception:  # noqa: BLE001 - a thread limit is an optimisation, never a failure
        pass


def run_file_state(path: str | Path, config: dict) -> str:
    """``"complete"``, ``"resumable"`` (finished epochs and a checkpoint) or ``"fresh"`` (start over)."""
    from memsim.h5io import RunFileError, open_run
    from memsim.train import resolved_config

    p = Path(path)
    if not p.exists():
        return "fresh"
    try:
        run = open_run(p)
        want = make_config(config)
        if make_config(run.config).to_dict() != resolved_config(want).to_dict():
            return "fresh"
        n = len(run.metrics.get("epoch", []))
        if run.status == "complete" and n >= want.epochs:
            return "complete"
        if run.status in ("interrupted", "running") and n > 0:
            ckpt = run.checkpoint()
            if "rng_state" in ckpt and int(ckpt.get("epochs_done", 0)) > 0:
                return "resumable"
    except (RunFileError, ConfigError, OSError, KeyError, ValueError):
        return "fresh"
    return "fresh"


def _result_from_file(path: Path) -> dict:
    from memsim.h5io import open_run

    run = open_run(path)
    m = run.metrics
    n = len(m.get("epoch", []))
    res = {"epochs_done": n}
    for name in FINAL_METRICS:
        res[name] = float(m[name][-1]) if name in m and n else math.nan
    for name in TOTAL_METRICS:
        res[name] = float(np.nansum(m[name])) if name in m and n else math.nan
    res["finished"] = str(run.attrs.get("finished", ""))
    return res


def run_point(task: dict) -> dict:
    """Train one (point, seed) of a sweep; never raises for a failing run (the result says so).

    ``task``: ``row``, ``config`` (resolved), ``path`` (absolute run file), ``numba_threads``.
    Returns ``row``, ``status`` (complete | failed | interrupted), ``error`` and the final metrics.
    """
    _limit_threads(task.get("numba_threads", 1))
    path = Path(task["path"])
    out = {"row": task["row"], "status": "failed", "error": "", "epochs_done": 0, "finished": "",
           "worker": f"{os.uname().nodename}:{os.getpid()}"}
    if _STOP.is_set():
        out.update(status="interrupted", error="stopped before it started")
        return out
    try:
        from memsim.h5io import RunFileError
        from memsim.train import StopRequested, run_training

        if not path.parent.is_dir():
            raise FileNotFoundError(f"sweep folder {path.parent} is not visible on worker {os.uname().nodename} "
                                    f"(a Dask cluster needs a file system shared with the sweep folder)")
        cfg = make_config(task["config"])
        state = run_file_state(path, task["config"])
        try:
            if state == "resumable":
                try:
                    run_training(cfg, str(path), resume=True, reporter=_StopReporter())
                except (RunFileError, OSError, KeyError) as exc:  # a damaged checkpoint: start over
                    out["note"] = f"resume failed ({exc}); restarted"
                    run_training(cfg, str(path), overwrite=True, reporter=_StopReporter())
            elif state == "fresh":
                run_training(cfg, str(path), overwrite=True, reporter=_StopReporter())
        except StopRequested as sig:
            with contextlib.suppress(Exception):
                out["epochs_done"] = _result_from_file(path)["epochs_done"]
            n = out["epochs_done"]
            out.update(status="interrupted", error=f"stopped by {sig} after {n} epoch{'s' if n != 1 else ''}"
                       + ("; resumes from there" if n else ""))
            return out
        out.update(_result_from_file(path))
        out["status"] = "complete"
    except Exception as exc:  # noqa: BLE001 - every failure is recorded in the index, not raised
        msg = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        out["error"] = f"{type(exc).__name__}: {msg}" if msg else type(exc).__name__
        import traceback

        out["traceback"] = traceback.format_exc(limit=8)
    return out


# ------------------------------------------------------------------------------------------------
# executors: local processes, Dask, in-process


@contextlib.contextmanager
def _thread_env(n: int):
    old = {k: os.environ.get(k) for k in _THREAD_ENV}
    for k in _THREAD_ENV:
        os.environ[k] = str(n)
    try:
        yield
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def _execute_local(tasks: list[dict], workers: int, guard: SignalGuard, on_result: Callable[[dict], None],
                   grace_s: float = 60.0) -> None:
    """ProcessPoolExecutor (spawn) with at most ``workers`` runs in flight; NUMBA_NUM_THREADS per worker."""
    import multiprocessing
    from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
    from concurrent.futures.process import BrokenProcessPool

    ctx = multiprocessing.get_context("spawn")
    todo = list(tasks)
    with _thread_env(tasks[0].get("numba_threads", 1) if tasks else 1):
        while todo:
            ex = ProcessPoolExecutor(max_workers=workers, mp_context=ctx, initializer=_worker_init)
            running: dict = {}
            broken = False
            stop_sent = None
            try:
                while todo or running:
                    if guard.stop and stop_sent is None:
                        stop_sent = time.monotonic()
                        for t in todo:
                            on_result({"row": t["row"], "status": "interrupted", "error": "not started",
                                       "epochs_done": 0, "finished": "", "not_started": True})
                        todo = []
                        _signal_workers(ex, signal.SIGTERM)
                    if stop_sent is not None and (guard.hard or time.monotonic() - stop_sent > grace_s):
                        _signal_workers(ex, signal.SIGKILL)
                    while todo and len(running) < workers and not guard.stop:
                        t = todo.pop(0)
                        running[ex.submit(run_point, t)] = t
                    if not running:
                        break
                    done, _ = wait(list(running), timeout=0.2, return_when=FIRST_COMPLETED)
                    for fut in done:
                        t = running.pop(fut)
                        try:
                            res = fut.result()
                        except BrokenProcessPool:
                            broken = True
                            res = {"row": t["row"], "status": "interrupted" if guard.stop else "failed",
                                   "error": "worker process died (killed or crashed; e.g. out of memory)",
                                   "epochs_done": 0, "finished": ""}
                        except Exception as exc:  # noqa: BLE001 - e.g. an unpicklable result
                            res = {"row": t["row"], "status": "failed", "error": f"{type(exc).__name__}: {exc}",
                                   "epochs_done": 0, "finished": ""}
                        on_result(res)
                    if broken:
                        for fut, t in list(running.items()):  # the whole pool is gone: its runs with it
                            on_result({"row": t["row"], "status": "interrupted" if guard.stop else "failed",
                                       "error": "worker process died (killed or crashed; e.g. out of memory)",
                                       "epochs_done": 0, "finished": ""})
                        running.clear()
                        break
            finally:
                if guard.stop or broken:
                    _signal_workers(ex, signal.SIGKILL if guard.hard else signal.SIGTERM)
                ex.shutdown(wait=True, cancel_futures=True)
            if guard.stop:
                break


def _signal_workers(ex, sig) -> None:
    procs = getattr(ex, "_processes", None) or {}
    for p in list(procs.values()):
        with contextlib.suppress(Exception):
            if p.is_alive():
                os.kill(p.pid, sig)


def connect_scheduler(address: str, timeout: float = 5.0):
    """A ``dask.distributed.Client`` on an existing scheduler; :class:`SweepError` (fast) if unreachable."""
    try:
        from distributed import Client
    except ImportError:
        raise SweepError("--scheduler needs dask.distributed, which is not installed: "
                         "pip install 'memsim[dask]' (or: pip install 'dask[distributed]')") from None
    try:
        return Client(address, timeout=timeout, set_as_default=False)
    except Exception as exc:  # noqa: BLE001 - OSError/TimeoutError/ValueError from distributed
        msg = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise SweepError(f"cannot reach the Dask scheduler at {address} within {timeout:g} s: {msg}") from None


def _execute_dask(tasks: list[dict], client, guard: SignalGuard, on_result: Callable[[dict], None], tag: str) -> None:
    from distributed import wait

    import uuid

    session = uuid.uuid4().hex[:8]  # a re-run never meets the keys of an earlier, cancelled one
    futures = {}
    for t in tasks:
        fut = client.submit(run_point, t, pure=False, key=f"memsim-sweep-{tag}-{session}-row{t['row']}")
        futures[fut] = t
    try:
        while futures:
            if guard.stop:
                client.cancel(list(futures))
                for t in futures.values():
                    on_result({"row": t["row"], "status": "interrupted", "error": "cancelled on the Dask cluster",
                               "epochs_done": 0, "finished": "", "not_started": True})
                futures.clear()
                break
            try:
                wait(list(futures), timeout=0.25, return_when="FIRST_COMPLETED")
            except Exception:  # noqa: BLE001 - distributed raises a TimeoutError when nothing finished
                pass
            for fut in [f for f in futures if f.done()]:
                t = futures.pop(fut)
                try:
                    res = fut.result()
                except Exception as exc:  # noqa: BLE001 - KilledWorker, CancelledError, ...
                    res = {"row": t["row"], "status": "failed", "error": f"{type(exc).__name__}: {exc}",
                           "epochs_done": 0, "finished": ""}
                on_result(res)
    finally:
        if futures:
            client.cancel(list(futures))


def _execute_inline(tasks: list[dict], guard: SignalGuard, on_result: Callable[[dict], None]) -> None:
    for i, t in enumerate(tasks):
        if guard.stop:
            for rest in tasks[i:]:
                on_result({"row": rest["row"], "status": "interrupted", "error": "not started", "epochs_done": 0,
                           "finished": "", "not_started": True})
            return
        res = run_point(t)
        if res["status"] == "interrupted" and not guard.stop:
            guard.stop = res["error"].rpartition(" ")[2] or "SIGINT"  # run_training's own guard took the signal
        on_result(res)


# ------------------------------------------------------------------------------------------------
# running a sweep


@dataclass
class SweepResult:
    out: Path
    total: int
    skipped: int  # finished before this call
    ran: int  # finished (complete or failed) in this call
    complete: int
    failed: int
    interrupted: int
    pending: int
    rows: list[dict]

    @property
    def ok(self) -> bool:
        return self.complete == self.total


class _Lock:
    def __init__(self, out: Path):
        self.path = out / LOCK_NAME
        self.fh = None

    def __enter__(self):
        import fcntl

        self.fh = open(self.path, "a+")
        try:
            fcntl.flock(self.fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            self.fh.seek(0)
            who = self.fh.read().strip()
            self.fh.close()
            raise SweepError(f"another memsim sweep is running in {self.path.parent}"
                             + (f" ({who})" if who else "")) from None
        self.fh.seek(0)
        self.fh.truncate()
        self.fh.write(f"pid {os.getpid()} on {os.uname().nodename} since {_now()}")
        self.fh.flush()
        return self

    def __exit__(self, *exc):
        import fcntl

        with contextlib.suppress(Exception):
            fcntl.flock(self.fh.fileno(), fcntl.LOCK_UN)
            self.fh.close()
        return False


def _spec_diff(old: dict, new: dict) -> str:
    parts = []
    ob, nb = old.get("base", {}), new.get("base", {})
    for k in sorted(set(ob) | set(nb)):
        if ob.get(k) != nb.get(k):
            parts.append(f"{k} {ob.get(k)!r} -> {nb.get(k)!r}")
    oa = [(a["key"], a["values"]) for a in old.get("axes", [])]
    na = [(a["key"], a["values"]) for a in new.get("axes", [])]
    if oa != na:
        fmt = lambda ax: "; ".join(f"{k}={','.join(display_value(x) for x in v)}" for k, v in ax) or "none"
        parts.append(f"axes [{fmt(oa)}] -> [{fmt(na)}]")
    if old.get("seeds") != new.get("seeds"):
        parts.append(f"seeds {old.get('seeds')} -> {new.get('seeds')}")
    return "; ".join(parts) or "format"


def _is_ours(out: Path) -> bool:
    return all(p.name in (RUNS_DIR, CARDS_DIR, LOCK_NAME) or p.name.startswith(INDEX_NAME) for p in out.iterdir())


def run_sweep(plan: SweepPlan, workers: int | None = None, scheduler: str | None = None, force: bool = False,
              reporter=None, connect_timeout: float = 5.0, numba_threads: int = 1, client=None) -> SweepResult:
    """Run every (point, seed) of ``plan`` not finished yet; see the module docstring.

    ``workers``: local worker processes (default: the CPU count, at most the runs to do; 0 runs
    in this process). ``scheduler``: address of an existing Dask scheduler (or pass ``client``).
    ``reporter`` (optional) gets ``start(total, done, todo, where)``, ``result(row, res, counts)``
    and ``close()``. Raises :class:`SweepInterrupted` after SIGINT/SIGTERM, :class:`SweepError`
    for a folder of another sweep (unless ``force``), a held folder or an unreachable scheduler.
    """
    out = plan.out
    if out.exists() and not out.is_dir():
        raise SweepError(f"{out} exists and is not a folder")
    index_path = out / INDEX_NAME
    old = None
    if index_path.exists():
        old = _read_index_file(index_path)
    elif out.is_dir() and any(out.iterdir()) and not _is_ours(out) and not force:
        raise SweepError(f"{out} is not empty and holds no memsim sweep ({INDEX_NAME}); choose a new folder "
                         f"or pass --force to write the sweep into it")
    fingerprint = plan.fingerprint
    if old is not None and old["attrs"].get("fingerprint") != fingerprint and not force:
        raise SweepError(f"{out} holds a sweep of another base config/axes ({_spec_diff(old['spec'], plan.spec)}); "
                         f"pass --force to replace it, or choose another --out")
    if scheduler is not None or client is not None:
        if client is None:
            client = connect_scheduler(scheduler, connect_timeout)
            own_client = True
        else:
            own_client = False
    else:
        own_client = False
    out.mkdir(parents=True, exist_ok=True)
    try:
        with _Lock(out):
            if old is not None and old["attrs"].get("fingerprint") != fingerprint:  # --force: start over
                for rel in old["columns"].get("path", []):
                    with contextlib.suppress(OSError):
                        (out / str(rel)).unlink()
                index_path.unlink()
                old = None
            for stale in out.glob(f"{INDEX_NAME}.tmp-*"):  # left by a sweep killed while writing its index
                with contextlib.suppress(OSError):
                    stale.unlink()
            created = str(old["attrs"].get("created")) if old is not None else _now()
            stored = _rows_from_index(old, plan) if old is not None else {}
            (out / RUNS_DIR).mkdir(exist_ok=True)
            for r in plan.runs:
                for rel, text in r.cards.items():
                    p = out / rel
                    if not p.exists() or p.read_text() != text:
                        p.parent.mkdir(exist_ok=True)
                        tmp = p.with_name(p.name + f".tmp-{os.getpid()}")
                        tmp.write_text(text)
                        os.replace(tmp, p)
            rows: list[dict] = []
            todo: list[PlannedRun] = []
            for r in plan.runs:
                row = dict(stored[r.row]) if r.row in stored else _row_from_plan(r, plan.axes)
                state = run_file_state(out / r.path, r.config)
                if state == "complete":
                    if row["status"] != "complete":
                        row.update(_result_from_file(out / r.path), status="complete", error="")
                else:
                    todo.append(r)
                    if row["status"] == "complete":  # the index said so but the file disagrees
                        row.update(status="pending", error="")
                rows.append(row)
            skipped = len(plan.runs) - len(todo)
            changed = old is None or [_cmp(r) for r in rows] != [_cmp(stored[k]) for k in sorted(stored)]
            if changed:
                write_index(out, plan.spec, fingerprint, plan.axes, rows, created)
            result = SweepResult(out, len(rows), skipped, 0, 0, 0, 0, 0, rows)
            if not todo:
                _count(result)
                return result
            if client is not None:
                try:
                    where = f"Dask scheduler {client.scheduler.address}"
                except Exception:  # noqa: BLE001 - only for the progress line
                    where = f"Dask scheduler {scheduler}"
            else:
                if workers is None:
                    workers = os.cpu_count() or 1
                workers = max(0, min(int(workers), len(todo)))
                where = f"{workers} local worker process{'es' if workers != 1 else ''}" if workers else "this process"
            if reporter:
                reporter.start(len(rows), skipped, len(todo), where)
            tasks = [{"row": r.row, "config": r.config, "path": str(out / r.path), "numba_threads": numba_threads}
                     for r in todo]

            def on_result(res: dict) -> None:
                row = rows[res["row"]]
                status = res["status"]
                quiet = bool(res.get("not_started"))
                if status == "interrupted":
                    # the file keeps its finished epochs: the next call resumes it (or starts it)
                    done = int(res.get("epochs_done", 0) or 0)
                    row.update(status="interrupted" if done else "pending", epochs_done=done,
                               error="" if quiet else res.get("error", ""), finished="")
                else:
                    row.update(status=status, error=res.get("error", "") if status == "failed" else "",
                               epochs_done=int(res.get("epochs_done", 0) or 0), finished=res.get("finished", ""))
                for m in METRIC_COLUMNS:
                    row[m] = float(res.get(m, math.nan)) if status == "complete" else math.nan
                if status in ("complete", "failed"):
                    result.ran += 1
                write_index(out, plan.spec, fingerprint, plan.axes, rows, created)
                _count(result)
                if reporter and not quiet:
                    reporter.result(row, res, result)

            with SignalGuard() as guard:
                try:
                    if client is not None:
                        _execute_dask(tasks, client, guard, on_result, fingerprint[:10])
                    elif workers == 0:
                        _execute_inline(tasks, guard, on_result)
                    else:
                        _execute_local(tasks, workers, guard, on_result)
                finally:
                    if reporter:
                        reporter.close()
            _count(result)
            if guard.stop:
                raise SweepInterrupted(guard.stop, result)
            return result
    finally:
        if own_client:
            with contextlib.suppress(Exception):
                client.close(timeout=5)


def _cmp(row: dict):
    return tuple((k, (None if isinstance(v, float) and math.isnan(v) else v)) for k, v in sorted(row.items())
                 if k != "axes")


def _count(result: SweepResult) -> None:
    st = [r["status"] for r in result.rows]
    result.complete = st.count("complete")
    result.failed = st.count("failed")
    result.interrupted = st.count("interrupted")
    result.pending = st.count("pending")


def sweep(axes, base: TrainConfig | dict | None = None, seeds: int | Sequence[int] = 1, out: str | Path = "sweep",
          **kwargs) -> SweepResult:
    """Plan and run a sweep in one call (Python API); ``kwargs`` go to :func:`run_sweep`.

    >>> sweep({"device.g_max": "log:1e-6:2e-5:3", "lr": [1000, 3000]},
    ...       base={"epochs": 2, "hidden": [20]}, seeds=2, out="sweeps/gmax")  # doctest: +SKIP
    """
    return run_sweep(plan_sweep(base, axes, seeds, out), **kwargs)


# ------------------------------------------------------------------------------------------------
# reading a sweep


class Sweep:
    """A sweep folder read back (:func:`open_sweep`).

    Attributes: ``path`` (folder), ``spec`` (base config, axes, seeds), ``axes`` (keys, grid
    order), ``axis_values`` (key -> list of the axis' values), ``scales`` (key -> list | linear |
    log), ``seeds``, ``base_config`` (dict), ``index`` (column -> numpy array, one entry per run:
    ``row``, ``point``, ``seed``, ``status``, ``error``, ``path``, ``epochs_done``, the final
    metrics ``test_accuracy`` ... and one column per axis key), ``attrs``.
    """

    def __init__(self, path: Path, data: dict):
        self.path = path
        self.attrs = data["attrs"]
        self.spec = data["spec"]
        self.base_config = dict(self.spec.get("base", {}))
        self.seeds = list(self.spec.get("seeds", []))
        self.axes = [a["key"] for a in data["axes"]]
        self.axis_values = {a["key"]: [_axis_value(v, a["kind"]) for v in a["values"]] for a in data["axes"]}
        self.scales = {a["key"]: a["scale"] for a in data["axes"]}
        self.axis_kinds = {a["key"]: a["kind"] for a in data["axes"]}
        self.index: dict[str, np.ndarray] = dict(data["columns"])
        for a in data["axes"]:
            self.index[a["key"]] = a["column"]

    # -- table -----------------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self.index["row"])

    def __repr__(self) -> str:
        c = self.counts
        return (f"<Sweep {self.path} axes={self.axes} seeds={self.seeds} runs={len(self)} "
                f"complete={c['complete']} failed={c['failed']}>")

    @property
    def counts(self) -> dict[str, int]:
        st = list(self.index["status"])
        return {s: st.count(s) for s in STATUSES}

    @property
    def complete(self) -> np.ndarray:
        """Boolean mask of the finished runs."""
        return np.asarray(self.index["status"]) == "complete"

    @property
    def shape(self) -> tuple[int, ...]:
        """Grid shape: one entry per axis, then the seeds."""
        return tuple(len(self.axis_values[k]) for k in self.axes) + (len(self.seeds),)

    def rows(self) -> list[dict]:
        """One dict per run (the index row, axis values by key)."""
        keys = list(self.index)
        return [{k: _py(self.index[k][i]) for k in keys} for i in range(len(self))]

    def row(self, i: int) -> dict:
        return {k: _py(v[i]) for k, v in self.index.items()}

    def where(self, status: str | None = None, **axis_values) -> np.ndarray:
        """Row numbers matching ``status`` and axis values; dotted keys via ``**{"device.g_max": 1e-5}``."""
        mask = np.ones(len(self), dtype=bool)
        if status is not None:
            mask &= np.asarray(self.index["status"]) == status
        for key, v in axis_values.items():
            if key not in self.axes:
                raise KeyError(f"no axis {key!r} (axes: {', '.join(self.axes)})")
            col = self.index[key]
            if isinstance(v, (tuple, list)) and len(v) == 1:
                v = v[0]
            mask &= np.isclose(col, float(v)) if col.dtype.kind == "f" else (col == display_value(v))
        return np.flatnonzero(mask)

    # -- runs ------------------------------------------------------------------------------
    def run_path(self, i: int) -> Path:
        return self.path / str(self.index["path"][i])

    def run(self, i: int):
        """The :class:`memsim.h5io.Run` of row ``i``."""
        from memsim.h5io import open_run

        return open_run(self.run_path(i))

    def runs(self, status: str | None = "complete") -> Iterator[tuple[dict, Any]]:
        """``(row, Run)`` for each run (of ``status``; ``None``: every run with a readable file)."""
        from memsim.h5io import RunFileError

        for i in range(len(self)):
            if status is not None and self.index["status"][i] != status:
                continue
            try:
                yield self.row(i), self.run(i)
            except RunFileError:
                if status is not None:
                    raise

    # -- grids -----------------------------------------------------------------------------
    def grid(self, metric: str = "test_accuracy") -> np.ndarray:
        """``metric`` as an array of :attr:`shape` (axes..., seeds); NaN where a run is not complete."""
        vals = np.where(self.complete, np.asarray(self.index[metric], dtype=float), np.nan)
        out = np.full(self.shape, np.nan)
        n_seeds = len(self.seeds)
        flat = out.reshape(-1, n_seeds)
        for i in range(len(self)):
            flat[int(self.index["point"][i]), self.seeds.index(int(self.index["seed"][i]))] = vals[i]
        return out

    def summary(self, metric: str = "test_accuracy") -> list[dict]:
        """Per grid point: axis values, mean/std/min/max of ``metric`` over the finished seeds, counts."""
        g = self.grid(metric).reshape(-1, len(self.seeds))
        status = np.asarray(self.index["status"])
        points = np.asarray(self.index["point"])
        out = []
        combos = list(itertools.product(*[self.axis_values[k] for k in self.axes])) if self.axes else [()]
        for p, combo in enumerate(combos):
            v = g[p][np.isfinite(g[p])]
            st = status[points == p]
            out.append({**dict(zip(self.axes, combo)), "point": p, "n": int(v.size),
                        "mean": float(v.mean()) if v.size else math.nan,
                        "std": float(v.std(ddof=1)) if v.size > 1 else (0.0 if v.size else math.nan),
                        "min": float(v.min()) if v.size else math.nan, "max": float(v.max()) if v.size else math.nan,
                        "failed": int((st == "failed").sum()), "pending": int(np.isin(st, ("pending", "interrupted")).sum())})
        return out

    def to_dataframe(self):
        """The index as a pandas DataFrame (needs pandas)."""
        import pandas as pd

        return pd.DataFrame({k: v for k, v in self.index.items()})


def _axis_value(v, kind: str):
    """Stored axis value -> Python: lists become tuples, one-number lists of numeric axes numbers."""
    if isinstance(v, list):
        if kind == "number" and len(v) == 1:
            return v[0]
        return tuple(v)
    return v


def _py(v):
    if isinstance(v, np.generic):
        return v.item()
    return v


def open_sweep(path: str | Path) -> Sweep:
    """Read a sweep folder (or its ``index.h5``); :class:`SweepError` if it is not one."""
    p = Path(path)
    if p.is_file() and p.name == INDEX_NAME:
        p = p.parent
    if not p.exists():
        raise SweepError(f"{p}: no such sweep folder")
    return Sweep(p, _read_index_file(p / INDEX_NAME))


def is_sweep_dir(path: str | Path) -> bool:
    p = Path(path)
    return (p.is_dir() and (p / INDEX_NAME).is_file()) or (p.is_file() and p.name == INDEX_NAME)
