"""Downsampled history (`bucket_readings`) and retention by age (`trim_readings`) on every store, and the
step's parsing. Each store is driven directly, as the service would, and compared with a naive reference
computed here."""

from __future__ import annotations

import math
import sys
from collections.abc import Sequence
from datetime import UTC, datetime
from fractions import Fraction

import pytest
from hypothesis import given
from hypothesis import strategies as st

from metricstream.domain.buckets import MIN_STEP, Bucket, parse_step
from metricstream.domain.values import Metric, MetricReading
from metricstream.ids import new_id, new_ids
from metricstream.storage.base import Storage
from metricstream.storage.rows import micros, moment
from metricstream.stream.log import Event
from metricstream.wire import METRIC_CREATED
from tests.support.stores import PROPERTY, add_readings, new_metric, on_store

SECOND = 1_000_000  # microseconds
EARLY = datetime.min.replace(tzinfo=UTC)  # the widest bounds there are
LATE = datetime.max.replace(tzinfo=UTC)
HUGE = 1.7e308  # two of them sum past the largest float

# Deterministic: the same examples on every run, nothing remembered between runs.


def reference(
    readings: Sequence[MetricReading], since: datetime, until: datetime, step: int, limit: int
) -> list[Bucket]:
    """Buckets the slow, obvious way; the mean exact, then rounded."""
    inside = sorted((r for r in readings if since <= r.timestamp <= until), key=lambda r: (r.timestamp, r.id))
    groups: dict[int, list[float]] = {}
    for reading in inside:
        ts = micros(reading.timestamp)
        groups.setdefault(ts - ts % step, []).append(reading.value)  # Python's % floors: before 1970 too
    return [
        Bucket(moment(start), len(v), min(v), max(v), float(sum(map(Fraction, v)) / len(v)), v[0], v[-1])
        for start, v in sorted(groups.items())[:limit]
    ]


def assert_same(got: Sequence[Bucket], want: Sequence[Bucket]) -> None:
    """Equal, but for the mean's rounding (each store sums in its own order)."""
    assert [(b.start, b.count, b.min, b.max, b.first, b.last) for b in got] == [
        (b.start, b.count, b.min, b.max, b.first, b.last) for b in want
    ]
    assert [b.avg for b in got] == pytest.approx([b.avg for b in want], rel=1e-12, abs=1e-6)


# --- bucket_readings ----------------------------------------------------------------------------


@st.composite
def bucket_queries(draw: st.DrawFn) -> tuple[list[tuple[int, float]], int, int, int, int]:
    """Readings around a random moment (1906 to 2096, or the epoch itself), a step, bounds and a limit;
    timestamps come from a small pool, so ties in time are common."""
    step = draw(
        st.sampled_from([MIN_STEP, 7_000, SECOND, 10 * SECOND, 3_600 * SECOND])
        | st.integers(MIN_STEP, 10**10)
    )
    origin = draw(st.just(0) | st.integers(-2 * 10**15, 4 * 10**15))
    spread = step * draw(st.integers(1, 6))
    moments = st.integers(origin - spread, origin + spread)
    pool = draw(st.lists(moments, min_size=1, max_size=12))
    # Moderate values of either sign, or any positive float up to the largest, whose sum may overflow
    # (huge values of both signs would cancel out, beyond what a store's plain sum can do exactly).
    values = st.floats(-1e6, 1e6, allow_nan=False) | st.floats(0, exclude_min=True, allow_infinity=False)
    values |= st.sampled_from([HUGE, sys.float_info.max])
    points = draw(st.lists(st.tuples(st.sampled_from(pool), values), max_size=40))
    bounds = st.sampled_from(pool) | moments
    return points, draw(bounds), draw(bounds), step, draw(st.integers(1, 8))


@PROPERTY
@given(query=bucket_queries())
def test_buckets_match_a_naive_reference(
    store_url: str, query: tuple[list[tuple[int, float]], int, int, int, int]
) -> None:
    points, since, until, step, limit = query

    async def scenario(store: Storage) -> None:
        metric_id, readings = await new_metric(store, points)
        got = await store.bucket_readings(metric_id, moment(since), moment(until), step, limit)
        assert_same(got, reference(readings, moment(since), moment(until), step, limit))

    on_store(store_url, scenario)


