"""In-memory storage: fast, thread-safe, gone when the process ends."""

from __future__ import annotations

import asyncio
import bisect
import operator
import threading
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Final

from ..domain.buckets import Bucket, bucket_start, summarise
from ..domain.names import name_key
from ..domain.promql.windows import Windows
from ..domain.values import Metric, MetricReading
from ..errors import NotFoundError
from ..stream.log import Event, Mark, RetainedLog, expired_prefix, newest_of_each_kind
from .base import EXPIRED_PER_WRITE, MetricLimitReached, NameTaken
from .rows import ReadingColumns, columns_of, micros, moment
from .windows import read_windows

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
        if len(items) == self.start or items[-1].timestamp < reading.timestamp:
            items.append(reading)  # the usual case: readings arrive in time order
        elif _sort_key(items[-1]) <= _sort_key(reading):
            items.append(reading)
        else:
            bisect.insort(items, reading, lo=self.start, key=_sort_key)

    def trim(self, keep: int) -> None:
        excess = len(self.items) - self.start - keep
        if excess > 0:
            self.drop(excess)

    def drop(self, count: int) -> None:
        """Forget the oldest `count` live readings."""
        self.start += count
        if self.start >= max(64, len(self.items) // 16):
            del self.items[: self.start]
            self.start = 0

    def older_than(self, moment: datetime) -> int:
        """How many live readings are older than `moment`."""
        return bisect.bisect_left(self.items, moment, self.start, key=_timestamp) - self.start


class MemoryStorage:
    """Metrics in creation order and each metric's readings sorted by timestamp.

    Events are kept too (references to the server's own, so no bytes are copied): a Hub stopped and
    started again on the same store replays what was retained, as the durable stores do.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._metrics: dict[str, Metric] = {}
        # name_key -> ids of the metrics so named, in creation order.
        self._named: dict[str, list[str]] = {}
        self._readings: dict[str, _Series] = {}
        self._events: list[Event] = []
        # Events forgotten, ever (the first retained one's number), and the marks they left, by kind.
        self._trimmed = 0
        self._marks: dict[tuple[str, str], Mark] = {}

    async def open(self) -> None:
        pass

    async def close(self) -> None:
        pass

    async def add_metric(self, metric: Metric, event: Event, max_metrics: int | None = None) -> bool:
        with self._lock:
            if self._taken(metric):
                raise NameTaken
            if max_metrics is not None and len(self._metrics) >= max_metrics:
                return False
            self._insert(metric)
            self._events.append(event)
            return True

    def _taken(self, metric: Metric) -> bool:
        """Whether a metric of the same name and labels is stored."""
        named = self._named.get(name_key(metric.name), ())
        return any(self._metrics[metric_id].labels == metric.labels for metric_id in named)

    def _insert(self, metric: Metric) -> None:
        self._metrics[metric.id] = metric
        self._named.setdefault(name_key(metric.name), []).append(metric.id)
        self._readings[metric.id] = _Series()

    async def delete_metric(self, metric_id: str, event: Event) -> bool:
        with self._lock:
            metric = self._metrics.pop(metric_id, None)
            if metric is None:
                return False
            del self._readings[metric_id]
            key = name_key(metric.name)
            self._named[key].remove(metric_id)
            if not self._named[key]:
                del self._named[key]
            self._events.append(event)
            return True

    async def get_metric(self, metric_id: str) -> Metric | None:
        return self._metrics.get(metric_id)

    async def list_metrics(self) -> list[Metric]:
        with self._lock:
            return list(self._metrics.values())

    async def find_metrics(self, name: str, labels: Mapping[str, str] | None = None) -> list[Metric]:
        with self._lock:
            named = [self._metrics[metric_id] for metric_id in self._named.get(name_key(name), ())]
        return named if labels is None else [metric for metric in named if metric.labels == labels]

    async def add_readings(
        self,
        readings: Sequence[MetricReading],
        events: Sequence[Event],
        keep: int | None = None,
        created: Sequence[Metric] = (),
        max_metrics: int | None = None,
        expire_before: datetime | None = None,
    ) -> None:
        with self._lock:
            new_ids = {metric.id for metric in created}
            missing = sorted({reading.metric_id for reading in readings} - self._readings.keys() - new_ids)
            if missing:  # deleted since the service checked
                raise NotFoundError(f"metric {' or '.join(missing)} not found (deleted meanwhile)")
            if any(self._taken(metric) for metric in created):
                raise NameTaken
            if created and max_metrics is not None and len(self._metrics) + len(created) > max_metrics:
                raise MetricLimitReached
            for metric in created:
                self._insert(metric)
            for reading in readings:
                self._readings[reading.metric_id].add(reading)
            self._events.extend(events)
            for metric_id in {reading.metric_id for reading in readings}:
                series = self._readings[metric_id]
                if keep is not None:
                    series.trim(keep)
                if expire_before is not None:
                    series.drop(min(series.older_than(expire_before), EXPIRED_PER_WRITE))

    async def add_reading(
        self,
        reading: MetricReading,
        event: Event,
        keep: int | None = None,
        expire_before: datetime | None = None,
    ) -> None:
        with self._lock:
            series = self._readings.get(reading.metric_id)
            if series is None:  # deleted since the service checked
                raise NotFoundError(f"metric {reading.metric_id} not found (deleted meanwhile)")
            series.add(reading)
            self._events.append(event)
            if keep is not None:
                series.trim(keep)
            if expire_before is not None:
                series.drop(min(series.older_than(expire_before), EXPIRED_PER_WRITE))

    async def list_readings(
        self,
        metric_id: str,
        since: datetime | None = None,
        until: datetime | None = None,
        limit: int | None = None,
        descending: bool = False,
        after: tuple[datetime, str] | None = None,
    ) -> list[MetricReading]:
        with self._lock:
            found = self._readings.get(metric_id)
            if found is None:
                return []
            series, first = found.items, found.start
            start = first if since is None else bisect.bisect_left(series, since, first, key=_timestamp)
            stop = len(series) if until is None else bisect.bisect_right(series, until, first, key=_timestamp)
            if descending:
                if after is not None:
                    stop = min(stop, bisect.bisect_left(series, after, first, key=_sort_key))
                if limit is not None:
                    start = max(start, stop - limit)
                return series[start:stop][::-1]
            if after is not None:
                start = max(start, bisect.bisect_right(series, after, first, key=_sort_key))
            if limit is not None:
                stop = min(stop, start + limit)
            return series[start:stop]

    async def latest_readings(self) -> list[tuple[Metric, MetricReading]]:
        with self._lock:
            return [
                (metric, series.items[-1])
                for metric_id, metric in self._metrics.items()
                if len((series := self._readings[metric_id]).items) > series.start
            ]

    async def reading_columns(
        self,
        metric_id: str,
        since: datetime | None,
        until: datetime | None,
        limit: int,
        after: tuple[datetime, str] | None = None,
    ) -> ReadingColumns:
        return columns_of(await self.list_readings(metric_id, since, until, limit, after=after))

    async def retained_events(self) -> RetainedLog:
        with self._lock:
            return RetainedLog(list(self._events), self._trimmed > 0, list(self._marks.values()))

    async def trim_events(self, before: float) -> None:
        with self._lock:
            expired = expired_prefix(self._events, before)
            # Keep the newest expired one: it marks where trimmed history ends.
            if expired > 1:
                for mark in newest_of_each_kind(self._events[: expired - 1], self._trimmed):
                    self._marks[mark.type, mark.metric_id] = mark
                del self._events[: expired - 1]
                self._trimmed += expired - 1

    async def bucket_readings(
        self, metric_id: str, since: datetime, until: datetime, step: int, limit: int
    ) -> list[Bucket]:
        with self._lock:
            found = self._readings.get(metric_id)
            if found is None:
                return []
            items = found.items
            first = bisect.bisect_left(items, since, found.start, key=_timestamp)
            stop = bisect.bisect_right(items, until, first, key=_timestamp)
            buckets: list[Bucket] = []
            # One bisect per bucket finds where it ends, and its values are the readings' own floats:
            # nothing is made per reading.
            while first < stop and len(buckets) < limit:
                start = bucket_start(micros(items[first].timestamp), step)
                end = _moment_or_none(start + step)
                after = stop if end is None else bisect.bisect_left(items, end, first, stop, key=_timestamp)
                buckets.append(summarise(start, list(map(_value, items[first:after]))))
                first = after
            return buckets

    async def window_values(self, metric_id: str, windows: Windows, function: str) -> list[float | None]:
        return await read_windows(self, metric_id, windows, function)

    async def trim_readings(self, before: datetime, chunk: int = 5000) -> int:
        if chunk < 1:  # a chunk of nothing would never finish
            raise ValueError(f"chunk must be at least 1, not {chunk}")
        with self._lock:
            metric_ids = list(self._readings)
        removed = 0
        for metric_id in metric_ids:
            while True:
                with self._lock:
                    series = self._readings.get(metric_id)  # None if deleted meanwhile
                    count = 0 if series is None else min(series.older_than(before), chunk)
                    if series is not None and count:
                        series.drop(count)
                removed += count
                if count < chunk:
                    break
                await asyncio.sleep(0)  # let other work run between chunks
        return removed


def _timestamp(reading: MetricReading) -> datetime:
    return reading.timestamp


_value: Final = operator.attrgetter("value")


def _moment_or_none(microseconds: int) -> datetime | None:
    """The moment, or None past the last one a datetime can hold."""
    try:
        return moment(microseconds)
    except OverflowError:
        return None
