"""metricstream.domain.remote_write: Prometheus remote write 1.0 bodies (written by tests/support's own
encoder of the wire format) decoded into samples; the headers, the snappy and the protobuf it refuses with a
clear error, never a stack trace; staleness markers skipped; metadata as unit and description."""

from __future__ import annotations

import math
import subprocess
import sys
from datetime import UTC, datetime

import pytest

from metricstream.domain.labels import Sample
from metricstream.domain.remote_write import (
    FamilyMetadata,
    check_remote_write_headers,
    decode_write_request,
    series_text,
    snappy_decompressed,
)
from metricstream.errors import PayloadTooLargeError, UnsupportedMediaTypeError, ValidationError
from tests.support.remote_write import STALE_NAN, Metadata, Series, WriteRequest, snappy, varint

AT = 1_700_000_000_123  # ms
AT_TIME = datetime(2023, 11, 14, 22, 13, 20, 123000, tzinfo=UTC)


def decoded(*series: Series, metadata: tuple[Metadata, ...] = ()) -> list[Sample]:
    return decode_write_request(WriteRequest(series, metadata).encode()).samples


def test_each_sample_is_a_reading_of_its_series_name_and_labels() -> None:
    samples = decoded(
        Series({"__name__": "up", "job": "node", "instance": "a:9100"}, [(1.0, AT), (0.0, AT + 15_000)]),
        Series({"__name__": "temp", "room": "kitchen"}, [(-4.25, AT)]),
    )
    labels = {"job": "node", "instance": "a:9100"}
    assert samples == [
        Sample("up", 1.0, labels, AT_TIME, line=1),
        Sample("up", 0.0, labels, datetime(2023, 11, 14, 22, 13, 35, 123000, tzinfo=UTC), line=2),
        Sample("temp", -4.25, {"room": "kitchen"}, AT_TIME, line=3),
    ]


def test_an_empty_label_value_is_no_label_as_in_prometheus() -> None:
    (sample,) = decoded(Series({"__name__": "up", "job": "node", "zone": ""}, [(1.0, AT)]))
    assert sample.labels == {"job": "node"}


def test_staleness_markers_are_counted_and_skipped_other_nans_are_kept_for_the_write_to_refuse() -> None:
    request = WriteRequest(
        [Series({"__name__": "up"}, [(1.0, AT), (STALE_NAN, AT + 1), (math.nan, AT + 2), (math.inf, AT + 3)])]
    )
    result = decode_write_request(request.encode())
    assert result.stale == 1
    first, nan, infinite = (sample.value for sample in result.samples)
    assert first == 1.0
    assert math.isnan(nan)
    assert infinite == math.inf
    # positions count every sample, the skipped marker too
    assert [sample.line for sample in result.samples] == [1, 3, 4]


def test_a_series_without_a_name_is_refused_naming_it() -> None:
    with pytest.raises(ValidationError, match=r'series 2 \(\{job="x"\}\) has no __name__ label'):
        decoded(Series({"__name__": "up"}, [(1.0, AT)]), Series({"job": "x"}, [(1.0, AT)]))


def test_native_histograms_are_refused_not_dropped_silently() -> None:
    with pytest.raises(ValidationError, match=r"series 1 \(latency\) carries native histogram samples"):
        decoded(Series({"__name__": "latency"}, [], histograms=1))


def test_a_timestamp_past_the_year_9999_is_refused() -> None:
    with pytest.raises(ValidationError, match="past the years a timestamp can have"):
        decoded(Series({"__name__": "up"}, [(1.0, 2**62)]))


def test_metadata_gives_unit_and_description_to_its_family_series() -> None:
    metadata = (
        Metadata("http_duration_seconds", unit="seconds", help="Time to answer."),
        Metadata("jobs", help="Jobs done."),
    )
    samples = decoded(
        Series({"__name__": "http_duration_seconds_sum"}, [(2.0, AT)]),
        Series({"__name__": "http_duration_seconds_count"}, [(4.0, AT)]),
        Series({"__name__": "http_duration_seconds_bucket", "le": "+Inf"}, [(4.0, AT)]),
        Series({"__name__": "jobs_total"}, [(9.0, AT)]),
        Series({"__name__": "other"}, [(1.0, AT)]),
        metadata=metadata,
    )
    details = {sample.name: (sample.unit, sample.description) for sample in samples}
    assert details == {
        "http_duration_seconds_sum": ("seconds", "Time to answer."),
        # a count, and a bucket's count, count: no unit
        "http_duration_seconds_count": (None, "Time to answer."),
        "http_duration_seconds_bucket": (None, "Time to answer."),
        "jobs_total": (None, "Jobs done."),
        "other": (None, None),
    }


def test_metadata_of_an_earlier_request_is_used_and_this_requests_wins() -> None:
    known = {"up": FamilyMetadata(None, "old"), "temp": FamilyMetadata("celsius", "Temperature.")}
    request = WriteRequest(
        [Series({"__name__": "up"}, [(1.0, AT)]), Series({"__name__": "temp"}, [(20.0, AT)])],
        [Metadata("up", help="1 if the target answered.")],
    )
    result = decode_write_request(request.encode(), known)
    assert [(s.unit, s.description) for s in result.samples] == [
        (None, "1 if the target answered."),
        ("celsius", "Temperature."),
    ]
    assert result.metadata == {"up": FamilyMetadata(None, "1 if the target answered.")}


