"""Stores written by metricstream at f80204b, before metrics had labels (tests/data/make_f80204b_stores.py
wrote them): a SQLite file at schema version 2 and a Redis store dumped key by key. Each is copied afresh
for a test: the file to the test's own directory, the Redis keys under a fresh prefix. Both hold two
metrics named `cpu`, as every release before labels allowed and none since can make."""

from __future__ import annotations

import itertools
import json
import os
import shutil
from pathlib import Path
from typing import Any, Final

import redis

DATA: Final = Path(__file__).parent.parent / "data"
LEGACY_STORES: Final = ("sqlite", "redis")
_prefixes = itertools.count()


def expected(kind: str) -> list[dict[str, Any]]:
    """The metrics f80204b listed in that store, each with its readings."""
    metrics: list[dict[str, Any]] = json.loads((DATA / "f80204b_expected.json").read_text())[kind]["metrics"]
    return metrics


def legacy_store(kind: str, directory: Path, redis_url: str | None = None) -> str:
    """The URL of a fresh copy of the f80204b store of `kind` (`sqlite` or `redis`)."""
    if kind == "sqlite":
        copy = directory / "f80204b.db"
        shutil.copyfile(DATA / "f80204b.db", copy)
        return f"sqlite:///{copy}"
    assert redis_url is not None, "a Redis store needs the redis_server fixture's URL"
    prefix = f"legacy{os.getpid()}-{next(_prefixes)}:"
    client = redis.Redis.from_url(redis_url, decode_responses=True)
    try:
        for key, entry in json.loads((DATA / "f80204b_redis.json").read_text()).items():
            _restore(client, prefix + key, entry["type"], entry["value"])
    finally:
        client.close()
    return f"{redis_url}?prefix={prefix}"


def _restore(client: redis.Redis, key: str, kind: str, value: Any) -> None:
    if kind == "string":
        client.set(key, value)
    elif kind == "hash":
        client.hset(key, mapping=value)
    elif kind == "list":
        client.rpush(key, *value)
    elif kind == "set":
        client.sadd(key, *value)
    elif kind == "zset":
        client.zadd(key, dict(value))
    elif kind == "stream":
        for entry_id, fields in value:
            client.xadd(key, fields, id=entry_id)
    else:
        raise ValueError(f"{key}: no way to restore a {kind}")
