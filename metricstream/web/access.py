"""Who may do what: the rules for tokens, the dashboard's session cookie, CORS origins and the Host header,
and reading them off an ASGI request. `gate.py` applies them to every request.

Rules (docs/security.md): with `subscribe_token` set, reads and the stream need it (or `token`, which grants
everything), the stream also as `?access_token=<token>`, since a browser's EventSource cannot send headers.
Tokens are compared with `hmac.compare_digest` and never logged (log lines carry parsed fields, never the
query string). The dashboard's session cookie (`sessions.py` signs in) stands for a token on reads and the
stream only, never on writes: its value is `session_value(token)`, an HMAC keyed by the token, so a changed
token revokes it. Without a `token`, only loopback `Host` names and `allowed_hosts` are answered (DNS
rebinding).
"""

from __future__ import annotations

import base64
import binascii
import functools
import hashlib
import hmac
import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass, field
from enum import Enum
from typing import Final
from urllib.parse import parse_qs

from .types import Scope

__all__ = [
    "CORS_ALLOW_HEADERS",
    "CORS_EXPOSE_HEADERS",
    "CORS_MAX_AGE",
    "SESSION_COOKIE",
    "Access",
    "Need",
    "bearer",
    "header",
    "peer",
    "refusal",
    "route_path",
    "session_cookie",
    "session_of",
    "session_value",
    "stream_token",
]

CORS_ALLOW_HEADERS: Final = ("Authorization", "Content-Type", "Last-Event-ID", "Cache-Control")
# Content-Disposition: the file name of an export (web/exports.py).
CORS_EXPOSE_HEADERS: Final = (
    "Last-Event-ID",
    "X-Last-Event-ID",
    "X-Truncated",
    "Link",
    "Content-Disposition",
)
# Seconds a browser may reuse a preflight's answer.
CORS_MAX_AGE: Final = 600
SESSION_COOKIE: Final = "metricstream_session"
_SESSION_LABEL: Final = b"metricstream dashboard session v1"


def _matches(presented: bytes | None, expected: bytes) -> bool:
    # hmac.compare_digest through the module (not imported by name): constant time, and tests can watch it
    return presented is not None and hmac.compare_digest(presented, expected)


