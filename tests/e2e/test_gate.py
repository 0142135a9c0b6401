"""The gate on a real server (`metricstream/gate.py`): a refusal comes before any body byte, a body that
never comes is answered 408 by the app's clock on every route and leaves no task behind, and wrong tokens
are counted per client address on every route, then answered 429."""

from __future__ import annotations

import re
import socket
from collections.abc import Iterator
from contextlib import ExitStack
from typing import Any

import httpx
import pytest

from metricstream.clock import ManualClock
from metricstream.server.hub import Hub
from metricstream.web.gate import BODY_TIMEOUT, DRAIN_TIMEOUT
from metricstream.web.sessions import FAILURE_WINDOW, MAX_FAILURES
from tests.support.hubs import StartHub, wait_for
from tests.support.tokens import READ, WRITE

WRONG = "wrong-token-0123456789abcdef"
OTHER_ADDRESS = "127.0.0.2"  # loopback too: another client as far as the server can tell


def tasks(scraper: httpx.Client) -> int:
    """The server's asyncio tasks now, as its Prometheus scrape reports them. One kept-alive connection
    for every scrape: hypercorn holds a connection its client closed until its keep-alive timeout."""
    scrape = scraper.get("/-/metrics", headers={"Authorization": f"Bearer {WRITE}"})
    scrape.raise_for_status()
    match = re.search(r"^metricstream_tasks (\S+)$", scrape.text, re.MULTILINE)
    assert match is not None, "metricstream_tasks is not in the scrape"
    return int(float(match.group(1)))


class Stalled:
    """A request whose headers announce a body of which no byte is ever sent."""

    def __init__(self, hub: Hub, method: str, path: str, headers: dict[str, str]) -> None:
        host, port = hub.url.removeprefix("http://").rsplit(":", 1)
        self.sock = socket.create_connection((host, int(port)), timeout=10)
        lines = [f"{method} {path} HTTP/1.1", f"Host: {host}:{port}", "Content-Type: application/json"]
        lines += [f"{name}: {value}" for name, value in headers.items()]
        self.sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
        self.received = b""
        self.sized = "Content-Length" in headers

    def answer(self) -> tuple[int, dict[str, str], bytes]:
        """The status, headers and body of the answer, waiting for it (up to the socket's timeout)."""
        while b"\r\n\r\n" not in self.received:
            self._receive()
        head, _, body = self.received.partition(b"\r\n\r\n")
        status_line, *header_lines = head.decode("latin-1").split("\r\n")
        headers = {name.lower(): value.strip() for name, _, value in (h.partition(":") for h in header_lines)}
        while len(body) < int(headers["content-length"]):
            self._receive()
            body = self.received.partition(b"\r\n\r\n")[2]
        return int(status_line.split()[1]), headers, body

    def nothing_yet(self) -> bool:
        self.sock.setblocking(False)
        try:
            return not self.sock.recv(1, socket.MSG_PEEK)
        except BlockingIOError:
            return True
        finally:
            self.sock.setblocking(True)

    def closed(self) -> bool:
        """Whether the server closed the connection (after whatever it sent)."""
        try:
            while chunk := self.sock.recv(65536):
                self.received += chunk
        except (ConnectionResetError, TimeoutError):
            return False
        return True

    def _receive(self) -> None:
        chunk = self.sock.recv(65536)
        assert chunk, f"closed without an answer after {self.received!r}"
        self.received += chunk


STALLING = [
    ("POST", "/metrics/readings", {"Content-Length": "100"}),
    ("POST", "/metrics/readings/batch", {"Content-Length": "100"}),
    ("POST", "/metrics/readings", {"Transfer-Encoding": "chunked"}),
    ("POST", "/metrics", {"Content-Length": "100"}),
    ("POST", "/metrics", {"Transfer-Encoding": "chunked"}),
    ("DELETE", "/metrics/0190a000-0000-7000-8000-000000000000", {"Content-Length": "10"}),
    ("GET", "/metrics", {"Content-Length": "10"}),
]


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def secured(start_hub: StartHub, clock: ManualClock) -> Hub:
    return start_hub(token=WRITE, subscribe_token=READ, clock=clock)


def test_many_stalled_bodies_get_401_at_once_or_408_by_the_clock_and_leave_no_task(
    secured: Hub, clock: ManualClock
) -> None:
    with ExitStack() as stack:
        scraper = stack.enter_context(httpx.Client(base_url=secured.url, timeout=10))
        baseline, waiting = tasks(scraper), clock.sleepers
        unauthorized, authorized = [], []
        for _ in range(3):
            for method, path, headers in STALLING:
                unauthorized.append(Stalled(secured, method, path, headers))
                token = WRITE if method != "GET" else READ
                authorized.append(
                    Stalled(secured, method, path, {**headers, "Authorization": f"Bearer {token}"})
                )
        # the sign-in needs no token: its body is awaited like any authorised one
        authorized += [
            Stalled(secured, "POST", "/dashboard/session", {"Content-Length": "50"}) for _ in range(3)
        ]
        for request in [*unauthorized, *authorized]:
            stack.callback(request.sock.close)

        for request in unauthorized:  # at once: the clock has not moved
            status, headers, body = request.answer()
            assert status == 401, body
            assert headers["www-authenticate"].startswith("Bearer")
            assert b"a bearer token is required" in body
        # each authorised body is awaited, all on one watchdog on the clock, and each refused one of known
        # size drained (a timer each)
        draining = sum(request.sized for request in unauthorized)
        expected = waiting + 1 + draining
        wait_for(
            lambda: secured.app.gate.bodies_awaited == len(authorized) and clock.sleepers == expected,
            what="every body awaited on the clock",
        )
        assert tasks(scraper) > baseline + len(authorized)

        clock.advance(BODY_TIMEOUT - 1)
        assert all(request.nothing_yet() for request in authorized)
        for request in unauthorized:  # its drain ended: the connection is closed after the answer
            assert DRAIN_TIMEOUT < BODY_TIMEOUT - 1
            assert request.closed()
        clock.advance(2)
        for request in authorized:
            status, headers, body = request.answer()
            assert status == 408, body
            assert headers["connection"] == "close"
            assert body == b'{"error":"the request body did not arrive within 60 seconds"}'
            assert request.closed()
        wait_for(lambda: tasks(scraper) == baseline, what=f"tasks back to {baseline}")


