"""10,000 concurrent SSE clients on one server: all held, the next one evicts the oldest (which is told),
and one event reaches every client. Prints the time that takes and the server's RSS per client.

The server is `metricstream serve` in a subprocess, so its RSS (from /proc) is its own and each process
needs only ~10,000 descriptors (this machine's hard limit may be 20,000, under what one process holding
both ends would need). The clients are `asyncio.Protocol`s on raw non-blocking sockets in this process,
on one event loop: no threads, no HTTP library, only a substring search per read. Loopback only.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import resource
import select
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterator
from typing import IO

import httpx
import pytest

pytestmark = pytest.mark.slow  # ten thousand clients

CLIENTS = 10_000
FD_HEADROOM = 200  # descriptors beyond one per client: the listener, pipes, httpx, pytest
CONNECTING_AT_ONCE = 256  # connections opened but not yet `connected`: stays under the listen backlog
STEP_TIMEOUT = 40.0  # seconds any one phase may take at most (the whole test runs in ~20 s)
HOST = "127.0.0.1"

USER_SOFT_LIMIT = 1024  # a login shell's usual `ulimit -Sn`: the server must raise its own


def as_a_user_starts_it(soft: int = USER_SOFT_LIMIT, hard: int | None = None) -> Callable[[], None]:
    """A preexec_fn: the child starts with these descriptor limits, as from a user's shell (`ulimit -n`)."""

    def limit() -> None:
        current_hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, current_hard if hard is None else hard))

    return limit


CONNECTED = b"data: connected\n"
DISCONNECTED = b"data: disconnected\n"
READING = b"event: metric_reading_created\n"
END = b"\r\n0\r\n\r\n"  # the last chunk of a chunked response (SSE data never holds a CR)
KEEP = max(len(CONNECTED), len(DISCONNECTED), len(READING), len(END)) - 1  # a marker split over reads


def rss(pid: int) -> int:
    """Resident set size of a process in bytes, from /proc/<pid>/status."""
    with open(f"/proc/{pid}/status", "rb") as status:
        for line in status:
            if line.startswith(b"VmRSS:"):
                return int(line.split()[1]) * 1024
    raise AssertionError(f"no VmRSS for pid {pid}")


class Tally:
    """Counts over every stream (`reading`, `lost`), and waits for one to reach a target."""

    def __init__(self) -> None:
        self.counts: Counter[str] = Counter()
        self._targets: dict[str, tuple[int, asyncio.Event]] = {}

    def add(self, what: str) -> None:
        self.counts[what] += 1
        target = self._targets.get(what)
        if target is not None and self.counts[what] >= target[0]:
            target[1].set()

    async def reach(self, what: str, count: int) -> None:
        reached = asyncio.Event()
        self._targets[what] = (count, reached)
        if self.counts[what] >= count:
            return
        try:
            async with asyncio.timeout(STEP_TIMEOUT):
                await reached.wait()
        except TimeoutError:
            raise AssertionError(f"{what}: {self.counts[what]} of {count} clients") from None


class Stream(asyncio.Protocol):
    """One raw SSE client: notes when its stream opens, gets the reading, is told `disconnected`, ends."""

    def __init__(self, port: int, tally: Tally) -> None:
        self.request = f"GET /events/watch HTTP/1.1\r\nHost: {HOST}:{port}\r\n\r\n".encode()
        self.tally = tally
        self.transport: asyncio.Transport | None = None
        self.opened: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.ended: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.status_ok: bool | None = None
        self.reading_at: float | None = None  # perf_counter when the reading arrived
        self.disconnected = False
        self.lost = False
        self._tail = b""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        transport.write(self.request)

    def data_received(self, data: bytes) -> None:
        now = time.perf_counter()
        if self.status_ok is None:
            self.status_ok = data.startswith(b"HTTP/1.1 200 ")
        seen = self._tail + data
        if not self.opened.done() and CONNECTED in seen:
            self.opened.set_result(None)
        if self.reading_at is None and READING in seen:
            self.reading_at = now
            self.tally.add("reading")
        if not self.disconnected and DISCONNECTED in seen:
            self.disconnected = True
        if not self.ended.done() and END in seen:
            self.ended.set_result(None)
        self._tail = seen[-KEEP:]

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost = True
        self.tally.add("lost")
        for waiter in (self.opened, self.ended):
            if not waiter.done():
                waiter.set_exception(ConnectionError(f"connection lost: {exc}"))

    def close(self) -> None:
        if self.transport is not None:
            self.transport.abort()
        for waiter in (self.opened, self.ended):  # nobody awaits them any more: keep asyncio quiet
            if waiter.done() and not waiter.cancelled():
                waiter.exception()
            else:
                waiter.cancel()


