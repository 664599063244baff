"""The clock and the event queue of a training step (DESIGN.md section 2).

A training step is a sequence of timestamped events on one clock: the inputs switch, the nudge
turns on at ``+beta``, flips to ``-beta``, turns off, programming pulses are applied, the state is
read back. Between events the transient engine (:mod:`memsim.transient`) integrates the circuit.

Order
-----
Events pop in order of time, then of their kind's priority (:data:`PRIORITY`, lower first), then of
insertion. The priorities say what happens first when several things happen at the same instant:

==========  ========  ================================================================
priority    kind      why at this place
==========  ========  ================================================================
0           read_back observes the state reached *before* anything else changes at t
1           nudge_off the nudge of the finished phase is removed before new sources
2           program   pulses are applied with the network at rest (no nudge)
3           inputs    the new inputs are clamped
4           nudge_on  a nudge starts only once the inputs it responds to are there
5           nudge_flip +beta -> -beta after any nudge_on of the same instant
==========  ========  ================================================================

An event scheduled before the clock (``time < now``) is rejected with :class:`PastEventError`;
the clock never moves backwards.

Sources
-------
:class:`Ramp` is a source that switches from an old to a new value with a finite rise time
(linear), as a real DAC or switch would; ``rise_time = 0`` is an ideal step. Values may be scalars
(the nudge ``beta``) or arrays (the input drive currents). Units: seconds for times; the value's
own units (siemens for ``beta``, amperes for the input drive).
"""
from __future__ import annotations

import heapq
import itertools
import math
from dataclasses import dataclass, field
from typing import Any, Iterator

import numpy as np

KINDS = ("read_back", "nudge_off", "program", "inputs", "nudge_on", "nudge_flip")
PRIORITY = {k: i for i, k in enumerate(KINDS)}


class PastEventError(ValueError):
    """An event scheduled before the clock's current time."""


@dataclass(frozen=True)
class Event:
    """A timestamped event. ``data`` carries the kind's payload (e.g. ``drive0``, ``beta``)."""

    time: float  # s
    kind: str
    seq: int  # insertion order (ties at the same time and priority)
    rise_time: float = 0.0  # s: linear ramp of the source it switches (0: a step)
    data: dict[str, Any] = field(default_factory=dict, compare=False)

    @property
    def key(self) -> tuple[float, int, int]:
        return (self.time, PRIORITY[self.kind], self.seq)

    def __lt__(self, other: "Event") -> bool:
        return self.key < other.key


class Clock:
    """Simulated time (s). Moves forward only."""

    def __init__(self, start: float = 0.0):
        start = float(start)
        if not math.isfinite(start):
            raise ValueError(f"clock start must be finite, got {start!r} s")
        self.now = start

    def advance_to(self, t: float) -> None:
        t = float(t)
        if not t >= self.now:  # also catches NaN
            raise PastEventError(f"cannot move the clock back from {self.now:.6g} s to {t:.6g} s")
        self.now = t


