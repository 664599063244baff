"""Named device cards: TOML files in ``devices/cards/`` read with :mod:`tomllib`.

A card is one part's parameters plus the source they come from. Every card has the keys
``kind`` (``"diode"``, ``"amplifier"`` or ``"memristor"``), ``name``, ``source`` and the
parameters of its kind (SI units: amperes, ohms, volts, siemens, seconds). A card can be named
(``"1n4148"``, looked up in ``devices/cards/<kind>_<name>.toml``) or given as a path to a file.

Bad cards raise :class:`CardError` with a message naming the card and the field.
"""
from __future__ import annotations

import dataclasses
import math
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

CARD_DIR = Path(__file__).resolve().parent / "cards"
KINDS = ("diode", "amplifier", "memristor")


class CardError(ValueError):
    """A device card that is missing, unreadable or has a bad field."""


@dataclass(frozen=True)
class DiodeCard:
    """Shockley diode: ``I = Is*(exp(Vd/(n*Vt)) - 1)`` with series resistance ``r_s``."""

    name: str
    source: str
    saturation_current: float  # A
    emission_coefficient: float  # dimensionless
    series_resistance: float = 0.0  # ohm

    def check(self):
        _positive(self, "saturation_current")
        _positive(self, "emission_coefficient")
        _non_negative(self, "series_resistance")


@dataclass(frozen=True)
class AmplifierCard:
    """Bidirectional amplifier: forward VCVS ``u = clip(A*h + V_os, +-V_sat)``, backward CCCS ``A_b``."""

    name: str
    source: str
    gain: float  # V/V
    backward_gain: float  # A/A
    offset: float = 0.0  # V
    saturation: float = math.inf  # V
    time_constant: float = 0.0  # s, single-pole bandwidth (0: instantaneous)

    def check(self):
        _positive(self, "gain")
        _positive(self, "backward_gain")
        _finite(self, "offset")
        _positive(self, "saturation", allow_inf=True)
        _non_negative(self, "time_constant")


@dataclass(frozen=True)
class MemristorCard:
    """Programmable resistor: conductance bounds and the pulse model's parameters."""

    name: str
    source: str
    g_min: float  # S
    g_max: float  # S
    model: str = "linear"
    params: dict[str, Any] = field(default_factory=dict)

    def check(self):
        _non_negative(self, "g_min")
        _positive(self, "g_max")
        if not self.g_min < self.g_max:
            raise CardError(
                f"memristor card {self.name!r}: g_min ({self.g_min:g} S) must be below g_max ({self.g_max:g} S)"
            )
        # the pulse model and its parameters (models, keys and ranges: devices/pulse_models.py)
        from .pulse_models import check_card

        check_card(self)


CARD_TYPES = {"diode": DiodeCard, "amplifier": AmplifierCard, "memristor": MemristorCard}


def _value(card, name):
    return getattr(card, name)


def _finite(card, name):
    v = _value(card, name)
    if not isinstance(v, (int, float)) or isinstance(v, bool) or not math.isfinite(v):
        raise CardError(f"{_kind(card)} card {card.name!r}: field {name!r} must be a finite number, got {v!r}")


def _positive(card, name, allow_inf=False):
    v = _value(card, name)
    ok = isinstance(v, (int, float)) and not isinstance(v, bool) and v > 0 and (allow_inf or math.isfinite(v))
    if not ok:
        raise CardError(f"{_kind(card)} card {card.name!r}: field {name!r} must be > 0, got {v!r}")


def _non_negative(card, name):
    v = _value(card, name)
    ok = isinstance(v, (int, float)) and not isinstance(v, bool) and v >= 0 and math.isfinite(v)
    if not ok:
        raise CardError(f"{_kind(card)} card {card.name!r}: field {name!r} must be >= 0, got {v!r}")


def _kind(card):
    for k, t in CARD_TYPES.items():
        if isinstance(card, t):
            return k
    return "device"


def available_cards(kind: str | None = None) -> dict[str, list[str]]:
    """Names of the bundled cards, by kind."""
    out: dict[str, list[str]] = {k: [] for k in KINDS}
    for p in sorted(CARD_DIR.glob("*.toml")):
        k, _, name = p.stem.partition("_")
        if k in out:
            out[k].append(name)
    return out if kind is None else {kind: out[kind]}


def card_from_dict(kind: str, data: dict, origin: str = "<dict>"):
    """Build and validate a card of ``kind`` from a mapping (as read from TOML or HDF5)."""
    if kind not in CARD_TYPES:
        raise CardError(f"unknown device kind {kind!r} (known: {', '.join(KINDS)})")
    cls = CARD_TYPES[kind]
    data = dict(data)
    if data.pop("kind", kind) != kind:
        raise CardError(f"card {origin}: is not a {kind} card")
    names = {f.name for f in dataclasses.fields(cls)}
    if kind == "memristor":
        params = dict(data.pop("params", {}))
        for key in list(data):
            if key not in names:
                params[key] = data.pop(key)
        data["params"] = params
    unknown = sorted(set(data) - names)
    if unknown:
        raise CardError(f"{kind} card {origin}: unknown field(s) {', '.join(unknown)}")
    missing = [
        f.name
        for f in dataclasses.fields(cls)
        if f.name not in data and f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
    ]
    if missing:
        raise CardError(f"{kind} card {origin}: missing field(s) {', '.join(missing)}")
    try:
        card = cls(**data)
    except TypeError as exc:  # pragma: no cover - guarded above
        raise CardError(f"{kind} card {origin}: {exc}") from None
    card.check()
    return card


def load_card(kind: str, name_or_path: str | Path):
    """Load the card ``name_or_path`` of ``kind`` ("diode", "amplifier", "memristor").

    ``name_or_path`` is a bundled card name (``"1n4148"``) or a path to a ``.toml`` file.
    """
    if kind not in CARD_TYPES:
        raise CardError(f"unknown device kind {kind!r} (known: {', '.join(KINDS)})")
    p = Path(str(name_or_path))
    candidates = [p] if p.suffix == ".toml" else [CARD_DIR / f"{kind}_{name_or_path}.toml"]
    path = next((c for c in candidates if c.is_file()), None)
    if path is None:
        known = ", ".join(available_cards(kind)[kind])
        raise CardError(f"unknown {kind} card {str(name_or_path)!r} (bundled: {known}; or give a path to a .toml file)")
    try:
        data = tomllib.loads(path.read_text())
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise CardError(f"{kind} card {path}: cannot be read: {exc}") from None
    data.setdefault("name", path.stem.partition("_")[2] or path.stem)
    return card_from_dict(kind, data, origin=str(path))


def card_to_dict(card) -> dict:
    """The card as a plain mapping (for the run's config and HDF5 attributes)."""
    d = dataclasses.asdict(card)
    d["kind"] = _kind(card)
    return d
