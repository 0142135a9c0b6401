"""One path for every write: the same raw requests get the same answers on every route.

The two write routes run outside Quart (`web/ingest.py`) and the rest inside it (`web/routes.py`), but
the token, the body's size, its time, its type and its JSON are checked once, by the gate and the shared
body helpers, and every error leaves through `web/answers.py`. Here each request goes, as raw ASGI
messages, to the whole app, once per write route, and the answers must be the same: status, headers and
error body. The readings' own answers are checked case by case, with the request metrics they leave. Real
HTTP through hypercorn reaches these routes in test_api_readings.py and test_api_requests.py.
"""

from __future__ import annotations

import asyncio
import ipaddress
import itertools
import json
import re
from collections import Counter
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from metricstream.clock import ManualClock
from metricstream.ids import new_id
from metricstream.web.application import MetricStreamApp, create_app
from tests.support.apitools import JSON

MAX_BODY = 4096
TOKEN = "s3cret-write-token-of-length"
ORIGIN = "https://dash.example"
ASGI = Callable[[Any, Any, Any], Awaitable[None]]


@dataclass
class Answer:
    status: int
    headers: list[tuple[bytes, bytes]]
    body: bytes

    def comparable(self) -> tuple[int, list[tuple[bytes, bytes]], object]:
        """What must match between the two paths: everything but ids and times."""
        headers = sorted((name, b"" if name == b"content-length" else value) for name, value in self.headers)
        return self.status, headers, _without_ids(json.loads(self.body))


