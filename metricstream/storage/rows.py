"""What the durable stores (`sqlite.py`, `redis.py`) share: time as integer microseconds, and a reading
from the JSON the HTTP API gives it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any, Final

from ..domain.values import MetricReading

__all__ = ["micros", "moment", "reading_from_dict"]

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
