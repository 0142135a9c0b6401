"""metricstream.domain.otlp on what it must refuse or reshape: bodies that are not OTLP (a clear error, never
a stack trace), points that cannot be written (rejected with a reason, the rest kept), and attribute values
made into labels."""

from __future__ import annotations

import subprocess
import sys
from datetime import UTC, datetime

import pytest
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import ExportMetricsServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, ArrayValue, KeyValue, KeyValueList
from opentelemetry.proto.metrics.v1.metrics_pb2 import (
    Gauge,
    Metric,
    NumberDataPoint,
    ResourceMetrics,
    ScopeMetrics,
)
from opentelemetry.proto.resource.v1.resource_pb2 import Resource

from metricstream.domain.labels import MAX_LABELS, Sample
from metricstream.domain.otlp import JSON, PROTOBUF, decode_metrics, encode_response, otlp_media_type
from metricstream.errors import UnsupportedMediaTypeError, ValidationError

AT = 1_700_000_000_123_456_789  # ns
AT_TIME = datetime(2023, 11, 14, 22, 13, 20, 123456, tzinfo=UTC)


def text(value: str) -> AnyValue:
    return AnyValue(string_value=value)


def gauge(name: str, *points: NumberDataPoint) -> Metric:
    return Metric(name=name, gauge=Gauge(data_points=points))


def point(
    value: float | None = 1.0, attributes: dict[str, AnyValue] | None = None, flags: int = 0
) -> NumberDataPoint:
    pairs = [KeyValue(key=key, value=each) for key, each in (attributes or {}).items()]
    if value is None:
        return NumberDataPoint(time_unix_nano=AT, attributes=pairs, flags=flags)
    return NumberDataPoint(time_unix_nano=AT, as_double=value, attributes=pairs, flags=flags)


def body(*metrics: Metric, resource: dict[str, AnyValue] | None = None) -> bytes:
    attributes = [KeyValue(key=key, value=each) for key, each in (resource or {}).items()]
    request = ExportMetricsServiceRequest(
        resource_metrics=[
            ResourceMetrics(
                resource=Resource(attributes=attributes), scope_metrics=[ScopeMetrics(metrics=metrics)]
            )
        ]
    )
    return request.SerializeToString()


@pytest.mark.parametrize(
    "content_type", ["text/plain", "", "application/grpc", "application/protobuf", "application/jsonl"]
)
def test_a_content_type_other_than_otlp_s_two_is_refused_with_415(content_type: str) -> None:
    with pytest.raises(UnsupportedMediaTypeError) as refused:
        decode_metrics(body(gauge("jobs", point())), content_type)

    assert refused.value.status_code == 415
    shown = content_type or "none"
    assert refused.value.message == (
        f"OTLP metrics must be sent as application/x-protobuf or application/json, not {shown}"
    )


@pytest.mark.parametrize(
    ("content_type", "media"),
    [
        ("application/x-protobuf", PROTOBUF),
        ("Application/X-Protobuf ; charset=binary", PROTOBUF),
        ("application/json; charset=utf-8", JSON),
        (" APPLICATION/JSON", JSON),
    ],
)
def test_media_type_ignores_case_and_parameters(content_type: str, media: str) -> None:
    assert otlp_media_type(content_type) == media


def truncated() -> bytes:
    whole = body(gauge("jobs", point(2.0, {"host": text("a")})))
    return whole[: len(whole) - 3]


@pytest.mark.parametrize(
    "garbage",
    [b"\xff\xff\xff\xff", b'{"resourceMetrics": []}', truncated(), b"\x0a\x07\x12\x05\x12\x03\x0a\x01\xff"],
    # the last: a request whose one metric's name is the byte 0xff, not UTF-8
    ids=["bad tag", "json", "truncated", "bad utf-8 in a name"],
)
def test_a_body_that_is_not_protobuf_otlp_is_a_validation_error(garbage: bytes) -> None:
    with pytest.raises(ValidationError) as refused:
        decode_metrics(garbage, PROTOBUF)

    assert refused.value.status_code == 400
    assert refused.value.message == "request body is not an OTLP ExportMetricsServiceRequest in protobuf"


NESTED = (
    b'{"resourceMetrics": [{"resource": {"attributes": [{"key": "k", "value": '
    + (b'{"kvlistValue": {"values": [{"key": "k", "value": ' * 200)
    + b'{"intValue": 1}'
    + b"}]}}" * 200
    + b"}]}}]}"
)


