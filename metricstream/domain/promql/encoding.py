"""The Prometheus HTTP API's parameters and answers, as Prometheus 2.42 reads and writes them.

Times: Unix seconds (a decimal float, rounded to the millisecond) or RFC 3339, kept in nanoseconds as
Prometheus parses them and evaluated at whole milliseconds (truncated), as its engine does. Durations:
seconds (a float) or a Prometheus duration such as `15s`, `1m30s`. Values: the text Go's
`strconv.FormatFloat` gives, as Prometheus writes them (`"NaN"`, `"+Inf"`, `"0.1"`, `"1e+21"`);
timestamps as JSON numbers of seconds with up to three decimals (six for readings between milliseconds,
which Prometheus cannot hold).
"""

from __future__ import annotations

import math
import re
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Final

import promql_parser

from ...errors import ValidationError

__all__ = [
    "format_sample_value",
    "format_scalar_value",
    "format_seconds",
    "millis_of",
    "parse_duration",
    "parse_time",
]

_FLOAT: Final = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")
_RFC3339: Final = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})[Tt](\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))?([Zz]|[+-]\d{2}:\d{2})"
)
_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)
_SECOND: Final = 1_000_000_000
# What a datetime holds, in nanoseconds since the epoch: the stores take no time outside it.
_EARLIEST: Final = (datetime(1, 1, 1, tzinfo=UTC) - _EPOCH) // timedelta(microseconds=1) * 1000
_LATEST: Final = (datetime(9999, 12, 31, 23, 59, 59, tzinfo=UTC) - _EPOCH) // timedelta(microseconds=1) * 1000


def _go_round(value: float) -> float:
    """Go's math.Round: half away from zero (Python's round() goes to even)."""
    return math.copysign(math.floor(abs(value) + 0.5), value)


def _truncated_division(value: int, divisor: int) -> int:
    """Go's integer division, which truncates toward zero."""
    quotient = abs(value) // divisor
    return quotient if value >= 0 else -quotient


def parse_time(text: str, name: str) -> int:
    """A time parameter in nanoseconds since the epoch; `ValidationError` as Prometheus words it."""
    if _FLOAT.fullmatch(text):
        seconds = float(text)
        if math.isfinite(seconds):
            fraction, whole = math.modf(seconds)
            fraction = _go_round(fraction * 1000) / 1000
            return _checked(int(whole) * _SECOND + int(fraction * _SECOND), text, name)
    match = _RFC3339.fullmatch(text)
    if match is not None:
        try:
            moment = datetime.fromisoformat(
                f"{match[1]}-{match[2]}-{match[3]}T{match[4]}:{match[5]}:{match[6]}"
            )
        except ValueError:
            pass
        else:
            zone = match[8].upper()
            if zone != "Z":
                sign = 1 if zone[0] == "+" else -1
                moment -= sign * timedelta(hours=int(zone[1:3]), minutes=int(zone[4:6]))
            whole = (moment.replace(tzinfo=UTC) - _EPOCH) // timedelta(seconds=1)
            nanos = int((match[7] or "").ljust(9, "0"))
            return _checked(whole * _SECOND + nanos, text, name)
    raise ValidationError(f"invalid parameter {name!r}: cannot parse {text[:100]!r} to a valid timestamp")


def _checked(nanos: int, text: str, name: str) -> int:
    if not _EARLIEST <= nanos <= _LATEST:
        raise ValidationError(
            f"invalid parameter {name!r}: {text[:100]!r} is outside the years 1 to 9999 metricstream holds"
        )
    return nanos


def parse_duration(text: str, name: str) -> int:
    """A duration parameter in nanoseconds: seconds, or a Prometheus duration (`15s`, `1h30m`)."""
    if _FLOAT.fullmatch(text):
        nanos = float(text) * _SECOND
        if abs(nanos) >= 2**63:
            raise ValidationError(
                f"invalid parameter {name!r}: cannot parse {text[:100]!r} to a valid duration. "
                "It overflows int64"
            )
        return int(nanos)
    try:
        duration = promql_parser.parse_duration(text)
    except (ValueError, OverflowError):
        raise ValidationError(
            f"invalid parameter {name!r}: cannot parse {text[:100]!r} to a valid duration"
        ) from None
    return duration // timedelta(microseconds=1) * 1000


def millis_of(nanos: int) -> int:
    """The millisecond Prometheus evaluates at: nanoseconds truncated toward zero, as Go divides."""
    return _truncated_division(nanos, 1_000_000)


def format_seconds(micros: int) -> float | int:
    """A timestamp in microseconds as the JSON number of seconds Prometheus writes: an integer when
    whole, else the shortest float that reads back to the same seconds."""
    if micros % 1_000_000 == 0:
        return micros // 1_000_000
    return micros / 1_000_000


def format_sample_value(value: float) -> str:
    """A sample's value as Prometheus writes it (jsonutil.MarshalValue): Go's shortest 'f' form, or 'e'
    below 1e-6 and from 1e21 on."""
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    magnitude = abs(value)
    if magnitude != 0 and (magnitude < 1e-6 or magnitude >= 1e21):
        return repr(value)  # Python's shortest repr is Go's 'e' form here: 1e+21, 1.5e-07
    return _fixed(value)


def format_scalar_value(value: float) -> str:
    """A scalar's value as Prometheus writes it: always the 'f' form (strconv.FormatFloat(v, 'f', -1))."""
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    return _fixed(value)


def _fixed(value: float) -> str:
    """Go's FormatFloat(value, 'f', -1, 64): the shortest digits that read back, without an exponent."""
    text = repr(value)
    if "e" not in text:  # from 1e-4 to 1e16 Python's repr is these digits already, with ".0" if whole
        return text[:-2] if text.endswith(".0") else text
    return format(Decimal(text).normalize(), "f")
