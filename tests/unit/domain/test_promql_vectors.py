"""PromQL's operators and aggregations at each step (`domain/promql/vectors.py`), hand-computed, with Go's
float arithmetic where Python's would raise."""

from __future__ import annotations

import math

import pytest

from metricstream.domain.promql.vectors import (
    Vector,
    aggregate,
    negate,
    operate,
    scalar_binary,
    vector_scalar_binary,
    vector_vector_binary,
)
from metricstream.errors import EvaluationError

A1 = (("__name__", "a"), ("host", "1"), ("job", "x"))
A2 = (("__name__", "a"), ("host", "2"), ("job", "x"))
B1 = (("__name__", "b"), ("host", "1"), ("job", "x"))
B2 = (("__name__", "b"), ("host", "2"), ("job", "x"))


@pytest.mark.parametrize(
    ("op", "left", "right", "result"),
    [
        ("/", 1.0, 0.0, math.inf),
        ("/", -1.0, 0.0, -math.inf),
        ("/", 1.0, -0.0, -math.inf),
        ("/", 0.0, 0.0, math.nan),
        ("%", 5.5, 2.0, 1.5),
        ("%", -5.5, 2.0, -1.5),  # the sign of the left side, as Go's math.Mod
        ("%", 1.0, 0.0, math.nan),
        ("%", math.inf, 2.0, math.nan),
        ("^", 2.0, 10.0, 1024.0),
        ("^", -8.0, 1 / 3, math.nan),
        ("^", 0.0, -1.0, math.inf),
        ("^", -0.0, -1.0, -math.inf),
        ("^", 10.0, 400.0, math.inf),
        ("^", -10.0, 401.0, -math.inf),
        ("atan2", 1.0, 1.0, math.pi / 4),
    ],
)
def test_arithmetic_follows_go(op: str, left: float, right: float, result: float) -> None:
    value, keep = operate(op, left, right)
    assert keep
    assert value == result or (math.isnan(value) and math.isnan(result))


def test_scalar_comparisons_give_one_or_zero() -> None:
    assert scalar_binary(">", [1.0, 3.0], [2.0, 2.0]) == [0.0, 1.0]
    assert scalar_binary("-", [1.0, 3.0], [2.0, 2.0]) == [-1.0, 1.0]


def test_comparisons_filter_and_keep_the_vector_value_and_name() -> None:
    vector: Vector = {A1: [1.0, 5.0, None]}
    assert vector_scalar_binary(">", vector, [2.0, 2.0, 2.0], scalar_left=False, return_bool=False) == {
        A1: [None, 5.0, None]
    }
    # 2 < a: the scalar on the left, the value still the vector's
    assert vector_scalar_binary("<", vector, [2.0] * 3, scalar_left=True, return_bool=False) == {
        A1: [None, 5.0, None]
    }
    with_bool = vector_scalar_binary(">", vector, [2.0] * 3, scalar_left=False, return_bool=True)
    assert with_bool == {A1[1:]: [0.0, 1.0, None]}  # bool drops the name
    assert vector_scalar_binary("-", vector, [2.0] * 3, scalar_left=True, return_bool=False) == {
        A1[1:]: [1.0, -3.0, None]
    }


def test_vectors_match_one_to_one_ignoring_the_name() -> None:
    lhs: Vector = {A1: [1.0, 2.0], A2: [3.0, None]}
    rhs: Vector = {B1: [10.0, 20.0], B2: [30.0, 40.0]}
    assert vector_vector_binary("+", lhs, rhs, False, (), False, 2) == {
        A1[1:]: [11.0, 22.0],
        A2[1:]: [33.0, None],
    }
    assert vector_vector_binary("<", lhs, rhs, True, ("host",), False, 2) == {
        (("host", "1"),): [1.0, 2.0],
        (("host", "2"),): [3.0, None],
    }


def test_many_to_one_without_group_modifiers_is_refused() -> None:
    lhs: Vector = {A1: [1.0], A2: [2.0]}
    rhs: Vector = {B1: [10.0]}
    with pytest.raises(EvaluationError, match="many-to-one matching must be explicit"):
        vector_vector_binary("+", lhs, rhs, True, ("job",), False, 1)
    with pytest.raises(EvaluationError, match="duplicate series for the match group"):
        vector_vector_binary("+", rhs, lhs, True, ("job",), False, 1)
    # No left sample at a step: nothing is matched, and the right's duplicates do not matter there.
    assert vector_vector_binary("+", {B1: [None]}, lhs, True, ("job",), False, 1) == {}


def test_aggregations_at_each_step() -> None:
    vector: Vector = {A1: [1.0, None, 4.0], A2: [3.0, None, None], B1: [5.0, None, 6.0]}
    assert aggregate("sum", vector, ("__name__",), False, 3) == {
        (("__name__", "a"),): [4.0, None, 4.0],
        (("__name__", "b"),): [5.0, None, 6.0],
    }
    assert aggregate("avg", vector, ("host",), True, 3) == {(("job", "x"),): [3.0, None, 5.0]}
    assert aggregate("count", vector, (), False, 3) == {(): [3.0, None, 2.0]}
    assert aggregate("max", vector, ("host",), False, 3) == {
        (("host", "1"),): [5.0, None, 6.0],
        (("host", "2"),): [3.0, None, None],
    }
    assert aggregate("min", vector, ("job",), False, 3) == {(("job", "x"),): [1.0, None, 4.0]}


def test_the_mean_of_infinities_is_prometheus_s() -> None:
    vector: Vector = {A1: [math.inf], A2: [1.0], B1: [math.inf]}
    assert aggregate("avg", vector, (), False, 1) == {(): [math.inf]}


def test_negation_drops_the_name_and_refuses_what_then_collides() -> None:
    assert negate({A1: [1.0, None]}) == {A1[1:]: [-1.0, None]}
    with pytest.raises(EvaluationError, match="same labelset"):
        negate({A1: [1.0], B1: [2.0]})
