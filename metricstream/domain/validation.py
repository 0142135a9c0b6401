"""Input validation: the pydantic models that check requests and Python calls alike, and document the
HTTP API in `/openapi.json`. A failure becomes a `ValidationError` whose message names the field and the
rule, identical for HTTP and Python callers. `MetricIn` keeps the hard name ceiling (200), so
`/openapi.json` states a true maxLength; `validate_metric` checks the `max_name_length` setting with a
subclass, so the message names the configured number.

Deliberate deviations from the Go original: a reading's value must be a finite number > 0 (the original took
any float; `positive_only=false` takes any), and metric names follow one rule (`names.normalize_name`) on
every path. From Python, a number is an int or a float (numpy's included), never a bool, `Decimal` or
`Fraction`, as JSON can carry only the former. A leap second (`23:59:60` UTC, valid RFC 3339) is accepted
and read as the next second, as POSIX time counts it; a `:60` anywhere else is refused.
"""

from __future__ import annotations

import functools
import math
import numbers
import re
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from fractions import Fraction
from typing import Annotated, Final, TypeVar, cast

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationInfo,
    WithJsonSchema,
    create_model,
    model_validator,
)
from pydantic import ValidationError as PydanticValidationError
from pydantic_core import PydanticCustomError

from ..errors import ValidationError
from ..wire import MAX_NAME_LENGTH, MAX_READINGS_LIMIT
from .buckets import STEP_MESSAGE, parse_step
from .labels import MAX_DESCRIPTION_LENGTH, MAX_LABELS, MAX_UNIT_LENGTH, optional_text, validate_labels
from .names import normalize_name
from .paging import CURSOR_MESSAGE, Cursor
from .values import DEFAULT_READINGS_LIMIT, Order, format_timestamp

__all__ = [
    "AnyReadingIn",
    "MetricIn",
    "MetricsQuery",
    "ReadingFields",
    "ReadingIn",
    "ReadingsQuery",
    "timestamp_hint",
    "validate",
    "validate_metric",
    "validate_reading",
    "reading_model",
]


# The type of a pydantic error whose message is already the one for people.
_WORDED: Final = "worded"


# RFC 3339 date-time with a mandatory offset; "T" or a space, any fraction of a second.
_RFC3339 = re.compile(
    r"\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})",
)


def _rfc3339(value: object) -> object:
    if value is None:
        return None
    if isinstance(value, datetime):
        if value.tzinfo is None:
            raise ValueError("naive datetime")
        return _to_utc(value)
    if not isinstance(value, str) or not _RFC3339.fullmatch(value):
        raise ValueError("not RFC 3339")
    text = value.replace("z", "Z").replace("t", "T")
    if "." in text:  # fromisoformat wants at most 6 fraction digits
        head, _, tail = text.partition(".")
        digits = re.match(r"\d+", tail)
        assert digits is not None
        fraction = digits.group()
        text = f"{head}.{fraction[:6].ljust(6, '0')}{tail[len(fraction) :]}"
    # A leap second reads as the next second, as POSIX time counts it.
    leap = text[17:19] == "60"
    if leap:
        text = f"{text[:17]}59{text[19:]}"
    try:
        moment = _to_utc(datetime.fromisoformat(text))
        if leap:
            if (moment.hour, moment.minute) != (23, 59):  # leap seconds end a UTC day, nowhere else
                raise ValueError("not a leap second")
            moment += timedelta(seconds=1)
    except (ValueError, OverflowError):
        raise ValueError("not a real date") from None
    return moment


def _to_utc(moment: datetime) -> datetime:
    # 0001-01-01T00:00:00+01:00 is a real date, but not one Python can hold in UTC.
    try:
        return moment.astimezone(UTC)
    except OverflowError:
        raise ValueError("out of range") from None


def _uuid7(value: object) -> str:
    if isinstance(value, str):
        return _uuid7_text(value)
    if not isinstance(value, uuid.UUID) or value.version != 7:
        raise ValueError("not a UUIDv7")
    return str(value)


@functools.lru_cache(maxsize=4096)  # a batch names the same few metrics over and over
def _uuid7_text(value: str) -> str:
    try:
        parsed = uuid.UUID(value)
    except ValueError:
        raise ValueError("not a UUID") from None
    if parsed.version != 7:
        raise ValueError("not a UUIDv7")
    return str(parsed)


def _real_number(value: object) -> object:
    """An int or float (numpy's too), not a bool; not a Decimal or Fraction, which JSON cannot carry and
    which a float can round to 0 or infinity after the check."""
    if isinstance(value, bool | Fraction) or not isinstance(value, numbers.Real):
        raise ValueError("not a number")
    try:
        return float(value)
    except OverflowError:  # an int past a float's range
        raise ValueError("out of range") from None


