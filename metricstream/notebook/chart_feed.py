"""The kernel side of `hub.chart()`: what the chart shows, read from a server and kept live.

A `ChartFeed` loads the history of the metrics it shows over HTTP, then follows the event stream from the
position that history was read at (X-Last-Event-ID), so nothing is missed and nothing counted twice. It
never draws: it hands messages to a `send(content, buffers)` callable (the widget's comm). Readings are
coalesced: a worker thread sends what came in at most once per `interval` of the injectable clock, values
and times as Float64 buffers. Two threads run while it is open, the subscriber's and the worker; `close()`
ends both. docs/python-api.md ("A live chart") tells the user's side.
"""

from __future__ import annotations

import contextlib
import logging
import math
import threading
from array import array
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final

import httpx

from ..client.core import Verify, client_options
from ..client.subscribers import StreamEvent, Subscriber
from ..clock import Clock, SystemClock
from ..domain.values import Metric
from ..errors import SubscriptionError, ValidationError
from ..wire import MAX_READINGS_LIMIT, METRIC_CREATED, METRIC_DELETED, READING_CREATED

__all__ = ["WINDOWS", "ChartFeed", "ChartSource", "ChartWindow", "FeedStatistics", "Send"]

log = logging.getLogger("metricstream.notebook")

Send = Callable[[dict[str, Any], list[bytes]], None]

# At most 20 messages a second: smooth to the eye, and cheap for the comm and the kernel.
DEFAULT_INTERVAL: Final = 0.05
# The dashboard's "live" view keeps this many readings per metric (series.js READINGS_KEPT).
DEFAULT_READINGS: Final = 300
BUCKET_FIELDS: Final = ("start", "count", "min", "max", "avg", "first", "last")


@dataclass(frozen=True)
class ChartWindow:
    """What a chart shows of each metric: its newest `limit` readings, or (`step` set) buckets of `step`
    seconds over the last `span` seconds."""

    limit: int | None = DEFAULT_READINGS
    name: str | None = None
    step: int = 0
    span: int = 0
    title: str = ""

    def to_dict(self) -> dict[str, Any]:
        if self.limit is not None:
            return {"limit": self.limit}
        return {"name": self.name, "step": self.step, "span": self.span, "title": self.title}


# The dashboard's window picker (dashboard/history.js WINDOWS): about 300 buckets each.
WINDOWS: Final = {
    "10m": ChartWindow(None, "10m", 2, 600, "the last 10 minutes"),
    "1h": ChartWindow(None, "1h", 12, 3600, "the last hour"),
    "6h": ChartWindow(None, "6h", 60, 6 * 3600, "the last 6 hours"),
    "1d": ChartWindow(None, "1d", 300, 24 * 3600, "the last 24 hours"),
}
WINDOWS_ALIASES: Final = {"24h": "1d"}


def chart_window(window: int | str) -> ChartWindow:
    """`window=` of `chart()`: a count of newest readings, or one of the dashboard's time windows."""
    if isinstance(window, int) and not isinstance(window, bool):
        if not 1 <= window <= MAX_READINGS_LIMIT:
            raise ValidationError(f"window must be from 1 to {MAX_READINGS_LIMIT} readings, not {window}")
        return ChartWindow(limit=window)
    if isinstance(window, str) and WINDOWS_ALIASES.get(window, window) in WINDOWS:
        return WINDOWS[WINDOWS_ALIASES.get(window, window)]
    names = ", ".join(repr(name) for name in WINDOWS)
    raise ValidationError(f"window must be a number of readings or one of {names}, not {window!r}")


def chart_selection(metrics: Iterable[object]) -> frozenset[str] | None:
    """The metrics `chart(*metrics)` shows: None for every one, else names and ids (`Metric`s by id)."""
    chosen: set[str] = set()
    for metric in metrics:
        if isinstance(metric, Metric):
            chosen.add(metric.id)
        elif isinstance(metric, str) and metric:
            chosen.add(metric)
        else:
            raise ValidationError(f"chart() takes metric names, ids or Metrics, not {metric!r}")
    return frozenset(chosen) if chosen else None


