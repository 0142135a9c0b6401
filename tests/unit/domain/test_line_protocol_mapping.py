"""metricstream/domain/line_protocol.py: issue 23's mapping of a line to samples (names, labels, numbers),
timestamps and precision. The syntax is tested against the reference in test_line_protocol.py."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from metricstream.domain.labels import Sample
from metricstream.domain.line_protocol import (
    LineError,
    ParsedLines,
    _cached_labels_of_plain_tags,
    normalize_precision,
    parse_lines,
)
from metricstream.errors import ValidationError

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
T_US = EPOCH + timedelta(microseconds=1_700_000_000_123_456)  # 1_700_000_000_123_456_789 ns


def at_ns(nanoseconds: int) -> datetime:
    return EPOCH + timedelta(microseconds=nanoseconds // 1000)


def samples_of(body: str | bytes, precision: str = "ns") -> list[Sample]:
    parsed = parse_lines(body, precision)
    assert parsed.errors == []
    return parsed.samples


def errors_of(body: str | bytes, precision: str = "ns") -> list[LineError]:
    return parse_lines(body, precision).errors


# --- the mapping -----------------------------------------------------------------------------------


def test_the_issues_example_gives_one_reading_per_numeric_field() -> None:
    assert samples_of("measurement,tag=v field=1.5,other=2i 1700000000000000000") == [
        Sample(
            "measurement_field", 1.5, {"tag": "v"}, datetime(2023, 11, 14, 22, 13, 20, tzinfo=UTC), line=1
        ),
        Sample(
            "measurement_other", 2.0, {"tag": "v"}, datetime(2023, 11, 14, 22, 13, 20, tzinfo=UTC), line=1
        ),
    ]


def test_a_field_called_value_names_the_metric_by_the_measurement_alone() -> None:
    assert [s.name for s in samples_of("temperature,sensor=a value=21.5,battery=3.1")] == [
        "temperature",
        "temperature_battery",
    ]


def test_a_typical_telegraf_line() -> None:
    labels = {"cpu": "cpu0", "host": "server01"}
    assert samples_of(
        "cpu,host=server01,cpu=cpu0 usage_user=1.5,usage_system=0.3,usage_idle=98.2 1700000000000000000"
    ) == [
        Sample("cpu_usage_user", 1.5, labels, at_ns(1700000000000000000), line=1),
        Sample("cpu_usage_system", 0.3, labels, at_ns(1700000000000000000), line=1),
        Sample("cpu_usage_idle", 98.2, labels, at_ns(1700000000000000000), line=1),
    ]


@pytest.mark.parametrize("boolean", ["t", "T", "true", "True", "TRUE", "f", "F", "false", "False", "FALSE"])
def test_a_boolean_field_refuses_its_line(boolean: str) -> None:
    assert errors_of(f"m x=1,ok={boolean}") == [
        LineError(1, "field 'ok' is a boolean: only numbers (float, integer, unsigned) become readings")
    ]


@pytest.mark.parametrize("text", ["tru", "truE", "yes", "0t"])
def test_a_misspelt_boolean_is_a_syntax_error(text: str) -> None:
    (error,) = errors_of(f"m ok={text}")
    assert "ok" in error.reason


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("1", 1.0),
        ("1.", 1.0),
        (".5", 0.5),
        ("-.5", -0.5),
        ("1e10", 1e10),
        ("1.5E+3", 1500.0),
        ("-1.5E-3", -0.0015),
        ("0", 0.0),
        ("-0", -0.0),
        ("2i", 2.0),
        ("-2i", -2.0),
        ("9223372036854775807i", 9223372036854775807.0),
        ("-9223372036854775808i", -9223372036854775808.0),
        ("3u", 3.0),
        ("18446744073709551615u", 18446744073709551615.0),
        ("1.7976931348623157e308", 1.7976931348623157e308),
        ("1e-400", 0.0),
    ],
)
def test_numbers_in_every_form(text: str, value: float) -> None:
    (sample,) = samples_of(f"m x={text}")
    assert sample.value == value
    # the careful path reads them the same way (an escape in the measurement sends the line there)
    (careful,) = samples_of(f"m\\,a x={text}")
    assert careful.value == value


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("9223372036854775808i", "field 'x' has integer value '9223372036854775808' out of range"),
        ("18446744073709551616u", "field 'x' has unsigned integer value '18446744073709551616' out of range"),
        ("-1u", "field 'x' has an invalid unsigned integer value '-1'"),
        ("1.5i", "field 'x' has an invalid integer value '1.5'"),
        ("1e999", "field 'x' has float value '1e999' out of range"),
        ("-inf", "field 'x' has an invalid float value '-inf'"),
        ("-nan", "field 'x' has an invalid float value '-nan'"),
        ("-infinity", "field 'x' has an invalid float value '-infinity'"),
        ("inf", "field 'x' has a value of no known type: 'inf'"),
        ("NaN", "field 'x' has a value of no known type: 'NaN'"),
        ("+1", "field 'x' has a value of no known type: '+1'"),
        ("1_000", "field 'x' has an invalid float value '1_000'"),
        ("0x1p3", "field 'x' has an invalid float value '0x1p3'"),
        ("1e", "field 'x' has an invalid float value '1e'"),
        (".", "field 'x' has an invalid float value '.'"),
        ("-", "field 'x' has an invalid float value '-'"),
        ("\u0661", "field 'x' has a value of no known type: '\u0661'"),  # ARABIC-INDIC DIGIT ONE
        ("-\u0661", "field 'x' has an invalid float value '-\u0661'"),
        ("1\u00a0", "field 'x' has an invalid float value '1\\xa0'"),
    ],
)
def test_numbers_the_grammar_refuses(text: str, reason: str) -> None:
    assert errors_of(f"m x={text}") == [LineError(1, reason)]


def test_a_field_given_twice_keeps_the_last_value() -> None:
    assert samples_of("m x=1,y=2,x=3") == [Sample("m_x", 3.0, line=1), Sample("m_y", 2.0, line=1)]


def test_a_tag_given_twice_refuses_the_line() -> None:
    assert errors_of("m,host=a,host=b x=1") == [LineError(1, "tag key 'host' is given twice")]


def test_tag_keys_that_make_one_label_name_refuse_the_line() -> None:
    assert errors_of("m,host-id=a,host_id=b x=1") == [
        LineError(1, "tag keys 'host-id' and 'host_id' both become the label name 'host_id'")
    ]


def test_tag_keys_become_label_names() -> None:
    (sample,) = samples_of("m,service.name=api,1st=a,__x=b,host\\ name=c x=1")
    assert sample.labels == {"host_name": "c", "key_1st": "a", "key__x": "b", "service_name": "api"}
    assert list(sample.labels) == sorted(sample.labels)


def test_32_tags_are_taken_and_33_refuse_the_line() -> None:
    tags = ",".join(f"t{i}=v" for i in range(32))
    (sample,) = samples_of(f"m,{tags} x=1")
    assert len(sample.labels) == 32
    assert errors_of(f"m,{tags},t32=v x=1") == [
        LineError(1, "33 tags: a line may have at most 32 (they become labels)")
    ]


def test_a_tag_value_over_1024_characters_refuses_the_line() -> None:
    (sample,) = samples_of(f"m,t={'v' * 1024} x=1")
    assert sample.labels == {"t": "v" * 1024}
    assert errors_of(f"m,t={'v' * 1025} x=1") == [LineError(1, "label 't' is longer than 1024 characters")]


def test_each_line_has_its_own_labels() -> None:
    first, second = samples_of("m,t=a x=1\nm,t=a x=2")
    first.labels["t"] = "changed"
    assert second.labels == {"t": "a"}


def test_bytes_are_utf8_and_a_line_that_is_not_is_refused_alone() -> None:
    parsed = parse_lines("m,t=é x=1\n".encode() + b"m,t=\xff x=2\n# \xff in a comment\nm x=3\n")
    assert [(s.labels, s.value) for s in parsed.samples] == [({"t": "é"}, 1.0), ({}, 3.0)]
    assert parsed.errors == [LineError(2, "not valid UTF-8")]


def test_an_empty_body_gives_nothing() -> None:
    assert parse_lines(b"") == ParsedLines()
    assert parse_lines("\n\n  \n# only a comment\r\n") == ParsedLines()


def test_a_lone_surrogate_in_a_tag_value_refuses_the_line() -> None:
    assert errors_of("m,t=a\ud800 x=1") == [
        LineError(1, "label 't' must not contain a lone surrogate (U+D800)")
    ]


def test_line_error_reads_as_its_line_and_reason() -> None:
    assert str(LineError(3, "empty tag key")) == "line 3: empty tag key"


# --- timestamps and precision -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("precision", "timestamp", "expected"),
    [
        ("ns", "1700000000123456789", T_US),
        ("n", "1700000000123456789", T_US),
        ("us", "1700000000123456", T_US),
        ("u", "1700000000123456", T_US),
        ("ms", "1700000000123", T_US.replace(microsecond=123_000)),
        ("s", "1700000000", T_US.replace(microsecond=0)),
    ],
)
def test_precision_scales_the_timestamp(precision: str, timestamp: str, expected: datetime) -> None:
    (sample,) = samples_of(f"m x=1 {timestamp}", precision)
    assert sample.timestamp == expected


def test_minutes_and_hours_as_v1_takes_them() -> None:
    (minutes,) = samples_of("m x=1 28333333", "m")
    (hours,) = samples_of("m x=1 472222", "h")
    assert minutes.timestamp == EPOCH + timedelta(minutes=28333333)
    assert hours.timestamp == EPOCH + timedelta(hours=472222)


def test_nanoseconds_are_floored_to_the_microsecond_before_1970_too() -> None:
    (after,) = samples_of("m x=1 1999")
    (before,) = samples_of("m x=1 -1")
    assert after.timestamp == EPOCH + timedelta(microseconds=1)
    assert before.timestamp == EPOCH - timedelta(microseconds=1)


def test_a_timestamp_out_of_range_after_scaling_is_refused() -> None:
    assert samples_of("m x=1 9223372036", "s")[0].timestamp == datetime(2262, 4, 11, 23, 47, 16, tzinfo=UTC)
    (error,) = errors_of("m x=1 9223372037", "s")
    assert error.reason.startswith("timestamp '9223372037' is out of range")


@pytest.mark.parametrize("text", ["-", "1-2", "--1", "12a", "a1", "1.5", "+1", "1e9", "\u0661"])
def test_a_timestamp_that_is_not_an_integer_is_refused(text: str) -> None:
    reason = f"invalid timestamp {text!r}: not an integer"
    assert errors_of(f"m x=1 {text}") == [LineError(1, reason)]
    assert errors_of(f"m\\,a x=1 {text}") == [LineError(1, reason)]


def test_text_after_the_timestamp_is_refused() -> None:
    assert errors_of("m x=1 123 456") == [LineError(1, "unexpected text after timestamp: '456'")]


@pytest.mark.parametrize(
    ("given", "normal"),
    [("ns", "ns"), ("n", "ns"), ("us", "us"), ("u", "us"), ("ms", "ms"), ("s", "s"), ("m", "m"), ("h", "h")],
)
def test_normalize_precision_takes_v1_and_v2_names(given: str, normal: str) -> None:
    assert normalize_precision(given) == normal


@pytest.mark.parametrize("given", ["", "NS", "µs", "rfc3339", "1s", "d"])
def test_normalize_precision_refuses_others(given: str) -> None:
    message = f"precision must be ns, us, ms or s (or n, u, ms, s, m or h, as /write takes it), not {given!r}"
    with pytest.raises(ValidationError) as raised:
        normalize_precision(given)
    assert str(raised.value) == message
    with pytest.raises(ValidationError):
        parse_lines("m x=1", given)


def test_long_tag_sets_are_read_but_not_kept() -> None:
    # A cache of long tag sets could hold thousands of lines of megabytes.
    cached = _cached_labels_of_plain_tags.cache_info().currsize
    long = "t=" + "v" * 1000
    assert samples_of(f"m,{long} x=2\nm,{long} x=3") == [
        Sample("m_x", 2.0, {"t": "v" * 1000}, line=1),
        Sample("m_x", 3.0, {"t": "v" * 1000}, line=2),
    ]
    assert _cached_labels_of_plain_tags.cache_info().currsize == cached