def _whole_number(value: object) -> object:
    """Plain digits from a query string, or an int from Python; not "1_000", "+5" or True."""
    if isinstance(value, str) and value.isascii() and value.isdigit():
        return int(value)
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    raise ValueError("not a whole number")


def _name_field(value: object, info: ValidationInfo) -> object:
    """A name field's text through `normalize_name`; anything else is left for the str schema to refuse."""
    if not isinstance(value, str):
        return value
    try:
        return normalize_name(value)
    except ValueError as error:
        raise PydanticCustomError(_WORDED, f"{info.field_name} {error}") from None


def _timestamp_field(value: object, info: ValidationInfo) -> object:
    """`_rfc3339`, saying what to send instead for the usual mistakes (see `timestamp_hint`)."""
    try:
        return _rfc3339(value)
    except ValueError:
        hint = timestamp_hint(value)
        if hint is None:
            raise
        raise PydanticCustomError(
            _WORDED, f"{info.field_name} must be an RFC 3339 date-time with an offset: {hint}"
        ) from None


def timestamp_hint(value: object) -> str | None:
    """What to send instead of a naive time, a bare date or epoch seconds; None for anything else."""
    if isinstance(value, datetime) and value.tzinfo is None:
        return "this datetime has no time zone; give it one, e.g. datetime.now(UTC) or .replace(tzinfo=UTC)"
    number = value if isinstance(value, int | float) and not isinstance(value, bool) else None
    if isinstance(value, str) and _NUMBER.fullmatch(value.strip()):
        number = float(value)
    if number is not None:
        return _epoch_hint(number)
    if not isinstance(value, str):
        return None
    text = value.strip()
    if _NAIVE.fullmatch(text):
        return f"{text} has no UTC offset: add Z (UTC) or +hh:mm, e.g. {text}Z"
    if _DATE.fullmatch(text):
        return f"{text} is a date without a time, e.g. {text}T00:00:00Z"
    # `+02:00` unescaped in a URL's query arrives as ` 02:00`.
    if _SPACED_OFFSET.fullmatch(value):
        return f"{value!r} has a space where its offset's + belongs: in a URL, send + as %2B"
    return None


def _epoch_hint(number: float) -> str | None:
    """For a number as large as epoch time since 1973 in seconds, or milli-, micro- or nanoseconds."""
    for scale, unit in ((1e9, "nanoseconds"), (1e6, "microseconds"), (1e3, "milliseconds"), (1, "seconds")):
        if abs(number) >= scale * 1e8:
            try:
                example = format_timestamp(datetime.fromtimestamp(number / scale, UTC))
            except (ValueError, OverflowError, OSError):
                return None
            shown = int(number) if float(number).is_integer() else number
            return f"{shown} looks like Unix epoch {unit}; send it as {example}"
    return None


_NUMBER: Final = re.compile(r"[-+]?\d+(\.\d*)?([eE][-+]?\d+)?")
_NAIVE: Final = re.compile(r"\d{4}-\d\d-\d\d[Tt ]\d\d:\d\d(:\d\d(\.\d+)?)?")
_DATE: Final = re.compile(r"\d{4}-\d\d-\d\d")
_SPACED_OFFSET: Final = re.compile(r"\d{4}-\d\d-\d\d[Tt]\d\d:\d\d:\d\d(\.\d+)? \d\d:\d\d")

Timestamp = Annotated[
    datetime | None,
    BeforeValidator(_timestamp_field),
    Field(
        description="RFC 3339 date-time with an offset, e.g. 2026-01-01T12:00:00Z",
        json_schema_extra={"format": "date-time"},
    ),
]
MetricName = Annotated[
    str,
    StringConstraints(min_length=1, max_length=MAX_NAME_LENGTH, strict=True),  # checked after the rule
    BeforeValidator(_name_field),
    Field(
        description="Display name: trimmed of outer whitespace, NFC-normalised, no control characters; "
        "then 1 to 200 characters (a server may allow fewer)."
    ),
]


def _labels_field(value: object) -> object:
    """`labels.validate_labels`, its message kept; None (JSON null) for none."""
    if value is None:
        return {}
    try:
        return validate_labels(value)
    except ValidationError as error:
        raise PydanticCustomError(_WORDED, error.message) from None


