"""What `/openapi.json` says the API answers: the response models, the errors every route of a kind can
give, and the stream's operation, which bypasses the framework and so is written out by hand.

Request bodies and queries are documented by the models that validate them (`domain/validation.py`);
these are the shapes of answers, which the routes build with orjson rather than through the models.
"""

from __future__ import annotations

import copy
from typing import Any

from pydantic import BaseModel, Field, RootModel
from pydantic.json_schema import models_json_schema

from ..domain.validation import AnyReadingIn, ReadingIn, reading_model
from ..wire import EVENT_TYPES, STREAM_PATH
from .access import Access, Need
from .gate import need_of

__all__ = [
    "BODY_ERRORS",
    "ERROR_RESPONSE",
    "STORE_ERRORS",
    "STREAM_OPERATION",
    "READINGS_EXPORT_PATHS",
    "complete_document",
    "move_response_headers",
    "reading_batch_model",
    "uuid_path_parameter",
    "BatchErrorOut",
    "BucketOut",
    "ErrorOut",
    "ExportRowList",
    "HealthOut",
    "LastEventHeader",
    "MetricList",
    "MetricOut",
    "PageHeaders",
    "AnyReadingBatchIn",
    "ReadingBatchIn",
    "ReadingBatchOut",
    "ReadingList",
    "ReadingOut",
    "RetryAfterHeader",
    "SessionOut",
]


class MetricOut(BaseModel):
    id: str = Field(json_schema_extra={"format": "uuid"})
    name: str
    input_frequency: float | None
    labels: dict[str, str] = Field(
        description="Label names to values; with the name, what identifies the metric."
    )
    unit: str | None
    description: str | None


class ReadingOut(BaseModel):
    id: str = Field(json_schema_extra={"format": "uuid"})
    metric_id: str = Field(json_schema_extra={"format": "uuid"})
    value: float
    timestamp: str = Field(json_schema_extra={"format": "date-time"})


class MetricWithReadingsOut(MetricOut):
    readings: list[ReadingOut] | None = None
    readings_truncated: bool | None = Field(
        None, description="With with_readings: whether the metric has older readings than those given."
    )


class MetricList(RootModel[list[MetricWithReadingsOut]]):
    pass


class BucketOut(BaseModel):
    """The readings of one step of time (`GET /metrics/{id}/readings?step=`)."""

    start: str = Field(
        json_schema_extra={"format": "date-time"}, description="A multiple of step since 1970."
    )
    count: int
    min: float
    max: float
    avg: float
    first: float
    last: float


class ReadingList(RootModel[list[ReadingOut | BucketOut]]):
    """Readings (with order=desc, newest first), or with `step` buckets; at most `limit`."""


class ExportRowOut(BaseModel):
    """A row of an export (`GET /readings`): the metric's columns, then a reading's or a bucket's."""

    metric: str = Field(description="The metric's name.")
    metric_id: str = Field(json_schema_extra={"format": "uuid"})
    labels: str = Field(description="As labels= writes them, sorted by name (host=a,dc=x); empty for none.")
    unit: str | None
    description: str | None


class ReadingRowOut(ExportRowOut):
    timestamp: str = Field(json_schema_extra={"format": "date-time"})
    value: float


class BucketRowOut(ExportRowOut):
    start: str = Field(
        json_schema_extra={"format": "date-time"}, description="A multiple of step since 1970."
    )
    count: int
    min: float
    max: float
    avg: float
    first: float
    last: float


class ExportRowList(RootModel[list[ReadingRowOut | BucketRowOut]]):
    """Every reading of the chosen metrics (with `step`, every bucket), by metric, then by time."""


class HealthOut(BaseModel):
    status: str
    clients: int = Field(description="Connected SSE clients.")
    events: int = Field(description="Events retained for replay.")


class ErrorOut(BaseModel):
    error: str


class ItemError(BaseModel):
    index: int
    error: str


class BatchErrorOut(BaseModel):
    error: str
    errors: list[ItemError] = Field(default_factory=list, description="One entry per rejected item.")


