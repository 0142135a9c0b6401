"""`GET /events/watch` as a plain ASGI handler.

The stream path skips the web framework: each connection then costs a fraction of a Quart request's memory,
and every chunk goes straight to `send`, which is what lets the broadcaster bound each write in time. Who
may connect, and the CORS headers, are the gate's (`gate.py`), as for every route. A `labels=` filter is
resolved here (`LabelMatch`), since the stream knows nothing of metrics: the ids of the metrics whose labels
match, read from the store, and every later metric whose `metric_created` event shows matching labels.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import Awaitable, Callable, Mapping

import orjson

from ..domain.labels import format_labels, has_labels, parse_label_query
from ..errors import MetricStreamError, ValidationError
from ..stream.broadcaster import GOODBYE_TIMEOUT, Broadcaster, Client
from ..stream.log import Event
from ..wire import EVENT_TYPES, METRIC_CREATED
from .access import header, peer, query_parameters
from .answers import send_error
from .telemetry import log_event
from .types import Receive, Scope, Send

__all__ = ["LabelMatch", "parse_request", "watch"]

log = logging.getLogger("metricstream.stream")

_STREAM_HEADERS = [
    (b"content-type", b"text/event-stream; charset=utf-8"),
    (b"cache-control", b"no-cache"),
    (b"x-accel-buffering", b"no"),
]
_CLOSE = (b"connection", b"close")
# What parse_request reads: (last_event_id, types, metric_id, earliest, labels).
Request = tuple[str | None, frozenset[str] | None, str | None, bool, dict[str, str] | None]
# The ids of the metrics whose labels include the given pairs, as the store holds them now.
FindLabelled = Callable[[Mapping[str, str]], Awaitable[list[str]]]


class LabelMatch:
    """Whether an event is about a metric whose labels include `wanted`: one of `metric_ids` (those the
    store held when the stream began), or one whose `metric_created` event, seen since, shows such labels.
    Ids are only ever added (a deleted metric's id is never reused), so the order events are asked in
    does not matter."""

    __slots__ = ("metric_ids", "wanted")

    def __init__(self, wanted: Mapping[str, str], metric_ids: set[str]) -> None:
        self.wanted = wanted
        self.metric_ids = metric_ids

    def __call__(self, event: Event) -> bool:
        if (
            event.type == METRIC_CREATED
            and event.metric_id not in self.metric_ids
            and has_labels(orjson.loads(event.body).get("labels") or {}, self.wanted)
        ):
            self.metric_ids.add(event.metric_id)
        return event.metric_id in self.metric_ids


# --- the stream ------------------------------------------------------------------------------------


def parse_request(scope: Scope) -> Request:
    """(last_event_id, types, metric_id, earliest, labels) from the header and query; bad filters raise."""
    query = query_parameters(scope)
    last_event_id = header(scope, b"last-event-id")
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
    labels = parse_label_query(query["labels"]) if "labels" in query else None
    return last_event_id or None, types, metric_id, start == "earliest", labels


async def _label_match(broadcaster: Broadcaster, labels: Mapping[str, str], find: FindLabelled) -> LabelMatch:
    """The `LabelMatch` of a stream about to connect: the store's matching metrics, and those whose
    creation the log holds, which the store may no longer (deleted since; the stream may replay them)."""
    match = LabelMatch(labels, set(await find(labels)))
    log = broadcaster.log
    # No await from here to `connect`: every later event passes through `match` in order.
    for event in log.between(log.base, log.head):
        if event.type == METRIC_CREATED:
            match(event)
    return match


async def watch(
    broadcaster: Broadcaster,
    find: FindLabelled,
    scope: Scope,
    receive: Receive,
    send: Send,
    body: bytes | None = None,
) -> None:
    """Serve one SSE client until it leaves, is dropped, or the server shuts down. One coroutine for
    the whole stream (the helpers below are plain functions): each frame held per connection counts.
    `find` gives the ids of the metrics with some labels, for a `labels=` filter. The last four are a
    route's (`gate.Handler`): a stream has no body."""
    try:
        request = parse_request(scope)
        last_event_id, types, metric_id, earliest, labels = request
        matches = None if labels is None else await _label_match(broadcaster, labels, find)
        client = broadcaster.connect(last_event_id, types, metric_id, earliest, matches)
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
    last_event_id, types, metric_id, _, labels = request
    log_event(
        log,
        logging.INFO,
        "stream_connect",
        stream=stats.accepted,
        client=peer(scope),
        last_event_id=last_event_id,
        types=",".join(sorted(types)) if types is not None else None,
        metric_id=metric_id,
        labels=None if labels is None else format_labels(labels),
        replay=client.mark - client.cursor,
        reset=client.reset,
        clients=stats.clients,
    )
    return stats.accepted
