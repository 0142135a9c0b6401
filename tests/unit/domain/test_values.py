"""The value objects (`domain/values.py`): `Metric` and `MetricReading` as JSON, frozen, and timestamps
formatted as the API writes them."""

from __future__ import annotations

import dataclasses
import json
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from metricstream.domain.values import Metric, MetricReading, format_timestamp
from metricstream.ids import new_id

METRIC_ID = "01a21b32-2870-78a3-85f4-5b37387bfd17"  # a UUIDv7


@pytest.mark.parametrize(
    ("moment", "text"),
    [
        (datetime(2026, 1, 1, 12, tzinfo=UTC), "2026-01-01T12:00:00.000000Z"),
        (datetime(2026, 1, 1, 12, 0, 0, 5, tzinfo=UTC), "2026-01-01T12:00:00.000005Z"),
        (
            datetime(2026, 1, 1, 1, 2, 3, 456789, tzinfo=timezone(timedelta(hours=2))),
            "2025-12-31T23:02:03.456789Z",
        ),
        (
            datetime(2026, 6, 30, 20, tzinfo=timezone(timedelta(hours=-5, minutes=-30))),
            "2026-07-01T01:30:00.000000Z",
        ),
        (datetime(999, 6, 1, tzinfo=UTC), "0999-06-01T00:00:00.000000Z"),
        (datetime(1, 1, 1, tzinfo=UTC), "0001-01-01T00:00:00.000000Z"),
        (datetime(9999, 12, 31, 23, 59, 59, 999999, tzinfo=UTC), "9999-12-31T23:59:59.999999Z"),
    ],
)
def test_format_timestamp(moment: datetime, text: str) -> None:
    assert format_timestamp(moment) == text


def test_metric_to_dict_and_frozen() -> None:
    metric = Metric(METRIC_ID, "CPU", 1.5)
    assert metric.to_dict() == {
        "id": METRIC_ID,
        "name": "CPU",
        "input_frequency": 1.5,
        "labels": {},
        "unit": None,
        "description": None,
    }
    labelled = Metric(METRIC_ID, "CPU", None, {"host": "a"}, "%", "busy time")
    assert labelled.to_dict() == {
        **metric.to_dict(),
        "input_frequency": None,
        "labels": {"host": "a"},
        "unit": "%",
        "description": "busy time",
    }
    assert Metric(METRIC_ID, "CPU").to_dict()["input_frequency"] is None
    with pytest.raises(dataclasses.FrozenInstanceError):
        metric.name = "GPU"  # type: ignore[misc]


def test_reading_to_dict_formats_timestamp_and_frozen() -> None:
    moment = datetime(2026, 1, 1, 12, 0, 0, 250000, tzinfo=UTC)
    item = MetricReading("01a21b32-2870-78a3-85f4-000000000001", METRIC_ID, 2.5, moment)
    assert item.to_dict() == {
        "id": "01a21b32-2870-78a3-85f4-000000000001",
        "metric_id": METRIC_ID,
        "value": 2.5,
        "timestamp": "2026-01-01T12:00:00.250000Z",
    }
    with pytest.raises(dataclasses.FrozenInstanceError):
        item.value = 3.0  # type: ignore[misc]


def _json_roundtrip(body: dict[str, Any]) -> dict[str, Any]:
    result: dict[str, Any] = json.loads(json.dumps(body))
    return result


def test_to_dict_is_plain_json() -> None:
    metric = Metric(METRIC_ID, "CPU", 0.0)
    item = MetricReading(new_id(), METRIC_ID, 1e-300, datetime(2026, 1, 1, tzinfo=UTC))
    assert _json_roundtrip(metric.to_dict()) == metric.to_dict()
    assert _json_roundtrip(item.to_dict()) == item.to_dict()


@given(st.floats(allow_nan=False, allow_infinity=False), st.datetimes(timezones=st.just(UTC)))
def test_reading_to_json_is_orjson_of_to_dict(value: float, moment: datetime) -> None:
    # An event's body is made without the dict: byte for byte what orjson makes of it.
    reading = MetricReading(new_id(), METRIC_ID, value, moment)
    assert reading.to_json() == orjson.dumps(reading.to_dict())


def test_metric_to_json_is_orjson_of_to_dict() -> None:
    metric = Metric(new_id(), 'a "quoted"\nname', 2.5, {"host": "é"}, "°C", "line\nbreak")
    assert metric.to_json() == orjson.dumps(metric.to_dict())
