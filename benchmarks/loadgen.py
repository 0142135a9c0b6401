"""The load generator of `benchmarks/run.py`: one scenario against one server, one JSON line of results.

    .venv/bin/python benchmarks/loadgen.py saturate --port P --clients 1000 [--seconds 5] [--server-pid PID]
    .venv/bin/python benchmarks/loadgen.py rate     --port P --clients 1000 --rate 20 [--seconds 10]
    .venv/bin/python benchmarks/loadgen.py idle     --port P --clients 10000
    .venv/bin/python benchmarks/loadgen.py sustain  --port P --clients 1000 [--rate 20] [--seconds 3]
    .venv/bin/python benchmarks/loadgen.py ingest   --port P --mode single|batch [--seconds 3]
    .venv/bin/python benchmarks/loadgen.py service  [--seconds 3]     # metricstream's Hub in this process
    .venv/bin/python benchmarks/loadgen.py probe    --port P          # does the server offer the batch route?
    .venv/bin/python benchmarks/loadgen.py event-memory [--events 100000]  # bytes the log holds per event

Raw asyncio, no HTTP library: SSE clients are `asyncio.Protocol`s that count a marker in each chunk (a
C-speed `bytes.count`, with the bytes either side of a read boundary checked so a split marker counts
once), and the publisher writes HTTP/1.1 by hand on keep-alive connections (reconnecting when the server
closes one, as hypercorn does after 1,000 requests). Publisher and clients share this process and its
clock: each reading's `value` is its sequence number (> 0) and the publisher keeps the time it sent each
one, so latency is receive time minus send time on one `perf_counter`, with nothing parsed but the number.

Only some clients ("probes", spread evenly over the connection order) parse values, for latency and for
the order check; every client counts. A run fails (exit 1) if any client lost an event, got events in
another order than the others, or was dropped. Server CPU and RSS come from /proc/<server-pid>; this
process's CPU from getrusage. Every wait is bounded in time; traffic goes to 127.0.0.1 only.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import re
import resource
import statistics
import sys
import time
from array import array
from collections.abc import Callable, Coroutine
from typing import Any

HOST = "127.0.0.1"
MARKER = b"event: metric_reading_created"
SPAN = len(MARKER) - 1  # bytes of a read kept to find a marker split across two reads
VALUE = re.compile(rb'"value":\s*(\d+)(?=[.,}])')  # whole: followed by its fraction or the next key
CONNECT_AT_ONCE = 200  # connections being opened at the same time
CONNECT_TIMEOUT = 120.0  # for all of them
DRAIN_TIMEOUT = 60.0  # for every client to receive everything published
WINDOW = 500  # saturation: events the publisher may be ahead of the slowest client
BATCH = 100  # saturation: readings per batch request, when batches are used
PUBLISHERS = 4  # saturation: concurrent publishing connections, so a server never waits for a request
INGEST_BATCH = 10_000
TICKS = os.sysconf("SC_CLK_TCK")


def log(message: str) -> None:
    print(f"    {message}", file=sys.stderr, flush=True)


# --- measuring processes ------------------------------------------------------------------------


def proc_cpu(pid: int) -> float:
    """CPU seconds (user + system) a process has used, from /proc/<pid>/stat."""
    with open(f"/proc/{pid}/stat", "rb") as file:
        fields = file.read().rsplit(b")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS  # utime, stime: fields 14 and 15 of the line


def proc_rss(pid: int) -> int:
    """Resident set size in bytes, from /proc/<pid>/status."""
    with open(f"/proc/{pid}/status", "rb") as file:
        for line in file:
            if line.startswith(b"VmRSS:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError(f"no VmRSS for pid {pid}")


def machine_busy() -> float:
    """CPU seconds all cores have spent busy since boot, from /proc/stat."""
    with open("/proc/stat", "rb") as file:
        fields = [int(field) for field in file.readline().split()[1:9]]
    user, nice, system, _idle, _iowait, irq, softirq, steal = fields
    return (user + nice + system + irq + softirq + steal) / TICKS


def own_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


class Meter:
    """CPU % (of one core) of the server, of this process and of everything else, over a window."""

    def __init__(self, server_pid: int | None) -> None:
        self.server_pid = server_pid
        self.started = time.perf_counter()
        self.server0 = proc_cpu(server_pid) if server_pid else 0.0
        self.own0 = own_cpu()
        self.machine0 = machine_busy()

    def read(self) -> dict[str, float]:
        elapsed = time.perf_counter() - self.started
        own = own_cpu() - self.own0
        server = proc_cpu(self.server_pid) - self.server0 if self.server_pid else 0.0
        result = {
            "loadgen_cpu": 100 * own / elapsed,
            # other processes on the machine: a benchmark wants this near 0
            "background_cpu": max(0.0, 100 * (machine_busy() - self.machine0 - own - server) / elapsed),
        }
        if self.server_pid:
            result["server_cpu"] = 100 * server / elapsed
            result["server_rss_mb"] = proc_rss(self.server_pid) / 2**20
        return result


def raise_fd_limit() -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != hard:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
        except (ValueError, OSError):  # an unlimited hard limit can't be a soft one
            resource.setrlimit(resource.RLIMIT_NOFILE, (1 << 20, hard))


# --- HTTP requests ------------------------------------------------------------------------------


class Http:
    """One keep-alive HTTP/1.1 connection for requests, reopened when the server closes it."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.reconnects = 0
        self._conn: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None = None

    def close(self) -> None:
        if self._conn is not None:
            self._conn[1].close()
            self._conn = None

    async def request(self, method: str, path: str, body: bytes = b"") -> tuple[int, bytes]:
        head = (
            f"{method} {path} HTTP/1.1\r\nHost: {HOST}:{self.port}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
        ).encode()
        for attempt in range(2):
            if self._conn is None:
                self._conn = await asyncio.open_connection(HOST, self.port, limit=1 << 20)
                self.reconnects += 1
            reader, writer = self._conn
            writer.write(head + body)
            try:
                response_head = await reader.readuntil(b"\r\n\r\n")
            except (asyncio.IncompleteReadError, ConnectionError) as error:
                self.close()
                partial = getattr(error, "partial", b"")
                if attempt == 0 and not partial:  # closed while idle: the request was never read
                    continue
                raise
            return await self._finish(reader, response_head)
        raise AssertionError("unreachable")

    async def _finish(self, reader: asyncio.StreamReader, head: bytes) -> tuple[int, bytes]:
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split()[1])
        headers = {}
        for line in lines[1:]:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip().lower()
        if "content-length" in headers:
            body = await reader.readexactly(int(headers["content-length"]))
        elif headers.get("transfer-encoding") == "chunked":
            parts = []
            while size := int((await reader.readuntil(b"\r\n")).split(b";")[0], 16):
                parts.append(await reader.readexactly(size))
                await reader.readexactly(2)
            await reader.readuntil(b"\r\n")
            body = b"".join(parts)
        else:
            raise RuntimeError(f"response without a length: {head!r}")
        if headers.get("connection") == "close":  # hypercorn after 1,000 requests, for one
            self.close()
        return status, body

    async def post(self, path: str, body: bytes, expect: int = 201) -> bytes:
        status, answer = await self.request("POST", path, body)
        if status != expect:
            raise RuntimeError(f"POST {path} -> {status}: {answer[:300]!r}")
        return answer


