"""A real Prometheus (Debian's 2.42, tests/support/prometheus.py) on both sides of metricstream, both with
a token as its `authorization: {credentials: ...}`:
- it scrapes a test target (prometheus-client's own HTTP server, on a loopback port) and `remote_write`s
  what it scrapes into a hub: every sample arrives on the hub's stream, stored under its name and labels;
- it scrapes the hub's `GET /metrics/export` every second and holds the newest values, with their
  timestamps to the millisecond; a metric older than `stale_after` is not there.
Prometheus answers nothing that can be awaited: its query API is polled until it holds what is expected."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client import CollectorRegistry, Gauge, start_http_server

from metricstream.client.core import StreamEvent
from metricstream.client.subscribers import Subscriber
from metricstream.wire import METRIC_CREATED, READING_CREATED
from tests.support.hubs import StartHub, free_port
from tests.support.prometheus import running_prometheus
from tests.support.subscribers import Consumer
from tests.support.tokens import READ, WRITE

pytestmark = pytest.mark.slow  # each starts Prometheus and waits for its scrapes: a few seconds

DEADLINE = 60.0  # seconds for Prometheus to scrape, send or ingest what a test waits for


@pytest.fixture
def target() -> Iterator[tuple[str, CollectorRegistry]]:
    """A scrape target on a loopback port: prometheus-client's server of a registry of the test's own."""
    registry = CollectorRegistry()
    port = free_port()
    server, thread = start_http_server(port, "127.0.0.1", registry)
    yield f"127.0.0.1:{port}", registry
    server.shutdown()
    server.server_close()
    thread.join(5)


def query(prometheus: str, expression: str) -> list[dict[str, Any]]:
    answer = httpx.get(f"{prometheus}/api/v1/query", params={"query": expression}, timeout=10)
    assert answer.status_code == 200, answer.text
    result: list[dict[str, Any]] = answer.json()["data"]["result"]
    return result


def poll(what: str, found: Any) -> Any:
    """`found()` once it gives something truthy: Prometheus offers no event to await."""
    deadline = time.monotonic() + DEADLINE
    while not (result := found()):
        if time.monotonic() > deadline:
            raise AssertionError(f"Prometheus did not {what} within {DEADLINE:g} s")
        time.sleep(0.1)
    return result


def test_prometheus_remote_writes_what_it_scrapes_and_it_arrives_on_the_stream(
    start_hub: StartHub, target: tuple[str, CollectorRegistry], tmp_path: Path
) -> None:
    address, registry = target
    temperature = Gauge("sensor_temperature_celsius", "Air.", ["room"], registry=registry)
    temperature.labels('k"i\\tchen').set(21.5)
    Gauge("sensor_open_doors", "Doors open.", registry=registry).set(0)
    # Prometheus sends zeros (up, scrape_series_added, the doors): values of any sign are taken
    hub = start_hub(token=WRITE, positive_only=False)
    config = f"""
global: {{scrape_interval: 1s}}
scrape_configs:
  - job_name: sensors
    static_configs: [{{targets: ["{address}"]}}]
remote_write:
  - url: {hub.url}/api/v1/write
    authorization: {{credentials: {WRITE}}}
    queue_config: {{batch_send_deadline: 100ms, min_backoff: 50ms, max_backoff: 200ms}}