def session_value(token: bytes) -> str:
    """The session cookie's value for `token`: HMAC-SHA256 of a fixed label keyed by the token (base64url).
    Never the token itself, and not turned back into it; another token, another value."""
    digest = hmac.new(token, _SESSION_LABEL, hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def host_name(host: str) -> str | None:
    """The name in a Host header value, lowercased, without its port: `example.org`, `[::1]`; None when
    the value is not a host with an optional port (`[::1]evil.example`, `a:b:c`, `a:port`)."""
    host = host.strip().lower()
    if host.startswith("["):
        name, bracket, port = host.partition("]")
        name += bracket
    else:
        name, _, port = host.partition(":")
        port = ":" + port if port or host.endswith(":") else ""
        name = name.rstrip(".")
    if port and not (port.startswith(":") and (port[1:].isdigit() or port == ":") and port.isascii()):
        return None
    return name if name and name != "[]" else None


@functools.lru_cache(maxsize=256)  # every request asks, with the same few names
def is_loopback_name(name: str) -> bool:
    if name == "localhost":
        return True
    try:
        return ipaddress.ip_address(name.removeprefix("[").removesuffix("]")).is_loopback
    except ValueError:
        return False


class Need(Enum):
    """Which token a request needs (docs/security.md): reads take `subscribe_token` or `token`, or the
    dashboard's cookie; the stream takes the same, also as `?access_token=`; `/-/metrics` either token,
    never the cookie; writes `token`, as a bearer header only."""

    NOTHING = "nothing"
    READ = "reads"
    STREAM = "the stream"
    SCRAPE = "/-/metrics"
    WRITE = "writes"


@dataclass(frozen=True, slots=True)
class Access:
    """Who may do what, and which web origins may call. None means "no token needed"."""

    # Grants writes, and reads and the stream too.
    token: bytes | None = None
    # Grants reads and the stream.
    subscribe_token: bytes | None = None
    # Exact origins, or {"*"}; empty: no CORS at all.
    cors_origins: frozenset[str] = frozenset()
    # Host names answered besides loopback ones (".x" takes subdomains, "*" any); None: any host at all.
    allowed_hosts: frozenset[str] | None = None
    # The session cookie values that grant reads: one per token (see session_value).
    sessions: tuple[bytes, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        tokens = [token for token in (self.subscribe_token, self.token) if token is not None]
        object.__setattr__(self, "sessions", tuple(session_value(token).encode() for token in tokens))

    def host_allowed(self, host: str | None) -> bool:
        """Whether a request with this Host header is answered (the DNS-rebinding guard)."""
        allowed = self.allowed_hosts
        if allowed is None or host is None or "*" in allowed:
            return True  # no Host at all (HTTP/1.0) cannot come from a browser
        name = host_name(host)
        if name is None:
            return False  # not a host name at all: a browser never sends one
        if is_loopback_name(name) or name in allowed:
            return True
        return any(entry.startswith(".") and (name.endswith(entry) or name == entry[1:]) for entry in allowed)

    def guards(self, need: Need) -> bool:
        """Whether what `need` names takes a token at all here."""
        if need is Need.WRITE:
            return self.token is not None
        if need is Need.SCRAPE:
            return self.token is not None or self.subscribe_token is not None
        return need is not Need.NOTHING and self.subscribe_token is not None

    def grants(self, need: Need, presented: bytes | None, session: str | None = None) -> bool:
        """Whether this token (or, for reads, session cookie) grants what `need` names."""
        if need is Need.WRITE:
            return self.may_write(presented)
        if need is Need.SCRAPE:
            return self.may_scrape(presented)
        return need is Need.NOTHING or self.may_read(presented, session)

    def may_write(self, presented: bytes | None) -> bool:
        return self.token is None or _matches(presented, self.token)

    def may_read(self, presented: bytes | None, session: str | None = None) -> bool:
        """Reads and the stream: open without `subscribe_token`, else either token, or the session cookie
        made from either (never a grant for writes: `may_write` takes no cookie)."""
        if self.subscribe_token is None:
            return True
        if _matches(presented, self.subscribe_token) or (
            self.token is not None and _matches(presented, self.token)
        ):
            return True
        cookie = None if session is None else session.encode("latin-1", "replace")
        return cookie is not None and any([hmac.compare_digest(cookie, value) for value in self.sessions])

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
            return [(b"vary", b"Origin")]
        return [
            (b"access-control-allow-origin", allowed.encode("latin-1")),
            (b"access-control-expose-headers", ", ".join(CORS_EXPOSE_HEADERS).encode()),
            (b"vary", b"Origin"),
        ]


def bearer(authorization: str | bytes | None) -> bytes | None:
    """The token of an `Authorization` header value, or None: `Bearer <token>`; `Token <token>`, as
    InfluxDB 2 clients send it; or `Basic` with the token as password, as InfluxDB 1 clients and Telegraf's
    `influxdb` output send a username and password."""
    if authorization is None:
        return None
    raw = authorization.encode("latin-1", "replace") if isinstance(authorization, str) else authorization
    scheme, _, token = raw.strip().partition(b" ")
    scheme = scheme.lower()
    if scheme == b"basic":
        try:
            token = base64.b64decode(token.strip(), validate=True).partition(b":")[2]
        except binascii.Error:
            return None
    elif scheme not in (b"bearer", b"token"):
        return None
    return token.strip() or None


def refusal(
    presented: bytes | None, what: str, how: str = "Authorization: Bearer <token>", session: str | None = None
) -> tuple[str, str]:
    """(error message, WWW-Authenticate value) for a request to `what` without a valid token (or with a
    session cookie that no longer holds, `session`)."""
    if presented is None and session is not None:
        message = f"the dashboard session is not valid for {what} (was the token changed?): sign in again"
        return message, 'Bearer realm="metricstream"'
    if presented is None:
        return f"a bearer token is required for {what}: send {how}", 'Bearer realm="metricstream"'
    return f"the bearer token is not valid for {what}", 'Bearer realm="metricstream", error="invalid_token"'


def route_path(scope: Scope) -> str:
    """The path within this app: the request's path without the `root_path` it is mounted under."""
    path: str = scope["path"]
    root = scope.get("root_path", "")
    if root and path.startswith(root):
        return path[len(root) :] or "/"
    return path


def header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope["headers"]:  # a loop, not next() over a generator: every request asks thrice
        if key == name:
            text: str = value.decode("latin-1")
            return text
    return None


def query_parameters(scope: Scope) -> dict[str, list[str]]:
    """The query string's parameters, each with every value it was given (blank ones too), in order."""
    return parse_qs(scope.get("query_string", b"").decode("latin-1"), keep_blank_values=True)


def stream_token(scope: Scope) -> bytes | None:
    """The stream's token: the Authorization header, else `?access_token=` (for EventSource)."""
    presented = bearer(header(scope, b"authorization"))
    if presented is None:
        query = query_parameters(scope)
        if query.get("access_token"):
            presented = query["access_token"][-1].encode("utf-8", "replace") or None
    return presented


def session_cookie(values: Iterable[str]) -> str | None:
    """The session cookie's value in these `Cookie` header values (HTTP/2 may send several), or None."""
    for value in values:
        for pair in value.split(";"):
            name, _, content = pair.strip().partition("=")
            if name == SESSION_COOKIE and content:
                return content
    return None


def session_of(scope: Scope) -> str | None:
    """The session cookie of a plain ASGI request."""
    return session_cookie(value.decode("latin-1") for key, value in scope["headers"] if key == b"cookie")


def peer(scope: Scope) -> str | None:
    """`host:port` of the client, for the log lines."""
    client = scope.get("client")
    return f"{client[0]}:{client[1]}" if client else None
