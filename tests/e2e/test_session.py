"""The dashboard's sign-in, `/dashboard/session`, over real HTTP: the cookie it sets and what that cookie
grants (reads and the stream, never writes), refusals and their rate limit (through a `ManualClock`), the
Origin check, sign-out, restarts, and HTTPS (hypercorn with a certificate, as docs/security.md runs it).

Every server is a real hypercorn on a free 127.0.0.1 port, stopped by its test. Access does not depend on
the store, so these hubs use `memory://`.
"""

from __future__ import annotations

import shutil
import signal
import ssl
import subprocess
from http.cookies import Morsel, SimpleCookie
from pathlib import Path
from typing import Any

import httpx
import pytest

from metricstream.clock import ManualClock
from metricstream.server.hub import Hub
from metricstream.web.sessions import FAILURE_WINDOW, MAX_FAILURES
from tests.support.hubs import StartHub, free_port
from tests.support.processes import child, child_env, finish, installed, read_until
from tests.support.raw_stream import RawStream
from tests.support.tokens import READ, WRITE

COOKIE = "metricstream_session"
SESSION = "/dashboard/session"
MISSING_WRITE = "a bearer token is required for writes: send Authorization: Bearer <token>"
WRONG = "that token is not valid here: give this server's subscribe_token (or its token)"


@pytest.fixture
def secured(start_hub: StartHub) -> Hub:
    return start_hub(token=WRITE, subscribe_token=READ)


def set_cookie(response: httpx.Response) -> Morsel[str]:
    """The one Set-Cookie of an answer, parsed."""
    [header] = response.headers.get_list("set-cookie")
    jar: SimpleCookie = SimpleCookie()
    jar.load(header)
    [morsel] = jar.values()
    return morsel


def sign_in(http: httpx.Client, token: str = READ, **kwargs: Any) -> httpx.Response:
    return http.post(SESSION, json={"token": token}, **kwargs)


def cookie_of(hub: Hub, token: str = READ) -> str:
    """A session cookie's value, signed in with `token`."""
    with httpx.Client(base_url=hub.url, timeout=10) as http:
        answer = sign_in(http, token)
        assert answer.status_code == 200, answer.text
        return set_cookie(answer).value


def cookie_header(value: str) -> dict[str, str]:
    return {"Cookie": f"theme=dark; {COOKIE}={value}; other=1"}  # among a page's other cookies


# --- without a token to ask for -------------------------------------------------------------------


@pytest.mark.parametrize("settings", [{}, {"token": WRITE}], ids=["no-token", "write-token-only"])
def test_without_a_read_token_the_routes_say_none_is_required(
    start_hub: StartHub, settings: dict[str, str]
) -> None:
    hub = start_hub(**settings)
    state = {"required": False, "signed_in": False}
    with httpx.Client(base_url=hub.url, timeout=10) as http:
        answer = http.get(SESSION)
        assert (answer.status_code, answer.json()) == (200, state)
        assert answer.headers["cache-control"] == "no-store"
        answer = sign_in(http, WRITE)  # reads are open: nothing to sign in to, so no cookie
        assert (answer.status_code, answer.json()) == (200, state)
        assert "set-cookie" not in answer.headers
        answer = http.delete(SESSION)
        assert (answer.status_code, answer.json()) == (200, state)
        assert http.get("/metrics").status_code == 200


# --- the cookie -----------------------------------------------------------------------------------


