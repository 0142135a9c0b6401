"""`POST /metrics/readings/batch` and `hub.service.create_readings`: all or nothing, one event each."""

from __future__ import annotations

from collections.abc import Callable

import httpx
import pytest

from metricstream.errors import NotFoundError, ValidationError
from metricstream.server.hub import Hub
from tests.support.raw_stream import OpenStream


def test_a_batch_stores_every_reading_and_announces_each_in_order(
    hub: Hub, http: httpx.Client, open_stream: OpenStream
) -> None:
    metric = http.post("/metrics", json={"name": "cpu"}).json()
    stream = open_stream(hub.url)
    stream.expect_open()
    items = [{"metric_id": metric["id"], "value": v} for v in range(1, 501)]
    items[7]["timestamp"] = "2026-01-01T12:00:00+02:00"
    response = http.post("/metrics/readings/batch", json={"readings": items})
    assert response.status_code == 201
    created = response.json()["readings"]
    assert [r["value"] for r in created] == list(range(1, 501))
    assert created[7]["timestamp"] == "2026-01-01T10:00:00.000000Z"
    events = [stream.next_event() for _ in created]
    assert [e.event for e in events] == ["metric_reading_created"] * 500
    assert [e.json() for e in events] == created  # each event's data is that reading, in order
    stored = http.get(f"/metrics/{metric['id']}/readings", params={"limit": 10000}).json()
    assert sorted(r["id"] for r in stored) == sorted(r["id"] for r in created)


def test_a_bad_item_rejects_the_whole_batch_with_per_item_errors(hub: Hub, http: httpx.Client) -> None:
    metric = http.post("/metrics", json={"name": "cpu"}).json()
    before = http.get("/healthz").json()["events"]
    items = [{"metric_id": metric["id"], "value": v} for v in (1, 0, 3, -1, "x")]
    response = http.post("/metrics/readings/batch", json={"readings": items})
    assert response.status_code == 400
    body = response.json()
    assert body["error"].startswith("3 of 5 readings rejected, none stored: readings[1]: value must be")
    assert [e["index"] for e in body["errors"]] == [1, 3, 4]
    assert all(
        e["error"]
        == "value must be a finite number greater than 0 (set positive_only=false to accept any finite value)"
        for e in body["errors"]
    )
    assert http.get(f"/metrics/{metric['id']}/readings").json() == []
    assert http.get("/healthz").json()["events"] == before


def test_an_unknown_metric_rejects_the_whole_batch_with_404(hub: Hub, http: httpx.Client) -> None:
    metric = http.post("/metrics", json={"name": "cpu"}).json()
    ghost = "01a21b5a-9c48-7513-90f9-87cc5399a7f6"
    items = [{"metric_id": metric["id"], "value": 1}, {"metric_id": ghost, "value": 2}]
    response = http.post("/metrics/readings/batch", json={"readings": items})
    assert response.status_code == 404
    assert response.json()["errors"] == [{"index": 1, "error": f"metric {ghost} not found"}]
    assert http.get(f"/metrics/{metric['id']}/readings").json() == []


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ([], 'the body must be {"readings": [...]}'),
        ({"readings": "x"}, 'the body must be {"readings": [...]}'),
        ({}, 'the body must be {"readings": [...]}'),
        ({"readings": [1]}, "1 of 1 readings rejected"),
    ],
)
def test_a_malformed_batch_is_400(http: httpx.Client, body: object, message: str) -> None:
    response = http.post("/metrics/readings/batch", json=body)
    assert response.status_code == 400
    assert message in response.json()["error"]


def test_batch_size_is_limited(make_hub: Callable[..., Hub]) -> None:
    hub = make_hub(max_batch=3)
    with httpx.Client(base_url=hub.url) as http:
        metric = http.post("/metrics", json={"name": "cpu"}).json()
        items = [{"metric_id": metric["id"], "value": v} for v in range(1, 5)]
        response = http.post("/metrics/readings/batch", json={"readings": items})
        assert response.status_code == 400
        assert response.json()["error"] == "at most 3 readings per batch, got 4"
        assert http.post("/metrics/readings/batch", json={"readings": items[:3]}).status_code == 201


def test_an_empty_batch_creates_nothing(http: httpx.Client) -> None:
    response = http.post("/metrics/readings/batch", json={"readings": []})
    assert response.status_code == 201
    assert response.json() == {"readings": []}
    assert http.get("/healthz").json()["events"] == 0


def test_ten_thousand_readings_with_timestamps_fit_in_one_batch(http: httpx.Client) -> None:
    metric = http.post("/metrics", json={"name": "cpu"}).json()
    items = [
        {"metric_id": metric["id"], "value": v + 0.123456789, "timestamp": "2026-01-01T12:00:00.123456+00:00"}
        for v in range(1, 10_001)
    ]
    response = http.post("/metrics/readings/batch", json={"readings": items}, timeout=60)
    assert response.status_code == 201, response.text[:200]
    assert len(response.json()["readings"]) == 10_000


def test_service_create_readings_matches_the_batch_endpoint(hub: Hub) -> None:
    metric = hub.service.create_metric("cpu")
    readings = hub.service.create_readings([{"metric_id": metric.id, "value": v} for v in (1, 2)])
    assert [r.value for r in readings] == [1, 2]
    with pytest.raises(ValidationError) as rejected:
        hub.service.create_readings([{"metric_id": metric.id, "value": 1}, {"metric_id": metric.id}])
    assert rejected.value.errors == [{"index": 1, "error": "value is required"}]
    with pytest.raises(NotFoundError):
        hub.service.create_readings([{"metric_id": "01a21b5a-9c48-7513-90f9-87cc5399a7f6", "value": 1}])
    assert hub.service.list_readings(metric.id) == readings
