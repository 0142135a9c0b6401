"""`Hub`: a metricstream server in a background thread of this process.

A Hub owns a thread with its own event loop (`asyncio.Runner`),
so it works where the main thread already runs a loop, as in a Jupyter kernel; other threads reach the
loop only through `run_coroutine_threadsafe`; it serves with `serving.serve_app`.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import enum
import logging
import socket
import threading
import warnings
import weakref
from collections.abc import Mapping
from datetime import datetime
from html import escape
from typing import TYPE_CHECKING, Any, overload

from ..clock import Clock
from ..errors import HubError, ValidationError
from ..notebook.cells import current_cell_run
from ..service.metric_service import MetricService
from ..service.use_cases import LOG_FORMS
from ..settings import Settings
from ..storage.base import Storage
from ..web.application import MetricStreamApp
from .fdlimit import fit_settings
from .serving import bind_socket, exposure_warning, is_loopback, loop_factory, serve_app, url_of
from .tls import check_certificate, pinned_context

if TYPE_CHECKING:
    from types import TracebackType

    from ..client.subscribers import Subscriber
    from ..domain.values import Metric, MetricReading
    from ..notebook.chart_feed import ChartSource
    from ..notebook.display import DashboardView
    from ..service.use_cases import AsyncMetricService

__all__ = ["Hub"]

log = logging.getLogger("metricstream.server")

_running_hubs: weakref.WeakSet[Hub] = weakref.WeakSet()


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
        self.line_port: int | None = None  # the line-protocol listener's port, while one is bound
        # In a notebook: the run of the cell creating it (cells.py).
        self._cell_run = current_cell_run()
        # The open chart widgets, closed by stop(): their subscriptions would retry a stopped hub forever.
        self._charts: weakref.WeakSet[Any] = weakref.WeakSet()

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

    @overload
    def log(
        self,
        name: str,
        value: float,
        timestamp: datetime | str | None = None,
        *,
        labels: Mapping[str, str] | None = None,
    ) -> MetricReading: ...

    @overload
    def log(
        self,
        name: Mapping[str, float],
        *,
        timestamp: datetime | str | None = None,
        labels: Mapping[str, str] | None = None,
    ) -> list[MetricReading]: ...

    def log(
        self,
        name: str | Mapping[str, float],
        value: float | None = None,
        timestamp: datetime | str | None = None,
        *,
        labels: Mapping[str, str] | None = None,
    ) -> MetricReading | list[MetricReading]:
        """`service.log` on this hub, started first if it is new, so that ``hub = Hub(); hub.log({...})``
        works as one line. A hub that was stopped stays stopped: `HubError`, as `service` raises."""
        if self._state is _State.NEW:
            self.start()
        if isinstance(name, Mapping):
            if value is not None:
                raise ValidationError(LOG_FORMS)
            return self.service.log(name, timestamp=timestamp, labels=labels)
        return self.service.log(name, value, timestamp, labels=labels)  # type: ignore[arg-type]

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
        from ..client.subscribers import Subscriber

        if start == "now" and not filters.get("last_event_id"):
            start = self.service.last_event_id
        source = self._chart_source()
        if source.token is not None:
            filters.setdefault("token", source.token)
        if source.verify is not None and "client" not in filters:
            filters.setdefault("verify", source.verify)
        return Subscriber(self.url, start=start, **filters)

    def _chart_source(self) -> ChartSource:
        """How a client of this process reads this hub: its URL, its token (which grants the stream and
        the reads), and its own certificate to trust."""
        from ..notebook.chart_feed import ChartSource

        token = self.settings.subscribe_token or self.settings.token
        verify = pinned_context(self.settings.certfile) if self.settings.certfile is not None else None
        return ChartSource(self.url, token.get_secret_value() if token is not None else None, verify)

    def chart(self, *metrics: Metric | str, window: int | str = 300, height: int = 160) -> Any:
        """A live chart widget of `metrics` (names, ids or `Metric`s; none: every metric, new ones as
        they come). `window`: the newest N readings of each (300, as the dashboard keeps), or a time
        window, "10m", "1h", "6h" or "1d" (also "24h"), in buckets as the dashboard's picker shows them;
        `height`: each metric's chart, in pixels. Readings reach the browser through the kernel, never
        from the browser to this hub. It stays live until `close()` or `stop()`. Needs anywidget
        (`pip install 'metricstream[notebook]'`); docs/python-api.md tells more."""
        from ..notebook.chart import chart

        if not self.running:
            raise HubError("the hub is not running; call start() first")
        return chart(self._chart_source(), metrics, window=window, height=height, charts=self._charts)

    def show(self, metric: Metric | str | None = None, height: int = 400) -> DashboardView:
        """The live dashboard in this notebook cell, `height` pixels high: the whole board, or the chart of
        one `metric` (a `Metric`, an id, or a name exactly one metric has). Outside a notebook, prints
        its URL. Returns a `DashboardView` (`.url`)."""
        from ..notebook.display import show

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
                from ..storage import open_storage

                self._storage = open_storage(self.settings.store, self.settings.event_ttl)
            check_certificate(self.settings)  # before the port is taken
            sock = self._bind()
            line_sock = self._bind_lines(sock)
            self._url = url_of(sock, tls=self.settings.certfile is not None)
            if self.settings.token is None and not is_loopback(sock):
                warnings.warn(exposure_warning(sock), RuntimeWarning, stacklevel=2)
            self._app = MetricStreamApp(fit_settings(self.settings), self._storage, self._clock)
            ready = threading.Event()
            failure: list[BaseException] = []
            self._thread = threading.Thread(
                target=self._run,
                args=(sock, line_sock, ready, failure),
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

    def _bind_lines(self, sock: socket.socket) -> socket.socket | None:
        """The line-protocol listener's socket (`line_port`), if it has one; its port in `line_port`."""
        if self.settings.line_port is None:
            self.line_port = None
            return None
        try:
            line_sock = bind_socket(self.settings.host, self.settings.line_port, self.settings.write_timeout)
        except BaseException:
            sock.close()
            raise
        self.line_port = int(line_sock.getsockname()[1])
        return line_sock

    def _run(
        self,
        sock: socket.socket,
        line_sock: socket.socket | None,
        ready: threading.Event,
        failure: list[BaseException],
    ) -> None:
        assert self._app is not None
        app = self._app

        async def main() -> None:
            loop = self._loop = asyncio.get_running_loop()
            self._stop_event = asyncio.Event()

            def serving() -> None:
                self._serving = (app.service, loop)
                ready.set()

            await serve_app(app, sock, self._stop_event, serving, line_sock)

        try:
            with asyncio.Runner(loop_factory=self._new_loop) as runner:
                runner.run(main())
        except BaseException as error:
            # Reported to start(), or logged if it came later.
            if not ready.is_set():
                failure.append(error)
            else:
                log.exception("the hub stopped with an error")
        finally:
            with contextlib.suppress(OSError):
                sock.close()
                if line_sock is not None:
                    line_sock.close()
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
            for chart in list(self._charts):
                chart.close()
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
