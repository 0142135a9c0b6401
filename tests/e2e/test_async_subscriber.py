"""`AsyncSubscriber` end to end against a real Hub, under asyncio and trio alike (pytest's anyio plugin):
events, filters, resuming, reset, starting points, closing, and reconnecting without loss when the
connection is cut under it."""

from __future__ import annotations

import math
import socket
import time
import uuid
from collections.abc import Callable

import anyio
import httpx
import pytest
from anyio.abc import TaskGroup

from metricstream.client.core import StreamEvent
from metricstream.client.subscribers import AsyncSubscriber
from metricstream.errors import SubscriptionError
from metricstream.server.hub import Hub
from tests.support.hubs import wait_for
from tests.support.proxy import FaultProxy
from tests.support.stores import T
from tests.support.subscribers import (
    METRIC_CREATED,
    READING_CREATED,
    TAKE_TIMEOUT,
    assert_each_once_in_order,
    clients,
    position,
    values,
)

pytestmark = pytest.mark.anyio


@pytest.fixture(params=["asyncio", "trio"])
def anyio_backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


class AsyncConsumer:
    """Iterates an `AsyncSubscriber` in a task of `group`; `take` awaits what it yields."""

    def __init__(self, sub: AsyncSubscriber, group: TaskGroup) -> None:
        self.sub = sub
        self._send, self._items = anyio.create_memory_object_stream[StreamEvent | Exception | None](math.inf)
        self.done = anyio.Event()
        group.start_soon(self._run)

    async def _run(self) -> None:
        try:
            async for event in self.sub:
                self._send.send_nowait(event)
        except Exception as exc:
            self._send.send_nowait(exc)
        finally:
            self._send.send_nowait(None)
            self.done.set()

    async def take(self, count: int) -> list[StreamEvent]:
        events: list[StreamEvent] = []
        with anyio.move_on_after(TAKE_TIMEOUT):
            while len(events) < count:
                item = await self._items.receive()
                if item is None:
                    raise AssertionError(f"iteration ended after {len(events)} of {count} events")
                if isinstance(item, Exception):
                    raise item
                events.append(item)
        if len(events) < count:
            raise AssertionError(f"got {len(events)} of {count} events; last: {events[-1:]}")
        return events

    async def close(self) -> None:
        await self.sub.aclose()
        with anyio.fail_after(5):
            await self.done.wait()
        self._send.close()
        self._items.close()


async def connected(hub: Hub, count: int = 1) -> None:
    await anyio.to_thread.run_sync(lambda: wait_for(lambda: clients(hub) == count, what=f"{count} client(s)"))


async def in_thread(function: Callable[..., T], *args: object) -> T:
    return await anyio.to_thread.run_sync(lambda: function(*args))


async def test_async_receives_both_event_types_as_the_post_bodies(hub: Hub) -> None:
    async with httpx.AsyncClient(base_url=hub.url) as http, anyio.create_task_group() as group:
        consumer = AsyncConsumer(AsyncSubscriber(hub.url), group)
        await connected(hub)
        metric = await http.post("/metrics", json={"name": "CPU Temperature"})
        reading = await http.post("/metrics/readings", json={"metric_id": metric.json()["id"], "value": 3})
        created, recorded = await consumer.take(2)
        assert (created.type, created.data) == (METRIC_CREATED, metric.json())
        assert (recorded.type, recorded.data) == (READING_CREATED, reading.json())
        await consumer.close()
    await connected(hub, 0)


async def test_what_comes_after_async_with_and_before_iteration_is_delivered(hub: Hub) -> None:
    metric = hub.service.create_metric("m")
    async with AsyncSubscriber(hub.url) as sub:  # from now: the position is fixed on entering
        first = await in_thread(hub.service.create_reading, metric.id, 1)
        second = await in_thread(hub.service.create_reading, metric.id, 2)
        events = []
        async for event in sub:
            events.append(event)
            if len(events) == 2:
                break
    assert [event.data["id"] for event in events] == [first.id, second.id]


