"""The dashboard's sign-in: what `GET`, `POST` and `DELETE /dashboard/session` answer (the Quart routes that
serve them are in `app.py`; the cookie's value and what it grants, in `access.py`).

A browser's EventSource cannot send an `Authorization` header, so the page posts the token once and gets a
cookie that its same-origin fetches and EventSource then send by themselves:

- `HttpOnly` (no script reads it), `SameSite=Strict` (no other site's request carries it), `Path=/`, and
  `Secure` when the request came over HTTPS (the ASGI scope's scheme). No `Max-Age`: it lasts until the
  browser ends its session, or until `DELETE` clears it.
- Its value is `session_value(token)`, an HMAC keyed by the token: not the token, and no server-side
  state, so it survives a restart with the same token, and a changed token revokes every cookie.
- It grants reads and the stream only, never writes: a cross-site request it could ride along on (a form
  post) can change nothing. The sign-in itself takes a JSON body and an `Origin` of this server or none.
- Wrong tokens are counted per client address, here and on every other route alike (one `FailureLimit`
  per app, which `gate.py` also feeds): after `MAX_FAILURES` within `FAILURE_WINDOW` seconds of the app's
  monotonic clock, that address gets 429 with `Retry-After` until the oldest of them is that old. At most
  `MAX_TRACKED` addresses are remembered.
"""

from __future__ import annotations

import logging
import math
from collections import OrderedDict, deque
from typing import TYPE_CHECKING, Final, NamedTuple
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field

from ..domain.validation import validate
from .access import SESSION_COOKIE, Access, session_value
from .telemetry import log_event

if TYPE_CHECKING:
    from ..clock import Clock

__all__ = [
    "FAILURE_WINDOW",
    "MAX_FAILURES",
    "MAX_TRACKED",
    "SESSION_PATH",
    "Caller",
    "FailureLimit",
    "SessionAnswer",
    "SessionIn",
    "Sessions",
    "same_origin",
]

log = logging.getLogger("metricstream")

SESSION_PATH: Final = "/dashboard/session"
MAX_FAILURES: Final = 5  # wrong tokens from one address ...
FAILURE_WINDOW: Final = 60.0  # ... within this many seconds, then 429
MAX_TRACKED: Final = 10_000  # addresses whose failures are remembered
_ATTRIBUTES: Final = "Path=/; HttpOnly; SameSite=Strict"


