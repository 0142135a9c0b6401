"""Fuzzing the HTTP API from its own `/openapi.json` with schemathesis, against real Hubs.

Every documented operation gets a few hundred generated requests, valid and invalid (derandomized, so each
run sends the same ones): coverage-phase boundary cases, then positive and negative fuzzing. No answer may be
a 5xx, and each must match the document: a documented status, its content type, body schema and headers.
About half of the well-formed metric ids are pointed at a metric that exists, so success answers (200 with
readings, 201) are fuzzed too, not only 400 and 404. The memory store gets the full run; SQLite a shorter
one, for what goes through a real database (extreme timestamps and floats, range queries).

schemathesis parametrizes tests when the module is imported, before any server runs, so the document is
taken from the app itself (no socket needed), and each hub proves that it serves exactly that document.
(`schemathesis.pytest.from_fixture`, the lazy way, fails on pytest 9: it sets `request.node._nodeid`.)

The stream is special: a 200 from `GET /events/watch` never ends. Its cases are sent with a streaming client
instead; a 200 is checked for its headers and opening frames (decoded by httpx-sse, as the subscriber
does), then dropped, and any other answer (a bad filter) goes through the same checks as the rest of the API.

Not checked: schemathesis' `positive_data_acceptance` (every schema-valid request is accepted). JSON Schema
cannot say "since <= until", and `metric_id` bodies take only UUIDv7s where the document says "uuid".
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
import schemathesis
from httpx_sse import EventSource
from hypothesis import HealthCheck, settings
from schemathesis import Case
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from metricstream.server.hub import Hub
from metricstream.web.application import create_app
from tests.support.hubs import FAST

pytestmark = pytest.mark.slow  # a fuzzer's run of every operation
# OTLP's protobuf bodies are bytes: sent as schemathesis sends any binary body
schemathesis.serializer.alias("application/x-protobuf", "application/octet-stream")

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
    response_headers_conformance,
]
FUZZ = settings(
    derandomize=True,  # the same cases every run
    database=None,  # nothing kept between runs
    deadline=None,
    # Only `too_slow`: schemathesis builds whole bodies from the schema (a batch holds many readings), and
    # how long that takes depends on the machine; every other health check stays on and passes.
    suppress_health_check=[HealthCheck.too_slow],
)


async def _document() -> dict[str, Any]:
    response = await create_app().quart.test_client().get("/openapi.json")
    document: dict[str, Any] = await response.get_json()
    return document


DOCUMENT = asyncio.run(_document())
schema = schemathesis.openapi.from_dict(DOCUMENT)


@dataclass(frozen=True)
class Target:
    hub: Hub
    metric_id: str  # a metric that has readings
    client: httpx.Client  # for the stream's cases (one client: each new one costs an SSL context)


def start(store: str) -> Iterator[Target]:
    with Hub(port=0, **{**FAST, "store": store}) as hub, httpx.Client(base_url=hub.url, timeout=10) as client:
        metric = hub.service.create_metric("fuzzed")
        for value in (1.0, 2.5, 1e300):
            hub.service.create_reading(metric.id, value)
        yield Target(hub, metric.id, client)


@pytest.fixture(scope="module")
def memory_hub() -> Iterator[Target]:
    yield from start("memory://")


@pytest.fixture(scope="module")
def sqlite_hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Target]:
    yield from start(f"sqlite:///{tmp_path_factory.mktemp('fuzz') / 'metricstream.db'}")


@pytest.mark.parametrize("name", ["memory_hub", "sqlite_hub"])
def test_the_fuzzed_document_is_the_one_served(name: str, request: pytest.FixtureRequest) -> None:
    target: Target = request.getfixturevalue(name)
    assert target.client.get("/openapi.json").json() == DOCUMENT


@schema.parametrize()
@settings(FUZZ, max_examples=250)
def test_api_conforms_to_its_openapi_document(case: Case[Any], memory_hub: Target) -> None:
    check(case, memory_hub)


@schema.parametrize()
@settings(FUZZ, max_examples=80)
def test_api_conforms_to_its_openapi_document_on_sqlite(case: Case[Any], sqlite_hub: Target) -> None:
    check(case, sqlite_hub)


def check(case: Case[Any], target: Target) -> None:
    aim_at(case, target.metric_id)
    if case.path == "/events/watch":
        call_stream(case, target.client)
    else:
        case.call_and_validate(base_url=target.hub.url, checks=CHECKS, timeout=10)


def aim_at(case: Case[Any], metric_id: str) -> None:
    """Point the metric ids that are even UUIDs at `metric_id` (a random UUID never names a metric)."""

    def aimed(value: object) -> object:
        if isinstance(value, str):
            try:
                if uuid.UUID(value).int % 2 == 0:
                    return metric_id
            except ValueError:
                pass
        return value

    holders: list[object] = [case.path_parameters, case.query, case.body]
    readings = case.body.get("readings") if isinstance(case.body, dict) else None
    if isinstance(readings, list):  # a batch
        holders += readings
    for holder in holders:
        if isinstance(holder, dict) and "metric_id" in holder:
            holder["metric_id"] = aimed(holder["metric_id"])


def call_stream(case: Case[Any], client: httpx.Client) -> None:
    """Send a `GET /events/watch` case without waiting for the endless body of a 200."""
    request: dict[str, Any] = case.as_transport_kwargs(base_url=str(client.base_url))
    with client.stream(
        request["method"], request["url"], params=request.get("params"), headers=request.get("headers")
    ) as response:
        if response.status_code != 200:
            response.read()
            case.validate_response(response, checks=CHECKS)
            return
        assert response.headers["content-type"] == "text/event-stream; charset=utf-8"
        assert response.headers["cache-control"] == "no-cache"
        retry = None
        for sse in EventSource(response).iter_sse():
            if not sse.data:  # the `retry:` block, which httpx-sse dispatches too
                retry = sse.retry if sse.retry is not None else retry
                continue
            assert sse.data == "connected"
            assert sse.id != ""
            assert retry is not None  # sent before `connected`
            return
        raise AssertionError("the stream ended before `connected`")