class ReadingBatchIn(BaseModel):
    readings: list[ReadingIn] = Field(description="Up to max_batch (10,000 by default) readings.")


class AnyReadingBatchIn(BaseModel):
    readings: list[AnyReadingIn] = Field(description="Up to max_batch (10,000 by default) readings.")


def reading_batch_model(positive_only: bool = True) -> type[BaseModel]:
    """The batch body as documented for the `positive_only` setting."""
    return ReadingBatchIn if positive_only else AnyReadingBatchIn


class ReadingBatchOut(BaseModel):
    readings: list[ReadingOut]


class LastEventHeader(BaseModel):
    x_last_event_id: str = Field(
        description="Newest event id when this was read: resume the stream from it "
        "(the nil UUID when no event exists yet)."
    )


class PageHeaders(LastEventHeader):
    x_truncated: str = Field(
        description="true if more match than the answer holds (limit cut it), else false."
    )
    link: str = Field(
        description='Only when cut: the next page, `<?...&cursor=...>; rel="next"`, relative to this URL.'
    )


class SessionOut(BaseModel):
    """The dashboard's sign-in state."""

    required: bool = Field(description="Reads and the stream need a token (subscribe_token is set).")
    signed_in: bool = Field(description="This request's session cookie grants them.")


class RetryAfterHeader(BaseModel):
    retry_after: str = Field(description="Seconds until this address may try again.")


def complete_document(document: dict[str, Any], access: Access, positive_only: bool) -> dict[str, Any]:
    """The generated document with what the routes cannot declare: who may call each operation (by the
    same rules the gate applies, for this server's tokens), the errors any route of a kind can answer,
    the answers that are not JSON, the stream and the two write routes, which bypass the framework, and
    every body schema as a named component. Status codes are ints here, as quart-schema keys them, until
    it is serialized."""
    paths = document["paths"]
    paths[STREAM_PATH] = copy.deepcopy(STREAM_OPERATION)
    paths["/openapi.json"] = copy.deepcopy(DOCUMENT_OPERATION)
    write_paths, write_schemas = write_operations(positive_only)
    paths.update(write_paths)
    foreign_paths, foreign_schemas = foreign_operations()
    paths.update(foreign_paths)
    document.setdefault("components", {}).setdefault("schemas", {}).update(write_schemas | foreign_schemas)
    for path, item in paths.items():
        for method, operation in item.items():
            if path in NON_JSON_ANSWERS:
                operation["responses"] = {**copy.deepcopy(NON_JSON_ANSWERS[path]), **operation["responses"]}
            if path in READINGS_EXPORT_PATHS:
                _declare_export_formats(operation["responses"][200])
            if "requestBody" in operation:  # no body at all is refused like any non-JSON one
                operation["requestBody"]["required"] = True
            _declare_access(operation, access, need_of(method.upper(), path.replace("{metric_id}", "x")))
            body_errors = PROMETHEUS_BODY_ERRORS if path.startswith("/api/v1/") else BODY_ERRORS
            errors = {
                **(body_errors if "requestBody" in operation else {}),
                **(STORE_ERRORS if path.startswith(("/metrics", "/readings")) else {}),
                **(HOST_ERRORS if access.allowed_hosts is not None else {}),
            }
            for status, description in errors.items():
                operation["responses"].setdefault(status, {"description": description, **ERROR_RESPONSE})
    deletion = paths.get("/metrics/{metric_id}", {}).get("delete")
    if deletion is not None:  # answered with no body, which quart-schema cannot declare
        deletion["responses"].pop(200, None)
        deletion["responses"][204] = {"description": "Deleted; announced as `metric_deleted`."}
    components = document.setdefault("components", {})
    components["securitySchemes"] = copy.deepcopy(SECURITY_SCHEMES)
    schemas = components.setdefault("schemas", {})
    schemas.setdefault("ErrorOut", ErrorOut.model_json_schema())  # the errors above refer to it
    _name_body_schemas(paths, schemas)
    return document


