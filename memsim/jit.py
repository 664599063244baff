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
