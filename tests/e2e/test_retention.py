"""Retention through real hubs and a `ManualClock`: quiet streams, restarts and wall-clock steps never
lose an event silently, and `reset` comes only when one is really gone. Every store; each test advances
the clock instead of sleeping."""

from __future__ import annotations

import asyncio
import sqlite3
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import pytest

from metricstream.clock import ManualClock
from metricstream.domain.values import Metric, MetricReading
from metricstream.ids import new_id
from metricstream.server.hub import Hub
from metricstream.storage import open_storage
from metricstream.storage.redis import RedisStorage
from metricstream.storage.sqlite import SQLiteStorage
from metricstream.stream.log import Event
from metricstream.wire import GENESIS_ID, METRIC_CREATED, READING_CREATED
from tests.support.hubs import FAST, TTL, StartHub, swept, wait_for
from tests.support.raw_stream import Frame, OpenStream, RawStream


def test_a_quiet_metric_resumes_without_reset_after_its_last_event_expired(
    make_hub: Callable[..., Hub], open_stream: OpenStream
) -> None:
    clock = ManualClock()
    hub = make_hub(clock=clock, event_ttl=TTL)
    metric = hub.service.create_metric("rare")
    seen = hub.service.create_reading(metric.id, 1)
    position = hub.service.last_event_id  # a client saw this, then its connection dropped
    swept(hub, clock, TTL * 3)  # a quiet spell: every event has expired
    assert len(hub.app.log) == 0
    later = hub.service.create_reading(metric.id, 2)  # then the next reading, rare as they are
    stream = open_stream(hub.url, headers={"Last-Event-ID": position})
    stream.expect_open()
    frame = stream.next_event()
    assert frame.event == "metric_reading_created", frame  # not `reset`: nothing was lost
    assert frame.json()["id"] == later.id
    assert seen.id != later.id
    assert hub.app.broadcaster.statistics().resets == 0


def test_an_id_from_before_the_last_trimmed_event_is_reset(
    make_hub: Callable[..., Hub], open_stream: OpenStream
) -> None:
    clock = ManualClock()
    hub = make_hub(clock=clock, event_ttl=TTL)
    metric = hub.service.create_metric("m")
    old = hub.service.last_event_id
    hub.service.create_reading(metric.id, 1)  # the client at `old` never saw this one
    swept(hub, clock, TTL * 2)
    hub.service.create_reading(metric.id, 2)
    stream = open_stream(hub.url, headers={"Last-Event-ID": old})
    stream.expect_open()
    assert stream.next_event().event == "reset"


def test_memory_store_replays_from_the_nil_id_after_stop_and_start(open_stream: OpenStream) -> None:
    storage = open_storage("memory://")
    hub = Hub(port=0, storage=storage, **FAST).start()
    try:
        metric = hub.service.create_metric("kept")
        reading = hub.service.create_reading(metric.id, 1)
        hub.stop()
        hub.start()
        stream = open_stream(hub.url, headers={"Last-Event-ID": GENESIS_ID})
        stream.expect_open()
        first, second = stream.next_event(), stream.next_event()
        assert (first.event, first.json()["id"]) == ("metric_created", metric.id)
        assert (second.event, second.json()["id"]) == ("metric_reading_created", reading.id)
    finally:
        hub.stop()


def test_restart_that_lost_events_resets_a_client_whose_position_is_gone(
    tmp_path: Path, open_stream: OpenStream
) -> None:
    store = f"sqlite:///{tmp_path / 'data.db'}"
    clock = ManualClock()
    with Hub(port=0, store=store, clock=clock, event_ttl=TTL, **FAST) as hub:
        metric = hub.service.create_metric("m")
        first = hub.service.last_event_id
        hub.service.create_reading(metric.id, 1)
        marker = hub.service.last_event_id
    clock.advance(TTL * 10)  # down for a while: both expired meanwhile
    with Hub(port=0, store=store, clock=clock, event_ttl=TTL, **FAST) as hub:
        later = hub.service.create_reading(metric.id, 2)
        lost = open_stream(hub.url, headers={"Last-Event-ID": first})
        lost.expect_open()
        assert lost.next_event().event == "reset"  # the reading after `first` is gone
        kept = open_stream(hub.url, headers={"Last-Event-ID": marker})
        kept.expect_open()
        assert kept.next_event().json()["id"] == later.id  # nothing after `marker` is gone
        nil = open_stream(hub.url, headers={"Last-Event-ID": GENESIS_ID})
        nil.expect_open()
        assert nil.next_event().event == "reset"


