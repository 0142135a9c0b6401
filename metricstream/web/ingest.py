"""`POST /metrics/readings` and `POST /metrics/readings/batch` as plain ASGI handlers: the hot write routes,
outside the framework as the stream is (a sensor posting one reading per request spent most of it in
Quart). The gate (`gate.py`) has checked the token, the body's size and its time before they run, and
hands over the body read whole; the CORS headers and the error answers are the same as every route's.
`/openapi.json` documents them (`openapi.py`). The body checks here serve the Quart routes too.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, Final

import orjson

from ..errors import MetricStreamError, PayloadTooLargeError, UnsupportedMediaTypeError, ValidationError
from .access import header
from .answers import send_error
from .gate import BATCH_PATH, READING_PATH
from .telemetry import log_event

if TYPE_CHECKING:
    from ..service.use_cases import AsyncMetricService
    from .telemetry import Telemetry
    from .types import Receive, Scope, Send

__all__ = ["BATCH_BODY_FACTOR", "Ingest", "answer_write", "batch_items", "json_body"]

log = logging.getLogger("metricstream")

# A batch's body may be this many times max_body.
BATCH_BODY_FACTOR: Final = 16


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


class Ingest:
    """The two write routes, for one app's service and telemetry."""

    def __init__(self, service: AsyncMetricService, telemetry: Telemetry, max_body: int) -> None:
        self.service, self.telemetry = service, telemetry
        self.max_body = max_body
        # No write route reads more than this.
        self.ceiling = max_body * BATCH_BODY_FACTOR

    async def reading(self, scope: Scope, receive: Receive, send: Send, body: bytes | None) -> None:
        """`POST /metrics/readings`: one reading, answered with its JSON. Written out rather than through
        `answer_write`: the route a sensor calls per reading, where each coroutine layer shows."""
        started = time.perf_counter()
        try:
            item = json_body(body or b"", _mimetype(scope), self.max_body)
            _, event = await self.service.write_reading(item)
        except Exception as error:
            status = await _answer_failure(send, READING_PATH, error)
        else:
            await _send(send, 201, b"application/json", event.body)
            status = 201
        self.telemetry.observe_request("POST", READING_PATH, status, time.perf_counter() - started)

    async def batch(self, scope: Scope, receive: Receive, send: Send, body: bytes | None) -> None:
        """`POST /metrics/readings/batch`: readings all or nothing, answered as `{"readings": [...]}`."""

        async def write() -> tuple[int, bytes, bytes]:
            items = batch_items(json_body(body or b"", _mimetype(scope), self.ceiling))
            _, events = await self.service.write_readings(items)
            return 201, b"application/json", b'{"readings":[' + b",".join(e.body for e in events) + b"]}"

        await answer_write(self.telemetry, BATCH_PATH, send, write)


def _mimetype(scope: Scope) -> str:
    return (header(scope, b"content-type") or "").partition(";")[0].strip().lower()


async def answer_write(
    telemetry: Telemetry, route: str, send: Send, write: Callable[[], Awaitable[tuple[int, bytes, bytes]]]
) -> None:
    """Answer a write route with what `write` gives (status, content type, body), or with its error as
    every route answers one; counted in the request metrics."""
    started = time.perf_counter()
    try:
        status, media, payload = await write()
    except Exception as error:
        status = await _answer_failure(send, route, error)
    else:
        await _send(send, status, media, payload)
    telemetry.observe_request("POST", route, status, time.perf_counter() - started)


async def _answer_failure(send: Send, route: str, error: Exception) -> int:
    """Answer a write's error as every route answers one, a 500 for any but ours (its details logged); the
    status sent."""
    if isinstance(error, MetricStreamError):
        await send_error(send, error)
        return error.status_code
    log_event(log, logging.ERROR, "request_error", method="POST", path=route, status=500, exc_info=error)
    await send_error(send, MetricStreamError("internal server error"))
    return 500


async def _send(send: Send, status: int, media: bytes, body: bytes) -> None:
    start = [(b"content-length", b"%d" % len(body))]
    if media:
        start.append((b"content-type", media))
    await send({"type": "http.response.start", "status": status, "headers": start})
    await send({"type": "http.response.body", "body": body})
