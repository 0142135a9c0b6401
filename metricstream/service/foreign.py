"""Writes in foreign formats (Influx line protocol, OTLP, Prometheus remote write): their `Sample`s written by
name and labels through the one write path, so every check and every event is a batch's. A line-protocol
body (a remote write too) is all or nothing and names its refused lines (samples); an OTLP request keeps
what passes and counts the rest, as OTLP's partial success asks. A metric a sample creates takes the
sample's unit and description; an existing one keeps its own."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..domain.labels import MAX_DESCRIPTION_LENGTH, MAX_UNIT_LENGTH, Sample, optional_text
from ..domain.line_protocol import LineError
from ..errors import ValidationError
from .identity import Identity, MetricDetails, identity_of

if TYPE_CHECKING:
    from ..stream.log import Event
    from .use_cases import AsyncMetricService

__all__ = ["Written", "refused_whole", "write_all", "write_what_passes"]

_SHOWN_REFUSALS = 10  # a message names this many refused lines, then counts the rest


@dataclass(frozen=True, slots=True)
class Written:
    """What a write that keeps what passes stored, and what it refused (by line, or OTLP data point)."""

    events: list[Event]
    refused: list[LineError]


def _details(samples: Iterable[Sample]) -> dict[Identity, MetricDetails]:
    """Each new metric's unit and description: its first sample's that has either, checked as `POST
    /metrics` checks them; one that fails is left out (it only describes: no reason to lose the value)."""
    details: dict[Identity, MetricDetails] = {}
    for sample in samples:
        if sample.unit is not None or sample.description is not None:
            key = identity_of(sample.name, sample.labels)
            if key not in details:
                unit = _stored_or_none(sample.unit, "unit", MAX_UNIT_LENGTH)
                details[key] = (
                    unit,
                    _stored_or_none(sample.description, "description", MAX_DESCRIPTION_LENGTH),
                )
    return details


def _stored_or_none(text: str | None, field: str, max_length: int) -> str | None:
    try:
        return optional_text(text, field, max_length)
    except ValidationError:
        return None


def refused_whole(refusals: Sequence[LineError], lines: int, unit: str = "line") -> ValidationError:
    """The error of a body refused whole: how many of its lines, then each one's number and reason (in
    the message, and in `errors` as `{"line", "error"}`). `unit` names what is counted otherwise (a remote
    write's samples)."""
    ordered = sorted(refusals, key=lambda refusal: refusal.line)
    count = len({refusal.line for refusal in ordered})
    shown = "; ".join(f"{unit} {r.line}: {r.reason}" for r in ordered[:_SHOWN_REFUSALS])
    more = f"; and {len(ordered) - _SHOWN_REFUSALS} more" if len(ordered) > _SHOWN_REFUSALS else ""
    errors: list[dict[str, object]] = [{unit: r.line, "error": r.reason} for r in ordered]
    return ValidationError(f"{count} of {lines} {unit}s refused, none stored: {shown}{more}", errors)


def _failures(error: ValidationError) -> dict[int, str]:
    """A refused batch's items: index -> reason."""
    return {index: str(e["error"]) for e in error.errors if isinstance(index := e.get("index"), int)}


async def write_all(
    service: AsyncMetricService,
    samples: Sequence[Sample],
    lines: int,
    unit: str = "line",
    describe: Callable[[Sample], str] | None = None,
) -> list[Event]:
    """Write every sample or none: `refused_whole`'s error naming each refused line (or `unit`), its
    reason after `describe(sample)` if given (the series a remote write's sample belongs to)."""
    try:
        return (await service.write_samples(samples, _details(samples)))[1]
    except ValidationError as error:
        failures = _failures(error)
        if not failures:  # the batch as a whole: too many readings
            raise
        refusals = [
            LineError(samples[i].line, f"{describe(samples[i])}: {reason}" if describe else reason)
            for i, reason in failures.items()
        ]
        raise refused_whole(refusals, lines, unit) from None


async def write_what_passes(service: AsyncMetricService, samples: Sequence[Sample]) -> Written:
    """Write the samples every check passes; the others come back refused, with their reasons."""
    remaining, refused = list(samples), list[LineError]()
    while remaining:
        try:
            _, events = await service.write_samples(remaining, _details(remaining))
            return Written(events, refused)
        except ValidationError as error:
            failures = _failures(error)
            if not failures:
                raise
            refused += [LineError(remaining[i].line, reason) for i, reason in failures.items()]
            # Another pass with the rest: a check that passed may not pass again (a TTL boundary moved).
            remaining = [sample for index, sample in enumerate(remaining) if index not in failures]
    return Written([], refused)
