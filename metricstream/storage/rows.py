"""What the stores share: time as integer microseconds, a reading from the JSON the HTTP API gives it
(`sqlite.py`, `redis.py`), and readings as columns for a table (`ReadingColumns`)."""

from __future__ import annotations

from array import array
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Final

from ..domain.values import MetricReading

__all__ = ["ReadingColumns", "columns_of", "micros", "moment", "reading_from_dict"]

_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND: Final = timedelta(microseconds=1)


def micros(when: datetime) -> int:
    """Microseconds since the Unix epoch: exact, and ordered as the moments are."""
    return (when - _EPOCH) // _MICROSECOND


def moment(microseconds: int) -> datetime:
    return _EPOCH + microseconds * _MICROSECOND


def reading_from_dict(data: dict[str, Any]) -> MetricReading:
    """A reading from `MetricReading.to_dict()`'s JSON (its timestamp is RFC 3339 with a `Z`)."""
    timestamp = datetime.fromisoformat(data["timestamp"].replace("Z", "+00:00"))
    return MetricReading(data["id"], data["metric_id"], data["value"], timestamp)


@dataclass(frozen=True, slots=True)
class ReadingColumns:
    """Readings as two columns, for a table (`Storage.reading_columns`): timestamps in microseconds since the
    epoch and values; `last` is the (timestamp, id) of the last reading, where the next page goes on."""

    times: array[int]
    values: array[float]
    last: tuple[datetime, str] | None


def columns_of(readings: Sequence[MetricReading]) -> ReadingColumns:
    """The columns of readings read as objects (by a store that holds them so)."""
    last = (readings[-1].timestamp, readings[-1].id) if readings else None
    return ReadingColumns(
        array("q", [micros(reading.timestamp) for reading in readings]),
        array("d", [reading.value for reading in readings]),
        last,
    )