def test_buckets_start_at_multiples_of_the_step_from_the_epoch(store_url: str) -> None:
    points = [(-10 * SECOND - 1, 1.0), (-10 * SECOND, 2.0), (-1, 3.0), (0, 4.0)]
    points += [(10 * SECOND - 1, 5.0), (10 * SECOND, 6.0)]

    async def scenario(store: Storage) -> None:
        metric_id, _ = await new_metric(store, points)
        got = await store.bucket_readings(metric_id, EARLY, LATE, 10 * SECOND, 100)
        assert [(micros(b.start) // SECOND, b.count, b.first, b.last) for b in got] == [
            (-20, 1, 1.0, 1.0),
            (-10, 2, 2.0, 3.0),
            (0, 2, 4.0, 5.0),
            (10, 1, 6.0, 6.0),
        ]
        noon = micros(datetime(2026, 1, 1, 12, 7, 30, tzinfo=UTC))
        metric_id, _ = await new_metric(store, [(noon, 1.5), (noon + 1, 2.5)])
        (bucket,) = await store.bucket_readings(metric_id, EARLY, LATE, parse_step("5m"), 10)
        assert bucket.to_dict() == {
            "start": "2026-01-01T12:05:00.000000Z",
            "count": 2,
            "min": 1.5,
            "max": 2.5,
            "avg": 2.0,
            "first": 1.5,
            "last": 2.5,
        }

    on_store(store_url, scenario)


def test_empty_buckets_are_left_out_and_the_limit_counts_buckets(store_url: str) -> None:
    seconds = [0, 1, 35, 36, 37, 90]

    async def scenario(store: Storage) -> None:
        metric_id, _ = await new_metric(store, [(s * SECOND, float(s)) for s in seconds])
        step = 10 * SECOND
        every = await store.bucket_readings(metric_id, EARLY, LATE, step, 100)
        assert [(micros(b.start) // SECOND, b.count, b.min, b.max, b.avg) for b in every] == [
            (0, 2, 0.0, 1.0, 0.5),
            (30, 3, 35.0, 37.0, 36.0),
            (90, 1, 90.0, 90.0, 90.0),
        ]
        assert await store.bucket_readings(metric_id, EARLY, LATE, step, 2) == every[:2]
        assert await store.bucket_readings(metric_id, EARLY, LATE, step, 1) == every[:1]

    on_store(store_url, scenario)


def test_the_bounds_are_inclusive_and_cut_buckets(store_url: str) -> None:
    async def scenario(store: Storage) -> None:
        metric_id, _ = await new_metric(store, [(s * SECOND, float(s)) for s in range(20)])
        got = await store.bucket_readings(metric_id, moment(5 * SECOND), moment(12 * SECOND), 10 * SECOND, 9)
        assert [(micros(b.start) // SECOND, b.count, b.first, b.last) for b in got] == [
            (0, 5, 5.0, 9.0),
            (10, 3, 10.0, 12.0),
        ]
        assert await store.bucket_readings(metric_id, moment(3), moment(2), SECOND, 9) == []
        assert await store.bucket_readings(new_id(), EARLY, LATE, SECOND, 9) == []  # no such metric

    on_store(store_url, scenario)


def test_first_and_last_go_by_timestamp_then_id(store_url: str) -> None:
    async def scenario(store: Storage) -> None:
        metric_id = new_id()
        metric = Metric(metric_id, "m")
        await store.add_metric(metric, Event.create(METRIC_CREATED, metric, 1.0))
        low, mid, high = new_ids(3)
        at = moment(5 * SECOND)
        # written newest id first: the order of writing must not matter
        readings = [MetricReading(i, metric_id, v, at) for i, v in ((high, 3.0), (mid, 2.0), (low, 1.0))]
        await add_readings(store, readings)
        (bucket,) = await store.bucket_readings(metric_id, EARLY, LATE, 10 * SECOND, 9)
        assert (bucket.count, bucket.first, bucket.last) == (3, 1.0, 3.0)

    on_store(store_url, scenario)


def test_redis_reads_a_range_in_chunks_across_ties(
    redis_server: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from metricstream.storage import redis

    monkeypatch.setattr(redis, "_BUCKET_CHUNK", 3)  # ties in time longer than a chunk, buckets split
    seconds = [0] * 7 + [1] * 5 + [2] + [15] * 4 + [16]
    points = [(s * SECOND, float(i)) for i, s in enumerate(seconds)]

    async def scenario(store: Storage) -> None:
        metric_id, readings = await new_metric(store, points)
        for step, limit in ((SECOND, 9), (10 * SECOND, 9), (SECOND, 2)):
            got = await store.bucket_readings(metric_id, EARLY, LATE, step, limit)
            assert_same(got, reference(readings, EARLY, LATE, step, limit))

    on_store(f"{redis_server}?prefix=test-buckets-{new_id()}:", scenario)


def test_a_bucket_whose_sum_overflows_has_the_finite_mean(store_url: str) -> None:
    """Values of both signs, the sum of the first two past the largest float in any order of summing."""
    values = [HUGE, sys.float_info.max, -1e308, 5.0, HUGE]

    async def scenario(store: Storage) -> None:
        metric_id, readings = await new_metric(store, [(s * SECOND, v) for s, v in enumerate(values)])
        metric_id_2, readings_2 = await new_metric(store, [(0, HUGE), (1, HUGE), (10 * SECOND, 1.0)])
        for metric, written in ((metric_id, readings), (metric_id_2, readings_2)):
            got = await store.bucket_readings(metric, EARLY, LATE, 10 * SECOND, 9)
            assert all(math.isfinite(bucket.avg) for bucket in got)
            assert_same(got, reference(written, EARLY, LATE, 10 * SECOND, 9))
        # and cut by the bounds, which the bucket's second summing must keep to
        got = await store.bucket_readings(metric_id, moment(1), moment(3 * SECOND), 10 * SECOND, 9)
        assert_same(got, reference(readings, moment(1), moment(3 * SECOND), 10 * SECOND, 9))

    on_store(store_url, scenario)


def test_redis_sums_an_overflowing_bucket_again_across_chunks(
    redis_server: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from metricstream.storage import redis

    monkeypatch.setattr(redis, "_BUCKET_CHUNK", 2)  # each chunk's sum finite, the bucket's not, and back
    points = [(s, HUGE) for s in range(7)] + [(SECOND, 2.0), (SECOND, 4.0)]

    async def scenario(store: Storage) -> None:
        metric_id, readings = await new_metric(store, points)
        got = await store.bucket_readings(metric_id, EARLY, LATE, SECOND, 9)
        assert [(b.count, b.avg) for b in got] == [(7, HUGE), (2, 3.0)]
        assert_same(got, reference(readings, EARLY, LATE, SECOND, 9))

    on_store(f"{redis_server}?prefix=test-buckets-{new_id()}:", scenario)


# --- parse_step ---------------------------------------------------------------------------------


# --- trim_readings ------------------------------------------------------------------------------


def test_trim_removes_exactly_the_older_readings_of_every_metric(store_url: str) -> None:
    async def scenario(store: Storage) -> None:
        many, _ = await new_metric(store, [(s * SECOND, float(s)) for s in range(12)])
        few, _ = await new_metric(store, [(s * SECOND, float(s)) for s in (-5, 3, 7, 8)])
        none_old, _ = await new_metric(store, [(s * SECOND, float(s)) for s in (7, 9)])
        empty, _ = await new_metric(store, [])
        before = moment(7 * SECOND)  # a reading exactly then is kept
        kept = {m: await store.list_readings(m, since=before) for m in (many, few, none_old, empty)}

        assert await store.trim_readings(before, chunk=2) == 7 + 2
        for metric_id, readings in kept.items():
            assert await store.list_readings(metric_id) == readings
        assert await store.trim_readings(before, chunk=2) == 0
        assert await store.trim_readings(moment(100 * SECOND)) == 5 + 2 + 2  # the default chunk
        for metric_id in kept:
            assert await store.list_readings(metric_id) == []

    on_store(store_url, scenario)


def test_the_readings_cap_holds_exactly_after_a_trim(store_url: str) -> None:
    """SQLite counts each metric's readings once and then keeps the count: a trim must keep it too."""

    async def scenario(store: Storage) -> None:
        metric_id, _ = await new_metric(store, [])
        cap = 10

        async def write(seconds: range) -> None:
            readings = [
                MetricReading(i, metric_id, float(s), moment(s * SECOND))
                for i, s in zip(new_ids(len(seconds)), seconds, strict=True)
            ]
            await add_readings(store, readings, keep=cap)

        await write(range(10))  # counted now
        assert await store.trim_readings(moment(4 * SECOND), chunk=3) == 4
        await write(range(10, 16))  # 12 readings: the two oldest go
        assert [r.value for r in await store.list_readings(metric_id)] == [float(s) for s in range(6, 16)]
        await write(range(16, 17))
        assert len(await store.list_readings(metric_id)) == cap

    on_store(store_url, scenario)


def test_a_long_trim_in_many_chunks_leaves_a_series_that_works_on(store_url: str) -> None:
    async def scenario(store: Storage) -> None:
        metric_id, _ = await new_metric(store, [(s * SECOND, float(s)) for s in range(300)])
        with pytest.raises(ValueError, match="chunk"):
            await store.trim_readings(moment(250 * SECOND), chunk=0)
        assert await store.trim_readings(moment(250 * SECOND), chunk=64) == 250
        assert [r.value for r in await store.list_readings(metric_id)] == [float(s) for s in range(250, 300)]
        older = MetricReading(new_id(), metric_id, -1.0, moment(-SECOND))  # older than all that is left
        await add_readings(store, [older])
        assert (await store.list_readings(metric_id, limit=2))[0] == older
        buckets = await store.bucket_readings(metric_id, EARLY, LATE, 1000 * SECOND, 9)
        assert [(b.count, b.first, b.last) for b in buckets] == [(1, -1.0, -1.0), (50, 250.0, 299.0)]

    on_store(store_url, scenario)
