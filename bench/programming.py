"""Programming throughput: device updates/s and pulses/s per memristor card and scheme.

A 1568x100 + 100x20 network (with its 100 + 20 bias conductances: 158,920 devices) gets random
desired updates ``dG = step * N(0, spread)`` (default spread 8: about 6.4 pulses per device and
update with the deterministic scheme); each row times ``--reps`` calls of ``Programmer.program``
(``program_outer`` for the rank-one row: one row/column pulse-train cycle per array) after one
warm-up call, so compilation is excluded. ``pulses/s`` and ``updates/s`` are wall-clock;
``pulses/cpu-s`` divides by the CPU time of all threads (the throughput of one busy core, which
other processes on the machine do not distort). Plain script: ``python bench/programming.py``.
"""
from __future__ import annotations

import argparse
import time

import numba
import numpy as np

from memsim.devices.cards import available_cards, load_card
from memsim.programming import make_programmer

SHAPES = [(1568, 100), (100,), (100, 20), (20,)]


def bench(card, scheme, reps, spread, seed=0, outer=False, **overrides):
    pr = make_programmer(card, scheme, SHAPES, seed=seed, **overrides)
    rng = np.random.default_rng(seed)
    span = pr.g_max - pr.g_min
    params = [rng.uniform(pr.g_min + 0.3 * span, pr.g_min + 0.7 * span, sh) for sh in SHAPES]
    pr.initialize(params)
    step = 0.5 * (pr.step_up + pr.step_down)
    if outer:
        # rank-one signals scaled so that E[pulses] matches the dG rows: lr*|x_i*d_j|/step ~ spread*0.8
        sig = [([rng.standard_normal(sh[0]) for sh in SHAPES],
                [rng.standard_normal(sh[1]) if len(sh) == 2 else None for sh in SHAPES]) for _ in range(4)]
        lr = spread * 0.8 * step / (0.8 * 0.8)

        def call(r):
            return pr.program_outer(params, sig[r % 4][0], sig[r % 4][1], lr)
    else:
        dgs = [[step * spread * rng.standard_normal(sh) for sh in SHAPES] for _ in range(4)]

        def call(r):
            return pr.program(params, dgs[r % 4])
    call(0)  # warm-up (JIT)
    pulses = 0
    t0, c0 = time.perf_counter(), time.process_time()
    for r in range(reps):
        pulses += call(r)["pulses"]
    dt, cpu = time.perf_counter() - t0, time.process_time() - c0
    return pr.n_devices * reps / dt, pulses / dt, pulses / (pr.n_devices * reps), pulses / cpu


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
    print(f"{'card':<12} {'model':<11} {'scheme':<20} {'c2c':<5} {'pulses/dev':>10} {'updates/s':>11} "
          f"{'pulses/s':>11} {'pulses/cpu-s':>12}")
    rows = [("softbounds", "deterministic", {"c2c_sigma": 0.0})]
    rows += [(name, "deterministic", {}) for name in available_cards("memristor")["memristor"]]
    rows += [("softbounds", "stochastic", {}), ("softbounds", "stochastic (outer)", {"outer": True}),
             ("softbounds", "ideal", {})]
    for name, scheme, ov in rows:
        card = load_card("memristor", name)
        ov = dict(ov)
        outer = ov.pop("outer", False)
        ups, pps, ppd, ppc = bench(card, scheme.split()[0], args.reps, args.spread, outer=outer, **ov)
        sigma = float(ov.get("c2c_sigma", card.params.get("c2c_sigma", 0.0)))
        noise = "-" if scheme == "ideal" else ("yes" if sigma > 0 else "no")
        print(f"{name:<12} {card.model:<11} {scheme:<20} {noise:<5} {ppd:>10.2f} "
              f"{ups:>11.3e} {pps:>11.3e} {ppc:>12.3e}")


if __name__ == "__main__":
    main()
