"""The Prometheus HTTP API's read routes, so that Grafana's built-in Prometheus data source (and any
Prometheus client) reads metricstream: `/api/v1/query`, `/query_range`, `/series`, `/labels`,
`/label/<name>/values` (GET, and POST with a form body, as Grafana sends them), `/metadata` and
`/status/buildinfo`. Parameters are read from the form body, then the query string, as Prometheus does.

Answers are Prometheus's envelope, `{"status": "success", "data": ...}`, and so are refusals, with its
error types: `bad_data` (400), `execution` (422), `timeout` and `unavailable` (503), `not_found` (404),
`internal` (500). The gate's own refusals (token, Host, body) stay the usual `{"error": ...}`. The work is
`service/promql.py`'s; docs/grafana.md tells the subset and its limits.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, Final, Literal

import orjson
from pydantic import BaseModel, Field
from quart import Quart, Response, request
from quart_schema import DataSource, document_querystring, document_request, document_response

from ..errors import EvaluationError, MetricStreamError, NotFoundError, QueryTimeoutError, UnavailableError
from ..service.promql import PromQL
from .telemetry import log_event

if TYPE_CHECKING:
    from ..service.use_cases import AsyncMetricService

__all__ = ["PROMETHEUS_READ_POSTS", "PROMETHEUS_VERSION", "prometheus_routes"]

log = logging.getLogger("metricstream")

# The Prometheus version /api/v1/status/buildinfo reports: the one whose semantics the subset follows
# (range selectors closed at both ends), and recent enough for Grafana to use every feature it can.
PROMETHEUS_VERSION: Final = "2.42.0"
PREFIX: Final = "/api/v1"
# The POST routes that read (the gate asks them for a read token, not a write one).
PROMETHEUS_READ_POSTS: Final = frozenset(
    f"{PREFIX}/{name}" for name in ("query", "query_range", "series", "labels")
)


class QueryIn(BaseModel):
    query: str = Field(description="A PromQL expression (the subset in docs/grafana.md).")
    time: str | None = Field(None, description="RFC 3339 or Unix seconds; now by default.")
    timeout: str | None = Field(None, description="At most this long (seconds, or a duration: 30s).")


class QueryRangeIn(BaseModel):
    query: str = Field(description="A PromQL expression (the subset in docs/grafana.md).")
    start: str = Field(description="RFC 3339 or Unix seconds.")
    end: str = Field(description="RFC 3339 or Unix seconds.")
    step: str = Field(description="Seconds, or a duration such as 15s or 1m; at most 11,000 steps.")
    timeout: str | None = Field(None, description="At most this long (seconds, or a duration: 30s).")


class SeriesIn(BaseModel):
    match: list[str] = Field(alias="match[]", description='Series selectors, such as up{job="api"}.')
    start: str | None = None
    end: str | None = None


class LabelsIn(BaseModel):
    match: list[str] | None = Field(None, alias="match[]", description="Only the series these select.")
    start: str | None = None
    end: str | None = None


class MetadataIn(BaseModel):
    metric: str | None = Field(None, description="Only this metric name.")
    limit: str | None = Field(None, description="At most this many metric names.")
    limit_per_metric: str | None = Field(None, description="At most this many entries per name.")


class PromSuccessOut(BaseModel):
    """Prometheus's answer: `data` as Prometheus gives it for this route."""

    status: Literal["success"]
    data: Any = Field(description="As Prometheus answers: resultType and result for queries.")


class PromErrorOut(BaseModel):
    """Prometheus's refusal: bad_data (400), execution (422), timeout or unavailable (503)."""

    status: Literal["error"]
    errorType: str = Field(description="bad_data, execution, timeout, unavailable, not_found or internal.")
    error: str


def _answer(body: dict[str, Any], status: int = 200) -> Response:
    return Response(orjson.dumps(body), status, content_type="application/json")


def _error_type(error: MetricStreamError) -> tuple[str, int]:
    if isinstance(error, QueryTimeoutError):
        return "timeout", 503
    if isinstance(error, EvaluationError):
        return "execution", 422
    if isinstance(error, UnavailableError):
        return "unavailable", 503
    if isinstance(error, NotFoundError):
        return "not_found", 404
    if error.status_code < 500:
        return "bad_data", 400
    return "internal", 500