def write_operations(positive_only: bool) -> tuple[dict[str, Any], dict[str, Any]]:
    """The two write routes (`ingest.py`) as operations, with the schemas they name: their bodies come
    from the models that validate them, for the `positive_only` setting."""
    reading, batch = reading_model(positive_only), reading_batch_model(positive_only)
    models: list[type[BaseModel]] = [reading, batch, ReadingOut, ReadingBatchOut, BatchErrorOut, ErrorOut]
    _, definitions = models_json_schema(
        [(model, "validation") for model in models], ref_template="#/components/schemas/{model}"
    )

    def ref(model: type[BaseModel]) -> dict[str, Any]:
        return {
            "content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{model.__name__}"}}}
        }

    def operation(
        summary: str, description: str, body: type[BaseModel], answer: type[BaseModel]
    ) -> dict[str, Any]:
        errors = BatchErrorOut if body is batch else ErrorOut
        return {
            "post": {
                "summary": summary,
                "description": description,
                "requestBody": {"required": True, **ref(body)},
                "responses": {
                    201: {"description": "Recorded.", **ref(answer)},
                    400: {"description": "Bad input; nothing is stored.", **ref(errors)},
                    404: {"description": "A metric_id no metric has; nothing is stored.", **ref(errors)},
                    409: {
                        "description": "A name several metrics have, or max_metrics reached.",
                        **ref(ErrorOut),
                    },
                },
            }
        }

    paths = {
        "/metrics/readings": operation(
            "Record a reading.",
            "Of a metric given by id, or by name (`metric`: created first, and announced, if no metric has "
            "that name); announced as a `metric_reading_created` event.",
            reading,
            ReadingOut,
        ),
        "/metrics/readings/batch": operation(
            "Record many readings at once, all or nothing.",
            "Up to `max_batch` readings, their metrics given by id or name (each new name creating a "
            "metric first); one event per reading.",
            batch,
            ReadingBatchOut,
        ),
    }
    return paths, definitions["$defs"]


class LineError(BaseModel):
    line: int = Field(description="The line's number in the body, from 1.")
    error: str


class LinesErrorOut(BaseModel):
    error: str
    errors: list[LineError] = Field(default_factory=list, description="One entry per refused line.")


class SampleError(BaseModel):
    sample: int = Field(
        description="The sample's position in the request, from 1 (staleness markers counted)."
    )
    error: str = Field(description="The sample's series, then why it was refused.")


class SamplesErrorOut(BaseModel):
    error: str
    errors: list[SampleError] = Field(default_factory=list, description="One entry per refused sample.")


class OtlpPartialSuccess(BaseModel):
    rejectedDataPoints: str | int | None = None
    errorMessage: str | None = None


class OtlpMetricsResponse(BaseModel):
    """OTLP's ExportMetricsServiceResponse in its JSON form: empty on full success."""

    partialSuccess: OtlpPartialSuccess | None = None


class OtlpMetricsRequest(BaseModel):
    """OTLP's ExportMetricsServiceRequest in its JSON form (opentelemetry-proto)."""

    resourceMetrics: list[dict[str, Any]] = Field(default_factory=list)


