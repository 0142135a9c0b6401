"""What both sides of the wire share: the stream's path, the event types, and the limits a client may
need to know. Imports nothing: the client package reads it without pulling in the server."""

from __future__ import annotations

from typing import Final

__all__ = [
    "EVENT_TYPES",
    "__version__",
    "GENESIS_ID",
    "MAX_NAME_LENGTH",
    "MAX_READINGS_LIMIT",
    "METRIC_CREATED",
    "METRIC_DELETED",
    "READING_CREATED",
    "STREAM_PATH",
]

# The package's version, as pyproject.toml says it; the API document states it.
__version__ = "0.1.0"

STREAM_PATH: Final = "/events/watch"

METRIC_CREATED: Final = "metric_created"
READING_CREATED: Final = "metric_reading_created"
METRIC_DELETED: Final = "metric_deleted"
EVENT_TYPES: Final = frozenset({METRIC_CREATED, READING_CREATED, METRIC_DELETED})

# Stands for "before the first event": what a REST read reports while no event exists yet, so a client
# can still resume from that state.
GENESIS_ID: Final = "00000000-0000-0000-0000-000000000000"

# The hard ceiling; the max_name_length setting may only lower it.
MAX_NAME_LENGTH: Final = 200
# Readings (or buckets) one answer holds at most.
MAX_READINGS_LIMIT: Final = 10_000
