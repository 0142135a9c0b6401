"""Every request's first stop: the policies that hold on every route, each written once.

In order: the Host rule; CORS (a preflight answered here, for any route; an allowed origin's headers added
to every answer); the token the route needs (the bearer header, `?access_token=` on the stream, the
dashboard's cookie for reads); the count of wrong tokens per client address, which turns them into 429s;
and the body, read whole within its limit and `BODY_TIMEOUT` seconds of the app's clock before the route
sees it (Quart reads it again from a replayed message), so no route hangs on a client that stops sending.
hypercorn hands a body over as its data and then an empty last message, so every read awaits twice: one
watchdog (`clock.Deadlines`) keeps every body's deadline, where a timer per request cost each POST more.
A refusal is answered before any body byte is read; a refused HTTP/1.1 body is then drained for
`DRAIN_TIMEOUT` seconds, up to `max_body` (a token refusal) or a batch's size (a body over its route's
limit), so a keep-alive connection stays usable; a larger, chunked or slower one is closed. Over HTTP/2,
`http2.guard_body` drains.
"""

from __future__ import annotations

import ipaddress
import logging
import math
from collections.abc import Awaitable, Callable, MutableMapping
from typing import TYPE_CHECKING, Any, Final

from ..clock import Deadlines
from ..errors import (
    ForbiddenError,
    MetricStreamError,
    PayloadTooLargeError,
    RequestTimeoutError,
    TooManyRequestsError,
    UnauthorizedError,
)
from ..wire import STREAM_PATH
from .access import (
    CORS_ALLOW_HEADERS,
    CORS_MAX_AGE,
    Access,
    Need,
    bearer,
    header,
    peer,
    refusal,
    route_path,
    session_of,
    stream_token,
)
from .answers import send_error
from .prometheus import PROMETHEUS_READ_POSTS
from .sessions import SESSION_PATH, FailureLimit
from .telemetry import METRICS_PATH, log_event
from .types import Receive, Scope, Send

if TYPE_CHECKING:
    from ..clock import Clock

__all__ = ["BATCH_PATH", "BODY_TIMEOUT", "DRAIN_TIMEOUT", "READING_PATH", "Gate", "client_key", "need_of"]

log = logging.getLogger("metricstream")
stream_log = logging.getLogger("metricstream.stream")  # the stream's lines, and the Host refusals, as before

READING_PATH: Final = "/metrics/readings"
# The batch route's body may be a batch's size, as may the foreign formats' (web/foreign.py); any other
# route's, max_body.
BATCH_PATH: Final = "/metrics/readings/batch"
LARGE_BODY_PATHS: Final = frozenset({BATCH_PATH, "/api/v2/write", "/write", "/v1/metrics", "/api/v1/write"})
# Seconds for a whole request body to arrive, its first byte included.
BODY_TIMEOUT: Final = 60.0
# Seconds a refused body is read for, to keep the connection usable.
DRAIN_TIMEOUT: Final = 10.0
_CLOSE: Final = (b"connection", b"close")
# Host values whose answer is remembered, at most: a client sending many cannot grow it.
_HOSTS_KEPT: Final = 64
_PUBLIC_PATHS: Final = frozenset({"/", "/healthz", "/openapi.json"})

# What a route does with the body the gate has read: scope, a receive that replays it, send, the body
# (None when the request had none).
Handler = Callable[[Scope, Receive, Send, bytes | None], Awaitable[None]]
# What a route is called with after the gate: its receive, send and body (None: none read).
Admitted = tuple[Receive, Send, bytes | None]


def need_of(method: str, path: str) -> Need:
    if method == "OPTIONS" or path == SESSION_PATH:
        return Need.NOTHING  # a preflight carries no credentials; the sign-in checks its own
    if method == "POST" and path in PROMETHEUS_READ_POSTS:
        return Need.READ  # a query sent as a form, as Grafana sends it
    if method not in ("GET", "HEAD"):
        return Need.WRITE
    if path in _PUBLIC_PATHS or path.startswith("/dashboard/"):
        return Need.NOTHING
    if path == METRICS_PATH:
        return Need.SCRAPE
    return Need.STREAM if path == STREAM_PATH else Need.READ


def client_key(scope: Scope) -> str:
    """Whom wrong tokens are counted against: the client's address; for IPv6 its /64, which one host
    usually holds whole."""
    client = scope.get("client")
    if not client:
        return ""
    address = str(client[0])
    try:
        parsed = ipaddress.ip_address(address)
    except ValueError:
        return address
    if isinstance(parsed, ipaddress.IPv6Address):
        if parsed.ipv4_mapped is not None:
            return str(parsed.ipv4_mapped)
        return str(ipaddress.ip_network(f"{parsed}/64", strict=False))
    return str(parsed)


