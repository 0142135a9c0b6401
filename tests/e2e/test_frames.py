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

T0 = datetime(2026, 3, 1, 12, tzinfo=UTC)
READING_COLUMNS = ["metric", "metric_id", "timestamp", "value"]
BUCKET_COLUMNS = ["metric", "metric_id", "start", "count", "min", "max", "avg", "first", "last"]


def _fill(service: MetricService) -> list[Metric]:
    """Three metrics, two named alike (told apart by their labels), with readings out of order and ties in
    time."""
    metrics = [
        service.create_metric("loss", labels={"run": "a"}),
        service.create_metric("acc"),
        service.create_metric("loss", labels={"run": "b"}),
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


def _expected(service: MetricService, metrics: list[Metric], **query: Any) -> list[tuple[Any, ...]]:
    return [
        (metric.name, metric.id, reading.timestamp, reading.value)
        for metric in metrics
        for reading in service.iter_readings(metric.id, **query)
    ]


def _rows(table: Any) -> list[tuple[Any, ...]]:
    """A table's rows as tuples of Python values, whatever its library."""
    if isinstance(table, pd.DataFrame):
        records = table.to_dict("records")
        return [
            tuple(v.to_pydatetime() if isinstance(v, pd.Timestamp) else v for v in r.values())
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
    assert [str(t) for t in frame.dtypes] == ["str", "str", "datetime64[us, UTC]", "float64"]
    assert _rows(frame) == _expected(hub.service, metrics)
    assert len(frame) == 180


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
    time_column = columns[2]
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
            (metric.name, metric.id, b.start, b.count, b.min, b.max, b.avg, b.first, b.last) for b in buckets
        ]
    assert frame.rows() == expected
    since, until = T0 + timedelta(seconds=10), T0 + timedelta(seconds=30)
    within = hub.service.frame(since=since, until=until, step=5, library="arrow")
    assert [tuple(r.values())[2:] for r in within.to_pylist()] == [
        (b.start, b.count, b.min, b.max, b.avg, b.first, b.last)
        for metric in metrics
        for b in hub.service.list_readings(metric.id, since, until, step=5)
    ]


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
        return await service.frame(library="polars"), await service.frame(step="1m", library="arrow")

    assert hub._loop is not None
    readings, buckets = asyncio.run_coroutine_threadsafe(run(), hub._loop).result(timeout=30)
    assert readings.rows() == hub.service.frame(library="polars").rows()
    assert readings["metric"].to_list() == ["loss", "acc"]
    assert buckets.to_pylist() == hub.service.frame(step="1m", library="arrow").to_pylist()
