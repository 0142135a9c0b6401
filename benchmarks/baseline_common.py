"""What the two baseline servers share: the metrics part of the API, with no HTTP and no SSE.

The baselines (`baseline_sse_starlette.py`, `baseline_aiohttp.py`) are what a user would write without
metricstream: the same JSON in and out and the same `id:`/`event:`/`data:` frames, in a few lines of
framework code each. This module holds the part that is not about the framework — validation with the
rules of the real API, in-memory storage, the event a creation announces — so both baselines do the same
work per request and differ only in how they serve HTTP and fan events out. It is plain, typical code:
stdlib `json`, hand-written checks (cheaper than metricstream's pydantic models, which favours the
baselines on ingest), a dict of lists as the store, and no retention of events for replay.
"""

from __future__ import annotations

import json
import math
import resource
import socket
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import uuid6

__all__ = ["ApiError", "Event", "Store", "bind", "raise_fd_limit"]

MAX_BATCH = 10_000


class ApiError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass(frozen=True, slots=True)
class Event:
    id: str
    type: str
    data: str  # the JSON the POST returned


def _now() -> str:
    return datetime.now(UTC).replace(tzinfo=None).isoformat(timespec="microseconds") + "Z"


def _timestamp(value: object) -> str:
    if not isinstance(value, str):
        raise ApiError(400, "timestamp must be an RFC 3339 string")
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise ApiError(400, "timestamp must be RFC 3339 with an offset") from None
    if moment.tzinfo is None:
        raise ApiError(400, "timestamp must be RFC 3339 with an offset")
    return moment.astimezone(UTC).replace(tzinfo=None).isoformat(timespec="microseconds") + "Z"


class Store:
    """Metrics and readings in memory; each creation returns the event that announces it."""

    def __init__(self) -> None:
        self.metrics: dict[str, dict[str, Any]] = {}
        self.readings: dict[str, list[dict[str, Any]]] = {}

    def add_metric(self, body: object) -> tuple[dict[str, Any], Event]:
        if not isinstance(body, dict):
            raise ApiError(400, "body must be a JSON object")
        name = body.get("name")
        if not isinstance(name, str) or not 1 <= len(name.strip()) <= 200:
            raise ApiError(400, "name must be a string of 1 to 200 characters")
        metric_id = str(uuid6.uuid7())
        metric = {"id": metric_id, "name": name.strip(), "input_frequency": None}
        self.metrics[metric_id] = metric
        self.readings[metric_id] = []
        return metric, Event(str(uuid6.uuid7()), "metric_created", _dumps(metric))

    def _check_reading(self, item: object, now: str) -> dict[str, Any]:
        if not isinstance(item, dict):
            raise ApiError(400, "a reading must be a JSON object")
        try:
            metric_id = uuid.UUID(str(item.get("metric_id")))
        except ValueError:
            raise ApiError(400, "metric_id must be a UUIDv7") from None
        if metric_id.version != 7:
            raise ApiError(400, "metric_id must be a UUIDv7")
        value = item.get("value")
        if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
            raise ApiError(400, "value must be a finite number greater than 0")
        if value <= 0:
            raise ApiError(400, "value must be a finite number greater than 0")
        stamp = _timestamp(item["timestamp"]) if item.get("timestamp") is not None else now
        if str(metric_id) not in self.metrics:
            raise ApiError(404, f"metric {metric_id} not found")
        return {"metric_id": str(metric_id), "value": float(value), "timestamp": stamp}

    def add_readings(self, items: list[object]) -> tuple[list[dict[str, Any]], list[Event]]:
        """All or nothing: every item is checked before any is stored."""
        now = _now()
        checked = [self._check_reading(item, now) for item in items]
        readings, events = [], []
        for fields in checked:
            reading = {"id": str(uuid6.uuid7()), **fields}
            self.readings[reading["metric_id"]].append(reading)
            readings.append(reading)
            events.append(Event(str(uuid6.uuid7()), "metric_reading_created", _dumps(reading)))
        return readings, events

    @staticmethod
    def batch_items(body: object) -> list[object]:
        if not isinstance(body, dict) or not isinstance(body.get("readings"), list):
            raise ApiError(400, 'body must be {"readings": [...]}')
        items: list[object] = body["readings"]
        if not 1 <= len(items) <= MAX_BATCH:
            raise ApiError(400, f"readings must hold 1 to {MAX_BATCH} items")
        return items


def _dumps(body: dict[str, Any]) -> str:
    return json.dumps(body)  # what JSONResponse / json_response would write


def raise_fd_limit() -> None:
    """Soft open-files limit up to the hard one: 10,000 clients need 10,000 sockets."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != hard:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
        except (ValueError, OSError):  # an unlimited hard limit can't be a soft one
            resource.setrlimit(resource.RLIMIT_NOFILE, (1 << 20, hard))


def bind(port: int) -> socket.socket:
    """A listening socket on 127.0.0.1 (port 0: a free one), with metricstream's backlog."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", port))
    sock.listen(2048)
    sock.set_inheritable(True)
    return sock
