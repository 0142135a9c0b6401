"""The retained event log: what a client resuming with `Last-Event-ID` is replayed from.

Events get consecutive sequence numbers in the order they are published; that order, not the order of the
UUIDv7 ids, is the one every client sees (ids from other processes or a drifting clock need not sort).
Events older than the TTL are dropped by `trim`, so memory is bounded by the event rate times the TTL.
Not thread-safe: it lives on the server's event loop.
"""

from __future__ import annotations

from collections.abc import Iterable

from .models import Event

__all__ = ["GENESIS_ID", "EventLog"]

# Stands for "before the first event": what a REST read reports while no event exists yet, so a client
# can still resume from that state. Valid while no event has expired from this log.
GENESIS_ID = "00000000-0000-0000-0000-000000000000"


class EventLog:
    def __init__(self, ttl: float) -> None:
        self.ttl = ttl
        self._events: list[Event] = []
        self._base = 0  # sequence number of self._events[0]
        self._seq_by_id: dict[str, int] = {}
        self._newest_id: str | None = None  # remembered after it expires: it still marks the head
        self._truncated = False  # history before the first retained event is gone

    def __len__(self) -> int:
        return len(self._events)

    @property
    def head(self) -> int:
        """Sequence number the next event will get."""
        return self._base + len(self._events)

    @property
    def base(self) -> int:
        """Sequence number of the oldest retained event."""
        return self._base

    @property
    def position_id(self) -> str:
        """An id that resumes at the head: the newest event's, or GENESIS_ID before any."""
        return self._newest_id or GENESIS_ID

    def append(self, event: Event) -> None:
        self._seq_by_id[event.id] = self.head
        self._events.append(event)
        self._newest_id = event.id

    def restore(self, events: Iterable[Event], truncated: bool) -> None:
        """Load stored events into an empty log; `truncated`: older ones expired, so the start of
        this log is not the beginning of history (GENESIS_ID no longer resumes from it)."""
        if self._events or self._base:
            raise RuntimeError("restore() needs an empty log")
        self._truncated = truncated
        self.extend(events)

    def forget(self) -> None:
        """Forget every event (some were lost): every id known so far now gets a reset."""
        self._base = self.head
        self._events.clear()
        self._seq_by_id.clear()
        self._newest_id = None
        self._truncated = True

    def extend(self, events: Iterable[Event]) -> None:
        for event in events:
            self.append(event)

    def position_after(self, event_id: str) -> int | None:
        """Sequence number just after `event_id`, or None when it is unknown or expired."""
        seq = self._seq_by_id.get(event_id)
        if seq is not None:
            return seq + 1
        if event_id == self._newest_id:  # expired, but nothing came after it
            return self.head
        if event_id == GENESIS_ID and self._base == 0 and not self._truncated:
            return 0
        return None

    def between(self, start: int, stop: int) -> list[Event]:
        """Events with sequence numbers in [start, stop), clamped to what is retained."""
        start = max(start, self._base) - self._base
        return self._events[start : max(stop - self._base, start)]

    def trim(self, now: float) -> int:
        """Drop events older than the TTL; returns how many were dropped."""
        cutoff = now - self.ttl
        count = 0
        for event in self._events:
            if event.created >= cutoff:
                break
            count += 1
        if count:
            for event in self._events[:count]:
                del self._seq_by_id[event.id]
            del self._events[:count]
            self._base += count
            self._truncated = True
        return count
