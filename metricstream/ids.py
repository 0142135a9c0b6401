"""Event, metric and reading ids: UUIDv7s (RFC 9562), each greater than every id this process made or was
told of.

An id is the Unix time in milliseconds (48 bits), the version (7), 12 random bits, the variant (0b10) and
62 more bits. The first id of a millisecond takes all 74 of those bits at random; the ids after it in the
same millisecond, or while the clock stands behind an id already made (a step back, or a stored id from
before a restart), count up from the last one (RFC 9562 §6.2, method 2: the random bits as a counter).
Where counting up would run past the 62 low bits, or count on from an id that is no UUIDv7, the next id
moves a millisecond past the last one, with fresh random bits. So the time in an id may run ahead of the
clock: no code here reads time out of an id.

Made here rather than by `uuid6.uuid7()`, which costs about 7 µs an id (an `os.urandom` call each, a UUID
object, text formatting), and keeps its state in an unlocked global: every reading written pays two ids.
The random bits come from `os.urandom` in blocks of `_POOL_SIZE` bytes, a system call per 400 new
milliseconds rather than per id; a forked child drops its parent's block and never counts on from the
parent's last id, so parent and child cannot make the same id.
"""

from __future__ import annotations

import os
import threading
import time
import uuid
from collections.abc import Callable
from typing import Final

__all__ = ["IdMaker", "ensure_ids_after", "new_id", "new_ids"]

# Bytes of randomness fetched at once; each new millisecond takes 10 of them (74 bits used).
_POOL_SIZE: Final = 4096
_RANDOM_BYTES: Final = 10
# The version (7) and variant (0b10) bits, where they sit in the 128, and their mask.
_VERSION_VARIANT: Final = (0x7 << 76) | (0b10 << 62)
_VERSION_VARIANT_MASK: Final = (0xF << 76) | (0b11 << 62)
# The 74 random bits: 12 below the version, 62 below the variant.
_RANDOM: Final = (0xFFF << 64) | ((1 << 62) - 1)
# The top bit of the low 62, cleared when a millisecond starts after an overflow: room to count again.
_COUNTER_TOP: Final = 1 << 61
# The last group of a UUID's text: its low 48 bits.
_NODE: Final = (1 << 48) - 1


def _unix_milliseconds() -> int:
    return time.time_ns() // 1_000_000


class IdMaker:
    """Makes ids as above: the floor every new id is greater than, and the pool of random bytes, under one
    lock. The module's functions use one for the whole process; tests make their own, on a clock of
    their own (`milliseconds`: Unix time in milliseconds)."""

    def __init__(self, milliseconds: Callable[[], int] = _unix_milliseconds) -> None:
        self._milliseconds = milliseconds
        self._lock = threading.Lock()
        # Every new id is greater than this one (as an integer).
        self._floor = 0
        self._pool = b""
        self._pool_used = 0

    def new_ids(self, count: int) -> list[str]:
        """`count` new UUIDv7s as text, ascending, each greater than every id made or told of before;
        unique and ordered across threads."""
        with self._lock:
            floor = self._floor
            milliseconds = self._milliseconds()
            if milliseconds > floor >> 80:
                first = (milliseconds << 80) | _VERSION_VARIANT | (self._random_bits() & _RANDOM)
            else:
                first = floor + 1
            last = first + count - 1
            if (first & _VERSION_VARIANT_MASK) != _VERSION_VARIANT or (
                last & _VERSION_VARIANT_MASK
            ) != _VERSION_VARIANT:
                # the counter would carry into the variant, or the floor is no UUIDv7 of ours
                milliseconds = max(milliseconds, floor >> 80) + 1
                bits = self._random_bits() & _RANDOM & ~_COUNTER_TOP
                first = (milliseconds << 80) | _VERSION_VARIANT | bits
                last = first + count - 1
            self._floor = last
        return _texts(first, count)

    def ensure_after(self, event_id: str) -> None:
        """Make every later id sort after `event_id`."""
        with self._lock:
            self._floor = max(self._floor, uuid.UUID(event_id).int)

    def forked(self) -> None:
        """In a forked child: a lock of its own, random bytes of its own, and a floor no id of ours has
        (its version bits are 0) a millisecond past the parent's last id, so the child's next id is drawn
        afresh past it, not counted on from it as the parent's next may be."""
        self._lock = threading.Lock()
        self._pool, self._pool_used = b"", 0
        self._floor = ((self._floor >> 80) + 1) << 80

    def _random_bits(self) -> int:
        """80 random bits from the pool, refilled from `os.urandom` when spent. Called under the lock."""
        if self._pool_used + _RANDOM_BYTES > len(self._pool):
            self._pool, self._pool_used = os.urandom(_POOL_SIZE), 0
        start = self._pool_used
        self._pool_used += _RANDOM_BYTES
        return int.from_bytes(self._pool[start : self._pool_used])


def _texts(first: int, count: int) -> list[str]:
    """The ids `first`, `first + 1`, ... as text. A UUID object per id costs more; when counting up leaves
    all but the last group alone, as it does but once in 2**48 / count batches, only that group is
    formatted per id."""
    text = first.to_bytes(16).hex()
    head = f"{text[:8]}-{text[8:12]}-{text[12:16]}-{text[16:20]}-"
    node = first & _NODE
    if count == 1:
        return [head + text[20:]]
    if count == 2 and node < _NODE:  # a reading and its event: no loop
        return [head + text[20:], head + "%012x" % (node + 1)]
    if node + count - 1 <= _NODE:
        return [head + "%012x" % number for number in range(node, node + count)]  # noqa: UP031 (quicker)
    ids = []
    for value in range(first, first + count):
        text = value.to_bytes(16).hex()
        ids.append(f"{text[:8]}-{text[8:12]}-{text[12:16]}-{text[16:20]}-{text[20:]}")
    return ids


_process_ids = IdMaker()
os.register_at_fork(after_in_child=_process_ids.forked)


def new_id() -> str:
    """A new UUIDv7 as text, greater than every id this process made or was told of."""
    return _process_ids.new_ids(1)[0]


def new_ids(count: int) -> list[str]:
    """`count` new UUIDv7s as text, ascending, each greater than every id this process made or was told of
    before; unique and ordered across threads."""
    return _process_ids.new_ids(count)


def ensure_ids_after(event_id: str) -> None:
    """Make every later `new_id()` sort after `event_id` (e.g. the newest stored one)."""
    _process_ids.ensure_after(event_id)
