"""PromQL text to the evaluated subset (`domain/promql/syntax.py`): what is taken, and what is refused by
name, never answered some other way."""

from __future__ import annotations

import pytest

from metricstream.domain.promql.syntax import (
    Aggregate,
    Binary,
    Call,
    Matcher,
    Negate,
    Number,
    RangeSelector,
    Selector,
    kind_of,
    parse_query,
    parse_selector,
)
from metricstream.errors import ValidationError


def test_the_subset_parses_into_the_typed_tree() -> None:
    expr = parse_query('sum by (job) (rate(http_requests_total{code=~"5.."}[5m] offset 1m)) / 2')
    assert isinstance(expr, Binary)
    assert expr.op == "/"
    assert expr.rhs == Number(2.0)
    assert isinstance(expr.lhs, Aggregate)
    assert (expr.lhs.op, expr.lhs.labels, expr.lhs.without) == ("sum", ("job",), False)
    call = expr.lhs.expr
    assert isinstance(call, Call)
    assert call.function == "rate"
    assert call.argument.range == 300_000_000
    selector = call.argument.selector
    assert selector.offset == 60_000_000
    assert [(m.name, m.op, m.value) for m in selector.matchers] == [
        ("code", "=~", "5.."),
        ("__name__", "=", "http_requests_total"),
    ]
    assert kind_of(expr) == "vector"
    assert kind_of(parse_query("1 + 2")) == "scalar"
    assert kind_of(parse_query("x[1m]")) == "matrix"
    assert isinstance(parse_query("-x"), Negate)
    assert parse_query("x offset -5m") == Selector((Matcher("__name__", "=", "x"),), -300_000_000)
    on = parse_query("a > bool on(b) c")
    assert isinstance(on, Binary)
    assert (on.on, on.matching, on.return_bool) == (True, ("b",), True)
    assert isinstance(parse_query("max_over_time(x[1m])"), Call)
    assert isinstance(parse_query("x[90s]"), RangeSelector)


@pytest.mark.parametrize(
    ("query", "named"),
    [
        ("histogram_quantile(0.9, x)", "function histogram_quantile"),
        ("abs(x)", "function abs"),
        ("topk(3, x)", "aggregation topk"),
        ("quantile(0.5, x)", "aggregation quantile"),
        ("x and y", "the and operator"),
        ("x or y", "the or operator"),
        ("x unless y", "the unless operator"),
        ("x @ 100", "the @ modifier"),
        ("rate(x[5m:1m])", "subqueries"),
        ("max_over_time(x[5m:])", "subqueries"),
        ('"text"', "string literals"),
        ("x * on(a) group_left y", "group_left and group_right"),
        ('x{a=~"[[:digit:]]"}', "POSIX class"),
    ],
)
def test_what_is_outside_the_subset_is_refused_by_name(query: str, named: str) -> None:
    with pytest.raises(ValidationError, match="unsupported in metricstream's PromQL subset") as refused:
        parse_query(query)
    assert named in str(refused.value)


@pytest.mark.parametrize("query", ["", "sum(", "1 > 2", "rate(x)", "x{", '{a=~".*"}', "x[0s]"])
def test_bad_syntax_is_the_parser_s_message(query: str) -> None:
    with pytest.raises(ValidationError, match="invalid PromQL"):
        parse_query(query)


def test_series_selectors_are_selectors_only() -> None:
    assert parse_selector('up{job="api"}').matchers[0] == Matcher("job", "=", "api")
    for text in ["rate(x[1m])", "x offset 1m", "1"]:
        with pytest.raises(ValidationError, match="not a series selector"):
            parse_selector(text)
