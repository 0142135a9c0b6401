"""The routes the framework serves: metrics, readings, the dashboard's files and sign-in, the scrapes (of
the readings and of the server's own metrics), on Quart, for one server's `Parts`.

Routes validate through the service (one set of pydantic models, also the source of `/openapi.json`); an
error leaves as `answers.error_body` says, with its status. The gate (`gate.py`) has already applied the
Host rule, CORS, the token and the body's size and time; the stream and the two write routes never reach
Quart (`application.py` routes them). The sign-in routes check their own token, counted in the same limit.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final, TypeVar, cast
from urllib.parse import urlencode

import orjson
from quart import Quart, Response, g, request
from quart_schema import (
    QuartSchema,
    document_querystring,
    document_request,
    document_response,
)
from quart_schema.openapi import OpenAPIProvider
from werkzeug.exceptions import HTTPException

from ..dashboard import DashboardFile, dashboard_files, dashboard_headers
from ..domain.exports import ExportQuery, ReadingsExportQuery, refuse_paging
from ..domain.exposition import exposition, wants_openmetrics
from ..domain.labels import parse_label_query
from ..domain.paging import Page
from ..domain.validation import MetricIn, MetricsQuery, ReadingsQuery, validate
from ..domain.values import Metric
from ..errors import MetricStreamError
from ..service.exports import start_export
from ..wire import __version__
from .access import Access, session_cookie
from .answers import error_body
from .exports import export_response, requested_format
from .gate import client_key
from .ingest import BATCH_BODY_FACTOR, json_body
from .json_slices import SLICE, metrics_json, readings_json
from .openapi import (
    ErrorOut,
    ExportRowList,
    HealthOut,
    LastEventHeader,
    MetricList,
    MetricOut,
    PageHeaders,
    ReadingList,
    RetryAfterHeader,
    SessionOut,
    complete_document,
    move_response_headers,
    uuid_path_parameter,
)
from .prometheus import prometheus_routes
from .sessions import SESSION_PATH, Caller, FailureLimit, SessionAnswer, SessionIn, Sessions
from .telemetry import METRICS_PATH, log_event

if TYPE_CHECKING:
    from ..service.use_cases import AsyncMetricService
    from ..settings import Settings
    from ..stream.broadcaster import BroadcastStatistics
    from .telemetry import Telemetry

__all__ = ["EXPORT_PATH", "Parts", "build_quart"]

log = logging.getLogger("metricstream")

QueryT = TypeVar("QueryT", MetricsQuery, ReadingsQuery, ReadingsExportQuery, ExportQuery)
# The readings for Prometheus to scrape (`/-/metrics` is the server's own metrics).
EXPORT_PATH: Final = "/metrics/export"


class _Provider(OpenAPIProvider):
    """quart-schema's document, completed by `openapi.py` (shared errors, the stream, header placement)."""

    def schema(self) -> dict[str, Any]:
        parts: Parts = self._app.extensions["metricstream"]
        return complete_document(super().schema(), parts.access, parts.settings.positive_only)

    def build_path_parameter(self, name: str, converter: Any) -> dict[str, Any]:
        parameter = super().build_path_parameter(name, converter)
        return uuid_path_parameter(parameter) if name == "metric_id" else parameter

    def build_response_object(self, model: Any, headers_model: Any) -> tuple[dict[str, Any], dict[str, Any]]:
        response, definitions = super().build_response_object(model, headers_model)
        return move_response_headers(response), definitions


