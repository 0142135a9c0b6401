"""The retained event log: what a client resuming with `Last-Event-ID` is replayed from.

Events get consecutive sequence numbers in publish order; that order, not the UUIDv7 ids' (ids from other
processes or a drifting clock need not sort), is the one every client sees. `trim` drops events older than
the TTL, so memory is bounded by the event rate times the TTL. Not thread-safe: it lives on the server's
event loop. A filtered stream (`StreamFilter`: some event types, one metric's events, a caller's test)
names its position by the newest event it wants at or before it (`GENESIS_ID` while it wanted none); that
name stays resumable after it expires, for the log keeps the newest trimmed event of each kind, its
`marks`, as the stores do (`RetainedLog`). docs/architecture.md (Replay) and docs/protocol.md (filtered
streams) say what follows.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Protocol

from ..ids import new_id
from ..wire import EVENT_TYPES, GENESIS_ID, METRIC_CREATED
from . import sse

__all__ = [
    "Event",
    "EventLog",
    "Mark",
    "RetainedLog",
    "StreamFilter",
    "Subject",
    "expired_prefix",
    "newest_of_each_kind",
]


# A frame's bytes before its body, besides the id and type.
_FRAMING = len("id: \nevent: \ndata: ")


class Subject(Protocol):
    """What an event announces: something about one metric, as JSON. (The stream knows no more of it.)"""

    @property
    def metric_key(self) -> str: ...

    def to_json(self) -> bytes: ...


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
    def create(cls, type: str, subject: Subject, created: float, event_id: str | None = None) -> Event:
        """A new event announcing `subject`, created at `created` (wall-clock seconds, from the clock). No
        part needs `restore`'s check: our ids and event types are plain text, and JSON escapes line breaks."""
        event_id = event_id or new_id()
        frame = b"id: %s\nevent: %s\ndata: %s\n\n" % (event_id.encode(), type.encode(), subject.to_json())
        return cls(event_id, type, subject.metric_key, frame, created)

    @classmethod
    def announcing(
        cls, type: str, subjects: Sequence[Subject], created: float, event_ids: Sequence[str]
    ) -> list[Event]:
        """`create`'s events for many subjects, each with its id, made in one loop (a batch's readings)."""
        fields = b"\nevent: %s\ndata: " % type.encode()
        return [
            cls(
                event_id,
                type,
                subject.metric_key,
                b"id: %s%s%s\n\n" % (event_id.encode(), fields, subject.to_json()),
                created,
            )
            for subject, event_id in zip(subjects, event_ids, strict=True)
        ]

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


# (event type, metric id), the id "" for that type over every metric.
Kind = tuple[str, str]


@dataclass(frozen=True, slots=True)
class StreamFilter:
    """What a filtered stream wants: events of `types`, or one metric's readings and deletion, or both;
    and, if given, only events that pass `matches`, a test from a layer that knows metrics (a `labels=`
    filter: `web/watch.py`). `matches` sees every event the stream passes, in order, before any other test
    (so it may learn from events the stream does not send, such as a matching metric's creation), and may
    be asked again of older ones. Make one with `of`, which also works out the `kinds` of event it may
    want (with `matches`, each type over every metric: the log cannot tell which metrics pass)."""

    types: frozenset[str] | None
    metric_id: str | None
    kinds: tuple[Kind, ...]
    matches: Callable[[Event], bool] | None = None

    @classmethod
    def of(
        cls,
        types: frozenset[str] | None,
        metric_id: str | None,
        matches: Callable[[Event], bool] | None = None,
    ) -> StreamFilter | None:
        """The filter of a stream's query; None when it keeps every event."""
        if metric_id is None and matches is None and (types is None or types >= EVENT_TYPES):
            return None
        wanted = EVENT_TYPES if types is None else types
        if metric_id is not None:  # a metric's own events: its readings and its deletion
            wanted = wanted - {METRIC_CREATED}
        return cls(types, metric_id, tuple((type, metric_id or "") for type in sorted(wanted)), matches)

    def wants(self, event: Event) -> bool:
        if self.matches is not None and not self.matches(event):
            return False
        if self.types is not None and event.type not in self.types:
            return False
        if self.metric_id is not None:
            return event.type != METRIC_CREATED and event.metric_id == self.metric_id
        return True


@dataclass(frozen=True, slots=True)
class Mark:
    """The newest trimmed event of one kind: of `type` over every metric (`metric_id` ""), or of one
    metric (any type but metric_created, which no metric's filter wants)."""

    type: str
    metric_id: str
    # Its place in the order of the log that trimmed it: marks are compared with each other only.
    seq: int
    id: str


@dataclass(frozen=True, slots=True)
class RetainedLog:
    """What a store keeps of the event log: the retained events in log order; whether older ones were
    trimmed; and the marks of what was trimmed, or None when older events were trimmed before marks were
    kept (a store written by an older metricstream)."""

    events: list[Event]
    truncated: bool
    marks: list[Mark] | None


def newest_of_each_kind(events: Sequence[Event], first_seq: int) -> list[Mark]:
    """The marks `events` leave once trimmed: the newest of each kind among them (in log order, the first
    numbered `first_seq`). Read newest first, so each event costs one look-up."""
    marks: dict[Kind, Mark] = {}
    seq = first_seq + len(events)
    for event in reversed(events):
        seq -= 1
        kind = (event.type, "" if event.type == METRIC_CREATED else event.metric_id)
        if kind not in marks:
            marks[kind] = Mark(event.type, kind[1], seq, event.id)
            if (event.type, "") not in marks:
                marks[event.type, ""] = Mark(event.type, "", seq, event.id)
    return list(marks.values())


