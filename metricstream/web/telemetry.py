"""Observability: Prometheus metrics at `GET /-/metrics`, and structured log lines (logfmt).

Each app has its own `CollectorRegistry`, so two apps or Hubs in one process never share or clash. The
stream's figures are read from the `Broadcaster` when scraped (a custom collector), so the hot path pays
nothing for them, and every label comes from a bounded set, so a hostile client cannot grow them. A log
value that could split or forge a line is written as a JSON string. docs/observability.md lists every
metric and log line, and says what `metricstream serve` logs where.
"""

from __future__ import annotations

import asyncio
import datetime
import json
import logging
import re
from collections import Counter
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any, Final, TextIO

from prometheus_client import CollectorRegistry, GCCollector, Histogram, PlatformCollector, ProcessCollector
from prometheus_client import Counter as CounterMetric
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.exposition import choose_encoder

if TYPE_CHECKING:
    from ..stream.broadcaster import Broadcaster

__all__ = ["METRICS_PATH", "LogfmtFormatter", "Telemetry", "configure_logging", "log_event", "logfmt"]

METRICS_PATH: Final = "/-/metrics"
DROP_REASONS: Final = ("gone", "slow", "write_timeout", "limit", "shutdown", "lost")
EXPORT_SKIP_REASONS: Final = ("name", "duplicate")
UNMATCHED_ROUTE: Final = "<unmatched>"
_METHODS: Final = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


# --- Prometheus ---------------------------------------------------------------------------------------


class Telemetry:
    """One app's metrics: its own registry, the stream figures read from `broadcaster` at scrape time."""

    def __init__(self, broadcaster: Broadcaster) -> None:
        self.registry = CollectorRegistry()
        self.registry.register(_StreamCollector(broadcaster))
        self._tasks = _TaskCollector()
        self.registry.register(self._tasks)
        ProcessCollector(registry=self.registry)
        PlatformCollector(registry=self.registry)
        GCCollector(registry=self.registry)
        self._requests = Histogram(
            "metricstream_http_request_duration_seconds",
            "Time to answer a REST request, by method, route rule and status (the stream is not included).",
            ["method", "route", "status"],
            registry=self.registry,
        )
        # Each label set's child, found once: labels() costs more than the observation itself.
        self._children: dict[tuple[str, str | None, int], Histogram] = {}
        lines = CounterMetric(
            "metricstream_line_protocol_lines",
            "Lines read by the line-protocol listener (line_port), by outcome: written, or refused (a bad "
            "line, logged; its connection stays).",
            ["outcome"],
            registry=self.registry,
        )
        self.lines_written, self.lines_refused = lines.labels("written"), lines.labels("refused")
        skipped = CounterMetric(
            "metricstream_export_skipped",
            "Metrics left out of answers of GET /metrics/export, by reason: name (no Prometheus name maps "
            "from it), duplicate (another metric maps to the same name and labels).",
            ["reason"],
            registry=self.registry,
        )
        self._export_skipped = {reason: skipped.labels(reason) for reason in EXPORT_SKIP_REASONS}

    def count_export_skipped(self, skipped: Mapping[str, int]) -> None:
        """Count the metrics one export answer left out, by reason."""
        for reason, count in skipped.items():
            self._export_skipped[reason].inc(count)

    def observe_request(self, method: str, route: str | None, status: int, seconds: float) -> None:
        """Count one REST request; `route` is the matched rule, None when none matched."""
        child = self._children.get((method, route, status))
        if child is None:
            known = method if method in _METHODS else "other"
            child = self._requests.labels(known, route or UNMATCHED_ROUTE, str(status))
            # Routes are rules, and methods and statuses few: bounded anyway.
            if len(self._children) < 1024:
                self._children[method, route, status] = child
        child.observe(seconds)

    def watch_loop(self, loop: asyncio.AbstractEventLoop) -> None:
        """Count the tasks of the loop this app serves on (from its startup)."""
        self._tasks.loop = loop

    def render(self, accept: str | None = None) -> tuple[bytes, str]:
        """(body, content type) of a scrape: OpenMetrics if `accept` asks for it, else the text format."""
        encoder, content_type = choose_encoder(accept or "")
        return encoder(self.registry), content_type