async def create_metric(http: Http, name: str) -> str:
    answer = await http.post("/metrics", json.dumps({"name": name}).encode())
    return str(json.loads(answer)["id"])


async def retained_events(port: int) -> int | None:
    """The events the server says it retains (metricstream's /healthz), or None if it does not say."""
    http = Http(port)
    try:
        status, body = await http.request("GET", "/healthz")
    finally:
        http.close()
    events = json.loads(body).get("events") if status == 200 else None
    return int(events) if isinstance(events, int) else None


async def connected_clients(http: Http) -> int:
    status, body = await http.request("GET", "/healthz")
    return int(json.loads(body)["clients"]) if status == 200 else -1


def reading(metric_id: str, value: int) -> bytes:
    return b'{"metric_id":"%s","value":%d}' % (metric_id.encode(), value)


def batch_body(metric_id: str, first: int, count: int) -> bytes:
    items = b",".join(reading(metric_id, value) for value in range(first, first + count))
    return b'{"readings":[' + items + b"]}"


async def offers_batch(http: Http, metric_id: str) -> bool:
    """Whether `POST /metrics/readings/batch` exists (an unknown route answers 404 or 405)."""
    status, _ = await http.request("POST", "/metrics/readings/batch", b'{"readings":[]}')
    return status not in (404, 405)


