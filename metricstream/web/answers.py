"""How every route answers in JSON, errors above all: a `MetricStreamError` becomes its `status_code`, its
headers and `{"error": message}` (with `errors`, one per refused item of a batch), here and nowhere else.
Quart's error handler (`routes.py`) builds its `Response` from `error_body` too."""

from __future__ import annotations

import orjson

from ..errors import MetricStreamError
from .types import Send

__all__ = ["error_body", "error_headers", "send_error", "send_json"]


def error_body(error: MetricStreamError) -> dict[str, object]:
    body: dict[str, object] = {"error": error.message}
    if error.errors:
        body["errors"] = error.errors
    return body


def error_headers(error: MetricStreamError) -> list[tuple[bytes, bytes]]:
    return [
        (name.lower().encode("latin-1"), value.encode("latin-1")) for name, value in error.headers.items()
    ]


async def send_error(send: Send, error: MetricStreamError, *, more_body: bool = False) -> None:
    """`error` as its JSON answer; with `more_body`, the caller ends it."""
    await send_json(send, error.status_code, error_body(error), error_headers(error), more_body=more_body)


async def send_json(
    send: Send,
    status: int,
    body: object,
    headers: list[tuple[bytes, bytes]] | None = None,
    *,
    more_body: bool = False,
) -> None:
    """A JSON answer; with `more_body`, the caller ends it (an empty body message) when it is ready."""
    payload = orjson.dumps(body)
    start = [
        (b"content-type", b"application/json"),
        (b"content-length", b"%d" % len(payload)),
        *(headers or []),
    ]
    await send({"type": "http.response.start", "status": status, "headers": start})
    await send({"type": "http.response.body", "body": payload, "more_body": more_body})
