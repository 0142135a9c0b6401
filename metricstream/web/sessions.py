"""The dashboard's sign-in: what `GET`, `POST` and `DELETE /dashboard/session` answer (the Quart routes
that serve them are in `routes.py`; the cookie's value and what it grants, in `access.py`).

A browser's EventSource cannot send an `Authorization` header, so the page posts the token once and gets a
cookie that its same-origin requests then send by themselves: an HMAC keyed by the token (no server-side
state), which grants reads and the stream only. Wrong tokens count in the app's one `FailureLimit`, with
those on every other route (`gate.py`). docs/security.md (The dashboard's sign-in) says the rest.
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
# MAX_FAILURES wrong tokens from one address within FAILURE_WINDOW seconds, then 429;
# the failures of at most MAX_TRACKED addresses are remembered.
MAX_FAILURES: Final = 5
FAILURE_WINDOW: Final = 60.0
MAX_TRACKED: Final = 10_000
_ATTRIBUTES: Final = "Path=/; HttpOnly; SameSite=Strict"


class SessionIn(BaseModel):
    """Body of `POST /dashboard/session`."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    token: str = Field(min_length=1, max_length=1000, description="The subscribe_token, or the token.")


class Caller(NamedTuple):
    """What the session routes read of a request: the peer's address (which failures are counted by), the
    Origin and Host headers, and whether it came over HTTPS (the ASGI scope's scheme)."""

    client: str
    origin: str | None
    host: str | None
    secure: bool


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
        # The app's own, shared with every route's token check (gate.py).
        self.failures = failures

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
