"""Every reading as one table: how long `hub.service.frame()` takes over a million readings, per library,
against the loop a user would write by hand (`list_readings` page after page, then a DataFrame).

    .venv/bin/python benchmarks/export_table.py [--readings 1000000] [--metrics 10] [--runs 3]

On each store (memory, and SQLite in a temporary directory), `--metrics` metrics (each with two labels, a
unit and a description, which every row carries) share `--readings` readings, one a second each, written
straight through the store's `add_readings` (without their events, as benchmarks/downsample.py does: the
store holds the same readings). A `Hub` then serves the store, and from the calling thread, as in a
notebook, each way of reading it all is timed: `frame()` for pandas, polars and arrow, and the hand-written
loop (with the same columns). The best and median of `--runs` are printed, with the rows
each returned (all must be every reading).
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pandas as pd

from metricstream.domain.labels import format_labels
from metricstream.domain.values import Metric, MetricReading
from metricstream.ids import new_id, new_ids
from metricstream.server.hub import Hub
from metricstream.service.metric_service import MetricService
from metricstream.service.tables import READING_COLUMNS
from metricstream.storage import open_storage
from metricstream.storage.base import Storage
from metricstream.stream.log import Event
from metricstream.wire import MAX_READINGS_LIMIT, METRIC_CREATED

BATCH = 10_000
ORIGIN = datetime(2026, 1, 1, tzinfo=UTC)
COLUMNS = ("store", "way", "rows", "best s", "median s", "readings/s")


async def fill(store: Storage, metrics: int, readings: int) -> None:
    """`readings` readings shared by `metrics` metrics, one a second each, in batches of BATCH."""
    for index in range(metrics):
        labels = {"host": f"host{index % 4}", "run": str(index)}
        metric = Metric(new_id(), f"metric{index}", labels=labels, unit="s", description=f"metric {index}")
        await store.add_metric(metric, Event.create(METRIC_CREATED, metric, time.time()))
        count = readings // metrics + (index < readings % metrics)
        for first in range(0, count, BATCH):
            size = min(BATCH, count - first)
            ids = new_ids(size)
            await store.add_readings(
                [
                    MetricReading(ids[i], metric.id, float(i % 97), ORIGIN + timedelta(seconds=first + i))
                    for i in range(size)
                ],
                [],
            )


def by_hand(service: MetricService) -> pd.DataFrame:
    """The obvious user loop: every metric's readings page by page, then one DataFrame of frame()'s
    columns."""
    rows = []
    for metric in service.list_metrics():
        described = (metric.name, metric.id, format_labels(metric.labels), metric.unit, metric.description)
        cursor = None
        while True:
            page = service.list_readings(metric.id, limit=MAX_READINGS_LIMIT, cursor=cursor)
            rows += [(*described, r.timestamp, r.value) for r in page]
            cursor = page.next_cursor
            if cursor is None:
                break
    return pd.DataFrame(rows, columns=[column.name for column in READING_COLUMNS])


WAYS: dict[str, Callable[[MetricService], Any]] = {
    "frame() pandas": lambda service: service.frame(),
    "frame() polars": lambda service: service.frame(library="polars"),
    "frame() arrow": lambda service: service.frame(library="arrow"),
    "list_readings by hand": by_hand,
}


def measure(name: str, store: Storage, runs: int) -> list[tuple[Any, ...]]:
    rows = []
    with Hub(port=0, storage=store) as hub:
        for way, read in WAYS.items():
            times, count = [], 0
            for _ in range(runs):
                started = time.perf_counter()
                count = len(read(hub.service))
                times.append(time.perf_counter() - started)
            best = min(times)
            rows.append((name, way, count, best, statistics.median(times), count / best))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--readings", type=int, default=1_000_000)
    parser.add_argument("--metrics", type=int, default=10)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    results = []
    with tempfile.TemporaryDirectory() as directory:
        for name, url in (("memory", "memory://"), ("sqlite", f"sqlite:///{directory}/frames.db")):
            store = open_storage(url)
            started = time.perf_counter()

            async def write(store: Storage = store) -> None:
                await store.open()
                await fill(store, args.metrics, args.readings)
                await store.close()

            asyncio.run(write())
            print(f"{name}: {args.readings:,} readings written in {time.perf_counter() - started:.1f} s")
            results += measure(name, store, args.runs)
    widths = [max(len(c), 22 if c == "way" else 10) for c in COLUMNS]
    print("  ".join(c.ljust(w) for c, w in zip(COLUMNS, widths, strict=True)))
    for store_name, way, count, best, median, rate in results:
        cells = (store_name, way, f"{count:,}", f"{best:.2f}", f"{median:.2f}", f"{rate:,.0f}")
        print("  ".join(cell.ljust(w) for cell, w in zip(cells, widths, strict=True)))


if __name__ == "__main__":
    main()
