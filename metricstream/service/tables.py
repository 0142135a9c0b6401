"""Every reading of many metrics as one table, for `frame()`: columns gathered page by page (`frame_page`,
which both service twins call), then a pandas or polars DataFrame or a pyarrow Table, each library imported
only when asked for.

A table is built in columns, never a row object per reading: times as int64 microseconds since the epoch
and values as float64 in `array`s, handed to the library in one vectorised step (a buffer, not a million
objects); the metric's name and id as runs, one per metric. Every library gets the same columns with the
same types: text, timestamp in microseconds UTC (every year a reading may have, unlike nanoseconds),
float64, and int64 for a bucket's count.
"""

from __future__ import annotations

import uuid
from array import array
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Final, Literal, Protocol

from ..domain.buckets import Bucket
from ..domain.paging import Page
from ..domain.validation import ReadingsQuery
from ..domain.values import Metric, MetricReading
from ..errors import NotFoundError, ValidationError
from ..storage.base import Storage
from ..storage.rows import ReadingColumns
from ..wire import MAX_READINGS_LIMIT
from .queries import column_page, next_query, readings_query

__all__ = [
    "LIBRARIES",
    "Library",
    "MetricSelection",
    "TableBuilder",
    "collect_table",
    "frame_page",
    "select_metrics",
    "start_table",
]

Library = Literal["pandas", "polars", "arrow"]
LIBRARIES: Final = ("pandas", "polars", "arrow")
# Which metrics: None (all), or a name, an id or a `Metric`, or several of them.
MetricSelection = str | Metric | Iterable[str | Metric] | None

_EXTRA: Final = "pip install 'metricstream[notebook]'"
_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND: Final = timedelta(microseconds=1)
_FLOATS: Final = ("min", "max", "avg", "first", "last")


class Service(Protocol):
    """What a table is read through: `AsyncMetricService` (named so, it would be an import cycle)."""

    storage: Storage

    async def list_metrics(self, name: str | None = None) -> list[Metric]: ...

    async def get_metric(self, metric_id: str) -> Metric: ...

    async def query_readings(self, metric_id: str, query: ReadingsQuery) -> Page[MetricReading]: ...

    async def query_buckets(self, metric_id: str, query: ReadingsQuery) -> Page[Bucket]: ...


def start_table(
    since: datetime | str | None, until: datetime | str | None, step: float | str | None, library: object
) -> tuple[TableBuilder, ReadingsQuery]:
    """An empty table for `library` and the query of each metric's first page, checked before any read:
    pages as long as a query may ask."""
    if library not in LIBRARIES:
        raise ValidationError(f"library must be one of {', '.join(map(repr, LIBRARIES))}, got {library!r}")
    query = readings_query(since, until, MAX_READINGS_LIMIT, step)
    if query.since and query.until and query.since > query.until:
        raise ValidationError("since must not be later than until")
    return TableBuilder(library, buckets=query.step is not None), query


def select_metrics(every: Sequence[Metric], wanted: MetricSelection) -> list[Metric]:
    """The metrics of `every` (in its order, creation order) that `wanted` names: each `Metric` or id that
    one, each name every metric so named; `NotFoundError` for one that none is."""
    if wanted is None:
        return list(every)
    items = [wanted] if isinstance(wanted, str | Metric) else list(wanted)
    by_id = {metric.id: metric for metric in every}
    chosen: set[str] = set()
    for item in items:
        if isinstance(item, Metric):
            item = item.id
        if not isinstance(item, str):
            raise ValidationError(
                f"metrics must be names, ids or Metrics (or a list of them), got {type(item).__name__}"
            )
        found = [by_id[_normal_id(item)]] if _normal_id(item) in by_id else []
        found = found or [metric for metric in every if metric.name == item]
        if not found:
            raise NotFoundError(f"no metric has the id or name {item[:200]!r}")
        chosen.update(metric.id for metric in found)
    return [metric for metric in every if metric.id in chosen]


async def collect_table(
    service: Service,
    metrics: MetricSelection,
    since: datetime | str | None,
    until: datetime | str | None,
    step: float | str | None,
    library: object,
) -> TableBuilder:
    """Every page of the chosen metrics, on the service's loop (the blocking twin runs the same steps
    from its own thread, a page per call)."""
    table, first = start_table(since, until, step, library)
    for metric in select_metrics(await service.list_metrics(), metrics):
        query: ReadingsQuery | None = first
        while query is not None:
            page, query = await frame_page(service, metric.id, query)
            table.add(metric, page)
    return table


async def frame_page(
    service: Service, metric_id: str, query: ReadingsQuery
) -> tuple[ReadingColumns | Page[Bucket], ReadingsQuery | None]:
    """A page of a metric's readings as columns (or its buckets, with `query.step`), and the query of the
    next (None after the last). Buckets span the metric's readings unless `since` and `until` say."""
    metric_id = (await service.get_metric(metric_id)).id
    if query.step is None:
        return await column_page(service.storage, metric_id, query)
    if query.cursor is None and (query.since is None or query.until is None):
        query = await _span(service, metric_id, query)
        if query.since is None or query.until is None or query.since > query.until:
            return Page(), None
    buckets = await service.query_buckets(metric_id, query)
    return buckets, next_query(query, buckets)


