"""The HTTP API end to end: every status code and validation rule, over real HTTP to a real hypercorn.

Each test talks to a fresh `Hub` (Quart on hypercorn in a background thread, 127.0.0.1, free port)
through the `http` fixture. Error responses are always checked for their exact shape
(`{"error": <non-empty str>}`, JSON content type) and, where the message is part of the contract, for
the message itself; rejected requests are checked to leave no trace (no metric, no reading, no event).
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from metricstream import Hub, MetricService, MetricStreamError, NotFoundError, ValidationError
from metricstream.models import MetricIn, ReadingIn, ReadingsQuery, new_id

OpenStream = Callable[..., Any]  # conftest.open_stream: (url, query="", headers=...) -> RawStream

NIL_UUID = "00000000-0000-0000-0000-000000000000"
# fixed ids keep test ids stable from run to run
UUID7 = "01a21b32-2870-78a3-85f4-5b37387bfd17"
UUID4 = "4b3e9f52-8d1c-4a6e-9f0b-2c7d5e8a1b3f"
UUID1 = "6ba7b810-9dad-11d1-80b4-00c04fd430c8"
MAX_BODY = 1024 * 1024
JSON = {"content-type": "application/json"}

NAME_MESSAGE = "name must be a string of 1 to 200 characters (after trimming spaces)"
FREQUENCY_MESSAGE = "input_frequency must be a number >= 0 (seconds between readings)"
METRIC_ID_MESSAGE = "metric_id must be a UUIDv7 string"
VALUE_MESSAGE = "value must be a finite number greater than 0"
RFC3339_RULE = "must be an RFC 3339 date-time with an offset, e.g. 2026-01-01T12:00:00Z"
TIMESTAMP_MESSAGE = f"timestamp {RFC3339_RULE}"
LIMIT_MESSAGE = "limit must be an integer from 1 to 10000"
READINGS_LIMIT_MESSAGE = "readings_limit must be an integer from 1 to 10000"
NOT_OBJECT_MESSAGE = "request body must be a JSON object"
BAD_JSON_PREFIX = "request body is not valid JSON: "
CONTENT_TYPE_MESSAGE = "Content-Type must be application/json"
TOO_LARGE_MESSAGE = f"request body is larger than {MAX_BODY} bytes"


# --- helpers ------------------------------------------------------------------------------------


def assert_error(response: httpx.Response, status: int, message: str | None = None) -> str:
    """`response` is a JSON `{"error": ...}` with `status`; returns the message."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].split(";")[0] == "application/json"
    body = response.json()
    assert isinstance(body, dict)
    assert list(body) == ["error"]
    error = body["error"]
    assert isinstance(error, str)
    assert error.strip()
    assert "Traceback" not in error
    if message is not None:
        assert error == message
    return error


def assert_uuid7(text: object) -> None:
    assert isinstance(text, str)
    parsed = uuid.UUID(text)
    assert parsed.version == 7
    assert str(parsed) == text  # canonical: lower case, hyphenated


def post_metric(http: httpx.Client, name: str = "CPU Temperature", **extra: Any) -> dict[str, Any]:
    response = http.post("/metrics", json={"name": name, **extra})
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


def post_reading(
    http: httpx.Client, metric_id: str, value: float = 1.0, timestamp: str | None = None
) -> dict[str, Any]:
    payload: dict[str, Any] = {"metric_id": metric_id, "value": value}
    if timestamp is not None:
        payload["timestamp"] = timestamp
    response = http.post("/metrics/readings", json=payload)
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


def parse_z(text: str) -> datetime:
    """A timestamp we sent: RFC 3339 in UTC, microseconds, ending in `Z`."""
    assert text.endswith("Z")
    moment = datetime.strptime(text, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)
    return moment


def raw_post(http: httpx.Client, path: str, content: bytes, **headers: str) -> httpx.Response:
    return http.post(path, content=content, headers={**JSON, **headers})


@dataclass(frozen=True)
class State:
    """Everything a rejected request must leave untouched."""

    metrics: Any
    events: int
    last_event_id: str


def state(http: httpx.Client) -> State:
    listing = http.get("/metrics", params={"with_readings": "true"})
    assert listing.status_code == 200
    health = http.get("/healthz").json()
    return State(listing.json(), health["events"], listing.headers["x-last-event-id"])


# --- POST /metrics ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "stored"),
    [
        ("CPU Temperature", "CPU Temperature"),
        ("  padded \t\n", "padded"),
        ("x", "x"),
        ("x" * 200, "x" * 200),
        ("   " + "y" * 200 + "\n", "y" * 200),  # the limit applies after trimming
        ("inner  spaces kept", "inner  spaces kept"),
        ("Température °C ☃", "Température °C ☃"),
    ],
)
def test_create_metric_201_trims_name_and_assigns_uuid7(http: httpx.Client, name: str, stored: str) -> None:
    response = http.post("/metrics", json={"name": name})
    assert response.status_code == 201
    assert response.headers["content-type"] == "application/json"
    body = response.json()
    assert set(body) == {"id", "name", "input_frequency"}
    assert_uuid7(body["id"])
    assert body["name"] == stored
    assert body["input_frequency"] is None
    assert http.get(f"/metrics/{body['id']}").json() == body


@pytest.mark.parametrize("frequency", [0, 0.0, 0.25, 1, 60, 86400.5, 1e308])
def test_create_metric_accepts_input_frequency(http: httpx.Client, frequency: float) -> None:
    body = post_metric(http, input_frequency=frequency)
    assert body["input_frequency"] == frequency
    assert isinstance(body["input_frequency"], float | int)


def test_create_metric_null_input_frequency_is_none(http: httpx.Client) -> None:
    body = post_metric(http, input_frequency=None)
    assert body["input_frequency"] is None


def test_create_metric_ignores_unknown_fields_and_client_ids(http: httpx.Client) -> None:
    chosen = new_id()
    body = post_metric(http, id=chosen, extra="ignored")
    assert body["id"] != chosen
    assert set(body) == {"id", "name", "input_frequency"}


def test_create_metric_ids_are_distinct_and_increasing(http: httpx.Client) -> None:
    ids = [post_metric(http, f"m{i}")["id"] for i in range(20)]
    assert len(set(ids)) == 20
    assert ids == sorted(ids)


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        ({"name": "x" * 201}, NAME_MESSAGE),
        ({"name": " " + "x" * 201 + " "}, NAME_MESSAGE),
        ({"name": ""}, NAME_MESSAGE),
        ({"name": "     "}, NAME_MESSAGE),
        ({"name": " \t\r\n "}, NAME_MESSAGE),
        ({"name": 5}, NAME_MESSAGE),
        ({"name": 1.5}, NAME_MESSAGE),
        ({"name": True}, NAME_MESSAGE),
        ({"name": None}, NAME_MESSAGE),
        ({"name": ["CPU"]}, NAME_MESSAGE),
        ({"name": {"text": "CPU"}}, NAME_MESSAGE),
        ({}, "name is required"),
        ({"input_frequency": 1}, "name is required"),
        ({"name": "CPU", "input_frequency": -1}, FREQUENCY_MESSAGE),
        ({"name": "CPU", "input_frequency": -0.001}, FREQUENCY_MESSAGE),
        ({"name": "CPU", "input_frequency": -1e308}, FREQUENCY_MESSAGE),
        ({"name": "CPU", "input_frequency": "5"}, FREQUENCY_MESSAGE),
        ({"name": "CPU", "input_frequency": "NaN"}, FREQUENCY_MESSAGE),
        ({"name": "CPU", "input_frequency": "Infinity"}, FREQUENCY_MESSAGE),
        ({"name": "CPU", "input_frequency": True}, FREQUENCY_MESSAGE),
        ({"name": "CPU", "input_frequency": False}, FREQUENCY_MESSAGE),
        ({"name": "CPU", "input_frequency": [1]}, FREQUENCY_MESSAGE),
        ({"name": "CPU", "input_frequency": {}}, FREQUENCY_MESSAGE),
        ({"name": "", "input_frequency": -1}, f"{NAME_MESSAGE}; {FREQUENCY_MESSAGE}"),
    ],
)
def test_create_metric_400(http: httpx.Client, payload: dict[str, Any], message: str) -> None:
    before = state(http)
    assert_error(http.post("/metrics", json=payload), 400, message)
    assert state(http) == before