async def test_async_filters_resume_and_reset(hub: Hub) -> None:
    start = position(hub)
    kept, other = hub.service.create_metric("kept"), hub.service.create_metric("other")
    for value in (1, 2):
        hub.service.create_reading(other.id, value * 10)
        hub.service.create_reading(kept.id, value)
    async with anyio.create_task_group() as group:
        filtered = AsyncConsumer(AsyncSubscriber(hub.url, last_event_id=start, metric_id=kept.id), group)
        assert values(await filtered.take(2)) == [1, 2]
        unknown = str(uuid.uuid4())
        reset = AsyncConsumer(AsyncSubscriber(hub.url, start=unknown), group)
        [event] = await reset.take(1)
        assert (event.type, event.data["last_event_id"]) == ("reset", unknown)
        await in_thread(hub.service.create_reading, other.id, 30)
        await in_thread(hub.service.create_reading, kept.id, 3)
        assert values(await filtered.take(1)) == [3]
        assert values(await reset.take(2)) == [30, 3]
        await filtered.close()
        await reset.close()


async def test_async_earliest_replays_what_is_retained(hub: Hub) -> None:
    metric = hub.service.create_metric("m")
    reading = hub.service.create_reading(metric.id, 1)
    async with anyio.create_task_group() as group:
        consumer = AsyncConsumer(AsyncSubscriber(hub.url, start="earliest"), group)
        created, recorded = await consumer.take(2)
        assert (created.data["id"], recorded.data["id"]) == (metric.id, reading.id)
        await consumer.close()


async def test_async_a_refused_subscription_raises_on_entering(hub: Hub) -> None:
    with pytest.raises(SubscriptionError, match=r"HTTP 400: types must be") as refused:
        async with AsyncSubscriber(hub.url, types=["nope"]):
            pass
    assert refused.value.status == 400
    assert isinstance(refused.value, ValueError)  # compatible with what it raised before


async def test_async_aclose_from_another_task_ends_a_blocked_iteration_promptly(
    make_hub: Callable[..., Hub],
) -> None:
    hub = make_hub(heartbeat=60)
    async with AsyncSubscriber(hub.url) as sub, anyio.create_task_group() as group:
        consumer = AsyncConsumer(sub, group)
        await connected(hub)
        closed_at = time.monotonic()
        await consumer.close()
        assert time.monotonic() - closed_at < 1.0
    with pytest.raises(RuntimeError, match="closed"):
        aiter(sub)
    await connected(hub, 0)


async def test_async_aclose_ends_an_iteration_waiting_for_a_stalled_servers_answer() -> None:
    with socket.create_server(("127.0.0.1", 0)) as server:  # accepts, reads, never answers
        host, port = server.getsockname()[:2]
        server.settimeout(10)

        def read_request() -> socket.socket:
            connection, _ = server.accept()
            request = b""
            while b"\r\n\r\n" not in request:
                chunk = connection.recv(4096)
                assert chunk, "the subscriber hung up"
                request += chunk
            return connection

        async with anyio.create_task_group() as group:
            consumer = AsyncConsumer(AsyncSubscriber(f"http://{host}:{port}"), group)
            connection = await anyio.to_thread.run_sync(read_request)
            with connection:
                await anyio.sleep(0.3)  # no signal that it is now awaiting the headers: let it
                closed_at = time.monotonic()
                await consumer.close()
                assert time.monotonic() - closed_at < 1.0


async def test_async_reconnects_without_loss_when_the_connection_is_cut(make_hub: Callable[..., Hub]) -> None:
    hub = make_hub(retry=50)
    metric = hub.service.create_metric("m")
    start = position(hub)
    total, cuts = 300, 5

    def publish() -> None:  # on another thread, as a sensor feeding the hub would
        for value in range(1, total + 1):
            hub.service.create_reading(metric.id, value)

    with FaultProxy(hub.url) as proxy:
        async with AsyncSubscriber(proxy.url, last_event_id=start) as sub, anyio.create_task_group() as group:
            consumer = AsyncConsumer(sub, group)
            group.start_soon(anyio.to_thread.run_sync, publish)
            received: list[StreamEvent] = []
            for cut in range(cuts):
                await anyio.to_thread.run_sync(proxy.wait_for_accepted, cut + 1)
                received += await consumer.take(total // (cuts + 1))
                assert proxy.cut() == 1, f"cut {cut}"
            await anyio.to_thread.run_sync(proxy.wait_for_accepted, cuts + 1)
            received += await consumer.take(total - len(received))
            await consumer.close()
        assert proxy.accepted >= cuts + 1
    assert_each_once_in_order(received, list(range(1, total + 1)))
