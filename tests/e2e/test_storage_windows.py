"""PromQL's windows (`window_values`) on every store, against a reference computed here from the readings:
windows closed at both ends, overlapping or apart, empty ones None, ties in time, the mean of huge values;
and the SQLite file's readings index holding the values (schema version 7), so windows are read from it
alone."""

from __future__ import annotations

import math
import sqlite3
from collections.abc import Sequence
from fractions import Fraction
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from metricstream.domain.promql.windows import Windows
from metricstream.storage.base import Storage
from tests.support.stores import PROPERTY, new_metric, on_store

SECOND = 1_000_000
FUNCTIONS = ("avg", "sum", "min", "max", "count", "last")


def reference(points: Sequence[tuple[int, float]], windows: Windows, function: str) -> list[float | None]:
    out: list[float | None] = []
    for end in windows.ends():
        # In time order, ties in the order written (the ids grow): the last is the newest.
        values = [
            value for ts, value in sorted(points, key=lambda p: p[0]) if end - windows.width <= ts <= end
        ]
        if not values:
            out.append(None)
        elif function == "avg":
            out.append(float(sum(map(Fraction, values)) / len(values)))
        elif function == "sum":
            out.append(math.fsum(values))
        elif function == "count":
            out.append(float(len(values)))
        elif function == "min":
            out.append(min(values))
        elif function == "max":
            out.append(max(values))
        else:
            out.append(values[-1])
    return out


def assert_close(got: Sequence[float | None], want: Sequence[float | None]) -> None:
    assert [value is None for value in got] == [value is None for value in want]
    for a, b in zip(got, want, strict=True):
        if a is not None and b is not None:
            assert math.isclose(a, b, rel_tol=1e-12, abs_tol=1e-9), (got, want)


@pytest.mark.parametrize("function", FUNCTIONS)
def test_windows_are_closed_at_both_ends(store_url: str, function: str) -> None:
    points = [(0, 1.0), (10 * SECOND, 2.0), (20 * SECOND, 4.0), (20 * SECOND, 8.0), (45 * SECOND, 16.0)]
    cases = [
        Windows(10 * SECOND, 10 * SECOND, 5, 10 * SECOND),  # touching: 10 and 20 are in two windows each
        Windows(0, 30 * SECOND, 3, 5 * SECOND),  # apart, one empty
        Windows(-5 * SECOND, 1, 1, 0),  # one instant, empty
        Windows(20 * SECOND, 1, 1, 0),  # one instant holding two readings
    ]

    async def scenario(store: Storage) -> None:
        metric_id, _ = await new_metric(store, points)
        for windows in cases:
            assert_close(
                await store.window_values(metric_id, windows, function), reference(points, windows, function)
            )

    on_store(store_url, scenario)


def test_the_mean_of_values_whose_sum_overflows_is_finite(store_url: str) -> None:
    points = [(0, 1.7e308), (SECOND, 1.7e308), (2 * SECOND, -1e308)]

    async def scenario(store: Storage) -> None:
        metric_id, _ = await new_metric(store, points)
        (mean,) = await store.window_values(metric_id, Windows(2 * SECOND, 1, 1, 2 * SECOND), "avg")
        assert mean == pytest.approx(8e307)  # (1.7e308 + 1.7e308 - 1e308) / 3, summed past the largest float

    on_store(store_url, scenario)


@given(
    points=st.lists(
        st.tuples(st.integers(0, 120), st.floats(-1e6, 1e6, allow_nan=False)), min_size=0, max_size=40
    ),
    start=st.integers(-20, 120),
    step=st.integers(1, 40),
    count=st.integers(1, 12),
    width=st.integers(0, 60),
    function=st.sampled_from(FUNCTIONS),
)
@PROPERTY
def test_windows_match_the_reference(
    store_url: str,
    points: list[tuple[int, float]],
    start: int,
    step: int,
    count: int,
    width: int,
    function: str,
) -> None:
    scaled = [(ts * SECOND, value) for ts, value in points]
    windows = Windows(start * SECOND, step * SECOND, count, width * SECOND)

    async def scenario(store: Storage) -> None:
        metric_id, _ = await new_metric(store, scaled)
        assert_close(
            await store.window_values(metric_id, windows, function), reference(scaled, windows, function)
        )

    on_store(store_url, scenario)


def test_the_sqlite_readings_index_holds_the_values(tmp_path: Path) -> None:
    path = tmp_path / "windows.db"

    async def scenario(store: Storage) -> None:
        metric_id, _ = await new_metric(store, [(0, 1.0), (SECOND, 2.0)])
        assert await store.window_values(metric_id, Windows(SECOND, SECOND, 1, SECOND), "sum") == [3.0]

    on_store(f"sqlite:///{path}", scenario)
    with sqlite3.connect(path) as db:
        columns = [row[2] for row in db.execute("PRAGMA index_info(readings_by_time)")]
        plan = db.execute(
            "EXPLAIN QUERY PLAN SELECT SUM(value) FROM readings WHERE metric_id = ? AND ts >= ? AND ts <= ?",
            ("x", 0, 1),
        ).fetchall()
    assert columns == ["metric_id", "ts", "id", "value"]
    assert "COVERING INDEX readings_by_time" in str(plan)
