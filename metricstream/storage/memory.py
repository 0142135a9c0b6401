"""In-memory storage: fast, thread-safe, gone when the process ends."""

from __future__ import annotations

import bisect
import threading
from collections.abc import Callable, Sequence
from datetime import datetime

from ..models import Event, Metric, MetricReading

__all__ = ["MemoryStorage"]


def _sort_key(reading: MetricReading) -> tuple[datetime, str]:
    return (reading.timestamp, reading.id)


class MemoryStorage:
    """Metrics in creation order and each metric's readings sorted by timestamp.

    The retained event log already lives in the server's `EventLog`, so events are not copied here.
    """

    shared = False

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._metrics: dict[str, Metric] = {}
        self._readings: dict[str, list[MetricReading]] = {}

    async def open(self) -> None:
        pass

    async def close(self) -> None:
        pass

    async def add_metric(self, metric: Metric, event: Event) -> None:
        with self._lock:
            self._metrics[metric.id] = metric
            self._readings[metric.id] = []

    async def get_metric(self, metric_id: str) -> Metric | None:
        return self._metrics.get(metric_id)

    async def list_metrics(self) -> list[Metric]:
        with self._lock:
            return list(self._metrics.values())

    async def add_readings(self, readings: Sequence[MetricReading], events: Sequence[Event]) -> None:
        with self._lock:
            for reading in readings:
                series = self._readings[reading.metric_id]
                if not series or _sort_key(series[-1]) <= _sort_key(reading):
                    series.append(reading)  # the usual case: readings arrive in time order
                else:
                    bisect.insort(series, reading, key=_sort_key)

    async def list_readings(
        self,
        metric_id: str,
        since: datetime | None = None,
        until: datetime | None = None,
        limit: int | None = None,
        newest: bool = False,
    ) -> list[MetricReading]:
        with self._lock:
            series = self._readings.get(metric_id, [])
            start = 0 if since is None else bisect.bisect_left(series, since, key=_timestamp)
            stop = len(series) if until is None else bisect.bisect_right(series, until, key=_timestamp)
            if limit is not None:
                if newest:
                    start = max(start, stop - limit)
                else:
                    stop = min(stop, start + limit)
            return series[start:stop]

    async def recent_events(self, since: float) -> tuple[list[Event], bool]:
        return [], False

    async def trim_events(self, before: float) -> None:
        pass

    async def follow(self, publish: Callable[[list[Event]], None], lost: Callable[[], None]) -> None:
        raise NotImplementedError("memory storage is not shared")


def _timestamp(reading: MetricReading) -> datetime:
    return reading.timestamp