class SessionIn(BaseModel):
    """Body of `POST /dashboard/session`."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    token: str = Field(min_length=1, max_length=1000, description="The subscribe_token, or the token.")


class Caller(NamedTuple):
    """What the session routes read of a request."""

    client: str  # the peer's address, which failures are counted by
    origin: str | None  # the Origin header
    host: str | None  # the Host header
    secure: bool  # came over HTTPS (the ASGI scope's scheme)


class SessionAnswer(NamedTuple):
    status: int
    body: dict[str, object]
    headers: dict[str, str]


class FailureLimit:
    """Wrong tokens per client address, in the clock's monotonic time, for at most `max_tracked`
    addresses (past that, the one whose last failure is oldest is forgotten)."""

    def __init__(
        self,
        clock: Clock,
        limit: int = MAX_FAILURES,
        window: float = FAILURE_WINDOW,
        max_tracked: int = MAX_TRACKED,
    ) -> None:
        self.clock, self.limit, self.window, self.max_tracked = clock, limit, window, max_tracked
        # address -> times of its last `limit` failures; ordered by the newest failure, oldest first
        self._failures: OrderedDict[str, deque[float]] = OrderedDict()

    @property
    def tracked(self) -> int:
        """How many addresses are remembered."""
        return len(self._failures)

    def retry_after(self, client: str) -> float | None:
        """Seconds until `client` may try again, or None when it may now."""
        failures = self._failures.get(client)
        if failures is None or len(failures) < self.limit:
            return None
        wait = failures[0] + self.window - self.clock.monotonic()
        return wait if wait > 0 else None

    def failed(self, client: str) -> None:
        now = self.clock.monotonic()
        failures = self._failures.pop(client, None) or deque(maxlen=self.limit)
        failures.append(now)
        self._failures[client] = failures
        # forget the addresses whose last failure is out of the window, then any over the bound
        while self._failures:
            oldest = next(iter(self._failures.values()))
            if oldest[-1] + self.window > now and len(self._failures) <= self.max_tracked:
                break
            self._failures.popitem(last=False)

    def succeeded(self, client: str) -> None:
        self._failures.pop(client, None)


def same_origin(origin: str | None, host: str | None) -> bool:
    """Whether an `Origin` header names the server this `Host` header reached; no Origin at all passes
    (not a browser's cross-site request). The scheme is not compared: behind a TLS-terminating proxy the
    page's `https://` origin reaches this server over plain HTTP, with the same Host."""
    if origin is None:
        return True
    if host is None:
        return False
    try:
        parts = urlsplit(origin.strip().lower())
        port = parts.port
    except ValueError:
        return False
    if parts.scheme not in ("http", "https") or not parts.hostname or parts.path or "@" in parts.netloc:
        return False  # "null" (a sandboxed or opaque origin), or not an origin at all
    default = 443 if parts.scheme == "https" else 80
    authority = parts.netloc.rsplit(":", 1)[0] if port == default else parts.netloc
    return host.strip().lower() in (authority, f"{authority}:{default}")


class Sessions:
    """The answers of the session routes for one app's access rules, with its failure counts."""

    def __init__(self, access: Access, failures: FailureLimit) -> None:
        self.access = access
        self.failures = failures  # the app's own, shared with every route's token check (gate.py)

    def state(self, session: str | None) -> SessionAnswer:
        """`GET`: whether reads need a token, and whether this request's cookie grants them."""
        return self._state(signed_in=self._required and self.access.may_read(None, session))

    def sign_in(self, body: object, caller: Caller) -> SessionAnswer:
        """`POST` with `{"token": ...}`: the cookie for a token that grants reads, or the refusal.
        A bad body raises `ValidationError`."""
        token = validate(SessionIn, body).token.encode("utf-8", "replace")
        client = caller.client
        if not same_origin(caller.origin, caller.host):
            log_event(log, logging.INFO, "session_refused", client=client, status=403)
            message = "sign-in is taken only from this server's own pages: the Origin header names another"
            return SessionAnswer(403, {"error": message}, {})
        if not self._required:
            return self._state(signed_in=False)  # reads are open: there is nothing to sign in to
        wait = self.failures.retry_after(client)
        if wait is not None:
            seconds = max(1, math.ceil(wait))
            log_event(log, logging.WARNING, "session_limited", client=client, status=429)
            message = f"too many wrong tokens from this address: try again in {seconds} s"
            return SessionAnswer(429, {"error": message}, {"Retry-After": str(seconds)})
        if not self.access.may_read(token):
            self.failures.failed(client)
            log_event(log, logging.WARNING, "session_refused", client=client, status=401)
            challenge = 'Bearer realm="metricstream", error="invalid_token"'
            message = "that token is not valid here: give this server's subscribe_token (or its token)"
            return SessionAnswer(401, {"error": message}, {"WWW-Authenticate": challenge})
        self.failures.succeeded(client)
        cookie = (
            f"{SESSION_COOKIE}={session_value(token)}; {_ATTRIBUTES}{'; Secure' if caller.secure else ''}"
        )
        return self._state(signed_in=True, cookie=cookie)

    def sign_out(self, caller: Caller) -> SessionAnswer:
        """`DELETE`: the cookie cleared (`Max-Age=0`), whatever it was."""
        if not same_origin(caller.origin, caller.host):
            message = "sign-out is taken only from this server's own pages: the Origin header names another"
            return SessionAnswer(403, {"error": message}, {})
        cookie = f"{SESSION_COOKIE}=; Max-Age=0; {_ATTRIBUTES}{'; Secure' if caller.secure else ''}"
        return self._state(signed_in=False, cookie=cookie)

    @property
    def _required(self) -> bool:
        return self.access.subscribe_token is not None

    def _state(self, *, signed_in: bool, cookie: str | None = None) -> SessionAnswer:
        headers = {"Cache-Control": "no-store"}
        if cookie is not None:
            headers["Set-Cookie"] = cookie
        return SessionAnswer(200, {"required": self._required, "signed_in": signed_in}, headers)
