"""The PromQL evaluator over a memory store, on cases whose answers are known: Prometheus's own test data
(promql/testdata/*.test of v2.42, its `load` notation read by `_expand`) and cases computed by hand."""

from __future__ import annotations

import asyncio
import math
import re
from collections.abc import Awaitable, Callable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

import pytest

from metricstream.clock import ManualClock
from metricstream.domain.promql.windows import Windows
from metricstream.domain.values import Metric, MetricReading
from metricstream.errors import EvaluationError, QueryTimeoutError, ValidationError
from metricstream.ids import new_id, new_ids
from metricstream.service import promql_eval
from metricstream.service.promql import PromQL
from metricstream.storage.memory import MemoryStorage
from metricstream.stream.log import Event
from metricstream.wire import METRIC_CREATED

T = TypeVar("T")
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
# name, labels, interval in seconds, values in Prometheus's load notation
Load = Sequence[tuple[str, dict[str, str], float, str]]


def _expand(notation: str) -> list[float]:
    """`0+10x3 5 7-1x2` as Prometheus's test language reads it: 0 10 20 30 5 7 6 5."""
    values: list[float] = []
    for part in notation.split():
        match = re.fullmatch(r"(-?[\d.]+)([+-][\d.]+)x(\d+)", part)
        if match is None:
            values.append(float(part))
            continue
        start, increment, times = float(match[1]), float(match[2]), int(match[3])
        values.extend(start + increment * i for i in range(times + 1))
    return values


async def _store(load: Load) -> MemoryStorage:
    store = MemoryStorage()
    for name, labels, interval, notation in load:
        metric = Metric(new_id(), name, labels=labels)
        await store.add_metric(metric, Event.create(METRIC_CREATED, metric, 0.0))
        values = _expand(notation)
        ids = new_ids(len(values))
        readings = [
            MetricReading(ids[i], metric.id, value, EPOCH + timedelta(seconds=interval * i))
            for i, value in enumerate(values)
        ]
        await store.add_readings(readings, [])
    return store


def _run(load: Load, work: Callable[[PromQL], Awaitable[T]]) -> T:
    async def run() -> T:
        return await work(PromQL(await _store(load), ManualClock(wall=0.0)))

    return asyncio.run(run())


def instant(load: Load, query: str, at: float) -> dict[tuple[tuple[str, str], ...], float]:
    data = _run(load, lambda promql: promql.query(query, str(at), None))
    assert data["resultType"] == "vector"
    return {tuple(sorted(item["metric"].items())): float(item["value"][1]) for item in data["result"]}


def _approx(found: Mapping[Any, float], expected: Mapping[Any, float]) -> None:
    assert set(found) == set(expected)
    for key, value in expected.items():
        assert math.isclose(found[key], value, rel_tol=1e-12), (key, found[key], value)


REQUESTS: Load = [
    ("http_requests", {"path": "/foo"}, 300, "0+10x10"),
    ("http_requests", {"path": "/bar"}, 300, "0+10x5 0+10x5"),
]


def test_increase_counts_a_reset_as_a_restart_from_zero() -> None:
    _approx(
        instant(REQUESTS, "increase(http_requests[50m])", 3000),
        {(("path", "/foo"),): 100, (("path", "/bar"),): 90},
    )
    _approx(
        instant(REQUESTS, "increase(http_requests[100m])", 3000),
        {(("path", "/foo"),): 100, (("path", "/bar"),): 90},
    )
    load: Load = [("http_requests", {"path": "/foo"}, 300, "0 1 2 3 2 3 4")]
    _approx(instant(load, "increase(http_requests[30m])", 1800), {(("path", "/foo"),): 7})


def test_rate_extrapolates_and_handles_resets_as_prometheus_does() -> None:
    load: Load = [
        ("testcounter_reset_middle", {}, 300, "0+10x4 0+10x5"),
        ("testcounter_reset_end", {}, 300, "0+10x9 0 10"),
        ("calculate_rate_window", {}, 300, "0+80x10"),
        ("calculate_rate_offset", {"x": "a"}, 300, "0+10x10"),
        ("calculate_rate_offset", {"x": "b"}, 300, "0+20x10"),
    ]
    _approx(instant(load, "rate(testcounter_reset_middle[50m])", 3000), {(): 0.03})
    _approx(instant(load, "rate(testcounter_reset_end[5m])", 3000), {(): 0})
    _approx(instant(load, "rate(calculate_rate_window[50m])", 3000), {(): 0.26666666666666666})
    found = instant(load, "rate(calculate_rate_offset[10m] offset 5m)", 3000)
    _approx(found, {(("x", "a"),): 0.03333333333333333, (("x", "b"),): 0.06666666666666667})


