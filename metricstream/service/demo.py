"""The demo feed: random-walk readings so a newcomer sees live data at once (`Hub(demo=True)`, `--demo`).

Like the original service's "mock readings ticker". Readings are posted through `AsyncMetricService`, so
each is stored and announced exactly like one posted over HTTP. The feed runs on the server's loop until
it is cancelled, which the app does first thing when it shuts down, and it ends once cancelled even when
the await it was cancelled in returned normally (`cancellation.raise_if_cancelled`), so shutdown never
waits for it. What it feeds, and how often, is in docs/configuration.md (Demo feed).
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Sequence
from dataclasses import dataclass

from ..cancellation import raise_if_cancelled
from ..domain.values import Metric
from ..errors import MetricStreamError
from .use_cases import AsyncMetricService

__all__ = ["DEMO_METRICS", "DemoMetric", "Walk", "demo_metrics", "run_demo", "step"]

log = logging.getLogger("metricstream.demo")


@dataclass(frozen=True, slots=True)
class Walk:
    """Where a random walk may go: `low < high`, both > 0, starting at `start`."""

    low: float
    high: float
    start: float


@dataclass(frozen=True, slots=True)
class DemoMetric:
    name: str
    # Seconds between readings.
    input_frequency: float
    walk: Walk


DEMO_METRICS: tuple[DemoMetric, ...] = (
    DemoMetric("CPU Temperature", 1.0, Walk(35.0, 95.0, 55.0)),  # °C
    DemoMetric("Memory Usage", 2.0, Walk(20.0, 95.0, 45.0)),  # %
    DemoMetric("Requests per Second", 0.5, Walk(5.0, 500.0, 120.0)),
)
# For a metric with no reading and a name we do not know.
GENERIC_WALK = Walk(1.0, 100.0, 50.0)
# Seconds, for a metric whose input_frequency is None or 0.
DEFAULT_FREQUENCY = 1.0
# Seconds: at most 100 readings per second per metric.
MIN_INTERVAL = 0.01
# The standard deviation of one step, as a fraction of the walk's range.
STEP = 0.03
# Demo metrics are created with input_frequency x TIME_SCALE (tests shrink it).
TIME_SCALE = 1.0


def step(walk: Walk, value: float, rng: random.Random) -> float:
    """The walk's next value after `value`: reflected back into [low, high], rounded to 2 places."""
    value += rng.gauss(0.0, (walk.high - walk.low) * STEP)
    if value > walk.high:
        value = 2 * walk.high - value
    if value < walk.low:
        value = 2 * walk.low - value
    return round(min(max(value, walk.low), walk.high), 2)  # a step longer than the range ends here


def walk_for(metric: Metric, newest: float | None) -> Walk:
    """The walk for `metric`, continuing from its newest reading when there is one."""
    known = next((demo.walk for demo in DEMO_METRICS if demo.name == metric.name), None)
    if known is not None:
        if newest is not None and known.low <= newest <= known.high:
            return Walk(known.low, known.high, newest)
        return known
    if newest is not None:
        return Walk(newest / 2, newest * 1.5, newest)
    return GENERIC_WALK


def interval_of(metric: Metric) -> float:
    return max(MIN_INTERVAL, metric.input_frequency or DEFAULT_FREQUENCY)


async def demo_metrics(service: AsyncMetricService) -> list[Metric]:
    """The metrics to feed: those that exist, or the demo metrics, created now, if there are none."""
    metrics = await service.list_metrics()
    if metrics:
        return metrics
    return [
        await service.create_metric(demo.name, demo.input_frequency * TIME_SCALE) for demo in DEMO_METRICS
    ]


async def run_demo(
    service: AsyncMetricService,
    metrics: Sequence[Metric] | None = None,
    *,
    rng: random.Random | None = None,
) -> None:
    """Post random-walk readings for each of `metrics` (default: `demo_metrics()`) until cancelled."""
    if metrics is None:
        metrics = await demo_metrics(service)
    rng = rng or random.Random()
    walks = []
    for metric in metrics:
        newest = await service.storage.list_readings(metric.id, limit=1, descending=True)
        walks.append(walk_for(metric, newest[0].value if newest else None))
    raise_if_cancelled()
    async with asyncio.TaskGroup() as group:  # cancelling run_demo cancels and awaits every feed
        for metric, walk in zip(metrics, walks, strict=True):
            group.create_task(_feed(service, metric, walk, rng), name=f"metricstream-demo {metric.name}")


async def _feed(service: AsyncMetricService, metric: Metric, walk: Walk, rng: random.Random) -> None:
    loop = asyncio.get_running_loop()
    interval = interval_of(metric)
    value = walk.start
    due = loop.time()
    while True:
        value = step(walk, value, rng)
        try:
            await service.create_reading(metric.id, value)
        except MetricStreamError as error:  # the metric is gone or the store is down: this feed ends
            log.warning("demo readings for %r stopped: %s", metric.name, error)
            return
        except Exception:
            # A bug must not end the other feeds (a TaskGroup would cancel them).
            log.exception("demo readings for %r stopped", metric.name)
            return
        raise_if_cancelled()
        due += interval
        delay = due - loop.time()
        # Fell behind (a slow store): carry on from now instead of catching up.
        if delay < 0:
            due, delay = loop.time(), 0.0
        await asyncio.sleep(delay)
