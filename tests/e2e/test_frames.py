"""`hub.service.frame()`: every reading of many metrics as one pandas, polars or arrow table, on every store,
checked against what `iter_readings` and `list_readings` return for each metric."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import pandas as pd
import polars as pl
import pyarrow as pa
import pytest

from metricstream.domain.values import Metric
from metricstream.errors import NotFoundError, ValidationError
from metricstream.server.hub import Hub
from metricstream.service.metric_service import MetricService
from metricstream.service.tables import LIBRARIES

T0 = datetime(2026, 3, 1, 12, tzinfo=UTC)
METRIC_COLUMNS = ["metric", "metric_id", "labels", "unit", "description"]
READING_COLUMNS = [*METRIC_COLUMNS, "timestamp", "value"]
BUCKET_COLUMNS = [*METRIC_COLUMNS, "start", "count", "min", "max", "avg", "first", "last"]


def _fill(service: MetricService) -> list[Metric]:
    """Three metrics, two named alike (told apart by their labels), one with neither labels, unit nor
    description, with readings out of order and ties in time."""
    metrics = [
        service.create_metric("loss", labels={"run": "a", "dc": "eu,1"}, unit="nats", description="train"),
        service.create_metric("acc"),
        service.create_metric("loss", labels={"run": "b"}, unit="nats"),
    ]
    for offset, metric in enumerate(metrics):
        items = [
            {
                "metric_id": metric.id,
                "value": 1 + i + offset,
                "timestamp": T0 + timedelta(seconds=(i * 7) % 40),
            }
            for i in range(60)
        ]
        service.create_readings(items)
    return metrics


def _described(metric: Metric) -> tuple[Any, ...]:
    """A metric's own columns, as the `labels=` query writes its labels (sorted, a comma escaped)."""
    labels = ",".join(
        f"{name}={value.replace(',', chr(92) + ',')}" for name, value in sorted(metric.labels.items())
    )
    return (metric.name, metric.id, labels, metric.unit, metric.description)


def _expected(service: MetricService, metrics: list[Metric], **query: Any) -> list[tuple[Any, ...]]:
    return [
        (*_described(metric), reading.timestamp, reading.value)
        for metric in metrics
        for reading in service.iter_readings(metric.id, **query)
    ]


def _rows(table: Any) -> list[tuple[Any, ...]]:
    """A table's rows as tuples of Python values, whatever its library; pandas' missing text (NaN in
    pandas 3's str dtype) as None."""
    if isinstance(table, pd.DataFrame):
        records = table.to_dict("records")
        return [
            tuple(
                v.to_pydatetime() if isinstance(v, pd.Timestamp) else None if v is None or v != v else v
                for v in r.values()
            )
            for r in records
        ]
    if isinstance(table, pl.DataFrame):
        return table.rows()
    assert isinstance(table, pa.Table)
    return [tuple(row.values()) for row in table.to_pylist()]


def test_a_frame_holds_every_reading_by_metric_then_time_and_id(hub: Hub) -> None:
    metrics = _fill(hub.service)
    frame = hub.service.frame()
    assert list(frame.columns) == READING_COLUMNS
    assert [str(t) for t in frame.dtypes] == ["str"] * 5 + ["datetime64[us, UTC]", "float64"]
    assert _rows(frame) == _expected(hub.service, metrics)
    assert len(frame) == 180
    # one run per metric: with and without labels, unit and description
    assert sorted(set(_rows(frame[METRIC_COLUMNS]))) == sorted(
        [
            ("acc", metrics[1].id, "", None, None),
            ("loss", metrics[0].id, "dc=eu\\,1,run=a", "nats", "train"),
            ("loss", metrics[2].id, "run=b", "nats", None),
        ]
    )
    assert frame.groupby("labels")["value"].count().to_dict() == {"": 60, "dc=eu\\,1,run=a": 60, "run=b": 60}


