"""Limits end to end, over HTTP on every store (memory, SQLite, Redis through `make_hub`): name length,
metrics count, readings kept per metric (the oldest dropped), body size and batch size; and the same limits
through the Python API.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from metricstream.errors import LimitExceededError, MetricStreamError, ValidationError
from metricstream.server.hub import Hub
from metricstream.storage.memory import MemoryStorage
from tests.support.raw_stream import RawStream

MakeHub = Callable[..., Hub]
START = datetime(2026, 1, 1, tzinfo=UTC)


def at(second: int) -> str:
    return (START + timedelta(seconds=second)).isoformat().replace("+00:00", "Z")


def client(hub: Hub) -> httpx.Client:
    return httpx.Client(base_url=hub.url, timeout=10)


def assert_error(response: httpx.Response, status: int, message: str) -> None:
    assert response.status_code == status, response.text
    assert response.json() == {"error": message}


# --- name length ------------------------------------------------------------------------------------------


def test_name_length_is_configurable_below_the_documented_ceiling(make_hub: MakeHub) -> None:
    hub = make_hub(max_name_length=10)
    message = "name must be a string of 1 to 10 characters (after trimming spaces)"
    with client(hub) as http:
        assert http.post("/metrics", json={"name": "  " + "a" * 10 + "  "}).status_code == 201  # trimmed
        assert_error(http.post("/metrics", json={"name": "a" * 11}), 400, message)
        # over the model's own 200 too: still the configured number in the message
        assert_error(http.post("/metrics", json={"name": "a" * 300}), 400, message)
        assert_error(http.post("/metrics", json={"name": ""}), 400, message)
        # other errors of the same body keep their messages
        both = http.post("/metrics", json={"name": "a" * 11, "input_frequency": -1})
        assert both.json()["error"].startswith(message + "; input_frequency")
        assert len(http.get("/metrics").json()) == 1
        # the API document keeps the hard ceiling
        document = http.get("/openapi.json").json()
        body = document["paths"]["/metrics"]["post"]["requestBody"]["content"]["application/json"]["schema"]
        schema = document["components"]["schemas"][body["$ref"].rpartition("/")[2]]
        assert schema["properties"]["name"]["maxLength"] == 200
    with pytest.raises(ValidationError, match="1 to 10 characters"):
        hub.service.create_metric("b" * 11)


def test_default_name_length_is_200(make_hub: MakeHub) -> None:
    hub = make_hub()
    with client(hub) as http:
        assert http.post("/metrics", json={"name": "n" * 200}).status_code == 201
        assert_error(
            http.post("/metrics", json={"name": "n" * 201}),
            400,
            "name must be a string of 1 to 200 characters (after trimming spaces)",
        )


# --- metrics count ---------------------------------------------------------------------------------------


def test_metrics_beyond_max_metrics_are_409(make_hub: MakeHub) -> None:
    hub = make_hub(max_metrics=3)
    message = "metric limit reached: this server holds at most 3 metrics (the max_metrics setting)"
    stream = RawStream(hub.url, headers={"Last-Event-ID": "00000000-0000-0000-0000-000000000000"})
    try:
        stream.expect_open()
        with client(hub) as http:
            created = [http.post("/metrics", json={"name": f"m{i}"}) for i in range(3)]
            assert [answer.status_code for answer in created] == [201, 201, 201]
            assert_error(http.post("/metrics", json={"name": "one too many"}), 409, message)
            assert [metric["name"] for metric in http.get("/metrics").json()] == ["m0", "m1", "m2"]
            # readings of existing metrics are still welcome
            reading = http.post("/metrics/readings", json={"metric_id": created[0].json()["id"], "value": 1})
            assert reading.status_code == 201
        with pytest.raises(MetricStreamError, match="at most 3 metrics") as refused:
            hub.service.create_metric("from python")
        assert isinstance(refused.value, LimitExceededError)
        assert refused.value.status_code == 409
        # the refused ones emitted no event: the next one is the reading's
        events = [stream.next_event() for _ in range(4)]
        assert [frame.event for frame in events] == ["metric_created"] * 3 + ["metric_reading_created"]
    finally:
        stream.close()


# --- readings per metric ------------------------------------------------------------------------------------


def readings_of(http: httpx.Client, metric_id: str) -> list[dict[str, Any]]:
    answer = http.get(f"/metrics/{metric_id}/readings", params={"limit": 10_000})
    assert answer.status_code == 200, answer.text
    readings: list[dict[str, Any]] = answer.json()
    return readings


def test_readings_beyond_the_cap_drop_the_oldest(make_hub: MakeHub) -> None:
    hub = make_hub(max_readings_per_metric=5)
    with client(hub) as http:
        metric = http.post("/metrics", json={"name": "capped"}).json()["id"]
        other = http.post("/metrics", json={"name": "other"}).json()["id"]
        for second in range(1, 9):  # one at a time: 1..8
            answer = http.post(
                "/metrics/readings", json={"metric_id": metric, "value": second, "timestamp": at(second)}
            )
            assert answer.status_code == 201
        assert [r["value"] for r in readings_of(http, metric)] == [4, 5, 6, 7, 8]
        # a late reading older than all kept is stored and dropped at once: it is the oldest
        late = http.post("/metrics/readings", json={"metric_id": metric, "value": 0.5, "timestamp": at(0)})
        assert late.status_code == 201
        assert [r["value"] for r in readings_of(http, metric)] == [4, 5, 6, 7, 8]
        # one in the middle drops the oldest (4), whatever the arrival order
        middle = http.post("/metrics/readings", json={"metric_id": metric, "value": 6.5, "timestamp": at(6)})
        assert middle.status_code == 201
        assert [r["value"] for r in readings_of(http, metric)] == [5, 6, 6.5, 7, 8]
        # a batch larger than the cap, for two metrics: each keeps its own newest five
        batch = [{"metric_id": metric, "value": 100 + s, "timestamp": at(100 + s)} for s in range(12)]
        batch += [{"metric_id": other, "value": 200 + s, "timestamp": at(200 + s)} for s in range(3)]
        assert http.post("/metrics/readings/batch", json={"readings": batch}).status_code == 201
        assert [r["value"] for r in readings_of(http, metric)] == [107, 108, 109, 110, 111]
        assert [r["value"] for r in readings_of(http, other)] == [200, 201, 202]
        newest = http.get("/metrics", params={"with_readings": "true", "readings_limit": 2}).json()
        assert [r["value"] for r in newest[0]["readings"]] == [110, 111]
    # the Python API obeys the same cap
    hub.service.create_reading(other, 1, at(1000))
    hub.service.create_readings(
        [{"metric_id": other, "value": 2, "timestamp": at(1001 + s)} for s in range(3)]
    )
    assert len(hub.service.list_readings(other)) == 5
    assert hub.service.list_readings(other)[0].value == 202


def test_equal_timestamps_drop_the_lowest_id_first(make_hub: MakeHub) -> None:
    hub = make_hub(max_readings_per_metric=2)
    with client(hub) as http:
        metric = http.post("/metrics", json={"name": "ties"}).json()["id"]
        ids = [
            http.post("/metrics/readings", json={"metric_id": metric, "value": v, "timestamp": at(5)}).json()[
                "id"
            ]
            for v in (1, 2, 3)
        ]
        assert [r["id"] for r in readings_of(http, metric)] == ids[1:]  # ids grow: the first is the oldest


def test_the_cap_holds_over_many_writes(make_hub: MakeHub) -> None:
    hub = make_hub(max_readings_per_metric=10)
    with client(hub) as http:
        metric = http.post("/metrics", json={"name": "many"}).json()["id"]
        second = 0
        for size in (1, 7, 30, 3, 90, 1, 1, 50):  # crosses the memory store's compaction several times
            batch = [
                {"metric_id": metric, "value": second + i + 1, "timestamp": at(second + i)}
                for i in range(size)
            ]
            second += size
            assert http.post("/metrics/readings/batch", json={"readings": batch}).status_code == 201
            kept = readings_of(http, metric)
            assert [r["value"] for r in kept] == list(range(max(1, second - 9), second + 1))
            if second < 10:
                continue
            middle = http.get(
                f"/metrics/{metric}/readings", params={"since": at(second - 5), "until": at(second - 3)}
            ).json()
            assert [r["value"] for r in middle] == [second - 4, second - 3, second - 2]
    storage = hub.app.storage
    if isinstance(storage, MemoryStorage):  # the dropped readings were let go, not kept behind the live ones
        series = storage._readings[metric]
        assert len(series.items) - series.start == 10
        assert len(series.items) <= 10 + 64


def test_a_lower_cap_applies_at_the_next_write(make_hub: MakeHub, store_url: str) -> None:
    # The same store under a second hub: the file, the Redis prefix, or one MemoryStorage handed to both.
    kept: dict[str, Any] = {"storage": MemoryStorage()} if store_url == "memory://" else {}
    first = make_hub(max_readings_per_metric=100, **kept)
    metric = first.service.create_metric("kept across restarts")
    first.service.create_readings(
        [{"metric_id": metric.id, "value": s + 1, "timestamp": at(s)} for s in range(20)]
    )
    first.stop()
    second = make_hub(max_readings_per_metric=5, **kept)
    assert len(second.service.list_readings(metric.id)) == 20  # nothing is dropped until a write
    second.service.create_reading(metric.id, 99, at(99))
    assert [r.value for r in second.service.list_readings(metric.id)] == [17, 18, 19, 20, 99]


# --- body and batch size (existing limits, checked on every store) -----------------------------------------


def test_body_and_batch_limits(make_hub: MakeHub) -> None:
    hub = make_hub(max_body=200, max_batch=3)
    with client(hub) as http:
        metric = http.post("/metrics", json={"name": "m"}).json()["id"]
        assert_error(
            http.post("/metrics", json={"name": "x", "padding": "p" * 300}),
            413,
            "request body is larger than 200 bytes",
        )
        one = {"metric_id": metric, "value": 1}
        assert http.post("/metrics/readings/batch", json={"readings": [one] * 3}).status_code == 201
        assert_error(
            http.post("/metrics/readings/batch", json={"readings": [one] * 4}),
            400,
            "at most 3 readings per batch, got 4",
        )
        assert len(readings_of(http, metric)) == 3


def test_max_batch_holds_for_the_python_api_too(make_hub: MakeHub) -> None:
    hub = make_hub(max_batch=3)
    metric = hub.service.create_metric("m")
    items = [{"metric_id": metric.id, "value": v} for v in range(1, 6)]
    with pytest.raises(ValidationError) as refused:
        hub.service.create_readings(items)
    assert str(refused.value) == "at most 3 readings per batch, got 5"  # the HTTP answer's words
    assert hub.service.list_readings(metric.id) == []  # nothing stored
    assert len(hub.service.create_readings(items[:3])) == 3