def test_a_refused_small_body_is_answered_before_it_is_sent_and_the_connection_kept(secured: Hub) -> None:
    request = Stalled(secured, "POST", "/metrics/readings", {"Content-Length": "20"})
    with request.sock:
        status, headers, _ = request.answer()  # no byte of the body sent yet
        assert status == 401
        assert "connection" not in headers
        request.sock.sendall(b'{"value": 1, "x": 2}')
        request.received = b""
        request.sock.sendall(f"GET /healthz HTTP/1.1\r\nHost: {secured.url[7:]}\r\n\r\n".encode())
        status, _, body = request.answer()  # the same connection serves the next request
        assert status == 200, body


# --- wrong tokens, counted per address on every route ---------------------------------------------


def client(hub: Hub, address: str = "127.0.0.1", token: str | None = None) -> httpx.Client:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    transport = httpx.HTTPTransport(local_address=address)
    return httpx.Client(base_url=hub.url, transport=transport, headers=headers, timeout=10)


@pytest.fixture
def clients(secured: Hub) -> Iterator[dict[str, httpx.Client]]:
    with (
        client(secured) as anonymous,
        client(secured, token=WRONG) as guesser,
        client(secured, token=READ) as reader,
        client(secured, OTHER_ADDRESS, token=READ) as neighbour,
        client(secured, OTHER_ADDRESS, token=WRITE) as writer,
    ):
        yield {
            "anonymous": anonymous,
            "guesser": guesser,
            "reader": reader,
            "neighbour": neighbour,
            "writer": writer,
        }


def guess_on_every_route(guesser: httpx.Client) -> list[httpx.Response]:
    """One wrong token on each kind of route: reads, the stream, writes, the scrape and the sign-in."""
    reading = {"metric": "m", "value": 1}
    return [
        guesser.get("/metrics"),
        guesser.get("/events/watch", params={"access_token": WRONG}, headers={"Authorization": ""}),
        guesser.post("/metrics/readings", json=reading),
        guesser.get("/-/metrics"),
        guesser.post("/dashboard/session", json={"token": WRONG}),
    ]


def assert_limited(response: httpx.Response) -> int:
    assert response.status_code == 429, response.text
    seconds = int(response.headers["retry-after"])
    assert response.json() == {"error": f"too many wrong tokens from this address: try again in {seconds} s"}
    return seconds


def test_wrong_tokens_on_any_route_lock_out_that_address_only(
    clients: dict[str, httpx.Client], clock: ManualClock
) -> None:
    assert MAX_FAILURES == 5
    answers = guess_on_every_route(clients["guesser"])
    assert [answer.status_code for answer in answers] == [401] * 5

    # Now every guess from that address is 429, whatever the route, and so is the right token there
    for answer in guess_on_every_route(clients["guesser"]):
        assert_limited(answer)
    assert 0 < assert_limited(clients["reader"].get("/metrics")) <= FAILURE_WINDOW
    # ... while a request with no token at all learns only that one is needed
    assert clients["anonymous"].get("/metrics").status_code == 401
    # Another address with a right token is served
    assert clients["neighbour"].get("/metrics").status_code == 200
    assert clients["writer"].post("/metrics/readings", json={"metric": "m", "value": 1}).status_code == 201

    clock.advance(FAILURE_WINDOW)
    assert clients["reader"].get("/metrics").status_code == 200
    assert clients["guesser"].get("/metrics").status_code == 401  # counted again from zero


def test_three_hundred_guesses_meet_a_429_after_five(clients: dict[str, httpx.Client]) -> None:
    guesser = clients["guesser"]
    statuses = [
        guesser.get("/metrics", headers={"Authorization": f"Bearer {WRONG}{n}"}).status_code
        for n in range(300)
    ]
    assert statuses == [401] * MAX_FAILURES + [429] * (300 - MAX_FAILURES)


def test_a_stale_session_cookie_counts_as_a_wrong_token(clients: dict[str, httpx.Client]) -> None:
    """A cookie is the token's HMAC: trying cookies is trying tokens."""
    anonymous = clients["anonymous"]
    statuses = []
    for n in range(MAX_FAILURES + 1):
        anonymous.cookies.set("metricstream_session", f"forged{n}")
        statuses.append(anonymous.get("/metrics").status_code)
    assert statuses == [401] * MAX_FAILURES + [429]


def test_a_server_without_tokens_counts_nothing(start_hub: StartHub) -> None:
    open_hub = start_hub()
    with client(open_hub, token=WRONG) as guesser:
        answers: list[Any] = [guesser.get("/metrics").status_code for _ in range(3 * MAX_FAILURES)]
    assert answers == [200] * (3 * MAX_FAILURES)