@pytest.mark.parametrize("step", [None, "10s"])
def test_the_three_libraries_give_the_same_table(hub: Hub, step: str | None) -> None:
    _fill(hub.service)
    pandas = hub.service.frame(step=step)
    polars = hub.service.frame(step=step, library="polars")
    arrow = hub.service.frame(step=step, library="arrow")
    columns = READING_COLUMNS if step is None else BUCKET_COLUMNS
    assert list(pandas.columns) == polars.columns == arrow.column_names == columns
    assert _rows(pandas) == _rows(polars) == _rows(arrow)
    assert len(_rows(arrow)) > 0
    assert {row[2:5] for row in _rows(arrow)} == {
        ("dc=eu\\,1,run=a", "nats", "train"),
        ("", None, None),
        ("run=b", "nats", None),
    }
    assert [str(t) for t in polars.dtypes[:5]] == ["String"] * 5
    assert [str(t) for t in arrow.schema.types[:5]] == ["string"] * 5
    time_column = columns[5]
    assert polars.schema[time_column] == pl.Datetime("us", "UTC")
    assert arrow.schema.field(time_column).type == pa.timestamp("us", tz="UTC")
    assert str(pandas.dtypes[time_column]) == "datetime64[us, UTC]"


def test_with_step_the_buckets_are_list_readings_own(hub: Hub) -> None:
    metrics = _fill(hub.service)
    frame = hub.service.frame(step="15s", library="polars")
    expected = []
    for metric in metrics:
        readings = list(hub.service.iter_readings(metric.id))
        since, until = readings[0].timestamp, readings[-1].timestamp
        buckets = hub.service.list_readings(metric.id, since, until, step="15s")
        assert not buckets.truncated
        expected += [
            (*_described(metric), b.start, b.count, b.min, b.max, b.avg, b.first, b.last) for b in buckets
        ]
    assert frame.rows() == expected
    since, until = T0 + timedelta(seconds=10), T0 + timedelta(seconds=30)
    within = hub.service.frame(since=since, until=until, step=5, library="arrow")
    assert [tuple(r.values())[5:] for r in within.to_pylist()] == [
        (b.start, b.count, b.min, b.max, b.avg, b.first, b.last)
        for metric in metrics
        for b in hub.service.list_readings(metric.id, since, until, step=5)
    ]