@pytest.mark.parametrize("token", ["NaN", "Infinity", "-Infinity", "1e999", "-1e999", "1E400"])
def test_create_metric_rejects_non_finite_frequency_tokens(http: httpx.Client, token: str) -> None:
    """Python's json module would accept NaN/Infinity; we must not (and 1e999 overflows to inf)."""
    body = f'{{"name": "CPU", "input_frequency": {token}}}'.encode()
    before = state(http)
    message = assert_error(raw_post(http, "/metrics", body), 400)
    assert message.startswith(BAD_JSON_PREFIX)
    assert state(http) == before


# --- GET /metrics -------------------------------------------------------------------------------


def test_list_metrics_empty(http: httpx.Client) -> None:
    response = http.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    assert response.json() == []


def test_list_metrics_in_creation_order(http: httpx.Client) -> None:
    # names sort differently from creation order, so a sorted listing would fail
    created = [post_metric(http, name, input_frequency=i) for i, name in enumerate("dbeac")]
    response = http.get("/metrics")
    assert response.status_code == 200
    assert response.json() == created  # and no "readings" key without the flag


@pytest.mark.parametrize("flag", ["true", "TRUE", "True", "1", "yes"])
def test_list_metrics_with_readings_embeds_ascending_readings(http: httpx.Client, flag: str) -> None:
    first = post_metric(http, "first")
    second = post_metric(http, "second")
    stamps = ["2026-01-01T00:00:03Z", "2026-01-01T00:00:01Z", "2026-01-01T00:00:02Z"]
    readings = [post_reading(http, first["id"], i + 1.5, stamp) for i, stamp in enumerate(stamps)]
    other = post_reading(http, second["id"], 9.0, "2025-06-01T00:00:00Z")
    response = http.get("/metrics", params={"with_readings": flag})
    assert response.status_code == 200
    ascending = sorted(readings, key=lambda reading: reading["timestamp"])
    assert [reading["value"] for reading in ascending] == [2.5, 3.5, 1.5]
    assert response.json() == [
        {**first, "readings": ascending},
        {**second, "readings": [other]},
    ]


def test_list_metrics_with_readings_metric_without_readings(http: httpx.Client) -> None:
    metric = post_metric(http)
    assert http.get("/metrics?with_readings=true").json() == [{**metric, "readings": []}]


@pytest.mark.parametrize("flag", ["false", "FALSE", "0", "no", ""])
def test_list_metrics_with_readings_false(http: httpx.Client, flag: str) -> None:
    metric = post_metric(http)
    post_reading(http, metric["id"])
    assert http.get("/metrics", params={"with_readings": flag}).json() == [metric]


@pytest.mark.parametrize("flag", ["maybe", "2", "tru", "on", "null", "true "])
def test_list_metrics_bad_with_readings_400(http: httpx.Client, flag: str) -> None:
    response = http.get("/metrics", params={"with_readings": flag})
    assert_error(response, 400, "with_readings must be true or false")


def test_list_metrics_readings_limit_keeps_newest_ascending(http: httpx.Client) -> None:
    metric = post_metric(http)
    for second in (4, 1, 3, 2):
        post_reading(http, metric["id"], float(second), f"2026-01-01T00:00:0{second}Z")
    response = http.get("/metrics", params={"with_readings": "true", "readings_limit": "2"})
    assert response.status_code == 200
    [item] = response.json()
    assert [reading["value"] for reading in item["readings"]] == [3.0, 4.0]


@pytest.mark.parametrize("limit", ["0", "10001", "-1", "abc", "1.5", "", "²", "\uff11\uff10", " 5"])
def test_list_metrics_bad_readings_limit_400(http: httpx.Client, limit: str) -> None:
    response = http.get("/metrics", params={"with_readings": "true", "readings_limit": limit})
    assert_error(response, 400, READINGS_LIMIT_MESSAGE)


# --- GET /metrics/{id} --------------------------------------------------------------------------


def test_get_metric_200(http: httpx.Client) -> None:
    post_metric(http, "other")
    metric = post_metric(http, "wanted", input_frequency=2.5)
    response = http.get(f"/metrics/{metric['id']}")
    assert response.status_code == 200
    assert response.json() == metric


def test_get_metric_accepts_upper_case_id(http: httpx.Client) -> None:
    metric = post_metric(http)
    assert http.get(f"/metrics/{metric['id'].upper()}").json() == metric


@pytest.mark.parametrize("bad_id", ["abc", "123", "readings", "01a21b32-2870-78a3-85f4", "zz" * 16, "%20"])
def test_get_metric_non_uuid_400(http: httpx.Client, bad_id: str) -> None:
    response = http.get(f"/metrics/{bad_id}")
    shown = bad_id.replace("%20", " ")
    assert_error(response, 400, f"id must be a UUID, got {shown!r}")


@pytest.mark.parametrize("unknown", [UUID7, UUID4, UUID1, NIL_UUID])
def test_get_metric_unknown_404(http: httpx.Client, unknown: str) -> None:
    post_metric(http)
    assert_error(http.get(f"/metrics/{unknown}"), 404, f"metric {unknown} not found")


# --- POST /metrics/readings ---------------------------------------------------------------------


@pytest.fixture
def metric_id(http: httpx.Client) -> str:
    """A metric that exists on the `http` hub."""
    body = post_metric(http)
    metric: str = body["id"]
    return metric


