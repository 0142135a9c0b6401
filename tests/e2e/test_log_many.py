"""`log({...})`: many metrics in one call, through `hub.service` and `hub.log`, on every store.

One batch by name: all or nothing, one timestamp for every reading, metrics created in the mapping's order
and announced before the readings, refused with the batch route's own messages.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

import httpx
import pytest

from metricstream.clock import ManualClock
from metricstream.errors import HubError, ValidationError
from metricstream.server.hub import Hub
from tests.support.hubs import FAST
from tests.support.raw_stream import OpenStream

MakeHub = Callable[..., Hub]
WALL = 1_780_000_000.25


def test_log_of_a_mapping_creates_metrics_in_its_order_then_the_readings(
    make_hub: MakeHub, open_stream: OpenStream
) -> None:
    hub = make_hub(clock=ManualClock(WALL))
    lr = hub.service.metric("lr")
    stream = open_stream(hub.url)
    stream.expect_open()
    readings = hub.service.log({"loss": 0.31, "lr": 0.001, "acc": 0.92})
    assert [r.value for r in readings] == [0.31, 0.001, 0.92]
    created = [stream.next_event() for _ in range(2)]
    assert [(e.event, e.json()["name"]) for e in created] == [
        ("metric_created", "loss"),
        ("metric_created", "acc"),
    ]
    ids = {"loss": created[0].json()["id"], "lr": lr.id, "acc": created[1].json()["id"]}
    assert [r.metric_id for r in readings] == list(ids.values())
    events = [stream.next_event() for _ in readings]
    assert [e.event for e in events] == ["metric_reading_created"] * 3
    assert [e.json()["id"] for e in events] == [r.id for r in readings]
    assert [m.name for m in hub.service.list_metrics()] == ["lr", "loss", "acc"]


def test_every_reading_of_one_call_shares_one_timestamp_from_the_clock(make_hub: MakeHub) -> None:
    clock = ManualClock(WALL)
    hub = make_hub(clock=clock)
    first = hub.service.log({f"m{i}": i + 1 for i in range(50)})
    assert {r.timestamp for r in first} == {datetime.fromtimestamp(WALL, UTC)}
    clock.advance(2.5)
    second = hub.service.log({"m0": 1.0, "m1": 2.0})
    assert {r.timestamp for r in second} == {datetime.fromtimestamp(WALL + 2.5, UTC)}


def test_a_given_timestamp_is_every_readings(hub: Hub) -> None:
    readings = hub.service.log({"loss": 0.5, "acc": 0.7}, timestamp="2026-01-01T12:00:00+02:00")
    assert {r.timestamp for r in readings} == {datetime(2026, 1, 1, 10, tzinfo=UTC)}


def test_a_bad_value_among_good_ones_stores_nothing_and_creates_no_metric(
    hub: Hub, http: httpx.Client
) -> None:
    hub.service.log("acc", 0.5)
    events = http.get("/healthz").json()["events"]
    with pytest.raises(ValidationError) as raised:
        hub.service.log({"loss": 0.31, "acc": -1.0, "new": 2.0, "bad": "x"})  # type: ignore[dict-item]
    assert raised.value.message.startswith("2 of 4 readings rejected, none stored: readings[1]: value")
    assert [e["index"] for e in raised.value.errors or []] == [1, 3]
    assert [m.name for m in hub.service.list_metrics()] == ["acc"]
    assert len(list(hub.service.iter_readings(hub.service.metric("acc").id))) == 1
    assert http.get("/healthz").json()["events"] == events


@pytest.mark.parametrize(
    "values",
    [
        {"loss": 0.31, "acc": 0.0},
        {"loss": 0.31, "": 1.0, "x" * 300: 2.0},
        {"loss": 0.31, 5: 1.0},
        {"loss": True},
    ],
    ids=["not-positive", "bad-names", "name-not-text", "bool"],
)
def test_refusals_are_the_batch_routes_own(hub: Hub, http: httpx.Client, values: dict[str, float]) -> None:
    items = [{"metric": name, "value": value} for name, value in values.items()]
    answer = http.post("/metrics/readings/batch", json={"readings": items})
    assert answer.status_code == 400
    with pytest.raises(ValidationError) as raised:
        hub.service.log(values)
    assert raised.value.message == answer.json()["error"]
    assert raised.value.errors == answer.json()["errors"]
    assert hub.service.list_metrics() == []


def test_max_batch_holds_for_a_mapping_as_over_http(make_hub: MakeHub) -> None:
    hub = make_hub(max_batch=2)
    with httpx.Client(base_url=hub.url) as http:
        items = [{"metric": name, "value": 1} for name in "abc"]
        answer = http.post("/metrics/readings/batch", json={"readings": items}).json()
    with pytest.raises(ValidationError) as raised:
        hub.service.log({"a": 1, "b": 1, "c": 1})
    assert raised.value.message == answer["error"] == "at most 2 readings per batch, got 3"
    assert hub.service.list_metrics() == []


def test_an_empty_mapping_stores_nothing(hub: Hub, http: httpx.Client) -> None:
    events = http.get("/healthz").json()["events"]
    assert hub.service.log({}) == []
    assert http.post("/metrics/readings/batch", json={"readings": []}).json() == {"readings": []}
    assert http.get("/healthz").json()["events"] == events


def test_a_mapping_and_a_value_together_are_refused(hub: Hub) -> None:
    with pytest.raises(ValidationError, match="a mapping of names to values, or a name and a value"):
        hub.service.log({"loss": 1.0}, 2.0)  # type: ignore[call-overload]
    with pytest.raises(ValidationError, match="a mapping of names to values, or a name and a value"):
        hub.log({"loss": 1.0}, 2.0)  # type: ignore[call-overload]
    assert hub.service.list_metrics() == []


def test_the_name_and_value_form_still_returns_one_reading(hub: Hub) -> None:
    reading = hub.service.log("loss", 0.5)
    assert reading.value == 0.5
    assert hub.log("loss", 0.25, "2026-01-01T00:00:00Z").metric_id == reading.metric_id


def test_hub_log_starts_a_new_hub_and_refuses_a_stopped_one() -> None:
    hub = Hub(port=0, store="memory://", **FAST)
    try:
        readings = hub.log({"loss": 0.31, "acc": 0.92})
        assert hub.running
        assert [m.name for m in hub.service.list_metrics()] == ["loss", "acc"]
        assert [r.metric_id for r in readings] == [m.id for m in hub.service.list_metrics()]
    finally:
        hub.stop()
    with pytest.raises(HubError, match="not running"):
        hub.log({"loss": 0.3})
    assert not hub.running