"""
    sent = {"sensor_temperature_celsius", "sensor_open_doors", "up"}
    consumer = Consumer(Subscriber(hub.url, token=WRITE))
    try:
        with running_prometheus(tmp_path / "prometheus", config):
            names: dict[str, str] = {}  # metric id -> name
            values = awaited_readings(consumer, names, lambda seen: sent <= set(seen))
            assert values["sensor_temperature_celsius"] == [21.5] * len(values["sensor_temperature_celsius"])
            assert set(values["sensor_open_doors"]) == {0.0}
            assert set(values["up"]) == {1.0}
            # a new value is scraped and sent on
            temperature.labels('k"i\\tchen').set(-3.25)
            values = awaited_readings(consumer, names, lambda seen: -3.25 in seen.get(TEMPERATURE, ()))
    finally:
        consumer.close()
    labels = {"instance": address, "job": "sensors"}
    stored = {m.name: m for m in hub.service.list_metrics()}
    assert stored["sensor_temperature_celsius"].labels == {**labels, "room": 'k"i\\tchen'}
    assert stored["sensor_open_doors"].labels == labels
    readings = hub.service.list_readings(stored["sensor_temperature_celsius"].id)
    assert readings[-1].value == -3.25
    # Prometheus' timestamps, in milliseconds
    assert all(r.timestamp.microsecond % 1000 == 0 for r in readings)
    assert datetime.now(UTC) - readings[0].timestamp < timedelta(seconds=DEADLINE + 30)


TEMPERATURE = "sensor_temperature_celsius"


def awaited_readings(consumer: Consumer, names: dict[str, str], done: Any) -> dict[str, list[float]]:
    """The values streamed for each metric name (from the stream's metric_created events, kept in
    `names`) until `done(values)` holds."""
    values: dict[str, list[float]] = {}
    deadline = time.monotonic() + DEADLINE
    while not done(values):
        assert time.monotonic() < deadline, f"these arrived within {DEADLINE:g} s: {values}"
        (event,) = consumer.take(1)
        record(event, names, values)
    return values


def record(event: StreamEvent, names: dict[str, str], values: dict[str, list[float]]) -> None:
    if event.type == METRIC_CREATED:
        names[event.data["id"]] = event.data["name"]
    elif event.type == READING_CREATED:
        values.setdefault(names[event.data["metric_id"]], []).append(event.data["value"])


def test_prometheus_scrapes_the_export_and_holds_the_newest_values(
    start_hub: StartHub, tmp_path: Path
) -> None:
    hub = start_hub(token=WRITE, subscribe_token=READ, stale_after=60)
    # past, on a millisecond (that 1.001-like floats would miss)
    now = datetime.now(UTC).replace(microsecond=123_000) - timedelta(seconds=1)
    service = hub.service
    service.create_metric("room temp", labels={"room": 'k"i\\t\nchen'}, unit="Cel", description="Air.")
    service.log("room temp", 19.0, labels={"room": 'k"i\\t\nchen'}, timestamp=now - timedelta(seconds=20))
    service.log("room temp", 20.5, labels={"room": 'k"i\\t\nchen'}, timestamp=now - timedelta(seconds=5))
    service.create_metric("room temp", labels={"room": "hall"}, unit="Cel")
    service.log("room temp", 17.0, labels={"room": "hall"}, timestamp=now - timedelta(seconds=4))
    service.log("http.requests", 1234.0, timestamp=now - timedelta(seconds=3))
    service.log("gone", 1.0, timestamp=now - timedelta(seconds=61))  # older than stale_after
    port = hub.url.rsplit(":", 1)[1]
    config = f"""
global: {{scrape_interval: 1s}}
scrape_configs:
  - job_name: metricstream
    metrics_path: /metrics/export
    honor_timestamps: true
    authorization: {{credentials: {READ}}}
    static_configs: [{{targets: ["127.0.0.1:{port}"]}}]
"""
    with running_prometheus(tmp_path / "prometheus", config) as prometheus:
        held = poll("scrape the export", lambda: series_of(prometheus.url) or None)
        assert held == {
            ("room_temp_celsius", (("room", 'k"i\\t\nchen'),)): (20.5, ms(now - timedelta(seconds=5))),
            ("room_temp_celsius", (("room", "hall"),)): (17.0, ms(now - timedelta(seconds=4))),
            ("http_requests", ()): (1234.0, ms(now - timedelta(seconds=3))),
        }
        (up,) = query(prometheus.url, 'up{job="metricstream"}')
        assert up["value"][1] == "1"  # the scrape parsed: the token taken, the body valid
        assert query(prometheus.url, "gone") == []
        # a newer reading replaces the value Prometheus holds
        service.log("room temp", 22.75, labels={"room": 'k"i\\t\nchen'}, timestamp=now)
        poll(
            "take the newer value",
            lambda: (
                series_of(prometheus.url).get(("room_temp_celsius", (("room", 'k"i\\t\nchen'),)))
                == (22.75, ms(now))
            ),
        )


def ms(moment: datetime) -> int:
    return (moment - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(milliseconds=1)


def series_of(prometheus: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], tuple[float, int]]:
    """What Prometheus holds of the export now: (name, labels) -> (value, the sample's timestamp in ms)."""
    held: dict[tuple[str, tuple[tuple[str, str], ...]], tuple[float, int]] = {}
    # the raw samples of the last minute: their own timestamps, as scraped
    for series in query(prometheus, '{job="metricstream", __name__!~"up|scrape_.*"}[1m]'):
        labels = {k: v for k, v in series["metric"].items() if k not in ("job", "instance", "__name__")}
        value, seconds = float(series["values"][-1][1]), series["values"][-1][0]
        held[series["metric"]["__name__"], tuple(sorted(labels.items()))] = (value, round(seconds * 1000))
    return held
