"""The checks every reading passes before it is stored, for the one write path: JSON items (`check_items`)
and a foreign write's samples (`check_samples`) come out as the same `Checked` columns, or as one error per
refused reading with the message the HTTP API answers.

A foreign write repeats a few series thousands of times, so its name and labels are checked once per series
and each sample's value and time by plain comparisons; anything those refuse is checked again by
`validate_reading`, whose message it gets. Columns rather than a record per reading: a line-protocol stream
is written at 100,000 lines a second, where every object per reading shows (docs/performance.md)."""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from ..clock import Clock
from ..domain.labels import Sample
from ..domain.validation import ReadingFields, validate_reading
from ..domain.values import format_timestamp
from ..errors import ValidationError
from .identity import Identity, identity_of

__all__ = ["Checked", "ReadingRules", "check_item", "check_items", "check_samples"]

# index -> why that reading is refused, as a batch's `errors` list them
Refusals = list[dict[str, object]]


@dataclass(slots=True)
class Checked:
    """Readings every check passed, in columns. Each one's metric is given by id (`metric_ids`) or by name
    and labels (`keys`, each in `wanted` with the name and labels it stands for, in order of first use)."""

    metric_ids: list[str | None] = field(default_factory=list)
    keys: list[Identity | None] = field(default_factory=list)
    values: list[float] = field(default_factory=list)
    timestamps: list[datetime | None] = field(default_factory=list)
    wanted: dict[Identity, tuple[str, dict[str, str]]] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.values)

    def take(self, fields: ReadingFields) -> None:
        """Add a checked JSON reading, its metric by id or by name and labels."""
        key = None
        if fields.metric is not None:
            labels = fields.labels or {}
            key = identity_of(fields.metric, labels)
            self.wanted.setdefault(key, (fields.metric, labels))
        self.add(fields.metric_id, key, fields.value, fields.timestamp)

    def add(
        self, metric_id: str | None, key: Identity | None, value: float, timestamp: datetime | None
    ) -> None:
        self.metric_ids.append(metric_id)
        self.keys.append(key)
        self.values.append(value)
        self.timestamps.append(timestamp)


@dataclass(frozen=True, slots=True)
class ReadingRules:
    """The limits a write checks its readings against, read once per write (the clock's now included)."""

    positive_only: bool
    max_name_length: int
    reading_ttl: float | None
    max_future: float | None
    # the oldest and latest timestamps accepted now (None: any)
    oldest: datetime | None
    latest: datetime | None

    @classmethod
    def at(
        cls,
        clock: Clock,
        *,
        positive_only: bool,
        max_name_length: int,
        reading_ttl: float | None,
        max_future: float | None,
    ) -> ReadingRules:
        now = clock.time()
        oldest = None if reading_ttl is None else datetime.fromtimestamp(now - reading_ttl, UTC)
        latest = None
        if max_future is not None:
            # past the last datetime: every timestamp is before
            with contextlib.suppress(OverflowError, ValueError, OSError):
                latest = datetime.fromtimestamp(now + max_future, UTC)
        return cls(positive_only, max_name_length, reading_ttl, max_future, oldest, latest)

    def check_age(self, timestamp: datetime) -> None:
        """Refuse a timestamp `reading_ttl` would remove at once, or one too far ahead of the clock: a
        reading dated years ahead would stay the newest of its metric until then."""
        if self.oldest is not None and timestamp < self.oldest:
            raise ValidationError(
                f"timestamp {format_timestamp(timestamp)} is older than the reading_ttl of "
                f"{self.reading_ttl:g} seconds allows (readings before {format_timestamp(self.oldest)} "
                "are removed)"
            )
        if self.latest is not None and timestamp > self.latest:
            raise ValidationError(
                f"timestamp {format_timestamp(timestamp)} is more than {self.max_future:g} seconds ahead "
                f"of the server's clock (max_future={self.max_future:g}; set max_future=none to accept any)"
            )

    def in_range(self, timestamp: datetime) -> bool:
        return (self.oldest is None or timestamp >= self.oldest) and (
            self.latest is None or timestamp <= self.latest
        )


def check_item(
    item: object, positive_only: bool, max_name_length: int, rules: Callable[[], ReadingRules]
) -> ReadingFields:
    """One JSON reading checked: its fields, or a `ValidationError` with the message a batch gives it.
    `rules` are asked for only by a dated reading: they read the clock, which a single write then skips."""
    fields = validate_reading(item, positive_only, max_name_length)
    if fields.timestamp is not None:
        rules().check_age(fields.timestamp)
    return fields


def check_items(items: Sequence[Mapping[str, Any]], rules: ReadingRules) -> tuple[Checked, Refusals]:
    """JSON readings (as `POST /metrics/readings/batch` takes them) checked; each refused one's message."""
    checked, refusals = Checked(), Refusals()
    positive_only, max_name_length = rules.positive_only, rules.max_name_length
    for index, item in enumerate(items):
        try:
            fields = check_item(item, positive_only, max_name_length, lambda: rules)
        except ValidationError as error:
            refusals.append({"index": index, "error": error.message})
            continue
        checked.take(fields)
    return checked, refusals


def check_samples(samples: Sequence[Sample], rules: ReadingRules) -> tuple[Checked, Refusals]:
    """A foreign write's samples checked, as `check_items` checks them written by name and labels."""
    checked, refusals = Checked(), Refusals()
    # (name, labels' pairs) -> the identity of that series; None if its name or labels are refused
    series: dict[tuple[str, tuple[tuple[str, str], ...]], Identity | None] = {}
    positive_only, isfinite, wanted = rules.positive_only, math.isfinite, checked.wanted
    # the columns' appends, bound once: the loop runs once per sample
    add_metric_id, add_key = checked.metric_ids.append, checked.keys.append
    add_value, add_timestamp = checked.values.append, checked.timestamps.append
    for index, sample in enumerate(samples):
        name, value, timestamp = sample.name, sample.value, sample.timestamp
        pairs = tuple(sample.labels.items())
        try:
            key = series[name, pairs]
        except KeyError:
            key = series[name, pairs] = _series(sample, rules.max_name_length, wanted)
        if key is not None and (
            type(value) is float
            and (value > 0 or not positive_only)
            and isfinite(value)
            and (timestamp is None or rules.in_range(timestamp))
        ):
            add_metric_id(None)
            add_key(key)
            add_value(value)
            add_timestamp(timestamp)
        else:  # refused, or unusual: the full check, which words every reason of the sample
            try:
                fields = validate_reading(_item(sample), positive_only, rules.max_name_length)
                if fields.timestamp is not None:
                    rules.check_age(fields.timestamp)
            except ValidationError as error:
                refusals.append({"index": index, "error": error.message})
                continue
            assert key is not None, "a refused series' samples are refused"
            checked.add(None, key, fields.value, fields.timestamp)
    return checked, refusals


def _series(
    sample: Sample, max_name_length: int, wanted: dict[Identity, tuple[str, dict[str, str]]]
) -> Identity | None:
    """The identity of a sample's series, added to `wanted`; None if its name or labels are refused."""
    try:
        fields = validate_reading(
            {"metric": sample.name, "labels": sample.labels, "value": 1.0}, True, max_name_length
        )
    except ValidationError:
        return None
    name, labels = fields.metric or "", fields.labels or {}
    key = identity_of(name, labels)
    wanted.setdefault(key, (name, labels))
    return key


def _item(sample: Sample) -> dict[str, Any]:
    item: dict[str, Any] = {"metric": sample.name, "labels": sample.labels, "value": sample.value}
    if sample.timestamp is not None:
        item["timestamp"] = sample.timestamp
    return item
