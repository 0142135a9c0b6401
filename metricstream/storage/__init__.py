"""Where metrics, readings and the retained event log are kept: `open_storage(url)` picks a backend by URL
scheme, `memory://` (this process only), `sqlite:///path/to.db` (durable, one machine) or
`redis://host:port/db` (several processes, one stream). A backend's client library is imported only when
its URL is used. The interface they share is in `base.py`.
"""

from __future__ import annotations

from ..errors import ValidationError
from .base import Storage

__all__ = ["open_storage"]


def open_storage(url: str = "memory://", event_ttl: float = 60.0) -> Storage:
    """A storage backend for `url`; `memory://` keeps everything in this process."""
    scheme, separator, rest = url.partition("://")
    scheme = scheme.lower()
    if scheme == "memory" and separator:
        from .memory import MemoryStorage

        return MemoryStorage()
    if scheme == "sqlite" and rest.startswith("/") and len(rest) > 1:
        from .sqlite import SQLiteStorage

        return SQLiteStorage(rest[1:])  # sqlite:///relative.db, sqlite:////absolute.db
    if scheme in ("redis", "rediss", "unix") and rest:
        try:
            from .redis import RedisStorage
        except ImportError:
            raise ValidationError(
                "the Redis store needs the redis package: pip install 'metricstream[redis]'"
            ) from None
        return RedisStorage(url, event_ttl)
    raise ValidationError(
        f"unsupported store URL {url!r}; use memory://, sqlite:///path/to.db or redis://host:port/db"
    )
