"""The `positive_only` setting: values > 0 by default, as the original service; any finite number when
it is off, over HTTP and in Python, on every store, in the stream and in /openapi.json."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from metricstream.errors import ValidationError
from metricstream.server.hub import Hub
from tests.support.apitools import VALUE_MESSAGE, assert_error, post_metric, readings, state

ANY_VALUE_MESSAGE = "value must be a finite number"


@pytest.fixture
def any_hub(make_hub: Callable[..., Hub]) -> Hub:
    return make_hub(positive_only=False)


def test_any_finite_value_is_stored_streamed_and_replayed(any_hub: Hub) -> None:
    values = [0.0, -5.5, 1e-300, -1e300, 42.0]
    with httpx.Client(base_url=any_hub.url, timeout=10) as http:
        metric = post_metric(http, "temperature")["id"]
        with any_hub.subscribe(metric_id=metric) as live:
            for value in values[:2]:  # one at a time over HTTP
                answer = http.post("/metrics/readings", json={"metric_id": metric, "value": value})
                assert answer.status_code == 201, answer.text
                assert answer.json()["value"] == value
            batch = [{"metric_id": metric, "value": value} for value in values[2:4]]
            answer = http.post("/metrics/readings/batch", json={"readings": batch})
            assert answer.status_code == 201, answer.text
            any_hub.service.create_reading(metric, values[4])  # and in Python
            seen = [event.data["value"] for _, event in zip(values, live, strict=False)]
        assert seen == values
        assert [reading["value"] for reading in readings(http, metric)] == values
    with any_hub.subscribe(start="earliest", metric_id=metric) as replay:
        assert [event.data["value"] for _, event in zip(values, replay, strict=False)] == values


@pytest.mark.parametrize("value", ["1", True, None, [1]])
def test_what_is_not_a_number_is_refused_with_the_settings_message(any_hub: Hub, value: Any) -> None:
    with httpx.Client(base_url=any_hub.url, timeout=10) as http:
        metric = post_metric(http)["id"]
        before = state(http)
        answer = http.post("/metrics/readings", json={"metric_id": metric, "value": value})
        assert_error(answer, 400, ANY_VALUE_MESSAGE)
        batch = {"readings": [{"metric_id": metric, "value": -1}, {"metric_id": metric, "value": value}]}
        answer = http.post("/metrics/readings/batch", json=batch)
        assert answer.status_code == 400
        assert answer.json()["errors"] == [{"index": 1, "error": ANY_VALUE_MESSAGE}]
        assert state(http) == before  # all or nothing: the good first item is not stored either


@pytest.mark.parametrize("value", [float("inf"), float("-inf"), float("nan"), 10**400])
def test_python_refuses_what_is_not_finite(any_hub: Hub, value: float) -> None:
    metric = any_hub.service.create_metric("m")
    with pytest.raises(ValidationError, match=f"^{ANY_VALUE_MESSAGE}$"):
        any_hub.service.create_reading(metric.id, value)
    assert any_hub.service.list_readings(metric.id) == []


@pytest.mark.parametrize("value", [0, -1, -0.5])
def test_by_default_only_values_above_zero_are_taken(hub: Hub, value: float) -> None:
    metric = hub.service.create_metric("m")
    with httpx.Client(base_url=hub.url, timeout=10) as http:
        answer = http.post("/metrics/readings", json={"metric_id": metric.id, "value": value})
        assert_error(answer, 400, VALUE_MESSAGE)
    with pytest.raises(ValidationError, match=f"^{re.escape(VALUE_MESSAGE)}$"):
        hub.service.create_reading(metric.id, value)


def _reading_schema(url: str) -> tuple[dict[str, Any], str]:
    """The request body schema of POST /metrics/readings, and the item schema the batch refers to."""
    document = httpx.get(f"{url}/openapi.json").json()
    schemas = document["components"]["schemas"]

    def resolve(schema: dict[str, Any]) -> dict[str, Any]:
        reference = schema.get("$ref")
        return schemas[reference.rsplit("/", 1)[1]] if reference else schema

    paths = document["paths"]
    single = resolve(
        paths["/metrics/readings"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    )
    batch = resolve(
        paths["/metrics/readings/batch"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    )
    item = batch["properties"]["readings"]["items"]["$ref"].rsplit("/", 1)[1]
    return single, item


def test_the_openapi_document_follows_the_setting(make_hub: Callable[..., Hub]) -> None:
    strict = make_hub()
    single, item = _reading_schema(strict.url)
    assert single["properties"]["value"]["exclusiveMinimum"] == 0
    assert item == "ReadingIn"
    strict.stop()  # the same store under another setting: a SQLite file serves one hub at a time
    loose = make_hub(positive_only=False)
    single, item = _reading_schema(loose.url)
    assert "exclusiveMinimum" not in single["properties"]["value"]
    assert single["properties"]["value"]["description"] == "A finite number."
    assert item == "AnyReadingIn"
