"""`hub.chart()`'s kernel side under load: its CPU time, and the comm messages it sends per second.

    .venv/bin/python benchmarks/chart_kernel.py [--rate 1000] [--metrics 20] [--seconds 10] [--window 300]
        [--runs 3]

Method. A child process runs the hub (memory store) and writes `--rate` readings/s round-robin over
`--metrics` metrics, one batch every 20 ms paced by its monotonic clock, through `hub.service`. This
process runs nothing but the chart's kernel side: a `ChartFeed` (what the widget runs: the Subscriber's
thread reading the stream, the feed's thread coalescing and sending) reading that hub over HTTP, with a
`send` that counts messages and bytes where the widget hands them to its comm. So the hub's work is in
the other process, and this process's CPU time (`time.process_time`, every thread; the main thread only
waits) over the writing window is the kernel side's cost. (In a kernel, `Hub.chart` adds ipykernel's
serialising of each message, at 20 a second a small part of it.) The run ends once the feed has sent
every reading written. Prints, per run and as the median: readings/s written, messages/s, KiB/s sent,
CPU as a share of one core, and whether every reading arrived. Run by hand: no test asserts the figures.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from typing import Any

from metricstream.notebook.chart_feed import ChartFeed, ChartSource, chart_window

# The hub's process: prints its URL, writes on "go", prints the count written, stops at end of input.
HUB = """
import sys, time
from metricstream import Hub

rate, metrics, seconds = int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3])
with Hub(port=0, store="memory://") as hub:
    ids = [hub.service.create_metric(f"metric-{n:02}").id for n in range(metrics)]
    print(hub.url, flush=True)
    sys.stdin.readline()
    tick, per_tick = 0.02, round(rate * 0.02)
    start, written, n = time.monotonic(), 0, 0
    while (now := time.monotonic()) - start < seconds:
        batch = []
        for _ in range(per_tick):
            batch.append({"metric_id": ids[n % metrics], "value": float(n % 1000) + 1})
            n += 1
        hub.service.create_readings(batch)
        written += len(batch)
        time.sleep(max(0.0, start + (written / per_tick) * tick - time.monotonic()))
    print(written, time.monotonic() - start, flush=True)
    sys.stdin.readline()
"""


@dataclass
class Counter:
    messages: int = 0
    size: int = 0  # bytes of the buffers

    def __call__(self, content: dict[str, Any], buffers: list[bytes]) -> None:
        self.messages += 1
        self.size += sum(len(buffer) for buffer in buffers)


@dataclass(frozen=True)
class Run:
    rate: float
    messages_per_s: float
    kib_per_s: float
    cpu_share: float
    complete: bool


def run_once(rate: int, metrics: int, seconds: float, window: int | str) -> Run:
    command = [sys.executable, "-c", HUB, str(rate), str(metrics), str(seconds)]
    hub = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert hub.stdin is not None
    assert hub.stdout is not None
    try:
        url = hub.stdout.readline().strip()
        counter = Counter()
        feed = ChartFeed(ChartSource(url), None, chart_window(window), counter).start()
        try:
            state_messages = counter.messages
            cpu, wall = time.process_time(), time.monotonic()
            hub.stdin.write("go\n")
            hub.stdin.flush()
            written_text, elapsed_text = hub.stdout.readline().split()
            written = int(written_text)
            # the last readings still on their way: wait for them, counted in the cost
            caught_up = threading.Event()
            deadline = time.monotonic() + 30
            while feed.statistics().sent < written and time.monotonic() < deadline:
                caught_up.wait(0.01)
            cpu, wall = time.process_time() - cpu, time.monotonic() - wall
            complete = feed.statistics().sent == written
        finally:
            feed.close()
        hub.stdin.write("\n")
        hub.stdin.flush()
        hub.wait(30)
    finally:
        if hub.poll() is None:
            hub.kill()
            hub.wait()
    messages = counter.messages - state_messages
    rate_written = written / float(elapsed_text)
    return Run(rate_written, messages / wall, counter.size / 1024 / wall, cpu / wall, complete)


def main() -> None:
    raw = argparse.RawDescriptionHelpFormatter
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=raw)
    parser.add_argument("--rate", type=int, default=1000, help="readings per second written")
    parser.add_argument("--metrics", type=int, default=20)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--window", default="300", help="readings kept, or 10m, 1h, 6h, 1d")
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    window: int | str = int(args.window) if args.window.isdigit() else args.window
    runs = []
    for number in range(1, args.runs + 1):
        run = run_once(args.rate, args.metrics, args.seconds, window)
        runs.append(run)
        print(
            f"run {number}: {run.rate:,.0f} readings/s written, {run.messages_per_s:.1f} messages/s, "
            f"{run.kib_per_s:,.1f} KiB/s, kernel-side CPU {run.cpu_share:.1%} of one core, "
            f"{'every reading sent' if run.complete else 'READINGS MISSING'}",
            flush=True,
        )
    print(
        f"median of {len(runs)}: {statistics.median(r.messages_per_s for r in runs):.1f} messages/s, "
        f"{statistics.median(r.kib_per_s for r in runs):,.1f} KiB/s, "
        f"CPU {statistics.median(r.cpu_share for r in runs):.1%} of one core"
    )


if __name__ == "__main__":
    main()
