"""One rule for metric names on every path (HTTP and Python; the fast and the model's validation; create,
write by name, query by name): NFC, outer Unicode whitespace trimmed, no control character or lone surrogate
left, the length counted after that. Stores written before the rule find their names in NFC too, and keep
every name as it was stored."""

from __future__ import annotations

import sqlite3
import unicodedata
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
import redis

from metricstream.errors import ConflictError, ValidationError
from metricstream.ids import new_id
from metricstream.notebook.display import resolve
from metricstream.server.hub import Hub
from metricstream.storage.sqlite import _MIGRATIONS
from metricstream.wire import METRIC_CREATED
from tests.support.apitools import assert_error, post_metric, state
from tests.support.hubs import FAST

NFC, NFD = "caf\u00e9", "cafe\u0301"  # "café" composed, and as e + a combining acute accent
ZOE_NFC, ZOE_NFD = "Z\u00f6e", "Zo\u0308e"
PAST = datetime(2026, 1, 1, tzinfo=UTC)  # a datetime timestamp takes the model's (slow) path


def ids_named(http: httpx.Client, name: str) -> list[str]:
    answer = http.get("/metrics", params={"name": name})
    assert answer.status_code == 200, answer.text
    return [metric["id"] for metric in answer.json()]


def python_refusals(hub: Hub, name: str) -> list[str]:
    """The message of each Python call given `name`, all of which must refuse it."""
    calls: list[Callable[[], Any]] = [
        lambda: hub.service.create_metric(name),
        lambda: hub.service.metric(name),
        lambda: hub.service.list_metrics(name=name),
        lambda: hub.service.log(name, 1),
        lambda: hub.service.log(name, 1, timestamp=PAST),
        lambda: hub.service.create_readings([{"metric": name, "value": 1}]),
    ]
    messages = []
    for call in calls:
        with pytest.raises(ValidationError) as raised:
            call()
        messages.append(raised.value.message)
    return messages


@pytest.mark.parametrize(
    ("name", "code"),
    [
        ("\x1ccpu", "U+001C"),  # the example: str.strip() took it away on the fast path only
        ("cpu\x1f", "U+001F"),
        ("c\x1epu", "U+001E"),
        ("c\tpu", "U+0009"),  # whitespace, but not at an end
        ("c\x85pu", "U+0085"),
        ("\x00cpu", "U+0000"),
        ("cpu\x7f", "U+007F"),
    ],
)
def test_a_control_character_in_a_name_is_refused_on_every_path(
    hub: Hub, http: httpx.Client, name: str, code: str
) -> None:
    cpu = post_metric(http, "cpu")
    before = state(http)
    name_error = f"name must not contain control characters ({code})"
    metric_error = f"metric must not contain control characters ({code})"
    assert_error(http.post("/metrics", json={"name": name}), 400, name_error)
    assert_error(http.post("/metrics/readings", json={"metric": name, "value": 1}), 400, metric_error)
    timed = {"metric": name, "value": 1, "timestamp": "2026-01-01T00:00:00Z"}
    assert_error(http.post("/metrics/readings", json=timed), 400, metric_error)
    batch = http.post(
        "/metrics/readings/batch",
        json={"readings": [{"metric_id": cpu["id"], "value": 1}, {"metric": name, "value": 1}]},
    )
    assert batch.status_code == 400
    assert batch.json()["errors"] == [{"index": 1, "error": metric_error}]
    assert_error(http.get("/metrics", params={"name": name}), 400, name_error)  # it found "cpu"
    messages = python_refusals(hub, name)
    assert messages[:3] == [name_error] * 3
    assert messages[3:5] == [metric_error] * 2
    assert messages[5] == f"1 of 1 readings rejected, none stored: readings[0]: {metric_error}"
    assert state(http) == before  # no reading of "cpu", no metric "\x1ccpu"


def test_a_lone_surrogate_in_a_name_is_refused_not_a_type_error(hub: Hub) -> None:
    # only Python can give one: JSON text with "\ud800" is not valid JSON to the server
    messages = python_refusals(hub, "cpu\ud800")
    assert messages[0] == "name must not contain a lone surrogate (U+D800)"
    assert messages[3] == "metric must not contain a lone surrogate (U+D800)"
    assert hub.service.list_metrics() == []


def test_nfc_and_nfd_spellings_name_one_metric(hub: Hub, http: httpx.Client) -> None:
    with hub.subscribe() as live:
        first = hub.service.log(NFD, 1)
        created = next(iter(live))
    assert (created.type, created.data["name"]) == (METRIC_CREATED, NFC)  # stored and announced in NFC
    timed = {"value": 1, "timestamp": "2026-01-01T00:00:00Z"}
    batch = {"readings": [{"metric": NFC, **timed}, {"metric": NFD, **timed}]}
    in_batch = http.post("/metrics/readings/batch", json=batch).json()["readings"]
    written = [
        http.post("/metrics/readings", json={"metric": NFC, "value": 1}).json()["metric_id"],
        http.post("/metrics/readings", json={"metric": NFD, **timed}).json()["metric_id"],
        *[reading["metric_id"] for reading in in_batch],
        hub.service.log(NFC, 1, timestamp=PAST).metric_id,
        hub.service.log(NFD, 1, timestamp=PAST).metric_id,
        hub.service.metric(NFC).id,
        hub.service.metric(NFD).id,
    ]
    assert written == [first.metric_id] * 8
    assert ids_named(http, NFD) == ids_named(http, NFC) == [first.metric_id]
    assert [m.id for m in hub.service.list_metrics(name=NFD)] == [first.metric_id]
    # a create with the NFD spelling names the same metric: it is answered, not made again
    again = http.post("/metrics", json={"name": NFD})
    assert (again.status_code, again.json()["id"], again.json()["name"]) == (200, first.metric_id, NFC)
    assert hub.service.create_metric(f" {NFD} ").id == first.metric_id
    assert len(hub.service.list_metrics()) == 1