def test_rate_extrapolates_no_further_back_than_zero() -> None:
    load: Load = [
        ("testcounter_zero_cutoff", {"start": f"{minute}m"}, 240, f"{minute * 60}+240x10")
        for minute in range(6)
    ]
    expected = {"0m": 0.5, "1m": 0.55, "2m": 0.6, "3m": 0.65, "4m": 0.7, "5m": 0.6}
    found = instant(load, "rate(testcounter_zero_cutoff[20m])", 600)
    _approx(found, {(("start", start),): value for start, value in expected.items()})
    found = instant(load, "rate(testcounter_zero_cutoff[20m])", 3000)
    _approx(found, {(("start", start),): 0.6 for start in expected})


def test_irate_and_delta() -> None:
    _approx(
        instant(REQUESTS, "irate(http_requests[50m])", 3000),
        {(("path", "/foo"),): 1 / 30, (("path", "/bar"),): 1 / 30},
    )
    _approx(
        instant(REQUESTS, "irate(http_requests[50m])", 1800),
        {(("path", "/foo"),): 1 / 30, (("path", "/bar"),): 0},
    )
    load: Load = [
        ("http_requests", {"path": "/foo"}, 300, "0 50 100 150 200"),
        ("http_requests", {"path": "/bar"}, 300, "200 150 100 50 0"),
    ]
    _approx(
        instant(load, "delta(http_requests[20m])", 1200),
        {(("path", "/foo"),): 200, (("path", "/bar"),): -200},
    )


SERVERS: Load = [
    (
        "http_requests",
        {"job": "api-server", "instance": "0", "group": "production"},
        10,
        "0+10x1000 100+30x1000",
    ),
    (
        "http_requests",
        {"job": "api-server", "instance": "1", "group": "production"},
        10,
        "0+20x1000 200+30x1000",
    ),
    ("http_requests", {"job": "api-server", "instance": "0", "group": "canary"}, 10, "0+30x1000 300+80x1000"),
    ("http_requests", {"job": "api-server", "instance": "1", "group": "canary"}, 10, "0+40x2000"),
]


def _by_group_instance(found: dict[tuple[tuple[str, str], ...], float]) -> dict[tuple[str, str], float]:
    return {(dict(labels)["group"], dict(labels)["instance"]): value for labels, value in found.items()}


def test_offsets_move_the_window_back_and_forward() -> None:
    expected = {("production", "0"): 1, ("production", "1"): 2, ("canary", "0"): 3, ("canary", "1"): 4}
    found = instant(SERVERS, 'rate(http_requests{instance!="3"}[1m] offset 10000s)', 18000)
    _approx(_by_group_instance(found), expected)
    found = instant(SERVERS, 'rate(http_requests{instance!="3"}[1m] offset -4000s)', 4000)
    _approx(_by_group_instance(found), expected)
    found = instant(SERVERS, "rate(http_requests[40s]) - rate(http_requests[1m] offset 10000s)", 18000)
    differences = {("production", "0"): 2, ("production", "1"): 1, ("canary", "0"): 5, ("canary", "1"): 0}
    _approx(_by_group_instance(found), differences)


def test_aggregations_group_by_and_without() -> None:
    found = instant(SERVERS, "sum by (group) (http_requests)", 100)
    _approx(found, {(("group", "production"),): 100 + 200, (("group", "canary"),): 300 + 400})
    found = instant(SERVERS, "avg without (instance) (http_requests)", 100)
    expected = {
        (("group", "production"), ("job", "api-server")): 150,
        (("group", "canary"), ("job", "api-server")): 350,
    }
    _approx(found, expected)
    _approx(instant(SERVERS, "count(http_requests)", 100), {(): 4})
    _approx(instant(SERVERS, "max(http_requests) - min(http_requests)", 100), {(): 300})


def test_the_newest_reading_within_five_minutes_is_an_instant_vector() -> None:
    load: Load = [("x", {}, 60, "1 2 3")]  # at 0, 60 and 120 s
    assert instant(load, "x", 119.999) == {(("__name__", "x"),): 2}
    assert instant(load, "x", 120 + 300) == {(("__name__", "x"),): 3}  # the lookback is closed at both ends
    assert instant(load, "x", 120 + 300.001) == {}
    assert instant(load, "x offset 1m", 120) == {(("__name__", "x"),): 2}


def test_a_range_query_evaluates_at_start_plus_steps_up_to_end() -> None:
    load: Load = [("x", {"a": "b"}, 10, "0+1x100")]
    data = _run(load, lambda promql: promql.query_range("x * 2", "15", "75", "20s", None))
    assert data["resultType"] == "matrix"
    (series,) = data["result"]
    assert series["metric"] == {"a": "b"}  # arithmetic drops the name
    assert series["values"] == [[15, "2"], [35, "6"], [55, "10"], [75, "14"]]


