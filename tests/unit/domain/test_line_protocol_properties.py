"""Property tests of metricstream/domain/line_protocol.py: what influxdb-client's own encoder
(`Point(...).to_line_protocol()`) writes, the parser reads back exactly, under issue 23's mapping; and every
number in every form the grammar allows reads as Python reads it.

What the protocol cannot carry is left out of the strategies, not papered over: control characters (the
client writes a newline as the two characters `\\n`, which every decoder reads as such), a name, key or
tag value ending in a backslash (the backslash would escape the separator after it), a measurement
starting with `#` (a comment), and empty keys or values (the client drops them)."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta

from hypothesis import example, given, settings
from hypothesis import strategies as st
from influxdb_client.client.write.point import Point

from metricstream.domain.labels import Sample, label_name_from, validate_labels
from metricstream.domain.line_protocol import _fast_line, _Reader, _Refused, _samples, _Times, parse_lines

PROPERTY = settings(max_examples=300, derandomize=True, database=None, deadline=None)
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
INT64 = st.integers(-(2**63), 2**63 - 1)

# The protocol's awkward characters, often, among any printable ones.
CHARACTERS = st.one_of(
    st.sampled_from(list(" ,=\"\\#'é€😀")),
    st.characters(exclude_categories=("Cc", "Cs")),
)
TOKEN = st.text(CHARACTERS, min_size=1, max_size=12).filter(lambda text: not text.endswith("\\"))
MEASUREMENT = TOKEN.filter(lambda text: not text.startswith("#"))
FIELD_KEY = st.one_of(st.just("value"), TOKEN)
NUMBER = st.one_of(
    st.floats(allow_nan=False, allow_infinity=False).map(lambda x: ("float", x)),
    INT64.map(lambda x: ("int", x)),
    st.integers(0, 2**64 - 1).map(lambda x: ("uint", x)),
)


def at_ns(nanoseconds: int) -> datetime:
    return EPOCH + timedelta(microseconds=nanoseconds // 1000)


@st.composite
def points(draw: st.DrawFn) -> tuple[Point, str, dict[str, str], dict[str, float], datetime | None]:
    """A Point with random names, tags and numeric fields, and what the parser should make of it."""
    measurement = draw(MEASUREMENT)
    # tag keys that would make one label name refuse the line (tested apart)
    tag_keys = draw(st.lists(TOKEN, max_size=5, unique_by=label_name_from))
    tags = {key: draw(TOKEN) for key in tag_keys}
    fields = draw(st.dictionaries(FIELD_KEY, NUMBER, min_size=1, max_size=4))
    timestamp = draw(st.none() | INT64)
    point = Point.from_dict(
        {
            "measurement": measurement,
            "tags": tags,
            "fields": {key: value for key, (_, value) in fields.items()},
            **({} if timestamp is None else {"time": timestamp}),
        },
        # the time in nanoseconds, from_dict's default precision
        field_types={key: "uint" for key, (kind, _) in fields.items() if kind == "uint"},
    )
    labels = {label_name_from(key): value for key, value in sorted(tags.items())}
    values = {
        measurement if key == "value" else f"{measurement}_{key}": float(value)
        for key, (_, value) in fields.items()
    }
    return (
        point,
        measurement,
        dict(sorted(labels.items())),
        values,
        None if timestamp is None else at_ns(timestamp),
    )


@PROPERTY
@given(st.lists(points(), min_size=1, max_size=5))
def test_what_influxdb_client_writes_reads_back_exactly(
    drawn: list[tuple[Point, str, dict[str, str], dict[str, float], datetime | None]],
) -> None:
    body = "\n".join(point.to_line_protocol() for point, *_ in drawn)
    parsed = parse_lines(body.encode())
    assert parsed.errors == []
    for number, (_, _, labels, values, timestamp) in enumerate(drawn, start=1):
        samples = [sample for sample in parsed.samples if sample.line == number]
        assert {sample.name: sample.value for sample in samples} == values
        assert all(sample.labels == labels and sample.timestamp == timestamp for sample in samples)
    assert len(parsed.samples) == sum(len(values) for *_, values, _ in drawn)


@PROPERTY
@given(MEASUREMENT, st.text(st.one_of(st.sampled_from(list('"\\\n\r\t ,=')), st.characters()), max_size=20))
def test_a_string_field_refuses_its_line_and_no_other(measurement: str, text: str) -> None:
    refused = Point(measurement).field("x", 1.0).field("s", text).to_line_protocol()
    body = f"{refused}\nafter value=1\n"
    parsed = parse_lines(body)
    assert [(error.line, error.reason) for error in parsed.errors] == [
        (1, "field 's' is a string: only numbers (float, integer, unsigned) become readings")
    ]
    # a newline inside the string is in the string: the next line's number counts it
    assert [(sample.name, sample.line) for sample in parsed.samples] == [("after", 2 + refused.count("\n"))]


@PROPERTY
@given(MEASUREMENT, st.booleans())
def test_a_boolean_field_refuses_its_line(measurement: str, value: bool) -> None:
    parsed = parse_lines(Point(measurement).field("ok", value).field("x", 1).to_line_protocol())
    assert parsed.samples == []
    assert [error.reason for error in parsed.errors] == [
        "field 'ok' is a boolean: only numbers (float, integer, unsigned) become readings"
    ]


# A measurement for the fast path, and one with an escaped comma for the careful path.
PLAIN_OR_ESCAPED = {False: "m", True: "m\\,"}
DIGITS = st.text("0123456789", min_size=1, max_size=20)


@st.composite
def float_texts(draw: st.DrawFn) -> str:
    """A float as the grammar writes it: `1`, `1.`, `1.5`, `.5`, each with or without `-` and an exponent
    (`e`/`E`, with or without a sign)."""
    sign = draw(st.sampled_from(["", "-"]))
    whole, fraction = draw(DIGITS), draw(DIGITS)
    mantissa = draw(st.sampled_from([whole, f"{whole}.", f"{whole}.{fraction}", f".{fraction}"]))
    exponent = draw(
        st.none() | st.tuples(st.sampled_from("eE"), st.sampled_from(["", "+", "-"]), st.integers(0, 400))
    )
    return sign + mantissa + ("" if exponent is None else f"{exponent[0]}{exponent[1]}{exponent[2]}")


@PROPERTY
@given(float_texts(), st.booleans())
def test_every_float_form_reads_as_python_reads_it(text: str, careful: bool) -> None:
    body = f"{PLAIN_OR_ESCAPED[careful]} x={text}"
    parsed = parse_lines(body)
    expected = float(text)
    if expected in (float("inf"), float("-inf")):
        (error,) = parsed.errors
        assert error.reason.startswith("field 'x' has float value '")
        assert error.reason.endswith(" out of range")
    else:
        assert parsed.errors == []
        assert [sample.value for sample in parsed.samples] == [expected]


@PROPERTY
@given(
    st.one_of(INT64.map(lambda x: f"{x}i"), st.integers(0, 2**64 - 1).map(lambda x: f"{x}u")), st.booleans()
)
def test_integers_and_unsigned_integers_become_floats(text: str, careful: bool) -> None:
    parsed = parse_lines(f"{PLAIN_OR_ESCAPED[careful]} x={text}")
    assert [sample.value for sample in parsed.samples] == [float(int(text[:-1]))]


@PROPERTY
@given(
    st.one_of(
        st.integers(2**63, 2**70).map(lambda x: f"{x}i"),
        st.integers(-(2**70), -(2**63) - 1).map(lambda x: f"{x}i"),
        st.integers(2**64, 2**70).map(lambda x: f"{x}u"),
    )
)
def test_integers_out_of_their_range_are_refused(text: str) -> None:
    (error,) = parse_lines(f"m x={text}").errors
    assert error.reason.endswith(f"value {text[:-1]!r} out of range")


# Pieces of lines, right (first) and wrong, that both paths must read alike.
MEASUREMENTS = ["m", "cpu", "é", "#m", "", "m=1", "\u00a0"]
TAGS = ["a=b", "h-1=a", "h_1=b", "1st=c", "b=é", "a=b=c", "=b", "a=", "a", ""]
FIELDS = [
    "x=1",
    "x=1i",
    "x=2u",
    "x=-1.5e3",
    "x=.5",
    "x=1.",
    "value=3",
    "y=-0",
    "é=0",
    "x=-inf",
    "x=1_0",
    "x=true",
    "x=t",
    "x=+1",
    "x=1e999",
    "x=9223372036854775808i",
    "y=-1u",
    "x=",
    "=1",
    "x=1=2",
    "",
]
TIMESTAMPS = ["1700000000000000000", "-1", "0", "1-2", "abc", "9223372036854775808", ""]  # fmt: skip


def mostly_right(pieces: list[str], right: int) -> st.SearchStrategy[str]:
    """One of `pieces`, three times in four one of the first `right`."""
    return st.one_of(*[st.sampled_from(pieces[:right])] * 3, st.sampled_from(pieces))


@st.composite
def lines(draw: st.DrawFn) -> str:
    tags = draw(st.lists(mostly_right(TAGS, 5), max_size=3))
    fields = draw(st.lists(mostly_right(FIELDS, 9), min_size=1, max_size=3))
    timestamp = draw(st.none() | mostly_right(TIMESTAMPS, 3))
    return (
        draw(mostly_right(MEASUREMENTS, 3))
        + "".join("," + tag for tag in tags)
        + draw(mostly_right([" ", "  ", ""], 1))
        + ",".join(fields)
        + ("" if timestamp is None else " " + timestamp)
    )


@PROPERTY
@given(lines())
# found by a longer run: the fast path refused the tags before the timestamp's syntax
@example("m,a=b,a=b x=1 abc")
def test_the_fast_path_reads_a_line_as_the_careful_path_does(line: str) -> None:
    """Whatever the fast path accepts or refuses, the careful path (the reference's reading) accepts or
    refuses alike, with the same samples or reason; the fast path may only pass a line on."""
    fast_samples: list[Sample] = []
    try:
        fast: object = _fast_line(line, 1, _Times(1), fast_samples)
    except _Refused as refused:
        fast = str(refused)
    if fast is False:
        return
    try:
        point = _Reader(line, [line], 1).point()
        careful: object = [] if point is None else _samples(point, 1, _Times(1))
    except _Refused as refused:
        careful = str(refused)
    assert careful == (fast_samples if fast is True else fast)


BODY_CHARACTERS = st.one_of(st.sampled_from(list(' ,="\\#\n\r\tiu.-e0123456789')), st.characters())


@PROPERTY
@given(st.one_of(st.text(BODY_CHARACTERS, max_size=80), st.binary(max_size=80), lines().map(str.encode)))
def test_any_body_gives_samples_and_reasons_never_an_exception(body: str | bytes) -> None:
    parsed = parse_lines(body)
    count = (body.count("\n") if isinstance(body, str) else body.count(b"\n")) + 1
    for sample in parsed.samples:
        assert sample.name
        assert math.isfinite(sample.value)
        assert validate_labels(sample.labels) == sample.labels
        assert 1 <= sample.line <= count
    for error in parsed.errors:
        assert 1 <= error.line <= count
        assert 0 < len(error.reason) < 300
