"""In-memory storage: fast, thread-safe, gone when the process ends."""

from __future__ import annotations

import bisect
import threading
from collections.abc import Sequence
from datetime import datetime

from ..errors import NotFoundError
from ..events import Event, expired_prefix
from ..models import Metric, MetricReading

__all__ = ["MemoryStorage"]


def _sort_key(reading: MetricReading) -> tuple[datetime, str]:
    return (reading.timestamp, reading.id)


class _Series:
    """One metric's readings sorted by (timestamp, id); `items[start:]` are the live ones.

    Dropping the oldest only moves `start`; the dead prefix is deleted once it is a sixteenth of the
    list, so a capped series pays O(1) amortised per write instead of moving the whole list each time.
    """

    __slots__ = ("items", "start")

    def __init__(self) -> None:
        self.items: list[MetricReading] = []
        self.start = 0

    def add(self, reading: MetricReading) -> None:
        items = self.items
        if len(items) == self.start or _sort_key(items[-1]) <= _sort_key(reading):
            items.append(reading)  # the usual case: readings arrive in time order
        else:
            bisect.insort(items, reading, lo=self.start, key=_sort_key)

    def trim(self, keep: int) -> None:
        excess = len(self.items) - self.start - keep
        if excess > 0:
            self.start += excess
            if self.start >= max(64, len(self.items) // 16):
                del self.items[: self.start]
                self.start = 0


class MemoryStorage:
    """Metrics in creation order and each metric's readings sorted by timestamp.

    Events are kept too (references to the server's own, so no bytes are copied): a Hub stopped and
    started again on the same store replays what was retained, as the durable stores do.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._metrics: dict[str, Metric] = {}
        self._readings: dict[str, _Series] = {}
        self._events: list[Event] = []
        self._trimmed = False

    async def open(self) -> None:
        pass

    async def close(self) -> None:
        pass

    async def add_metric(self, metric: Metric, event: Event, max_metrics: int | None = None) -> bool:
        with self._lock:
            if max_metrics is not None and len(self._metrics) >= max_metrics:
                return False
            self._metrics[metric.id] = metric
            self._readings[metric.id] = _Series()
            self._events.append(event)
            return True

    async def delete_metric(self, metric_id: str, event: Event) -> bool:
        with self._lock:
            if self._metrics.pop(metric_id, None) is None:
                return False
            del self._readings[metric_id]
            self._events.append(event)
            return True

    async def get_metric(self, metric_id: str) -> Metric | None:
        return self._metrics.get(metric_id)

    async def list_metrics(self) -> list[Metric]:
        with self._lock:
            return list(self._metrics.values())

    async def add_readings(
        self, readings: Sequence[MetricReading], events: Sequence[Event], keep: int | None = None
    ) -> None:
        with self._lock:
            missing = sorted({reading.metric_id for reading in readings} - self._readings.keys())
            if missing:  # deleted since the service checked
                raise NotFoundError(f"metric {' or '.join(missing)} not found (deleted meanwhile)")
            for reading in readings:
                self._readings[reading.metric_id].add(reading)
            self._events.extend(events)
            if keep is not None:
                for metric_id in {reading.metric_id for reading in readings}:
                    self._readings[metric_id].trim(keep)

    async def list_readings(
        self,
        metric_id: str,
        since: datetime | None = None,
        until: datetime | None = None,
        limit: int | None = None,
        newest: bool = False,
    ) -> list[MetricReading]:
        with self._lock:
            found = self._readings.get(metric_id)
            if found is None:
                return []
            series, first = found.items, found.start
            start = first if since is None else bisect.bisect_left(series, since, first, key=_timestamp)
            stop = len(series) if until is None else bisect.bisect_right(series, until, first, key=_timestamp)
            if limit is not None:
                if newest:
                    start = max(start, stop - limit)
                else:
                    stop = min(stop, start + limit)
            return series[start:stop]

    async def retained_events(self) -> tuple[list[Event], bool]:
        with self._lock:
            return list(self._events), self._trimmed

    async def trim_events(self, before: float) -> None:
        with self._lock:
            expired = expired_prefix(self._events, before)
            if expired > 1:  # keep the newest expired one: it marks where trimmed history ends
                del self._events[: expired - 1]
                self._trimmed = True


def _timestamp(reading: MetricReading) -> datetime:
    return reading.timestamp
