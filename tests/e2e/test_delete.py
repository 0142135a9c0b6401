"""DELETE /metrics/{id} and `hub.service.delete_metric`: the metric and its readings go, `metric_deleted`
is announced, what was published before still replays, and the room counts again under max_metrics;
on every store, over HTTP and in Python."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import UTC, datetime

import httpx
import pytest

from metricstream.domain.values import MetricReading
from metricstream.errors import NotFoundError
from metricstream.ids import new_id
from metricstream.server.hub import Hub
from metricstream.storage import open_storage
from metricstream.stream.log import Event
from metricstream.wire import METRIC_DELETED, READING_CREATED
from tests.support.apitools import assert_error, post_metric, post_reading

TOKEN = "a-write-token-long-enough"


def test_deletion_removes_announces_and_replays(hub: Hub, http: httpx.Client) -> None:
    kept, doomed = post_metric(http, "kept")["id"], post_metric(http, "doomed")["id"]
    post_reading(http, doomed, 2.0)
    start = hub.service.last_event_id
    with hub.subscribe() as live, hub.subscribe(metric_id=doomed) as filtered:
        answer = http.delete(f"/metrics/{doomed}")
        assert answer.status_code == 204
        assert answer.content == b""
        event = next(iter(live))
        assert (event.type, event.data) == (METRIC_DELETED, {"id": doomed})
        assert next(iter(filtered)).type == METRIC_DELETED  # a metric's own stream hears of it
    assert_error(http.get(f"/metrics/{doomed}"), 404, f"metric {doomed} not found")
    assert_error(http.get(f"/metrics/{doomed}/readings"), 404)
    missing = http.post("/metrics/readings", json={"metric_id": doomed, "value": 1})
    assert_error(missing, 404, f"metric {doomed} not found")
    assert [metric["id"] for metric in http.get("/metrics").json()] == [kept]
    # what was published before the deletion replays as it was, then the deletion
    with hub.subscribe(start="earliest") as replay:
        history = [(e.type, e.data.get("id")) for _, e in zip(range(4), replay, strict=False)]
    assert [kind for kind, _ in history] == [
        "metric_created",
        "metric_created",
        READING_CREATED,
        METRIC_DELETED,
    ]
    assert history[-1] == (METRIC_DELETED, doomed)
    assert hub.service.last_event_id != start


def test_an_unknown_or_malformed_id_is_refused_and_announces_nothing(hub: Hub, http: httpx.Client) -> None:
    before = hub.service.last_event_id
    unknown = new_id()
    assert_error(http.delete(f"/metrics/{unknown}"), 404, f"metric {unknown} not found")
    assert_error(http.delete("/metrics/not-a-uuid"), 400)
    with pytest.raises(NotFoundError, match=f"metric {unknown} not found"):
        hub.service.delete_metric(unknown)
    assert hub.service.last_event_id == before


def test_python_deletes_as_http_does(hub: Hub) -> None:
    metric = hub.service.create_metric("m")
    hub.service.create_reading(metric.id, 1.0)
    hub.service.delete_metric(metric.id)
    assert hub.service.list_metrics() == []
    with pytest.raises(NotFoundError):
        hub.service.get_metric(metric.id)
    with pytest.raises(NotFoundError):
        hub.service.create_reading(metric.id, 1.0)
    with pytest.raises(NotFoundError):  # deleted once only
        hub.service.delete_metric(metric.id)


def test_deleting_frees_room_under_max_metrics(make_hub: Callable[..., Hub]) -> None:
    hub = make_hub(max_metrics=1)
    with httpx.Client(base_url=hub.url, timeout=10) as http:
        first = post_metric(http)["id"]
        assert http.post("/metrics", json={"name": "second"}).status_code == 409
        assert http.delete(f"/metrics/{first}").status_code == 204
        assert http.post("/metrics", json={"name": "second"}).status_code == 201


def test_deleting_needs_the_write_token(make_hub: Callable[..., Hub]) -> None:
    hub = make_hub(token=TOKEN)
    metric = hub.service.create_metric("m")
    with httpx.Client(base_url=hub.url, timeout=10) as http:
        assert_error(http.delete(f"/metrics/{metric.id}"), 401)
        assert http.get(f"/metrics/{metric.id}").status_code == 200  # still there
        answer = http.delete(f"/metrics/{metric.id}", headers={"Authorization": f"Bearer {TOKEN}"})
        assert answer.status_code == 204


def test_a_deletion_survives_a_restart(make_hub: Callable[..., Hub], store_url: str) -> None:
    if store_url == "memory://":
        pytest.skip("the memory store keeps nothing across a restart")
    first = make_hub()
    metric = first.service.create_metric("m")
    first.service.create_reading(metric.id, 1.0)
    first.service.delete_metric(metric.id)
    first.stop()
    second = make_hub()
    assert second.service.list_metrics() == []
    with second.subscribe(start="earliest") as replay:
        kinds = [event.type for _, event in zip(range(3), replay, strict=False)]
    assert kinds == ["metric_created", READING_CREATED, METRIC_DELETED]


def test_the_store_refuses_readings_of_a_metric_deleted_meanwhile(store_url: str) -> None:
    """What a second process sharing the store could do between the service's check and its write."""

    async def scenario() -> None:
        storage = open_storage(store_url)
        await storage.open()
        try:
            from metricstream.domain.values import Metric
            from metricstream.wire import METRIC_CREATED

            metric = Metric(new_id(), "m")
            await storage.add_metric(metric, Event.create(METRIC_CREATED, metric, 1.0))
            deleted = Event.restore(new_id(), METRIC_DELETED, metric.id, b'{"id":"x"}', 2.0)
            assert await storage.delete_metric(metric.id, deleted)
            assert not await storage.delete_metric(metric.id, deleted)  # nothing left to delete
            reading = MetricReading(new_id(), metric.id, 1.0, datetime.now(UTC))
            with pytest.raises(NotFoundError, match="not found"):
                await storage.add_readings([reading], [Event.create(READING_CREATED, reading, 3.0)])
            retained = await storage.retained_events()
            assert [event.type for event in retained.events] == [METRIC_CREATED, METRIC_DELETED]
        finally:
            await storage.close()

    asyncio.run(scenario())
