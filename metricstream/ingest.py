"""`POST /metrics/readings` and `POST /metrics/readings/batch` as a plain ASGI handler: the hot write
routes, beside Quart, as the stream is (a sensor posting one reading per request spent most of it in
the framework). The answers are the Quart routes' (`app.py`, which still documents them in
`/openapi.json`; tests/test_ingest.py compares the two): the same body limits and messages, token check,
CORS headers, error bodies and request telemetry. The body helpers here serve both.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import TYPE_CHECKING, Any, Final

import orjson

from .access import Access, bearer, refusal
from .errors import MetricStreamError, PayloadTooLargeError, UnsupportedMediaTypeError, ValidationError
from .telemetry import log_event

if TYPE_CHECKING:
    from .clock import Clock
    from .service import AsyncMetricService
    from .telemetry import Telemetry
    from .types import Receive, Scope, Send

__all__ = ["BATCH_BODY_FACTOR", "INGEST_PATHS", "Ingest", "batch_items", "error_body", "json_body"]

log = logging.getLogger("metricstream")

READING_PATH: Final = "/metrics/readings"
BATCH_PATH: Final = "/metrics/readings/batch"
INGEST_PATHS: Final = frozenset({READING_PATH, BATCH_PATH})
BATCH_BODY_FACTOR: Final = 16  # a batch body may be this many times max_body
BODY_TIMEOUT: Final = 60.0  # seconds for the rest of a body to arrive (Quart's default for its routes)
_JSON: Final = (b"content-type", b"application/json")
_CLOSE: Final = (b"connection", b"close")


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


class _Refused(Exception):
    """An answer decided before the body could be read: status, message, extra headers."""

    def __init__(self, status: int, message: str, headers: list[tuple[bytes, bytes]]) -> None:
        super().__init__(message)
        self.status, self.message, self.headers = status, message, headers


class Ingest:
    """The two write routes for one app's service, access rules and telemetry."""

    def __init__(
        self,
        service: AsyncMetricService,
        access: Access,
        telemetry: Telemetry,
        max_body: int,
        clock: Clock,
    ) -> None:
        self.service, self.access, self.telemetry, self.clock = service, access, telemetry, clock
        self.max_body = max_body
        self.ceiling = max_body * BATCH_BODY_FACTOR  # no write route reads more than this

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        started = time.perf_counter()
        path = scope["path"]
        status = await self._answer(scope, receive, send, path == BATCH_PATH)
        if status is not None:
            self.telemetry.observe_request("POST", path, status, time.perf_counter() - started)

    async def _answer(self, scope: Scope, receive: Receive, send: Send, batch: bool) -> int | None:
        headers = _request_headers(scope)
        answer_headers = self.access.cors_headers(headers.get(b"origin"))
        try:
            data = await self._authorized_body(headers, receive)
            if data is None:
                return None  # the client went away
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
        except _Refused as refused:
            body = orjson.dumps({"error": refused.message})
            extra = refused.headers
            if not scope.get("http_version", "1.1").startswith("1"):
                # HTTP/2 forbids `connection`: the refused stream ends there, not the connection
                extra = [item for item in extra if item != _CLOSE]
            return await _send(send, refused.status, body, [*extra, *answer_headers])
        except MetricStreamError as error:
            extra = [(name.lower().encode(), value.encode()) for name, value in error.headers.items()]
            body = orjson.dumps(error_body(error))
            return await _send(send, error.status_code, body, [*extra, *answer_headers])
        except Exception as error:
            fields = {"method": "POST", "path": scope["path"], "status": 500}
            log_event(log, logging.ERROR, "request_error", **fields, exc_info=error)
            body = b'{"error":"internal server error"}'
            return await _send(send, 500, body, answer_headers)

    async def _authorized_body(self, headers: dict[bytes, str], receive: Receive) -> bytes | None:
        """The whole body of a request with the write token; refusals as Quart's hooks give them."""
        size_text = headers.get(b"content-length")
        size = int(size_text) if size_text is not None and size_text.isdigit() else None
        unsized = b"transfer-encoding" in headers
        presented = bearer(headers.get(b"authorization"))
        if not self.access.may_write(presented):
            message, challenge = refusal(presented, "writes")
            refusal_headers = [(b"www-authenticate", challenge.encode())]
            if size is not None and size <= self.max_body:
                await self._read(receive)  # a body left unread ends the keep-alive connection
            elif size or unsized:
                refusal_headers.append(_CLOSE)
            raise _Refused(401, message, refusal_headers)
        too_large = f"request body is larger than {self.ceiling} bytes"
        if size is not None and size > self.ceiling:
            raise _Refused(413, too_large, [_CLOSE])
        data = await self._read(receive)
        if data is not None and len(data) > self.ceiling:
            raise _Refused(413, too_large, [_CLOSE])
        return data

    async def _read(self, receive: Receive) -> bytes | None:
        """The body, up to just past the ceiling; None if the client disconnected."""
        message = await receive()  # a small body comes whole in the first message: no timer for it
        if message["type"] != "http.request":
            return None
        if not message.get("more_body", False):
            return bytes(message.get("body", b""))
        chunks = [message.get("body", b"")]
        reader = asyncio.ensure_future(self._read_rest(receive, chunks))
        timer = asyncio.ensure_future(self.clock.sleep(BODY_TIMEOUT))
        try:
            await asyncio.wait((reader, timer), return_when=asyncio.FIRST_COMPLETED)
        finally:
            timer.cancel()
            reader.cancel()
        if not reader.done() or reader.cancelled():
            raise _Refused(408, f"the request body did not arrive within {BODY_TIMEOUT:g} seconds", [_CLOSE])
        return b"".join(chunks) if reader.result() else None

    async def _read_rest(self, receive: Receive, chunks: list[bytes]) -> bool:
        """Append the body's remaining pieces to `chunks`; False if the client disconnected."""
        size = len(chunks[0])
        while True:
            message = await receive()
            if message["type"] != "http.request":
                return False
            chunk = message.get("body", b"")
            chunks.append(chunk)
            size += len(chunk)
            if size > self.ceiling or not message.get("more_body", False):
                return True


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
