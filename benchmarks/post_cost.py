"""What one `POST /metrics/readings` costs metricstream itself: its ASGI app called in a loop, no sockets.

    .venv/bin/python benchmarks/post_cost.py [--posts 5000] [--repeats 7] [--profile] [--store URL]

Beside it, the same loop through `floor_asgi.app` (reads the body, parses it with orjson, answers 201):
the least any app pays, the harness included. Each request comes as hypercorn delivers a POST's body:
the data with `more_body`, then an empty last message. Far less noisy on a shared machine than the
socket figures of `run.py`, which add hypercorn's own ~300 µs per POST. The best repeat is the figure
(what the code costs; the others add what the machine's other work took); the median is shown beside it.
`--profile` prints where metricstream's time goes (cProfile, by own time).
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import io
import json
import math
import os
import pstats
import statistics
import sys
import time
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass
from typing import Any

import floor_asgi

from metricstream.web.application import create_app

Message = MutableMapping[str, Any]
App = Callable[
    [Message, Callable[[], Awaitable[Message]], Callable[[Message], Awaitable[None]]], Awaitable[None]
]
PATH = "/metrics/readings"


@dataclass(frozen=True)
class Cost:
    """Microseconds per POST over the repeats: the best and the median."""

    best: float
    median: float


def requests(metric_id: str, count: int) -> list[tuple[Message, bytes]]:
    """`count` requests as hypercorn would hand them over (scope, body), each reading's value its number."""
    made: list[tuple[Message, bytes]] = []
    for value in range(1, count + 1):
        body = b'{"metric_id":"%s","value":%d}' % (metric_id.encode(), value)
        headers = [
            (b"host", b"127.0.0.1:8000"),
            (b"content-type", b"application/json"),
            (b"content-length", b"%d" % len(body)),
        ]
        scope: Message = {
            "type": "http",
            "asgi": {"spec_version": "2.3", "version": "3.0"},
            "http_version": "1.1",
            "method": "POST",
            "scheme": "http",
            "path": PATH,
            "raw_path": PATH.encode(),
            "query_string": b"",
            "root_path": "",
            "headers": headers,
            "client": ("127.0.0.1", 50000),
            "server": ("127.0.0.1", 8000),
            "extensions": {},
        }
        made.append((scope, body))
    return made


async def post_all(app: App, batch: list[tuple[Message, bytes]]) -> float:
    """CPU seconds this process spent answering every request of `batch`, one after another (time the
    machine gave other processes meanwhile is left out); each must be a 201."""
    statuses: list[int] = []

    async def send(message: Message) -> None:
        if message["type"] == "http.response.start":
            statuses.append(message["status"])

    started = time.process_time()
    for scope, body in batch:
        messages = iter(
            (
                {"type": "http.request", "body": body, "more_body": True},
                {"type": "http.request", "body": b"", "more_body": False},
            )
        )

        async def receive(messages: Any = messages) -> Message:
            return next(messages, {"type": "http.disconnect"})

        await app(scope, receive, send)
    elapsed = time.process_time() - started
    refused = [status for status in statuses if status != 201]
    if refused or len(statuses) != len(batch):
        raise RuntimeError(f"{len(refused)} of {len(batch)} POSTs were not answered 201: {refused[:3]}")
    return elapsed


async def costs(
    posts: int, repeats: int, profile: bool = False, store: str = "memory://"
) -> tuple[Cost, Cost, str]:
    """metricstream's cost and the bare app's, a repeat of each in turn (so a busy spell on the machine
    falls on both); and a profile if asked."""
    app = create_app(store=store)
    await app.startup()
    try:
        metric_id = (await app.service.create_metric("post_cost")).id
        ours: list[float] = []
        floor: list[float] = []
        for target in (app, floor_asgi.app):
            await post_all(target, requests(metric_id, 200))  # warm
        for _ in range(repeats):
            for target, out in ((app, ours), (floor_asgi.app, floor)):
                batch = requests(metric_id, posts)
                out.append(await post_all(target, batch) / posts * 1e6)
        report = ""
        if profile:
            batch = requests(metric_id, posts)
            profiler = cProfile.Profile()
            profiler.enable()
            await post_all(app, batch)
            profiler.disable()
            out_text = io.StringIO()
            pstats.Stats(profiler, stream=out_text).sort_stats("tottime").print_stats(30)
            report = out_text.getvalue()
    finally:
        await app.shutdown()
    return _cost(ours), _cost(floor), report


def _cost(per_post: list[float]) -> Cost:
    return Cost(min(per_post), statistics.median(per_post))


def reference_us() -> float:
    """CPU µs of a fixed piece of plain Python (`sum(range(100))`), best of 5: how fast this machine runs
    Python just now, to scale the figures by (0.8-0.9 µs when the machine of docs/performance.md is
    quiet; several times more while other work shares its cores)."""
    best = math.inf
    for _ in range(5):
        started = time.thread_time()
        for _ in range(20_000):
            sum(range(100))
        best = min(best, (time.thread_time() - started) / 20_000 * 1e6)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--posts", type=int, default=5000, help="POSTs per repeat")
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--profile", action="store_true", help="also print a cProfile of metricstream's loop")
    parser.add_argument("--json", action="store_true", help="one JSON line instead of text")
    parser.add_argument(
        "--store", default="memory://", help="memory:// (default), sqlite:///x.db, redis://..."
    )
    args = parser.parse_args()
    ours, floor, report = asyncio.run(costs(args.posts, args.repeats, args.profile, args.store))
    reference = reference_us()
    if args.json:
        figures = {"own_us": ours.best, "own_median_us": ours.median, "floor_us": floor.best}
        print(json.dumps(figures | {"reference_us": reference}))
        return
    load = ", ".join(f"{value:.2f}" for value in os.getloadavg())
    print(
        f"python {sys.version.split()[0]}; load average {load}; {args.repeats} x {args.posts} POSTs; "
        f"store {args.store}"
    )
    print(f"metricstream: {ours.best:.1f} µs per POST (median of repeats {ours.median:.1f})")
    print(f"bare ASGI app: {floor.best:.1f} µs per POST (median of repeats {floor.median:.1f})")
    print(f"reference: sum(range(100)) takes {reference:.2f} µs here now")
    if report:
        print(report)


if __name__ == "__main__":
    main()
