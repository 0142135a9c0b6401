"""Cross-process delivery latency through Redis: POST to one server process, receive on another.

    .venv/bin/python benchmarks/redis_latency.py --redis redis://127.0.0.1:6379/0 [--events 2000] [--rate 200]

Starts two `metricstream serve` processes on one Redis (under a fresh key prefix), subscribes to the
second, posts readings to the first at a fixed rate from raw sockets, and prints p50/p99/max of the time
from sending a POST to receiving its event. Traffic stays on 127.0.0.1.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import statistics
import subprocess
import sys
import time
import uuid


def start_server(store: str) -> tuple[subprocess.Popen[bytes], int]:
    command = [sys.executable, "-m", "metricstream", "serve", "--port", "0", "--store", store]
    process = subprocess.Popen(command, stdout=subprocess.PIPE)
    assert process.stdout is not None
    line = process.stdout.readline().decode()
    match = re.search(r"http://127\.0\.0\.1:(\d+)", line)
    assert match, line
    return process, int(match.group(1))


async def measure(post_port: int, watch_port: int, events: int, rate: float) -> list[float]:
    connection: list[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = []

    async def request(method: str, path: str, body: dict[str, object]) -> dict[str, object]:
        if not connection:  # hypercorn closes a keep-alive connection after 1,000 requests
            connection.append(await asyncio.open_connection("127.0.0.1", post_port))
        reader, writer = connection[0]
        payload = json.dumps(body).encode()
        writer.write(
            f"{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(payload)}\r\n\r\n".encode()
            + payload
        )
        try:
            head = await reader.readuntil(b"\r\n\r\n")
        except asyncio.IncompleteReadError:
            connection.clear()
            return await request(method, path, body)
        if b"connection: close" in head.lower():
            connection.clear()
        length = int(re.search(rb"content-length: (\d+)", head, re.I).group(1))  # type: ignore[union-attr]
        return dict(json.loads(await reader.readexactly(length)))

    metric = await request("POST", "/metrics", {"name": "latency"})
    stream_reader, stream_writer = await asyncio.open_connection("127.0.0.1", watch_port)
    stream_writer.write(b"GET /events/watch?types=metric_reading_created HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
    await stream_reader.readuntil(b"data: connected")
    sent: dict[float, float] = {}
    latencies: list[float] = []

    async def receive() -> None:
        pattern = re.compile(rb'"value":([0-9.e+]+)')
        buffer = b""
        while len(latencies) < events:
            buffer += await stream_reader.read(65536)
            *complete, buffer = buffer.split(b"\n\n")
            now = time.perf_counter()
            for block in complete:
                found = pattern.search(block)
                if found:
                    latencies.append(now - sent.pop(float(found.group(1))))

    receiver = asyncio.create_task(receive())
    started = time.perf_counter()
    for number in range(1, events + 1):
        await asyncio.sleep(max(0.0, started + number / rate - time.perf_counter()))
        sent[float(number)] = time.perf_counter()
        await request("POST", "/metrics/readings", {"metric_id": metric["id"], "value": number})
    await asyncio.wait_for(receiver, 60)
    return latencies


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--redis", required=True, help="e.g. redis://127.0.0.1:6379/0")
    parser.add_argument("--events", type=int, default=2000)
    parser.add_argument("--rate", type=float, default=200.0, help="readings posted per second")
    args = parser.parse_args()
    store = f"{args.redis}?prefix=bench{uuid.uuid4().hex[:8]}:"
    first, post_port = start_server(store)
    second, watch_port = start_server(store)
    try:
        latencies = asyncio.run(measure(post_port, watch_port, args.events, args.rate))
    finally:
        for process in (first, second):
            process.terminate()
            process.wait(20)
    ordered = sorted(latencies)
    p50 = statistics.median(ordered)
    p99 = ordered[int(len(ordered) * 0.99) - 1]
    print(
        f"cross-process delivery via Redis, {len(ordered)} readings at {args.rate:.0f}/s: "
        f"p50 {p50 * 1000:.2f} ms, p99 {p99 * 1000:.2f} ms, max {ordered[-1] * 1000:.2f} ms"
    )


if __name__ == "__main__":
    main()
