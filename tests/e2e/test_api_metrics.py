"""POST /metrics, GET /metrics and GET /metrics/{id} over real HTTP: every status code and validation rule."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from metricstream.ids import new_id
from metricstream.server.hub import Hub
from tests.support.apitools import (
    BAD_JSON_PREFIX,
    FREQUENCY_MESSAGE,
    NAME_MESSAGE,
    NIL_UUID,
    READINGS_LIMIT_MESSAGE,
    UUID1,
    UUID4,
    UUID7,
    assert_error,
    assert_uuid7,
    post_metric,
    post_reading,
    raw_post,
    state,
)

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
    assert set(body) == {"id", "name", "input_frequency", "labels", "unit", "description"}
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
    assert set(body) == {"id", "name", "input_frequency", "labels", "unit", "description"}


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
        {**first, "readings": ascending, "readings_truncated": False},
        {**second, "readings": [other], "readings_truncated": False},
    ]


def test_list_metrics_with_readings_metric_without_readings(http: httpx.Client) -> None:
    metric = post_metric(http)
    assert http.get("/metrics?with_readings=true").json() == [
        {**metric, "readings": [], "readings_truncated": False}
    ]


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
    assert item["readings_truncated"] is True  # issue 20.11: 1.0 and 2.0 are left out, and it says so
    for limit, truncated in (("3", True), ("4", False), ("5", False)):
        answer = http.get("/metrics", params={"with_readings": "true", "readings_limit": limit})
        assert answer.json()[0]["readings_truncated"] is truncated


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


# --- GET /metrics?name= ---------------------------------------------------------------------------


def test_metrics_are_found_by_exact_name(hub: Hub, http: httpx.Client) -> None:
    # two metrics named cpu, told apart by their labels
    first, other = post_metric(http, "cpu", labels={"host": "a"}), post_metric(http, "CPU")
    second = post_metric(http, "cpu", labels={"host": "b"})
    hub.service.create_reading(second["id"], 2.5)
    answer = http.get("/metrics", params={"name": "cpu"})
    assert answer.status_code == 200
    assert [metric["id"] for metric in answer.json()] == [first["id"], second["id"]]  # creation order
    assert "x-last-event-id" in answer.headers
    assert [m["id"] for m in http.get("/metrics", params={"name": " CPU "}).json()] == [other["id"]]
    assert http.get("/metrics", params={"name": "cp"}).json() == []
    embedded = http.get("/metrics", params={"name": "cpu", "with_readings": "true"}).json()
    assert [[r["value"] for r in metric["readings"]] for metric in embedded] == [[], [2.5]]
    # the same in Python
    assert [metric.id for metric in hub.service.list_metrics(name="cpu")] == [first["id"], second["id"]]
    assert hub.service.list_metrics(name="nothing") == []
    assert len(hub.service.list_metrics()) == 3
