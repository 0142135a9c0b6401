"""metricstream/domain/line_protocol.py against the reference decoder (github.com/influxdata/line-protocol):
its whole test corpus, the cases of its decoder_test.go, and the mapping of issue 23.

data/line_protocol_corpus.jsonl.gz is the reference's lineprotocol/testdata/corpus.json (commit ea04bea,
MIT, data/line_protocol_corpus.LICENSE), its "decode" cases one a line: the input, and either the points the
reference decodes or its error."""

from __future__ import annotations

import base64
import gzip
import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from metricstream.domain.labels import MAX_LABELS, Sample, label_name_from, validate_labels
from metricstream.domain.line_protocol import LineError, ParsedLines, normalize_precision, parse_lines
from metricstream.errors import ValidationError

CORPUS = Path(__file__).parent / "data" / "line_protocol_corpus.jsonl.gz"
CORPUS_PRECISIONS = {"1ns": "ns", "1µs": "us", "1ms": "ms", "1s": "s"}
NS_PER_UNIT = {"ns": 1, "us": 1_000, "ms": 1_000_000, "s": 1_000_000_000}
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
T = 1_700_000_000_123_456_789  # ns
T_US = EPOCH + timedelta(microseconds=1_700_000_000_123_456)


def at_ns(nanoseconds: int) -> datetime:
    return EPOCH + timedelta(microseconds=nanoseconds // 1000)


# --- the reference's corpus --------------------------------------------------------------------------------


def corpus() -> Iterator[dict[str, Any]]:
    with gzip.open(CORPUS, "rt", encoding="utf-8") as lines:
        for line in lines:
            yield json.loads(line)


def corpus_body(case: dict[str, Any]) -> str | bytes:
    text = case["text"]
    return base64.b64decode(text["base64"]) if isinstance(text, dict) else str(text)


def mapped(point: dict[str, Any], default_time: int) -> list[tuple[object, ...]] | None:
    """The samples issue 23's mapping makes of a point the reference decoded, computed apart from the
    parser (None: the mapping refuses the line), as (name, labels, value, time or None) tuples."""
    tags = [(str(key), str(value)) for key, value in point["tags"]]
    names = [label_name_from(key) for key, _ in tags]
    if len(tags) > MAX_LABELS or len(set(names)) < len(names):
        return None
    try:
        labels = validate_labels(dict(zip(names, (value for _, value in tags), strict=True)))
    except ValidationError:
        return None
    values: dict[str, float] = {}
    for key, kind, value in point["fields"]:
        if kind not in ("float", "int", "uint"):
            return None
        values[key] = float(value)
    moment = at_ns(point["time"])
    name = str(point["name"])
    return [
        (name if key == "value" else f"{name}_{key}", tuple(labels.items()), value, moment)
        for key, value in values.items()
    ]


def disagreement(case: dict[str, Any]) -> str | None:
    """How the parser differs from the reference on one corpus case, or None."""
    precision = CORPUS_PRECISIONS[case["precision"]]
    parsed = parse_lines(corpus_body(case), precision)
    if "error" in case:
        return None if parsed.errors else f"accepted what the reference refuses ({case['error']})"
    expected: list[tuple[object, ...]] = []
    refused = False
    for point in case["points"]:
        samples = mapped(point, case["default_time"])
        refused |= samples is None
        expected += samples or []
    if bool(parsed.errors) != refused:
        return f"errors {[str(error) for error in parsed.errors]}, expected {'some' if refused else 'none'}"
    # The reference gives the default time (truncated to the precision) to a line without a timestamp.
    default = at_ns(case["default_time"] // NS_PER_UNIT[precision] * NS_PER_UNIT[precision])
    got = [
        (s.name, tuple(s.labels.items()), s.value, default if s.timestamp is None else s.timestamp)
        for s in parsed.samples
    ]
    return None if got == expected else f"samples {got}, expected {expected}"


def test_the_reference_corpus_is_all_there() -> None:
    cases = list(corpus())
    assert len(cases) == 6615
    assert sum("error" in case for case in cases) == 6220


def test_parse_lines_agrees_with_the_reference_decoder_on_its_whole_corpus() -> None:
    differences = {}
    for case in corpus():
        difference = disagreement(case)
        if difference is not None:
            differences[case["key"]] = (case["text"], difference)
    assert differences == {}


# --- the reference's decoder_test.go, with issue 23's mapping ---------------------------------------------


def samples_of(body: str | bytes, precision: str = "ns") -> list[Sample]:
    parsed = parse_lines(body, precision)
    assert parsed.errors == []
    return parsed.samples


def errors_of(body: str | bytes, precision: str = "ns") -> list[LineError]:
    return parse_lines(body, precision).errors


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        pytest.param(
            "\n   # comment\n somename,tag1=val1,tag2=val2  floatfield=1,intfield=-1i,uintfield=1u  "
            "1602841605822791506\n",
            [
                Sample(
                    "somename_floatfield",
                    1.0,
                    {"tag1": "val1", "tag2": "val2"},
                    at_ns(1602841605822791506),
                    line=3,
                ),
                Sample(
                    "somename_intfield",
                    -1.0,
                    {"tag1": "val1", "tag2": "val2"},
                    at_ns(1602841605822791506),
                    line=3,
                ),
                Sample(
                    "somename_uintfield",
                    1.0,
                    {"tag1": "val1", "tag2": "val2"},
                    at_ns(1602841605822791506),
                    line=3,
                ),
            ],
            id="all-fields-present-no-escapes",
        ),
        pytest.param(
            "\n m1,tag1=val1  x=1  1602841605822791506\n"
            "  m2,foo=bar  value=2  1602841605822792000\n\n # end\n",
            [
                Sample("m1_x", 1.0, {"tag1": "val1"}, at_ns(1602841605822791506), line=2),
                Sample("m2", 2.0, {"foo": "bar"}, at_ns(1602841605822792000), line=3),
            ],
            id="multiple-entries",
        ),
        pytest.param(
            "\n comma\\,1,equals\\==e\\,x,two=val2 field\\=x=1.5  1602841605822791506\n\n # last comment\n",
            [
                Sample(
                    "comma,1_field=x",
                    1.5,
                    {"equals_": "e,x", "two": "val2"},
                    at_ns(1602841605822791506),
                    line=2,
                )
            ],
            id="escaped-values",
        ),
        pytest.param("b f=1", [Sample("b_f", 1.0, line=1)], id="missing-timestamp"),
        pytest.param("b f=1\n", [Sample("b_f", 1.0, line=1)], id="missing-timestamp-with-newline"),
        pytest.param(
            "b f=1 -9223372036854775808",
            [Sample("b_f", 1.0, timestamp=at_ns(-9223372036854775808), line=1)],
            id="negative-timestamp-just-in-range",
        ),
        pytest.param("9 f=-7 ", [Sample("9_f", -7.0, line=1)], id="field-with-space-and-no-timestamp"),
        pytest.param("# foo\r\nm x=1\r\n\r\n", [Sample("m_x", 1.0, line=2)], id="carriage-returns"),
        pytest.param(
            "m,s=\\t\\r\\n\\v x=1",
            [Sample("m_x", 1.0, {"s": "\\t\\r\\n\\v"}, line=1)],
            id="backslash-escapes-in-tags",
        ),
    ],
)
def test_the_reference_decoder_tests_that_give_points(body: str, expected: list[Sample]) -> None:
    assert samples_of(body) == expected


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        pytest.param(
            "\nm1 value=12.0\nm2 value=2a.0\nm3 value=32.0\n",
            [LineError(3, "field 'value' has an invalid float value '2a.0'")],
            id="multiple-entries-with-error#1",
        ),
        pytest.param(
            "\nm1 value=12.0\nm2\nm3 value=32.0\n",
            [LineError(3, "expected tag key or field, found end of line")],
            id="multiple-entries-with-error#2",
        ),
        pytest.param(
            "TestBucket FieldOné=Happy,FieldTwo=sad",
            [LineError(1, "field 'FieldOné' has a value of no known type: 'Happy'")],
            id="missing-quotes",
        ),
        pytest.param(
            "TestBuckét, FieldOne=Happy\nnext x=1",
            [LineError(1, "expected tag key after comma, found white space")],
            id="trailing-comma-after-measurement",
        ),
        pytest.param(
            'TestBuckét TagOné="Happy" FieldOne=123.45',
            [LineError(1, "invalid timestamp 'FieldOne=123.45': not an integer")],
            id="missing-comma-after-field",
        ),
        pytest.param(
            "b f=1 9223372036854775808",
            [
                LineError(
                    1,
                    "timestamp '9223372036854775808' is out of range: it must fall between 1677-09-21 and "
                    "2262-04-11 (int64 nanoseconds, as InfluxDB takes it)",
                )
            ],
            id="out-of-range-timestamp",
        ),
        pytest.param(
            "b f=1 -9223372036854775809",
            [
                LineError(
                    1,
                    "timestamp '-9223372036854775809' is out of range: it must fall between 1677-09-21 and "
                    "2262-04-11 (int64 nanoseconds, as InfluxDB takes it)",
                )
            ],
            id="negative-timestamp-just-out-of-range",
        ),
        pytest.param(
            "# foo\rxxx\nm x=1\r\n\r\n",
            [LineError(1, "invalid character found in comment line")],
            id="carriage-return-in-comment",
        ),
        pytest.param(
            "mmmé é=1e9999999999999",
            [LineError(1, "field 'é' has float value '1e9999999999999' out of range")],
            id="out-of-range-value",
        ),
        pytest.param(
            "m f=1,\x01=1,\x01=2",
            [LineError(1, "invalid character '\\x01' found at start of field key")],
            id="field-key-error",
        ),
        pytest.param(
            'm f="hello\ngoodbye\nx",gé=invalid\nm x=1',
            [LineError(1, "field 'gé' has a value of no known type: 'invalid'")],
            id="field-value-error-after-newline-in-string",
        ),
        pytest.param(
            'm f="a\nb",g="c\nd',
            [LineError(1, "expected a closing quote for string field 'g', found end of input")],
            id="field-string-value-error-after-newline-in-string",
        ),
        pytest.param(
            "m foo\x01=bar x=1",
            [LineError(1, "expected '=' after field key 'foo', found '\\x01'")],
            id="non-printable-ASCII-in-field-key",
        ),
        pytest.param(
            "m,foo\x03=bar x=1",
            [LineError(1, "expected '=' after tag key 'foo', found '\\x03'")],
            id="non-printable-ASCII-in-tag-key",
        ),
        pytest.param(
            "m,foo=bar\x02 x=1",
            [LineError(1, "expected tag key or field, found '\\x02'")],
            id="non-printable-ASCII-in-tag-value",
        ),
        pytest.param(
            "m", [LineError(1, "expected tag key or field, found end of line")], id="bad-tag-key-#1"
        ),
        pytest.param("m,=bar", [LineError(1, "empty tag key")], id="bad-tag-key-#2"),
        pytest.param(
            "m,x =y", [LineError(1, "expected '=' after tag key 'x', found ' '")], id="bad-tag-key-#3"
        ),
        pytest.param(
            "m,x", [LineError(1, "expected '=' after tag key 'x', found end of line")], id="bad-tag-key-#4"
        ),
    ],
)
def test_the_reference_decoder_tests_that_give_errors(body: str, expected: list[LineError]) -> None:
    assert errors_of(body) == expected