@pytest.mark.parametrize(
    ("given", "stored"),
    [
        ("2026-01-01T12:00:00Z", "2026-01-01T12:00:00.000000Z"),
        ("2026-01-01T12:00:00+02:00", "2026-01-01T10:00:00.000000Z"),
        ("2026-01-01T01:00:00+02:00", "2025-12-31T23:00:00.000000Z"),
        ("2025-12-31T23:30:00.5-01:00", "2026-01-01T00:30:00.500000Z"),
        ("2026-01-01 12:00:00-05:30", "2026-01-01T17:30:00.000000Z"),
        ("2026-01-01t12:00:00z", "2026-01-01T12:00:00.000000Z"),
        ("2026-01-01T12:00:00+00:00", "2026-01-01T12:00:00.000000Z"),
        ("2026-01-01T12:00:00-00:00", "2026-01-01T12:00:00.000000Z"),
        ("2026-01-01T12:00:00.123456789Z", "2026-01-01T12:00:00.123456Z"),
        ("2024-02-29T23:59:59.999999+00:00", "2024-02-29T23:59:59.999999Z"),
        ("0999-06-01T00:00:00Z", "0999-06-01T00:00:00.000000Z"),
        ("0001-01-01T00:00:00-01:00", "0001-01-01T01:00:00.000000Z"),
        ("9999-12-31T23:59:59.999999Z", "9999-12-31T23:59:59.999999Z"),
    ],
)
def test_create_reading_201_stores_timestamp_in_utc(
    http: httpx.Client, metric_id: str, given: str, stored: str
) -> None:
    response = http.post(
        "/metrics/readings", json={"metric_id": metric_id, "value": 21.5, "timestamp": given}
    )
    assert response.status_code == 201
    body = response.json()
    assert set(body) == {"id", "metric_id", "value", "timestamp"}
    assert_uuid7(body["id"])
    assert body["id"] != metric_id
    assert body["metric_id"] == metric_id
    assert body["value"] == 21.5
    assert body["timestamp"] == stored
    assert http.get(f"/metrics/{metric_id}/readings").json() == [body]


@pytest.mark.parametrize("payload_extra", [{}, {"timestamp": None}])
def test_create_reading_timestamp_defaults_to_now(
    http: httpx.Client, metric_id: str, payload_extra: dict[str, Any]
) -> None:
    before = datetime.now(UTC)
    response = http.post("/metrics/readings", json={"metric_id": metric_id, "value": 1, **payload_extra})
    after = datetime.now(UTC)
    assert response.status_code == 201
    assert before <= parse_z(response.json()["timestamp"]) <= after


@pytest.mark.parametrize("value", [1e-300, 0.001, 1, 42, 42.5, 1e308, 10**30])
def test_create_reading_accepts_positive_finite_values(
    http: httpx.Client, metric_id: str, value: float
) -> None:
    assert post_reading(http, metric_id, value)["value"] == pytest.approx(value, rel=1e-15)


def test_create_reading_accepts_upper_case_metric_id(http: httpx.Client, metric_id: str) -> None:
    body = post_reading(http, metric_id.upper())
    assert body["metric_id"] == metric_id


def test_create_reading_ignores_unknown_fields(http: httpx.Client, metric_id: str) -> None:
    response = http.post(
        "/metrics/readings", json={"metric_id": metric_id, "value": 2, "id": new_id(), "x": 1}
    )
    assert response.status_code == 201
    assert set(response.json()) == {"id", "metric_id", "value", "timestamp"}


BAD_METRIC_IDS: list[object] = [
    "abc",
    "",
    123,
    1.5,
    True,
    None,
    [],
    {},
    UUID4,
    UUID1,
    NIL_UUID,
    "ffffffff-ffff-ffff-ffff-ffffffffffff",
    UUID7[:-1],
    UUID7 + "0",
]


@pytest.mark.parametrize("bad", BAD_METRIC_IDS)
def test_create_reading_bad_metric_id_400(http: httpx.Client, bad: object) -> None:
    post_metric(http)
    before = state(http)
    response = http.post("/metrics/readings", json={"metric_id": bad, "value": 1})
    assert_error(response, 400, METRIC_ID_MESSAGE)
    assert state(http) == before


def test_create_reading_missing_metric_id_400(http: httpx.Client) -> None:
    response = http.post("/metrics/readings", json={"value": 1})
    assert_error(response, 400, "metric_id is required")


BAD_VALUES: list[object] = [0, 0.0, -0.0, -1, -1e-9, -1e308, "1", "abc", "NaN", True, False, None]
BAD_VALUES += [[], [1], {}, {"value": 1}]


@pytest.mark.parametrize("bad", BAD_VALUES)
def test_create_reading_bad_value_400(http: httpx.Client, metric_id: str, bad: object) -> None:
    before = state(http)
    response = http.post("/metrics/readings", json={"metric_id": metric_id, "value": bad})
    assert_error(response, 400, VALUE_MESSAGE)
    assert state(http) == before


def test_create_reading_missing_value_400(http: httpx.Client, metric_id: str) -> None:
    response = http.post("/metrics/readings", json={"metric_id": metric_id})
    assert_error(response, 400, "value is required")


@pytest.mark.parametrize("token", ["NaN", "Infinity", "-Infinity", "1e999", "-1e999", "nan"])
def test_create_reading_non_finite_value_tokens_400(http: httpx.Client, metric_id: str, token: str) -> None:
    before = state(http)
    body = f'{{"metric_id": "{metric_id}", "value": {token}}}'.encode()
    message = assert_error(raw_post(http, "/metrics/readings", body), 400)
    assert message.startswith(BAD_JSON_PREFIX)
    assert state(http) == before


BAD_TIMESTAMPS: list[object] = [
    "2026-01-01T12:00:00",  # no offset
    "2026-01-01T12:00:00.123",
    "2026-01-01",
    "12:00:00Z",
    "2026-01-01T12:00Z",  # no seconds
    "2026-01-01T12:00:00+0200",  # offset without colon
    "2026-01-01T12:00:00 Z",
    "2026-01-01T12:00:00.Z",
    "garbage",
    "",
    "now",
    "2026-02-30T00:00:00Z",  # impossible dates and times
    "2025-02-29T00:00:00Z",
    "2026-13-01T00:00:00Z",
    "2026-00-10T00:00:00Z",
    "2026-01-01T24:00:00Z",
    "2026-01-01T12:60:00Z",
    "2026-01-01T23:58:60Z",  # second 60 where no leap second can be (23:59:60 UTC is one: accepted)
    "2026-01-01T12:00:00+24:00",
    "2026-01-01T12:00:00+23:60",
    "0000-01-01T00:00:00Z",
    "0001-01-01T00:00:00+01:00",  # a real instant, before year 1 in UTC
    "9999-12-31T23:59:59-01:00",  # after year 9999 in UTC
    "\uff12\uff10\uff12\uff16-01-01T12:00:00Z",  # full-width digits
    " 2026-01-01T12:00:00Z",
    "2026-01-01T12:00:00Z\n",
    1767268800,
    1767268800.5,
    0,
    True,
    [],
    {},
    ["2026-01-01T12:00:00Z"],
]


def test_a_leap_second_is_accepted_as_the_next_second(http: httpx.Client, metric_id: str) -> None:
    payload = {"metric_id": metric_id, "value": 1, "timestamp": "2016-12-31T23:59:60Z"}
    answer = http.post("/metrics/readings", json=payload)
    assert answer.status_code == 201, answer.text
    assert answer.json()["timestamp"] == "2017-01-01T00:00:00.000000Z"  # as POSIX time counts it


