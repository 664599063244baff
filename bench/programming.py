"""Programming throughput: device updates/s and pulses/s per memristor card and scheme.

A 1568x100 + 100x20 network (with its 100 + 20 bias conductances: 158,920 devices) gets random
desired updates ``dG = step * N(0, spread)`` (default spread 8: about 6.4 pulses per device and
update with the deterministic scheme); each row times ``--reps`` calls of ``Programmer.program``
after one warm-up call (compilation excluded). Plain script: ``python bench/programming.py``.
"""
from __future__ import annotations

import argparse
import time

import numba
import numpy as np

from memsim.devices.cards import available_cards, load_card
from memsim.programming import make_programmer

SHAPES = [(1568, 100), (100,), (100, 20), (20,)]


def bench(card, scheme, reps, spread, seed=0, **overrides):
    pr = make_programmer(card, scheme, SHAPES, seed=seed, **overrides)
    rng = np.random.default_rng(seed)
    params = [rng.uniform(pr.g_min + 0.3 * (pr.g_max - pr.g_min), pr.g_min + 0.7 * (pr.g_max - pr.g_min), sh)
              for sh in SHAPES]
    pr.initialize(params)
    step = 0.5 * (pr.step_up + pr.step_down)
    dgs = [[step * spread * rng.standard_normal(sh) for sh in SHAPES] for _ in range(4)]
    pr.program(params, dgs[0])  # warm-up (JIT)
    pulses = 0
    t0 = time.perf_counter()
    for r in range(reps):
        pulses += pr.program(params, dgs[r % 4])["pulses"]
    dt = time.perf_counter() - t0
    return pr.n_devices * reps / dt, pulses / dt, pulses / (pr.n_devices * reps)


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--reps", type=int, default=10)
    ap.add_argument("--spread", type=float, default=8.0, help="dG spread in nominal steps")
    ap.add_argument("--threads", type=int, default=None, help="numba threads (default: all)")
    args = ap.parse_args()
    if args.threads:
        numba.set_num_threads(args.threads)
    n_dev = sum(int(np.prod(s)) for s in SHAPES)
    print(f"network 1568x100 + 100x20 (+ biases): {n_dev} devices; numba threads: {numba.get_num_threads()}; "
          f"dG = step*N(0, {args.spread:g}); {args.reps} updates per row")
    print(f"{'card':<12} {'model':<11} {'scheme':<14} {'noise':<6} {'pulses/dev':>10} {'updates/s':>12} {'pulses/s':>12}")
    rows = []
    for name in available_cards("memristor")["memristor"]:
        card = load_card("memristor", name)
        rows.append((name, card.model, "deterministic", {}))
    rows.insert(0, ("softbounds", "softbounds", "deterministic", {"c2c_sigma": 0.0}))
    rows += [("softbounds", "softbounds", "stochastic", {}), ("softbounds", "softbounds", "ideal", {})]
    for name, model, scheme, ov in rows:
        card = load_card("memristor", name)
        ups, pps, ppd = bench(card, scheme, args.reps, args.spread, **ov)
        sigma = float(ov.get("c2c_sigma", card.params.get("c2c_sigma", 0.0)))
        print(f"{name:<12} {model:<11} {scheme:<14} {'c2c' if sigma > 0 else 'none':<6} {ppd:>10.2f} "
              f"{ups:>12.3e} {pps:>12.3e}")


if __name__ == "__main__":
    main()