class EventQueue:
    """Priority queue of :class:`Event` on a :class:`Clock` (``queue.now`` is the clock's time)."""

    def __init__(self, start: float = 0.0):
        self.clock = Clock(start)
        self._heap: list[Event] = []
        self._seq = itertools.count()

    @property
    def now(self) -> float:
        return self.clock.now

    def schedule(self, time: float, kind: str, rise_time: float = 0.0, **data) -> Event:
        """Add an event of ``kind`` at absolute ``time`` (s); returns it.

        Raises :class:`PastEventError` for a time before the clock and :class:`ValueError` for an
        unknown kind, a non-finite time or a negative rise time.
        """
        if kind not in PRIORITY:
            raise ValueError(f"unknown event kind {kind!r} (known: {', '.join(KINDS)})")
        time = float(time)
        if not math.isfinite(time):
            raise ValueError(f"event {kind!r}: time must be finite, got {time!r} s")
        if time < self.now:
            raise PastEventError(f"event {kind!r} at t = {time:.6g} s is in the past: the clock is at "
                                 f"{self.now:.6g} s")
        rise_time = float(rise_time)
        if not (rise_time >= 0.0 and math.isfinite(rise_time)):
            raise ValueError(f"event {kind!r}: rise time must be finite and >= 0 s, got {rise_time!r}")
        ev = Event(time, kind, next(self._seq), rise_time, dict(data))
        heapq.heappush(self._heap, ev)
        return ev

    def schedule_in(self, delay: float, kind: str, rise_time: float = 0.0, **data) -> Event:
        """Add an event ``delay`` seconds after the clock's current time."""
        delay = float(delay)
        if delay < 0:
            raise PastEventError(f"event {kind!r}: a negative delay ({delay:.6g} s) is in the past")
        return self.schedule(self.now + delay, kind, rise_time, **data)

    def peek(self) -> Event | None:
        """The next event (not removed), or None."""
        return self._heap[0] if self._heap else None

    @property
    def next_time(self) -> float:
        """Time (s) of the next event; ``inf`` when the queue is empty."""
        return self._heap[0].time if self._heap else math.inf

    def pop(self) -> Event:
        """Remove the next event and move the clock to its time."""
        if not self._heap:
            raise IndexError("pop from an empty event queue")
        ev = heapq.heappop(self._heap)
        self.clock.advance_to(ev.time)
        return ev

    def pop_due(self) -> list[Event]:
        """All events at the next event time, in order (the clock moves to that time)."""
        if not self._heap:
            return []
        t = self._heap[0].time
        out = []
        while self._heap and self._heap[0].time == t:
            out.append(self.pop())
        return out

    def advance_to(self, t: float) -> None:
        """Move the clock to ``t`` without popping; refuses to pass a pending event."""
        if t > self.next_time:
            ev = self._heap[0]
            raise PastEventError(f"cannot advance the clock to {t:.6g} s past the pending event "
                                 f"{ev.kind!r} at {ev.time:.6g} s")
        self.clock.advance_to(t)

    def __len__(self) -> int:
        return len(self._heap)

    def __bool__(self) -> bool:
        return bool(self._heap)

    def __iter__(self) -> Iterator[Event]:
        """The pending events in pop order (the queue is not changed)."""
        return iter(sorted(self._heap))


class Ramp:
    """A source switching linearly from ``old`` to ``new`` over ``[t0, t0 + rise_time]``.

    ``rise_time = 0`` is an ideal step at ``t0`` (the new value holds from ``t0`` on). Works for
    scalars and numpy arrays alike.
    """

    def __init__(self, old, new, t0: float = 0.0, rise_time: float = 0.0):
        if not (rise_time >= 0.0 and math.isfinite(rise_time)):
            raise ValueError(f"rise time must be finite and >= 0 s, got {rise_time!r}")
        self.old, self.new = old, new
        self.t0, self.rise_time = float(t0), float(rise_time)

    @classmethod
    def constant(cls, value) -> "Ramp":
        return cls(value, value, -math.inf, 0.0)

    @property
    def t_end(self) -> float:
        return self.t0 + self.rise_time

    def fraction(self, t: float) -> float:
        """How far the switch has gone at ``t``: 0 before ``t0``, 1 after ``t0 + rise_time``."""
        if t >= self.t_end:
            return 1.0
        if t < self.t0:
            return 0.0
        return (t - self.t0) / self.rise_time

    def __call__(self, t: float):
        a = self.fraction(t)
        if a == 1.0:
            return self.new
        if a == 0.0:
            return self.old
        return self.old + a * (self.new - self.old)

    def breakpoints(self) -> list[float]:
        """Times where the source's slope jumps (the stepper lands on them)."""
        if self.rise_time > 0.0 and math.isfinite(self.t0):
            return [self.t0, self.t_end]
        return []

    def is_constant_after(self, t: float) -> bool:
        return t >= self.t_end or (np.shape(self.old) == np.shape(self.new) and np.array_equal(self.old, self.new))
