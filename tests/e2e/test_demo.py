"""The demo feed: the walk itself, `Hub(demo=True)` end to end, restarts, and a clean stop.

Demo metrics are created with `input_frequency x demo.TIME_SCALE`; tests shrink it (and
`DEFAULT_FREQUENCY`) so readings arrive every few tens of milliseconds. `metricstream serve --demo`
runs at the real frequencies in `test_cli.py`.
"""

from __future__ import annotations

import asyncio
import queue
import time
from collections import defaultdict
from collections.abc import Callable
from datetime import datetime

import pytest

import metricstream.service.demo as demo_module
from metricstream.client.core import StreamEvent
from metricstream.server.hub import Hub
from metricstream.service.demo import DEMO_METRICS
from metricstream.web.application import create_app
from metricstream.wire import GENESIS_ID
from tests.support.subscribers import METRIC_CREATED, READING_CREATED, TAKE_TIMEOUT

MakeHub = Callable[..., Hub]

SCALE = 0.05  # CPU Temperature every 50 ms, Memory Usage every 100 ms, Requests per Second every 25 ms
DEMO_NAMES = [metric.name for metric in DEMO_METRICS]
BOUNDS = {metric.name: metric.walk for metric in DEMO_METRICS}


@pytest.fixture(autouse=True)
def fast_demo(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(demo_module, "TIME_SCALE", SCALE)
    monkeypatch.setattr(demo_module, "DEFAULT_FREQUENCY", 0.05)


class Readings:
    """An `on_event` callback sorting what it receives: metrics in order, readings per metric."""

    def __init__(self) -> None:
        self.metrics: list[dict[str, object]] = []
        self.readings: defaultdict[str, list[dict[str, object]]] = defaultdict(list)
        self._arrived: queue.Queue[None] = queue.Queue()

    def __call__(self, event: StreamEvent) -> None:
        if event.type == METRIC_CREATED:
            self.metrics.append(event.data)
        elif event.type == READING_CREATED:
            self.readings[event.data["metric_id"]].append(event.data)
        self._arrived.put(None)

    def wait_for(self, ready: Callable[[], bool], what: str) -> None:
        """Wait, event by event, until `ready()` holds."""
        deadline = time.monotonic() + TAKE_TIMEOUT
        while not ready():
            try:
                self._arrived.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                raise AssertionError(f"timed out waiting for {what}") from None


def values(readings: list[dict[str, object]]) -> list[float]:
    return [float(str(reading["value"])) for reading in readings]


def spacing(readings: list[dict[str, object]]) -> float:
    """Seconds between the first and the last of `readings`, by their timestamps."""
    times = [datetime.fromisoformat(str(reading["timestamp"])) for reading in readings]
    return (times[-1] - times[0]).total_seconds()


# --- the walk -------------------------------------------------------------------------------------


# --- Hub(demo=True) -------------------------------------------------------------------------------


def test_demo_hub_creates_metrics_and_streams_readings_for_each(make_hub: MakeHub) -> None:
    hub = make_hub(demo=True)
    created = hub.service.list_metrics()  # already there when start() returns
    assert [metric.name for metric in created] == DEMO_NAMES
    assert [metric.input_frequency for metric in created] == [
        pytest.approx(metric.input_frequency * SCALE) for metric in DEMO_METRICS
    ]
    readings = Readings()
    with hub.subscribe(last_event_id=GENESIS_ID).on_event(readings):
        readings.wait_for(
            lambda: all(len(readings.readings[metric.id]) >= 4 for metric in created),
            "four readings of every demo metric",
        )
    assert readings.metrics == [metric.to_dict() for metric in created]
    for metric in created:
        mine = readings.readings[metric.id]
        walk = BOUNDS[metric.name]
        assert all(walk.low <= value <= walk.high for value in values(mine)), metric.name
        assert min(values(mine)) > 0
        # Posted at the metric's input_frequency: never faster (the first may have been a little late).
        assert metric.input_frequency is not None
        assert spacing(mine[:4]) >= 2 * metric.input_frequency, metric.name
        stored = {reading.id for reading in hub.service.list_readings(metric.id)}
        assert {str(reading["id"]) for reading in mine} <= stored  # through the service: stored too


def test_a_restarted_demo_hub_feeds_every_metric_that_exists(make_hub: MakeHub) -> None:
    hub = make_hub(demo=True)
    demo_metrics = hub.service.list_metrics()
    service = hub.service
    own = [
        service.create_metric("Disk IO", 0.03),
        service.create_metric("Queue"),
        service.create_metric("Zero", 0),
    ]
    first_run = Readings()
    with hub.subscribe(last_event_id=GENESIS_ID).on_event(first_run):
        # Metrics created while the demo runs are the user's: left alone.
        first_run.wait_for(
            lambda: all(len(first_run.readings[metric.id]) >= 5 for metric in demo_metrics),
            "five readings of every demo metric",
        )
        assert all(first_run.readings[metric.id] == [] for metric in own)

    hub.stop()
    hub.start()  # same store: now they all exist, so all are fed and no demo metric is added
    assert hub.service.list_metrics() == demo_metrics + own
    second_run = Readings()
    with hub.subscribe().on_event(second_run):
        second_run.wait_for(
            lambda: all(len(second_run.readings[metric.id]) >= 3 for metric in demo_metrics + own),
            "three readings of every metric",
        )
    for metric in own:  # 0.03 s, and DEFAULT_FREQUENCY (patched to 0.05 s) for None and 0
        assert all(value > 0 for value in values(second_run.readings[metric.id]))
    assert second_run.metrics == []


def test_stopping_a_demo_hub_is_prompt_and_readings_end_with_the_stream(make_hub: MakeHub) -> None:
    hub = make_hub(demo=True)
    readings = Readings()
    sub = hub.subscribe(last_event_id=GENESIS_ID).on_event(readings)
    try:
        readings.wait_for(lambda: len(readings.readings) == len(DEMO_METRICS), "readings of every metric")
        stopping_at = time.monotonic()
        hub.stop()
        assert time.monotonic() - stopping_at < 1.0
    finally:
        sub.close()


def test_app_shutdown_cancels_the_demo_and_leaves_no_task(store_url: str) -> None:
    """On the app's own loop: after shutdown() nothing of the demo (or anything else) still runs."""

    async def main() -> None:
        app = create_app(demo=True, store=store_url)
        await app.startup()
        deadline = time.monotonic() + TAKE_TIMEOUT
        while len(app.log) < 2 * len(DEMO_METRICS):  # the metrics, then a reading of each (at least)
            assert time.monotonic() < deadline, "no demo readings"
            await asyncio.sleep(0.01)
        await app.shutdown()
        assert asyncio.all_tasks() == {asyncio.current_task()}
        posted = len(app.log)
        await asyncio.sleep(0.1)  # twice the fastest demo interval: a live feed would have posted
        assert len(app.log) == posted

    asyncio.run(main(), debug=True)
