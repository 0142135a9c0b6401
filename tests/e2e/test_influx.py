"""Influx line protocol over HTTP (#23 point 2) through a real hub, on every store: influxdb-client,
unchanged, writes to `/api/v2/write`; a gzip body to `/write` as Telegraf's `influxdb` output sends it;
readings appear in REST and on the stream with their names, labels and timestamps. Every refusal stores
nothing."""

from __future__ import annotations

import base64
import gzip
from collections.abc import Callable
from datetime import UTC, datetime

import httpx
import pytest
from influxdb_client.client.influxdb_client import InfluxDBClient
from influxdb_client.client.write.point import Point
from influxdb_client.client.write_api import SYNCHRONOUS
from influxdb_client.domain.write_precision import WritePrecision
from influxdb_client.rest import ApiException

from metricstream.server.hub import Hub
from metricstream.wire import METRIC_CREATED, READING_CREATED
from tests.support.apitools import assert_error, state
from tests.support.hubs import StartHub
from tests.support.raw_stream import RawStream
from tests.support.tokens import WRITE

OpenStream = Callable[..., RawStream]
T0_NS = 1_700_000_000_123_456_789  # 2023-11-14T22:13:20.123456789Z
T0 = "2023-11-14T22:13:20.123456Z"  # as stored: floored to the microsecond


def by_name(http: httpx.Client) -> dict[tuple[str, str], dict[str, object]]:
    """Every metric with its readings, by (name, labels as text)."""
    listing = http.get("/metrics", params={"with_readings": "true"}).json()
    return {(m["name"], ",".join(f"{k}={v}" for k, v in m["labels"].items())): m for m in listing}


def test_influxdb_client_writes_readings_that_rest_and_the_stream_show(
    hub: Hub, http: httpx.Client, open_stream: OpenStream
) -> None:
    stream = open_stream(hub.url)
    stream.expect_open()
    point = Point("cpu").tag("host", "a b").tag("cpu-id", "0").field("usage_user", 1.5).field("value", 7)
    with InfluxDBClient(url=hub.url, token="unused", org="-") as client:
        client.write_api(write_options=SYNCHRONOUS).write(
            bucket="b", record=point.time(T0_NS, WritePrecision.NS)
        )
    metrics = by_name(http)
    assert set(metrics) == {("cpu_usage_user", "cpu_id=0,host=a b"), ("cpu", "cpu_id=0,host=a b")}
    user = metrics[("cpu_usage_user", "cpu_id=0,host=a b")]
    assert user["labels"] == {"cpu_id": "0", "host": "a b"}  # the tag key made a label name
    assert [(r["value"], r["timestamp"]) for r in user["readings"]] == [(1.5, T0)]  # type: ignore[attr-defined]
    value = metrics[("cpu", "cpu_id=0,host=a b")]
    assert [r["value"] for r in value["readings"]] == [7.0]  # type: ignore[attr-defined]
    events = [stream.next_event() for _ in range(4)]
    assert [e.event for e in events] == [METRIC_CREATED, METRIC_CREATED, READING_CREATED, READING_CREATED]
    assert events[0].json()["labels"] == {"cpu_id": "0", "host": "a b"}
    # a second write reuses the metrics its first made
    with InfluxDBClient(url=hub.url, token="unused", org="-") as client:
        client.write_api(write_options=SYNCHRONOUS).write(
            bucket="b", record="cpu,host=a\\ b,cpu-id=0 usage_user=2.5", write_precision=WritePrecision.NS
        )
    again = by_name(http)
    assert len(again) == 2
    user_again = again[("cpu_usage_user", "cpu_id=0,host=a b")]
    assert [r["value"] for r in user_again["readings"]] == [1.5, 2.5]  # type: ignore[attr-defined]


def test_a_gzip_body_to_write_is_read_as_telegraf_sends_it(hub: Hub, http: httpx.Client) -> None:
    body = (
        b"# from telegraf\nmem,host=a used_percent=41.5,total=8i 1700000000\n\n"
        b"mem,host=b used_percent=12 1700000001\n"
    )
    answer = http.post(
        "/write",
        params={"db": "telegraf", "precision": "s"},
        content=gzip.compress(body),
        headers={"Content-Encoding": "gzip", "Content-Type": "text/plain; charset=utf-8"},
    )
    assert answer.status_code == 204, answer.text
    assert answer.content == b""
    metrics = by_name(http)
    assert set(metrics) == {
        ("mem_used_percent", "host=a"),
        ("mem_total", "host=a"),
        ("mem_used_percent", "host=b"),
    }
    total = metrics[("mem_total", "host=a")]["readings"]
    assert [(r["value"], r["timestamp"]) for r in total] == [(8.0, "2023-11-14T22:13:20.000000Z")]  # type: ignore[attr-defined]


