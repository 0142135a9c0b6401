"""The SSE stream end to end, through real hypercorn: framing, replay, reset, filters, heartbeats,
limits, slow clients, disconnects and shutdown."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import httpx
import pytest

from metricstream.server.hub import Hub
from metricstream.wire import GENESIS_ID
from tests.support.hubs import wait_for
from tests.support.raw_stream import OpenStream
from tests.support.subscribers import clients


def test_headers_and_opening_frames(hub: Hub, open_stream: OpenStream) -> None:
    stream = open_stream(hub.url)
    assert stream.status == 200
    assert stream.headers["content-type"].startswith("text/event-stream")
    assert stream.headers["cache-control"] == "no-cache"
    assert stream.headers["x-accel-buffering"] == "no"
    assert stream.headers["connection"] == "close"  # an ended stream frees its connection
    assert "content-encoding" not in stream.headers
    assert stream.next_frame().get("retry") == "2000"
    connected = stream.next_frame()
    assert connected.data == "connected"
    assert connected.id == GENESIS_ID  # its position: resuming from it misses nothing


def test_connected_carries_the_position_a_reconnect_resumes_from(hub: Hub, open_stream: OpenStream) -> None:
    metric = hub.service.create_metric("m")
    fresh = open_stream(hub.url)
    fresh.next_frame()
    position = fresh.next_frame()
    assert position.id == hub.service.last_event_id
    fresh.close()  # dropped before it saw any event...
    missed = hub.service.create_reading(metric.id, 1)
    again = open_stream(hub.url, headers={"Last-Event-ID": str(position.id)})
    again.expect_open()
    assert again.next_event().json()["id"] == missed.id  # ...yet nothing is lost


def test_every_creation_is_one_event_with_the_post_body(
    hub: Hub, http: httpx.Client, open_stream: OpenStream
) -> None:
    stream = open_stream(hub.url)
    stream.expect_open()
    metric = http.post("/metrics", json={"name": "CPU"})
    reading = http.post("/metrics/readings", json={"metric_id": metric.json()["id"], "value": 2})
    created, recorded = stream.next_event(), stream.next_event()
    assert (created.event, created.data) == ("metric_created", metric.text)
    assert (recorded.event, recorded.data) == ("metric_reading_created", reading.text)
    assert created.id is not None
    assert recorded.id is not None
    assert created.id < recorded.id  # UUIDv7 from one process sort by creation


def test_every_client_gets_every_event_in_order(hub: Hub, open_stream: OpenStream) -> None:
    streams = [open_stream(hub.url) for _ in range(5)]
    for stream in streams:
        stream.expect_open()
    metric = hub.service.create_metric("m")
    sent = [hub.service.create_reading(metric.id, value).id for value in range(1, 51)]
    for stream in streams:
        stream.next_event()  # metric_created
        assert [stream.next_event().json()["id"] for _ in sent] == sent


def test_replay_after_last_event_id_header_and_query(hub: Hub, open_stream: OpenStream) -> None:
    metric = hub.service.create_metric("m")
    readings = [hub.service.create_reading(metric.id, value) for value in (1, 2, 3)]
    first = open_stream(hub.url)
    first.expect_open()
    resume_from = _event_id_of_reading(hub, readings[0].id)
    streams = [
        open_stream(hub.url, headers={"Last-Event-ID": resume_from}),
        open_stream(hub.url, f"last_event_id={resume_from}"),
    ]
    for stream in streams:
        stream.expect_open()
        replayed = [stream.next_event().json()["id"] for _ in range(2)]
        assert replayed == [readings[1].id, readings[2].id]
    live = hub.service.create_reading(metric.id, 9)
    for stream in [first, *streams]:
        assert stream.next_event().json()["id"] == live.id


def _event_id_of_reading(hub: Hub, reading_id: str) -> str:
    for event in hub.app.log.between(0, hub.app.log.head):
        if reading_id.encode() in event.body and event.type == "metric_reading_created":
            return event.id
    raise AssertionError("no such event")


def test_header_wins_over_query_parameter(hub: Hub, open_stream: OpenStream) -> None:
    metric = hub.service.create_metric("m")
    later = hub.service.create_reading(metric.id, 1)
    newest = hub.service.last_event_id
    assert newest is not None
    stream = open_stream(hub.url, f"last_event_id={GENESIS_ID}", headers={"Last-Event-ID": newest})
    stream.expect_open()
    fresh = hub.service.create_reading(metric.id, 2)
    assert stream.next_event().json()["id"] == fresh.id != later.id


def test_rest_state_then_stream_from_x_last_event_id_misses_nothing(
    hub: Hub, http: httpx.Client, open_stream: OpenStream
) -> None:
    empty = http.get("/metrics")
    assert empty.headers["x-last-event-id"] == GENESIS_ID
    metric = hub.service.create_metric("created after the read")
    stream = open_stream(hub.url, headers={"Last-Event-ID": empty.headers["x-last-event-id"]})
    stream.expect_open()
    assert stream.next_event().json()["id"] == metric.id
    snapshot = http.get("/metrics")
    hub.service.create_reading(metric.id, 5)
    resumed = open_stream(hub.url, headers={"Last-Event-ID": snapshot.headers["x-last-event-id"]})
    resumed.expect_open()
    assert resumed.next_event().event == "metric_reading_created"


def test_replay_races_live_events_without_gap_or_duplicate(
    make_hub: Callable[..., Hub], open_stream: OpenStream
) -> None:
    hub = make_hub(client_buffer=64)
    metric = hub.service.create_metric("m")
    backlog = [r["value"] for r in ({"value": v} for v in range(1, 3001))]
    hub.service.create_readings([{"metric_id": metric.id, "value": v} for v in backlog])
    start_id = hub.service.last_event_id
    assert start_id is not None
    hub.service.create_readings([{"metric_id": metric.id, "value": v} for v in range(3001, 5001)])
    stop = threading.Event()
    published: list[float] = []

    def publish() -> None:  # keeps creating events while the clients replay
        value = 5001.0
        while not stop.is_set() and value < 8000:
            hub.service.create_reading(metric.id, value)
            published.append(value)
            value += 1

    publisher = threading.Thread(target=publish)
    publisher.start()
    try:
        streams = [open_stream(hub.url, headers={"Last-Event-ID": start_id}) for _ in range(3)]
    finally:
        stop.set()
        publisher.join()
    expected = list(range(3001, 5001)) + [int(v) for v in published]
    for stream in streams:
        stream.expect_open()
        got = [int(stream.next_event().json()["value"]) for _ in expected]
        assert got == expected  # far more than client_buffer, yet nobody was dropped
    assert hub.app.broadcaster.dropped["slow"] == 0


@pytest.mark.parametrize("bad_id", ["no-such-id", "01a21b31-5e3b-7373-be1c-0fbd7bad296c", "x\ry"])
def test_unknown_last_event_id_gets_reset_then_live(hub: Hub, open_stream: OpenStream, bad_id: str) -> None:
    metric = hub.service.create_metric("m")
    stream = open_stream(hub.url, f"last_event_id={bad_id.replace(chr(13), '%0D')}")
    stream.expect_open()
    reset = stream.next_event()
    assert reset.event == "reset"
    assert reset.json() == {"reason": "unknown_last_event_id", "last_event_id": bad_id}
    assert reset.id == hub.service.last_event_id  # where the client now stands
    live = hub.service.create_reading(metric.id, 1)
    assert stream.next_event().json()["id"] == live.id


def test_expired_last_event_id_gets_reset(make_hub: Callable[..., Hub], open_stream: OpenStream) -> None:
    hub = make_hub(event_ttl=0.2)
    metric = hub.service.create_metric("m")
    expired = hub.service.last_event_id
    hub.service.create_reading(metric.id, 1)
    newest = hub.service.last_event_id
    wait_for(lambda: len(hub.app.log) == 0, what="the TTL sweep")
    stream = open_stream(hub.url, headers={"Last-Event-ID": str(expired)})
    stream.expect_open()
    assert stream.next_event().json() == {
        "reason": "unknown_last_event_id",
        "last_event_id": expired,
    }
    # The newest id, though expired, still marks the head: nothing came after it, nothing is lost.
    current = open_stream(hub.url, headers={"Last-Event-ID": str(newest)})
    current.expect_open()
    live = hub.service.create_reading(metric.id, 2)
    assert current.next_event().json()["id"] == live.id


def test_filters_apply_to_replay_and_live(hub: Hub, open_stream: OpenStream) -> None:
    first, second = hub.service.create_metric("a"), hub.service.create_metric("b")
    hub.service.create_reading(first.id, 1)
    hub.service.create_reading(second.id, 2)
    replay = {"Last-Event-ID": GENESIS_ID}
    only_metrics = open_stream(hub.url, "types=metric_created", headers=replay)
    only_second = open_stream(hub.url, f"metric_id={second.id}", headers=replay)
    both_types = open_stream(hub.url, "types=metric_created,metric_reading_created", headers=replay)
    for stream in (only_metrics, only_second, both_types):
        stream.expect_open()
    hub.service.create_reading(first.id, 3)
    hub.service.create_reading(second.id, 4)
    hub.service.create_metric("c")
    assert [only_metrics.next_event().json()["name"] for _ in range(3)] == ["a", "b", "c"]
    assert [only_second.next_event().json()["value"] for _ in range(2)] == [2, 4]
    kinds = [both_types.next_event().event for _ in range(7)]
    assert kinds.count("metric_created") == 3


@pytest.mark.parametrize("query", ["types=bogus", "types=", "types=metric_created,nope", "metric_id=nope"])
def test_bad_filters_are_400(hub: Hub, open_stream: OpenStream, query: str) -> None:
    stream = open_stream(hub.url, query)
    assert stream.status == 400
    assert "error" in httpx.Response(200, content=stream.body()).json()


def test_heartbeat_after_quiet_period(make_hub: Callable[..., Hub], open_stream: OpenStream) -> None:
    hub = make_hub(heartbeat=0.3)
    stream = open_stream(hub.url)
    stream.expect_open()
    started = time.monotonic()
    ping = stream.next_frame(timeout=5)
    assert ping.comments == ["ping"]
    assert not ping.fields
    assert time.monotonic() - started >= 0.2


def test_client_limit_evicts_the_oldest(make_hub: Callable[..., Hub], open_stream: OpenStream) -> None:
    hub = make_hub(max_clients=2)
    oldest, middle = open_stream(hub.url), open_stream(hub.url)
    oldest.expect_open()
    middle.expect_open()
    newest = open_stream(hub.url)
    newest.expect_open()
    assert [frame.data for frame in oldest.read_to_end()] == ["disconnected"]
    assert oldest.sock.recv(1) == b""  # and the server closed the connection: no descriptor held
    assert clients(hub) == 2
    metric = hub.service.create_metric("m")
    assert middle.next_event().json()["id"] == newest.next_event().json()["id"] == metric.id
    assert hub.app.broadcaster.dropped["limit"] == 1


@pytest.mark.slow
@pytest.mark.parametrize("loop", ["asyncio", "uvloop"])
def test_slow_client_is_dropped_without_delaying_others(
    make_hub: Callable[..., Hub], open_stream: OpenStream, loop: str
) -> None:
    hub = make_hub(client_buffer=100, write_timeout=1.0, loop=loop)
    slow = open_stream(hub.url, receive_buffer=4096)
    slow.expect_open()
    fast = open_stream(hub.url)
    fast.expect_open()
    metric = hub.service.create_metric("m" * 200)
    fast.next_event()
    big = [{"metric_id": metric.id, "value": v} for v in range(1, 1001)]
    last_id = ""
    started = time.monotonic()
    for _ in range(60):  # ~11 MB, more than the kernel buffers the slow reader never empties
        last_id = hub.service.create_readings(big)[-1].id
        got = ""
        while got != last_id:
            got = fast.next_event().json()["id"]
    assert time.monotonic() - started < 30
    wait_for(lambda: hub.app.broadcaster.dropped["write_timeout"] == 1, what="the stuck client's eviction")
    assert clients(hub) == 1
    # Reading again, it finds an ended (or aborted) stream holding an in-order prefix of the events...
    seen = [frame for frame in slow.read_to_end() if frame.event]
    assert [frame.event for frame in seen[:1]] == ["metric_created"]
    values = [frame.json()["value"] for frame in seen[1:]]
    assert values == [float(v) for _ in range(60) for v in range(1, 1001)][: len(values)]
    # ...and resuming from its last id brings the rest, none lost, none twice.
    resumed = open_stream(hub.url, headers={"Last-Event-ID": str(seen[-1].id)})
    resumed.expect_open()
    rest = [resumed.next_event().json()["id"] for _ in range(60 * 1000 - len(values))]
    assert rest[-1] == last_id
    assert len(set(rest)) == len(rest)


@pytest.mark.slow
@pytest.mark.parametrize("loop", ["asyncio", "uvloop"])
def test_lagging_client_is_told_disconnected_and_resumes_without_loss(
    make_hub: Callable[..., Hub], open_stream: OpenStream, loop: str
) -> None:
    hub = make_hub(client_buffer=10, write_timeout=30, loop=loop)
    metric = hub.service.create_metric("m")
    lagging = open_stream(hub.url, receive_buffer=4096)
    lagging.expect_open()
    batch = [{"metric_id": metric.id, "value": v} for v in range(1, 1001)]
    sent = []
    for _ in range(60):  # it does not read while ~11 MB are published: its writes back up
        sent += [reading.id for reading in hub.service.create_readings(batch)]
    frames = lagging.read_to_end()  # reading again, it catches up and finds out
    assert frames[-1].data == "disconnected"
    assert hub.app.broadcaster.dropped["slow"] == 1
    got = [frame.json()["id"] for frame in frames if frame.event]
    assert got == sent[: len(got)]
    assert len(got) < len(sent)
    resumed = open_stream(hub.url, headers={"Last-Event-ID": str(frames[-2].id)})
    resumed.expect_open()
    got += [resumed.next_event().json()["id"] for _ in range(len(sent) - len(got))]
    assert got == sent


def test_client_that_goes_away_is_noticed(hub: Hub, open_stream: OpenStream) -> None:
    stream = open_stream(hub.url)
    stream.expect_open()
    assert clients(hub) == 1
    stream.close()
    wait_for(lambda: clients(hub) == 0, timeout=2 * 0.5 + 2, what="the disconnect")


def test_shutdown_tells_every_client_and_ends_streams(
    make_hub: Callable[..., Hub], open_stream: OpenStream
) -> None:
    hub = make_hub(shutdown_timeout=3)
    streams = [open_stream(hub.url) for _ in range(3)]
    for stream in streams:
        stream.expect_open()
    started = time.monotonic()
    hub.stop()
    assert time.monotonic() - started < 3
    for stream in streams:
        assert [frame.data for frame in stream.read_to_end()] == ["disconnected"]
        assert stream.chunked_done


@pytest.mark.slow
def test_shutdown_is_bounded_when_a_client_never_reads(
    make_hub: Callable[..., Hub], open_stream: OpenStream
) -> None:
    hub = make_hub(shutdown_timeout=2, write_timeout=30)
    stuck = open_stream(hub.url, receive_buffer=4096)
    stuck.expect_open()
    metric = hub.service.create_metric("m")
    for _ in range(20):
        hub.service.create_readings([{"metric_id": metric.id, "value": v} for v in range(1, 500)])
    started = time.monotonic()
    hub.stop()
    assert time.monotonic() - started < 2 + 1
    assert not hub.running


def test_events_published_together_reach_a_client_in_one_write(hub: Hub, open_stream: OpenStream) -> None:
    stream = open_stream(hub.url)
    stream.expect_open()
    metric = hub.service.create_metric("m")
    stream.next_event()
    before = stream.chunks
    hub.service.create_readings([{"metric_id": metric.id, "value": v} for v in range(1, 101)])
    assert len([stream.next_event() for _ in range(100)]) == 100
    assert stream.chunks == before + 1  # encoded once each, written as one chunk


def test_flush_interval_gathers_separate_publishes_into_one_write(
    make_hub: Callable[..., Hub], open_stream: OpenStream
) -> None:
    hub = make_hub(flush_interval=1.0)
    metric = hub.service.create_metric("m")
    stream = open_stream(hub.url)
    stream.expect_open()
    before = stream.chunks
    sent = [hub.service.create_reading(metric.id, v).id for v in (1, 2, 3)]  # well within a second
    assert [stream.next_event().json()["id"] for _ in sent] == sent
    assert stream.chunks == before + 1
