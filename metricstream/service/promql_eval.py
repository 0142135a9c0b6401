"""PromQL evaluation over a store: an expression (`domain/promql/syntax.py`) at every step of a grid of
times, node by node as Prometheus 2.42's engine evaluates it, each series read once per selector.

How a selector is read (docs/grafana.md tells the cost):
- an instant vector: the newest reading within the 5-minute lookback of each step, `window_values(last)`;
- `avg|min|max|sum|count|last_over_time` whose range is at most `SUMMARISED_OVERLAP` steps (or an
  instant query): the store summarises each window itself (SQL on SQLite), never reading it reading by
  reading;
- other range functions, and longer `_over_time` ranges: the series' readings over the whole query read
  in pages of `PAGE` and each window computed from them (`windows.range_function`), at most
  `MAX_BUFFERED` readings held at once.

Work happens a series (or a page) at a time, with the loop free in between: on SQLite each read is one
statement on the store's thread, where writes queue between them; a large page is computed in a worker
thread. A node's result may hold at most `MAX_POINTS` points.
"""

from __future__ import annotations

import asyncio
import bisect
from array import array
from collections.abc import Callable, Coroutine, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final, ParamSpec, TypeVar

from ..domain.promql.syntax import (
    Aggregate,
    Binary,
    Call,
    Expr,
    Matcher,
    Negate,
    Number,
    RangeSelector,
    Selector,
)
from ..domain.promql.vectors import (
    NAME,
    Labels,
    Scalar,
    Vector,
    aggregate,
    drop_name,
    negate,
    scalar_binary,
    vector_scalar_binary,
    vector_vector_binary,
)
from ..domain.promql.windows import OVER_TIME, Windows, range_function
from ..domain.values import Metric
from ..errors import EvaluationError, MetricStreamError
from ..storage.base import Storage
from ..storage.rows import moment

__all__ = [
    "LOOKBACK",
    "MAX_BUFFERED",
    "MAX_POINTS",
    "PAGE",
    "Evaluator",
    "Grid",
    "RawSeries",
    "labels_of",
    "selected",
]

# Prometheus's lookback for instant vectors: the newest reading at most 5 minutes before each step.
LOOKBACK: Final = 300_000_000
# Points (series times steps) a node's result may hold.
MAX_POINTS: Final = 2_000_000
# Readings read at once for a range function, and held at most (the windows of one page of steps).
PAGE: Final = 100_000
MAX_BUFFERED: Final = 2_000_000
# `_over_time` windows summarised by the store up to this many steps long: each reading is then read by at
# most this many windows, in C, which beats reading it once into Python.
SUMMARISED_OVERLAP: Final = 8
# Series read at once.
CONCURRENT_READS: Final = 4
# Readings of a page computed on the loop; a larger one goes to a worker thread.
_INLINE: Final = 20_000
P = ParamSpec("P")
T = TypeVar("T")

_TOO_MANY: Final = "query processing would load too many samples into memory in query execution"
_SAME_LABELS: Final = "vector cannot contain metrics with the same labelset"
_EARLIEST: Final = datetime.min.replace(tzinfo=UTC)
_LATEST: Final = datetime.max.replace(tzinfo=UTC)


@dataclass(frozen=True, slots=True)
class Grid:
    """The times a query is evaluated at, in microseconds: `start + i * step` for i below `count`."""

    start: int
    step: int
    count: int

    def times(self) -> range:
        return range(self.start, self.start + self.step * self.count, self.step)


@dataclass(frozen=True, slots=True)
class RawSeries:
    """A range selector's readings (an instant query of `x[5m]`): times in microseconds."""

    labels: Labels
    times: Sequence[int]
    values: Sequence[float]


def labels_of(metric: Metric) -> Labels:
    """A metric as a Prometheus series: its name as `__name__` among its labels, sorted."""
    return tuple(sorted([(NAME, metric.name), *metric.labels.items()]))


