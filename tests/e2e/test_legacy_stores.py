"""Stores written by f80204b, before metrics had labels (tests/support/legacy.py), opened by today's code:
every metric kept, with empty labels and no unit or description, its readings intact; the two metrics
that share the name `cpu` still answer the shared-name 409, which says how to resolve it; and labelled
metrics of that name are new metrics beside them."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from metricstream.errors import ConflictError
from metricstream.server.hub import Hub
from tests.support.apitools import assert_error
from tests.support.hubs import FAST
from tests.support.legacy import LEGACY_STORES, expected, legacy_store

SHARED = (
    "2 metrics are named 'cpu': write to one by its metric_id (GET /metrics?name=... lists them), or keep "
    "one: delete the others (DELETE /metrics/{id}); such duplicates were made before a metric was "
    "identified by its name and labels"
)


@pytest.fixture(params=LEGACY_STORES)
def legacy_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    redis_url = request.getfixturevalue("redis_server") if request.param == "redis" else None
    return legacy_store(request.param, tmp_path, redis_url)


@pytest.fixture
def legacy_hub(legacy_url: str) -> Iterator[Hub]:
    hub = Hub(port=0, **{**FAST, "store": legacy_url}).start()
    try:
        yield hub
    finally:
        hub.stop()


def listed(http: httpx.Client) -> list[dict[str, Any]]:
    answer = http.get("/metrics", params={"with_readings": "true"})
    assert answer.status_code == 200, answer.text
    metrics: list[dict[str, Any]] = answer.json()
    return metrics


def test_every_metric_is_kept_with_empty_labels_and_its_readings(legacy_hub: Hub, legacy_url: str) -> None:
    kind = "sqlite" if legacy_url.startswith("sqlite") else "redis"
    old = expected(kind)
    assert [m["name"] for m in old] == ["cpu", "cpu", "temp", "café"]
    with httpx.Client(base_url=legacy_hub.url, timeout=10) as http:
        now = listed(http)
    wanted = [
        {**metric, "labels": {}, "unit": None, "description": None, "readings_truncated": False}
        for metric in old
    ]
    assert now == wanted
    # and in Python
    assert [m.labels for m in legacy_hub.service.list_metrics()] == [{}, {}, {}, {}]


def test_the_shared_name_still_answers_409_saying_how_to_resolve_it(legacy_hub: Hub) -> None:
    first, second = legacy_hub.service.list_metrics(name="cpu")
    with httpx.Client(base_url=legacy_hub.url, timeout=10) as http:
        before = listed(http)
        assert_error(http.post("/metrics/readings", json={"metric": "cpu", "value": 1}), 409, SHARED)
        batch = http.post("/metrics/readings/batch", json={"readings": [{"metric": "cpu", "value": 1}]})
        assert_error(batch, 409, SHARED)
        # a create of that name and no labels cannot pick one either
        assert_error(http.post("/metrics", json={"name": "cpu"}), 409, SHARED)
        with pytest.raises(ConflictError) as refused:
            legacy_hub.service.log("cpu", 1)
        assert str(refused.value) == SHARED
        with pytest.raises(ConflictError, match=r"^2 metrics are named 'cpu'"):
            legacy_hub.service.metric("cpu")
        assert listed(http) == before
        # labelled, cpu is another metric: no ambiguity
        labelled = legacy_hub.service.log("cpu", 2, labels={"host": "a"})
        assert labelled.metric_id not in (first.id, second.id)
        # resolved as the message says: delete one, and the name designates the other
        assert http.delete(f"/metrics/{first.id}").status_code == 204
        assert legacy_hub.service.log("cpu", 3).metric_id == second.id
        assert http.post("/metrics", json={"name": "cpu"}).json()["id"] == second.id


def test_an_old_metric_is_found_again_by_a_repeated_create(legacy_hub: Hub) -> None:
    [temp] = legacy_hub.service.list_metrics(name="temp")
    with httpx.Client(base_url=legacy_hub.url, timeout=10) as http:
        again = http.post("/metrics", json={"name": "temp", "input_frequency": 5})
        assert again.status_code == 200, again.text
        assert again.json()["id"] == temp.id
        differing = http.post("/metrics", json={"name": "temp", "unit": "Cel"})
        assert_error(
            differing,
            409,
            f"metric {temp.id} has this name and these labels already, with another input_frequency and "
            "unit: give the same, or other labels for another metric",
        )


def test_a_mapping_naming_the_shared_name_is_refused_as_over_http(legacy_hub: Hub) -> None:
    with httpx.Client(base_url=legacy_hub.url, timeout=10) as http:
        before = listed(http)
        answer = http.post("/metrics/readings/batch", json={"readings": [{"metric": "cpu", "value": 1}]})
        with pytest.raises(ConflictError) as raised:
            legacy_hub.service.log({"acc": 0.5, "cpu": 0.3})
        assert raised.value.message == answer.json()["error"] == SHARED
        assert answer.status_code == 409
        assert listed(http) == before  # no `acc` either: all or nothing
