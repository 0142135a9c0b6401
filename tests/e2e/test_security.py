"""Security end to end: bearer tokens for writes, reads, the stream and `/-/metrics`; CORS for the Quart
routes and the stream; the start messages of `metricstream serve`; tokens never logged.

Every server is a real hypercorn on a free port (a `Hub`, or `metricstream serve` in a subprocess). Access
does not depend on the store, so these hubs use `memory://`.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import logging
import signal
from typing import Any

import httpx
import pytest

from metricstream.client.subscribers import AsyncSubscriber, Subscriber
from metricstream.errors import ValidationError
from metricstream.server.hub import Hub
from metricstream.settings import Settings
from metricstream.wire import GENESIS_ID
from tests.support.hubs import FAST, StartHub
from tests.support.processes import ENTRY_POINTS, child, child_env, finish, read_until, serve_url
from tests.support.raw_stream import RawStream
from tests.support.tokens import READ, WRITE

ORIGIN = "https://dashboard.example"
OTHER = "https://evil.example"
NO_CORS_PREFIX = "access-control-"


@pytest.fixture
def secured(start_hub: StartHub) -> Hub:
    return start_hub(token=WRITE, subscribe_token=READ)


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def assert_401(response: httpx.Response, message: str, *, invalid: bool = False) -> None:
    assert response.status_code == 401, response.text
    assert response.headers["content-type"] == "application/json"
    assert response.json() == {"error": message}
    challenge = 'Bearer realm="metricstream"' + (', error="invalid_token"' if invalid else "")
    assert response.headers["www-authenticate"] == challenge


def cors_headers(response: httpx.Response | RawStream) -> dict[str, str]:
    return {name: value for name, value in response.headers.items() if name.startswith(NO_CORS_PREFIX)}


# --- writes -------------------------------------------------------------------------------------------

WRITES = ["/metrics", "/metrics/readings", "/metrics/readings/batch"]
MISSING_WRITE = "a bearer token is required for writes: send Authorization: Bearer <token>"
INVALID_WRITE = "the bearer token is not valid for writes"


@pytest.mark.parametrize("path", WRITES)
@pytest.mark.parametrize(
    ("headers", "invalid"),
    [
        ({}, False),
        ({"Authorization": "Basic d3JpdGU6dG9rZW4="}, True),  # basic, its password not the token: a wrong one
        ({"Authorization": "Bearer"}, False),
        (bearer("wrong-token-0123456789abcdef"), True),
        (bearer(READ), True),  # the read token does not grant writes
        (bearer(WRITE[:-1]), True),
        (bearer(WRITE + "x"), True),
    ],
    ids=["none", "basic", "empty-bearer", "wrong", "read-token", "prefix", "longer"],
)
def test_write_without_the_token_is_401_and_stores_nothing(
    secured: Hub, path: str, headers: dict[str, str], invalid: bool
) -> None:
    metric = secured.service.create_metric("m")  # the Python API needs no token
    bodies: dict[str, dict[str, Any]] = {
        "/metrics": {"name": "x"},
        "/metrics/readings": {"metric_id": metric.id, "value": 1},
        "/metrics/readings/batch": {"readings": [{"metric_id": metric.id, "value": 1}]},
    }
    body = bodies[path]
    with httpx.Client(base_url=secured.url, timeout=10) as http:
        position = http.get("/healthz").json()["events"]
        response = http.post(path, json=body, headers=headers)
        assert_401(response, INVALID_WRITE if invalid else MISSING_WRITE, invalid=invalid)
        assert http.get("/healthz").json()["events"] == position  # no event
    assert secured.service.list_metrics() == [metric]
    assert secured.service.list_readings(metric.id) == []


def test_write_with_the_token_is_201(secured: Hub) -> None:
    with httpx.Client(base_url=secured.url, timeout=10, headers=bearer(WRITE)) as http:
        metric = http.post("/metrics", json={"name": "cpu"})
        assert metric.status_code == 201, metric.text
        reading = http.post("/metrics/readings", json={"metric_id": metric.json()["id"], "value": 2})
        assert reading.status_code == 201, reading.text
        batch = http.post(
            "/metrics/readings/batch", json={"readings": [{"metric_id": metric.json()["id"], "value": 3}]}
        )
        assert batch.status_code == 201, batch.text
    # the scheme in any case, several spaces before the token
    with httpx.Client(base_url=secured.url, timeout=10) as http:
        response = http.post("/metrics", json={"name": "b"}, headers={"Authorization": f"bEaReR   {WRITE}"})
        assert response.status_code == 201, response.text


def test_refused_write_keeps_the_connection_usable(secured: Hub) -> None:
    # One connection only: if the refusal left the body unread and closed silently, the next request fails.
    with httpx.Client(base_url=secured.url, timeout=10, limits=httpx.Limits(max_connections=1)) as http:
        for attempt in range(3):
            refused = http.post("/metrics", json={"name": "x" * 1000})
            assert refused.status_code == 401
            assert "connection" not in refused.headers
            created = http.post("/metrics", json={"name": f"ok {attempt}"}, headers=bearer(WRITE))
            assert created.status_code == 201


def test_refused_write_with_a_large_body_says_connection_close(start_hub: StartHub) -> None:
    # Larger than max_body: not worth reading for a client without the token.
    hub = start_hub(token=WRITE, max_body=1000)
    with httpx.Client(base_url=hub.url, timeout=10) as http:
        refused = http.post(
            "/metrics/readings/batch", content=b" " * 5000, headers={"content-type": "application/json"}
        )
    assert refused.status_code == 401
    assert refused.headers["connection"] == "close"


def test_the_python_api_needs_no_token(secured: Hub) -> None:
    metric = secured.service.create_metric("in process")
    secured.service.create_reading(metric.id, 1.5)
    assert [reading.value for reading in secured.service.list_readings(metric.id)] == [1.5]


def test_only_token_protects_writes_and_leaves_reads_open(start_hub: StartHub) -> None:
    hub = start_hub(token=WRITE)
    with httpx.Client(base_url=hub.url, timeout=10) as http:
        assert http.post("/metrics", json={"name": "x"}).status_code == 401
        assert http.get("/metrics").status_code == 200
        assert http.get("/-/metrics").status_code == 401  # tells how busy the server is
        assert http.get("/-/metrics", headers=bearer(WRITE)).status_code == 200
    stream = RawStream(hub.url)
    try:
        assert stream.status == 200
    finally:
        stream.close()


# --- reads and /-/metrics ------------------------------------------------------------------------------


def test_reads_need_the_subscribe_token_or_the_write_token(secured: Hub) -> None:
    metric = secured.service.create_metric("m")
    paths = [
        "/metrics",
        "/metrics?with_readings=true",
        f"/metrics/{metric.id}",
        f"/metrics/{metric.id}/readings",
    ]
    with httpx.Client(base_url=secured.url, timeout=10) as http:
        for path in paths:
            assert_401(
                http.get(path), "a bearer token is required for reads: send Authorization: Bearer <token>"
            )
            assert http.head(path).status_code == 401  # HEAD: the same answer without its body
            assert_401(
                http.get(path, headers=bearer("wrong-token-0123456789abcdef")),
                "the bearer token is not valid for reads",
                invalid=True,
            )
            for token in (READ, WRITE):
                answer = http.get(path, headers=bearer(token))
                assert answer.status_code == 200, (path, answer.text)
                assert "x-last-event-id" in answer.headers


def test_health_openapi_and_dashboard_stay_open(secured: Hub) -> None:
    with httpx.Client(base_url=secured.url, timeout=10) as http:
        for path in ("/healthz", "/openapi.json", "/"):
            assert http.get(path).status_code == 200, path


def test_prometheus_metrics_need_either_token(secured: Hub) -> None:
    with httpx.Client(base_url=secured.url, timeout=10) as http:
        assert_401(
            http.get("/-/metrics"),
            "a bearer token is required for /-/metrics: send Authorization: Bearer <token>",
        )
        assert http.get("/-/metrics", headers=bearer("wrong-token-0123456789abcdef")).status_code == 401
        for token in (READ, WRITE):
            answer = http.get("/-/metrics", headers=bearer(token))
            assert answer.status_code == 200
            assert "metricstream_clients_connected" in answer.text


def test_without_tokens_everything_is_open(start_hub: StartHub) -> None:
    hub = start_hub()
    with httpx.Client(base_url=hub.url, timeout=10) as http:
        metric = http.post("/metrics", json={"name": "open"})
        assert metric.status_code == 201
        assert http.get("/metrics").status_code == 200
        assert http.get("/-/metrics").status_code == 200
        assert "www-authenticate" not in metric.headers


def test_tokens_are_compared_in_constant_time(secured: Hub, monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[tuple[object, object]] = []
    real = hmac.compare_digest

    def counting(a: Any, b: Any) -> bool:
        calls.append((a, b))
        return real(a, b)

    monkeypatch.setattr(hmac, "compare_digest", counting)
    with httpx.Client(base_url=secured.url, timeout=10) as http:
        assert (
            http.post(
                "/metrics", json={"name": "x"}, headers=bearer("wrong-token-0123456789abcdef")
            ).status_code
            == 401
        )
        assert len(calls) == 1
        assert http.post("/metrics", json={"name": "x"}, headers=bearer(WRITE)).status_code == 201
        assert len(calls) == 2
        assert http.get("/metrics", headers=bearer(READ)).status_code == 200
        assert len(calls) == 3
    stream = RawStream(secured.url, f"access_token={READ}")
    try:
        assert stream.status == 200
    finally:
        stream.close()
    assert len(calls) == 4
    assert all(isinstance(a, bytes) and isinstance(b, bytes) for a, b in calls)
    assert {b for _, b in calls} <= {WRITE.encode(), READ.encode()}


# --- the stream ------------------------------------------------------------------------------------------


def test_stream_needs_the_subscribe_token(secured: Hub) -> None:
    refused = RawStream(secured.url)
    try:
        assert refused.status == 401
        assert refused.headers["www-authenticate"] == 'Bearer realm="metricstream"'
        assert refused.body() == (
            b'{"error":"a bearer token is required for the stream: send Authorization: Bearer <token> '
            b'or ?access_token=<token>"}'
        )
    finally:
        refused.close()
    for query, headers in [
        ("", bearer("wrong-token-0123456789abcdef")),
        ("access_token=wrong-token-0123456789", {}),
    ]:
        wrong = RawStream(secured.url, query, headers=headers)
        try:
            assert wrong.status == 401
            assert wrong.headers["www-authenticate"] == 'Bearer realm="metricstream", error="invalid_token"'
        finally:
            wrong.close()


@pytest.mark.parametrize(
    ("query", "headers"),
    [
        ("", bearer(READ)),
        (f"access_token={READ}", {}),
        (f"types=metric_created&access_token={READ}", {}),
        ("", bearer(WRITE)),  # the write token grants the stream too
    ],
    ids=["header", "query", "query-with-filter", "write-token"],
)
def test_stream_with_the_token_is_200_and_streams(secured: Hub, query: str, headers: dict[str, str]) -> None:
    stream = RawStream(secured.url, query, headers=headers)
    try:
        assert stream.status == 200
        stream.expect_open()
        metric = secured.service.create_metric("streamed")
        assert stream.next_event().json()["id"] == metric.id
    finally:
        stream.close()


def test_subscriber_sends_its_token(secured: Hub) -> None:
    metric = secured.service.create_metric("m")
    with Subscriber(secured.url, token=READ, last_event_id=GENESIS_ID) as subscriber:
        event = next(iter(subscriber))
    assert (event.type, event.data["id"]) == ("metric_created", metric.id)
    with hub_subscription(secured) as subscriber:  # Hub.subscribe passes the hub's own token
        assert next(iter(subscriber)).data["id"] == metric.id
    with (
        pytest.raises(ValueError, match="HTTP 401: a bearer token is required for the stream"),
        Subscriber(secured.url, last_event_id=GENESIS_ID),  # refused as it connects, on entering
    ):
        pass


def hub_subscription(hub: Hub) -> Subscriber:
    return hub.subscribe(last_event_id=GENESIS_ID)


def test_async_subscriber_sends_its_token(secured: Hub) -> None:
    created = secured.service.create_metric("async")

    async def first() -> str:
        async with AsyncSubscriber(secured.url, token=READ, last_event_id=GENESIS_ID) as subscriber:
            async for event in subscriber:
                return str(event.data["id"])
        raise AssertionError("the stream ended")

    assert asyncio.run(first()) == created.id


def test_tokens_are_never_logged(secured: Hub, caplog: pytest.LogCaptureFixture) -> None:
    wrong = "wrong-token-0123456789abcdef"
    with caplog.at_level(logging.DEBUG, logger="metricstream"):
        for query, headers in [
            (f"access_token={READ}", {}),
            ("", bearer(READ)),
            (f"access_token={wrong}", {}),
        ]:
            stream = RawStream(secured.url, query, headers=headers)
            try:
                if stream.status == 200:
                    stream.expect_open()
            finally:
                stream.close()
        with httpx.Client(base_url=secured.url, timeout=10) as http:
            http.post("/metrics", json={"name": "x"}, headers=bearer(wrong))
            http.get("/metrics", headers=bearer(wrong))
        secured.stop()  # the disconnect lines are written by then
    events = [getattr(record, "event", None) for record in caplog.records]
    assert "stream_connect" in events
    assert "stream_refused" in events
    for record in caplog.records:
        text = record.getMessage() + repr(vars(record))
        for secret in (READ, WRITE, wrong):
            assert secret not in text, record


# --- CORS ----------------------------------------------------------------------------------------------


def preflight(
    http: httpx.Client, path: str, method: str, headers: str, origin: str = ORIGIN
) -> httpx.Response:
    return http.options(
        path,
        headers={
            "Origin": origin,
            "Access-Control-Request-Method": method,
            "Access-Control-Request-Headers": headers,
        },
    )


def test_no_cors_headers_by_default(start_hub: StartHub) -> None:
    hub = start_hub()
    with httpx.Client(base_url=hub.url, timeout=10, headers={"Origin": ORIGIN}) as http:
        answers = [
            http.get("/metrics"),
            http.post("/metrics", json={"name": "x"}),
            preflight(http, "/metrics", "POST", "content-type"),
        ]
    for answer in answers:
        assert cors_headers(answer) == {}
        assert "origin" not in answer.headers.get("vary", "").lower()
    stream = RawStream(hub.url, headers={"Origin": ORIGIN})
    try:
        assert stream.status == 200
        assert cors_headers(stream) == {}
    finally:
        stream.close()


def test_cors_preflight_for_a_post_with_json_and_a_token(start_hub: StartHub) -> None:
    hub = start_hub(token=WRITE, cors_origins=[ORIGIN, "http://localhost:3000"])
    with httpx.Client(base_url=hub.url, timeout=10) as http:
        answer = preflight(http, "/metrics", "POST", "content-type, authorization")
        assert answer.status_code == 204  # preflights need no token
        assert answer.headers["access-control-allow-origin"] == ORIGIN
        assert "POST" in answer.headers["access-control-allow-methods"]
        allowed = {h.strip().lower() for h in answer.headers["access-control-allow-headers"].split(",")}
        assert allowed == {"content-type", "authorization"}
        assert "access-control-allow-credentials" not in answer.headers
        assert "origin" in answer.headers["vary"].lower()
        replay = preflight(http, "/metrics", "GET", "last-event-id")
        assert replay.headers["access-control-allow-headers"].lower() == "last-event-id"


def test_cors_actual_answers_for_an_allowed_origin(start_hub: StartHub) -> None:
    hub = start_hub(token=WRITE, cors_origins=f"{ORIGIN}, http://localhost:3000")  # a string, as from env
    with httpx.Client(base_url=hub.url, timeout=10, headers={"Origin": ORIGIN}) as http:
        created = http.post("/metrics", json={"name": "x"}, headers=bearer(WRITE))
        listed = http.get("/metrics")
        refused = http.post("/metrics", json={"name": "x"})  # a page must be able to read the 401
    for answer in (created, listed, refused):
        assert answer.headers["access-control-allow-origin"] == ORIGIN
        exposed = {h.strip().lower() for h in answer.headers["access-control-expose-headers"].split(",")}
        assert {"x-last-event-id", "last-event-id"} <= exposed
        assert "access-control-allow-credentials" not in answer.headers
    assert refused.status_code == 401
    assert "x-last-event-id" in listed.headers


def test_cors_gives_nothing_to_other_origins(start_hub: StartHub) -> None:
    hub = start_hub(cors_origins=[ORIGIN])
    with httpx.Client(base_url=hub.url, timeout=10) as http:
        answers = [
            http.get("/metrics", headers={"Origin": OTHER}),
            http.post("/metrics", json={"name": "x"}, headers={"Origin": OTHER}),
            preflight(http, "/metrics", "POST", "content-type", origin=OTHER),
            preflight(http, "/metrics", "POST", "content-type", origin=ORIGIN + ".evil.example"),
            http.get("/metrics"),  # no Origin at all: not a CORS request
        ]
    for answer in answers:
        assert cors_headers(answer) == {}
    stream = RawStream(hub.url, headers={"Origin": OTHER})
    try:
        assert stream.status == 200
        assert cors_headers(stream) == {}
    finally:
        stream.close()


def test_cors_wildcard_never_with_credentials(start_hub: StartHub) -> None:
    hub = start_hub(cors_origins="*")
    with httpx.Client(base_url=hub.url, timeout=10, headers={"Origin": OTHER}) as http:
        answer = http.get("/metrics")
    assert answer.headers["access-control-allow-origin"] == "*"
    assert "access-control-allow-credentials" not in answer.headers
    with pytest.raises(ValidationError, match="give it alone"):
        Settings.build(cors_origins=["*", ORIGIN])


def test_stream_cors_headers(start_hub: StartHub) -> None:
    hub = start_hub(subscribe_token=READ, cors_origins=[ORIGIN])
    stream = RawStream(hub.url, f"access_token={READ}", headers={"Origin": ORIGIN})
    refused = RawStream(hub.url, headers={"Origin": ORIGIN})
    try:
        assert stream.status == 200
        assert stream.headers["access-control-allow-origin"] == ORIGIN
        exposed = {h.strip().lower() for h in stream.headers["access-control-expose-headers"].split(",")}
        assert {"x-last-event-id", "last-event-id"} <= exposed
        assert "access-control-allow-credentials" not in stream.headers
        assert stream.headers["vary"] == "Origin"  # as quart-cors writes it
        stream.expect_open()
        assert refused.status == 401  # readable by the page, which can then tell the user
        assert refused.headers["access-control-allow-origin"] == ORIGIN
    finally:
        stream.close()
        refused.close()
    with httpx.Client(base_url=hub.url, timeout=10) as http:
        answer = preflight(http, "/events/watch", "GET", "last-event-id, authorization")
        assert answer.status_code == 204
        assert answer.headers["access-control-allow-origin"] == ORIGIN
        assert answer.headers["access-control-allow-methods"] == "GET"
        allowed = {h.strip().lower() for h in answer.headers["access-control-allow-headers"].split(",")}
        assert allowed == {"last-event-id", "authorization"}
        assert int(answer.headers["access-control-max-age"]) > 0
        for other in (
            preflight(http, "/events/watch", "GET", "last-event-id", origin=OTHER),
            preflight(http, "/events/watch", "POST", "content-type"),
        ):
            assert other.status_code == 405
            assert "access-control-allow-methods" not in other.headers


# --- start messages --------------------------------------------------------------------------------------

LOOPBACK_NOTE = r"note: no token is set, so writes are not authenticated; listening on loopback only"


def test_serve_without_a_token_notes_open_writes_on_loopback() -> None:
    with child([*ENTRY_POINTS["console-script"](), "serve", "--port", "0"]) as process:
        assert process.stdout is not None
        seen = bytearray()
        read_until(process.stdout, r"listening on http://127\.0\.0\.1:\d+", seen)
        read_until(process.stdout, LOOPBACK_NOTE, seen)
        process.send_signal(signal.SIGTERM)
        status, _, stderr = finish(process)
    assert status == 0, stderr
    assert "warning" not in stderr


def test_serve_on_a_public_interface_without_a_token_warns() -> None:
    command = [*ENTRY_POINTS["python-m"](), "serve", "--host", "0.0.0.0", "--port", "0"]
    with child(command) as process:
        assert process.stderr is not None
        match = read_until(
            process.stderr,
            r"metricstream: warning: listening on 0\.0\.0\.0:(\d+) without a token",
            bytearray(),
        )
        url = serve_url(process)
        assert url.endswith(f":{match.group(1)}")
        process.send_signal(signal.SIGTERM)
        status, out, stderr = finish(process)
    assert status == 0, stderr
    assert "loopback only" not in out


def test_serve_on_a_public_interface_with_a_token_does_not_warn() -> None:
    env = child_env(METRICSTREAM_TOKEN=WRITE)
    command = [*ENTRY_POINTS["console-script"](), "serve", "--host", "0.0.0.0", "--port", "0"]
    with child(command, env) as process:
        assert process.stdout is not None
        seen = bytearray()
        url = read_until(process.stdout, r"(http://127\.0\.0\.1:\d+)", seen).group(1)
        read_until(process.stdout, r"note: reads and the stream are open", seen)
        assert httpx.post(f"{url}/metrics", json={"name": "x"}, timeout=10).status_code == 401
        process.send_signal(signal.SIGTERM)
        status, out, stderr = finish(process)
    assert status == 0, stderr
    assert "warning" not in stderr
    assert WRITE not in out + stderr + seen.decode()


def test_hub_on_a_public_interface_without_a_token_warns() -> None:
    with pytest.warns(RuntimeWarning, match=r"listening on 0\.0\.0\.0:\d+ without a token"):
        hub = Hub(host="0.0.0.0", port=0, **FAST).start()
    hub.stop()


# --- the Host check (DNS rebinding) -------------------------------------------------------------------

REBOUND = "rebind.attacker.example"  # a name the attacker points at 127.0.0.1


def raw_request(hub: Hub, method: str, path: str, host: str, body: bytes = b"") -> bytes:
    """One request with exactly this Host header, over a bare socket; the raw answer's head and body."""
    import socket
    from urllib.parse import urlsplit

    parts = urlsplit(hub.url)
    with socket.create_connection((parts.hostname, parts.port), timeout=10) as sock:
        head = f"{method} {path} HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n"
        head += f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
        sock.sendall(head.encode() + body)
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    return answer


