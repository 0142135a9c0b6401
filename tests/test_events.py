"""`EventLog`: positions, replay after an id, trimming by position, and where trimmed history ends."""

from __future__ import annotations

from datetime import UTC, datetime

import orjson
import pytest

from metricstream import sse
from metricstream.events import GENESIS_ID, Event, EventLog, RetainedLog
from metricstream.ids import new_id
from metricstream.models import METRIC_CREATED, READING_CREATED, Metric, MetricReading


def event(created: float) -> Event:
    return Event.create(METRIC_CREATED, Metric(new_id(), "m"), created)


def log_of(*created: float, ttl: float = 60.0) -> tuple[EventLog, list[Event]]:
    log = EventLog(ttl)
    events = [event(at) for at in created]
    log.extend(events)
    return log, events


def test_positions_and_replay_after_an_id() -> None:
    log, events = log_of(1, 2, 3)
    assert (log.base, log.head, len(log)) == (0, 3, 3)
    assert log.position_id == events[-1].id
    assert log.position_after(events[0].id) == 1
    assert log.between(1, log.head) == events[1:]
    assert log.position_after(GENESIS_ID) == 0  # nothing trimmed yet: the nil id is the beginning
    assert log.position_after("no-such-id") is None


def test_an_empty_log_stands_at_genesis() -> None:
    log = EventLog(60)
    assert log.position_id == GENESIS_ID
    assert log.position_after(GENESIS_ID) == 0


def test_trim_goes_oldest_first_and_stops_at_the_first_event_within_the_ttl() -> None:
    # created times after a wall clock stepped back: 941 and 942 sit behind 1001 in the log
    log, events = log_of(1000, 1001, 941, 942, 990)
    assert log.trim(now=1005) == 0  # 1000 is within 60 s of 1005: nothing before it may go
    assert log.position_after(events[1].id) == 2
    assert log.between(2, log.head) == events[2:]  # 941 and 942 are replayed, not skipped
    # 941, 942 and 990 are past the TTL, but 1000 before them is not: they stay, no gap opens
    assert log.trim(now=1050.5) == 0
    assert log.trim(now=1061) == 1  # 1000 goes; 1001 is within the TTL and stops the trim
    assert log.between(log.base, log.head) == events[1:]
    assert log.trim(now=1100) == 4
    assert log.position_id == events[-1].id


def test_an_id_trimmed_last_still_resumes_without_loss() -> None:
    log, events = log_of(0, 1)
    assert log.trim(now=1000) == 2
    assert len(log) == 0
    assert log.position_id == events[1].id  # the last trimmed event still marks the head
    assert log.position_after(events[1].id) == log.head
    newer = event(1000)
    log.append(newer)
    # The quiet-stream case: the newest event expired, then a new one came. Nothing was lost.
    assert log.position_after(events[1].id) == log.base
    assert log.between(log.position_after(events[1].id) or 0, log.head) == [newer]
    assert log.position_after(events[0].id) is None  # an older id missed events[1]: reset
    assert log.position_after(GENESIS_ID) is None  # history before the log is gone


def test_restore_keeps_order_and_the_truncation() -> None:
    stored = [event(1), event(2)]
    log = EventLog(60)
    log.restore(RetainedLog(stored, truncated=True, marks=[]))
    assert log.position_after(stored[0].id) == 1
    assert log.position_after(GENESIS_ID) is None
    fresh = EventLog(60)
    fresh.restore(RetainedLog(stored, truncated=False, marks=[]))
    assert fresh.position_after(GENESIS_ID) == 0


def test_forget_resets_every_known_id_and_the_new_position_resumes() -> None:
    log, events = log_of(1, 2)
    marker = new_id()
    log.forget(marker)
    assert all(log.position_after(e.id) is None for e in events)
    assert log.position_after(GENESIS_ID) is None
    assert log.position_id == marker
    after = event(3)
    log.append(after)
    assert log.position_after(marker) == log.base  # a client told `reset` resumes from its new id


@pytest.mark.parametrize("name", ["cpu", 'quote " and \\ and\nnewline', "ünïcödé ✓", "\u2028 \r\n"])
def test_an_event_holds_its_frame_once_and_reads_its_body_back(name: str) -> None:
    metric = Metric(new_id(), name, None)
    reading = MetricReading(new_id(), metric.id, 2.5, datetime(2026, 1, 1, tzinfo=UTC))
    for type, subject in ((METRIC_CREATED, metric), (READING_CREATED, reading)):
        event = Event.create(type, subject, 5.0)
        assert event.body == orjson.dumps(subject.to_dict())
        assert event.frame == sse.encode_event(event.body.decode(), event=type, id=event.id)
        restored = Event.restore(event.id, type, event.metric_id, event.body, 5.0)
        assert restored == event
        assert restored.frame == event.frame


def test_an_event_that_cannot_be_one_data_line_is_refused() -> None:
    with pytest.raises(ValueError, match="one SSE data line"):
        Event.restore(new_id(), READING_CREATED, new_id(), b'{"a":\n1}', 0.0)
    with pytest.raises(ValueError, match="one SSE data line"):
        Event.restore("id\nevent: forged", READING_CREATED, new_id(), b"{}", 0.0)