@dataclass(frozen=True)
class ChartSource:
    """Where a chart reads: a server's base URL, its token, and how to trust its certificate."""

    url: str
    token: str | None = None
    verify: Verify | None = None

    def client(self) -> httpx.Client:
        headers = {"Authorization": f"Bearer {self.token}"} if self.token else {}
        options = client_options(self.verify, None)
        return httpx.Client(base_url=self.url, headers=headers, timeout=30, **options)

    def subscribe(self, position: str) -> Subscriber:
        return Subscriber(self.url, start=position, token=self.token, verify=self.verify)


@dataclass(frozen=True)
class FeedStatistics:
    """A snapshot of a feed: messages sent, readings taken from the stream and sent on, readings waiting
    for the next message, the metrics shown, and whether its threads run."""

    messages: int
    received: int
    sent: int
    pending: int
    metrics: tuple[str, ...]
    running: bool


@dataclass
class _Loaded:
    """One load: the metrics, each one's history as a flat Float64 buffer, and the stream position."""

    metrics: list[dict[str, Any]]
    history: list[array[float]]
    position: str
    # raw: ids of the readings loaded (the stream may bring them again); buckets: per metric, the position
    # its buckets were read at (its readings up to that event are in them)
    seen: set[str]
    cutoffs: dict[str, str]


def _ms(timestamp: str) -> float:
    moment = datetime.fromisoformat(timestamp.upper())
    return moment.astimezone(UTC).timestamp() * 1000


