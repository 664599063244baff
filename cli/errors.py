"""One place that turns the engine's known failures into one-line errors and non-zero exits."""
from __future__ import annotations

import functools

import click

from memsim.config import ConfigError
from memsim.datasets import DatasetError
from memsim.devices.cards import CardError
from memsim.h5io import RunFileError
from memsim.solve import ConvergenceError

KNOWN = (ConfigError, DatasetError, CardError, RunFileError, ConvergenceError, FileExistsError,
         FileNotFoundError, PermissionError, OSError, ValueError)


def fail(message: str, code: int = 2) -> None:
    click.echo(f"memsim: error: {message}", err=True)
    raise SystemExit(code)


def clean_errors(fn):
    """Decorator for commands: known errors become ``memsim: error: ...`` and exit status 2."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except click.exceptions.Exit:
            raise
        except KNOWN as exc:
            msg = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            fail(msg)
        except RuntimeError as exc:  # NumericalError and friends
            fail(str(exc) or type(exc).__name__)
        except MemoryError:
            fail("out of memory")

    return wrapper
