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
        "input_gain": 150.0,  # V (Scellier 2024 uses 100); the diodes then clip ~80% of the hidden nodes
        "batch_size": 8,
        "lr": [18000.0, 12000.0],  # input crossbar, output crossbar
        "lr_decay": 0.65,
        # softmax cross-entropy of d / 0.1 V, nudged towards targets set from the free phase's
        # outputs: 12.2% test error at epoch 10 vs 13.2% for the squared error (bench/RESULTS-fashion.md)
        "loss": "xent",
        "logit_scale": 0.1,
        "target_amplitude": 0.5,  # V: used with --loss mse (1 V: +0.5-0.9 points worse)
    },
}


def preset(name: str) -> dict:
    from memsim.config import ConfigError

    if name not in PRESETS:
        raise ConfigError(f"unknown preset {name!r} (known: {', '.join(sorted(PRESETS))})")
    return dict(PRESETS[name])
