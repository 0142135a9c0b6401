"""Downsampled history: a metric's readings summarised per fixed step of time.

A bucket covers `[start, start + step)`, where `start` is a multiple of the step counted in microseconds
from the Unix epoch (floored, so before 1970 too). Buckets come in ascending order and those with no
readings are left out, so a `limit` counts buckets that hold something. `first` and `last` are the values
of the bucket's earliest and latest readings by (timestamp, id), the order every store keeps.

SQLite computes buckets in SQL; the memory and Redis stores share the computation here (`summarize` for
one bucket, `BucketBuilder` for a stream of readings fed a chunk at a time).

A bucket that would start before 0001-01-01 (only readings in that day's first step, with a step that
does not divide the time since) reports 0001-01-01T00:00:00Z as its start: `datetime` goes no earlier.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any, Final

from .errors import ValidationError
from .models import format_timestamp

__all__ = [
    "MAX_BUCKETS",
    "MAX_STEP",
    "MIN_STEP",
    "Bucket",
    "BucketBuilder",
    "bucket_start",
    "parse_step",
    "start_moment",
    "summarize",
]

MAX_BUCKETS: Final = 10_000
MIN_STEP: Final = 1_000  # microseconds: 1 ms
MAX_STEP: Final = 366 * 86_400 * 1_000_000  # microseconds: 366 days

STEP_MESSAGE: Final = "step must be a number of seconds or a duration such as 10s, 5m, 1h (from 1ms to 366d)"

_UNITS: Final = {"ms": 1_000, "s": 1_000_000, "m": 60_000_000, "h": 3_600_000_000, "d": 86_400_000_000}
_DURATION: Final = re.compile(r"([0-9]+(?:\.[0-9]+)?|\.[0-9]+)(ms|s|m|h|d)?")
_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)
_EARLIEST: Final = datetime.min.replace(tzinfo=UTC)
_EARLIEST_MICROS: Final = (_EARLIEST - _EPOCH) // timedelta(microseconds=1)


@dataclass(frozen=True, slots=True)
class Bucket:
    """The readings of one step of time: how many, their extremes and mean, the first and the last."""

    start: datetime  # aware, UTC
    count: int
    min: float
    max: float
    avg: float
    first: float
    last: float

    def to_dict(self) -> dict[str, Any]:
        return {
            "start": format_timestamp(self.start),
            "count": self.count,
            "min": self.min,
            "max": self.max,
            "avg": self.avg,
            "first": self.first,
            "last": self.last,
        }


def parse_step(value: object) -> int:
    """A step in whole microseconds (rounded to the nearest) from a number of seconds (`10`, `0.5`, or
    that as text) or a duration text with a unit: `250ms`, `10s`, `5m`, `1.5h`, `1d`."""
    if isinstance(value, bool):  # a bool is an int to Python, never a step to a user
        raise ValidationError(STEP_MESSAGE)
    if isinstance(value, int | float):
        amount, unit = Decimal(value), _UNITS["s"]
    elif isinstance(value, str) and (match := _DURATION.fullmatch(value)):
        amount, unit = Decimal(match[1]), _UNITS[match[2] or "s"]
    else:
        raise ValidationError(STEP_MESSAGE)
    if not amount.is_finite():
        raise ValidationError(STEP_MESSAGE)
    step = int((amount * unit).to_integral_value())
    if not MIN_STEP <= step <= MAX_STEP:
        raise ValidationError(STEP_MESSAGE)
    return step


def bucket_start(micros: int, step: int) -> int:
    """The start of the bucket holding `micros` (since the epoch): floored, so before 1970 too."""
    return micros // step * step


def summarize(start: int, values: Sequence[float]) -> Bucket:
    """The bucket starting at `start` (microseconds since the epoch) from its values in reading order."""
    return Bucket(
        start=start_moment(start),
        count=len(values),
        min=min(values),
        max=max(values),
        avg=math.fsum(values) / len(values),
        first=values[0],
        last=values[-1],
    )


class BucketBuilder:
    """Buckets from (microseconds since the epoch, value) pairs fed in (timestamp, id) order, a chunk at
    a time; it takes no more once `limit` buckets are complete."""

    __slots__ = ("_start", "_values", "buckets", "limit", "step")

    def __init__(self, step: int, limit: int) -> None:
        self.step = step
        self.limit = limit
        self.buckets: list[Bucket] = []
        self._start = 0
        self._values: list[float] = []  # the current bucket's, not yet complete

    def add(self, points: Iterable[tuple[int, float]]) -> bool:
        """Take more pairs; False once the buckets wanted are complete (feed no more)."""
        if len(self.buckets) >= self.limit:
            return False
        step, start, values = self.step, self._start, self._values
        end = start + step
        for micros, value in points:
            if micros >= end or not values:  # sorted input: a reading past the current bucket
                if values:
                    self.buckets.append(summarize(start, values))
                    if len(self.buckets) >= self.limit:
                        self._values = []
                        return False
                start = bucket_start(micros, step)
                end, values = start + step, []
            values.append(value)
        self._start, self._values = start, values
        return True

    def finish(self) -> list[Bucket]:
        """The buckets, the last one included now that no more readings come."""
        if self._values and len(self.buckets) < self.limit:
            self.buckets.append(summarize(self._start, self._values))
            self._values = []
        return self.buckets


def start_moment(micros: int) -> datetime:
    """The moment a bucket starting at `micros` (since the epoch) starts, as `Bucket.start` has it."""
    return _EARLIEST if micros < _EARLIEST_MICROS else _EPOCH + timedelta(microseconds=micros)
