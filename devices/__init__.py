"""Device models (Numba kernels on floats and arrays) and named device cards.

Public names:

- :mod:`memsim.devices.diode` - Shockley diode with series resistance: current, conductance, co-content.
- :mod:`memsim.devices.amplifier` - bidirectional amplifier transfer (gain, offset, saturation).
- :mod:`memsim.devices.pulse_models` - memristor pulse models: state, conductance window, pulses.
- :mod:`memsim.devices.cards` - TOML device cards (``devices/cards/*.toml``), loading and validation.
"""
from .cards import (
    AmplifierCard,
    CardError,
    DiodeCard,
    MemristorCard,
    available_cards,
    load_card,
)

__all__ = [
    "AmplifierCard",
    "CardError",
    "DiodeCard",
    "MemristorCard",
    "available_cards",
    "load_card",
]
