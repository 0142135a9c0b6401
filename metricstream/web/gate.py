"""Every request's first stop: the policies that hold on every route, each written once.

In order: the Host rule; the token the route needs (the bearer header, `?access_token=` on the stream, the
dashboard's cookie for reads); the count of wrong tokens per client address, which turns them into 429s;
and the body, read whole within its limit and `BODY_TIMEOUT` seconds of the app's clock, before the route
sees it. A refusal is answered before any body byte is read. Routes then find the body already in (the
write routes take it as bytes; Quart reads it again from a replayed message) and can neither hang on a
client that stops sending nor keep one connected for ever.

A refused HTTP/1.1 body is drained after the answer, for `DRAIN_TIMEOUT` seconds and up to `max_body` (a
token refusal) or a batch's size (a body over its route's limit), so a keep-alive client's next request
finds the connection usable; a larger, chunked or slower one closes it (`connection: close`). Over HTTP/2,
`http2.guard_body` does the draining.
"""

from __future__ import annotations

import ipaddress
import logging
import math
from collections.abc import Awaitable, Callable, MutableMapping
from typing import TYPE_CHECKING, Any, Final, NamedTuple

from ..wire import STREAM_PATH
from .access import (
    Access,
    Need,
    bearer,
    header,
    peer,
    refusal,
    refuse_host,
    route_path,
    send_json,
    session_of,
    stream_token,
)
from .ingest import BATCH_PATH
from .sessions import SESSION_PATH, FailureLimit
from .telemetry import METRICS_PATH, log_event
from .types import Receive, Scope, Send

if TYPE_CHECKING:
    from ..clock import Clock

__all__ = ["BODY_TIMEOUT", "DRAIN_TIMEOUT", "Gate", "client_key", "need_of"]

log = logging.getLogger("metricstream")

BODY_TIMEOUT: Final = 60.0  # seconds for a whole request body to arrive, its first byte included
DRAIN_TIMEOUT: Final = 10.0  # seconds a refused body is read for, to keep the connection usable
_CLOSE: Final = (b"connection", b"close")
_PUBLIC_PATHS: Final = frozenset({"/", "/healthz", "/openapi.json"})

# What a route does with the body the gate has read: scope, a receive that replays it, send, the body
# (None when the request had none).
Handler = Callable[[Scope, Receive, Send, bytes | None], Awaitable[None]]


def need_of(method: str, path: str) -> Need:
    if method == "OPTIONS" or path == SESSION_PATH:
        return Need.NOTHING  # a preflight carries no credentials; the sign-in checks its own
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


class Refusal(NamedTuple):
    status: int
    message: str
    headers: list[tuple[bytes, bytes]]


class _BodyRefused(Exception):
    def __init__(self, refusal: Refusal, drain: int = 0) -> None:
        super().__init__(refusal.message)
        self.refusal, self.drain = refusal, drain


