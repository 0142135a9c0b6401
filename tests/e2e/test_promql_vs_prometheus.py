"""PromQL against a real Prometheus (Debian's 2.42): the same readings written into metricstream (through
the Python API, with their timestamps) and into Prometheus (TSDB blocks made by `promtool` from OpenMetrics
text), then the same `query` and `query_range` requests sent to both over HTTP. The answers must hold the
same series with the same timestamps and values to 1e-9 relative (NaN equal to NaN); where Prometheus
refuses (two series left with one label set), metricstream must refuse with the same error type.

The data is seeded: gauges of random values (negative ones too) and counters with resets, under random
labels (one series lacks a label the others have), at irregular times to the millisecond, with gaps longer
than the 5-minute lookback. Every store is checked; Prometheus and its data are made once for the module.
"""

from __future__ import annotations

import itertools
import math
import random
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from metricstream.server.hub import Hub
from tests.support.prometheus import Prometheus, create_blocks, running_prometheus

pytestmark = pytest.mark.slow  # a Prometheus, and hundreds of queries to two servers

# Each series: its name, its labels and its readings as (milliseconds since the epoch, value).
Data = list[tuple[str, dict[str, str], list[tuple[int, float]]]]
T0 = 1_700_000_000  # 2023-11-14: old enough that Prometheus takes it from blocks, not live
DURATION = 3600
SERIES: list[tuple[str, dict[str, str]]] = [
    ("gauge_a", {"host": "h1", "job": "api"}),
    ("gauge_a", {"host": "h2", "job": "api", "zone": "z1"}),
    ("gauge_a", {"host": "h3", "job": "web"}),
    ("gauge_b", {"host": "h1", "job": "api"}),
    ("gauge_b", {"host": "h2", "job": "api", "zone": "z1"}),
    ("gauge_b", {"host": "h3", "job": "web"}),
    ("requests_total", {"host": "h1", "job": "api"}),
    ("requests_total", {"host": "h2", "job": "web"}),
    ("requests_total", {"host": "h3", "job": "web", "zone": "z2"}),
]
EXPRESSIONS = [
    # selectors and matchers
    "gauge_a",
    'gauge_a{host="h1"}',
    'gauge_a{host!="h1"}',
    'gauge_a{host=~"h[12]"}',
    'gauge_a{host!~"h1|h3"}',
    'gauge_a{zone=""}',
    '{__name__=~"gauge_.*", job="api"}',
    '{__name__!~"gauge_.*", __name__=~".+"}',
    "gauge_a offset 2m",
    "gauge_b offset -1m",
    "(gauge_a)",
    # range functions
    "rate(requests_total[1m])",
    "rate(requests_total[5m] offset 1m)",
    "irate(requests_total[2m])",
    "increase(requests_total[3m])",
    "increase(requests_total[10m])",
    "delta(gauge_a[2m])",
    "avg_over_time(gauge_a[1m])",
    "min_over_time(gauge_a[90s])",
    "max_over_time(gauge_b[2m])",
    "sum_over_time(gauge_a[1m])",
    "count_over_time(gauge_a[2m])",
    "last_over_time(gauge_a[3m])",
    "last_over_time(gauge_b[1m] offset 30s)",
    "avg_over_time(gauge_a[10m])",
    "max_over_time(gauge_a[7m])",
    'count_over_time({__name__=~"gauge_.*"}[2m])',  # two series of one label set: refused by both
    # aggregations
    "sum(gauge_a)",
    "sum by (job) (rate(requests_total[2m]))",
    "avg without (host) (gauge_a)",
    "min by (job) (gauge_b)",
    "max(gauge_a) by (job, zone)",
    "count(requests_total)",
    'count by (__name__) ({__name__=~".+"})',
    "avg(avg_over_time(gauge_a[2m]))",
    # arithmetic and comparisons
    "1 + 2 * 3",
    "2 ^ 10 / 4 - 1",
    "5 > bool 3",
    "7 % 4 == bool 3",
    "gauge_a * 2",
    "2 - gauge_a",
    "gauge_a / 0",
    "gauge_a % 0.3",
    "gauge_a ^ 2",
    "-gauge_a",
    "-rate(requests_total[1m])",
    "gauge_a > 0.2",
    "0.2 < gauge_a",
    "gauge_a >= bool 0",
    "gauge_a != 0.5",
    "rate(requests_total[1m]) * 60",
    "sum by (job) (rate(requests_total[5m])) > bool 0.5",
    # vector to vector, one to one
    "gauge_a - gauge_b",
    "gauge_a + on(host, job) gauge_b",
    "gauge_a > ignoring(zone) gauge_b",
    "gauge_a <= bool gauge_b",
    "gauge_a atan2 gauge_b",
    "gauge_a + ignoring(host) gauge_b",
    "gauge_a + on(job) gauge_b",  # two right series of one signature: refused by both
]
INSTANTS = [T0 + 301.5, T0 + 1800, T0 + DURATION - 7, T0 + DURATION + 200]
RANGES = [(T0, T0 + DURATION + 400, "60"), (T0 + 600.25, T0 + 1500, "37s")]


