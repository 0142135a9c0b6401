"""Every reading of many metrics as one table, for `frame()`: columns gathered page by page (`frame_page`,
which both service twins call), then a pandas or polars DataFrame or a pyarrow Table, each library imported
only when asked for.

The columns are defined once, here (`READING_COLUMNS`, `BUCKET_COLUMNS`, `table_columns`), for every
library and for an exporter: first the metric's own (`metric` its name, `metric_id`, `labels` as the
`labels=` query writes them, `host=a,dc=x`, sorted by name and "" for none, then `unit` and `description`,
null when the metric has none), then the time (`timestamp`, or a bucket's `start`) and the numbers
(`value`, or `count`, `min`, `max`, `avg`, `first`, `last`). The metric's columns come first, as a table
of facts is keyed; its labels are one text column, since label sets differ between metrics. A column per
label name (`labels.host`, null where a metric has no such label) is an option (`label_columns=True`), for
grouping by one label across metrics; its columns follow `labels`, sorted, and depend on the metrics chosen.

A table is built in columns, never a row object per reading: times as int64 microseconds since the epoch
and values as float64 in `array`s, handed to the library in one vectorised step (a buffer, not a million
objects); the metric's columns as runs, one text per metric, spread over its rows by the library's own
`take`. Every library gets the same columns with the same types: text (pyarrow's `string`, in chunks of
under 2 GiB, its limit), timestamp in microseconds UTC (every year a reading may have, unlike
nanoseconds), float64, and int64 for a bucket's count; a null text is pandas' missing value (NaN in
pandas 3's `str` dtype, None in pandas 2), polars' and pyarrow's null.
"""

from __future__ import annotations

import uuid
from array import array
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Final, Literal, Protocol

from ..domain.buckets import Bucket
from ..domain.labels import format_labels
from ..domain.paging import Page
from ..domain.validation import ReadingsQuery
from ..domain.values import Metric, MetricReading
from ..errors import NotFoundError, ValidationError
from ..storage.base import Storage
from ..storage.rows import ReadingColumns, micros
from ..wire import MAX_READINGS_LIMIT
from .queries import column_page, next_query, readings_query

__all__ = [
    "BUCKET_COLUMNS",
    "LIBRARIES",
    "METRIC_COLUMNS",
    "READING_COLUMNS",
    "Column",
    "ColumnKind",
    "Library",
    "MetricSelection",
    "TableBuilder",
    "collect_table",
    "frame_page",
    "label_column",
    "select_metrics",
    "span_query",
    "start_table",
    "table_columns",
]

Library = Literal["pandas", "polars", "arrow"]
LIBRARIES: Final = ("pandas", "polars", "arrow")
# Which metrics: None (all), or a name, an id or a `Metric`, or several of them.
MetricSelection = str | Metric | Iterable[str | Metric] | None
# What a column holds; each library's type for each kind is in the module docstring.
ColumnKind = Literal["text", "time", "float", "int"]

_EXTRA: Final = "pip install 'metricstream[notebook]'"
_FLOATS: Final = ("min", "max", "avg", "first", "last")
# A pyarrow `string` array's offsets are int32: a chunk of text holds under 2 GiB.
_ARROW_TEXT_BYTES: Final = 2**31 - 1


@dataclass(frozen=True)
class Column:
    """One column of a frame: its name, what it holds, whether it may be null, and for a column of the
    metric's own (the same on each of its rows) how it is read from the metric."""

    name: str
    kind: ColumnKind
    nullable: bool = False
    of_metric: Callable[[Metric], str | None] | None = field(default=None, compare=False, repr=False)


def _labels_text(metric: Metric) -> str:
    return format_labels(dict(sorted(metric.labels.items())))


METRIC_COLUMNS: Final = (
    Column("metric", "text", of_metric=lambda metric: metric.name),
    Column("metric_id", "text", of_metric=lambda metric: metric.id),
    Column("labels", "text", of_metric=_labels_text),
    Column("unit", "text", nullable=True, of_metric=lambda metric: metric.unit),
    Column("description", "text", nullable=True, of_metric=lambda metric: metric.description),
)
READING_COLUMNS: Final = (*METRIC_COLUMNS, Column("timestamp", "time"), Column("value", "float"))
BUCKET_COLUMNS: Final = (
    *METRIC_COLUMNS,
    Column("start", "time"),
    Column("count", "int"),
    *(Column(name, "float") for name in _FLOATS),
)