# --- SSE clients --------------------------------------------------------------------------------


class Fanout:
    """What all clients of a run share: totals, the send times, the measuring window."""

    def __init__(self) -> None:
        self.total = 0  # reading events received, all clients together
        self.sent = array("d", [0.0])  # send time of reading `value`, by value (index 0 unused)
        self.window = (float("inf"), float("inf"))  # latency counts events sent in [start, end)
        self.latencies = array("d")
        self.dropped = 0  # clients told `disconnected` or cut off


class Stream(asyncio.Protocol):
    """One `GET /events/watch` connection: counts reading events; a probe also times each one."""

    def __init__(self, fanout: Fanout, probe: bool) -> None:
        self.fanout = fanout
        self.probe = probe
        self.count = 0
        self.order = array("q")  # values in arrival order (probes only)
        self.connected = asyncio.get_running_loop().create_future()
        self.transport: asyncio.Transport | None = None
        self._head = b""
        self._tail = b""
        self._rest = b""  # a probe's bytes after the last value it parsed
        self.closed = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        transport.write(
            f"GET /events/watch HTTP/1.1\r\nHost: {HOST}\r\nAccept: text/event-stream\r\n\r\n".encode()
        )

    def data_received(self, data: bytes) -> None:
        if not self.connected.done():
            self._head += data
            at = self._head.find(b"data: connected")
            if at < 0:
                started = len(self._head) >= 12
                if len(self._head) > 65536 or (started and not self._head.startswith(b"HTTP/1.1 200")):
                    self.connected.set_exception(RuntimeError(f"bad stream start: {self._head[:200]!r}"))
                return
            self.connected.set_result(None)
            data, self._head = self._head[at + 15 :], b""
        found = data.count(MARKER)
        if self._tail:
            found += (self._tail + data[:SPAN]).count(MARKER)
        self._tail = data[-SPAN:] if len(data) >= SPAN else (self._tail + data)[-SPAN:]
        if found:
            self.count += found
            self.fanout.total += found
        if self.probe:
            self._time(data)
        if b"data: disconnected" in data:
            self.fanout.dropped += 1

    def _time(self, data: bytes) -> None:
        now = time.perf_counter()
        fanout = self.fanout
        start, end = fanout.window
        sent = fanout.sent
        block = self._rest + data
        last = 0
        for match in VALUE.finditer(block):
            value = int(match.group(1))
            self.order.append(value)
            when = sent[value]
            if start <= when < end:
                fanout.latencies.append(now - when)
            last = match.end()
        self._rest = block[last:][-65536:]

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if not self.connected.done():
            self.connected.set_exception(ConnectionError(f"closed before connected: {exc}"))

    def close(self) -> None:
        if self.transport is not None:
            self.transport.abort()


