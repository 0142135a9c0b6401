"""What the HTTP API tests share: the contract's messages, and helpers that post and read over real HTTP."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx

from metricstream.domain.validation import timestamp_hint

OpenStream = Callable[..., Any]  # conftest.open_stream: (url, query="", headers=...) -> RawStream

NIL_UUID = "00000000-0000-0000-0000-000000000000"
# fixed ids keep test ids stable from run to run
UUID7 = "01a21b32-2870-78a3-85f4-5b37387bfd17"
UUID4 = "4b3e9f52-8d1c-4a6e-9f0b-2c7d5e8a1b3f"
UUID1 = "6ba7b810-9dad-11d1-80b4-00c04fd430c8"
MAX_BODY = 1024 * 1024
JSON = {"content-type": "application/json"}

NAME_MESSAGE = "name must be a string of 1 to 200 characters (after trimming spaces)"
FREQUENCY_MESSAGE = "input_frequency must be a number >= 0 (seconds between readings)"
METRIC_ID_MESSAGE = "metric_id must be a UUIDv7 string"
VALUE_MESSAGE = (
    "value must be a finite number greater than 0 (set positive_only=false to accept any finite value)"
)
RFC3339_RULE = "must be an RFC 3339 date-time with an offset, e.g. 2026-01-01T12:00:00Z"
TIMESTAMP_MESSAGE = f"timestamp {RFC3339_RULE}"


def timestamp_message(given: object, field: str = "timestamp") -> str:
    """The refusal of `given` as a timestamp: the usual mistakes are told what to send (test_messages.py)."""
    hint = timestamp_hint(given)
    return f"{field} {RFC3339_RULE}" if hint is None else f"{field} {RFC3339_RULE.split(',')[0]}: {hint}"


LIMIT_MESSAGE = "limit must be an integer from 1 to 10000"
READINGS_LIMIT_MESSAGE = "readings_limit must be an integer from 1 to 10000"
NOT_OBJECT_MESSAGE = "request body must be a JSON object"
BAD_JSON_PREFIX = "request body is not valid JSON: "
CONTENT_TYPE_MESSAGE = "Content-Type must be application/json"
TOO_LARGE_MESSAGE = f"request body is larger than {MAX_BODY} bytes"


# --- helpers ------------------------------------------------------------------------------------


def assert_error(response: httpx.Response, status: int, message: str | None = None) -> str:
    """`response` is a JSON `{"error": ...}` with `status`; returns the message."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].split(";")[0] == "application/json"
    body = response.json()
    assert isinstance(body, dict)
    assert list(body) == ["error"]
    error = body["error"]
    assert isinstance(error, str)
    assert error.strip()
    assert "Traceback" not in error
    if message is not None:
        assert error == message
    return error


def assert_uuid7(text: object) -> None:
    assert isinstance(text, str)
    parsed = uuid.UUID(text)
    assert parsed.version == 7
    assert str(parsed) == text  # canonical: lower case, hyphenated


def post_metric(http: httpx.Client, name: str = "CPU Temperature", **extra: Any) -> dict[str, Any]:
    response = http.post("/metrics", json={"name": name, **extra})
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


def post_reading(
    http: httpx.Client, metric_id: str, value: float = 1.0, timestamp: str | None = None
) -> dict[str, Any]:
    payload: dict[str, Any] = {"metric_id": metric_id, "value": value}
    if timestamp is not None:
        payload["timestamp"] = timestamp
    response = http.post("/metrics/readings", json=payload)
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


def parse_z(text: str) -> datetime:
    """A timestamp we sent: RFC 3339 in UTC, microseconds, ending in `Z`."""
    assert text.endswith("Z")
    moment = datetime.strptime(text, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)
    return moment


def raw_post(http: httpx.Client, path: str, content: bytes, **headers: str) -> httpx.Response:
    return http.post(path, content=content, headers={**JSON, **headers})


@dataclass(frozen=True)
class State:
    """Everything a rejected request must leave untouched."""

    metrics: Any
    events: int
    last_event_id: str


def state(http: httpx.Client) -> State:
    listing = http.get("/metrics", params={"with_readings": "true"})
    assert listing.status_code == 200
    health = http.get("/healthz").json()
    return State(listing.json(), health["events"], listing.headers["x-last-event-id"])


def readings(http: httpx.Client, metric_id: str, **params: str) -> list[dict[str, Any]]:
    response = http.get(f"/metrics/{metric_id}/readings", params=params)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/json"
    body: list[dict[str, Any]] = response.json()
    return body
