"""`Hub` and its `MetricService`: lifecycle, threads, ports, settings, and parity with the HTTP API.

Every hub here is a real hypercorn server on a free 127.0.0.1 port, stopped by its test.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import os
import queue
import select
import socket
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone
from typing import IO, Any

import httpx
import pytest

from metricstream.client.core import StreamEvent
from metricstream.domain.values import Metric, MetricReading
from metricstream.errors import HubError, NotFoundError, ValidationError
from metricstream.server.hub import Hub
from tests.support.raw_stream import OpenStream, RawStream
from tests.support.repr_table import ReprTable

MakeHub = Callable[..., Hub]

UNKNOWN_V7 = "01a21b31-5e3b-7373-be1c-0fbd7bad296c"  # a UUIDv7 no hub ever created


def dumps(value: Metric | MetricReading) -> str:
    """The JSON the HTTP API sends for `value`: compact, UTF-8."""
    return json.dumps(value.to_dict(), separators=(",", ":"), ensure_ascii=False)


def expect_no_more_events(hub: Hub, stream: RawStream) -> None:
    """The next event on `stream` is a marker created now, so nothing else was emitted before it."""
    marker = httpx.post(f"{hub.url}/metrics", json={"name": "marker"}, timeout=10)
    frame = stream.next_event()
    assert (frame.event, frame.data) == ("metric_created", marker.text)


def hub_threads(url: str) -> list[threading.Thread]:
    return [thread for thread in threading.enumerate() if thread.name == f"metricstream-hub-{url}"]


def port_of(hub: Hub) -> int:
    return int(hub.url.rsplit(":", 1)[1])


# --- lifecycle ----------------------------------------------------------------------------------


def test_start_returns_with_connections_accepted() -> None:
    hub = Hub(port=0, shutdown_timeout=3)
    try:
        assert hub.start() is hub
        assert hub.running
        assert hub.url.startswith("http://127.0.0.1:")
        assert port_of(hub) > 0
        # No retry, no wait: the very first request after start() is answered.
        response = httpx.get(f"{hub.url}/healthz", timeout=10)
        assert response.status_code == 200
        assert response.json() == {"status": "ok", "clients": 0, "events": 0}
    finally:
        hub.stop()
    assert not hub.running


def test_context_manager_starts_and_stops() -> None:
    with Hub(port=0, shutdown_timeout=3) as hub:
        assert hub.running
        url = hub.url
        assert httpx.get(f"{url}/healthz", timeout=10).status_code == 200
    assert not hub.running
    assert hub_threads(url) == []
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"{url}/healthz", timeout=10)


def test_start_on_a_running_hub_is_a_no_op(hub: Hub) -> None:
    url = hub.url
    threads = hub_threads(url)
    assert len(threads) == 1
    assert hub.start() is hub
    assert hub.url == url
    assert hub_threads(url) == threads
    assert httpx.get(f"{url}/healthz", timeout=10).status_code == 200


def test_stop_is_idempotent_and_a_never_started_hub_stops_quietly() -> None:
    never = Hub(port=0)
    never.stop()
    assert not never.running
    with Hub(port=0, shutdown_timeout=3) as hub:
        pass
    hub.stop()
    assert not hub.running


def test_a_stopped_hub_starts_again_with_its_data() -> None:
    hub = Hub(port=0, shutdown_timeout=3)
    with hub:
        metric = hub.service.create_metric("kept")
    with hub:
        assert hub.running
        assert hub.service.list_metrics() == [metric]
        assert httpx.get(f"{hub.url}/metrics", timeout=10).json() == [metric.to_dict()]


def test_repr_mentions_state_and_url() -> None:
    hub = Hub(port=0, shutdown_timeout=3)
    assert "new" in repr(hub)
    with hub:
        assert "running" in repr(hub)
        assert hub.url in repr(hub)
    assert "stopped" in repr(hub)
    assert hub.url in repr(hub)


def test_repr_counts_clients_and_events_while_running(hub: Hub, open_stream: OpenStream) -> None:
    stream = open_stream(hub.url)
    stream.expect_open()
    metric = hub.service.create_metric("m")
    hub.service.create_reading(metric.id, 1)
    assert repr(hub) == f"<Hub running {hub.url} clients=1 events=2>"
    assert repr(Hub(port=0)) == "<Hub new, to listen on 127.0.0.1:0>"


def test_repr_html_shows_url_state_clients_and_events(hub: Hub, open_stream: OpenStream) -> None:
    stream = open_stream(hub.url)
    stream.expect_open()
    hub.service.create_metric("m")
    table = ReprTable(hub._repr_html_())
    assert table.rows == {
        "URL": hub.url,
        "State": "running",
        "Clients": "1",
        "Retained events": "1",
        "Stream": f"{hub.url}/events/watch",
    }
    assert table.links == {
        hub.url: f"{hub.url}/",  # the dashboard
        f"{hub.url}/events/watch": f"{hub.url}/events/watch",
    }

    url = hub.url
    hub.stop()
    stopped = ReprTable(hub._repr_html_())
    assert stopped.rows == {"URL": url, "State": "stopped"}
    assert stopped.links == {}  # nothing listens there any more


def test_stop_ends_streams_and_frees_the_port(open_stream: OpenStream) -> None:
    hub = Hub(port=0, shutdown_timeout=3).start()
    port = port_of(hub)
    try:
        stream = open_stream(hub.url)
        stream.expect_open()
    finally:
        hub.stop()
    assert [frame.data for frame in stream.read_to_end()] == ["disconnected"]
    assert stream.chunked_done
    with Hub(port=port, shutdown_timeout=3) as again:
        assert port_of(again) == port
        assert httpx.get(f"{again.url}/healthz", timeout=10).json()["events"] == 0


def test_busy_port_raises_hub_error_naming_the_port(hub: Hub) -> None:
    port = port_of(hub)
    second = Hub(port=port)
    with pytest.raises(HubError, match=f":{port}\\b") as caught:
        second.start()
    assert isinstance(caught.value, RuntimeError)
    assert not second.running
    with pytest.raises(HubError):
        _ = second.service
    assert httpx.get(f"{hub.url}/healthz", timeout=10).status_code == 200  # the first one is untouched


def test_busy_port_held_by_another_socket() -> None:
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        with pytest.raises(HubError, match=str(port)) as caught:
            Hub(port=port).start()
    assert "port=0" in str(caught.value)


def test_busy_port_names_the_hub_of_this_process_that_holds_it(hub: Hub) -> None:
    """As when a notebook cell starting a Hub on a fixed port is run a second time."""
    again = Hub(port=port_of(hub))
    with pytest.raises(HubError) as caught:
        again.start()
    message = str(caught.value)
    assert f"127.0.0.1:{port_of(hub)}" in message
    assert repr(hub) in message
    assert "stop()" in message
    hub.stop()
    with again:  # once the first one stopped, the port is free
        assert again.url == hub.url


def test_service_after_stop_raises_hub_error() -> None:
    hub = Hub(port=0, shutdown_timeout=3)
    with pytest.raises(HubError, match="not running"):
        _ = hub.service
    with hub:
        service = hub.service
        service.create_metric("m")
    with pytest.raises(HubError, match="not running"):
        _ = hub.service
    with pytest.raises(HubError, match="not running"):
        service.list_metrics()  # a service kept from before stop() fails loudly too


def test_a_service_kept_across_a_restart_works_again() -> None:
    """As a notebook keeps `service = hub.service` in a variable while the hub is stopped and started."""
    hub = Hub(port=0, shutdown_timeout=3)
    with hub:
        service = hub.service
        metric = service.create_metric("before")
    for call in (service.list_metrics, lambda: service.last_event_id):
        with pytest.raises(HubError, match="the hub is not running"):
            call()
    with hub:
        assert hub.service is service
        reading = service.create_reading(metric.id, 1)
        assert service.list_readings(metric.id) == [reading]
        assert service.last_event_id == hub.service.last_event_id != metric.id


def test_a_restarted_hub_keeps_its_port_so_its_subscribers_resume(make_hub: MakeHub) -> None:
    hub = make_hub(retry=50)
    url = hub.url
    events: queue.Queue[StreamEvent] = queue.Queue()
    sub = hub.subscribe(max_backoff=1.0).on_event(events.put)  # retries soon once the hub is back
    try:
        before = hub.service.create_metric("before")
        assert events.get(timeout=10).data["id"] == before.id
        hub.stop()
        hub.start()
        assert hub.url == url  # port=0 took a free port once; the hub keeps it while it is free
        after = hub.service.create_metric("after")
        assert events.get(timeout=10).data["id"] == after.id  # the same subscriber, reconnected
        assert sub.error is None
    finally:
        sub.close()


def test_a_restarted_hub_whose_port_was_taken_meanwhile_takes_another(hub: Hub) -> None:
    port = port_of(hub)
    hub.stop()
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", port))
        squatter.listen()
        hub.start()
        assert port_of(hub) not in (0, port)
        assert httpx.get(f"{hub.url}/healthz", timeout=10).status_code == 200


def test_service_on_the_hubs_own_loop_raises_instead_of_deadlocking(hub: Hub) -> None:
    service = hub.service

    async def call_blocking_api() -> list[Metric]:
        return service.list_metrics()

    loop = hub._loop
    assert loop is not None
    future = asyncio.run_coroutine_threadsafe(call_blocking_api(), loop)
    with pytest.raises(HubError, match="AsyncMetricService"):
        future.result(timeout=10)
    assert service.create_metric("still works").name == "still works"


def test_hub_started_inside_a_running_event_loop() -> None:
    """As in a Jupyter kernel, whose main thread already runs a loop."""

    async def notebook_cell() -> str:
        with Hub(port=0, shutdown_timeout=3) as hub:
            return hub.service.create_metric("from a cell").name

    assert asyncio.run(notebook_cell()) == "from a cell"


def test_two_hubs_are_independent(make_hub: MakeHub, open_stream: OpenStream) -> None:
    # Hubs sharing one durable or shared store share its data by design: give each its own.
    first, second = make_hub(store="memory://"), make_hub(store="memory://")
    assert first.url != second.url
    first_stream, second_stream = open_stream(first.url), open_stream(second.url)
    first_stream.expect_open()
    second_stream.expect_open()
    only_first = first.service.create_metric("first")
    only_second = second.service.create_metric("second")
    assert first.service.list_metrics() == [only_first]
    assert second.service.list_metrics() == [only_second]
    with pytest.raises(NotFoundError):
        second.service.get_metric(only_first.id)
    assert first_stream.next_event().data == dumps(only_first)
    assert second_stream.next_event().data == dumps(only_second)
    first.stop()
    assert [frame.data for frame in first_stream.read_to_end()] == ["disconnected"]
    later = second.service.create_metric("after the first stopped")
    assert second_stream.next_event().data == dumps(later)


def _read_line(pipe: IO[bytes], timeout: float) -> str:
    """One line from a child's pipe, without blocking past `timeout`."""
    deadline = time.monotonic() + timeout
    data = b""
    while not data.endswith(b"\n"):
        ready, _, _ = select.select([pipe], [], [], max(0.0, deadline - time.monotonic()))
        if not ready:
            raise AssertionError(f"no line within {timeout}s (got {data!r})")
        chunk = os.read(pipe.fileno(), 1)
        if not chunk:
            raise AssertionError(f"the pipe closed (got {data!r})")
        data += chunk
    return data.decode()