async def open_streams(port: int, count: int, probes: int, fanout: Fanout) -> list[Stream]:
    """Open `count` streams, at most CONNECT_AT_ONCE at a time, each until it has `data: connected`."""
    loop = asyncio.get_running_loop()
    every = max(1, count // probes) if probes else 0
    streams = [Stream(fanout, probe=bool(every) and i % every == every // 2) for i in range(count)]
    gate = asyncio.Semaphore(CONNECT_AT_ONCE)

    async def one(stream: Stream) -> None:
        async with gate:
            await loop.create_connection(lambda: stream, HOST, port)
            await stream.connected

    started = time.perf_counter()
    async with asyncio.timeout(CONNECT_TIMEOUT):
        await asyncio.gather(*(one(stream) for stream in streams))
    log(f"{count} streams connected in {time.perf_counter() - started:.1f} s")
    return streams


async def drain(streams: list[Stream], published: int) -> None:
    """Wait until every client has every event, or DRAIN_TIMEOUT passes."""
    deadline = time.perf_counter() + DRAIN_TIMEOUT
    while time.perf_counter() < deadline:
        if all(stream.count >= published or stream.closed for stream in streams):
            return
        await asyncio.sleep(0.02)


def check(streams: list[Stream], fanout: Fanout, published: int, in_order: bool) -> list[str]:
    """Loss-free and ordered: every client got every event; every probe saw the same order."""
    problems = []
    short = [s.count for s in streams if s.count != published]
    if short:
        problems.append(
            f"{len(short)} of {len(streams)} clients got {min(short)}..{max(short)} of {published}"
        )
    if fanout.dropped or any(s.closed for s in streams):
        problems.append(
            f"{sum(s.closed for s in streams)} streams closed, {fanout.dropped} told disconnected"
        )
    orders = [s.order for s in streams if s.probe]
    if orders:
        reference = orders[0]
        if any(order != reference for order in orders):
            problems.append("probes saw events in different orders")
        if len(set(reference)) != len(reference) or len(reference) != published:
            problems.append(
                f"a probe saw {len(reference)} values, {len(set(reference))} distinct, of {published}"
            )
        if in_order and list(reference) != sorted(reference):
            problems.append("events arrived out of publishing order")
    return problems


def percentiles(samples: array[float]) -> dict[str, float]:
    if not samples:
        return {"p50_ms": float("nan"), "p99_ms": float("nan")}
    ordered = sorted(samples)
    return {
        "p50_ms": 1000 * statistics.median(ordered),
        "p99_ms": 1000 * ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))],
        "samples": len(ordered),
    }


# --- publishers ---------------------------------------------------------------------------------


class Publisher:
    """Posts readings numbered 1, 2, ... and notes when each was sent."""

    def __init__(self, port: int, metric_id: str, fanout: Fanout) -> None:
        self.port = port
        self.metric_id = metric_id
        self.fanout = fanout
        self.next_value = 1
        self.confirmed = 0
        self.requests = 0
        self.stop = False
        self.waits = 0

    def _claim(self, count: int) -> int:
        first = self.next_value
        self.next_value += count
        now = time.perf_counter()
        self.fanout.sent.extend([now] * count)
        return first

    @property
    def published(self) -> int:
        return self.next_value - 1

    async def post_single(self, http: Http) -> None:
        value = self._claim(1)
        await http.post("/metrics/readings", reading(self.metric_id, value))
        self.confirmed += 1
        self.requests += 1

    async def post_batch(self, http: Http, count: int) -> None:
        first = self._claim(count)
        await http.post("/metrics/readings/batch", batch_body(self.metric_id, first, count))
        self.confirmed += count
        self.requests += 1

    async def saturate(
        self, streams: list[Stream], batch: bool, deadline: float, window: int = WINDOW, size: int = BATCH
    ) -> None:
        """As fast as the clients keep up: never more than `window` events ahead of the slowest one."""
        size = size if batch else 1
        slowest = 0  # a lower bound of the slowest client's count: counts only grow

        async def worker() -> None:
            nonlocal slowest
            http = Http(self.port)
            try:
                while not self.stop and time.perf_counter() < deadline:
                    if self.published + size - slowest > window:
                        slowest = min(s.count for s in streams)
                        if self.published + size - slowest > window:
                            self.waits += 1
                            await asyncio.sleep(0.001)
                            continue
                    await (self.post_batch(http, size) if batch else self.post_single(http))
            finally:
                http.close()

        await asyncio.gather(*(worker() for _ in range(PUBLISHERS)))


