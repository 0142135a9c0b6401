"""Subscribe to a metricstream server's event stream: `Subscriber` and `AsyncSubscriber`.

Both read `GET {base_url}/events/watch` (Server-Sent Events) through httpx and yield each metric event
once, in order, reconnecting by themselves with `Last-Event-ID`. The body's bytes are decoded by
`sse.SSEDecoder`, which follows the WHATWG rules where httpx-sse 0.4.3's decoder does not (see `sse`); the
rest of httpx-sse (`connect_sse` headers, its content-type check) is what `headers()` and `classify()` do
already, so it is not used here.
As in httpx, `BaseSubscriber` holds every decision that needs no I/O (request building, event
processing, response classification, backoff); the two subclasses only write the loops.

Deliberate deviations from the WHATWG EventSource rules:

* The last event id is taken from metric events, `reset`, and the `connected` message (whose id is
  the position the server placed this connection at); never from `disconnected`.
* An HTTP 5xx, 408 or 429 answer is retried (the server answers 503 while shutting down); any
  other non-200 answer, or a 200 that is not `text/event-stream`, raises `ValueError`.
* A `retry:` below 100 ms is raised to 100 ms so a failing server cannot cause a busy loop. A new
  `retry:` is taken with the next event dispatched; the server sends one just before `connected`.
* Event data that is not JSON is yielded as the raw string instead of failing the stream.
* `AsyncSubscriber` needs asyncio (not trio).

A server with a `subscribe_token` wants it: pass `token=`; it is sent as `Authorization: Bearer <token>`
on every connection (never in the URL, so it stays out of access logs), and a wrong one raises `ValueError`
(HTTP 401) instead of being retried.

`Subscriber.on_event(callback)` consumes the stream in a daemon thread, so a notebook cell does not block.
It has no async twin: on a loop, `asyncio.create_task` over an ``async for`` already does that.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import socket
import threading
from collections.abc import AsyncIterator, Callable, Generator, Iterable, Iterator
from dataclasses import dataclass
from typing import Any, Literal, Protocol, Self

import httpx
import orjson

from .sse import aiter_messages, iter_messages

__all__ = ["AsyncSubscriber", "BaseSubscriber", "Dispatched", "StreamEvent", "Subscriber"]

log = logging.getLogger("metricstream.client")

WATCH_PATH = "/events/watch"
DEFAULT_RETRY_MS = 1000  # until the server sends `retry:`
MIN_RETRY_MS = 100
CONNECT_TIMEOUT = 10.0
CONSUMER_JOIN_TIMEOUT = 10.0  # seconds close() waits for an on_event callback that is still running


@dataclass(frozen=True, slots=True)
class StreamEvent:
    """One event from the stream: a metric event, or a `reset` of the resume position."""

    id: str  # the event id; for `reset`, the position the server now holds for this client
    type: str  # "metric_created" | "metric_reading_created" | "reset"
    data: Any  # decoded JSON


class Dispatched(Protocol):
    """What `process` reads from a dispatched event: an `sse.Message`."""

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


class BaseSubscriber:
    """State and decisions shared by `Subscriber` and `AsyncSubscriber`; performs no I/O."""

    def __init__(
        self,
        url: str,
        *,
        last_event_id: str | None = None,
        types: Iterable[str] | None = None,
        metric_id: str | None = None,
        idle_timeout: float = 45.0,
        max_backoff: float = 30.0,
        token: str | None = None,
        rand: Callable[[], float] = random.random,
    ) -> None:
        if idle_timeout <= 0:
            raise ValueError("idle_timeout must be positive")
        if max_backoff <= 0:
            raise ValueError("max_backoff must be positive")
        base = httpx.URL(url)
        path = base.path.rstrip("/")
        if not path.endswith(WATCH_PATH):
            path += WATCH_PATH
        self.url = base.copy_with(path=path)
        if isinstance(types, str):  # a lone name would otherwise be split into characters
            types = [types]
        self.types = tuple(types or ())
        self.metric_id = metric_id
        self._token = token or None  # private: kept out of reprs and tracebacks' locals
        self.idle_timeout = idle_timeout
        self.max_backoff = max_backoff
        self.retry_ms = DEFAULT_RETRY_MS
        self.failures = 0  # consecutive connections that did not deliver `connected`
        self.stream_ended = False  # the server said `disconnected` on this connection
        self._last_event_id = last_event_id or None
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
        return params

    def headers(self) -> dict[str, str]:
        headers = {"Accept": "text/event-stream", "Cache-Control": "no-store"}
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

    def rejection(self, response: httpx.Response) -> ValueError:
        """The error for a "fatal" answer; its body must have been read."""
        if response.status_code == 200:
            content_type = response.headers.get("content-type", "")
            message = f"expected text/event-stream, got {content_type!r}"
        else:
            message = response.text[:200]
            with contextlib.suppress(orjson.JSONDecodeError):
                body = orjson.loads(response.content)
                if isinstance(body, dict) and isinstance(body.get("error"), str):
                    message = body["error"]
        return ValueError(f"{self.url} answered HTTP {response.status_code}: {message}")

    def is_transient(self, exc: Exception) -> bool:
        """True if reconnecting after `exc` (a network failure or timeout) may succeed."""
        if isinstance(exc, httpx.UnsupportedProtocol):
            return False
        return isinstance(exc, (httpx.TransportError, httpx.DecodingError))

    def process(self, sse: Dispatched) -> StreamEvent | None:
        """Update state from one dispatched event; return the event to yield, if any."""
        if sse.retry is not None and sse.retry >= 0:
            self.retry_ms = sse.retry
        if not sse.data:
            # Every event we yield carries JSON. (httpx-sse 0.4.3 even dispatches blocks with no data.)
            return None
        if sse.event == "message":  # unnamed messages are control messages only
            if sse.data == "connected":
                self.failures = 0
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

    def next_delay(self) -> float:
        """Seconds to wait before reconnecting; each call counts one more failure."""
        exponent = min(self.failures, 32)  # the cap is reached long before; avoids overflow
        self.failures += 1
        base = max(self.retry_ms, MIN_RETRY_MS) / 1000
        ceiling = min(self.max_backoff, base * 2.0**exponent)
        return ceiling * (0.5 + 0.5 * self._rand())  # full jitter in [ceiling/2, ceiling]


def _shutdown(stream: Any) -> bool:
    """Shut an httpcore network stream's socket down; False if it has none we can reach."""
    sock = stream.get_extra_info("socket") if stream is not None else None
    if not isinstance(sock, socket.socket):
        return False
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)
    return True


