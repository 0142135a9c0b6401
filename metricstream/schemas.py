"""What `/openapi.json` says the API answers: the response models, the errors every route of a kind can
give, and the stream's operation, which bypasses the framework and so is written out by hand.

Request bodies and queries are documented by the models that validate them (`models.py`); these are the
shapes of answers, which the routes build with orjson rather than through the models.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field, RootModel

from .models import EVENT_TYPES, ReadingIn

__all__ = [
    "BODY_ERRORS",
    "ERROR_RESPONSE",
    "STORE_ERRORS",
    "STREAM_OPERATION",
    "BatchErrorOut",
    "ErrorOut",
    "HealthOut",
    "LastEventHeader",
    "MetricList",
    "MetricOut",
    "ReadingBatchIn",
    "ReadingBatchOut",
    "ReadingList",
    "ReadingOut",
]


class MetricOut(BaseModel):
    id: str = Field(json_schema_extra={"format": "uuid"})
    name: str
    input_frequency: float | None


class ReadingOut(BaseModel):
    id: str = Field(json_schema_extra={"format": "uuid"})
    metric_id: str = Field(json_schema_extra={"format": "uuid"})
    value: float
    timestamp: str = Field(json_schema_extra={"format": "date-time"})


class MetricWithReadingsOut(MetricOut):
    readings: list[ReadingOut] | None = None


class MetricList(RootModel[list[MetricWithReadingsOut]]):
    pass


class ReadingList(RootModel[list[ReadingOut]]):
    pass


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


class ReadingBatchOut(BaseModel):
    readings: list[ReadingOut]


class LastEventHeader(BaseModel):
    x_last_event_id: str = Field(
        description="Newest event id when this was read: resume the stream from it "
        "(the nil UUID when no event exists yet)."
    )


ERROR_RESPONSE = {"content": {"application/json": {"schema": ErrorOut.model_json_schema()}}}
BODY_ERRORS = {  # from _json_body, and from Quart for a body over the largest limit
    413: "The body is larger than the limit (max_body; a batch may be 16 times as large).",
    415: "The body is not JSON: Content-Type must be application/json (or a +json type).",
}
STORE_ERRORS = {503: "The store is unavailable (e.g. Redis is down), or the server is shutting down."}
STREAM_OPERATION: dict[str, Any] = {
    "get": {
        "summary": "Live events as Server-Sent Events, with replay after Last-Event-ID.",
        "parameters": [
            {"name": "Last-Event-ID", "in": "header", "schema": {"type": "string"}},
            {"name": "last_event_id", "in": "query", "schema": {"type": "string"}},
            {
                "name": "types",
                "in": "query",
                "style": "form",
                "explode": False,  # one comma-separated value: types=metric_created,metric_reading_created
                "schema": {"type": "array", "items": {"enum": sorted(EVENT_TYPES)}, "minItems": 1},
                "description": "Only these event types (replay included).",
            },
            {
                "name": "metric_id",
                "in": "query",
                "schema": {"type": "string", "format": "uuid"},
                "description": "Only this metric's readings (replay included).",
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
            "200": {
                "description": "An endless text/event-stream.",
                "content": {"text/event-stream": {"schema": {"type": "string"}}},
            },
            "400": {"description": "Bad filter or start.", **ERROR_RESPONSE},
            "503": {"description": "Shutting down.", **ERROR_RESPONSE},
        },
    }
}
