"""A soak test: publishers post at a steady rate while subscribers join and leave, a fault-injecting proxy
cuts their connections at random and some raw readers are deliberately slow. Every subscriber ends with
exactly the events since it joined (no gap, no duplicate, same order), every slow reader is evicted, and
the server's memory returns to its baseline once everyone has left and the TTL sweep has emptied the log.

`METRICSTREAM_SOAK_SECONDS` (default 60) is how long the churn lasts; a warm-up of the same workload
(~6 s) and two drains of the event log (~8 s each) come on top. `METRICSTREAM_SOAK_SEED` picks another
(reproducible) schedule. The order every stream is checked against is the server's own: the event ids a
reference subscriber, connected directly and never cut, receives.

The server is a `Hub` in a child process, so its RSS is its own (not this process's threads and their
cached stacks) and it does not share a GIL with the clients. It answers `stats` on stdin with its
internals: connected clients, retained events, clients dropped by reason. Slow readers connect to it
directly (not through the proxy), so what evicts them is the server's own bounds, not a cut.
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import select
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import IO, Any

import httpx
import pytest

from metricstream.client.core import StreamEvent
from metricstream.client.subscribers import Subscriber
from tests.support.hubs import wait_for
from tests.support.proxy import FaultProxy
from tests.support.raw_stream import Frame, RawStream

pytestmark = pytest.mark.slow  # a 60 s soak

SECONDS = float(os.environ.get("METRICSTREAM_SOAK_SECONDS", "60"))
SEED = int(os.environ.get("METRICSTREAM_SOAK_SEED", "20240607"))
WARM_UP_SECONDS = min(6.0, max(2.0, SECONDS / 10))

SETTINGS: dict[str, Any] = {
    "store": "memory://",  # the store is not what this tests; the stream and the hub are
    "client_buffer": 64,
    "write_timeout": 1.0,
    "event_ttl": 5.0,  # short, so the log empties soon after the last post
    "heartbeat": 1.0,
    "retry": 100,  # subscribers come back within ~0.1 s of a cut
    "shutdown_timeout": 3.0,
}
# (kind, posts per second, readings per post): ~100 events/s in all, one numbered sequence per publisher
PUBLISHERS = (("single", 25.0, 1), ("single", 25.0, 1), ("batch", 5.0, 10))
CUT_EVERY = (0.5, 1.0)  # seconds between two random cuts
STALL = 3 * SETTINGS["write_timeout"] + 3.0  # a stalled reader's pause: past the server's every bound
TRICKLE = (256, 0.05)  # a trickling reader: bytes per read, seconds between reads (~5 KB/s < the feed)
SLOW_READER_BOUND = 30.0  # seconds a slow reader may stay connected before the test calls it not evicted
CATCH_UP = 30.0  # seconds the subscribers may take to receive the last event once publishing stopped
STEP = 20.0  # seconds the server may take to start, answer `stats` or stop
MEMORY_TOLERANCE_MB = 20.0  # what the allocator may keep, plus the readings the store keeps by design

# The server: a Hub with the settings in argv[1]; prints its URL, then answers `stats` lines on stdin.
SERVER = """
import gc, json, sys
from metricstream import Hub

def stats(hub):
    app = hub.app
    dropped = {}
    for _ in range(10):  # a snapshot taken off the hub's loop: retry if it changed under us
        try:
            dropped = dict(app.broadcaster.dropped)
            break
        except RuntimeError:
            continue
    return {"clients": len(app.broadcaster.clients), "events": len(app.log), "dropped": dropped}

with Hub(port=0, **json.loads(sys.argv[1])) as hub:
    print(hub.url, flush=True)
    for line in sys.stdin:
        if line.strip() != "stats":
            break
        gc.collect()
        print(json.dumps(stats(hub)), flush=True)
