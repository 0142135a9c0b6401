"""`GET /events/watch` as a plain ASGI handler.

The stream path skips the web framework: each connection then costs a fraction of a Quart request's memory,
and every chunk goes straight to `send`, which is what lets the broadcaster bound each write in time. The
framework's routing, docs and error handling stay for the rest of the API (`app.py`).

Access (docs/security.md) is decided here for both: `Access` holds the tokens and the CORS origins, and
`app.py` asks it for the Quart routes too. With `subscribe_token` set, the stream needs it (or `token`, which
grants everything) as `Authorization: Bearer <token>` or as `?access_token=<token>`, since a browser's
EventSource cannot send headers; tokens are compared with `hmac.compare_digest` and never logged (the log
lines carry parsed fields, never the query string). The stream bypasses quart-cors, so the same CORS headers
are added here: on every answer for an allowed origin, and for a preflight (OPTIONS) asking for GET.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import ipaddress
import logging
import uuid
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass
from typing import Any, Final
from urllib.parse import parse_qs

import orjson

from .broadcast import GOODBYE_TIMEOUT, Broadcaster
from .errors import MetricStreamError, ValidationError
from .models import EVENT_TYPES
from .telemetry import log_event

__all__ = ["STREAM_PATH", "Access", "bearer", "header", "preflight", "refuse_host", "refusal", "watch"]

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


# --- access: tokens and CORS, for the stream and (through app.py) the Quart routes -------------------

CORS_ALLOW_HEADERS: Final = ("Authorization", "Content-Type", "Last-Event-ID", "Cache-Control")
CORS_EXPOSE_HEADERS: Final = ("Last-Event-ID", "X-Last-Event-ID")
CORS_MAX_AGE: Final = 600  # seconds a browser may reuse a preflight's answer


def _matches(presented: bytes | None, expected: bytes) -> bool:
    # hmac.compare_digest through the module (not imported by name): constant time, and tests can watch it
    return presented is not None and hmac.compare_digest(presented, expected)


def host_name(host: str) -> str:
    """The name in a Host header value, lowercased, without its port: `example.org`, `[::1]`."""
    host = host.strip().lower()
    if host.startswith("["):
        return host[: host.find("]") + 1] or host
    return host.partition(":")[0].rstrip(".")


def is_loopback_name(name: str) -> bool:
    if name == "localhost":
        return True
    try:
        return ipaddress.ip_address(name.removeprefix("[").removesuffix("]")).is_loopback
    except ValueError:
        return False


@dataclass(frozen=True, slots=True)
class Access:
    """Who may do what, and which web origins may call. None means "no token needed"."""

    token: bytes | None = None  # writes; grants reads and the stream too
    subscribe_token: bytes | None = None  # reads and the stream
    cors_origins: frozenset[str] = frozenset()  # exact origins, or {"*"}; empty: no CORS at all
    # Host names answered besides loopback ones (".x" takes subdomains, "*" any); None: any host at all.
    allowed_hosts: frozenset[str] | None = None

    def host_allowed(self, host: str | None) -> bool:
        """Whether a request with this Host header is answered (the DNS-rebinding guard)."""
        allowed = self.allowed_hosts
        if allowed is None or host is None or "*" in allowed:
            return True  # no Host at all (HTTP/1.0) cannot come from a browser
        name = host_name(host)
        if is_loopback_name(name) or name in allowed:
            return True
        return any(entry.startswith(".") and (name.endswith(entry) or name == entry[1:]) for entry in allowed)

    def may_write(self, presented: bytes | None) -> bool:
        return self.token is None or _matches(presented, self.token)

    def may_read(self, presented: bytes | None) -> bool:
        if self.subscribe_token is None:
            return True
        return _matches(presented, self.subscribe_token) or (
            self.token is not None and _matches(presented, self.token)
        )

    def may_scrape(self, presented: bytes | None) -> bool:
        """`/-/metrics`: open when no token is set, else either token."""
        tokens = [token for token in (self.token, self.subscribe_token) if token is not None]
        return not tokens or any([_matches(presented, token) for token in tokens])

    def allowed_origin(self, origin: str | None) -> str | None:
        """The Access-Control-Allow-Origin value for `origin`, or None when it gets no CORS headers."""
        if not origin or not self.cors_origins:
            return None
        if "*" in self.cors_origins:
            return "*"
        return origin if origin.lower() in self.cors_origins else None

    def cors_headers(self, origin: str | None) -> list[tuple[bytes, bytes]]:
        """CORS headers of an actual (not preflight) answer; none at all when CORS is off."""
        if not self.cors_origins:
            return []
        allowed = self.allowed_origin(origin)
        if allowed is None:
            return [(b"vary", b"origin")]
        return [
            (b"access-control-allow-origin", allowed.encode("latin-1")),
            (b"access-control-expose-headers", ", ".join(CORS_EXPOSE_HEADERS).encode()),
            (b"vary", b"origin"),
        ]


def bearer(authorization: str | bytes | None) -> bytes | None:
    """The token of an `Authorization: Bearer <token>` header value, or None."""
    if authorization is None:
        return None
    raw = authorization.encode("latin-1", "replace") if isinstance(authorization, str) else authorization
    scheme, _, token = raw.strip().partition(b" ")
    if scheme.lower() != b"bearer":
        return None
    return token.strip() or None


def refusal(
    presented: bytes | None, what: str, how: str = "Authorization: Bearer <token>"
) -> tuple[str, str]:
    """(error message, WWW-Authenticate value) for a request to `what` without a valid token."""
    if presented is None:
        return f"a bearer token is required for {what}: send {how}", 'Bearer realm="metricstream"'
    return f"the bearer token is not valid for {what}", 'Bearer realm="metricstream", error="invalid_token"'


async def refuse_host(scope: Scope, send: Send) -> None:
    """403 for a Host this server does not answer to; before any other work, on every route."""
    host = header(scope, b"host") or ""
    message = (
        f"host {host[:100]!r} is not allowed: without a token this server answers only to localhost, "
        "127.0.0.1 and [::1], and the hosts in allowed_hosts (see docs/security.md)"
    )
    log_event(log, logging.INFO, "host_refused", client=_peer(scope), status=403, host=host[:100])
    await send_json(send, 403, {"error": message}, [(b"connection", b"close")])


def header(scope: Scope, name: bytes) -> str | None:
    return next((value.decode("latin-1") for key, value in scope["headers"] if key == name), None)


def _stream_token(scope: Scope) -> bytes | None:
    """The stream's token: the Authorization header, else `?access_token=` (for EventSource)."""
    presented = bearer(header(scope, b"authorization"))
    if presented is None:
        query = parse_qs(scope.get("query_string", b"").decode("latin-1"))
        if query.get("access_token"):
            presented = query["access_token"][-1].encode("utf-8", "replace") or None
    return presented