@pytest.mark.parametrize("token", [READ, WRITE], ids=["subscribe-token", "token"])
def test_sign_in_sets_an_http_only_strict_cookie_that_is_not_the_token(secured: Hub, token: str) -> None:
    with httpx.Client(base_url=secured.url, timeout=10) as http:
        assert http.get(SESSION).json() == {"required": True, "signed_in": False}
        answer = sign_in(http, token)
        assert (answer.status_code, answer.json()) == (200, {"required": True, "signed_in": True})
        assert answer.headers["cache-control"] == "no-store"
        header = answer.headers["set-cookie"]
        cookie = set_cookie(answer)
        assert cookie.key == COOKIE
        assert cookie["httponly"] is True
        assert cookie["samesite"] == "Strict"
        assert cookie["path"] == "/"
        assert not cookie["secure"]  # plain HTTP (HTTPS: test_the_cookie_is_secure_over_https)
        assert not cookie["max-age"]  # no Max-Age or Expires: until the browser's session ends
        assert not cookie["expires"]
        assert "domain" not in header.lower()  # this host only
        assert token not in header
        assert cookie.value not in (READ, WRITE)
        assert len(cookie.value) == 43  # a SHA-256 HMAC, base64url
        assert http.get(SESSION).json() == {"required": True, "signed_in": True}  # the jar sends it
    assert cookie_of(secured, token) == cookie.value  # derived from the token: the same every time
    assert cookie_of(secured, READ if token == WRITE else WRITE) != cookie.value


@pytest.mark.parametrize("token", [READ, WRITE], ids=["subscribe-token", "token"])
def test_the_cookie_reads_and_streams(secured: Hub, token: str) -> None:
    metric = secured.service.create_metric("cpu")
    secured.service.create_reading(metric.id, 1.5)
    headers = cookie_header(cookie_of(secured, token))
    with httpx.Client(base_url=secured.url, timeout=10, headers=headers) as http:
        for path in ("/metrics", f"/metrics/{metric.id}", f"/metrics/{metric.id}/readings"):
            assert http.get(path).status_code == 200, path
            assert http.head(path).status_code == 200, path
        assert http.get("/metrics?with_readings=true").json()[0]["readings"][0]["value"] == 1.5
        assert http.get("/-/metrics").status_code == 401  # the scrape is no read: it needs a token
        stream = RawStream(secured.url, headers=headers)
        try:
            assert stream.status == 200
            stream.expect_open()
            reading = secured.service.create_reading(metric.id, 2.5)
            event = stream.next_event()
            assert (event.event, event.json()["id"]) == ("metric_reading_created", reading.id)
        finally:
            stream.close()
    for query in ("", "access_token=wrong-token-0123456789"):  # without the cookie: refused
        refused = RawStream(secured.url, query)
        try:
            assert refused.status == 401
        finally:
            refused.close()


@pytest.mark.parametrize("token", [READ, WRITE], ids=["subscribe-token", "token"])
def test_the_cookie_cannot_write(secured: Hub, token: str) -> None:
    """Not even a cookie made from the write token: a cookie rides along on cross-site requests, so it
    grants nothing a forged request could use."""
    metric = secured.service.create_metric("cpu")
    writes = [
        ("POST", "/metrics", {"name": "forged"}),
        ("POST", "/metrics/readings", {"metric_id": metric.id, "value": 1.0}),  # the ASGI fast path
        ("POST", "/metrics/readings/batch", {"readings": [{"metric_id": metric.id, "value": 1.0}]}),
        ("DELETE", f"/metrics/{metric.id}", None),
    ]
    headers = cookie_header(cookie_of(secured, token))
    with httpx.Client(base_url=secured.url, timeout=10, headers=headers) as http:
        for method, path, body in writes:
            answer = http.request(method, path, json=body)
            assert answer.status_code == 401, (method, path, answer.text)
            assert answer.json() == {"error": MISSING_WRITE}
            assert answer.headers["www-authenticate"] == 'Bearer realm="metricstream"'
        assert http.get("/metrics").json() == [metric.to_dict()]  # nothing changed
        bearer = {"Authorization": f"Bearer {WRITE}"}  # the write token itself still writes
        assert http.post("/metrics", json={"name": "real"}, headers=bearer).status_code == 201


