"""POST /metrics/readings and GET /metrics/{id}/readings over real HTTP, and the largest answers, which
are sent in slices."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from metricstream.ids import new_id
from metricstream.server.hub import Hub
from tests.support.apitools import (
    BAD_JSON_PREFIX,
    LIMIT_MESSAGE,
    METRIC_ID_MESSAGE,
    NIL_UUID,
    RFC3339_RULE,
    TIMESTAMP_MESSAGE,
    UUID1,
    UUID4,
    UUID7,
    VALUE_MESSAGE,
    assert_error,
    assert_uuid7,
    parse_z,
    post_metric,
    post_reading,
    raw_post,
    readings,
    state,
    timestamp_message,
)

# --- POST /metrics/readings ---------------------------------------------------------------------


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


def test_the_last_timestamp_is_stored_when_max_future_allows_any(make_hub: Callable[..., Hub]) -> None:
    hub = make_hub(max_future=None)  # by default, one more than 300 s ahead of the clock is refused
    with httpx.Client(base_url=hub.url, timeout=10) as http:
        metric_id = post_metric(http)["id"]
        last = "9999-12-31T23:59:59.999999Z"
        item = {"metric_id": metric_id, "value": 1, "timestamp": last}
        response = http.post("/metrics/readings", json=item)
        assert response.status_code == 201, response.text
        assert [reading["timestamp"] for reading in readings(http, metric_id)] == [last]


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
    [],
    {},
    UUID4,
    UUID1,
    NIL_UUID,
    "ffffffff-ffff-ffff-ffff-ffffffffffff",
    UUID7[:-1],
    UUID7 + "0",
]


def test_a_null_metric_id_is_no_metric(http: httpx.Client) -> None:
    post_metric(http)
    before = state(http)
    response = http.post("/metrics/readings", json={"metric_id": None, "value": 1})
    assert_error(response, 400, "metric_id or metric (a metric's name) is required")
    assert state(http) == before


@pytest.mark.parametrize("bad", BAD_METRIC_IDS)
def test_create_reading_bad_metric_id_400(http: httpx.Client, bad: object) -> None:
    post_metric(http)
    before = state(http)
    response = http.post("/metrics/readings", json={"metric_id": bad, "value": 1})
    assert_error(response, 400, METRIC_ID_MESSAGE)
    assert state(http) == before


def test_create_reading_missing_metric_id_400(http: httpx.Client) -> None:
    response = http.post("/metrics/readings", json={"value": 1})
    assert_error(response, 400, "metric_id or metric (a metric's name) is required")


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
    assert_error(http.post("/metrics/readings", json=payload), 400, timestamp_message(bad))
    assert state(http) == before


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        ({}, "metric_id or metric (a metric's name) is required; value is required"),
        ({"value": 0}, f"metric_id or metric (a metric's name) is required; {VALUE_MESSAGE}"),
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
    assert_error(response, 400, timestamp_message(bad, field))


def test_list_readings_unencoded_plus_offset_is_400(http: httpx.Client, metric_id: str) -> None:
    """A raw `+` in a query string means a space; the client must send `%2B`."""
    response = http.get(f"/metrics/{metric_id}/readings?since=2026-01-01T10:00:00+02:00")
    hint = "'2026-01-01T10:00:00 02:00' has a space where its offset's + belongs: in a URL, send + as %2B"
    assert_error(response, 400, f"since {RFC3339_RULE.split(',')[0]}: {hint}")


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


# --- the largest answers, in slices ---------------------------------------------------------------


def test_the_largest_answer_does_not_stall_the_stream(open_stream: Callable[..., Any]) -> None:
    """200,000 embedded readings took ~0.8 s built whole on the loop, stalling every stream for most of
    the answer's time; in slices, a live event keeps arriving in milliseconds. Measured against the
    answer's own time, in the same run, so a machine busy with other work slows both alike."""
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

        fetch_seconds: list[float] = []

        def fetch() -> None:
            started = time.perf_counter()
            with httpx.Client(base_url=hub.url, timeout=60) as http:
                answer.append(
                    http.get("/metrics", params={"with_readings": "true", "readings_limit": 10_000})
                )
            fetch_seconds.append(time.perf_counter() - started)

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
        waited, took = max(latencies), fetch_seconds[0]
        assert waited < took / 5, (
            f"a live event waited {waited * 1000:.0f} ms of the answer's {took * 1000:.0f}"
        )
