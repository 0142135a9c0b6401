"""`EventLog`: positions, replay after an id, trimming by position, and where trimmed history ends."""

from __future__ import annotations

import dataclasses
import json
import uuid
from datetime import UTC, datetime

import orjson
import pytest

from metricstream.domain.values import Metric, MetricReading
from metricstream.ids import new_id
from metricstream.stream import sse
from metricstream.stream.log import Event, EventLog, RetainedLog, StreamFilter, newest_of_each_kind
from metricstream.wire import GENESIS_ID, METRIC_CREATED, METRIC_DELETED, READING_CREATED

METRIC_ID = "01a21b32-2870-78a3-85f4-5b37387bfd17"  # a UUIDv7


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


# --- filtered streams: positions named by the newest event a filter wants, and marks ---------------------


def made(metric: Metric, created: float) -> Event:
    return Event.create(METRIC_CREATED, metric, created)


def reading(metric: Metric, created: float) -> Event:
    moment = datetime(2026, 1, 1, tzinfo=UTC)
    return Event.create(READING_CREATED, MetricReading(new_id(), metric.id, 1.0, moment), created)


def wanting(types: frozenset[str] | None, metric_id: str | None) -> StreamFilter:
    wanted = StreamFilter.of(types, metric_id)
    assert wanted is not None
    return wanted


def quiet_and_busy() -> tuple[EventLog, list[Event], StreamFilter, StreamFilter]:
    """a made, b made, a's reading, then b's three: filters for a's events and for metric_created."""
    a, b = Metric(new_id(), "a"), Metric(new_id(), "b")
    log = EventLog(60)
    events = [made(a, 0), made(b, 1), reading(a, 2), reading(b, 3), reading(b, 4), reading(b, 100)]
    log.extend(events)
    return log, events, wanting(None, a.id), wanting(frozenset({METRIC_CREATED}), None)


def test_a_filter_names_a_position_by_the_newest_event_it_wants() -> None:
    log, events, of_a, created = quiet_and_busy()
    assert log.name_for(log.head, of_a) == events[2].id
    assert log.name_for(2, of_a) == GENESIS_ID  # before a's reading: it wanted none (not a's creation)
    assert log.name_for(log.head, created) == events[1].id
    assert log.name_for(4, created) == events[1].id  # looked back from 4, past a reading it wants not
    assert StreamFilter.of(None, None) is None  # no filter: the position is the event it stands after
    assert StreamFilter.of(frozenset({METRIC_CREATED, READING_CREATED, METRIC_DELETED}), None) is None


def test_a_filtered_name_resumes_after_it_expired_until_an_event_it_wants_expires() -> None:
    log, events, of_a, created = quiet_and_busy()
    assert log.trim(now=70) == 5  # everything but b's last reading
    assert log.position_after(events[2].id) is None  # unfiltered, events after it are gone
    assert log.position_after(events[2].id, of_a) == log.base  # nothing a wants is gone
    assert log.position_after(events[1].id, created) == log.base
    assert log.position_after(events[0].id, created) is None  # b's creation came after it, and is gone
    assert log.position_after(GENESIS_ID, of_a) is None  # a's reading is gone
    assert log.name_for(log.head, of_a) == events[2].id  # the name outlives its event
    later = reading(Metric(events[2].metric_id, "a"), 200)
    log.append(later)
    assert log.name_for(log.head, of_a) == later.id
    assert log.position_after(events[2].id, of_a) == log.base  # `later` is still there: replayed
    log.trim(now=300)
    assert log.position_after(events[2].id, of_a) is None  # `later` expired unseen: reset
    assert log.position_after(later.id, of_a) == log.base


def test_a_filter_that_wanted_nothing_resumes_from_the_nil_id() -> None:
    log, _, _, _ = quiet_and_busy()
    deleted = wanting(frozenset({METRIC_DELETED}), None)
    assert log.name_for(log.head, deleted) == GENESIS_ID
    log.trim(now=1000)
    assert log.position_after(GENESIS_ID) is None  # unfiltered, every event before is gone
    assert log.position_after(GENESIS_ID, deleted) == log.base


def test_marks_are_the_newest_of_each_kind() -> None:
    _, events, _, _ = quiet_and_busy()
    marks = {(mark.type, mark.metric_id): (mark.seq, mark.id) for mark in newest_of_each_kind(events, 10)}
    a, b = events[0].metric_id, events[1].metric_id
    assert marks == {
        (READING_CREATED, b): (15, events[5].id),
        (READING_CREATED, ""): (15, events[5].id),
        (READING_CREATED, a): (12, events[2].id),
        (METRIC_CREATED, ""): (11, events[1].id),  # no metric's filter wants it: no mark per metric
    }


