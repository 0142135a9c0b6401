"""Connected SSE clients: fan-out, heartbeats, limits and eviction. Knows nothing of metrics or HTTP.

Each client is a cursor into the shared `EventLog`, not a queue of copies, so publishing costs nothing per
busy client and one slow client never delays another. Backpressure is explicit: a client more than
`client_buffer` events behind while it is busy writing (the latest publish, idle waits and its replay not
counted), or whose write takes longer than `write_timeout`, is dropped. One watchdog keeps every write's
timeout, by the injected clock; a client is registered and placed in the log in one step with no await
between, so replay cannot race live events. docs/architecture.md walks through it.
"""

from __future__ import annotations

import asyncio
import bisect
import contextlib
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Final

import orjson

from ..clock import Clock, SystemClock
from ..errors import UnavailableError
from ..ids import new_id
from . import sse
from .log import Event, EventLog, StreamFilter

__all__ = ["BroadcastStatistics", "Broadcaster", "Client"]

Write = Callable[[bytes], Awaitable[None]]

# Events joined into one write, so a long replay is sent in steps.
MAX_CHUNK_EVENTS: Final = 1024
# Shared chunks kept, and publishes whose ends are remembered (a chunk ends at one of them).
_CHUNKS_KEPT: Final = 8
_PUBLISHES_KEPT: Final = 1024
# Seconds to try telling a dropped client `disconnected`.
GOODBYE_TIMEOUT: Final = 1.0


@dataclass(frozen=True, slots=True)
class BroadcastStatistics:
    """A snapshot of a `Broadcaster`, as anyio's `statistics()` gives: read it, never its fields.

    `clients` are connected now, `waiting` of them idle for an event; `senders` are streams still being
    served (a dropped one ends soon); `retained` events are in the log. Counted since the start:
    `published` events, `accepted` clients, `replayed` events (on connecting), `resets` (clients told
    `reset`) and `dropped` clients, by reason.
    """

    clients: int
    waiting: int
    senders: int
    retained: int
    published: int
    accepted: int
    replayed: int
    resets: int
    dropped: dict[str, int]


