"""Shared fixtures: real hubs on 127.0.0.1 free ports, HTTP clients, and a raw SSE reader.

Every hub a test starts through `make_hub` (and so `hub`, `http`) uses each storage backend in turn:
`memory://`, SQLite in a temporary file, and a real redis-server (METRICSTREAM_TEST_REDIS_URL if set,
otherwise one started here on a free port), each test under its own key prefix.

`RawStream` speaks HTTP/1.1 over a plain socket so tests can see every frame byte for byte, stop reading
(a slow client) or vanish (a dead peer) — things a friendly client library hides.
"""

from __future__ import annotations

import itertools
import os
import shutil
import socket
import subprocess
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from metricstream.server.hub import Hub
from tests.support.hubs import FAST, StartHub, free_port
from tests.support.raw_stream import OpenStream, RawStream
from tests.support.tls import Certificates

BACKENDS = ["memory", "sqlite", "redis"]
_prefixes = itertools.count()


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark what each test needs, from its fixtures and parameters: redis, browser; notebooks are slow.
    Put the slow files first. Refuse a run in which two tests share a node id: pytest-xdist would run one
    of them and drop the other without a word."""
    shared = [nodeid for nodeid, count in Counter(item.nodeid for item in items).items() if count > 1]
    if shared:
        raise pytest.UsageError(f"{len(shared)} node ids name more than one test, such as {shared[0]}")
    for item in items:
        fixtures = getattr(item, "fixturenames", ())
        callspec = getattr(item, "callspec", None)
        parameters = set(map(str, callspec.params.values())) if callspec else set()
        if "redis_server" in fixtures or "redis" in parameters:
            item.add_marker(pytest.mark.redis)
        if "browser" in fixtures:
            item.add_marker(pytest.mark.browser)
        if item.path.suffix == ".ipynb":
            item.add_marker(pytest.mark.slow)
    # Files with slow tests first, each file's tests in their order: pytest-xdist hands whole files to
    # workers in this order, and a long file handed out last would leave the other workers idle.
    slow_files = {item.path for item in items if item.get_closest_marker("slow")}
    items.sort(key=lambda item: item.path not in slow_files)


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
    from tests.support.apitools import post_metric

    metric: str = post_metric(http)["id"]
    return metric


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