def status_and_json(answer: bytes) -> tuple[int, Any]:
    head, _, body = answer.partition(b"\r\n\r\n")
    return int(head.split()[1]), (json.loads(body) if body else None)


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("POST", "/metrics", b'{"name": "planted"}'),
        ("GET", "/metrics", b""),
        ("GET", "/events/watch", b""),
        ("GET", "/healthz", b""),
        ("GET", "/", b""),
    ],
)
def test_without_a_token_a_foreign_host_is_refused_before_any_work(
    start_hub: StartHub, method: str, path: str, body: bytes
) -> None:
    hub = start_hub()
    status, answer = status_and_json(raw_request(hub, method, path, f"{REBOUND}:{hub.url.rsplit(':', 1)[1]}"))
    assert status == 403
    assert answer["error"].startswith(f"host '{REBOUND}:")
    assert "allowed_hosts" in answer["error"]
    assert hub.service.list_metrics() == []  # nothing was created


@pytest.mark.parametrize("host", ["localhost", "127.0.0.1", "[::1]", "LOCALHOST.", "127.0.0.2"])
def test_loopback_hosts_with_any_port_are_answered(start_hub: StartHub, host: str) -> None:
    hub = start_hub()
    for value in (host, f"{host}:8089", f"{host}:1", f"{host}:"):
        assert status_and_json(raw_request(hub, "GET", "/metrics", value))[0] == 200