async def open_stream(port: int, tally: Tally) -> Stream:
    loop = asyncio.get_running_loop()
    _, stream = await loop.create_connection(lambda: Stream(port, tally), HOST, port)
    await stream.opened
    assert stream.status_ok, "the stream did not answer 200"
    return stream


async def open_streams(port: int, count: int, tally: Tally) -> list[Stream]:
    """`count` streams, each `connected`, with at most CONNECTING_AT_ONCE being opened at a time."""
    gate = asyncio.Semaphore(CONNECTING_AT_ONCE)

    async def one() -> Stream:
        async with gate:
            return await open_stream(port, tally)

    results = await asyncio.gather(*(one() for _ in range(count)), return_exceptions=True)
    streams = [result for result in results if isinstance(result, Stream)]
    failures = [result for result in results if not isinstance(result, Stream)]
    if failures:
        for stream in streams:
            stream.close()
        raise AssertionError(f"{len(failures)} of {count} streams failed to open; first: {failures[0]!r}")
    return streams


async def health(http: httpx.AsyncClient) -> dict[str, int]:
    answer = await http.get("/healthz")
    assert answer.status_code == 200
    return dict(answer.json())


async def wait_clients(http: httpx.AsyncClient, count: int) -> None:
    """Poll the server's client count (a counter; there is no event to await)."""
    deadline = time.monotonic() + STEP_TIMEOUT
    while (clients := (await health(http))["clients"]) != count:
        assert time.monotonic() < deadline, f"the server holds {clients} clients, waited for {count}"
        await asyncio.sleep(0.05)