def test_lines_around_a_refused_one_are_still_read() -> None:
    parsed = parse_lines('m value=1\nm value="x"\nm value=3\n')
    assert [(s.value, s.line) for s in parsed.samples] == [(1.0, 1), (3.0, 3)]
    assert parsed.errors == [
        LineError(2, "field 'value' is a string: only numbers (float, integer, unsigned) become readings")
    ]


def test_a_string_over_several_lines_counts_them() -> None:
    parsed = parse_lines('m s="a\nb\nc"\nm x=1\nm,a x=2')
    assert [(s.name, s.line) for s in parsed.samples] == [("m_x", 4)]
    assert parsed.errors[0].line == 1
    assert parsed.errors[1] == LineError(5, "expected '=' after tag key 'a', found ' '")


# --- issue 23's mapping -----------------------------------------------------------------------------------


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


def test_a_tab_is_allowed_in_a_comment_as_the_grammar_says() -> None:
    # The reference decoder refuses it; its grammar (comment = "#" { not(nonprintable_char) | "\t" }) and
    # InfluxDB take it.
    assert samples_of("# a\tcomment\nm x=1") == [Sample("m_x", 1.0, line=2)]
    assert errors_of("# a\x01comment\nm x=1") == [LineError(1, "invalid character found in comment line")]


