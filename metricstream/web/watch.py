"""`GET /events/watch` as a plain ASGI handler.

The stream path skips the web framework: each connection then costs a fraction of a Quart request's memory,
and every chunk goes straight to `send`, which is what lets the broadcaster bound each write in time. Who
may connect, and the CORS headers, are the gate's (`gate.py`), as for every route.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from urllib.parse import parse_qs

from ..errors import MetricStreamError, ValidationError
from ..stream.broadcaster import GOODBYE_TIMEOUT, Broadcaster, Client
from ..wire import EVENT_TYPES
from .access import peer
from .answers import send_error
from .telemetry import log_event
from .types import Receive, Scope, Send

__all__ = ["parse_request", "watch"]

log = logging.getLogger("metricstream.stream")

_STREAM_HEADERS = [
    (b"content-type", b"text/event-stream; charset=utf-8"),
    (b"cache-control", b"no-cache"),
    (b"x-accel-buffering", b"no"),
]
_CLOSE = (b"connection", b"close")
# What parse_request reads: (last_event_id, types, metric_id, earliest).
Request = tuple[str | None, frozenset[str] | None, str | None, bool]


# --- the stream ------------------------------------------------------------------------------------


def parse_request(scope: Scope) -> Request:
    """(last_event_id, types, metric_id, earliest) from the header and query; bad filters raise."""
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
    start = query.get("start", ["now"])[-1]
    if start not in ("now", "earliest"):
        raise ValidationError("start must be now or earliest")
    return last_event_id or None, types, metric_id, start == "earliest"


async def watch(broadcaster: Broadcaster, scope: Scope, send: Send, receive: Receive) -> None:
    """Serve one SSE client until it leaves, is dropped, or the server shuts down. One coroutine for
    the whole stream (the helpers below are plain functions): each frame held per connection counts."""
    try:
        request = parse_request(scope)
        client = broadcaster.connect(*request)
    except MetricStreamError as error:
        log_event(
            log,
            logging.INFO,
            "stream_refused",
            client=peer(scope),
            status=error.status_code,
            error=error.message,
        )
        await send_error(send, error)
        return
    number = _log_connect(broadcaster, client, scope, request)

    async def watch_for_disconnect() -> None:
        while (await receive())["type"] != "http.disconnect":
            pass
        broadcaster.disconnect(client)

    async def write(chunk: bytes) -> None:
        await send({"type": "http.response.body", "body": chunk, "more_body": True})

    # An ended stream's HTTP/1.1 connection is closed, not kept alive: a client reconnects on a new
    # one anyway, and an evicted one would otherwise hold a descriptor for the keep-alive timeout.
    close = [_CLOSE] if scope.get("http_version", "1.1").startswith("1") else []
    listener = asyncio.ensure_future(watch_for_disconnect())
    try:
        start = [*_STREAM_HEADERS, *close]
        await send({"type": "http.response.start", "status": 200, "headers": start})
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
            client=peer(scope),
            reason=client.reason,
            duration=broadcaster.clock.monotonic() - client.connected_at,
            clients=broadcaster.statistics().clients,
        )


def _log_connect(broadcaster: Broadcaster, client: Client, scope: Scope, request: Request) -> int:
    """The `stream_connect` line; returns the stream's number, which pairs it with its disconnect line."""
    stats = broadcaster.statistics()
    last_event_id, types, metric_id, _ = request
    log_event(
        log,
        logging.INFO,
        "stream_connect",
        stream=stats.accepted,
        client=peer(scope),
        last_event_id=last_event_id,
        types=",".join(sorted(types)) if types is not None else None,
        metric_id=metric_id,
        replay=client.mark - client.cursor,
        reset=client.reset,
        clients=stats.clients,
    )
    return stats.accepted
