"""Figures for the core: ingest time through `hub.service` and HTTP, and fan-out deliveries/s.

    .venv/bin/python benchmarks/core.py [--clients 100] [--events 20000]

Prints one line per figure. Traffic stays on 127.0.0.1. The SSE readers run in a separate process
(raw asyncio sockets) so the reader does not compete with the server for this process's GIL.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import os
import time

import httpx

from metricstream import Hub

MARKER = b"event: metric_reading_created"


async def _read_all(host: str, port: int, clients: int, expected: int, ready: multiprocessing.Event) -> float:
    async def one() -> float:
        reader, writer = await asyncio.open_connection(host, port)
        writer.write(b"GET /events/watch HTTP/1.1\r\nHost: x\r\n\r\n")
        await writer.drain()
        seen, tail = 0, b""
        connected = False
        while seen < expected:
            data = await reader.read(1 << 18)
            if not data:
                raise RuntimeError("stream ended early")
            block = tail + data
            if not connected and b"data: connected" in block:
                connected = True
                counter.append(1)
                if len(counter) == clients:
                    ready.set()
            seen += block.count(MARKER)
            tail = block[-(len(MARKER) - 1) :]
            seen -= tail.count(MARKER)  # counted again with the next read
        writer.close()
        return time.perf_counter()

    counter: list[int] = []
    ends = await asyncio.gather(*(one() for _ in range(clients)))
    return max(ends)


def _reader_process(host: str, port: int, clients: int, expected: int, ready: multiprocessing.Event, out: multiprocessing.Queue) -> None:
    out.put(asyncio.run(_read_all(host, port, clients, expected, ready)))


def _post_readings(url: str, metric_id: str, count: int, out: multiprocessing.Queue) -> None:
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
    args = parser.parse_args()
    print(f"machine: {os.cpu_count()} cores; python {os.sys.version.split()[0]}")

    with Hub(port=0, event_ttl=600) as hub:
        metric = hub.service.create_metric("bench")
        started = time.perf_counter()
        for value in range(1, args.ingest + 1):
            hub.service.create_reading(metric.id, value)
        elapsed = time.perf_counter() - started
        print(f"hub.service.create_reading x{args.ingest}: {elapsed:.2f} s ({args.ingest / elapsed:,.0f}/s)")

        out: multiprocessing.Queue = multiprocessing.Queue()
        poster = multiprocessing.Process(target=_post_readings, args=(hub.url, metric.id, args.ingest, out))
        poster.start()
        elapsed = out.get(timeout=600)
        poster.join()
        print(f"POST /metrics/readings x{args.ingest} (httpx keep-alive client in another process): {elapsed:.2f} s ({args.ingest / elapsed:,.0f}/s)")

    with Hub(port=0, event_ttl=600, client_buffer=1_000_000) as hub:
        metric = hub.service.create_metric("fanout")
        host, port = hub.url.removeprefix("http://").split(":")
        ready = multiprocessing.Event()
        out: multiprocessing.Queue = multiprocessing.Queue()
        reader = multiprocessing.Process(target=_reader_process, args=(host, int(port), args.clients, args.events, ready, out))
        reader.start()
        assert ready.wait(30), "readers did not connect"
        batch = 100
        started = time.perf_counter()
        for offset in range(0, args.events, batch):
            hub.service.create_readings([{"metric_id": metric.id, "value": v + 1} for v in range(offset, offset + batch)])
        published = time.perf_counter() - started
        finished = out.get(timeout=600)
        reader.join()
        elapsed = finished - started
        deliveries = args.clients * args.events
        print(f"fan-out: {args.events} events to {args.clients} clients: publish {published:.2f} s, all delivered in {elapsed:.2f} s -> {deliveries / elapsed:,.0f} deliveries/s")


if __name__ == "__main__":
    main()
