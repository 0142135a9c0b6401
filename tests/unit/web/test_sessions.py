"""`FailureLimit` (`web/sessions.py`): wrong tokens remembered per address within a window, for a bounded
number of addresses. Sign-in over real HTTP: tests/e2e/test_session.py."""

from __future__ import annotations

from metricstream.clock import ManualClock
from metricstream.web.sessions import FailureLimit


def test_failures_are_remembered_for_a_bounded_number_of_addresses() -> None:
    clock = ManualClock()
    limit = FailureLimit(clock, limit=2, window=60, max_tracked=3)
    for address in ("a", "b", "c", "d"):
        limit.failed(address)
        limit.failed(address)
    assert limit.tracked == 3  # "a", whose last failure is oldest, was forgotten
    assert limit.retry_after("a") is None
    assert limit.retry_after("d") == 60
    clock.advance(30)
    assert limit.retry_after("d") == 30
    limit.failed("e")  # a failure sweeps out the addresses whose last failure is out of the window
    assert limit.tracked == 3
    clock.advance(30)
    assert limit.retry_after("d") is None
    limit.failed("e")
    assert limit.tracked == 1  # only "e" failed within the last 60 s
    limit.succeeded("e")
    assert limit.tracked == 0
