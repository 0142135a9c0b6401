"""Subscribe to a metricstream server's event stream: `Subscriber` and `AsyncSubscriber`.

Both yield each event of `GET /events/watch` once, in order, reconnecting with `Last-Event-ID` by
themselves. httpx-sse opens and decodes the stream; this module is the layer above it (where to start,
reconnecting, the idle watchdog, control messages, filters, tokens). As in httpx, `BaseSubscriber`
(`core.py`) holds every decision that needs no I/O and the two classes here only write the loops.
docs/python-api.md tells how to use them.

Deliberate deviations from an EventSource: the last event id is taken from metric events, `reset` and
`connected` (the position the server placed this connection at), never from `disconnected`; an HTTP 5xx,
408 or 429 answer is retried, any other non-200 answer (400, 401, 404, 204 "stop"), or a 200 that is not
`text/event-stream`, raises `SubscriptionError`; a `retry:` below 100 ms counts as 100 ms, so a failing
server cannot cause a busy loop; event data that is not JSON is yielded as the string it is.

Where httpx-sse 0.4.3 departs from WHATWG, and why it cannot matter here: it dispatches blocks with no
data (their id and retry are kept, not yielded, as WHATWG keeps them); it reads `retry:` with `int()`
(`+5`, `5_0`) and applies it to its own block only; it keeps a leading byte-order mark, decodes with the
charset the header names, and holds back a block that ends in a lone CR. A metricstream server sends
`retry: <digits>` once, in a block of its own, first, and UTF-8 without a BOM, every line ending in LF.
"""

from __future__ import annotations

import contextlib
import logging
import socket
import threading
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable, Generator, Iterable, Iterator
from typing import Any, Final, Self, TypeVar

import anyio
import httpx
from httpx_sse import aconnect_sse, connect_sse

from .core import EARLIEST, NOW, BaseSubscriber, Dispatched, StreamEvent, Verify, client_options

__all__ = ["EARLIEST", "NOW", "AsyncSubscriber", "BaseSubscriber", "Dispatched", "StreamEvent", "Subscriber"]

T = TypeVar("T")

log = logging.getLogger("metricstream.client")

# Seconds close() waits for an on_event callback that is still running.
CONSUMER_JOIN_TIMEOUT = 10.0


def _shutdown(stream: Any) -> bool:
    """Shut an httpcore network stream's socket down; False if it has none we can reach."""
    sock = stream.get_extra_info("socket") if stream is not None else None
    if not isinstance(sock, socket.socket):
        return False
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)
    return True


# Yielded by the streams' generators when the server says `connected` (`BaseSubscriber.dispatch`), so
# that `connect()` can wait for it; iteration skips it.
_CONNECTED: Final = None