def _text_field(max_length: int) -> BeforeValidator:
    """`labels.optional_text` for a field of at most `max_length` characters, its message kept."""

    def check(value: object, info: ValidationInfo) -> object:
        try:
            return optional_text(value, str(info.field_name), max_length)
        except ValidationError as error:
            raise PydanticCustomError(_WORDED, error.message) from None

    return BeforeValidator(check)


Labels = Annotated[
    dict[str, str],
    BeforeValidator(_labels_field),
    Field(
        description=f"Label names to values (at most {MAX_LABELS} pairs): names as Prometheus takes them "
        "(letters, digits and _, not starting with a digit or __), values non-empty strings. A metric is "
        "identified by its name and labels together.",
        examples=[{"host": "a", "dc": "x"}],
    ),
]


class MetricIn(BaseModel):
    """Body of `POST /metrics`."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    name: MetricName
    input_frequency: Annotated[
        float | None,
        Field(
            ge=0,
            allow_inf_nan=False,
            strict=True,
            description="A period, despite the name: the seconds expected between readings.",
        ),
        BeforeValidator(lambda value: value if value is None else _real_number(value)),
    ] = None
    labels: Labels = {}
    unit: Annotated[
        str | None,
        _text_field(MAX_UNIT_LENGTH),
        Field(
            description=f"The unit of the values (at most {MAX_UNIT_LENGTH} characters): a UCUM code such as "
            "Cel, By, ms or %, or free text such as °C. Trimmed; an empty one is none.",
            examples=["Cel"],
        ),
    ] = None
    description: Annotated[
        str | None,
        _text_field(MAX_DESCRIPTION_LENGTH),
        Field(description=f"What the metric measures (at most {MAX_DESCRIPTION_LENGTH} characters)."),
    ] = None


METRIC_MISSING: Final = "metric_id or metric (a metric's name) is required"
METRIC_TWICE: Final = "give metric_id or metric (a metric's name), not both"


def metric_choice(data: object) -> str | None:
    """What is wrong with how a reading names its metric: neither or both of `metric_id` and `metric`."""
    if not isinstance(data, dict):
        return None
    given = (data.get("metric_id") is not None) + (data.get("metric") is not None)
    return None if given == 1 else METRIC_TWICE if given else METRIC_MISSING


class ReadingIn(BaseModel):
    """Body of `POST /metrics/readings`: the metric by id or by name, exactly one of the two."""

    model_config = ConfigDict(
        extra="ignore",
        frozen=True,
        json_schema_extra={"oneOf": [{"required": ["metric_id"]}, {"required": ["metric"]}]},
    )

    metric_id: Annotated[
        str | None,
        BeforeValidator(lambda value: value if value is None else _uuid7(value)),
        Field(
            description="The id of an existing metric (a UUIDv7); or give `metric` instead.",
            json_schema_extra={"format": "uuid"},
        ),
    ] = None
    metric: Annotated[
        MetricName | None,
        Field(
            description="A metric's name, in place of `metric_id`: the metric with that name, created "
            "first (with its `metric_created` event) if there is none; 409 if several have it."
        ),
    ] = None
    value: Annotated[
        float,
        Field(gt=0, allow_inf_nan=False, strict=True, description="A finite number > 0."),
        BeforeValidator(_real_number),
    ]
    timestamp: Timestamp = None
    # with `metric`: the labels of the metric written to, got or created by name and labels
    labels: Labels = {}

    @model_validator(mode="after")
    def _one_metric(self) -> ReadingIn:
        if (self.metric_id is None) == (self.metric is None):
            message = METRIC_MISSING if self.metric is None else METRIC_TWICE
            raise PydanticCustomError("metric_choice", message)
        if self.labels and self.metric_id is not None:
            raise PydanticCustomError(_WORDED, LABELS_WITH_ID)
        return self


LABELS_WITH_ID: Final = "labels go with metric (a name), not with metric_id: an id names one metric already"


class AnyReadingIn(ReadingIn):
    """Body of `POST /metrics/readings` with `positive_only=False`: any finite value, 0 and below too."""

    # The same type, without the bound.
    value: Annotated[
        float,
        Field(allow_inf_nan=False, strict=True, description="A finite number."),
        BeforeValidator(_real_number),
    ]


def reading_model(positive_only: bool = True) -> type[ReadingIn]:
    """The model a reading is validated and documented with, for the `positive_only` setting."""
    return ReadingIn if positive_only else AnyReadingIn


def _step(value: object) -> object:
    return None if value is None else parse_step(value)


STEP_DESCRIPTION: Final = (
    "Summarise readings per step of time: seconds (10, 0.5) or a duration (250ms, 10s, 5m, 1h, 1d). "
    "Buckets start at multiples of step since 1970; empty ones are left out."
)
# A query's step: text in (seconds or a duration), whole microseconds once read.
Step = Annotated[
    int | None,
    BeforeValidator(_step),
    Field(examples=["10s", "5m", "1h", "30"]),
    WithJsonSchema({"anyOf": [{"type": "string"}, {"type": "null"}]}),
]


class ReadingsQuery(BaseModel):
    """Query of `GET /metrics/{id}/readings`: an inclusive time range, an order and a count limit, and
    where to go on from (`cursor`); with `step`, buckets of that step instead of readings."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    since: Timestamp = None
    until: Timestamp = None
    limit: Annotated[
        int,
        Field(
            ge=1,
            le=MAX_READINGS_LIMIT,
            description="At most this many readings, or with step buckets; X-Truncated says if more match.",
        ),
        BeforeValidator(_whole_number),
    ] = DEFAULT_READINGS_LIMIT
    step: Annotated[
        Step,
        Field(
            description=f"{STEP_DESCRIPTION} "
            "With step, until defaults to now and since to limit steps before until; order is asc.",
        ),
    ] = None
    order: Annotated[
        Order,
        Field(description="Readings oldest first (asc) or newest first (desc: with limit, the newest)."),
    ] = "asc"
    cursor: Annotated[
        Cursor | None,
        BeforeValidator(lambda value: value if value is None else Cursor.decode(value)),
        Field(description="Go on where a cut answer (X-Truncated: true) ended: its Link rel=next has it."),
        # Opaque text in; a Cursor once read.
        WithJsonSchema({"anyOf": [{"type": "string"}, {"type": "null"}]}),
    ] = None


