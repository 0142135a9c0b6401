"""Retention through real hubs and a `ManualClock`: quiet streams, restarts and wall-clock steps never
lose an event silently, and `reset` comes only when one is really gone. Every store; each test advances
the clock instead of sleeping."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from metricstream import Hub
from metricstream.clock import ManualClock
from metricstream.events import GENESIS_ID
from metricstream.storage import open_storage

from .conftest import FAST, OpenStream, wait_for

TTL = 60.0


def swept(hub: Hub, clock: ManualClock, seconds: float) -> None:
    """Let `seconds` pass and wait until the log's sweep has run (it runs every TTL / 2)."""
    before = hub.app.log.base
    clock.advance(seconds)
    clock.advance(TTL / 2)  # past the next sweep, whatever the phase
    wait_for(lambda: hub.app.log.base > before or len(hub.app.log) == 0, what="the TTL sweep")


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