class Subscriber(BaseSubscriber):
    """Iterate over a server's events, reconnecting and resuming by itself.

    ``url`` is the server's base URL (or the full ``.../events/watch`` URL). Iteration ends only
    through `close()` (from any thread) or an exception: `ValueError` when the server rejects
    the subscription (bad filter, wrong URL). One consumer at a time: an iteration, or `on_event`.
    """

    def __init__(
        self,
        url: str,
        *,
        last_event_id: str | None = None,
        types: Iterable[str] | None = None,
        metric_id: str | None = None,
        idle_timeout: float = 45.0,
        max_backoff: float = 30.0,
        token: str | None = None,
        client: httpx.Client | None = None,
    ) -> None:
        super().__init__(
            url,
            last_event_id=last_event_id,
            types=types,
            metric_id=metric_id,
            idle_timeout=idle_timeout,
            max_backoff=max_backoff,
            token=token,
        )
        self._owns_client = client is None
        self._client = httpx.Client() if client is None else client
        self._closed = False
        self._wake = threading.Event()
        self._response: httpx.Response | None = None
        self._network_stream: Any = None  # the connection in use, known before its response is
        self._claim = threading.Lock()
        self._iterating = False
        self._consumer: threading.Thread | None = None
        self.error: Exception | None = None
        """What stopped the `on_event` consumer: the callback's exception, or the server's refusal."""

    def __iter__(self) -> Iterator[StreamEvent]:
        with self._claim:
            self._check_free()
            return self._iterate()

    def _check_free(self) -> None:
        if self._closed:
            raise RuntimeError("Subscriber is closed")
        if self._consumer is not None:
            raise RuntimeError(
                "this Subscriber is consumed by its on_event() callback; close() it, or use another one"
            )
        if self._iterating:
            raise RuntimeError("this Subscriber is already being iterated; one consumer at a time")

    def _iterate(self) -> Iterator[StreamEvent]:
        with self._claim:
            self._check_free()
            self._iterating = True
        try:
            yield from self._events()
        finally:
            self._iterating = False

    def on_event(self, callback: Callable[[StreamEvent], object]) -> Self:
        """Call ``callback(event)`` for each event from a background daemon thread; returns at once.

        For a notebook cell that must not block: ``sub = hub.subscribe().on_event(print)``, then
        ``sub.close()`` from another cell (or from the callback) stops it and joins the thread. An
        exception raised by the callback, or the server refusing the subscription, stops the consumer
        and closes the subscriber; it is logged on the ``metricstream.client`` logger and kept on
        `error`. Calling `on_event` again, or iterating, raises `RuntimeError`.
        """
        with self._claim:
            self._check_free()
            self._consumer = threading.Thread(
                target=self._consume,
                args=(callback,),
                name=f"metricstream-subscriber-{self.url}",
                daemon=True,  # never keeps the interpreter (or a Jupyter kernel) from exiting
            )
        self._consumer.start()
        return self

    def _consume(self, callback: Callable[[StreamEvent], object]) -> None:
        events = self._events()
        try:
            for event in events:
                try:
                    callback(event)
                except Exception as exc:
                    self._stop_consuming(exc, f"on_event callback {callback!r} raised on event {event.id}")
                    return
        except Exception as exc:  # the server refused the subscription
            self._stop_consuming(exc, "the subscription failed")
        finally:
            events.close()

    def _stop_consuming(self, exc: Exception, what: str) -> None:
        self.error = exc
        log.error("%s; the subscriber to %s stopped", what, self.url, exc_info=exc)
        self.close()

    def _events(self) -> Generator[StreamEvent, None, None]:
        while not self._closed:
            self.new_connection()
            try:
                with self._client.stream(
                    "GET",
                    self.url,
                    params=self.params(),
                    headers=self.headers(),
                    timeout=self.timeout(),
                    extensions={"trace": self._trace},
                ) as response:
                    # close() reads _response after setting _closed: one of us sees the other.
                    self._response = response
                    if self._closed:
                        return
                    answer = self.classify(response)
                    if answer == "fatal":
                        response.read()
                        raise self.rejection(response)
                    if answer == "stream":
                        for sse in iter_messages(response.iter_bytes()):
                            event = self.process(sse)
                            if event is not None:
                                yield event
                            if self.stream_ended or self._closed:
                                break
            except Exception as exc:
                if self._closed:
                    return  # the error is close() tearing the stream down
                if not self.is_transient(exc):
                    raise
            finally:
                self._response = None
            if self._wake.wait(self.next_delay()):
                return

    def _trace(self, name: str, info: dict[str, Any]) -> None:
        # httpcore reports each new connection here, so close() can reach a socket that is still
        # waiting for the response headers (a stalled server or proxy), before `_response` exists.
        if name == "connection.connect_tcp.complete":
            self._network_stream = info.get("return_value")
            if self._closed:  # close() may have looked before we stored it
                _shutdown(self._network_stream)

    def close(self) -> None:
        """Stop iterating and release the connection; safe to call from another thread."""
        self._closed = True
        self._wake.set()
        response = self._response
        # Closing a socket does not wake a thread blocked reading it; shutting it down does.
        if response is not None:
            if not _shutdown(response.extensions.get("network_stream")):
                response.close()
        elif self._owns_client:
            # Still connecting or waiting for headers. In a client of our own, the last connection
            # made is the one in use (an idle one the pool hands back is one we made before); in a
            # caller's client it may be serving someone else by now, so it is left alone.
            _shutdown(self._network_stream)
        if self._owns_client:
            self._client.close()
        consumer = self._consumer
        if consumer is not None and consumer is not threading.current_thread():
            consumer.join(CONSUMER_JOIN_TIMEOUT)
            if consumer.is_alive():
                log.warning("an on_event callback on %s is still running; its thread ends after it", self.url)

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


