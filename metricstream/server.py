"""Running the app on hypercorn: `Hub` in a background thread, `run` in the foreground.

The only module that imports hypercorn. A Hub owns a thread with its own event loop (`asyncio.Runner`),
so it works where the main thread already runs a loop, as in a Jupyter kernel; other threads reach the
loop only through `run_coroutine_threadsafe`. We bind the socket ourselves (so `port=0` reports the port
it got) and hand it to hypercorn as `fd://`; shutdown ends every stream first and only then fires
hypercorn's trigger, so it takes milliseconds instead of hypercorn's graceful timeout.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import enum
import gc
import ipaddress
import logging
import signal
import socket
import sys
import threading
import warnings
import weakref
from collections.abc import Callable
from html import escape
from typing import TYPE_CHECKING, Any, cast

from hypercorn.asyncio import serve
from hypercorn.config import Config

from .application import MetricStreamApp
from .blocking import MetricService
from .cells import current_cell_run
from .clock import Clock
from .errors import HubError, ValidationError
from .fdlimit import fit_settings
from .settings import Settings
from .storage import Storage
from .tls import ALPN, check_certificate, pinned_context

if TYPE_CHECKING:
    from types import TracebackType

    from .client import Subscriber
    from .display import DashboardView
    from .models import Metric
    from .service import AsyncMetricService

__all__ = ["Hub", "run"]

log = logging.getLogger("metricstream.server")

_running_hubs: weakref.WeakSet[Hub] = weakref.WeakSet()


SEND_BUFFER = 128 * 1024  # per connection; the kernel doubles it for its own bookkeeping


def bind_socket(host: str, port: int, write_timeout: float = 10.0) -> socket.socket:
    """A listening TCP socket; a busy port raises `HubError` naming it.

    Accepted connections inherit two options from it:
    - a send buffer of `SEND_BUFFER` bytes (not the kernel's autotuned megabytes), so a client that stops
      reading backs up into the app soon, where `client_buffer` and `write_timeout` drop it and say why;
    - TCP_USER_TIMEOUT of 3 x `write_timeout`: the kernel aborts a connection whose data stays
      unacknowledged that long: a dead peer, or one that stopped reading altogether (its window stays
      shut). Such a peer could not read `disconnected` anyway; it is counted as gone, and frees its
      resources even if the app never saw it stall (a trickle of events fits in the buffers).
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, SEND_BUFFER)
        if hasattr(socket, "TCP_USER_TIMEOUT"):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_USER_TIMEOUT, int(write_timeout * 3000))
        sock.bind((host, port))
        sock.listen(2048)
    except OSError as error:
        sock.close()
        raise HubError(f"cannot listen on {host}:{port}: {error.strerror or error}") from None
    sock.setblocking(False)
    return sock


def is_loopback(sock: socket.socket) -> bool:
    """Whether `sock` is bound to a loopback address (127.0.0.0/8, ::1), reachable from this machine only."""
    try:
        return ipaddress.ip_address(str(sock.getsockname()[0]).partition("%")[0]).is_loopback
    except ValueError:
        return False


def exposure_warning(sock: socket.socket) -> str:
    address, port = sock.getsockname()[:2]
    return (
        f"listening on {address}:{port} without a token: anyone who can reach this port can create "
        "metrics and readings. Set a token (METRICSTREAM_TOKEN, or token= in Python) or keep host at "
        "127.0.0.1; see docs/security.md."
    )


def url_of(sock: socket.socket, tls: bool = False) -> str:
    host, port = sock.getsockname()[:2]
    host = {"0.0.0.0": "127.0.0.1", "::": "::1"}.get(host, host)
    scheme = "https" if tls else "http"
    return f"{scheme}://[{host}]:{port}" if ":" in host else f"{scheme}://{host}:{port}"


def loop_factory(settings: Settings) -> Callable[[], asyncio.AbstractEventLoop] | None:
    """What makes the server's event loop: asyncio's own (None), or uvloop's for `loop="uvloop"`."""
    if settings.loop == "asyncio":
        return None
    try:
        import uvloop
    except ImportError:
        raise ValidationError(
            'loop="uvloop" needs uvloop: pip install "metricstream[uvloop]" (not on Windows)'
        ) from None
    return uvloop.new_event_loop


KEEP_ALIVE_TIMEOUT = 75.0  # seconds an idle keep-alive connection is held (nginx's default)


