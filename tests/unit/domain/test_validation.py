"""Unit tests of the domain: validation, the value objects, timestamps and id generation."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from fractions import Fraction
from typing import Any

import pydantic
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from metricstream.domain.names import NAME_SPACE
from metricstream.domain.validation import (
    METRIC_MISSING,
    MetricIn,
    MetricsQuery,
    ReadingFields,
    ReadingIn,
    ReadingsQuery,
    reading_model,
    timestamp_hint,
    validate,
    validate_reading,
)
from metricstream.domain.values import format_timestamp
from metricstream.errors import MetricStreamError, ValidationError
from metricstream.ids import new_id
from tests.support.apitools import (
    FREQUENCY_MESSAGE,
    LIMIT_MESSAGE,
    METRIC_ID_MESSAGE,
    NAME_MESSAGE,
    RFC3339_RULE,
    UUID4,
    VALUE_MESSAGE,
)

METRIC_ID = "01a21b32-2870-78a3-85f4-5b37387bfd17"  # a UUIDv7


def rejects(model: type[pydantic.BaseModel], data: object) -> str:
    """The message `validate` raises for `data`."""
    with pytest.raises(ValidationError) as raised:
        validate(model, data)
    return str(raised.value)


def reading(**fields: object) -> dict[str, object]:
    return {"metric_id": METRIC_ID, "value": 1.0, **fields}


# --- validate -----------------------------------------------------------------------------------


@pytest.mark.parametrize("data", [[], [{"name": "x"}], "x", b"{}", 1, 1.5, None, True, ("name",)])
@pytest.mark.parametrize("model", [MetricIn, ReadingIn, ReadingsQuery])
def test_validate_requires_a_dict(model: type[pydantic.BaseModel], data: object) -> None:
    assert rejects(model, data) == "request body must be a JSON object"


def test_validation_error_is_a_value_error_with_no_pydantic_context() -> None:
    with pytest.raises(ValidationError) as raised:
        validate(MetricIn, {"name": ""})
    error = raised.value
    assert isinstance(error, ValueError)
    assert isinstance(error, MetricStreamError)
    assert error.status_code == 400
    assert error.message == NAME_MESSAGE
    assert error.__cause__ is None
    assert error.__suppress_context__  # `from None`: no pydantic traceback for callers


def test_validate_returns_the_model_instance() -> None:
    result = validate(MetricIn, {"name": " CPU ", "input_frequency": 2})
    assert type(result) is MetricIn
    assert result == MetricIn(name="CPU", input_frequency=2.0)


@pytest.mark.parametrize(
    ("model", "data", "message"),
    [
        (MetricIn, {}, "name is required"),
        (ReadingIn, {}, f"{METRIC_MISSING}; value is required"),
        (ReadingIn, {"value": 1}, METRIC_MISSING),
        (ReadingIn, {"metric_id": METRIC_ID}, "value is required"),
        (MetricIn, {"name": "", "input_frequency": -1}, f"{NAME_MESSAGE}; {FREQUENCY_MESSAGE}"),
        (
            ReadingIn,
            {"metric_id": 1, "value": 0, "timestamp": 1},
            f"{METRIC_ID_MESSAGE}; {VALUE_MESSAGE}; timestamp {RFC3339_RULE}",
        ),
        (
            ReadingsQuery,
            {"since": "x", "until": "y", "limit": "z"},
            f"since {RFC3339_RULE}; until {RFC3339_RULE}; {LIMIT_MESSAGE}",
        ),
    ],
)
def test_messages_name_every_bad_field_in_order(
    model: type[pydantic.BaseModel], data: dict[str, object], message: str
) -> None:
    assert rejects(model, data) == message


class _Union(pydantic.BaseModel):
    value: int | list[int]
    other: int


def test_each_message_appears_once() -> None:
    # a union fails once per member in pydantic's eyes; the caller reads one sentence per field
    assert rejects(_Union, {"value": "x", "other": "y"}) == f"{VALUE_MESSAGE}; other: " + (
        "Input should be a valid integer, unable to parse string as an integer"
    )


def test_unknown_field_message_falls_back_to_pydantic() -> None:
    assert rejects(_Union, {"value": 1}) == "other is required"


# --- MetricIn -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "stored"),
    [
        ("CPU", "CPU"),
        ("  CPU  ", "CPU"),
        ("\t\nCPU\r\n", "CPU"),
        ("\u00a0CPU\u3000", "CPU"),  # non-ASCII whitespace is trimmed too
        ("a  b", "a  b"),
        ("x" * 200, "x" * 200),
        (" " * 50 + "x" * 200 + " " * 50, "x" * 200),
        ("é" * 200, "é" * 200),  # characters, not bytes
        ("e\u0301" * 200, "\u00e9" * 200),  # NFC, then counted
        ("\x85CPU\u2028", "CPU"),  # Unicode's White_Space, control characters among it, at the ends
    ],
)
def test_metric_name_trimmed_and_bounded(name: str, stored: str) -> None:
    assert validate(MetricIn, {"name": name}).name == stored
    assert validate(MetricsQuery, {"name": name}).name == stored  # a query by name: the same rule
    item = {"metric": name, "value": 1}
    assert validate_reading(item).metric == validate(ReadingIn, item).metric == stored


def test_names_are_trimmed_of_unicode_whitespace_not_of_what_str_strip_takes() -> None:
    python_space = {character for character in map(chr, range(0x110000)) if character.isspace()}
    # U+001C-U+001F are space to str.isspace() only: Unicode calls them control characters, and so do we
    assert set(NAME_SPACE) == python_space - set("\x1c\x1d\x1e\x1f")


@pytest.mark.parametrize(
    ("name", "rule"),
    [
        ("\x1cCPU", "must not contain control characters (U+001C)"),  # str.strip() took it away
        ("CPU\x1f", "must not contain control characters (U+001F)"),
        ("C\tPU", "must not contain control characters (U+0009)"),
        ("C\x00PU", "must not contain control characters (U+0000)"),
        ("\x7f", "must not contain control characters (U+007F)"),
        ("CPU\ud800", "must not contain a lone surrogate (U+D800)"),
    ],
)
def test_metric_name_with_a_control_character_rejected(name: str, rule: str) -> None:
    assert rejects(MetricIn, {"name": name}) == f"name {rule}"
    assert rejects(MetricsQuery, {"name": name}) == f"name {rule}"
    for positive_only in (True, False):
        with pytest.raises(ValidationError) as raised:
            validate_reading({"metric": name, "value": 1}, positive_only)
        assert raised.value.message == f"metric {rule}"


@pytest.mark.parametrize(
    "name", ["", " ", "\t\n", "\u00a0", "x" * 201, " " + "x" * 201, 5, 0, 1.5, True, None, b"CPU"]
)
def test_metric_name_rejected(name: object) -> None:
    assert rejects(MetricIn, {"name": name}) == NAME_MESSAGE


@pytest.mark.parametrize(
    ("frequency", "stored"),
    [(None, None), (0, 0.0), (0.0, 0.0), (1, 1.0), (2.5, 2.5), (1e308, 1e308)],
)
def test_input_frequency_accepted(frequency: float | None, stored: float | None) -> None:
    result = validate(MetricIn, {"name": "x", "input_frequency": frequency})
    assert result.input_frequency == stored
    assert result.input_frequency is None or type(result.input_frequency) is float


def test_input_frequency_defaults_to_none() -> None:
    assert validate(MetricIn, {"name": "x"}).input_frequency is None


@pytest.mark.parametrize(
    "frequency",
    [-1, -1e-9, float("nan"), float("inf"), float("-inf"), "1", "NaN", True, False, [], {}],
)
def test_input_frequency_rejected(frequency: object) -> None:
    assert rejects(MetricIn, {"name": "x", "input_frequency": frequency}) == FREQUENCY_MESSAGE


def test_models_ignore_extra_fields_and_are_frozen() -> None:
    result = validate(MetricIn, {"name": "x", "id": "chosen", "readings": []})
    assert result.model_dump() == {
        "name": "x",
        "input_frequency": None,
        "labels": {},
        "unit": None,
        "description": None,
    }
    with pytest.raises(pydantic.ValidationError):
        result.name = "y"


# --- ReadingIn ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "given",
    [METRIC_ID, METRIC_ID.upper(), METRIC_ID.replace("-", ""), f"{{{METRIC_ID}}}", uuid.UUID(METRIC_ID)],
)
def test_metric_id_normalized(given: object) -> None:
    assert validate(ReadingIn, reading(metric_id=given)).metric_id == METRIC_ID


@pytest.mark.parametrize(
    "given",
    [
        UUID4,
        uuid.UUID(UUID4),
        "b09a5984-f17e-11f1-886d-02fc00000001",  # a version-1 id
        "00000000-0000-0000-0000-000000000000",
        "ffffffff-ffff-ffff-ffff-ffffffffffff",
        METRIC_ID[:-1],
        METRIC_ID + "0",
        "",
        "not a uuid",
        int(uuid.UUID(METRIC_ID)),
        uuid.UUID(METRIC_ID).bytes,
        True,
        [METRIC_ID],
    ],
)
def test_metric_id_rejected(given: object) -> None:
    assert rejects(ReadingIn, reading(metric_id=given)) == METRIC_ID_MESSAGE


def test_a_null_metric_id_is_no_metric_id() -> None:
    assert rejects(ReadingIn, reading(metric_id=None)) == METRIC_MISSING


@pytest.mark.parametrize("value", [1e-300, 5e-324, 0.5, 1, 42, 1e308, 10**30])
def test_value_accepted(value: float) -> None:
    result = validate(ReadingIn, reading(value=value))
    assert result.value == float(value)
    assert type(result.value) is float


@pytest.mark.parametrize(
    "value",
    [
        *(0, 0.0, -0.0, -1, -5e-324, 10**400),
        *(float("nan"), float("inf"), float("-inf")),
        *("1", "nan", True, False, None, [], {}),
    ],
)
def test_value_rejected(value: object) -> None:
    assert rejects(ReadingIn, reading(value=value)) == VALUE_MESSAGE


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("2026-01-01T12:00:00Z", datetime(2026, 1, 1, 12, tzinfo=UTC)),
        ("2026-01-01t12:00:00z", datetime(2026, 1, 1, 12, tzinfo=UTC)),
        ("2026-01-01 12:00:00Z", datetime(2026, 1, 1, 12, tzinfo=UTC)),
        ("2026-01-01T12:00:00+02:00", datetime(2026, 1, 1, 10, tzinfo=UTC)),
        ("2026-01-01T12:00:00-05:30", datetime(2026, 1, 1, 17, 30, tzinfo=UTC)),
        ("2026-01-01T12:00:00-00:00", datetime(2026, 1, 1, 12, tzinfo=UTC)),
        ("2026-01-01T12:00:00.5Z", datetime(2026, 1, 1, 12, 0, 0, 500000, tzinfo=UTC)),
        ("2026-01-01T12:00:00.000001Z", datetime(2026, 1, 1, 12, 0, 0, 1, tzinfo=UTC)),
        ("2026-01-01T12:00:00.9999999999Z", datetime(2026, 1, 1, 12, 0, 0, 999999, tzinfo=UTC)),
        ("2026-01-01T12:00:00.1234567+01:00", datetime(2026, 1, 1, 11, 0, 0, 123456, tzinfo=UTC)),
        ("2024-02-29T00:00:00Z", datetime(2024, 2, 29, tzinfo=UTC)),
        ("0001-01-01T00:00:00Z", datetime(1, 1, 1, tzinfo=UTC)),
        ("0001-01-01T00:00:00-01:00", datetime(1, 1, 1, 1, tzinfo=UTC)),
        ("9999-12-31T23:59:59.999999Z", datetime(9999, 12, 31, 23, 59, 59, 999999, tzinfo=UTC)),
        (
            datetime(2026, 1, 1, 12, tzinfo=timezone(timedelta(hours=9))),
            datetime(2026, 1, 1, 3, tzinfo=UTC),
        ),
        (datetime(2026, 1, 1, 12, tzinfo=UTC), datetime(2026, 1, 1, 12, tzinfo=UTC)),
    ],
)
def test_timestamp_parsed_to_utc(given: object, expected: datetime) -> None:
    result = validate(ReadingIn, reading(timestamp=given)).timestamp
    assert result == expected
    assert result is not None
    assert result.utcoffset() == timedelta(0)
    assert result.tzinfo is UTC


@pytest.mark.parametrize("given", [None, "absent"])
def test_timestamp_optional(given: object) -> None:
    data = reading() if given == "absent" else reading(timestamp=given)
    assert validate(ReadingIn, data).timestamp is None


@pytest.mark.parametrize(
    "given",
    [
        "2026-01-01T12:00:00",
        "2026-01-01T12:00:00.5",
        "2026-01-01",
        "2026-01-01T12:00Z",
        "2026-01-01T12:00:00+0200",
        "2026-01-01T12:00:00+02",
        "2026-01-01T12:00:00 +02:00",
        "2026-01-01T12:00:00.Z",
        "2026-01-01T12:00:00,5Z",
        "2026-01-01_12:00:00Z",
        "20260101T120000Z",
        "2026-1-1T12:00:00Z",
        " 2026-01-01T12:00:00Z",
        "2026-01-01T12:00:00Z ",
        "2026-01-01T12:00:00Z\n",
        "2026-02-29T00:00:00Z",
        "2026-04-31T00:00:00Z",
        "2026-13-01T00:00:00Z",
        "2026-00-01T00:00:00Z",
        "2026-01-00T00:00:00Z",
        "2026-01-01T24:00:00Z",
        "2026-01-01T12:60:00Z",
        "2026-01-01T12:00:60Z",
        "2026-01-01T12:00:00+24:00",
        "2026-01-01T12:00:00+23:60",
        "0000-01-01T00:00:00Z",
        "0001-01-01T00:00:00+00:01",  # real, but before datetime.min in UTC
        "9999-12-31T23:59:59-00:01",  # real, but after datetime.max in UTC
        "\uff12\uff10\uff12\uff16-01-01T12:00:00Z",  # full-width digits
        "",
        "garbage",
        datetime(2026, 1, 1, 12),  # naive
        datetime(1, 1, 1, tzinfo=timezone(timedelta(hours=1))),  # overflows to UTC
        1767268800,
        1767268800.0,
        True,
        [],
    ],
)
def test_timestamp_rejected(given: object) -> None:
    """Every shape but RFC 3339 is refused; the usual mistakes are told what to send (test_messages.py)."""
    hint = timestamp_hint(given)
    said = f"timestamp {RFC3339_RULE}" if hint is None else f"timestamp {RFC3339_RULE.split(',')[0]}: {hint}"
    assert rejects(ReadingIn, reading(timestamp=given)) == said


# --- ReadingsQuery ------------------------------------------------------------------------------


def test_readings_query_defaults() -> None:
    assert validate(ReadingsQuery, {}) == ReadingsQuery(since=None, until=None, limit=1000)


@pytest.mark.parametrize(("limit", "parsed"), [("1", 1), ("10000", 10000), (1, 1), (500, 500)])
def test_readings_query_limit_accepted(limit: object, parsed: int) -> None:
    assert validate(ReadingsQuery, {"limit": limit}).limit == parsed


@pytest.mark.parametrize(
    "limit", ["0", "10001", "-1", "", "abc", "1.5", "1e3", "0x10", "²", 0, 10001, 1.5, None, []]
)
def test_readings_query_limit_rejected(limit: object) -> None:
    assert rejects(ReadingsQuery, {"limit": limit}) == LIMIT_MESSAGE


@pytest.mark.parametrize("field", ["since", "until"])
def test_readings_query_times(field: str) -> None:
    parsed = validate(ReadingsQuery, {field: "2026-01-01T12:00:00+01:00"})
    assert getattr(parsed, field) == datetime(2026, 1, 1, 11, tzinfo=UTC)
    hint = "2026-01-01T12:00:00 has no UTC offset: add Z (UTC) or +hh:mm, e.g. 2026-01-01T12:00:00Z"
    assert (
        rejects(ReadingsQuery, {field: "2026-01-01T12:00:00"})
        == f"{field} {RFC3339_RULE.split(',')[0]}: {hint}"
    )
    assert rejects(ReadingsQuery, {field: "noon"}) == f"{field} {RFC3339_RULE}"


def test_readings_query_does_not_order_since_and_until() -> None:
    """Checking since <= until is the service's job (it also knows the metric exists)."""
    query = validate(ReadingsQuery, {"since": "2026-01-02T00:00:00Z", "until": "2026-01-01T00:00:00Z"})
    assert query.since is not None
    assert query.until is not None
    assert query.since > query.until


