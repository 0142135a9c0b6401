"""The bucket arithmetic of downsampled history (`domain/buckets.py`): the exact mean, merging a bucket read
in pieces, and parsing a step. Every store's `bucket_readings` is checked in
tests/e2e/test_storage_buckets.py.
"""

from __future__ import annotations

import math
import sys
from fractions import Fraction

import pytest

from metricstream.domain.buckets import MAX_STEP, MIN_STEP, BucketBuilder, mean, parse_step
from metricstream.errors import ValidationError

SECOND = 1_000_000  # microseconds
HUGE = 1.7e308  # two of them sum past the largest float


@pytest.mark.parametrize(
    "values",
    [
        [1.0, 2.0, 4.0],
        [HUGE, HUGE],
        [sys.float_info.max] * 3,
        [HUGE, HUGE, -HUGE],
        [HUGE, HUGE, -HUGE, -HUGE, 3.0],  # cancelling out: the scaled sum is exact here too
        [sys.float_info.max, 5e-324],
        [5e-324, 5e-324, 1e-320],
    ],
)
def test_mean_is_the_exact_mean_rounded_even_where_the_sum_overflows(values: list[float]) -> None:
    assert mean(values) == float(sum(map(Fraction, values)) / len(values))


def test_the_builder_merges_runs_of_one_bucket_and_stops_at_the_limit() -> None:
    builder = BucketBuilder(limit=2)
    assert builder.add(0, 2, 2.0, 4.0, 6.0, 4.0, 2.0)
    assert builder.add(0, 1, 6.0, 6.0, 6.0, 6.0, 6.0)  # the same bucket, read in two pieces
    assert builder.add(10 * SECOND, 2, -1.0, 3.0, 2.0, 3.0, -1.0)
    assert builder.full  # two buckets started: readings of a third are not wanted
    assert builder.add(10 * SECOND, 1, 5.0, 5.0, 5.0, 5.0, 5.0)  # the second bucket goes on
    assert not builder.add(20 * SECOND, 1, 1.0, 1.0, 1.0, 1.0, 1.0)
    assert [b.to_dict() for b in builder.finish()] == [
        {"start": "1970-01-01T00:00:00.000000Z", "count": 3, "min": 2.0, "max": 6.0, "avg": 4.0}
        | {"first": 4.0, "last": 6.0},
        {"start": "1970-01-01T00:00:10.000000Z", "count": 3, "min": -1.0, "max": 5.0, "avg": 7 / 3}
        | {"first": 3.0, "last": 5.0},
    ]


@pytest.mark.parametrize(
    ("value", "step"),
    [
        (10, 10 * SECOND),
        (0.5, SECOND // 2),
        (0.001, MIN_STEP),
        ("10", 10 * SECOND),
        ("0.5", SECOND // 2),
        (".25", SECOND // 4),
        ("250ms", 250_000),
        ("1ms", MIN_STEP),
        ("10s", 10 * SECOND),
        ("5m", 300 * SECOND),
        ("1h", 3_600 * SECOND),
        ("1.5h", 5_400 * SECOND),
        ("1d", 86_400 * SECOND),
        ("366d", MAX_STEP),
        ("0.0010004", MIN_STEP),  # rounded to whole microseconds
    ],
)
def test_parse_step_takes_seconds_or_a_duration(value: object, step: int) -> None:
    assert parse_step(value) == step


@pytest.mark.parametrize(
    "value",
    [
        True,
        False,
        None,
        0,
        -1,
        0.0009,
        -0.5,
        math.nan,
        math.inf,
        "",
        "0",
        "0s",
        "-5s",
        "+5s",
        "5 s",
        " 5s",
        "5S",
        "5sec",
        "1e3",
        "nan",
        "inf",
        "5.",
        "0.5ms",
        "367d",
        "٣s",  # a digit, but not an ASCII one
        b"10s",
        [10],
    ],
)
def test_parse_step_refuses_anything_else(value: object) -> None:
    with pytest.raises(ValidationError, match=r"^step must be a number of seconds or a duration such as 10s"):
        parse_step(value)
