"""Figures for the core: ingest through `hub.service` and over HTTP, and fan-out deliveries/s.

    .venv/bin/python benchmarks/core.py [--clients 100] [--events 20000] [--ingest 10000] [--store URL]

Prints one line per figure. Traffic stays on 127.0.0.1. The HTTP poster and the SSE readers run in
other processes (the readers on raw asyncio sockets), so they do not compete for the server's GIL.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import os
import sys
import time
from multiprocessing.synchronize import Event as ProcessEvent

import httpx

from metricstream.server.hub import Hub

MARKER = b"event: metric_reading_created"


async def _read_streams(host: str, port: int, clients: int, expected: int, ready: ProcessEvent) -> float:
    """Open `clients` streams; return the clock time at which the last one had `expected` readings."""
    connected: list[int] = []

    async def one() -> float:
        reader, writer = await asyncio.open_connection(host, port)
        writer.write(b"GET /events/watch HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        seen, tail, is_connected = 0, b"", False
        while seen < expected:
            data = await reader.read(1 << 18)
            if not data:
                raise RuntimeError("stream ended early")
            if not is_connected and b"data: connected" in data:
                is_connected = True
                connected.append(1)
                if len(connected) == clients:
                    ready.set()
            block = tail + data
            # a marker split across reads is counted once, in the read that completes it
            seen += block.count(MARKER) - tail.count(MARKER)
            tail = block[-(len(MARKER) - 1) :]
        writer.close()
        return time.perf_counter()

    return max(await asyncio.gather(*(one() for _ in range(clients))))


def _reader_process(
    host: str, port: int, clients: int, expected: int, ready: ProcessEvent, out: multiprocessing.Queue[float]
) -> None:
    out.put(asyncio.run(_read_streams(host, port, clients, expected, ready)))


def _post_readings(url: str, metric_id: str, count: int, out: multiprocessing.Queue[float]) -> None:
    with httpx.Client(base_url=url) as http:
        started = time.perf_counter()
        for value in range(1, count + 1):
            response = http.post("/metrics/readings", json={"metric_id": metric_id, "value": value})
            assert response.status_code == 201, response.text
        out.put(time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--clients", type=int, default=100)
    parser.add_argument("--events", type=int, default=20_000)
    parser.add_argument("--ingest", type=int, default=10_000)
    parser.add_argument("--store", default="memory://", help="memory://, sqlite:///x.db, redis://...")
    args = parser.parse_args()
    print(f"machine: {os.cpu_count()} cores; python {sys.version.split()[0]}; store {args.store}")
    results: multiprocessing.Queue[float] = multiprocessing.Queue()

    with Hub(port=0, event_ttl=600, store=args.store) as hub:
        metric = hub.service.create_metric("bench")
        started = time.perf_counter()
        for value in range(1, args.ingest + 1):
            hub.service.create_reading(metric.id, value)
        elapsed = time.perf_counter() - started
        print(f"hub.service.create_reading x{args.ingest}: {elapsed:.2f} s ({args.ingest / elapsed:,.0f}/s)")

        poster = multiprocessing.Process(
            target=_post_readings, args=(hub.url, metric.id, args.ingest, results)
        )
        poster.start()
        elapsed = results.get(timeout=600)
        poster.join()
        print(
            f"POST /metrics/readings x{args.ingest} (one httpx keep-alive client, another process): "
            f"{elapsed:.2f} s ({args.ingest / elapsed:,.0f}/s)"
        )

    with Hub(port=0, event_ttl=600, store=args.store) as hub:
        metric = hub.service.create_metric("fanout")
        host, port = hub.url.removeprefix("http://").split(":")
        ready = multiprocessing.Event()
        reader = multiprocessing.Process(
            target=_reader_process, args=(host, int(port), args.clients, args.events, ready, results)
        )
        reader.start()
        assert ready.wait(30), "readers did not connect"
        batch = 100
        started = time.perf_counter()
        for offset in range(0, args.events, batch):
            items = [{"metric_id": metric.id, "value": v + 1} for v in range(offset, offset + batch)]
            hub.service.create_readings(items)
        published = time.perf_counter() - started
        finished = results.get(timeout=600)
        reader.join()
        elapsed = finished - started  # perf_counter is CLOCK_MONOTONIC: comparable across processes
        deliveries = args.clients * args.events
        print(
            f"fan-out: {args.events} events (batches of {batch}) to {args.clients} clients: "
            f"published in {published:.2f} s, all delivered in {elapsed:.2f} s "
            f"-> {deliveries / elapsed:,.0f} deliveries/s"
        )


if __name__ == "__main__":
    main()
