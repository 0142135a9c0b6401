"""The Python API says exactly what HTTP says: the same answers and the same messages, for good input and
bad."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from metricstream.errors import MetricStreamError, NotFoundError, ValidationError
from metricstream.ids import new_id
from metricstream.server.hub import Hub
from metricstream.service.metric_service import MetricService
from tests.support.apitools import (
    assert_error,
    post_reading,
    state,
)

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