@pytest.mark.parametrize("bad", BAD_TIMESTAMPS)
def test_create_reading_bad_timestamp_400(http: httpx.Client, metric_id: str, bad: object) -> None:
    before = state(http)
    payload = {"metric_id": metric_id, "value": 1, "timestamp": bad}
    assert_error(http.post("/metrics/readings", json=payload), 400, TIMESTAMP_MESSAGE)
    assert state(http) == before


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        ({}, "metric_id is required; value is required"),
        ({"value": 0}, f"metric_id is required; {VALUE_MESSAGE}"),
        (
            {"metric_id": "x", "value": "x", "timestamp": "x"},
            f"{METRIC_ID_MESSAGE}; {VALUE_MESSAGE}; {TIMESTAMP_MESSAGE}",
        ),
    ],
)
def test_create_reading_reports_every_bad_field(
    http: httpx.Client, payload: dict[str, Any], message: str
) -> None:
    assert_error(http.post("/metrics/readings", json=payload), 400, message)


def test_create_reading_unknown_metric_404(http: httpx.Client) -> None:
    post_metric(http)
    before = state(http)
    unknown = new_id()
    response = http.post("/metrics/readings", json={"metric_id": unknown, "value": 1})
    assert_error(response, 404, f"metric {unknown} not found")
    assert state(http) == before


def test_create_reading_validates_before_looking_up(http: httpx.Client) -> None:
    response = http.post("/metrics/readings", json={"metric_id": new_id(), "value": -1})
    assert_error(response, 400, VALUE_MESSAGE)


# --- GET /metrics/{id}/readings -----------------------------------------------------------------


@pytest.fixture
def series(http: httpx.Client, metric_id: str) -> list[dict[str, Any]]:
    """Five readings one minute apart, posted out of order, returned ascending by timestamp."""
    post_reading(http, post_metric(http, "noise")["id"], 99.0, "2026-01-01T10:02:00Z")
    posted = [
        post_reading(http, metric_id, float(minute + 1), f"2026-01-01T10:0{minute}:00Z")
        for minute in (3, 0, 4, 1, 2)
    ]
    return sorted(posted, key=lambda reading: reading["timestamp"])


def readings(http: httpx.Client, metric_id: str, **params: str) -> list[dict[str, Any]]:
    response = http.get(f"/metrics/{metric_id}/readings", params=params)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/json"
    body: list[dict[str, Any]] = response.json()
    return body


def test_list_readings_ascending_and_only_that_metric(
    http: httpx.Client, metric_id: str, series: list[dict[str, Any]]
) -> None:
    listed = readings(http, metric_id)
    assert listed == series
    assert [reading["value"] for reading in listed] == [1.0, 2.0, 3.0, 4.0, 5.0]


def test_list_readings_empty(http: httpx.Client, metric_id: str) -> None:
    assert readings(http, metric_id) == []


@pytest.mark.parametrize(
    ("params", "values"),
    [
        ({"since": "2026-01-01T10:01:00Z"}, [2.0, 3.0, 4.0, 5.0]),
        ({"until": "2026-01-01T10:03:00Z"}, [1.0, 2.0, 3.0, 4.0]),
        ({"since": "2026-01-01T10:01:00Z", "until": "2026-01-01T10:03:00Z"}, [2.0, 3.0, 4.0]),
        ({"since": "2026-01-01T10:02:00Z", "until": "2026-01-01T10:02:00Z"}, [3.0]),
        ({"since": "2026-01-01T10:01:00.000001Z", "until": "2026-01-01T10:02:59.999Z"}, [3.0]),
        ({"since": "2026-01-01T12:01:00+02:00", "until": "2026-01-01T05:03:00-05:00"}, [2, 3, 4]),
        ({"since": "2026-01-01 10:01:00z"}, [2.0, 3.0, 4.0, 5.0]),
        ({"since": "2026-01-01T10:05:00Z"}, []),
        ({"until": "2026-01-01T09:59:59.999999Z"}, []),
        ({"since": "2026-01-01T10:01:30Z", "until": "2026-01-01T10:01:40Z"}, []),
        ({"limit": "2"}, [1.0, 2.0]),
        ({"limit": "1", "since": "2026-01-01T10:03:00Z"}, [4.0]),
        ({"limit": "10000"}, [1.0, 2.0, 3.0, 4.0, 5.0]),
        ({"unknown": "ignored"}, [1.0, 2.0, 3.0, 4.0, 5.0]),
    ],
)
def test_list_readings_since_until_inclusive_and_limit(
    http: httpx.Client,
    metric_id: str,
    series: list[dict[str, Any]],
    params: dict[str, str],
    values: list[float],
) -> None:
    assert [reading["value"] for reading in readings(http, metric_id, **params)] == values


def test_list_readings_limit_default_is_1000(hub: Hub, http: httpx.Client, metric_id: str) -> None:
    start = datetime(2026, 1, 1, tzinfo=UTC)
    items = [
        {"metric_id": metric_id, "value": i + 1, "timestamp": start + timedelta(seconds=i)}
        for i in range(1001)
    ]
    hub.service.create_readings(items)
    assert len(readings(http, metric_id)) == 1000
    everything = readings(http, metric_id, limit="10000")
    assert len(everything) == 1001
    assert readings(http, metric_id) == everything[:1000]  # the oldest first


@pytest.mark.parametrize(
    "limit", ["0", "10001", "-1", "abc", "1.5", "", "1e3", "0x10", "²", "true", "99999999999"]
)
def test_list_readings_bad_limit_400(http: httpx.Client, metric_id: str, limit: str) -> None:
    response = http.get(f"/metrics/{metric_id}/readings", params={"limit": limit})
    assert_error(response, 400, LIMIT_MESSAGE)


@pytest.mark.parametrize("field", ["since", "until"])
@pytest.mark.parametrize(
    "bad",
    [
        "garbage",
        "",
        "2026-01-01T10:00:00",
        "2026-01-01",
        "2026-02-30T00:00:00Z",
        "1767268800",
        "0001-01-01T00:00:00+01:00",
    ],
)
def test_list_readings_bad_time_400(http: httpx.Client, metric_id: str, field: str, bad: str) -> None:
    response = http.get(f"/metrics/{metric_id}/readings", params={field: bad})
    assert_error(response, 400, f"{field} {RFC3339_RULE}")


def test_list_readings_unencoded_plus_offset_is_400(http: httpx.Client, metric_id: str) -> None:
    """A raw `+` in a query string means a space; the client must send `%2B`."""
    response = http.get(f"/metrics/{metric_id}/readings?since=2026-01-01T10:00:00+02:00")
    assert_error(response, 400, f"since {RFC3339_RULE}")


def test_list_readings_since_after_until_400(http: httpx.Client, metric_id: str) -> None:
    params = {"since": "2026-01-01T10:00:00.000001Z", "until": "2026-01-01T10:00:00Z"}
    response = http.get(f"/metrics/{metric_id}/readings", params=params)
    assert_error(response, 400, "since must not be later than until")


def test_list_readings_unknown_metric_404(http: httpx.Client) -> None:
    unknown = new_id()
    response = http.get(f"/metrics/{unknown}/readings")
    assert_error(response, 404, f"metric {unknown} not found")


def test_list_readings_non_uuid_400(http: httpx.Client) -> None:
    assert_error(http.get("/metrics/nope/readings"), 400, "id must be a UUID, got 'nope'")


# --- request bodies -----------------------------------------------------------------------------

POST_PATHS = ["/metrics", "/metrics/readings"]


