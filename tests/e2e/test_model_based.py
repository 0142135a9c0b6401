"""A model-based test: seeded random sequences of operations against a real hub on each store, checked
after every step against a reference model that is a plain list of every event.

Operations: create metrics and post readings or batches (HTTP or Python), some dated before or after now,
past `max_future` too; connect subscribers, unfiltered or filtered (`metric_id=`, `types=`, both), from the
nil id, the head, a retained id, an expired id or an unknown id; cut connections and resume from the last id
received (any frame's, as an EventSource keeps it); make readers slow for a few steps; let time pass (a
little, past the TTL, or hours of quiet); step the wall clock back or forward; restart the hub
(`stop()`/`start()`, or a new process on SQLite and Redis). Time is a `ManualClock`: nothing sleeps.

Invariants, after every step:
- every subscriber has received exactly the events after its position that it wants, in order, or a
  `reset`;
- `connected` (and `reset`) name the subscriber's position: unfiltered, by the event it stands after;
  filtered, by the newest event it wants at or before it (the nil id when none);
- `reset` comes only when an event the subscriber needed (one it wants, after its position) may really be
  gone (it is older than the TTL at some moment the clock showed, as are all before it) or its id was never
  an event;
- a reading dated more than `max_future` ahead of the clock, as it stands after any step, is refused with
  nothing stored and no event; any other is taken;
- a subscriber that keeps up is never dropped (only a restart ends its stream);
- the broadcaster holds no more than its clients: waiting ones at most as many as connected ones, and
  after a sweep, no more retained events than the TTL window holds.

CI runs a fixed set of seeds in well under a minute. A long run of 105,000 operations (steps per seed and
store; on uvloop, the first seed): METRICSTREAM_MODEL_STEPS=5000 METRICSTREAM_MODEL_SEEDS=1,2,3,4,5,6.
"""

from __future__ import annotations

import bisect
import heapq
import os
import random
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from metricstream.clock import ManualClock
from metricstream.domain.values import MetricReading
from metricstream.errors import ValidationError
from metricstream.ids import new_id
from metricstream.server.hub import Hub
from metricstream.wire import EVENT_TYPES, GENESIS_ID, METRIC_CREATED, READING_CREATED
from tests.support.hubs import TTL, wait_for
from tests.support.raw_stream import Frame, RawStream

pytestmark = pytest.mark.slow  # random operations over every store

SETTINGS: dict[str, Any] = {
    "event_ttl": TTL,
    "heartbeat": 15.0,
    "write_timeout": 10.0,
    "client_buffer": 16,  # far under a batch: a large publish must not make a reader look slow
    "max_batch": 2048,  # one outgrows the socket buffers: the server is still writing it when the next comes
    "shutdown_timeout": 3.0,
    "max_future": 300.0,  # a reading dated further ahead of the (stepped) clock is refused
}
STEPS = int(os.environ.get("METRICSTREAM_MODEL_STEPS", "100"))
SEEDS = [int(seed) for seed in os.environ.get("METRICSTREAM_MODEL_SEEDS", "1,2,3").split(",")]
MAX_SUBSCRIBERS = 6
MAX_FUTURE: float = SETTINGS["max_future"]


@dataclass(frozen=True)
class Recorded:
    """One event of the reference model."""

    event_id: str
    subject_id: str  # the id inside `data`: the metric's or the reading's
    created: float  # the wall clock when it was written
    type: str
    metric_id: str


