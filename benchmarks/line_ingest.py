"""Line protocol in: over the TCP listener with stream clients connected, and over HTTP in batches against
the JSON batch route (issue 23's figures).

    .venv/bin/python benchmarks/line_ingest.py [--lines 200000] [--clients 0,100] [--batch 5000] [--batches 9]

1. TCP: a hub on the memory store with `line_port`, for each of `--clients` that many SSE readers in another
   process, and one connection from a third process sending `--lines` sensor lines (`sensor,id=7 value=N
   <ns>`) as fast as the listener takes them. Prints lines/s until every line is stored (and the hub's CPU
   time per line, which a shared machine disturbs less than the wall clock), and until every client has
   received every reading.
2. HTTP: `--batches` bodies of `--batch` lines to `POST /api/v2/write`, against the same readings as JSON
   `{"readings": [{"metric_id": ..., "value": ...}, ...]}` to `POST /metrics/readings/batch`, one keep-alive
   httpx client, no stream clients. Prints readings/s for each.
Traffic stays on 127.0.0.1. Run by hand: timings depend on the machine.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import socket
import sys
import time

import httpx
from core import _reader_process

from metricstream.server.hub import Hub

T0_NS = 1_700_000_000_000_000_000


def sensor_lines(first: int, count: int) -> bytes:
    return b"".join(b"sensor,id=7 value=%d %d\n" % (n, T0_NS + n * 1000) for n in range(first, first + count))


def _send_lines(port: int, body: bytes, out: multiprocessing.Queue[float]) -> None:
    with socket.create_connection(("127.0.0.1", port)) as sock:
        started = time.perf_counter()
        sock.sendall(body)
        out.put(started)


def tcp(args: argparse.Namespace, clients: int) -> None:
    results: multiprocessing.Queue[float] = multiprocessing.Queue()
    # Room for every reading in a client's backlog: a reader process on a shared machine falls behind a
    # firehose, and a client more than client_buffer events behind is dropped as slow.
    with Hub(port=0, line_port=0, event_ttl=600, client_buffer=args.lines) as hub:
        assert hub.line_port is not None
        hub.service.create_metric("sensor", labels={"id": "7"})  # it exists: only readings are timed
        host, port = hub.url.removeprefix("http://").split(":")
        reader = None
        if clients:
            ready = multiprocessing.Event()
            reader = multiprocessing.Process(
                target=_reader_process, args=(host, int(port), clients, args.lines, ready, results)
            )
            reader.start()
            assert ready.wait(60), "readers did not connect"
        body = sensor_lines(1, args.lines)
        cpu_before = time.process_time()
        sender = multiprocessing.Process(target=_send_lines, args=(hub.line_port, body, results))
        sender.start()
        started = results.get(timeout=300)
        metric = hub.service.metric("sensor", labels={"id": "7"})
        # the last line's reading is the newest: stored once it is there
        while hub.service.list_readings(metric.id, limit=1, order="desc")[0].value < args.lines:
            time.sleep(0.01)
        stored = time.perf_counter() - started
        cpu = time.process_time() - cpu_before
        sender.join()
        delivery = ""
        if reader is not None:
            delivered = results.get(timeout=300) - started
            reader.join()
            delivery = (
                f", delivered to every client in {delivered:.2f} s ({args.lines / delivered:,.0f} lines/s)"
            )
    print(
        f"TCP line protocol, {args.lines:,} lines over one connection, {clients} stream clients: "
        f"stored in {stored:.2f} s ({args.lines / stored:,.0f} lines/s; the hub's CPU "
        f"{cpu / args.lines * 1e6:.1f} µs a line){delivery}"
    )


def http(args: argparse.Namespace) -> None:
    with (
        Hub(port=0, event_ttl=600) as hub,
        httpx.Client(base_url=hub.url) as client,
    ):
        metric = hub.service.create_metric("sensor", labels={"id": "7"})
        lines = [sensor_lines(1 + b * args.batch, args.batch) for b in range(args.batches)]
        started = time.perf_counter()
        for body in lines:
            answer = client.post("/api/v2/write", params={"bucket": "b"}, content=body)
            assert answer.status_code == 204, answer.text
        line_rate = args.batch * args.batches / (time.perf_counter() - started)
        bodies = [
            {
                "readings": [
                    {"metric_id": metric.id, "value": n}
                    for n in range(1 + b * args.batch, 1 + (b + 1) * args.batch)
                ]
            }
            for b in range(args.batches)
        ]
        started = time.perf_counter()
        for json_body in bodies:
            answer = client.post("/metrics/readings/batch", json=json_body)
            assert answer.status_code == 201, answer.text
        json_rate = args.batch * args.batches / (time.perf_counter() - started)
    print(
        f"HTTP, {args.batches} batches of {args.batch}: line protocol {line_rate:,.0f} readings/s, "
        f"JSON batch route {json_rate:,.0f} readings/s"
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--lines", type=int, default=200_000)
    parser.add_argument("--clients", default="0,100", help="stream clients of each TCP run, comma-separated")
    parser.add_argument("--batch", type=int, default=5000)
    parser.add_argument("--batches", type=int, default=9)
    args = parser.parse_args()
    print(f"machine: {os.cpu_count()} cores; python {sys.version.split()[0]}; load {os.getloadavg()[0]:.1f}")
    for clients in args.clients.split(","):
        tcp(args, int(clients))
    http(args)


if __name__ == "__main__":
    main()
