"""PromQL's windows of a metric's readings in SQLite (`Storage.window_values`): one statement for every
window of a query, a subquery per window's end from a temporary table of them. SQLite walks the ends in
order and, for each, seeks the window's range of `readings_by_time` and aggregates it, reading the values
from the index, which holds them (schema version 7): no reading is looked up in the table, and nothing is
sorted (a join grouped by the end is a third slower, for the grouping's bookkeeping).

The statements run on read-only connections of their own (`WindowReaders`, one per worker thread, WAL
lets them read beside the writer), as do the store's long reads of readings as columns (PromQL's range
functions, tables): a long query never holds up a write, and two series are read at once on two cores
(SQLite lets go of the GIL while it steps). A database in memory has only the store's own connection,
which then reads them too.
"""

from __future__ import annotations

import asyncio
import math
import sqlite3
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Final, TypeVar

from ..domain.promql.windows import Windows, over_time
from ..errors import UnavailableError

__all__ = ["READERS", "WindowReader", "WindowReaders"]

T = TypeVar("T")

# Connections reading windows at once.
READERS: Final = 2
# What a window's readings are summarised by, per function: NULL (or a count of 0) for none.
_SUMMARIES: Final = {
    "avg": "SELECT AVG(value)",
    "sum": "SELECT SUM(value)",
    "min": "SELECT MIN(value)",
    "max": "SELECT MAX(value)",
    "count": "SELECT COUNT(*)",
    "last": "SELECT value",
}
_WINDOW: Final = "FROM readings WHERE metric_id = ?1 AND ts >= s.t - ?2 AND ts <= s.t"
_VALUES: Final = "SELECT value FROM readings WHERE metric_id = ? AND ts >= ? AND ts <= ? ORDER BY ts, id"


class WindowReader:
    """Window values on one connection, which keeps `temp.window_ends` for the last windows asked."""

    def __init__(self) -> None:
        # The windows whose ends the table holds: (first end, step, count).
        self.loaded: tuple[int, int, int] | None = None

    def values(
        self, metric_id: str, windows: Windows, function: str, db: sqlite3.Connection
    ) -> list[float | None]:
        """`function` (`avg`, `sum`, `min`, `max`, `count` or `last`) of each window's readings."""
        self._load(db, windows)
        width = windows.width
        order = " ORDER BY ts DESC, id DESC LIMIT 1" if function == "last" else ""
        query = f"SELECT ({_SUMMARIES[function]} {_WINDOW}{order}) FROM temp.window_ends s ORDER BY s.t"
        out: list[float | None] = []
        for end, (value,) in zip(windows.ends(), db.execute(query, (metric_id, width)), strict=True):
            # A mean of no reading is NULL, and so is one whose sum passed the largest float (NaN to
            # SQLite, infinite to AVG): read again to tell them apart, and summed without overflowing.
            if function == "avg" and (value is None or not math.isfinite(value)):
                values = [v for (v,) in db.execute(_VALUES, (metric_id, end - width, end))]
                value = over_time("avg", values) if values else None
            out.append(None if value is None or (function == "count" and value == 0) else float(value))
        return out

    def _load(self, db: sqlite3.Connection, windows: Windows) -> None:
        key = (windows.first_end, windows.step, windows.count)
        if self.loaded == key:
            return
        db.execute("CREATE TEMP TABLE IF NOT EXISTS window_ends (t INTEGER PRIMARY KEY)")
        db.execute("DELETE FROM temp.window_ends")
        db.execute(
            "INSERT INTO temp.window_ends WITH RECURSIVE e(t) AS"
            " (SELECT ?1 UNION ALL SELECT t + ?2 FROM e WHERE t + ?2 <= ?3) SELECT t FROM e",
            (windows.first_end, windows.step, windows.last_end),
        )
        self.loaded = key


class WindowReaders:
    """Read-only connections to a database file, one per thread of their own pool, opened when first
    needed; `close` (before the store gives up its claim on the file) waits for reads under way."""

    def __init__(self, path: str) -> None:
        self.uri = Path(path).absolute().as_uri() + "?mode=ro"
        self._executor = ThreadPoolExecutor(
            max_workers=READERS, thread_name_prefix="metricstream-sqlite-read"
        )
        self._local = threading.local()
        self._lock = threading.Lock()
        self._connections: list[sqlite3.Connection] = []
        self._closed = False

    async def values(self, metric_id: str, windows: Windows, function: str) -> list[float | None]:
        def work(db: sqlite3.Connection) -> list[float | None]:
            reader: WindowReader = self._local.reader
            return reader.values(metric_id, windows, function, db)

        return await self.run(work)

    async def run(self, work: Callable[[sqlite3.Connection], T]) -> T:
        """`work` on one of the connections, in one read transaction (one snapshot of the file)."""
        loop = asyncio.get_running_loop()
        try:
            return await loop.run_in_executor(self._executor, self._read, work)
        except sqlite3.Error as error:
            raise UnavailableError(f"the store failed: {error}") from None
        except RuntimeError:  # the pool was shut down: the store is closing
            raise UnavailableError("the store is closed") from None

    def _read(self, work: Callable[[sqlite3.Connection], T]) -> T:
        local = self._local
        if not hasattr(local, "db"):
            with self._lock:
                if self._closed:
                    raise UnavailableError("the store is closed")
                local.db = sqlite3.connect(self.uri, uri=True, isolation_level=None, check_same_thread=False)
                local.reader = WindowReader()
                self._connections.append(local.db)
        db: sqlite3.Connection = local.db
        db.execute("BEGIN")
        try:
            return work(db)
        finally:
            db.execute("COMMIT")

    def close(self) -> None:
        with self._lock:
            self._closed = True
        self._executor.shutdown(wait=True)
        for db in self._connections:
            db.close()
        self._connections.clear()
