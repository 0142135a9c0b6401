"""The Prometheus HTTP API's use cases over a store: `query`, `query_range`, `series`, `labels`, label
values and `metadata`, from the parameters as Prometheus takes them to the `data` of its answer
(docs/grafana.md). Every metric is a series: its name as `__name__`, with its labels.

Limits, each refused with Prometheus's own error: at most `MAX_STEPS` steps per series of a range query
(Prometheus's 11,000), a step of at least a millisecond, the points and readings a query may hold
(`promql_eval.py`), and `QUERY_TIMEOUT` seconds of the app's clock (or the request's shorter `timeout`).
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine, Sequence
from typing import Any, Final, TypeVar

from ..clock import Clock
from ..domain.labels import LABEL_NAME
from ..domain.promql.encoding import (
    format_sample_value,
    format_scalar_value,
    format_seconds,
    millis_of,
    parse_duration,
    parse_time,
)
from ..domain.promql.syntax import Expr, RangeSelector, kind_of, parse_query, parse_selector
from ..domain.promql.vectors import Labels, Scalar, Vector
from ..domain.values import Metric
from ..errors import QueryTimeoutError, ValidationError
from ..storage.base import Storage
from ..storage.rows import moment
from .promql_eval import Evaluator, Grid, RawSeries, labels_of, selected

__all__ = ["MAX_STEPS", "QUERY_TIMEOUT", "PromQL"]

T = TypeVar("T")

MAX_STEPS: Final = 11_000
# Seconds a query may take (Prometheus's --query.timeout default).
QUERY_TIMEOUT: Final = 120.0
_MILLI: Final = 1_000  # microseconds
# Names Prometheus gives counters and histogram parts: their type is not known here.
_COUNTER_SUFFIXES: Final = ("_total", "_count", "_sum", "_bucket")


class PromQL:
    """The Prometheus API of one store, timed by one clock."""

    def __init__(self, storage: Storage, clock: Clock) -> None:
        self.storage, self.clock = storage, clock

    async def query(self, query: str | None, time: str | None, time_limit: str | None) -> dict[str, Any]:
        """`/api/v1/query`: the expression at one time (now by default)."""
        expr = _parse(query)
        at = millis_of(parse_time(time, "time")) if time else int(self.clock.time() * 1000)
        grid = Grid(at * _MILLI, _MILLI, 1)
        metrics = await self.storage.list_metrics()
        evaluator = Evaluator(self.storage, metrics, grid)
        if isinstance(expr, RangeSelector):
            raw = await self._within(time_limit, evaluator.raw(expr, grid.start))
            return {"resultType": "matrix", "result": await asyncio.to_thread(_raw, raw)}
        value = await self._within(time_limit, evaluator.evaluate(expr))
        if isinstance(value, list):
            return {
                "resultType": "scalar",
                "result": [format_seconds(grid.start), format_scalar_value(value[0])],
            }
        return {"resultType": "vector", "result": _instant_vector(value, grid.start)}

    async def query_range(
        self,
        query: str | None,
        start: str | None,
        end: str | None,
        step: str | None,
        time_limit: str | None,
    ) -> dict[str, Any]:
        """`/api/v1/query_range`: the expression at start, start + step, ... up to end."""
        first = parse_time(start or "", "start")
        last = parse_time(end or "", "end")
        if last < first:
            raise ValidationError("invalid parameter 'end': end timestamp must not be before start time")
        interval = parse_duration(step or "", "step")
        if interval <= 0:
            raise ValidationError(
                "invalid parameter 'step': zero or negative query resolution step widths are not accepted. "
                "Try a positive integer"
            )
        if (last - first) // interval > MAX_STEPS:
            raise ValidationError(
                "exceeded maximum resolution of 11,000 points per timeseries. Try decreasing the query "
                "resolution (?step=XX)"
            )
        step_millis = millis_of(interval)
        if step_millis < 1:
            raise ValidationError("invalid parameter 'step': the step must be at least 1ms")
        expr = _parse(query)
        if kind_of(expr) not in ("scalar", "vector"):
            raise ValidationError(
                'invalid expression type "range vector" for range query, must be Scalar or instant Vector'
            )
        start_millis = millis_of(first)
        count = (millis_of(last) - start_millis) // step_millis + 1
        grid = Grid(start_millis * _MILLI, step_millis * _MILLI, count)
        metrics = await self.storage.list_metrics()
        value: Scalar | Vector = await self._within(
            time_limit, Evaluator(self.storage, metrics, grid).evaluate(expr)
        )
        vector: Vector = {(): list(value)} if isinstance(value, list) else value
        # Formatting every point takes a while for a large answer: off the loop.
        return {"resultType": "matrix", "result": await asyncio.to_thread(_matrix, vector, grid)}

    async def _within(self, time_limit: str | None, work: Coroutine[Any, Any, T]) -> T:
        """`work`, cancelled after QUERY_TIMEOUT seconds of the clock (or the request's shorter timeout)."""
        seconds = QUERY_TIMEOUT
        try:
            if time_limit:
                seconds = min(seconds, parse_duration(time_limit, "timeout") / 1e9)
            async with self.clock.timeout(seconds):
                return await work
        except TimeoutError:
            raise QueryTimeoutError(
                f"query timed out in expression evaluation (after {seconds:g} s)"
            ) from None
        finally:
            work.close()  # never awaited if the timeout was refused

    async def series(
        self, matches: Sequence[str], start: str | None, end: str | None
    ) -> list[dict[str, str]]:
        """`/api/v1/series`: the series any `match[]` selects."""
        if not matches:
            raise ValidationError("no match[] parameter provided")
        return [dict(labels) for labels, _ in await self._matching(matches, start, end)]

    async def label_names(self, matches: Sequence[str], start: str | None, end: str | None) -> list[str]:
        """`/api/v1/labels`: every label name of the series (of those `match[]` selects)."""
        found = await self._matching(matches, start, end)
        return sorted({name for labels, _ in found for name, _ in labels})

    async def label_values(
        self, name: str, matches: Sequence[str], start: str | None, end: str | None
    ) -> list[str]:
        """`/api/v1/label/<name>/values`: the values `name` has."""
        if not LABEL_NAME.fullmatch(name):
            raise ValidationError(f"invalid label name: {name[:100]!r}")
        found = await self._matching(matches, start, end)
        return sorted({value for labels, _ in found for label, value in labels if label == name})

    async def metadata(
        self, metric: str | None, limit: str | None, limit_per_metric: str | None = None
    ) -> dict[str, list[dict[str, str]]]:
        """`/api/v1/metadata`: each metric name's unit and description (`help`)."""
        most, most_each = _number(limit, "limit"), _number(limit_per_metric, "limit_per_metric")
        found: dict[str, list[dict[str, str]]] = {}
        for item in await self.storage.list_metrics():
            if metric and item.name != metric:
                continue
            if item.name not in found and 0 <= most <= len(found):
                continue
            entry = {"type": _type_of(item.name), "help": item.description or "", "unit": item.unit or ""}
            entries = found.setdefault(item.name, [])
            if entry not in entries and not 0 <= most_each <= len(entries):
                entries.append(entry)
        return found

    async def _matching(
        self, matches: Sequence[str], start: str | None, end: str | None
    ) -> list[tuple[Labels, Metric]]:
        """The series any of `matches` selects (all without any), with a reading within [start, end] when
        either is given."""
        selectors = [parse_selector(match) for match in matches]
        since = moment(parse_time(start, "start") // 1000) if start else None
        until = moment(parse_time(end, "end") // 1000) if end else None
        metrics = await self.storage.list_metrics()
        if selectors:
            chosen = {metric.id for s in selectors for _, metric in selected(metrics, s.matchers)}
            metrics = [metric for metric in metrics if metric.id in chosen]
        if since is not None or until is not None:
            metrics = [m for m in metrics if await self.storage.list_readings(m.id, since, until, 1)]
        return sorted(((labels_of(metric), metric) for metric in metrics), key=lambda pair: pair[0])


def _parse(query: str | None) -> Expr:
    if not query:
        raise ValidationError(
            "invalid parameter 'query': unknown position: parse error: no expression found in input"
        )
    return parse_query(query)


def _number(text: str | None, name: str) -> int:
    """A limit parameter; -1 (none) when not given."""
    try:
        return int(text) if text else -1
    except ValueError:
        raise ValidationError(f"{name} must be a number") from None


def _type_of(name: str) -> str:
    """A metric's type as Prometheus's metadata says it: readings are gauges, but for names that say
    counter or histogram part, whose kind metricstream does not know."""
    return "unknown" if name.endswith(_COUNTER_SUFFIXES) else "gauge"


def _instant_vector(vector: Vector, time: int) -> list[dict[str, Any]]:
    at = format_seconds(time)
    return [
        {"metric": dict(labels), "value": [at, format_sample_value(values[0])]}
        for labels, values in sorted(vector.items())
        if values[0] is not None
    ]


def _matrix(vector: Vector, grid: Grid) -> list[dict[str, Any]]:
    times = [format_seconds(time) for time in grid.times()]
    return [
        {
            "metric": dict(labels),
            "values": [
                [times[step], format_sample_value(value)]
                for step, value in enumerate(values)
                if value is not None
            ],
        }
        for labels, values in sorted(vector.items())
    ]


def _raw(series: list[RawSeries]) -> list[dict[str, Any]]:
    return [
        {
            "metric": dict(item.labels),
            "values": [
                [format_seconds(time), format_sample_value(value)]
                for time, value in zip(item.times, item.values, strict=True)
            ],
        }
        for item in series
    ]
