"""Readings as a pandas DataFrame, for analysis in a notebook.

pandas is an optional extra (`pip install 'metricstream[notebook]'`): it is imported when `to_dataframe` is
called, never when metricstream is, so the package and its subscriber work without it.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Final

from ..client.core import StreamEvent
from ..domain.buckets import Bucket
from ..domain.labels import format_labels
from ..domain.values import Metric, MetricReading
from ..wire import READING_CREATED

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["to_dataframe"]

_MISSING_PANDAS: Final = "to_dataframe needs pandas: pip install 'metricstream[notebook]'"
_READING_FIELDS: Final = ("id", "metric_id", "value", "timestamp")
_BUCKET_FIELDS: Final = ("start", "count", "min", "max", "avg", "first", "last")
# Microseconds: the precision readings carry, and (unlike pandas' nanoseconds) every year a reading may have.
_TIMESTAMP_DTYPE: Final = "datetime64[us, UTC]"

Reading = MetricReading | Mapping[str, Any] | StreamEvent | Bucket
# A metric's name, labels (as text), unit and description
_Described = tuple[str, str, str | None, str | None]


def to_dataframe(
    items: Iterable[Reading],
    metrics: Iterable[Metric | Mapping[str, Any]] | None = None,
) -> pd.DataFrame:
    """A DataFrame with one row per reading, sorted by timestamp.

    `items` may mix `MetricReading` objects (from `hub.service`), reading dicts (the JSON bodies the HTTP
    API returns) and `StreamEvent`s from a `Subscriber`; events other than `metric_reading_created` are
    skipped. Columns: `id`, `metric_id`, `metric` (the metric's name, only when `metrics` — `Metric`
    objects or metric dicts — is given; missing for readings of metrics not among them), `value` (float)
    and `timestamp` (UTC); with `metrics`, then `labels` (as `labels=` writes them, `dc=x,host=a`, sorted
    by name; "" for none: text, so rows group by it), `unit` and `description`. Readings with equal
    timestamps keep their input order.

    `items` may instead be buckets (`Bucket`s from ``list_readings(..., step=...)``, or the bucket dicts
    of ``GET /metrics/{id}/readings?step=``): then one row per bucket, columns `start` (UTC), `count`,
    `min`, `max`, `avg`, `first`, `last`, sorted by start.

        df = to_dataframe(hub.service.list_readings(cpu.id), metrics=hub.service.list_metrics())
        df.set_index("timestamp").groupby("metric")["value"].resample("1min").mean()
    """
    try:
        import pandas as pd
    except ImportError as error:
        raise ImportError(_MISSING_PANDAS, name=error.name) from error

    items = list(items)
    if items and _is_bucket(items[0]):
        if metrics is not None:
            raise ValueError("buckets carry no metric_id: to_dataframe takes no metrics with them")
        return _bucket_frame(pd, items)
    rows = [row for row in map(_row, items) if row is not None]
    column = {field: [row[field] for row in rows] for field in _READING_FIELDS}
    # "str" is pandas' default text dtype: object in pandas 2, a string dtype in pandas 3
    data = {field: pd.Series(column[field], dtype="str") for field in ("id", "metric_id")}
    described = {} if metrics is None else dict(map(_metric_fields, metrics))
    if metrics is not None:
        # None, not NaN, for an unknown metric: pandas 2 would turn NaN into the text "nan"
        data["metric"] = _described(pd, described, column["metric_id"], 0)
    data["value"] = pd.Series(column["value"], dtype="float64")
    data["timestamp"] = pd.Series(column["timestamp"], dtype=_TIMESTAMP_DTYPE)
    if metrics is not None:  # after the older columns, which keep their places
        data["labels"] = _described(pd, described, column["metric_id"], 1)
        data["unit"] = _described(pd, described, column["metric_id"], 2)
        data["description"] = _described(pd, described, column["metric_id"], 3)
    return pd.DataFrame(data).sort_values("timestamp", kind="stable", ignore_index=True)


def _described(pandas: Any, described: Mapping[str, _Described], ids: list[str], field: int) -> Any:
    """A text column of one of the metrics' fields (name, labels, unit, description), None for an unknown
    metric."""
    return pandas.Series([(described.get(i) or (None,) * 4)[field] for i in ids], dtype="str")


def _is_bucket(item: object) -> bool:
    return isinstance(item, Bucket) or (isinstance(item, Mapping) and "start" in item and "count" in item)


def _bucket_frame(pandas: Any, items: list[Any]) -> pd.DataFrame:
    """One row per bucket (`Bucket`s or the bucket dicts the HTTP API returns), sorted by start; `pandas`
    is the module, imported when called."""
    rows = []
    for item in items:
        if not _is_bucket(item):
            raise TypeError(f"expected only buckets after a bucket, got {type(item).__name__}")
        fields = item.to_dict() if isinstance(item, Bucket) else item
        missing = [field for field in _BUCKET_FIELDS if field not in fields]
        if missing:
            raise ValueError(f"a bucket needs {', '.join(missing)}; got keys {sorted(fields)}")
        rows.append({**fields, "start": _utc(fields["start"])})
    data = {"start": pandas.Series([row["start"] for row in rows], dtype=_TIMESTAMP_DTYPE)}
    data["count"] = pandas.Series([row["count"] for row in rows], dtype="int64")
    for field in _BUCKET_FIELDS[2:]:
        data[field] = pandas.Series([row[field] for row in rows], dtype="float64")
    frame: pd.DataFrame = pandas.DataFrame(data).sort_values("start", kind="stable", ignore_index=True)
    return frame


def _row(item: Reading) -> dict[str, Any] | None:
    """The reading's fields with its timestamp in UTC, or None for an event that is not a reading."""
    if isinstance(item, MetricReading):
        return {
            "id": item.id,
            "metric_id": item.metric_id,
            "value": item.value,
            "timestamp": _utc(item.timestamp),
        }
    if isinstance(item, StreamEvent):
        return _row(item.data) if item.type == READING_CREATED else None
    if isinstance(item, Mapping):
        missing = [field for field in _READING_FIELDS if field not in item]
        if missing:
            raise ValueError(f"a reading needs {', '.join(missing)}; got keys {sorted(item)}")
        return {**{field: item[field] for field in _READING_FIELDS}, "timestamp": _utc(item["timestamp"])}
    raise TypeError(f"expected a MetricReading, a reading dict or a StreamEvent, got {type(item).__name__}")