# --- scenarios ----------------------------------------------------------------------------------


async def saturate(args: argparse.Namespace) -> dict[str, Any]:
    fanout = Fanout()
    http = Http(args.port)
    metric_id = await create_metric(http, "saturation")
    batch = args.publish == "batch" or (args.publish == "auto" and await offers_batch(http, metric_id))
    http.close()
    streams = await open_streams(args.port, args.clients, args.probes, fanout)
    publisher = Publisher(args.port, metric_id, fanout)
    hard_stop = time.perf_counter() + args.warmup + args.seconds + 30
    # Latency: every event published until the window closes, warm-up included. A stack whose slowest
    # client needs longer than the window to catch up by one batch publishes nothing inside it.
    fanout.window = (time.perf_counter(), float("inf"))
    task = asyncio.create_task(publisher.saturate(streams, batch, hard_stop, args.window, args.batch))
    await asyncio.sleep(args.warmup)
    start, total0, meter = time.perf_counter(), fanout.total, Meter(args.server_pid)
    await asyncio.sleep(args.seconds)
    end, total1, usage = time.perf_counter(), fanout.total, meter.read()
    fanout.window = (fanout.window[0], end)
    publisher.stop = True
    async with asyncio.timeout(30):
        await task
    await drain(streams, publisher.published)
    problems = check(streams, fanout, publisher.published, in_order=False)  # 4 publishers: any one order
    for stream in streams:
        stream.close()
    deliveries = (total1 - total0) / (end - start)
    retained = await retained_events(args.port)
    log(
        f"{PUBLISHERS} publishers of {f'batches of {args.batch}' if batch else 'single readings'}: "
        f"{publisher.published} events in {publisher.requests} requests, {deliveries:,.0f} deliveries/s, "
        f"window full {publisher.waits} times"
    )
    return {
        "deliveries_per_s": deliveries,
        "events_per_s": deliveries / args.clients,
        "retained_events": retained,
        "publish": "batch" if batch else "single",
        **percentiles(fanout.latencies),
        **usage,
        "problems": problems,
    }


async def fixed_rate(args: argparse.Namespace) -> dict[str, Any]:
    fanout = Fanout()
    http = Http(args.port)
    metric_id = await create_metric(http, "rate")
    streams = await open_streams(args.port, args.clients, args.clients, fanout)  # every client a probe
    publisher = Publisher(args.port, metric_id, fanout)
    total = int((args.warmup + args.seconds) * args.rate)
    started = time.perf_counter()
    meter: Meter | None = None
    late = 0
    for number in range(total):
        due = started + number / args.rate
        if number == int(args.warmup * args.rate):
            fanout.window = (due, float("inf"))
            meter = Meter(args.server_pid)
        delay = due - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        else:
            late += 1
        await publisher.post_single(http)
    assert meter is not None
    usage = meter.read()
    fanout.window = (fanout.window[0], time.perf_counter())
    http.close()
    await drain(streams, publisher.published)
    problems = check(streams, fanout, publisher.published, in_order=True)
    for stream in streams:
        stream.close()
    achieved = total / (time.perf_counter() - started)
    log(f"{total} events at {args.rate}/s ({late} posted late)")
    return {
        "rate": achieved,
        "late_posts": late,
        **percentiles(fanout.latencies),
        **usage,
        "problems": problems,
    }


SUSTAIN_P99_MS = 100.0  # sustain: the latency a step must stay within
SUSTAIN_KEPT = 0.95  # sustain: share of the asked rate the publisher must achieve
SUSTAIN_CONNECTIONS = 16  # sustain: posting connections, each with one request in flight at most