_EXIT_WITH_HUB_RUNNING = textwrap.dedent(
    """
    import sys
    from metricstream import Hub

    hub = Hub(port=0, shutdown_timeout=3).start()
    hub.service.create_metric("m")
    print(hub.url, flush=True)
    sys.stdin.readline()
    # falls off the end with the hub still running
    """
)


def test_interpreter_with_a_running_hub_exits_cleanly(open_stream: OpenStream) -> None:
    with subprocess.Popen(
        [sys.executable, "-c", _EXIT_WITH_HUB_RUNNING],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    ) as child:
        try:
            assert child.stdin is not None
            assert child.stdout is not None
            url = _read_line(child.stdout, timeout=20).strip()
            stream = open_stream(url)
            stream.expect_open()
            child.stdin.write(b"\n")
            child.stdin.flush()
            assert [frame.data for frame in stream.read_to_end()] == ["disconnected"]
            assert stream.chunked_done
            started = time.monotonic()
            _, stderr = child.communicate(timeout=10)
            assert time.monotonic() - started < 5
            assert child.returncode == 0, stderr.decode()
            assert b"Traceback" not in stderr
            assert stderr == b""
        finally:
            if child.poll() is None:
                child.kill()
                child.wait(10)


def test_interpreter_exits_cleanly_right_after_start() -> None:
    script = "from metricstream import Hub; Hub(port=0).start()"
    started = time.monotonic()
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, timeout=30, check=False)
    assert done.returncode == 0, done.stderr.decode()
    assert done.stderr == b""
    assert time.monotonic() - started < 10


