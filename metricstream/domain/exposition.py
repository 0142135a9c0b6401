"""The newest reading of every metric as Prometheus scrapes it (what `GET /metrics/export` answers), with no
I/O: Prometheus' text format 0.0.4, or OpenMetrics 1.0 when the scraper asks for it (Prometheus does).

Written here in a few lines rather than through prometheus-client's exposition, whose text format turns a
timestamp into milliseconds through a float (`int(float(t) * 1000)`), which can land a millisecond early.
Decisions (docs/prometheus.md tells them):
- names: a valid Prometheus name (`[a-zA-Z_:][a-zA-Z0-9_:]*`) is kept as it is; any other is mapped as
  the OpenTelemetry-to-Prometheus translator (prometheus/otlptranslator) maps one: every run of other
  characters separates words, joined by `_`, and a leading digit gets a `_` before it. A name with no
  letter, digit or `:` at all maps to nothing: that metric is left out, and counted;
- units: the unit's Prometheus word, by the same translator's table (UCUM: `s` seconds, `ms`
  milliseconds, `By` bytes, `Cel` celsius, `%` percent, `1` and `{annotations}` none, `a/s`
  a_per_second; `°C` and `°F` too; other characters mapped as in names), is added to the name as its last
  word unless the name has that word already; OpenMetrics' `# UNIT` says it when the name ends with it
  (OpenMetrics requires the unit to be the name's suffix). The same name in both formats, so a
  Prometheus that switches format keeps its series;
- the type is `unknown` (`untyped` in the text format): readings do not say whether they count or gauge;
- metrics whose names map to one name are one family, their samples together; a second metric with the
  same name and labels as one already in the family is left out, and counted (Prometheus would drop the
  duplicate sample);
- HELP: the description of the family's first metric that has one;
- timestamp: the newest reading's, in the text format as integer milliseconds (rounded down), in
  OpenMetrics as exact seconds (Prometheus reads them to the millisecond, rounded down too), or the middle
  of that millisecond where the float Prometheus reads the exact seconds into would fall in another.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Final

from .values import Metric, MetricReading

__all__ = [
    "OPENMETRICS",
    "TEXT_FORMAT",
    "Exposition",
    "exposition",
    "prometheus_name",
    "unit_word",
    "wants_openmetrics",
]

TEXT_FORMAT: Final = "text/plain; version=0.0.4; charset=utf-8"
OPENMETRICS: Final = "application/openmetrics-text; version=1.0.0; charset=utf-8"
_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)
_VALID_NAME: Final = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")
_WORD_SEPARATORS: Final = re.compile(r"[^a-zA-Z0-9:]+")
# UCUM units (what OTLP sends) to Prometheus' words, as prometheus/otlptranslator maps them
_UNITS: Final = {
    **{"d": "days", "h": "hours", "min": "minutes", "s": "seconds"},
    **{"ms": "milliseconds", "us": "microseconds", "ns": "nanoseconds"},
    **{"By": "bytes", "KiBy": "kibibytes", "MiBy": "mebibytes", "GiBy": "gibibytes", "TiBy": "tebibytes"},
    **{"KBy": "kilobytes", "MBy": "megabytes", "GBy": "gigabytes", "TBy": "terabytes"},
    **{"m": "meters", "V": "volts", "A": "amperes", "J": "joules", "W": "watts", "g": "grams"},
    **{"Cel": "celsius", "Hz": "hertz", "1": "", "%": "percent"},
    # not UCUM, but what people write
    **{"°C": "celsius", "°F": "fahrenheit"},
}
_PER_UNITS: Final = {
    "s": "second",
    "m": "minute",
    "h": "hour",
    "d": "day",
    "w": "week",
    "mo": "month",
    "y": "year",
}


@dataclass(frozen=True, slots=True)
class Exposition:
    """A scrape's body and its media type, and how many metrics were left out, by reason: `name` (no
    Prometheus name), `duplicate` (another metric has the same name and labels)."""

    body: bytes
    media_type: str
    skipped: Counter[str] = field(default_factory=Counter)


@dataclass(slots=True)
class _Family:
    unit: str
    description: str | None
    samples: list[str] = field(default_factory=list)
    labels_seen: set[tuple[tuple[str, str], ...]] = field(default_factory=set)


def wants_openmetrics(accept: str | None) -> bool:
    """Whether an Accept header asks for OpenMetrics (not refused with q=0)."""
    for media_range in (accept or "").split(","):
        media, *parameters = (part.strip() for part in media_range.split(";"))
        if media.lower() == "application/openmetrics-text":
            weights = [value for name, _, value in (p.partition("=") for p in parameters) if name == "q"]
            try:
                if not weights or float(weights[0]) > 0:
                    return True
            except ValueError:
                continue  # a q that is no number: this range says nothing
    return False


def unit_word(unit: str | None) -> str:
    """The word a unit adds to a Prometheus name (`s` seconds, `By/s` bytes_per_second); "" for none."""
    if not unit:
        return ""
    main, _, per = (part.strip() for part in unit.partition("/"))
    words = []
    if main and "{" not in main and "}" not in main:
        words.append(_clean(_UNITS.get(main, main)))
    if per and "{" not in per and "}" not in per:
        words.append("per_" + _clean(_PER_UNITS.get(per, per)))
    return "_".join(word for word in words if word.strip("_")).strip("_")


def prometheus_name(name: str, unit: str | None = None) -> str | None:
    """`name` as a valid Prometheus metric name with its unit's word (see the module's docstring); None if
    it has no character a Prometheus name could keep."""
    if _VALID_NAME.fullmatch(name):
        words = name.split("_")
    else:
        words = [word for word in _WORD_SEPARATORS.split(name) if word]
        if not words:
            return None
        name = "_".join(words)
        if name[0].isdigit():
            name = "_" + name
    suffix = unit_word(unit)
    if suffix and not _has_words(words, suffix.split("_")):
        name = f"{name}_{suffix}"
    return name


def exposition(latest: Iterable[tuple[Metric, MetricReading]], openmetrics: bool = False) -> Exposition:
    """Every metric's newest reading in one body: the text format, or OpenMetrics."""
    families: dict[str, _Family] = {}
    skipped: Counter[str] = Counter()
    for metric, reading in latest:
        name = prometheus_name(metric.name, metric.unit)
        if name is None:
            skipped["name"] += 1
            continue
        family = families.get(name)
        if family is None:
            word = unit_word(metric.unit)
            family = families[name] = _Family(word if name.endswith("_" + word) else "", metric.description)
        labels = tuple(metric.labels.items())
        if labels in family.labels_seen:
            skipped["duplicate"] += 1
            continue
        family.labels_seen.add(labels)
        family.description = family.description or metric.description
        family.samples.append(_sample(name, metric.labels, reading, openmetrics))
    lines = [line for name, family in families.items() for line in _family(name, family, openmetrics)]
    if openmetrics:
        lines.append("# EOF\n")
    return Exposition("".join(lines).encode(), OPENMETRICS if openmetrics else TEXT_FORMAT, skipped)