async def _enveloped(work: Callable[[], Awaitable[Any]]) -> Response:
    """`work`'s data in Prometheus's envelope, or its refusal in the error envelope."""
    try:
        data = await work()
    except MetricStreamError as error:
        kind, status = _error_type(error)
        return _answer({"status": "error", "errorType": kind, "error": error.message}, status)
    except Exception as error:
        log_event(
            log, logging.ERROR, "request_error", method=request.method, path=request.path, exc_info=error
        )
        return _answer({"status": "error", "errorType": "internal", "error": "internal server error"}, 500)
    # A long answer takes a while to encode: off the loop.
    body = await asyncio.to_thread(orjson.dumps, {"status": "success", "data": data})
    return Response(body, 200, content_type="application/json")


async def _value(name: str) -> str | None:
    """A parameter from the form body, else the query string (Go's FormValue)."""
    form = await request.form
    value = form.get(name)
    return value if value is not None else request.args.get(name)


async def _values(name: str) -> list[str]:
    """Every value of a repeated parameter (`match[]`), the form body's first (Go's Form)."""
    return [*(await request.form).getlist(name), *request.args.getlist(name)]


def _documented(
    app: Quart,
    path: str,
    model: type[BaseModel] | None,
    methods: tuple[str, ...],
    handler: Callable[..., Awaitable[Any]],
) -> None:
    """Register `handler` for each method, documented with its parameters and both envelopes."""
    for method in methods:

        async def route(**path_parameters: str) -> Response:
            return await _enveloped(lambda: handler(**path_parameters))

        route.__name__ = f"prometheus_{method.lower()}_{handler.__name__}"
        route.__doc__ = handler.__doc__
        documented = document_response(PromErrorOut, 400)(route)
        documented = document_response(PromErrorOut, 422)(documented)
        documented = document_response(PromErrorOut, 503)(documented)
        documented = document_response(PromSuccessOut, 200)(documented)
        if model is not None and method == "POST":
            documented = document_request(model, source=DataSource.FORM)(documented)
        elif model is not None:
            documented = document_querystring(model)(documented)
        app.route(path, methods=[method])(documented)


def prometheus_routes(app: Quart, service: AsyncMetricService) -> None:
    promql = PromQL(service.storage, service.clock)

    async def query() -> Any:
        """Evaluate a PromQL expression at one time (Prometheus's instant query)."""
        return await promql.query(await _value("query"), await _value("time"), await _value("timeout"))

    async def query_range() -> Any:
        """Evaluate a PromQL expression at every step from start to end (a range query)."""
        return await promql.query_range(
            await _value("query"),
            await _value("start"),
            await _value("end"),
            await _value("step"),
            await _value("timeout"),
        )

    async def series() -> Any:
        """The series (name and labels) that match[] selects."""
        return await promql.series(await _values("match[]"), await _value("start"), await _value("end"))

    async def labels() -> Any:
        """The label names of the series (`__name__` among them)."""
        return await promql.label_names(await _values("match[]"), await _value("start"), await _value("end"))

    async def label_values(name: str) -> Any:
        """The values of one label; `__name__`'s are the metric names."""
        matches = await _values("match[]")
        return await promql.label_values(name, matches, await _value("start"), await _value("end"))

    async def metadata() -> Any:
        """Each metric name's type, unit and description (as help)."""
        limits = await _value("limit"), await _value("limit_per_metric")
        return await promql.metadata(await _value("metric"), *limits)

    async def buildinfo() -> Any:
        """The Prometheus version whose API and PromQL semantics this server follows (for Grafana)."""
        return {
            "version": PROMETHEUS_VERSION,
            "revision": "metricstream",
            "branch": "metricstream",
            "buildUser": "metricstream",
            "buildDate": "",
            "goVersion": "",
        }

    both = ("GET", "POST")
    _documented(app, f"{PREFIX}/query", QueryIn, both, query)
    _documented(app, f"{PREFIX}/query_range", QueryRangeIn, both, query_range)
    _documented(app, f"{PREFIX}/series", SeriesIn, both, series)
    _documented(app, f"{PREFIX}/labels", LabelsIn, both, labels)
    _documented(app, f"{PREFIX}/label/<name>/values", LabelsIn, ("GET",), label_values)
    _documented(app, f"{PREFIX}/metadata", MetadataIn, ("GET",), metadata)
    _documented(app, f"{PREFIX}/status/buildinfo", None, ("GET",), buildinfo)