def test_sqlite_wall_clock_stepped_back_leaves_no_silent_gap(tmp_path: Path, open_stream: OpenStream) -> None:
    """Created times 1000, 1001, 941, 942, 990; restarted at 1005 with a 60 s TTL; resume after the second."""
    store = f"sqlite:///{tmp_path / 'data.db'}"
    clock = ManualClock(wall=1000.0)
    with Hub(port=0, store=store, clock=clock, event_ttl=TTL, **FAST) as hub:
        metric = hub.service.create_metric("m")  # 1000
        clock.advance(1)
        hub.service.create_reading(metric.id, 1)  # 1001
        after = hub.service.last_event_id
        clock.step_wall(-60)
        expected = [hub.service.create_reading(metric.id, 2).id]  # 941
        clock.advance(1)
        expected.append(hub.service.create_reading(metric.id, 3).id)  # 942
        clock.step_wall(48)
        expected.append(hub.service.create_reading(metric.id, 4).id)  # 990
    clock.step_wall(15)  # restarted at 1005
    assert clock.time() == 1005.0
    with Hub(port=0, store=store, clock=clock, event_ttl=TTL, **FAST) as hub:
        stream = open_stream(hub.url, headers={"Last-Event-ID": after})
        stream.expect_open()
        got = [stream.next_event() for _ in expected]
        assert [frame.json()["id"] for frame in got] == expected


class Listener:
    """A raw stream read as an EventSource reads it: it keeps the last `id:` it was sent, any frame's."""

    def __init__(self, stream: RawStream, last_id: str | None) -> None:
        self.stream = stream
        self.last_id = last_id

    def next(self) -> Frame:
        """The next frame that is not a heartbeat, after noting its id."""
        frame = self.stream.next_event()
        if frame.id is not None:
            self.last_id = frame.id
        return frame

    def open(self) -> None:
        assert self.stream.status == 200
        assert self.next().get("retry") is not None
        assert self.next().data == "connected"


# The query of a stream that wants the quiet metric's events, or only metric_created ones (rare too).
FILTERS = {
    "metric": "metric_id={quiet}",
    "types": "types=metric_created",
    "metric and types": "metric_id={quiet}&types=metric_reading_created,metric_deleted",
}


@pytest.mark.parametrize("saw_one", [True, False], ids=["saw an event", "saw none"])
@pytest.mark.parametrize("restart", [False, True], ids=["", "restarted"])
@pytest.mark.parametrize("kind", FILTERS)
def test_a_filtered_stream_resumes_without_reset_after_its_last_event_expired(
    make_hub: Callable[..., Hub],
    store_url: str,
    open_stream: OpenStream,
    kind: str,
    saw_one: bool,
    restart: bool,
) -> None:
    """A client that wants one quiet metric (or the rare metric_created) resumes after its last event and
    its position expired while other metrics' events came: nothing it wanted is gone, so no `reset`, and
    each of its events comes once. So too across a restart on the same store."""
    clock = ManualClock()
    hub = make_hub(clock=clock, event_ttl=TTL)
    quiet, busy = hub.service.create_metric("quiet"), hub.service.create_metric("busy")
    query = FILTERS[kind].format(quiet=quiet.id)

    def wanted(value: float) -> str:  # an event this client wants, made when `kind` asks for it
        if kind == "types":
            return hub.service.create_metric(f"m{value}").id
        return hub.service.create_reading(quiet.id, value).id

    position = hub.service.last_event_id  # the state, read over REST
    listener = Listener(open_stream(hub.url, query, headers={"Last-Event-ID": position}), position)
    listener.open()
    if saw_one:
        first = wanted(1)
        assert listener.next().json()["id"] == first
    for value in range(3):  # other metrics' events, and time: what this client saw expires
        hub.service.create_reading(busy.id, value + 1)
        swept(hub, clock, TTL)
    hub.service.create_reading(busy.id, 9)  # its position is now before the oldest retained event
    listener.stream.close()  # the connection drops
    if restart:
        hub = restarted(hub, make_hub, store_url, clock)
    missed = wanted(2)  # while it is away
    resumed = Listener(open_stream(hub.url, query, headers={"Last-Event-ID": listener.last_id or ""}), None)
    resumed.open()
    frame = resumed.next()
    assert frame.event != "reset", frame.data
    assert frame.json()["id"] == missed
    live = wanted(3)
    assert resumed.next().json()["id"] == live  # each once: nothing replayed twice
    assert hub.app.broadcaster.statistics().resets == 0


def restarted(hub: Hub, make_hub: Callable[..., Hub], store_url: str, clock: ManualClock) -> Hub:
    """The same store served again: `stop()`/`start()` in memory, a new Hub on a durable store."""
    hub.stop()
    if store_url == "memory://":
        return hub.start()
    return make_hub(clock=clock, event_ttl=TTL)


