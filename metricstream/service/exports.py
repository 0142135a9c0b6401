"""Exports: every reading (or bucket) of some metrics as one file, CSV, JSON, Arrow IPC or Parquet, in
`frame()`'s columns, produced page by page from the store and handed on as it is made, so that neither
the server nor its loop holds or works on more than a page at a time.

An export is first checked and planned (`start_export`), before any byte of it is sent: the format (pyarrow
for Arrow and Parquet), the time range, each metric's range of buckets (at most MAX_BUCKETS, as for
`list_readings(step=...)`), read from its first and last readings where since or until is not given. The
stream position is read before the metrics are listed, so a stream resumed from it misses nothing the
export does not hold (a reading written meanwhile may be in both: see docs/protocol.md#exports). Then
`export_chunks` reads each metric's pages (`tables.frame_page`, as `frame()` does) and encodes each in a
worker thread. A metric deleted while it is exported ends its rows there; its `metric_deleted` event follows
the position.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

import anyio.to_thread

from ..domain.exports import ARROW_FORMATS, ExportFormat
from ..domain.validation import ReadingsQuery
from ..domain.values import Metric
from ..errors import NotFoundError, ValidationError
from ..wire import MAX_READINGS_LIMIT
from .export_formats import open_encoder, require_pyarrow
from .queries import check_bucket_span
from .tables import Service, frame_page, span_query

__all__ = ["Export", "ExportService", "export_chunks", "start_export"]


class ExportService(Service, Protocol):
    """What an export reads through: `AsyncMetricService`."""

    @property
    def last_event_id(self) -> str: ...

    async def list_metrics(
        self, name: str | None = None, *, labels: Mapping[str, str] | None = None
    ) -> list[Metric]: ...


@dataclass(frozen=True, slots=True)
class Export:
    """A checked export, ready to be produced: its format, the stream position read before its data,
    whether it holds buckets, and each metric with the query of its first page."""

    format: ExportFormat
    position: str
    buckets: bool
    parts: tuple[tuple[Metric, ReadingsQuery], ...]


async def start_export(
    service: ExportService,
    format: ExportFormat,
    window: ReadingsQuery,
    choose: Callable[[], Awaitable[Sequence[Metric]]],
) -> Export:
    """The export of the metrics `choose` gives, within `window`'s since, until and step (its paging left
    aside); anything that would refuse it is raised here."""
    if format in ARROW_FORMATS:
        require_pyarrow(format)
    if window.since and window.until and window.since > window.until:
        raise ValidationError("since must not be later than until")
    first = window.model_copy(update={"limit": MAX_READINGS_LIMIT, "cursor": None, "order": "asc"})
    # Before the metrics are listed: a metric created later is announced after it.
    position = service.last_event_id
    parts = []
    for metric in await choose():
        try:
            query = await _first_query(service, metric, first)
        except NotFoundError:  # deleted since it was listed
            continue
        if query is not None:
            parts.append((metric, query))
    return Export(format, position, first.step is not None, tuple(parts))


async def _first_query(service: ExportService, metric: Metric, first: ReadingsQuery) -> ReadingsQuery | None:
    """The query of the metric's first page; with a step, with since and until at its first and last
    readings where not given (None if it has none), its range of buckets checked."""
    if first.step is None:
        return first
    query = await span_query(service, metric.id, first)
    if query.since is None or query.until is None or query.since > query.until:
        return None
    what = f"{'since' if first.since else 'the first reading'} to {'until' if first.until else 'the last'}"
    if first.since is None or first.until is None:
        what += f" of metric {metric.id}"
    check_bucket_span(query.since, query.until, first.step, what)
    return query


async def export_chunks(service: ExportService, export: Export) -> AsyncIterator[bytes]:
    """The export's file, in pieces: what each page adds (none empty), then its end."""
    encoder = await anyio.to_thread.run_sync(open_encoder, export.format, export.buckets)
    for metric, first in export.parts:
        query: ReadingsQuery | None = first
        while query is not None:
            try:
                page, query = await frame_page(service, metric.id, query)
            except NotFoundError:  # deleted meanwhile
                break
            piece = await anyio.to_thread.run_sync(encoder.page, metric, page)
            if piece:
                yield piece
    yield await anyio.to_thread.run_sync(encoder.end)
