"""`GET /metrics/export` through a real hub, on every store: every metric's newest reading as Prometheus
scrapes it, read back with prometheus-client's parsers of the text format and of OpenMetrics; a metric whose
newest reading is older than `stale_after` by the hub's clock is left out; the route asks for the read token;
metrics left out for their names are counted in `/-/metrics`. (A real Prometheus scraping it:
tests/e2e/test_prometheus.py; the format's details: tests/unit/domain/test_exposition.py.)"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from prometheus_client.openmetrics.parser import text_string_to_metric_families as parse_openmetrics
from prometheus_client.parser import text_string_to_metric_families as parse_text

from metricstream.clock import ManualClock
from metricstream.server.hub import Hub
from tests.support.hubs import StartHub
from tests.support.tokens import READ, WRITE

T0 = datetime(2026, 3, 1, 12, 0, 0, tzinfo=UTC)
OPENMETRICS = {"Accept": "application/openmetrics-text; version=1.0.0"}


def at(seconds: float) -> str:
    return (T0 + timedelta(seconds=seconds)).isoformat().replace("+00:00", "Z")


def ms(seconds: float) -> float:
    """A timestamp as prometheus-client's text parser gives it: seconds, from integer milliseconds."""
    return (T0 + timedelta(seconds=seconds)).timestamp()


def write(http: httpx.Client, *readings: dict[str, Any]) -> None:
    answer = http.post("/metrics/readings/batch", json={"readings": list(readings)})
    assert answer.status_code == 201, answer.text


def exported(
    http: httpx.Client, openmetrics: bool = False
) -> dict[str, list[tuple[dict[str, str], float, float]]]:
    answer = http.get("/metrics/export", headers=OPENMETRICS if openmetrics else {})
    assert answer.status_code == 200, answer.text
    parse = parse_openmetrics if openmetrics else parse_text
    return {
        family.name: [(s.labels, s.value, float(s.timestamp or 0)) for s in family.samples]
        for family in parse(answer.text)
    }


def test_the_newest_reading_of_every_metric_in_both_formats(make_hub: Callable[..., Hub]) -> None:
    hub = make_hub(clock=ManualClock(wall=(T0 + timedelta(seconds=60)).timestamp()))
    with httpx.Client(base_url=hub.url, timeout=10) as http:
        created = http.post(
            "/metrics",
            json={"name": "room temp", "labels": {"room": "hall"}, "unit": "Cel", "description": "Air."},
        )
        assert created.status_code == 201
        write(
            http,
            {"metric_id": created.json()["id"], "value": 19.5, "timestamp": at(1)},
            {"metric_id": created.json()["id"], "value": 20.25, "timestamp": at(30.001)},
            {"metric_id": created.json()["id"], "value": 18.0, "timestamp": at(10)},  # older, written last
            {"metric": "room temp", "labels": {"room": 'k"i\\t\nchen'}, "value": 21.0, "timestamp": at(2)},
            {"metric": "jobs", "value": 7, "timestamp": at(3.5)},
        )
        http.post("/metrics", json={"name": "no readings yet"})
        text = http.get("/metrics/export")
        assert text.headers["content-type"] == "text/plain; version=0.0.4; charset=utf-8"
        assert exported(http) == {
            "room_temp_celsius": [({"room": "hall"}, 20.25, ms(30.001))],
            # created by its reading, without a unit: no unit in its name either
            "room_temp": [({"room": 'k"i\\t\nchen'}, 21.0, ms(2))],
            "jobs": [({}, 7.0, ms(3.5))],
        }
        om = http.get("/metrics/export", headers=OPENMETRICS)
        assert om.headers["content-type"] == "application/openmetrics-text; version=1.0.0; charset=utf-8"
        families = {family.name: family for family in parse_openmetrics(om.text)}
        assert (families["room_temp_celsius"].unit, families["room_temp_celsius"].documentation) == (
            "celsius",
            "Air.",
        )
        assert exported(http, openmetrics=True) == exported(http)


def test_a_metric_older_than_stale_after_is_left_out(make_hub: Callable[..., Hub]) -> None:
    clock = ManualClock(wall=T0.timestamp())
    hub = make_hub(clock=clock, stale_after=120)
    with httpx.Client(base_url=hub.url, timeout=10) as http:
        write(
            http,
            {"metric": "fresh", "value": 1, "timestamp": at(-10)},
            {"metric": "stale", "value": 2, "timestamp": at(-121)},
            {"metric": "stale", "value": 3, "timestamp": at(-200)},
        )
        assert set(exported(http)) == {"fresh"}
        clock.advance(110)  # fresh's newest reading is 120 s old: still in
        assert set(exported(http)) == {"fresh"}
        clock.advance(1)
        assert exported(http) == {}
        write(http, {"metric": "stale", "value": 4, "timestamp": at(110)})  # a new reading: back
        assert exported(http) == {"stale": [({}, 4.0, ms(110))]}


def test_with_stale_after_none_every_metric_with_a_reading_is_exported(start_hub: StartHub) -> None:
    hub = start_hub(clock=ManualClock(wall=T0.timestamp()), stale_after=None)
    with httpx.Client(base_url=hub.url, timeout=10) as http:
        write(http, {"metric": "old", "value": 1, "timestamp": at(-10 * 365 * 86400)})
        assert list(exported(http)) == ["old"]


def test_the_export_asks_for_the_read_token(start_hub: StartHub) -> None:
    hub = start_hub(token=WRITE, subscribe_token=READ)
    hub.service.log("m", 1.0)
    assert httpx.get(f"{hub.url}/metrics/export").status_code == 401
    for token in (READ, WRITE):
        answer = httpx.get(f"{hub.url}/metrics/export", headers={"Authorization": f"Bearer {token}"})
        assert answer.status_code == 200
        assert answer.text.startswith("# TYPE m untyped\nm 1.0 ")


def test_metrics_without_a_prometheus_name_are_left_out_and_counted(start_hub: StartHub) -> None:
    hub = start_hub()
    hub.service.log({"温度": 1.0, "°": 2.0, "ok": 3.0})
    with httpx.Client(base_url=hub.url, timeout=10) as http:
        assert list(exported(http)) == ["ok"]
        assert list(exported(http, openmetrics=True)) == ["ok"]
        counters = {
            sample.labels["reason"]: sample.value
            for family in parse_text(http.get("/-/metrics").text)
            if family.name == "metricstream_export_skipped"
            for sample in family.samples
            if sample.name.endswith("_total")
        }
        assert counters == {"name": 4.0, "duplicate": 0.0}  # two scrapes, two each
