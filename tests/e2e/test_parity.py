"""The Python API says exactly what HTTP says: the same answers and the same messages, for good input and
bad."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx
import orjson
import pytest

from metricstream.clock import ManualClock
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


# --- a single write and a batch of one are indistinguishable -------------------------------------

WALL = 1_780_000_000.0  # both hubs' clocks stand here: a reading without a timestamp gets this time
KNOWN = ("known", {"host": "a"})


def _at(seconds_from_now: float) -> str:
    return datetime.fromtimestamp(WALL + seconds_from_now, UTC).isoformat()


# Items written once alone and once as a batch of one; `{known}` stands for the known metric's id.
ITEMS: list[Any] = [
    {"metric_id": "{known}", "value": 1.5},
    {"metric_id": "{known}", "value": 2, "timestamp": _at(-30)},
    {"metric": "known", "labels": {"host": "a"}, "value": 3},
    {"metric": "fresh", "value": 4},  # creates its metric
    {"metric": " fresh ", "value": 5, "timestamp": _at(-1)},  # finds it
    {"metric": "other", "labels": {"dc": "x"}, "value": 6, "timestamp": _at(60)},
    {"metric_id": "{known}", "value": 7},  # past max_readings_per_metric: the oldest goes
    {"metric_id": UNKNOWN, "value": 1},
    {"metric_id": "{known}", "value": 0},
    {"metric_id": "{known}", "value": 1, "timestamp": _at(-7200)},  # older than reading_ttl
    {"metric_id": "{known}", "value": 1, "timestamp": _at(3600)},  # past max_future
    {"metric_id": "abc", "value": 1},
    {"metric": "x", "metric_id": "{known}", "value": 1},
    {"metric": "", "value": 1},
    [1],
]
SETTINGS: dict[str, Any] = {"reading_ttl": 3600.0, "max_future": 600.0, "max_readings_per_metric": 3}


def _other_store(store_url: str) -> str:
    """A second, empty store of the same backend."""
    if store_url.startswith("sqlite"):
        return store_url.replace(".db", "-batch.db")
    if store_url.startswith("redis"):
        return store_url.removesuffix(":") + "-batch:"
    return store_url


class Canonical:
    """JSON with every UUID replaced by the order of its first appearance: two hubs that did the same
    things in the same order look alike, whatever ids they drew."""

    def __init__(self) -> None:
        self.names: dict[str, str] = {}

    def __call__(self, value: Any) -> Any:
        if isinstance(value, dict):
            return {key: self(item) for key, item in value.items()}
        if isinstance(value, list):
            return [self(item) for item in value]
        if isinstance(value, str) and len(value) == 36 and value.count("-") == 4:
            return self.names.setdefault(value, f"<id {len(self.names)}>")
        return value


def _with_known(item: Any, known: str) -> Any:
    if isinstance(item, dict) and item.get("metric_id") == "{known}":
        return {**item, "metric_id": known}
    return item


def _outside(hub: Hub, http: httpx.Client, canonical: Canonical) -> tuple[Any, Any]:
    """What anyone can see of a hub: its events in order, and its metrics with their readings."""
    log = hub.app.log
    events = [(e.type, canonical(orjson.loads(e.body))) for e in log.between(log.base, log.head)]
    listing = http.get("/metrics", params={"with_readings": "true"}).json()
    return events, canonical(listing)


def test_a_single_write_and_a_batch_of_one_look_alike_from_outside(
    make_hub: Callable[..., Hub], store_url: str
) -> None:
    """Over HTTP and in Python: the same answer (a batch's one reading, or its one error), the same
    events, the same state, for readings by id and by name, new names, trimmed series and refusals."""
    alone = make_hub(clock=ManualClock(wall=WALL), **SETTINGS)
    batched = make_hub(clock=ManualClock(wall=WALL), store=_other_store(store_url), **SETTINGS)
    seen_alone, seen_batched = Canonical(), Canonical()
    with httpx.Client(base_url=alone.url) as one, httpx.Client(base_url=batched.url) as many:
        known_alone = alone.service.create_metric(KNOWN[0], labels=KNOWN[1]).id
        known_batched = batched.service.create_metric(KNOWN[0], labels=KNOWN[1]).id
        for item in ITEMS:
            single = one.post("/metrics/readings", json=_with_known(item, known_alone))
            batch = many.post(
                "/metrics/readings/batch", json={"readings": [_with_known(item, known_batched)]}
            )
            assert single.status_code == batch.status_code, (item, single.text, batch.text)
            if single.status_code == 201:
                assert seen_alone(single.json()) == seen_batched(batch.json()["readings"][0]), item
                continue
            message = single.json()["error"]
            assert batch.json()["errors"] == [{"index": 0, "error": message}], item
            assert batch.json()["error"] == f"1 of 1 readings rejected, none stored: readings[0]: {message}"
            assert list(single.json()) == ["error"]
        for item in ITEMS:  # in Python: create_reading and log, against create_readings
            if not isinstance(item, dict) or ("metric" in item) == ("metric_id" in item):
                continue
            stamp = item.get("timestamp")
            by_name = {"labels": item["labels"]} if "labels" in item else {}
            refused: MetricStreamError | None = None
            try:
                if "metric" in item:
                    written = alone.service.log(item["metric"], item["value"], stamp, **by_name)
                else:
                    written = alone.service.create_reading(
                        _with_known(item, known_alone)["metric_id"], item["value"], stamp
                    )
            except MetricStreamError as error:
                refused = error
            if refused is not None:
                with pytest.raises(type(refused)) as raised:
                    batched.service.create_readings([_with_known(item, known_batched)])
                assert raised.value.errors == [{"index": 0, "error": refused.message}], item
                continue
            [batch_written] = batched.service.create_readings([_with_known(item, known_batched)])
            assert seen_alone(written.to_dict()) == seen_batched(batch_written.to_dict()), item
        assert _outside(alone, one, seen_alone) == _outside(batched, many, seen_batched)
