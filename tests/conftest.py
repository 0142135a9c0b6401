"""Shared fixtures: real hubs on 127.0.0.1 free ports, HTTP clients, and a raw SSE reader.

Every hub a test starts through `make_hub` (and so `hub`, `http`) uses each storage backend in turn:
`memory://`, SQLite in a temporary file, and a real redis-server (METRICSTREAM_TEST_REDIS_URL if set,
otherwise one started here on a free port), each test under its own key prefix.

`RawStream` speaks HTTP/1.1 over a plain socket so tests can see every frame byte for byte, stop reading
(a slow client) or vanish (a dead peer) — things a friendly client library hides.
"""

from __future__ import annotations

import itertools
import json
import os
import shutil
import socket
import ssl
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest

from metricstream.server.hub import Hub

FAST: dict[str, Any] = {"heartbeat": 0.5, "shutdown_timeout": 3.0}


BACKENDS = ["memory", "sqlite", "redis"]
_prefixes = itertools.count()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """URL of a Redis server for the tests: METRICSTREAM_TEST_REDIS_URL, or our own redis-server."""
    given = os.environ.get("METRICSTREAM_TEST_REDIS_URL")
    if given:
        yield given
        return
    binary = shutil.which("redis-server")
    if binary is None:
        raise RuntimeError("redis-server is not installed: run ./tests/run, which installs it")
    port = free_port()
    workdir = tmp_path_factory.mktemp("redis")
    process = subprocess.Popen(
        [
            binary,
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            str(workdir),
        ],
        stdout=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 10
        while True:  # redis-server has no readiness signal but answering
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=1) as probe:
                    probe.sendall(b"PING\r\n")
                    if probe.recv(16).startswith(b"+PONG"):
                        break
            except OSError:
                if time.monotonic() > deadline or process.poll() is not None:
                    raise RuntimeError("redis-server did not start") from None
                time.sleep(0.02)
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        process.terminate()
        process.wait(10)