def foreign_operations() -> tuple[dict[str, Any], dict[str, Any]]:
    """The foreign formats' write routes (`foreign.py`), line protocol and OTLP, as operations, with the
    schemas they name."""
    models: list[type[BaseModel]] = [LinesErrorOut, SamplesErrorOut, OtlpMetricsRequest, OtlpMetricsResponse]
    _, definitions = models_json_schema(
        [(model, "validation") for model in models], ref_template="#/components/schemas/{model}"
    )

    def ref(model: type[BaseModel]) -> dict[str, Any]:
        return {"schema": {"$ref": f"#/components/schemas/{model.__name__}"}}

    lines_body = {"required": True, "content": {"text/plain": {"schema": {"type": "string"}}}}
    refused = {
        400: {
            "description": "A refused line (each named with its number) or a bad precision; nothing stored.",
            "content": {"application/json": ref(LinesErrorOut)},
        },
        409: {"description": "A name several metrics have, or max_metrics reached.", **ERROR_RESPONSE},
    }

    def line_protocol(summary: str, description: str, precisions: list[str]) -> dict[str, Any]:
        precision = {"type": "string", "enum": precisions}
        return {
            "post": {
                "summary": summary,
                "description": description + " Plain or `Content-Encoding: gzip`; docs/ingest.md.",
                "parameters": [
                    {"name": "precision", "in": "query", "required": False, "schema": precision},
                    {"name": "bucket", "in": "query", "required": False, "schema": {"type": "string"}},
                    {"name": "db", "in": "query", "required": False, "schema": {"type": "string"}},
                ],
                "requestBody": copy.deepcopy(lines_body),
                "responses": {204: {"description": "Every line recorded."}, **copy.deepcopy(refused)},
            }
        }

    otlp_answer = {
        "application/x-protobuf": {"schema": {"type": "string", "format": "binary"}},
        "application/json": ref(OtlpMetricsResponse),
    }
    paths = {
        "/api/v2/write": line_protocol(
            "Record Influx line protocol, as InfluxDB 2 takes it.",
            "One reading per numeric field, all lines or none (InfluxDB 2's API, `Token` authorization).",
            ["ns", "us", "ms", "s"],
        ),
        "/write": line_protocol(
            "Record Influx line protocol, as InfluxDB 1 takes it.",
            "As /api/v2/write, with InfluxDB 1's precision names (basic authorization, the token as its "
            "password).",
            ["n", "ns", "u", "us", "ms", "s", "m", "h"],
        ),
        "/v1/metrics": {
            "post": {
                "summary": "Record OTLP/HTTP metrics.",
                "description": "Gauges and sums as readings, histograms and summaries as _count and _sum; "
                "what cannot be recorded is counted in partial_success. Protobuf or JSON; docs/ingest.md.",
                "requestBody": {
                    "required": True,
                    "content": {
                        "application/x-protobuf": {"schema": {"type": "string", "format": "binary"}},
                        "application/json": ref(OtlpMetricsRequest),
                    },
                },
                "responses": {
                    200: {
                        "description": "Recorded, but for what partial_success counts.",
                        "content": otlp_answer,
                    },
                    400: {"description": "Not an OTLP metrics request; nothing is stored.", **ERROR_RESPONSE},
                },
            }
        },
        "/api/v1/write": remote_write_operation(ref(SamplesErrorOut)),
    }
    return paths, definitions["$defs"]


def remote_write_operation(samples_error: dict[str, Any]) -> dict[str, Any]:
    """`POST /api/v1/write`, Prometheus remote write 1.0 (`foreign.py`)."""
    binary = {"schema": {"type": "string", "format": "binary"}}
    encoding = {"type": "string", "enum": ["snappy"]}
    return {
        "post": {
            "summary": "Record Prometheus remote write 1.0.",
            "description": "A snappy-compressed protobuf prometheus.WriteRequest, as Prometheus' "
            "remote_write sends it: each sample a reading of the metric named by __name__ with the other "
            "labels, every sample or none; staleness markers skipped. docs/ingest.md.",
            "parameters": [
                {"name": "Content-Encoding", "in": "header", "required": True, "schema": encoding}
            ],
            "requestBody": {"required": True, "content": {"application/x-protobuf": binary}},
            "responses": {
                204: {"description": "Every sample recorded."},
                400: {
                    "description": "Not snappy, not a WriteRequest, a series without a name, more samples "
                    "than max_batch, or refused samples (each named with its series); nothing is stored.",
                    "content": {"application/json": samples_error},
                },
                409: {
                    "description": "A name several metrics have, or max_metrics reached.",
                    **ERROR_RESPONSE,
                },
                413: {
                    "description": "The body, or what it decompresses to, is larger than a batch's limit.",
                    **ERROR_RESPONSE,
                },
                415: {
                    "description": "Not protobuf, not snappy, or remote write 2.0's message.",
                    **ERROR_RESPONSE,
                },
            },
        }
    }