class Subscriber(BaseSubscriber):
    """Iterate over a server's events, reconnecting and resuming by itself.

    ``url`` is the server's base URL (or the full ``.../events/watch`` URL); ``start`` is ``"now"``,
    ``"earliest"`` or an event id (docs/python-api.md). ``with Subscriber(url) as events:`` connects before
    its body runs, so nothing published from then on is missed. Iteration ends only through `close()`
    (from any thread) or an exception: `SubscriptionError` when the server refuses the subscription (bad
    filter, wrong token, wrong URL). One consumer at a time: an iteration, or `on_event`.
    """

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
        verify: Verify | None = None,
        client: httpx.Client | None = None,
    ) -> None:
        super().__init__(
            url,
            start=start,
            last_event_id=last_event_id,
            types=types,
            metric_id=metric_id,
            idle_timeout=idle_timeout,
            max_backoff=max_backoff,
            token=token,
        )
        options = client_options(verify, client)
        self._owns_client = client is None
        self._client = httpx.Client(**options) if client is None else client
        self._closed = False
        self._wake = threading.Event()
        self._response: httpx.Response | None = None
        # The connection in use, known before its response is.
        self._network_stream: Any = None
        self._claim = threading.Lock()
        # Opened by connect(), taken over by the iteration.
        self._stream: Generator[StreamEvent | None, None, None] | None = None
        self._iterating = False
        self._consumer: threading.Thread | None = None
        self.error: Exception | None = None
        """What stopped the `on_event` consumer: the callback's exception, or the server's refusal."""

    def connect(self) -> Self:
        """Open the stream and wait for the server's `connected`: from here on, nothing published is
        missed, however late iteration starts. Entering ``with`` calls it; iterating does it itself.
        A subscriber already consumed (by `on_event`, or an iteration) is connected already."""
        with self._claim:
            if self._consumer is not None or self._iterating:
                return self
            self._check_free()
            if self._stream is None:
                self._stream = self._events()
        for item in self._stream:
            if item is _CONNECTED:
                break
        return self

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

    def _take_stream(self) -> Generator[StreamEvent | None, None, None]:
        stream, self._stream = self._stream, None
        return stream if stream is not None else self._events()

    def _iterate(self) -> Iterator[StreamEvent]:
        with self._claim:
            self._check_free()
            self._iterating = True
            stream = self._take_stream()
        try:
            for item in stream:
                if item is not _CONNECTED:
                    yield item
        finally:
            self._iterating = False

    def on_event(self, callback: Callable[[StreamEvent], object]) -> Self:
        """Call ``callback(event)`` for each event from a background daemon thread; returns once the
        stream is connected, so nothing published after this call is missed.

        For a notebook cell that must not block: ``sub = hub.subscribe().on_event(print)``, then
        ``sub.close()`` from another cell (or from the callback) stops it and joins the thread. An
        exception raised by the callback, or the server refusing the subscription, stops the consumer
        and closes the subscriber; it is logged on the ``metricstream.client`` logger and kept on
        `error`. Calling `on_event` again, or iterating, raises `RuntimeError`.
        """
        connected = threading.Event()
        with self._claim:
            self._check_free()
            if self._stream is not None:  # connect() opened it: connected already
                connected.set()
            self._consumer = threading.Thread(
                target=self._consume,
                args=(callback, self._take_stream(), connected),
                name=f"metricstream-subscriber-{self.url}",
                daemon=True,  # never keeps the interpreter (or a Jupyter kernel) from exiting
            )
        self._consumer.start()
        connected.wait()
        return self

    def _consume(
        self,
        callback: Callable[[StreamEvent], object],
        stream: Generator[StreamEvent | None, None, None],
        connected: threading.Event,
    ) -> None:
        try:
            for event in stream:
                if event is _CONNECTED:
                    connected.set()
                    continue
                try:
                    callback(event)
                except Exception as exc:
                    self._stop_consuming(exc, f"on_event callback {callback!r} raised on event {event.id}")
                    return
        except Exception as exc:  # the server refused the subscription
            self._stop_consuming(exc, "the subscription failed")
        finally:
            connected.set()
            stream.close()

    def _stop_consuming(self, exc: Exception, what: str) -> None:
        self.error = exc
        log.error("%s; the subscriber to %s stopped", what, self.url, exc_info=exc)
        self.close()

    def _events(self) -> Generator[StreamEvent | None, None, None]:
        while not self._closed:
            self.new_connection()
            try:
                with connect_sse(
                    self._client,
                    "GET",
                    str(self.url),
                    params=self.params(),
                    headers=self.headers(),
                    timeout=self.timeout(),
                    extensions={"trace": self._trace},
                ) as source:
                    response = source.response
                    # close() reads _response after setting _closed: one of us sees the other.
                    self._response = response
                    if self._closed:
                        return
                    answer = self.classify(response)
                    if answer == "fatal":
                        response.read()
                        raise self.rejection(response)
                    if answer == "stream":
                        for sse in source.iter_sse():
                            yield from self.dispatch(sse)
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
        # Over TLS the socket in use is the one start_tls returns (the TCP one is detached by then).
        if name in ("connection.connect_tcp.complete", "connection.start_tls.complete"):
            self._network_stream = info.get("return_value")
            if self._closed:  # close() may have looked before we stored it
                _shutdown(self._network_stream)

    def close(self) -> None:
        """Stop iterating and release the connection; safe to call from another thread."""
        self._closed = True
        self._wake.set()
        response = self._response
        # Closing a socket does not wake a thread blocked reading it; shutting it down does. But an
        # HTTP/2 connection of a caller's client carries others' streams too: only this one is reset.
        if response is not None:
            shared = response.http_version == "HTTP/2" and not self._owns_client
            if shared or not _shutdown(response.extensions.get("network_stream")):
                response.close()
        elif self._owns_client:
            # Still connecting or waiting for headers. In a client of our own, the last connection
            # made is the one in use (an idle one the pool hands back is one we made before); in a
            # caller's client it may be serving someone else by now, so it is left alone.
            _shutdown(self._network_stream)
        stream, self._stream = self._stream, None
        if stream is not None and not self._iterating:
            with contextlib.suppress(Exception):
                stream.close()
        if self._owns_client:
            self._client.close()
        consumer = self._consumer
        if consumer is not None and consumer is not threading.current_thread():
            consumer.join(CONSUMER_JOIN_TIMEOUT)
            if consumer.is_alive():
                log.warning("an on_event callback on %s is still running; its thread ends after it", self.url)

    def __enter__(self) -> Self:
        try:
            return self.connect()
        except BaseException:  # no __exit__ follows a failed __enter__
            self.close()
            raise

    def __exit__(self, *exc_info: object) -> None:
        self.close()


async def _finish(response: httpx.Response, messages: AsyncGenerator[Any, None]) -> None:
    """End an event stream so that every async generator under `aiter_sse()` finishes: closing the
    response makes their next read end. (Closing `messages` alone leaves httpx's own generators beneath
    it suspended for the garbage collector, which trio warns of.) Over HTTP/2 that read is cancelled:
    on a connection other streams share, httpcore would wait for this closed stream's data forever."""
    await response.aclose()
    with contextlib.suppress(Exception), anyio.CancelScope() as scope:
        if response.http_version == "HTTP/2":
            scope.cancel()
        async for _ in messages:
            pass


