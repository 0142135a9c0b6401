"""Answers cut by a limit, and where the next one starts: `Page` and its opaque `cursor`.

A page of readings ends at a reading; its cursor names that reading by (timestamp, id), the order every
store keeps, so the next page starts just past it in the query's order (after it ascending, before it
descending). Ties in time are told apart by id, and a reading written meanwhile is neither seen twice nor
skipped unless it sorts before the cursor (ids grow, so a new reading at the cursor's own moment comes
after it). A page of buckets ends before a bucket; its cursor names that bucket's start, where the next
page's `since` goes.

The token is base64url of a kind byte (`r` readings, `b` buckets), the moment in microseconds since the
epoch (8 bytes, signed) and, for readings, the id's 16 bytes: opaque to clients, checked when read back.
"""

from __future__ import annotations

import base64
import binascii
import re
import struct
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Final, TypeVar

__all__ = ["CURSOR_MESSAGE", "Cursor", "Page"]

T = TypeVar("T")

CURSOR_MESSAGE: Final = (
    "cursor must be the cursor of an earlier answer (its Link rel=next, or next_cursor), unchanged"
)

_READINGS: Final = b"r"
_BUCKETS: Final = b"b"
_MOMENT: Final = struct.Struct(">q")
_TOKEN: Final = re.compile(r"[A-Za-z0-9_-]{12,34}")
_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND: Final = timedelta(microseconds=1)
_EARLIEST: Final = (datetime.min.replace(tzinfo=UTC) - _EPOCH) // _MICROSECOND
_LATEST: Final = (datetime.max.replace(tzinfo=UTC) - _EPOCH) // _MICROSECOND


@dataclass(frozen=True, slots=True)
class Cursor:
    """Where a page ended: just past the reading (`moment`, `reading_id`), or for buckets (`reading_id`
    None) at the bucket starting at `moment`."""

    moment: datetime  # aware, UTC
    reading_id: str | None = None

    def encode(self) -> str:
        micros = (self.moment - _EPOCH) // _MICROSECOND
        if self.reading_id is None:
            raw = _BUCKETS + _MOMENT.pack(micros)
        else:
            raw = _READINGS + _MOMENT.pack(micros) + uuid.UUID(self.reading_id).bytes
        return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")

    @classmethod
    def decode(cls, text: object) -> Cursor:
        """The cursor a token stands for (a `Cursor` stands for itself); ValueError if it is not one that
        `encode` made."""
        if isinstance(text, Cursor):
            return text
        if not isinstance(text, str) or not _TOKEN.fullmatch(text):
            raise ValueError("not a cursor")
        try:
            raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
        except binascii.Error:
            raise ValueError("not a cursor") from None
        kind, size = raw[:1], {_READINGS: 25, _BUCKETS: 9}.get(raw[:1])
        if len(raw) != size:
            raise ValueError("not a cursor")
        (micros,) = _MOMENT.unpack_from(raw, 1)
        if not _EARLIEST <= micros <= _LATEST:  # no moment a datetime can hold
            raise ValueError("not a cursor")
        reading_id = str(uuid.UUID(bytes=raw[9:])) if kind == _READINGS else None
        cursor = cls(_EPOCH + micros * _MICROSECOND, reading_id)
        if cursor.encode() != text:  # one token per cursor: no unused bits set
            raise ValueError("not a cursor")
        return cursor


class Page(list[T]):
    """A list of readings or buckets that a limit may have cut: `next_cursor`, None where nothing is left
    out, continues it (pass it back as `cursor=`)."""

    __slots__ = ("next_cursor",)

    def __init__(self, items: Iterable[T] = (), next_cursor: str | None = None) -> None:
        super().__init__(items)
        self.next_cursor = next_cursor

    @property
    def truncated(self) -> bool:
        """Whether more readings (or buckets) match than this page holds."""
        return self.next_cursor is not None

    def __repr__(self) -> str:
        return f"Page({list.__repr__(self)}, next_cursor={self.next_cursor!r})"
