"""What every route shares, over real HTTP: request bodies, routing, /healthz, X-Last-Event-ID, refused
requests that leave no trace, and hypercorn's own refusals."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Iterator

import httpx
import pytest

from metricstream.ids import new_id
from metricstream.server.hub import Hub
from tests.support.apitools import (
    BAD_JSON_PREFIX,
    CONTENT_TYPE_MESSAGE,
    JSON,
    MAX_BODY,
    NIL_UUID,
    NOT_OBJECT_MESSAGE,
    TOO_LARGE_MESSAGE,
    OpenStream,
    assert_error,
    post_metric,
    post_reading,
    raw_post,
    state,
)

# --- request bodies -----------------------------------------------------------------------------

POST_PATHS = ["/metrics", "/metrics/readings"]


@pytest.mark.parametrize("path", POST_PATHS)
@pytest.mark.parametrize(
    "content",
    [
        b"",
        b" ",
        b"{",
        b'{"name": "x",}',
        b"{'name': 'x'}",
        b'{"name": "x"} trailing',
        b'{"name": "x"}{"name": "y"}',
        b"name=x",
        b'{"name": "x" "value": 1}',
        b"[" * 2000 + b"]" * 2000,
    ],
    ids=lambda content: repr(content[:20]),
)
def test_malformed_json_400(http: httpx.Client, path: str, content: bytes) -> None:
    before = state(http)
    message = assert_error(raw_post(http, path, content), 400)
    assert message.startswith(BAD_JSON_PREFIX)
    assert state(http) == before


@pytest.mark.parametrize("path", POST_PATHS)
@pytest.mark.parametrize(
    "content",
    [b'{"name": "\xff"}', b'{"name": "caf\xe9"}', b'{"name": "\xed\xa0\x80"}', b"\xfe\xff{}"],
    ids=lambda content: repr(content[:20]),
)
def test_invalid_utf8_400(http: httpx.Client, path: str, content: bytes) -> None:
    before = state(http)
    message = assert_error(raw_post(http, path, content), 400)
    assert message.startswith(BAD_JSON_PREFIX)
    assert state(http) == before


@pytest.mark.parametrize("path", POST_PATHS)
@pytest.mark.parametrize(
    "content", [b"[]", b'[{"name": "CPU"}]', b'"CPU"', b"1", b"1.5", b"null", b"true", b"false"]
)
def test_body_not_an_object_400(http: httpx.Client, path: str, content: bytes) -> None:
    before = state(http)
    assert_error(raw_post(http, path, content), 400, NOT_OBJECT_MESSAGE)
    assert state(http) == before


@pytest.mark.parametrize("path", POST_PATHS)
@pytest.mark.parametrize(
    "content_type",
    [
        "text/plain",
        "application/x-www-form-urlencoded",
        "multipart/form-data; boundary=x",
        "application/octet-stream",
        "text/json",
        "application/jsonx",
        None,
    ],
)
def test_non_json_content_type_415(http: httpx.Client, path: str, content_type: str | None) -> None:
    before = state(http)
    content = json.dumps({"name": "CPU", "metric_id": new_id(), "value": 1}).encode()
    request = http.build_request("POST", path, content=content)
    if content_type is not None:
        request.headers["content-type"] = content_type
    assert request.headers.get("content-type") == content_type
    assert_error(http.send(request), 415, CONTENT_TYPE_MESSAGE)
    assert state(http) == before


@pytest.mark.parametrize(
    "content_type",
    ["application/json; charset=utf-8", "Application/JSON", "application/merge-patch+json"],
)
def test_json_content_type_variants_accepted(http: httpx.Client, content_type: str) -> None:
    response = raw_post(http, "/metrics", b'{"name": "CPU"}', **{"content-type": content_type})
    assert response.status_code == 201


def padded_body(size: int) -> bytes:
    """A valid `POST /metrics` body of exactly `size` bytes (JSON whitespace as padding)."""
    core = b'{"name": "big"}'
    return core[:-1] + b" " * (size - len(core)) + b"}"


def test_body_of_exactly_1_mib_is_accepted(http: httpx.Client) -> None:
    content = padded_body(MAX_BODY)
    assert len(content) == MAX_BODY
    response = raw_post(http, "/metrics", content)
    assert response.status_code == 201
    assert response.json()["name"] == "big"


@pytest.mark.parametrize("size", [MAX_BODY + 1, 2 * MAX_BODY, 8 * MAX_BODY])
def test_body_over_1_mib_413(http: httpx.Client, size: int) -> None:
    before = state(http)
    assert_error(raw_post(http, "/metrics", padded_body(size)), 413, TOO_LARGE_MESSAGE)
    assert state(http) == before


def test_chunked_body_over_1_mib_413(http: httpx.Client) -> None:
    """No Content-Length to check up front: the limit must hold while reading."""

    def chunks() -> Iterator[bytes]:
        body = padded_body(MAX_BODY + 100)
        for start in range(0, len(body), 64 * 1024):
            yield body[start : start + 64 * 1024]

    before = state(http)
    response = http.post("/metrics", content=chunks(), headers=JSON)
    assert "content-length" not in response.request.headers
    assert_error(response, 413, TOO_LARGE_MESSAGE)
    assert state(http) == before


def test_chunked_body_under_limit_accepted(http: httpx.Client) -> None:
    def chunks() -> Iterator[bytes]:
        yield b'{"name": '
        yield b'"chunked"}'

    response = http.post("/metrics", content=chunks(), headers=JSON)
    assert response.status_code == 201
    assert response.json()["name"] == "chunked"


@pytest.mark.parametrize(
    ("method", "path", "content", "content_type", "status"),
    [
        ("POST", "/metrics", b'{"name": "x"}', "text/plain", 415),
        ("POST", "/metrics", b"{", "application/json", 400),
        ("POST", "/metrics/readings", b'{"value": 0}', "application/json", 400),
        ("POST", "/metrics/readings", b"{}" + b" " * MAX_BODY, "text/plain", 413),
        ("POST", "/metrics", padded_body(MAX_BODY + 1), "application/json", 413),
        ("PUT", "/metrics/readings", b'{"value": 1}', "application/json", 405),
        ("POST", "/nope", b'{"value": 1}', "application/json", 404),
    ],
)
def test_rejected_body_keeps_the_client_usable(
    http: httpx.Client, method: str, path: str, content: bytes, content_type: str, status: int
) -> None:
    """Answering before reading the body must not break the client's next request.

    hypercorn closes a connection whose request body was not read to the end; unless the response
    says `Connection: close`, a keep-alive client sends its next request into the closing socket
    and gets "Server disconnected". Repeat, as the failure depends on packet timing.
    """
    for _ in range(25):
        response = http.request(method, path, content=content, headers={"content-type": content_type})
        assert_error(response, status)
        assert http.get("/healthz").status_code == 200


@pytest.mark.parametrize("status", [413, 405])
def test_unread_body_is_answered_with_connection_close(http: httpx.Client, status: int) -> None:
    if status == 413:  # over even a batch's limit: refused before it is read
        response = raw_post(http, "/metrics", padded_body(MAX_BODY * 16 + 1))
    else:
        response = http.put("/metrics", content=b"{}", headers=JSON)
    assert_error(response, status)
    assert response.headers["connection"] == "close"


def test_read_body_keeps_the_connection_alive(http: httpx.Client) -> None:
    response = raw_post(http, "/metrics", b"[]", **{"content-type": "text/plain"})
    assert_error(response, 415)
    assert "connection" not in response.headers
    too_large = raw_post(http, "/metrics", padded_body(MAX_BODY + 1))  # read, then refused
    assert_error(too_large, 413)
    assert "connection" not in too_large.headers


# --- routing ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path", "status"),
    [
        ("GET", "/nowhere", 404),
        ("GET", "/nope", 404),
        ("GET", "/metrics/x/y/z", 404),
        ("GET", "/metric", 404),
        ("POST", "/events", 404),
        ("DELETE", "/metrics", 405),
        ("PUT", "/metrics/readings", 405),
        ("POST", "/healthz", 405),
        ("PATCH", f"/metrics/{NIL_UUID}", 405),
        ("POST", f"/metrics/{NIL_UUID}/readings", 405),
    ],
)
def test_unknown_route_or_method_is_json(http: httpx.Client, method: str, path: str, status: int) -> None:
    assert_error(http.request(method, path), status)


def test_get_metrics_readings_is_a_metric_lookup(http: httpx.Client) -> None:
    """`/metrics/readings` only takes POST; a GET reads it as `/metrics/{id}` with a bad id."""
    assert_error(http.get("/metrics/readings"), 400, "id must be a UUID, got 'readings'")


# --- GET /healthz -------------------------------------------------------------------------------


def test_healthz_shape_and_counts(hub: Hub, http: httpx.Client, open_stream: OpenStream) -> None:
    response = http.get("/healthz")
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    assert response.json() == {"status": "ok", "clients": 0, "events": 0}
    metric = post_metric(http)
    post_reading(http, metric["id"])
    post_reading(http, metric["id"])
    assert http.get("/healthz").json() == {"status": "ok", "clients": 0, "events": 3}
    stream = open_stream(hub.url)
    stream.expect_open()
    assert http.get("/healthz").json() == {"status": "ok", "clients": 1, "events": 3}


# --- X-Last-Event-ID ----------------------------------------------------------------------------


def last_event_ids(http: httpx.Client, metric_id: str | None) -> list[str]:
    """X-Last-Event-ID of every `GET /metrics…` read (metric routes only when one exists)."""
    responses = [http.get("/metrics"), http.get("/metrics?with_readings=true")]
    if metric_id is not None:
        responses += [
            http.get(f"/metrics/{metric_id}"),
            http.get(f"/metrics/{metric_id}/readings"),
            http.get(f"/metrics/{metric_id}/readings?limit=1"),
        ]
    for response in responses:
        assert response.status_code == 200
    return [response.headers["x-last-event-id"] for response in responses]


def test_last_event_id_is_nil_before_any_event(http: httpx.Client) -> None:
    assert last_event_ids(http, None) == [NIL_UUID, NIL_UUID]


def test_last_event_id_is_newest_event(hub: Hub, http: httpx.Client, open_stream: OpenStream) -> None:
    stream = open_stream(hub.url)
    stream.expect_open()
    metric = post_metric(http)
    created = stream.next_event()
    assert created.event == "metric_created"
    assert created.json() == metric
    assert created.id is not None
    assert created.id != metric["id"]
    assert last_event_ids(http, metric["id"]) == [created.id] * 5

    reading = post_reading(http, metric["id"])
    recorded = stream.next_event()
    assert recorded.event == "metric_reading_created"
    assert recorded.json() == reading
    assert recorded.id is not None
    assert recorded.id != created.id
    assert last_event_ids(http, metric["id"]) == [recorded.id] * 5

    # a rejected request moves nothing
    assert http.post("/metrics/readings", json={"metric_id": metric["id"]}).status_code == 400
    assert last_event_ids(http, metric["id"]) == [recorded.id] * 5


def test_last_event_id_resumes_the_stream_from_exactly_there(
    hub: Hub, http: httpx.Client, open_stream: OpenStream
) -> None:
    metric = post_metric(http)
    marker = http.get("/metrics").headers["x-last-event-id"]
    reading = post_reading(http, metric["id"])
    stream = open_stream(hub.url, headers={"Last-Event-ID": marker})
    stream.expect_open()
    frame = stream.next_event()
    assert frame.event == "metric_reading_created"
    assert frame.json() == reading


# --- rejected requests leave no trace -----------------------------------------------------------

BadRequest = Callable[[httpx.Client, str], httpx.Response]

BAD_REQUESTS: dict[str, BadRequest] = {
    "metric bad name": lambda http, _: http.post("/metrics", json={"name": " "}),
    "metric bad frequency": lambda http, _: http.post("/metrics", json={"name": "x", "input_frequency": -1}),
    "metric not object": lambda http, _: raw_post(http, "/metrics", b'[{"name": "x"}]'),
    "metric bad json": lambda http, _: raw_post(http, "/metrics", b'{"name": "x"'),
    "metric NaN": lambda http, _: raw_post(http, "/metrics", b'{"name": "x", "input_frequency": NaN}'),
    "metric form": lambda http, _: http.post("/metrics", data={"name": "x"}),
    "metric too large": lambda http, _: raw_post(http, "/metrics", padded_body(MAX_BODY + 1)),
    "reading zero": lambda http, mid: http.post("/metrics/readings", json={"metric_id": mid, "value": 0}),
    "reading uuid4": lambda http, _: http.post(
        "/metrics/readings", json={"metric_id": str(uuid.uuid4()), "value": 1}
    ),
    "reading unknown": lambda http, _: http.post(
        "/metrics/readings", json={"metric_id": new_id(), "value": 1}
    ),
    "reading bad time": lambda http, mid: http.post(
        "/metrics/readings", json={"metric_id": mid, "value": 1, "timestamp": "2026-01-01"}
    ),
    "reading Infinity": lambda http, mid: raw_post(
        http, "/metrics/readings", f'{{"metric_id": "{mid}", "value": Infinity}}'.encode()
    ),
    "reading text/plain": lambda http, mid: http.post(
        "/metrics/readings",
        content=json.dumps({"metric_id": mid, "value": 1}).encode(),
        headers={"content-type": "text/plain"},
    ),
    "reading too large": lambda http, mid: raw_post(
        http,
        "/metrics/readings",
        json.dumps({"metric_id": mid, "value": 1, "pad": "x" * MAX_BODY}).encode(),
    ),
}


@pytest.mark.parametrize("bad", BAD_REQUESTS.values(), ids=BAD_REQUESTS.keys())
def test_rejected_request_stores_nothing_and_emits_no_event(
    hub: Hub, http: httpx.Client, open_stream: OpenStream, bad: BadRequest
) -> None:
    metric = post_metric(http)
    post_reading(http, metric["id"], 5.0)
    stream = open_stream(hub.url)
    stream.expect_open()
    before = state(http)

    response = bad(http, metric["id"])
    assert 400 <= response.status_code < 500
    assert_error(response, response.status_code)
    assert state(http) == before

    # the next frame on the stream is the next good creation, not anything from the bad request
    follow_up = post_metric(http, "follow-up")
    frame = stream.next_event()
    assert frame.event == "metric_created"
    assert frame.json() == follow_up


# --- refusals from hypercorn itself ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("request_bytes", "status"),
    [
        (b"GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Big: " + b"a" * 100_000 + b"\r\n\r\n", 431),
        (b"NOT HTTP AT ALL\r\n\r\n", 400),
    ],
    ids=["huge-head", "not-http"],
)
def test_hypercorns_own_refusals_are_as_documented(hub: Hub, request_bytes: bytes, status: int) -> None:
    """docs/protocol.md: these two come from hypercorn, bodiless, before the request reaches the app."""
    import socket

    port = int(hub.url.rsplit(":", 1)[1])
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(request_bytes)
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    head, _, body = answer.partition(b"\r\n\r\n")
    lines = head.decode().split("\r\n")
    assert lines[0].split()[1] == str(status)
    assert "content-length: 0" in lines
    assert "connection: close" in lines
    assert body == b""
