"""Redis storage: several server processes, one store, one stream of events in one global order.

Each write stores data and events in one Lua script (`redis_scripts.py`): atomic, one round trip, its
limits checked inside, so processes sharing one Redis cannot overshoot them. No process publishes its own
writes: each follows the event stream (`XREAD BLOCK`) and publishes what it reads, so every client of every
process sees one order; the global sequence number on each entry tells a follower when entries it never
read were trimmed, and only then are its clients reset. When Redis goes away, writes fail at once
(`UnavailableError`, 503), the follower retries with backoff, and open streams stay up.
docs/architecture.md (Stores) lays out the keys.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import replace
from datetime import datetime
from typing import Any, Final
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import orjson
import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import RedisError

from ..cancellation import raise_if_cancelled
from ..domain.buckets import Bucket, BucketBuilder, bucket_start, overflowed, shift_for
from ..domain.labels import canonical_labels
from ..domain.names import name_key
from ..domain.promql.windows import Windows
from ..domain.values import Metric, MetricReading
from ..errors import NotFoundError, UnavailableError
from ..stream.log import Event, Mark, RetainedLog
from .base import EXPIRED_PER_WRITE, MetricLimitReached, NameTaken
from .redis_scripts import BUCKETS, INDEX_NAMES, NAMES_IN_NFC, READINGS, TRIM, TRIM_OLDER, WRITE
from .rows import ReadingColumns, columns_of, micros, reading_from_dict
from .windows import read_windows

__all__ = ["RedisStorage"]

log = logging.getLogger("metricstream.redis")

_FOLLOW_BLOCK_MS: Final = 1000
_FOLLOW_BATCH: Final = 2000
# Entries published at once at most, when far behind.
_FOLLOW_MOST: Final = 50_000
# Readings summarised per script call: several ms of Redis each.
_BUCKET_CHUNK: Final = 5_000

_OK: Final = 1
_CHECK_FAILED: Final = {0: "below", -1: "present", -2: "free"}  # the script's refusals


@contextlib.contextmanager
def _unavailable_on_error() -> Iterator[None]:
    """A Redis failure inside becomes `UnavailableError` (HTTP 503), its message saying why."""
    try:
        yield
    except RedisError as error:
        raise UnavailableError(f"the store (Redis) is unavailable: {error}") from None


class RedisStorage:
    """Storage in Redis at `url`, shared by every process that uses the same URL and key prefix.

    The prefix (default `metricstream:`) can be given in the URL, `redis://host:6379/0?prefix=lab:`,
    so several independent deployments can share one Redis.
    """

    def __init__(self, url: str, event_ttl: float = 60.0, prefix: str | None = None) -> None:
        url, prefix_in_url = _split_prefix(url)
        prefix = prefix or prefix_in_url or "metricstream:"
        self.url = url
        self.event_ttl = event_ttl
        self.prefix = prefix
        self._stream = f"{prefix}events"
        self._counter = f"{prefix}event_seq"
        # What trimmed events left (stream.log.Mark): see redis_scripts.
        self._marks = f"{prefix}event_marks"
        self._metrics = f"{prefix}metrics"
        self._metric_ids = f"{prefix}metric_ids"
        # metric id -> its labels, canonical (`labels.canonical_labels`), for the `free` check; none: `{}`
        self._metric_labels = f"{prefix}metric_labels"
        self._names_indexed = f"{prefix}names_indexed"
        self._names_in_nfc = f"{prefix}names_nfc"
        self._client: aioredis.Redis | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._write: Any = None
        self._trim: Any = None
        # Where following the stream resumes.
        self._last_stream_id = "0-0"
        self._last_seq: int | None = None

    def __repr__(self) -> str:
        return f"RedisStorage({self.url!r})"

    def _readings_key(self, metric_id: str) -> str:
        return f"{self.prefix}readings:{metric_id}"

    def _named_key(self, name: str) -> str:
        """The set of the ids of the metrics named `name`, in any spelling NFC makes one."""
        return f"{self.prefix}named:{name_key(name)}"

    @property
    def client(self) -> Any:
        """The open client: `Any`, since redis-py's reply types are too loose to check; replies are parsed
        where they are read."""
        if self._client is None:
            raise UnavailableError("the store is closed")
        return self._client

    async def open(self) -> None:
        if self._client is not None and self._loop is asyncio.get_running_loop():
            return
        # One left from a hub's earlier run was bound to that run's loop.
        self._client = None
        self._loop = asyncio.get_running_loop()
        # Short timeouts and no retries: a write during an outage fails fast with 503, never hangs.
        self._client = aioredis.Redis.from_url(
            self.url,
            socket_connect_timeout=2,
            socket_timeout=5,
            retry_on_timeout=False,
            retry=Retry(NoBackoff(), 0),
        )
        self._write = self._client.register_script(WRITE)
        self._trim = self._client.register_script(TRIM)
        try:
            with _unavailable_on_error():
                await self._client.ping()
                index = self._client.register_script(INDEX_NAMES)
                await index(keys=[self._metrics, self._names_indexed], args=[self._named_key("")])
                await self._index_names_in_nfc()
        except UnavailableError:
            await self.close()
            raise

    async def _index_names_in_nfc(self) -> None:
        """Move each metric whose stored name is not in NFC to the set of its NFC name, once per store."""
        if await self.client.exists(self._names_in_nfc):
            return
        moves: list[str] = []
        for metric_id, body in (await self.client.hgetall(self._metrics)).items():
            name = orjson.loads(body)["name"]
            if name_key(name) != name:
                moves += [metric_id.decode(), f"{self.prefix}named:{name}", self._named_key(name)]
        move = self.client.register_script(NAMES_IN_NFC)
        await move(keys=[self._metrics, self._names_in_nfc], args=moves)

    async def close(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            await client.aclose()

    async def _run_write(
        self, keys: list[str], operations: list[tuple[str, str, Any, Any]], events: Sequence[Event]
    ) -> str | None:
        """Run the write script; None if done, else the kind of check that refused it (nothing written)."""
        # The events were stamped by the server's clock: trim by it too, not by this machine's.
        cutoff = (events[-1].created if events else 0.0) - self.event_ttl
        args: list[Any] = [repr(cutoff), len(operations)]
        all_keys = [self._stream, self._counter, self._marks, *keys]
        for kind, key, a, b in operations:
            if kind == "free":  # its `a` is a key too
                a = all_keys.index(a) + 1
            args += [kind, all_keys.index(key) + 1, a, b]
        for event in events:
            args += [event.id, event.type, event.metric_id, event.body, repr(event.created)]
        with _unavailable_on_error():
            code = int(await self._write(keys=all_keys, args=args))
        return None if code == _OK else _CHECK_FAILED[code]

    def _free(self, metric: Metric) -> tuple[str, str, Any, Any]:
        """The check that no metric has `metric`'s name and labels."""
        return ("free", self._named_key(metric.name), self._metric_labels, canonical_labels(metric.labels))

    def _insert_metric(self, metric: Metric) -> list[tuple[str, str, Any, Any]]:
        return [
            ("hset", self._metrics, metric.id, orjson.dumps(metric.to_dict())),
            ("hset", self._metric_labels, metric.id, canonical_labels(metric.labels)),
            ("rpush", self._metric_ids, metric.id, ""),
            ("sadd", self._named_key(metric.name), metric.id, ""),
        ]

    async def add_metric(self, metric: Metric, event: Event, max_metrics: int | None = None) -> bool:
        operations: list[tuple[str, str, Any, Any]] = [self._free(metric)]
        if max_metrics is not None:
            operations.append(("below", self._metric_ids, max_metrics, ""))
        operations += self._insert_metric(metric)
        keys = [self._metrics, self._metric_ids, self._metric_labels, self._named_key(metric.name)]
        refused = await self._run_write(keys, operations, [event])
        if refused == "free":
            raise NameTaken
        return refused is None

    async def delete_metric(self, metric_id: str, event: Event) -> bool:
        metric = await self.get_metric(metric_id)  # for its name, which never changes
        if metric is None:
            return False
        readings, named = self._readings_key(metric_id), self._named_key(metric.name)
        operations: list[tuple[str, str, Any, Any]] = [
            ("present", self._metrics, metric_id, ""),  # not deleted meanwhile by another process
            ("hdel", self._metrics, metric_id, ""),
            ("hdel", self._metric_labels, metric_id, ""),
            ("lrem", self._metric_ids, metric_id, ""),
            ("srem", named, metric_id, ""),
            ("del", readings, "", ""),
        ]
        keys = [self._metrics, self._metric_ids, self._metric_labels, readings, named]
        return await self._run_write(keys, operations, [event]) is None

    async def get_metric(self, metric_id: str) -> Metric | None:
        with _unavailable_on_error():
            body = await self.client.hget(self._metrics, metric_id)
        return None if body is None else Metric(**orjson.loads(body))

    async def list_metrics(self) -> list[Metric]:
        with _unavailable_on_error():
            ids = await self.client.lrange(self._metric_ids, 0, -1)
            bodies = await self.client.hmget(self._metrics, ids) if ids else []
        return [Metric(**orjson.loads(body)) for body in bodies if body is not None]

    async def find_metrics(self, name: str, labels: Mapping[str, str] | None = None) -> list[Metric]:
        with _unavailable_on_error():
            ids = sorted(member.decode() for member in await self.client.smembers(self._named_key(name)))
            bodies = await self.client.hmget(self._metrics, ids) if ids else []
        # ids ascend in creation order (UUIDv7s, each after every id its process has seen)
        named = [Metric(**orjson.loads(body)) for body in bodies if body is not None]
        return named if labels is None else [metric for metric in named if metric.labels == labels]

    async def add_reading(
        self,
        reading: MetricReading,
        event: Event,
        keep: int | None = None,
        expire_before: datetime | None = None,
    ) -> None:
        # A batch of one: the round trip to Redis cost far more than its lists.
        await self.add_readings([reading], [event], keep, expire_before=expire_before)

    async def add_readings(
        self,
        readings: Sequence[MetricReading],
        events: Sequence[Event],
        keep: int | None = None,
        created: Sequence[Metric] = (),
        max_metrics: int | None = None,
        expire_before: datetime | None = None,
    ) -> None:
        new_ids = {metric.id for metric in created}
        metric_ids = sorted({reading.metric_id for reading in readings})
        reading_keys = [self._readings_key(metric_id) for metric_id in metric_ids]
        named_keys = [self._named_key(metric.name) for metric in created]
        # each metric still there and each new name still free, checked in the same step as the write:
        # another process may have deleted the one or created the other
        operations: list[tuple[str, str, Any, Any]] = [
            ("present", self._metrics, m, "") for m in metric_ids if m not in new_ids
        ]
        operations += [self._free(metric) for metric in created]
        if created and max_metrics is not None:
            operations.append(("below", self._metric_ids, max_metrics - len(created) + 1, ""))
        for metric in created:
            operations += self._insert_metric(metric)
        operations += [
            ("zadd", self._readings_key(r.metric_id), micros(r.timestamp), orjson.dumps(r.to_dict()))
            for r in readings
        ]
        # Rank 0 is the oldest: lowest score (time), ties by member (id first).
        if keep is not None:
            operations += [("cap", key, keep, "") for key in reading_keys]
        if expire_before is not None:
            cutoff = micros(expire_before)
            operations += [("expire", key, cutoff, EXPIRED_PER_WRITE) for key in reading_keys]
        keys = [self._metrics, self._metric_ids, self._metric_labels, *named_keys, *reading_keys]
        refused = await self._run_write(keys, operations, events)
        if refused == "present":
            raise NotFoundError(f"metric {' or '.join(metric_ids)} not found (deleted meanwhile)")
        if refused == "free":
            raise NameTaken
        if refused == "below":
            raise MetricLimitReached

    async def list_readings(
        self,
        metric_id: str,
        since: datetime | None = None,
        until: datetime | None = None,
        limit: int | None = None,
        descending: bool = False,
        after: tuple[datetime, str] | None = None,
    ) -> list[MetricReading]:
        args = [
            "" if since is None else micros(since),
            "" if until is None else micros(until),
            -1 if limit is None else limit,
            1 if descending else 0,
            *(("", "") if after is None else (micros(after[0]), after[1])),
        ]
        read = self.client.register_script(READINGS)
        with _unavailable_on_error():
            members = await read(keys=[self._readings_key(metric_id)], args=args)
        if descending:
            members.reverse()
        return [reading_from_dict(orjson.loads(member)) for member in members]

    async def latest_readings(self) -> list[tuple[Metric, MetricReading]]:
        metrics = await self.list_metrics()
        # One round trip: each metric's highest-ranked member, the newest (by score, ties by id).
        pipeline = self.client.pipeline(transaction=False)
        for metric in metrics:
            pipeline.zrange(self._readings_key(metric.id), -1, -1)
        with _unavailable_on_error():
            newest = await pipeline.execute() if metrics else []
        return [
            (metric, reading_from_dict(orjson.loads(members[0])))
            for metric, members in zip(metrics, newest, strict=True)
            if members
        ]

    async def reading_columns(
        self,
        metric_id: str,
        since: datetime | None,
        until: datetime | None,
        limit: int,
        after: tuple[datetime, str] | None = None,
    ) -> ReadingColumns:
        return columns_of(await self.list_readings(metric_id, since, until, limit, after=after))

    async def retained_events(self) -> RetainedLog:
        with _unavailable_on_error():
            # One transaction: a trim by another process between the reads would leave a gap.
            async with self.client.pipeline(transaction=True) as read:
                read.xrange(self._stream).hgetall(self._marks).exists(self._counter)
                entries, stored, counted = await read.execute()
        marks = [_mark(field.decode(), value.decode()) for field, value in stored.items() if b"|" in field]
        if not entries:
            return RetainedLog([], counted == 1, marks if b"complete" in stored else None)
        self._last_stream_id = entries[-1][0].decode()
        self._last_seq = int(entries[-1][1][b"seq"])
        truncated = int(entries[0][1][b"seq"]) > 1
        complete = b"complete" in stored or not truncated
        return RetainedLog([_event(fields) for _, fields in entries], truncated, marks if complete else None)

    async def trim_events(self, before: float) -> None:
        if self._trim is None:
            raise UnavailableError("the store is closed")
        with _unavailable_on_error():
            await self._trim(keys=[self._stream, self._marks], args=[repr(before)])

    async def newest_event_id(self) -> str | None:
        with _unavailable_on_error():
            entries = await self.client.xrevrange(self._stream, count=1)
        return entries[0][1][b"id"].decode() if entries else None

    async def follow(self, publish: Callable[[list[Event]], None], lost: Callable[[], None]) -> None:
        """Publish every new stream entry in order, until cancelled; call `lost` when entries were
        trimmed before this process read them. Outages are waited out with backoff."""
        delay = 0.1
        while True:
            try:
                entries = await self._read_new()
            except (RedisError, UnavailableError, OSError) as error:
                log.warning("following the event stream failed (%s); retrying in %.1f s", error, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)
                continue
            delay = 0.1
            raise_if_cancelled()  # redis-py may have swallowed it (3.11)
            if not entries:
                continue
            first_seq = int(entries[0][1][b"seq"])
            if self._last_seq is not None and first_seq != self._last_seq + 1:
                log.warning("events %d to %d expired unseen", self._last_seq + 1, first_seq - 1)
                lost()
            self._last_stream_id = entries[-1][0].decode()
            self._last_seq = int(entries[-1][1][b"seq"])
            publish([_event(fields) for _, fields in entries])

    async def _read_new(self) -> list[Any]:
        """The entries after the last one published: one blocking XREAD, then more at once while full
        batches come, so that what is there (a whole batch write, say) is published in one piece, as on
        the other stores; a write split over two publishes could make a reader look slow."""
        entries: list[Any] = []
        after: str | bytes = self._last_stream_id
        block: int | None = _FOLLOW_BLOCK_MS
        while len(entries) < _FOLLOW_MOST:
            reply = await self.client.xread({self._stream: after}, count=_FOLLOW_BATCH, block=block)
            batch = reply[0][1] if reply else []
            entries += batch
            if len(batch) < _FOLLOW_BATCH:
                break
            after, block = batch[-1][0], None
        return entries

    async def bucket_readings(
        self, metric_id: str, since: datetime, until: datetime, step: int, limit: int
    ) -> list[Bucket]:
        low, high = micros(since), micros(until)
        buckets = []
        for bucket in await self._summarise(metric_id, low, high, step, limit):
            # Its sum passed the largest float: sum it again, scaled down.
            if overflowed(bucket):
                start = bucket_start(micros(bucket.start), step)
                shift = shift_for(bucket.count)
                span = (max(start, low), min(start + step - 1, high))
                again = await self._summarise(metric_id, *span, step, 1, shift)
                buckets += [replace(b, avg=math.ldexp(b.avg, shift)) for b in again]
            else:
                buckets.append(bucket)
        return buckets

    async def _summarise(
        self, metric_id: str, low: int | bytes, high: int, step: int, limit: int, shift: int = 0
    ) -> list[Bucket]:
        """The first `limit` buckets of the readings scored from `low` to `high`, their sums (so their
        means) divided by 2**shift."""
        summarize = self.client.register_script(BUCKETS)
        builder = BucketBuilder(limit)
        skip = 0
        while True:
            # Bounded calls, each resuming at the last score read, past the members read with it (ties in
            # time are common), so that Redis is never busy long with one of them.
            args = [low, high, skip, _BUCKET_CHUNK, step, shift]
            with _unavailable_on_error():
                read, last, tied, *runs = await summarize(keys=[self._readings_key(metric_id)], args=args)
            for i in range(0, len(runs), 7):
                start, count = int(float(runs[i])), int(runs[i + 1])
                if not builder.add(start, count, *(float(x) for x in runs[i + 2 : i + 7])):
                    return builder.finish()
            if read < _BUCKET_CHUNK:
                return builder.finish()
            skip = skip + tied if float(last) == float(low) else tied
            low = last

    async def window_values(self, metric_id: str, windows: Windows, function: str) -> list[float | None]:
        return await read_windows(self, metric_id, windows, function)

    async def trim_readings(self, before: datetime, chunk: int = 5000) -> int:
        if chunk < 1:  # a chunk of nothing would never finish
            raise ValueError(f"chunk must be at least 1, not {chunk}")
        with _unavailable_on_error():
            metric_ids = await self.client.lrange(self._metric_ids, 0, -1)
            trim = self.client.register_script(TRIM_OLDER)
            total = 0
            for metric_id in metric_ids:
                key = self._readings_key(metric_id.decode())
                # One chunk per call: other clients' commands go in between.
                while True:
                    removed = int(await trim(keys=[key], args=[micros(before), chunk]))
                    total += removed
                    if removed < chunk:
                        break
        return total


def _split_prefix(url: str) -> tuple[str, str | None]:
    """The URL without our own `prefix` query parameter (redis-py would reject it), and its value."""
    parts = urlsplit(url)
    query = parse_qsl(parts.query, keep_blank_values=True)
    prefix = next((value for name, value in query if name == "prefix"), None)
    rest = urlencode([(name, value) for name, value in query if name != "prefix"])
    return urlunsplit(parts._replace(query=rest)), prefix


def _event(fields: dict[bytes, bytes]) -> Event:
    return Event.restore(
        fields[b"id"].decode(),
        fields[b"type"].decode(),
        fields[b"metric_id"].decode(),
        fields[b"body"],
        float(fields[b"created"]),
    )


def _mark(field: str, value: str) -> Mark:
    type, _, metric_id = field.partition("|")
    seq, _, event_id = value.partition(" ")
    return Mark(type, metric_id, int(seq), event_id)
