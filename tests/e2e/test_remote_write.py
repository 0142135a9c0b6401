"""Prometheus remote write (`POST /api/v1/write`) through a real hub, on every store: samples become
readings by name and labels, on the stream and in REST, with their timestamps to the millisecond and the
unit and HELP that metadata gave; what is refused is refused whole with a clear 4xx, never a 500, and
stores nothing. (A real Prometheus writing: tests/e2e/test_prometheus.py.)"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from metricstream.server.hub import Hub
from metricstream.wire import METRIC_CREATED, READING_CREATED
from tests.support.apitools import assert_error, state
from tests.support.hubs import StartHub
from tests.support.raw_stream import RawStream
from tests.support.remote_write import HEADERS, STALE_NAN, Metadata, Series, WriteRequest, snappy, varint
from tests.support.tokens import WRITE

OpenStream = Callable[..., RawStream]
NOW_MS = int(time.time() * 1000) // 1000 * 1000 + 123  # a millisecond that 1.001-like floats would miss


def at(ms: int) -> str:
    return (datetime(1970, 1, 1, tzinfo=UTC) + timedelta(milliseconds=ms)).isoformat().replace("+00:00", "Z")


def post(http: httpx.Client, request: WriteRequest) -> httpx.Response:
    return http.post("/api/v1/write", content=request.compressed(), headers=HEADERS)


def test_samples_are_stored_and_streamed_by_name_and_labels(
    make_hub: Callable[..., Hub], open_stream: OpenStream
) -> None:
    hub = make_hub(positive_only=False)  # Prometheus sends zeros: up, counters at rest
    stream = open_stream(hub.url)
    stream.expect_open()
    request = WriteRequest(
        [
            Series(
                {"__name__": "up", "job": "node", "instance": "a:9100"},
                [(1.0, NOW_MS), (STALE_NAN, NOW_MS + 1)],
            ),
            Series(
                {"__name__": "room_temp_celsius", "room": 'k"i\\tchen'},
                [(21.5, NOW_MS), (0.0, NOW_MS + 15_000)],
            ),
        ],
        [Metadata("room_temp_celsius", unit="celsius", help="Air temperature.")],
    )
    with httpx.Client(base_url=hub.url, timeout=10) as http:
        answer = post(http, request)
        assert (answer.status_code, answer.content) == (204, b"")
        events = [stream.next_event() for _ in range(5)]
        assert [e.event for e in events] == [METRIC_CREATED, METRIC_CREATED] + [READING_CREATED] * 3
        created = {e.json()["name"]: e.json() for e in events[:2]}
        assert created["up"]["labels"] == {"instance": "a:9100", "job": "node"}
        assert (created["up"]["unit"], created["up"]["description"]) == (None, None)
        temp = created["room_temp_celsius"]
        assert (temp["labels"], temp["unit"], temp["description"]) == (
            {"room": 'k"i\\tchen'},
            "celsius",
            "Air temperature.",
        )
        streamed = [(e.json()["metric_id"], e.json()["value"], e.json()["timestamp"]) for e in events[2:]]
        assert streamed == [
            (created["up"]["id"], 1.0, at(NOW_MS)),  # the staleness marker is no reading
            (temp["id"], 21.5, at(NOW_MS)),
            (temp["id"], 0.0, at(NOW_MS + 15_000)),
        ]
        stored = http.get(f"/metrics/{temp['id']}/readings").json()
        assert [(r["value"], r["timestamp"]) for r in stored] == [
            (21.5, at(NOW_MS)),
            (0.0, at(NOW_MS + 15_000)),
        ]
        # a second write goes to the same metrics
        assert (
            post(
                http,
                WriteRequest(
                    [
                        Series(
                            {"__name__": "up", "job": "node", "instance": "a:9100"}, [(0.0, NOW_MS + 30_000)]
                        )
                    ]
                ),
            ).status_code
            == 204
        )
        assert [m["name"] for m in http.get("/metrics").json()] == ["up", "room_temp_celsius"]


def test_metadata_sent_apart_describes_the_metrics_later_samples_create(start_hub: StartHub) -> None:
    hub = start_hub()
    with httpx.Client(base_url=hub.url, timeout=10) as http:
        metadata_only = WriteRequest([], [Metadata("jobs", unit="", help="Jobs done.")])
        assert post(http, metadata_only).status_code == 204
        assert http.get("/metrics").json() == []
        assert (
            post(http, WriteRequest([Series({"__name__": "jobs_total"}, [(3.0, NOW_MS)])])).status_code == 204
        )
        (jobs,) = http.get("/metrics").json()
        assert (jobs["name"], jobs["description"]) == ("jobs_total", "Jobs done.")


def test_a_refused_sample_refuses_the_write_naming_it_and_its_series(start_hub: StartHub) -> None:
    hub = start_hub()  # positive_only: a 0 is refused
    with httpx.Client(base_url=hub.url, timeout=10) as http:
        before = state(http)
        request = WriteRequest(
            [
                Series({"__name__": "ok"}, [(1.0, NOW_MS)]),
                Series({"__name__": "up", "job": "node"}, [(1.0, NOW_MS), (0.0, NOW_MS + 1)]),
                Series({"__name__": "bad", "__meta_x": "y"}, [(1.0, NOW_MS)]),
            ]
        )
        answer = post(http, request)
        assert answer.status_code == 400, answer.text
        body = answer.json()
        assert body["error"].startswith(
            '2 of 4 samples refused, none stored: sample 3: up{job="node"}: value must'
        )
        assert "sample 4: bad{__meta_x=\"y\"}: label name '__meta_x' is not valid" in body["error"]
        assert [entry["sample"] for entry in body["errors"]] == [3, 4]
        assert state(http) == before


@pytest.mark.parametrize(
    ("headers", "status", "message"),
    [
        (
            {"Content-Type": "application/json"},
            415,
            "remote write must be sent as application/x-protobuf, not application/json",
        ),
        (
            {"Content-Encoding": "gzip"},
            415,
            "remote write must be sent with Content-Encoding: snappy, not gzip",
        ),
        (
            {"Content-Type": "application/x-protobuf;proto=io.prometheus.write.v2.Request"},
            415,
            "remote write takes prometheus.WriteRequest (remote write 1.0), not "
            "'io.prometheus.write.v2.Request': set protobuf_message: prometheus.WriteRequest in the "
            "remote_write configuration",
        ),
    ],
)
def test_other_formats_are_refused_with_415(
    start_hub: StartHub, headers: dict[str, str], status: int, message: str
) -> None:
    hub = start_hub()
    body = WriteRequest([Series({"__name__": "up"}, [(1.0, NOW_MS)])]).compressed()
    answer = httpx.post(f"{hub.url}/api/v1/write", content=body, headers={**HEADERS, **headers})
    assert_error(answer, status, message)
    assert hub.service.list_metrics() == []


def test_hostile_bodies_are_refused_and_store_nothing(start_hub: StartHub) -> None:
    hub = start_hub(token=WRITE, max_body=1000, max_batch=3)  # bodies of 16,000 bytes at most
    auth = {"Authorization": f"Bearer {WRITE}", **HEADERS}
    one = WriteRequest([Series({"__name__": "up"}, [(1.0, NOW_MS)])])
    with httpx.Client(base_url=hub.url, timeout=10, headers=auth) as http:
        before = state(http)

        def refused(content: bytes, status: int, message: str | None = None) -> str:
            return assert_error(http.post("/api/v1/write", content=content), status, message)

        assert refused(b"not snappy at all", 400).startswith("request body is not valid snappy")
        assert refused(b"\xff" * 11, 400).startswith("request body is not snappy-compressed")
        assert refused(one.compressed()[:-2], 400).startswith("request body is not valid snappy")
        refused(
            snappy(one.encode()[:-3]),
            400,
            "request body is not a Prometheus remote write WriteRequest in protobuf",
        )
        # a header claiming 4 GiB, and a body that inflates past the limit: refused before decompressing
        refused(varint(2**32 - 1) + b"\x00", 413, "request body is larger than 16000 bytes once decompressed")
        refused(snappy(b"\x00" * 16_001), 413, "request body is larger than 16000 bytes once decompressed")
        refused(bytes(16_001), 413, "request body is larger than 16000 bytes")
        four = WriteRequest([Series({"__name__": "up"}, [(1.0, NOW_MS + i) for i in range(4)])])
        refused(
            four.compressed(),
            400,
            "at most 3 samples per write, got 4: set max_samples_per_send in the remote_write queue_config "
            "to at most that (the max_batch setting)",
        )
        nameless = WriteRequest([Series({"job": "x"}, [(1.0, NOW_MS)])])
        refused(nameless.compressed(), 400, 'series 1 ({job="x"}) has no __name__ label')
        assert state(http) == before
        assert http.post("/api/v1/write", content=one.compressed()).status_code == 204
    answer = httpx.post(f"{hub.url}/api/v1/write", content=one.compressed(), headers=HEADERS)
    assert answer.status_code == 401
    assert [m.name for m in hub.service.list_metrics()] == ["up"]


def test_other_methods_are_405(start_hub: StartHub) -> None:
    hub = start_hub()
    answer = httpx.get(f"{hub.url}/api/v1/write")
    assert_error(answer, 405, "/api/v1/write takes POST only")
    assert answer.headers["allow"] == "POST"
