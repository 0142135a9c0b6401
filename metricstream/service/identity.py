"""What identifies a metric, for the use cases that get or create one: its name (as `name_key` compares
names) and its labels (`canonical_labels`). A repeated create answers the metric it names when it asks for
the same fields, and a conflict otherwise; a name and labels several metrics share (duplicates a store
written before labels may hold) is a conflict that says how to resolve it. Deliberate deviation from the Go
original, which made a new metric on every create: docs/architecture.md."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from ..domain.labels import canonical_labels, format_labels
from ..domain.names import name_key
from ..domain.values import Metric
from ..errors import ConflictError

__all__ = [
    "Identity",
    "MetricDetails",
    "existing_or_conflict",
    "identity_of",
    "shared_name_message",
]

# The name in the form names are compared in, and the labels as canonical text.
Identity = tuple[str, str]
# A metric's unit and description, for one a write by name creates (a foreign write carries them).
MetricDetails = tuple[str | None, str | None]


def identity_of(name: str, labels: Mapping[str, str]) -> Identity:
    return name_key(name), canonical_labels(labels)


def shared_name_message(name: str, labels: Mapping[str, str], count: int) -> str:
    """The 409 for a name and labels several metrics have: duplicates made before metrics were identified
    by name and labels (as the Go original made them), and how to end the ambiguity."""
    which = f"{name!r} with labels {format_labels(labels)}" if labels else repr(name)
    return (
        f"{count} metrics are named {which}: write to one by its metric_id (GET /metrics?name=... lists "
        "them), or keep one: delete the others (DELETE /metrics/{id}); such duplicates were made before a "
        "metric was identified by its name and labels"
    )


def _differences(existing: Metric, wanted: Metric) -> list[str]:
    """The fields a repeated create gives otherwise than the metric of that name and labels has; an omitted
    field is unset, so it differs from a set one."""
    fields = ("input_frequency", "unit", "description")
    return [field for field in fields if getattr(existing, field) != getattr(wanted, field)]


def existing_or_conflict(existing: Sequence[Metric], wanted: Metric) -> Metric:
    """The metric a repeated create answers, or `ConflictError` if it asks for another one."""
    if len(existing) > 1:
        raise ConflictError(shared_name_message(wanted.name, wanted.labels, len(existing)))
    differing = _differences(existing[0], wanted)
    if differing:
        raise ConflictError(
            f"metric {existing[0].id} has this name and these labels already, with another "
            f"{' and '.join(differing)}: give the same, or other labels for another metric"
        )
    return existing[0]
