"""The use cases: validate → store → log the event → broadcast.

`AsyncMetricService` runs on the server's event loop and is what the HTTP layer calls. `MetricService`
(`metric_service.py`) is its blocking twin for any other thread (a script, a notebook cell): each call runs
the async one on the server's loop, so both emit exactly the same events in one order, and bad input raises
the same errors with the messages the HTTP API returns. Every limit (docs/configuration.md#limits) is
checked here or in the store's write step, so it holds alike over HTTP and in Python.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import AsyncIterator, Iterable, Mapping, Sequence
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any, cast, overload

import orjson

from ..clock import Clock, SystemClock
from ..domain.buckets import Bucket
from ..domain.labels import Sample, has_labels, validate_labels
from ..domain.paging import Page
from ..domain.validation import (
    MetricsQuery,
    ReadingsQuery,
    validate,
    validate_metric,
)
from ..domain.values import DEFAULT_READINGS_LIMIT, Metric, MetricReading, Order, Snapshot
from ..errors import ConflictError, LimitExceededError, NotFoundError, ValidationError
from ..ids import new_id, new_ids
from ..storage.base import MetricLimitReached, NameTaken, Storage, is_shared
from ..stream.broadcaster import Broadcaster
from ..stream.log import Event
from ..wire import MAX_NAME_LENGTH, METRIC_CREATED, METRIC_DELETED, READING_CREATED
from .checks import Checked, ReadingRules, check_item, check_items, check_samples
from .identity import (
    Identity,
    MetricDetails,
    existing_or_conflict,
    identity_of,
    shared_name_message,
)
from .queries import (
    bucket_page,
    fresh_readings,
    newest_readings,
    next_query,
    paging_query,
    reading_page,
    readings_query,
)
from .tables import Library, MetricSelection, collect_table

__all__ = ["LOG_FORMS", "AsyncMetricService"]


log = logging.getLogger("metricstream")

# Seconds a write waits for its event to come back from a shared store.
ARRIVAL_TIMEOUT = 5.0
# log() given a mapping and a value too.
LOG_FORMS = "log takes a mapping of names to values, or a name and a value: not both"
# Tries of a write by name racing writes that create or delete metrics of its names.
_NAME_ATTEMPTS = 3


def _parse_id(metric_id: object, field: str = "id") -> str:
    """A metric id from a path or argument: any UUID is looked up; anything else is a 400."""
    if isinstance(metric_id, uuid.UUID):
        return str(metric_id)
    try:
        return str(uuid.UUID(str(metric_id)))
    except ValueError:
        raise ValidationError(f"{field} must be a UUID, got {str(metric_id)[:100]!r}") from None


def _batch_message(errors: list[dict[str, object]], total: int) -> str:
    shown = "; ".join(f"readings[{e['index']}]: {e['error']}" for e in errors[:3])
    more = f"; and {len(errors) - 3} more" if len(errors) > 3 else ""
    return f"{len(errors)} of {total} readings rejected, none stored: {shown}{more}"


def _metric_limit_message(max_metrics: int | None) -> str:
    return f"metric limit reached: this server holds at most {max_metrics} metrics (the max_metrics setting)"


def _given(**fields: Any) -> dict[str, Any]:
    return {name: value for name, value in fields.items() if value is not None}


class AsyncMetricService:
    """Metric use cases on the server's event loop."""

    def __init__(
        self,
        storage: Storage,
        broadcaster: Broadcaster,
        *,
        clock: Clock | None = None,
        max_batch: int | None = None,
        max_name_length: int = MAX_NAME_LENGTH,
        max_metrics: int | None = None,
        max_readings_per_metric: int | None = None,
        positive_only: bool = True,
        reading_ttl: float | None = None,
        max_future: float | None = None,
    ) -> None:
        self.storage = storage
        # A shared store's own log publishes its writes.
        self._shared = is_shared(storage)
        self.broadcaster = broadcaster
        self.clock = clock or SystemClock()
        # None lifts a limit (max_future: any time ahead; reading_ttl: any age);
        # positive_only=False takes any finite value, 0 and below too.
        self.max_batch = max_batch
        self.max_name_length = max_name_length
        self.max_metrics = max_metrics
        self.max_readings_per_metric = max_readings_per_metric
        self.positive_only = positive_only
        self.reading_ttl = reading_ttl
        self.max_future = max_future
        # With a shared store: writes awaiting their event.
        self._arrivals: dict[str, asyncio.Future[None]] = {}
        # Ids are made and stored under one lock, so this process's events reach the log in id order
        # even when a store's writes could overtake each other (several Redis connections).
        self._writing = asyncio.Lock()
        # identity -> id of the one metric of that name and labels, for writes by name; forgotten when
        # any metric of that name and labels is created or deleted (as events say, from every process on
        # a shared store)
        self._names_seen: dict[Identity, str] = {}

    def _published(self, events: list[Event]) -> None:
        """Publish a just-stored write's events, still under `_writing`, so that a snapshot (read under it
        too) sees data and stream position together. A shared store publishes from its own log instead."""
        if not self._shared:
            self._forget_names(events)
            self.broadcaster.publish(events)

    def _forget_names(self, events: list[Event]) -> None:
        if not self._names_seen:
            return
        for event in events:
            if event.type == METRIC_CREATED:  # keyed by name_key: another process may be older
                body = orjson.loads(event.body)
                self._names_seen.pop(identity_of(body["name"], body.get("labels") or {}), None)
            elif event.type == METRIC_DELETED:
                for name in [n for n, metric_id in self._names_seen.items() if metric_id == event.metric_id]:
                    del self._names_seen[name]

    async def _announce(self, events: list[Event]) -> None:
        """With a shared store, wait until a write's events come back from its log, so that once a write
        returns, this process's stream position includes it."""
        if self._shared:
            await self._arrival(events[-1].id)

    async def _arrival(self, event_id: str) -> None:
        """Wait until the event `event_id`, stored in the shared store, is in this process's log."""
        if self.broadcaster.log.position_after(event_id) is not None:
            return
        arrival = self._arrivals.setdefault(event_id, asyncio.get_running_loop().create_future())
        try:
            async with asyncio.timeout(ARRIVAL_TIMEOUT):
                await arrival
        except TimeoutError:
            # Stored all the same; the follower will publish it when it can.
            log.warning("event %s not yet back from the shared store", event_id)
        finally:
            self._arrivals.pop(event_id, None)

    def receive(self, events: list[Event]) -> None:
        """Events read from a shared store's log, in its order: publish them here."""
        self._forget_names(events)
        self.broadcaster.publish(events)
        for event in events:
            arrival = self._arrivals.get(event.id)
            if arrival is not None and not arrival.done():
                arrival.set_result(None)

    def lost(self) -> None:
        """Some events expired before this process read them: every client must reset."""
        self.broadcaster.forget_history()

    @property
    def last_event_id(self) -> str:
        """Where the stream stands: the newest event id (the nil UUID before any event). Read it
        before reading data, then resume a stream from it: nothing is missed."""
        return self.broadcaster.log.position_id

    # --- the HTTP layer's entry points: request bodies in, the answers' parts out ---------------------

    async def write_metric(self, data: Mapping[str, Any]) -> tuple[Metric, bool]:
        """Create a metric from a `POST /metrics` body; and whether it was created. A metric of the same
        name and labels is answered in its place (nothing announced) if the body gives the same
        input_frequency, unit and description, else refused (`ConflictError`): a repeated create, a re-run
        cell or a restarted sensor, works the first time as the next."""
        fields = validate_metric(data, self.max_name_length)
        wanted = Metric(
            "", fields.name, fields.input_frequency, fields.labels, fields.unit, fields.description
        )
        for attempt in range(_NAME_ATTEMPTS):
            existing = await self.storage.find_metrics(wanted.name, wanted.labels)
            if existing:
                return existing_or_conflict(existing, wanted), False
            async with self._writing:
                metric = replace(wanted, id=new_id())
                event = Event.create(METRIC_CREATED, metric, self.clock.time())
                try:
                    if not await self.storage.add_metric(metric, event, self.max_metrics):
                        raise LimitExceededError(_metric_limit_message(self.max_metrics))
                except NameTaken:  # created meanwhile by another writer: answer that one
                    if attempt == _NAME_ATTEMPTS - 1:
                        message = f"metric {wanted.name!r} was created and deleted meanwhile; try again"
                        raise ConflictError(message) from None
                    continue
                self._published([event])
            await self._announce([event])
            return metric, True
        raise AssertionError("unreachable")

    async def write_reading(self, item: Mapping[str, Any]) -> tuple[MetricReading, Event]:
        """Create one reading (`POST /metrics/readings`, `create_reading`, `log`) and return it with its
        event: what `write_readings([item])` stores and announces, with the item's own message for a
        refusal rather than a batch's. A reading of a metric given by id, the common case, skips a
        batch's columns, name lookups and retries."""
        try:
            fields = check_item(item, self.positive_only, self.max_name_length, self._rules)
        except ValidationError as error:
            raise ValidationError(error.message) from None
        if fields.metric_id is None:  # by name: may create its metric, as a batch does
            checked = Checked()
            checked.take(fields)
            readings, events = await self._write_checked(checked, [], 1, {})
            return readings[0], events[0]
        return await self._store_reading(fields.metric_id, fields.value, fields.timestamp)

    async def write_readings(
        self,
        items: Sequence[Mapping[str, Any]],
        *,
        details: Mapping[Identity, MetricDetails] | None = None,
    ) -> tuple[list[MetricReading], list[Event]]:
        """Create readings all or nothing and return them with their events (whose `body` is each
        reading's JSON). A rejected batch raises with one error per bad item in `errors`. An item may name
        its metric (`metric`) in place of its id: a name no metric has creates one, announced first, with
        its unit and description from `details` if it is there (a foreign write's)."""
        self._check_batch_size(len(items))
        checked, refusals = check_items(items, self._rules())
        return await self._write_checked(checked, refusals, len(items), details or {})

    async def write_samples(
        self, samples: Sequence[Sample], details: Mapping[Identity, MetricDetails] | None = None
    ) -> tuple[list[MetricReading], list[Event]]:
        """`write_readings` for a foreign write's samples, each written by its name and labels: the same
        checks, errors and events, without a JSON item per sample."""
        self._check_batch_size(len(samples))
        checked, refusals = check_samples(samples, self._rules())
        return await self._write_checked(checked, refusals, len(samples), details or {})

    def _check_batch_size(self, count: int) -> None:
        if self.max_batch is not None and count > self.max_batch:
            raise ValidationError(f"at most {self.max_batch} readings per batch, got {count}")

    def _rules(self) -> ReadingRules:
        return ReadingRules.at(
            self.clock,
            positive_only=self.positive_only,
            max_name_length=self.max_name_length,
            reading_ttl=self.reading_ttl,
            max_future=self.max_future,
        )

    async def _write_checked(
        self,
        checked: Checked,
        refusals: list[dict[str, object]],
        total: int,
        details: Mapping[Identity, MetricDetails],
    ) -> tuple[list[MetricReading], list[Event]]:
        if refusals:
            raise ValidationError(_batch_message(refusals, total), refusals)
        if not checked:
            return [], []
        for attempt in range(_NAME_ATTEMPTS):
            await self._require_all(checked.metric_ids)
            ids_by_name = await self._resolve_names(checked.wanted)
            try:
                _, readings, events = await self._store_readings(checked, ids_by_name, details)
                return readings, events
            except (NameTaken, NotFoundError):
                # another write created a name, or deleted a metric found by name, since we looked
                if attempt == _NAME_ATTEMPTS - 1 or not ids_by_name:
                    raise
                self._names_seen.clear()
        raise AssertionError("unreachable")

    def _expire_before(self, now: float) -> datetime | None:
        """The oldest timestamp a reading may have under `reading_ttl` at `now` (None: any)."""
        return None if self.reading_ttl is None else datetime.fromtimestamp(now - self.reading_ttl, UTC)

    async def _require_all(self, metric_ids: Sequence[str | None]) -> None:
        """Refuse, as one error per item, readings of metrics given by an id no metric has."""
        missing = []
        for metric_id in dict.fromkeys(metric_ids):
            if metric_id is not None and await self.storage.get_metric(metric_id) is None:
                missing.append(metric_id)
        if not missing:
            return
        errors: list[dict[str, object]] = [
            {"index": index, "error": f"metric {metric_id} not found"}
            for index, metric_id in enumerate(metric_ids)
            if metric_id in missing
        ]
        raise NotFoundError(_batch_message(errors, len(metric_ids)), errors)

    async def _resolve_names(
        self, wanted: Mapping[Identity, tuple[str, dict[str, str]]]
    ) -> dict[Identity, str | None]:
        """Each wanted metric's id, None for a name and labels no metric has; `ConflictError` for a name
        and labels several have."""
        ids: dict[Identity, str | None] = {}
        for key, (name, labels) in wanted.items():
            if key in self._names_seen:
                ids[key] = self._names_seen[key]
                continue
            metrics = await self.storage.find_metrics(name, labels)
            if len(metrics) > 1:
                raise ConflictError(shared_name_message(name, labels, len(metrics)))
            ids[key] = metrics[0].id if metrics else None
            if metrics:
                self._names_seen[key] = metrics[0].id
        return ids

    async def _store_reading(
        self, metric_id: str, value: float, timestamp: datetime | None
    ) -> tuple[MetricReading, Event]:
        """`_store_readings` for one reading of a metric given by id: the same ids, stamps, store step and
        publishing, without a batch's lists. The store's own step finds a metric missing, which spares a
        look-up before every write (a round trip on SQLite and Redis)."""
        async with self._writing:
            created = self.clock.time()
            reading_id, event_id = new_ids(2)
            moment = timestamp or datetime.fromtimestamp(created, UTC)
            reading = MetricReading(reading_id, metric_id, value, moment)
            event = Event.create(READING_CREATED, reading, created, event_id)
            keep, expire_before = self.max_readings_per_metric, self._expire_before(created)
            try:
                await self.storage.add_reading(reading, event, keep, expire_before)
            except NotFoundError:  # none by that id, or deleted meanwhile: nothing stored
                raise NotFoundError(f"metric {metric_id} not found") from None
            self._published([event])
        if self._shared:  # as `_announce`, without a coroutine for nothing on a store of this process
            await self._arrival(event.id)
        return reading, event

    async def _store_readings(
        self,
        checked: Checked,
        ids_by_name: Mapping[Identity, str | None],
        details: Mapping[Identity, MetricDetails],
    ) -> tuple[list[Metric], list[MetricReading], list[Event]]:
        """Store the readings, and before them the metrics of names and labels no metric has, with their
        events; the metrics created, the readings, and the readings' events."""
        wanted = checked.wanted
        async with self._writing:
            created = self.clock.time()
            now = datetime.fromtimestamp(created, UTC)
            unknown = [key for key, metric_id in ids_by_name.items() if metric_id is None]
            ids = new_ids(2 * len(unknown) + 2 * len(checked))
            metrics = [
                Metric(ids[2 * i], wanted[key][0], None, wanted[key][1], *details.get(key, (None, None)))
                for i, key in enumerate(unknown)
            ]
            events = [Event.create(METRIC_CREATED, m, created, ids[2 * i + 1]) for i, m in enumerate(metrics)]
            metric_of = {key: metric_id for key, metric_id in ids_by_name.items() if metric_id is not None}
            metric_of.update(zip(unknown, [metric.id for metric in metrics], strict=True))
            targets = [
                metric_id or metric_of[cast(Identity, key)]
                for metric_id, key in zip(checked.metric_ids, checked.keys, strict=True)
            ]
            ids = ids[2 * len(unknown) :]
            stamps = [timestamp or now for timestamp in checked.timestamps]
            readings = list(map(MetricReading, ids[0::2], targets, checked.values, stamps))
            events += Event.announcing(READING_CREATED, readings, created, ids[1::2])
            try:
                await self.storage.add_readings(
                    readings,
                    events,
                    self.max_readings_per_metric,
                    metrics,
                    self.max_metrics,
                    self._expire_before(created),
                )
            except MetricLimitReached:
                raise LimitExceededError(_metric_limit_message(self.max_metrics)) from None
            self._published(events)
        await self._announce(events)
        return metrics, readings, events[len(metrics) :]

    # --- the Python API: the same names and signatures as `MetricService`, as coroutines --------------

    async def create_metric(
        self,
        name: str,
        input_frequency: float | None = None,
        *,
        labels: Mapping[str, str] | None = None,
        unit: str | None = None,
        description: str | None = None,
    ) -> Metric:
        """Create a metric; the one of that name and labels if it exists with the same input_frequency,
        unit and description (`ConflictError` if they differ)."""
        given = _given(input_frequency=input_frequency, labels=labels, unit=unit, description=description)
        return (await self.write_metric({"name": name, **given}))[0]

    async def create_reading(
        self, metric_id: str, value: float, timestamp: datetime | str | None = None
    ) -> MetricReading:
        item = {"metric_id": metric_id, "value": value, **_given(timestamp=timestamp)}
        return (await self.write_reading(item))[0]

    async def create_readings(self, items: Iterable[Mapping[str, Any]]) -> list[MetricReading]:
        """Create readings all or nothing: every item is checked before any is stored."""
        if isinstance(items, str | bytes | bytearray | Mapping) or not isinstance(items, Iterable):
            raise ValidationError(
                f"readings must be a list of readings (dicts like the HTTP body), got {type(items).__name__}"
            )
        return (await self.write_readings(list(items)))[0]

    @overload
    async def log(
        self,
        name: str,
        value: float,
        timestamp: datetime | str | None = None,
        *,
        labels: Mapping[str, str] | None = None,
    ) -> MetricReading: ...

    @overload
    async def log(
        self,
        name: Mapping[str, float],
        *,
        timestamp: datetime | str | None = None,
        labels: Mapping[str, str] | None = None,
    ) -> list[MetricReading]: ...

    async def log(
        self,
        name: str | Mapping[str, float],
        value: float | None = None,
        timestamp: datetime | str | None = None,
        *,
        labels: Mapping[str, str] | None = None,
    ) -> MetricReading | list[MetricReading]:
        """Record a reading of the metric named `name` with `labels`, created first if no metric has that
        name and those labels; or, given a mapping of names to values, one batch of them, every one with
        `labels` (see `MetricService.log`)."""
        if not isinstance(name, Mapping):
            return await self.log_one(name, value, timestamp, labels)
        if value is not None:
            raise ValidationError(LOG_FORMS)
        return await self.log_many(name, timestamp, labels)

    async def log_one(
        self, name: str, value: object, timestamp: datetime | str | None, labels: Mapping[str, str] | None
    ) -> MetricReading:
        item = {"metric": name, "value": value, **_given(timestamp=timestamp, labels=labels)}
        return (await self.write_reading(item))[0]

    async def log_many(
        self, values: Mapping[str, float], timestamp: datetime | str | None, labels: Mapping[str, str] | None
    ) -> list[MetricReading]:
        # Without a timestamp every item gets the one `now` of its write: the readings line up.
        given = _given(timestamp=timestamp, labels=labels)
        return (await self.write_readings([{"metric": n, "value": v, **given} for n, v in values.items()]))[0]

    async def metric(self, name: str, *, labels: Mapping[str, str] | None = None) -> Metric:
        """The metric named `name` with `labels`, created (and announced) if no metric has that name and
        those labels; `ConflictError` if several have them."""
        fields = validate_metric({"name": name, **_given(labels=labels)}, self.max_name_length)
        key = identity_of(fields.name, fields.labels)
        wanted = {key: (fields.name, fields.labels)}
        for attempt in range(_NAME_ATTEMPTS):
            metric_id = (await self._resolve_names(wanted))[key]
            try:
                if metric_id is not None:
                    return await self._require(metric_id)
                return (await self._store_readings(Checked(wanted=wanted), {key: None}, {}))[0][0]
            except (NameTaken, NotFoundError):  # created or deleted meanwhile: look again
                self._names_seen.pop(key, None)
                if attempt == _NAME_ATTEMPTS - 1:
                    raise
        raise AssertionError("unreachable")

    async def get_metric(self, metric_id: str) -> Metric:
        return await self._require(_parse_id(metric_id))

    async def delete_metric(self, metric_id: str) -> None:
        """Remove a metric and its readings; announced as `metric_deleted` with `{"id": ...}`. Events
        published before stay in the retained log and replay as they were."""
        metric_id = _parse_id(metric_id)
        body = orjson.dumps({"id": metric_id})
        async with self._writing:
            event = Event.restore(new_id(), METRIC_DELETED, metric_id, body, self.clock.time())
            if not await self.storage.delete_metric(metric_id, event):
                raise NotFoundError(f"metric {metric_id} not found")
            self._published([event])
        await self._announce([event])

    async def list_metrics(
        self, name: str | None = None, *, labels: Mapping[str, str] | None = None
    ) -> list[Metric]:
        """Every metric in creation order; with `name`, those with exactly that name; with `labels`, those
        whose labels include all these pairs (`{"host": "a"}` matches cpu{host=a} and mem{host=a,dc=x})."""
        wanted = validate_labels(labels) if labels is not None else {}
        if name is None:
            metrics = await self.storage.list_metrics()
        else:
            metrics = await self.storage.find_metrics(validate(MetricsQuery, {"name": name}).name or "")
        return [metric for metric in metrics if has_labels(metric.labels, wanted)] if wanted else metrics

    async def snapshot(self, readings_limit: int = DEFAULT_READINGS_LIMIT) -> Snapshot:
        """Every metric with its newest `readings_limit` readings, and the stream position they are
        current at, read in one step: this process makes no write in between. Follow the stream from
        `last_event_id` and every later change arrives, none already in the snapshot. (With a store
        shared by several processes, another process's write can land in both: apply events by id.)"""
        limit = validate(MetricsQuery, {"readings_limit": readings_limit}).readings_limit
        async with self._writing:
            position = self.last_event_id
            pairs = [pair async for pair in self.iter_metrics_with_readings(limit)]
        return Snapshot([metric for metric, _ in pairs], {m.id: r for m, r in pairs}, position)

    async def latest_readings(self, stale_after: float | None = None) -> list[tuple[Metric, MetricReading]]:
        """Every metric with its newest reading, in creation order; with `stale_after`, only those whose
        newest reading is at most that many seconds old by the clock (`GET /metrics/export`)."""
        now = datetime.fromtimestamp(self.clock.time(), UTC)
        return await fresh_readings(self.storage, now, stale_after)

    async def iter_metrics_with_readings(
        self, readings_limit: int, name: str | None = None, labels: Mapping[str, str] | None = None
    ) -> AsyncIterator[tuple[Metric, Page[MetricReading]]]:
        """Every metric (with `name` and `labels`, those `list_metrics` gives) with its newest
        `readings_limit` readings, ascending (`truncated` if it has older ones), a metric at a time,
        letting the loop run between two."""
        for metric in await self.list_metrics(name, labels=labels):
            yield metric, await newest_readings(self.storage, metric.id, readings_limit)
            await asyncio.sleep(0)

    @overload
    async def list_readings(
        self,
        metric_id: str,
        since: datetime | str | None = None,
        until: datetime | str | None = None,
        limit: int | None = None,
        step: None = None,
        *,
        order: Order = "asc",
        cursor: str | None = None,
    ) -> Page[MetricReading]: ...

    @overload
    async def list_readings(
        self,
        metric_id: str,
        since: datetime | str | None = None,
        until: datetime | str | None = None,
        limit: int | None = None,
        *,
        step: float | str,
        order: Order = "asc",
        cursor: str | None = None,
    ) -> Page[Bucket]: ...

    async def list_readings(
        self,
        metric_id: str,
        since: datetime | str | None = None,
        until: datetime | str | None = None,
        limit: int | None = None,
        step: float | str | None = None,
        *,
        order: Order = "asc",
        cursor: str | None = None,
    ) -> Page[MetricReading] | Page[Bucket]:
        query = readings_query(since, until, limit, step, order, cursor)
        if query.step is None:
            return await self.query_readings(metric_id, query)
        return await self.query_buckets(metric_id, query)

    def iter_readings(
        self,
        metric_id: str,
        since: datetime | str | None = None,
        until: datetime | str | None = None,
        *,
        order: Order = "asc",
        page_size: int = DEFAULT_READINGS_LIMIT,
    ) -> AsyncIterator[MetricReading]:
        """Every reading of the metric within [since, until], in `order`, read `page_size` at a time."""
        return self._iter_pages(metric_id, paging_query(since, until, order, page_size))

    async def _iter_pages(self, metric_id: str, query: ReadingsQuery | None) -> AsyncIterator[MetricReading]:
        while query is not None:
            page = await self.query_readings(metric_id, query)
            for reading in page:
                yield reading
            query = next_query(query, page)

    async def query_readings(self, metric_id: str, query: ReadingsQuery) -> Page[MetricReading]:
        """A metric's readings as `query` asks (its `step` is not looked at), cut by its limit."""
        metric = await self.get_metric(metric_id)
        return await reading_page(self.storage, metric.id, query)

    async def query_buckets(self, metric_id: str, query: ReadingsQuery) -> Page[Bucket]:
        """A metric's buckets of `query.step`, cut by its limit (see `queries.bucket_page`)."""
        metric = await self.get_metric(metric_id)
        now = datetime.fromtimestamp(self.clock.time(), UTC)
        return await bucket_page(self.storage, metric.id, query, now)

    async def buckets_at(self, metric_id: str, query: ReadingsQuery) -> tuple[Page[Bucket], str]:
        """`query_buckets` and the stream position they are current at, read in one step (as `snapshot`
        is): a client adding streamed readings after that position to the buckets counts none twice,
        since a bucket, unlike a reading, cannot be recognised by its id."""
        async with self._writing:
            if not is_shared(self.storage):
                position = self.last_event_id
                return await self.query_buckets(metric_id, query), position
            # The log lags a shared store: take the store's own newest event, once this process's log
            # holds it. This process's writes are all in one or the other; another process's write
            # landing between the two reads is not (as with `snapshot`).
            buckets = await self.query_buckets(metric_id, query)
            newest = await self.storage.newest_event_id()
            if newest is None:
                return buckets, self.last_event_id
            await self._arrival(newest)
            return buckets, newest

    async def frame(
        self,
        metrics: MetricSelection = None,
        since: datetime | str | None = None,
        until: datetime | str | None = None,
        step: float | str | None = None,
        library: Library = "pandas",
        *,
        label_columns: bool = False,
    ) -> Any:
        """Every matching reading (or bucket) as one table; see `MetricService.frame`. The table is
        built off the loop, in a worker thread."""
        table = await collect_table(self, metrics, since, until, step, library, label_columns)
        return await asyncio.to_thread(table.build)

    async def _require(self, metric_id: str) -> Metric:
        metric = await self.storage.get_metric(metric_id)
        if metric is None:
            raise NotFoundError(f"metric {metric_id} not found")
        return metric