# --- format_timestamp ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "moment",
    [
        datetime(2026, 3, 4, 5, 6, 7, 891011, tzinfo=UTC),
        datetime(2026, 3, 4, 5, 6, 7, tzinfo=timezone(timedelta(hours=14))),
        datetime(12, 3, 4, 5, 6, 7, 1, tzinfo=UTC),
    ],
)
def test_format_timestamp_round_trips_through_validation(moment: datetime) -> None:
    text = format_timestamp(moment)
    assert validate(ReadingIn, reading(timestamp=text)).timestamp == moment


# --- Metric, MetricReading, Event ---------------------------------------------------------------


# --- new_id -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("2016-12-31T23:59:60Z", datetime(2017, 1, 1, tzinfo=UTC)),
        ("2016-12-31T23:59:60.25Z", datetime(2017, 1, 1, 0, 0, 0, 250000, tzinfo=UTC)),
        ("2016-12-31T18:59:60-05:00", datetime(2017, 1, 1, tzinfo=UTC)),
    ],
)
def test_a_leap_second_is_read_as_the_next_second(given: str, expected: datetime) -> None:
    fields = validate(ReadingIn, {"metric_id": METRIC_ID, "value": 1, "timestamp": given})
    assert fields.timestamp == expected


@pytest.mark.parametrize("given", ["2016-12-31T23:59:61Z", "9999-12-31T23:59:60Z"])
def test_no_second_past_sixty_or_past_the_last_date(given: str) -> None:
    with pytest.raises(ValidationError, match="timestamp must be an RFC 3339 date-time"):
        validate(ReadingIn, {"metric_id": METRIC_ID, "value": 1, "timestamp": given})