def test_precisions_and_a_missing_timestamp(hub: Hub, http: httpx.Client) -> None:
    for precision, stamp in [("ms", "1700000000123"), ("us", "1700000000123456"), ("s", "1700000000")]:
        answer = http.post(
            "/api/v2/write",
            params={"bucket": "b", "precision": precision},
            content=f"t,p={precision} value=1 {stamp}",
        )
        assert answer.status_code == 204, answer.text
    before = datetime.now(UTC)
    assert http.post("/api/v2/write", params={"bucket": "b"}, content="t,p=now value=1").status_code == 204
    metrics = by_name(http)
    stamps = {key[1]: m["readings"][0]["timestamp"] for key, m in metrics.items()}  # type: ignore[index]
    assert stamps["p=ms"] == "2023-11-14T22:13:20.123000Z"
    assert stamps["p=us"] == "2023-11-14T22:13:20.123456Z"
    assert stamps["p=s"] == "2023-11-14T22:13:20.000000Z"
    assert datetime.fromisoformat(stamps["p=now"]) >= before.replace(microsecond=0)


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (
            'ok value=1\nbad line\nok,t=x value="text"\nok value=t',
            "3 of 4 lines refused, none stored: line 2: expected '=' after field key 'line', found end of "
            "line; line 3: field 'value' is a string: only numbers (float, integer, unsigned) become "
            "readings; line 4: field 'value' is a boolean: only numbers (float, integer, unsigned) become "
            "readings",
        ),
        (
            "ok value=1\nok value=-2\nok value=3",
            "1 of 3 lines refused, none stored: line 2: value must be a finite number greater than 0 (set "
            "positive_only=false to accept any finite value)",
        ),
    ],
)
def test_a_body_is_all_or_nothing_naming_each_refused_line(
    hub: Hub, http: httpx.Client, body: str, message: str
) -> None:
    before = state(http)
    answer = http.post("/api/v2/write", params={"bucket": "b"}, content=body)
    got = answer.json()
    assert answer.status_code == 400, answer.text
    assert got["error"] == message
    assert [e["line"] for e in got["errors"]] == [
        int(part.split(":")[0]) for part in message.split("line ")[1:]
    ]
    assert state(http) == before


def test_every_limit_holds_and_stores_nothing(start_hub: StartHub) -> None:
    hub = start_hub(max_batch=2, max_body=1000)
    with httpx.Client(base_url=hub.url, timeout=10) as http:
        before = state(http)
        assert_error(
            http.post("/api/v2/write", content="a value=1\nb value=1\nc value=1"),
            400,
            "at most 2 lines per write, got 3",
        )
        bomb = gzip.compress(b"x" * 100_000)  # 16,000 bytes is a batch's limit here (16 x max_body)
        assert len(bomb) < 1000
        assert_error(
            http.post("/write", content=bomb, headers={"Content-Encoding": "gzip"}),
            413,
            "request body is larger than 16000 bytes once decompressed",
        )
        assert_error(
            http.post("/write", content=b"not gzip", headers={"Content-Encoding": "gzip"}),
            400,
        )
        assert_error(
            http.post(
                "/write", content=gzip.compress(b"a value=1")[:-6], headers={"Content-Encoding": "gzip"}
            ),
            400,
            "request body is not valid gzip: it ends before its last block",
        )
        assert_error(
            http.post("/write", content=b"a value=1", headers={"Content-Encoding": "br"}),
            415,
            "Content-Encoding must be gzip or identity, not 'br'",
        )
        assert_error(
            http.post("/api/v2/write", params={"precision": "h"}, content="a value=1"),
            400,
            "precision must be ns, us, ms or s, not 'h'",
        )
        assert_error(
            http.post("/write", params={"precision": "d"}, content="a value=1"),
            400,
            "precision must be ns, us, ms or s (or n, u, ms, s, m or h, as /write takes it), not 'd'",
        )
        assert_error(http.get("/api/v2/write"), 405, "/api/v2/write takes POST only")
        assert state(http) == before


def test_the_token_is_asked_for_as_influx_clients_send_it(start_hub: StartHub) -> None:
    hub = start_hub(token=WRITE)
    line = "secured value=1"
    with httpx.Client(base_url=hub.url, timeout=10) as http:
        assert http.post("/api/v2/write", content=line).status_code == 401
        wrong = {"Authorization": "Token wrong-token-0123456789"}
        assert http.post("/api/v2/write", content=line, headers=wrong).status_code == 401
        basic = base64.b64encode(f"telegraf:{WRITE}".encode()).decode()
        for authorization in (f"Token {WRITE}", f"Bearer {WRITE}", f"Basic {basic}"):
            answer = http.post("/write", content=line, headers={"Authorization": authorization})
            assert answer.status_code == 204, (authorization, answer.text)
    with InfluxDBClient(url=hub.url, token=WRITE, org="-") as client:
        client.write_api(write_options=SYNCHRONOUS).write(bucket="b", record=line)
    with (
        InfluxDBClient(url=hub.url, token="wrong-token-0123456789", org="-") as client,
        pytest.raises(ApiException) as refused,
    ):
        client.write_api(write_options=SYNCHRONOUS).write(bucket="b", record=line)
    assert refused.value.status == 401
    assert len(hub.service.list_readings(hub.service.metric("secured").id)) == 4