def test_restored_marks_resume_and_a_store_without_them_is_not_trusted() -> None:
    log, events, of_a, _ = quiet_and_busy()
    log.trim(now=70)
    a = events[0].metric_id
    retained = RetainedLog(events[5:], truncated=True, marks=newest_of_each_kind(events[:5], 1))
    restored = EventLog(60)
    restored.restore(retained)
    assert restored.position_after(events[2].id, of_a) == restored.base
    assert restored.name_for(restored.head, of_a) == events[2].id
    other = wanting(None, new_id())  # a metric with no events: it wanted none
    assert restored.position_after(GENESIS_ID, other) == restored.base
    # Trimmed by a release that kept no marks: what was trimmed is unknown, so nothing is taken on trust.
    unmarked = EventLog(60)
    unmarked.restore(RetainedLog(events[5:], truncated=True, marks=None))
    assert unmarked.position_after(GENESIS_ID, other) is None
    assert unmarked.position_after(events[2].id, of_a) is None
    assert unmarked.name_for(unmarked.head, wanting(None, a)) is None


def test_forget_drops_the_marks_and_its_id_names_a_filtered_start() -> None:
    log, events, of_a, _ = quiet_and_busy()
    log.trim(now=70)
    origin = new_id()
    log.forget(origin)
    assert log.position_after(events[2].id, of_a) is None
    assert log.position_after(GENESIS_ID, of_a) is None
    assert log.name_for(log.head, of_a) == origin
    log.append(reading(Metric(new_id(), "c"), 200))
    log.trim(now=300)
    assert log.position_after(origin) is None  # unfiltered: an event after it is gone
    assert log.position_after(origin, of_a) == log.base  # a wanted none of it


def test_event_for_a_metric() -> None:
    metric = Metric(METRIC_ID, 'CPU "quoted"\nnewline', None)
    event = Event.create(METRIC_CREATED, metric, 1_800_000_000.5)
    assert uuid.UUID(event.id).version == 7
    assert event.id != metric.id
    assert event.type == METRIC_CREATED
    assert event.metric_id == METRIC_ID
    assert json.loads(event.body) == metric.to_dict()
    assert event.created == 1_800_000_000.5  # the clock's time, as given
    data = event.body.decode()
    assert "\n" not in data  # one `data:` line per event
    assert event.frame == f"id: {event.id}\nevent: {METRIC_CREATED}\ndata: {data}\n\n".encode()


def test_event_for_a_reading() -> None:
    item = MetricReading(new_id(), METRIC_ID, 0.5, datetime(2026, 1, 1, tzinfo=UTC))
    event = Event.create(READING_CREATED, item, 0.0)
    assert event.metric_id == METRIC_ID  # the reading's metric, not the reading
    assert event.type == READING_CREATED
    assert json.loads(event.body) == item.to_dict()
    assert event.frame.startswith(f"id: {event.id}\nevent: {READING_CREATED}\n".encode())
    with pytest.raises(dataclasses.FrozenInstanceError):
        event.id = "x"  # type: ignore[misc]


def test_a_retained_event_holds_about_its_own_size() -> None:
    """orjson's output carries ~4 KB of spare allocation; the log keeps every body for the TTL."""
    import tracemalloc

    reading = MetricReading(new_id(), METRIC_ID, 42.5, datetime(2026, 1, 1, tzinfo=UTC))
    Event.create(READING_CREATED, reading, 0.0)  # warm caches (timestamp formatting, ids)
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        kept = [Event.create(READING_CREATED, reading, 0.0) for _ in range(1000)]
        held = (tracemalloc.get_traced_memory()[0] - before) / len(kept)
    finally:
        tracemalloc.stop()
    body, frame = len(kept[0].body), len(kept[0].frame)
    # body and frame bytes, plus object headers, an id string and the dataclass: well under 1 KB
    assert held < body + frame + 600, f"{held:.0f} B held per event ({body} B body, {frame} B frame)"


def test_a_filter_with_a_callers_test_asks_it_of_every_event_first() -> None:
    """A `labels=` filter (web/watch.py) learns from events the stream does not send, such as a metric's
    creation when only readings are wanted: it is asked before the type test."""
    first, second = Metric(new_id(), "a"), Metric(new_id(), "b")
    asked: list[str] = []

    def about_first(event: Event) -> bool:
        asked.append(event.type)
        return event.metric_id == first.id

    readings_only = StreamFilter.of(frozenset({READING_CREATED}), None, about_first)
    assert readings_only is not None
    everything = StreamFilter.of(None, None, about_first)
    assert everything is not None  # a caller's test alone is a filter
    assert everything.kinds == tuple(
        (kind, "") for kind in sorted({METRIC_CREATED, READING_CREATED, METRIC_DELETED})
    )
    created = Event.create(METRIC_CREATED, first, 1.0)
    reading = Event.create(READING_CREATED, MetricReading(new_id(), first.id, 1.0, datetime.now(UTC)), 2.0)
    other = Event.create(READING_CREATED, MetricReading(new_id(), second.id, 1.0, datetime.now(UTC)), 3.0)
    assert [readings_only.wants(e) for e in (created, reading, other)] == [False, True, False]
    assert asked == [METRIC_CREATED, READING_CREATED, READING_CREATED]
    assert [everything.wants(e) for e in (created, reading, other)] == [True, True, False]
