"""`MetricStreamApp`: one server's parts wired together (store, event log, broadcaster, service, access,
telemetry, the Quart app) with their lifecycle, and the ASGI entry. `create_app()` builds it.

Every request first passes the gate (`gate.py`: Host, CORS, token, wrong-token limit, body), then goes by
the routing table: `GET /events/watch` to `watch.py`, the two write routes to `ingest.py`, any other method
on the stream's path to a 405, and everything else to Quart (`routes.py`). Paths are matched within the
app, without the `root_path` it may be mounted under.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
from collections.abc import AsyncIterator, Mapping
from datetime import UTC, datetime
from typing import Any

from pydantic import SecretStr

from ..cancellation import cancel_and_wait
from ..clock import Clock, SystemClock
from ..errors import MethodNotAllowedError, MetricStreamError
from ..service.use_cases import AsyncMetricService
from ..settings import Settings
from ..storage import open_storage
from ..storage.base import Storage, is_shared
from ..stream.broadcaster import Broadcaster
from ..stream.log import EventLog
from ..wire import STREAM_PATH
from .access import Access, route_path
from .answers import send_error
from .foreign import INFLUX_V1_PATH, INFLUX_V2_PATH, OTLP_PATH, REMOTE_WRITE_PATH, ForeignIngest
from .gate import BATCH_PATH, READING_PATH, Gate, Handler
from .http2 import guard_body
from .ingest import Ingest
from .routes import Parts, build_quart
from .sessions import FailureLimit
from .telemetry import Telemetry
from .types import Receive, Scope, Send
from .watch import watch

__all__ = ["MetricStreamApp", "create_app"]

log = logging.getLogger("metricstream")


class MetricStreamApp:
    """The ASGI application: the gate, then the routing table, then Quart."""

    def __init__(
        self, settings: Settings, storage: Storage | None = None, clock: Clock | None = None
    ) -> None:
        self.settings = settings
        self.clock = clock or SystemClock()
        self.storage = storage if storage is not None else open_storage(settings.store, settings.event_ttl)
        self.log = EventLog(settings.event_ttl)
        self.broadcaster = Broadcaster(
            self.log,
            max_clients=settings.max_clients,
            client_buffer=settings.client_buffer,
            write_timeout=settings.write_timeout,
            heartbeat=settings.heartbeat,
            retry=settings.retry,
            flush_interval=settings.flush_interval,
            clock=self.clock,
        )
        self.service = AsyncMetricService(
            self.storage,
            self.broadcaster,
            clock=self.clock,
            max_batch=settings.max_batch,
            max_name_length=settings.max_name_length,
            max_metrics=settings.max_metrics,
            max_readings_per_metric=settings.max_readings_per_metric,
            positive_only=settings.positive_only,
            reading_ttl=settings.reading_ttl,
            max_future=settings.max_future,
        )
        self.access = _access(settings)
        # Wrong tokens per client address, on every route.
        self.failures = FailureLimit(self.clock)
        # This app's own Prometheus registry.
        self.telemetry = Telemetry(self.broadcaster)
        self.quart = build_quart(
            Parts(
                settings,
                self.service,
                self.access,
                self.failures,
                self.telemetry,
                self.broadcaster.statistics,
            )
        )
        self.ingest = Ingest(self.service, self.telemetry, settings.max_body)
        # A foreign body, decompressed too, is as large as a batch's may be; its lines as many.
        self.foreign = ForeignIngest(self.service, self.telemetry, self.ingest.ceiling, settings.max_batch)
        # The handlers outside Quart, by (method, path); a path here takes no other method
        self.routes: dict[tuple[str, str], Handler] = {
            ("GET", STREAM_PATH): functools.partial(watch, self.broadcaster, self._labelled),
            ("POST", READING_PATH): self.ingest.reading,
            ("POST", BATCH_PATH): self.ingest.batch,
            ("POST", INFLUX_V2_PATH): self.foreign.influx_v2,
            ("POST", INFLUX_V1_PATH): self.foreign.influx_v1,
            ("POST", OTLP_PATH): self.foreign.otlp,
            ("POST", REMOTE_WRITE_PATH): self.foreign.remote_write,
        }
        # paths no other handler (Quart's) shares
        # (not /metrics/readings and its batch: GET /metrics/{id} is Quart's, and answers a bad id)
        foreign = (INFLUX_V2_PATH, INFLUX_V1_PATH, OTLP_PATH, REMOTE_WRITE_PATH)
        self.only = {STREAM_PATH: "GET"} | dict.fromkeys(foreign, "POST")
        limits = (settings.max_body, self.ingest.ceiling)
        self.gate = Gate(self.access, self.failures, self.clock, limits, self.methods, self._observe)
        self._maintenance: asyncio.Task[None] | None = None
        self._demo: asyncio.Task[None] | None = None
        self._starting = asyncio.Lock()
        # Set once startup is done and requests are served.
        self.started = asyncio.Event()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
            return
        if scope["type"] != "http":
            await self.quart(scope, receive, send)  # type: ignore[arg-type]
            return
        if not self.started.is_set():
            await self._start_unannounced()
        if scope.get("http_version") == "2" and (route_path(scope), scope["method"]) != (STREAM_PATH, "GET"):
            receive, send = guard_body(receive, send, self.ingest.ceiling, self.clock)  # see http2.py
        admitted = await self.gate.admit(scope, receive, send)
        if admitted is not None:
            # Called here, not through a helper coroutine: each frame an open stream holds costs memory.
            await self._handler(scope)(scope, *admitted)

    def _handler(self, scope: Scope) -> Handler:
        """The handler of a request's method and path: ours, a 405 for a path only ours take, else Quart."""
        path = route_path(scope)
        handler = self.routes.get((scope["method"], path))
        if handler is not None:
            return handler
        if path in self.only:
            return self._not_allowed
        return self._quart

    async def _not_allowed(self, scope: Scope, receive: Receive, send: Send, body: bytes | None) -> None:
        path = route_path(scope)
        allowed = self.only[path]
        error = MethodNotAllowedError(f"{path} takes {allowed} only", headers={"Allow": allowed})
        await send_error(send, error)

    async def _quart(self, scope: Scope, receive: Receive, send: Send, body: bytes | None) -> None:
        await self.quart(scope, receive, send)  # type: ignore[arg-type]

    async def _labelled(self, labels: Mapping[str, str]) -> list[str]:
        """The ids of the metrics whose labels include `labels` (a `labels=` stream filter's start)."""
        return [metric.id for metric in await self.service.list_metrics(labels=labels)]

    def methods(self, path: str) -> frozenset[str]:
        """The methods `path` takes (what a CORS preflight may ask for)."""
        ours = {method for method, route in self.routes if route == path}
        if path in self.only:
            return frozenset(ours)
        try:
            theirs = self.quart.url_map.bind("localhost").allowed_methods(path)
        except Exception:  # werkzeug refuses a path it cannot match: no method
            theirs = []
        return frozenset(ours | set(theirs))

    def _observe(self, method: str, path: str, status: int) -> None:
        """A request the gate refused, in the request metrics under its route's rule."""
        if (method, path) in self.routes or path in self.only:
            self.telemetry.observe_request(method, path, status, 0.0)
            return
        try:
            rule, _ = self.quart.url_map.bind("localhost").match(path, method=method, return_rule=True)
            route: str | None = rule.rule
        except Exception:  # no route (404, 405): counted as unmatched
            route = None
        self.telemetry.observe_request(method, route, status, 0.0)

    async def _start_unannounced(self) -> None:
        """Start on the first request when no lifespan did: an app mounted in another framework that does
        not pass its lifespan on (Starlette's Mount). `lifespan()` is the way to stop it too."""
        async with self._starting:
            if not self.started.is_set():
                log.warning(
                    "metricstream started on its first request, without an ASGI lifespan: run it inside "
                    "the host app's lifespan (async with metricstream_app.lifespan(): ...) to shut it "
                    "down cleanly"
                )
                await self.startup()

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        """The ASGI lifespan: start up before the server takes requests, shut down after."""
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                try:
                    await self.startup()
                except Exception as error:  # the server reports it and does not start
                    await send({"type": "lifespan.startup.failed", "message": str(error)})
                    return
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await self.shutdown()
                await send({"type": "lifespan.shutdown.complete"})
                return

    @contextlib.asynccontextmanager
    async def lifespan(self) -> AsyncIterator[MetricStreamApp]:
        """Start up, and shut down on leaving: for a host app's lifespan when this app is mounted in it."""
        await self.startup()
        try:
            yield self
        finally:
            await self.shutdown()

    async def startup(self) -> None:
        """Open the store and start the background work; a second call does nothing."""
        if self._maintenance is not None:
            return
        await self.storage.open()
        self.telemetry.watch_loop(asyncio.get_running_loop())
        self.log.restore(await self.storage.retained_events())
        self.log.trim(self.clock.time())  # what expired while no server ran
        self._maintenance = asyncio.create_task(self._maintain())
        if self.settings.demo:
            await self.start_demo()
        self.started.set()

    async def start_demo(self) -> None:
        """Create the demo metrics if none exist (before serving), then feed them in a task."""
        from ..service.demo import demo_metrics, run_demo

        metrics = await demo_metrics(self.service)
        self._demo = asyncio.create_task(run_demo(self.service, metrics), name="metricstream-demo")

    async def stop_demo(self) -> None:
        """Cancel the demo feed, if it runs, and wait until it has ended; idempotent."""
        demo, self._demo = self._demo, None
        if demo is not None:
            await cancel_and_wait(demo)

    async def _maintain(self) -> None:
        """The broadcaster's heartbeats and sweeps, and the store's own event trimming."""
        async with asyncio.TaskGroup() as group:
            group.create_task(self.broadcaster.run_maintenance())
            if is_shared(self.storage):
                group.create_task(self.storage.follow(self.service.receive, self.service.lost))
            if self.settings.reading_ttl is not None:
                group.create_task(self._expire_readings(self.settings.reading_ttl))
            while True:
                await self.clock.sleep(self.settings.event_ttl / 2)
                try:
                    await self.storage.trim_events(self.clock.time() - self.settings.event_ttl)
                except MetricStreamError as error:  # the store is down: try again next time
                    log.warning("trimming stored events failed: %s", error)

    async def _expire_readings(self, ttl: float) -> None:
        """Remove readings older than `ttl` by their timestamp, at once (what expired while no server
        ran) and then every tenth of the TTL, between 1 s and 1 min; the store works through them oldest
        first, in chunks, so writes and streams go on meanwhile."""
        interval = min(max(ttl / 10, 1.0), 60.0)
        while True:
            try:
                await self.storage.trim_readings(datetime.fromtimestamp(self.clock.time() - ttl, UTC))
            except MetricStreamError as error:
                log.warning("removing expired readings failed: %s", error)
            await self.clock.sleep(interval)

    async def drain(self, within: float) -> None:
        """Stop the demo feed, then end every stream (clients are told `disconnected`) within `within`
        seconds: no reading is posted once the streams are ending. Idempotent."""
        await self.stop_demo()
        await self.broadcaster.close(within)

    async def shutdown(self) -> None:
        """End every stream, then release the store."""
        await self.drain(self.settings.shutdown_timeout)
        await self.gate.close()
        if self._maintenance is not None:
            await cancel_and_wait(self._maintenance)
            self._maintenance = None
            await self.storage.close()


def create_app(
    *, storage: Storage | None = None, clock: Clock | None = None, **settings: Any
) -> MetricStreamApp:
    """The ASGI app for `settings` (keyword arguments over `METRICSTREAM_*` variables); `clock` is
    for tests (`ManualClock`), the real one by default."""
    return MetricStreamApp(Settings.build(**settings), storage, clock)


def _access(settings: Settings) -> Access:
    def secret(value: SecretStr | None) -> bytes | None:
        return None if value is None else value.get_secret_value().encode()

    # Without a token, only loopback names and allowed_hosts: a DNS-rebinding page cannot pose as local.
    hosts = frozenset(settings.allowed_hosts)
    return Access(
        secret(settings.token),
        secret(settings.subscribe_token),
        frozenset(settings.cors_origins),
        hosts if settings.token is None or hosts else None,
    )