def _declare_export_formats(answer: dict[str, Any]) -> None:
    """A readings export's 200: its other formats' media types, and the file name it comes with."""
    answer["content"].update(copy.deepcopy(READINGS_EXPORT_CONTENT))
    answer.setdefault("headers", {})["Content-Disposition"] = copy.deepcopy(READINGS_EXPORT_FILE_HEADER)


def _declare_access(operation: dict[str, Any], access: Access, need: Need) -> None:
    """The operation's security requirement, and its 401 and 429, when this server guards it."""
    if not access.guards(need):
        operation["security"] = []  # open on this server
        return
    operation["security"] = [{scheme: []} for scheme in _SCHEMES[need]]
    responses = operation["responses"]
    responses.setdefault(401, {"description": f"No valid token for {need.value}.", **ERROR_RESPONSE})
    responses.setdefault(
        429,
        {
            "description": "Too many wrong tokens from this address: try again after Retry-After seconds.",
            "headers": {"Retry-After": {"schema": {"type": "integer"}}},
            **ERROR_RESPONSE,
        },
    )


def _name_body_schemas(paths: dict[str, Any], schemas: dict[str, Any]) -> None:
    """Every request and answer body schema that has a title, moved into components as a reference."""
    for item in paths.values():
        for operation in item.values():
            bodies = [operation.get("requestBody", {}), *operation["responses"].values()]
            for body in bodies:
                for media in body.get("content", {}).values():
                    schema = media.get("schema", {})
                    title = schema.get("title")
                    if title and "$ref" not in schema:
                        schemas.setdefault(title, schema)
                        media["schema"] = {"$ref": f"#/components/schemas/{title}"}


def uuid_path_parameter(parameter: dict[str, Any]) -> dict[str, Any]:
    """A `metric_id` path part: a plain string route part, so that a bad id gets our 400, not a 404."""
    parameter["schema"] = {"type": "string", "format": "uuid"}
    parameter["description"] = "The metric's id (a UUID; anything else is answered with 400)."
    return parameter


def move_response_headers(response: dict[str, Any]) -> dict[str, Any]:
    """quart-schema files response headers under "content", where OpenAPI expects media types."""
    headers = response["content"].pop("headers", None)
    if headers is not None:
        response["headers"] = headers
    return response