@dataclass
class Subscriber:
    """One test client: a raw stream, and where it stands in the model."""

    number: int
    stream: RawStream | None = None
    position: int = -1  # index in the model of the last event received; -1: before the first
    last_id: str | None = None  # what it sends as Last-Event-ID when it (re)connects
    slow_for: int = 0  # steps left without reading
    away: bool = False  # its connection dropped; it resumes at a later step, as a real client does
    keeps_up: bool = True  # read after every step since it connected
    received: int = 0
    types: frozenset[str] | None = None  # its filter, if any
    metric_id: str | None = None
    wanted: list[int] = field(default_factory=list)  # filtered: indices of the events it wants, ascending

    @property
    def filtered(self) -> bool:
        return self.types is not None or self.metric_id is not None

    @property
    def query(self) -> str:
        terms = [] if self.types is None else ["types=" + ",".join(sorted(self.types))]
        return "&".join(terms + ([] if self.metric_id is None else [f"metric_id={self.metric_id}"]))

    def wants(self, event: Recorded) -> bool:
        if self.types is not None and event.type not in self.types:
            return False
        return self.metric_id is None or (event.type != METRIC_CREATED and event.metric_id == self.metric_id)

    def newest_wanted(self, at_or_before: int) -> int:
        """Index of the newest event it wants at or before `at_or_before`; -1 if none."""
        if not self.filtered:
            return at_or_before
        found = bisect.bisect_right(self.wanted, at_or_before)
        return self.wanted[found - 1] if found else -1

    def next_wanted(self, after: int, count: int) -> int | None:
        """Index of the first event it wants after `after`, among the first `count`; None if none."""
        if not self.filtered:
            return after + 1 if after + 1 < count else None
        found = bisect.bisect_right(self.wanted, after)
        return self.wanted[found] if found < len(self.wanted) else None


@dataclass
class Model:
    events: list[Recorded] = field(default_factory=list)
    index: dict[str, int] = field(default_factory=dict)  # event id -> position
    latest_wall: float = 0.0  # the latest the wall clock has shown
    # (type, metric id or "" for any) -> positions of those events: what a new filtered subscriber wants
    kinds: dict[tuple[str, str], list[int]] = field(default_factory=dict)

    def add(self, event: Recorded) -> None:
        position = self.index[event.event_id] = len(self.events)
        self.events.append(event)
        for kind in ((event.type, ""), (event.type, event.metric_id)):
            self.kinds.setdefault(kind, []).append(position)

    def wanted_by(self, sub: Subscriber) -> list[int]:
        """Positions of the events a filtered subscriber wants, ascending."""
        types = EVENT_TYPES if sub.types is None else sub.types
        if sub.metric_id is not None:
            types = types - {METRIC_CREATED}
        kinds = [self.kinds.get((type, sub.metric_id or ""), []) for type in sorted(types)]
        return list(heapq.merge(*kinds))

    # the last trimmable() answer, (cutoff, count): a later cutoff drops at least as many, so a scan for one
    # goes on from there (the clock only goes back by a step, rarely)
    scanned: tuple[float, int] = (float("-inf"), 0)

    def trimmable(self, cutoff: float) -> int:
        """How many events, from the oldest, a trim at `cutoff` may drop: they go by position."""
        later = cutoff >= self.scanned[0]
        count = self.scanned[1] if later else 0
        while count < len(self.events) and self.events[count].created < cutoff:
            count += 1
        if later:
            self.scanned = (cutoff, count)
        return count

    def may_be_gone(self) -> int:
        """Events at positions below this may have been trimmed (at the latest time the clock showed)."""
        return self.trimmable(self.latest_wall - TTL)


