"""The retained event log: what a client resuming with `Last-Event-ID` is replayed from.

Events get consecutive sequence numbers in the order they are published; that order, not the order of the
UUIDv7 ids, is the one every client sees (ids from other processes or a drifting clock need not sort).
Events older than the TTL are dropped by `trim`, so memory is bounded by the event rate times the TTL.
Not thread-safe: it lives on the server's event loop.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import orjson

from . import sse
from .ids import new_id
from .models import Metric, MetricReading

__all__ = ["GENESIS_ID", "Event", "EventLog", "expired_prefix"]

# Stands for "before the first event": what a REST read reports while no event exists yet, so a client
# can still resume from that state. Valid while no event has been trimmed from this log.
GENESIS_ID = "00000000-0000-0000-0000-000000000000"


_FRAMING = len("id: \nevent: \ndata: ")  # the frame's bytes before its body, besides the id and type


@dataclass(frozen=True, slots=True)
class Event:
    """One retained event: `frame`, its SSE bytes, encoded once. `body`, the JSON the POST returned, is
    read back out of the frame rather than held twice: the log keeps every event for the TTL."""

    id: str
    type: str
    metric_id: str
    frame: bytes
    created: float  # wall-clock seconds, for the TTL; never derived from the id

    @property
    def body(self) -> bytes:
        return self.frame[_FRAMING + len(self.id) + len(self.type) : -2]

    @classmethod
    def create(
        cls, type: str, subject: Metric | MetricReading, created: float, event_id: str | None = None
    ) -> Event:
        """A new event announcing `subject`, created at `created` (wall-clock seconds, from the clock)."""
        metric_id = subject.id if isinstance(subject, Metric) else subject.metric_id
        return cls.restore(event_id or new_id(), type, metric_id, orjson.dumps(subject.to_dict()), created)

    @classmethod
    def restore(cls, id: str, type: str, metric_id: str, body: bytes, created: float) -> Event:
        """An event from its parts; `body` is one line of JSON, as orjson writes it."""
        if (
            not (id.isascii() and type.isascii() and sse.plain(id) and sse.plain(type))
            or b"\n" in body
            or b"\r" in body
        ):
            raise ValueError(f"event {id!r} cannot be framed as one SSE data line")
        # %-formatting makes one exact-size bytes object: orjson's own keeps ~4 KB spare whatever its length
        frame = b"id: %s\nevent: %s\ndata: %s\n\n" % (id.encode(), type.encode(), body)
        return cls(id, type, metric_id, frame, created)


def expired_prefix(events: Iterable[Event], cutoff: float) -> int:
    """How many events, oldest first, come before the first one created at or after `cutoff`: what a
    trim by position may drop (a later event with an earlier time, after a clock step, stays)."""
    count = 0
    for event in events:
        if event.created >= cutoff:
            break
        count += 1
    return count


class EventLog:
    """Retained events in publish order, and where trimmed history ends.

    Trimming goes by position, oldest first, and stops at the first event still within the TTL: a wall clock
    that stepped back can keep an expired event a while longer, never open a gap in the middle. The id of
    the last trimmed event is remembered, so a client that saw it resumes at the oldest retained event (it
    missed nothing); only an id from before it has lost events and gets `reset`.
    """

    def __init__(self, ttl: float) -> None:
        self.ttl = ttl
        self._events: list[Event] = []
        self._base = 0  # sequence number of self._events[0]
        self._seq_by_id: dict[str, int] = {}
        self._trimmed_id: str | None = (
            None  # stands for position `_base`: the last event trimmed (or forgotten)
        )
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
        """An id that resumes at the head: the newest event's, or the last trimmed one's once all expired,
        or GENESIS_ID before any event."""
        if self._events:
            return self._events[-1].id
        return self._trimmed_id or GENESIS_ID

    @property
    def earliest_id(self) -> str:
        """An id that resumes at the oldest retained event: the last one trimmed, or GENESIS_ID."""
        return self._trimmed_id or GENESIS_ID

    def append(self, event: Event) -> None:
        self._seq_by_id[event.id] = self.head
        self._events.append(event)

    def restore(self, events: Iterable[Event], truncated: bool) -> None:
        """Load stored events into an empty log; `truncated`: older ones expired, so the start of
        this log is not the beginning of history (GENESIS_ID no longer resumes from it)."""
        if self._events or self._base:
            raise RuntimeError("restore() needs an empty log")
        self._truncated = truncated
        self.extend(events)

    def forget(self, position_id: str) -> None:
        """Forget every event (some were lost): every id known so far now gets a reset, and
        `position_id` (a fresh id no event has) stands for the new head."""
        self._base = self.head
        self._events.clear()
        self._seq_by_id.clear()
        self._trimmed_id = position_id
        self._truncated = True

    def extend(self, events: Iterable[Event]) -> None:
        for event in events:
            self.append(event)

    def position_after(self, event_id: str) -> int | None:
        """Sequence number just after `event_id`, or None when events after it are gone or it is unknown."""
        seq = self._seq_by_id.get(event_id)
        if seq is not None:
            return seq + 1
        if event_id == self._trimmed_id:  # trimmed, but everything after it is still here
            return self._base
        if event_id == GENESIS_ID and self._base == 0 and not self._truncated:
            return 0
        return None

    def between(self, start: int, stop: int) -> list[Event]:
        """Events with sequence numbers in [start, stop), clamped to what is retained."""
        start = max(start, self._base) - self._base
        return self._events[start : max(stop - self._base, start)]

    def trim(self, now: float) -> int:
        """Drop events older than the TTL, oldest first, up to the first one still within it; returns
        how many were dropped."""
        count = expired_prefix(self._events, now - self.ttl)
        if count:
            for event in self._events[:count]:
                del self._seq_by_id[event.id]
            self._trimmed_id = self._events[count - 1].id
            del self._events[:count]
            self._base += count
            self._truncated = True
        return count