class _Refused(Exception):
    """A refusal, and how much of an unread body to drain after answering it."""

    def __init__(self, error: MetricStreamError, drain: int = 0) -> None:
        super().__init__(error.message)
        self.error, self.drain = error, drain


class Gate:
    """The policies above for one app: its access rules, wrong-token counts, clock and body limits.
    `methods` says which methods a path takes (for preflights); `observe` counts each refusal."""

    def __init__(
        self,
        access: Access,
        failures: FailureLimit,
        clock: Clock,
        limits: tuple[int, int],
        methods: Callable[[str], frozenset[str]],
        observe: Callable[[str, str, int], None],
    ) -> None:
        self.access, self.failures, self.clock = access, failures, clock
        self.max_body, self.ceiling = limits
        self.methods, self.observe = methods, observe
        # Every body's time, kept by one watchdog: a timer per request costs each POST more.
        self._bodies = Deadlines(clock, BODY_TIMEOUT)
        # Host header -> whether it is answered: every request asks, with the same few values.
        self._hosts: dict[str | None, bool] = {}

    @property
    def bodies_awaited(self) -> int:
        """Request bodies being read now, each within its `BODY_TIMEOUT`."""
        return self._bodies.open

    async def close(self) -> None:
        """End the body watchdog (the app shuts down)."""
        await self._bodies.close()

    async def admit(self, scope: Scope, receive: Receive, send: Send) -> Admitted | None:
        """A request checked: the receive and send to route it with, and its body if it has one; None when
        it was answered here (refused, or a preflight) or its client went away. It returns rather than calls
        the route, so an open stream holds no frame of the gate's."""
        try:
            self._check_host(scope)
            if self.access.cors_origins:
                if await self._preflight(scope, send):
                    return None
                send = self._with_cors(scope, send)
            self._check_token(scope, need_of(scope["method"], route_path(scope)))
            if not _may_have_body(scope):
                return receive, send, None
            body = await self._read_body(scope, receive)
        except _Refused as refused:
            await self._refuse(scope, receive, send, refused)
            return None
        if body is None:  # the client went away
            return None
        return _replay(body, receive), send, body

    def _check_host(self, scope: Scope) -> None:
        host = header(scope, b"host")
        allowed = self._hosts.get(host)
        if allowed is None:
            allowed = self.access.host_allowed(host)
            if len(self._hosts) < _HOSTS_KEPT:
                self._hosts[host] = allowed
        if not allowed:
            message = (
                f"host {(host or '')[:100]!r} is not allowed: without a token this server answers only to "
                "localhost, 127.0.0.1 and [::1], and the hosts in allowed_hosts (see docs/security.md)"
            )
            raise _Refused(ForbiddenError(message, headers={"Connection": "close"}))

    def _check_token(self, scope: Scope, need: Need) -> None:
        """Refuse a request without the token it needs (401), and every one carrying a token from an
        address with too many wrong ones (429), right or not: a locked address learns nothing more."""
        access = self.access
        if need is Need.NOTHING or not access.guards(need):
            return
        # The cookie grants reads only.
        session = session_of(scope) if need in (Need.READ, Need.STREAM) else None
        presented = stream_token(scope) if need is Need.STREAM else bearer(header(scope, b"authorization"))
        if presented is None and session is None:
            how = "Authorization: Bearer <token>" + (
                " or ?access_token=<token>" if need is Need.STREAM else ""
            )
            message, challenge = refusal(None, need.value, how)
            raise _Refused(UnauthorizedError(message, headers={"WWW-Authenticate": challenge}), self.max_body)
        client = client_key(scope)
        wait = self.failures.retry_after(client)
        if wait is not None:
            seconds = max(1, math.ceil(wait))
            message = f"too many wrong tokens from this address: try again in {seconds} s"
            raise _Refused(
                TooManyRequestsError(message, headers={"Retry-After": str(seconds)}), self.max_body
            )
        if not access.grants(need, presented, session):
            self.failures.failed(client)
            message, challenge = refusal(presented, need.value, session=session)
            raise _Refused(UnauthorizedError(message, headers={"WWW-Authenticate": challenge}), self.max_body)

    async def _read_body(self, scope: Scope, receive: Receive) -> bytes | None:
        """The whole body, or None if the client went away; refused past its limit or its time."""
        limit = self.ceiling if route_path(scope) in LARGE_BODY_PATHS else self.max_body
        size = _declared_size(scope)
        if size is not None and size > limit:
            # unread; within a batch's size, drained
            raise _Refused(_too_large(limit), drain=self.ceiling)
        chunks: list[bytes] = []
        received = 0
        try:
            async with self._bodies.limit():
                while True:
                    message = await receive()
                    if message["type"] != "http.request":
                        return None
                    chunk = message.get("body", b"")
                    received += len(chunk)
                    if received > limit:
                        raise _Refused(_too_large(limit))
                    chunks.append(chunk)
                    if not message.get("more_body", False):
                        return b"".join(chunks)
        except TimeoutError:
            late = f"the request body did not arrive within {BODY_TIMEOUT:g} seconds"
            raise _Refused(RequestTimeoutError(late, headers={"Connection": "close"})) from None

    async def _refuse(self, scope: Scope, receive: Receive, send: Send, refused: _Refused) -> None:
        """Answer at once. For an unread body of at most `refused.drain` bytes, the answer's end waits
        until the body is read, and the connection is kept: hypercorn closes one whose request is unread
        when the answer ends, and the client may lose the answer to the reset that unread bytes cause."""
        error = refused.error
        http1 = scope.get("http_version", "1.1").startswith("1")
        size = _declared_size(scope)
        keep = http1 and _has_body(scope) and size is not None and size <= refused.drain
        # HTTP/2 has no `connection`: the stream ends, not the connection.
        if not http1:
            error.headers.pop("Connection", None)
        elif _has_body(scope) and not keep:
            error.headers["Connection"] = "close"
        self._log(scope, error)
        await send_error(send, error, more_body=keep)
        if keep:
            await self._drain(receive)
            await send({"type": "http.response.body", "body": b"", "more_body": False})

    def _log(self, scope: Scope, error: MetricStreamError) -> None:
        method, path = scope["method"], route_path(scope)
        fields: dict[str, Any] = {"client": peer(scope), "status": error.status_code}
        if isinstance(error, ForbiddenError):
            event = "host_refused"
            fields["host"] = (header(scope, b"host") or "")[:100]
        elif path == STREAM_PATH:
            event = "stream_refused"
        else:
            event = "request_refused"
            fields |= {"method": method, "path": path[:200]}
        if path != STREAM_PATH:
            self.observe(method, path, error.status_code)
        logger = log if event == "request_refused" else stream_log
        log_event(logger, logging.INFO, event, **fields, error=error.message)

    async def _drain(self, receive: Receive) -> None:
        try:
            async with self.clock.timeout(DRAIN_TIMEOUT):
                while True:
                    message = await receive()
                    if message["type"] != "http.request" or not message.get("more_body", False):
                        return
        except TimeoutError:
            # The answer ends unread and hypercorn closes the connection: the client stalled anyway.
            return

    # --- CORS (the rules: access.py) -------------------------------------------------------------------

    async def _preflight(self, scope: Scope, send: Send) -> bool:
        """Answer a CORS preflight from an allowed origin for a method its path takes; False (nothing
        sent) for any other request, which goes on to its route."""
        if scope["method"] != "OPTIONS":
            return False
        allowed = self.access.allowed_origin(header(scope, b"origin"))
        method = header(scope, b"access-control-request-method")
        if allowed is None or method is None or method not in self.methods(route_path(scope)):
            return False
        asked = header(scope, b"access-control-request-headers") or ""
        requested = {name.strip().lower() for name in asked.split(",")}
        headers = [name for name in CORS_ALLOW_HEADERS if name.lower() in requested]
        start = [
            (b"access-control-allow-origin", allowed.encode("latin-1")),
            (b"access-control-allow-methods", method.encode("latin-1")),
            (b"access-control-allow-headers", ", ".join(headers).encode()),
            (b"access-control-max-age", b"%d" % CORS_MAX_AGE),
            (b"vary", b"Origin"),
        ]
        await send({"type": "http.response.start", "status": 204, "headers": start})
        await send({"type": "http.response.body", "body": b""})
        return True

    def _with_cors(self, scope: Scope, send: Send) -> Send:
        """`send`, adding the CORS headers for this request's origin to its answer, whoever writes it."""
        extra = self.access.cors_headers(header(scope, b"origin"))

        async def send_with_cors(message: MutableMapping[str, Any]) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), *extra]
            await send(message)

        return send_with_cors


def _too_large(limit: int) -> PayloadTooLargeError:
    return PayloadTooLargeError(f"request body is larger than {limit} bytes")


def _declared_size(scope: Scope) -> int | None:
    text = header(scope, b"content-length")
    return int(text) if text is not None and text.strip().isdigit() else None


def _has_body(scope: Scope) -> bool:
    """Whether the headers announce a body: a length above 0, or a chunked one."""
    size = _declared_size(scope)
    return size > 0 if size is not None else header(scope, b"transfer-encoding") is not None


def _may_have_body(scope: Scope) -> bool:
    """Whether to read a body before the route: one is announced, or the method usually has one (HTTP/2
    announces none, and an empty one costs a single message)."""
    return scope["method"] not in ("GET", "HEAD", "OPTIONS") or _has_body(scope)


def _replay(body: bytes, receive: Receive) -> Receive:
    """A receive that gives the body already read as one message, then the connection's own."""
    pending = True

    async def replayed() -> MutableMapping[str, Any]:
        nonlocal pending
        if pending:
            pending = False
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replayed
