"""`Storage.window_values` for the stores that read a window as readings (memory, Redis): each window's
readings read on their own, through the store's index, and summarised here. A window holding more than
`MAX_WINDOW_READINGS` is refused rather than read whole (SQLite's summarises in SQL and has no such
limit)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Final

from ..domain.promql.windows import Windows, over_time
from ..errors import EvaluationError
from .base import Storage
from .rows import moment

__all__ = ["MAX_WINDOW_READINGS", "read_windows"]

MAX_WINDOW_READINGS: Final = 1_000_000
_EARLIEST: Final = datetime.min.replace(tzinfo=UTC)
_LATEST: Final = datetime.max.replace(tzinfo=UTC)


def _moment(micros: int) -> datetime:
    """A window bound as a datetime, clamped to what one holds (no reading is outside)."""
    try:
        return moment(micros)
    except OverflowError:
        return _EARLIEST if micros < 0 else _LATEST


async def read_windows(
    storage: Storage, metric_id: str, windows: Windows, function: str
) -> list[float | None]:
    out: list[float | None] = []
    for end in windows.ends():
        since, until = _moment(end - windows.width), _moment(end)
        if function == "last":
            found = await storage.list_readings(metric_id, since, until, 1, descending=True)
            out.append(found[0].value if found else None)
            continue
        columns = await storage.reading_columns(metric_id, since, until, MAX_WINDOW_READINGS + 1)
        if len(columns.values) > MAX_WINDOW_READINGS:
            raise EvaluationError(
                f"query processing would load too many samples into memory: a window holds more than "
                f"{MAX_WINDOW_READINGS:,} readings"
            )
        out.append(over_time(function, columns.values) if columns.values else None)
    return out
