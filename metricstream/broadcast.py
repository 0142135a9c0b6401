"""Connected SSE clients: fan-out, heartbeats, limits and eviction. Knows nothing of metrics or HTTP.

Each client is a cursor into the shared `EventLog` rather than a queue of copies: publishing appends one
event (encoded once) and wakes the clients that are waiting, so it costs the publisher nothing per busy
client and one slow client never delays another. A client's sender writes everything between its cursor
and the head as one chunk. The buffer bound is explicit: a client that falls more than `client_buffer`
events behind while it is busy writing is dropped as slow, as is one whose write takes longer than
`write_timeout`; it is told `data: disconnected` when its connection still takes writes. Events that
arrive while a client waits idle (a large batch) or that it replays on connect do not count as falling
behind: it was ready for them.

Replay cannot race live events: registering a client and reading the log happen in one step on the event
loop, with no await between, so every event lands either in the replay or after it, exactly once.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from typing import Final

import orjson

from . import sse
from .errors import UnavailableError
from .events import EventLog
from .models import READING_CREATED, Event

__all__ = ["Broadcaster", "Client"]

Write = Callable[[bytes], Awaitable[None]]

MAX_CHUNK_EVENTS: Final = 1024  # events joined into one write, so a long replay is sent in steps
GOODBYE_TIMEOUT: Final = 1.0  # seconds to try telling a dropped client `disconnected`


class Client:
    """One connected stream: where it stands in the log, what it wants, why it ends."""

    __slots__ = (
        "_timeout",
        "_waiter",
        "connected_at",
        "cursor",
        "last_write",
        "mark",
        "metric_id",
        "ping_due",
        "preamble",
        "reason",
        "types",
    )

    def __init__(self, cursor: int, mark: int, types: frozenset[str] | None, metric_id: str | None) -> None:
        self.cursor = cursor  # next sequence number to send
        self.mark = mark  # head when it connected or last woke: lag is counted from here
        self.types = types
        self.metric_id = metric_id
        self.reason: str | None = None  # set when the stream must end
        self.ping_due = False
        self.preamble = b""
        self.connected_at = time.monotonic()
        self.last_write = self.connected_at
        self._waiter: asyncio.Future[None] | None = None
        self._timeout: asyncio.Timeout | None = None

    def wants(self, event: Event) -> bool:
        if self.types is not None and event.type not in self.types:
            return False
        if self.metric_id is not None:
            return event.type == READING_CREATED and event.metric_id == self.metric_id
        return True

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
    ) -> None:
        self.log = log
        self.max_clients = max_clients
        self.client_buffer = client_buffer
        self.write_timeout = write_timeout
        self.heartbeat = heartbeat
        self.retry = retry
        self.flush_interval = flush_interval
        self._wake_pending: asyncio.Handle | None = None
        self.closing = False
        self.clients: dict[Client, None] = {}  # insertion order: the first is the oldest
        self.dropped: Counter[str] = Counter()  # reason -> clients dropped
        self.published = 0
        self.replayed = 0
        self.accepted = 0  # clients connected, ever
        self.resets = 0  # clients told `reset`: their Last-Event-ID was unknown
        self._waiting: list[asyncio.Future[None]] = []
        self._senders = 0  # serve() calls still running
        self._senders_done = asyncio.Event()

    # --- publishing -------------------------------------------------------------------------

    def publish(self, events: list[Event]) -> None:
        """Append events to the log and wake every waiting client. Call on the event loop.

        Waking is deferred to one callback (after `flush_interval` seconds, or at the loop's next
        turn): events published meanwhile reach each client in the same single write.
        """
        self.log.extend(events)
        self.published += len(events)
        if self._wake_pending is None and self._waiting:
            loop = asyncio.get_running_loop()
            if self.flush_interval > 0:
                self._wake_pending = loop.call_later(self.flush_interval, self._wake_waiting)
            else:
                self._wake_pending = loop.call_soon(self._wake_waiting)

    def _wake_waiting(self) -> None:
        self._wake_pending = None
        waiting, self._waiting = self._waiting, []
        for waiter in waiting:
            if not waiter.done():
                waiter.set_result(None)

    # --- clients ----------------------------------------------------------------------------

    def connect(
        self,
        last_event_id: str | None = None,
        types: frozenset[str] | None = None,
        metric_id: str | None = None,
    ) -> Client:
        """Register a client positioned just after `last_event_id` (or at the head)."""
        if self.closing:
            raise UnavailableError("the server is shutting down")
        while len(self.clients) >= self.max_clients:
            oldest = next(iter(self.clients))
            self._drop(oldest, "limit")
        head = self.log.head
        cursor, position_id, reset = head, self.log.position_id, b""
        if last_event_id:
            position = self.log.position_after(last_event_id)
            if position is None:
                reset = self._reset_frame(last_event_id)
                self.resets += 1
            else:
                cursor, position_id = position, last_event_id
                self.replayed += head - position
        # `connected` carries the client's position, so even a client that has seen no event yet
        # resumes from the right place after a dropped connection.
        preamble = sse.encode_retry(self.retry) + sse.encode_event("connected", id=position_id) + reset
        client = Client(cursor, head, types, metric_id)
        client.preamble = preamble
        self.clients[client] = None
        self.accepted += 1
        return client

    def _reset_frame(self, last_event_id: str) -> bytes:
        data = {"reason": "unknown_last_event_id", "last_event_id": last_event_id}
        # The id tells the client where it now stands, so a reconnect resumes from here.
        return sse.encode_event(orjson.dumps(data).decode(), event="reset", id=self.log.position_id)

    def _drop(self, client: Client, reason: str) -> None:
        """Take a client out now; its sender ends the stream."""
        if self.clients.pop(client, 0) is None:
            self.dropped[reason] += 1
        client.end(reason)

    def forget_history(self) -> None:
        """Events were lost before they could be published: drop every client and forget every id,
        so each reconnects, resumes from an id now unknown, and is told `reset`."""
        self.log.forget()
        for client in list(self.clients):
            self._drop(client, "lost")

    def disconnect(self, client: Client) -> None:
        """The peer went away."""
        self._drop(client, "gone")

    async def serve(self, client: Client, write: Write) -> None:
        """Send the client its stream until it ends; `write` sends one chunk to the peer."""
        loop = asyncio.get_running_loop()
        self._senders += 1
        self._senders_done.clear()
        try:
            chunk: bytes | None = client.preamble
            while client.reason is None:
                if chunk is None:
                    chunk = self._next_chunk(client)
                if chunk is None:
                    if client.cursor < self.log.head:
                        continue  # a batch with nothing this client wants
                    if client.ping_due:
                        chunk = sse.PING
                    else:
                        waiter = loop.create_future()
                        client._waiter = waiter
                        self._waiting.append(waiter)
                        await waiter
                        client._waiter = None
                        client.mark = self.log.head
                        continue
                if not await self._write(client, write, chunk):
                    return
                chunk = None
                client.ping_due = False
                client.last_write = time.monotonic()
            if client.reason != "gone":
                # Best effort: a client whose connection still takes writes learns why it ends.
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(GOODBYE_TIMEOUT):
                        await write(sse.DISCONNECTED)
        finally:
            self._drop(client, "gone")
            client._waiter = None
            self._senders -= 1
            if not self._senders:
                self._senders_done.set()

    async def _write(self, client: Client, write: Write, chunk: bytes) -> bool:
        try:
            async with asyncio.timeout(self.write_timeout) as timeout:
                client._timeout = timeout
                await write(chunk)
        except TimeoutError:
            self._drop(client, "write_timeout")
            return False
        finally:
            client._timeout = None
        return True

    def _next_chunk(self, client: Client) -> bytes | None:
        log = self.log
        head = log.head
        if client.cursor < log.base or head - max(client.cursor, client.mark) > self.client_buffer:
            self._drop(client, "slow")
            return None
        events = log.between(client.cursor, min(head, client.cursor + MAX_CHUNK_EVENTS))
        client.cursor += len(events)
        frames = [event.frame for event in events if client.wants(event)]
        return b"".join(frames) if frames else None

    # --- housekeeping -----------------------------------------------------------------------

    async def run_maintenance(self) -> None:
        """Heartbeats and the TTL sweep, until cancelled."""
        tick = min(1.0, self.heartbeat / 4)
        sweep_every = self.log.ttl / 2
        next_sweep = time.monotonic() + sweep_every
        while True:
            await asyncio.sleep(tick)
            now = time.monotonic()
            for client in self.clients:
                if now - client.last_write >= self.heartbeat:
                    client.ping_due = True
                    client.wake()
            if now >= next_sweep:
                self.log.trim(time.time())
                next_sweep = now + sweep_every

    async def close(self, within: float) -> None:
        """Refuse new clients, tell every client `disconnected`, and wait for their streams to end."""
        self.closing = True
        deadline = asyncio.get_running_loop().time() + min(GOODBYE_TIMEOUT, within / 2)
        for client in list(self.clients):
            self._drop(client, "shutdown")
            pending = client._timeout  # a write in progress: cut its time limit short
            if pending is not None:
                pending.reschedule(min(deadline, pending.when() or deadline))
        if self._senders:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(within):
                    await self._senders_done.wait()
