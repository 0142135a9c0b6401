"""Memory over a quiet day: idle SSE clients, heartbeats only, no publish, in simulated time.

    .venv/bin/python benchmarks/quiet_day.py [--clients 1000] [--hours 24] [--heartbeat 15]

A Hub with a `ManualClock` runs in this process; the clients hold their streams from another process
(raw asyncio sockets, loopback only) and report when every one of them has had the next `: ping`. The
clock then moves on by one heartbeat: a day of heartbeats takes minutes, not a day. Prints, per simulated
hour, the server process's RSS and the Python memory allocated since the clients settled (tracemalloc),
which stays flat when nothing leaks.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import sys
import time
import tracemalloc
from multiprocessing.connection import Connection

from metricstream.clock import ManualClock
from metricstream.server.hub import Hub

PING = b": ping\n"


def rss_mb() -> float:
    with open("/proc/self/status", "rb") as status:
        for line in status:
            if line.startswith(b"VmRSS:"):
                return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS")


class Stream(asyncio.Protocol):
    def __init__(self, port: int, tally: Tally) -> None:
        self.request = f"GET /events/watch HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\r\n".encode()
        self.tally = tally
        self.pings = 0
        self.tail = b""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        transport.write(self.request)

    def data_received(self, data: bytes) -> None:
        block = self.tail + data
        new = block.count(PING) - self.tail.count(PING)
        self.tail = block[-(len(PING) - 1) :]
        if b"data: connected" in block and not self.tally.opened.done():
            self.tally.connected += 1
            if self.tally.connected == self.tally.clients:
                self.tally.opened.set_result(None)
        for _ in range(new):
            self.pings += 1
            self.tally.pinged(self.pings)

    def connection_lost(self, exc: Exception | None) -> None:
        self.tally.lost += 1


class Tally:
    def __init__(self, clients: int, pipe: Connection) -> None:
        self.clients = clients
        self.pipe = pipe
        self.connected = 0
        self.lost = 0
        self.opened: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.reached: dict[int, int] = {}

    def pinged(self, count: int) -> None:
        self.reached[count] = self.reached.get(count, 0) + 1
        if self.reached[count] == self.clients:
            del self.reached[count]
            self.pipe.send(count)


async def hold(port: int, clients: int, pipe: Connection) -> None:
    loop = asyncio.get_running_loop()
    tally = Tally(clients, pipe)
    for _ in range(clients):
        await loop.create_connection(lambda: Stream(port, tally), "127.0.0.1", port)
    await tally.opened
    pipe.send("ready")
    await loop.run_in_executor(None, pipe.recv)  # "done"
    if tally.lost:
        raise RuntimeError(f"{tally.lost} streams ended during the day")


def clients_process(port: int, clients: int, pipe: Connection) -> None:
    asyncio.run(hold(port, clients, pipe))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clients", type=int, default=1000)
    parser.add_argument("--hours", type=float, default=24.0)
    parser.add_argument("--heartbeat", type=float, default=15.0)
    args = parser.parse_args()
    clock = ManualClock()
    beats_per_hour = round(3600 / args.heartbeat)
    started = time.perf_counter()
    with Hub(port=0, clock=clock, heartbeat=args.heartbeat, log_level="warning") as hub:
        baseline = rss_mb()
        broadcaster = hub.app.broadcaster
        port = int(hub.url.rsplit(":", 1)[1])
        here, there = multiprocessing.Pipe()
        reader = multiprocessing.get_context("spawn").Process(
            target=clients_process, args=(port, args.clients, there)
        )
        reader.start()
        if here.recv() != "ready":
            return 1
        print(f"{args.clients} idle clients, heartbeat {args.heartbeat:g} s, {args.hours:g} simulated hours")
        print(f"server RSS before clients {baseline:.1f} MB")
        tracemalloc.start()
        settled_rss = rss_mb()
        print(f"{'hour':>5} {'RSS MB':>8} {'RSS/client KB':>14} {'allocated since hour 0':>23} {'pings':>9}")
        beat = 0
        for hour in range(int(args.hours) + 1):
            traced = tracemalloc.get_traced_memory()[0]
            rss = rss_mb()
            per_client = (rss - baseline) * 1024 / args.clients
            pings = beat * args.clients
            print(f"{hour:>5} {rss:>8.1f} {per_client:>14.1f} {traced / 1024:>20.1f} KB {pings:>9}")
            if hour == int(args.hours):
                break
            for _ in range(beats_per_hour):
                # Every sender idle first: a write that has reached the peer but not yet returned would
                # see the whole jump as its own duration (in real time no write spans a heartbeat).
                while broadcaster.statistics().waiting < args.clients:
                    time.sleep(0.0005)
                clock.advance(args.heartbeat)
                beat += 1
                if here.recv() != beat:
                    raise RuntimeError("pings arrived out of step")
        stats = broadcaster.statistics()
        end = f"{stats.clients} clients, {stats.waiting} waiting, {stats.retained} events"
        print(f"broadcaster at the end: {end}")
        elapsed = time.perf_counter() - started
        print(f"RSS growth over the day: {rss_mb() - settled_rss:+.1f} MB; {elapsed:.0f} s")
        here.send("done")
        reader.join(60)
    return 0 if stats.waiting <= stats.clients else 1


if __name__ == "__main__":
    sys.exit(main())