async def serve_app(
    app: MetricStreamApp,
    sock: socket.socket,
    stop: asyncio.Event,
    on_started: Callable[[], None] | None = None,
) -> None:
    """Serve `app` on `sock` until `stop` is set, then shut down gracefully."""
    try:
        await app.startup()  # here, not in the ASGI lifespan, so a store that is down fails plainly
    except BaseException:
        sock.close()
        raise
    config = Config()
    config.bind = [f"fd://{sock.detach()}"]
    config.graceful_timeout = app.settings.shutdown_timeout / 2
    config.errorlog = log
    config.accesslog = None
    # Longer than clients keep an idle connection (httpx: 5 s, hypercorn's default too), so the client
    # ends it: a server closing it just as the client reuses it fails that request.
    config.keep_alive_timeout = KEEP_ALIVE_TIMEOUT
    if app.settings.certfile is not None:  # TLS on our own socket too: hypercorn wraps fd:// binds
        config.certfile, config.keyfile = app.settings.certfile, app.settings.keyfile
        config.alpn_protocols = list(ALPN)

    async def announce() -> None:
        await app.started.wait()
        if on_started is not None:
            on_started()

    async def shutdown_trigger() -> None:
        await stop.wait()
        await app.drain(app.settings.shutdown_timeout / 2)  # the other half is hypercorn's

    asyncio.get_running_loop().set_exception_handler(_quiet_connection_errors)
    announcer = asyncio.create_task(announce())
    try:
        await serve(cast(Any, app), config, shutdown_trigger=shutdown_trigger)
    finally:
        announcer.cancel()
        _abort_connections()


def _abort_connections() -> None:
    """Drop connections still open once the graceful period is over: a peer that stopped reading
    keeps unsent bytes, and closing would wait for them forever. asyncio's selector loop keeps its
    transports in `_transports` (not public API; absent elsewhere, where this does nothing)."""
    transports = getattr(asyncio.get_running_loop(), "_transports", {})
    for transport in list(transports.values()):
        if isinstance(transport, asyncio.Transport):
            transport.abort()