def test_the_name_limit_counts_characters_after_normalisation(make_hub: Callable[..., Hub]) -> None:
    hub = make_hub(max_name_length=4)
    too_long = "metric must be a string of 1 to 4 characters (after trimming spaces)"
    with httpx.Client(base_url=hub.url, timeout=10) as http:
        cafe = post_metric(http, NFD)  # 5 code points as given, 4 in NFC
        by_name = http.post("/metrics/readings", json={"metric": NFD, "value": 1})
        assert by_name.status_code == 201, by_name.text
        assert by_name.json()["metric_id"] == cafe["id"]
        assert hub.service.log(NFD, 1, timestamp=PAST).metric_id == cafe["id"]
        assert_error(http.post("/metrics/readings", json={"metric": NFD + "s", "value": 1}), 400, too_long)
    with pytest.raises(ValidationError, match="1 to 4 characters"):
        hub.service.log(NFD + "s", 1, timestamp=PAST)


@pytest.mark.parametrize("space", ["  ", "\t\n", "\u3000", "\xa0", "\x85", "\u2028"])
def test_outer_unicode_whitespace_is_trimmed_on_every_path(hub: Hub, http: httpx.Client, space: str) -> None:
    name = f"{space}cpu{space}"
    cpu = post_metric(http, name)
    assert cpu["name"] == "cpu"
    assert http.post("/metrics/readings", json={"metric": name, "value": 1}).json()["metric_id"] == cpu["id"]
    assert hub.service.log(name, 1, timestamp=PAST).metric_id == cpu["id"]
    assert hub.service.metric(name).id == cpu["id"]
    assert ids_named(http, name) == [cpu["id"]]
    assert_error(http.post("/metrics", json={"name": space}), 400)  # empty once trimmed


def test_show_looks_a_name_up_by_the_same_rule(hub: Hub) -> None:
    cpu = hub.service.create_metric("cpu")
    cafe = hub.service.create_metric(NFC)
    assert resolve(hub.service, NFD) == cafe
    assert resolve(hub.service, "\u3000cpu ") == cpu
    with pytest.raises(ValidationError, match=r"control characters \(U\+001C\)"):
        resolve(hub.service, "\x1ccpu")


# --- stores written before names were normalised -------------------------------------------------


def test_sqlite_from_before_nfc_finds_old_names_in_nfc_and_keeps_them(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    with sqlite3.connect(path) as db:  # as schema version 2 left it, with names given in NFD
        for number, script in enumerate(_MIGRATIONS[:2], start=1):
            db.executescript(f"BEGIN; {script}; PRAGMA user_version = {number}; COMMIT;")
        old, twins = new_id(), [new_id(), new_id()]
        rows = [(old, NFD), (twins[0], ZOE_NFD), (twins[1], ZOE_NFC), (new_id(), "\x1ccpu")]
        db.executemany("INSERT INTO metrics (id, name) VALUES (?, ?)", rows)
    with Hub(port=0, store=f"sqlite:///{path}", **FAST) as hub:
        assert [m.name for m in hub.service.list_metrics()] == [name for _, name in rows]  # as stored
        assert hub.service.log(NFC, 1).metric_id == old
        assert hub.service.metric(NFD).id == old
        assert [m.id for m in hub.service.list_metrics(name=ZOE_NFC)] == twins
        with pytest.raises(ConflictError):
            hub.service.log(ZOE_NFD, 1)
        assert len(hub.service.list_metrics()) == 4
    with sqlite3.connect(path) as db:
        assert db.execute("PRAGMA user_version").fetchone()[0] == len(_MIGRATIONS)


def test_redis_from_before_nfc_finds_old_names_in_nfc_and_keeps_them(redis_server: str) -> None:
    prefix = f"oldnfc{uuid.uuid4().hex[:8]}:"
    store = f"{redis_server}?prefix={prefix}"
    with Hub(port=0, store=store, **FAST) as hub:
        old = hub.service.create_metric(NFC)
        # two of one name, as releases before labels made them: labelled here, the labels removed below
        twins = [hub.service.create_metric(ZOE_NFC, labels={"copy": str(i)}) for i in range(2)]
    client = redis.Redis.from_url(redis_server)
    try:  # as a release that kept names as given left the store: one in NFD, one of the twins too
        client.delete(f"{prefix}metric_labels")
        for metric_id, name in [(old.id, NFD), (twins[0].id, ZOE_NFD), (twins[1].id, ZOE_NFC)]:
            body = orjson.dumps({"id": metric_id, "name": name, "input_frequency": None})
            client.hset(f"{prefix}metrics", metric_id, body)
            client.srem(f"{prefix}named:{unicodedata.normalize('NFC', name)}", metric_id)
            client.sadd(f"{prefix}named:{name}", metric_id)
        client.delete(f"{prefix}names_nfc")
        with Hub(port=0, store=store, **FAST) as hub:
            names = [m.name for m in hub.service.list_metrics()]
            assert names == [NFD, ZOE_NFD, ZOE_NFC]  # as stored
            assert hub.service.log(NFC, 1).metric_id == old.id
            assert [m.id for m in hub.service.list_metrics(name=ZOE_NFD)] == [m.id for m in twins]
            with pytest.raises(ConflictError):
                hub.service.log(ZOE_NFC, 1)
            hub.service.delete_metric(twins[0].id)  # found in its NFC set, and taken out of it
            assert hub.service.log(ZOE_NFC, 1).metric_id == twins[1].id
    finally:
        client.close()
