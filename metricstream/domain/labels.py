"""Labels (Prometheus-style name → value pairs that tell series of one name apart) and the `Sample`, one value
read from a foreign format (Influx line protocol, OTLP) before it is written by name and labels. Also what
identifies a metric (`identity`: its name and labels), the `labels=` query (`parse_label_query`, matched by
`has_labels`), and a metric's `unit` and `description` (`optional_text`)."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Final, NamedTuple

import orjson

from ..errors import ValidationError
from .names import normalize_name

__all__ = [
    "LABEL_NAME",
    "MAX_DESCRIPTION_LENGTH",
    "MAX_LABELS",
    "MAX_LABEL_NAME_LENGTH",
    "MAX_LABEL_VALUE_LENGTH",
    "MAX_UNIT_LENGTH",
    "Sample",
    "canonical_labels",
    "format_labels",
    "has_labels",
    "identity",
    "label_name_from",
    "optional_text",
    "parse_label_query",
    "validate_labels",
]

MAX_LABELS: Final = 32
MAX_LABEL_NAME_LENGTH: Final = 200  # as a metric's name: a bound on stored bytes, and on messages
MAX_LABEL_VALUE_LENGTH: Final = 1024  # a host, a sensor, a path: long enough, and a bound on stored bytes
# UCUM codes (`Cel`, `By`, `ms`, `%`, `kW.h`) and free text (`°C`) are short; OTLP units too.
MAX_UNIT_LENGTH: Final = 32
MAX_DESCRIPTION_LENGTH: Final = 1024
LABEL_NAME: Final = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*")
_NOT_IN_LABEL_NAMES = re.compile(r"[^a-zA-Z0-9_]")
# Not UTF-8: a value holding one could be stored but never sent (orjson refuses it), as names refuse it too.
_LONE_SURROGATE = re.compile(r"[\ud800-\udfff]")


def label_name_from(foreign: str) -> str:
    """A valid label name for a foreign key (`service.name`, `host-id`, `1st`), as the OpenTelemetry
    Collector's Prometheus translator makes one: other characters become `_`, a leading digit gets `key_`,
    and a leading `__` (Prometheus reserves it) gets `key`."""
    name = _NOT_IN_LABEL_NAMES.sub("_", foreign)
    if not name:
        raise ValidationError("a label name must not be empty")
    if name[0].isdigit():
        return "key_" + name
    if name.startswith("__"):
        return "key" + name
    return name


def validate_labels(labels: object) -> dict[str, str]:
    """`labels` as stored: a dict of at most 32 string pairs with Prometheus label names, sorted by name."""
    if not isinstance(labels, Mapping):
        raise ValidationError("labels must be an object of label names to string values")
    if len(labels) > MAX_LABELS:
        raise ValidationError(f"labels may have at most {MAX_LABELS} pairs, not {len(labels)}")
    checked: dict[str, str] = {}
    for name in sorted(labels, key=str):
        value = labels[name]
        if isinstance(name, str) and len(name) > MAX_LABEL_NAME_LENGTH:
            raise ValidationError(
                f"label name {name[:20]!r}... is longer than {MAX_LABEL_NAME_LENGTH} characters"
            )
        if not isinstance(name, str) or not LABEL_NAME.fullmatch(name):
            raise ValidationError(
                f"label name {name!r} is not valid: use letters, digits and _, not starting with a digit"
            )
        if name.startswith("__"):
            raise ValidationError(f"label name {name!r} is not valid: names starting with __ are reserved")
        if not isinstance(value, str):
            raise ValidationError(f"label {name!r} must have a string value")
        if not value:
            raise ValidationError(f"label {name!r} must not be empty: leave the label out instead")
        if len(value) > MAX_LABEL_VALUE_LENGTH:
            raise ValidationError(f"label {name!r} is longer than {MAX_LABEL_VALUE_LENGTH} characters")
        surrogate = _LONE_SURROGATE.search(value)
        if surrogate is not None:
            raise ValidationError(
                f"label {name!r} must not contain a lone surrogate (U+{ord(surrogate.group()):04X})"
            )
        checked[name] = value
    return checked


def canonical_labels(labels: Mapping[str, str]) -> str:
    """Labels as one text, the same for equal labels whatever their order: JSON with sorted keys and no
    spaces. What the stores compare a metric's identity by (`{}` for none, as every older metric has)."""
    # orjson: the same text as json.dumps(sort_keys=True, separators=(",", ":"), ensure_ascii=False), at a
    # tenth of the cost, which every reading written by name and labels pays
    return orjson.dumps(labels, option=orjson.OPT_SORT_KEYS).decode()


