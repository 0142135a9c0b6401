"""Large JSON answers, produced a slice at a time, so the event loop serves streams and other requests
between two slices. No framework: `routes.py` wraps these iterators in its responses."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import orjson

from ..domain.paging import Page
from ..domain.values import Metric, MetricReading

__all__ = ["FLUSH", "SLICE", "metrics_json", "readings_json"]

# Readings turned into JSON between two turns of the event loop (~3 ms),
# and bytes gathered before a piece of the answer is sent.
SLICE = 1000
FLUSH = 256 * 1024


async def readings_json(readings: list[MetricReading]) -> AsyncIterator[bytes]:
    """`[reading, ...]` as JSON, a slice at a time."""
    if not readings:
        yield b"[]"
        return
    for start in range(0, len(readings), SLICE):
        piece = orjson.dumps([reading.to_dict() for reading in readings[start : start + SLICE]])
        yield (b"[" if start == 0 else b",") + piece[1:-1]
        await asyncio.sleep(0)
    yield b"]"


async def metrics_json(pairs: AsyncIterator[tuple[Metric, Page[MetricReading]]]) -> AsyncIterator[bytes]:
    """`[{...metric, "readings": [...], "readings_truncated": ...}, ...]` as JSON, sent in pieces of about
    FLUSH bytes."""
    parts, size, separator = [b"["], 1, b""
    async for metric, readings in pairs:
        parts.append(separator + orjson.dumps(metric.to_dict())[:-1] + b',"readings":')
        separator = b","
        async for piece in readings_json(readings):
            parts.append(piece)
            size += len(piece)
            if size >= FLUSH:
                yield b"".join(parts)
                parts, size = [], 0
        parts.append(
            b',"readings_truncated":true}' if readings.truncated else b',"readings_truncated":false}'
        )
    parts.append(b"]")
    yield b"".join(parts)