def _family(name: str, family: _Family, openmetrics: bool) -> list[str]:
    lines = [f"# TYPE {name} {'unknown' if openmetrics else 'untyped'}\n"]
    if openmetrics and family.unit:
        lines.append(f"# UNIT {name} {family.unit}\n")
    if family.description is not None:
        lines.append(f"# HELP {name} {_help(family.description, openmetrics)}\n")
    return lines + family.samples


def _sample(name: str, labels: dict[str, str], reading: MetricReading, openmetrics: bool) -> str:
    pairs = ",".join(f'{label}="{_label_value(value)}"' for label, value in labels.items())
    series = f"{name}{{{pairs}}}" if pairs else name
    micros = _micros(reading)
    moment = _seconds(micros) if openmetrics else str(micros // 1000)
    # repr: the shortest text that reads back as the same float, which Go's ParseFloat reads too
    return f"{series} {reading.value!r} {moment}\n"


def _seconds(micros: int) -> str:
    """`micros` as OpenMetrics' seconds: exact, unless Prometheus would read it in another millisecond
    (it takes int64(seconds * 1000) of the float, and 1.001 s is 1000.9999... ms): then the middle of its
    millisecond, which reads back to that millisecond at any date."""
    sign, size = ("-", -micros) if micros < 0 else ("", micros)
    exact = f"{sign}{size // 1_000_000}.{size % 1_000_000:06d}"
    if micros < 0 or int(float(exact) * 1000) == micros // 1000:
        return exact
    milliseconds = micros // 1000
    return f"{milliseconds // 1000}.{milliseconds % 1000:03d}5"


def _micros(reading: MetricReading) -> int:
    delta = reading.timestamp - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def _label_value(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _help(text: str, openmetrics: bool) -> str:
    escaped = text.replace("\\", "\\\\").replace("\n", "\\n")
    return escaped.replace('"', '\\"') if openmetrics else escaped


def _clean(word: str) -> str:
    return "_".join(part for part in _WORD_SEPARATORS.split(word) if part)


def _has_words(words: list[str], wanted: list[str]) -> bool:
    """Whether `wanted` appears in `words` as consecutive words."""
    return any(words[i : i + len(wanted)] == wanted for i in range(len(words) - len(wanted) + 1))
