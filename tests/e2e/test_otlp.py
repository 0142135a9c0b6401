"""OTLP/HTTP metrics (#23 point 4) through a real hub, on every store: the OpenTelemetry Python SDK with
`opentelemetry-exporter-otlp-proto-http`'s `OTLPMetricExporter`, unchanged, and the JSON form of the same
request (as the Collector's `otlphttp` exporter sends it with `encoding: json`). Readings appear in REST and
on the stream with their names, labels, units and timestamps; what cannot be written is answered in
`partial_success`, and the rest is written."""

from __future__ import annotations

import gzip
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
from google.protobuf import json_format
from opentelemetry.exporter.otlp.proto.common.metrics_encoder import encode_metrics
from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
    ExportMetricsServiceResponse,
)
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader, PeriodicExportingMetricReader
from opentelemetry.sdk.resources import Resource

from metricstream.server.hub import Hub
from metricstream.wire import METRIC_CREATED, READING_CREATED
from tests.support.apitools import assert_error, state
from tests.support.hubs import StartHub
from tests.support.raw_stream import RawStream
from tests.support.tokens import WRITE

OpenStream = Callable[..., RawStream]
RESOURCE = {"service.name": "shop", "host.name": "a"}
LABELS = {"host_name": "a", "service_name": "shop"}


@pytest.fixture
def exported(hub: Hub) -> Iterator[MeterProvider]:
    """A meter provider whose readings the SDK's own OTLP/HTTP exporter sends to `hub` on force_flush."""
    exporter = OTLPMetricExporter(endpoint=f"{hub.url}/v1/metrics")
    reader = PeriodicExportingMetricReader(exporter, export_interval_millis=3_600_000)  # only when flushed
    provider = MeterProvider(metric_readers=[reader], resource=Resource.create(RESOURCE))
    yield provider
    provider.shutdown()


def listed(http: httpx.Client) -> dict[str, dict[str, Any]]:
    return {m["name"]: m for m in http.get("/metrics", params={"with_readings": "true"}).json()}


def test_the_sdks_exporter_writes_readings_rest_and_the_stream_show(
    hub: Hub, http: httpx.Client, exported: MeterProvider, open_stream: OpenStream
) -> None:
    stream = open_stream(hub.url)
    stream.expect_open()
    meter = exported.get_meter("shop")
    meter.create_counter("http.requests", unit="{request}", description="requests served").add(
        3, {"route": "/cart"}
    )
    meter.create_histogram("http.duration", unit="ms").record(12.5, {"route": "/cart"})
    meter.create_gauge("queue.depth").set(7)
    assert exported.force_flush(10_000)
    metrics = listed(http)
    assert set(metrics) == {"http.requests", "http.duration_count", "http.duration_sum", "queue.depth"}
    requests = metrics["http.requests"]
    assert requests["labels"] == {**LABELS, "route": "/cart"}
    assert (requests["unit"], requests["description"]) == ("{request}", "requests served")
    assert [r["value"] for r in requests["readings"]] == [3.0]
    assert (metrics["http.duration_sum"]["unit"], metrics["http.duration_count"]["unit"]) == ("ms", None)
    assert [r["value"] for r in metrics["http.duration_sum"]["readings"]] == [12.5]
    assert [r["value"] for r in metrics["queue.depth"]["readings"]] == [7.0]
    events = [stream.next_event() for _ in range(8)]
    assert sorted(e.event or "" for e in events) == [METRIC_CREATED] * 4 + [READING_CREATED] * 4
    created = {e.json()["name"]: e.json() for e in events if e.event == METRIC_CREATED}
    listing_only = ("readings", "readings_truncated")
    assert created["http.requests"] == {k: v for k, v in requests.items() if k not in listing_only}


def test_a_cumulative_counter_is_written_as_sent_at_each_export(
    hub: Hub, http: httpx.Client, exported: MeterProvider
) -> None:
    counter = exported.get_meter("shop").create_counter("jobs")
    for add in (2, 5):
        counter.add(add)
        assert exported.force_flush(10_000)
    assert [r["value"] for r in listed(http)["jobs"]["readings"]] == [2.0, 7.0]


def request_of(record: Callable[[MeterProvider], None]) -> bytes:
    """The protobuf bytes the SDK's exporter would send for what `record` records."""
    reader = InMemoryMetricReader()
    provider = MeterProvider(metric_readers=[reader], resource=Resource.create(RESOURCE))
    record(provider)
    data = reader.get_metrics_data()
    provider.shutdown()
    assert data is not None
    return encode_metrics(data).SerializeToString()


