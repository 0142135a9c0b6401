"""InfluxDB line protocol decoded into `Sample`s: one per numeric field of each line, with per-line errors.

Written here, not taken from PyPI: `line-protocol-parser` (C, the one maintained parser) reads one line at a
time with one generic message, accepts control characters, cannot read a string field across lines and
keeps the first of two equal fields; and it would save little time, which goes mostly to the `Sample`s and
their datetimes that any parser here must make.

The syntax is the reference decoder's (github.com/influxdata/line-protocol, `lineprotocol/decoder.go`, and
its `line-protocol.ebnf`); tests/unit/domain/test_line_protocol.py runs its test corpus. Lines end at "\\n"
(a "\\r" before it is dropped); leading, repeated and trailing spaces are allowed; `#` starts a comment
line. In the measurement a backslash escapes a comma or a space; in tag keys, tag values and field keys a
comma, an equals sign or a space; any other backslash is itself. A string field is in double quotes, where
`\\"` and `\\\\` are escapes, and may hold a newline.

The mapping (issue 23): a field called `value` becomes a reading of the metric `measurement`, any other
field one of `measurement_field`; tags become labels (their keys through `label_name_from`); integers
(`2i`) and unsigned integers (`3u`) become floats. Decisions where the protocol leaves a choice:
- a line is refused whole, with its 1-based line number and a reason, for a syntax error, a boolean or
  string field, more than 32 tags, a tag value over 1024 characters, a tag key given twice (as the
  reference refuses it) or two tag keys that make one label name (`a-b` and `a_b`);
- a field given twice in a line: the last one wins, as InfluxDB keeps the last value written;
- a timestamp must fit int64 nanoseconds (1677-09-21 to 2262-04-11) whatever the precision, as InfluxDB
  and the reference refuse others; it is floored to the microsecond metricstream stores (toward the past,
  so a time and its truncation to a microsecond are one reading's, before 1970 too). None means now.
- metric names and values are checked afterwards, where every write is (name rules, `positive_only`);
- a tab is allowed in a comment, as the grammar and InfluxDB allow it (the reference decoder refuses it).
"""

from __future__ import annotations

import functools
import math
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Final, NamedTuple

from ..errors import ValidationError
from .labels import MAX_LABELS, Sample, label_name_from, validate_labels

__all__ = ["LineError", "ParsedLines", "normalize_precision", "parse_lines"]

# Precision (v2 names, and v1's n, u, m, h) -> nanoseconds per unit.
_PRECISIONS: Final = {"ns": 1, "us": 1_000, "ms": 1_000_000, "s": 10**9, "m": 60 * 10**9, "h": 3600 * 10**9}
_V1_NAMES: Final = {"n": "ns", "u": "us"}
_INT64: Final = range(-(2**63), 2**63)
_UINT64: Final = range(2**64)
_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)

# What only the careful path reads: escapes, quotes, control characters; in a body, all but "\n".
_NEEDS_CARE = re.compile(r'[\\"\x00-\x1f\x7f]')
_BODY_NEEDS_CARE = re.compile(r'[\\"\x00-\x09\x0b-\x1f\x7f]')
_BODY_NEEDS_CARE_BYTES = re.compile(rb'[\\"\x00-\x09\x0b-\x1f\x7f]')
# Tokens as the reference's takeEsc reads them: a backslash before an escapable character escapes it, any
# other backslash is itself; a token ends at a separator or a control character.
_MEASUREMENT = re.compile(r"(?:\\[, ]|\\|[^, \\\x00-\x1f\x7f])*+")
_KEY = re.compile(r"(?:\\[,= ]|\\|[^,= \\\x00-\x1f\x7f])*+")
_MEASUREMENT_ESCAPE = re.compile(r"\\([, ])")
_KEY_ESCAPE = re.compile(r"\\([,= ])")
# In a string a backslash escapes a quote or a backslash, and is itself before anything else.
_QUOTE_OR_ESCAPE = re.compile(r'"|\\[\\"]')
_FIELD_VALUE = re.compile(r"[^, \r\n]*")
_TIMESTAMP_CHARACTERS = re.compile(r"[-0-9]*")
_INTEGER = re.compile(r"-?[0-9]+")
_UNSIGNED = re.compile(r"[0-9]+")
_FLOAT = re.compile(r"-?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][-+]?[0-9]+)?")
_BOOLEANS: Final = frozenset({"t", "T", "true", "True", "TRUE", "f", "F", "false", "False", "FALSE"})
_COMMENT_CONTROL = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")  # a tab is allowed in a comment