def _quiet_connection_errors(loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
    # A peer that vanished (reset, or aborted by TCP_USER_TIMEOUT) is routine, not an error.
    if isinstance(context.get("exception"), OSError):
        log.debug("connection closed: %s", context.get("exception"))
        return
    loop.default_exception_handler(context)


class _State(enum.Enum):
    NEW = "new"
    RUNNING = "running"
    STOPPED = "stopped"


class Hub:
    """A metricstream server in a background thread of this process.

    `Hub(port=0).start()` returns once connections are accepted; `.url` is where; `.service` creates
    metrics and readings from any thread; `.subscribe()` streams events; `.stop()` (or leaving a
    `with Hub() as hub:` block) ends every stream and frees the port. Settings are keyword arguments
    (see `Settings`), over `METRICSTREAM_*` environment variables. `storage` and `clock` replace the
    store the settings name and the real clock (tests pass a `ManualClock`).
    """

    def __init__(
        self,
        host: str | None = None,
        port: int | None = None,
        *,
        storage: Storage | None = None,
        clock: Clock | None = None,
        **settings: Any,
    ) -> None:
        self.settings = Settings.build(host=host, port=port, **settings)
        self._new_loop = loop_factory(self.settings)  # a loop that is not installed fails here
        self._storage = storage
        self._clock = clock
        self._state = _State.NEW
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop_event: asyncio.Event | None = None
        self._app: MetricStreamApp | None = None
        # What the one MetricService of this hub calls while a server runs: set once it serves, cleared
        # by stop(); a single attribute, so another thread never sees half of one run and half of the next.
        self._serving: tuple[AsyncMetricService, asyncio.AbstractEventLoop] | None = None
        self._service = MetricService(self._serving_now)
        self._url: str | None = None
        self._cell_run = current_cell_run()  # in a notebook: the run of the cell creating it (cells.py)

    def __repr__(self) -> str:
        if self._url is None:
            return f"<Hub new, to listen on {self.settings.host}:{self.settings.port}>"
        counts = self._counts()
        tail = f" clients={counts[0]} events={counts[1]}" if counts else ""
        return f"<Hub {self._state.value} {self._url}{tail}>"

    def _repr_html_(self) -> str:
        """A small table for Jupyter: URL (while running, a link to the dashboard), state, clients, events."""
        state = self._state.value
        if self._url is None:
            where = escape(f"to listen on {self.settings.host}:{self.settings.port}")
        elif self.running:
            where = f'<a href="{escape(self._url)}/" target="_blank">{escape(self._url)}</a>'
        else:
            where = escape(self._url)
        rows = [("URL", where), ("State", escape(state))]
        counts = self._counts()
        if counts is not None and self._url is not None:
            stream = f"{self._url}/events/watch"
            rows += [
                ("Clients", str(counts[0])),
                ("Retained events", str(counts[1])),
                ("Stream", f'<a href="{escape(stream)}" target="_blank">{escape(stream)}</a>'),
            ]
        body = "".join(
            f'<tr><th style="text-align:left">{name}</th><td style="text-align:left">{value}</td></tr>'
            for name, value in rows
        )
        return f'<table class="metricstream-hub"><caption>metricstream Hub</caption>{body}</table>'

    def _counts(self) -> tuple[int, int] | None:
        """(connected clients, retained events) while running; a snapshot read without the hub's loop."""
        app = self._app
        if not self.running or app is None:
            return None
        stats = app.broadcaster.statistics()
        return stats.clients, stats.retained

    @property
    def running(self) -> bool:
        return self._state is _State.RUNNING

    @property
    def url(self) -> str:
        if self._url is None:
            raise HubError("the hub has not been started")
        return self._url

    @property
    def app(self) -> MetricStreamApp:
        if self._app is None:
            raise HubError("the hub has not been started")
        return self._app

    @property
    def service(self) -> MetricService:
        """Blocking metric use cases on this hub (from any thread but the hub's): one object for the
        hub's whole life, so a reference kept across `stop()` and `start()` works again."""
        if not self.running:
            raise HubError("the hub is not running; call start() first")
        return self._service

    def _serving_now(self) -> tuple[AsyncMetricService, asyncio.AbstractEventLoop]:
        serving = self._serving
        if serving is None:
            raise HubError("the hub is not running")
        return serving

    def subscribe(self, start: str = "now", **filters: Any) -> Subscriber:
        """A `Subscriber` to this hub's stream (`start`, `last_event_id`, `types`, `metric_id`).

        ``start="now"`` (the default) takes this hub's position at once, in-process: every event
        published after this call is delivered, however late iteration begins. ``start="earliest"``
        replays what is retained first; an event id (or ``last_event_id=``, e.g. a snapshot's) resumes
        after it. Iterate it, or hand it a callback that runs on a background thread (as a notebook cell
        that must not block would): ``sub = hub.subscribe().on_event(print)`` ... ``sub.close()``.
        A hub serving HTTPS is trusted by its own certificate unless ``verify=`` or ``client=`` is given.
        """
        from .client import Subscriber

        if start == "now" and not filters.get("last_event_id"):
            start = self.service.last_event_id
        token = self.settings.subscribe_token or self.settings.token  # token grants the stream too
        if token is not None:
            filters.setdefault("token", token.get_secret_value())
        if self.settings.certfile is not None and "client" not in filters:  # knows its own certificate
            filters.setdefault("verify", pinned_context(self.settings.certfile))
        return Subscriber(self.url, start=start, **filters)

    def show(self, metric: Metric | str | None = None, height: int = 400) -> DashboardView:
        """The live dashboard in this notebook cell, `height` pixels high: the whole board, or the chart of
        one `metric` (a `Metric`, an id, or a name exactly one metric has). Outside a notebook, prints
        its URL. Returns a `DashboardView` (`.url`)."""
        from .display import show

        return show(self.service, self.url, metric, height)

    def start(self) -> Hub:
        """Start serving; returns once connections are accepted. A running hub is left as is. In a
        notebook, running hubs that an earlier run of the cell creating this one created are stopped
        first (see cells.py)."""
        if not self.running:
            self._stop_replaced()
        with self._lock:
            if self._state is _State.RUNNING:
                return self
            if self._storage is None:  # kept across restarts of this hub
                from .storage import open_storage

                self._storage = open_storage(self.settings.store, self.settings.event_ttl)
            check_certificate(self.settings)  # before the port is taken
            sock = self._bind()
            self._url = url_of(sock, tls=self.settings.certfile is not None)
            if self.settings.token is None and not is_loopback(sock):
                warnings.warn(exposure_warning(sock), RuntimeWarning, stacklevel=2)
            self._app = MetricStreamApp(fit_settings(self.settings), self._storage, self._clock)
            ready = threading.Event()
            failure: list[BaseException] = []
            self._thread = threading.Thread(
                target=self._run,
                args=(sock, ready, failure),
                name=f"metricstream-hub-{self._url}",
                daemon=True,  # never keeps the interpreter alive; atexit stops it cleanly
            )
            self._thread.start()
            ready.wait()
            if failure:
                self._thread.join()
                raise HubError(f"the hub failed to start: {failure[0]}") from failure[0]
            self._state = _State.RUNNING
            _running_hubs.add(self)
            return self

    def _stop_replaced(self) -> None:
        for other in list(_running_hubs):
            if self._cell_run and other._cell_run and self._cell_run.replaces(other._cell_run):
                note = f"stopping the hub at {other.url}, started by an earlier run of this cell"
                print(f"metricstream: {note}", flush=True)
                other.stop()

    def _bind(self) -> socket.socket:
        host, port, timeout = self.settings.host, self.settings.port, self.settings.write_timeout
        if port == 0 and self._url is not None:
            # Restarted: the port it had, if still free, so subscribers and dashboards kept from before
            # find it again (a Subscriber reconnects by itself, resuming after its last event).
            with contextlib.suppress(HubError):
                return bind_socket(host, int(self._url.rsplit(":", 1)[1]), timeout)
        try:
            return bind_socket(host, port, timeout)
        except HubError as error:
            # In a notebook, often a Hub of another cell (one of an earlier run of this cell is stopped).
            suffix = f":{port}"
            holders = [hub for hub in list(_running_hubs) if hub._url and hub._url.endswith(suffix)]
            hint = (
                f"{holders[0]!r} in this process holds it: stop() it first, or pass port=0"
                if holders
                else "pass port=0 to pick a free port"
            )
            raise HubError(f"{error} ({hint})") from None

    def _run(self, sock: socket.socket, ready: threading.Event, failure: list[BaseException]) -> None:
        assert self._app is not None
        app = self._app

        async def main() -> None:
            loop = self._loop = asyncio.get_running_loop()
            self._stop_event = asyncio.Event()

            def serving() -> None:
                self._serving = (app.service, loop)
                ready.set()

            await serve_app(app, sock, self._stop_event, serving)

        try:
            with asyncio.Runner(loop_factory=self._new_loop) as runner:
                runner.run(main())
        except BaseException as error:  # reported to start(), or logged if it came later
            if not ready.is_set():
                failure.append(error)
            else:
                log.exception("the hub stopped with an error")
        finally:
            with contextlib.suppress(OSError):
                sock.close()
            ready.set()

    def stop(self) -> None:
        """End every stream (clients get `disconnected`) and stop serving; frees the port."""
        with self._lock:
            if self._state is not _State.RUNNING:
                return
            assert self._loop is not None
            assert self._stop_event is not None
            assert self._thread is not None
            self._state = _State.STOPPED
            self._serving = None
            _running_hubs.discard(self)
            with contextlib.suppress(RuntimeError):  # the loop may already be gone
                self._loop.call_soon_threadsafe(self._stop_event.set)
            timeout = self.settings.shutdown_timeout + 5
            self._thread.join(timeout)
            if self._thread.is_alive():  # a task ignored its cancellation; the thread is a daemon
                log.warning("%r did not stop within %.0f s; its thread is left behind", self, timeout)

    def __enter__(self) -> Hub:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()


@atexit.register
def _stop_running_hubs() -> None:
    for hub in list(_running_hubs):
        hub.stop()


def run(settings: Settings, storage: Storage | None = None, *, quiet: bool = False) -> None:
    """Serve in the foreground until Ctrl+C or SIGTERM, then shut down gracefully."""
    # This process is ours: collect young garbage less often. Ingest allocates many short-lived
    # objects, and with the default threshold (700) collections took ~30% of a 10,000-reading batch.
    # (A Hub leaves the GC alone: it lives in someone else's process.)
    gc.set_threshold(50_000, 20, 20)
    app = MetricStreamApp(fit_settings(settings), storage)  # a bad store URL fails before the port is taken
    new_loop = loop_factory(settings)  # as does a loop that is not installed
    check_certificate(settings)
    sock = bind_socket(settings.host, settings.port, settings.write_timeout)
    url = url_of(sock, tls=settings.certfile is not None)
    exposed = not is_loopback(sock)
    if settings.token is None and exposed:  # even with --quiet
        print(f"metricstream: warning: {exposure_warning(sock)}", file=sys.stderr, flush=True)

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, stop.set)

        def started() -> None:
            if not quiet:
                print(f"metricstream listening on {url} (Ctrl+C to stop)", flush=True)
                for note in _start_notes(settings, exposed):
                    print(f"metricstream: note: {note}", flush=True)

        await serve_app(app, sock, stop, started)

    with asyncio.Runner(loop_factory=new_loop) as runner:
        runner.run(main())


def _start_notes(settings: Settings, exposed: bool) -> list[str]:
    """What `metricstream serve` notes about access at start (the warning for an exposed one apart)."""
    notes = []
    if settings.token is None and not exposed:
        notes.append(
            "no token is set, so writes are not authenticated; listening on loopback only, so only this "
            "machine can reach it (set METRICSTREAM_TOKEN before binding another --host)"
        )
    if settings.token is not None and settings.subscribe_token is None and exposed:
        notes.append("reads and the stream are open to anyone who can reach this port (no subscribe_token)")
    return notes