def _flag(value: object) -> object:
    """true/false (also 1/0, yes/no) from a query string, or a bool from Python."""
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("true", "1", "yes", "false", "0", "no", ""):
        return value.lower() in ("true", "1", "yes")
    raise ValueError("not a flag")


# A query's choice of metrics: one name, and labels they all have.
NameFilter = Annotated[
    str | None,
    Field(
        description="Only the metrics with exactly this name, taken as names are (outer whitespace "
        "trimmed, NFC; a control character is refused)."
    ),
    BeforeValidator(_name_field),
]
LabelFilter = Annotated[
    str | None,
    Field(
        description="Only the metrics whose labels include all these pairs: name=value pairs separated "
        "by commas (labels=host=a,dc=x); several labels= parameters add pairs. In a value, write a comma "
        "as \\, and a backslash as \\\\.",
        examples=["host=a", "host=a,dc=x"],
    ),
]


class MetricsQuery(BaseModel):
    """Query of `GET /metrics`."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    with_readings: Annotated[
        bool, Field(description="Embed each metric's readings."), BeforeValidator(_flag)
    ] = False
    readings_limit: Annotated[
        int,
        Field(
            ge=1,
            le=MAX_READINGS_LIMIT,
            description="With with_readings: at most this many of the newest readings per metric.",
        ),
        BeforeValidator(_whole_number),
    ] = DEFAULT_READINGS_LIMIT
    name: NameFilter = None
    # Read from every `labels=` parameter by `labels.parse_label_query`; here to be documented.
    labels: LabelFilter = None


@dataclass(frozen=True, slots=True)
class ReadingFields:
    """A reading's validated fields: what `ReadingIn` holds, without a pydantic model per reading. Exactly
    one of `metric_id` and `metric` (a name) is set."""

    metric_id: str | None
    value: float
    timestamp: datetime | None
    metric: str | None = None
    labels: dict[str, str] | None = None  # with `metric`: the labels of the metric written to


def validate_reading(
    data: object, positive_only: bool = True, max_name_length: int = MAX_NAME_LENGTH
) -> ReadingFields:
    """A reading's fields from `data`, as `validate(reading_model(positive_only), data)` gives them, its
    metric's name (if given by name) also limited to `max_name_length`. The common shapes (an id or a
    name string, a plain int or float, no timestamp or a string one) are checked here; anything else,
    errors included, goes through the model, so every message is the model's."""
    if type(data) is dict:
        metric_id, name = data.get("metric_id"), data.get("metric")
        value, timestamp, labels = data.get("value"), data.get("timestamp"), data.get("labels")
        try:
            if (
                (type(value) is float or type(value) is int)
                and (timestamp is None or type(timestamp) is str or isinstance(timestamp, datetime))
                and (labels is None or (type(labels) is dict and type(name) is str))
            ):
                value = float(value)
                if (value > 0 or not positive_only) and math.isfinite(value):
                    moment = cast("datetime | None", _rfc3339(timestamp))
                    if type(metric_id) is str and name is None:
                        return ReadingFields(_uuid7_text(metric_id), value, moment)
                    if type(name) is str and metric_id is None:
                        metric = normalize_name(name)
                        if 0 < len(metric) <= max_name_length:
                            checked = validate_labels(labels) if labels is not None else None
                            return ReadingFields(None, value, moment, metric, checked)
        except (ValueError, OverflowError):
            pass  # the model says what is wrong (a ValidationError of the labels is a ValueError too)
    try:
        fields = validate(reading_model(positive_only), data)
    except ValidationError as error:
        # Say the configured name limit, not the model's ceiling.
        message = error.message.replace(_MESSAGES["metric"], name_message(max_name_length, "metric"))
        raise ValidationError(message) from None
    if fields.metric is not None and len(fields.metric) > max_name_length:
        raise ValidationError(name_message(max_name_length, "metric"))
    labels = fields.labels if fields.metric is not None else None
    return ReadingFields(fields.metric_id, fields.value, fields.timestamp, fields.metric, labels)


