"""PromQL over a long window: metricstream on SQLite against a real Prometheus on the same data (issue 24).

    .venv/bin/python benchmarks/promql.py [--series 100] [--hours 24] [--runs 5] [--workdir DIR]

`--series` series (`bench{series="s000"}`, ...) of one reading a second for `--hours` hours (100 x 86,400 by
default), a slow sensor-like signal to two decimals, are written into a SQLite store (through
`add_readings` in batches of 10,000, without their events, as benchmarks/downsample.py does) and, as
OpenMetrics text, into Prometheus's TSDB blocks with `promtool tsdb create-blocks-from openmetrics`. Then
`avg_over_time(bench[60s])` over the whole range at a 60 s step is asked of both over HTTP
(`/api/v1/query_range`; metricstream as `metricstream serve`, each server a process of its own, the
client in this one), alternately, `--runs` times each; the best and
median times of each, and the ratio of the medians, are printed. A first run of each, not timed, warms
the caches. With `--workdir`, the data is kept there and made only once. Traffic stays on 127.0.0.1.
"""

from __future__ import annotations

import argparse
import asyncio
import math
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from metricstream.domain.values import Metric, MetricReading
from metricstream.ids import new_id, new_ids
from metricstream.storage.sqlite import SQLiteStorage
from metricstream.stream.log import Event
from metricstream.wire import METRIC_CREATED
from tests.support.processes import servers_on
from tests.support.prometheus import create_blocks, running_prometheus

T0 = 1_767_225_600  # 2026-01-01T00:00:00Z
BATCH = 10_000
QUERY = "avg_over_time(bench[60s])"


def value(series: int, second: int) -> float:
    return round(20 + 5 * math.sin(second / 600 + series) + (second * 7919 % 13) / 100, 2)


async def fill_sqlite(path: Path, series: int, seconds: int) -> None:
    store = SQLiteStorage(str(path))
    await store.open()
    try:
        for index in range(series):
            metric = Metric(new_id(), "bench", labels={"series": f"s{index:03d}"})
            await store.add_metric(metric, Event.create(METRIC_CREATED, metric, time.time()))
            for first in range(0, seconds, BATCH):
                count = min(BATCH, seconds - first)
                ids = new_ids(count)
                readings = [
                    MetricReading(
                        ids[i],
                        metric.id,
                        value(index, first + i),
                        datetime.fromtimestamp(T0, UTC) + timedelta(seconds=first + i),
                    )
                    for i in range(count)
                ]
                await store.add_readings(readings, [])
    finally:
        await store.close()


def openmetrics(series: int, seconds: int) -> str:
    lines = ["# TYPE bench gauge"]
    for index in range(series):
        name = f'bench{{series="s{index:03d}"}}'
        lines.extend(f"{name} {value(index, second)!r} {T0 + second}" for second in range(seconds))
    lines.append("# EOF\n")
    return "\n".join(lines)


def prepare(workdir: Path, series: int, seconds: int) -> tuple[Path, Path]:
    database, prometheus = workdir / "bench.db", workdir / "prometheus"
    if not database.exists():
        started = time.perf_counter()
        asyncio.run(fill_sqlite(database, series, seconds))
        print(f"SQLite written in {time.perf_counter() - started:.0f} s", flush=True)
    if not (prometheus / "data").exists():
        started = time.perf_counter()
        create_blocks(openmetrics(series, seconds), prometheus / "data")
        (prometheus / "blocks.om").unlink()
        print(f"Prometheus blocks made in {time.perf_counter() - started:.0f} s", flush=True)
    return database, prometheus


def timed(client: httpx.Client, url: str, form: dict[str, str]) -> tuple[float, int]:
    started = time.perf_counter()
    answer = client.post(f"{url}/api/v1/query_range", data=form)
    elapsed = time.perf_counter() - started
    answer.raise_for_status()
    result = answer.json()["data"]["result"]
    return elapsed, sum(len(series["values"]) for series in result)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--series", type=int, default=100)
    parser.add_argument("--hours", type=int, default=24)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument(
        "--workdir", type=Path, help="keep the data here (made once) instead of a temporary one"
    )
    options = parser.parse_args()
    seconds = options.hours * 3600
    with tempfile.TemporaryDirectory() as temporary:
        workdir = options.workdir or Path(temporary)
        workdir.mkdir(parents=True, exist_ok=True)
        database, prometheus_dir = prepare(workdir, options.series, seconds)
        form = {"query": QUERY, "start": str(T0), "end": str(T0 + seconds), "step": "60"}
        ours: list[float] = []
        theirs: list[float] = []
        with (
            servers_on(f"sqlite:///{database}", 1) as (url,),
            running_prometheus(prometheus_dir) as prometheus,
            httpx.Client(timeout=600) as client,
        ):
            points = [timed(client, server, form)[1] for server in (url, prometheus.url)]  # warm-up
            assert points[0] == points[1], f"different answers: {points[0]} and {points[1]} points"
            for _ in range(options.runs):
                ours.append(timed(client, url, form)[0])
                theirs.append(timed(client, prometheus.url, form)[0])
    readings = options.series * seconds
    print(f"{QUERY} over {options.hours} h at a 60 s step: {options.series} series, {readings:,} readings")
    print(f"{'':>14}{'best s':>10}{'median s':>10}")
    for name, times in (("metricstream", ours), ("prometheus", theirs)):
        print(f"{name:>14}{min(times):>10.3f}{statistics.median(times):>10.3f}")
    ratio = statistics.median(ours) / statistics.median(theirs)
    print(f"ratio (medians, metricstream / prometheus): {ratio:.2f}")


if __name__ == "__main__":
    main()