@pytest.mark.parametrize("step", [None, "10s"])
def test_label_columns_give_a_column_per_label_name_in_every_library(hub: Hub, step: str | None) -> None:
    loss_a, acc, loss_b = _fill(hub.service)
    tables = [hub.service.frame(step=step, library=library, label_columns=True) for library in LIBRARIES]
    columns = BUCKET_COLUMNS if step else READING_COLUMNS
    expected = [*columns[:3], "labels.dc", "labels.run", *columns[3:]]
    assert [list(t.column_names if isinstance(t, pa.Table) else t.columns) for t in tables] == [expected] * 3
    rows = [_rows(table) for table in tables]
    assert rows[0] == rows[1] == rows[2]
    # the rows of the frame without label columns, the label values beside them
    plain = _rows(hub.service.frame(step=step, library="polars"))
    assert [row[:3] + row[5:] for row in rows[0]] == plain
    by_metric = {row[1]: row[3:5] for row in rows[0]}
    assert by_metric == {loss_a.id: ("eu,1", "a"), acc.id: (None, None), loss_b.id: (None, "b")}
    # what an analyst groups by: one label across metrics
    polars = hub.service.frame(step=step, library="polars", label_columns=True)
    assert polars.group_by("labels.run").len().sort("labels.run").rows() == [
        (None, len(plain) // 3),
        ("a", len(plain) // 3),
        ("b", len(plain) // 3),
    ]
    # the label columns follow the metrics chosen, not all of them
    only_acc = hub.service.frame("acc", step=step, library="arrow", label_columns=True)
    assert only_acc.column_names == columns


def test_since_and_until_bound_every_metric(hub: Hub) -> None:
    metrics = _fill(hub.service)
    since, until = T0 + timedelta(seconds=5), "2026-03-01T12:00:21Z"
    frame = hub.service.frame(since=since, until=until, library="polars")
    assert frame.rows() == _expected(hub.service, metrics, since=since, until=until)
    assert 0 < len(frame) < 180


def test_metrics_are_chosen_by_name_id_or_metric(hub: Hub) -> None:
    loss, acc, loss2 = _fill(hub.service)
    other = hub.service.create_metric("lr")
    hub.service.log("lr", 1.0)
    by_name = hub.service.frame("loss", library="arrow")
    assert by_name.column("metric_id").to_pylist() == [loss.id] * 60 + [loss2.id] * 60
    mixed = hub.service.frame([other, acc.id.upper(), "loss", loss], library="polars")
    # creation order, whatever order they are asked in, each once
    assert mixed.rows() == _expected(hub.service, [loss, acc, loss2, other])
    assert _rows(hub.service.frame(acc)) == _expected(hub.service, [acc])
    with pytest.raises(NotFoundError, match="no metric has the id or name 'los'"):
        hub.service.frame(["acc", "los"])


@pytest.mark.parametrize("library", ["pandas", "polars", "arrow"])
def test_an_empty_frame_has_its_columns_and_no_row(hub: Hub, library: Any) -> None:
    for table in (hub.service.frame(library=library), hub.service.frame(step="1m", library=library)):
        assert _rows(table) == []
    hub.service.log({"loss": 1.0, "acc": 2.0}, timestamp=T0)
    later = hub.service.frame(since=T0 + timedelta(seconds=1), library=library)
    assert _rows(later) == []
    columns = later.columns if library != "arrow" else later.column_names
    assert list(columns) == READING_COLUMNS
    assert _rows(hub.service.frame(since=T0 + timedelta(seconds=1), step="1m", library=library)) == []


def test_a_frame_of_many_pages_is_never_cut(hub: Hub) -> None:
    """Pages of 10,000: `a` spans two of them, `b` too, its 12,000 readings all of one moment, so that
    a page ends within a tie in time and the next goes on by id."""
    metrics = [hub.service.create_metric(name) for name in ("a", "b")]
    for metric, count in zip(metrics, (13_000, 12_000), strict=True):
        for start in range(0, count, 5_000):
            hub.service.create_readings(
                {
                    "metric_id": metric.id,
                    "value": i + 1,
                    "timestamp": T0 + timedelta(milliseconds=i if metric.name == "a" else 0),
                }
                for i in range(start, min(count, start + 5_000))
            )
    frame = hub.service.frame(library="polars")
    assert len(frame) == 25_000
    values = frame["value"].to_list()
    assert values == [float(i + 1) for i in range(13_000)] + [float(i + 1) for i in range(12_000)]
    assert frame["metric"].to_list() == ["a"] * 13_000 + ["b"] * 12_000
    assert frame["timestamp"][12_999] == T0 + timedelta(milliseconds=12_999)
    assert set(frame["timestamp"][13_000:].to_list()) == {T0}


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({"library": "excel"}, "library must be one of 'pandas', 'polars', 'arrow', got 'excel'"),
        ({"step": "soon"}, "step"),
        ({"since": "yesterday"}, "since"),
        ({"since": "2026-03-02T00:00:00Z", "until": "2026-03-01T00:00:00Z"}, "since must not be later than"),
        ({"metrics": [42]}, "metrics must be names, ids or Metrics (or a list of them), got int"),
        ({"step": "1ms", "since": "2026-01-01T00:00:00Z"}, "use a larger step or a shorter range"),
        ({"label_columns": "yes"}, "label_columns must be True or False, got 'yes'"),
    ],
)
def test_bad_arguments_are_refused_clearly(hub: Hub, arguments: dict[str, Any], message: str) -> None:
    hub.service.log("loss", 1.0, T0)
    with pytest.raises(ValidationError) as raised:
        hub.service.frame(**arguments)
    assert message in raised.value.message


def test_the_async_service_logs_and_frames_alike(hub: Hub) -> None:
    service = hub.app.service

    async def run() -> tuple[Any, Any]:
        readings = await service.log({"loss": 0.5, "acc": 0.75}, timestamp=T0)
        assert [r.value for r in readings] == [0.5, 0.75]
        return (
            await service.frame(library="polars"),
            await service.frame(step="1m", library="arrow", label_columns=True),
        )

    assert hub._loop is not None
    readings, buckets = asyncio.run_coroutine_threadsafe(run(), hub._loop).result(timeout=30)
    assert readings.rows() == hub.service.frame(library="polars").rows()
    assert readings["metric"].to_list() == ["loss", "acc"]
    assert (
        buckets.to_pylist() == hub.service.frame(step="1m", library="arrow", label_columns=True).to_pylist()
    )
