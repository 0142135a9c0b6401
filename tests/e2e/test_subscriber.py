"""`Subscriber` and `AsyncSubscriber` end to end against a real Hub: events, filters, resuming, reset,
closing, and reconnecting without loss when the connection is cut under them (through `FaultProxy`) or
the server evicts them."""

from __future__ import annotations

import logging
import queue
import socket
import subprocess
import sys
import textwrap
import threading
import time
import uuid
from collections.abc import Callable, Iterator

import httpx
import pytest

from metricstream.client.core import StreamEvent
from metricstream.client.subscribers import Subscriber
from metricstream.errors import SubscriptionError
from metricstream.server.hub import Hub
from tests.support.hubs import wait_for
from tests.support.proxy import FaultProxy
from tests.support.raw_stream import RawStream
from tests.support.subscribers import (
    METRIC_CREATED,
    READING_CREATED,
    TAKE_TIMEOUT,
    Consumer,
    assert_each_once_in_order,
    clients,
    consumer_threads,
    position,
    values,
)


@pytest.fixture
def consume() -> Iterator[Callable[[Subscriber], Consumer]]:
    consumers: list[Consumer] = []

    def start(sub: Subscriber) -> Consumer:
        consumers.append(Consumer(sub))
        return consumers[-1]

    yield start
    for consumer in consumers:
        consumer.close()


Consume = Callable[[Subscriber], Consumer]


# -- receiving


def test_receives_both_event_types_as_the_post_bodies(hub: Hub, http: httpx.Client, consume: Consume) -> None:
    consumer = consume(Subscriber(hub.url))
    wait_for(lambda: clients(hub) == 1, what="the subscriber to connect")
    metric = http.post("/metrics", json={"name": "CPU Temperature", "input_frequency": 5})
    reading = http.post("/metrics/readings", json={"metric_id": metric.json()["id"], "value": 42.5})
    created, recorded = consumer.take(2)  # `connected` came first but is not yielded
    assert isinstance(created, StreamEvent)
    assert (created.type, created.data) == (METRIC_CREATED, metric.json())
    assert (recorded.type, recorded.data) == (READING_CREATED, reading.json())
    assert created.id < recorded.id  # UUIDv7 event ids from one process
    assert consumer.sub.last_event_id == recorded.id == position(hub)


def test_hub_subscribe_passes_filters(hub: Hub, consume: Consume) -> None:
    start = position(hub)
    kept = hub.service.create_metric("kept")
    other = hub.service.create_metric("other")
    sub = hub.subscribe(last_event_id=start, metric_id=kept.id)
    assert isinstance(sub, Subscriber)
    assert str(sub.url) == f"{hub.url}/events/watch"
    consumer = consume(sub)
    hub.service.create_reading(other.id, 1)
    hub.service.create_reading(kept.id, 2)
    [event] = consumer.take(1)
    assert (event.type, event.data["metric_id"], event.data["value"]) == (READING_CREATED, kept.id, 2)


def test_type_filter_applies_to_replay_and_live(hub: Hub, consume: Consume) -> None:
    start = position(hub)
    first = hub.service.create_metric("first")
    hub.service.create_reading(first.id, 1)
    second = hub.service.create_metric("second")
    consumer = consume(Subscriber(hub.url, last_event_id=start, types=[METRIC_CREATED]))
    assert [event.data["id"] for event in consumer.take(2)] == [first.id, second.id]  # replayed
    hub.service.create_reading(second.id, 2)
    third = hub.service.create_metric("third")
    [live] = consumer.take(1)  # the reading in between was filtered out
    assert (live.type, live.data["id"]) == (METRIC_CREATED, third.id)


def test_metric_id_filter_applies_to_replay_and_live(hub: Hub, consume: Consume) -> None:
    start = position(hub)
    kept, other = hub.service.create_metric("kept"), hub.service.create_metric("other")
    for value in (1, 2, 3):
        hub.service.create_reading(kept.id, value)
        hub.service.create_reading(other.id, value * 10)
    consumer = consume(Subscriber(hub.url, last_event_id=start, types=[READING_CREATED], metric_id=kept.id))
    assert values(consumer.take(3)) == [1, 2, 3]
    hub.service.create_metric("ignored")
    hub.service.create_reading(other.id, 40)
    hub.service.create_reading(kept.id, 4)
    assert values(consumer.take(1)) == [4]


