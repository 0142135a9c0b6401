"""metricstream.domain.otlp against what the real clients send: requests recorded with the OpenTelemetry SDK
and encoded by its OTLP exporter's own encoder (protobuf), the same in JSON, and OTLP/JSON as the spec's
example and the Collector's `otlphttp` exporter write it (64-bit integers as strings, enums as integers, hex
trace ids)."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from datetime import UTC, datetime
from typing import Protocol

import orjson
import pytest
from google.protobuf import json_format
from opentelemetry.exporter.otlp.proto.common.metrics_encoder import encode_metrics
from opentelemetry.metrics import Meter
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
    ExportMetricsServiceResponse,
)
from opentelemetry.proto.metrics.v1.metrics_pb2 import (
    AGGREGATION_TEMPORALITY_CUMULATIVE,
    AGGREGATION_TEMPORALITY_DELTA,
)
from opentelemetry.sdk.metrics import Counter, MeterProvider, UpDownCounter
from opentelemetry.sdk.metrics.export import AggregationTemporality, InMemoryMetricReader
from opentelemetry.sdk.metrics.view import ExponentialBucketHistogramAggregation, View
from opentelemetry.sdk.resources import Resource

from metricstream.domain.labels import Sample
from metricstream.domain.otlp import JSON, PROTOBUF, OtlpDecoded, decode_metrics, encode_response

HISTOGRAM_REFUSED = "histogram buckets are not stored, only _count and _sum"


class Recorder:
    """A MeterProvider as an application has one, read by an in-memory reader; `request()` is what the
    OTLP exporter would send for what was recorded since the last one (its own encoder)."""

    def __init__(
        self,
        resource: Mapping[str, str],
        temporality: dict[type, AggregationTemporality] | None = None,
        views: tuple[View, ...] = (),
    ) -> None:
        self.reader = InMemoryMetricReader(preferred_temporality=temporality)
        self.provider = MeterProvider(
            metric_readers=[self.reader], resource=Resource.create(dict(resource)), views=views
        )
        self.meter: Meter = self.provider.get_meter("tests.otlp", "1.0")

    def request(self) -> ExportMetricsServiceRequest:
        data = self.reader.get_metrics_data()
        assert data is not None
        return encode_metrics(data)


class MakeRecorder(Protocol):
    def __call__(
        self,
        resource: Mapping[str, str] | None = None,
        temporality: dict[type, AggregationTemporality] | None = None,
        views: tuple[View, ...] = (),
    ) -> Recorder: ...


@pytest.fixture
def recorder() -> Iterator[MakeRecorder]:
    made: list[Recorder] = []

    def make(
        resource: Mapping[str, str] | None = None,
        temporality: dict[type, AggregationTemporality] | None = None,
        views: tuple[View, ...] = (),
    ) -> Recorder:
        made.append(
            Recorder(resource or {"service.name": "checkout", "host.name": "node-1"}, temporality, views)
        )
        return made[-1]

    yield make
    for each in made:
        each.provider.shutdown()


def point_times(request: ExportMetricsServiceRequest) -> dict[str, datetime]:
    """Each metric's point time, as OTLP gives it, to the microsecond: the time the SDK collected it."""
    times = {}
    for resource_metrics in request.resource_metrics:
        for scope_metrics in resource_metrics.scope_metrics:
            for metric in scope_metrics.metrics:
                kind = metric.WhichOneof("data")
                assert kind is not None
                (point,) = getattr(metric, kind).data_points
                nanoseconds = point.time_unix_nano
                seconds = datetime.fromtimestamp(nanoseconds // 10**9, UTC)
                times[metric.name] = seconds.replace(microsecond=nanoseconds // 1000 % 10**6)
    return times


def by_name(decoded: OtlpDecoded) -> dict[str, Sample]:
    samples = {sample.name: sample for sample in decoded.samples}
    assert len(samples) == len(decoded.samples), "one sample per name in these requests"
    return samples


def test_sdk_request_gives_a_sample_per_point_with_labels_unit_and_time(
    recorder: MakeRecorder,
) -> None:
    app = recorder()
    temperature = app.meter.create_gauge("room.temperature", unit="Cel", description="air temperature")
    temperature.set(21.5, {"sensor": "s1", "indoor": True})
    requests = app.meter.create_counter("http.requests", unit="{request}")
    requests.add(3, {"http.route": "/cart"})
    requests.add(2, {"http.route": "/cart"})
    depth = app.meter.create_up_down_counter("queue.depth", unit="{item}")
    depth.add(5)
    depth.add(-7)
    duration = app.meter.create_histogram("http.duration", unit="ms", description="time to answer")
    duration.record(5.0, {"http.route": "/cart"})
    duration.record(7.5, {"http.route": "/cart"})
    request = app.request()

    decoded = decode_metrics(request.SerializeToString(), PROTOBUF)

    resource = {"service_name": "checkout", "host_name": "node-1"}
    route = {**resource, "http_route": "/cart"}
    times = point_times(request)
    assert by_name(decoded) == {
        "room.temperature": Sample(
            "room.temperature",
            21.5,
            {**resource, "sensor": "s1", "indoor": "true"},
            times["room.temperature"],
            "Cel",
            "air temperature",
            1,
        ),
        "http.requests": Sample("http.requests", 5.0, route, times["http.requests"], "{request}", None, 2),
        "queue.depth": Sample("queue.depth", -2.0, resource, times["queue.depth"], "{item}", None, 3),
        # the count counts: no unit; the sum is in the histogram's unit
        "http.duration_count": Sample(
            "http.duration_count", 2.0, route, times["http.duration"], None, "time to answer", 4
        ),
        "http.duration_sum": Sample(
            "http.duration_sum", 12.5, route, times["http.duration"], "ms", "time to answer", 4
        ),
    }
    # the buckets of the one histogram point are refused, as the spec's partial success says
    assert decoded.rejected_data_points == 1
    assert decoded.error_message == f"{HISTOGRAM_REFUSED} (1 data point)"


def test_sdk_labels_leave_out_what_the_sdk_adds_to_every_process(recorder: MakeRecorder) -> None:
    app = recorder({"service.name": "checkout"})
    app.meter.create_counter("jobs").add(1)
    request = app.request()
    resource_keys = {pair.key for pair in request.resource_metrics[0].resource.attributes}
    # Resource.create adds these: a random service.instance.id per start would make new metrics each time
    assert {"telemetry.sdk.name", "telemetry.sdk.language", "service.instance.id"} <= resource_keys

    (sample,) = decode_metrics(request.SerializeToString(), PROTOBUF).samples

    assert sample.labels == {"service_name": "checkout"}


def test_sums_cumulative_and_delta_become_readings_as_sent(recorder: MakeRecorder) -> None:
    delta: dict[type, AggregationTemporality] = {
        Counter: AggregationTemporality.DELTA,
        UpDownCounter: AggregationTemporality.DELTA,
    }
    cumulative_app, delta_app = recorder(), recorder(temporality=delta)
    values: dict[str, list[float]] = {"cumulative": [], "delta": []}
    for added in (3, 2):
        for kind, app in (("cumulative", cumulative_app), ("delta", delta_app)):
            app.meter.create_counter("jobs.done").add(added)
            request = app.request()
            sums = request.resource_metrics[0].scope_metrics[0].metrics[0].sum
            assert sums.aggregation_temporality == (
                AGGREGATION_TEMPORALITY_DELTA if kind == "delta" else AGGREGATION_TEMPORALITY_CUMULATIVE
            )
            (sample,) = decode_metrics(request.SerializeToString(), PROTOBUF).samples
            values[kind].append(sample.value)

    assert values == {"cumulative": [3.0, 5.0], "delta": [3.0, 2.0]}


def test_exponential_histogram_gives_count_and_sum(recorder: MakeRecorder) -> None:
    exponential = View(instrument_name="payload.size", aggregation=ExponentialBucketHistogramAggregation())
    app = recorder(views=(exponential,))
    sizes = app.meter.create_histogram("payload.size", unit="By")
    for size in (100, 250, 4000):
        sizes.record(size)
    request = app.request()
    assert (
        request.resource_metrics[0].scope_metrics[0].metrics[0].WhichOneof("data") == "exponential_histogram"
    )

    decoded = decode_metrics(request.SerializeToString(), PROTOBUF)

    assert [(s.name, s.value, s.unit) for s in decoded.samples] == [
        ("payload.size_count", 3.0, None),
        ("payload.size_sum", 4350.0, "By"),
    ]
    assert decoded.rejected_data_points == 1
    assert decoded.error_message == (
        "exponential histogram buckets are not stored, only _count and _sum (1 data point)"
    )


def test_json_of_an_sdk_request_decodes_as_its_protobuf(recorder: MakeRecorder) -> None:
    app = recorder()
    app.meter.create_counter("http.requests", unit="{request}").add(4, {"http.route": "/"})
    app.meter.create_histogram("http.duration", unit="ms").record(3.5)
    app.meter.create_gauge("load").set(0.75, {"cpu": 2, "ratio": 0.5})
    request = app.request()
    # proto3's JSON mapping: int64 as strings, enum names (OTLP/JSON receivers take both)
    body = json_format.MessageToJson(request).encode()

    decoded = decode_metrics(body, "application/json; charset=utf-8")

    assert decoded == decode_metrics(request.SerializeToString(), PROTOBUF)
    assert by_name(decoded)["load"].labels["cpu"] == "2"
    assert by_name(decoded)["load"].labels["ratio"] == "0.5"
    assert len(decoded.samples) == 4


# OTLP/JSON as the spec's example (opentelemetry-proto examples/metrics.json) and the Collector's otlphttp
# exporter with `encoding: json` write it: lowerCamelCase keys, 64-bit integers as strings, enums as
# integers, exemplar ids in hex, fields this receiver does not know.
COLLECTOR_JSON = b"""{
  "resourceMetrics": [{
    "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "my.service"}}]},
    "scopeMetrics": [{
      "scope": {"name": "my.library", "version": "1.0.0", "attributes": [
        {"key": "my.scope.attribute", "value": {"stringValue": "some scope attribute"}}]},
      "metrics": [
        {"name": "my.counter", "unit": "1", "description": "I am a Counter",
         "sum": {"aggregationTemporality": 1, "isMonotonic": true, "dataPoints": [{
           "asInt": "5", "startTimeUnixNano": "1544712660000000000", "timeUnixNano": "1544712660300000999",
           "attributes": [{"key": "my.counter.attr", "value": {"stringValue": "some value"}}],
           "exemplars": [{"asDouble": 5, "timeUnixNano": "1544712660300000000",
                          "traceId": "5B8EFFF798038103D269B633813FC60C", "spanId": "EEE19B7EC3C1B174"}]}]}},
        {"name": "my.gauge", "unit": "1", "description": "I am a Gauge",
         "gauge": {"dataPoints": [{"asDouble": 10, "timeUnixNano": 1544712660300000000,
           "attributes": [{"key": "my.gauge.attr", "value": {"stringValue": "some value"}}]}]}},
        {"name": "my.histogram", "unit": "ms", "description": "I am a Histogram",
         "histogram": {"aggregationTemporality": 2, "dataPoints": [{
           "startTimeUnixNano": "1544712660000000000", "timeUnixNano": "1544712660300000000",
           "count": "3", "sum": 3, "bucketCounts": ["1", "1", "1"], "explicitBounds": [1, 2],
           "min": 0.5, "max": 1.5, "attributes": []}]}},
        {"name": "my.summary", "unit": "s",
         "summary": {"dataPoints": [{"timeUnixNano": "1544712660300000000", "count": "4", "sum": 10.5,
           "quantileValues": [{"quantile": 0.5, "value": 2.5}, {"quantile": 1, "value": 4}]}]}},
        {"name": "my.future", "unit": "1", "aFieldFromALaterVersion": {"anything": [1, 2]},
         "gauge": {"dataPoints": [{"asDouble": 1.25, "timeUnixNano": "0", "newField": true}]}}
      ]
    }],
    "schemaUrl": "https://opentelemetry.io/schemas/1.21.0"
  }]
}"""


def test_collector_json_gives_every_sample() -> None:
    decoded = decode_metrics(COLLECTOR_JSON, JSON)

    service = {"service_name": "my.service"}
    at = datetime(2018, 12, 13, 14, 51, 0, 300000, tzinfo=UTC)
    assert decoded.samples == (
        # 1544712660300000999 ns: the nanoseconds below a microsecond are dropped
        Sample("my.counter", 5.0, {**service, "my_counter_attr": "some value"}, at, "1", "I am a Counter", 1),
        Sample("my.gauge", 10.0, {**service, "my_gauge_attr": "some value"}, at, "1", "I am a Gauge", 2),
        Sample("my.histogram_count", 3.0, service, at, None, "I am a Histogram", 3),
        Sample("my.histogram_sum", 3.0, service, at, "ms", "I am a Histogram", 3),
        Sample("my.summary_count", 4.0, service, at, None, None, 4),
        Sample("my.summary_sum", 10.5, service, at, "s", None, 4),
        # time 0 is unset: the reading is taken now, when written
        Sample("my.future", 1.25, service, None, "1", None, 5),
    )
    assert decoded.rejected_data_points == 2
    assert decoded.error_message == (
        f"{HISTOGRAM_REFUSED} (1 data point); "
        "summary quantiles are not stored, only _count and _sum (1 data point)"
    )


def test_response_on_full_success_leaves_partial_success_unset() -> None:
    accepted = OtlpDecoded((Sample("jobs", 1.0),), 0, "")

    assert encode_response(accepted, PROTOBUF) == b""
    assert not ExportMetricsServiceResponse.FromString(b"").HasField("partial_success")
    assert encode_response(accepted, "application/json; charset=utf-8") == b"{}"


@pytest.mark.parametrize("content_type", [PROTOBUF, JSON])
def test_response_tells_how_many_points_were_rejected_and_why(content_type: str) -> None:
    decoded = decode_metrics(COLLECTOR_JSON, JSON)

    body = encode_response(decoded, content_type)

    response = ExportMetricsServiceResponse()
    if content_type == PROTOBUF:
        response.ParseFromString(body)
    else:
        document = orjson.loads(body)
        # OTLP/JSON: lowerCamelCase keys, the int64 as a string
        assert document["partialSuccess"]["rejectedDataPoints"] == "2"
        json_format.ParseDict(document, response)
    assert response.HasField("partial_success")
    assert response.partial_success.rejected_data_points == 2
    assert response.partial_success.error_message == decoded.error_message
