"""The run configuration: one validated schema shared by the command line and config files.

Every field has a unit and an allowed range; :func:`validate` checks them all (and the cross-field
rules) before any work starts, and raises :class:`ConfigError` naming the field.
"""
from __future__ import annotations

import dataclasses
import json
import math
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from memsim.cost import COSTS


class ConfigError(ValueError):
    """A configuration value out of range, of the wrong type, or inconsistent with another."""


@dataclass
class TrainConfig:
    # data
    dataset: str = "digits"  # digits | mnist | fashion-mnist
    data_dir: str | None = None  # folder with IDX files (mnist, fashion-mnist)
    train_limit: int = 0  # use only the first N training samples (0: all)
    test_limit: int = 0  # use only the first N test samples (0: all)
    # network
    hidden: tuple[int, ...] = (100,)  # hidden nodes per hidden layer
    input_gain: float = 24.0  # V: inputs are +-input_gain*x (large enough that the diodes clip)
    bias_voltage: float = 1.0  # V: bias rails +-bias_voltage
    v_lo: float = -0.5  # V: lower diode rail
    v_hi: float = 0.5  # V: upper diode rail
    target_amplitude: float = 1.0  # V: differential output target of the true class (loss "mse")
    loss: str = "mse"  # mse | xent: the output cost (memsim.cost); xent nudges towards d - dL/dd
    logit_scale: float = 0.1  # V: xent's softmax acts on d / logit_scale
    temperature: float = 300.15  # K
    diode: str = "1n4148"  # diode card
    amplifier: str = "ebana10"  # amplifier card (used between hidden layers only)
    memristor: str = "ideal"  # memristor card (conductance bounds, pulse model)
    init_scale: float = 0.5  # initial conductances uniform in [g_min, g_min + init_scale*(g_max - g_min)]
    # learning
    epochs: int = 10
    batch_size: int = 4
    lr: tuple[float, ...] = (3000.0,)  # per crossbar (one value for all): dG = -lr * u^2 * dLoss/dG, u = conductance_unit
    lr_decay: float = 0.75  # learning-rate factor per epoch
    beta: float = 0.0  # S: nudge strength (0: 0.1 x conductance_unit, i.e. 0.1 uS for the ideal card)
    eqprop_mode: str = "centred"  # centred | positive | negative
    gradient_sign: float = 1.0  # -1 flips the update (a broken trainer, for tests)
    conductance_unit: float = 0.0  # S: unit of the learning rate (0: the memristor card's g_max / 20, 1 uS for ideal)
    # solver
    engine: str = "dc"  # dc: jump to settled states | transient: settle each phase in time (issue 3)
    capacitance: float = 1e-12  # F: node capacitance to ground (transient engine, traces)
    tol: float = 1e-9  # V: sweep-to-sweep change that ends a solve
    max_sweeps: int = 2000
    # programming
    programming: str = "ideal"  # ideal | deterministic | stochastic
    dG_step: float = 0.0  # S: conductance step one pulse is assumed to make (0: the card's nominal step)
    n_max: int = 100  # pulses per device and update, at most
    carry_residue: bool = True  # keep the sub-step remainder of an update for the next one
    drift_time: float = 0.0  # s: retention time between epochs (the card's drift model)
    # bookkeeping
    seed: int = 0
    snapshot_every: int = 0  # epochs between conductance snapshots (0: none)
    checkpoint_every: int = 0  # batches between mid-epoch checkpoints (0: at the end of each epoch only)
    trace: int = 0  # samples whose phase voltages are saved each epoch

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["hidden"] = list(self.hidden)
        d["lr"] = list(self.lr)
        return d

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)


FIELDS = {f.name: f for f in dataclasses.fields(TrainConfig)}

# (low, high, inclusive-low) ranges for numeric fields
RANGES: dict[str, tuple[float, float, bool]] = {
    "train_limit": (0, math.inf, True),
    "test_limit": (0, math.inf, True),
    "input_gain": (0, 1e3, False),
    "bias_voltage": (0, 1e3, True),
    "target_amplitude": (0, 1e3, False),
    "logit_scale": (0, 1e3, False),
    "temperature": (0, 1e4, False),
    "init_scale": (0, 1, False),
    "epochs": (0, 1e6, True),
    "batch_size": (1, 1e7, True),
    "lr_decay": (0, 10, False),
    "beta": (0, 1, True),
    "conductance_unit": (0, 1, True),
    "tol": (0, 1, False),
    "capacitance": (0, 1, False),
    "max_sweeps": (1, 1e9, True),
    "seed": (0, 2**63 - 1, True),
    "snapshot_every": (0, 1e9, True),
    "checkpoint_every": (0, 1e12, True),
    "trace": (0, 1e6, True),
    "dG_step": (0, 1, True),
    "n_max": (1, 1e9, True),
    "drift_time": (0, 1e12, True),
}
CHOICES = {
    "dataset": ("digits", "mnist", "fashion-mnist"),
    "eqprop_mode": ("centred", "positive", "negative"),
    "loss": COSTS,
    "engine": ("dc", "transient"),
    "programming": ("ideal", "deterministic", "stochastic"),
    "gradient_sign": (1.0, -1.0),
}