async def sustain(args: argparse.Namespace) -> dict[str, Any]:
    """The highest event rate to `--clients` at which every client gets every event, all in one order,
    with a p99 within SUSTAIN_P99_MS: the rate doubles from `--rate` until a step fails, then is bisected
    `--bisect` times. Posts go out on schedule (open loop, on up to SUSTAIN_CONNECTIONS connections), as
    many sensors would post, not each after the last one's answer. The same streams serve every step;
    each step is checked on its own."""
    fanout = Fanout()
    setup = Http(args.port)
    metric_id = await create_metric(setup, "sustain")
    setup.close()
    streams = await open_streams(args.port, args.clients, args.probes, fanout)
    publisher = Publisher(args.port, metric_id, fanout)
    free: asyncio.Queue[Http] = asyncio.Queue()
    for _ in range(SUSTAIN_CONNECTIONS):
        free.put_nowait(Http(args.port))
    steps: list[dict[str, Any]] = []

    async def post() -> None:
        http = await free.get()
        try:
            await publisher.post_single(http)
        finally:
            free.put_nowait(http)

    async def step(rate: float) -> bool:
        counts = [stream.count for stream in streams]
        orders = [len(stream.order) for stream in streams]
        fanout.latencies = array("d")
        first, total = publisher.published, int(args.seconds * rate)
        meter = Meter(args.server_pid)
        started = time.perf_counter()
        fanout.window = (started, float("inf"))
        posts = []
        for number in range(total):
            delay = started + number / rate - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            if free.empty():  # every connection waits for an answer: the server is behind
                await asyncio.sleep(0)
            posts.append(asyncio.ensure_future(post()))
        await asyncio.gather(*posts)
        achieved = total / (time.perf_counter() - started)
        usage = meter.read()
        fanout.window = (started, time.perf_counter())
        await drain(streams, publisher.published)
        short = sum(1 for s, c in zip(streams, counts, strict=True) if s.count - c != total)
        seen = [list(s.order[n:]) for s, n in zip(streams, orders, strict=True) if s.probe]
        expected = set(range(first + 1, first + total + 1))
        one_order = all(order == seen[0] for order in seen) and set(seen[0]) == expected == set(
            seen[0][:total]
        )
        result = {
            "rate": rate,
            "achieved": achieved,
            **percentiles(fanout.latencies),
            "short": short,
            **usage,
        }
        ok = (
            not short
            and one_order
            and not fanout.dropped
            and not any(s.closed for s in streams)
            and achieved >= SUSTAIN_KEPT * rate
            and result["p99_ms"] <= SUSTAIN_P99_MS
        )
        steps.append({**result, "ok": ok})
        log(
            f"{rate:,.0f}/s asked, {achieved:,.0f}/s posted, p99 {result['p99_ms']:.1f} ms, "
            f"{short} short, one order: {one_order}, CPU server {usage.get('server_cpu', math.nan):.0f}% "
            f"loadgen {usage['loadgen_cpu']:.0f}%: {'pass' if ok else 'fail'}"
        )
        return ok

    passed, failed, rate = 0.0, 0.0, args.rate
    while rate <= args.max_rate and not failed:
        if await step(rate):
            passed, rate = rate, rate * 2
        else:
            failed = rate
    for _ in range(args.bisect if failed else 0):
        if fanout.dropped or any(s.closed for s in streams):
            break  # a step that lost clients leaves none to measure the next one with
        rate = (passed + failed) / 2
        if await step(rate):
            passed = rate
        else:
            failed = rate
    while not free.empty():
        free.get_nowait().close()
    for stream in streams:
        stream.close()
    return {"sustained_rate": passed, "steps": steps, "problems": []}