async def _span(service: Service, metric_id: str, query: ReadingsQuery) -> ReadingsQuery:
    """`query` with since and until, where not given, at the metric's first and last readings in it
    (None if it has none)."""
    span = {}
    for end, order in (("since", "asc"), ("until", "desc")):
        if getattr(query, end) is None:
            edge = await service.query_readings(
                metric_id, query.model_copy(update={"limit": 1, "order": order})
            )
            span[end] = edge[0].timestamp if edge else None
    return query.model_copy(update=span)


def _normal_id(text: str) -> str:
    try:
        return str(uuid.UUID(text))
    except ValueError:
        return text


def _micros(moment: datetime) -> int:
    return (moment - _EPOCH) // _MICROSECOND


@dataclass
class TableBuilder:
    """The columns of a frame, a page of readings (or buckets) of one metric at a time."""

    library: Library
    buckets: bool = False
    # (name, id, rows) per run of rows of one metric
    runs: list[tuple[str, str, int]] = field(default_factory=list)
    times: array[int] = field(default_factory=lambda: array("q"))
    floats: dict[str, array[float]] = field(default_factory=dict)
    counts: array[int] = field(default_factory=lambda: array("q"))

    def __post_init__(self) -> None:
        self.floats = {name: array("d") for name in (_FLOATS if self.buckets else ("value",))}

    def add(self, metric: Metric, page: ReadingColumns | Sequence[Bucket]) -> None:
        """Append a page of the metric's readings, or of its buckets."""
        if isinstance(page, ReadingColumns):
            self._run(metric, len(page.times))
            self.times.extend(page.times)
            self.floats["value"].extend(page.values)
        else:
            self.add_buckets(metric, page)

    def add_buckets(self, metric: Metric, page: Sequence[Bucket]) -> None:
        self._run(metric, len(page))
        self.times.extend([_micros(bucket.start) for bucket in page])
        self.counts.extend([bucket.count for bucket in page])
        for name, column in self.floats.items():
            column.extend([getattr(bucket, name) for bucket in page])

    def _run(self, metric: Metric, rows: int) -> None:
        if self.runs and self.runs[-1][1] == metric.id:
            name, metric_id, before = self.runs[-1]
            self.runs[-1] = (name, metric_id, before + rows)
        elif rows:
            self.runs.append((metric.name, metric.id, rows))

    def text(self, index: int) -> list[str]:
        """The name (0) or id (1) column: one shared string per run, repeated."""
        column: list[str] = []
        for name, metric_id, rows in self.runs:
            column += [(name, metric_id)[index]] * rows
        return column

    def build(self) -> Any:
        """The table as its library's type: a pandas or polars DataFrame, or a pyarrow Table."""
        return {"pandas": _to_pandas, "polars": _to_polars, "arrow": _to_arrow}[self.library](self)

    def numbers(self) -> list[tuple[str, array[Any]]]:
        """The columns after the metric's name and id, in order, but the time."""
        if not self.buckets:
            return [("value", self.floats["value"])]
        return [("count", self.counts), *self.floats.items()]

    @property
    def time_name(self) -> str:
        return "start" if self.buckets else "timestamp"


def _need(library: str, module: str) -> Any:
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError as error:
        raise ImportError(f'frame(library="{library}") needs {module}: {_EXTRA}', name=error.name) from error


def _to_pandas(table: TableBuilder) -> Any:
    pd = _need("pandas", "pandas")
    import numpy as np  # pandas' own dependency

    times = np.frombuffer(table.times, dtype="int64").view("datetime64[us]")
    data = {
        "metric": pd.Series(table.text(0), dtype="str"),
        "metric_id": pd.Series(table.text(1), dtype="str"),
        table.time_name: pd.Series(times).dt.tz_localize("UTC"),
    }
    for name, column in table.numbers():
        data[name] = pd.Series(np.frombuffer(column, dtype="float64" if column.typecode == "d" else "int64"))
    return pd.DataFrame(data)


def _to_polars(table: TableBuilder) -> Any:
    pl = _need("polars", "polars")
    columns = [
        pl.Series("metric", table.text(0), dtype=pl.String),
        pl.Series("metric_id", table.text(1), dtype=pl.String),
        pl.Series(table.time_name, table.times, dtype=pl.Int64).cast(pl.Datetime("us", "UTC")),
    ]
    for name, column in table.numbers():
        columns.append(pl.Series(name, column, dtype=pl.Float64 if column.typecode == "d" else pl.Int64))
    return pl.DataFrame(columns)


def _to_arrow(table: TableBuilder) -> Any:
    pa = _need("arrow", "pyarrow")
    rows = len(table.times)

    def column(kind: Any, values: array[Any]) -> Any:
        # The array's own buffer, not a copy through Python objects
        return pa.Array.from_buffers(kind, rows, [None, pa.py_buffer(values)])

    arrays = {
        "metric": pa.array(table.text(0), pa.string()),
        "metric_id": pa.array(table.text(1), pa.string()),
        table.time_name: column(pa.timestamp("us", tz="UTC"), table.times),
    }
    for name, values in table.numbers():
        arrays[name] = column(pa.float64() if values.typecode == "d" else pa.int64(), values)
    return pa.table(arrays)
