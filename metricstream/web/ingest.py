"""`POST /metrics/readings` and `POST /metrics/readings/batch` as a plain ASGI handler: the hot write
routes, beside Quart, as the stream is (a sensor posting one reading per request spent most of it in
the framework). The answers are the Quart routes' (`app.py`, which still documents them in
`/openapi.json`; tests/test_ingest.py compares the two): the same body limits and messages, CORS
headers, error bodies and request telemetry. The token, the body's size and its time are checked before
either, once, by `gate.py`, which hands over the body read whole. The body helpers here serve both.
"""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING, Any, Final

import orjson

from ..errors import MetricStreamError, PayloadTooLargeError, UnsupportedMediaTypeError, ValidationError
from .access import Access, route_path
from .telemetry import log_event

if TYPE_CHECKING:
    from ..service.use_cases import AsyncMetricService
    from .telemetry import Telemetry
    from .types import Receive, Scope, Send

__all__ = ["BATCH_BODY_FACTOR", "INGEST_PATHS", "Ingest", "batch_items", "error_body", "json_body"]

log = logging.getLogger("metricstream")

READING_PATH: Final = "/metrics/readings"
BATCH_PATH: Final = "/metrics/readings/batch"
INGEST_PATHS: Final = frozenset({READING_PATH, BATCH_PATH})
BATCH_BODY_FACTOR: Final = 16  # a batch body may be this many times max_body
_JSON: Final = (b"content-type", b"application/json")


def json_body(data: bytes, mimetype: str, limit: int) -> Any:
    """The parsed JSON of a body already read; the checks in the order every write route makes them."""
    if len(data) > limit:
        raise PayloadTooLargeError(f"request body is larger than {limit} bytes")
    if mimetype != "application/json" and not mimetype.endswith("+json"):
        raise UnsupportedMediaTypeError("Content-Type must be application/json")
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError as error:
        raise ValidationError(f"request body is not valid JSON: {error}") from None


def batch_items(body: Any) -> list[Any]:
    items = body.get("readings") if isinstance(body, dict) else None
    if not isinstance(items, list):
        raise ValidationError('the body must be {"readings": [...]}')
    return items


def error_body(error: MetricStreamError) -> dict[str, object]:
    body: dict[str, object] = {"error": error.message}
    if error.errors:
        body["errors"] = error.errors
    return body


class Ingest:
    """The two write routes for one app's service, CORS rules and telemetry."""

    def __init__(
        self, service: AsyncMetricService, access: Access, telemetry: Telemetry, max_body: int
    ) -> None:
        self.service, self.access, self.telemetry = service, access, telemetry
        self.max_body = max_body
        self.ceiling = max_body * BATCH_BODY_FACTOR  # no write route reads more than this

    async def __call__(self, scope: Scope, receive: Receive, send: Send, body: bytes | None) -> None:
        started = time.perf_counter()
        path = route_path(scope)
        status = await self._answer(scope, send, body or b"", path == BATCH_PATH)
        self.telemetry.observe_request("POST", path, status, time.perf_counter() - started)

    async def _answer(self, scope: Scope, send: Send, data: bytes, batch: bool) -> int:
        headers = _request_headers(scope)
        answer_headers = self.access.cors_headers(headers.get(b"origin"))
        try:
            mimetype = headers.get(b"content-type", "").partition(";")[0].strip().lower()
            if batch:
                items = batch_items(json_body(data, mimetype, self.ceiling))
                _, events = await self.service.write_readings(items)
                payload = b'{"readings":[' + b",".join(event.body for event in events) + b"]}"
            else:
                item = json_body(data, mimetype, self.max_body)
                _, events = await self.service.write_readings([item], single=True)
                payload = events[0].body
            return await _send(send, 201, payload, answer_headers)
        except MetricStreamError as error:
            extra = [(name.lower().encode(), value.encode()) for name, value in error.headers.items()]
            body = orjson.dumps(error_body(error))
            return await _send(send, error.status_code, body, [*extra, *answer_headers])
        except Exception as error:
            fields = {"method": "POST", "path": scope["path"], "status": 500}
            log_event(log, logging.ERROR, "request_error", **fields, exc_info=error)
            body = b'{"error":"internal server error"}'
            return await _send(send, 500, body, answer_headers)


def _request_headers(scope: Scope) -> dict[bytes, str]:
    """The request's headers by lower-case name; the first of repeated ones, as Quart reads them."""
    headers: dict[bytes, str] = {}
    for name, value in scope["headers"]:
        if name not in headers:
            headers[name] = value.decode("latin-1")
    return headers


async def _send(send: Send, status: int, body: bytes, headers: list[tuple[bytes, bytes]]) -> int:
    start = [_JSON, (b"content-length", b"%d" % len(body)), *headers]
    await send({"type": "http.response.start", "status": status, "headers": start})
    await send({"type": "http.response.body", "body": body})
    return status
