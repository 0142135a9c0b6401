"""`GET /events/watch` as a plain ASGI handler.

The stream path skips the web framework: each connection then costs a fraction of a Quart request's memory,
and every chunk goes straight to `send`, which is what lets the broadcaster bound each write in time. The
framework's routing, docs and error handling stay for the rest of the API (`app.py`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any
from urllib.parse import parse_qs

import orjson

from .broadcast import GOODBYE_TIMEOUT, Broadcaster
from .errors import MetricStreamError, ValidationError
from .models import EVENT_TYPES
from .telemetry import log_event

__all__ = ["STREAM_PATH", "watch"]

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]

STREAM_PATH = "/events/watch"

log = logging.getLogger("metricstream.stream")

_STREAM_HEADERS = [
    (b"content-type", b"text/event-stream; charset=utf-8"),
    (b"cache-control", b"no-cache"),
    (b"x-accel-buffering", b"no"),
]


def parse_request(scope: Scope) -> tuple[str | None, frozenset[str] | None, str | None]:
    """(last_event_id, types, metric_id) from the header and query; bad filters raise."""
    query = parse_qs(scope.get("query_string", b"").decode("latin-1"), keep_blank_values=True)
    last_event_id = next(
        (value.decode("latin-1") for name, value in scope["headers"] if name == b"last-event-id"),
        None,
    )
    if not last_event_id and query.get("last_event_id"):  # an empty header says nothing
        last_event_id = query["last_event_id"][-1]
    types = None
    if "types" in query:
        types = frozenset(t.strip() for value in query["types"] for t in value.split(",") if t.strip())
        unknown = sorted(types - EVENT_TYPES)
        if unknown or not types:
            raise ValidationError(f"types must be a comma-separated list of {', '.join(sorted(EVENT_TYPES))}")
    metric_id = None
    if "metric_id" in query:
        try:
            metric_id = str(uuid.UUID(query["metric_id"][-1]))
        except ValueError:
            raise ValidationError("metric_id must be a UUID") from None
    return last_event_id or None, types, metric_id


async def send_json(
    send: Send, status: int, body: object, headers: list[tuple[bytes, bytes]] | None = None
) -> None:
    payload = orjson.dumps(body)
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", b"%d" % len(payload)),
        *(headers or []),
    ]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": payload})


async def watch(broadcaster: Broadcaster, scope: Scope, receive: Receive, send: Send) -> None:
    """Serve one SSE client until it leaves, is dropped, or the server shuts down."""
    peer = _peer(scope)
    try:
        last_event_id, types, metric_id = parse_request(scope)
        resets = broadcaster.resets
        client = broadcaster.connect(last_event_id, types, metric_id)
    except MetricStreamError as error:
        log_event(
            log, logging.INFO, "stream_refused", client=peer, status=error.status_code, error=error.message
        )
        await send_json(send, error.status_code, {"error": error.message})
        return
    number = broadcaster.accepted  # pairs this connect line with its disconnect line
    log_event(
        log,
        logging.INFO,
        "stream_connect",
        stream=number,
        client=peer,
        last_event_id=last_event_id,
        types=",".join(sorted(types)) if types is not None else None,
        metric_id=metric_id,
        replay=client.mark - client.cursor,
        reset=broadcaster.resets != resets,
        clients=len(broadcaster.clients),
    )

    async def watch_for_disconnect() -> None:
        while (await receive())["type"] != "http.disconnect":
            pass
        broadcaster.disconnect(client)

    async def write(chunk: bytes) -> None:
        await send({"type": "http.response.body", "body": chunk, "more_body": True})

    listener = asyncio.ensure_future(watch_for_disconnect())
    try:
        await send({"type": "http.response.start", "status": 200, "headers": _STREAM_HEADERS})
        await broadcaster.serve(client, write)
        with contextlib.suppress(TimeoutError):  # a peer that stopped reading can't take it
            async with asyncio.timeout(GOODBYE_TIMEOUT):
                await send({"type": "http.response.body", "body": b"", "more_body": False})
    finally:
        broadcaster.disconnect(client)
        listener.cancel()
        log_event(
            log,
            logging.INFO,
            "stream_disconnect",
            stream=number,
            client=peer,
            reason=client.reason,
            duration=time.monotonic() - client.connected_at,
            clients=len(broadcaster.clients),
        )


def _peer(scope: Scope) -> str | None:
    """`host:port` of the client, for the log lines."""
    client = scope.get("client")
    return f"{client[0]}:{client[1]}" if client else None