class Client:
    """One connected stream: where it stands in the log, what it wants, why it ends."""

    __slots__ = (
        "_guard",
        "_waiter",
        "connected_at",
        "cursor",
        "filter",
        "last_write",
        "mark",
        "ping_due",
        "preamble",
        "reason",
        "reset",
        "write_started",
    )

    def __init__(self, cursor: int, mark: int, wanted: StreamFilter | None, now: float) -> None:
        # The next sequence number to send; the head when it connected or last woke, lag counted from it.
        self.cursor = cursor
        self.mark = mark
        self.filter = wanted  # None: every event
        # Set when the stream must end.
        self.reason: str | None = None
        self.ping_due = False
        self.preamble = b""
        # Told `reset` on connecting: its Last-Event-ID could not be resumed.
        self.reset = False
        # Monotonic times, as every time here; `write_started` only while a write is under way.
        self.connected_at = now
        self.last_write = now
        self.write_started: float | None = None
        self._waiter: asyncio.Future[None] | None = None
        # The watchdog cuts a stalled write short through it.
        self._guard: asyncio.Timeout | None = None

    def wake(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def end(self, reason: str) -> None:
        if self.reason is None:
            self.reason = reason
        self.wake()


class Broadcaster:
    def __init__(
        self,
        log: EventLog,
        *,
        max_clients: int,
        client_buffer: int,
        write_timeout: float,
        heartbeat: float,
        retry: int,
        flush_interval: float = 0.0,
        clock: Clock | None = None,
    ) -> None:
        self.log = log
        self.clock = clock or SystemClock()
        self.max_clients = max_clients
        self.client_buffer = client_buffer
        self.write_timeout = write_timeout
        self.heartbeat = heartbeat
        self.retry = retry
        self.flush_interval = flush_interval
        self._wake_pending: asyncio.Handle | None = None
        self.closing = False
        self.clients: dict[Client, None] = {}  # insertion order: the first is the oldest
        # Clients dropped, by reason.
        self.dropped: Counter[str] = Counter()
        self.published = 0
        self.replayed = 0
        # Clients connected, and told `reset` (their Last-Event-ID could not be resumed), ever.
        self.accepted = 0
        self.resets = 0
        # Clients waiting for events; each leaves once woken.
        self._idle: dict[Client, None] = {}
        # The head before the latest publish: lag is counted up to here.
        self._latest_publish_start = 0
        # Chunks for clients without a filter, joined once and shared: (start, stop) -> bytes, the newest
        # last. A chunk ends where a publish did (`_publish_ends`, the newest ones), so clients at one
        # position ask for the same chunk whenever they come, and the events of a batch go out in one write.
        self._joined: dict[tuple[int, int], bytes] = {}
        self._publish_ends: list[int] = []
        # serve() calls still running.
        self._senders = 0
        self._senders_done = asyncio.Event()

    def statistics(self) -> BroadcastStatistics:
        return BroadcastStatistics(
            clients=len(self.clients),
            waiting=len(self._idle),
            senders=self._senders,
            retained=len(self.log),
            published=self.published,
            accepted=self.accepted,
            replayed=self.replayed,
            resets=self.resets,
            dropped=dict(self.dropped),
        )

    # --- publishing -------------------------------------------------------------------------

    def publish(self, events: list[Event]) -> None:
        """Append events to the log and wake every waiting client. Call on the event loop.

        Waking is deferred to one callback (after `flush_interval` seconds, or at the loop's next
        turn): events published meanwhile reach each client in the same single write.
        """
        self._latest_publish_start = self.log.head
        self.log.extend(events)
        self._publish_ends.append(self.log.head)
        if len(self._publish_ends) > 2 * _PUBLISHES_KEPT:
            del self._publish_ends[:-_PUBLISHES_KEPT]
        self.published += len(events)
        if self._wake_pending is None and self._idle:
            loop = asyncio.get_running_loop()
            if self.flush_interval > 0:
                self._wake_pending = loop.call_later(self.flush_interval, self._wake_waiting)
            else:
                self._wake_pending = loop.call_soon(self._wake_waiting)

    def _wake_waiting(self) -> None:
        self._wake_pending = None
        for client in self._idle:
            client.wake()

    # --- clients ----------------------------------------------------------------------------

    def connect(
        self,
        last_event_id: str | None = None,
        types: frozenset[str] | None = None,
        metric_id: str | None = None,
        earliest: bool = False,
        matches: Callable[[Event], bool] | None = None,
    ) -> Client:
        """Register a client positioned just after `last_event_id`; without one, at the head, or with
        `earliest` at the oldest retained event. A filtered client's position is named by the newest
        event it wants (`EventLog.name_for`), an id that stays resumable after it expires."""
        if self.closing:
            raise UnavailableError("the server is shutting down")
        while len(self.clients) >= self.max_clients:
            oldest = next(iter(self.clients))
            self._drop(oldest, "limit")
        wanted = StreamFilter.of(types, metric_id, matches)
        head = self.log.head
        cursor, position_id, reset = head, self.log.position_id, False
        if earliest and not last_event_id:
            cursor, position_id = self.log.base, self.log.earliest_id
            self.replayed += head - cursor
        elif last_event_id:
            position = self.log.position_after(last_event_id, wanted)
            if position is None:
                reset = True
                self.resets += 1
            else:
                cursor, position_id = position, last_event_id
                self.replayed += head - position
        if wanted is not None:
            position_id = self.log.name_for(cursor, wanted) or position_id
        # `connected` carries the client's position, so even a client that has seen no event yet
        # resumes from the right place after a dropped connection; so does `reset`.
        preamble = sse.encode_retry(self.retry) + sse.encode_event("connected", id=position_id)
        if reset:
            preamble += self._reset_frame(last_event_id or "", position_id)
        client = Client(cursor, head, wanted, self.clock.monotonic())
        client.preamble = preamble
        client.reset = reset
        self.clients[client] = None
        self.accepted += 1
        return client

    def _reset_frame(self, last_event_id: str, position_id: str) -> bytes:
        data = {"reason": "unknown_last_event_id", "last_event_id": last_event_id}
        # The id tells the client where it now stands, so a reconnect resumes from here.
        return sse.encode_event(orjson.dumps(data).decode(), event="reset", id=position_id)

    def _drop(self, client: Client, reason: str) -> None:
        """Take a client out now; its sender ends the stream."""
        if self.clients.pop(client, 0) is None:
            self.dropped[reason] += 1
        client.end(reason)

    def forget_history(self) -> None:
        """Events were lost before they could be published: drop every client and forget every id,
        so each reconnects, resumes from an id now unknown, and is told `reset`."""
        self.log.forget(new_id())
        for client in list(self.clients):
            self._drop(client, "lost")

    def disconnect(self, client: Client) -> None:
        """The peer went away."""
        self._drop(client, "gone")

    async def serve(self, client: Client, write: Write) -> None:
        """Send the client its stream until it ends; `write` sends one chunk to the peer. The loop is
        here, not in a coroutine of its own: every frame a connection holds costs memory."""
        self._senders += 1
        self._senders_done.clear()
        loop = asyncio.get_running_loop()
        clock = self.clock
        try:
            try:
                async with asyncio.timeout(None) as guard:
                    client._guard = guard
                    chunk: bytes | None = client.preamble
                    while client.reason is None:
                        chunk = chunk or self._next_to_send(client)
                        if chunk is None:  # nothing to send: wait here (a helper would hold a frame)
                            if client.reason is not None:
                                break
                            client._waiter = loop.create_future()
                            self._idle[client] = None
                            try:
                                await client._waiter
                            finally:
                                self._idle.pop(client, None)
                                client._waiter = None
                            client.mark = self.log.head
                            continue
                        client.write_started = clock.monotonic()
                        await write(chunk)
                        client.last_write = clock.monotonic()
                        client.write_started = None
                        chunk = None
                        client.ping_due = False
            except TimeoutError:  # the watchdog (or shutdown) cut a write short
                self._drop(client, "write_timeout")
                return
            finally:
                client._guard = None
                client.write_started = None
            if client.reason != "gone":
                # Best effort: a client whose connection still takes writes learns why it ends.
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(GOODBYE_TIMEOUT):
                        await write(sse.DISCONNECTED)
        finally:
            self._drop(client, "gone")
            self._senders -= 1
            if not self._senders:
                self._senders_done.set()

    def _next_to_send(self, client: Client) -> bytes | None:
        """The client's next chunk: its next events, else a heartbeat when one is due, else None."""
        while client.reason is None:
            chunk = self._next_chunk(client)
            if chunk is not None:
                return chunk
            if client.cursor >= self.log.head:  # else a batch held nothing this client wants
                return sse.PING if client.ping_due else None
        return None

    def _next_chunk(self, client: Client) -> bytes | None:
        log = self.log
        head = log.head
        lag = self._latest_publish_start - max(client.cursor, client.mark)
        if client.cursor < log.base or lag > self.client_buffer:
            self._drop(client, "slow")
            return None
        start, stop = client.cursor, min(head, client.cursor + MAX_CHUNK_EVENTS)
        if client.filter is None:  # no filter: the common case, kept cheap
            stop = self._chunk_end(start, stop)
            client.cursor = stop
            return self._joined_chunk(start, stop) or None
        events = log.between(start, stop)
        client.cursor += len(events)
        wants = client.filter.wants
        frames = [event.frame for event in events if wants(event)]
        return b"".join(frames) if frames else None

    def _chunk_end(self, start: int, limit: int) -> int:
        """Where a chunk from `start` ends: at the last publish's end within (start, limit], else limit."""
        ends = self._publish_ends
        index = bisect.bisect_right(ends, limit) - 1
        return ends[index] if index >= 0 and ends[index] > start else limit

    def _joined_chunk(self, start: int, stop: int) -> bytes:
        chunk = self._joined.get((start, stop))
        if chunk is None:
            chunk = b"".join([event.frame for event in self.log.between(start, stop)])
            self._joined[start, stop] = chunk
            if len(self._joined) > _CHUNKS_KEPT:
                del self._joined[next(iter(self._joined))]
        return chunk

    # --- housekeeping -----------------------------------------------------------------------

    async def run_maintenance(self) -> None:
        """Heartbeats, the write watchdog and the TTL sweep, until cancelled."""
        clock = self.clock
        tick = min(1.0, self.heartbeat / 4, self.write_timeout / 4)
        sweep_every = self.log.ttl / 2
        next_sweep = clock.monotonic() + sweep_every
        while True:
            await clock.sleep(tick)
            now = clock.monotonic()
            self._watch_clients(now)
            if now >= next_sweep:
                self.log.trim(clock.time())
                next_sweep = now + sweep_every

    def _watch_clients(self, now: float) -> None:
        """Ask idle clients for a heartbeat; cut short writes that have taken `write_timeout`."""
        loop = asyncio.get_running_loop()
        for client in self.clients:
            started = client.write_started
            if started is not None:
                if now - started >= self.write_timeout and client._guard is not None:
                    client._guard.reschedule(loop.time())
            elif now - client.last_write >= self.heartbeat:
                client.ping_due = True
                client.wake()

    async def close(self, within: float) -> None:
        """Refuse new clients, tell every client `disconnected`, and wait for their streams to end."""
        self.closing = True
        deadline = asyncio.get_running_loop().time() + min(GOODBYE_TIMEOUT, within / 2)
        for client in list(self.clients):
            self._drop(client, "shutdown")
            if client.write_started is not None and client._guard is not None:
                client._guard.reschedule(deadline)  # a write in progress: give it a moment, no more
        if self._senders:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(within):
                    await self._senders_done.wait()