async def idle(args: argparse.Namespace) -> dict[str, Any]:
    assert args.server_pid, "idle needs --server-pid"
    fanout = Fanout()
    http = Http(args.port)
    warm = await open_streams(args.port, 20, 0, fanout)  # first-connection costs (imports, caches)
    await asyncio.sleep(0.5)
    for stream in warm:
        stream.close()
    # Let the server notice they left (metricstream's default client limit is exactly 10,000); a
    # server that only notices on its next write (the aiohttp baseline) keeps them, which costs it.
    for _ in range(30):
        await asyncio.sleep(0.1)
        if await connected_clients(http) == 0:
            break
    await asyncio.sleep(0.5)
    before = proc_rss(args.server_pid)
    streams = await open_streams(args.port, args.clients, 0, fanout)
    await asyncio.sleep(args.settle)
    after = proc_rss(args.server_pid)
    problems = [] if not any(s.closed for s in streams) else ["streams closed while idle"]
    counted = await connected_clients(http)
    http.close()
    if counted < args.clients:
        problems.append(f"the server counts {counted} clients, not {args.clients}")
    for stream in streams:
        stream.close()
    per_connection = (after - before) / args.clients
    log(f"RSS {before / 2**20:.1f} MB -> {after / 2**20:.1f} MB: {per_connection / 1024:.1f} KB/connection")
    return {
        "kb_per_conn": per_connection / 1024,
        "rss_before_mb": before / 2**20,
        "rss_with_mb": after / 2**20,
        "problems": problems,
    }


async def ingest(args: argparse.Namespace) -> dict[str, Any]:
    http = Http(args.port)
    metric_id = await create_metric(http, "ingest")
    if args.mode == "batch" and not await offers_batch(http, metric_id):
        http.close()
        log("no POST /metrics/readings/batch on this server")
        return {"readings_per_s": None, "problems": []}
    body = batch_body(metric_id, 1, INGEST_BATCH)
    readings = 0
    meter = Meter(args.server_pid)
    deadline = meter.started + args.seconds
    for value in range(1, 10_000_000):
        if args.mode == "batch":
            await http.post("/metrics/readings/batch", body)
            readings += INGEST_BATCH
        else:
            await http.post("/metrics/readings", reading(metric_id, value))
            readings += 1
        if time.perf_counter() >= deadline:
            break
    elapsed = time.perf_counter() - meter.started
    usage = meter.read()
    http.close()
    log(f"{readings} readings in {elapsed:.2f} s over {http.reconnects} connection(s)")
    return {"readings_per_s": readings / elapsed, **usage, "problems": []}


def service(args: argparse.Namespace) -> dict[str, Any]:
    """`hub.service.create_readings` in this process: the HTTP layer left out."""
    from metricstream.server.hub import Hub

    with Hub(port=0) as hub:
        metric = hub.service.create_metric("ingest")
        items = [{"metric_id": metric.id, "value": value} for value in range(1, INGEST_BATCH + 1)]
        hub.service.create_readings(items[:100])  # warm
        readings = 0
        meter = Meter(None)
        deadline = meter.started + args.seconds
        while True:
            readings += len(hub.service.create_readings(items))
            if time.perf_counter() >= deadline:
                break
        elapsed = time.perf_counter() - meter.started
        usage = meter.read()
    log(f"{readings} readings in {elapsed:.2f} s in batches of {INGEST_BATCH}")
    return {
        "readings_per_s": readings / elapsed,
        "server_cpu": usage["loadgen_cpu"],  # the server is this process
        "background_cpu": usage["background_cpu"],
        "problems": [],
    }


def event_memory(args: argparse.Namespace) -> dict[str, Any]:
    """Python memory the retained log holds per reading event, as the service builds them (tracemalloc):
    the event, its frame and id, and the log's index entry. The reading itself is the store's data."""
    import gc
    import tracemalloc
    from datetime import UTC, datetime

    from metricstream.domain.values import MetricReading
    from metricstream.ids import new_id, new_ids
    from metricstream.stream.log import Event, EventLog
    from metricstream.wire import READING_CREATED

    count, metric_id, created = args.events, new_id(), time.time()
    moment = datetime.now(UTC)
    reading_ids, event_ids = new_ids(count), new_ids(count)
    readings = [MetricReading(reading_ids[i], metric_id, float(i + 1), moment) for i in range(count)]
    log_ = EventLog(3600)
    gc.collect()
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    for start in range(0, count, INGEST_BATCH):  # as write_readings publishes: a batch at a time
        batch = range(start, min(start + INGEST_BATCH, count))
        log_.extend([Event.create(READING_CREATED, readings[i], created, event_ids[i]) for i in batch])
    del event_ids  # the log holds each id through its event
    gc.collect()
    held = tracemalloc.get_traced_memory()[0] - before
    tracemalloc.stop()
    body = statistics.fmean(len(event.body) for event in log_.between(log_.base, log_.head))
    per_event = held / count
    log(
        f"{count} events: {per_event:.0f} B each, body {body:.0f} B, beyond the body {per_event - body:.0f} B"
    )
    return {"bytes_per_event": per_event, "body_bytes": body, "beyond_body": per_event - body, "problems": []}


