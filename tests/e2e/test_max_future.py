"""`max_future`: how far ahead of the server's clock a reading's timestamp may be (300 s by default, `none`
for any). Beyond it a reading is refused with 400 / `ValidationError` on every path (HTTP and Python, by id
and by name, single and batch) and every store; time comes from a `ManualClock`, stepped both ways."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from metricstream.clock import ManualClock
from metricstream.domain.values import format_timestamp
from metricstream.errors import ValidationError
from metricstream.server.hub import Hub
from tests.support.apitools import assert_error, state

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def at(seconds: float) -> str:
    return format_timestamp(T0 + timedelta(seconds=seconds))


def ahead(timestamp: str, limit: str = "300") -> str:
    return (
        f"timestamp {timestamp} is more than {limit} seconds ahead of the server's clock "
        f"(max_future={limit}; set max_future=none to accept any)"
    )


def assert_refused_everywhere(
    hub: Hub, http: httpx.Client, metric_id: str, timestamp: str, message: str
) -> None:
    """A reading at `timestamp` is refused with `message` on every path, and nothing is stored."""
    before = state(http)
    by_id = {"metric_id": metric_id, "value": 1, "timestamp": timestamp}
    by_name = {"metric": "new", "value": 1, "timestamp": timestamp}
    fine = {"metric_id": metric_id, "value": 1}
    for item in (by_id, by_name):
        assert_error(http.post("/metrics/readings", json=item), 400, message)
        batch = http.post("/metrics/readings/batch", json={"readings": [fine, item]})
        assert batch.status_code == 400
        assert batch.json()["errors"] == [{"index": 1, "error": message}]
    moment = datetime.fromisoformat(timestamp)  # a datetime takes the model's path, a string the fast one
    calls: list[Callable[[], Any]] = [
        lambda: hub.service.create_reading(metric_id, 1, timestamp),
        lambda: hub.service.create_reading(metric_id, 1, moment),
        lambda: hub.service.log("new", 1, timestamp),
        lambda: hub.service.log("new", 1, moment),
    ]
    for call in calls:
        with pytest.raises(ValidationError) as raised:
            call()
        assert raised.value.message == message
    with pytest.raises(ValidationError) as batch_raised:
        hub.service.create_readings([fine, by_name])
    assert batch_raised.value.errors == [{"index": 1, "error": message}]
    assert state(http) == before  # no reading, and no metric "new"


def test_a_reading_too_far_ahead_is_refused_on_every_path_and_store(make_hub: Callable[..., Hub]) -> None:
    clock = ManualClock(wall=T0.timestamp())
    hub = make_hub(clock=clock)  # max_future: 300 s by default
    metric = hub.service.create_metric("m")
    with httpx.Client(base_url=hub.url, timeout=10) as http:
        assert_refused_everywhere(hub, http, metric.id, at(300.000001), ahead(at(300.000001)))
        # the edge itself is fine, by id and by name
        edge = http.post("/metrics/readings", json={"metric_id": metric.id, "value": 1, "timestamp": at(300)})
        assert edge.status_code == 201, edge.text
        assert hub.service.log("edge", 1, at(300)).timestamp == T0 + timedelta(seconds=300)
        # the wall clock steps back: a timestamp that was fine is now too far ahead
        clock.step_wall(-600)
        assert_refused_everywhere(hub, http, metric.id, at(0), ahead(at(0)))
        # and forward: one that was too far ahead is now fine
        clock.step_wall(600)
        clock.advance(1)
        later_by_name = {"metric": "m", "value": 2, "timestamp": at(301)}
        later = http.post("/metrics/readings/batch", json={"readings": [later_by_name]})
        assert later.status_code == 201, later.text
        assert [r.value for r in hub.service.list_readings(metric.id)] == [1, 2]


def test_the_issue_example_far_in_the_future_is_refused_by_default(hub: Hub, http: httpx.Client) -> None:
    before = state(http)
    far = {"metric": "cpu", "value": 1, "timestamp": "2099-01-01T00:00:00Z"}
    answer = http.post("/metrics/readings", json=far)
    assert_error(answer, 400, ahead("2099-01-01T00:00:00.000000Z"))
    with pytest.raises(ValidationError, match=r"max_future=300; set max_future=none"):
        hub.service.log("cpu", 1, datetime(2099, 1, 1, tzinfo=UTC))
    assert state(http) == before


@pytest.mark.parametrize("disabled", [None, "none", "None", " NONE "])
def test_max_future_none_accepts_any_timestamp(start_hub: Callable[..., Hub], disabled: str | None) -> None:
    hub = start_hub(max_future=disabled)
    assert hub.settings.max_future is None
    assert hub.service.log("cpu", 1, "9999-12-31T23:59:59.999999Z").timestamp.year == 9999


def test_a_lower_max_future_is_named_in_its_message(start_hub: Callable[..., Hub]) -> None:
    clock = ManualClock(wall=T0.timestamp())
    hub = start_hub(clock=clock, max_future=0.5)
    with pytest.raises(ValidationError) as raised:
        hub.service.log("cpu", 1, at(0.6))
    assert raised.value.message == ahead(at(0.6), "0.5")
    assert hub.service.log("cpu", 1, at(0.5)).value == 1
    exact = start_hub(clock=clock, max_future=0)  # nothing after the server's now
    with pytest.raises(ValidationError, match="more than 0 seconds ahead"):
        exact.service.log("cpu", 1, at(0.000001))
    assert exact.service.log("cpu", 1, at(0)).value == 1
