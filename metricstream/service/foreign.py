"""Writes in foreign formats (Influx line protocol, OTLP): their `Sample`s written by name and labels through
the one write path, so every check and every event is a batch's. A line-protocol body is all or nothing and
names its refused lines; an OTLP request keeps what passes and counts the rest, as OTLP's partial success
asks. A metric a sample creates takes the sample's unit and description; an existing one keeps its own."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..domain.labels import Sample
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
    """Each new metric's unit and description: its first sample's that has either."""
    details: dict[Identity, MetricDetails] = {}
    for sample in samples:
        if sample.unit is not None or sample.description is not None:
            details.setdefault(identity_of(sample.name, sample.labels), (sample.unit, sample.description))
    return details


def refused_whole(refusals: Sequence[LineError], lines: int) -> ValidationError:
    """The error of a body refused whole: how many of its lines, then each one's number and reason (in
    the message, and in `errors` as `{"line", "error"}`)."""
    ordered = sorted(refusals, key=lambda refusal: refusal.line)
    count = len({refusal.line for refusal in ordered})
    shown = "; ".join(str(refusal) for refusal in ordered[:_SHOWN_REFUSALS])
    more = f"; and {len(ordered) - _SHOWN_REFUSALS} more" if len(ordered) > _SHOWN_REFUSALS else ""
    errors: list[dict[str, object]] = [{"line": r.line, "error": r.reason} for r in ordered]
    return ValidationError(f"{count} of {lines} lines refused, none stored: {shown}{more}", errors)


def _failures(error: ValidationError) -> dict[int, str]:
    """A refused batch's items: index -> reason."""
    return {index: str(e["error"]) for e in error.errors if isinstance(index := e.get("index"), int)}


async def write_all(service: AsyncMetricService, samples: Sequence[Sample], lines: int) -> list[Event]:
    """Write every sample or none: `refused_whole`'s error naming each refused line."""
    try:
        return (await service.write_samples(samples, _details(samples)))[1]
    except ValidationError as error:
        failures = _failures(error)
        if not failures:  # the batch as a whole: too many readings
            raise
        raise refused_whole([LineError(samples[i].line, r) for i, r in failures.items()], lines) from None


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
