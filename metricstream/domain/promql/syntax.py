"""PromQL text to the expressions metricstream evaluates: parsed by `promql-parser` (the Rust parser's
Python bindings, compatible with Prometheus 2.45's grammar), then turned into the small typed tree below,
refusing, with a message naming it, every part outside the subset (docs/grafana.md lists it):

- instant and range vector selectors, matchers `=`, `!=`, `=~`, `!~` (on `__name__` too), `offset`;
- `rate`, `irate`, `increase`, `delta`, `avg|min|max|sum|count|last_over_time` of a range selector;
- `sum|avg|min|max|count` with `by` or `without`;
- number literals, unary minus, `+ - * / % ^ atan2` and the comparisons `== != > < >= <=` (with or
  without `bool`) between scalars and vectors; between two vectors one-to-one, with `on`/`ignoring`.

Refused: `@`, subqueries, strings, set operators (`and`, `or`, `unless`), `group_left`/`group_right`,
every other function and aggregation. Times are integer microseconds.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import timedelta
from typing import Final, Literal

import promql_parser

from ...errors import ValidationError
from .regex import compile_pattern

__all__ = [
    "AGGREGATIONS",
    "ARITHMETIC",
    "COMPARISONS",
    "FUNCTIONS",
    "Aggregate",
    "Binary",
    "Call",
    "Expr",
    "Kind",
    "Matcher",
    "Negate",
    "Number",
    "RangeSelector",
    "Selector",
    "kind_of",
    "parse_query",
    "parse_selector",
    "unsupported",
]

FUNCTIONS: Final = frozenset(
    {
        "rate",
        "irate",
        "increase",
        "delta",
        "avg_over_time",
        "min_over_time",
        "max_over_time",
        "sum_over_time",
        "count_over_time",
        "last_over_time",
    }
)
AGGREGATIONS: Final = frozenset({"sum", "avg", "min", "max", "count"})
ARITHMETIC: Final = frozenset({"+", "-", "*", "/", "%", "^", "atan2"})
COMPARISONS: Final = frozenset({"==", "!=", ">", "<", ">=", "<="})
# MatchOp is not hashable: looked up by its text, "MatchOp.Re".
_MATCH_OPS: Final = {
    "MatchOp.Equal": "=",
    "MatchOp.NotEqual": "!=",
    "MatchOp.Re": "=~",
    "MatchOp.NotRe": "!~",
}
_MICROSECOND: Final = timedelta(microseconds=1)
_UNKNOWN_FUNCTION: Final = re.compile(r"unknown function with name '([^']*)'")

Kind = Literal["scalar", "vector", "matrix"]


def unsupported(what: str) -> ValidationError:
    return ValidationError(f"unsupported in metricstream's PromQL subset: {what}")


@dataclass(frozen=True, slots=True)
class Matcher:
    name: str
    op: str  # "=", "!=", "=~" or "!~"
    value: str
    pattern: re.Pattern[str] | None = None

    def matches(self, value: str) -> bool:
        """Whether a label's value (the empty string for a label the series lacks) passes."""
        if self.op == "=":
            return value == self.value
        if self.op == "!=":
            return value != self.value
        found = self.pattern is not None and self.pattern.fullmatch(value) is not None
        return found if self.op == "=~" else not found


@dataclass(frozen=True, slots=True)
class Selector:
    """An instant vector selector."""

    matchers: tuple[Matcher, ...]
    offset: int = 0


@dataclass(frozen=True, slots=True)
class RangeSelector:
    selector: Selector
    range: int


@dataclass(frozen=True, slots=True)
class Number:
    value: float


@dataclass(frozen=True, slots=True)
class Call:
    function: str
    argument: RangeSelector


@dataclass(frozen=True, slots=True)
class Aggregate:
    op: str
    expr: Expr
    labels: tuple[str, ...] = ()
    without: bool = False


@dataclass(frozen=True, slots=True)
class Binary:
    op: str
    lhs: Expr
    rhs: Expr
    return_bool: bool = False
    # Vector matching: `on` (True) or `ignoring` (False, also with no modifier) these labels.
    on: bool = False
    matching: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Negate:
    expr: Expr


Expr = Selector | RangeSelector | Number | Call | Aggregate | Binary | Negate


def kind_of(expr: Expr) -> Kind:
    if isinstance(expr, Number):
        return "scalar"
    if isinstance(expr, RangeSelector):
        return "matrix"
    if isinstance(expr, Binary):
        both_scalar = kind_of(expr.lhs) == "scalar" and kind_of(expr.rhs) == "scalar"
        return "scalar" if both_scalar else "vector"
    if isinstance(expr, Negate):
        return kind_of(expr.expr)
    return "vector"