@pytest.mark.parametrize(
    ("document", "message"),
    [
        (b"{", "request body is not valid JSON: "),
        (b"\xff\xfe", "request body is not valid JSON: "),
        (b'{"resourceMetrics": [], "x": NaN}', "request body is not valid JSON: "),
        (b"[]", "request body must be a JSON object (an OTLP ExportMetricsServiceRequest)"),
        (b"null", "request body must be a JSON object (an OTLP ExportMetricsServiceRequest)"),
        (b'{"resourceMetrics": 5}', "request body is not an OTLP/JSON ExportMetricsServiceRequest: "),
        (
            b'{"resourceMetrics": [{"scopeMetrics": [{"metrics": [{"name": "x", "gauge": {"dataPoints":'
            b' [{"asDouble": "abc"}]}}]}]}]}',
            "request body is not an OTLP/JSON ExportMetricsServiceRequest: ",
        ),
        (
            b'{"resourceMetrics": [{"scopeMetrics": [{"metrics": [{"name": "x", "gauge": {"dataPoints":'
            b' [{"timeUnixNano": "-5"}]}}]}]}]}',
            "request body is not an OTLP/JSON ExportMetricsServiceRequest: ",
        ),
        (NESTED, "request body is not an OTLP/JSON ExportMetricsServiceRequest: "),
    ],
    ids=[
        "cut",
        "not utf-8",
        "NaN token",
        "array",
        "null",
        "wrong type",
        "bad double",
        "negative time",
        "deep",
    ],
)
def test_a_body_that_is_not_otlp_json_is_a_validation_error(document: bytes, message: str) -> None:
    with pytest.raises(ValidationError) as refused:
        decode_metrics(document, JSON)

    assert refused.value.message.startswith(message)
    # one short message for people, the parser's reason included, never a trace
    assert len(refused.value.message) < len(message) + 310
    assert "Traceback" not in refused.value.message


def test_a_json_body_nested_too_deeply_says_so() -> None:
    with pytest.raises(ValidationError) as refused:
        decode_metrics(NESTED, JSON)

    assert refused.value.message.endswith("field: Message too deep. Max recursion depth is 100")


def test_attribute_values_become_label_texts() -> None:
    attributes = {
        "service.name": text("checkout"),
        "ok": AnyValue(bool_value=True),
        "failed": AnyValue(bool_value=False),
        "cpu": AnyValue(int_value=-3),
        "ratio": AnyValue(double_value=0.25),
        "big": AnyValue(double_value=1e21),
        "raw": AnyValue(bytes_value=b"\x00\xff"),
        "tags": AnyValue(
            array_value=ArrayValue(values=[text("a"), AnyValue(int_value=1), AnyValue(bool_value=True)])
        ),
        "where": AnyValue(kvlist_value=KeyValueList(values=[KeyValue(key="zone", value=text("eu-1"))])),
        "empty": text(""),
        "unset": AnyValue(),
        "1st": text("yes"),
        "__meta": text("m"),
    }

    (sample,) = decode_metrics(body(gauge("jobs", point(attributes=attributes))), PROTOBUF).samples

    assert sample.labels == {
        "service_name": "checkout",
        "ok": "true",
        "failed": "false",
        "cpu": "-3",
        "ratio": "0.25",
        "big": "1e+21",
        "raw": "AP8=",
        "tags": '["a",1,true]',
        "where": '{"zone":"eu-1"}',
        # empty and unset values are no label; foreign keys made into label names
        "key_1st": "yes",
        "key__meta": "m",
    }


def test_point_attributes_win_over_the_resource_s_and_colliding_keys_join() -> None:
    resource = {"host": text("from-resource"), "region": text("eu")}
    attributes = {"host": text("from-point"), "http.route": text("/a"), "http_route": text("/b")}

    (sample,) = decode_metrics(
        body(gauge("jobs", point(attributes=attributes)), resource=resource), PROTOBUF
    ).samples

    # `http.route` and `http_route` both give `http_route`: joined in key order, as the Collector does
    assert sample.labels == {"host": "from-point", "region": "eu", "http_route": "/a;/b"}


def test_points_that_cannot_be_written_are_rejected_and_the_rest_kept() -> None:
    too_many = {f"label{i}": text("v") for i in range(MAX_LABELS + 1)}
    metrics = [
        gauge("ok", point(1.5), point(float("nan")), point(float("inf")), point(None)),
        gauge("bad\x07name", point(2.0)),
        gauge("  ", point(2.0)),
        gauge("a" * 11, point(2.0)),
        gauge(
            "labels",
            point(3.0, too_many),
            point(4.0, {"host": text("h" * 1025)}),
            point(5.0, {"": text("x")}),
        ),
    ]

    decoded = decode_metrics(body(*metrics), PROTOBUF, max_name_length=10)

    assert decoded.samples == (Sample("ok", 1.5, {}, AT_TIME, None, None, 1),)
    assert decoded.rejected_data_points == 9
    assert decoded.error_message.split("; ") == [
        "metric 'ok': a data point's value must be a finite number, not nan (1 data point)",
        "metric 'ok': a data point's value must be a finite number, not inf (1 data point)",
        "metric 'ok': a data point has no value (1 data point)",
        "metric 'bad\\x07name': the name must not contain control characters (U+0007) (1 data point)",
        "metric '  ': the name must be 1 to 10 characters (after trimming spaces) (1 data point)",
        "metric 'aaaaaaaaaaa': the name must be 1 to 10 characters (after trimming spaces) (1 data point)",
        f"metric 'labels': labels may have at most {MAX_LABELS} pairs, not {MAX_LABELS + 1} (1 data point)",
        "metric 'labels': label 'host' is longer than 1024 characters (1 data point)",
        "metric 'labels': a label name must not be empty (1 data point)",
    ]
    # each sample of a point says where it was: its position in the request
    assert decoded.samples[0].line == 1