# --- the service from threads -------------------------------------------------------------------


def test_service_from_many_threads_delivers_every_event_once_in_order(
    hub: Hub, open_stream: OpenStream
) -> None:
    stream = open_stream(hub.url)
    stream.expect_open()
    threads, readings_each = 8, 20
    barrier = threading.Barrier(threads)
    created: list[list[Metric | MetricReading]] = [[] for _ in range(threads)]
    errors: list[BaseException] = []

    def work(index: int) -> None:
        try:
            service = hub.service
            barrier.wait(timeout=10)
            metric = service.create_metric(f"thread {index}")
            created[index].append(metric)
            for value in range(1, readings_each + 1):
                if value % 5 == 0:
                    created[index] += service.create_readings(
                        [{"metric_id": metric.id, "value": value}, {"metric_id": metric.id, "value": 0.5}]
                    )
                else:
                    created[index].append(service.create_reading(metric.id, value))
                service.list_metrics()  # reads interleaved with writes
        except BaseException as error:
            errors.append(error)

    workers = [threading.Thread(target=work, args=(index,)) for index in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(30)
    assert not errors
    assert not any(worker.is_alive() for worker in workers)

    expected = {dumps(value): index for index, values in enumerate(created) for value in values}
    total = sum(len(values) for values in created)
    assert len(expected) == total == threads * (1 + readings_each + readings_each // 5)
    frames = [stream.next_event() for _ in range(total)]
    data = [frame.data for frame in frames]
    assert sorted(map(str, data)) == sorted(expected)  # each exactly once
    ids = [str(frame.id) for frame in frames]
    assert ids == sorted(ids)
    assert len(set(ids)) == total
    for index, values in enumerate(created):
        # One thread's calls returned in sequence, so its events arrive in that sequence.
        assert [d for d in data if expected[str(d)] == index] == [dumps(value) for value in values]
        kinds = [frame.event for frame in frames if expected[str(frame.data)] == index]
        assert kinds == ["metric_created"] + ["metric_reading_created"] * (len(values) - 1)
    metrics_in_stream_order = [frame.json()["id"] for frame in frames if frame.event == "metric_created"]
    assert [metric.id for metric in hub.service.list_metrics()] == metrics_in_stream_order
    expect_no_more_events(hub, stream)


# --- MetricService methods: values, events, parity with HTTP --------------------------------------


def test_create_metric_returns_a_frozen_metric_and_emits_the_http_event(
    hub: Hub, http: httpx.Client, open_stream: OpenStream
) -> None:
    stream = open_stream(hub.url)
    stream.expect_open()
    # one name, two metrics: told apart by their labels (the same name and labels would be one metric)
    body = {"name": "  Température CPU ", "input_frequency": 5, "labels": {"via": "http"}}
    over_http = http.post("/metrics", json=body)
    assert over_http.status_code == 201
    metric = hub.service.create_metric("  Température CPU ", 5, labels={"via": "python"})
    plain = hub.service.create_metric("no frequency")

    assert isinstance(metric, Metric)
    assert (metric.name, metric.input_frequency) == ("Température CPU", 5.0)
    assert {**over_http.json(), "id": metric.id, "labels": {"via": "python"}} == metric.to_dict()
    assert plain.input_frequency is None
    with pytest.raises(dataclasses.FrozenInstanceError):
        metric.name = "renamed"  # type: ignore[misc]

    for data in (over_http.text, dumps(metric), dumps(plain)):
        frame = stream.next_event()
        assert (frame.event, frame.data) == ("metric_created", data)
    expect_no_more_events(hub, stream)


def test_create_reading_returns_a_frozen_reading_and_emits_the_http_event(
    hub: Hub, http: httpx.Client, open_stream: OpenStream
) -> None:
    metric = hub.service.create_metric("m")
    stream = open_stream(hub.url)
    stream.expect_open()
    before = datetime.now(UTC)
    now = hub.service.create_reading(metric.id, 42.5)
    after = datetime.now(UTC)
    aware = hub.service.create_reading(
        metric.id, 1.5, datetime(2026, 1, 1, 12, tzinfo=timezone(timedelta(hours=2)))
    )
    text = hub.service.create_reading(metric.id, 1.5, "2026-01-01T12:00:00.25+02:00")
    over_http = http.post(
        "/metrics/readings",
        json={"metric_id": metric.id, "value": 1.5, "timestamp": "2026-01-01T12:00:00.25+02:00"},
    )
    assert over_http.status_code == 201

    for reading in (now, aware, text):
        assert isinstance(reading, MetricReading)
        assert reading.metric_id == metric.id
        assert reading.timestamp.utcoffset() == timedelta(0)
        with pytest.raises(dataclasses.FrozenInstanceError):
            reading.value = 2.0  # type: ignore[misc]
    assert before <= now.timestamp <= after
    assert aware.timestamp == datetime(2026, 1, 1, 10, tzinfo=UTC)
    assert aware.to_dict()["timestamp"] == "2026-01-01T10:00:00.000000Z"
    assert text.timestamp == datetime(2026, 1, 1, 10, 0, 0, 250_000, tzinfo=UTC)
    assert {**over_http.json(), "id": text.id} == text.to_dict()

    for data in (dumps(now), dumps(aware), dumps(text), over_http.text):
        frame = stream.next_event()
        assert (frame.event, frame.data) == ("metric_reading_created", data)
    expect_no_more_events(hub, stream)


def test_create_readings_is_one_event_per_reading_and_all_or_nothing(
    hub: Hub, open_stream: OpenStream
) -> None:
    metric = hub.service.create_metric("m")
    stream = open_stream(hub.url)
    stream.expect_open()
    readings = hub.service.create_readings(
        [
            {"metric_id": metric.id, "value": 3},
            {"metric_id": metric.id, "value": 1, "timestamp": "2026-01-01T00:00:00Z"},
            {"metric_id": metric.id, "value": 2, "timestamp": datetime(2026, 1, 2, tzinfo=UTC)},
        ]
    )
    assert [reading.value for reading in readings] == [3.0, 1.0, 2.0]
    assert all(isinstance(reading, MetricReading) for reading in readings)
    for reading in readings:
        frame = stream.next_event()
        assert (frame.event, frame.data) == ("metric_reading_created", dumps(reading))

    with pytest.raises(ValidationError, match="value must be a finite number greater than 0"):
        hub.service.create_readings(
            [{"metric_id": metric.id, "value": 4}, {"metric_id": metric.id, "value": -1}]
        )
    with pytest.raises(NotFoundError):
        hub.service.create_readings(
            [{"metric_id": metric.id, "value": 4}, {"metric_id": UNKNOWN_V7, "value": 1}]
        )
    assert hub.service.create_readings([]) == []
    assert len(hub.service.list_readings(metric.id)) == 3
    expect_no_more_events(hub, stream)


def test_get_and_list_metrics_match_http(hub: Hub, http: httpx.Client, open_stream: OpenStream) -> None:
    stream = open_stream(hub.url)
    stream.expect_open()
    created = [hub.service.create_metric(name) for name in ("b", "a", "c")]
    got = hub.service.get_metric(created[1].id)
    assert got == created[1]
    assert hub.service.get_metric(created[1].id.upper()) == created[1]
    assert isinstance(got, Metric)
    with pytest.raises(dataclasses.FrozenInstanceError):
        got.input_frequency = 1.0  # type: ignore[misc]
    listed = hub.service.list_metrics()
    assert listed == created  # creation order
    assert [metric.to_dict() for metric in listed] == http.get("/metrics").json()
    assert got.to_dict() == http.get(f"/metrics/{got.id}").json()
    for metric in created:
        assert stream.next_event().data == dumps(metric)
    expect_no_more_events(hub, stream)  # reads emit nothing


def test_list_readings_since_until_limit_match_http(
    hub: Hub, http: httpx.Client, open_stream: OpenStream
) -> None:
    metric = hub.service.create_metric("m")
    other = hub.service.create_metric("other")
    hub.service.create_reading(other.id, 99, "2026-01-01T00:02:00Z")
    base = datetime(2026, 1, 1, tzinfo=UTC)
    for minute in (3, 0, 4, 1, 2):  # stored out of order
        hub.service.create_reading(metric.id, minute + 1, base + timedelta(minutes=minute))
    stream = open_stream(hub.url)
    stream.expect_open()

    def values(readings: list[MetricReading]) -> list[float]:
        return [reading.value for reading in readings]

    everything = hub.service.list_readings(metric.id)
    assert values(everything) == [1, 2, 3, 4, 5]
    assert all(isinstance(reading, MetricReading) for reading in everything)
    with pytest.raises(dataclasses.FrozenInstanceError):
        everything[0].timestamp = base  # type: ignore[misc]
    since, until = base + timedelta(minutes=1), base + timedelta(minutes=3)
    assert values(hub.service.list_readings(metric.id, since=since, until=until)) == [2, 3, 4]
    assert values(hub.service.list_readings(metric.id, since="2026-01-01T00:01:00Z")) == [2, 3, 4, 5]
    assert values(hub.service.list_readings(metric.id, until="2026-01-01T01:03:00+01:00")) == [1, 2, 3, 4]
    assert values(hub.service.list_readings(metric.id, limit=2)) == [1, 2]
    assert values(hub.service.list_readings(metric.id, since=since, limit=2)) == [2, 3]

    query = {"since": "2026-01-01T00:01:00Z", "until": "2026-01-01T00:03:00Z", "limit": "2"}
    over_http = http.get(f"/metrics/{metric.id}/readings", params=query)
    in_python = hub.service.list_readings(metric.id, query["since"], query["until"], 2)
    assert [reading.to_dict() for reading in in_python] == over_http.json()
    expect_no_more_events(hub, stream)


# --- errors -------------------------------------------------------------------------------------


def test_bad_input_raises_with_the_http_message_and_emits_nothing(
    hub: Hub, http: httpx.Client, open_stream: OpenStream
) -> None:
    metric = hub.service.create_metric("m")
    stream = open_stream(hub.url)
    stream.expect_open()
    service = hub.service
    cases: list[tuple[Callable[[], object], type[Exception], str, str, dict[str, Any] | None]] = [
        (lambda: service.create_metric("   "), ValueError, "POST", "/metrics", {"name": "   "}),
        (
            lambda: service.create_metric("m", -1),
            ValueError,
            "POST",
            "/metrics",
            {"name": "m", "input_frequency": -1},
        ),
        (
            lambda: service.create_reading(metric.id, 0),
            ValueError,
            "POST",
            "/metrics/readings",
            {"metric_id": metric.id, "value": 0},
        ),
        (
            lambda: service.create_reading("nope", 1),
            ValueError,
            "POST",
            "/metrics/readings",
            {"metric_id": "nope", "value": 1},
        ),
        (
            lambda: service.create_reading(metric.id, 1, "yesterday"),
            ValueError,
            "POST",
            "/metrics/readings",
            {"metric_id": metric.id, "value": 1, "timestamp": "yesterday"},
        ),
        (
            lambda: service.create_reading(UNKNOWN_V7, 1),
            LookupError,
            "POST",
            "/metrics/readings",
            {"metric_id": UNKNOWN_V7, "value": 1},
        ),
        (lambda: service.get_metric("nope"), ValueError, "GET", "/metrics/nope", None),
        (lambda: service.get_metric(UNKNOWN_V7), LookupError, "GET", f"/metrics/{UNKNOWN_V7}", None),
        (
            lambda: service.list_readings(UNKNOWN_V7),
            LookupError,
            "GET",
            f"/metrics/{UNKNOWN_V7}/readings",
            None,
        ),
        (
            lambda: service.list_readings(metric.id, limit=0),
            ValueError,
            "GET",
            f"/metrics/{metric.id}/readings?limit=0",
            None,
        ),
        (
            lambda: service.list_readings(
                metric.id, since="2026-01-02T00:00:00Z", until="2026-01-01T00:00:00Z"
            ),
            ValueError,
            "GET",
            f"/metrics/{metric.id}/readings?since=2026-01-02T00:00:00Z&until=2026-01-01T00:00:00Z",
            None,
        ),
    ]
    for call, kind, method, path, body in cases:
        expected = ValidationError if kind is ValueError else NotFoundError
        with pytest.raises(kind) as caught:
            call()
        assert type(caught.value) is expected, path
        answer = http.request(method, path, json=body)
        assert answer.status_code == expected.status_code, path
        assert answer.json() == {"error": str(caught.value)}, path

    for python_only in (
        lambda: service.create_reading(metric.id, float("nan")),
        lambda: service.create_reading(metric.id, float("inf")),
        lambda: service.create_reading(metric.id, 1, datetime(2026, 1, 1)),  # naive
        lambda: service.list_readings(metric.id, since=datetime(2026, 1, 1)),
    ):
        with pytest.raises(ValidationError):
            python_only()
    assert service.list_metrics() == [metric]
    assert service.list_readings(metric.id) == []
    expect_no_more_events(hub, stream)


# --- settings -----------------------------------------------------------------------------------


def test_settings_from_keyword_arguments() -> None:
    hub = Hub(port=0, max_clients=5, heartbeat=2.5)
    assert hub.settings.max_clients == 5
    assert hub.settings.heartbeat == 2.5
    assert hub.settings.port == 0


def test_settings_reach_the_running_server(make_hub: MakeHub, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("METRICSTREAM_RETRY", "1234")
    hub = make_hub(max_clients=5)
    assert hub.app.broadcaster.max_clients == 5
    stream = RawStream(hub.url)
    try:
        assert stream.next_frame().get("retry") == "1234"
    finally:
        stream.close()


def test_uvloop_that_is_not_installed_is_refused_plainly() -> None:
    """Where uvloop cannot be imported (Windows, or the extra left out), `Hub(loop="uvloop")` says how
    to get it, before any thread or port is taken."""
    script = (
        "import sys; sys.modules['uvloop'] = None\n"  # as if it were not installed
        "from metricstream import Hub, ValidationError\n"
        "try:\n"
        "    Hub(port=0, loop='uvloop')\n"
        "except ValidationError as error:\n"
        "    print(error)\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, timeout=60, check=True)
    assert done.stdout.decode().strip() == (
        'loop="uvloop" needs uvloop: pip install "metricstream[uvloop]" (not on Windows)'
    )
