"""metricstream/domain/line_protocol.py against the reference decoder (github.com/influxdata/line-protocol):
its whole test corpus (under issue 23's mapping), the cases of its decoder_test.go, and the syntax.

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
from metricstream.domain.line_protocol import LineError, parse_lines
from metricstream.errors import ValidationError

CORPUS = Path(__file__).parent / "data" / "line_protocol_corpus.jsonl.gz"
CORPUS_PRECISIONS = {"1ns": "ns", "1µs": "us", "1ms": "ms", "1s": "s"}
NS_PER_UNIT = {"ns": 1, "us": 1_000, "ms": 1_000_000, "s": 1_000_000_000}
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


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


def mapped(point: dict[str, Any]) -> list[tuple[object, ...]] | None:
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
        samples = mapped(point)
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


@pytest.mark.timeout(20)
def test_an_unclosed_quote_over_many_lines_takes_linear_time() -> None:
    # Each line the string runs on over was once searched again from the quote: quadratic, hours here.
    body = 'm s="' + "\nx=1" * 100_000
    assert errors_of(body) == [
        LineError(1, "expected a closing quote for string field 's', found end of input")
    ]
    closed = 'm s="a\\\\' + "\nx" * 100_000 + '\\"b",v=1 5\nm x=2'
    parsed = parse_lines(closed)
    assert parsed.errors == [
        LineError(1, "field 's' is a string: only numbers (float, integer, unsigned) become readings")
    ]
    assert [(sample.name, sample.line) for sample in parsed.samples] == [("m_x", 100_002)]