def parse_query(text: str) -> Expr:
    """The expression of a query, or a `ValidationError`: the parser's own message for bad syntax, or
    the part outside the subset."""
    try:
        parsed = promql_parser.parse(text)
    except ValueError as error:
        # A function the parser does not know (holt_winters, which it knows by its later name) is outside
        # the subset either way.
        unknown = _UNKNOWN_FUNCTION.search(str(error))
        if unknown is not None:
            raise unsupported(f"function {unknown[1]}") from None
        raise ValidationError(f"invalid PromQL: {error}") from None
    return _convert(parsed)


def parse_selector(text: str) -> Selector:
    """A `match[]` series selector, such as `up{job="api"}`."""
    expr = parse_query(text)
    if not isinstance(expr, Selector) or expr.offset:
        raise ValidationError(f'{text[:200]!r} is not a series selector such as up{{job="api"}}')
    return expr


def _convert(node: promql_parser.Expr) -> Expr:
    if isinstance(node, promql_parser.ParenExpr):
        return _convert(node.expr)
    if isinstance(node, promql_parser.NumberLiteral):
        return Number(float(node.val))
    if isinstance(node, promql_parser.VectorSelector):
        return _selector(node)
    if isinstance(node, promql_parser.MatrixSelector):
        return RangeSelector(_selector(node.vector_selector), _micros(node.range))
    if isinstance(node, promql_parser.Call):
        return _call(node)
    if isinstance(node, promql_parser.AggregateExpr):
        return _aggregate(node)
    if isinstance(node, promql_parser.BinaryExpr):
        return _binary(node)
    if isinstance(node, promql_parser.UnaryExpr):
        return Negate(_convert(node.expr))
    if isinstance(node, promql_parser.SubqueryExpr):
        raise unsupported("subqueries")
    if isinstance(node, promql_parser.StringLiteral):
        raise unsupported("string literals")
    raise unsupported(type(node).__name__)


def _micros(duration: timedelta | None) -> int:
    return 0 if duration is None else duration // _MICROSECOND


def _selector(node: promql_parser.VectorSelector) -> Selector:
    if node.at is not None:
        raise unsupported("the @ modifier")
    if node.matchers.or_matchers:
        raise unsupported("'or' between label matchers")
    matchers = [_matcher(m.name, _MATCH_OPS[str(m.op)], m.value) for m in node.matchers.matchers]
    if node.name is not None:
        matchers.append(Matcher("__name__", "=", node.name))
    return Selector(tuple(matchers), _micros(node.offset))


def _matcher(name: str, op: str, value: str) -> Matcher:
    pattern = compile_pattern(value) if op in ("=~", "!~") else None
    return Matcher(name, op, value, pattern)


def _call(node: promql_parser.Call) -> Call:
    name = node.func.name
    if name not in FUNCTIONS:
        raise unsupported(f"function {name}")
    (argument,) = node.args
    while isinstance(argument, promql_parser.ParenExpr):
        argument = argument.expr
    converted = _convert(argument)
    if not isinstance(converted, RangeSelector):  # a subquery was refused above
        raise unsupported(f"{name} of anything but a range selector")
    return Call(name, converted)


def _aggregate(node: promql_parser.AggregateExpr) -> Aggregate:
    op = str(node.op)
    if op not in AGGREGATIONS:
        raise unsupported(f"aggregation {op}")
    modifier = node.modifier
    if modifier is None:
        return Aggregate(op, _convert(node.expr))
    without = modifier.type == promql_parser.AggModifierType.Without
    return Aggregate(op, _convert(node.expr), tuple(sorted(set(modifier.labels))), without)


def _binary(node: promql_parser.BinaryExpr) -> Binary:
    op = str(node.op)
    if op not in ARITHMETIC and op not in COMPARISONS:
        raise unsupported(f"the {op} operator")
    modifier = node.modifier
    lhs, rhs = _convert(node.lhs), _convert(node.rhs)
    if modifier is None:
        return Binary(op, lhs, rhs)
    if modifier.card in (
        promql_parser.VectorMatchCardinality.ManyToOne,
        promql_parser.VectorMatchCardinality.OneToMany,
    ):
        raise unsupported("group_left and group_right")
    fill = modifier.fill_values
    if fill is not None and (fill.lhs is not None or fill.rhs is not None):
        raise unsupported("fill values in vector matching")
    matching = modifier.matching
    on = matching is not None and matching.type == promql_parser.LabelModifierType.Include
    labels = () if matching is None else tuple(sorted(set(matching.labels)))
    return Binary(op, lhs, rhs, modifier.return_bool, on, labels)
