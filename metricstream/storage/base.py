"""What every store offers: `Storage`, the one interface the service talks to (and `SharedStorage`, for a
store several processes share), and the refusals a store's own write step can give.
Each write stores the data together with the events announcing it, so a backend that persists events can
make both durable in one step. Backends: `memory://` (this process only), `sqlite:///path/to.db`
(durable, one machine), `redis://host:port/db` (several processes, one stream). A backend's client
library is imported only when its URL is used.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import Final, Protocol, TypeGuard

from ..domain.buckets import Bucket
from ..domain.promql.windows import Windows
from ..domain.values import Metric, MetricReading
from ..stream.log import Event, RetainedLog
from .rows import ReadingColumns

__all__ = [
    "EXPIRED_PER_WRITE",
    "MetricLimitReached",
    "NameTaken",
    "SharedStorage",
    "Storage",
    "is_shared",
]

# Expired readings a write removes at most per metric, so its cost stays bounded.
EXPIRED_PER_WRITE: Final = 1000


class NameTaken(Exception):
    """A create found, in the step that stores it, that a metric of that name and labels now exists."""


class MetricLimitReached(Exception):
    """A write by name would create metrics beyond `max_metrics`."""


class Storage(Protocol):
    """A store this process alone writes: the service publishes each write's events itself."""

    async def open(self) -> None: ...

    async def close(self) -> None: ...

    async def add_metric(self, metric: Metric, event: Event, max_metrics: int | None = None) -> bool:
        """Store a metric with its event; store nothing and return False if `max_metrics` are already
        stored, or raise `NameTaken` if a metric of the same name and labels exists (both checked in the
        same atomic step as the insert)."""
        ...

    async def delete_metric(self, metric_id: str, event: Event) -> bool:
        """Remove a metric and its readings and store `event`, in one step; False (nothing done) if there
        is no such metric."""
        ...

    async def get_metric(self, metric_id: str) -> Metric | None: ...

    async def list_metrics(self) -> list[Metric]: ...

    async def find_metrics(self, name: str, labels: Mapping[str, str] | None = None) -> list[Metric]:
        """The metrics named exactly `name` (as `name_key` compares names), in creation order; with
        `labels`, only those with exactly these labels (one metric, but for duplicates made before
        metrics were identified by name and labels)."""
        ...

    async def add_readings(
        self,
        readings: Sequence[MetricReading],
        events: Sequence[Event],
        keep: int | None = None,
        created: Sequence[Metric] = (),
        max_metrics: int | None = None,
        expire_before: datetime | None = None,
    ) -> None:
        """Store the metrics `created` (a write by name: each name and labels new) and readings of existing or
        created metrics, with their events, all or nothing; then, in the same step, drop each written
        metric's oldest readings (by timestamp, then id) beyond the newest `keep`, and up to
        `EXPIRED_PER_WRITE` of its readings older than `expire_before` (the rest, if a backlog, go by
        `trim_readings`, which works in chunks). Nothing is stored if a
        metric is gone (deleted meanwhile by another process sharing the store: `NotFoundError`), if a
        created metric's name and labels are taken by then (`NameTaken`), or if the created metrics would pass
        `max_metrics` (`MetricLimitReached`)."""
        ...

    async def add_reading(
        self,
        reading: MetricReading,
        event: Event,
        keep: int | None = None,
        expire_before: datetime | None = None,
    ) -> None:
        """`add_readings([reading], [event], keep, expire_before=expire_before)`: a single POST's write,
        each store's quickest; `NotFoundError` (nothing stored) if the reading's metric is not there."""
        ...

    async def list_readings(
        self,
        metric_id: str,
        since: datetime | None = None,
        until: datetime | None = None,
        limit: int | None = None,
        descending: bool = False,
        after: tuple[datetime, str] | None = None,
    ) -> list[MetricReading]:
        """The first `limit` readings within [since, until] by (timestamp, id), ascending or `descending`;
        with `after`, only those past that (timestamp, id) in that order. Found through the index, never
        by reading what comes before: paging through a long series costs the same per page."""
        ...

    async def latest_readings(self) -> list[tuple[Metric, MetricReading]]:
        """Every metric that has readings, in creation order, with its newest one (by timestamp, then
        id): one call for all of them, however many metrics there are (the Prometheus scrape's read)."""
        ...

    async def reading_columns(
        self,
        metric_id: str,
        since: datetime | None,
        until: datetime | None,
        limit: int,
        after: tuple[datetime, str] | None = None,
    ) -> ReadingColumns:
        """`list_readings` ascending as columns, for a table of a great many readings: the same readings
        in the same order, without an object per reading where the store can avoid one."""
        ...

    async def bucket_readings(
        self, metric_id: str, since: datetime, until: datetime, step: int, limit: int
    ) -> list[Bucket]:
        """The readings within [since, until] summarised per `step` microseconds (see `buckets`): the
        first `limit` buckets that hold readings, ascending."""
        ...

    async def window_values(self, metric_id: str, windows: Windows, function: str) -> list[float | None]:
        """PromQL's `<function>_over_time` (`avg`, `sum`, `min`, `max`, `count` or `last`) of the readings
        in each of `windows` (closed at both ends, in microseconds), None for a window without one:
        summarised where the store can, so that a long range is not read reading by reading."""
        ...

    async def trim_readings(self, before: datetime, chunk: int = 5000) -> int:
        """Delete every metric's readings older than `before`, oldest first, at most `chunk` per step so
        that other work goes on meanwhile; how many were deleted."""
        ...

    async def retained_events(self) -> RetainedLog:
        """Every stored event in log order; whether older events were trimmed (so the first one returned
        is not the beginning of history); and the marks those left (`events.newest_of_each_kind`), read
        in the same step."""
        ...

    async def trim_events(self, before: float) -> None:
        """Forget events in log order, oldest first, up to the first one created at or after `before`
        (wall-clock seconds), but keep the newest of those forgotten: the first event kept then marks
        where trimmed history ends, so a client that saw it loses nothing across a restart. Never by
        the time alone: a wall clock that stepped back must not open a gap in the middle. The forgotten
        events' marks are kept in the same step, so a filtered client's position survives a restart."""
        ...


class SharedStorage(Storage, Protocol):
    """A store shared with other processes, with a log of its own: every process, the writer included,
    publishes what `follow()` reads from that log, in its order, so every client sees one order."""

    async def newest_event_id(self) -> str | None:
        """The id of the newest event in the store's log (None if it holds none)."""
        ...

    async def follow(self, publish: Callable[[list[Event]], None], lost: Callable[[], None]) -> None:
        """Publish new events from the store's log in order until cancelled; call `lost` when some
        expired before this process read them."""
        ...


def is_shared(storage: Storage) -> TypeGuard[SharedStorage]:
    """Whether `storage` is shared with other processes (it has a log to follow). Asked of this one
    method, not of the whole protocol as `runtime_checkable` would: a store missing some other method
    must fail the type check, not quietly pass for a store of this process alone."""
    return callable(getattr(storage, "follow", None))