class Driver:
    def __init__(self, seed: int, store: str, tmp_path: Path, loop: str = "asyncio") -> None:
        self.random = random.Random(seed)
        self.store = store
        self.loop = loop
        self.clock = ManualClock()
        self.model = Model(latest_wall=self.clock.time())
        self.hub = self._new_hub()
        self.http = httpx.Client(base_url=self.hub.url, timeout=10)
        self.metrics: list[str] = []
        self.subscribers: list[Subscriber] = []
        self.gone: list[Subscriber] = []  # those that left
        self.numbers = iter(range(10**9))
        self.log: list[str] = []  # the steps taken, for the failure message
        self.resets = 0  # `reset` frames checked
        self.drops = 0  # slow readers dropped (allowed) and resumed
        self.dated = {"taken": 0, "refused": 0}  # readings dated by post_dated, by what became of them

    def _new_hub(self) -> Hub:
        return Hub(port=0, store=self.store, clock=self.clock, loop=self.loop, **SETTINGS).start()

    def close(self) -> None:
        for sub in self.subscribers:
            if sub.stream is not None:
                sub.stream.close()
        self.http.close()
        self.hub.stop()

    # --- operations ---------------------------------------------------------------------------

    def step(self) -> None:
        operations = [
            (self.create_metric, 3),
            (self.post_reading, 10),
            (self.post_batch, 4),
            (self.post_dated, 3),
            (self.connect, 4),
            (self.cut, 2),
            (self.resume, 2),
            (self.leave, 1),
            (self.burst, 1),
            (self.make_slow, 2),
            (self.advance_a_little, 4),
            (self.advance_past_ttl, 2),
            (self.stay_quiet, 1),
            (self.step_wall, 2),
            (self.restart, 1),
        ]
        operation = self.random.choices([op for op, _ in operations], [w for _, w in operations])[0]
        self.log.append(operation.__name__)
        operation()
        self.check()

    def create_metric(self) -> None:
        name = f"m{len(self.metrics)}"
        if self.random.random() < 0.5:
            metric_id = self.hub.service.create_metric(name).id
        else:
            answer = self.http.post("/metrics", json={"name": name})
            assert answer.status_code == 201, answer.text
            metric_id = answer.json()["id"]
        self.metrics.append(metric_id)
        self._recorded([metric_id])

    def post_reading(self) -> None:
        if not self.metrics:
            return self.create_metric()
        metric_id = self.random.choice(self.metrics)
        value = self.random.uniform(0.1, 100)
        if self.random.random() < 0.5:
            reading_id = self.hub.service.create_reading(metric_id, value).id
        else:
            answer = self.http.post("/metrics/readings", json={"metric_id": metric_id, "value": value})
            assert answer.status_code == 201, answer.text
            reading_id = answer.json()["id"]
        self._recorded([reading_id])
        return None

    def post_batch(self) -> None:
        if not self.metrics:
            return self.create_metric()
        self._post_batch(self.random.choice([1, 2, 17, 64]))
        return None

    def burst(self) -> None:
        """Two of the largest batches at once: a reader that keeps up is busy with the first when the
        second comes, 2,048 events past where it woke, yet must not be dropped."""
        if not self.metrics:
            return self.create_metric()
        self._post_batch(SETTINGS["max_batch"])
        self._post_batch(SETTINGS["max_batch"])
        return None

    def _post_batch(self, size: int) -> None:
        items = [
            {"metric_id": self.random.choice(self.metrics), "value": self.random.uniform(0.1, 100)}
            for _ in range(size)
        ]
        if self.random.random() < 0.5:
            ids = [reading.id for reading in self.hub.service.create_readings(items)]
        else:
            answer = self.http.post("/metrics/readings/batch", json={"readings": items})
            assert answer.status_code == 201, answer.text
            ids = [reading["id"] for reading in answer.json()["readings"]]
        self._recorded(ids)

    def post_dated(self) -> None:
        """A reading dated before or after now, by id or by a new name, alone or after a reading of now in
        a batch: taken when at most `max_future` ahead of the server's clock (which `step_wall` moves both
        ways), else refused, over HTTP and in Python alike, with nothing stored and no event."""
        ahead = self.random.choice(
            [-7200.0, -30.0, 0.0, 120.0, MAX_FUTURE - 1, MAX_FUTURE + 1, 900.0, 86400.0]
        )
        moment = datetime.fromtimestamp(self.clock.time() + ahead, UTC).isoformat()
        item: dict[str, Any] = {"value": self.random.uniform(0.1, 100), "timestamp": moment}
        if self.metrics and self.random.random() < 0.7:
            item["metric_id"] = self.random.choice(self.metrics)
        else:
            item["metric"] = f"dated{next(self.numbers)}"
        items = [{"metric_id": self.random.choice(self.metrics), "value": 1.0}] if self.metrics else []
        items.append(item)
        head = self.hub.app.log.head
        readings = self._write_dated(items, single=len(items) == 1 and self.random.random() < 0.7)
        if ahead > MAX_FUTURE:
            assert isinstance(readings, str), f"a reading {ahead:g} s ahead was taken"
            assert f"max_future={MAX_FUTURE:g}" in readings, readings
            assert self.hub.app.log.head == head, "a refused write left an event"
            self.dated["refused"] += 1
            return
        assert not isinstance(readings, str), f"a reading {ahead:g} s ahead was refused: {readings}"
        created = [r["metric_id"] for r in readings if r["metric_id"] not in self.metrics]
        self.metrics += created
        self._recorded([*created, *(r["id"] for r in readings)])
        self.dated["taken"] += 1

    def _write_dated(self, items: list[dict[str, Any]], single: bool) -> list[dict[str, Any]] | str:
        """The readings written, as JSON, or the refusal's message."""
        if self.random.random() < 0.5:
            try:
                readings = self._write_in_python(items, single)
            except ValidationError as error:
                return error.message
            return [reading.to_dict() for reading in readings]
        path, body = (
            ("/metrics/readings", items[0]) if single else ("/metrics/readings/batch", {"readings": items})
        )
        answer = self.http.post(path, json=body)
        if answer.status_code == 400:
            return str(answer.json()["error"])
        assert answer.status_code == 201, answer.text
        return [answer.json()] if single else list(answer.json()["readings"])

    def _write_in_python(self, items: list[dict[str, Any]], single: bool) -> list[MetricReading]:
        """A single reading through `create_reading` or `log` (the service's one-reading path), else
        `create_readings`."""
        service = self.hub.service
        if not single:
            return service.create_readings(items)
        [item] = items
        if "metric_id" in item:
            return [service.create_reading(item["metric_id"], item["value"], item["timestamp"])]
        return [service.log(item["metric"], item["value"], item["timestamp"])]

    def _recorded(self, subject_ids: list[str]) -> None:
        """Add a write's events to the model, labelled with the ids the server's log gave them."""
        log = self.hub.app.log
        events = log.between(log.head - len(subject_ids), log.head)
        assert [orjson_id(event.body) for event in events] == subject_ids, "the log holds another order"
        for event in events:
            recorded = Recorded(
                event.id, orjson_id(event.body), self.clock.time(), event.type, event.metric_id
            )
            for sub in self.subscribers:
                if sub.filtered and sub.wants(recorded):
                    sub.wanted.append(len(self.model.events))
            self.model.add(recorded)

    def connect(self) -> None:
        if sum(sub.stream is not None or sub.away for sub in self.subscribers) >= MAX_SUBSCRIBERS:
            return self.resume()
        sub = self._new_subscriber()
        start = self.random.choice(["nil", "head", "retained", "expired", "unknown"])
        events, gone = self.model.events, self.model.may_be_gone()
        # A filtered client holds ids of events it wants (`connected` names its position by one): an
        # expired id of another event names no position it could have held, and is not tried here.
        expired = [i for i in sub.wanted if i < gone - 1] if sub.filtered else range(max(0, gone - 1))
        if start == "nil":
            sub.last_id, sub.position = GENESIS_ID, -1
        elif start == "head" or not events:
            sub.last_id, sub.position = None, len(events) - 1
        elif start == "retained":  # often the marker (gone - 1): it resumes without loss
            low = max(0, gone - 1)
            sub.position = low if self.random.random() < 0.3 else self.random.randrange(low, len(events))
            sub.last_id = events[sub.position].event_id
        elif start == "expired" and expired:
            sub.position = self.random.choice(expired)
            sub.last_id = events[sub.position].event_id
        else:
            sub.last_id, sub.position = new_id(), -2  # -2: never an event
        self.log[-1] += f"({start} #{sub.number}{'?' + sub.query if sub.filtered else ''})"
        self.subscribers.append(sub)
        self._open(sub)
        return None

    def _new_subscriber(self) -> Subscriber:
        """Unfiltered half of the time; else wanting one metric's events, some types, or both."""
        sub = Subscriber(next(self.numbers))
        kind = self.random.choice(["none", "none", "metric", "types", "both"])
        if kind in ("metric", "both"):  # sometimes a metric no event names
            sub.metric_id = self.random.choice([*self.metrics, new_id()])
        if kind in ("types", "both"):
            sub.types = frozenset(self.random.sample(sorted(EVENT_TYPES), self.random.randint(1, 2)))
        sub.wanted = self.model.wanted_by(sub) if sub.filtered else []
        return sub

    def _open(self, sub: Subscriber) -> None:
        headers = {"Last-Event-ID": sub.last_id} if sub.last_id else {}
        # A small receive buffer: two large batches outgrow what the kernel holds, so the server is still
        # writing the first when the second comes (the case a lag count must not mistake for slowness).
        sub.stream = RawStream(self.hub.url, sub.query, headers=headers, receive_buffer=16 * 1024)
        assert sub.stream.status == 200
        sub.keeps_up, sub.slow_for = True, 0
        self._opening(sub, sub.stream.next_write())

    def _opening(self, sub: Subscriber, frames: list[Frame]) -> None:
        """Check the opening frames (one write): `retry`, `connected`, and `reset` only if legitimate;
        `connected` names the position as the model does. The subscriber keeps that id, as an
        EventSource would."""
        retry, connected, *rest = frames
        assert retry.get("retry") is not None, frames
        assert connected.data == "connected", frames
        if rest:
            assert [frame.event for frame in rest] == ["reset"], frames
            after = sub.next_wanted(sub.position, len(self.model.events))
            legitimate = sub.position == -2 or (after is not None and after < self.model.may_be_gone())
            assert legitimate, (
                f"#{sub.number} was reset at {sub.position}, nothing it needed is gone: {self._where()}"
            )
            self.resets += 1
            sub.position = len(self.model.events) - 1  # it starts again at the head
        assert sub.position != -2, f"#{sub.number} resumed from an unknown id without a reset"
        named = sub.newest_wanted(sub.position)
        expected = GENESIS_ID if named < 0 else self.model.events[named].event_id
        assert [frame.id for frame in (connected, *rest)] == [expected] * (1 + len(rest)), (
            f"#{sub.number} at {sub.position} was placed at {connected.id}, not {expected}: {self._where()}"
        )
        sub.position, sub.last_id = named, expected

    def cut(self) -> None:
        """A connection drops; the client resumes from the last id it received, now or at a later step."""
        connected = [sub for sub in self.subscribers if sub.stream is not None and not sub.slow_for]
        if not connected:
            return
        sub = self.random.choice(connected)
        assert sub.stream is not None
        sub.stream.close()
        sub.stream = None
        if self.random.random() < 0.3:
            self._open(sub)
        else:
            sub.away = True

    def resume(self) -> None:
        away = [sub for sub in self.subscribers if sub.away]
        if away:
            sub = self.random.choice(away)
            sub.away = False
            self._open(sub)

    def leave(self) -> None:
        """A subscriber goes for good; a later `connect` brings another, with a filter of its own."""
        leaving = [sub for sub in self.subscribers if not sub.slow_for]
        if leaving:
            sub = self.random.choice(leaving)
            if sub.stream is not None:
                sub.stream.close()
            self.subscribers.remove(sub)
            self.gone.append(sub)

    def make_slow(self) -> None:
        connected = [sub for sub in self.subscribers if sub.stream is not None and not sub.slow_for]
        if connected:
            sub = self.random.choice(connected)
            sub.slow_for = self.random.randint(1, 4)
            sub.keeps_up = False

    def advance(self, seconds: float) -> None:
        self._quiesce()
        self.clock.advance(seconds)
        self.model.latest_wall = max(self.model.latest_wall, self.clock.time())

    def advance_a_little(self) -> None:
        self.advance(self.random.uniform(0.1, 20))

    def advance_past_ttl(self) -> None:
        self.advance(TTL * self.random.uniform(1.01, 3))
        self._swept()

    def stay_quiet(self) -> None:
        for _ in range(self.random.randint(1, 8)):  # hours, an hour at a time: heartbeats keep coming
            self.advance(3600)
        self._swept()

    def step_wall(self) -> None:
        self._quiesce()
        self.clock.step_wall(self.random.choice([-120, -30, -5, 5, 30, 120]))
        self.model.latest_wall = max(self.model.latest_wall, self.clock.time())

    def restart(self) -> None:
        """`stop()`/`start()` on memory; a new process's Hub on the durable stores."""
        self.hub.stop()
        for sub in self.subscribers:
            if sub.stream is not None:
                self._read(sub, until_end=True)  # to `disconnected` and the end of the stream
        if self.store == "memory://":
            self.hub.start()
        else:
            self.hub = self._new_hub()
        self.http.close()
        self.http = httpx.Client(base_url=self.hub.url, timeout=10)
        for sub in self.subscribers:
            if sub.stream is not None:
                sub.stream.close()
                self._open(sub)

    def _quiesce(self) -> None:
        """Before time jumps: every reader that keeps up has been sent all and waits idle, so no write of
        theirs is under way when the watchdog looks (in real time a write cannot take 0 s and 60 s)."""
        self.check()
        keeping_up = sum(sub.stream is not None and not sub.slow_for for sub in self.subscribers)
        broadcaster = self.hub.app.broadcaster
        wait_for(lambda: broadcaster.statistics().waiting >= keeping_up, what="readers idle")

    def _swept(self) -> None:
        """Past a sweep, the log holds no more than the TTL window at the time the clock shows now."""
        window = len(self.model.events) - self.model.trimmable(self.clock.time() - TTL)
        broadcaster = self.hub.app.broadcaster
        wait_for(lambda: broadcaster.statistics().retained <= window, what=f"a log of at most {window}")

    # --- invariants ---------------------------------------------------------------------------

    def check(self) -> None:
        for sub in self.subscribers:
            if sub.stream is None:
                continue
            if sub.slow_for:
                sub.slow_for -= 1
                if sub.slow_for:
                    continue  # its last slow step ends here: it reads now
            self._read(sub)
        live = sum(sub.stream is not None for sub in self.subscribers)
        broadcaster = self.hub.app.broadcaster

        def settled() -> bool:  # a dropped client's sender ends soon after; then only live ones remain
            stats = broadcaster.statistics()
            return stats.clients == live and stats.senders == live

        wait_for(settled, what=f"{live} clients on the server")
        stats = broadcaster.statistics()
        assert stats.waiting <= stats.clients, stats
        assert stats.retained <= len(self.model.events), stats

    def _read(self, sub: Subscriber, until_end: bool = False) -> None:
        """Read what `sub` was sent, up to the model's head (or its stream's end), checking each frame."""
        assert sub.stream is not None
        head = sub.newest_wanted(len(self.model.events) - 1)  # filtered: the newest event it wants
        while until_end or sub.position < head:
            try:
                frame = sub.stream.next_frame()
            except (EOFError, ConnectionResetError):
                frame = Frame([("data", "disconnected")])
            if not self._apply(sub, frame):
                continue
            if until_end:
                return
            if sub.keeps_up:
                raise AssertionError(f"#{sub.number} kept up and was dropped: {self._where()}")
            sub.stream.close()  # a slow reader was dropped: it resumes as any client does
            self.drops += 1
            self._open(sub)

    def _apply(self, sub: Subscriber, frame: Frame) -> bool:
        """Check one frame against the model; True when the stream has ended."""
        events = self.model.events
        if frame.data == "disconnected":
            return True
        assert frame.event != "reset", f"#{sub.number} was told reset after its opening: {self._where()}"
        if frame.event in ("metric_created", "metric_reading_created"):
            after = sub.next_wanted(sub.position, len(events))
            got = orjson_id((frame.data or "").encode())
            assert after is not None, f"#{sub.number} got {got}, past the last event: {self._where()}"
            expected = events[after]
            assert got == expected.subject_id, (
                f"#{sub.number} at {sub.position} got {got}, expected {expected.subject_id}: {self._where()}"
            )
            assert frame.id == expected.event_id
            sub.position = after
            sub.last_id = frame.id
            sub.received += 1
        return False

    def _where(self) -> str:
        return f"after steps {self.log[-12:]} of {len(self.log)}"