def test_a_rejected_filter_raises_value_error(hub: Hub) -> None:
    # Entering `with` connects, so the refusal comes from there; it is a ValueError still.
    with pytest.raises(ValueError, match=r"400.*types"), Subscriber(hub.url, types=["nope"]):
        pass
    sub = Subscriber(hub.url, types=["nope"])
    with pytest.raises(SubscriptionError, match=r"400.*types") as refused:
        next(iter(sub))
    assert refused.value.status == 400
    sub.close()


# -- resuming


def test_last_event_id_replays_what_came_after_then_live(hub: Hub, consume: Consume) -> None:
    metric = hub.service.create_metric("m")
    after_metric = position(hub)
    for value in (1, 2, 3):
        hub.service.create_reading(metric.id, value)
    consumer = consume(Subscriber(hub.url, last_event_id=after_metric))
    assert values(consumer.take(3)) == [1, 2, 3]
    hub.service.create_reading(metric.id, 4)
    assert values(consumer.take(1)) == [4]


def test_a_new_subscriber_resumes_where_a_closed_one_stopped(hub: Hub, consume: Consume) -> None:
    metric = hub.service.create_metric("m")
    first = consume(Subscriber(hub.url, last_event_id=position(hub)))
    for value in (1, 2):
        hub.service.create_reading(metric.id, value)
    assert values(first.take(2)) == [1, 2]
    first.close()
    for value in (3, 4):
        hub.service.create_reading(metric.id, value)
    second = consume(Subscriber(hub.url, last_event_id=first.sub.last_event_id))
    assert values(second.take(2)) == [3, 4]


def test_unknown_last_event_id_yields_reset_then_live(hub: Hub, consume: Consume) -> None:
    metric = hub.service.create_metric("m")
    newest = position(hub)
    unknown = str(uuid.uuid4())
    consumer = consume(Subscriber(hub.url, last_event_id=unknown))
    [reset] = consumer.take(1)
    assert reset.type == "reset"
    assert reset.data == {"reason": "unknown_last_event_id", "last_event_id": unknown}
    assert reset.id == newest  # where the stream now stands
    assert consumer.sub.last_event_id == newest
    reading = hub.service.create_reading(metric.id, 7)
    [live] = consumer.take(1)
    assert (live.type, live.data["id"]) == (READING_CREATED, reading.id)


# -- closing


def test_close_from_another_thread_ends_a_blocked_iteration_promptly(make_hub: Callable[..., Hub]) -> None:
    hub = make_hub(heartbeat=60)  # no traffic at all: the iteration is blocked in a socket read
    sub = Subscriber(hub.url)
    closed_at: list[float] = []

    def close_once_connected() -> None:
        wait_for(lambda: clients(hub) == 1, what="the subscriber to connect")
        closed_at.append(time.monotonic())
        sub.close()

    closer = threading.Thread(target=close_once_connected)
    closer.start()
    received = list(sub)
    ended = time.monotonic()
    closer.join()
    assert received == []
    assert ended - closed_at[0] < 1.0
    wait_for(lambda: clients(hub) == 0, what="the server to see the client leave")


def test_close_ends_an_iteration_waiting_for_a_stalled_servers_answer() -> None:
    with socket.create_server(("127.0.0.1", 0)) as server:  # accepts, reads, never answers
        host, port = server.getsockname()[:2]
        sub = Subscriber(f"http://{host}:{port}")
        ended = threading.Event()

        def iterate() -> None:
            assert list(sub) == []
            ended.set()

        iterating = threading.Thread(target=iterate)
        iterating.start()
        server.settimeout(10)
        connection, _ = server.accept()
        with connection:
            request = b""
            while b"\r\n\r\n" not in request:  # the subscriber now waits for the response headers
                chunk = connection.recv(4096)
                assert chunk, "the subscriber hung up"
                request += chunk
            assert request.startswith(b"GET /events/watch ")
            # Nothing signals that the subscriber's thread has gone on to block in recv(); give it a
            # moment, or close() could win the race and pass this test without being tested.
            time.sleep(0.3)
            closed_at = time.monotonic()
            sub.close()
            assert ended.wait(5)
            assert time.monotonic() - closed_at < 1.0
        iterating.join(5)


