"""memsim: emulator of trainable analog neural networks trained with Equilibrium Propagation.

The engine lives in ``memsim`` (circuit, solvers, EqProp, training, HDF5), device models and
cards in ``memsim.devices``, the command line in ``memsim.cli``.
"""
__version__ = "0.1.0"
