"""PromQL's operators and aggregations over values evaluated at every step of a query, as Prometheus 2.42's
engine computes them (promql/engine.go: VectorBinop, VectorscalarBinop, scalarBinop, aggregation).

A scalar is one float per step; an instant vector maps each series' labels (sorted name, value pairs,
`__name__` among them) to one value per step, None where the series has none. Arithmetic drops
`__name__`, as `bool` does; comparisons without `bool` keep the left side's value where they hold and
drop the sample where they do not. Floats follow Go: division by zero gives an infinity or NaN, `%` and
`^` give NaN where Python would raise.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Final

from ...errors import EvaluationError
from .syntax import COMPARISONS

__all__ = [
    "NAME",
    "Labels",
    "Scalar",
    "Vector",
    "aggregate",
    "drop_name",
    "negate",
    "operate",
    "scalar_binary",
    "vector_scalar_binary",
    "vector_vector_binary",
]

NAME: Final = "__name__"
Labels = tuple[tuple[str, str], ...]
Scalar = list[float]
Vector = dict[Labels, list[float | None]]
_SAME_LABELS: Final = "vector cannot contain metrics with the same labelset"


def drop_name(labels: Labels) -> Labels:
    return tuple(pair for pair in labels if pair[0] != NAME)


def _divide(left: float, right: float) -> float:
    if right != 0:
        return left / right
    if left == 0 or math.isnan(left):
        return math.nan
    return math.copysign(math.inf, left) * math.copysign(1.0, right)


def _modulo(left: float, right: float) -> float:
    try:
        return math.fmod(left, right)
    except ValueError:  # an infinite left side or a zero right side: NaN in Go
        return math.nan


def _power(left: float, right: float) -> float:
    try:
        return math.pow(left, right)
    except ValueError:
        if left == 0:  # a negative power of zero
            odd = right == math.floor(right) and math.fmod(right, 2) != 0
            return math.copysign(math.inf, left) if odd else math.inf
        return math.nan  # a fractional power of a negative number
    except OverflowError:
        odd = right == math.floor(right) and math.fmod(right, 2) != 0
        return -math.inf if left < 0 and odd else math.inf


_ARITHMETIC: Final[dict[str, Callable[[float, float], float]]] = {
    "+": lambda a, b: a + b,
    "-": lambda a, b: a - b,
    "*": lambda a, b: a * b,
    "/": _divide,
    "%": _modulo,
    "^": _power,
    "atan2": math.atan2,
}
_COMPARE: Final[dict[str, Callable[[float, float], bool]]] = {
    "==": lambda a, b: a == b,
    "!=": lambda a, b: a != b,
    ">": lambda a, b: a > b,
    "<": lambda a, b: a < b,
    ">=": lambda a, b: a >= b,
    "<=": lambda a, b: a <= b,
}
# Arithmetic that drops the metric name (Prometheus's shouldDropMetricName: not atan2).
_DROPS_NAME: Final = frozenset({"+", "-", "*", "/", "%", "^"})


def operate(op: str, left: float, right: float) -> tuple[float, bool]:
    """`left op right` and whether a vector keeps the sample (comparisons: the left value, if true)."""
    if op in COMPARISONS:
        return left, _COMPARE[op](left, right)
    return _ARITHMETIC[op](left, right), True


def scalar_binary(op: str, lhs: Scalar, rhs: Scalar) -> Scalar:
    """Between two scalars (a comparison must have `bool`, which the parser checks): 1 or 0."""
    if op in COMPARISONS:
        return [1.0 if _COMPARE[op](a, b) else 0.0 for a, b in zip(lhs, rhs, strict=True)]
    function = _ARITHMETIC[op]
    return [function(a, b) for a, b in zip(lhs, rhs, strict=True)]


def _put(out: Vector, labels: Labels, step: int, value: float, steps: int) -> None:
    """A result sample; two at one step under one label set is Prometheus's error."""
    series = out.get(labels)
    if series is None:
        series = out[labels] = [None] * steps
    elif series[step] is not None:
        raise EvaluationError(_SAME_LABELS)
    series[step] = value


def vector_scalar_binary(
    op: str, vector: Vector, scalar: Scalar, *, scalar_left: bool, return_bool: bool
) -> Vector:
    """Between each sample and the scalar at its step; a comparison keeps the vector's value."""
    steps = len(scalar)
    drops = op in _DROPS_NAME or return_bool
    out: Vector = {}
    for labels, values in vector.items():
        result_labels = drop_name(labels) if drops else labels
        for step, value in enumerate(values):
            if value is None:
                continue
            left, right = (scalar[step], value) if scalar_left else (value, scalar[step])
            result, keep = operate(op, left, right)
            if op in COMPARISONS:
                result = value
            if return_bool:
                result, keep = (1.0 if keep else 0.0), True
            if keep:
                _put(out, result_labels, step, result, steps)
    return out