def _coerce(name: str, value: Any) -> Any:
    f = FIELDS[name]
    default = f.default if f.default is not dataclasses.MISSING else None
    try:
        if isinstance(default, tuple):
            if isinstance(value, str):
                value = [v for v in value.replace(",", " ").split()]
            elif not isinstance(value, (list, tuple)):
                value = [value]
            elem = type(default[0])
            return tuple(_num(elem, v, name) for v in value)
        if isinstance(default, bool):
            if isinstance(value, str) and value.strip().lower() in ("true", "yes", "on", "1", "false", "no", "off", "0"):
                return value.strip().lower() in ("true", "yes", "on", "1")
            if isinstance(value, bool) or value in (0, 1):
                return bool(value)
            raise ConfigError(f"config field {name!r} must be true or false, got {value!r}")
        if isinstance(default, (int, float)) and not isinstance(default, bool):
            return _num(type(default), value, name)
        if name == "data_dir":
            return None if value in (None, "") else str(value)
        if isinstance(default, str):
            if not isinstance(value, str):
                raise ConfigError(f"config field {name!r} must be a string, got {value!r}")
            return value
    except (TypeError, ValueError) as exc:
        if isinstance(exc, ConfigError):
            raise
        raise ConfigError(f"config field {name!r}: cannot use {value!r} ({exc})") from None
    return value


def _num(kind, v, name):
    if isinstance(v, bool):
        raise ConfigError(f"config field {name!r} must be a number, got {v!r}")
    if kind is int:
        fv = float(v)
        if not math.isfinite(fv) or fv != int(fv):
            raise ConfigError(f"config field {name!r} must be an integer, got {v!r}")
        return int(fv)
    fv = float(v)
    return fv


def make_config(values: dict[str, Any] | None = None, base: TrainConfig | None = None) -> TrainConfig:
    """A validated config from ``base`` (defaults) with ``values`` (field -> value) applied."""
    cfg = dataclasses.replace(base) if base is not None else TrainConfig()
    for key, value in (values or {}).items():
        if key not in FIELDS:
            known = ", ".join(sorted(FIELDS))
            raise ConfigError(f"unknown config field {key!r} (known: {known})")
        if value is None and key != "data_dir":
            continue
        setattr(cfg, key, _coerce(key, value))
    validate(cfg)
    return cfg


def load_config_file(path: str | Path) -> dict[str, Any]:
    """Field values from a TOML file (top-level keys, or a ``[train]`` table)."""
    try:
        data = tomllib.loads(Path(path).read_text())
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"config file {path}: cannot be read ({exc})") from None
    return dict(data.get("train", data))


def validate(cfg: TrainConfig) -> TrainConfig:
    """Check every field's type and range and the cross-field rules; raise ConfigError."""
    for name, (lo, hi, inclusive) in RANGES.items():
        v = getattr(cfg, name)
        if not isinstance(v, (int, float)) or isinstance(v, bool) or math.isnan(v):
            raise ConfigError(f"config field {name!r} must be a number, got {v!r}")
        ok = (v >= lo if inclusive else v > lo) and v <= hi
        if not ok:
            lo_s = f"[{lo:g}" if inclusive else f"({lo:g}"
            raise ConfigError(f"config field {name!r} = {v!r} is out of range {lo_s}, {hi:g}]")
    for name, choices in CHOICES.items():
        if getattr(cfg, name) not in choices:
            raise ConfigError(f"config field {name!r} = {getattr(cfg, name)!r}; allowed: {', '.join(map(str, choices))}")
    if not cfg.hidden or any(h <= 0 for h in cfg.hidden):
        raise ConfigError(f"config field 'hidden' needs positive layer sizes, got {list(cfg.hidden)}")
    if not cfg.lr or any(not (math.isfinite(x) and x >= 0) for x in cfg.lr):
        raise ConfigError(f"config field 'lr' needs finite non-negative learning rates, got {list(cfg.lr)}")
    n_crossbars = len(cfg.hidden) + 1
    if len(cfg.lr) not in (1, n_crossbars):
        raise ConfigError(f"config field 'lr' has {len(cfg.lr)} values; give 1 or one per crossbar ({n_crossbars})")
    for name in ("v_lo", "v_hi", "input_gain", "bias_voltage"):
        if not math.isfinite(getattr(cfg, name)):
            raise ConfigError(f"config field {name!r} must be finite")
    if not cfg.v_lo < cfg.v_hi:
        raise ConfigError(f"config fields 'v_lo' ({cfg.v_lo} V) must be below 'v_hi' ({cfg.v_hi} V)")
    return cfg


def learning_rates(cfg: TrainConfig) -> list[float]:
    """One learning rate per crossbar."""
    n = len(cfg.hidden) + 1
    return list(cfg.lr) * n if len(cfg.lr) == 1 else list(cfg.lr)