def identity(name_key: str, labels: Mapping[str, str]) -> tuple[str, str]:
    """What tells one metric from another: its name (as `names.name_key` compares it) and its labels."""
    return name_key, canonical_labels(labels)


def has_labels(labels: Mapping[str, str], wanted: Mapping[str, str]) -> bool:
    """Whether `labels` include every pair of `wanted` (a subset match: `host=a` matches `{host=a, dc=x}`)."""
    return all(labels.get(name) == value for name, value in wanted.items())


def format_labels(labels: Mapping[str, str]) -> str:
    """Labels as the `labels=` query writes them (`host=a,dc=x`), commas and backslashes in values escaped."""
    return ",".join(f"{name}={_escape(value)}" for name, value in labels.items())


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace(",", "\\,")


def parse_label_query(texts: Iterable[str]) -> dict[str, str]:
    """The pairs of one or more `labels=` query values: `host=a,dc=x`, each pair split at its first `=` (a
    value may hold `=`); a comma in a value is written `\\,` and a backslash `\\\\`. Several `labels=`
    parameters add their pairs. Checked as labels are (`validate_labels`); a name given twice with two
    values is refused, since no metric could match."""
    pairs: dict[str, str] = {}
    for text in texts:
        for pair in _split_pairs(text):
            name, equals, value = pair.partition("=")
            if not equals:
                raise ValidationError(
                    f"labels must be name=value pairs separated by commas (labels=host=a,dc=x), not {pair!r}"
                )
            if pairs.get(name, value) != value:
                raise ValidationError(f"label {name!r} is given twice with different values")
            pairs[name] = value
    return validate_labels(pairs)


def _split_pairs(text: str) -> list[str]:
    """`text` split at its unescaped commas, escapes undone."""
    pairs: list[str] = []
    current: list[str] = []
    characters = iter(text)
    for character in characters:
        if character == "\\":
            escaped = next(characters, "")
            if escaped not in (",", "\\"):
                raise ValidationError(
                    "in labels=, a backslash escapes only a comma (\\,) or a backslash (\\\\)"
                )
            current.append(escaped)
        elif character == ",":
            pairs.append("".join(current))
            current = []
        else:
            current.append(character)
    pairs.append("".join(current))
    return pairs


def optional_text(value: object, field_name: str, max_length: int) -> str | None:
    """A metric's `unit` or `description` as stored: None for none (an empty text too); else trimmed and in
    NFC as names are, without control characters, at most `max_length` characters."""
    if value is None:
        return None
    if not isinstance(value, str):
        raise ValidationError(f"{field_name} must be a string of at most {max_length} characters")
    try:
        text = normalize_name(value)
    except ValueError as error:
        raise ValidationError(f"{field_name} {error}") from None
    if len(text) > max_length:
        raise ValidationError(f"{field_name} must be a string of at most {max_length} characters")
    return text or None


class Sample(NamedTuple):
    """One value of a foreign write: the metric it goes to (name and labels), and where it came from. A
    tuple, not a dataclass: a line-protocol stream makes 100,000 a second, and a tuple is made in a fifth
    of the time. Read-only, labels too (samples of one line, and the default, share one dict)."""

    name: str
    value: float
    labels: dict[str, str] = {}  # noqa: RUF012 (never changed: see above); valid label names already
    timestamp: datetime | None = None  # aware, UTC; None: now, when it is written
    unit: str | None = None
    description: str | None = None
    line: int = 0  # 1-based line of a line-protocol body, or the data point's position in an OTLP request
