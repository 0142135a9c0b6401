"""Downsampled history (`GET /metrics/{id}/readings?step=`, `hub.service.list_readings(step=)`) and
retention by age (`reading_ttl`), over HTTP and in Python, on every store. Time comes from a
`ManualClock`: tests advance hours without sleeping."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from fractions import Fraction
from pathlib import Path
from typing import Any

import httpx
import pytest

from metricstream.clock import ManualClock
from metricstream.domain.buckets import Bucket
from metricstream.domain.values import Metric, MetricReading, format_timestamp
from metricstream.errors import ValidationError
from metricstream.ids import new_id
from metricstream.server.hub import Hub
from metricstream.storage import open_storage
from metricstream.storage.base import EXPIRED_PER_WRITE
from metricstream.stream.log import Event
from metricstream.wire import METRIC_CREATED, READING_CREATED
from tests.support.apitools import assert_error, state
from tests.support.hubs import FAST, wait_for

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
STEP_MESSAGE = "step must be a number of seconds or a duration such as 10s, 5m, 1h (from 1ms to 366d)"


def at(seconds: float) -> str:
    return format_timestamp(T0 + timedelta(seconds=seconds))


def post_series(http: httpx.Client, metric_id: str, points: list[tuple[float, float]]) -> None:
    readings = [{"metric_id": metric_id, "value": value, "timestamp": at(s)} for s, value in points]
    answer = http.post("/metrics/readings/batch", json={"readings": readings})
    assert answer.status_code == 201, answer.text


def reference(points: list[tuple[float, float]], step: float) -> list[dict[str, Any]]:
    """Buckets computed the plain way, from the points in time order (ties in posting order)."""
    groups: dict[int, list[float]] = {}
    for seconds, value in sorted(points, key=lambda point: point[0]):
        groups.setdefault(int((T0.timestamp() + seconds) // step), []).append(value)
    return [
        {
            "start": format_timestamp(datetime.fromtimestamp(index * step, UTC)),
            "count": len(values),
            "min": min(values),
            "max": max(values),
            "avg": sum(values) / len(values),
            "first": values[0],
            "last": values[-1],
        }
        for index, values in sorted(groups.items())
    ]


POINTS = [(0, 3.0), (1, 1.0), (9.5, 4.0), (10, 1.5), (35, 9.0), (36, 2.0), (36, 6.0), (125, 5.0)]


def test_buckets_over_http_and_in_python(hub: Hub, http: httpx.Client) -> None:
    metric_id = http.post("/metrics", json={"name": "m"}).json()["id"]
    post_series(http, metric_id, POINTS)
    query = {"since": at(-60), "until": at(600), "step": "10s"}
    answer = http.get(f"/metrics/{metric_id}/readings", params=query)
    assert answer.status_code == 200, answer.text
    assert answer.json() == reference(POINTS, 10)  # aligned to the epoch, empty buckets left out
    assert answer.headers["x-last-event-id"] == hub.service.last_event_id
    buckets = hub.service.list_readings(metric_id, since=at(-60), until=at(600), step=10)
    assert all(isinstance(bucket, Bucket) for bucket in buckets)
    assert [bucket.to_dict() for bucket in buckets] == answer.json()
    # every spelling of one step gives the same buckets
    for step in ("10", "10.0", "10000ms", "0.1666666666666666666667m"):
        again = http.get(f"/metrics/{metric_id}/readings", params={**query, "step": step})
        assert again.json() == answer.json(), step
    # a minute's step, and the bounds inclusive
    minute = http.get(
        f"/metrics/{metric_id}/readings", params={"since": at(1), "until": at(36), "step": "1m"}
    )
    assert minute.json() == reference([p for p in POINTS if 1 <= p[0] <= 36], 60)


def test_limit_counts_buckets_and_the_window_defaults_to_now(make_hub: Callable[..., Hub]) -> None:
    clock = ManualClock(wall=(T0 + timedelta(seconds=130)).timestamp())
    hub = make_hub(clock=clock)
    metric = hub.service.create_metric("m")
    hub.service.create_readings([{"metric_id": metric.id, "value": v, "timestamp": at(s)} for s, v in POINTS])
    with httpx.Client(base_url=hub.url, timeout=10) as http:
        first_two = http.get(
            f"/metrics/{metric.id}/readings", params={"since": at(0), "step": "10s", "limit": 2}
        )
        assert first_two.json() == reference(POINTS, 10)[:2]
        # no since: the last `limit` steps before until (now): 12 steps of 10 s reach back to 10 s
        recent = http.get(f"/metrics/{metric.id}/readings", params={"step": "10s", "limit": 12})
        assert recent.json() == reference([p for p in POINTS if p[0] >= 10], 10)
        clock.advance(3600)  # an hour later the same question finds nothing
        assert http.get(f"/metrics/{metric.id}/readings", params={"step": "10s", "limit": 12}).json() == []


def test_the_mean_of_huge_readings_is_finite(hub: Hub, http: httpx.Client) -> None:
    """Issue 20.4: two readings of 1.7e308 (valid: positive and finite) averaged to null over HTTP and
    infinity in Python on SQLite and Redis, and to a 500 on memory."""
    metric_id = http.post("/metrics", json={"name": "m"}).json()["id"]
    post_series(http, metric_id, [(0, 1.7e308), (1, 1.7e308), (2, sys.float_info.max), (20, 1.0)])
    query = {"since": at(0), "until": at(60), "step": "10s"}
    answer = http.get(f"/metrics/{metric_id}/readings", params=query)
    assert answer.status_code == 200, answer.text
    want = float((Fraction(1.7e308) * 2 + Fraction(sys.float_info.max)) / 3)
    assert [(b["count"], b["avg"]) for b in answer.json()] == [(3, pytest.approx(want, rel=1e-15)), (1, 1.0)]
    buckets = hub.service.list_readings(metric_id, since=at(0), until=at(60), step="10s")
    assert [bucket.to_dict() for bucket in buckets] == answer.json()


YEAR_1 = "0001-01-01T00:00:00.000000Z"
LAST_BUCKET = format_timestamp(datetime(1970, 1, 1, tzinfo=UTC) + timedelta(days=8013 * 366))  # 9999-08-15
LAST = "9999-12-31T23:59:59.999999Z"
YEAR_1_READINGS = [(YEAR_1, 1.0), ("0001-01-01T00:00:00.25Z", 2.0), ("0001-01-01T12:00:00Z", 3.0)]
YEAR_9999_READINGS = [("9999-12-31T12:00:00Z", 4.0), (LAST, 5.0)]


@pytest.mark.parametrize(
    ("query", "buckets"),
    [
        # the two: since defaults to limit steps before until, before year 1 here
        ({"step": "366d", "until": "0001-01-02T00:00:00Z"}, [(YEAR_1, 3)]),
        (
            {"step": "1ms", "until": "0001-01-01T00:00:00.5Z"},
            [(YEAR_1, 1), ("0001-01-01T00:00:00.250000Z", 1)],
        ),
        ({"step": "1ms", "until": "0001-01-01T00:00:00Z"}, [(YEAR_1, 1)]),
        ({"step": "366d", "until": "0001-01-01T00:00:00Z", "limit": "1"}, [(YEAR_1, 1)]),
        ({"step": "1d", "until": "0001-01-01T00:00:00.000001Z", "limit": "10000"}, [(YEAR_1, 1)]),
        (
            {"step": "1ms", "since": YEAR_1, "until": "0001-01-01T00:00:00.5Z"},
            [(YEAR_1, 1), ("0001-01-01T00:00:00.250000Z", 1)],
        ),
        ({"step": "366d", "until": LAST, "limit": "10000"}, [(YEAR_1, 3), (LAST_BUCKET, 2)]),
        ({"step": "366d", "since": LAST, "until": LAST}, [(LAST_BUCKET, 1)]),
        ({"step": "366d", "since": "9999-12-31T12:00:00Z", "until": LAST, "limit": "1"}, [(LAST_BUCKET, 2)]),
    ],
)
def test_bucket_queries_at_the_ends_of_time(
    make_hub: Callable[..., Hub], query: dict[str, str], buckets: list[tuple[str, int]]
) -> None:
    """Issue 20.5: a default since before 0001-01-01 was a 500 over HTTP and an OverflowError in Python;
    it stops at 0001-01-01."""
    hub = make_hub(max_future=None)  # readings in year 9999
    with httpx.Client(base_url=hub.url, timeout=10) as http:
        metric_id = http.post("/metrics", json={"name": "m"}).json()["id"]
        points = [
            {"metric_id": metric_id, "value": v, "timestamp": t}
            for t, v in YEAR_1_READINGS + YEAR_9999_READINGS
        ]
        assert http.post("/metrics/readings/batch", json={"readings": points}).status_code == 201
        answer = http.get(f"/metrics/{metric_id}/readings", params=query)
    assert answer.status_code == 200, answer.text
    assert [(b["start"], b["count"]) for b in answer.json()] == buckets
    got = hub.service.list_readings(metric_id, **query)  # type: ignore[call-overload]
    assert [b.to_dict() for b in got] == answer.json()


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ({"step": "0"}, STEP_MESSAGE),
        ({"step": "-5s"}, STEP_MESSAGE),
        ({"step": "10 s"}, STEP_MESSAGE),
        ({"step": "1w"}, STEP_MESSAGE),
        ({"step": "nan"}, STEP_MESSAGE),
        ({"step": ""}, STEP_MESSAGE),
        ({"step": "0.1ms"}, STEP_MESSAGE),
        ({"step": "400d"}, STEP_MESSAGE),
        (
            {"step": "1s", "since": "2026-01-01T00:00:00Z", "until": "2026-01-02T00:00:00Z"},
            "step 1 s from since to until spans 86401 buckets, more than 10000: use a larger step or a "
            "shorter range",
        ),
        ({"step": "1m", "since": at(60), "until": at(0)}, "since must not be later than until"),
        ({"step": "1m", "limit": "0"}, "limit must be an integer from 1 to 10000"),
    ],
)
def test_a_bad_step_query_is_400(hub: Hub, http: httpx.Client, query: dict[str, str], message: str) -> None:
    metric_id = http.post("/metrics", json={"name": "m"}).json()["id"]
    before = state(http)
    assert_error(http.get(f"/metrics/{metric_id}/readings", params=query), 400, message)
    with pytest.raises(ValidationError, match="^" + message.replace("(", r"\(").replace(")", r"\)") + "$"):
        hub.service.list_readings(metric_id, **query)  # type: ignore[call-overload]
    assert state(http) == before


def test_an_unknown_metric_has_no_history(http: httpx.Client) -> None:
    missing = "01a21b32-2870-78a3-85f4-5b37387bfd17"
    assert_error(http.get(f"/metrics/{missing}/readings", params={"step": "1m"}), 404)


# --- reading_ttl ------------------------------------------------------------------------------------

TTL = 3600.0


def test_a_write_older_than_the_reading_ttl_is_refused(make_hub: Callable[..., Hub]) -> None:
    clock = ManualClock(wall=T0.timestamp())
    hub = make_hub(clock=clock, reading_ttl=TTL)
    metric = hub.service.create_metric("m")
    message = (
        f"timestamp {at(-TTL - 1)} is older than the reading_ttl of 3600 seconds allows "
        f"(readings before {at(-TTL)} are removed)"
    )
    with httpx.Client(base_url=hub.url, timeout=10) as http:
        before = state(http)
        old = {"metric_id": metric.id, "value": 1, "timestamp": at(-TTL - 1)}
        assert_error(http.post("/metrics/readings", json=old), 400, message)
        batch = http.post("/metrics/readings/batch", json={"readings": [{**old, "timestamp": at(0)}, old]})
        assert batch.status_code == 400
        assert batch.json()["errors"] == [{"index": 1, "error": message}]
        by_name = http.post(
            "/metrics/readings", json={"metric": "new", "value": 1, "timestamp": at(-TTL - 1)}
        )
        assert_error(by_name, 400, message)
        assert state(http) == before  # nothing stored, no metric "new"
        # the edge itself, the near future (max_future: 300 s) and the default "now" are kept
        for timestamp in (at(-TTL), at(300)):
            assert http.post("/metrics/readings", json={**old, "timestamp": timestamp}).status_code == 201
        assert http.post("/metrics/readings", json={"metric_id": metric.id, "value": 1}).status_code == 201
    with pytest.raises(ValidationError, match="older than the reading_ttl"):
        hub.service.create_reading(metric.id, 1, at(-TTL - 1))


def test_readings_past_the_ttl_are_removed_in_the_background(make_hub: Callable[..., Hub]) -> None:
    clock = ManualClock(wall=T0.timestamp())
    hub = make_hub(clock=clock, reading_ttl=TTL)
    a, b = hub.service.create_metric("a"), hub.service.create_metric("b")
    points = [(-3000, 1.0), (-1800, 2.0), (-60, 3.0), (0, 4.0)]
    for metric in (a, b):
        hub.service.create_readings(
            [{"metric_id": metric.id, "value": v, "timestamp": at(s)} for s, v in points]
        )
    clock.advance(1200)  # -3000 is now 4200 s old, -1800 is 3000 s old
    for metric_id in (a.id, b.id):

        def oldest_gone(metric_id: str = metric_id) -> bool:
            return [r.value for r in hub.service.list_readings(metric_id)] == [2.0, 3.0, 4.0]

        wait_for(oldest_gone, what="the oldest reading to go")
    clock.step_wall(-7200)  # the wall clock steps back: nothing more expires, writes of now go on
    clock.advance(600)
    hub.service.create_reading(a.id, 5.0)  # stamped with the stepped-back now: the oldest by time
    assert [r.value for r in hub.service.list_readings(a.id)] == [5.0, 2.0, 3.0, 4.0]
    clock.step_wall(7200)
    clock.advance(1780)  # now T0 + 3580: -1800 and -60 are past the TTL, and so is 5.0 by its timestamp
    wait_for(lambda: [r.value for r in hub.service.list_readings(b.id)] == [4.0], what="two more to go")
    wait_for(lambda: [r.value for r in hub.service.list_readings(a.id)] == [4.0], what="three more to go")
    assert [m.name for m in hub.service.list_metrics()] == ["a", "b"]  # metrics stay


def test_readings_that_expired_while_no_server_ran_go_at_start(tmp_path: Path) -> None:
    store = f"sqlite:///{tmp_path / 'data.db'}"
    clock = ManualClock(wall=T0.timestamp())
    with Hub(port=0, store=store, clock=clock, reading_ttl=TTL, **FAST) as hub:
        metric = hub.service.create_metric("m")
        hub.service.create_readings(
            [{"metric_id": metric.id, "value": v, "timestamp": at(s)} for s, v in [(-10, 1), (0, 2)]]
        )
    clock.advance(TTL - 5)  # a quiet spell with no server: the first reading is past the TTL
    with Hub(port=0, store=store, clock=clock, reading_ttl=TTL, **FAST) as hub:
        wait_for(lambda: len(hub.service.list_readings(metric.id)) == 1, what="the expired reading to go")
        assert hub.service.list_readings(metric.id)[0].value == 2


def test_a_write_removes_its_metrics_expired_readings_in_the_same_step(store_url: str) -> None:
    """The write-time half of retention, at the store: bounded per write, only the written metrics."""

    async def scenario() -> None:
        store = open_storage(store_url)
        await store.open()
        try:
            written, other = Metric(new_id(), "written"), Metric(new_id(), "other")
            for metric in (written, other):
                await store.add_metric(metric, Event.create(METRIC_CREATED, metric, 0.0))
            old = EXPIRED_PER_WRITE + 5
            for metric in (written, other):
                batch = [reading_at(metric, -1000 - n) for n in range(old)] + [reading_at(metric, 0)]
                await store.add_readings(batch, [Event.create(READING_CREATED, r, 0.0) for r in batch])
            fresh = reading_at(written, 1)
            event = Event.create(READING_CREATED, fresh, 0.0)
            await store.add_readings([fresh], [event], keep=None, expire_before=T0 - timedelta(seconds=10))
            left = await store.list_readings(written.id)
            assert len(left) == 5 + 2  # at most EXPIRED_PER_WRITE went, the oldest first
            assert [r.timestamp for r in left[:5]] == [
                T0 - timedelta(seconds=1000 + n) for n in range(4, -1, -1)
            ]
            assert len(await store.list_readings(other.id)) == old + 1  # not written: left to the sweep
            assert await store.trim_readings(T0 - timedelta(seconds=10), chunk=3) == 5 + old
            assert [r.timestamp for r in await store.list_readings(written.id)] == [T0, fresh.timestamp]
        finally:
            await store.close()

    asyncio.run(scenario())


def reading_at(metric: Metric, seconds: float) -> MetricReading:
    return MetricReading(new_id(), metric.id, 1.0, T0 + timedelta(seconds=seconds))


def test_the_buckets_position_counts_each_reading_once(hub: Hub, http: httpx.Client) -> None:
    """While a writer posts, each bucket answer's X-Last-Event-ID marks exactly the readings it holds: a
    dashboard that adds streamed readings after that position to the buckets counts none twice."""
    import threading
    import uuid

    metric_id = http.post("/metrics", json={"name": "busy"}).json()["id"]
    start = hub.service.last_event_id
    writes = 400

    def write() -> None:
        for n in range(writes):
            hub.service.create_reading(metric_id, 1.0, at(n % 60))

    writer = threading.Thread(target=write)
    writer.start()
    answers = []
    while writer.is_alive():
        answer = http.get(
            f"/metrics/{metric_id}/readings", params={"since": at(0), "until": at(60), "step": "10s"}
        )
        answers.append((sum(b["count"] for b in answer.json()), answer.headers["x-last-event-id"]))
    writer.join()
    with hub.subscribe(last_event_id=start) as events:
        reading_events = [uuid.UUID(event.id) for _, event in zip(range(writes), events, strict=False)]
    for counted, position in answers:
        assert counted == sum(1 for event_id in reading_events if event_id <= uuid.UUID(position))
    assert len(answers) > 1