class _StreamCollector:
    """The broadcaster's counters as metric families. Reads sizes and counters only (no iteration over
    live collections), so a scrape from another thread than the app's loop is safe too."""

    def __init__(self, broadcaster: Broadcaster) -> None:
        self._broadcaster = broadcaster

    def collect(self) -> Iterable[Metric]:
        b = self._broadcaster.statistics()
        yield GaugeMetricFamily("metricstream_clients_connected", "SSE clients connected now.", b.clients)
        yield CounterMetricFamily("metricstream_clients_accepted", "SSE connections accepted.", b.accepted)
        dropped = CounterMetricFamily(
            "metricstream_clients_dropped",
            "SSE streams ended, by reason: gone (the client left), slow, write_timeout, limit, shutdown, "
            "lost.",
            labels=["reason"],
        )
        counts = Counter(b.dropped)
        for reason in (*DROP_REASONS, *sorted(set(counts) - set(DROP_REASONS))):
            dropped.add_metric([reason], counts[reason])
        yield dropped
        yield CounterMetricFamily(
            "metricstream_clients_reset",
            "SSE clients told `reset`: their Last-Event-ID was unknown or expired.",
            b.resets,
        )
        yield CounterMetricFamily(
            "metricstream_events_published", "Events published to this app's SSE clients.", b.published
        )
        yield CounterMetricFamily(
            "metricstream_events_replayed",
            "Retained events queued for replay after Last-Event-ID.",
            b.replayed,
        )
        yield GaugeMetricFamily("metricstream_events_retained", "Events retained for replay now.", b.retained)


class _TaskCollector:
    """The asyncio tasks on the app's loop: every connection, request and stream holds some, so a count
    that keeps growing with no more clients is a leak."""

    loop: asyncio.AbstractEventLoop | None = None

    def collect(self) -> Iterable[Metric]:
        if self.loop is not None and not self.loop.is_closed():
            tasks = len(asyncio.all_tasks(self.loop))
            yield GaugeMetricFamily(
                "metricstream_tasks", "asyncio tasks on the server's event loop now.", tasks
            )


# --- structured logs -----------------------------------------------------------------------------------

# Printable ASCII but space, '"', '=' and '\'.
_BARE = re.compile(r"[!#-<>-\[\]-~]+")


def _value(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return f"{value:.3f}"
    text = value if isinstance(value, str) else str(value)
    return text if _BARE.fullmatch(text) else json.dumps(text)


def logfmt(fields: dict[str, object]) -> str:
    """`key=value ...` for the fields that have a value, in order; values quoted where they need it."""
    return " ".join(f"{key}={_value(value)}" for key, value in fields.items() if value is not None)


def log_event(
    logger: logging.Logger,
    level: int,
    event: str,
    /,
    *,
    exc_info: BaseException | None = None,
    **fields: object,
) -> None:
    """Log one structured line `event=<event> key=value ...`; the fields also become record attributes."""
    if not logger.isEnabledFor(level):
        return
    present = {"event": event, **{key: value for key, value in fields.items() if value is not None}}
    logger.log(level, "%s", logfmt(present), extra=present, exc_info=exc_info)


class LogfmtFormatter(logging.Formatter):
    """One line per record: `time=... level=... logger=...` and then the structured pairs, or `msg=...`."""

    def format(self, record: logging.LogRecord) -> str:
        created = datetime.datetime.fromtimestamp(record.created, datetime.UTC)
        head: dict[str, object] = {
            "time": created.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            "level": record.levelname.lower(),
            "logger": record.name,
        }
        message = record.getMessage()
        structured = isinstance(getattr(record, "event", None), str)
        line = f"{logfmt(head)} {message}" if structured else logfmt({**head, "msg": message})
        if record.exc_info:
            line += " " + logfmt({"exc": self.formatException(record.exc_info)})
        elif record.exc_text:
            line += " " + logfmt({"exc": record.exc_text})
        return line


def configure_logging(level: str, stream: TextIO | None = None) -> logging.Handler:
    """For `metricstream serve` only: logfmt lines on stderr (or `stream`), metricstream's at `level`,
    other libraries' at warning and above. A library use (Hub, create_app) never calls this."""
    numeric: Any = logging.getLevelName(level.upper())
    if not isinstance(numeric, int):
        raise ValueError(f"unknown log level {level!r}")
    handler = logging.StreamHandler(stream)
    handler.setFormatter(LogfmtFormatter())
    root = logging.getLogger()
    root.addHandler(handler)
    root.setLevel(max(numeric, logging.WARNING))
    logging.getLogger("metricstream").setLevel(numeric)
    return handler