@pytest.mark.parametrize(
    "host", ["[::1]evil.example", "[::1]evil.example:80", "127.0.0.1:80:80", "localhost:x", "[]", "[::1]:8o"]
)
def test_a_host_header_that_is_not_a_host_and_port_is_refused(start_hub: StartHub, host: str) -> None:
    """Only the bracketed part of `[::1]evil.example` looks like loopback: the whole must be a host."""
    assert status_and_json(raw_request(start_hub(), "GET", "/metrics", host))[0] == 403


def test_allowed_hosts_adds_names_and_subdomains(start_hub: StartHub) -> None:
    hub = start_hub(allowed_hosts="lab.example,.example.org")
    for host in ("lab.example:8089", "example.org", "a.b.example.org:1"):
        assert status_and_json(raw_request(hub, "GET", "/metrics", host))[0] == 200
    for host in ("evil.lab.example", "notexample.org", REBOUND):
        assert status_and_json(raw_request(hub, "GET", "/metrics", host))[0] == 403
    assert status_and_json(raw_request(start_hub(allowed_hosts=["*"]), "GET", "/metrics", REBOUND))[0] == 200


def test_with_a_token_any_host_is_answered_unless_allowed_hosts_is_set(start_hub: StartHub) -> None:
    open_hosts = start_hub(token=WRITE)
    assert status_and_json(raw_request(open_hosts, "GET", "/metrics", "metrics.example.com"))[0] == 200
    pinned = start_hub(token=WRITE, allowed_hosts="metrics.example.com")
    assert status_and_json(raw_request(pinned, "GET", "/metrics", "metrics.example.com"))[0] == 200
    assert status_and_json(raw_request(pinned, "GET", "/metrics", REBOUND))[0] == 403
