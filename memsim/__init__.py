"""memsim: emulator of trainable analog neural networks trained with Equilibrium Propagation.

The engine lives in ``memsim`` (circuit, solvers, EqProp, training, HDF5), device models and
cards in ``memsim.devices``, the command line in ``memsim.cli``.

Reading results (both import their modules on first use, so ``import memsim`` stays light)::

    import memsim

    run = memsim.open_run("runs/digits.h5")      # config, metrics (numpy), status, network()
    run.metrics["test_accuracy"]

    sw = memsim.open_sweep("sweeps/gmax")         # a sweep folder (memsim sweep --out)
    sw.axes, sw.axis_values, sw.seeds             # axis keys, their values, the seeds
    sw.index["test_accuracy"]                     # one entry per run (numpy), with status, path, axes
    sw.grid("test_accuracy")                      # array (axis 1, ..., axis n, seed); NaN: not finished
    sw.summary()                                  # per point: mean/std/min/max over the seeds
    sw.run(0)                                     # the run file of index row 0
"""
__version__ = "0.1.0"

__all__ = ["__version__", "open_run", "open_sweep"]


def open_run(path):
    """Read a run file (HDF5): a :class:`memsim.h5io.Run` with ``config``, ``metrics`` (numpy
    arrays, one entry per epoch), ``status``, ``seed``, ``network()`` and ``checkpoint()``.

    Raises :class:`memsim.h5io.RunFileError` for a missing, foreign or damaged file.
    """
    from memsim.h5io import open_run as _open_run

    return _open_run(path)


def open_sweep(path):
    """Read a sweep folder made by ``memsim sweep`` (or its ``index.h5``): a
    :class:`memsim.sweep.Sweep` with the index as numpy arrays (``index``: ``status``, ``seed``,
    ``path``, the final metrics and one column per axis key), the axes (``axes``,
    ``axis_values``), ``grid()``, ``summary()`` and per-run access (``run(i)``, ``runs()``).

    Raises :class:`memsim.sweep.SweepError` if the folder holds no sweep.
    """
    from memsim.sweep import open_sweep as _open_sweep

    return _open_sweep(path)