def test_context_manager_closes_and_a_closed_subscriber_cannot_be_reused(hub: Hub) -> None:
    metric = hub.service.create_metric("m")
    start = position(hub)
    hub.service.create_reading(metric.id, 1)
    with Subscriber(hub.url, last_event_id=start) as sub:
        for event in sub:
            assert event.data["value"] == 1
            break
    wait_for(lambda: clients(hub) == 0, what="the server to see the client leave")
    with pytest.raises(RuntimeError, match="closed"):
        iter(sub)


# -- reconnecting


def test_reconnects_without_loss_when_the_connection_is_cut(
    make_hub: Callable[..., Hub], consume: Consume
) -> None:
    hub = make_hub(retry=50)
    metric = hub.service.create_metric("m")
    with FaultProxy(hub.url) as proxy:
        consumer = consume(Subscriber(proxy.url, last_event_id=position(hub)))
        sent: list[float] = []
        cuts = 5
        for _ in range(cuts):
            # The subscriber is streaming (it has everything so far); cut right behind a burst, so events
            # are in flight, and keep publishing while it is away.
            for _ in range(40):
                sent.append(hub.service.create_reading(metric.id, len(sent) + 1).value)
            assert proxy.cut() == 1
            for _ in range(40):
                sent.append(hub.service.create_reading(metric.id, len(sent) + 1).value)
            assert_each_once_in_order(consumer.take(80), sent[-80:])
        assert proxy.accepted >= cuts + 1  # every cut was followed by a reconnection


def test_a_subscriber_that_saw_no_event_yet_loses_none_when_cut(
    make_hub: Callable[..., Hub], consume: Consume
) -> None:
    hub = make_hub(retry=50)
    metric = hub.service.create_metric("m")
    with FaultProxy(hub.url) as proxy:
        sub = Subscriber(proxy.url)  # no position of its own: `connected` gives it one
        consumer = consume(sub)
        wait_for(lambda: sub.last_event_id == hub.service.last_event_id, what="connected")
        assert proxy.cut() == 1
        missed = hub.service.create_reading(metric.id, 1)  # while it is away
        assert [event.data["id"] for event in consumer.take(1)] == [missed.id]


