"""Shared Numba options: every hot kernel in memsim is compiled with these.

``njit`` caches compiled machine code next to the source (``cache=True``) and uses
fast, IEEE-conforming arithmetic (no ``fastmath``: the solvers compare to 1e-9 V).
``pjit`` is the same with ``parallel=True`` for kernels that ``prange`` over a batch.
"""
from __future__ import annotations

import numba

JIT_OPTIONS = dict(cache=True, nogil=True)

njit = numba.njit(**JIT_OPTIONS)
pjit = numba.njit(parallel=True, **JIT_OPTIONS)

import contextlib

# Batches smaller than this run the ``prange`` kernels on one thread: waking the thread pool costs
# more than it saves there (measured with bench/equilibrium.py and the digits trainer on 2 cores).
SERIAL_BELOW = 32


@contextlib.contextmanager
def batch_threads(batch: int, serial_below: int = SERIAL_BELOW):
    """Run the enclosed parallel kernels on one thread when ``batch < serial_below``."""
    if batch >= serial_below:
        yield
        return
    n = numba.get_num_threads()
    numba.set_num_threads(1)
    try:
        yield
    finally:
        numba.set_num_threads(n)
