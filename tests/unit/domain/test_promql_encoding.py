"""The Prometheus API's parameters and values (`domain/promql/encoding.py`): times and durations as
Prometheus 2.42 parses them, values as Go's strconv.FormatFloat writes them."""

from __future__ import annotations

import math

import pytest

from metricstream.domain.promql.encoding import (
    format_sample_value,
    format_scalar_value,
    format_seconds,
    millis_of,
    parse_duration,
    parse_time,
)
from metricstream.errors import ValidationError


@pytest.mark.parametrize(
    ("value", "sample", "scalar"),
    [
        (0.1, "0.1", "0.1"),
        (1.0, "1", "1"),
        (100.0, "100", "100"),
        (-2.5, "-2.5", "-2.5"),
        (1e20, "100000000000000000000", "100000000000000000000"),
        (1e21, "1e+21", "1000000000000000000000"),  # samples switch to the exponent form at 1e21
        (1.5e-7, "1.5e-07", "0.00000015"),  # and below 1e-6
        (1e-6, "0.000001", "0.000001"),
        (123456789.123, "123456789.123", "123456789.123"),
        (1 / 3, "0.3333333333333333", "0.3333333333333333"),
        (-0.0, "-0", "-0"),
        (math.nan, "NaN", "NaN"),
        (math.inf, "+Inf", "+Inf"),
        (-math.inf, "-Inf", "-Inf"),
    ],
)
def test_values_are_written_as_go_writes_them(value: float, sample: str, scalar: str) -> None:
    assert format_sample_value(value) == sample
    assert format_scalar_value(value) == scalar


@pytest.mark.parametrize(
    ("text", "nanos"),
    [
        ("1435781451.781", 1_435_781_451_781_000_000),
        ("1435781451", 1_435_781_451_000_000_000),
        ("0.0005", 1_000_000),  # rounded to the millisecond, half away from zero
        ("-1.0015", -1_002_000_000),
        ("2015-07-01T20:10:51.781Z", 1_435_781_451_781_000_000),
        ("2015-07-01T22:10:51.781123456+02:00", 1_435_781_451_781_123_456),
        ("1970-01-01T00:00:00Z", 0),
    ],
)
def test_times_are_unix_seconds_or_rfc_3339(text: str, nanos: int) -> None:
    assert parse_time(text, "time") == nanos


@pytest.mark.parametrize(
    "text",
    ["", "now", "1e400", "NaN", "2015-07-01 20:10:51Z", "2015-07-01T20:10:51", "2015-13-01T00:00:00Z", " 1"],
)
def test_bad_times_are_refused_as_prometheus_words_it(text: str) -> None:
    with pytest.raises(ValidationError, match="invalid parameter 'time'"):
        parse_time(text, "time")


def test_times_are_evaluated_at_whole_milliseconds_truncated() -> None:
    assert millis_of(1_435_781_451_781_999_999) == 1_435_781_451_781
    assert millis_of(-1_999_999) == -1  # toward zero, as Go divides


@pytest.mark.parametrize(
    ("text", "nanos"),
    [
        ("15", 15_000_000_000),
        ("0.5", 500_000_000),
        ("15s", 15_000_000_000),
        ("1m30s", 90_000_000_000),
        ("1h", 3_600_000_000_000),
        ("100ms", 100_000_000),
        ("1d", 86_400_000_000_000),
        ("0", 0),
        ("-1", -1_000_000_000),
    ],
)
def test_durations_are_seconds_or_prometheus_durations(text: str, nanos: int) -> None:
    assert parse_duration(text, "step") == nanos


@pytest.mark.parametrize("text", ["", "1.5s", "-1s", "1 s", "fast", "1e30"])
def test_bad_durations_are_refused(text: str) -> None:
    with pytest.raises(ValidationError, match="invalid parameter 'step'"):
        parse_duration(text, "step")


def test_timestamps_are_seconds_as_json_numbers() -> None:
    assert format_seconds(1_435_781_451_000_000) == 1_435_781_451
    assert format_seconds(1_435_781_451_781_000) == 1435781451.781
    assert format_seconds(1_500) == 0.0015