@pytest.mark.parametrize("path", POST_PATHS)
@pytest.mark.parametrize(
    "content",
    [
        b"",
        b" ",
        b"{",
        b'{"name": "x",}',
        b"{'name': 'x'}",
        b'{"name": "x"} trailing',
        b'{"name": "x"}{"name": "y"}',
        b"name=x",
        b'{"name": "x" "value": 1}',
        b"[" * 2000 + b"]" * 2000,
    ],
    ids=lambda content: repr(content[:20]),
)
def test_malformed_json_400(http: httpx.Client, path: str, content: bytes) -> None:
    before = state(http)
    message = assert_error(raw_post(http, path, content), 400)
    assert message.startswith(BAD_JSON_PREFIX)
    assert state(http) == before


@pytest.mark.parametrize("path", POST_PATHS)
@pytest.mark.parametrize(
    "content",
    [b'{"name": "\xff"}', b'{"name": "caf\xe9"}', b'{"name": "\xed\xa0\x80"}', b"\xfe\xff{}"],
    ids=lambda content: repr(content[:20]),
)
def test_invalid_utf8_400(http: httpx.Client, path: str, content: bytes) -> None:
    before = state(http)
    message = assert_error(raw_post(http, path, content), 400)
    assert message.startswith(BAD_JSON_PREFIX)
    assert state(http) == before


@pytest.mark.parametrize("path", POST_PATHS)
@pytest.mark.parametrize(
    "content", [b"[]", b'[{"name": "CPU"}]', b'"CPU"', b"1", b"1.5", b"null", b"true", b"false"]
)
def test_body_not_an_object_400(http: httpx.Client, path: str, content: bytes) -> None:
    before = state(http)
    assert_error(raw_post(http, path, content), 400, NOT_OBJECT_MESSAGE)
    assert state(http) == before


@pytest.mark.parametrize("path", POST_PATHS)
@pytest.mark.parametrize(
    "content_type",
    [
        "text/plain",
        "application/x-www-form-urlencoded",
        "multipart/form-data; boundary=x",
        "application/octet-stream",
        "text/json",
        "application/jsonx",
        None,
    ],
)
def test_non_json_content_type_415(http: httpx.Client, path: str, content_type: str | None) -> None:
    before = state(http)
    content = json.dumps({"name": "CPU", "metric_id": new_id(), "value": 1}).encode()
    request = http.build_request("POST", path, content=content)
    if content_type is not None:
        request.headers["content-type"] = content_type
    assert request.headers.get("content-type") == content_type
    assert_error(http.send(request), 415, CONTENT_TYPE_MESSAGE)
    assert state(http) == before


@pytest.mark.parametrize(
    "content_type",
    ["application/json; charset=utf-8", "Application/JSON", "application/merge-patch+json"],
)
def test_json_content_type_variants_accepted(http: httpx.Client, content_type: str) -> None:
    response = raw_post(http, "/metrics", b'{"name": "CPU"}', **{"content-type": content_type})
    assert response.status_code == 201


def padded_body(size: int) -> bytes:
    """A valid `POST /metrics` body of exactly `size` bytes (JSON whitespace as padding)."""
    core = b'{"name": "big"}'
    return core[:-1] + b" " * (size - len(core)) + b"}"


def test_body_of_exactly_1_mib_is_accepted(http: httpx.Client) -> None:
    content = padded_body(MAX_BODY)
    assert len(content) == MAX_BODY
    response = raw_post(http, "/metrics", content)
    assert response.status_code == 201
    assert response.json()["name"] == "big"


@pytest.mark.parametrize("size", [MAX_BODY + 1, 2 * MAX_BODY, 8 * MAX_BODY])
def test_body_over_1_mib_413(http: httpx.Client, size: int) -> None:
    before = state(http)
    assert_error(raw_post(http, "/metrics", padded_body(size)), 413, TOO_LARGE_MESSAGE)
    assert state(http) == before


def test_chunked_body_over_1_mib_413(http: httpx.Client) -> None:
    """No Content-Length to check up front: the limit must hold while reading."""

    def chunks() -> Iterator[bytes]:
        body = padded_body(MAX_BODY + 100)
        for start in range(0, len(body), 64 * 1024):
            yield body[start : start + 64 * 1024]

    before = state(http)
    response = http.post("/metrics", content=chunks(), headers=JSON)
    assert "content-length" not in response.request.headers
    assert_error(response, 413, TOO_LARGE_MESSAGE)
    assert state(http) == before


def test_chunked_body_under_limit_accepted(http: httpx.Client) -> None:
    def chunks() -> Iterator[bytes]:
        yield b'{"name": '
        yield b'"chunked"}'

    response = http.post("/metrics", content=chunks(), headers=JSON)
    assert response.status_code == 201
    assert response.json()["name"] == "chunked"


@pytest.mark.parametrize(
    ("method", "path", "content", "content_type", "status"),
    [
        ("POST", "/metrics", b'{"name": "x"}', "text/plain", 415),
        ("POST", "/metrics", b"{", "application/json", 400),
        ("POST", "/metrics/readings", b'{"value": 0}', "application/json", 400),
        ("POST", "/metrics/readings", b"{}" + b" " * MAX_BODY, "text/plain", 413),
        ("POST", "/metrics", padded_body(MAX_BODY + 1), "application/json", 413),
        ("PUT", "/metrics/readings", b'{"value": 1}', "application/json", 405),
        ("POST", "/nope", b'{"value": 1}', "application/json", 404),
    ],
)
def test_rejected_body_keeps_the_client_usable(
    http: httpx.Client, method: str, path: str, content: bytes, content_type: str, status: int
) -> None:
    """Answering before reading the body must not break the client's next request.

    hypercorn closes a connection whose request body was not read to the end; unless the response
    says `Connection: close`, a keep-alive client sends its next request into the closing socket
    and gets "Server disconnected". Repeat, as the failure depends on packet timing.
    """
    for _ in range(25):
        response = http.request(method, path, content=content, headers={"content-type": content_type})
        assert_error(response, status)
        assert http.get("/healthz").status_code == 200


@pytest.mark.parametrize("status", [413, 405])
def test_unread_body_is_answered_with_connection_close(http: httpx.Client, status: int) -> None:
    if status == 413:  # over even a batch's limit: refused before it is read
        response = raw_post(http, "/metrics", padded_body(MAX_BODY * 16 + 1))
    else:
        response = http.put("/metrics", content=b"{}", headers=JSON)
    assert_error(response, status)
    assert response.headers["connection"] == "close"


def test_read_body_keeps_the_connection_alive(http: httpx.Client) -> None:
    response = raw_post(http, "/metrics", b"[]", **{"content-type": "text/plain"})
    assert_error(response, 415)
    assert "connection" not in response.headers
    too_large = raw_post(http, "/metrics", padded_body(MAX_BODY + 1))  # read, then refused
    assert_error(too_large, 413)
    assert "connection" not in too_large.headers


# --- routing ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path", "status"),
    [
        ("GET", "/nowhere", 404),
        ("GET", "/nope", 404),
        ("GET", "/metrics/x/y/z", 404),
        ("GET", "/metric", 404),
        ("POST", "/events", 404),
        ("DELETE", "/metrics", 405),
        ("PUT", "/metrics/readings", 405),
        ("POST", "/healthz", 405),
        ("PATCH", f"/metrics/{NIL_UUID}", 405),
        ("POST", f"/metrics/{NIL_UUID}/readings", 405),
    ],
)
def test_unknown_route_or_method_is_json(http: httpx.Client, method: str, path: str, status: int) -> None:
    assert_error(http.request(method, path), status)


