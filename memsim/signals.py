"""SIGINT/SIGTERM as flags, so long work (a training run, a sweep) stops at a clean point."""
from __future__ import annotations

import signal
import threading


class SignalGuard:
    """Within the ``with`` block, SIGINT and SIGTERM set ``stop`` to the signal's name instead of
    raising; a second signal also sets ``hard`` (stop now). Outside the main thread it does nothing
    (Python delivers signals to the main thread only)."""

    def __init__(self):
        self.stop: str | None = None
        self.hard = False
        self._old = {}

    def __enter__(self):
        if threading.current_thread() is not threading.main_thread():
            return self

        def handler(signum, frame):
            if self.stop:
                self.hard = True
            self.stop = signal.Signals(signum).name

        for sig in (signal.SIGINT, signal.SIGTERM):
            self._old[sig] = signal.signal(sig, handler)
        return self

    def __exit__(self, *exc):
        for sig, old in self._old.items():
            signal.signal(sig, old)
        return False
