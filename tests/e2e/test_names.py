"""Writes by name: `{"metric": "<name>"}` in place of `metric_id`, over HTTP and in Python
(`hub.service.log`, `hub.service.metric`), on every store. A new name creates its metric first, announced
before the reading, in the same step; concurrent first writes of one name, from threads or from processes
sharing Redis, create one metric. A name several metrics have (only stores written before labels can hold
such duplicates) is a 409: tests/e2e/test_legacy_stores.py."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
import redis

from metricstream.domain.values import Metric, MetricReading
from metricstream.errors import ConflictError, LimitExceededError, ValidationError
from metricstream.ids import new_id
from metricstream.server.hub import Hub
from metricstream.storage import open_storage
from metricstream.storage.base import MetricLimitReached, NameTaken
from metricstream.storage.sqlite import _MIGRATIONS
from metricstream.stream.log import Event
from metricstream.wire import GENESIS_ID, METRIC_CREATED, READING_CREATED
from tests.support.apitools import assert_error, post_metric, state
from tests.support.hubs import FAST
from tests.support.processes import servers_on
from tests.support.raw_stream import RawStream

MISSING = "metric_id or metric (a metric's name) is required"
TWICE = "give metric_id or metric (a metric's name), not both"


def names_of(http: httpx.Client, name: str) -> list[dict[str, Any]]:
    found = http.get("/metrics", params={"name": name})
    assert found.status_code == 200
    metrics: list[dict[str, Any]] = found.json()
    return metrics


def test_a_new_name_creates_its_metric_announced_before_the_reading(hub: Hub, http: httpx.Client) -> None:
    start = hub.service.last_event_id
    with hub.subscribe() as live:
        answer = http.post("/metrics/readings", json={"metric": "  boiler/temp ", "value": 71.5})
        assert answer.status_code == 201, answer.text
        reading = answer.json()
        created, announced = next(iter(live)), next(iter(live))
    [metric] = names_of(http, "boiler/temp")
    assert metric == {
        "id": reading["metric_id"],
        "name": "boiler/temp",
        "input_frequency": None,
        "labels": {},
        "unit": None,
        "description": None,
    }
    assert (created.type, created.data) == (METRIC_CREATED, metric)
    assert (announced.type, announced.data) == (READING_CREATED, reading)
    assert uuid.UUID(created.id) < uuid.UUID(announced.id)
    # the same name again writes to the same metric, announcing only the reading
    again = http.post("/metrics/readings", json={"metric": "boiler/temp", "value": 72})
    assert again.json()["metric_id"] == metric["id"]
    assert len(http.get("/metrics").json()) == 1
    # a replay gives the same order
    with hub.subscribe(last_event_id=start) as replay:
        kinds = [(event.type, event.data["id"]) for _, event in zip(range(3), replay, strict=False)]
    assert kinds == [
        (METRIC_CREATED, metric["id"]),
        (READING_CREATED, reading["id"]),
        (READING_CREATED, again.json()["id"]),
    ]


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"value": 1}, MISSING),
        ({"metric_id": None, "metric": None, "value": 1}, MISSING),
        ({"metric": "a", "metric_id": new_id(), "value": 1}, TWICE),
        (
            {"metric": "", "value": 1},
            "metric must be a string of 1 to 200 characters (after trimming spaces)",
        ),
        (
            {"metric": "   ", "value": 1},
            "metric must be a string of 1 to 200 characters (after trimming spaces)",
        ),
        ({"metric": 5, "value": 1}, "metric must be a string of 1 to 200 characters (after trimming spaces)"),
        (
            {"metric": "x" * 201, "value": 1},
            "metric must be a string of 1 to 200 characters (after trimming spaces)",
        ),
        (
            {"metric": "a", "value": 0},
            "value must be a finite number greater than 0 "
            "(set positive_only=false to accept any finite value)",
        ),
        ({"metric": "a", "value": 1, "timestamp": "noon"}, None),
    ],
)
def test_a_bad_write_by_name_is_400_and_stores_nothing(
    hub: Hub, http: httpx.Client, body: dict[str, Any], message: str | None
) -> None:
    post_metric(http, "a")
    before = state(http)
    assert_error(http.post("/metrics/readings", json=body), 400, message)
    batch = http.post("/metrics/readings/batch", json={"readings": [{"metric": "b", "value": 1}, body]})
    assert batch.status_code == 400
    assert [error["index"] for error in batch.json()["errors"]] == [1]
    with pytest.raises(ValidationError) as raised:
        hub.service.create_readings([body])
    if message is not None:
        assert message in str(raised.value)
    assert state(http) == before  # no metric "b" either: all or nothing


def test_the_configured_name_limit_holds_for_names_in_writes(make_hub: Callable[..., Hub]) -> None:
    hub = make_hub(max_name_length=8)
    with httpx.Client(base_url=hub.url, timeout=10) as http:
        too_long = http.post("/metrics/readings", json={"metric": "123456789", "value": 1})
        assert_error(too_long, 400, "metric must be a string of 1 to 8 characters (after trimming spaces)")
        assert http.post("/metrics/readings", json={"metric": "12345678", "value": 1}).status_code == 201
    with pytest.raises(ValidationError, match="1 to 8 characters"):
        hub.service.log("123456789", 1)


def test_a_batch_mixes_names_and_ids_all_or_nothing(hub: Hub, http: httpx.Client) -> None:
    known = post_metric(http, "known")["id"]
    items = [
        {"metric": "new-a", "value": 1},
        {"metric_id": known, "value": 2},
        {"metric": "known", "value": 3},
        {"metric": "new-b", "value": 4},
        {"metric": "new-a", "value": 5},
    ]
    with hub.subscribe() as live:
        answer = http.post("/metrics/readings/batch", json={"readings": items})
        assert answer.status_code == 201, answer.text
        events = [event for _, event in zip(range(7), live, strict=False)]
    readings = answer.json()["readings"]
    ids = {metric["name"]: metric["id"] for metric in http.get("/metrics").json()}
    assert list(ids) == ["known", "new-a", "new-b"]
    assert [r["metric_id"] for r in readings] == [
        ids[n] for n in ("new-a", "known", "known", "new-b", "new-a")
    ]
    assert [r["value"] for r in readings] == [1, 2, 3, 4, 5]
    # both metrics announced first, then the readings in the batch's order
    assert [(e.type, e.data["id"]) for e in events] == [
        (METRIC_CREATED, ids["new-a"]),
        (METRIC_CREATED, ids["new-b"]),
        *[(READING_CREATED, r["id"]) for r in readings],
    ]
    # a batch with a bad item creates nothing
    before = state(http)
    refused = http.post(
        "/metrics/readings/batch",
        json={"readings": [{"metric": "new-c", "value": 1}, {"metric_id": new_id(), "value": 1}]},
    )
    assert refused.status_code == 404
    assert state(http) == before


def test_python_log_and_metric_get_or_create(hub: Hub) -> None:
    with hub.subscribe() as live:
        metric = hub.service.metric("rig/pressure")
        assert next(iter(live)).data == metric.to_dict()
        reading = hub.service.log("rig/pressure", 2.5, timestamp="2026-01-01T00:00:00Z")
        assert next(iter(live)).data == reading.to_dict()
    assert isinstance(reading, MetricReading)
    assert (reading.metric_id, reading.value, reading.timestamp.isoformat()) == (
        metric.id,
        2.5,
        "2026-01-01T00:00:00+00:00",
    )
    assert hub.service.metric(" rig/pressure ") == metric  # found, not created again
    fresh = hub.service.log("rig/flow", 1)
    assert hub.service.metric("rig/flow").id == fresh.metric_id
    assert [m.name for m in hub.service.list_metrics()] == ["rig/pressure", "rig/flow"]
    assert hub.service.list_metrics(name="rig/flow") == [hub.service.get_metric(fresh.metric_id)]
    with pytest.raises(ValidationError, match="value must be a finite number greater than 0"):
        hub.service.log("rig/flow", -1)
    with pytest.raises(ValidationError, match="name must be a string"):
        hub.service.metric("")


def test_a_deleted_name_is_created_anew(hub: Hub) -> None:
    first = hub.service.log("gone", 1).metric_id
    hub.service.delete_metric(first)
    second = hub.service.log("gone", 2).metric_id
    assert second != first
    assert [m.id for m in hub.service.list_metrics(name="gone")] == [second]


def test_names_count_under_max_metrics(make_hub: Callable[..., Hub]) -> None:
    hub = make_hub(max_metrics=2)
    with httpx.Client(base_url=hub.url, timeout=10) as http:
        post_metric(http, "one")
        assert http.post("/metrics/readings", json={"metric": "two", "value": 1}).status_code == 201
        before = state(http)
        full = http.post("/metrics/readings", json={"metric": "three", "value": 1})
        assert_error(
            full, 409, "metric limit reached: this server holds at most 2 metrics (the max_metrics setting)"
        )
        # a known name still writes
        assert http.post("/metrics/readings", json={"metric": "one", "value": 1}).status_code == 201
        assert len(state(http).metrics) == 2
        assert state(http).metrics[0]["name"] == before.metrics[0]["name"]
    with pytest.raises(LimitExceededError):
        hub.service.metric("three")


def test_concurrent_first_writes_from_threads_create_one_metric(hub: Hub) -> None:
    threads, names = 12, ["alpha", "beta", "gamma"]
    barrier = threading.Barrier(threads)
    failures: list[BaseException] = []

    def work(index: int) -> None:
        try:
            with httpx.Client(base_url=hub.url, timeout=20) as http:
                barrier.wait(20)
                for name in names:
                    if index % 2:
                        hub.service.log(name, index + 1)
                    else:
                        answer = http.post("/metrics/readings", json={"metric": name, "value": index + 1})
                        assert answer.status_code == 201, answer.text
        except BaseException as error:
            failures.append(error)

    workers = [threading.Thread(target=work, args=(index,)) for index in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(60)
    assert not failures
    metrics = hub.service.list_metrics()
    assert sorted(m.name for m in metrics) == sorted(names)
    for metric in metrics:
        assert len(hub.service.list_readings(metric.id)) == threads


@pytest.mark.slow
def test_concurrent_first_writes_from_processes_sharing_redis_create_one_metric(redis_server: str) -> None:
    store = f"{redis_server}?prefix=names{uuid.uuid4().hex[:8]}:"
    names = [f"sensor-{n}" for n in range(8)]
    per_server = 4
    with servers_on(store, 3) as urls:
        streams = [RawStream(url, headers={"Last-Event-ID": GENESIS_ID}) for url in urls]
        for stream in streams:
            stream.expect_open()
        barrier = threading.Barrier(len(urls) * per_server)
        failures: list[BaseException] = []

        def work(url: str) -> None:
            try:
                with httpx.Client(base_url=url, timeout=20) as http:
                    barrier.wait(20)
                    for name in names:
                        answer = http.post("/metrics/readings", json={"metric": name, "value": 1})
                        assert answer.status_code == 201, answer.text
            except BaseException as error:
                failures.append(error)

        workers = [threading.Thread(target=work, args=(url,)) for url in urls for _ in range(per_server)]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join(60)
        assert not failures
        writes = len(workers) * len(names)
        with httpx.Client(base_url=urls[1], timeout=10) as http:
            metrics = http.get("/metrics").json()
            assert sorted(m["name"] for m in metrics) == names  # one metric per name
            for metric in metrics:
                assert len(http.get(f"/metrics/{metric['id']}/readings").json()) == len(workers)
        # every process streams each metric's creation before any of its readings, once
        try:
            for stream in streams:
                seen: set[str] = set()
                created = 0
                frames = [stream.next_event() for _ in range(len(names) + writes)]
                for frame in frames:
                    if frame.event == METRIC_CREATED:
                        created += 1
                        seen.add(frame.json()["id"])
                    else:
                        assert frame.json()["metric_id"] in seen
                assert created == len(names)
        finally:
            for stream in streams:
                stream.close()


# --- the stores' own step: a new name is checked where it is stored ------------------------------


def _reading_of(metric: Metric) -> tuple[MetricReading, Event]:
    reading_id, event_id = sorted([new_id(), new_id()])
    reading = MetricReading(reading_id, metric.id, 1.0, datetime.now(UTC))
    return reading, Event.create(READING_CREATED, reading, 0.0, event_id)


def test_a_store_refuses_a_taken_name_or_a_full_store_and_writes_nothing(store_url: str) -> None:
    async def scenario() -> None:
        store = open_storage(store_url)
        await store.open()
        try:
            taken = Metric(new_id(), "taken")
            assert await store.add_metric(taken, Event.create(METRIC_CREATED, taken, 0.0))
            before_events = len((await store.retained_events()).events)
            again = Metric(new_id(), "taken")
            reading, event = _reading_of(again)
            with pytest.raises(NameTaken):
                await store.add_readings(
                    [reading], [Event.create(METRIC_CREATED, again, 0.0), event], None, [again]
                )
            fresh = Metric(new_id(), "fresh")
            reading, event = _reading_of(fresh)
            created = Event.create(METRIC_CREATED, fresh, 0.0)
            with pytest.raises(MetricLimitReached):
                await store.add_readings([reading], [created, event], None, [fresh], max_metrics=1)
            assert await store.list_metrics() == [taken]
            assert await store.find_metrics("taken") == [taken]
            assert await store.find_metrics("fresh") == []
            assert await store.list_readings(again.id) == []
            assert await store.list_readings(fresh.id) == []
            assert len((await store.retained_events()).events) == before_events
            # with room and a free name, both are stored in one step
            await store.add_readings(
                [reading], [Event.create(METRIC_CREATED, fresh, 0.0), event], None, [fresh], 2
            )
            assert await store.find_metrics("fresh") == [fresh]
            assert await store.list_readings(fresh.id) == [reading]
        finally:
            await store.close()

    asyncio.run(scenario())


def test_a_store_writes_nothing_when_one_metric_of_a_batch_is_gone(store_url: str) -> None:
    async def scenario() -> None:
        store = open_storage(store_url)
        await store.open()
        try:
            present = Metric(new_id(), "present")
            await store.add_metric(present, Event.create(METRIC_CREATED, present, 0.0))
            kept, kept_event = _reading_of(present)
            gone, gone_event = _reading_of(Metric(new_id(), "never stored"))
            before_events = len((await store.retained_events()).events)
            with pytest.raises(Exception, match="not found"):
                await store.add_readings([kept, gone], [kept_event, gone_event])
            assert await store.list_readings(present.id) == []
            assert len((await store.retained_events()).events) == before_events
        finally:
            await store.close()

    asyncio.run(scenario())


# --- names in stores written before names were indexed ---------------------------------------------


def test_sqlite_from_before_the_name_index_finds_its_metrics_by_name(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    old = Metric(new_id(), "kiln")
    with sqlite3.connect(path) as db:  # as schema version 1 left it
        db.executescript(f"BEGIN; {_MIGRATIONS[0]}; PRAGMA user_version = 1; COMMIT;")
        db.execute("INSERT INTO metrics (id, name) VALUES (?, ?)", (old.id, old.name))
    with Hub(port=0, store=f"sqlite:///{path}", **FAST) as hub:
        assert hub.service.log("kiln", 900).metric_id == old.id
        assert hub.service.metric("kiln") == old
    with sqlite3.connect(path) as db:
        assert db.execute("PRAGMA user_version").fetchone()[0] == len(_MIGRATIONS)
        indexes = {row[1] for row in db.execute("PRAGMA index_list(metrics)")}
        assert "metrics_by_name_key" in indexes


def test_redis_from_before_the_name_index_finds_its_metrics_by_name(redis_server: str) -> None:
    prefix = f"oldnames{uuid.uuid4().hex[:8]}:"
    store = f"{redis_server}?prefix={prefix}"
    with Hub(port=0, store=store, **FAST) as hub:
        old = hub.service.create_metric("kiln")
        # two of one name, as releases before labels made them: labelled here, the labels removed below
        twins = [hub.service.create_metric("twin", labels={"copy": str(i)}) for i in range(2)]
    client = redis.Redis.from_url(redis_server)
    try:  # as a release without the index (and without labels) left the store
        for twin in twins:
            client.hset(f"{prefix}metrics", twin.id, orjson.dumps({"id": twin.id, "name": "twin"}))
        removed = client.delete(
            f"{prefix}names_indexed", f"{prefix}named:kiln", f"{prefix}named:twin", f"{prefix}metric_labels"
        )
        assert removed == 4
        with Hub(port=0, store=store, **FAST) as hub:
            assert hub.service.log("kiln", 900).metric_id == old.id
            assert [m.id for m in hub.service.list_metrics(name="twin")] == [m.id for m in twins]
            with pytest.raises(ConflictError):
                hub.service.log("twin", 1)
    finally:
        client.close()