def test_get_metrics_readings_is_a_metric_lookup(http: httpx.Client) -> None:
    """`/metrics/readings` only takes POST; a GET reads it as `/metrics/{id}` with a bad id."""
    assert_error(http.get("/metrics/readings"), 400, "id must be a UUID, got 'readings'")


# --- GET /healthz -------------------------------------------------------------------------------


def test_healthz_shape_and_counts(hub: Hub, http: httpx.Client, open_stream: OpenStream) -> None:
    response = http.get("/healthz")
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    assert response.json() == {"status": "ok", "clients": 0, "events": 0}
    metric = post_metric(http)
    post_reading(http, metric["id"])
    post_reading(http, metric["id"])
    assert http.get("/healthz").json() == {"status": "ok", "clients": 0, "events": 3}
    stream = open_stream(hub.url)
    stream.expect_open()
    assert http.get("/healthz").json() == {"status": "ok", "clients": 1, "events": 3}


# --- GET /openapi.json --------------------------------------------------------------------------

API_PATHS = {
    "/metrics": {"get", "post"},
    "/metrics/{metric_id}": {"get"},
    "/metrics/readings": {"post"},
    "/metrics/readings/batch": {"post"},
    "/metrics/{metric_id}/readings": {"get"},
    "/healthz": {"get"},
    "/events/watch": {"get"},
}


@pytest.fixture
def openapi(http: httpx.Client) -> dict[str, Any]:
    response = http.get("/openapi.json")
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    document: dict[str, Any] = response.json()
    return document


def request_schema(document: dict[str, Any], path: str) -> dict[str, Any]:
    schema: dict[str, Any] = document["paths"][path]["post"]["requestBody"]["content"]["application/json"][
        "schema"
    ]
    return schema


def test_openapi_is_a_valid_openapi_3_document(openapi: dict[str, Any]) -> None:
    from openapi_spec_validator import validate  # dev extra

    assert openapi["openapi"].startswith("3.")
    assert openapi["info"]["title"] == "metricstream"
    validate(openapi)


def refs(node: object) -> Iterator[str]:
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "$ref" and isinstance(value, str):
                yield value
            else:
                yield from refs(value)
    elif isinstance(node, list):
        for item in node:
            yield from refs(item)


def test_openapi_refs_resolve(openapi: dict[str, Any]) -> None:
    schemas = openapi.get("components", {}).get("schemas", {})
    found = list(refs(openapi))
    assert found  # the document does use references
    for ref in found:
        assert ref.startswith("#/components/schemas/")
        assert ref.removeprefix("#/components/schemas/") in schemas


def test_openapi_has_every_path_and_method(openapi: dict[str, Any]) -> None:
    methods = {"get", "post", "put", "patch", "delete"}
    documented = {path: set(item) & methods for path, item in openapi["paths"].items()}
    assert documented == API_PATHS


def test_openapi_request_schemas_come_from_the_validating_models(openapi: dict[str, Any]) -> None:
    reading = request_schema(openapi, "/metrics/readings")
    assert reading["properties"] == ReadingIn.model_json_schema()["properties"]
    assert reading["properties"]["value"]["exclusiveMinimum"] == 0
    assert reading["properties"]["value"]["type"] == "number"
    assert reading["properties"]["metric_id"]["format"] == "uuid"
    assert sorted(reading["required"]) == ["metric_id", "value"]

    metric = request_schema(openapi, "/metrics")
    assert metric["properties"] == MetricIn.model_json_schema()["properties"]
    assert metric["properties"]["name"]["minLength"] == 1
    assert metric["properties"]["name"]["maxLength"] == 200
    assert metric["properties"]["input_frequency"]["anyOf"][0]["minimum"] == 0
    assert metric["required"] == ["name"]


def test_openapi_query_parameters(openapi: dict[str, Any]) -> None:
    operation = openapi["paths"]["/metrics/{metric_id}/readings"]["get"]
    parameters = {parameter["name"]: parameter for parameter in operation["parameters"]}
    assert set(parameters) == {"metric_id", *ReadingsQuery.model_fields}
    assert parameters["metric_id"]["in"] == "path"
    assert parameters["limit"]["schema"]["maximum"] == 10000
    assert parameters["limit"]["schema"]["minimum"] == 1
    assert parameters["limit"]["schema"]["default"] == 1000
    listing = openapi["paths"]["/metrics"]["get"]
    assert {parameter["name"] for parameter in listing["parameters"]} >= {"with_readings"}


@pytest.mark.parametrize(
    ("path", "method", "statuses"),
    [
        ("/metrics", "post", {"201", "400", "409", "413", "415", "503"}),
        ("/metrics", "get", {"200", "400", "503"}),
        ("/metrics/{metric_id}", "get", {"200", "400", "404", "503"}),
        ("/metrics/readings", "post", {"201", "400", "404", "413", "415", "503"}),
        ("/metrics/readings/batch", "post", {"201", "400", "404", "413", "415", "503"}),
        ("/metrics/{metric_id}/readings", "get", {"200", "400", "404", "503"}),
        ("/healthz", "get", {"200"}),
        ("/events/watch", "get", {"200", "400", "503"}),
    ],
)
def test_openapi_documents_statuses(
    openapi: dict[str, Any], path: str, method: str, statuses: set[str]
) -> None:
    assert set(openapi["paths"][path][method]["responses"]) >= statuses


def test_openapi_request_bodies_are_required(openapi: dict[str, Any]) -> None:
    operations = [operation for item in openapi["paths"].values() for operation in item.values()]
    bodies = [operation["requestBody"] for operation in operations if "requestBody" in operation]
    assert len(bodies) == 3
    assert all(body["required"] is True for body in bodies)


@pytest.mark.parametrize("path", ["/metrics/{metric_id}", "/metrics/{metric_id}/readings"])
def test_openapi_metric_id_path_parameter_is_a_uuid(openapi: dict[str, Any], path: str) -> None:
    (parameter,) = [p for p in openapi["paths"][path]["get"]["parameters"] if p["in"] == "path"]
    assert parameter["schema"] == {"type": "string", "format": "uuid"}


def test_openapi_stream_types_is_a_comma_separated_list(openapi: dict[str, Any]) -> None:
    (types,) = [p for p in openapi["paths"]["/events/watch"]["get"]["parameters"] if p["name"] == "types"]
    assert (types["style"], types["explode"]) == ("form", False)
    assert types["schema"]["items"]["enum"] == ["metric_created", "metric_reading_created"]


@pytest.mark.parametrize("path", ["/metrics", "/metrics/{metric_id}/readings"])
def test_openapi_lists_are_arrays_with_last_event_header(openapi: dict[str, Any], path: str) -> None:
    response = openapi["paths"][path]["get"]["responses"]["200"]
    assert response["content"]["application/json"]["schema"]["type"] == "array"
    assert {name.lower() for name in response["headers"]} == {"x-last-event-id"}


# --- X-Last-Event-ID ----------------------------------------------------------------------------


