"""Tests of metricstream.notebook.dataframe: readings of every kind into one DataFrame, and the missing-pandas
message."""

from __future__ import annotations

import builtins
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pandas as pd
import pytest

import metricstream
from metricstream.client.core import StreamEvent
from metricstream.domain.values import Metric, MetricReading
from metricstream.notebook.dataframe import to_dataframe

CPU = Metric("01a21b32-2870-78a3-85f4-5b37387bfd17", "CPU Temperature", 1.0)
FAN = Metric(
    "01a21b32-2871-7000-8000-000000000001",
    "Fan Speed",
    labels={"rack": "r1", "fan": "2"},
    unit="1/min",
    description="the rack's second fan",
)
T0 = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
READING_COLUMNS = ["id", "metric_id", "value", "timestamp"]
NAMED_COLUMNS = ["id", "metric_id", "metric", "value", "timestamp", "labels", "unit", "description"]


def reading(n: int, metric: Metric = CPU, value: float = 1.0, seconds: float = 0) -> MetricReading:
    return MetricReading(f"reading-{n}", metric.id, value, T0 + timedelta(seconds=seconds))


def assert_dtypes(frame: pd.DataFrame) -> None:
    for column in ("id", "metric_id", "metric", "labels", "unit", "description"):
        if column in frame:
            assert pd.api.types.is_string_dtype(frame[column]), column
    assert frame["value"].dtype == "float64"
    assert isinstance(frame["timestamp"].dtype, pd.DatetimeTZDtype)
    assert str(frame["timestamp"].dt.tz) == "UTC"


def test_metric_readings() -> None:
    frame = to_dataframe([reading(1, value=2.5), reading(2, FAN, value=3, seconds=1)])
    assert list(frame.columns) == READING_COLUMNS
    assert frame.to_dict("records") == [
        {"id": "reading-1", "metric_id": CPU.id, "value": 2.5, "timestamp": pd.Timestamp(T0)},
        {
            "id": "reading-2",
            "metric_id": FAN.id,
            "value": 3.0,
            "timestamp": pd.Timestamp(T0) + pd.Timedelta(1, "s"),
        },
    ]
    assert_dtypes(frame)


def test_reading_dicts_as_the_http_api_returns_them() -> None:
    bodies = [reading(1, value=2.5).to_dict(), {**reading(2, value=7).to_dict(), "extra": "ignored"}]
    assert bodies[0]["timestamp"] == "2026-01-01T12:00:00.000000Z"
    frame = to_dataframe(bodies)
    assert frame["id"].tolist() == ["reading-1", "reading-2"]
    assert frame["value"].tolist() == [2.5, 7.0]
    assert frame["timestamp"].tolist() == [pd.Timestamp(T0), pd.Timestamp(T0)]
    assert_dtypes(frame)


def body(id: str, timestamp: object) -> dict[str, Any]:
    return {"id": id, "metric_id": CPU.id, "value": 1, "timestamp": timestamp}


def test_dict_timestamps_with_offsets_fractions_and_datetimes_become_utc() -> None:
    bodies = [
        body("a", "2026-01-01T14:00:00.5+02:00"),
        body("b", "2026-01-01t12:00:01.1234567z"),  # RFC 3339 allows lowercase; digits past 6 dropped
        body("c", T0.astimezone(timezone(timedelta(hours=-5)))),
        body("d", "2026-01-01 12:00:02Z"),
    ]
    frame = to_dataframe(bodies)
    assert frame["id"].tolist() == ["c", "a", "b", "d"]
    assert [moment.isoformat() for moment in frame["timestamp"]] == [
        "2026-01-01T12:00:00+00:00",
        "2026-01-01T12:00:00.500000+00:00",
        "2026-01-01T12:00:01.123456+00:00",
        "2026-01-01T12:00:02+00:00",
    ]


@pytest.mark.parametrize(
    "timestamp",
    ["2026-01-01T12:00:00", datetime(2026, 1, 1), "yesterday", "", 1767268800, None],
    ids=["naive text", "naive datetime", "words", "empty", "number", "null"],
)
def test_a_timestamp_without_an_offset_or_not_a_time_is_a_value_error(timestamp: object) -> None:
    with pytest.raises(ValueError, match="timestamp must be RFC 3339 with an offset"):
        to_dataframe([body("a", timestamp)])


def test_a_timestamp_python_cannot_hold_in_utc_is_a_value_error() -> None:
    with pytest.raises(ValueError, match="out of range"):
        to_dataframe([body("a", "0001-01-01T00:00:00+01:00")])


def test_stream_events_other_than_readings_are_skipped() -> None:
    events = [
        StreamEvent("e1", "metric_created", CPU.to_dict()),
        StreamEvent("e2", "metric_reading_created", reading(1, value=4).to_dict()),
        StreamEvent("e3", "reset", {"reason": "unknown_last_event_id", "last_event_id": "x"}),
        StreamEvent("e4", "metric_reading_created", reading(2, value=5, seconds=1).to_dict()),
    ]
    frame = to_dataframe(events)
    assert frame["id"].tolist() == ["reading-1", "reading-2"]
    assert frame["value"].tolist() == [4.0, 5.0]


def test_input_kinds_mix() -> None:
    items: list[Any] = [
        reading(1, seconds=2),
        reading(2, seconds=0).to_dict(),
        StreamEvent("e", "metric_reading_created", reading(3, seconds=1).to_dict()),
    ]
    assert to_dataframe(items)["id"].tolist() == ["reading-2", "reading-3", "reading-1"]