def name_message(max_length: int = MAX_NAME_LENGTH, field: str = "name") -> str:
    return f"{field} must be a string of 1 to {max_length} characters (after trimming spaces)"


_MESSAGES: Final = {
    "name": name_message(),
    "metric": name_message(field="metric"),
    "input_frequency": "input_frequency must be a number >= 0 (seconds between readings)",
    "metric_id": "metric_id must be a UUIDv7 string",
    "value": "value must be a finite number greater than 0 "
    "(set positive_only=false to accept any finite value)",
    # A model's own message for a field.
    "AnyReadingIn.value": "value must be a finite number",
    "timestamp": "timestamp must be an RFC 3339 date-time with an offset, e.g. 2026-01-01T12:00:00Z",
    "since": "since must be an RFC 3339 date-time with an offset, e.g. 2026-01-01T12:00:00Z",
    "until": "until must be an RFC 3339 date-time with an offset, e.g. 2026-01-01T12:00:00Z",
    "limit": f"limit must be an integer from 1 to {MAX_READINGS_LIMIT}",
    "readings_limit": f"readings_limit must be an integer from 1 to {MAX_READINGS_LIMIT}",
    "step": STEP_MESSAGE,
    "order": "order must be asc or desc",
    "cursor": CURSOR_MESSAGE,
    "format": "format must be json, csv, arrow or parquet",
    "with_readings": "with_readings must be true or false",
}

ModelT = TypeVar("ModelT", bound=BaseModel)


def validate(model: type[ModelT], data: object) -> ModelT:
    """`model` validated from `data`, or a `ValidationError` with a message meant for people."""
    if not isinstance(data, dict):
        raise ValidationError("request body must be a JSON object")
    try:
        return model.model_validate(data)
    except PydanticValidationError as exc:
        # a reading's metric, by id or by name, is checked after its fields: say it among them
        choice = metric_choice(data) if issubclass(model, ReadingIn) else None
        raise ValidationError(_describe(exc, model.__name__, [choice] if choice else [])) from None


def _describe(exc: PydanticValidationError, model: str = "", messages: list[str] | None = None) -> str:
    """The errors as one message, after any already found (`messages`), each said once."""
    messages = list(messages or [])
    for error in exc.errors():
        field = str(error["loc"][0]) if error["loc"] else ""
        # The model's own checks are worded for people already.
        if not field or error["type"] == _WORDED:
            message = error["msg"]
        elif error["type"] == "missing":
            message = f"{field} is required"
        else:
            message = _MESSAGES.get(f"{model}.{field}") or _MESSAGES.get(field, f"{field}: {error['msg']}")
        if message not in messages:
            messages.append(message)
    return "; ".join(messages)


def validate_metric(data: object, max_name_length: int = MAX_NAME_LENGTH) -> MetricIn:
    """`MetricIn` from `data`, its name also limited to `max_name_length` (at most the model's own 200)."""
    try:
        return validate(_metric_model(max_name_length), data)
    except ValidationError as error:
        # Say the configured limit, not the model's ceiling.
        message = error.message.replace(_MESSAGES["name"], name_message(max_name_length))
        raise ValidationError(message) from None


@functools.cache
def _metric_model(max_name_length: int) -> type[MetricIn]:
    """`MetricIn` with a shorter name limit: every error of a body is still found in one pass."""
    if max_name_length >= MAX_NAME_LENGTH:
        return MetricIn
    name = StringConstraints(min_length=1, max_length=max_name_length, strict=True)
    return create_model(
        "MetricIn", __base__=MetricIn, name=(Annotated[str, name, BeforeValidator(_name_field)], ...)
    )
