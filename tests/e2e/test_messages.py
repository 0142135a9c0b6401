"""Refusals that say what to send instead, alike over HTTP and in Python: a value the positive_only setting
refuses names the setting, a timestamp in a common wrong shape gets the right one, and anything but a list
of readings is refused as such."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import httpx
import pytest

from metricstream.errors import ValidationError
from metricstream.server.hub import Hub

POSITIVE = "value must be a finite number greater than 0 (set positive_only=false to accept any finite value)"
SHAPE = "timestamp must be an RFC 3339 date-time with an offset"


@pytest.mark.parametrize("value", [0, -1.5])
def test_a_refused_value_names_the_setting(hub: Hub, http: httpx.Client, value: float) -> None:
    metric = hub.service.create_metric("m")
    answer = http.post("/metrics/readings", json={"metric_id": metric.id, "value": value})
    assert (answer.status_code, answer.json()) == (400, {"error": POSITIVE})
    with pytest.raises(ValidationError) as refused:
        hub.service.create_reading(metric.id, value)
    assert refused.value.message == POSITIVE


@pytest.mark.parametrize(
    ("timestamp", "hint"),
    [
        (
            "2026-01-01T12:30:00",
            "2026-01-01T12:30:00 has no UTC offset: add Z (UTC) or +hh:mm, e.g. 2026-01-01T12:30:00Z",
        ),
        (
            "2026-01-01 12:30",
            "2026-01-01 12:30 has no UTC offset: add Z (UTC) or +hh:mm, e.g. 2026-01-01 12:30Z",
        ),
        ("2026-01-01", "2026-01-01 is a date without a time, e.g. 2026-01-01T00:00:00Z"),
        (1700000000, "1700000000 looks like Unix epoch seconds; send it as 2023-11-14T22:13:20.000000Z"),
        (
            "1700000000.5",
            "1700000000.5 looks like Unix epoch seconds; send it as 2023-11-14T22:13:20.500000Z",
        ),
        (
            1700000000123,
            "1700000000123 looks like Unix epoch milliseconds; send it as 2023-11-14T22:13:20.123000Z",
        ),
    ],
)
def test_a_timestamp_in_a_common_wrong_shape_is_told_the_right_one(
    hub: Hub, http: httpx.Client, timestamp: Any, hint: str
) -> None:
    metric = hub.service.create_metric("m")
    expected = f"{SHAPE}: {hint}"
    answer = http.post("/metrics/readings", json={"metric_id": metric.id, "value": 1, "timestamp": timestamp})
    assert (answer.status_code, answer.json()) == (400, {"error": expected})
    with pytest.raises(ValidationError) as refused:
        hub.service.create_reading(metric.id, 1, timestamp)
    assert refused.value.message == expected
    assert hub.service.list_readings(metric.id) == []


def test_a_naive_datetime_is_told_to_carry_a_time_zone(hub: Hub) -> None:
    metric = hub.service.create_metric("m")
    with pytest.raises(
        ValidationError, match=r"this datetime has no time zone; give it one, e\.g\. datetime\.now\(UTC\)"
    ):
        hub.service.create_reading(metric.id, 1, datetime(2026, 1, 1, 12))  # the mistake itself


def test_other_bad_timestamps_keep_the_general_message(hub: Hub, http: httpx.Client) -> None:
    metric = hub.service.create_metric("m")
    answer = http.post("/metrics/readings", json={"metric_id": metric.id, "value": 1, "timestamp": "soon"})
    assert answer.json() == {"error": f"{SHAPE}, e.g. 2026-01-01T12:00:00Z"}


@pytest.mark.parametrize("items", [5, None, "cpu", {"metric": "cpu", "value": 1}, b"[]"])
def test_create_readings_refuses_anything_but_a_list_of_readings(hub: Hub, items: Any) -> None:
    with pytest.raises(ValidationError) as refused:
        hub.service.create_readings(items)
    assert refused.value.message == (
        f"readings must be a list of readings (dicts like the HTTP body), got {type(items).__name__}"
    )
    assert hub.service.list_metrics() == []


def test_create_readings_takes_any_iterable_of_readings(hub: Hub) -> None:
    readings = hub.service.create_readings(
        iter([{"metric": "cpu", "value": 1}, {"metric": "cpu", "value": 2}])
    )
    assert [reading.value for reading in readings] == [1, 2]