class ChartFeed:
    """The live data of one chart: load, follow, coalesce, send (see the module docstring)."""

    def __init__(
        self,
        source: ChartSource,
        selection: frozenset[str] | None,
        window: ChartWindow,
        send: Send,
        *,
        clock: Clock | None = None,
        interval: float = DEFAULT_INTERVAL,
    ) -> None:
        self.source = source
        self.selection = selection
        self.window = window
        self._send = send
        self._clock = clock or SystemClock()
        self._interval = interval
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._closed = threading.Event()
        self._generation = 0
        self._reload_wanted = False
        self._subscriber: Subscriber | None = None
        self._worker: threading.Thread | None = None
        self._shown: dict[str, str] = {}  # id -> name, in the order shown
        self._seen: set[str] = set()
        self._skipping: set[str] = set()
        self._cutoffs: dict[str, list[str]] = {}
        self._pending: dict[str, array[float]] = {}
        self._added: list[dict[str, Any]] = []
        self._removed: list[str] = []
        self._last_sent = -math.inf
        self._messages = self._received = self._sent = 0

    def matches(self, metric: Mapping[str, Any]) -> bool:
        return self.selection is None or metric["id"] in self.selection or metric["name"] in self.selection

    def start(self) -> ChartFeed:
        """Load and send the state, follow the stream; returns once it follows. Errors (no server, a
        wrong token) are raised here, in the caller's cell."""
        self._reload()
        self._worker = threading.Thread(target=self._run, name=f"metricstream-chart-{self.source.url}")
        self._worker.daemon = True  # never keeps a kernel from exiting; close() joins it
        self._worker.start()
        return self

    def reload(self) -> None:
        """Load the state again and send it (a view that opened, a `reset` of the stream)."""
        with self._lock:
            self._reload_wanted = True
        self._wake.set()

    def close(self) -> None:
        """End the subscription and the worker; joins both threads. Idempotent."""
        self._closed.set()
        self._wake.set()
        with self._lock:
            self._generation += 1
            subscriber, self._subscriber = self._subscriber, None
        if subscriber is not None:
            subscriber.close()
        worker = self._worker
        if worker is not None and worker is not threading.current_thread():
            worker.join()

    def statistics(self) -> FeedStatistics:
        with self._lock:
            pending = sum(len(values) // 2 for values in self._pending.values())
            worker = self._worker
            return FeedStatistics(
                self._messages,
                self._received,
                self._sent,
                pending,
                tuple(self._shown.values()),
                worker is not None and worker.is_alive(),
            )

    # -- the worker

    def _run(self) -> None:
        while not self._closed.is_set():
            self._wake.wait()
            self._wake.clear()
            if self._closed.is_set():
                break
            with self._lock:
                reload, self._reload_wanted = self._reload_wanted, False
            if reload:
                try:
                    self._reload()
                except Exception as error:  # the server is away: the next reset or view tries again
                    log.warning("the chart of %s could not load: %s", self.source.url, error)
                    self._post({"kind": "error", "message": f"could not load: {error}"}, [])
                continue
            self._flush_when_due()

    def _flush_when_due(self) -> None:
        while not self._closed.is_set():
            remaining = self._last_sent + self._interval - self._clock.monotonic()
            if remaining <= 0:
                self._flush()
                return
            # Real seconds, at most one interval: a ManualClock, which wakes nobody, is looked at again.
            self._closed.wait(min(remaining, self._interval))

    def _flush(self) -> None:
        with self._lock:
            pending, self._pending = self._pending, {}
            added, self._added = self._added, []
            removed, self._removed = self._removed, []
            if not (pending or added or removed):
                return
            counts = {metric_id: len(values) // 2 for metric_id, values in pending.items()}
            self._sent += sum(counts.values())
        appended = [{"id": metric_id, "points": count} for metric_id, count in counts.items()]
        content = {"kind": "update", "added": added, "removed": removed, "appended": appended}
        self._post(content, [values.tobytes() for values in pending.values()])
        self._last_sent = self._clock.monotonic()

    def _post(self, content: dict[str, Any], buffers: list[bytes]) -> None:
        with self._lock:
            self._messages += 1
        try:
            self._send(content, buffers)
        except Exception:  # a comm closed under us; the chart is going away
            log.debug("a chart message could not be sent", exc_info=True)

    # -- loading

    def _reload(self) -> None:
        with self._lock:
            self._generation += 1
            generation = self._generation
            subscriber, self._subscriber = self._subscriber, None
        if subscriber is not None:
            subscriber.close()
        loaded = self._load()
        with self._lock:
            if generation != self._generation:
                return  # closed meanwhile
            self._shown = {metric["id"]: metric["name"] for metric in loaded.metrics}
            self._seen = loaded.seen
            self._cutoffs = {}
            for metric_id, position in loaded.cutoffs.items():
                if position != loaded.position:
                    self._cutoffs.setdefault(position, []).append(metric_id)
            self._skipping = {m for ids in self._cutoffs.values() for m in ids}
            self._pending, self._added, self._removed = {}, [], []
        state = {
            "kind": "state",
            "window": self.window.to_dict(),
            "metrics": [
                {**_shown(metric), "points": len(values) // self._fields()}
                for metric, values in zip(loaded.metrics, loaded.history, strict=True)
            ],
        }
        self._post(state, [values.tobytes() for values in loaded.history])
        # The state counts as a message: readings that follow wait for the next interval.
        self._last_sent = self._clock.monotonic()
        subscriber = self.source.subscribe(loaded.position)
        with self._lock:
            if generation != self._generation:
                subscriber.close()
                return
            self._subscriber = subscriber
        subscriber.on_event(lambda event: self._on_event(generation, event))

    def _fields(self) -> int:
        return 2 if self.window.limit is not None else len(BUCKET_FIELDS)

    def _load(self) -> _Loaded:
        with self.source.client() as client:
            if self.window.limit is not None:
                return self._load_readings(client, self.window.limit)
            return self._load_buckets(client)

    def _load_readings(self, client: httpx.Client, limit: int) -> _Loaded:
        answer = _get(client, "/metrics", {"with_readings": "true", "readings_limit": str(limit)})
        metrics = [metric for metric in answer.json() if self.matches(metric)]
        history, seen = [], set()
        for metric in metrics:
            values = array("d")
            for reading in metric.pop("readings"):
                values.extend((_ms(reading["timestamp"]), float(reading["value"])))
                seen.add(reading["id"])
            history.append(values)
        return _Loaded(metrics, history, answer.headers["X-Last-Event-ID"], seen, {})

    def _load_buckets(self, client: httpx.Client) -> _Loaded:
        answer = _get(client, "/metrics", {})
        metrics = [metric for metric in answer.json() if self.matches(metric)]
        step_ms = self.window.step * 1000
        # As the dashboard asks (history.js bucketsUrl): the window ends with the current step, and
        # `until` is a window later, so a reading stamped by a clock ahead of ours is not left out.
        end = (math.floor(self._clock.time() * 1000 / step_ms) + 1) * step_ms
        span_ms = self.window.span * 1000
        query = {
            "since": _rfc3339(end - span_ms),
            "until": _rfc3339(end + span_ms),
            "step": str(self.window.step),
            "limit": str(MAX_READINGS_LIMIT),
        }
        history, cutoffs = [], {}
        for metric in metrics:
            buckets = _get(client, f"/metrics/{metric['id']}/readings", query)
            values = array("d")
            for bucket in buckets.json():
                values.append(_ms(bucket["start"]))
                values.extend(float(bucket[field]) for field in BUCKET_FIELDS[1:])
            history.append(values)
            cutoffs[metric["id"]] = buckets.headers["X-Last-Event-ID"]
        return _Loaded(metrics, history, answer.headers["X-Last-Event-ID"], set(), cutoffs)

    # -- the stream (the subscriber's thread)

    def _on_event(self, generation: int, event: StreamEvent) -> None:
        with self._lock:
            if generation != self._generation:
                return
            self._take(event)
            for metric_id in self._cutoffs.pop(event.id, ()):
                self._skipping.discard(metric_id)
        self._wake.set()

    def _take(self, event: StreamEvent) -> None:
        data = event.data
        if event.type == READING_CREATED:
            metric_id = data["metric_id"]
            if metric_id not in self._shown or metric_id in self._skipping:
                return
            if data["id"] in self._seen:
                self._seen.discard(data["id"])  # loaded already
                return
            self._received += 1
            values = self._pending.setdefault(metric_id, array("d"))
            values.extend((_ms(data["timestamp"]), float(data["value"])))
        elif event.type == METRIC_CREATED and self.matches(data) and data["id"] not in self._shown:
            self._shown[data["id"]] = data["name"]
            self._added.append(_shown(data))
        elif event.type == METRIC_DELETED and data["id"] in self._shown:
            del self._shown[data["id"]]
            self._pending.pop(data["id"], None)
            self._added = [metric for metric in self._added if metric["id"] != data["id"]]
            self._removed.append(data["id"])
        elif event.type == "reset":
            self._reload_wanted = True


def _shown(metric: Mapping[str, Any]) -> dict[str, Any]:
    """What the widget shows of a metric besides its data (GET /metrics' item, or a `metric_created`
    event's): its id, name, labels, unit and description; a server from before labels has none."""
    return {
        "id": metric["id"],
        "name": metric["name"],
        "labels": metric.get("labels") or {},
        "unit": metric.get("unit"),
        "description": metric.get("description"),
    }


def _get(client: httpx.Client, path: str, params: Mapping[str, str]) -> httpx.Response:
    """The answer to GET `path`; a refusal is a `SubscriptionError` with the server's message."""
    answer = client.get(path, params=params)
    if answer.status_code != 200:
        reason = answer.reason_phrase
        with contextlib.suppress(ValueError, KeyError, TypeError):
            reason = answer.json()["error"]
        status = answer.status_code
        where = f"the chart cannot read {client.base_url}"
        raise SubscriptionError(f"{where}: GET {path}: {status} {reason}", status)
    return answer


def _rfc3339(ms: float) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).isoformat().replace("+00:00", "Z")