@pytest.mark.parametrize("value", [Decimal("1.5"), Fraction(1, 2), Decimal("1e-400"), 10**400, True])
def test_python_numbers_json_cannot_carry_are_refused(value: object) -> None:
    with pytest.raises(ValidationError, match="value must be a finite number greater than 0"):
        validate(ReadingIn, {"metric_id": METRIC_ID, "value": value})
    with pytest.raises(ValidationError, match="input_frequency must be a number >= 0"):
        validate(MetricIn, {"name": "m", "input_frequency": value})


def test_numpy_numbers_are_numbers() -> None:
    numpy = pytest.importorskip("numpy")
    assert validate(ReadingIn, {"metric_id": METRIC_ID, "value": numpy.float32(2.5)}).value == 2.5
    assert validate(ReadingIn, {"metric_id": METRIC_ID, "value": numpy.int64(3)}).value == 3.0


# --- validate_reading: the precompiled check gives the model's answers -----------------------------

_ID = str(new_id())
_reading_values = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True),
    st.integers(min_value=-(10**400), max_value=10**400),
    st.sampled_from([0, 0.0, -0.0, 1, True, False, None, "1", 5e-324, 1.7976931348623157e308, 10**309]),
    st.builds(Decimal, st.integers()),
    st.builds(Fraction, st.integers(), st.integers(min_value=1)),
)
_reading_ids = st.one_of(
    st.just(_ID),
    st.just(_ID.upper()),
    st.just("{" + _ID + "}"),
    st.just(_ID.replace("-", "")),
    st.just(str(uuid.uuid4())),
    st.just(uuid.UUID(_ID)),
    st.text(max_size=40),
    st.none(),
    st.integers(),
)
_name_parts = ["a", "é", "e\u0301", " ", "\t", "\x1c", "\x85", "\xa0", "\u3000", "\x00", "\ud800"]
_reading_names = st.one_of(
    st.lists(st.one_of(st.sampled_from(_name_parts), st.characters()), max_size=8).map("".join),
    st.none(),
    st.integers(),
)
_reading_timestamps = st.one_of(
    st.none(),
    st.datetimes(timezones=st.just(UTC)).map(lambda moment: moment.isoformat()),
    st.datetimes().map(lambda moment: moment.isoformat()),  # naive: refused
    st.sampled_from(["2026-01-01T12:00:00Z", "2016-12-31T23:59:60Z", "2026-02-30T00:00:00Z", "", "now"]),
    st.datetimes(timezones=st.just(UTC)),
    st.integers(),
)