class EventLog:
    """Retained events in publish order, and where trimmed history ends.

    Trimming goes by position, oldest first, and stops at the first event still within the TTL: a wall clock
    that stepped back can keep an expired event a while longer, never open a gap in the middle. The id of
    the last trimmed event is remembered, so a client that saw it resumes at the oldest retained event (it
    missed nothing); only an id from before it has lost events and gets `reset`. A filtered client's id
    also resumes there when it is the newest trimmed event the filter wants (or the origin, `GENESIS_ID`,
    while it wanted none): see the module docstring.
    """

    def __init__(self, ttl: float) -> None:
        self.ttl = ttl
        self._events: list[Event] = []
        # The sequence number of self._events[0].
        self._base = 0
        self._seq_by_id: dict[str, int] = {}
        # Stands for position `_base`: the last event trimmed (or forgotten).
        self._trimmed_id: str | None = None
        # Whether history before the first retained event is gone.
        self._truncated = False
        # type -> metric id (or "": any) -> sequence number of the newest retained event of that kind
        self._latest: defaultdict[str, dict[str, int]] = defaultdict(dict)
        # kind -> (seq, id) of its newest trimmed event.
        self._marks: dict[Kind, tuple[int, str]] = {}
        # What a filtered client that wanted no event yet resumes from.
        self._origin = GENESIS_ID
        # Whether every trimmed event since the origin left its marks.
        self._tracked = True

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
        self.extend((event,))

    def restore(self, retained: RetainedLog) -> None:
        """Load what a store kept into an empty log. When older events were trimmed (`truncated`), the
        start of this log is not the beginning of history: GENESIS_ID no longer resumes from it."""
        if self._events or self._base:
            raise RuntimeError("restore() needs an empty log")
        self._truncated = retained.truncated
        self._tracked = retained.marks is not None or not retained.truncated
        # Numbered before the first retained event, in the store's order.
        stored = sorted(retained.marks or (), key=lambda mark: mark.seq)
        for seq, mark in enumerate(stored, start=-len(stored)):
            self._marks[mark.type, mark.metric_id] = (seq, mark.id)
        self.extend(retained.events)

    def forget(self, position_id: str) -> None:
        """Forget every event (some were lost): every id known so far now gets a reset, and
        `position_id` (a fresh id no event has) stands for the new head."""
        self._base = self.head
        self._events.clear()
        self._seq_by_id.clear()
        self._latest.clear()
        self._marks.clear()
        self._trimmed_id = self._origin = position_id
        self._truncated = True
        self._tracked = True

    def extend(self, events: Iterable[Event]) -> None:
        seq = self.head
        seq_by_id, latest, append = self._seq_by_id, self._latest, self._events.append
        # On every publish: kept to a few dictionary writes per event.
        for event in events:
            seq_by_id[event.id] = seq
            newest = latest[event.type]
            newest[""] = seq
            if event.type != METRIC_CREATED:
                newest[event.metric_id] = seq
            append(event)
            seq += 1

    def position_after(self, event_id: str, wanted: StreamFilter | None = None) -> int | None:
        """Sequence number just after `event_id`, or None when events after it are gone or it is unknown;
        for a stream that wants only what `wanted` matches, gone means gone among those."""
        seq = self._seq_by_id.get(event_id)
        if seq is not None:
            return seq + 1
        if event_id == self._trimmed_id:  # trimmed, but everything after it is still here
            return self._base
        if event_id == GENESIS_ID and self._base == 0 and not self._truncated:
            return 0
        if wanted is not None and event_id == self._name_of_base(wanted):
            return self._base
        return None

    def name_for(self, position: int, wanted: StreamFilter) -> str | None:
        """The id a stream that wants only what `wanted` matches resumes from at `position` (the next
        sequence number to send): the newest event it wants before there, or else the name of the oldest
        retained event (`_name_of_base`). None when the log cannot tell (an older store's trims left no
        marks)."""
        newest = max((self._latest[type].get(metric_id, -1) for type, metric_id in wanted.kinds), default=-1)
        if newest >= position:  # one it wants comes later: look back from the position
            events, base = self._events, self._base
            seqs = range(position - 1, base - 1, -1)
            newest = next((seq for seq in seqs if wanted.wants(events[seq - base])), -1)
        if newest >= self._base:
            return self._events[newest - self._base].id
        return self._name_of_base(wanted)

    def _name_of_base(self, wanted: StreamFilter) -> str | None:
        """For `wanted`, the id that stands for the oldest retained event: the newest trimmed event it
        wants (none after it is gone), or the origin when it wanted none of those trimmed."""
        marks = [mark for kind in wanted.kinds if (mark := self._marks.get(kind)) is not None]
        if marks:
            return max(marks)[1]
        return self._origin if self._tracked else None

    def between(self, start: int, stop: int) -> list[Event]:
        """Events with sequence numbers in [start, stop), clamped to what is retained."""
        start = max(start, self._base) - self._base
        return self._events[start : max(stop - self._base, start)]

    def trim(self, now: float) -> int:
        """Drop events older than the TTL, oldest first, up to the first one still within it; returns
        how many were dropped."""
        count = expired_prefix(self._events, now - self.ttl)
        if count:
            dropped = self._events[:count]
            for event in dropped:
                del self._seq_by_id[event.id]
            for mark in newest_of_each_kind(dropped, self._base):
                self._marks[mark.type, mark.metric_id] = (mark.seq, mark.id)
                latest = self._latest[mark.type]
                if latest.get(mark.metric_id) == mark.seq:  # none of its kind is retained now
                    del latest[mark.metric_id]
            self._trimmed_id = dropped[-1].id
            del self._events[:count]
            self._base += count
            self._truncated = True
        return count
