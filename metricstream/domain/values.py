"""The domain's values: metrics, readings and a snapshot of them, frozen, with the one timestamp format
we send. No I/O, no HTTP."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Final, Literal

import orjson

from .paging import Page

__all__ = ["DEFAULT_READINGS_LIMIT", "Metric", "MetricReading", "Order", "Snapshot", "format_timestamp"]

DEFAULT_READINGS_LIMIT: Final = 1000
Order = Literal["asc", "desc"]  # of readings by (timestamp, id)


def format_timestamp(moment: datetime) -> str:
    """RFC 3339 in UTC with microseconds and a `Z`, the one format we send."""
    # Not strftime: glibc's %Y does not pad years before 1000 to four digits. Formatted by hand: a third
    # quicker than isoformat, and every reading's event pays it.
    if moment.tzinfo is not UTC:
        moment = moment.astimezone(UTC)
    return "%04d-%02d-%02dT%02d:%02d:%02d.%06dZ" % (  # noqa: UP031 (a format string would be slower)
        moment.year,
        moment.month,
        moment.day,
        moment.hour,
        moment.minute,
        moment.second,
        moment.microsecond,
    )


@dataclass(frozen=True, slots=True)
class Metric:
    """A series of readings, identified by its name and labels together: `cpu{host=a}` and
    `cpu{host=b}` are two metrics. New fields come last, so positional construction keeps working."""

    id: str
    name: str
    input_frequency: float | None = None
    # label name -> value, sorted by name (`labels.validate_labels`); left out of the hash: a dict has none
    labels: dict[str, str] = field(default_factory=dict, hash=False)
    unit: str | None = None
    description: str | None = None

    @property
    def metric_key(self) -> str:
        """The metric an event about this one concerns (stream filters match on it)."""
        return self.id

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "input_frequency": self.input_frequency,
            "labels": self.labels,
            "unit": self.unit,
            "description": self.description,
        }

    def to_json(self) -> bytes:
        return orjson.dumps(self.to_dict())


@dataclass(frozen=True, slots=True)
class MetricReading:
    id: str
    metric_id: str
    value: float
    timestamp: datetime  # aware, UTC

    @property
    def metric_key(self) -> str:
        """The metric an event about this one concerns (stream filters match on it)."""
        return self.metric_id

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "metric_id": self.metric_id,
            "value": self.value,
            "timestamp": format_timestamp(self.timestamp),
        }

    def to_json(self) -> bytes:
        """`orjson.dumps(self.to_dict())`, byte for byte, without the dict: every reading's event pays it.
        The ids are UUIDs and the timestamp ours, so only the value needs JSON's encoding."""
        return b'{"id":"%s","metric_id":"%s","value":%s,"timestamp":"%s"}' % (
            self.id.encode(),
            self.metric_id.encode(),
            orjson.dumps(self.value),
            format_timestamp(self.timestamp).encode(),
        )


@dataclass(frozen=True, slots=True)
class Snapshot:
    """The state and the stream position it is current at, read in one step (`service.snapshot()`):
    follow the stream from `last_event_id` and every later change arrives, none already in here."""

    metrics: list[Metric]
    # metric id -> its newest readings, ascending; `truncated` if it has older ones (readings_limit)
    readings: dict[str, Page[MetricReading]]
    last_event_id: str