def test_bearer_tokens_and_access_token_still_work_beside_it(secured: Hub) -> None:
    with httpx.Client(base_url=secured.url, timeout=10) as http:
        assert http.get("/metrics", headers={"Authorization": f"Bearer {READ}"}).status_code == 200
        assert http.get("/metrics").status_code == 401
    stream = RawStream(secured.url, f"access_token={READ}")
    try:
        assert stream.status == 200
        stream.expect_open()
    finally:
        stream.close()


# --- refusals -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "content_type", "status"),
    [
        (b'{"token": 5}', "application/json", 400),
        (b"{}", "application/json", 400),
        (b'{"token": ""}', "application/json", 400),
        (b'["token"]', "application/json", 400),
        (b"{", "application/json", 400),
        (f"token={READ}".encode(), "application/x-www-form-urlencoded", 415),  # what a form can post
    ],
)
def test_a_bad_sign_in_body_is_a_4xx_with_an_error(
    secured: Hub, body: bytes, content_type: str, status: int
) -> None:
    with httpx.Client(base_url=secured.url, timeout=10) as http:
        answer = http.post(SESSION, content=body, headers={"Content-Type": content_type})
        assert answer.status_code == status, answer.text
        assert answer.json()["error"]
        assert "set-cookie" not in answer.headers


def test_a_wrong_token_is_refused_and_repeated_failures_wait_out_the_window(start_hub: StartHub) -> None:
    clock = ManualClock()
    hub = start_hub(token=WRITE, subscribe_token=READ, clock=clock)
    with httpx.Client(base_url=hub.url, timeout=10) as http:
        for _ in range(MAX_FAILURES):
            answer = sign_in(http, "wrong-token-0123456789abcdef")
            assert (answer.status_code, answer.json()) == (401, {"error": WRONG})
            assert answer.headers["www-authenticate"] == 'Bearer realm="metricstream", error="invalid_token"'
            assert "set-cookie" not in answer.headers
        limited = f"too many wrong tokens from this address: try again in {FAILURE_WINDOW:g} s"
        for token in ("wrong-token-0123456789abcdef", READ):  # even the right one, while limited
            answer = sign_in(http, token)
            assert (answer.status_code, answer.json()) == (429, {"error": limited})
            assert answer.headers["retry-after"] == f"{FAILURE_WINDOW:g}"
            assert "set-cookie" not in answer.headers

        # another address is not limited by this one's failures
        other = httpx.HTTPTransport(local_address="127.0.0.2")
        with httpx.Client(base_url=hub.url, timeout=10, transport=other) as elsewhere:
            assert sign_in(elsewhere, "wrong-token-0123456789abcdef").status_code == 401

        clock.advance(FAILURE_WINDOW - 0.5)
        answer = sign_in(http, READ)
        assert (answer.status_code, answer.headers["retry-after"]) == (429, "1")  # rounded up
        clock.advance(0.5)  # the oldest failure is now a window old
        assert sign_in(http, "wrong-token-0123456789abcdef").status_code == 401  # counted again
        answer = sign_in(http, READ)
        assert answer.status_code == 200, answer.text
        assert set_cookie(answer).key == COOKIE


def test_sign_in_and_out_take_only_this_servers_origin_or_none(secured: Hub) -> None:
    own = secured.url  # http://127.0.0.1:<port>
    with httpx.Client(base_url=secured.url, timeout=10) as http:
        assert sign_in(http, headers={"Origin": own}).status_code == 200
        assert http.delete(SESSION, headers={"Origin": own}).status_code == 200
        assert sign_in(http).status_code == 200  # no Origin: not a browser's cross-site request
        port = int(own.rpartition(":")[2])
        for foreign in ("https://evil.example", "null", f"http://127.0.0.1:{port + 1}", "http://localhost"):
            for answer in (
                sign_in(http, headers={"Origin": foreign}),
                http.delete(SESSION, headers={"Origin": foreign}),
            ):
                assert answer.status_code == 403, (foreign, answer.text)
                assert "Origin" in answer.json()["error"]
                assert "set-cookie" not in answer.headers
        assert http.get(SESSION).json()["signed_in"] is True  # the refused sign-out changed nothing