def _utc(value: object) -> datetime:
    """An RFC 3339 text or an aware datetime, in UTC."""
    # Parsed here rather than by pd.to_datetime, which in pandas 2 goes through nanoseconds and so
    # fails on years before 1677 that the API accepts.
    moment = value
    if isinstance(value, str):
        with contextlib.suppress(ValueError):
            moment = datetime.fromisoformat(value.upper())  # RFC 3339 allows a lowercase "t" and "z"
    if not isinstance(moment, datetime) or moment.tzinfo is None:
        raise ValueError(f"a reading's timestamp must be RFC 3339 with an offset, got {value!r}")
    try:
        return moment.astimezone(UTC)
    except OverflowError:  # 0001-01-01T00:00:00+01:00
        raise ValueError(f"a reading's timestamp is out of range: {value!r}") from None


def _labels_text(labels: Mapping[str, str]) -> str:
    return format_labels(dict(sorted(labels.items())))


def _metric_fields(metric: Metric | Mapping[str, Any]) -> tuple[str, _Described]:
    """A metric's id, and its name, labels (as text), unit and description."""
    if isinstance(metric, Metric):
        return metric.id, (metric.name, _labels_text(metric.labels), metric.unit, metric.description)
    if isinstance(metric, Mapping):
        labels = _labels_text(metric.get("labels") or {})
        return metric["id"], (metric["name"], labels, metric.get("unit"), metric.get("description"))
    raise TypeError(f"expected a Metric or a metric dict, got {type(metric).__name__}")