@contextlib.contextmanager
def descriptor_limit() -> Iterator[int]:
    """Raise this process's soft RLIMIT_NOFILE to the hard one for the block, for the load generator's own
    10,000 sockets (the server starts with a user's limit instead); yields the hard limit."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    raised = hard if hard != resource.RLIM_INFINITY else 1 << 20
    resource.setrlimit(resource.RLIMIT_NOFILE, (raised, hard))
    try:
        yield raised
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


def read_url(pipe: IO[bytes]) -> str:
    """The URL `metricstream serve` prints once it accepts connections."""
    seen = b""
    deadline = time.monotonic() + STEP_TIMEOUT
    while True:
        for line in seen.decode(errors="replace").splitlines(keepends=True):
            words = [word for word in line.split() if word.startswith("http://")]
            if words and line.endswith("\n"):
                return words[0]
        ready, _, _ = select.select([pipe], [], [], max(0.0, deadline - time.monotonic()))
        assert ready, f"the server printed no URL; got {seen!r}"
        chunk = os.read(pipe.fileno(), 4096)
        assert chunk, f"the server exited before printing its URL; got {seen!r}"
        seen += chunk


@contextlib.contextmanager
def server(
    max_clients: int, log: IO[bytes], limits: Callable[[], None] | None = None
) -> Iterator[tuple[subprocess.Popen[bytes], str]]:
    """`metricstream serve` on a free loopback port with `max_clients`, started with a user's descriptor
    limits (`limits`, by default USER_SOFT_LIMIT); killed on the way out if alive."""
    env = {name: value for name, value in os.environ.items() if not name.startswith("METRICSTREAM_")}
    env["METRICSTREAM_LOG_LEVEL"] = "warning"  # not a line per connect and disconnect: 20,000 of them
    command = [sys.executable, "-m", "metricstream", "serve", "--host", HOST, "--port", "0"]
    command += ["--store", "memory://"]
    command += ["--max-clients", str(max_clients), "--heartbeat", "3600"]  # no ping during the test
    command += ["--shutdown-timeout", "30"]  # telling 10,000 clients takes seconds on a busy machine
    with subprocess.Popen(
        command,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=log,
        env=env,
        preexec_fn=limits or as_a_user_starts_it(),  # the server raises the limit itself, as for a user
    ) as process:
        try:
            assert process.stdout is not None
            yield process, read_url(process.stdout)
        finally:
            if process.poll() is None:
                process.kill()
                process.wait(STEP_TIMEOUT)


async def load(process: subprocess.Popen[bytes], url: str, count: int) -> dict[str, float]:
    port = int(url.rsplit(":", 1)[1])
    figures: dict[str, float] = {}
    streams: list[Stream] = []
    tally = Tally()
    async with httpx.AsyncClient(base_url=url, timeout=STEP_TIMEOUT) as http:
        try:
            metric = await http.post("/metrics", json={"name": "load"})
            assert metric.status_code == 201
            # Warm-up: every code path a client takes has run once before the baseline is read.
            for stream in await open_streams(port, 10, Tally()):
                stream.close()
            await wait_clients(http, 0)
            figures["rss_before_mb"] = rss(process.pid) / 2**20

            # The oldest client connects alone, so the server's order is known; then the rest.
            started = time.perf_counter()
            oldest = await open_stream(port, tally)
            streams = [oldest, *await open_streams(port, count - 1, tally)]
            figures["connect_s"] = time.perf_counter() - started
            await wait_clients(http, count)
            figures["rss_with_mb"] = rss(process.pid) / 2**20
            figures["rss_per_client_kb"] = (figures["rss_with_mb"] - figures["rss_before_mb"]) * 1024 / count

            # One more: the oldest is told `disconnected` and its stream ends; nobody else is touched.
            newest = await open_stream(port, tally)
            streams.append(newest)
            async with asyncio.timeout(STEP_TIMEOUT):
                await oldest.ended
            assert oldest.disconnected
            assert (await health(http))["clients"] == count
            held = streams[1:]
            assert not any(stream.ended.done() or stream.disconnected or stream.lost for stream in held)

            # One reading over HTTP reaches every client still held.
            posted_at = time.perf_counter()
            reading = await http.post(
                "/metrics/readings", json={"metric_id": metric.json()["id"], "value": 1}
            )
            figures["post_s"] = time.perf_counter() - posted_at
            assert reading.status_code == 201
            await tally.reach("reading", count)
            arrivals = sorted(stream.reading_at or 0.0 for stream in held)
            figures["fanout_last_s"] = arrivals[-1] - posted_at
            figures["fanout_median_s"] = arrivals[len(arrivals) // 2] - posted_at
            assert oldest.reading_at is None  # it had been evicted before the reading
            assert len(held) == count

            # Shutting down tells all of them and ends every stream, within shutdown_timeout (30 s here).
            stopping = time.perf_counter()
            process.send_signal(signal.SIGTERM)
            await asyncio.to_thread(process.wait, STEP_TIMEOUT)  # the clients read on meanwhile
            figures["shutdown_s"] = time.perf_counter() - stopping
            assert process.returncode == 0
            await tally.reach("lost", len(streams))  # each connection read to its end
            assert all(stream.ended.done() and not stream.ended.exception() for stream in held)
            told = sum(stream.disconnected for stream in held)
            assert told == count, f"only {told} of {count} clients were told `disconnected` at shutdown"
        finally:
            for stream in streams:
                stream.close()
    return figures


@pytest.mark.timeout(120)  # a guard only: it takes ~20 s on 2 cores
def test_ten_thousand_clients_are_held_evicted_in_order_and_all_get_an_event(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with descriptor_limit() as limit, tempfile.TemporaryFile() as log:
        count = min(CLIENTS, limit - FD_HEADROOM)  # each process needs one descriptor per client
        started = time.perf_counter()
        with server(count, log) as (process, url):
            try:
                figures = asyncio.run(load(process, url, count))
            except BaseException:
                log.seek(0)
                sys.stderr.write(log.read().decode(errors="replace")[-4000:])
                raise
        elapsed = time.perf_counter() - started
    note = "" if count == CLIENTS else f" (reduced from {CLIENTS}: RLIMIT_NOFILE hard limit is {limit})"
    with capsys.disabled():
        print(
            f"\n[load] {count} SSE clients{note}: connected in {figures['connect_s']:.1f} s; "
            f"one reading reached all {count} in {figures['fanout_last_s'] * 1000:.0f} ms after the POST "
            f"(median client {figures['fanout_median_s'] * 1000:.0f} ms; POST answered in "
            f"{figures['post_s'] * 1000:.0f} ms); server RSS {figures['rss_before_mb']:.1f} MB before, "
            f"{figures['rss_with_mb']:.1f} MB with clients = "
            f"{figures['rss_per_client_kb']:.1f} KB per client; "
            f"graceful shutdown of {count} clients in {figures['shutdown_s']:.2f} s; test {elapsed:.1f} s"
        )
    assert figures["fanout_last_s"] < 10


async def over_the_limit(url: str, held: int, count: int) -> None:
    """`count` streams against a server that can hold `held`: each new one evicts the oldest, and REST
    keeps answering while the streams fill what the server allows."""
    port = int(url.rsplit(":", 1)[1])
    tally = Tally()
    streams: list[Stream] = []
    async with httpx.AsyncClient(base_url=url, timeout=STEP_TIMEOUT) as http:
        try:
            streams = await open_streams(port, held, tally)  # at once: up to the limit, nobody is evicted
            for _ in range(count - held):  # then one at a time, so the oldest is the one to go
                streams.append(await open_stream(port, tally))
                assert (await health(http))["clients"] == held
            async with asyncio.timeout(STEP_TIMEOUT):
                await asyncio.gather(*(stream.ended for stream in streams[: count - held]))
            assert all(stream.disconnected for stream in streams[: count - held])  # told why
            assert not any(stream.ended.done() for stream in streams[count - held :])
            created = await http.post("/metrics", json={"name": "still answering"})
            assert created.status_code == 201
        finally:
            for stream in streams:
                stream.close()


@pytest.mark.timeout(60)
def test_a_low_descriptor_limit_caps_max_clients_and_rest_keeps_answering() -> None:
    """`ulimit -n 128` (soft and hard) and the default max_clients of 10,000: the server cannot raise its
    limit, so it holds 64 streams (64 descriptors kept back) and says so; 150 streams then never starve
    REST, `/healthz` or eviction."""
    with tempfile.TemporaryFile() as log:
        with server(10_000, log, as_a_user_starts_it(soft=128, hard=128)) as (process, url):
            asyncio.run(over_the_limit(url, held=64, count=150))
            process.send_signal(signal.SIGTERM)
            assert process.wait(STEP_TIMEOUT) == 0
        log.seek(0)
        said = log.read().decode(errors="replace")
    assert "max_clients lowered from 10000 to 64: the open-file limit is 128 (hard 128)" in said


@pytest.mark.timeout(60)
def test_a_low_soft_limit_is_raised_at_start_up() -> None:
    """`ulimit -Sn 128` under a higher hard limit: the server raises its own soft limit and holds 150."""
    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    if hard != resource.RLIM_INFINITY and hard < 300:
        pytest.skip(f"this machine's hard descriptor limit ({hard}) leaves no room to raise")

    async def hold_all(url: str) -> None:
        port = int(url.rsplit(":", 1)[1])
        streams = await open_streams(port, 150, Tally())
        try:
            async with httpx.AsyncClient(base_url=url, timeout=STEP_TIMEOUT) as http:
                assert (await health(http))["clients"] == 150
        finally:
            for stream in streams:
                stream.close()

    with tempfile.TemporaryFile() as log:
        with server(10_000, log, as_a_user_starts_it(soft=128)) as (process, url):
            asyncio.run(hold_all(url))
            process.send_signal(signal.SIGTERM)
            assert process.wait(STEP_TIMEOUT) == 0
        log.seek(0)
        assert b"max_clients lowered" not in log.read()
