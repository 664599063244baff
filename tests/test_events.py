"""The clock and event queue: ordering of simultaneous events, past events, source ramps."""
import math

import numpy as np
import pytest

from memsim.events import KINDS, PRIORITY, Clock, EventQueue, PastEventError, Ramp


def test_events_pop_in_time_order():
    q = EventQueue()
    q.schedule(3e-9, "nudge_off")
    q.schedule(1e-9, "nudge_on", beta=1e-7)
    q.schedule(2e-9, "nudge_flip", beta=-1e-7)
    assert [e.kind for e in q] == ["nudge_on", "nudge_flip", "nudge_off"]  # iteration does not consume
    assert len(q) == 3 and q.next_time == 1e-9
    out = [q.pop() for _ in range(3)]
    assert [e.time for e in out] == [1e-9, 2e-9, 3e-9]
    assert q.now == 3e-9 and not q and q.next_time == math.inf
    assert out[0].data == {"beta": 1e-7}


def test_simultaneous_events_follow_kind_priority_then_insertion():
    q = EventQueue()
    t = 5e-9
    # inserted in the reverse of the documented order, two of one kind
    q.schedule(t, "nudge_flip", beta=-1.0)
    q.schedule(t, "nudge_on", beta=1.0)
    q.schedule(t, "inputs", drive0="second")
    q.schedule(t, "inputs", drive0="first-inserted-later")
    q.schedule(t, "program")
    q.schedule(t, "nudge_off")
    q.schedule(t, "read_back")
    q.schedule(t + 1e-12, "read_back")  # later time loses to any kind at t
    due = q.pop_due()
    assert [e.kind for e in due] == ["read_back", "nudge_off", "program", "inputs", "inputs", "nudge_on", "nudge_flip"]
    assert [e.data["drive0"] for e in due if e.kind == "inputs"] == ["second", "first-inserted-later"]
    assert list(PRIORITY) == list(KINDS)
    assert [e.kind for e in q.pop_due()] == ["read_back"]
    assert q.pop_due() == []


def test_event_in_the_past_is_rejected_clearly():
    q = EventQueue(start=1e-6)
    q.schedule(1e-6, "inputs")  # now is allowed
    with pytest.raises(PastEventError, match=r"'nudge_on' at t = 5e-07 s is in the past.*1e-06 s"):
        q.schedule(5e-7, "nudge_on", beta=1.0)
    q.pop()
    q.schedule(2e-6, "nudge_off")
    q.pop()
    with pytest.raises(PastEventError, match="in the past"):
        q.schedule(1.5e-6, "read_back")
    with pytest.raises(PastEventError, match="negative delay"):
        q.schedule_in(-1e-9, "read_back")
    ev = q.schedule_in(1e-9, "read_back")
    assert ev.time == pytest.approx(2e-6 + 1e-9)


def test_bad_events_and_clock_moves():
    q = EventQueue()
    with pytest.raises(ValueError, match="unknown event kind 'nudge'"):
        q.schedule(0.0, "nudge")
    with pytest.raises(ValueError, match="finite"):
        q.schedule(math.nan, "inputs")
    with pytest.raises(ValueError, match="rise time"):
        q.schedule(0.0, "inputs", rise_time=-1e-9)
    q.schedule(1e-9, "nudge_on", beta=1.0)
    q.advance_to(5e-10)
    assert q.now == 5e-10
    with pytest.raises(PastEventError, match="past the pending event 'nudge_on'"):
        q.advance_to(2e-9)
    c = Clock(1.0)
    with pytest.raises(PastEventError, match="back"):
        c.advance_to(0.5)
    with pytest.raises(IndexError):
        EventQueue().pop()


def test_ramp_is_linear_between_its_corners():
    r = Ramp(np.array([0.0, 2.0]), np.array([1.0, 0.0]), t0=1e-9, rise_time=2e-9)
    np.testing.assert_array_equal(r(0.0), [0.0, 2.0])
    np.testing.assert_allclose(r(2e-9), [0.5, 1.0])
    np.testing.assert_array_equal(r(r.t_end), [1.0, 0.0])  # exactly the new value from the corner on
    np.testing.assert_array_equal(r(1.0), [1.0, 0.0])
    assert r.breakpoints() == pytest.approx([1e-9, 3e-9]) and r.t_end == pytest.approx(3e-9)
    step = Ramp(0.0, 1e-7, t0=5e-9)
    assert step(5e-9 - 1e-18) == 0.0 and step(5e-9) == 1e-7 and step.breakpoints() == []
    const = Ramp.constant(3.0)
    assert const(-1.0) == 3.0 and const.breakpoints() == [] and const.t_end == -math.inf
    with pytest.raises(ValueError, match="rise time"):
        Ramp(0.0, 1.0, 0.0, -1.0)
