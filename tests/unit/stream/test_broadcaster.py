"""`Broadcaster` driven directly, with a fake write and a `ManualClock`: lag, heartbeats, the write
watchdog, and what it holds while idle."""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable, Coroutine
from typing import Any

import pytest

from metricstream.clock import ManualClock
from metricstream.domain.values import MetricReading
from metricstream.ids import new_id, new_ids
from metricstream.stream.broadcaster import Broadcaster, Client
from metricstream.stream.log import Event, EventLog
from metricstream.stream.sse import PING
from metricstream.wire import READING_CREATED

METRIC = new_id()


def events(count: int, created: float = 0.0) -> list[Event]:
    from datetime import UTC, datetime

    moment = datetime(2026, 1, 1, tzinfo=UTC)
    ids = new_ids(2 * count)
    return [
        Event.create(READING_CREATED, MetricReading(ids[2 * i], METRIC, 1.0, moment), created, ids[2 * i + 1])
        for i in range(count)
    ]


def broadcaster(clock: ManualClock, **settings: Any) -> Broadcaster:
    defaults: dict[str, Any] = {
        "max_clients": 100,
        "client_buffer": 1024,
        "write_timeout": 10.0,
        "heartbeat": 15.0,
        "retry": 2000,
    }
    return Broadcaster(EventLog(60), clock=clock, **{**defaults, **settings})


class FakePeer:
    """A write that records what it was sent and blocks while `gate` is clear."""

    def __init__(self) -> None:
        self.chunks: list[bytes] = []
        self.gate = asyncio.Event()
        self.gate.set()
        self.writing = asyncio.Event()  # set while a write waits at the gate

    async def write(self, chunk: bytes) -> None:
        self.writing.set()
        await self.gate.wait()
        self.writing.clear()
        self.chunks.append(chunk)

    def frames(self, what: bytes) -> int:
        return sum(chunk.count(what) for chunk in self.chunks)


async def until(predicate: Callable[[], bool], what: str) -> None:
    async with asyncio.timeout(10):
        while not predicate():  # noqa: ASYNC110 - a snapshot has no event; one loop turn at a time
            await asyncio.sleep(0)
    assert predicate(), what


def run(main: Callable[[], Coroutine[Any, Any, None]]) -> None:
    asyncio.run(main())


def test_two_batches_of_five_thousand_do_not_drop_a_client_that_keeps_up() -> None:
    async def main() -> None:
        hub = broadcaster(ManualClock())
        peer = FakePeer()
        client = hub.connect()
        task = asyncio.create_task(hub.serve(client, peer.write))
        await until(lambda: hub.statistics().waiting == 1, "idle")
        peer.gate.clear()
        hub.publish(events(5000))
        await peer.writing.wait()  # busy writing the first batch's first chunk...
        hub.publish(events(5000))  # ...when the second batch comes: 5,000 past its mark
        peer.gate.set()
        await until(lambda: peer.frames(b"event: metric_reading_created") == 10_000, "all 10,000 sent")
        assert client.reason is None
        assert hub.statistics().dropped == {}
        hub._drop(client, "test")
        await task

    run(main)


def test_a_client_two_publishes_behind_by_more_than_its_buffer_is_slow() -> None:
    async def main() -> None:
        hub = broadcaster(ManualClock(), client_buffer=100)
        peer = FakePeer()
        client = hub.connect()
        task = asyncio.create_task(hub.serve(client, peer.write))
        await until(lambda: hub.statistics().waiting == 1, "idle")
        peer.gate.clear()
        hub.publish(events(500))
        await peer.writing.wait()  # stuck in its first write (its preamble went before)
        hub.publish(events(500))
        hub.publish(events(1))  # now 1,000 behind, not counting the latest publish
        peer.gate.set()
        await task
        assert client.reason == "slow"
        assert hub.statistics().dropped == {"slow": 1}

    run(main)


@pytest.mark.slow
def test_a_quiet_day_of_heartbeats_holds_nothing_but_the_clients() -> None:
    async def main() -> None:
        clock = ManualClock()
        hub = broadcaster(clock, heartbeat=60.0)
        peers = [FakePeer() for _ in range(20)]
        clients = [hub.connect() for _ in peers]
        tasks = [asyncio.create_task(hub.serve(c, p.write)) for c, p in zip(clients, peers, strict=True)]
        maintenance = asyncio.create_task(hub.run_maintenance())
        await until(lambda: hub.statistics().waiting == 20 and clock.sleepers == 1, "idle")
        for beat in range(1, 24 * 60 + 1):  # a day, a heartbeat a minute
            clock.advance(60)
            pinged = functools.partial(lambda count: all(p.frames(PING) == count for p in peers), beat)
            await until(pinged, f"ping {beat}")
            await until(lambda: hub.statistics().waiting == 20 and clock.sleepers == 1, "idle again")
        stats = hub.statistics()
        assert (stats.clients, stats.waiting, stats.published) == (20, 20, 0)
        for client in clients:
            hub.disconnect(client)
        await asyncio.gather(*tasks)
        assert hub.statistics().waiting == 0
        assert hub.statistics().clients == 0
        maintenance.cancel()

    run(main)


def test_the_watchdog_drops_a_write_stalled_past_write_timeout() -> None:
    async def main() -> None:
        clock = ManualClock()
        hub = broadcaster(clock, write_timeout=10.0)
        stalled, healthy = FakePeer(), FakePeer()
        slow_client, fine_client = hub.connect(), hub.connect()
        tasks = [
            asyncio.create_task(hub.serve(slow_client, stalled.write)),
            asyncio.create_task(hub.serve(fine_client, healthy.write)),
        ]
        maintenance = asyncio.create_task(hub.run_maintenance())
        await until(lambda: hub.statistics().waiting == 2, "idle")
        stalled.gate.clear()
        hub.publish(events(1))
        await stalled.writing.wait()
        clock.advance(9.0)  # not yet
        await until(lambda: clock.sleepers == 1, "maintenance asleep again")
        assert slow_client.reason is None
        clock.advance(1.0)
        await tasks[0]
        assert slow_client.reason == "write_timeout"
        assert fine_client.reason is None
        assert hub.statistics().dropped == {"write_timeout": 1}
        hub.disconnect(fine_client)
        await tasks[1]
        maintenance.cancel()

    run(main)


def test_a_client_is_a_cursor_not_a_queue() -> None:
    hub = broadcaster(ManualClock())
    client = hub.connect()
    assert isinstance(client, Client)
    hub.log.extend(events(3))
    assert client.cursor == 0
    assert hub.statistics().retained == 3


def test_connect_says_whether_it_sent_reset() -> None:
    hub = broadcaster(ManualClock())
    hub.log.extend(events(2))
    known = hub.connect(hub.log.position_id)
    unknown = hub.connect(new_id())
    assert (known.reset, unknown.reset) == (False, True)
    assert b"event: reset" in unknown.preamble
    assert b"event: reset" not in known.preamble
    assert hub.statistics().resets == 1