"""


def rss_mb(pid: int) -> float:
    with open(f"/proc/{pid}/status", "rb") as status:
        for line in status:
            if line.startswith(b"VmRSS:"):
                return int(line.split()[1]) / 1024
    raise AssertionError(f"no VmRSS for pid {pid}")


class Server:
    """The child process running the Hub, and its `stats` channel."""

    def __init__(self, process: subprocess.Popen[bytes]) -> None:
        self.process = process
        assert process.stdin is not None
        assert process.stdout is not None
        self._stdin: IO[bytes] = process.stdin
        self._stdout: IO[bytes] = process.stdout
        self._seen = b""
        self.url = self._line()

    def _line(self) -> str:
        deadline = time.monotonic() + STEP
        while b"\n" not in self._seen:
            ready, _, _ = select.select([self._stdout], [], [], max(0.0, deadline - time.monotonic()))
            assert ready, f"the server did not answer within {STEP} s"
            chunk = os.read(self._stdout.fileno(), 65536)
            assert chunk, "the server exited"
            self._seen += chunk
        line, _, self._seen = self._seen.partition(b"\n")
        return line.decode()

    def stats(self) -> dict[str, Any]:
        """Connected clients, retained events and drops by reason, after a garbage collection."""
        self._stdin.write(b"stats\n")
        self._stdin.flush()
        answer: dict[str, Any] = json.loads(self._line())
        return answer

    @property
    def rss_mb(self) -> float:
        return rss_mb(self.process.pid)

    def position(self) -> str:
        """Where the stream stands, as a client loading state over REST learns it."""
        return httpx.get(f"{self.url}/metrics", timeout=10).headers["x-last-event-id"]


@contextlib.contextmanager
def server(log: IO[bytes]) -> Iterator[Server]:
    env = {name: value for name, value in os.environ.items() if not name.startswith("METRICSTREAM_")}
    command = [sys.executable, "-c", SERVER, json.dumps(SETTINGS)]
    with subprocess.Popen(
        command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=log, env=env
    ) as process:
        try:
            yield Server(process)
            assert process.stdin is not None
            process.stdin.close()  # ends its loop: the hub stops gracefully
            assert process.wait(STEP) == 0
        finally:
            if process.poll() is None:
                process.kill()
                process.wait(STEP)


class Worker(threading.Thread):
    """A daemon thread whose exception is kept for the test thread to raise."""

    def __init__(self, name: str) -> None:
        super().__init__(name=name, daemon=True)
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            self.work()
        except BaseException as error:
            self.error = error

    def work(self) -> None:
        raise NotImplementedError

    def finish(self, timeout: float = 15) -> None:
        self.join(timeout)
        assert not self.is_alive(), f"{self.name} did not finish"
        if self.error is not None:
            raise AssertionError(f"{self.name} failed: {self.error!r}") from self.error


class Publisher(Worker):
    """Posts a numbered sequence of readings for one metric over HTTP at a steady rate until stopped."""

    def __init__(
        self, url: str, metric_id: str, kind: str, rate: float, size: int, stop: threading.Event
    ) -> None:
        super().__init__(f"publisher-{kind}-{metric_id[-4:]}")
        self.url, self.metric_id, self.rate, self.size, self.stop = url, metric_id, rate, size, stop
        self.reading_ids: list[str] = []  # in the order the server answered them

    def work(self) -> None:
        started = time.monotonic()
        with httpx.Client(base_url=self.url, timeout=10) as http:
            for posts in range(1_000_000):
                # Pacing a steady rate (not waiting for a condition); returns at once when stopped.
                if self.stop.wait(max(0.0, started + posts / self.rate - time.monotonic())):
                    return
                first = len(self.reading_ids) + 1
                items = [{"metric_id": self.metric_id, "value": first + i} for i in range(self.size)]
                if self.size > 1:
                    answer = http.post("/metrics/readings/batch", json={"readings": items})
                    assert answer.status_code == 201, answer.text
                    readings = answer.json()["readings"]
                else:
                    answer = http.post("/metrics/readings", json=items[0])
                    assert answer.status_code == 201, answer.text
                    readings = [answer.json()]
                assert [reading["value"] for reading in readings] == [item["value"] for item in items]
                self.reading_ids += [reading["id"] for reading in readings]


class Follower(Worker):
    """A `Subscriber` from `start` (an event id), iterated on its own thread until closed."""

    def __init__(self, name: str, url: str, start: str) -> None:
        super().__init__(name)
        self.start_id = start
        self.sub = Subscriber(url, last_event_id=start, idle_timeout=15)
        self.events: list[StreamEvent] = []
        self.left = False

    def work(self) -> None:
        for event in self.sub:
            self.events.append(event)

    @property
    def last_id(self) -> str:
        return self.events[-1].id if self.events else self.start_id

    def reached(self, event_id: str) -> Callable[[], bool]:
        """A condition: it has received `event_id` (or its thread ended, which close() reports)."""
        return lambda: self.last_id == event_id or not self.is_alive()

    def close(self) -> None:
        self.left = True
        self.sub.close()
        self.finish()


class PacedStream(RawStream):
    """A `RawStream` whose reads can be made small and slow once its response head is in."""

    size = 65536
    pace = 0.0

    def _recv(self, deadline: float) -> bytes:
        if self.pace:
            time.sleep(self.pace)  # the point of this reader: it is slow
        self.sock.settimeout(max(0.001, deadline - time.monotonic()))
        data = self.sock.recv(self.size)
        if not data:
            raise EOFError("connection closed")
        return data


class SlowReader(Worker):
    """A raw stream from `start` that stalls (stops reading for a while) or trickles (reads slowly)."""

    def __init__(self, name: str, url: str, start: str, kind: str) -> None:
        super().__init__(name)
        self.url, self.start_id, self.kind = url, start, kind
        self.frames: list[Frame] = []
        self.evicted = False  # the server ended or reset the connection
        self.told = False  # ...and said `disconnected` first

    def work(self) -> None:
        stream = PacedStream(self.url, headers={"Last-Event-ID": self.start_id}, receive_buffer=4096)
        try:
            stream.expect_open()
            deadline = time.monotonic() + SLOW_READER_BOUND
            if self.kind == "stall":
                time.sleep(STALL)  # reads nothing while the feed goes on
            else:
                stream.size, stream.pace = TRICKLE
            try:
                while time.monotonic() < deadline:
                    self.frames.append(stream.next_frame(max(0.001, deadline - time.monotonic())))
            except TimeoutError:
                pass  # still connected at the deadline: not evicted
            except (EOFError, OSError):
                self.evicted = True
        finally:
            stream.close()
        self.told = any(frame.data == "disconnected" for frame in self.frames)

    @property
    def event_ids(self) -> list[str]:
        return [str(frame.id) for frame in self.frames if frame.event]


@dataclass
class Phase:
    """What one run of the workload did, for the checks and the report."""

    seconds: float
    events: int = 0
    followers: int = 0
    followers_to_the_end: int = 0
    slow_readers: Counter[str] = field(default_factory=Counter)
    slow_told: int = 0
    cuts: int = 0
    reconnections: int = 0


def plan(rng: random.Random, seconds: float) -> list[tuple[float, str, int]]:
    """(time, action, index) for followers joining and leaving and slow readers arriving."""
    actions: list[tuple[float, str, int]] = []
    for index in range(max(4, int(seconds / 3))):
        joins = rng.uniform(0, 0.85 * seconds)
        actions.append((joins, "join", index))
        if rng.random() < 0.6:  # the others stay to the end
            actions.append((min(seconds, joins + rng.uniform(2, max(3.0, 0.3 * seconds))), "leave", index))
    last_slow_start = max(0.0, seconds - STALL - 2)
    for index in range(max(2, int(seconds / 12))):
        actions.append((rng.uniform(0, last_slow_start), "slow", index))
    return sorted(actions)


def run_phase(server: Server, seconds: float, rng: random.Random) -> Phase:
    """Run the workload for `seconds`, then check every stream against the reference order."""
    phase = Phase(seconds)
    url = server.url
    with httpx.Client(base_url=url, timeout=10) as http:
        metric_ids = [http.post("/metrics", json={"name": f"soak {i}"}).json()["id"] for i in range(3)]
    origin = server.position()  # every stream of this phase starts at or after this
    stop = threading.Event()
    followers: dict[int, Follower] = {}
    slow_readers: list[SlowReader] = []
    reference = Follower("reference", url, origin)  # direct: the server's order, never cut
    reference.start()
    chaos_rng = random.Random(rng.random())

    with FaultProxy(url) as proxy:

        class Chaos(Worker):
            def work(self) -> None:
                while not stop.wait(chaos_rng.uniform(*CUT_EVERY)):  # pacing the cuts
                    proxy.cut_random(chaos_rng)

        chaos = Chaos("chaos")
        publishers = [
            Publisher(url, metric_id, kind, rate, size, stop)
            for metric_id, (kind, rate, size) in zip(metric_ids, PUBLISHERS, strict=True)
        ]
        for worker in (*publishers, chaos):
            worker.start()
        began = time.monotonic()
        try:
            for at, action, index in plan(rng, seconds):
                if stop.wait(max(0.0, began + at - time.monotonic())):  # pacing the schedule
                    break
                if any(worker.error for worker in (*publishers, chaos, reference)):
                    break  # fail fast: finish() and close() below raise it
                if action == "join":
                    followers[index] = Follower(f"follower-{index}", proxy.url, server.position())
                    followers[index].start()
                elif action == "leave":
                    followers[index].close()
                else:
                    kind = ("stall", "trickle")[index % 2]
                    slow_readers.append(SlowReader(f"slow-{kind}-{index}", url, server.position(), kind))
                    slow_readers[-1].start()
            stop.wait(max(0.0, began + seconds - time.monotonic()))
        finally:
            stop.set()
            for worker in (*publishers, chaos):
                worker.finish()
        staying = [follower for follower in followers.values() if not follower.left]
        try:
            final = server.position()  # nothing is published any more
            wait_for(reference.reached(final), CATCH_UP, "the reference to get every event")
            for follower in staying:
                wait_for(follower.reached(final), CATCH_UP, f"{follower.name} to catch up")
        finally:
            for follower in [*staying, reference]:
                follower.close()  # raises what went wrong on its thread
        for reader in slow_readers:
            reader.finish(STALL + SLOW_READER_BOUND + 10)
        phase.cuts = proxy.cuts
        phase.reconnections = proxy.accepted - len(followers)

    # The reference holds every posted reading once, each publisher's in the order it was posted.
    order = [event.id for event in reference.events]
    assert len(set(order)) == len(order), "the reference got an event twice"
    assert all(event.type == "metric_reading_created" for event in reference.events)
    posted = [reading_id for publisher in publishers for reading_id in publisher.reading_ids]
    reading_ids = [event.data["id"] for event in reference.events]
    assert sorted(reading_ids) == sorted(posted), "the reference did not get exactly the posted readings"
    for publisher in publishers:
        mine = [event.data for event in reference.events if event.data["metric_id"] == publisher.metric_id]
        assert [data["id"] for data in mine] == publisher.reading_ids
        assert [data["value"] for data in mine] == list(range(1, len(mine) + 1))
    position = {event_id: index for index, event_id in enumerate(order)}

    def since(start: str) -> list[str]:
        return order if start == origin else order[position[start] + 1 :]

    # Every follower: exactly the events since it joined; those that stayed, every one of them.
    for follower in followers.values():
        assert all(event.type != "reset" for event in follower.events), f"{follower.name} lost history"
        got = [event.id for event in follower.events]
        expected = since(follower.start_id)
        assert got == expected[: len(got)], f"{follower.name}: a gap, a duplicate or another order"
        if follower in staying:
            assert got == expected, f"{follower.name} did not end with every event"
    # Every slow reader: an in-order run of the events since it joined, then evicted.
    for reader in slow_readers:
        got = reader.event_ids
        assert got == since(reader.start_id)[: len(got)], (
            f"{reader.name}: a gap, a duplicate or another order"
        )
        assert reader.evicted, f"{reader.name} was still connected after {SLOW_READER_BOUND} s"
        phase.slow_readers[reader.kind] += 1
        phase.slow_told += reader.told

    phase.events = len(order)
    phase.followers = len(followers)
    phase.followers_to_the_end = len(staying)
    return phase


def drained(server: Server) -> dict[str, Any]:
    """Wait until every client is gone and the TTL sweep has emptied the log; the server's stats then."""

    def health() -> tuple[int, int]:
        answer = httpx.get(f"{server.url}/healthz", timeout=10).json()
        return answer["clients"], answer["events"]

    wait_for(lambda: health()[0] == 0, 10, "every client to be gone")
    wait_for(lambda: health() == (0, 0), SETTINGS["event_ttl"] * 1.5 + 5, "the TTL sweep to empty the log")
    stats = server.stats()
    assert (stats["clients"], stats["events"]) == (0, 0)  # the broadcaster's clients and the log itself
    return stats


