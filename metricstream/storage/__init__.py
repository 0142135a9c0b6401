"""Where metrics, readings and the retained event log are kept.

`Storage` is the one interface the service talks to; `open_storage(url)` picks a backend by URL scheme.
Each write stores the data together with the events announcing it, so a backend that persists events can
make both durable in one step. Only `memory://` exists today; durable and shared backends plug in here
without touching the HTTP layer, the broadcaster or the Python API.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Protocol

from ..errors import ValidationError
from ..models import Event, Metric, MetricReading

__all__ = ["Storage", "open_storage"]


class Storage(Protocol):
    async def open(self) -> None: ...

    async def close(self) -> None: ...

    async def add_metric(self, metric: Metric, event: Event) -> None: ...

    async def get_metric(self, metric_id: str) -> Metric | None: ...

    async def list_metrics(self) -> list[Metric]: ...

    async def add_readings(self, readings: Sequence[MetricReading], events: Sequence[Event]) -> None:
        """Store readings of existing metrics with their events, all or nothing."""
        ...

    async def list_readings(
        self,
        metric_id: str,
        since: datetime | None = None,
        until: datetime | None = None,
        limit: int | None = None,
        newest: bool = False,
    ) -> list[MetricReading]:
        """Readings ascending by timestamp within [since, until]; the first `limit` of them, or
        with `newest` the last `limit`."""
        ...

    async def recent_events(self, since: float) -> list[Event]:
        """Retained events created at or after `since` (wall-clock seconds), oldest first."""
        ...


def open_storage(url: str = "memory://") -> Storage:
    """A storage backend for `url`; `memory://` keeps everything in this process."""
    scheme = url.partition("://")[0].lower()
    if scheme == "memory":
        from .memory import MemoryStorage

        return MemoryStorage()
    raise ValidationError(f"unsupported store URL {url!r}; use memory://")
