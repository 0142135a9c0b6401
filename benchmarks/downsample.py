"""Downsampled history: how long `bucket_readings` takes over a million readings of one metric.

    .venv/bin/python benchmarks/downsample.py [--redis redis://127.0.0.1:6379/0] [--runs 5]

On each store (memory, SQLite in a temporary directory, and Redis if a URL is given, under a fresh key
prefix that is deleted afterwards), two metrics of 1,000,000 readings each are written through
`add_readings` in batches of 10,000: `dense` spans one hour (about 278 readings a second), `sparse` one
reading a second (about 11.6 days). Then one hour of each is bucketed at a 10-second step (360 buckets, of
1,000,000 and of 3,600 readings) and the best and median of the runs are printed.

The readings are written without their events: the store holds the same readings, and a million events
(which the server would have expired long before) would only slow the writing down.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta

from metricstream.domain.buckets import parse_step
from metricstream.domain.values import Metric, MetricReading
from metricstream.ids import new_id, new_ids
from metricstream.storage import open_storage
from metricstream.storage.base import Storage
from metricstream.stream.log import Event
from metricstream.wire import METRIC_CREATED

READINGS = 1_000_000
BATCH = 10_000
ORIGIN = datetime(2026, 1, 1, tzinfo=UTC)
HOUR = timedelta(hours=1)
COLUMNS = ("store", "series", "in window", "buckets", "best ms", "median ms", "write s")
# name, time between readings, the hour bucketed
SERIES = [
    ("dense", HOUR / READINGS, ORIGIN),
    ("sparse", timedelta(seconds=1), ORIGIN + timedelta(days=5)),
]


async def fill(store: Storage, name: str, spacing: timedelta) -> str:
    metric = Metric(new_id(), name)
    await store.add_metric(metric, Event.create(METRIC_CREATED, metric, time.time()))
    for first in range(0, READINGS, BATCH):
        ids = new_ids(BATCH)
        readings = [
            MetricReading(ids[i], metric.id, float(i % 97), ORIGIN + (first + i) * spacing)
            for i in range(BATCH)
        ]
        await store.add_readings(readings, [])
    return metric.id


async def measure(url: str, runs: int) -> list[tuple[str, str, int, int, float, float, float]]:
    store = open_storage(url)
    await store.open()
    rows = []
    try:
        step = parse_step("10s")
        for name, spacing, since in SERIES:
            started = time.perf_counter()
            metric_id = await fill(store, name, spacing)
            written = time.perf_counter() - started
            until = since + HOUR - timedelta(microseconds=1)
            times = []
            for _ in range(runs):
                started = time.perf_counter()
                buckets = await store.bucket_readings(metric_id, since, until, step, 10_000)
                times.append(time.perf_counter() - started)
            count = sum(bucket.count for bucket in buckets)
            rows.append(
                (name, url.split(":")[0], count, len(buckets), min(times), statistics.median(times), written)
            )
    finally:
        if url.startswith(("redis", "unix")):
            await _forget(store)
        await store.close()
    return rows


async def _forget(store: Storage) -> None:
    """Delete a Redis store's keys: the benchmark wrote them under a prefix of its own."""
    from metricstream.storage.redis import RedisStorage

    assert isinstance(store, RedisStorage)
    keys = [key async for key in store.client.scan_iter(match=f"{store.prefix}*", count=1000)]
    if keys:
        await store.client.unlink(*keys)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--redis", help="also measure Redis at this URL (a fresh key prefix is used)")
    parser.add_argument("--runs", type=int, default=5)
    options = parser.parse_args()
    with tempfile.TemporaryDirectory() as directory:
        urls = ["memory://", f"sqlite:///{directory}/downsample.db"]
        if options.redis:
            separator = "&" if "?" in options.redis else "?"
            urls.append(f"{options.redis}{separator}prefix=downsample-{uuid.uuid4().hex[:8]}:")
        rows = [row for url in urls for row in asyncio.run(measure(url, options.runs))]
    print(f"bucket_readings: one hour at a 10 s step, {READINGS:,} readings per metric, {options.runs} runs")
    print("".join(f"{title:>11}" for title in COLUMNS))
    for name, store, count, buckets, best, median, written in rows:
        figures = (store, name, f"{count:,}", buckets, f"{best * 1000:.1f}", f"{median * 1000:.1f}")
        print("".join(f"{figure:>11}" for figure in (*figures, f"{written:.1f}")))


if __name__ == "__main__":
    main()
