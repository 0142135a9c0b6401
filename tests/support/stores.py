"""Driving a store directly, as the service would: open one for a scenario, and write a metric with its
readings (events included) in one step. For the tests that run every store against a plain reference."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import TypeVar

from hypothesis import HealthCheck, settings

from metricstream.domain.values import Metric, MetricReading
from metricstream.ids import new_id, new_ids
from metricstream.storage import open_storage
from metricstream.storage.base import Storage
from metricstream.storage.rows import moment
from metricstream.stream.log import Event
from metricstream.wire import METRIC_CREATED, READING_CREATED

T = TypeVar("T")

# Deterministic: the same examples on every run, nothing remembered between runs.
PROPERTY = settings(
    max_examples=50,
    derandomize=True,
    database=None,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],  # each example uses a metric of its own
)


def on_store(store_url: str, scenario: Callable[[Storage], Awaitable[T]]) -> T:
    async def run() -> T:
        store = open_storage(store_url)
        await store.open()
        try:
            return await scenario(store)
        finally:
            await store.close()

    return asyncio.run(run())


async def new_metric(
    store: Storage, points: Sequence[tuple[int, float]] = ()
) -> tuple[str, list[MetricReading]]:
    """A new metric and its readings at these (microseconds since the epoch, value) points, written in
    one batch in the order given."""
    metric_id = new_id()
    metric = Metric(metric_id, f"m-{metric_id}")  # a name of its own: a name and labels are one metric
    await store.add_metric(metric, Event.create(METRIC_CREATED, metric, 1.0))
    readings = [
        MetricReading(reading_id, metric.id, value, moment(ts))
        for reading_id, (ts, value) in zip(new_ids(len(points)), points, strict=True)
    ]
    await add_readings(store, readings)
    return metric.id, readings


async def add_readings(store: Storage, readings: Sequence[MetricReading], keep: int | None = None) -> None:
    if readings:
        events = [Event.create(READING_CREATED, reading, 1.0) for reading in readings]
        await store.add_readings(readings, events, keep=keep)
