"""Reading queries over a store: a `ReadingsQuery` answered as a `Page` of readings or buckets, cut by its
limit and saying so (`paging.py`), for the service (`use_cases.py`) and its blocking twin alike.

Each answer is read one beyond its limit, so that whether more match is known, not guessed: a page of
readings then ends with a cursor at its last reading, a page of buckets with one at the first bucket left
out. Buckets come oldest first only: `order=desc` with `step` is refused.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from ..domain.buckets import MAX_BUCKETS, Bucket, bucket_start, steps_before
from ..domain.paging import Cursor, Page
from ..domain.validation import ReadingsQuery, validate
from ..domain.values import Metric, MetricReading
from ..errors import ValidationError
from ..storage.base import Storage
from ..storage.rows import ReadingColumns, micros
from ..wire import MAX_READINGS_LIMIT

__all__ = [
    "bucket_page",
    "check_bucket_span",
    "column_page",
    "fresh_readings",
    "newest_readings",
    "next_query",
    "paging_query",
    "reading_page",
    "readings_query",
]


def readings_query(
    since: datetime | str | None,
    until: datetime | str | None,
    limit: int | None,
    step: float | str | None,
    order: str | None = None,
    cursor: str | None = None,
) -> ReadingsQuery:
    given = {"since": since, "until": until, "limit": limit, "step": step, "order": order, "cursor": cursor}
    return validate(ReadingsQuery, {name: value for name, value in given.items() if value is not None})


def paging_query(
    since: datetime | str | None, until: datetime | str | None, order: str, page_size: Any
) -> ReadingsQuery:
    """The first page's query of `iter_readings`: `page_size` readings a page."""
    if (
        isinstance(page_size, bool)
        or not isinstance(page_size, int)
        or not 1 <= page_size <= MAX_READINGS_LIMIT
    ):
        raise ValidationError(f"page_size must be an integer from 1 to {MAX_READINGS_LIMIT}")
    return readings_query(since, until, page_size, None, order)


def next_query(query: ReadingsQuery, page: Page[Any]) -> ReadingsQuery | None:
    """The query of the page after `page` (answered to `query`); None after the last."""
    if page.next_cursor is None:
        return None
    return query.model_copy(update={"cursor": Cursor.decode(page.next_cursor)})


def _cursor(query: ReadingsQuery, *, buckets: bool) -> Cursor | None:
    """The query's cursor, refused if it ended a page of the other kind."""
    cursor = query.cursor
    if cursor is not None and (cursor.reading_id is None) != buckets:
        given, wanted = ("readings", "without") if buckets else ("buckets", "with")
        raise ValidationError(f"cursor is from an answer of {given}: go on {wanted} step, as that query was")
    return cursor


async def reading_page(storage: Storage, metric_id: str, query: ReadingsQuery) -> Page[MetricReading]:
    """The readings of an existing metric that `query` asks for (its `step` not looked at)."""
    if query.since and query.until and query.since > query.until:
        raise ValidationError("since must not be later than until")
    cursor = _cursor(query, buckets=False)
    after = None if cursor is None or cursor.reading_id is None else (cursor.moment, cursor.reading_id)
    descending, limit = query.order == "desc", query.limit
    found = await storage.list_readings(metric_id, query.since, query.until, limit + 1, descending, after)
    if len(found) <= limit:
        return Page(found)
    last = found[limit - 1]
    return Page(found[:limit], Cursor(last.timestamp, last.id).encode())


async def column_page(
    storage: Storage, metric_id: str, query: ReadingsQuery
) -> tuple[ReadingColumns, ReadingsQuery | None]:
    """The readings of an existing metric that `query` asks for, ascending, as columns (`frame()`), and
    the query of the next page: past the last reading, as a cursor goes on (None after the last page)."""
    cursor = _cursor(query, buckets=False)
    after = None if cursor is None or cursor.reading_id is None else (cursor.moment, cursor.reading_id)
    columns = await storage.reading_columns(metric_id, query.since, query.until, query.limit, after)
    if columns.last is None or len(columns.times) < query.limit:
        return columns, None
    return columns, query.model_copy(update={"cursor": Cursor(*columns.last)})


async def bucket_page(storage: Storage, metric_id: str, query: ReadingsQuery, now: datetime) -> Page[Bucket]:
    """The buckets of an existing metric that `query` asks for: until defaults to `now` and since to
    `limit` steps before until (0001-01-01 at the earliest); a range of more than MAX_BUCKETS steps is
    refused. With a cursor, the buckets from the one it names on."""
    step = query.step
    if step is None:
        raise ValidationError("step is required")
    if query.order == "desc":
        raise ValidationError("order must be asc with step: buckets come oldest first")
    cursor = _cursor(query, buckets=True)
    until = query.until or now
    since = query.since or steps_before(until, step, query.limit)
    if since > until:
        raise ValidationError("since must not be later than until")
    if cursor is not None:
        since = max(since, cursor.moment)
        if since > until:  # the last page was the last
            return Page()
    check_bucket_span(since, until, step)
    found = await storage.bucket_readings(metric_id, since, until, step, query.limit + 1)
    if len(found) <= query.limit:
        return Page(found)
    return Page(found[: query.limit], Cursor(found[query.limit].start).encode())


def check_bucket_span(since: datetime, until: datetime, step: int, what: str = "since to until") -> None:
    """Refuse a range of more than MAX_BUCKETS steps (of `step` microseconds)."""
    spanned = bucket_start(micros(until), step) // step - bucket_start(micros(since), step) // step + 1
    if spanned > MAX_BUCKETS:
        raise ValidationError(
            f"step {step / 1e6:g} s from {what} spans {spanned} buckets, more than "
            f"{MAX_BUCKETS}: use a larger step or a shorter range"
        )


async def newest_readings(storage: Storage, metric_id: str, limit: int) -> Page[MetricReading]:
    """A metric's newest `limit` readings, ascending; cut if it has older ones, whose cursor then goes on
    to them with `order="desc"`."""
    found = await storage.list_readings(metric_id, limit=limit + 1, descending=True)
    kept = found[:limit][::-1]
    if len(found) <= limit:
        return Page(kept)
    return Page(kept, Cursor(kept[0].timestamp, kept[0].id).encode())


async def fresh_readings(
    storage: Storage, now: datetime, stale_after: float | None
) -> list[tuple[Metric, MetricReading]]:
    """Every metric with its newest reading, in creation order, read in one store call; with
    `stale_after` (seconds), only those whose newest reading is no older than that at `now`."""
    latest = await storage.latest_readings()
    if stale_after is None:
        return latest
    oldest = now - timedelta(seconds=stale_after)
    return [(metric, reading) for metric, reading in latest if reading.timestamp >= oldest]