def last_event_ids(http: httpx.Client, metric_id: str | None) -> list[str]:
    """X-Last-Event-ID of every `GET /metrics…` read (metric routes only when one exists)."""
    responses = [http.get("/metrics"), http.get("/metrics?with_readings=true")]
    if metric_id is not None:
        responses += [
            http.get(f"/metrics/{metric_id}"),
            http.get(f"/metrics/{metric_id}/readings"),
            http.get(f"/metrics/{metric_id}/readings?limit=1"),
        ]
    for response in responses:
        assert response.status_code == 200
    return [response.headers["x-last-event-id"] for response in responses]


def test_last_event_id_is_nil_before_any_event(http: httpx.Client) -> None:
    assert last_event_ids(http, None) == [NIL_UUID, NIL_UUID]


def test_last_event_id_is_newest_event(hub: Hub, http: httpx.Client, open_stream: OpenStream) -> None:
    stream = open_stream(hub.url)
    stream.expect_open()
    metric = post_metric(http)
    created = stream.next_event()
    assert created.event == "metric_created"
    assert created.json() == metric
    assert created.id is not None
    assert created.id != metric["id"]
    assert last_event_ids(http, metric["id"]) == [created.id] * 5

    reading = post_reading(http, metric["id"])
    recorded = stream.next_event()
    assert recorded.event == "metric_reading_created"
    assert recorded.json() == reading
    assert recorded.id is not None
    assert recorded.id != created.id
    assert last_event_ids(http, metric["id"]) == [recorded.id] * 5

    # a rejected request moves nothing
    assert http.post("/metrics/readings", json={"metric_id": metric["id"]}).status_code == 400
    assert last_event_ids(http, metric["id"]) == [recorded.id] * 5


def test_last_event_id_resumes_the_stream_from_exactly_there(
    hub: Hub, http: httpx.Client, open_stream: OpenStream
) -> None:
    metric = post_metric(http)
    marker = http.get("/metrics").headers["x-last-event-id"]
    reading = post_reading(http, metric["id"])
    stream = open_stream(hub.url, headers={"Last-Event-ID": marker})
    stream.expect_open()
    frame = stream.next_event()
    assert frame.event == "metric_reading_created"
    assert frame.json() == reading


# --- rejected requests leave no trace -----------------------------------------------------------

BadRequest = Callable[[httpx.Client, str], httpx.Response]

BAD_REQUESTS: dict[str, BadRequest] = {
    "metric bad name": lambda http, _: http.post("/metrics", json={"name": " "}),
    "metric bad frequency": lambda http, _: http.post("/metrics", json={"name": "x", "input_frequency": -1}),
    "metric not object": lambda http, _: raw_post(http, "/metrics", b'[{"name": "x"}]'),
    "metric bad json": lambda http, _: raw_post(http, "/metrics", b'{"name": "x"'),
    "metric NaN": lambda http, _: raw_post(http, "/metrics", b'{"name": "x", "input_frequency": NaN}'),
    "metric form": lambda http, _: http.post("/metrics", data={"name": "x"}),
    "metric too large": lambda http, _: raw_post(http, "/metrics", padded_body(MAX_BODY + 1)),
    "reading zero": lambda http, mid: http.post("/metrics/readings", json={"metric_id": mid, "value": 0}),
    "reading uuid4": lambda http, _: http.post(
        "/metrics/readings", json={"metric_id": str(uuid.uuid4()), "value": 1}
    ),
    "reading unknown": lambda http, _: http.post(
        "/metrics/readings", json={"metric_id": new_id(), "value": 1}
    ),
    "reading bad time": lambda http, mid: http.post(
        "/metrics/readings", json={"metric_id": mid, "value": 1, "timestamp": "2026-01-01"}
    ),
    "reading Infinity": lambda http, mid: raw_post(
        http, "/metrics/readings", f'{{"metric_id": "{mid}", "value": Infinity}}'.encode()
    ),
    "reading text/plain": lambda http, mid: http.post(
        "/metrics/readings",
        content=json.dumps({"metric_id": mid, "value": 1}).encode(),
        headers={"content-type": "text/plain"},
    ),
    "reading too large": lambda http, mid: raw_post(
        http,
        "/metrics/readings",
        json.dumps({"metric_id": mid, "value": 1, "pad": "x" * MAX_BODY}).encode(),
    ),
}


@pytest.mark.parametrize("bad", BAD_REQUESTS.values(), ids=BAD_REQUESTS.keys())
def test_rejected_request_stores_nothing_and_emits_no_event(
    hub: Hub, http: httpx.Client, open_stream: OpenStream, bad: BadRequest
) -> None:
    metric = post_metric(http)
    post_reading(http, metric["id"], 5.0)
    stream = open_stream(hub.url)
    stream.expect_open()
    before = state(http)

    response = bad(http, metric["id"])
    assert 400 <= response.status_code < 500
    assert_error(response, response.status_code)
    assert state(http) == before

    # the next frame on the stream is the next good creation, not anything from the bad request
    follow_up = post_metric(http, "follow-up")
    frame = stream.next_event()
    assert frame.event == "metric_created"
    assert frame.json() == follow_up


# --- the Python API says exactly what HTTP says -------------------------------------------------


@dataclass(frozen=True)
class Parity:
    python: Callable[[MetricService, str], object]
    http: Callable[[httpx.Client, str], httpx.Response]
    error: type[MetricStreamError]


def _post_reading(http: httpx.Client, payload: dict[str, Any]) -> httpx.Response:
    return http.post("/metrics/readings", json=payload)