# --- sign-out and restarts ------------------------------------------------------------------------


def test_sign_out_clears_the_cookie(secured: Hub) -> None:
    with httpx.Client(base_url=secured.url, timeout=10) as http:
        assert sign_in(http).status_code == 200
        assert http.get("/metrics").status_code == 200
        answer = http.delete(SESSION)
        assert (answer.status_code, answer.json()) == (200, {"required": True, "signed_in": False})
        cleared = set_cookie(answer)
        assert (cleared.key, cleared.value, cleared["max-age"]) == (COOKIE, "", "0")
        assert (cleared["path"], cleared["httponly"], cleared["samesite"]) == ("/", True, "Strict")
        assert not http.cookies  # the client dropped it
        assert http.get("/metrics").status_code == 401
        assert http.get(SESSION).json() == {"required": True, "signed_in": False}


def test_a_token_changed_across_a_restart_invalidates_old_cookies(start_hub: StartHub) -> None:
    port = free_port()
    first = start_hub(port=port, subscribe_token=READ)
    value = cookie_of(first)
    first.stop()
    same = start_hub(port=port, subscribe_token=READ)  # no server-side state: the same token, still valid
    with httpx.Client(base_url=same.url, timeout=10, headers=cookie_header(value)) as http:
        assert http.get("/metrics").status_code == 200
    same.stop()

    changed = start_hub(port=port, subscribe_token="another-read-token-0123456789")
    stale = "the dashboard session is not valid for reads (was the token changed?): sign in again"
    with httpx.Client(base_url=changed.url, timeout=10, headers=cookie_header(value)) as http:
        answer = http.get("/metrics")
        assert (answer.status_code, answer.json()) == (401, {"error": stale})
        assert http.get(SESSION).json() == {"required": True, "signed_in": False}
    stream = RawStream(changed.url, headers=cookie_header(value))
    try:
        assert stream.status == 401
        assert "the dashboard session is not valid for the stream" in stream.body().decode()
    finally:
        stream.close()


# --- HTTPS ----------------------------------------------------------------------------------------


def test_the_cookie_is_secure_over_https(tmp_path: Path) -> None:
    """Under hypercorn with a certificate (docs/security.md), the scope's scheme is https: `Secure`."""
    openssl = shutil.which("openssl")
    assert openssl is not None, "openssl is not installed (apt-get install openssl)"
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    request = ["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=127.0.0.1"]
    subprocess.run(
        [openssl, *request, "-addext", "subjectAltName=IP:127.0.0.1", "-keyout", str(key), "-out", str(cert)],
        check=True,
        capture_output=True,
        timeout=60,
    )
    port = free_port()
    command = [*installed("hypercorn"), "metricstream.asgi:app", "--bind", f"127.0.0.1:{port}"]
    command += ["--certfile", str(cert), "--keyfile", str(key)]
    with child(command, child_env(METRICSTREAM_SUBSCRIBE_TOKEN=READ)) as process:
        assert process.stderr is not None
        read_until(process.stderr, rf"Running on https://127\.0\.0\.1:{port}\b", bytearray())
        url = f"https://127.0.0.1:{port}"
        with httpx.Client(base_url=url, timeout=10, verify=ssl.create_default_context(cafile=cert)) as http:
            answer = sign_in(http, headers={"Origin": url})
            assert answer.status_code == 200, answer.text
            cookie = set_cookie(answer)
            assert cookie["secure"] is True
            assert (cookie["httponly"], cookie["samesite"], cookie["path"]) == (True, "Strict", "/")
            assert http.get("/metrics").status_code == 200
            assert set_cookie(http.delete(SESSION))["secure"] is True
        process.send_signal(signal.SIGTERM)
        status, _, stderr = finish(process)
    assert status == 0, stderr