@pytest.mark.timeout(SECONDS + WARM_UP_SECONDS + 120)
def test_soak_with_churn_cuts_and_slow_readers_loses_nothing_and_returns_memory(
    capsys: pytest.CaptureFixture[str],
) -> None:
    rng = random.Random(SEED)
    started = time.monotonic()
    with tempfile.TemporaryFile() as log:
        try:
            with server(log) as hub:
                run_phase(hub, WARM_UP_SECONDS, rng)  # the same workload, so the baseline has seen it once
                dropped_before = Counter(drained(hub)["dropped"])
                baseline = hub.rss_mb

                phase = run_phase(hub, SECONDS, rng)
                peak = hub.rss_mb
                retained = hub.stats()["events"]
                dropped = Counter(drained(hub)["dropped"]) - dropped_before
                after = hub.rss_mb
        except BaseException:
            log.seek(0)
            sys.stderr.write(log.read().decode(errors="replace")[-4000:])
            raise
    elapsed = time.monotonic() - started

    with capsys.disabled():
        print(
            f"\n[soak] {phase.seconds:.0f} s (seed {SEED}; test {elapsed:.0f} s with warm-up and drains): "
            f"{phase.events} events from {len(PUBLISHERS)} publishers; {phase.followers} subscribers joined "
            f"({phase.followers_to_the_end} stayed to the end), {phase.cuts} connections cut, "
            f"{phase.reconnections} reconnections through the proxy; slow readers "
            f"{dict(phase.slow_readers)} all evicted, {phase.slow_told} told `disconnected`; "
            f"evictions by reason {dict(sorted(dropped.items()))}; server RSS {baseline:.1f} MB baseline, "
            f"{peak:.1f} MB at the end of the churn ({retained} events retained), {after:.1f} MB after "
            f"everyone left and the log emptied ({after - baseline:+.1f} MB)"
        )
    assert phase.cuts > 0  # some subscribers did have to resume
    assert phase.reconnections > 0
    assert after - baseline < MEMORY_TOLERANCE_MB
