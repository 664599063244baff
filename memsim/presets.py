"""Named config presets (``memsim train --preset NAME``): tuned defaults for known experiments.

A preset is a mapping of config fields; flags and config files given with it override it.
"""
from __future__ import annotations

PRESETS: dict[str, dict] = {
    # the bundled default: 8x8 digits, 128-100-20, ~97% test accuracy in ~10 s on 2 cores
    "digits": {},
    # Kendall et al. (2020) at full size: 784 features -> 1568 input nodes, 100 hidden, 20 output
    # nodes (10 classes), MNIST or Fashion-MNIST (tuned on Fashion-MNIST; see bench/RESULTS-fashion.md)
    "kendall2020": {
        "hidden": [100],
        "input_gain": 100.0,  # V, as Scellier (2024); the diodes then clip ~90% of the hidden nodes
        "batch_size": 8,
        "lr": [6000.0, 2000.0],  # input crossbar, output crossbar (the output layer needs less)
        "lr_decay": 0.75,
        "target_amplitude": 0.5,  # V: the differential outputs reach it easily (1 V: +0.5-0.9 points worse)
    },
}


def preset(name: str) -> dict:
    from memsim.config import ConfigError

    if name not in PRESETS:
        raise ConfigError(f"unknown preset {name!r} (known: {', '.join(sorted(PRESETS))})")
    return dict(PRESETS[name])