@pytest.fixture(params=BACKENDS)
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A fresh store of each backend in turn."""
    if request.param == "memory":
        return "memory://"
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'metricstream.db'}"
    redis_url: str = request.getfixturevalue("redis_server")
    return f"{redis_url}?prefix=test{os.getpid()}-{next(_prefixes)}:"


@pytest.fixture
def make_hub(store_url: str) -> Iterator[Callable[..., Hub]]:
    """Start hubs with the given settings (on this test's store unless `store=` is given); all are
    stopped at the end of the test."""
    hubs: list[Hub] = []

    def start(**settings: Any) -> Hub:
        hub = Hub(port=0, **{**FAST, "store": store_url, **settings}).start()
        hubs.append(hub)
        return hub

    yield start
    for hub in hubs:
        hub.stop()


StartHub = Callable[..., Hub]


@pytest.fixture
def start_hub() -> Iterator[StartHub]:
    """Start in-memory hubs with the given settings (`port=` too); all are stopped at the end of the test."""
    hubs: list[Hub] = []

    def start(**settings: Any) -> Hub:
        hub = Hub(port=settings.pop("port", 0), **{**FAST, "store": "memory://", **settings}).start()
        hubs.append(hub)
        return hub

    yield start
    for hub in hubs:
        hub.stop()


@pytest.fixture
def hub(make_hub: Callable[..., Hub]) -> Hub:
    return make_hub()


@pytest.fixture
def http(hub: Hub) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=hub.url, timeout=10) as client:
        yield client


@pytest.fixture
def metric_id(http: httpx.Client) -> str:
    """A metric that exists on the `http` hub."""
    from .apitools import post_metric

    metric: str = post_metric(http)["id"]
    return metric


@dataclass
class Frame:
    """One SSE block as sent: its fields in order, comments apart."""

    fields: list[tuple[str, str]] = field(default_factory=list)
    comments: list[str] = field(default_factory=list)

    def get(self, name: str) -> str | None:
        values = [value for key, value in self.fields if key == name]
        return "\n".join(values) if values else None

    @property
    def id(self) -> str | None:
        return self.get("id")

    @property
    def event(self) -> str | None:
        return self.get("event")

    @property
    def data(self) -> str | None:
        return self.get("data")

    def json(self) -> Any:
        assert self.data is not None
        return json.loads(self.data)


class RawStream:
    """`GET /events/watch` over a bare socket, decoding chunked transfer by hand."""

    def __init__(
        self,
        url: str,
        query: str = "",
        headers: dict[str, str] | None = None,
        receive_buffer: int | None = None,
    ) -> None:
        parts = urlsplit(url)
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        if receive_buffer is not None:  # small, so a client that stops reading fills up fast
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, receive_buffer)
        self.sock.settimeout(10)
        self.sock.connect((parts.hostname, parts.port))
        lines = [f"GET /events/watch{'?' + query if query else ''} HTTP/1.1", f"Host: {parts.netloc}"]
        lines += [f"{name}: {value}" for name, value in (headers or {}).items()]
        self.sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
        self._buffer = b""
        self._body = b""
        self.chunked_done = False
        self.chunks = 0  # body chunks read: one per write the server made
        head = self._read_until(b"\r\n\r\n").decode("latin-1").split("\r\n")
        self.status = int(head[0].split()[1])
        self.headers = {
            name.strip().lower(): value.strip()
            for name, _, value in (line.partition(":") for line in head[1:])
        }

    def _recv(self, deadline: float) -> bytes:
        self.sock.settimeout(max(0.001, deadline - time.monotonic()))
        data = self.sock.recv(65536)
        if not data:
            raise EOFError("connection closed")
        return data

    def _read_until(self, marker: bytes, deadline: float | None = None) -> bytes:
        deadline = deadline or time.monotonic() + 10
        while marker not in self._buffer:
            self._buffer += self._recv(deadline)
        head, _, self._buffer = self._buffer.partition(marker)
        return head

    def _read_exact(self, size: int, deadline: float) -> bytes:
        while len(self._buffer) < size:
            self._buffer += self._recv(deadline)
        data, self._buffer = self._buffer[:size], self._buffer[size:]
        return data

    def _read_chunk(self, deadline: float) -> None:
        size = int(self._read_until(b"\r\n", deadline), 16)
        if size == 0:
            self.chunked_done = True
            raise EOFError("stream ended")
        self._body += self._read_exact(size, deadline)
        self._read_exact(2, deadline)
        self.chunks += 1

    def body(self) -> bytes:
        """The rest of a non-streaming (content-length) response."""
        return self._read_exact(int(self.headers["content-length"]), time.monotonic() + 10)

    def next_frame(self, timeout: float = 10) -> Frame:
        deadline = time.monotonic() + timeout
        while b"\n\n" not in self._body:
            self._read_chunk(deadline)
        return self._take_frame()

    def next_write(self, timeout: float = 10) -> list[Frame]:
        """The frames of the server's next write (one chunk), all read before it: the opening frames."""
        assert not self._body, "frames of an earlier write are still unread"
        self._read_chunk(time.monotonic() + timeout)
        frames = []
        while b"\n\n" in self._body:
            frames.append(self._take_frame())
        return frames

    def _take_frame(self) -> Frame:
        block, _, self._body = self._body.partition(b"\n\n")
        frame = Frame()
        for line in block.decode().split("\n"):
            name, _, value = line.partition(":")
            value = value[1:] if value.startswith(" ") else value
            if name:
                frame.fields.append((name, value))
            else:
                frame.comments.append(value)
        return frame

    def next_event(self, timeout: float = 10) -> Frame:
        """The next frame that is not a heartbeat comment."""
        while True:
            frame = self.next_frame(timeout)
            if frame.fields:
                return frame

    def read_to_end(self, timeout: float = 10) -> list[Frame]:
        """Every frame until the server ends the response or drops the connection."""
        frames = []
        try:
            while True:
                frames.append(self.next_frame(timeout))
        except (EOFError, ConnectionResetError):
            return frames

    def expect_open(self) -> None:
        """Consume the opening `retry:` and `data: connected` blocks."""
        retry = self.next_frame()
        assert retry.get("retry") is not None
        assert self.next_frame().data == "connected"

    def close(self) -> None:
        self.sock.close()


OpenStream = Callable[..., RawStream]


@pytest.fixture
def open_stream() -> Iterator[OpenStream]:
    streams: list[RawStream] = []

    def open_(url: str, query: str = "", **kwargs: Any) -> RawStream:
        stream = RawStream(url, query, **kwargs)
        streams.append(stream)
        return stream

    yield open_
    for stream in streams:
        stream.close()


def wait_for(predicate: Callable[[], bool], timeout: float = 10, what: str = "condition") -> None:
    """Poll a cheap condition that has no event to await (e.g. a server-side counter)."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.01)


@dataclass(frozen=True)
class Certificates:
    """A throwaway CA (trustme) and the server certificate it issued for 127.0.0.1 and localhost."""

    ca: Path  # the CA's certificate: what a client is told to trust (`verify=`)
    certfile: Path  # the server's certificate, then its chain up to the CA
    keyfile: Path  # the server's private key

    def context(self) -> ssl.SSLContext:
        """A client context that trusts the CA (and nothing else)."""
        return ssl.create_default_context(cafile=str(self.ca))


@pytest.fixture(scope="session")
def certificates(tmp_path_factory: pytest.TempPathFactory) -> Certificates:
    import trustme

    folder = tmp_path_factory.mktemp("tls")
    ca = trustme.CA()
    server = ca.issue_cert("127.0.0.1", "localhost")
    files = Certificates(folder / "ca.pem", folder / "server.pem", folder / "server.key")
    ca.cert_pem.write_to_path(str(files.ca))
    for blob in server.cert_chain_pems:
        blob.write_to_path(str(files.certfile), append=True)
    server.private_key_pem.write_to_path(str(files.keyfile))
    return files