def label_column(name: str) -> Column:
    """The column of one label (`labels.host`): its value, null for a metric without it."""
    return Column(f"labels.{name}", "text", nullable=True, of_metric=lambda metric: metric.labels.get(name))


def table_columns(buckets: bool, label_names: Iterable[str] = ()) -> tuple[Column, ...]:
    """The columns of a frame of readings (or of buckets), with a column per label name given, after
    `labels`."""
    fixed = BUCKET_COLUMNS if buckets else READING_COLUMNS
    after_labels = [column.name for column in fixed].index("labels") + 1
    return (*fixed[:after_labels], *map(label_column, sorted(label_names)), *fixed[after_labels:])


class Service(Protocol):
    """What a table is read through: `AsyncMetricService` (named so, it would be an import cycle)."""

    storage: Storage

    async def list_metrics(self, name: str | None = None) -> list[Metric]: ...

    async def get_metric(self, metric_id: str) -> Metric: ...

    async def query_readings(self, metric_id: str, query: ReadingsQuery) -> Page[MetricReading]: ...

    async def query_buckets(self, metric_id: str, query: ReadingsQuery) -> Page[Bucket]: ...


def start_table(
    since: datetime | str | None,
    until: datetime | str | None,
    step: float | str | None,
    library: object,
    label_columns: object = False,
) -> tuple[TableBuilder, ReadingsQuery]:
    """An empty table for `library` and the query of each metric's first page, checked before any read:
    pages as long as a query may ask."""
    if library not in LIBRARIES:
        raise ValidationError(f"library must be one of {', '.join(map(repr, LIBRARIES))}, got {library!r}")
    if not isinstance(label_columns, bool):
        raise ValidationError(f"label_columns must be True or False, got {label_columns!r}")
    query = readings_query(since, until, MAX_READINGS_LIMIT, step)
    if query.since and query.until and query.since > query.until:
        raise ValidationError("since must not be later than until")
    return TableBuilder(library, buckets=query.step is not None, label_columns=label_columns), query


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
    label_columns: object = False,
) -> TableBuilder:
    """Every page of the chosen metrics, on the service's loop (the blocking twin runs the same steps
    from its own thread, a page per call)."""
    table, first = start_table(since, until, step, library, label_columns)
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
        query = await span_query(service, metric_id, query)
        if query.since is None or query.until is None or query.since > query.until:
            return Page(), None
    buckets = await service.query_buckets(metric_id, query)
    return buckets, next_query(query, buckets)


async def span_query(service: Service, metric_id: str, query: ReadingsQuery) -> ReadingsQuery:
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


@dataclass
class TableBuilder:
    """The columns of a frame, a page of readings (or buckets) of one metric at a time."""

    library: Library
    buckets: bool = False
    label_columns: bool = False
    # (metric, rows) per run of rows of one metric
    runs: list[tuple[Metric, int]] = field(default_factory=list)
    # every metric added, with rows or none: whose labels make the label columns
    metrics: dict[str, Metric] = field(default_factory=dict)
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
        self.times.extend([micros(bucket.start) for bucket in page])
        self.counts.extend([bucket.count for bucket in page])
        for name, column in self.floats.items():
            column.extend([getattr(bucket, name) for bucket in page])

    def _run(self, metric: Metric, rows: int) -> None:
        self.metrics.setdefault(metric.id, metric)
        if self.runs and self.runs[-1][0].id == metric.id:
            self.runs[-1] = (metric, self.runs[-1][1] + rows)
        elif rows:
            self.runs.append((metric, rows))

    def columns(self) -> tuple[Column, ...]:
        """The table's columns, in order (`table_columns`)."""
        if not self.label_columns:
            return table_columns(self.buckets)
        names = {name for metric in self.metrics.values() for name in metric.labels}
        return table_columns(self.buckets, names)

    def run_texts(self, column: Column) -> list[str | None]:
        """A metric's column as one value per run: `run_indices` spreads them over the rows."""
        assert column.of_metric is not None, column
        return [column.of_metric(metric) for metric, _ in self.runs]

    def run_indices(self) -> array[int]:
        """Each row's run (0, 0, ..., 1, 1, ...): what a library's `take` spreads the runs' texts by."""
        indices = array("q")
        for index, (_, rows) in enumerate(self.runs):
            indices.extend(array("q", [index]) * rows)
        return indices

    def numbers(self, column: Column) -> array[Any]:
        """A time or number column: int64 microseconds, float64 or int64 values."""
        if column.kind == "time":
            return self.times
        return self.counts if column.kind == "int" else self.floats[column.name]

    def build(self) -> Any:
        """The table as its library's type: a pandas or polars DataFrame, or a pyarrow Table."""
        return {"pandas": _to_pandas, "polars": _to_polars, "arrow": _to_arrow}[self.library](self)