def orjson_id(body: bytes) -> str:
    import orjson

    value: Any = orjson.loads(body)
    return str(value["id"])


@pytest.fixture
def driver(request: pytest.FixtureRequest, store_url: str, tmp_path: Path) -> Iterator[Driver]:
    seed, loop = request.param if isinstance(request.param, tuple) else (request.param, "asyncio")
    driver = Driver(seed, store_url, tmp_path, loop)
    yield driver
    driver.close()


@pytest.mark.parametrize("driver", SEEDS, indirect=True, ids=[f"seed{seed}" for seed in SEEDS])
@pytest.mark.timeout(max(120, STEPS // 10))
def test_random_operations_keep_every_promise(driver: Driver, capsys: pytest.CaptureFixture[str]) -> None:
    run_the_model(driver, capsys)


@pytest.mark.parametrize("driver", [(SEEDS[0], "uvloop")], indirect=True, ids=[f"seed{SEEDS[0]}"])
@pytest.mark.timeout(max(120, STEPS // 10))
def test_random_operations_keep_every_promise_on_uvloop(
    driver: Driver, capsys: pytest.CaptureFixture[str]
) -> None:
    """loop="uvloop": the same promises on the other event loop a user may choose."""
    run_the_model(driver, capsys)


def run_the_model(driver: Driver, capsys: pytest.CaptureFixture[str]) -> None:
    for _ in range(STEPS):
        driver.step()
    driver.check()
    everyone = driver.subscribers + driver.gone
    received = sum(sub.received for sub in everyone)
    filtered = sum(sub.filtered for sub in everyone)
    assert len(driver.model.events) > 0
    with capsys.disabled():
        print(
            f"\n[model] {driver.store.split(':')[0]} on {driver.loop} {STEPS} steps: "
            f"{len(driver.model.events)} events, "
            f"{len(everyone)} subscribers ({filtered} filtered), {received} deliveries checked, "
            f"{driver.resets} resets checked, {driver.drops} slow readers dropped and resumed, "
            f"dated readings {driver.dated['taken']} taken and {driver.dated['refused']} refused "
            "past max_future",
            end="",
        )


def test_the_model_catches_a_lost_event(tmp_path: Path) -> None:
    """The checker itself: an event the model holds but the server never sent is a failure."""
    driver = Driver(0, "memory://", tmp_path)
    try:
        driver.create_metric()
        sub = Subscriber(0, position=0)  # live from the head: after the metric's event
        driver.subscribers.append(sub)
        driver._open(sub)
        driver.check()
        lost = Recorded(
            str(uuid.uuid4()), "never-sent", driver.clock.time(), READING_CREATED, driver.metrics[0]
        )
        driver.model.add(lost)
        driver.post_reading()
        with pytest.raises(AssertionError, match="expected never-sent"):
            driver.check()
    finally:
        driver.close()
