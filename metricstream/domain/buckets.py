"""Downsampled history: a metric's readings summarised per fixed step of time.

A bucket covers `[start, start + step)`, `start` a multiple of the step in microseconds since the Unix epoch
(floored, so before 1970 too; never before 0001-01-01, where `datetime` ends). SQLite computes buckets in
SQL, the memory store one bucket at a time (`summarise`), Redis per chunk read in a Lua script, whose runs
`BucketBuilder` merges into buckets and limits. A bucket whose sum overflows though its mean cannot (SQLite's
AVG and the Lua sums give infinity, `math.fsum` raises: `overflowed`) is summed again with every value scaled
down by a power of two, which is exact, and the mean scaled back up (`mean`, and the Redis script's `shift`);
the common path pays nothing for it. What a bucket holds is in docs/python-api.md.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any, Final

from ..errors import ValidationError
from .values import format_timestamp

__all__ = [
    "MAX_BUCKETS",
    "MAX_STEP",
    "MIN_STEP",
    "Bucket",
    "BucketBuilder",
    "bucket_start",
    "mean",
    "overflowed",
    "parse_step",
    "shift_for",
    "start_moment",
    "steps_before",
    "summarise",
]

STEP_MESSAGE: Final = "step must be a number of seconds or a duration such as 10s, 5m, 1h (from 1ms to 366d)"

MAX_BUCKETS: Final = 10_000
# Steps are in microseconds: 1 ms to 366 days.
MIN_STEP: Final = 1_000
MAX_STEP: Final = 366 * 86_400 * 1_000_000


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


def steps_before(until: datetime, step: int, count: int) -> datetime:
    """`count` steps before `until`, or 0001-01-01T00:00:00Z where that is earlier than a datetime goes."""
    try:
        return until - timedelta(microseconds=step * count)
    except OverflowError:
        return _EARLIEST


def bucket_start(micros: int, step: int) -> int:
    """The start of the bucket holding `micros` (since the epoch): floored, so before 1970 too."""
    return micros // step * step


class BucketBuilder:
    """Buckets from summaries of runs of readings fed in (timestamp, id) order, each run within one
    bucket; runs of one bucket (split across reads) are merged. The first `limit` buckets are taken."""

    __slots__ = ("_open", "buckets", "limit")

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.buckets: list[Bucket] = []
        # The last bucket, which a later run may still add to.
        self._open: _Run | None = None

    @property
    def full(self) -> bool:
        """Whether `limit` buckets are started: readings of a later one are not wanted."""
        return len(self.buckets) + (self._open is not None) >= self.limit

    def add(
        self, start: int, count: int, low: float, high: float, total: float, first: float, last: float
    ) -> bool:
        """Take a run of `count` readings of the bucket starting at `start` (microseconds since the epoch):
        their least, greatest and summed values, the first's and the last's. False, and nothing taken, if
        it would start a bucket past the limit."""
        run = self._open
        if run is not None and run.start == start:
            run.count += count
            run.low = min(run.low, low)
            run.high = max(run.high, high)
            run.total += total
            run.last = last
            return True
        if self.full:
            return False
        self._close()
        self._open = _Run(start, count, low, high, total, first, last)
        return True

    def finish(self) -> list[Bucket]:
        """The buckets, the last one closed now that no more runs come."""
        self._close()
        return self.buckets

    def _close(self) -> None:
        run, self._open = self._open, None
        if run is not None:
            mean = run.total / run.count
            self.buckets.append(
                Bucket(start_moment(run.start), run.count, run.low, run.high, mean, run.first, run.last)
            )


@dataclass(slots=True)
class _Run:
    start: int
    count: int
    low: float
    high: float
    total: float
    first: float
    last: float


def summarise(start: int, values: Sequence[float]) -> Bucket:
    """The bucket starting at `start` (microseconds since the epoch) of these values, in reading order."""
    return Bucket(
        start_moment(start), len(values), min(values), max(values), mean(values), values[0], values[-1]
    )


def mean(values: Sequence[float]) -> float:
    """The mean of finite values, as exact as `math.fsum` makes it, and finite even where their sum is not."""
    try:
        return math.fsum(values) / len(values)
    except OverflowError:  # the sum passes the largest float, though the mean cannot
        shift = shift_for(len(values))
        scaled = math.fsum([math.ldexp(value, -shift) for value in values])
        return math.ldexp(scaled / len(values), shift)


def shift_for(count: int) -> int:
    """The power of two to divide `count` finite values by so that no sum of them overflows: each is below
    2**1024, so their sum is below count * 2**1024. Exact, but for values within that factor of the
    smallest floats, whose last bits go: they count only where huge values of both signs cancel out."""
    return count.bit_length() + 1


def overflowed(bucket: Bucket) -> bool:
    """Whether a store's sum of the bucket's values overflowed (its mean is then infinite or NaN)."""
    return not math.isfinite(bucket.avg)


def start_moment(micros: int) -> datetime:
    """The moment a bucket starting at `micros` (since the epoch) starts, as `Bucket.start` has it."""
    return _EARLIEST if micros < _EARLIEST_MICROS else _EPOCH + timedelta(microseconds=micros)