class AsyncSubscriber(BaseSubscriber):
    """The async twin of `Subscriber`, on anyio (asyncio or trio): ``async with`` connects, ``async for``
    iterates, `aclose()` stops."""

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
        verify: Verify | None = None,
        client: httpx.AsyncClient | None = None,
    ) -> None:
        super().__init__(
            url,
            start=start,
            last_event_id=last_event_id,
            types=types,
            metric_id=metric_id,
            idle_timeout=idle_timeout,
            max_backoff=max_backoff,
            token=token,
        )
        options = client_options(verify, client)
        self._owns_client = client is None
        self._client = httpx.AsyncClient(**options) if client is None else client
        self._closed = False
        # Made on first use: an anyio Event needs a running loop.
        self._wake: anyio.Event | None = None
        # Around the read under way, so aclose() can end it.
        self._scope: anyio.CancelScope | None = None
        # Opened by connect(), taken over by the iteration.
        self._stream: AsyncGenerator[StreamEvent | None, None] | None = None
        # The `async for` under way, and the response and messages being read.
        self._iteration: AsyncGenerator[StreamEvent, None] | None = None
        self._open: tuple[httpx.Response, AsyncGenerator[Any, None]] | None = None

    async def connect(self) -> Self:
        """Open the stream and wait for the server's `connected` (see `Subscriber.connect`)."""
        if self._closed:
            raise RuntimeError("AsyncSubscriber is closed")
        if self._stream is None:
            self._stream = self._events()
        async for item in self._stream:
            if item is _CONNECTED:
                break
        return self

    def __aiter__(self) -> AsyncIterator[StreamEvent]:
        if self._closed:
            raise RuntimeError("AsyncSubscriber is closed")
        stream, self._stream = self._stream, None
        self._iteration = self._iterate(stream if stream is not None else self._events())
        return self._iteration

    async def _iterate(
        self, stream: AsyncGenerator[StreamEvent | None, None]
    ) -> AsyncGenerator[StreamEvent, None]:
        async with contextlib.aclosing(stream):
            async for item in stream:
                if item is not _CONNECTED:
                    yield item

    async def _unless_closed(self, step: Awaitable[T]) -> tuple[bool, T | None]:
        """Await `step` in a cancel scope that `aclose()` cancels; (False, None) if it did. No scope is
        held across a yield: a generator must not leave one open in its consumer's task."""
        with anyio.CancelScope() as scope:
            self._scope = scope
            if self._closed:
                scope.cancel()
            try:
                return True, await step
            finally:
                self._scope = None
        return False, None

    async def _events(self) -> AsyncGenerator[StreamEvent | None, None]:
        while not self._closed:
            self.new_connection()
            try:
                async with contextlib.AsyncExitStack() as stack:
                    opened, source = await self._unless_closed(
                        stack.enter_async_context(
                            aconnect_sse(
                                self._client,
                                "GET",
                                str(self.url),
                                params=self.params(),
                                headers=self.headers(),
                                timeout=self.timeout(),
                            )
                        )
                    )
                    if not opened or source is None:
                        return
                    response = source.response
                    answer = self.classify(response)
                    if answer == "fatal":
                        await response.aread()
                        raise self.rejection(response)
                    if answer == "stream":
                        self._open = (response, source.aiter_sse())
                        messages = self._open[1]
                        stack.push_async_callback(self._end_stream)
                        while True:
                            read, sse = await self._unless_closed(anext(messages, None))
                            if not read or sse is None:
                                break
                            for item in self.dispatch(sse):
                                yield item
                            if self.stream_ended or self._closed:
                                break
            except Exception as exc:
                if self._closed:
                    return  # the error is aclose() tearing the stream down
                if not self.is_transient(exc):
                    raise
            if self._closed:
                return
            if self._wake is None:
                self._wake = anyio.Event()
            with anyio.move_on_after(self.next_delay()):
                await self._wake.wait()

    async def aclose(self) -> None:
        """Stop iterating and release the connection; call it from another task or the loop."""
        self._closed = True
        if self._wake is not None:
            self._wake.set()
        if self._scope is not None:
            self._scope.cancel()  # ends a read or connect under way in the iterating task
        # Close what a `break` left suspended here, rather than leave it to the garbage collector
        # (trio warns of every async generator collected unfinished, httpx's own ones included). The
        # stream is ended first, here rather than in their `aclose()`: a cancellation thrown into an
        # async generator's aclose leaves it marked running on Python 3.11.
        generators = [generator for generator in (self._stream, self._iteration) if generator is not None]
        if not any(getattr(generator, "ag_running", True) for generator in generators):
            await self._end_stream()
        for generator in (self._stream, self._iteration):
            if generator is not None and not getattr(generator, "ag_running", True):
                await generator.aclose()
        self._stream = self._iteration = None
        if self._owns_client:
            await self._client.aclose()

    async def _end_stream(self) -> None:
        opened, self._open = self._open, None
        if opened is not None:
            await _finish(*opened)

    async def __aenter__(self) -> Self:
        try:
            return await self.connect()
        except BaseException:  # no __aexit__ follows a failed __aenter__
            await self.aclose()
            raise

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()
