"""SQLite storage: metrics, readings and the retained event log in one file that survives restarts.

One connection, on a thread of its own, so blocking calls never run on the event loop and writes are
serialised. Every write is one transaction, data and events together and its limits checked inside,
committed before the caller hears of success. Being the file's only writer, the store counts a metric's
readings once and keeps the count, so a capped write deletes only its excess, never scanning the series.
Schema versions are kept in `PRAGMA user_version` and applied in order by `_MIGRATIONS`. `name_key` (the
name in NFC) is computed in Python, by a function registered on this connection only for migration 4, so
other tools reading the file need nothing of ours. docs/architecture.md (Stores) says what the file holds
and how durable it is; the claim on it is in `claim.py`.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import math
import os
import sqlite3
from array import array
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from pathlib import Path
from typing import Any, Final, TypeVar

from ..domain.buckets import Bucket, bucket_start, mean, start_moment
from ..domain.labels import canonical_labels
from ..domain.names import name_key
from ..domain.promql.windows import Windows
from ..domain.values import Metric, MetricReading
from ..errors import NotFoundError, UnavailableError
from ..ids import ensure_ids_after
from ..stream.log import Event, Mark, RetainedLog
from ..wire import METRIC_CREATED
from .base import EXPIRED_PER_WRITE, MetricLimitReached, NameTaken
from .claim import Claim, claim_database, note_holder
from .rows import ReadingColumns, micros, moment
from .sqlite_windows import WindowReader, WindowReaders

__all__ = ["SQLiteStorage"]

T = TypeVar("T")

# The type of the event_marks row that says older trims left no marks.
_UNMARKED: Final = ""


_MIGRATIONS: Final = [
    # version 1
    """
    CREATE TABLE metrics (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        id TEXT NOT NULL UNIQUE,
        name TEXT NOT NULL,
        input_frequency REAL
    );
    CREATE TABLE readings (
        id TEXT PRIMARY KEY,
        metric_id TEXT NOT NULL REFERENCES metrics(id),
        value REAL NOT NULL,
        ts INTEGER NOT NULL  -- microseconds since the Unix epoch, UTC
    );
    CREATE INDEX readings_by_time ON readings(metric_id, ts, id);
    CREATE TABLE events (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        id TEXT NOT NULL UNIQUE,
        type TEXT NOT NULL,
        metric_id TEXT NOT NULL,
        body BLOB NOT NULL,
        created REAL NOT NULL
    );
    CREATE INDEX events_by_time ON events(created);
    """,
    # version 2: writes by name look metrics up by name
    "CREATE INDEX metrics_by_name ON metrics(name, seq)",
    # version 3: the process that has the file open, for the message refusing another one
    """
    CREATE TABLE holder (
        only INTEGER PRIMARY KEY CHECK (only = 1),
        pid INTEGER NOT NULL,
        host TEXT NOT NULL,
        program TEXT NOT NULL
    );
    """,
    # version 4: metrics found by the name in NFC, stored names as they were given
    """
    ALTER TABLE metrics ADD COLUMN name_key TEXT NOT NULL DEFAULT '';
    UPDATE metrics SET name_key = metricstream_name_key(name);
    DROP INDEX metrics_by_name;
    CREATE INDEX metrics_by_name_key ON metrics(name_key, seq);
    """,
    # version 5: the marks trimmed events leave (stream.log.Mark), so filtered streams resume after a restart
    f"""
    CREATE TABLE event_marks (
        type TEXT NOT NULL,
        metric_id TEXT NOT NULL,  -- '' for the type over every metric
        seq INTEGER NOT NULL,
        id TEXT NOT NULL,
        PRIMARY KEY (type, metric_id)
    ) WITHOUT ROWID;
    -- events trimmed before this table existed left no marks: a row of no type says so
    INSERT INTO event_marks SELECT '{_UNMARKED}', '', 0, '' WHERE (SELECT MIN(seq) FROM events) > 1;
    """,
    # version 6: labels (canonical JSON, `labels.canonical_labels`), unit and description. A metric is
    # identified by name and labels; the insert checks that in its transaction, not by a unique index, so
    # that duplicates of a name made before (the Go original's rule, and ours until now) stay readable.
    """
    ALTER TABLE metrics ADD COLUMN labels TEXT NOT NULL DEFAULT '{}';
    ALTER TABLE metrics ADD COLUMN unit TEXT;
    ALTER TABLE metrics ADD COLUMN description TEXT;
    CREATE INDEX metrics_by_identity ON metrics(name_key, labels, seq);
    """,
    # version 7: readings' values in their index, so that a range of a metric's readings (a page, a
    # table, a PromQL window) is read from the index alone, in order, without a lookup per reading
    """
    DROP INDEX readings_by_time;
    CREATE INDEX readings_by_time ON readings(metric_id, ts, id, value);
    """,
]

# A metric's columns, as `_metric` reads them.
_METRIC_COLUMNS: Final = "id, name, input_frequency, labels, unit, description"


# The marks of the events about to be trimmed (those before ?1), as `events.newest_of_each_kind` makes them:
# the newest of each type of each metric (metric_created aside), then of each type. With MAX(), SQLite
# takes the other columns from the row that has it. A trim always moves forward: a new mark is newer.
_MARK_METRICS: Final = """
INSERT INTO event_marks (type, metric_id, seq, id)
SELECT type, metric_id, MAX(seq), id FROM events WHERE seq < ?1 AND type != ?2 GROUP BY type, metric_id
ON CONFLICT (type, metric_id) DO UPDATE SET seq = excluded.seq, id = excluded.id
"""
_MARK_TYPES: Final = """
INSERT INTO event_marks (type, metric_id, seq, id)
SELECT type, '', MAX(seq), id FROM events WHERE seq < ?1 GROUP BY type
ON CONFLICT (type, metric_id) DO UPDATE SET seq = excluded.seq, id = excluded.id
"""

# Each metric's newest reading, one index seek per metric (backwards along readings_by_time).
_LATEST_READINGS: Final = f"""
SELECT {", ".join(f"m.{column}" for column in _METRIC_COLUMNS.split(", "))}, r.id, r.value, r.ts
FROM metrics AS m JOIN readings AS r ON r.id = (
  SELECT id FROM readings WHERE metric_id = m.id ORDER BY ts DESC, id DESC LIMIT 1
)
ORDER BY m.seq
"""


def _metric(row: Sequence[Any]) -> Metric:
    """A metric from a row of `_METRIC_COLUMNS`."""
    metric_id, name, input_frequency, labels, unit, description = row
    return Metric(metric_id, name, input_frequency, json.loads(labels), unit, description)


@contextlib.contextmanager
def _transaction(db: sqlite3.Connection) -> Iterator[None]:
    """One write transaction, taking the write lock at once. The connection is in autocommit mode (so
    reads take no lock), where `with db:` would commit each statement on its own."""
    db.execute("BEGIN IMMEDIATE")
    try:
        yield
    except BaseException:
        db.rollback()
        raise
    db.commit()


class SQLiteStorage:
    def __init__(self, path: str) -> None:
        self.path = path
        self._executor: ThreadPoolExecutor | None = None
        self._db: sqlite3.Connection | None = None
        self._claim: Claim | None = None
        # Readings per metric, exact; used on the writer thread only.
        self._counts: dict[str, int] = {}
        # PromQL's windows: read by connections of their own, or on the writer thread (in memory).
        self._readers: WindowReaders | None = None
        self._windows = WindowReader()

    def __repr__(self) -> str:
        return f"SQLiteStorage({self.path!r})"

    async def _run(self, work: Callable[[sqlite3.Connection], T]) -> T:
        if self._executor is None or self._db is None:
            raise UnavailableError("the store is closed")
        db = self._db
        try:
            return await asyncio.get_running_loop().run_in_executor(self._executor, work, db)
        except sqlite3.OperationalError as error:
            # Disk full, locked for too long, file gone.
            raise UnavailableError(f"the store failed: {error}") from None

    async def open(self) -> None:
        """Open the file (created if missing) and claim it; `UnavailableError` if another store, of this
        process or another, has it open, naming that process."""
        if self._executor is not None:
            return
        if self.path != ":memory:":
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="metricstream-sqlite")
        self._counts.clear()
        self._windows = WindowReader()  # a new connection has no temporary tables
        try:
            self._db = await asyncio.get_running_loop().run_in_executor(executor, self._connect)
        except BaseException:
            executor.shutdown(wait=False)  # nothing was left open: a later open() starts afresh
            raise
        self._executor = executor
        if self.path != ":memory:":
            self._readers = WindowReaders(self.path)
        newest = await self._run(self._newest_event_id)
        if newest is not None:
            ensure_ids_after(newest)  # ids keep growing across restarts, whatever the clock did

    def _connect(self) -> sqlite3.Connection:
        held = None if self.path == ":memory:" else claim_database(self.path)
        db: sqlite3.Connection | None = None
        try:
            db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False, timeout=10)
            self._prepare(db)
        except BaseException as error:
            if db is not None:
                db.close()
            if held is not None:
                held.release()  # after the connection is closed, never before (see claim.py)
            if isinstance(error, sqlite3.Error):
                raise UnavailableError(f"cannot open {os.path.abspath(self.path)}: {error}") from None
            raise
        self._claim = held
        return db

    def _prepare(self, db: sqlite3.Connection) -> None:
        """Bring the schema up to date and note this process as the file's holder."""
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=NORMAL")
        db.execute("PRAGMA foreign_keys=ON")
        version = db.execute("PRAGMA user_version").fetchone()[0]
        if version > len(_MIGRATIONS):
            raise UnavailableError(
                f"{self.path} has schema version {version}, newer than this metricstream knows"
            )
        db.create_function("metricstream_name_key", 1, name_key, deterministic=True)  # for migration 4
        for number, script in enumerate(_MIGRATIONS[version:], start=version + 1):
            db.executescript(f"BEGIN; {script}; PRAGMA user_version = {number}; COMMIT;")
        if self.path != ":memory:":
            note_holder(db)

    async def close(self) -> None:
        if self._executor is None:
            return
        db, executor, held, readers = self._db, self._executor, self._claim, self._readers
        self._db = self._executor = self._claim = self._readers = None
        if readers is not None:  # closed before the claim is released, as the writer's connection is
            await asyncio.get_running_loop().run_in_executor(executor, readers.close)
        if db is not None:
            await asyncio.get_running_loop().run_in_executor(executor, db.close)
        if held is not None:
            held.release()
        executor.shutdown(wait=True)

    @staticmethod
    def _newest_event_id(db: sqlite3.Connection) -> str | None:
        row = db.execute("SELECT id FROM events ORDER BY seq DESC LIMIT 1").fetchone()
        return None if row is None else str(row[0])

    @staticmethod
    def _insert_events(db: sqlite3.Connection, events: Sequence[Event]) -> None:
        db.executemany(
            "INSERT INTO events (id, type, metric_id, body, created) VALUES (?, ?, ?, ?, ?)",
            [(e.id, e.type, e.metric_id, e.body, e.created) for e in events],
        )

    async def add_metric(self, metric: Metric, event: Event, max_metrics: int | None = None) -> bool:
        def work(db: sqlite3.Connection) -> bool:
            with _transaction(db):
                self._require_free(db, [metric])
                if max_metrics is not None and self._metric_count(db) >= max_metrics:
                    return False
                self._insert_metrics(db, [metric])
                self._insert_events(db, [event])
            return True

        return await self._run(work)

    @staticmethod
    def _metric_count(db: sqlite3.Connection) -> int:
        return int(db.execute("SELECT COUNT(*) FROM metrics").fetchone()[0])

    @staticmethod
    def _require_free(db: sqlite3.Connection, metrics: Sequence[Metric]) -> None:
        """Raise `NameTaken` (inside the caller's transaction) if a metric of the name and labels of one
        of `metrics` is stored."""
        for metric in metrics:
            identity = (name_key(metric.name), canonical_labels(metric.labels))
            if db.execute("SELECT 1 FROM metrics WHERE name_key = ? AND labels = ?", identity).fetchone():
                raise NameTaken

    @staticmethod
    def _insert_metrics(db: sqlite3.Connection, metrics: Sequence[Metric]) -> None:
        db.executemany(
            "INSERT INTO metrics (id, name, name_key, input_frequency, labels, unit, description)"
            " VALUES (?, ?, ?, ?, ?, ?, ?)",
            [
                (
                    m.id,
                    m.name,
                    name_key(m.name),
                    m.input_frequency,
                    canonical_labels(m.labels),
                    m.unit,
                    m.description,
                )
                for m in metrics
            ],
        )

    async def delete_metric(self, metric_id: str, event: Event) -> bool:
        def work(db: sqlite3.Connection) -> bool:
            with _transaction(db):
                db.execute("DELETE FROM readings WHERE metric_id = ?", (metric_id,))
                if db.execute("DELETE FROM metrics WHERE id = ?", (metric_id,)).rowcount == 0:
                    return False  # no such metric, so no readings were deleted either
                self._insert_events(db, [event])
            self._counts.pop(metric_id, None)
            return True

        return await self._run(work)

    async def get_metric(self, metric_id: str) -> Metric | None:
        def work(db: sqlite3.Connection) -> Metric | None:
            row = db.execute(f"SELECT {_METRIC_COLUMNS} FROM metrics WHERE id = ?", (metric_id,)).fetchone()
            return None if row is None else _metric(row)

        return await self._run(work)

    async def list_metrics(self) -> list[Metric]:
        def work(db: sqlite3.Connection) -> list[Metric]:
            rows = db.execute(f"SELECT {_METRIC_COLUMNS} FROM metrics ORDER BY seq")
            return [_metric(row) for row in rows]

        return await self._run(work)

    async def find_metrics(self, name: str, labels: Mapping[str, str] | None = None) -> list[Metric]:
        query = f"SELECT {_METRIC_COLUMNS} FROM metrics WHERE name_key = ?"
        params: tuple[str, ...] = (name_key(name),)
        if labels is not None:
            query, params = f"{query} AND labels = ?", (*params, canonical_labels(labels))

        def work(db: sqlite3.Connection) -> list[Metric]:
            return [_metric(row) for row in db.execute(f"{query} ORDER BY seq", params)]

        return await self._run(work)

    async def add_reading(
        self,
        reading: MetricReading,
        event: Event,
        keep: int | None = None,
        expire_before: datetime | None = None,
    ) -> None:
        # A batch of one: the hop to the store's thread and the transaction cost far more than its lists.
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
        def work(db: sqlite3.Connection) -> None:
            counts: dict[str, int] = {}
            try:
                with _transaction(db):
                    if created:
                        self._create_by_name(db, created, max_metrics)
                    db.executemany(
                        "INSERT INTO readings (id, metric_id, value, ts) VALUES (?, ?, ?, ?)",
                        [(r.id, r.metric_id, r.value, micros(r.timestamp)) for r in readings],
                    )
                    self._insert_events(db, events)
                    if keep is not None:
                        counts = self._trim_readings(db, readings, keep)
                    else:
                        self._counts.clear()  # uncapped writes are not counted
                    if expire_before is not None:
                        self._expire(db, {r.metric_id for r in readings}, micros(expire_before), counts)
            except BaseException as error:
                self._counts.clear()  # not worth reasoning about what a failed transaction left
                if isinstance(error, sqlite3.IntegrityError) and "FOREIGN KEY" in str(error):
                    metric_ids = " or ".join(sorted({r.metric_id for r in readings}))
                    raise NotFoundError(f"metric {metric_ids} not found (deleted meanwhile)") from None
                raise
            self._counts.update(counts)  # committed: the counts are true now

        await self._run(work)

    def _create_by_name(
        self, db: sqlite3.Connection, created: Sequence[Metric], max_metrics: int | None
    ) -> None:
        """Insert metrics created by a write by name, inside its transaction, if their names and labels are
        new."""
        self._require_free(db, created)
        if max_metrics is not None and self._metric_count(db) + len(created) > max_metrics:
            raise MetricLimitReached
        self._insert_metrics(db, created)

    @staticmethod
    def _expire(db: sqlite3.Connection, metric_ids: set[str], cutoff: int, counts: dict[str, int]) -> None:
        """Delete up to EXPIRED_PER_WRITE of each metric's readings older than `cutoff`, keeping the
        metrics' `counts` true."""
        for metric_id in metric_ids:
            removed = db.execute(
                "DELETE FROM readings WHERE rowid IN (SELECT rowid FROM readings"
                " WHERE metric_id = ? AND ts < ? ORDER BY ts, id LIMIT ?)",
                (metric_id, cutoff, EXPIRED_PER_WRITE),
            ).rowcount
            if metric_id in counts:
                counts[metric_id] -= removed

    def _trim_readings(
        self, db: sqlite3.Connection, readings: Sequence[MetricReading], keep: int
    ) -> dict[str, int]:
        """Delete each written metric's oldest readings beyond `keep`; the metrics' new counts."""
        added: dict[str, int] = {}
        for reading in readings:
            added[reading.metric_id] = added.get(reading.metric_id, 0) + 1
        counts = {}
        for metric_id, new in added.items():
            known = self._counts.get(metric_id)
            # The first write here since opening: count once (this write included).
            if known is None:
                (count,) = db.execute(
                    "SELECT COUNT(*) FROM readings WHERE metric_id = ?", (metric_id,)
                ).fetchone()
            else:
                count = known + new
            if count > keep:
                db.execute(
                    "DELETE FROM readings WHERE id IN (SELECT id FROM readings WHERE metric_id = ?"
                    " ORDER BY ts, id LIMIT ?)",
                    (metric_id, count - keep),
                )
                count = keep
            counts[metric_id] = count
        return counts

    async def list_readings(
        self,
        metric_id: str,
        since: datetime | None = None,
        until: datetime | None = None,
        limit: int | None = None,
        descending: bool = False,
        after: tuple[datetime, str] | None = None,
    ) -> list[MetricReading]:
        query, params = _range_query("id, value, ts", metric_id, since, until, limit, descending, after)

        def work(db: sqlite3.Connection) -> list[MetricReading]:
            rows = db.execute(query, params).fetchall()
            return [MetricReading(rid, metric_id, value, moment(ts)) for rid, value, ts in rows]

        return await self._run(work)

    async def latest_readings(self) -> list[tuple[Metric, MetricReading]]:
        def work(db: sqlite3.Connection) -> list[tuple[Metric, MetricReading]]:
            rows = db.execute(_LATEST_READINGS).fetchall()
            return [(_metric(row[:6]), MetricReading(row[6], row[0], row[7], moment(row[8]))) for row in rows]

        return await self._run(work)

    async def reading_columns(
        self,
        metric_id: str,
        since: datetime | None,
        until: datetime | None,
        limit: int,
        after: tuple[datetime, str] | None = None,
    ) -> ReadingColumns:
        query, params = _range_query("ts, value", metric_id, since, until, limit, False, after)
        # The last one's id, for the next page, read apart: an id per reading would cost a string each.
        last, last_params = _range_query("ts, id", metric_id, since, until, 1, False, after)

        def work(db: sqlite3.Connection) -> ReadingColumns:
            rows = db.execute(query, params).fetchall()
            if not rows:
                return ReadingColumns(array("q"), array("d"), None)
            ts, rid = db.execute(f"{last} OFFSET ?", (*last_params, len(rows) - 1)).fetchone()
            times, values = zip(*rows, strict=True)
            return ReadingColumns(array("q", times), array("d", values), (moment(ts), rid))

        # A long read, on a connection of its own where the file has one: writes go on meanwhile.
        if self._readers is not None:
            return await self._readers.run(work)
        return await self._run(work)

    async def retained_events(self) -> RetainedLog:
        def work(db: sqlite3.Connection) -> RetainedLog:
            rows = db.execute(
                "SELECT seq, id, type, metric_id, body, created FROM events ORDER BY seq"
            ).fetchall()
            events = [Event.restore(*row[1:]) for row in rows]
            marks = [Mark(*row) for row in db.execute("SELECT type, metric_id, seq, id FROM event_marks")]
            marked = all(mark.type != _UNMARKED for mark in marks)
            # seq 1 gone: older events were trimmed
            return RetainedLog(events, bool(rows) and rows[0][0] > 1, marks if marked else None)

        return await self._run(work)

    async def trim_events(self, before: float) -> None:
        def work(db: sqlite3.Connection) -> None:
            # Scanned by seq from the oldest: stops at the first event within the TTL.
            kept = db.execute(
                "SELECT seq FROM events WHERE created >= ? ORDER BY seq LIMIT 1", (before,)
            ).fetchone()
            marker = db.execute(
                "SELECT MAX(seq) FROM events WHERE seq < ?", (kept[0] if kept else 2**62,)
            ).fetchone()[0]
            if marker is not None:
                with _transaction(db):
                    db.execute(_MARK_METRICS, (marker, METRIC_CREATED))
                    db.execute(_MARK_TYPES, (marker,))
                    db.execute("DELETE FROM events WHERE seq < ?", (marker,))

        await self._run(work)

    async def bucket_readings(
        self, metric_id: str, since: datetime, until: datetime, step: int, limit: int
    ) -> list[Bucket]:
        # One statement per bucket, each aggregating one range of the index. A GROUP BY on the bucket
        # expression sorts every reading in [since, until] first (SQLite cannot tell that the expression
        # follows the index order): twice as slow on a dense hour, and the limit only applies after.
        earliest = "SELECT ts FROM readings WHERE metric_id = ? AND ts >= ? AND ts <= ? ORDER BY ts LIMIT 1"
        bucket = """
            SELECT COUNT(*), MIN(value), MAX(value), AVG(value),
              (SELECT value FROM readings WHERE metric_id = :metric AND ts = :first ORDER BY id LIMIT 1),
              (SELECT value FROM readings WHERE metric_id = :metric AND ts >= :first AND ts < :end
                ORDER BY ts DESC, id DESC LIMIT 1),
              (SELECT ts FROM readings WHERE metric_id = :metric AND ts >= :end AND ts <= :until
                ORDER BY ts LIMIT 1)
            FROM readings WHERE metric_id = :metric AND ts >= :first AND ts < :end
        """
        values = "SELECT value FROM readings WHERE metric_id = :metric AND ts >= :first AND ts < :end"
        last = micros(until)

        def work(db: sqlite3.Connection) -> list[Bucket]:
            buckets: list[Bucket] = []
            row = db.execute(earliest, (metric_id, micros(since), last)).fetchone()
            # The next bucket's earliest reading.
            first: int | None = None if row is None else row[0]
            while first is not None and len(buckets) < limit:
                start = bucket_start(first, step)
                end = min(start + step, last + 1)
                params = {"metric": metric_id, "first": first, "end": end, "until": last}
                count, low, high, avg, first_value, last_value, after = db.execute(bucket, params).fetchone()
                # The sum overflowed (NaN is NULL to SQLite).
                if avg is None or not math.isfinite(avg):
                    avg = mean([value for (value,) in db.execute(values, params)])
                buckets.append(Bucket(start_moment(start), count, low, high, avg, first_value, last_value))
                first = after
            return buckets

        return await self._run(work)

    async def window_values(self, metric_id: str, windows: Windows, function: str) -> list[float | None]:
        if self._readers is not None:
            return await self._readers.values(metric_id, windows, function)
        return await self._run(functools.partial(self._windows.values, metric_id, windows, function))

    async def trim_readings(self, before: datetime, chunk: int = 5000) -> int:
        if chunk < 1:  # a chunk of nothing would never finish
            raise ValueError(f"chunk must be at least 1, not {chunk}")
        cutoff = micros(before)

        def metrics_to_trim(db: sqlite3.Connection) -> list[str]:
            rows = db.execute(
                "SELECT id FROM metrics WHERE EXISTS"
                " (SELECT 1 FROM readings WHERE metric_id = metrics.id AND ts < ?) ORDER BY seq",
                (cutoff,),
            )
            return [metric_id for (metric_id,) in rows]

        def trim(metric_id: str, db: sqlite3.Connection) -> int:
            try:
                with _transaction(db):
                    removed = db.execute(
                        "DELETE FROM readings WHERE rowid IN (SELECT rowid FROM readings"
                        " WHERE metric_id = ? AND ts < ? ORDER BY ts, id LIMIT ?)",
                        (metric_id, cutoff, chunk),
                    ).rowcount
            except BaseException:
                self._counts.clear()  # as in add_readings: a failed transaction is not reasoned about
                raise
            if metric_id in self._counts:  # the readings cap counts on it
                self._counts[metric_id] -= removed
            return removed

        total = 0
        for metric_id in await self._run(metrics_to_trim):
            # One chunk per turn of the store's thread: writes queued meanwhile go in between.
            while True:
                removed = await self._run(functools.partial(trim, metric_id))
                total += removed
                if removed < chunk:
                    break
        return total