def _signature(labels: Labels, on: bool, matching: Sequence[str]) -> Labels:
    if on:
        return tuple(pair for pair in labels if pair[0] in matching)
    return tuple(pair for pair in labels if pair[0] != NAME and pair[0] not in matching)


def vector_vector_binary(
    op: str, lhs: Vector, rhs: Vector, on: bool, matching: Sequence[str], return_bool: bool, steps: int
) -> Vector:
    """One-to-one matching: each left sample with the one right sample of its signature at that step."""
    right_by = [(_signature(labels, on, matching), labels, values) for labels, values in rhs.items()]
    left_by = [(_signature(labels, on, matching), labels, values) for labels, values in lhs.items()]
    out: Vector = {}
    for step in range(steps):
        left = [(signature, labels, values[step]) for signature, labels, values in left_by]
        if all(value is None for _, _, value in left):
            continue  # nothing can match: no duplicate on the right is looked for either
        right: dict[Labels, float] = {}
        for signature, _labels, values in right_by:
            value = values[step]
            if value is None:
                continue
            if signature in right:
                raise EvaluationError(
                    f"found duplicate series for the match group {_text(signature)} on the right hand-side "
                    "of the operation; many-to-many matching not allowed: matching labels must be unique on "
                    "one side"
                )
            right[signature] = value
        matched: set[Labels] = set()
        for signature, labels, value in left:
            if value is None or signature not in right:
                continue
            result, keep = operate(op, value, right[signature])
            if return_bool:
                result, keep = (1.0 if keep else 0.0), True
            if not keep:
                continue
            if signature in matched:
                raise EvaluationError(
                    "multiple matches for labels: many-to-one matching must be explicit "
                    "(group_left/group_right)"
                )
            matched.add(signature)
            _put(out, _result_labels(labels, op, on, matching, return_bool), step, result, steps)
    return out


def _result_labels(labels: Labels, op: str, on: bool, matching: Sequence[str], return_bool: bool) -> Labels:
    if op in _DROPS_NAME or return_bool:
        labels = drop_name(labels)
    if on:
        return tuple(pair for pair in labels if pair[0] in matching)
    return tuple(pair for pair in labels if pair[0] not in matching)


def _text(labels: Labels) -> str:
    return "{" + ", ".join(f'{name}="{value}"' for name, value in labels) + "}"


def negate(vector: Vector) -> Vector:
    """Unary minus: the name dropped; two series left with one label set is Prometheus's error."""
    out: Vector = {}
    for labels, values in vector.items():
        dropped = drop_name(labels)
        if dropped in out:
            raise EvaluationError(_SAME_LABELS)
        out[dropped] = [None if value is None else -value for value in values]
    return out


def aggregate(op: str, vector: Vector, labels: Sequence[str], without: bool, steps: int) -> Vector:
    """`op by (labels)` or `op without (labels)` at each step, groups in order of their first series."""
    groups: dict[Labels, list[list[float | None]]] = {}
    for series_labels, values in vector.items():
        if without:
            key = tuple(pair for pair in series_labels if pair[0] not in labels and pair[0] != NAME)
        else:
            key = tuple(pair for pair in series_labels if pair[0] in labels)
        groups.setdefault(key, []).append(values)
    out: Vector = {}
    for key, members in groups.items():
        result = [_combine(op, [series[step] for series in members]) for step in range(steps)]
        if any(value is not None for value in result):
            out[key] = result
    return out


def _combine(op: str, values: list[float | None]) -> float | None:
    """One group at one step, in Prometheus's order and arithmetic (its incremental mean for avg)."""
    present = [value for value in values if value is not None]
    if not present:
        return None
    if op == "count":
        return float(len(present))
    result = present[0]
    if op == "sum":
        for value in present[1:]:
            result += value
    elif op == "avg":
        for count, value in enumerate(present[1:], start=2):
            if math.isinf(result) and (
                (math.isinf(value) and (result > 0) == (value > 0))
                or not (math.isinf(value) or math.isnan(value))
            ):
                continue  # an infinite mean stays as it is
            result += value / count - result / count
    elif op == "max":
        for value in present[1:]:
            if result < value or math.isnan(result):
                result = value
    else:  # min
        for value in present[1:]:
            if result > value or math.isnan(result):
                result = value
    return result