def selected(metrics: Sequence[Metric], matchers: Sequence[Matcher]) -> list[tuple[Labels, Metric]]:
    """The metrics every matcher takes (a label a metric lacks is the empty string), by labels."""
    found = []
    for metric in metrics:
        labels = labels_of(metric)
        pairs = dict(labels)
        if all(matcher.matches(pairs.get(matcher.name, "")) for matcher in matchers):
            found.append((labels, metric))
    return sorted(found, key=lambda pair: pair[0])


def _moment(micros: int) -> datetime:
    try:
        return moment(micros)
    except OverflowError:
        return _EARLIEST if micros < 0 else _LATEST


async def _each(reads: Iterable[Coroutine[Any, Any, T]]) -> list[T]:
    """Every read's result, in order, `CONCURRENT_READS` under way at once (a store with connections of
    its own reads several series at once; the others take them in turn)."""
    pending = list(reads)
    limit = asyncio.Semaphore(CONCURRENT_READS)

    async def read(work: Coroutine[Any, Any, T]) -> T:
        async with limit:
            await asyncio.sleep(0)  # a store that never waits (memory) lets the loop run between series
            return await work

    try:
        async with asyncio.TaskGroup() as group:
            tasks = [group.create_task(read(work)) for work in pending]
    except BaseExceptionGroup as failed:
        # The first refusal as itself (a 422, a 503), not wrapped: the others are the same kind of trouble.
        refusal = next((e for e in failed.exceptions if isinstance(e, MetricStreamError)), None)
        if refusal is not None:
            raise refusal from None
        raise
    finally:
        for work in pending:
            work.close()  # any not started, when another failed
    return [task.result() for task in tasks]


def _check_points(series: int, steps: int) -> None:
    if series * steps > MAX_POINTS:
        raise EvaluationError(
            f"{_TOO_MANY}: {series} series of {steps} steps, more than {MAX_POINTS:,} points"
        )


