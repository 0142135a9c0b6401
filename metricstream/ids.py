"""Event, metric and reading ids: UUIDv7s, each greater than every id this process made or was told of."""

from __future__ import annotations

import secrets
import threading
import uuid

import uuid6

__all__ = ["ensure_ids_after", "new_id", "new_ids"]

_id_lock = threading.Lock()
# Every new id is greater than this one (as an integer).
_id_floor = 0


def new_id() -> str:
    """A new UUIDv7 as text, greater than every id this process made or was told of."""
    return new_ids(1)[0]


def new_ids(count: int) -> list[str]:
    """`count` new UUIDv7s as text, ascending, each greater than every id made or told of before.

    uuid6 keeps its monotonic state in an unlocked global; the lock makes ids unique and ordered across
    threads. Under bursts the library pushes the embedded time ahead of the clock, so no code here reads
    time out of an id. A batch takes one id from uuid6 and counts up from it in the random bits (RFC 9562's
    monotonic counter method), which is several times cheaper than one uuid6 call per id.
    """
    global _id_floor
    with _id_lock:
        value = uuid6.uuid7().int
        if value <= _id_floor or (value & _RAND_B) + count > _RAND_B:
            # a stored id from before a restart is ahead of the clock, or the counter would overflow
            milliseconds = max(value, _id_floor) >> 80
            value = uuid6.UUID(int=((milliseconds + 1) << 80) | secrets.randbits(60), version=7).int
        _id_floor = value + count - 1
    # Formatted here (a UUID object per id costs more); when counting up leaves all but the last group
    # alone, as it does but once in 2**48 / count batches, only that group is formatted per id.
    text = f"{value:032x}"
    head = f"{text[:8]}-{text[8:12]}-{text[12:16]}-{text[16:20]}-"
    node = value & _NODE
    if node + count <= _NODE:
        return [f"{head}{number:012x}" for number in range(node, node + count)]
    ids = []
    for offset in range(count):
        text = f"{value + offset:032x}"
        ids.append(f"{text[:8]}-{text[8:12]}-{text[12:16]}-{text[16:20]}-{text[20:]}")
    return ids


# UUIDv7's low 62 random bits, below the variant.
_RAND_B = (1 << 62) - 1
# The last group of a UUID's text: its low 48 bits.
_NODE = (1 << 48) - 1


def ensure_ids_after(event_id: str) -> None:
    """Make every later `new_id()` sort after `event_id` (e.g. the newest stored one)."""
    global _id_floor
    with _id_lock:
        _id_floor = max(_id_floor, uuid.UUID(event_id).int)
