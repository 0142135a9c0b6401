"""PromQL's windows of a metric's readings in SQLite (`Storage.window_values`): one statement for every
window of a query, joined to a temporary table of the windows' ends. SQLite walks the ends in order and,
for each, the window's range of `readings_by_time`, which holds the values (schema version 7): no reading
is looked up in the table, and nothing is sorted. `last` is one index seek per window.

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
# What a window's readings are summarised by, per function.
_AGGREGATES: Final = {
    "avg": "AVG(r.value)",
    "sum": "SUM(r.value)",
    "min": "MIN(r.value)",
    "max": "MAX(r.value)",
    "count": "COUNT(*)",
}
_LAST: Final = (
    "SELECT (SELECT value FROM readings WHERE metric_id = ?1 AND ts >= s.t - ?2 AND ts <= s.t"
    " ORDER BY ts DESC, id DESC LIMIT 1) FROM temp.window_ends s ORDER BY s.t"
)
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
        if function == "last":
            return [value for (value,) in db.execute(_LAST, (metric_id, width))]
        query = (
            f"SELECT s.t, {_AGGREGATES[function]} FROM temp.window_ends s JOIN readings r"
            " ON r.metric_id = ?1 AND r.ts >= s.t - ?2 AND r.ts <= s.t GROUP BY s.t"
        )
        found = dict(db.execute(query, (metric_id, width)).fetchall())
        out: list[float | None] = []
        for end in windows.ends():
            if end not in found:
                out.append(None)
                continue
            value = found[end]
            # A sum past the largest float, where the mean is finite (NaN is NULL to SQLite): summed again.
            if function == "avg" and (value is None or not math.isfinite(value)):
                value = over_time("avg", [v for (v,) in db.execute(_VALUES, (metric_id, end - width, end))])
            out.append(float(value))
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