def test_metadata_that_could_not_be_stored_is_left_out_and_the_samples_kept() -> None:
    request = WriteRequest(
        [Series({"__name__": "x"}, [(1.0, AT)])], [Metadata("x", unit="u" * 33, help="fine")]
    )
    result = decode_write_request(request.encode())
    assert result.metadata == {"x": FamilyMetadata(None, "fine")}
    assert (result.samples[0].unit, result.samples[0].description) == (None, "fine")


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (WriteRequest([Series({"__name__": "up"}, [(1.0, AT)])]).encode()[:-3], "truncated"),
        (b"\x0a\xff\xff\xff\xff\x0f", "a length past the end"),
        (b"\xff" * 12, "a varint too long"),
        # a label name that is not UTF-8 (proto3 strings must be)
        (b"\x0a\x06\x0a\x04\x0a\x02\xff\xfe", "not UTF-8"),
    ],
)
def test_a_body_that_is_not_a_write_request_is_refused(body: bytes, reason: str) -> None:
    with pytest.raises(ValidationError, match="not a Prometheus remote write WriteRequest in protobuf"):
        decode_write_request(body)


def test_unknown_fields_such_as_exemplars_are_skipped() -> None:
    body = WriteRequest([Series({"__name__": "up"}, [(1.0, AT)])]).encode()
    # field 3 of the TimeSeries (an exemplar) inside the series, and a field 9 of the request
    series_with_exemplar = body[2:] + b"\x1a\x02\x10\x01"
    request = b"\x0a" + varint(len(series_with_exemplar)) + series_with_exemplar + b"\x48\x01"
    assert [sample.name for sample in decode_write_request(request).samples] == ["up"]


def test_snappy_is_decompressed_within_the_limit() -> None:
    data = WriteRequest([Series({"__name__": "up"}, [(1.0, AT)])]).encode()
    assert snappy_decompressed(snappy(data), len(data)) == data


def test_a_body_claiming_more_than_the_limit_is_refused_before_it_is_decompressed() -> None:
    # snappy's header: 2^32 - 1 bytes to come; the body holds none of them
    claims_4_gib = varint(2**32 - 1) + b"\x00"
    with pytest.raises(PayloadTooLargeError, match="larger than 1000 bytes once decompressed"):
        snappy_decompressed(claims_4_gib, 1000)
    with pytest.raises(PayloadTooLargeError):
        snappy_decompressed(snappy(b"x" * 1001), 1000)


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"", "not valid snappy: snappy: corrupt input \\(empty\\)"),
        (b"\xff" * 11, "not snappy-compressed"),  # a header that is no length
        (snappy(b"x" * 100)[:-2], "not valid snappy"),  # cut short
        (varint(50) + b"\x00" * 10, "not valid snappy"),  # less than the header says
        (b"garbage!", "not valid snappy"),
    ],
)
def test_bad_snappy_is_refused(body: bytes, message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        snappy_decompressed(body, 10_000)


@pytest.mark.parametrize(
    "content_type",
    [
        "application/x-protobuf",
        "Application/X-Protobuf",
        "application/x-protobuf; proto=prometheus.WriteRequest",
        'application/x-protobuf;proto="prometheus.WriteRequest"',
    ],
)
def test_remote_write_1_0_headers_are_taken(content_type: str) -> None:
    check_remote_write_headers(content_type, "snappy")
    check_remote_write_headers(content_type, "Snappy ")


@pytest.mark.parametrize(
    ("content_type", "encoding", "message"),
    [
        (None, "snappy", "must be sent as application/x-protobuf, not none"),
        ("application/json", "snappy", "not application/json"),
        (
            "application/x-protobuf;proto=io.prometheus.write.v2.Request",
            "snappy",
            "takes prometheus.WriteRequest \\(remote write 1.0\\), not 'io.prometheus.write.v2.Request'",
        ),
        ("application/x-protobuf", None, "Content-Encoding: snappy, not none"),
        ("application/x-protobuf", "gzip", "Content-Encoding: snappy, not gzip"),
    ],
)
def test_other_headers_are_refused_with_415(
    content_type: str | None, encoding: str | None, message: str
) -> None:
    with pytest.raises(UnsupportedMediaTypeError, match=message):
        check_remote_write_headers(content_type, encoding)


def test_series_text_is_prometheus_notation_escaped_and_cut() -> None:
    assert series_text("up", {}) == "up"
    assert series_text("up", {"a": 'say "hi"\\\n'}) == 'up{a="say \\"hi\\"\\\\\\n"}'
    long = series_text("x", {"a": "v" * 500})
    assert len(long) == 200
    assert long.endswith("...")


@pytest.mark.parametrize(
    ("missing", "call"),
    [
        ("cramjam", "snappy_decompressed(b'', 100)"),
        ("google.protobuf", "decode_write_request(b'')"),
    ],
)
def test_without_the_remote_write_extra_a_request_is_refused_with_a_clear_message(
    missing: str, call: str
) -> None:
    # a fresh interpreter in which the library cannot be imported, as where the extra is not installed
    script = f"""
import sys
sys.modules[{missing!r}] = None
from metricstream.domain.remote_write import decode_write_request, snappy_decompressed
from metricstream.errors import UnsupportedMediaTypeError
try:
    {call}
except UnsupportedMediaTypeError as error:
    print(error.status_code, error.message)
"""
    finished = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=30, check=True
    )
    expected = "415 remote write is not installed on this server: pip install 'metricstream[remote-write]'\n"
    assert finished.stdout == expected