def test_a_filtered_stream_is_reset_when_an_event_it_wanted_expired(
    make_hub: Callable[..., Hub], open_stream: OpenStream
) -> None:
    """The other side of the rule: an event the filter matches expired unseen, so `reset`."""
    clock = ManualClock()
    hub = make_hub(clock=clock, event_ttl=TTL)
    quiet, busy = hub.service.create_metric("quiet"), hub.service.create_metric("busy")
    seen = hub.service.create_reading(quiet.id, 1)
    position = hub.service.last_event_id  # the client saw `seen`, then its connection dropped
    hub.service.create_reading(quiet.id, 2)  # it never saw this one
    for value in range(3):
        hub.service.create_reading(busy.id, value + 1)
        swept(hub, clock, TTL)
    hub.service.create_reading(busy.id, 9)
    stream = open_stream(hub.url, f"metric_id={quiet.id}", headers={"Last-Event-ID": position})
    stream.expect_open()
    assert stream.next_event().event == "reset"
    assert seen.id != position


@pytest.mark.parametrize("backend", ["sqlite", "redis"])
def test_a_store_trimmed_by_an_older_release_resets_a_filtered_client_it_cannot_place(
    backend: str, request: pytest.FixtureRequest, tmp_path: Path, open_stream: OpenStream
) -> None:
    """Events trimmed before stores kept marks left none: a filtered position then cannot be told safe.
    A client that wants `a` from the nil id must be reset (a's reading is gone), not resumed."""
    if backend == "sqlite":
        url = f"sqlite:///{tmp_path / 'old.db'}"
    else:
        url = f"{request.getfixturevalue('redis_server')}?prefix=old{uuid.uuid4().hex[:8]}:"
    a, b = Metric(new_id(), "a"), Metric(new_id(), "b")
    reading = MetricReading(new_id(), a.id, 1.0, datetime.now(UTC))

    async def trimmed_by_an_older_release() -> None:
        store = open_storage(url, TTL)
        await store.open()
        await store.add_metric(a, Event.create(METRIC_CREATED, a, 0.0))
        await store.add_readings([reading], [Event.create(READING_CREATED, reading, 1.0)])
        await store.add_metric(b, Event.create(METRIC_CREATED, b, 2.0))
        await store.trim_events(before=2.5)  # a's events go; b's creation stays, marking the end
        if isinstance(store, SQLiteStorage):  # as the schema before the marks left it
            await store.close()
            with sqlite3.connect(tmp_path / "old.db") as db:
                db.execute("DROP TABLE event_marks")
                # and without what came after the marks: labels, unit and description (version 6)
                db.execute("DROP INDEX metrics_by_identity")
                for column in ("labels", "unit", "description"):
                    db.execute(f"ALTER TABLE metrics DROP COLUMN {column}")
                db.execute("PRAGMA user_version = 4")  # before the marks (version 5)
        else:
            assert isinstance(store, RedisStorage)
            await store.client.delete(f"{store.prefix}event_marks")
            await store.close()

    asyncio.run(trimmed_by_an_older_release())
    with Hub(port=0, store=url, clock=ManualClock(wall=10.0), event_ttl=TTL, **FAST) as hub:
        stream = open_stream(hub.url, f"metric_id={a.id}", headers={"Last-Event-ID": GENESIS_ID})
        stream.expect_open()
        assert stream.next_event().event == "reset"


def test_a_filtered_position_means_the_same_on_every_process_sharing_redis(
    redis_server: str, start_hub: StartHub, open_stream: OpenStream
) -> None:
    """Named on one process, resumed on another that trimmed the same events, and on one started after
    they expired (it learns what they left from the store)."""
    store = f"{redis_server}?prefix=shared{uuid.uuid4().hex[:8]}:"
    clock = ManualClock()
    first, second = (start_hub(store=store, clock=clock, event_ttl=TTL) for _ in range(2))
    quiet, busy = first.service.create_metric("quiet"), first.service.create_metric("busy")
    seen = first.service.create_reading(quiet.id, 1)
    query = f"metric_id={quiet.id}"
    listener = Listener(open_stream(first.url, query, headers={"Last-Event-ID": GENESIS_ID}), GENESIS_ID)
    listener.open()
    assert listener.next().json()["id"] == seen.id
    for value in range(1, 4):
        first.service.create_reading(busy.id, value)
        swept(first, clock, TTL)
    first.service.create_reading(busy.id, 9)
    wait_for(lambda: second.app.log.head == first.app.log.head, what="the second to follow")
    wait_for(lambda: second.app.log.base == first.app.log.base, what="the second's sweep")
    listener.stream.close()
    third = start_hub(store=store, clock=clock, event_ttl=TTL)
    missed = first.service.create_reading(quiet.id, 2)
    newest = first.app.log.position_id
    wait_for(lambda: second.app.log.position_id == newest == third.app.log.position_id, what="the reading")
    for hub in (second, third):
        resumed = Listener(
            open_stream(hub.url, query, headers={"Last-Event-ID": listener.last_id or ""}), None
        )
        resumed.open()
        frame = resumed.next()
        assert frame.event != "reset", frame.data
        assert frame.json()["id"] == missed.id