def _range_query(
    columns: str,
    metric_id: str,
    since: datetime | None,
    until: datetime | None,
    limit: int | None,
    descending: bool,
    after: tuple[datetime, str] | None,
) -> tuple[str, tuple[Any, ...]]:
    """The SELECT of `columns` of a metric's readings that `list_readings` describes, and its parameters."""
    low: tuple[str, tuple[Any, ...]] = ("ts >= ?", (micros(since) if since else -(2**62),))
    high: tuple[str, tuple[Any, ...]] = ("ts <= ?", (micros(until) if until else 2**62,))
    # The cursor as a row value, ties in time resumed by id, in place of the bound it passes: given
    # both, SQLite seeks by the plain one and then scans every reading tied with the cursor.
    if after is not None and descending and (until is None or after[0] <= until):
        high = ("(ts, id) < (?, ?)", (micros(after[0]), after[1]))
    elif after is not None and not descending and (since is None or after[0] >= since):
        low = ("(ts, id) > (?, ?)", (micros(after[0]), after[1]))
    order = "DESC" if descending else "ASC"
    query = (
        f"SELECT {columns} FROM readings WHERE metric_id = ? AND {low[0]} AND {high[0]}"
        f" ORDER BY ts {order}, id {order} LIMIT ?"
    )
    return query, (metric_id, *low[1], *high[1], -1 if limit is None else limit)