UNKNOWN = new_id()
PARITY: dict[str, Parity] = {
    "blank name": Parity(
        lambda svc, _: svc.create_metric("   "),
        lambda http, _: http.post("/metrics", json={"name": "   "}),
        ValidationError,
    ),
    "long name": Parity(
        lambda svc, _: svc.create_metric("n" * 201),
        lambda http, _: http.post("/metrics", json={"name": "n" * 201}),
        ValidationError,
    ),
    "name not a string": Parity(
        lambda svc, _: svc.create_metric(5),  # type: ignore[arg-type]
        lambda http, _: http.post("/metrics", json={"name": 5}),
        ValidationError,
    ),
    "negative frequency": Parity(
        lambda svc, _: svc.create_metric("cpu", -1),
        lambda http, _: http.post("/metrics", json={"name": "cpu", "input_frequency": -1}),
        ValidationError,
    ),
    "bool frequency": Parity(
        lambda svc, _: svc.create_metric("cpu", True),
        lambda http, _: http.post("/metrics", json={"name": "cpu", "input_frequency": True}),
        ValidationError,
    ),
    "metric_id not a uuid": Parity(
        lambda svc, _: svc.create_reading("abc", 1),
        lambda http, _: _post_reading(http, {"metric_id": "abc", "value": 1}),
        ValidationError,
    ),
    "metric_id uuid4": Parity(
        lambda svc, _: svc.create_reading("4b3e9f52-8d1c-4a6e-9f0b-2c7d5e8a1b3f", 1),
        lambda http, _: _post_reading(
            http, {"metric_id": "4b3e9f52-8d1c-4a6e-9f0b-2c7d5e8a1b3f", "value": 1}
        ),
        ValidationError,
    ),
    "zero value": Parity(
        lambda svc, mid: svc.create_reading(mid, 0),
        lambda http, mid: _post_reading(http, {"metric_id": mid, "value": 0}),
        ValidationError,
    ),
    "bool value": Parity(
        lambda svc, mid: svc.create_reading(mid, True),
        lambda http, mid: _post_reading(http, {"metric_id": mid, "value": True}),
        ValidationError,
    ),
    "string value": Parity(
        lambda svc, mid: svc.create_reading(mid, "1"),  # type: ignore[arg-type]
        lambda http, mid: _post_reading(http, {"metric_id": mid, "value": "1"}),
        ValidationError,
    ),
    "value and metric_id": Parity(
        lambda svc, _: svc.create_reading("abc", -1),
        lambda http, _: _post_reading(http, {"metric_id": "abc", "value": -1}),
        ValidationError,
    ),
    "timestamp without offset": Parity(
        lambda svc, mid: svc.create_reading(mid, 1, "2026-01-01T00:00:00"),
        lambda http, mid: _post_reading(
            http, {"metric_id": mid, "value": 1, "timestamp": "2026-01-01T00:00:00"}
        ),
        ValidationError,
    ),
    "impossible timestamp": Parity(
        lambda svc, mid: svc.create_reading(mid, 1, "2026-02-30T00:00:00Z"),
        lambda http, mid: _post_reading(
            http, {"metric_id": mid, "value": 1, "timestamp": "2026-02-30T00:00:00Z"}
        ),
        ValidationError,
    ),
    "reading for unknown metric": Parity(
        lambda svc, _: svc.create_reading(UNKNOWN, 1),
        lambda http, _: _post_reading(http, {"metric_id": UNKNOWN, "value": 1}),
        NotFoundError,
    ),
    "get non-uuid": Parity(
        lambda svc, _: svc.get_metric("abc"),
        lambda http, _: http.get("/metrics/abc"),
        ValidationError,
    ),
    "get unknown": Parity(
        lambda svc, _: svc.get_metric(UNKNOWN),
        lambda http, _: http.get(f"/metrics/{UNKNOWN}"),
        NotFoundError,
    ),
    "readings of unknown": Parity(
        lambda svc, _: svc.list_readings(UNKNOWN),
        lambda http, _: http.get(f"/metrics/{UNKNOWN}/readings"),
        NotFoundError,
    ),
    "readings of non-uuid": Parity(
        lambda svc, _: svc.list_readings("x"),
        lambda http, _: http.get("/metrics/x/readings"),
        ValidationError,
    ),
    "limit 0": Parity(
        lambda svc, mid: svc.list_readings(mid, limit=0),
        lambda http, mid: http.get(f"/metrics/{mid}/readings?limit=0"),
        ValidationError,
    ),
    "limit 10001": Parity(
        lambda svc, mid: svc.list_readings(mid, limit=10001),
        lambda http, mid: http.get(f"/metrics/{mid}/readings?limit=10001"),
        ValidationError,
    ),
    "bad since": Parity(
        lambda svc, mid: svc.list_readings(mid, since="yesterday"),
        lambda http, mid: http.get(f"/metrics/{mid}/readings?since=yesterday"),
        ValidationError,
    ),
    "since after until": Parity(
        lambda svc, mid: svc.list_readings(mid, since="2026-01-02T00:00:00Z", until="2026-01-01T00:00:00Z"),
        lambda http, mid: http.get(
            f"/metrics/{mid}/readings",
            params={"since": "2026-01-02T00:00:00Z", "until": "2026-01-01T00:00:00Z"},
        ),
        ValidationError,
    ),
}


@pytest.mark.parametrize("case", PARITY.values(), ids=PARITY.keys())
def test_python_api_raises_what_http_answers(hub: Hub, http: httpx.Client, case: Parity) -> None:
    metric_id = hub.service.create_metric("parity").id
    before = state(http)
    with pytest.raises(case.error) as raised:
        case.python(hub.service, metric_id)
    assert state(http) == before
    response = case.http(http, metric_id)
    status = 404 if case.error is NotFoundError else 400
    assert_error(response, status, str(raised.value))
    assert raised.value.message == str(raised.value)
    assert isinstance(raised.value, ValueError if status == 400 else LookupError)
    assert state(http) == before


def test_python_api_and_http_share_one_store(hub: Hub, http: httpx.Client) -> None:
    metric = hub.service.create_metric("  shared  ", 5)
    assert http.get(f"/metrics/{metric.id}").json() == metric.to_dict()
    posted = post_reading(http, metric.id, 3.5, "2026-01-01T12:00:00+01:00")
    [reading] = hub.service.list_readings(metric.id)
    assert reading.to_dict() == posted
    assert reading.timestamp == datetime(2026, 1, 1, 11, tzinfo=UTC)
    assert [m.to_dict() for m in hub.service.list_metrics()] == http.get("/metrics").json()


# --- the largest answers, in slices ---------------------------------------------------------------


def test_the_largest_answer_does_not_stall_the_stream(open_stream: Callable[..., Any]) -> None:
    """200,000 embedded readings took ~0.8 s built whole on the loop, stalling every stream; in slices,
    a live event keeps arriving in milliseconds. (The bound below is 10x what it takes, to never flake.)"""
    import threading
    import time

    with Hub(port=0, store="memory://", heartbeat=60, max_metrics=20) as hub:
        metrics = [hub.service.create_metric(f"m{i}") for i in range(20)]
        for metric in metrics:
            hub.service.create_readings([{"metric_id": metric.id, "value": v + 1} for v in range(10_000)])
        probe = metrics[0]
        stream = open_stream(hub.url)
        stream.expect_open()
        answer: list[httpx.Response] = []

        def fetch() -> None:
            with httpx.Client(base_url=hub.url, timeout=60) as http:
                answer.append(
                    http.get("/metrics", params={"with_readings": "true", "readings_limit": 10_000})
                )

        getter = threading.Thread(target=fetch)
        latencies: list[float] = []
        getter.start()
        while getter.is_alive() or not latencies:
            posted = time.perf_counter()
            reading = hub.service.create_reading(probe.id, 1)
            assert stream.next_event().json()["id"] == reading.id
            latencies.append(time.perf_counter() - posted)
        getter.join()
        body = answer[0].json()
        assert answer[0].status_code == 200
        assert [len(item["readings"]) for item in body] == [10_000] * 20
        assert body[1]["readings"][0]["value"] == 1
        assert body[1]["readings"][-1]["value"] == 10_000
        assert max(latencies) < 0.3, f"a live event waited {max(latencies) * 1000:.0f} ms"


@pytest.mark.parametrize(
    ("request_bytes", "status"),
    [
        (b"GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Big: " + b"a" * 100_000 + b"\r\n\r\n", 431),
        (b"NOT HTTP AT ALL\r\n\r\n", 400),
    ],
    ids=["huge-head", "not-http"],
)
def test_hypercorns_own_refusals_are_as_documented(hub: Hub, request_bytes: bytes, status: int) -> None:
    """docs/protocol.md: these two come from hypercorn, bodiless, before the request reaches the app."""
    import socket

    port = int(hub.url.rsplit(":", 1)[1])
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(request_bytes)
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    head, _, body = answer.partition(b"\r\n\r\n")
    lines = head.decode().split("\r\n")
    assert lines[0].split()[1] == str(status)
    assert "content-length: 0" in lines
    assert "connection: close" in lines
    assert body == b""
