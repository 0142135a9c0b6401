"""Labels (Prometheus-style name → value pairs that tell series of one name apart) and the `Sample`, one value
read from a foreign format (Influx line protocol, OTLP) before it is written by name and labels."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Final

from ..errors import ValidationError

__all__ = [
    "LABEL_NAME",
    "MAX_LABELS",
    "MAX_LABEL_NAME_LENGTH",
    "MAX_LABEL_VALUE_LENGTH",
    "Sample",
    "label_name_from",
    "validate_labels",
]

MAX_LABELS: Final = 32
MAX_LABEL_NAME_LENGTH: Final = 200  # as a metric's name: a bound on stored bytes, and on messages
MAX_LABEL_VALUE_LENGTH: Final = 1024  # a host, a sensor, a path: long enough, and a bound on stored bytes
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


@dataclass(frozen=True, slots=True)
class Sample:
    """One value of a foreign write: the metric it goes to (name and labels), and where it came from."""

    name: str
    value: float
    labels: dict[str, str] = field(default_factory=dict)  # valid label names already
    timestamp: datetime | None = None  # aware, UTC; None: now, when it is written
    unit: str | None = None
    description: str | None = None
    line: int = 0  # 1-based line of a line-protocol body, or the data point's position in an OTLP request
