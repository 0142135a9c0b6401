"""Labels, unit and description (#23 point 1), on every store, over HTTP and in Python: a metric is its
name and labels; a repeated create answers the existing metric or 409; writes by name take labels; lists
and the stream filter by labels (a subset match); restarts keep it all. Stores written before labels:
tests/e2e/test_legacy_stores.py."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from metricstream.errors import ConflictError, ValidationError
from metricstream.server.hub import Hub
from metricstream.wire import GENESIS_ID, METRIC_CREATED, METRIC_DELETED, READING_CREATED
from tests.support.apitools import assert_error, state
from tests.support.hubs import StartHub
from tests.support.processes import servers_on
from tests.support.raw_stream import RawStream

OpenStream = Callable[..., RawStream]


def created(answer: httpx.Response, status: int = 201) -> dict[str, Any]:
    assert answer.status_code == status, answer.text
    body: dict[str, Any] = answer.json()
    return body


def ids(answer: httpx.Response) -> list[str]:
    assert answer.status_code == 200, answer.text
    return [metric["id"] for metric in answer.json()]


def test_a_metric_has_labels_unit_and_description_everywhere(hub: Hub, http: httpx.Client) -> None:
    body = {"name": "temp", "labels": {"room": "lab", "floor": "2"}, "unit": " Cel ", "description": "air"}
    with hub.subscribe() as live:
        metric = created(http.post("/metrics", json=body))
        event = next(iter(live))
    assert metric["labels"] == {"floor": "2", "room": "lab"}
    assert (metric["unit"], metric["description"]) == ("Cel", "air")  # trimmed
    assert (event.type, event.data) == (METRIC_CREATED, metric)
    assert http.get(f"/metrics/{metric['id']}").json() == metric
    assert http.get("/metrics").json() == [metric]
    assert http.get("/metrics", params={"with_readings": "true"}).json()[0]["unit"] == "Cel"
    python = hub.service.get_metric(metric["id"])
    assert (python.labels, python.unit, python.description) == ({"floor": "2", "room": "lab"}, "Cel", "air")
    assert python.to_dict() == metric
    made = hub.service.create_metric("rpm", labels={"shaft": "1"}, unit="1/min", description="speed")
    assert made.to_dict() == http.get(f"/metrics/{made.id}").json()


def test_a_store_reopened_keeps_labels_unit_and_description(
    make_hub: Callable[..., Hub], store_url: str
) -> None:
    if store_url.startswith("memory"):
        pytest.skip("a memory store does not outlive its hub")
    hub = make_hub()
    metric = hub.service.create_metric("temp", labels={"room": "lab"}, unit="Cel", description="air")
    reading = hub.service.log("temp", 21.5, labels={"room": "lab"})
    hub.stop()
    again = make_hub()
    assert again.service.list_metrics() == [metric]
    assert again.service.log("temp", 22, labels={"room": "lab"}).metric_id == metric.id == reading.metric_id


BAD = [
    ({"labels": {f"k{i}": "v" for i in range(33)}}, "labels may have at most 32 pairs, not 33"),
    (
        {"labels": {"1x": "v"}},
        "label name '1x' is not valid: use letters, digits and _, not starting with a digit",
    ),
    ({"labels": {"__x": "v"}}, "label name '__x' is not valid: names starting with __ are reserved"),
    ({"labels": {"host": 1}}, "label 'host' must have a string value"),
    ({"labels": {"host": ""}}, "label 'host' must not be empty: leave the label out instead"),
    ({"labels": ["host"]}, "labels must be an object of label names to string values"),
    ({"unit": "x" * 33}, "unit must be a string of at most 32 characters"),
    ({"unit": 5}, "unit must be a string of at most 32 characters"),
    ({"unit": "m\x00s"}, "unit must not contain control characters (U+0000)"),
    ({"description": "d" * 1025}, "description must be a string of at most 1024 characters"),
]


@pytest.mark.parametrize(("extra", "message"), BAD)
def test_bad_labels_unit_or_description_are_refused_alike(
    start_hub: StartHub, extra: dict[str, Any], message: str
) -> None:
    hub = start_hub()
    with httpx.Client(base_url=hub.url, timeout=10) as http:
        assert_error(http.post("/metrics", json={"name": "m", **extra}), 400, message)
        with pytest.raises(ValidationError) as refused:
            hub.service.create_metric("m", **extra)
        assert str(refused.value) == message
        if "labels" in extra:  # a write by name checks them the same way
            by_name = {"metric": "m", "value": 1, "labels": extra["labels"]}
            assert_error(http.post("/metrics/readings", json=by_name), 400, message)
            with pytest.raises(ValidationError, match=f"^{message}$".replace("(", r"\(").replace(")", r"\)")):
                hub.service.log("m", 1, labels=extra["labels"])
        assert http.get("/metrics").json() == []


def test_name_and_labels_identify_a_metric(hub: Hub, http: httpx.Client, open_stream: OpenStream) -> None:
    a = created(http.post("/metrics", json={"name": "cpu", "labels": {"host": "a"}, "unit": "%"}))
    b = created(http.post("/metrics", json={"name": "cpu", "labels": {"host": "b"}, "unit": "%"}))
    bare = created(http.post("/metrics", json={"name": "cpu"}))
    assert len({a["id"], b["id"], bare["id"]}) == 3
    stream = open_stream(hub.url)
    stream.expect_open()
    # the same again: the existing metric, 200, nothing announced
    again = http.post("/metrics", json={"name": " cpu", "labels": {"host": "a"}, "unit": "%"})
    assert created(again, 200) == a
    assert hub.service.create_metric("cpu", labels={"host": "a"}, unit="%") == hub.service.get_metric(a["id"])
    assert created(http.post("/metrics", json={"name": "cpu"}), 200) == bare
    # asking for another unit, or none, or another input_frequency, is a conflict naming the metric
    before = state(http)
    conflicts: list[tuple[dict[str, Any], str]] = [
        ({"unit": "ratio"}, "unit"),
        ({}, "unit"),
        ({"unit": "%", "input_frequency": 5, "description": "busy"}, "input_frequency and description"),
    ]
    for body, fields in conflicts:
        message = (
            f"metric {a['id']} has this name and these labels already, with another {fields}: give the same, "
            "or other labels for another metric"
        )
        assert_error(
            http.post("/metrics", json={"name": "cpu", "labels": {"host": "a"}, **body}), 409, message
        )
        with pytest.raises(ConflictError) as refused:
            hub.service.create_metric(
                "cpu",
                body.get("input_frequency"),
                labels={"host": "a"},
                **{k: v for k, v in body.items() if k != "input_frequency"},
            )
        assert str(refused.value) == message
    assert state(http) == before
    # nothing was announced by the repeats: the next event is this one
    later = hub.service.create_metric("mem")
    assert stream.next_event().json()["id"] == later.id


def test_concurrent_creates_from_threads_make_one_metric(hub: Hub) -> None:
    threads = 12
    barrier = threading.Barrier(threads)
    results: list[tuple[int, str]] = []
    failures: list[BaseException] = []

    def work(index: int) -> None:
        try:
            with httpx.Client(base_url=hub.url, timeout=20) as http:
                barrier.wait(20)
                if index % 3 == 0:
                    results.append((201, hub.service.log("cpu", 1, labels={"host": "a"}).metric_id))
                elif index % 3 == 1:
                    results.append((200, hub.service.create_metric("cpu", labels={"host": "a"}).id))
                else:
                    answer = http.post("/metrics", json={"name": "cpu", "labels": {"host": "a"}})
                    results.append((answer.status_code, answer.json()["id"]))
        except BaseException as error:
            failures.append(error)

    workers = [threading.Thread(target=work, args=(index,)) for index in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(60)
    assert not failures
    [metric] = hub.service.list_metrics()
    assert {metric_id for _, metric_id in results} == {metric.id}
    assert {status for status, _ in results} <= {200, 201}


def test_concurrent_creates_from_processes_sharing_redis_make_one_metric(redis_server: str) -> None:
    store = f"{redis_server}?prefix=labels{uuid.uuid4().hex[:8]}:"
    per_server = 4
    with servers_on(store, 3) as urls:
        barrier = threading.Barrier(len(urls) * per_server)
        answers: list[httpx.Response] = []
        failures: list[BaseException] = []

        def work(url: str, index: int) -> None:
            try:
                with httpx.Client(base_url=url, timeout=20) as http:
                    barrier.wait(20)
                    for host in ("a", "b"):
                        if index % 2:
                            body = {"metric": "cpu", "labels": {"host": host}, "value": 1}
                            answers.append(http.post("/metrics/readings", json=body))
                        else:
                            body = {"name": "cpu", "labels": {"host": host}}
                            answers.append(http.post("/metrics", json=body))
            except BaseException as error:
                failures.append(error)

        workers = [
            threading.Thread(target=work, args=(url, index)) for url in urls for index in range(per_server)
        ]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join(60)
        assert not failures
        assert {answer.status_code for answer in answers} <= {200, 201}, [a.text for a in answers]
        with httpx.Client(base_url=urls[0], timeout=10) as http:
            metrics = http.get("/metrics").json()
    assert sorted(m["labels"]["host"] for m in metrics) == ["a", "b"]
    by_host = {m["labels"]["host"]: m["id"] for m in metrics}
    for answer in answers:
        body = answer.json()
        assert body.get("metric_id", body["id"]) in by_host.values()


def test_writes_by_name_take_labels(hub: Hub, http: httpx.Client) -> None:
    with hub.subscribe() as live:
        first = created(
            http.post("/metrics/readings", json={"metric": "cpu", "labels": {"host": "a"}, "value": 1})
        )
        made, announced = next(iter(live)), next(iter(live))
    assert (made.type, made.data["name"], made.data["labels"]) == (METRIC_CREATED, "cpu", {"host": "a"})
    assert (announced.type, announced.data) == (READING_CREATED, first)
    assert made.data["id"] == first["metric_id"]
    # the same name and labels again: the same metric; other labels or none: other metrics
    again = created(
        http.post("/metrics/readings", json={"metric": "cpu", "labels": {"host": "a"}, "value": 2})
    )
    assert again["metric_id"] == first["metric_id"]
    other = hub.service.log("cpu", 3, labels={"host": "b"})
    bare = hub.service.log("cpu", 4)
    batch = {
        "readings": [
            {"metric": "cpu", "labels": {"host": "b"}, "value": 5},
            {"metric": "cpu", "value": 6},
            {"metric": "cpu", "labels": {"host": "c"}, "value": 7},
        ]
    }
    in_batch = created(http.post("/metrics/readings/batch", json=batch))["readings"]
    assert [r["metric_id"] for r in in_batch[:2]] == [other.metric_id, bare.metric_id]
    assert len({first["metric_id"], other.metric_id, bare.metric_id, in_batch[2]["metric_id"]}) == 4
    assert hub.service.metric("cpu", labels={"host": "c"}).id == in_batch[2]["metric_id"]
    assert hub.service.metric("cpu").id == bare.metric_id
    # labels name a metric by its name: not with an id
    refused = http.post(
        "/metrics/readings", json={"metric_id": bare.metric_id, "labels": {"x": "1"}, "value": 1}
    )
    assert_error(
        refused, 400, "labels go with metric (a name), not with metric_id: an id names one metric already"
    )


def test_metrics_are_listed_by_name_and_labels(hub: Hub, http: httpx.Client) -> None:
    cpu_a = hub.service.create_metric("cpu", labels={"host": "a"})
    hub.service.create_metric("cpu", labels={"host": "b"})
    mem_a = hub.service.create_metric("mem", labels={"host": "a", "dc": "x"})
    odd = hub.service.create_metric("odd", labels={"path": "a,b\\c=d"})
    assert ids(http.get("/metrics", params={"labels": "host=a"})) == [cpu_a.id, mem_a.id]  # a subset match
    assert ids(http.get("/metrics", params={"labels": "host=a,dc=x"})) == [mem_a.id]
    assert ids(http.get("/metrics", params=[("labels", "host=a"), ("labels", "dc=x")])) == [mem_a.id]
    assert ids(http.get("/metrics", params={"name": "cpu", "labels": "host=a"})) == [cpu_a.id]
    assert ids(http.get("/metrics", params={"name": "mem", "labels": "host=b"})) == []
    assert ids(http.get("/metrics", params={"labels": "path=a\\,b\\\\c=d"})) == [odd.id]
    embedded = http.get("/metrics", params={"labels": "dc=x", "with_readings": "true"}).json()
    assert [m["id"] for m in embedded] == [mem_a.id]
    assert hub.service.list_metrics(labels={"host": "a"}) == [cpu_a, mem_a]
    assert hub.service.list_metrics("cpu", labels={"host": "a"}) == [cpu_a]


@pytest.mark.parametrize(
    ("query", "message"),
    [
        (
            "labels=host",
            "labels must be name=value pairs separated by commas (labels=host=a,dc=x), not 'host'",
        ),
        ("labels=", "labels must be name=value pairs separated by commas (labels=host=a,dc=x), not ''"),
        ("labels=1x=a", "label name '1x' is not valid: use letters, digits and _, not starting with a digit"),
        ("labels=host=a,host=b", "label 'host' is given twice with different values"),
        ("labels=host=a\\b", "in labels=, a backslash escapes only a comma (\\,) or a backslash (\\\\)"),
    ],
)
def test_a_bad_labels_query_is_400_for_lists_and_streams(
    start_hub: StartHub, open_stream: OpenStream, query: str, message: str
) -> None:
    hub = start_hub()
    with httpx.Client(base_url=hub.url, timeout=10) as http:
        assert_error(http.get(f"/metrics?{query}"), 400, message)
    stream = open_stream(hub.url, query)
    assert stream.status == 400
    assert httpx.Response(400, content=stream.body()).json() == {"error": message}


def test_the_stream_filters_by_labels_live_and_in_replay(hub: Hub, open_stream: OpenStream) -> None:
    cpu_a = hub.service.create_metric("cpu", labels={"host": "a"})
    cpu_b = hub.service.create_metric("cpu", labels={"host": "b"})
    hub.service.create_reading(cpu_a.id, 1)
    hub.service.create_reading(cpu_b.id, 2)
    replay = open_stream(hub.url, "labels=host=a", headers={"Last-Event-ID": GENESIS_ID})
    live = open_stream(hub.url, "labels=host=a&types=metric_reading_created,metric_deleted")
    for stream in (replay, live):
        stream.expect_open()
    # a metric created later, with matching labels among others, passes too; its neighbours do not
    mem_a = hub.service.create_metric("mem", labels={"host": "a", "dc": "x"})
    hub.service.create_metric("mem", labels={"host": "b"})
    hub.service.log("mem", 3, labels={"host": "b"})
    hub.service.create_reading(mem_a.id, 4)
    hub.service.create_reading(cpu_a.id, 5)
    hub.service.delete_metric(mem_a.id)
    seen = [
        (f.event, f.json().get("metric_id", f.json()["id"]), f.json().get("value")) for f in events(replay, 6)
    ]
    assert seen == [
        (METRIC_CREATED, cpu_a.id, None),
        (READING_CREATED, cpu_a.id, 1),
        (METRIC_CREATED, mem_a.id, None),
        (READING_CREATED, mem_a.id, 4),
        (READING_CREATED, cpu_a.id, 5),
        (METRIC_DELETED, mem_a.id, None),
    ]
    assert [(f.event, f.json().get("value")) for f in events(live, 3)] == [
        (READING_CREATED, 4),
        (READING_CREATED, 5),
        (METRIC_DELETED, None),
    ]
    # nothing of host=b comes through: the next event either sees is the next one of host=a
    hub.service.create_reading(cpu_b.id, 6)
    last = hub.service.create_reading(cpu_a.id, 7)
    assert replay.next_event().json()["id"] == live.next_event().json()["id"] == last.id


def events(stream: RawStream, count: int) -> list[Any]:
    return [stream.next_event() for _ in range(count)]