class Gate:
    """The policies above for one app: its access rules, wrong-token counts, clock and body limits."""

    def __init__(
        self,
        access: Access,
        failures: FailureLimit,
        clock: Clock,
        max_body: int,
        ceiling: int,
        observe: Callable[[str, str, int], None],
    ) -> None:
        self.access, self.failures, self.clock = access, failures, clock
        self.max_body, self.ceiling = max_body, ceiling
        self.observe = observe  # (method, path, status) of each refusal, for the request metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send, handler: Handler) -> None:
        if not self.access.host_allowed(header(scope, b"host")):
            await refuse_host(scope, send)
            return
        method, path = scope["method"], route_path(scope)
        refused = self._check_token(scope, need_of(method, path))
        if refused is not None:
            await self._refuse(scope, receive, send, refused, drain=self.max_body)
            return
        if not _may_have_body(scope):
            await handler(scope, receive, send, None)
            return
        try:
            body = await self._read_body(scope, receive)
        except _BodyRefused as error:
            await self._refuse(scope, receive, send, error.refusal, drain=error.drain)
            return
        if body is not None:  # else the client went away
            await handler(scope, _replay(body, receive), send, body)

    def _check_token(self, scope: Scope, need: Need) -> Refusal | None:
        """None when the request may go on; else its 401, or 429 for an address with too many wrong
        tokens (whether or not this one is right: a locked address learns nothing more)."""
        access = self.access
        if need is Need.NOTHING or not access.guards(need):
            return None
        session = session_of(scope) if need in (Need.READ, Need.STREAM) else None  # the cookie reads only
        presented = stream_token(scope) if need is Need.STREAM else bearer(header(scope, b"authorization"))
        if presented is None and session is None:
            how = "Authorization: Bearer <token>" + (
                " or ?access_token=<token>" if need is Need.STREAM else ""
            )
            message, challenge = refusal(None, need.value, how)
            return Refusal(401, message, [(b"www-authenticate", challenge.encode())])
        client = client_key(scope)
        wait = self.failures.retry_after(client)
        if wait is not None:
            seconds = max(1, math.ceil(wait))
            message = f"too many wrong tokens from this address: try again in {seconds} s"
            return Refusal(429, message, [(b"retry-after", b"%d" % seconds)])
        if access.grants(need, presented, session):
            return None
        self.failures.failed(client)
        message, challenge = refusal(presented, need.value, session=session)
        return Refusal(401, message, [(b"www-authenticate", challenge.encode())])

    async def _read_body(self, scope: Scope, receive: Receive) -> bytes | None:
        """The whole body, or None if the client went away; refused past its limit or its time."""
        limit = self.ceiling if route_path(scope) == BATCH_PATH else self.max_body
        too_large = Refusal(413, f"request body is larger than {limit} bytes", [])
        size = _declared_size(scope)
        if size is not None and size > limit:
            raise _BodyRefused(too_large, drain=self.ceiling)  # unread; within a batch's size, drained
        chunks: list[bytes] = []
        received = 0
        try:
            async with self.clock.timeout(BODY_TIMEOUT):
                while True:
                    message = await receive()
                    if message["type"] != "http.request":
                        return None
                    chunk = message.get("body", b"")
                    received += len(chunk)
                    if received > limit:
                        raise _BodyRefused(too_large)
                    chunks.append(chunk)
                    if not message.get("more_body", False):
                        return b"".join(chunks)
        except TimeoutError:
            late = f"the request body did not arrive within {BODY_TIMEOUT:g} seconds"
            raise _BodyRefused(Refusal(408, late, [_CLOSE])) from None

    async def _refuse(self, scope: Scope, receive: Receive, send: Send, refused: Refusal, drain: int) -> None:
        """Answer `refused` at once. For an unread body of at most `drain` bytes, the answer's end waits
        until the body is read, and the connection is kept: hypercorn closes one whose request is unread
        when the answer ends, and the client may lose the answer to the reset that unread bytes cause."""
        http1 = scope.get("http_version", "1.1").startswith("1")
        size = _declared_size(scope)
        keep = http1 and _has_body(scope) and size is not None and size <= drain
        headers = [item for item in refused.headers if http1 or item != _CLOSE]  # HTTP/2 has no `connection`
        if http1 and _has_body(scope) and not keep and _CLOSE not in headers:
            headers.append(_CLOSE)
        headers += self.access.cors_headers(header(scope, b"origin"))
        method, path = scope["method"], route_path(scope)
        event = "stream_refused" if path == STREAM_PATH else "request_refused"
        fields: dict[str, Any] = {"client": peer(scope), "status": refused.status}
        if path != STREAM_PATH:
            self.observe(method, path, refused.status)
            fields |= {"method": method, "path": path[:200]}
        log_event(log, logging.INFO, event, **fields, error=refused.message)
        await send_json(send, refused.status, {"error": refused.message}, headers, more_body=keep)
        if keep:
            await self._drain(receive)
            await send({"type": "http.response.body", "body": b"", "more_body": False})

    async def _drain(self, receive: Receive) -> None:
        try:
            async with self.clock.timeout(DRAIN_TIMEOUT):
                while True:
                    message = await receive()
                    if message["type"] != "http.request" or not message.get("more_body", False):
                        return
        except TimeoutError:
            return  # the answer ends unread and hypercorn closes the connection: the client stalled anyway


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