def test_sorted_by_timestamp_with_a_fresh_index_and_ties_in_input_order() -> None:
    items = [reading(1, seconds=5), reading(2, seconds=-1), reading(3, seconds=5), reading(4, seconds=0)]
    frame = to_dataframe(iter(items))  # any iterable, read once
    assert frame["id"].tolist() == ["reading-2", "reading-4", "reading-1", "reading-3"]
    assert frame.index.tolist() == [0, 1, 2, 3]


def test_metric_names_from_metric_objects_or_dicts() -> None:
    items = [reading(1, CPU), reading(2, FAN, seconds=1)]
    mixed: list[Metric | dict[str, Any]] = [CPU, FAN.to_dict()]
    kinds: list[Iterable[Metric | dict[str, Any]]] = [[CPU, FAN], [CPU.to_dict(), FAN.to_dict()], iter(mixed)]
    for metrics in kinds:  # objects, JSON bodies, or a one-shot iterator of both
        frame = to_dataframe(items, metrics=metrics)
        assert list(frame.columns) == NAMED_COLUMNS
        assert frame["metric"].tolist() == ["CPU Temperature", "Fan Speed"]
        # labels as the labels= query writes them, sorted by name; "" for none
        assert frame["labels"].tolist() == ["", "fan=2,rack=r1"]
        assert frame["unit"].iloc[1] == "1/min"
        assert pd.isna(frame["unit"].iloc[0])
        assert frame["description"].iloc[1] == "the rack's second fan"
        assert pd.isna(frame["description"].iloc[0])
        assert_dtypes(frame)


def test_a_reading_of_an_unlisted_metric_has_a_missing_name() -> None:
    frame = to_dataframe([reading(1, CPU), reading(2, FAN, seconds=1)], metrics=[CPU])
    assert frame["metric"].iloc[0] == "CPU Temperature"
    assert pd.isna(frame["metric"].iloc[1])  # missing, not the text "nan" or "None"
    assert pd.isna(frame["labels"].iloc[1])


def test_empty_input_has_the_columns_and_dtypes() -> None:
    frame = to_dataframe([])
    assert list(frame.columns) == READING_COLUMNS
    assert len(frame) == 0
    assert_dtypes(frame)
    named = to_dataframe([StreamEvent("e", "metric_created", CPU.to_dict())], metrics=[CPU])
    assert list(named.columns) == NAMED_COLUMNS
    assert len(named) == 0
    assert_dtypes(named)


def test_timestamps_keep_microseconds_and_years_outside_nanosecond_range() -> None:
    early = datetime(1, 1, 1, tzinfo=UTC)  # the API accepts it; datetime64[ns] cannot hold it
    frame = to_dataframe([MetricReading("a", CPU.id, 1, early), reading(2, seconds=0.000001)])
    assert frame["timestamp"].tolist() == [pd.Timestamp(early), pd.Timestamp(T0) + pd.Timedelta(1, "us")]


def test_frame_resamples_per_metric() -> None:
    items = [reading(n, CPU if n % 2 else FAN, value=n, seconds=20 * n) for n in range(1, 7)]
    frame = to_dataframe(items, metrics=[CPU, FAN])
    means = frame.set_index("timestamp").groupby("metric")["value"].resample("1min").mean()
    assert means.to_dict() == {
        ("CPU Temperature", pd.Timestamp("2026-01-01T12:00Z")): 1.0,  # reading 1 at 12:00:20
        ("CPU Temperature", pd.Timestamp("2026-01-01T12:01Z")): 4.0,  # readings 3 and 5 at 12:01:00, 12:01:40
        ("Fan Speed", pd.Timestamp("2026-01-01T12:00Z")): 2.0,
        ("Fan Speed", pd.Timestamp("2026-01-01T12:01Z")): 4.0,
        ("Fan Speed", pd.Timestamp("2026-01-01T12:02Z")): 6.0,
    }


def test_a_dict_without_a_reading_field_is_a_value_error() -> None:
    with pytest.raises(ValueError, match="a reading needs value, timestamp"):
        to_dataframe([{"id": "a", "metric_id": CPU.id}])


def test_other_objects_are_a_type_error() -> None:
    with pytest.raises(TypeError, match="got int"):
        to_dataframe([42])  # type: ignore[list-item]
    with pytest.raises(TypeError, match="expected a Metric or a metric dict, got str"):
        to_dataframe([], metrics=["CPU"])  # type: ignore[list-item]


def test_missing_pandas_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    real_import = builtins.__import__

    def no_pandas(name: str, *args: Any, **kwargs: Any) -> Any:
        if name == "pandas" or name.startswith("pandas."):
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_pandas)
    with pytest.raises(ImportError) as caught:
        to_dataframe([])
    assert str(caught.value) == "to_dataframe needs pandas: pip install 'metricstream[notebook]'"
    assert isinstance(caught.value.__cause__, ModuleNotFoundError)


def test_to_dataframe_is_a_public_name() -> None:
    assert "to_dataframe" in metricstream.__all__
    assert metricstream.to_dataframe is to_dataframe


# --- buckets (list_readings with step) ---------------------------------------------------------


def test_buckets_and_readings_do_not_mix() -> None:
    from metricstream.domain.buckets import Bucket

    bucket = Bucket(T0, 1, 1.0, 1.0, 1.0, 1.0, 1.0)
    with pytest.raises(TypeError, match="expected only buckets"):
        to_dataframe([bucket, reading(1)])
    with pytest.raises(ValueError, match="a bucket needs min"):
        to_dataframe([{"start": T0.isoformat(), "count": 1}])
    with pytest.raises(ValueError, match="buckets carry no metric_id"):
        to_dataframe([bucket], metrics=[CPU])