async def probe(args: argparse.Namespace) -> dict[str, Any]:
    http = Http(args.port)
    try:
        return {"batch": await offers_batch(http, await create_metric(http, "probe")), "problems": []}
    finally:
        http.close()


SCENARIOS: dict[str, Callable[[argparse.Namespace], Coroutine[Any, Any, dict[str, Any]]]] = {
    "saturate": saturate,
    "rate": fixed_rate,
    "idle": idle,
    "sustain": sustain,
    "ingest": ingest,
    "probe": probe,
}


def post_cost(args: argparse.Namespace) -> dict[str, Any]:
    """`post_cost.py`'s figures: a single POST through metricstream's ASGI app and the bare app's, in
    this process, no sockets."""
    import post_cost as measured

    ours, floor, _ = asyncio.run(measured.costs(posts=5000, repeats=7))
    reference = measured.reference_us()
    log(
        f"own {ours.best:.1f} µs per POST, the bare app {floor.best:.1f} µs; "
        f"sum(range(100)) {reference:.2f} µs"
    )
    return {"own_us": ours.best, "floor_us": floor.best, "reference_us": reference, "problems": []}


IN_PROCESS: dict[str, Callable[[argparse.Namespace], dict[str, Any]]] = {
    "service": service,
    "event-memory": event_memory,
    "post-cost": post_cost,
}


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("scenario", choices=[*SCENARIOS, *IN_PROCESS])
    parser.add_argument("--port", type=int, default=8089)
    parser.add_argument("--server-pid", type=int, default=None, help="measure this process's CPU and RSS")
    parser.add_argument("--clients", type=int, default=100)
    parser.add_argument("--probes", type=int, default=10, help="saturate: clients that time every event")
    parser.add_argument("--seconds", type=float, default=5.0, help="length of the measured window")
    parser.add_argument("--warmup", type=float, default=1.0, help="seconds before the window opens")
    parser.add_argument("--settle", type=float, default=2.0, help="idle: seconds before reading RSS")
    parser.add_argument("--bisect", type=int, default=3, help="sustain: halvings after the first failure")
    parser.add_argument("--max-rate", type=float, default=20_000, help="sustain: the highest rate tried")
    parser.add_argument("--events", type=int, default=100_000, help="event-memory: events retained")
    parser.add_argument("--rate", type=float, default=20.0, help="rate: events per second")
    parser.add_argument("--mode", choices=["single", "batch"], default="single", help="ingest")
    parser.add_argument("--window", type=int, default=WINDOW, help="saturate: most events ahead of a client")
    parser.add_argument("--batch", type=int, default=BATCH, help="saturate: readings per batch request")
    parser.add_argument("--publish", choices=["auto", "single", "batch"], default="auto", help="saturate")
    args = parser.parse_args()
    raise_fd_limit()
    if args.scenario in IN_PROCESS:
        result = IN_PROCESS[args.scenario](args)
    else:
        result = asyncio.run(SCENARIOS[args.scenario](args))
    print(json.dumps(result), flush=True)
    if result["problems"]:
        log("PROBLEMS: " + "; ".join(result["problems"]))
        sys.exit(1)


if __name__ == "__main__":
    main()