class Evaluator:
    """One query's evaluation: its store, the metrics it may select, its grid."""

    def __init__(self, storage: Storage, metrics: Sequence[Metric], grid: Grid) -> None:
        self.storage, self.metrics, self.grid = storage, metrics, grid

    async def evaluate(self, expr: Expr) -> Scalar | Vector:
        if isinstance(expr, Number):
            return [expr.value] * self.grid.count
        if isinstance(expr, Selector):
            return await self._instant(expr)
        if isinstance(expr, Call):
            return await self._call(expr)
        if isinstance(expr, Aggregate):
            vector = await self._vector(expr.expr)
            return await self._compute(aggregate, expr.op, vector, expr.labels, expr.without, self.grid.count)
        if isinstance(expr, Negate):
            value = await self.evaluate(expr.expr)
            return [-item for item in value] if isinstance(value, list) else negate(value)
        if isinstance(expr, Binary):
            return await self._binary(expr)
        raise EvaluationError("a range vector cannot be evaluated at every step of a query")

    async def _vector(self, expr: Expr) -> Vector:
        value = await self.evaluate(expr)
        assert isinstance(value, dict), "the parser checks argument types"
        return value

    async def _scalar(self, expr: Expr) -> Scalar:
        value = await self.evaluate(expr)
        assert isinstance(value, list), "the parser checks argument types"
        return value

    async def _instant(self, selector: Selector) -> Vector:
        found = selected(self.metrics, selector.matchers)
        _check_points(len(found), self.grid.count)
        windows = Windows(self.grid.start - selector.offset, self.grid.step, self.grid.count, LOOKBACK)
        read = await _each(self.storage.window_values(metric.id, windows, "last") for _, metric in found)
        out: Vector = {}
        for (labels, _), values in zip(found, read, strict=True):
            if any(value is not None for value in values):
                if labels in out:  # two metrics of one name and labels, made before labels identified them
                    raise EvaluationError(_SAME_LABELS)
                out[labels] = values
        return out

    async def _call(self, call: Call) -> Vector:
        argument = call.argument
        found = selected(self.metrics, argument.selector.matchers)
        _check_points(len(found), self.grid.count)
        grid = self.grid
        windows = Windows(grid.start - argument.selector.offset, grid.step, grid.count, argument.range)
        function = call.function.removesuffix("_over_time")
        overlap = argument.range <= SUMMARISED_OVERLAP * grid.step or grid.count == 1
        summarised = function in OVER_TIME and overlap
        read = await _each(
            self.storage.window_values(metric.id, windows, function)
            if summarised
            else self._from_readings(metric.id, function, windows)
            for _, metric in found
        )
        out: Vector = {}
        for (labels, _), values in zip(found, read, strict=True):
            if all(value is None for value in values):
                continue
            # last_over_time acts like an offset: the only range function that keeps the name
            key = labels if call.function == "last_over_time" else drop_name(labels)
            if key in out:
                raise EvaluationError(_SAME_LABELS)
            out[key] = values
        return out

    async def _from_readings(self, metric_id: str, function: str, windows: Windows) -> list[float | None]:
        """`function` of every window, from the series' readings read in pages, oldest first."""
        ends = list(windows.ends())
        since, until = _moment(ends[0] - windows.width), _moment(ends[-1])
        times, values = array("q"), array("d")
        after: tuple[datetime, str] | None = None
        exhausted, done = False, 0
        out: list[float | None] = []
        while done < len(ends):
            if not exhausted:
                await asyncio.sleep(0)  # between pages, whatever the store
                page = await self.storage.reading_columns(metric_id, since, until, PAGE, after)
                times.extend(page.times)
                values.extend(page.values)
                exhausted, after = len(page.times) < PAGE, page.last
                if len(times) > MAX_BUFFERED:
                    raise EvaluationError(f"{_TOO_MANY}: a window holds more than {MAX_BUFFERED:,} readings")
            # The windows that end before the newest reading read (it may have more at its time).
            ready = len(ends) if exhausted else bisect.bisect_left(ends, times[-1], done) if times else done
            if ready > done:
                arguments = (function, times, values, windows, ends[done:ready])
                if len(times) > _INLINE:
                    out.extend(await self._compute(range_function, *arguments))
                else:
                    out.extend(range_function(*arguments))
                done = ready
                if done < len(ends):
                    cut = bisect.bisect_left(times, ends[done] - windows.width)
                    del times[:cut], values[:cut]
        return out

    async def _binary(self, binary: Binary) -> Scalar | Vector:
        lhs, rhs = await self.evaluate(binary.lhs), await self.evaluate(binary.rhs)
        op, steps = binary.op, self.grid.count
        if isinstance(lhs, list) and isinstance(rhs, list):
            return scalar_binary(op, lhs, rhs)
        if isinstance(lhs, dict) and isinstance(rhs, list):
            return await self._compute(
                vector_scalar_binary, op, lhs, rhs, scalar_left=False, return_bool=binary.return_bool
            )
        if isinstance(lhs, list) and isinstance(rhs, dict):
            return await self._compute(
                vector_scalar_binary, op, rhs, lhs, scalar_left=True, return_bool=binary.return_bool
            )
        assert isinstance(lhs, dict), "the parser checks operand types"
        assert isinstance(rhs, dict), "the parser checks operand types"
        return await self._compute(
            vector_vector_binary, op, lhs, rhs, binary.on, binary.matching, binary.return_bool, steps
        )

    async def _compute(self, function: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        """A computation over many points in a worker thread, so that the loop goes on meanwhile."""
        await asyncio.sleep(0)
        return await asyncio.to_thread(function, *args, **kwargs)

    async def raw(self, argument: RangeSelector, time: int) -> list[RawSeries]:
        """The readings of a range selector at one time: an instant query's matrix."""
        end = time - argument.selector.offset
        out = []
        for labels, metric in selected(self.metrics, argument.selector.matchers):
            columns = await self.storage.reading_columns(
                metric.id, _moment(end - argument.range), _moment(end), MAX_BUFFERED + 1
            )
            if len(columns.times) > MAX_BUFFERED:
                raise EvaluationError(f"{_TOO_MANY}: a window holds more than {MAX_BUFFERED:,} readings")
            if columns.times:
                out.append(RawSeries(labels, columns.times, columns.values))
        if sum(len(series.times) for series in out) > MAX_POINTS:
            raise EvaluationError(f"{_TOO_MANY}: more than {MAX_POINTS:,} readings")
        return out