def _without_ids(value: object) -> object:
    if isinstance(value, dict):
        return {key: "…" if key in ("id", "timestamp") else _without_ids(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_without_ids(item) for item in value]
    return value


async def call(
    app: ASGI, path: str, chunks: list[bytes], headers: dict[str, str], *, stall: bool = False
) -> Answer:
    """One request as hypercorn delivers it: the body in `chunks`, then nothing more (with `stall`,
    a client that never sends the rest)."""
    scope = {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.3"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [(name.lower().encode(), value.encode()) for name, value in headers.items()],
        "client": (str(next(_addresses)), 40000),  # each its own: wrong tokens are counted per address
        "server": ("127.0.0.1", 8000),
        "extensions": {},
    }
    pending = [
        {"type": "http.request", "body": chunk, "more_body": stall or index < len(chunks) - 1}
        for index, chunk in enumerate(chunks or [b""])
    ]
    never = asyncio.get_running_loop().create_future()
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        if pending:
            return pending.pop(0)
        message: dict[str, Any] = await never  # the client waits for its answer
        return message

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    await app(scope, receive, send)
    start = sent[0]
    body = b"".join(message.get("body", b"") for message in sent[1:])
    return Answer(start["status"], [(bytes(k), bytes(v)) for k, v in start["headers"]], body)


_addresses = (ipaddress.IPv4Address("10.0.0.0") + number for number in itertools.count(1))


def build(**settings: Any) -> MetricStreamApp:
    return create_app(store="memory://", max_body=MAX_BODY, max_batch=5, clock=ManualClock(), **settings)


def cases(metric: str) -> list[tuple[str, list[bytes], dict[str, str], int]]:
    reading = json.dumps({"metric_id": metric, "value": 2.5}).encode()
    unknown = json.dumps({"metric_id": new_id(), "value": 1}).encode()
    batch = json.dumps({"readings": [{"metric_id": metric, "value": 1}, {"metric_id": metric, "value": 3}]})
    mixed = json.dumps({"readings": [{"metric_id": metric, "value": 1}, {"metric_id": metric, "value": 0}]})
    missing = json.dumps({"readings": [{"metric_id": new_id(), "value": 1}]})
    single, many = "/metrics/readings", "/metrics/readings/batch"
    sized = {**JSON, "content-length": str(len(reading))}
    return [
        (single, [reading], sized, 201),
        (single, [reading[:10], reading[10:]], JSON, 201),
        (single, [reading], {"content-type": "application/json; charset=utf-8"}, 201),
        (single, [reading], {"content-type": "application/vnd.api+json"}, 201),
        (single, [b'{"metric_id": "x", "value": 0, "timestamp": "soon"}'], JSON, 400),
        (single, [b'{"value": 1}'], JSON, 400),
        (single, [b"[1]"], JSON, 400),
        (single, [b"{"], JSON, 400),
        (single, [b""], JSON, 400),
        (single, [reading], {"content-type": "text/plain"}, 415),
        (single, [reading], {}, 415),
        (single, [unknown], JSON, 404),
        (single, [b"{}" + b" " * MAX_BODY], JSON, 413),  # read, then refused: over a reading's limit
        (single, [b" " * (MAX_BODY * 16 + 1)], {**JSON, "content-length": str(MAX_BODY * 16 + 1)}, 413),
        (single, [b" " * MAX_BODY] * 17, {**JSON, "transfer-encoding": "chunked"}, 413),
        (many, [batch.encode()], JSON, 201),
        (many, [b'{"readings": []}'], JSON, 201),
        (many, [mixed.encode()], JSON, 400),
        (many, [missing.encode()], JSON, 404),
        (many, [b'{"readings": {}}'], JSON, 400),
        (many, [b"[]"], JSON, 400),
        (many, [json.dumps({"readings": [{"metric_id": metric, "value": 1}] * 6}).encode()], JSON, 400),
        (many, [b"{}" + b" " * MAX_BODY], JSON, 400),  # a batch may be 16 times as large
    ]


def test_every_reading_answer_and_its_count() -> None:
    async def scenario() -> None:
        app = build()
        await app.startup()
        try:
            metric = (await app.service.create_metric("m")).id
            for path, chunks, headers, status in cases(metric):
                answer = await call(app, path, chunks, headers)
                assert answer.status == status, (path, chunks[:1], headers, answer.body)
                assert (b"content-type", b"application/json") in answer.headers
                if status >= 400:
                    assert set(json.loads(answer.body)) <= {"error", "errors"}
            # every write counted under its route and status, refusals at the gate included
            expected = Counter((path, status) for path, _, _, status in cases(metric))
            scrape = app.telemetry.render()[0].decode()
            counted = {
                (labels["route"], int(labels["status"])): float(value)
                for labels, value in _samples(scrape, "metricstream_http_request_duration_seconds_count")
            }
            assert counted == {key: float(count) for key, count in expected.items()}
        finally:
            await app.shutdown()

    asyncio.run(scenario())


WRITE_ROUTES = ["/metrics", "/metrics/readings", "/metrics/readings/batch", "/dashboard/session"]


def body_cases() -> list[tuple[str, list[bytes], dict[str, str]]]:
    """Requests every write route refuses for the same reason, before anything of theirs runs."""
    return [
        ("not JSON", [b"{"], JSON),
        ("empty", [b""], JSON),
        ("plain text", [b'{"a": 1}'], {"content-type": "text/plain"}),
        ("no type", [b'{"a": 1}'], {}),
        ("declared too large", [b" "], {**JSON, "content-length": str(MAX_BODY * 16 + 1)}),
        ("chunked too large", [b" " * MAX_BODY] * 17, {**JSON, "transfer-encoding": "chunked"}),
    ]


@pytest.mark.parametrize(("name", "chunks", "headers"), body_cases(), ids=[case[0] for case in body_cases()])
def test_a_bad_body_gets_the_same_answer_on_every_write_route(
    name: str, chunks: list[bytes], headers: dict[str, str]
) -> None:
    async def scenario() -> None:
        app = build()
        await app.startup()
        try:
            answers = {path: await call(app, path, chunks, headers) for path in WRITE_ROUTES}
        finally:
            await app.shutdown()
        alike = {path: _alike(answer, path) for path, answer in answers.items()}
        assert len({repr(value) for value in alike.values()}) == 1, (name, alike)
        assert answers["/metrics"].status in (400, 413, 415)

    asyncio.run(scenario())


def _alike(answer: Answer, path: str) -> tuple[int, list[tuple[bytes, bytes]], object]:
    """The answer, with the size limit its message names made alike: each route has its own (a batch's
    body may be 16 times as large)."""
    limit = MAX_BODY * 16 if path.endswith("/batch") else MAX_BODY
    status, headers, body = answer.comparable()
    if isinstance(body, dict) and isinstance(body.get("error"), str):
        body = {**body, "error": body["error"].replace(str(limit), "<limit>")}
    return status, headers, body


@pytest.mark.parametrize(
    ("authorization", "status"),
    [
        (None, 401),
        ("Bearer wrong", 401),
        ("Basic czNjcmV0LXdyaXRl", 401),
        (f"bearer  {TOKEN} ", 201),
        (f"Bearer {TOKEN}", 201),
    ],
)
def test_the_write_token_is_checked_alike(authorization: str | None, status: int) -> None:
    async def scenario() -> None:
        app = build(token=TOKEN, cors_origins=[ORIGIN])
        await app.startup()
        try:
            metric = (await app.service.create_metric("m")).id
            reading = json.dumps({"metric_id": metric, "value": 1}).encode()
            for origin in (ORIGIN, "https://elsewhere.example", None):
                headers = {**JSON, **({"origin": origin} if origin else {})}
                if authorization:
                    headers["authorization"] = authorization
                answers = [await call(app, path, [reading], headers) for path in WRITE_ROUTES[:3]]
                answer = answers[1]
                assert answer.status == status
                if status == 401:  # the same refusal on every write route
                    assert all(other.comparable() == answer.comparable() for other in answers)
                if origin == ORIGIN:
                    assert (b"access-control-allow-origin", ORIGIN.encode()) in answer.headers
                large = {**headers, "content-length": str(MAX_BODY + 1)}  # refused unread: say close
                answer = await call(app, "/metrics/readings", [b" " * (MAX_BODY + 1)], large)
                assert answer.status == (status if status == 401 else 413)
        finally:
            await app.shutdown()

    asyncio.run(scenario())


def test_a_body_that_stops_arriving_is_answered_408_by_the_clock() -> None:
    async def scenario() -> None:
        app = build()
        clock = app.clock
        assert isinstance(clock, ManualClock)
        # not started: no background task sleeps on the clock, so the one sleeper is the body's timer
        stalled = asyncio.ensure_future(call(app, "/metrics/readings", [b'{"metric_id"'], JSON, stall=True))
        try:
            while clock.sleepers == 0:  # noqa: ASYNC110 (no event says the timer has started)
                await asyncio.sleep(0)
            clock.advance(59)
            for _ in range(10):
                await asyncio.sleep(0)
            assert not stalled.done()
            clock.advance(2)
            answer = await stalled
            assert answer.status == 408
            assert (b"connection", b"close") in answer.headers
            assert json.loads(answer.body) == {"error": "the request body did not arrive within 60 seconds"}
        finally:
            await app.shutdown()

    asyncio.run(scenario())


def _samples(scrape: str, name: str) -> Iterator[tuple[dict[str, str], str]]:
    for line in scrape.splitlines():
        if line.startswith(name + "{"):
            labels, value = line[len(name) + 1 :].rsplit("} ", 1)
            yield dict(re.findall(r'(\w+)="([^"]*)"', labels)), value
