"""What a subscription knows and decides, with no I/O: where it starts and stands, which request to send,
how to read each dispatched event and each answer, and how long to wait before reconnecting; and the
options of the httpx client a subscriber makes (HTTP/2, `verify=`: the one file read here, a CA bundle).

`Subscriber` and `AsyncSubscriber` (`subscribers.py`) share it, as httpx's `Client` and `AsyncClient` share
their base, and differ only in I/O. Where its rules depart from an EventSource is said in `subscribers.py`.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import random
import ssl
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, Final, Literal, Protocol

import httpx
import orjson

from ..errors import SubscriptionError
from ..wire import STREAM_PATH

__all__ = [
    "EARLIEST",
    "HTTP2",
    "NOW",
    "BaseSubscriber",
    "Dispatched",
    "StreamEvent",
    "Verify",
    "client_options",
]

DEFAULT_RETRY_MS = 1000  # until the server sends `retry:`
MIN_RETRY_MS = 100
CONNECT_TIMEOUT = 10.0
# Values of `start=` besides an event id: from the moment of subscribing, or every event
# the server retains first, then live ones.
NOW: Final = "now"
EARLIEST: Final = "earliest"
# HTTP/2 when h2 is installed (the `h2` extra; hypercorn brings it): over HTTPS many streams then share
# one connection, where a browser or a client pool allows only a few HTTP/1.1 connections per server.
HTTP2: Final = importlib.util.find_spec("h2") is not None

Verify = ssl.SSLContext | str | os.PathLike[str] | bool
"""What `verify=` takes: an `ssl.SSLContext`, a CA bundle file or directory, or False (no check)."""


def client_options(verify: Verify | None, client: object) -> dict[str, Any]:
    """The options of the httpx client a subscriber makes for itself (`client` None): HTTP/2 if it can,
    and `verify`; a path becomes an `ssl.SSLContext`, as httpx 0.28 asks. Bad input raises ValueError."""
    if client is not None:
        if verify is not None:
            raise ValueError("pass verify= or client=, not both: verify= is for the client it makes")
        return {}
    if isinstance(verify, str | os.PathLike):
        path = os.fspath(verify)
        try:
            directory = os.path.isdir(path)
            verify = ssl.create_default_context(
                cafile=None if directory else path, capath=path if directory else None
            )
        except (OSError, ssl.SSLError) as error:  # ssl's own message names no file
            reason = getattr(error, "reason", None) or error.strerror or error
            raise ValueError(f"verify: cannot load CA certificates from {path!r}: {reason}") from None
    return {"http2": HTTP2, "verify": True if verify is None else verify}


def _untrusted(exc: BaseException | None) -> bool:
    """Whether `exc` comes of a server certificate this client does not trust (no `verify=` CA for it):
    retrying cannot change that, so it is raised, as httpx raised it."""
    while exc is not None:
        if isinstance(exc, ssl.SSLCertVerificationError):
            return True
        exc = exc.__cause__ or exc.__context__
    return False


@dataclass(frozen=True, slots=True)
class StreamEvent:
    """One event from the stream: a metric event, or a `reset` of the resume position.

    `id` is the event's id (for `reset`, the position the server now holds for this client); `type` is
    metric_created, metric_reading_created, metric_deleted or reset; `data` is the decoded JSON, or the
    string as sent when it is not JSON.
    """

    id: str
    type: str
    data: Any


class Dispatched(Protocol):
    """What `process` reads from a dispatched event: an `httpx_sse.ServerSentEvent`."""

    @property
    def event(self) -> str: ...
    @property
    def data(self) -> str: ...
    @property
    def id(self) -> str: ...
    @property
    def retry(self) -> int | None: ...


def _decode(data: str) -> Any:
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError:
        return data


_POSITION_FIXED: tuple[None] = (None,)


class BaseSubscriber:
    """State and decisions shared by `Subscriber` and `AsyncSubscriber`; performs no I/O."""

    def __init__(
        self,
        url: str,
        *,
        start: str = NOW,
        last_event_id: str | None = None,
        types: Iterable[str] | None = None,
        metric_id: str | None = None,
        idle_timeout: float = 45.0,
        max_backoff: float = 30.0,
        token: str | None = None,
        rand: Callable[[], float] = random.random,
    ) -> None:
        if not isinstance(start, str) or not start:
            raise ValueError('start must be "now", "earliest" or an event id')
        if idle_timeout <= 0:
            raise ValueError("idle_timeout must be positive")
        if max_backoff <= 0:
            raise ValueError("max_backoff must be positive")
        base = httpx.URL(url)
        path = base.path.rstrip("/")
        if not path.endswith(STREAM_PATH):
            path += STREAM_PATH
        self.url = base.copy_with(path=path)
        if isinstance(types, str):  # a lone name would otherwise be split into characters
            types = [types]
        self.types = tuple(types or ())
        self.metric_id = metric_id
        self._token = token or None  # private: kept out of reprs and tracebacks' locals
        self.idle_timeout = idle_timeout
        self.max_backoff = max_backoff
        self.retry_ms = DEFAULT_RETRY_MS
        # Consecutive connections that did not deliver `connected`.
        self.failures = 0
        # Whether the server said `disconnected`, and `connected`, on this connection.
        self.stream_ended = False
        self.connected = False
        # An id given either way is where to resume; "now" and "earliest" say where to begin without one.
        self._last_event_id = last_event_id or (None if start in (NOW, EARLIEST) else start)
        self._earliest = start == EARLIEST
        self._rand = rand

    @property
    def last_event_id(self) -> str | None:
        """Id of the newest event seen (or of the last `reset`); sent when reconnecting."""
        return self._last_event_id

    # -- building a request

    def params(self) -> dict[str, str]:
        params: dict[str, str] = {}
        if self.types:
            params["types"] = ",".join(self.types)
        if self.metric_id is not None:
            params["metric_id"] = self.metric_id
        # Only until `connected` came: from then on the position says it all.
        if self._earliest and not self._last_event_id:
            params["start"] = EARLIEST
        return params

    def headers(self) -> dict[str, str]:
        # connect_sse adds Accept and Cache-Control.
        headers: dict[str, str] = {}
        if self._last_event_id:
            headers["Last-Event-ID"] = self._last_event_id
        if self._token:
            headers["Authorization"] = f"Bearer {self._token}"
        return headers

    def timeout(self) -> httpx.Timeout:
        # The read timeout is the heartbeat watchdog: the server pings every ~15 s, so silence
        # for idle_timeout means a dead connection. Never httpx's default 5 s.
        return httpx.Timeout(self.idle_timeout, connect=min(CONNECT_TIMEOUT, self.idle_timeout))

    def new_connection(self) -> None:
        """Forget per-connection state before connecting again."""
        self.stream_ended = False
        self.connected = False

    # -- reading the answer

    def classify(self, response: httpx.Response) -> Literal["stream", "retry", "fatal"]:
        """Whether to read `response` as the stream, retry later, or give up."""
        status = response.status_code
        if status == 200:
            content_type = response.headers.get("content-type", "").partition(";")[0]
            return "stream" if content_type.strip().lower() == "text/event-stream" else "fatal"
        if status >= 500 or status in (408, 429):
            return "retry"
        return "fatal"

    def rejection(self, response: httpx.Response) -> SubscriptionError:
        """The error for a "fatal" answer; its body must have been read."""
        if response.status_code == 200:
            content_type = response.headers.get("content-type", "")
            message = f"expected text/event-stream, got {content_type!r}"
        elif response.status_code == 204:
            message = "the server asks not to reconnect"
        else:
            message = response.text[:200]
            with contextlib.suppress(orjson.JSONDecodeError):
                body = orjson.loads(response.content)
                if isinstance(body, dict) and isinstance(body.get("error"), str):
                    message = body["error"]
        return SubscriptionError(
            f"{self.url} answered HTTP {response.status_code}: {message}", response.status_code
        )

    def is_transient(self, exc: Exception) -> bool:
        """True if reconnecting after `exc` (a network failure or timeout) may succeed."""
        if isinstance(exc, httpx.UnsupportedProtocol) or _untrusted(exc):
            return False
        return isinstance(exc, (httpx.TransportError, httpx.DecodingError))

    def process(self, sse: Dispatched) -> StreamEvent | None:
        """Update state from one dispatched event; return the event to yield, if any."""
        if sse.retry is not None and sse.retry >= 0:
            self.retry_ms = sse.retry
        if not sse.data:
            # httpx-sse dispatches blocks with no data, which WHATWG does not; their id still counts.
            if sse.id:
                self._last_event_id = sse.id
            return None
        # Unnamed messages are control messages only.
        if sse.event == "message":
            if sse.data == "connected":
                self.failures = 0
                self.connected = True
                if sse.id:  # where the server placed us: resuming from here loses nothing
                    self._last_event_id = sse.id
            elif sse.data == "disconnected":
                self.stream_ended = True
            return None
        if sse.event == "reset":
            self._last_event_id = sse.id or None
            return StreamEvent(sse.id, sse.event, _decode(sse.data))
        if sse.id:
            if sse.id == self._last_event_id:
                return None  # already delivered; the server should never resend it
            self._last_event_id = sse.id
        return StreamEvent(sse.id, sse.event, _decode(sse.data))

    def dispatch(self, sse: Dispatched) -> tuple[StreamEvent | None, ...]:
        """What a stream loop yields for one dispatched event: the event, or None when the server says
        `connected` (the position is fixed, so `connect()` may return), or nothing."""
        event = self.process(sse)
        if event is not None:
            return (event,)
        return _POSITION_FIXED if self.connected and sse.data == "connected" else ()

    def next_delay(self) -> float:
        """Seconds to wait before reconnecting; each call counts one more failure."""
        exponent = min(self.failures, 32)  # the cap is reached long before; avoids overflow
        self.failures += 1
        base = max(self.retry_ms, MIN_RETRY_MS) / 1000
        ceiling = min(self.max_backoff, base * 2.0**exponent)
        return ceiling * (0.5 + 0.5 * self._rand())