def test_the_json_form_of_a_request_is_written_as_its_protobuf(hub: Hub, http: httpx.Client) -> None:
    body = request_of(lambda p: p.get_meter("m").create_up_down_counter("workers", unit="1").add(4))
    request = ExportMetricsServiceRequest()
    request.ParseFromString(body)
    as_json = json_format.MessageToJson(request)  # lowerCamelCase keys, 64-bit integers as strings
    answer = http.post("/v1/metrics", content=as_json, headers={"Content-Type": "application/json"})
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"] == "application/json"
    assert answer.json() == {}  # full success: partial_success left unset
    workers = listed(http)["workers"]
    assert (workers["labels"], workers["unit"]) == (LABELS, "1")
    assert [r["value"] for r in workers["readings"]] == [4.0]


def test_what_cannot_be_written_is_in_partial_success_and_the_rest_is_written(
    hub: Hub, http: httpx.Client
) -> None:
    def record(provider: MeterProvider) -> None:
        meter = provider.get_meter("m")
        meter.create_up_down_counter("balance").add(-3)  # refused: values must be > 0 here
        meter.create_counter("sales").add(2)
        meter.create_histogram("size").record(5)  # buckets refused, _count and _sum written

    answer = http.post(
        "/v1/metrics",
        content=gzip.compress(request_of(record)),
        headers={"Content-Type": "application/x-protobuf", "Content-Encoding": "gzip"},
    )
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"] == "application/x-protobuf"
    response = ExportMetricsServiceResponse()
    response.ParseFromString(answer.content)
    assert response.partial_success.rejected_data_points == 2
    message = response.partial_success.error_message
    assert "buckets" in message
    assert "value must be a finite number greater than 0" in message
    assert sorted(listed(http)) == ["sales", "size_count", "size_sum"]


def test_bad_requests_are_refused_and_store_nothing(start_hub: StartHub) -> None:
    hub = start_hub(token=WRITE, max_body=1000)
    auth = {"Authorization": f"Bearer {WRITE}"}
    with httpx.Client(base_url=hub.url, timeout=10, headers=auth) as http:
        before = state(http)
        proto = {"Content-Type": "application/x-protobuf"}
        assert_error(http.post("/v1/metrics", content=b"\xff\xff\xff", headers=proto), 400)
        assert_error(
            http.post("/v1/metrics", content=b"{", headers={"Content-Type": "application/json"}), 400
        )
        assert_error(http.post("/v1/metrics", content=b"", headers={"Content-Type": "text/plain"}), 415)
        bomb = gzip.compress(b"\x00" * 100_000)
        assert_error(
            http.post("/v1/metrics", content=bomb, headers={**proto, "Content-Encoding": "gzip"}),
            413,
            "request body is larger than 16000 bytes once decompressed",
        )
        assert state(http) == before
    body = request_of(lambda p: p.get_meter("m").create_counter("c").add(1))
    assert httpx.post(f"{hub.url}/v1/metrics", content=body, headers=proto).status_code == 401
    exporter = OTLPMetricExporter(endpoint=f"{hub.url}/v1/metrics", headers=auth)
    provider = MeterProvider(metric_readers=[PeriodicExportingMetricReader(exporter, 3_600_000)])
    provider.get_meter("m").create_counter("c").add(1)
    assert provider.force_flush(10_000)
    provider.shutdown()
    assert [m.name for m in hub.service.list_metrics()] == ["c"]


def test_a_unit_or_description_that_could_not_be_stored_is_left_out_and_the_point_written(
    start_hub: StartHub,
) -> None:
    """A metric created by a foreign write took the OTLP unit and description unchecked: a 40-character
    unit (at most 32) and a description with NUL characters were stored as they came."""
    hub = start_hub()

    def record(provider: MeterProvider) -> None:
        meter = provider.get_meter("m")
        meter.create_gauge("long.unit", unit="u" * 40, description="fine").set(1)
        meter.create_gauge("bad.description", unit=" Cel ", description="a\x00b").set(2)

    headers = {"Content-Type": "application/x-protobuf"}
    answer = httpx.post(f"{hub.url}/v1/metrics", content=request_of(record), headers=headers)
    assert answer.status_code == 200, answer.text
    metrics = {m.name: (m.unit, m.description) for m in hub.service.list_metrics()}
    # checked as POST /metrics checks them (trimmed too); one that fails is no reason to lose the value
    assert metrics == {"long.unit": (None, "fine"), "bad.description": ("Cel", None)}