def test_over_time_functions_read_windows_closed_at_both_ends() -> None:
    load: Load = [("x", {}, 15, "1 2 3 4 5 6 7 8 9")]
    data = _run(load, lambda promql: promql.query_range("sum_over_time(x[30s])", "30", "90", "30", None))
    # [0, 30] holds 1 2 3; [30, 60] 3 4 5; [60, 90] 5 6 7: the ends are read by two windows.
    assert data["result"][0]["values"] == [[30, "6"], [60, "12"], [90, "18"]]
    data = _run(load, lambda promql: promql.query_range("count_over_time(x[45s])", "45", "120", "15", None))
    assert data["result"][0]["values"] == [[45, "4"], [60, "4"], [75, "4"], [90, "4"], [105, "4"], [120, "4"]]


def test_a_scalar_range_query_is_one_series_without_labels() -> None:
    data = _run([], lambda promql: promql.query_range("1 + 1", "0", "2", "1", None))
    assert data["result"] == [{"metric": {}, "values": [[0, "2"], [1, "2"], [2, "2"]]}]
    data = _run([], lambda promql: promql.query("2 ^ 0.5", "1.5", None))
    assert data == {"resultType": "scalar", "result": [1.5, "1.4142135623730951"]}


def test_two_series_left_with_one_label_set_are_refused_as_prometheus_refuses_them() -> None:
    load: Load = [("a", {"x": "1"}, 60, "1 2"), ("b", {"x": "1"}, 60, "3 4")]
    with pytest.raises(EvaluationError, match="same labelset"):
        instant(load, 'rate({__name__=~"a|b"}[5m])', 60)
    with pytest.raises(EvaluationError, match="same labelset"):
        instant(load, '{__name__=~"a|b"} * 2', 60)
    assert instant(load, '{__name__=~"a|b"} > 0', 60)  # comparisons keep the name


@pytest.mark.parametrize(
    ("start", "end", "step", "message"),
    [
        ("0", "110010", "10", "exceeded maximum resolution of 11,000 points per timeseries"),
        ("0", "100", "0", "zero or negative query resolution step widths are not accepted"),
        ("0", "100", "-1s", "cannot parse '-1s' to a valid duration"),
        ("0", "1", "0.0001", "at least 1ms"),
        ("100", "0", "10", "end timestamp must not be before start time"),
        ("yesterday", "0", "10", "cannot parse 'yesterday' to a valid timestamp"),
        ("0", "1e20", "10", "outside the years 1 to 9999"),
    ],
)
def test_bad_ranges_are_refused_before_any_evaluation(start: str, end: str, step: str, message: str) -> None:
    data = _run([], lambda promql: promql.query_range("1", "0", "110000", "10", None))
    assert len(data["result"][0]["values"]) == 11_001  # 11,000 steps after the start: still taken
    with pytest.raises(ValidationError, match=re.escape(message)):
        _run([], lambda promql: promql.query_range("1", start, end, step, None))


def test_a_node_may_hold_so_many_points_only(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(promql_eval, "MAX_POINTS", 12)
    load: Load = [("x", {"a": str(i)}, 60, "1 2 3") for i in range(3)]
    assert _run(load, lambda promql: promql.query_range("x", "0", "180", "60", None))["result"]  # 12 points
    with pytest.raises(EvaluationError, match="too many samples"):
        _run(load, lambda promql: promql.query_range("x", "0", "240", "60", None))  # 15


def test_a_query_out_of_time_is_refused_and_stops() -> None:
    class Slow(MemoryStorage):
        """A store whose every window read waits until the test lets it go."""

        def __init__(self) -> None:
            super().__init__()
            self.reading = asyncio.Event()
            self.release = asyncio.Event()

        async def window_values(self, metric_id: str, windows: Windows, function: str) -> list[float | None]:
            self.reading.set()
            await self.release.wait()
            return await super().window_values(metric_id, windows, function)

    async def run() -> None:
        store, clock = Slow(), ManualClock(wall=0.0)
        metric = Metric(new_id(), "x")
        await store.add_metric(metric, Event.create(METRIC_CREATED, metric, 0.0))
        query = asyncio.create_task(PromQL(store, clock).query("x", "0", "10s"))
        await store.reading.wait()
        clock.advance(10)
        with pytest.raises(QueryTimeoutError, match="timed out"):
            await query

    asyncio.run(run())


def test_a_series_too_long_for_a_range_function_is_refused_as_such(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(promql_eval, "MAX_BUFFERED", 10)
    monkeypatch.setattr(promql_eval, "PAGE", 4)
    load: Load = [("x", {"a": str(i)}, 1, "0+1x20") for i in range(3)]
    assert _run(load, lambda promql: promql.query_range("rate(x[5s])", "5", "20", "5", None))["result"]
    with pytest.raises(EvaluationError, match="too many samples"):
        _run(load, lambda promql: promql.query("rate(x[15s])", "20", None))