def _need(library: str, module: str) -> Any:
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError as error:
        raise ImportError(f'frame(library="{library}") needs {module}: {_EXTRA}', name=error.name) from error


def _to_pandas(table: TableBuilder) -> Any:
    pd = _need("pandas", "pandas")
    import numpy as np  # pandas' own dependency

    indices = np.frombuffer(table.run_indices(), dtype="int64")
    data = {}
    for column in table.columns():
        if column.kind == "text":
            # "str" is pandas' text dtype (object in pandas 2, a string dtype in pandas 3); a run's
            # text is spread by `take`, which copies pointers (or arrow's bytes), not Python objects
            data[column.name] = pd.Series(pd.Series(table.run_texts(column), dtype="str").array.take(indices))
        elif column.kind == "time":
            times = np.frombuffer(table.times, dtype="int64").view("datetime64[us]")
            data[column.name] = pd.Series(times).dt.tz_localize("UTC")
        else:
            kind = "float64" if column.kind == "float" else "int64"
            data[column.name] = pd.Series(np.frombuffer(table.numbers(column), dtype=kind))
    return pd.DataFrame(data)


def _to_polars(table: TableBuilder) -> Any:
    pl = _need("polars", "polars")
    indices = pl.Series(table.run_indices(), dtype=pl.Int64)
    kinds = {"time": pl.Int64, "float": pl.Float64, "int": pl.Int64}
    columns = []
    for column in table.columns():
        if column.kind == "text":
            texts = pl.Series(column.name, table.run_texts(column), dtype=pl.String)
            columns.append(texts.gather(indices))
        else:
            numbers = pl.Series(column.name, table.numbers(column), dtype=kinds[column.kind])
            columns.append(numbers.cast(pl.Datetime("us", "UTC")) if column.kind == "time" else numbers)
    return pl.DataFrame(columns)


def _to_arrow(table: TableBuilder) -> Any:
    pa = _need("arrow", "pyarrow")
    rows = len(table.times)
    indices = pa.py_buffer(table.run_indices())
    kinds = {"time": pa.timestamp("us", tz="UTC"), "float": pa.float64(), "int": pa.int64()}
    fields, arrays = [], []
    for column in table.columns():
        if column.kind == "text":
            fields.append(pa.field(column.name, pa.string(), nullable=column.nullable))
            arrays.append(_arrow_text(pa, table.run_texts(column), indices, rows))
        else:
            fields.append(pa.field(column.name, kinds[column.kind], nullable=False))
            # the array's own buffer, not a copy through Python objects
            buffer = pa.py_buffer(table.numbers(column))
            arrays.append(pa.Array.from_buffers(kinds[column.kind], rows, [None, buffer]))
    return pa.Table.from_arrays(arrays, schema=pa.schema(fields))


def _arrow_text(
    pa: Any, texts: list[str | None], indices: Any, rows: int, chunk_bytes: int = _ARROW_TEXT_BYTES
) -> Any:
    """A text column of `rows` rows, the runs' `texts` taken by the int64 `indices` (a buffer), in chunks
    of at most `chunk_bytes` of text each."""
    longest = max((len(text.encode()) for text in texts if text), default=1)
    per_chunk = max(1, chunk_bytes // longest)
    chunks = [
        pa.Array.from_buffers(pa.int64(), min(per_chunk, rows - start), [None, indices], offset=start)
        for start in range(0, rows, per_chunk)
    ]
    return pa.array(texts, pa.string()).take(pa.chunked_array(chunks, pa.int64()))