def normalize_precision(precision: str) -> str:
    """The precision of a write, `ns`, `us`, `ms`, `s`, `m` or `h`, from its v2 (`ns|us|ms|s`) or v1
    (`n|u|ms|s|m|h`) name; a `ValidationError` for any other."""
    name = _V1_NAMES.get(precision, precision)
    if name not in _PRECISIONS:
        raise ValidationError(
            f"precision must be ns, us, ms or s (or n, u, ms, s, m or h, as /write takes it), "
            f"not {_shown(precision)}"
        )
    return name


@dataclass(frozen=True, slots=True)
class LineError:
    """A line refused: its 1-based number in the body, and why."""

    line: int
    reason: str

    def __str__(self) -> str:
        return f"line {self.line}: {self.reason}"


@dataclass(frozen=True, slots=True)
class ParsedLines:
    """A body's samples, in the order of its lines and fields, and its refused lines. A body is written all
    or nothing, so a caller writes the samples only when there are no errors."""

    samples: list[Sample] = field(default_factory=list)  # a line's samples share one labels dict
    errors: list[LineError] = field(default_factory=list)


class _Refused(Exception):
    """A line that cannot be read or mapped; the message is the reason."""


class _Point(NamedTuple):
    """A line as read, before the mapping: tags unescaped, fields as (key, kind, text) with kind one of
    "float", "int", "uint", "bool", "string"."""

    measurement: str
    tags: list[tuple[str, str]]
    fields: list[tuple[str, str, str]]
    timestamp: str | None


def parse_lines(body: str | bytes, precision: str = "ns") -> ParsedLines:
    """Every line of `body` (UTF-8 if bytes) as samples, or as errors; `precision` as `normalize_precision`
    takes it (a `ValidationError` for others)."""
    times = _Times(_PRECISIONS[normalize_precision(precision)])
    lines, undecodable = _split(body)
    # Most bodies hold no escape, quote, "\r" or control character: then no line needs looking at for one.
    care = _BODY_NEEDS_CARE_BYTES.search(body) if isinstance(body, bytes) else _BODY_NEEDS_CARE.search(body)
    plain = care is None and not undecodable
    result = ParsedLines()
    index = 0
    while index < len(lines):
        number = index + 1
        text = lines[index]
        index += 1
        try:
            if not plain:
                if number in undecodable:
                    raise _Refused("not valid UTF-8")
                text = text.removesuffix("\r")
            if (plain or not _NEEDS_CARE.search(text)) and _fast_line(text, number, times, result.samples):
                continue
            reader = _Reader(text, lines, index)
            try:
                point = reader.point()
            finally:
                index = reader.index
            if point is not None:
                result.samples.extend(_samples(point, number, times))
        except _Refused as refused:
            result.errors.append(LineError(number, str(refused)))
    return result


def _split(body: str | bytes) -> tuple[list[str], set[int]]:
    """The physical lines of `body`, and the numbers of those that are not UTF-8 (comments aside, which the
    reference does not check)."""
    if isinstance(body, str):
        return body.split("\n"), set()
    try:
        return body.decode().split("\n"), set()
    except UnicodeDecodeError:
        pass
    lines: list[str] = []
    undecodable: set[int] = set()
    for number, raw in enumerate(body.split(b"\n"), start=1):
        try:
            lines.append(raw.decode())
        except UnicodeDecodeError:
            is_comment = raw.lstrip(b" ").startswith(b"#")
            lines.append("#" if is_comment else "")
            if not is_comment:
                undecodable.add(number)
    return lines, undecodable


