"""`MetricService`: the blocking twin of `AsyncMetricService` (`use_cases.py`), for any thread but the
server's own (a script, a notebook cell). Each call runs the async one on the server's loop and waits, so
both emit the same events in one order and raise the same errors with the same messages.

A Hub hands out one `MetricService` for its whole life, and each call asks the hub for the server it
runs now: a reference kept across `hub.stop(); hub.start()` (a notebook variable) works again once the
hub is back, and raises `HubError` while it is stopped."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine, Iterable, Iterator, Mapping
from datetime import datetime
from typing import TYPE_CHECKING, Any, Concatenate, Literal, ParamSpec, TypeVar, overload

from ..domain.buckets import Bucket
from ..domain.paging import Page
from ..domain.validation import ReadingsQuery
from ..domain.values import DEFAULT_READINGS_LIMIT, Metric, MetricReading, Order, Snapshot
from ..errors import HubError, ValidationError
from .queries import next_query, paging_query, readings_query
from .tables import Library, MetricSelection, frame_page, select_metrics, start_table
from .use_cases import LOG_FORMS, AsyncMetricService

if TYPE_CHECKING:
    import pandas as pd
    import polars as pl
    import pyarrow as pa

__all__ = ["MetricService"]

T = TypeVar("T")
P = ParamSpec("P")

# The async service and the loop it runs on, of the server running now; raises HubError if none is.
Serving = Callable[[], tuple[AsyncMetricService, asyncio.AbstractEventLoop]]


def _running_loop() -> asyncio.AbstractEventLoop | None:
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        return None


class MetricService:
    """Blocking metric use cases, callable from any thread but the server's own.

    Returned values are frozen dataclasses (`Metric`, `MetricReading`); bad input raises
    `ValidationError` (a `ValueError`) and an unknown metric `NotFoundError` (a `LookupError`).
    """

    def __init__(self, serving: Serving) -> None:
        self._serving = serving

    def _run(
        self,
        method: Callable[Concatenate[AsyncMetricService, P], Coroutine[Any, Any, T]],
        *args: P.args,
        **kwargs: P.kwargs,
    ) -> T:
        """Run `method` of the async service of the server running now, on its loop; wait for the result."""
        service, loop = self._serving()
        if not loop.is_running():
            raise HubError("the hub is not running")
        if _running_loop() is loop:
            raise HubError("MetricService blocks; on the server's loop use AsyncMetricService")
        return asyncio.run_coroutine_threadsafe(method(service, *args, **kwargs), loop).result()

    @property
    def last_event_id(self) -> str:
        """Where the stream stands (the nil UUID before any event); see `AsyncMetricService`."""
        service, _ = self._serving()
        return service.last_event_id

    def create_metric(
        self,
        name: str,
        input_frequency: float | None = None,
        *,
        labels: Mapping[str, str] | None = None,
        unit: str | None = None,
        description: str | None = None,
    ) -> Metric:
        """Create a metric and announce it with a `metric_created` event. If a metric of that name and
        labels exists with the same input_frequency, unit and description, that one is returned (nothing
        announced); if they differ, `ConflictError`."""
        return self._run(
            AsyncMetricService.create_metric,
            name,
            input_frequency,
            labels=labels,
            unit=unit,
            description=description,
        )

    @overload
    def log(
        self,
        name: str,
        value: float,
        timestamp: datetime | str | None = None,
        *,
        labels: Mapping[str, str] | None = None,
    ) -> MetricReading: ...

    @overload
    def log(
        self,
        name: Mapping[str, float],
        *,
        timestamp: datetime | str | None = None,
        labels: Mapping[str, str] | None = None,
    ) -> list[MetricReading]: ...

    def log(
        self,
        name: str | Mapping[str, float],
        value: float | None = None,
        timestamp: datetime | str | None = None,
        *,
        labels: Mapping[str, str] | None = None,
    ) -> MetricReading | list[MetricReading]:
        """Record a reading of the metric named `name` with `labels` (timestamp defaults to now), creating
        the metric first if no metric has that name and those labels; both announced, the metric first.

        Given a mapping of names to values, ``log({"loss": 0.31, "acc": 0.92})``, one batch: every
        reading shares one timestamp (`timestamp`, or now read once) and `labels`, metrics missing are
        created in the mapping's order and announced before the readings, and the readings are returned in
        that order. All or nothing, with the batch route's checks and messages; an empty mapping stores
        nothing."""
        if not isinstance(name, Mapping):
            return self._run(AsyncMetricService.log_one, name, value, timestamp, labels)
        if value is not None:
            raise ValidationError(LOG_FORMS)
        # A copy: the server's thread reads it while the caller's thread may change the original.
        return self._run(AsyncMetricService.log_many, dict(name), timestamp, labels)

    def metric(self, name: str, *, labels: Mapping[str, str] | None = None) -> Metric:
        """The metric named `name` with `labels`, created and announced if no metric has them."""
        return self._run(AsyncMetricService.metric, name, labels=labels)

    def get_metric(self, metric_id: str) -> Metric:
        return self._run(AsyncMetricService.get_metric, metric_id)

    def delete_metric(self, metric_id: str) -> None:
        """Remove a metric and its readings, and announce it (`metric_deleted`)."""
        self._run(AsyncMetricService.delete_metric, metric_id)

    def list_metrics(
        self, name: str | None = None, *, labels: Mapping[str, str] | None = None
    ) -> list[Metric]:
        """Every metric, in creation order; with `name`, those with exactly that name; with `labels`, those
        whose labels include all these pairs."""
        return self._run(AsyncMetricService.list_metrics, name, labels=labels)

    def snapshot(self, readings_limit: int = DEFAULT_READINGS_LIMIT) -> Snapshot:
        """The state and its stream position in one step: load it, then follow
        ``hub.subscribe(last_event_id=snapshot.last_event_id)`` with no duplicate and no gap."""
        return self._run(AsyncMetricService.snapshot, readings_limit)

    def create_reading(
        self, metric_id: str, value: float, timestamp: datetime | str | None = None
    ) -> MetricReading:
        """Record a reading (timestamp defaults to now) and announce it."""
        return self._run(AsyncMetricService.create_reading, metric_id, value, timestamp)

    def create_readings(self, items: Iterable[Mapping[str, Any]]) -> list[MetricReading]:
        """Record many readings at once, all or nothing; items are dicts like the HTTP body."""
        return self._run(AsyncMetricService.create_readings, items)

    @overload
    def list_readings(
        self,
        metric_id: str,
        since: datetime | str | None = None,
        until: datetime | str | None = None,
        limit: int | None = None,
        step: None = None,
        *,
        order: Order = "asc",
        cursor: str | None = None,
    ) -> Page[MetricReading]: ...

    @overload
    def list_readings(
        self,
        metric_id: str,
        since: datetime | str | None = None,
        until: datetime | str | None = None,
        limit: int | None = None,
        *,
        step: float | str,
        order: Order = "asc",
        cursor: str | None = None,
    ) -> Page[Bucket]: ...

    def list_readings(
        self,
        metric_id: str,
        since: datetime | str | None = None,
        until: datetime | str | None = None,
        limit: int | None = None,
        step: float | str | None = None,
        *,
        order: Order = "asc",
        cursor: str | None = None,
    ) -> Page[MetricReading] | Page[Bucket]:
        """A metric's first `limit` readings (default 1000) by timestamp, `since`/`until` inclusive,
        oldest first or with `order="desc"` newest first: a `Page`, a list that says whether more match
        (`truncated`) and where they go on (`next_cursor`, to pass back as `cursor`). With `step`
        (seconds, or a duration such as "10s", "5m", "1h"), `Bucket`s instead: count, min, max, avg,
        first and last per step of time since 1970, empty ones left out, oldest first; `until` defaults
        to now and `since` to `limit` steps before it."""
        query = readings_query(since, until, limit, step, order, cursor)
        if query.step is None:
            return self._run(AsyncMetricService.query_readings, metric_id, query)
        return self._run(AsyncMetricService.query_buckets, metric_id, query)

    def iter_readings(
        self,
        metric_id: str,
        since: datetime | str | None = None,
        until: datetime | str | None = None,
        *,
        order: Order = "asc",
        page_size: int = DEFAULT_READINGS_LIMIT,
    ) -> Iterator[MetricReading]:
        """Every reading of the metric within [since, until], oldest first or with `order="desc"` newest
        first, read `page_size` at a time: none twice and none left out, though readings are written
        meanwhile (those sorting before the page being read are not seen)."""
        return self._iter_pages(metric_id, paging_query(since, until, order, page_size))

    @overload
    def frame(
        self,
        metrics: MetricSelection = None,
        since: datetime | str | None = None,
        until: datetime | str | None = None,
        step: float | str | None = None,
        library: Literal["pandas"] = "pandas",
        *,
        label_columns: bool = False,
    ) -> pd.DataFrame: ...

    @overload
    def frame(
        self,
        metrics: MetricSelection = None,
        since: datetime | str | None = None,
        until: datetime | str | None = None,
        step: float | str | None = None,
        *,
        library: Literal["polars"],
        label_columns: bool = False,
    ) -> pl.DataFrame: ...

    @overload
    def frame(
        self,
        metrics: MetricSelection = None,
        since: datetime | str | None = None,
        until: datetime | str | None = None,
        step: float | str | None = None,
        *,
        library: Literal["arrow"],
        label_columns: bool = False,
    ) -> pa.Table: ...

    def frame(
        self,
        metrics: MetricSelection = None,
        since: datetime | str | None = None,
        until: datetime | str | None = None,
        step: float | str | None = None,
        library: Library = "pandas",
        *,
        label_columns: bool = False,
    ) -> Any:
        """Every reading of the metrics (`None`: all; else names, ids or `Metric`s, one or a list: a name
        several metrics have selects them all) within [since, until], as one long table, by metric in
        creation order, then by timestamp and id: columns `metric` (the name), `metric_id`, `labels` (as
        `labels=` writes them, `host=a,dc=x`; "" for none), `unit` and `description` (null for none),
        `timestamp` (UTC, microseconds) and `value`. With `step`, the buckets instead (`start`, `count`,
        `min`, `max`, `avg`, `first`, `last` after the metric's columns) from each metric's first reading
        (or `since`) to its last (or `until`), as ``list_readings(step=...)`` gives them. `label_columns`
        adds a column per label name after `labels` (`labels.host`, null where a metric has no such
        label). `library` is "pandas" (a DataFrame), "polars" (a polars DataFrame) or "arrow" (a pyarrow
        Table), imported when asked for (``pip install 'metricstream[notebook]'``). Read page after page,
        every reading: never cut."""
        table, first = start_table(since, until, step, library, label_columns)
        for metric in select_metrics(self.list_metrics(), metrics):
            query: ReadingsQuery | None = first
            while query is not None:
                page, query = self._run(frame_page, metric.id, query)
                table.add(metric, page)
        return table.build()

    def _iter_pages(self, metric_id: str, query: ReadingsQuery | None) -> Iterator[MetricReading]:
        while query is not None:
            page = self._run(AsyncMetricService.query_readings, metric_id, query)
            yield from page
            query = next_query(query, page)
