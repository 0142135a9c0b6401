"""Every kind of client resumes a filtered stream after its events expired while other metrics' came:
`Subscriber`, `AsyncSubscriber` and the npm `eventsource` (an EventSource, as in browsers; the dashboard's
own is in test_dashboard.py), each through `FaultProxy`, which cuts its connection once its position has
expired. Nothing it wanted is gone: no `reset`, and each of its events comes once. Time is a `ManualClock`."""

from __future__ import annotations

import json
import subprocess
from typing import Any

import anyio
import pytest

from metricstream.client.subscribers import AsyncSubscriber, Subscriber
from metricstream.clock import ManualClock
from metricstream.domain.values import Metric
from metricstream.server.hub import Hub
from tests.support.hubs import TTL, StartHub, swept
from tests.support.node import JS_DIR, node_command, read_line
from tests.support.proxy import FaultProxy
from tests.support.subscribers import READING_CREATED, Consumer


def quiet_and_busy(start_hub: StartHub) -> tuple[Hub, ManualClock, Metric, Metric]:
    clock = ManualClock()
    hub = start_hub(clock=clock, event_ttl=TTL, retry=50)
    return hub, clock, hub.service.create_metric("quiet"), hub.service.create_metric("busy")


def expire_its_position(hub: Hub, clock: ManualClock, busy: Metric) -> None:
    """Other metrics' events, and time: what the client saw expires, and so does its position."""
    for value in range(1, 4):
        hub.service.create_reading(busy.id, value)
        swept(hub, clock, TTL)
    hub.service.create_reading(busy.id, 9)


@pytest.mark.parametrize("saw_one", [True, False], ids=["saw an event", "saw none"])
def test_a_filtered_subscriber_resumes_after_its_position_expired(start_hub: StartHub, saw_one: bool) -> None:
    hub, clock, quiet, busy = quiet_and_busy(start_hub)
    with FaultProxy(hub.url) as proxy:
        consumer = Consumer(Subscriber(proxy.url, metric_id=quiet.id).connect())
        try:
            expected = [hub.service.create_reading(quiet.id, 1).id] if saw_one else []
            assert [event.data["id"] for event in consumer.take(len(expected))] == expected
            expire_its_position(hub, clock, busy)
            assert proxy.cut() == 1
            expected = [hub.service.create_reading(quiet.id, 2).id]  # while it is away
            proxy.wait_for_accepted(2)
            expected.append(hub.service.create_reading(quiet.id, 3).id)
            got = consumer.take(2)
        finally:
            consumer.close()
    assert [(event.type, event.data["id"]) for event in got] == [(READING_CREATED, id) for id in expected]
    assert hub.app.broadcaster.statistics().resets == 0


@pytest.fixture(params=["asyncio", "trio"])
def anyio_backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.mark.anyio
async def test_a_filtered_async_subscriber_resumes_after_its_position_expired(start_hub: StartHub) -> None:
    hub, clock, _, busy = quiet_and_busy(start_hub)
    with FaultProxy(hub.url) as proxy:
        async with AsyncSubscriber(proxy.url, types=["metric_created"]) as sub:
            events = aiter(sub)
            made = hub.service.create_metric("made")
            with anyio.fail_after(10):
                assert (await anext(events)).data["id"] == made.id
            await anyio.to_thread.run_sync(expire_its_position, hub, clock, busy)
            assert proxy.cut() == 1
            missed = hub.service.create_metric("missed")  # while it is away
            with anyio.fail_after(10):
                got = await anext(events)
    assert (got.type, got.data["id"]) == ("metric_created", missed.id)
    assert hub.app.broadcaster.statistics().resets == 0


def test_a_filtered_npm_eventsource_resumes_after_its_position_expired(start_hub: StartHub) -> None:
    hub, clock, quiet, busy = quiet_and_busy(start_hub)
    with FaultProxy(hub.url) as proxy:
        url = f"{proxy.url}/events/watch?metric_id={quiet.id}"
        command = [node_command(), str(JS_DIR / "listen.mjs"), url, "2", "20"]
        with subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) as node:
            try:
                assert node.stdout is not None
                lines = Lines(node.stdout, node)
                lines.until("message")  # connected
                first = hub.service.create_reading(quiet.id, 1)
                assert json.loads(lines.until(READING_CREATED)["data"])["id"] == first.id
                expire_its_position(hub, clock, busy)
                assert proxy.cut() == 1
                lines.until("message")  # connected again, by itself
                missed = hub.service.create_reading(quiet.id, 2)
                got = lines.until(READING_CREATED, "reset")
                assert node.wait(10) == 0
            finally:
                if node.poll() is None:
                    node.kill()
                    node.wait()
    assert got["type"] == READING_CREATED, got  # not `reset`
    assert json.loads(got["data"])["id"] == missed.id


class Lines:
    """What listen.mjs prints, one JSON line at a time."""

    def __init__(self, stdout: Any, process: subprocess.Popen[str]) -> None:
        self.stdout, self.process = stdout, process

    def until(self, *types: str) -> dict[str, Any]:
        """The next line of one of `types`, skipping others (open, connection errors)."""
        while True:
            line: dict[str, Any] = read_line(self.stdout, self.process)
            if line["type"] in types:
                return line