class AsyncSubscriber(BaseSubscriber):
    """The asyncio twin of `Subscriber`: ``async for``, `aclose()`, ``async with``."""

    def __init__(
        self,
        url: str,
        *,
        last_event_id: str | None = None,
        types: Iterable[str] | None = None,
        metric_id: str | None = None,
        idle_timeout: float = 45.0,
        max_backoff: float = 30.0,
        token: str | None = None,
        client: httpx.AsyncClient | None = None,
    ) -> None:
        super().__init__(
            url,
            last_event_id=last_event_id,
            types=types,
            metric_id=metric_id,
            idle_timeout=idle_timeout,
            max_backoff=max_backoff,
            token=token,
        )
        self._owns_client = client is None
        self._client = httpx.AsyncClient() if client is None else client
        self._closed = False
        self._wake = asyncio.Event()
        self._response: httpx.Response | None = None

    def __aiter__(self) -> AsyncIterator[StreamEvent]:
        if self._closed:
            raise RuntimeError("AsyncSubscriber is closed")
        return self._events()

    async def _events(self) -> AsyncIterator[StreamEvent]:
        while not self._closed:
            self.new_connection()
            try:
                async with self._client.stream(
                    "GET",
                    self.url,
                    params=self.params(),
                    headers=self.headers(),
                    timeout=self.timeout(),
                ) as response:
                    self._response = response
                    if self._closed:
                        return
                    answer = self.classify(response)
                    if answer == "fatal":
                        await response.aread()
                        raise self.rejection(response)
                    if answer == "stream":
                        async with contextlib.aclosing(aiter_messages(response.aiter_bytes())) as messages:
                            async for sse in messages:
                                event = self.process(sse)
                                if event is not None:
                                    yield event
                                if self.stream_ended or self._closed:
                                    break
            except Exception as exc:
                if self._closed:
                    return  # the error is aclose() tearing the stream down
                if not self.is_transient(exc):
                    raise
            finally:
                self._response = None
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self.next_delay())

    async def aclose(self) -> None:
        """Stop iterating and release the connection; call it from another task or the loop."""
        self._closed = True
        self._wake.set()
        response = self._response
        if response is not None:
            await response.aclose()  # wakes a task blocked reading it
        if self._owns_client:
            await self._client.aclose()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()
