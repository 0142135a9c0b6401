"""PromQL's range-vector functions over one series' readings, as Prometheus 2.42 computes them.

A window is closed at both ends, `[end - width, end]` (Prometheus 2.x; 3.0 made it left-open), its
readings in (timestamp, id) order. `rate`, `increase` and `delta` extrapolate as Prometheus's
`extrapolatedRate` does (promql/functions.go), with counter resets; `irate` takes the last two readings.
Readings of one series sharing a timestamp (Prometheus cannot hold them) all count; a window whose
readings all share one timestamp has no rate. Times are integer microseconds.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Final

from ..buckets import mean

__all__ = [
    "OVER_TIME",
    "RATES",
    "Windows",
    "over_time",
    "range_function",
    "resets_of",
]

# What `<name>_over_time` computes from a window's values (the store can do these itself).
OVER_TIME: Final = frozenset({"avg", "min", "max", "sum", "count", "last"})
RATES: Final = frozenset({"rate", "irate", "increase", "delta"})
_SECOND: Final = 1_000_000


@dataclass(frozen=True, slots=True)
class Windows:
    """Windows `[end - width, end]` ending at `first_end + i * step`, for i below `count`."""

    first_end: int
    step: int
    count: int
    width: int

    def __post_init__(self) -> None:
        if self.step < 1 or self.count < 1 or self.width < 0:
            raise ValueError(f"windows need a step and a count of at least 1: {self}")

    def ends(self) -> Iterator[int]:
        return iter(range(self.first_end, self.first_end + self.step * self.count, self.step))

    @property
    def last_end(self) -> int:
        return self.first_end + self.step * (self.count - 1)


def over_time(function: str, values: Sequence[float]) -> float:
    """`<function>_over_time` of a window's values (at least one)."""
    if function == "avg":
        return mean(values)
    if function == "sum":
        try:
            return math.fsum(values)
        except OverflowError:  # an infinite sum, as Prometheus's would be
            return sum(values)
    if function == "min":
        return min(values)
    if function == "max":
        return max(values)
    if function == "count":
        return float(len(values))
    return values[-1]


def resets_of(values: Sequence[float]) -> list[float]:
    """What each reading adds to a counter's increase for a reset: the value before it when it fell."""
    previous = values[:-1]
    return [
        0.0,
        *(before if after < before else 0.0 for before, after in zip(previous, values[1:], strict=True)),
    ]


def range_function(
    function: str, times: Sequence[int], values: Sequence[float], windows: Windows, ends: Sequence[int]
) -> list[float | None]:
    """`function` (a rate or an `_over_time` name without the suffix) over each window ending in `ends`
    (a part of `windows.ends()`), from readings that cover those windows; None where there is no value."""
    width = windows.width
    resets = resets_of(values) if function in ("rate", "increase") else ()
    out: list[float | None] = []
    for end in ends:
        low = bisect.bisect_left(times, end - width)
        high = bisect.bisect_right(times, end, low)
        if function in RATES:
            out.append(_rate(function, times, values, resets, low, high, end, width))
        elif high > low:
            out.append(over_time(function, values[low:high]))
        else:
            out.append(None)
    return out


def _rate(
    function: str,
    times: Sequence[int],
    values: Sequence[float],
    resets: Sequence[float],
    low: int,
    high: int,
    end: int,
    width: int,
) -> float | None:
    if high - low < 2:
        return None
    if function == "irate":
        return _irate(times[high - 2], values[high - 2], times[high - 1], values[high - 1])
    counter = function != "delta"
    return _extrapolated(times, values, resets, low, high, end - width, end, counter, function == "rate")


def _irate(before_time: int, before: float, last_time: int, last: float) -> float | None:
    interval = last_time - before_time
    if interval == 0:
        return None
    # A fall is a counter reset: the counter restarted from zero.
    return (last if last < before else last - before) / (interval / _SECOND)


def _extrapolated(
    times: Sequence[int],
    values: Sequence[float],
    resets: Sequence[float],
    low: int,
    high: int,
    start: int,
    end: int,
    counter: bool,
    rate: bool,
) -> float | None:
    """Prometheus's extrapolatedRate over the readings `low:high` of the window [start, end]."""
    first_time, last_time = times[low], times[high - 1]
    first, result = values[low], values[high - 1] - values[low]
    if counter:
        result += math.fsum(resets[low + 1 : high])
    sampled = (last_time - first_time) / _SECOND
    if sampled == 0:
        return None
    to_start = (first_time - start) / _SECOND
    to_end = (end - last_time) / _SECOND
    average_gap = sampled / (high - low - 1)
    if counter and result > 0 and first >= 0:
        # A counter cannot go below zero: extrapolate no further back than where it would be zero.
        to_start = min(to_start, sampled * (first / result))
    threshold = average_gap * 1.1
    interval = sampled
    interval += to_start if to_start < threshold else average_gap / 2
    interval += to_end if to_end < threshold else average_gap / 2
    factor = interval / sampled
    if rate:
        factor /= (end - start) / _SECOND
    return result * factor
