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
        """`POST /metrics/readings`: one reading, answered with its JSON."""

        async def write(data: bytes, mimetype: str) -> bytes:
            item = json_body(data, mimetype, self.max_body)
            _, event = await self.service.write_reading(item)
            return event.body

        await self._answer(READING_PATH, scope, send, body, write)

    async def batch(self, scope: Scope, receive: Receive, send: Send, body: bytes | None) -> None:
        """`POST /metrics/readings/batch`: readings all or nothing, answered as `{"readings": [...]}`."""

        async def write(data: bytes, mimetype: str) -> bytes:
            items = batch_items(json_body(data, mimetype, self.ceiling))
            _, events = await self.service.write_readings(items)
            return b'{"readings":[' + b",".join(event.body for event in events) + b"]}"

        await self._answer(BATCH_PATH, scope, send, body, write)

    async def _answer(
        self,
        route: str,
        scope: Scope,
        send: Send,
        body: bytes | None,
        write: Callable[[bytes, str], Awaitable[bytes]],
    ) -> None:
        mimetype = (header(scope, b"content-type") or "").partition(";")[0].strip().lower()

        async def created() -> tuple[int, bytes, bytes]:
            return 201, b"application/json", await write(body or b"", mimetype)

        await answer_write(self.telemetry, route, send, created)


async def answer_write(
    telemetry: Telemetry, route: str, send: Send, write: Callable[[], Awaitable[tuple[int, bytes, bytes]]]
) -> None:
    """Answer a write route with what `write` gives (status, content type, body), or with its error as
    every route answers one; counted in the request metrics."""
    started = time.perf_counter()
    try:
        status, media, payload = await write()
    except MetricStreamError as error:
        await send_error(send, error)
        status = error.status_code
    except Exception as error:
        log_event(log, logging.ERROR, "request_error", method="POST", path=route, status=500, exc_info=error)
        await send_error(send, MetricStreamError("internal server error"))  # a 500, its details logged
        status = 500
    else:
        await _send(send, status, media, payload)
    telemetry.observe_request("POST", route, status, time.perf_counter() - started)


async def _send(send: Send, status: int, media: bytes, body: bytes) -> None:
    start = [(b"content-length", b"%d" % len(body))]
    if media:
        start.append((b"content-type", media))
    await send({"type": "http.response.start", "status": status, "headers": start})
    await send({"type": "http.response.body", "body": body})