def _readings() -> Data:
    """Each series' (name, labels, [(milliseconds, value)]), seeded."""
    generator = random.Random(24)
    out = []
    for name, labels in SERIES:
        points: list[tuple[int, float]] = []
        millis, counter = T0 * 1000 + generator.randrange(20_000), 0.0
        gap_at = generator.randrange(900, 2700) * 1000 + T0 * 1000
        while millis < (T0 + DURATION) * 1000:
            if name.endswith("_total"):
                counter = 0.0 if generator.random() < 0.03 else counter + generator.uniform(0, 50)
                value = counter
            else:
                value = generator.uniform(-1, 1) * 10 ** generator.choice([0, 0, 1, 3])
            points.append((millis, value))
            millis += generator.randrange(8_000, 25_000)
            if gap_at <= millis < gap_at + 30_000:
                millis += generator.randrange(360_000, 600_000)  # past the lookback
        out.append((name, labels, points))
    return out


def _openmetrics(data: Data) -> str:
    lines: list[str] = []
    for name in dict.fromkeys(name for name, _, _ in data):
        lines.append(f"# TYPE {name} unknown")
        for series_name, labels, points in data:
            if series_name != name:
                continue
            selector = ",".join(f'{key}="{value}"' for key, value in labels.items())
            lines.extend(f"{name}{{{selector}}} {value!r} {millis / 1000:.3f}" for millis, value in points)
    return "\n".join([*lines, "# EOF", ""])


@pytest.fixture(scope="module")
def data() -> Data:
    return _readings()


@pytest.fixture(scope="module")
def prometheus(tmp_path_factory: pytest.TempPathFactory, data: Data) -> Iterator[Prometheus]:
    workdir = tmp_path_factory.mktemp("prometheus")
    create_blocks(_openmetrics(data), workdir / "data")
    with running_prometheus(workdir) as server:
        yield server


@pytest.fixture
def loaded(make_hub: Callable[..., Hub], data: Data) -> Hub:
    hub = make_hub(positive_only=False, max_future=None)
    items = [
        {
            "metric": name,
            "labels": labels,
            "value": value,
            "timestamp": datetime.fromtimestamp(millis / 1000, UTC),
        }
        for name, labels, points in data
        for millis, value in points
    ]
    for first in range(0, len(items), 5000):
        hub.service.create_readings(items[first : first + 5000])
    return hub


def _same_value(ours: str, theirs: str) -> bool:
    a, b = float(ours), float(theirs)
    if math.isnan(a) or math.isnan(b):
        return math.isnan(a) and math.isnan(b)
    return a == b or math.isclose(a, b, rel_tol=1e-9)


def _normalised(data: dict[str, Any]) -> Any:
    """An answer's result keyed by series, in a form two servers' answers compare in."""
    kind, result = data["resultType"], data["result"]
    if kind == "scalar":
        return kind, [result]
    key = "value" if kind == "vector" else "values"
    series = {}
    for item in result:
        points = [item[key]] if kind == "vector" else item[key]
        series[tuple(sorted(item["metric"].items()))] = points
    return kind, series


def _assert_same(ours: httpx.Response, theirs: httpx.Response, what: str) -> int:
    """Check the two answers are the same; how many points (or refusals) Prometheus's held."""
    ours_body, theirs_body = ours.json(), theirs.json()
    assert ours.status_code == theirs.status_code, (what, ours_body, theirs_body)
    if theirs_body["status"] == "error":
        assert ours_body["errorType"] == theirs_body["errorType"], (what, ours_body, theirs_body)
        return 1
    our_kind, our_series = _normalised(ours_body["data"])
    their_kind, their_series = _normalised(theirs_body["data"])
    assert our_kind == their_kind, what
    if our_kind == "scalar":
        our_series, their_series = {(): our_series}, {(): their_series}
    assert set(our_series) == set(their_series), (what, sorted(our_series), sorted(their_series))
    for labels, points in their_series.items():
        mine = our_series[labels]
        assert [time for time, _ in mine] == [time for time, _ in points], (what, labels)
        for (time, value), (_, expected) in zip(mine, points, strict=True):
            assert _same_value(value, expected), (what, labels, time, value, expected)
    return sum(len(points) for points in their_series.values())