async def preflight(access: Access, scope: Scope, send: Send) -> bool:
    """Answer a CORS preflight for GET from an allowed origin; False (nothing sent) for anything else."""
    allowed = access.allowed_origin(header(scope, b"origin"))
    if allowed is None or header(scope, b"access-control-request-method") != "GET":
        return False
    asked = header(scope, b"access-control-request-headers") or ""
    requested = {name.strip().lower() for name in asked.split(",")}
    headers = [name for name in CORS_ALLOW_HEADERS if name.lower() in requested]
    await send(
        {
            "type": "http.response.start",
            "status": 204,
            "headers": [
                (b"access-control-allow-origin", allowed.encode("latin-1")),
                (b"access-control-allow-methods", b"GET"),
                (b"access-control-allow-headers", ", ".join(headers).encode()),
                (b"access-control-max-age", b"%d" % CORS_MAX_AGE),
                (b"vary", b"origin"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": b""})
    return True


# --- the stream ------------------------------------------------------------------------------------


def parse_request(scope: Scope) -> tuple[str | None, frozenset[str] | None, str | None, bool]:
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


async def watch(
    broadcaster: Broadcaster, scope: Scope, receive: Receive, send: Send, access: Access | None = None
) -> None:
    """Serve one SSE client until it leaves, is dropped, or the server shuts down."""
    peer = _peer(scope)
    access = access or Access()
    cors = access.cors_headers(header(scope, b"origin"))
    presented = _stream_token(scope)
    if not access.may_read(presented):
        how = "Authorization: Bearer <token> or ?access_token=<token>"
        message, challenge = refusal(presented, "the stream", how)
        log_event(log, logging.INFO, "stream_refused", client=peer, status=401, error=message)
        await send_json(send, 401, {"error": message}, [(b"www-authenticate", challenge.encode()), *cors])
        return
    try:
        last_event_id, types, metric_id, earliest = parse_request(scope)
        resets = broadcaster.resets
        client = broadcaster.connect(last_event_id, types, metric_id, earliest)
    except MetricStreamError as error:
        log_event(
            log, logging.INFO, "stream_refused", client=peer, status=error.status_code, error=error.message
        )
        await send_json(send, error.status_code, {"error": error.message}, cors)
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
        await send({"type": "http.response.start", "status": 200, "headers": [*_STREAM_HEADERS, *cors]})
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
            duration=broadcaster.clock.monotonic() - client.connected_at,
            clients=len(broadcaster.clients),
        )


def _peer(scope: Scope) -> str | None:
    """`host:port` of the client, for the log lines."""
    client = scope.get("client")
    return f"{client[0]}:{client[1]}" if client else None