class _Times:
    """Timestamps of one body to datetimes, the last one remembered: a batch's lines often share one."""

    def __init__(self, per_unit: int) -> None:
        self.per_unit = per_unit
        self.last_text: str | None = None
        self.last = _EPOCH

    def parse(self, text: str) -> datetime:
        if text == self.last_text:
            return self.last
        if not _is_integer(text):
            raise _Refused(f"invalid timestamp {_shown(text)}: not an integer")
        # at most 19 characters: no more than 64 bits' worth of digits, int() reads them at once
        whole = int(text) if len(text) < 20 else _bounded_int(text)
        if whole is None or whole * self.per_unit not in _INT64:
            raise _Refused(
                f"timestamp {_shown(text)} is out of range: it must fall between 1677-09-21 and 2262-04-11 "
                "(int64 nanoseconds, as InfluxDB takes it)"
            )
        moment = _EPOCH + timedelta(0, 0, whole * self.per_unit // 1000)  # (days, seconds, microseconds)
        self.last_text, self.last = text, moment
        return moment


def _fast_line(text: str, number: int, times: _Times, samples: list[Sample]) -> bool:
    """Appends the samples of a plain line (no escapes, quotes or control characters, single spaces,
    numbers only), read with str.split; False for anything else, which the careful path reads and words
    the errors of. It refuses a line only as the careful path would, in the same order (fields, then tags,
    then the timestamp). The hot path: kept in one function."""
    parts = text.split(" ")
    if len(parts) == 2:
        series, fields_text = parts
        timestamp = None
    elif len(parts) == 3 and _is_integer(parts[2]):
        series, fields_text, timestamp = parts
    else:
        return False
    measurement, comma, tags_text = series.partition(",")
    if not measurement or measurement[0] == "#":
        return False
    values: dict[str, float] = {}
    for pair in fields_text.split(","):
        key, _, value_text = pair.partition("=")
        if value_text[-1:] in _FLOAT_ENDS:
            # float() also reads "1_0", " 1", Arabic digits and "-inf", and 1e999 as infinity
            if not key or value_text[0] not in _FLOAT_STARTS or "_" in value_text or not value_text.isascii():
                return False
            try:
                value = float(value_text)
            except ValueError:
                return False
            if not math.isfinite(value):
                return False
        else:
            integer = _fast_integer(value_text)
            if integer is None or not key:
                return False
            value = integer
        values[key] = value
    labels = _labels_of_text(tags_text) if comma else {}
    if labels is None:
        return False
    moment = None if timestamp is None else times.parse(timestamp)
    for key, value in values.items():
        name = measurement if key == "value" else f"{measurement}_{key}"
        samples.append(Sample(name, value, labels, moment, None, None, number))
    return True


_FLOAT_STARTS: Final = frozenset("-.0123456789")
_FLOAT_ENDS: Final = frozenset(".0123456789")


def _fast_integer(text: str) -> float | None:
    """A `2i` or `3u` field value as a float; None for anything else (booleans, syntax, out of range)."""
    last = text[-1:]
    if last == "i":
        digits = text[:-1]
        if _is_integer(digits) and (whole := _bounded_int(digits)) is not None and whole in _INT64:
            return float(whole)
    elif last == "u":
        digits = text[:-1]
        if (
            digits.isascii()
            and digits.isdigit()
            and (whole := _bounded_int(digits)) is not None
            and whole in _UINT64
        ):
            return float(whole)
    return None


def _string_end(text: str, position: int) -> int | None:
    """Where the string that runs over `text` from `position` ends (its closing quote), or None."""
    for match in _QUOTE_OR_ESCAPE.finditer(text, position):
        if match.group() == '"':
            return match.start()
    return None


def _bounded_int(text: str) -> int | None:
    """`-?[0-9]+` text as an int, or None if it has more than 20 digits (leading zeros aside), more than
    64 bits take: int() refuses more than 4300 digits, and is slow long before."""
    digits = text.removeprefix("-").lstrip("0")
    if len(digits) > 20:
        return None
    whole = int(digits or "0")
    return -whole if text.startswith("-") else whole


def _shown(text: str) -> str:
    """`text` quoted for a reason, its first 27 characters only if longer than 30: a reason stays short."""
    return repr(text) if len(text) <= 30 else f"{text[:27]!r}..."


def _is_integer(text: str) -> bool:
    """Whether `text` is `-?[0-9]+` (faster than the regex; isascii, as isdigit takes other digits too)."""
    digits = text[1:] if text[:1] == "-" else text
    return digits.isascii() and digits.isdigit()


def _labels_of_plain_tags(tags_text: str) -> dict[str, str] | None:
    pairs = []
    for pair in tags_text.split(","):
        key, equals, value = pair.partition("=")
        if not key or not equals or not value or "=" in value:
            return None
        pairs.append((key, value))
    return _labels(pairs)


# A body repeats its few series over and over; only short tag sets are kept, or the cache could hold
# thousands of lines of megabytes.
_cached_labels_of_plain_tags = functools.lru_cache(maxsize=4096)(_labels_of_plain_tags)
_CACHED_TAGS_LENGTH: Final = 500


def _labels_of_text(tags_text: str) -> dict[str, str] | None:
    if len(tags_text) > _CACHED_TAGS_LENGTH:
        return _labels_of_plain_tags(tags_text)
    labels = _cached_labels_of_plain_tags(tags_text)
    # a copy: the cached dict must not change when a caller changes a sample's labels
    return None if labels is None else dict(labels)


def _labels(tags: list[tuple[str, str]]) -> dict[str, str]:
    """Tags as labels, sorted by name (as `validate_labels` gives them), or `_Refused`."""
    if len(tags) > MAX_LABELS:
        raise _Refused(f"{len(tags)} tags: a line may have at most {MAX_LABELS} (they become labels)")
    keys: dict[str, str] = {}
    labels: dict[str, str] = {}
    for key, value in sorted(tags):
        name = label_name_from(key)
        if name in keys:
            other = keys[name]
            if other == key:
                raise _Refused(f"tag key {_shown(key)} is given twice")
            raise _Refused(
                f"tag keys {_shown(other)} and {_shown(key)} both become the label name {_shown(name)}"
            )
        keys[name] = key
        labels[name] = value
    try:
        return validate_labels(labels)
    except ValidationError as error:
        raise _Refused(error.message) from None


def _samples(point: _Point, number: int, times: _Times) -> list[Sample]:
    """The mapping of a line read by the careful path; `_Refused` for a field that is not a number."""
    values: dict[str, float] = {}
    for key, kind, text in point.fields:
        if kind in ("bool", "string"):
            article = "a boolean" if kind == "bool" else "a string"
            raise _Refused(
                f"field {_shown(key)} is {article}: only numbers (float, integer, unsigned) become readings"
            )
        values[key] = _number(key, kind, text)
    labels = _labels(point.tags)
    moment = None if point.timestamp is None else times.parse(point.timestamp)
    measurement = point.measurement
    return [
        Sample(measurement if key == "value" else f"{measurement}_{key}", value, labels, moment, line=number)
        for key, value in values.items()
    ]


# A number field's kind -> its syntax, its range (None: any finite float) and its name in reasons.
_NUMBER_KINDS: Final = {
    "int": (_INTEGER, _INT64, "integer"),
    "uint": (_UNSIGNED, _UINT64, "unsigned integer"),
    "float": (_FLOAT, None, "float"),
}


def _number(key: str, kind: str, text: str) -> float:
    syntax, allowed, kind_name = _NUMBER_KINDS[kind]
    if not syntax.fullmatch(text):
        raise _Refused(f"field {_shown(key)} has an invalid {kind_name} value {_shown(text)}")
    if allowed is not None:
        whole = _bounded_int(text)
        if whole is None or whole not in allowed:
            raise _Refused(f"field {_shown(key)} has {kind_name} value {_shown(text)} out of range")
        return float(whole)
    value = float(text)
    if not math.isfinite(value):
        raise _Refused(f"field {_shown(key)} has float value {_shown(text)} out of range")
    return value


class _Reader:
    """The careful path: one line read character by character as the reference decoder reads it, continued
    onto the next physical lines only inside a string (`index` is then the next one to read)."""

    def __init__(self, text: str, lines: list[str], index: int) -> None:
        self.text = text
        self.at = len(text) - len(text.lstrip(" "))
        self.lines = lines
        self.index = index
        self.more = False  # whether a timestamp may follow the fields

    def point(self) -> _Point | None:
        """The line's point; None for a blank or comment line."""
        if self.at == len(self.text):
            return None
        if self.text[self.at] == "#":
            if _COMMENT_CONTROL.search(self.text, self.at):
                raise _Refused("invalid character found in comment line")
            return None
        measurement = self.token(_MEASUREMENT, _MEASUREMENT_ESCAPE)
        if not measurement:
            raise _Refused(self.unexpected("no measurement name found", "at start of measurement name"))
        tags = self.tags()
        fields = self.fields()
        return _Point(measurement, tags, fields, self.timestamp() if self.more else None)

    def peek(self) -> str:
        return self.text[self.at] if self.at < len(self.text) else ""

    def unexpected(self, at_end: str, where: str) -> str:
        character = self.peek()
        return at_end if not character else f"invalid character {character!r} found {where}"

    def token(self, pattern: re.Pattern[str], escape: re.Pattern[str]) -> str:
        match = pattern.match(self.text, self.at)
        assert match is not None  # the pattern matches the empty string
        self.at = match.end()
        raw = match.group()
        return escape.sub(r"\1", raw) if "\\" in raw else raw

    def skip_spaces(self) -> None:
        while self.peek() == " ":
            self.at += 1

    def after_comma(self) -> None:
        self.at += 1
        character = self.peek()
        if not character:
            raise _Refused("expected tag key after comma, found end of line")
        if character in " \r":
            raise _Refused("expected tag key after comma, found white space")

    def tags(self) -> list[tuple[str, str]]:
        tags: list[tuple[str, str]] = []
        if self.peek() == ",":
            self.after_comma()
        while self.peek() != " ":
            key = self.token(_KEY, _KEY_ESCAPE)
            character = self.peek()
            if character != "=" or not key:
                if key:
                    found = repr(character) if character else "end of line"
                    raise _Refused(f"expected '=' after tag key {_shown(key)}, found {found}")
                if character == "=":
                    raise _Refused("empty tag key")
                found = repr(character) if character else "end of line"
                raise _Refused(f"expected tag key or field, found {found}")
            self.at += 1
            value = self.token(_KEY, _KEY_ESCAPE)
            if not value:
                raise _Refused(f"expected tag value after tag key {_shown(key)}, found none")
            tags.append((key, value))
            if not self.peek():
                break
            if self.peek() == ",":
                self.after_comma()
        self.skip_spaces()
        return tags

    def fields(self) -> list[tuple[str, str, str]]:
        fields: list[tuple[str, str, str]] = []
        while True:
            key = self.token(_KEY, _KEY_ESCAPE)
            if not key:
                raise _Refused(self.unexpected("expected field key, found none", "at start of field key"))
            if self.peek() != "=":
                found = repr(self.peek()) if self.peek() else "end of line"
                raise _Refused(f"expected '=' after field key {_shown(key)}, found {found}")
            self.at += 1
            fields.append((key, *self.field_value(key)))
            character = self.peek()
            if not character:
                return fields
            if character == ",":
                self.at += 1
                continue
            if character not in " \r":
                raise _Refused(f"unexpected character {character!r} after field {_shown(key)}")
            self.skip_spaces()
            self.more = True
            return fields

    def field_value(self, key: str) -> tuple[str, str]:
        character = self.peek()
        if not character:
            raise _Refused(f"expected a value for field {_shown(key)}, found end of line")
        if character == '"':
            return "string", self.string(key)
        if character in " ,":
            raise _Refused(f"missing value for field {_shown(key)}")
        match = _FIELD_VALUE.match(self.text, self.at)
        assert match is not None
        self.at = match.end()
        text = match.group()
        if character in "tTfF":
            if text not in _BOOLEANS:
                raise _Refused(f"field {_shown(key)} has an invalid boolean value {_shown(text)}")
            return "bool", text
        if character not in "-.0123456789":
            raise _Refused(f"field {_shown(key)} has a value of no known type: {_shown(text)}")
        if text[-1] == "i":
            return "int", text[:-1]
        if text[-1] == "u":
            return "uint", text[:-1]
        return "float", text

    def string(self, key: str) -> str:
        """A string field's text; its closing quote may be lines below (then they join this line)."""
        start = self.at + 1
        end = _string_end(self.text, start)
        following = self.index
        while end is None:
            if following == len(self.lines):
                self.index = following  # the string took every line left
                raise _Refused(f"expected a closing quote for string field {_shown(key)}, found end of input")
            # each line searched once: a quote left open must not make a body quadratic
            end = _string_end(self.lines[following], 0)
            following += 1
        if following > self.index:
            ahead = [line.removesuffix("\r") for line in self.lines[self.index : following]]
            self.text = "\n".join([self.text, *ahead])
            end += len(self.text) - len(ahead[-1])
            self.index = following
        self.at = end + 1
        return self.text[start:end]

    def timestamp(self) -> str | None:
        start = self.at
        match = _TIMESTAMP_CHARACTERS.match(self.text, start)
        assert match is not None
        self.at = match.end()
        text = match.group()
        character = self.peek()
        if character and character not in " \r":
            raise _Refused(f"invalid timestamp {_shown(self.text[start:])}: not an integer")
        self.skip_spaces()
        if self.peek():
            raise _Refused(f"unexpected text after timestamp: {_shown(self.text[self.at :])}")
        return text or None