def test_every_expression_answers_as_prometheus_does(loaded: Hub, prometheus: Prometheus) -> None:
    empty = 0
    with (
        httpx.Client(base_url=loaded.url, timeout=60) as ours,
        httpx.Client(base_url=prometheus.url, timeout=60) as theirs,
    ):
        for expression in EXPRESSIONS:
            for at in INSTANTS:
                parameters = {"query": expression, "time": str(at)}
                mine, expected = (client.get("/api/v1/query", params=parameters) for client in (ours, theirs))
                empty += not _assert_same(mine, expected, f"query {expression} at {at}")
            for start, end, step in RANGES:
                form = {"query": expression, "start": str(start), "end": str(end), "step": step}
                mine, expected = (client.post("/api/v1/query_range", data=form) for client in (ours, theirs))
                what = f"query_range {expression} {start}..{end} step {step}"
                empty += not _assert_same(mine, expected, what)
    # The comparisons compare something: most answers hold points (the rest are past the data's end).
    assert empty < len(EXPRESSIONS) * (len(INSTANTS) + len(RANGES)) / 10


@pytest.mark.parametrize(
    "expression", ["gauge_a[2m]", "requests_total[1m] offset 5m", 'gauge_b{zone="z1"}[10m]']
)
def test_range_selectors_give_the_readings_themselves(
    loaded: Hub, prometheus: Prometheus, expression: str
) -> None:
    parameters = {"query": expression, "time": str(T0 + 1234.5)}
    with httpx.Client(timeout=60) as client:
        ours = client.get(f"{loaded.url}/api/v1/query", params=parameters)
        theirs = client.get(f"{prometheus.url}/api/v1/query", params=parameters)
    _assert_same(ours, theirs, expression)
    assert ours.json()["data"]["result"], "the window holds readings"


@pytest.mark.parametrize(
    "expression",
    [
        "histogram_quantile(0.9, gauge_a)",
        "topk(2, gauge_a)",
        "gauge_a and gauge_b",
        "gauge_a @ 1700000000",
        "rate(requests_total[5m:1m])",
        "gauge_a * on(host) group_left gauge_b",
        '"text"',
    ],
)
def test_what_is_outside_the_subset_is_refused_by_name(loaded: Hub, expression: str) -> None:
    answer = httpx.get(f"{loaded.url}/api/v1/query", params={"query": expression, "time": str(T0 + 600)})
    assert answer.status_code == 400
    body = answer.json()
    assert body["status"] == "error"
    assert body["errorType"] == "bad_data"
    assert "unsupported in metricstream's PromQL subset" in body["error"]


def test_a_range_query_of_a_range_vector_is_refused_as_prometheus_refuses_it(
    loaded: Hub, prometheus: Prometheus
) -> None:
    form = {"query": "gauge_a[1m]", "start": str(T0), "end": str(T0 + 60), "step": "15"}
    ours = httpx.post(f"{loaded.url}/api/v1/query_range", data=form)
    theirs = httpx.post(f"{prometheus.url}/api/v1/query_range", data=form)
    assert (ours.status_code, ours.json()["errorType"]) == (theirs.status_code, theirs.json()["errorType"])
    assert ours.json()["error"] == theirs.json()["error"]


def test_the_data_is_what_both_servers_hold(data: Data) -> None:
    """The seeded data has what the comparison relies on: resets, gaps, and a label some series lack."""
    counters = [points for name, _, points in data if name == "requests_total"]
    assert any(
        later < earlier for points in counters for (_, earlier), (_, later) in itertools.pairwise(points)
    )
    gaps = [b - a for _, _, points in data for (a, _), (b, _) in itertools.pairwise(points)]
    assert max(gaps) > 300_000
    assert any(value < 0 for name, _, points in data if name.startswith("gauge") for _, value in points)
    assert any("zone" not in labels for _, labels, _ in data)
    assert any("zone" in labels for _, labels, _ in data)