def test_str_and_bytes_bodies_read_alike() -> None:
    body = 'cpu,host=a x=1 5\r\nm\\ 1,t=\\= y=2u\n# note\nbad\nm s="x"\r\n'
    assert parse_lines(body) == parse_lines(body.encode())
    assert [str(error) for error in parse_lines(body).errors] == [
        "line 4: expected tag key or field, found end of line",
        "line 5: field 's' is a string: only numbers (float, integer, unsigned) become readings",
    ]


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        ("m x=" + "9" * 5000 + "i", f"field 'x' has integer value {'9' * 27!r}... out of range"),
        ("m\\,a x=" + "9" * 5000 + "u", f"field 'x' has unsigned integer value {'9' * 27!r}... out of range"),
        ("m x=1 " + "9" * 5000, f"timestamp {'9' * 27!r}... is out of range"),
    ],
)
def test_integers_of_any_length_are_refused_with_a_short_message(body: str, reason: str) -> None:
    # int() refuses more than 4300 digits with a ValueError, which must not escape
    (error,) = errors_of(body)
    assert error.reason.startswith(reason)
    assert len(error.reason) < 200


def test_leading_zeros_do_not_count_against_the_range() -> None:
    (sample,) = samples_of("m x=" + "0" * 5000 + "7i " + "-" + "0" * 5000 + "1")
    assert (sample.value, sample.timestamp) == (7.0, EPOCH - timedelta(microseconds=1))


def test_a_long_key_or_value_is_shown_short_in_a_reason() -> None:
    (error,) = errors_of("m " + "k" * 100_000 + "=" + "v" * 100_000)
    assert error.reason == f"field {'k' * 27!r}... has a value of no known type: {'v' * 27!r}..."