def test_reconnects_without_loss_when_cut_during_a_stream_of_publishes(
    make_hub: Callable[..., Hub], consume: Consume
) -> None:
    hub = make_hub(retry=50)
    metric = hub.service.create_metric("m")
    total, cuts = 600, 6
    with FaultProxy(hub.url) as proxy:
        consumer = consume(Subscriber(proxy.url, last_event_id=position(hub)))

        def publish() -> None:
            for value in range(1, total + 1):
                hub.service.create_reading(metric.id, value)

        publisher = threading.Thread(target=publish)
        publisher.start()
        received: list[StreamEvent] = []
        for cut in range(cuts):
            proxy.wait_for_accepted(cut + 1)  # (re)connected: this connection is open until cut
            received += consumer.take(total // (cuts + 1))
            assert proxy.cut() == 1, f"cut {cut}"
        publisher.join()
        proxy.wait_for_accepted(cuts + 1)  # it comes back even when nothing is left to deliver
        received += consumer.take(total - len(received))
    assert_each_once_in_order(received, list(range(1, total + 1)))
    assert proxy.accepted >= cuts + 1


def test_reconnects_without_loss_after_eviction(
    make_hub: Callable[..., Hub], consume: Consume, open_stream: Callable[..., RawStream]
) -> None:
    hub = make_hub(max_clients=1, retry=50)
    metric = hub.service.create_metric("m")
    consumer = consume(Subscriber(hub.url, last_event_id=position(hub)))
    for value in (1, 2, 3):
        hub.service.create_reading(metric.id, value)
    assert values(consumer.take(3)) == [1, 2, 3]
    intruder = open_stream(hub.url)  # the limit is 1: the subscriber is told `disconnected` and closed
    intruder.expect_open()
    for value in (4, 5, 6):
        hub.service.create_reading(metric.id, value)
    # The subscriber comes back and in turn evicts the intruder, whose stream then ends.
    assert intruder.read_to_end()[-1].data == "disconnected"
    assert_each_once_in_order(consumer.take(3), [4, 5, 6])  # `disconnected` was not yielded
    hub.service.create_reading(metric.id, 7)
    assert values(consumer.take(1)) == [7]


def test_honours_the_server_retry_interval(make_hub: Callable[..., Hub], consume: Consume) -> None:
    hub = make_hub(retry=50)
    metric = hub.service.create_metric("m")
    with FaultProxy(hub.url) as proxy:
        consumer = consume(Subscriber(proxy.url, last_event_id=position(hub)))
        for attempt in range(1, 4):
            hub.service.create_reading(metric.id, attempt)
            consumer.take(1)
            assert consumer.sub.retry_ms == 50
            cut_at = time.monotonic()
            assert proxy.cut() == 1
            proxy.wait_for_accepted(attempt + 1)
            # Jittered within [retry/2, retry] (50 ms raised to the client's 100 ms floor); without the
            # server's value the first delay would be at least 0.5 s.
            assert 0.05 <= time.monotonic() - cut_at < 0.5


# -- on_event: a callback on a background thread


class Collect:
    """An `on_event` callback that queues each event and notes the thread it was called on."""

    def __init__(self) -> None:
        self.events: queue.Queue[StreamEvent] = queue.Queue()
        self.threads: set[threading.Thread] = set()

    def __call__(self, event: StreamEvent) -> None:
        self.threads.add(threading.current_thread())
        self.events.put(event)

    def take(self, count: int) -> list[StreamEvent]:
        deadline = time.monotonic() + TAKE_TIMEOUT
        try:
            return [self.events.get(timeout=max(0.0, deadline - time.monotonic())) for _ in range(count)]
        except queue.Empty:
            raise AssertionError(f"fewer than {count} events within {TAKE_TIMEOUT}s") from None


def wait_until_stopped(sub: Subscriber) -> None:
    for thread in consumer_threads(sub):
        thread.join(TAKE_TIMEOUT)
    assert consumer_threads(sub) == []


def test_on_event_calls_back_on_a_daemon_thread_and_close_joins_it(hub: Hub, http: httpx.Client) -> None:
    collect = Collect()
    sub = hub.subscribe()
    assert sub.on_event(collect) is sub  # returns at once: `sub = hub.subscribe().on_event(print)`
    wait_for(lambda: clients(hub) == 1, what="the subscriber to connect")
    metric = http.post("/metrics", json={"name": "CPU Temperature"})
    reading = http.post("/metrics/readings", json={"metric_id": metric.json()["id"], "value": 42.5})
    created, recorded = collect.take(2)
    assert (created.type, created.data) == (METRIC_CREATED, metric.json())
    assert (recorded.type, recorded.data) == (READING_CREATED, reading.json())
    [thread] = collect.threads
    assert thread is not threading.current_thread()
    assert thread.daemon  # never keeps an interpreter or a Jupyter kernel from exiting
    assert consumer_threads(sub) == [thread]

    closed_at = time.monotonic()
    sub.close()
    assert time.monotonic() - closed_at < 1.0
    assert not thread.is_alive()
    assert sub.error is None
    wait_for(lambda: clients(hub) == 0, what="the server to see the client leave")


def test_close_stops_an_idle_consumer_promptly(make_hub: Callable[..., Hub]) -> None:
    hub = make_hub(heartbeat=60)  # no traffic at all: the consumer is blocked in a socket read
    with hub.subscribe().on_event(Collect()) as sub:
        wait_for(lambda: clients(hub) == 1, what="the subscriber to connect")
        [thread] = consumer_threads(sub)
        closed_at = time.monotonic()
    assert time.monotonic() - closed_at < 1.0  # leaving the block closed it and joined the thread
    assert not thread.is_alive()
    wait_for(lambda: clients(hub) == 0, what="the server to see the client leave")


def test_close_from_the_callback_itself_stops_after_that_event(hub: Hub) -> None:
    metric = hub.service.create_metric("m")
    start = position(hub)
    for value in range(1, 6):
        hub.service.create_reading(metric.id, value)
    seen: list[float] = []

    def take_two(event: StreamEvent) -> None:
        seen.append(event.data["value"])
        if len(seen) == 2:
            sub.close()  # from the consumer's own thread: must not wait for itself

    sub = Subscriber(hub.url, last_event_id=start)  # bound before the callback can run
    sub.on_event(take_two)
    wait_until_stopped(sub)
    assert seen == [1, 2]  # all five were replayed at once; none was handed over after close()
    assert sub.error is None
    sub.close()  # closing again is harmless


class Boom(Exception):
    pass


def test_a_raising_callback_stops_the_consumer_is_logged_and_kept(
    hub: Hub, caplog: pytest.LogCaptureFixture
) -> None:
    metric = hub.service.create_metric("m")
    start = position(hub)
    for value in (1, 2, 3):
        hub.service.create_reading(metric.id, value)
    seen: list[float] = []

    def fail_on_the_second(event: StreamEvent) -> None:
        seen.append(event.data["value"])
        if len(seen) == 2:
            raise Boom("the callback failed")

    with caplog.at_level(logging.ERROR, logger="metricstream.client"):
        sub = Subscriber(hub.url, last_event_id=start).on_event(fail_on_the_second)
        wait_until_stopped(sub)
    assert seen == [1, 2]
    assert isinstance(sub.error, Boom)
    [record] = [record for record in caplog.records if record.name == "metricstream.client"]
    assert record.levelno == logging.ERROR
    assert record.exc_info is not None
    assert record.exc_info[1] is sub.error
    assert "on_event callback" in record.getMessage()
    assert hub.url in record.getMessage()
    wait_for(lambda: clients(hub) == 0, what="the failed consumer to release its connection")
    with pytest.raises(RuntimeError, match="closed"):
        sub.on_event(Collect())


def test_a_refused_subscription_stops_the_consumer_with_the_error(
    hub: Hub, caplog: pytest.LogCaptureFixture
) -> None:
    collect = Collect()
    with caplog.at_level(logging.ERROR, logger="metricstream.client"):
        sub = Subscriber(hub.url, types=["nope"]).on_event(collect)
        wait_until_stopped(sub)
    assert isinstance(sub.error, ValueError)
    assert "400" in str(sub.error)
    assert collect.events.empty()
    [record] = [record for record in caplog.records if record.name == "metricstream.client"]
    assert "subscription failed" in record.getMessage()
    assert record.exc_info is not None
    assert record.exc_info[1] is sub.error


def test_one_consumer_at_a_time(hub: Hub) -> None:
    metric = hub.service.create_metric("m")
    start = position(hub)
    first = hub.service.create_reading(metric.id, 1)
    sub = Subscriber(hub.url, last_event_id=start)
    collect = Collect()
    for event in sub:
        assert event.data["id"] == first.id
        with pytest.raises(RuntimeError, match="already being iterated"):
            sub.on_event(collect)
        with pytest.raises(RuntimeError, match="already being iterated"):
            iter(sub)
        break

    sub.on_event(collect)  # that iteration is over: a callback may take over, from where it stopped
    with pytest.raises(RuntimeError, match="on_event"):
        sub.on_event(collect)
    with pytest.raises(RuntimeError, match="on_event"):
        iter(sub)
    second = hub.service.create_reading(metric.id, 2)
    [event] = collect.take(1)
    assert event.data["id"] == second.id  # not `first` again
    sub.close()
    with pytest.raises(RuntimeError, match="closed"):
        sub.on_event(collect)


# -- packaging


def test_client_imports_without_the_server_dependencies() -> None:
    script = textwrap.dedent(
        """
        import sys

        BLOCKED = {"quart", "quart_schema", "hypercorn", "werkzeug"}

        class Blocker:
            def find_spec(self, name, path=None, target=None):
                if name.partition(".")[0] in BLOCKED:
                    raise ImportError(f"{name} is blocked for this test")
                return None

        sys.meta_path.insert(0, Blocker())

        from metricstream import AsyncSubscriber, StreamEvent, Subscriber

        Subscriber("http://127.0.0.1:1").close()
        try:
            import metricstream.server.serving
        except ImportError:
            pass
        else:
            raise SystemExit("the blocker did not block hypercorn")
        print(sorted(name for name in sys.modules if name.partition(".")[0] in BLOCKED))
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=30, check=False
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


# -- where a subscription starts


def test_what_comes_after_hub_subscribe_and_before_iteration_is_delivered(hub: Hub) -> None:
    cpu = hub.service.create_metric("cpu")
    with hub.subscribe() as events:
        reading = hub.service.create_reading(cpu.id, 1)  # before iteration starts
        first = next(iter(events))
    assert (first.type, first.data["id"]) == (READING_CREATED, reading.id)


def test_hub_subscribe_fixes_the_position_even_without_with(hub: Hub) -> None:
    cpu = hub.service.create_metric("cpu")
    events = hub.subscribe()  # in-process: the position is taken here, no connection yet
    reading = hub.service.create_reading(cpu.id, 1)
    try:
        assert next(iter(events)).data["id"] == reading.id
    finally:
        events.close()


def test_what_comes_after_entering_a_remote_subscriber_is_delivered(hub: Hub) -> None:
    cpu = hub.service.create_metric("cpu")
    with Subscriber(hub.url) as events:  # connects before the block runs
        reading = hub.service.create_reading(cpu.id, 1)
        first = next(iter(events))
    assert first.data["id"] == reading.id


def test_connect_fixes_the_position_and_on_event_returns_connected(hub: Hub) -> None:
    cpu = hub.service.create_metric("cpu")
    sub = Subscriber(hub.url).connect()
    reading = hub.service.create_reading(cpu.id, 1)
    collect = Collect()
    sub.on_event(collect)  # it takes over the connection that connect() opened
    try:
        assert [event.data["id"] for event in collect.take(1)] == [reading.id]
    finally:
        sub.close()
    late = Collect()
    other = Subscriber(hub.url).on_event(late)  # returns once connected: the next reading arrives
    try:
        second = hub.service.create_reading(cpu.id, 2)
        assert [event.data["id"] for event in late.take(1)] == [second.id]
    finally:
        other.close()


def test_start_earliest_replays_what_is_retained_even_after_trimming(make_hub: Callable[..., Hub]) -> None:
    from metricstream.clock import ManualClock

    clock = ManualClock()
    hub = make_hub(clock=clock, event_ttl=60)
    cpu = hub.service.create_metric("cpu")
    clock.advance(120)  # a sweep trims the metric's event: GENESIS_ID now means "lost history"
    wait_for(lambda: len(hub.app.log) == 0, what="the sweep")
    kept = hub.service.create_reading(cpu.id, 1)
    with hub.subscribe(start="earliest") as events:
        first = next(iter(events))
    assert (first.type, first.data["id"]) == (
        READING_CREATED,
        kept.id,
    )  # no reset: nothing it asked for is gone
    with Subscriber(hub.url, start="earliest") as remote:
        assert next(iter(remote)).data["id"] == kept.id


def test_a_snapshot_and_its_position_need_no_dedupe(hub: Hub) -> None:
    cpu = hub.service.create_metric("cpu")
    before = hub.service.create_reading(cpu.id, 1)
    snapshot = hub.service.snapshot(readings_limit=10)
    assert snapshot.metrics == [cpu]
    assert snapshot.readings == {cpu.id: [before]}
    after = hub.service.create_reading(cpu.id, 2)
    with hub.subscribe(last_event_id=snapshot.last_event_id) as events:
        first = next(iter(events))
    assert first.data["id"] == after.id  # not `before`, which the snapshot holds already
    with pytest.raises(ValueError, match="readings_limit must be an integer"):
        hub.service.snapshot(readings_limit=0)