@pytest.mark.slow
@given(
    item=st.fixed_dictionaries(
        {},
        optional={
            "metric_id": _reading_ids,
            "metric": _reading_names,
            "value": _reading_values,
            "timestamp": _reading_timestamps,
            "extra": st.integers(),
        },
    )
)
@settings(max_examples=2000, deadline=None)
def test_validate_reading_answers_as_the_model_does(item: dict[str, Any]) -> None:
    for positive_only in (True, False):  # the setting's two models
        _answers_as_the_model(item, positive_only)


def _answers_as_the_model(item: dict[str, Any], positive_only: bool) -> None:
    expected = _outcome(lambda: validate(reading_model(positive_only), item))
    fields = _outcome(lambda: validate_reading(item, positive_only))
    if isinstance(expected, str):
        assert fields == expected  # the same refusal, word for word
        return
    assert isinstance(fields, ReadingFields)
    assert (fields.metric_id, fields.metric, fields.value, fields.timestamp) == (
        expected.metric_id,
        expected.metric,
        expected.value,
        expected.timestamp,
    )
    assert type(fields.value) is float


def _outcome(check: Callable[[], Any]) -> Any:
    """What `check` returns, or the message of the ValidationError it raises."""
    try:
        return check()
    except ValidationError as error:
        return error.message


@pytest.mark.parametrize("body", [[], "x", 1, None])
def test_validate_reading_refuses_what_is_not_an_object(body: object) -> None:
    with pytest.raises(ValidationError, match="request body must be a JSON object"):
        validate_reading(body)
