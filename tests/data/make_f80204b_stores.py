"""Writes the stores `tests/e2e/test_legacy_stores.py` opens: a SQLite file and a Redis store written by
metricstream at f80204b (before labels), with metrics (two of one name, as every release before labels
allowed), readings and events; and what that version listed, to compare with.

Run once, with the f80204b code first on the path and a redis-server of your own (never a shared one):

    git worktree add /tmp/f80 f80204b
    PYTHONPATH=/tmp/f80 .venv/bin/python tests/data/make_f80204b_stores.py redis://127.0.0.1:PORT/0

It writes f80204b.db, f80204b_redis.json (every key under the prefix, by type, without the prefix, so the
test can load it under a fresh one) and f80204b_expected.json beside itself.
"""

from __future__ import annotations

import asyncio
import importlib
import json
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import redis

import metricstream

# f80204b's modules, which today's code (all that type checks see) lays out otherwise.
Broadcaster: Any = importlib.import_module("metricstream.broadcast").Broadcaster
EventLog: Any = importlib.import_module("metricstream.events").EventLog
AsyncMetricService: Any = importlib.import_module("metricstream.service").AsyncMetricService
_storage: Any = importlib.import_module("metricstream.storage")
is_shared, open_storage = _storage.is_shared, _storage.open_storage

HERE = Path(__file__).parent
PREFIX = "legacy:"
# Metrics (name, input_frequency) and readings (index of the metric, value, seconds after the start).
METRICS = [("cpu", None), ("cpu", None), ("temp", 5.0), ("café", None)]
READINGS = [(0, 1.5, 0), (0, 2.5, 1), (1, 7.0, 0), (2, 21.5, 0), (2, 22.0, 60), (3, 3.0, 0)]
START = datetime(2026, 1, 1, tzinfo=UTC)


async def write(store: str) -> dict[str, Any]:
    """Fill `store` through the f80204b service (what a hub runs; the app itself needs quart_cors, which
    f80204b required); what it then lists."""
    storage = open_storage(store, event_ttl=10**9)
    await storage.open()
    broadcaster = Broadcaster(
        EventLog(10**9),
        max_clients=1,
        client_buffer=1,
        write_timeout=1,
        heartbeat=1,
        retry=1,
        flush_interval=0,
    )
    service = AsyncMetricService(storage, broadcaster)
    follower = (
        asyncio.create_task(storage.follow(service.receive, service.lost)) if is_shared(storage) else None
    )
    try:
        metrics = [await service.create_metric(name, frequency) for name, frequency in METRICS]
        for index, value, seconds in READINGS:
            await service.create_reading(metrics[index].id, value, START + timedelta(seconds=seconds))
        return {
            "metrics": [
                {**m.to_dict(), "readings": [r.to_dict() for r in await service.list_readings(m.id)]}
                for m in await service.list_metrics()
            ]
        }
    finally:
        if follower is not None:
            follower.cancel()
        await storage.close()


def dump_redis(url: str) -> dict[str, Any]:
    """Every key under PREFIX, by type, its name without the prefix."""
    client: Any = redis.Redis.from_url(url, decode_responses=True)  # replies are text, not checked types
    keys: dict[str, Any] = {}
    for key in sorted(client.scan_iter(f"{PREFIX}*")):
        kind = client.type(key)
        value: Any
        if kind == "string":
            value = client.get(key)
        elif kind == "hash":
            value = client.hgetall(key)
        elif kind == "list":
            value = client.lrange(key, 0, -1)
        elif kind == "set":
            value = sorted(client.smembers(key))
        elif kind == "zset":
            value = client.zrange(key, 0, -1, withscores=True)
        elif kind == "stream":
            value = client.xrange(key)
        else:
            raise ValueError(f"{key}: a {kind} is not dumped")
        keys[key.removeprefix(PREFIX)] = {"type": kind, "value": value}
    return keys


async def main(redis_url: str) -> None:
    assert "f80" in metricstream.__file__, (
        f"run with f80204b first on PYTHONPATH, not {metricstream.__file__}"
    )
    database = HERE / "f80204b.db"
    database.unlink(missing_ok=True)
    expected = {
        "sqlite": await write(f"sqlite:///{database}"),
        "redis": await write(f"{redis_url}?prefix={PREFIX}"),
    }
    dump = json.dumps(dump_redis(redis_url), indent=1, ensure_ascii=False)
    (HERE / "f80204b_redis.json").write_text(dump + "\n")
    (HERE / "f80204b_expected.json").write_text(json.dumps(expected, indent=1, ensure_ascii=False) + "\n")


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1]))