def test_a_resource_whose_labels_are_bad_rejects_each_of_its_points() -> None:
    decoded = decode_metrics(
        body(gauge("jobs", point(1.0), point(2.0)), resource={"": text("nameless")}), PROTOBUF
    )

    assert decoded.samples == ()
    assert decoded.rejected_data_points == 2
    assert decoded.error_message == "metric 'jobs': a label name must not be empty (2 data points)"


def test_the_count_suffix_counts_against_the_name_length() -> None:
    histogram = Metric(name="a" * 5)
    histogram.histogram.data_points.add(time_unix_nano=AT, count=2, sum=3.0)

    decoded = decode_metrics(body(histogram), PROTOBUF, max_name_length=10)

    assert decoded.samples == ()
    assert decoded.error_message == (
        "metric 'aaaaa': the name must be 1 to 4 characters (after trimming spaces) (1 data point)"
    )


def test_a_name_is_trimmed_before_its_suffix() -> None:
    histogram = Metric(name=" http.duration\n", unit="ms")
    histogram.histogram.data_points.add(time_unix_nano=AT, count=2, sum=3.0)

    decoded = decode_metrics(body(histogram), PROTOBUF)

    assert [sample.name for sample in decoded.samples] == ["http.duration_count", "http.duration_sum"]


def test_only_what_the_sdk_adds_is_left_out_of_the_resource_s_labels() -> None:
    resource = {
        "telemetry.sdk.name": text("opentelemetry"),
        "telemetry.distro.version": text("1"),
        "service.instance.id": text("627cc493-f310-47de-96bd-71410b7dec09"),
        "service.instance.identity": text("kept"),
        "telemetry.sdkish": text("kept"),
    }

    (sample,) = decode_metrics(body(gauge("jobs", point()), resource=resource), PROTOBUF).samples

    assert sample.labels == {"service_instance_identity": "kept", "telemetry_sdkish": "kept"}


def test_a_point_with_no_recorded_value_is_skipped_not_rejected() -> None:
    no_recorded_value = 1  # DATA_POINT_FLAGS_NO_RECORDED_VALUE_MASK
    stale = point(None, flags=no_recorded_value)

    decoded = decode_metrics(body(gauge("jobs", stale, point(7.0))), PROTOBUF)

    assert [(sample.value, sample.line) for sample in decoded.samples] == [(7.0, 2)]
    assert decoded.rejected_data_points == 0
    assert decoded.error_message == ""


def test_the_answer_names_ten_reasons_then_counts_the_rest() -> None:
    metrics = [gauge(f"m{i}", *[point(None)] * (i + 1)) for i in range(12)]

    decoded = decode_metrics(body(*metrics), PROTOBUF)

    reasons = decoded.error_message.split("; ")
    assert decoded.rejected_data_points == sum(range(1, 13))
    # the most frequent first
    assert reasons[0] == "metric 'm11': a data point has no value (12 data points)"
    assert reasons[9] == "metric 'm2': a data point has no value (3 data points)"
    assert reasons[10:] == ["and 2 more reasons"]


def test_an_empty_request_is_a_full_success() -> None:
    for content_type, empty in ((PROTOBUF, b""), (JSON, b"{}")):
        decoded = decode_metrics(empty, content_type)

        assert (decoded.samples, decoded.rejected_data_points, decoded.error_message) == ((), 0, "")
        assert encode_response(decoded, content_type) == empty


def test_without_the_otlp_extra_a_request_is_refused_with_a_clear_message() -> None:
    # a fresh interpreter in which opentelemetry.proto cannot be imported, as where the extra is not installed
    script = """
import sys
sys.modules["opentelemetry.proto"] = None
from metricstream.domain.otlp import decode_metrics
from metricstream.errors import UnsupportedMediaTypeError
try:
    decode_metrics(b"", "application/x-protobuf")
except UnsupportedMediaTypeError as error:
    print(error.status_code, error.message)
"""
    finished = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=30, check=True
    )

    assert finished.stdout == "415 OTLP is not installed on this server: pip install 'metricstream[otlp]'\n"