ERROR_RESPONSE = {"content": {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorOut"}}}}
# From _json_body, and from Quart for a body over the largest limit.
BODY_ERRORS = {
    413: "The body is larger than the limit (max_body; a batch may be 16 times as large).",
    415: "The body is not JSON: Content-Type must be application/json (or a +json type).",
}
BODY_ERRORS[408] = "The body did not arrive within 60 seconds (the connection is closed)."
# A Prometheus query's form body: any content type is read as a form (an empty one if it is none).
PROMETHEUS_BODY_ERRORS = {status: text for status, text in BODY_ERRORS.items() if status != 415}
STORE_ERRORS = {503: "The store is unavailable (e.g. Redis is down), or the server is shutting down."}
HOST_ERRORS = {403: "The Host header names a host this server does not answer to (allowed_hosts)."}
SECURITY_SCHEMES: dict[str, Any] = {
    "bearer": {
        "type": "http",
        "scheme": "bearer",
        "description": "token for everything; subscribe_token for reads and the stream (docs/security.md).",
    },
    "access_token": {
        "type": "apiKey",
        "in": "query",
        "name": "access_token",
        "description": "The stream only, for a browser's EventSource, which cannot send headers.",
    },
    "session": {
        "type": "apiKey",
        "in": "cookie",
        "name": "metricstream_session",
        "description": "The dashboard's sign-in cookie (POST /dashboard/session): reads and the stream only.",
    },
}
_SCHEMES = {
    Need.READ: ("bearer", "session"),
    Need.STREAM: ("bearer", "access_token", "session"),
    Need.SCRAPE: ("bearer",),
    Need.WRITE: ("bearer",),
}
_TEXT = {"schema": {"type": "string"}}
NON_JSON_ANSWERS: dict[str, dict[int, Any]] = {
    "/": {200: {"description": "The dashboard's page.", "content": {"text/html": _TEXT}}},
    "/dashboard/{name}": {
        200: {"description": "The file.", "content": {"text/javascript": _TEXT, "text/css": _TEXT}},
        304: {"description": "Not modified (If-None-Match named its ETag)."},
        404: {"description": "No such file.", **ERROR_RESPONSE},
    },
    "/-/metrics": {
        200: {
            "description": "Prometheus' text format, or OpenMetrics on request.",
            "content": {"text/plain": _TEXT, "application/openmetrics-text": _TEXT},
        }
    },
    "/metrics/export": {
        200: {
            "description": "Prometheus' text format, or OpenMetrics on request (docs/prometheus.md).",
            "content": {"text/plain": _TEXT, "application/openmetrics-text": _TEXT},
        }
    },
}
# The routes that export (`exports.py`), and the formats their 200 may be in besides JSON.
READINGS_EXPORT_PATHS = frozenset({"/metrics/{metric_id}/readings", "/readings"})
_BINARY = {"schema": {"type": "string", "format": "binary"}}
READINGS_EXPORT_CONTENT: dict[str, Any] = {
    "text/csv": _TEXT,
    "application/vnd.apache.arrow.stream": _BINARY,
    "application/vnd.apache.parquet": _BINARY,
}
READINGS_EXPORT_FILE_HEADER: dict[str, Any] = {
    "description": 'With csv, arrow or parquet: attachment; filename="readings.csv" (.arrows, .parquet).',
    "schema": {"type": "string"},
}
DOCUMENT_OPERATION: dict[str, Any] = {
    "get": {
        "summary": "This document.",
        "responses": {200: {"description": "OpenAPI 3.", "content": {"application/json": {"schema": {}}}}},
    }
}
STREAM_OPERATION: dict[str, Any] = {
    "get": {
        "summary": "Live events as Server-Sent Events, with replay after Last-Event-ID.",
        "description": "The stream's frames and rules: docs/protocol.md.",
        "parameters": [
            {"name": "Last-Event-ID", "in": "header", "schema": {"type": "string"}},
            {"name": "last_event_id", "in": "query", "schema": {"type": "string"}},
            {
                "name": "types",
                "in": "query",
                "style": "form",
                # One comma-separated value: types=metric_created,metric_reading_created.
                "explode": False,
                "schema": {"type": "array", "items": {"enum": sorted(EVENT_TYPES)}, "minItems": 1},
                "description": "Only these event types (replay included).",
            },
            {
                "name": "metric_id",
                "in": "query",
                "schema": {"type": "string", "format": "uuid"},
                "description": "Only this metric's readings and its deletion (replay included).",
            },
            {
                "name": "labels",
                "in": "query",
                "schema": {"type": "string"},
                "examples": {"one": {"value": "host=a"}, "several": {"value": "host=a,dc=x"}},
                "description": "Only events about metrics whose labels include all these name=value pairs "
                "(their creation, readings and deletion; replay included; metrics created later too). "
                "Pairs separated by commas; several labels= parameters add pairs; in a value, a comma "
                "is written \\, and a backslash \\\\.",
            },
            {
                "name": "start",
                "in": "query",
                "schema": {"enum": ["now", "earliest"], "default": "now"},
                "description": "Without Last-Event-ID: live events only (now), or every retained event "
                "first (earliest), never a reset.",
            },
        ],
        "responses": {
            200: {
                "description": "An endless text/event-stream.",
                "content": {"text/event-stream": {"schema": {"type": "string"}}},
            },
            400: {"description": "Bad filter or start.", **ERROR_RESPONSE},
            503: {"description": "Shutting down.", **ERROR_RESPONSE},
        },
    }
}