def _json(body: object, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(orjson.dumps(body), status, headers, content_type="application/json")


async def _json_body(limit: int) -> Any:
    # In already: the gate read it (within its limit and time) before the request reached Quart.
    data = cast(bytes, await request.get_data(as_text=False))
    return json_body(data, request.mimetype, limit)


@dataclass(frozen=True, slots=True)
class Parts:
    """What the routes use of one server (`application.MetricStreamApp` wires them)."""

    settings: Settings
    service: AsyncMetricService
    access: Access
    failures: FailureLimit
    telemetry: Telemetry
    statistics: Callable[[], BroadcastStatistics]


def build_quart(parts: Parts) -> Quart:
    """The Quart app of the routes the framework serves, for one server's `parts`."""
    # The dashboard serves its own files; the document's access rules (_Provider) read the parts.
    app = Quart("metricstream", static_folder=None)
    app.extensions["metricstream"] = parts
    app.config["MAX_CONTENT_LENGTH"] = parts.settings.max_body * BATCH_BODY_FACTOR
    QuartSchema(
        app,
        info={"title": "metricstream", "version": __version__},
        redoc_ui_path=None,
        scalar_ui_path=None,
        swagger_ui_path=None,
        openapi_provider_class=_Provider,
    )
    _observability(app, parts)  # first: its before_request hook must see every request
    _errors(app)
    _metric_routes(app, parts)
    _reading_routes(app, parts)
    _dashboard_routes(app, parts)
    _session_routes(app, parts)
    prometheus_routes(app, parts.service)
    return app


def _errors(app: Quart) -> None:
    """Every error mapped to its status and `{"error": ...}`, in one place."""

    @app.errorhandler(MetricStreamError)
    async def domain_error(error: MetricStreamError) -> Response:
        return _json(error_body(error), error.status_code, error.headers or None)  # as answers.py says

    @app.errorhandler(HTTPException)
    async def http_error(error: HTTPException) -> Response:
        status = error.code or 500
        message = {413: f"request body is larger than {request.max_content_length} bytes"}.get(
            status, error.description or error.name
        )
        # A body left unread (too large, or no route to read it) ends the connection: announce it,
        # or a keep-alive client sends its next request into a socket that is being closed.
        has_body = request.content_length or "transfer-encoding" in request.headers
        return _json({"error": message}, status, {"Connection": "close"} if has_body else None)

    @app.errorhandler(Exception)
    async def unexpected_error(error: Exception) -> Response:
        log_event(
            log,
            logging.ERROR,
            "request_error",
            method=request.method,
            path=request.path,
            status=500,
            exc_info=error,
        )
        return _json({"error": "internal server error"}, 500)


def _metric_routes(app: Quart, parts: Parts) -> None:
    service = parts.service

    @app.post("/metrics")
    @document_request(MetricIn)
    @document_response(MetricOut, 201)
    @document_response(MetricOut, 200)  # the metric of that name and labels, as asked for, exists
    @document_response(ErrorOut, 400)
    @document_response(ErrorOut, 409)  # max_metrics reached; that name and labels, otherwise
    async def create_metric() -> Response:
        """Create a metric, identified by its name and labels.

        Announced to the stream as a `metric_created` event (201). If a metric of that name and labels
        exists with the same input_frequency, unit and description, it is answered (200, nothing
        announced); if they differ, 409."""
        metric, created = await service.write_metric(await _json_body(parts.settings.max_body))
        return _json(metric.to_dict(), 201 if created else 200)

    @app.get("/metrics")
    @document_querystring(MetricsQuery)
    @document_response(MetricList, 200, LastEventHeader)
    @document_response(ErrorOut, 400)
    async def list_metrics() -> Response:
        """List the metrics.

        Every metric in creation order, or those with one name, or with some labels; optionally with
        each one's newest readings."""
        # Read before the data: resuming from it never misses.
        headers = _last_event_header(parts)
        query = _validate_query(MetricsQuery)
        labels = parse_label_query(request.args.getlist("labels"))
        if not query.with_readings:
            metrics = await service.list_metrics(query.name, labels=labels)
            return _json([metric.to_dict() for metric in metrics], 200, headers)
        pairs = service.iter_metrics_with_readings(query.readings_limit, query.name, labels)
        return Response(metrics_json(pairs), 200, headers, content_type="application/json")

    @app.get("/metrics/<metric_id>")
    @document_response(MetricOut, 200, LastEventHeader)
    @document_response(ErrorOut, 400)
    @document_response(ErrorOut, 404)
    async def get_metric(metric_id: str) -> Response:
        """One metric, by its id."""
        headers = _last_event_header(parts)
        metric = await service.get_metric(metric_id)
        return _json(metric.to_dict(), 200, headers)

    @app.delete("/metrics/<metric_id>")
    @document_response(ErrorOut, 400)
    @document_response(ErrorOut, 404)
    async def delete_metric(metric_id: str) -> Response:
        """Delete a metric and its readings.

        Announced to the stream as `metric_deleted` with `{"id": ...}`."""
        await service.delete_metric(metric_id)
        answer = Response(b"", 204)
        del answer.headers["Content-Type"]  # no body, so no type
        return answer

    @app.get("/healthz")
    @document_response(HealthOut)
    async def healthz() -> Response:
        """Liveness: the connected stream clients and the retained events."""
        stats = parts.statistics()
        return _json({"status": "ok", "clients": stats.clients, "events": stats.retained})


def _reading_routes(app: Quart, parts: Parts) -> None:
    """The readings of a metric. (The two write routes are `ingest.py`'s, outside Quart; `openapi.py`
    documents them.)"""
    service = parts.service

    @app.get("/metrics/<metric_id>/readings")
    @document_querystring(ReadingsExportQuery)
    @document_response(ReadingList, 200, PageHeaders)
    @document_response(ErrorOut, 400)
    @document_response(ErrorOut, 404)
    @document_response(ErrorOut, 501)  # format=arrow or parquet on a server without pyarrow
    async def list_readings(metric_id: str) -> Response:
        """A metric's readings, or buckets of them; or, in another format than json, exported.

        By timestamp, since/until inclusive, oldest first (or with order=desc newest first); with `step`,
        buckets of that step (count, min, max, avg, first, last), empty ones left out. An answer cut by
        `limit` says so (X-Truncated) and links to the rest (Link rel=next). With format=csv, arrow or
        parquet (or the Accept header's media type), every reading or bucket from since to until, in the
        columns of `GET /readings`, streamed."""
        headers = {**_last_event_header(parts), "Vary": "Accept"}
        query = _validate_query(ReadingsExportQuery)
        format = requested_format()
        if format != "json":
            refuse_paging(set(request.args), format)
            metric = await service.get_metric(metric_id)
            export = await start_export(service, format, query, lambda: _listed(metric))
            return export_response(service, export, f"readings-{metric.id}")
        if query.step is not None:
            buckets, position = await service.buckets_at(metric_id, query)
            # Exact: a bucket cannot be told apart by reading id.
            headers = {"X-Last-Event-ID": position}
            return _json([bucket.to_dict() for bucket in buckets], 200, _page_headers(buckets, headers))
        readings = await service.query_readings(metric_id, query)
        headers = _page_headers(readings, headers)
        if len(readings) <= SLICE:
            return _json([reading.to_dict() for reading in readings], 200, headers)
        return Response(readings_json(readings), 200, headers, content_type="application/json")

    @app.get("/readings")
    @document_querystring(ExportQuery)
    @document_response(ExportRowList, 200, LastEventHeader)
    @document_response(ErrorOut, 400)
    @document_response(ErrorOut, 501)  # format=arrow or parquet on a server without pyarrow
    async def export_readings() -> Response:
        """Every reading (or bucket) of the chosen metrics, as one long table, streamed.

        The metrics with `name`, with `labels`, or all; by metric in creation order, then by time. One row
        per reading (with `step`, per bucket) in the columns of the Python API's `frame()`, as JSON rows,
        CSV, an Arrow IPC stream or Parquet (`format=`, or the Accept header). X-Last-Event-ID is the
        stream position read before the data: resume the stream from it (docs/protocol.md#exports)."""
        query = _validate_query(ExportQuery)
        format = requested_format()
        labels = parse_label_query(request.args.getlist("labels"))
        export = await start_export(
            service, format, query.window(), lambda: service.list_metrics(query.name, labels=labels)
        )
        return export_response(service, export, "readings")


async def _listed(metric: Metric) -> list[Metric]:
    return [metric]


def _page_headers(page: Page[Any], headers: dict[str, str]) -> dict[str, str]:
    """`headers` and whether the page was cut; if so, a link to the next page: this request's query with
    the page's cursor, relative to this request's URL, so it holds wherever the app is mounted."""
    headers = {**headers, "X-Truncated": "true" if page.truncated else "false"}
    if page.next_cursor is not None:
        query = [(name, value) for name, value in request.args.items(multi=True) if name != "cursor"]
        headers["Link"] = f'<?{urlencode([*query, ("cursor", page.next_cursor)])}>; rel="next"'
    return headers


def _last_event_header(parts: Parts) -> dict[str, str]:
    return {"X-Last-Event-ID": parts.service.last_event_id}


# --- the dashboard's files (loading and ETags: dashboard/__init__.py) -----------------------------------


def _dashboard_response(file: DashboardFile, cache_control: str, common: dict[str, str]) -> Response:
    headers = {**common, "Cache-Control": cache_control, "ETag": f'"{file.etag}"'}
    if request.if_none_match.contains(file.etag):
        return Response(b"", 304, headers)
    return Response(file.body, 200, headers, content_type=file.content_type)


def _dashboard_routes(app: Quart, parts: Parts) -> None:
    # The CSP, with who may frame the page.
    common = dashboard_headers(parts.settings.frame_ancestors)

    @app.get("/")
    async def dashboard() -> Response:
        """The live dashboard (an HTML page)."""
        return _dashboard_response(dashboard_files()["index.html"], "no-cache", common)

    @app.get("/dashboard/<name>")
    async def dashboard_asset(name: str) -> Response:
        """A file of the dashboard (its script or style sheet)."""
        file = dashboard_files().get(name)
        if file is None or name == "index.html":
            return _json({"error": f"no dashboard file {name!r}"}, 404)
        versioned = request.args.get("v") == file.etag
        cache_control = "public, max-age=31536000, immutable" if versioned else "no-cache"
        return _dashboard_response(file, cache_control, common)


# --- the dashboard's sign-in (what each answers: sessions.py) ---------------------------------------------

_SESSION_ENDPOINTS = frozenset({"session_state", "session_sign_in", "session_sign_out"})


def _session_cookie() -> str | None:
    return session_cookie(request.headers.getlist("Cookie"))


def _session_routes(app: Quart, parts: Parts) -> None:
    sessions = Sessions(parts.access, parts.failures)

    def answer(result: SessionAnswer) -> Response:
        return _json(result.body, result.status, result.headers)

    def caller() -> Caller:
        headers = request.headers
        return Caller(
            client_key(cast(dict[str, Any], request.scope)),
            headers.get("Origin"),
            headers.get("Host"),
            request.scheme == "https",
        )

    @app.get(SESSION_PATH)
    @document_response(SessionOut)
    async def session_state() -> Response:
        """The dashboard's sign-in state.

        Whether reads need a token, and whether this request's session cookie grants them."""
        return answer(sessions.state(_session_cookie()))

    @app.post(SESSION_PATH)
    @document_request(SessionIn)
    @document_response(SessionOut)
    @document_response(ErrorOut, 400)
    @document_response(ErrorOut, 401)  # a wrong token
    @document_response(ErrorOut, 403)  # an Origin other than this server's
    @document_response(ErrorOut, 429, RetryAfterHeader)  # too many wrong tokens from this address
    async def session_sign_in() -> Response:
        """Sign in to the dashboard.

        A valid token gets a session cookie for reads and the stream (never writes)."""
        body = await _json_body(parts.settings.max_body)
        return answer(sessions.sign_in(body, caller()))

    @app.delete(SESSION_PATH)
    @document_response(SessionOut)
    @document_response(ErrorOut, 403)
    async def session_sign_out() -> Response:
        """Sign out of the dashboard: the session cookie cleared."""
        return answer(sessions.sign_out(caller()))


# --- observability: request timing, the Prometheus scrapes of the readings and of the server's own metrics
# (formats: domain/exposition.py; metrics and log format: telemetry.py) --------------------------------------


def _observability(app: Quart, parts: Parts) -> None:
    @app.before_request
    async def start_timer() -> None:
        g.metricstream_started = time.perf_counter()

    @app.after_request
    async def observe(response: Response) -> Response:
        started = g.pop("metricstream_started", None)
        if started is not None:
            rule = request.url_rule.rule if request.url_rule is not None else None
            parts.telemetry.observe_request(
                request.method, rule, response.status_code, time.perf_counter() - started
            )
        return response

    @app.get(EXPORT_PATH)
    async def prometheus_export() -> Response:
        """Every metric's newest reading, for Prometheus to scrape.

        The text format, or OpenMetrics when the Accept header asks for it: each metric with its labels,
        unit, description and the newest reading's timestamp; one whose newest reading is older than
        stale_after seconds is left out (docs/prometheus.md)."""
        latest = await parts.service.latest_readings(parts.settings.stale_after)
        openmetrics = wants_openmetrics(request.headers.get("Accept"))
        # off the loop: thousands of metrics take a while to write out
        answer = await asyncio.to_thread(exposition, latest, openmetrics)
        parts.telemetry.count_export_skipped(answer.skipped)
        return Response(answer.body, 200, content_type=answer.media_type)

    @app.get(METRICS_PATH)
    async def prometheus_metrics() -> Response:
        """This server's own Prometheus metrics.

        The text format, or OpenMetrics when the Accept header asks for it (docs/observability.md)."""
        body, content_type = parts.telemetry.render(request.headers.get("Accept"))
        return Response(body, 200, content_type=content_type)


def _validate_query(model: type[QueryT]) -> QueryT:
    return validate(model, {name: request.args[name] for name in request.args})
