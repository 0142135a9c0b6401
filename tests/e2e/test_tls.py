"""HTTPS and HTTP/2: `certfile` and `keyfile` on a Hub and on `metricstream serve`, the stream over TLS
with HTTP/1.1 and HTTP/2, many subscribers on one HTTP/2 connection, clients that do not trust the
certificate, and the settings refused before anything starts.

Certificates come from a throwaway CA (trustme, the `certificates` fixture). Every server is a real hypercorn
on a 127.0.0.1 free port, stopped by its test.
"""

from __future__ import annotations

import contextlib
import logging
import signal
import ssl
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest
import trustme

import metricstream.client.core
from metricstream.client.subscribers import AsyncSubscriber, Subscriber
from metricstream.errors import ValidationError
from metricstream.server.hub import Hub
from tests.support.hubs import FAST
from tests.support.processes import ENTRY_POINTS, child, finish, serve_url
from tests.support.subscribers import consumer_threads
from tests.support.tls import Certificates

TIMEOUT = 10  # seconds any one step may take


@contextlib.contextmanager
def https_hub(certificates: Certificates, **settings: Any) -> Iterator[Hub]:
    tls = {"certfile": str(certificates.certfile), "keyfile": str(certificates.keyfile)}
    with Hub(port=0, **{**FAST, **tls, **settings}) as hub:
        yield hub


def http_versions(caplog: pytest.LogCaptureFixture) -> list[str]:
    """The HTTP versions of the answers httpx logged (`HTTP Request: GET ... "HTTP/2 200 OK"`)."""
    return [
        str(record.args[2])
        for record in caplog.records
        if record.name == "httpx" and isinstance(record.args, tuple) and len(record.args) == 5
    ]


def test_a_hub_with_a_certificate_answers_over_https(certificates: Certificates) -> None:
    with https_hub(certificates) as hub:
        assert hub.url.startswith("https://127.0.0.1:")
        assert f"<Hub running {hub.url}" in repr(hub)
        for http2, version in ((False, "HTTP/1.1"), (True, "HTTP/2")):
            with httpx.Client(verify=certificates.context(), http2=http2, timeout=TIMEOUT) as http:
                health = http.get(f"{hub.url}/healthz")
                assert health.status_code == 200
                assert health.json()["status"] == "ok"
                assert health.http_version == version  # ALPN: h2 to those who offer it
        with pytest.raises(httpx.TransportError):  # plain HTTP to the TLS port gets no answer
            httpx.get(hub.url.replace("https://", "http://") + "/healthz", timeout=TIMEOUT)


@pytest.mark.parametrize("version", ["HTTP/1.1", "HTTP/2"])
def test_a_subscriber_trusting_the_ca_reads_the_stream(
    certificates: Certificates,
    version: str,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    verify: ssl.SSLContext | str = str(certificates.ca)  # a CA file, as a path
    if version == "HTTP/1.1":  # as without h2 installed; and the CA as an ssl.SSLContext
        monkeypatch.setattr(metricstream.client.core, "HTTP2", False)
        verify = certificates.context()
    caplog.set_level(logging.INFO, logger="httpx")
    with https_hub(certificates) as hub, Subscriber(hub.url, start="earliest", verify=verify) as events:
        metric = hub.service.create_metric("cpu")
        reading = hub.service.create_reading(metric.id, 48.5)
        stream = iter(events)
        assert next(stream).data["id"] == metric.id
        assert next(stream).data["id"] == reading.id
    assert http_versions(caplog) == [version]


def test_hub_subscribe_trusts_its_own_certificate_whatever_its_names(tmp_path: Path) -> None:
    # A certificate for a public name only: no client would accept it at 127.0.0.1, but the hub's own
    # subscriber knows it by the certificate itself.
    server = trustme.CA().issue_cert("metrics.example")
    certfile, keyfile = tmp_path / "server.pem", tmp_path / "server.key"
    server.cert_chain_pems[0].write_to_path(str(certfile))
    server.private_key_pem.write_to_path(str(keyfile))
    with Hub(port=0, certfile=str(certfile), keyfile=str(keyfile), **FAST) as hub:
        with hub.subscribe() as events:
            metric = hub.service.create_metric("cpu")
            assert next(iter(events)).data["id"] == metric.id
        with pytest.raises(httpx.ConnectError, match="CERTIFICATE_VERIFY_FAILED"):
            httpx.get(f"{hub.url}/healthz", timeout=TIMEOUT)


@pytest.mark.anyio
@pytest.mark.parametrize("anyio_backend", ["asyncio", "trio"])
async def test_many_async_subscribers_share_one_http2_connection(
    certificates: Certificates, caplog: pytest.LogCaptureFixture, anyio_backend: str
) -> None:
    count = 20  # more than a browser's 6 connections per server, or any HTTP/1.1 pool would hold
    caplog.set_level(logging.INFO, logger="metricstream.stream")
    with https_hub(certificates) as hub:
        async with (
            httpx.AsyncClient(http2=True, verify=certificates.context(), timeout=TIMEOUT) as http,
            contextlib.AsyncExitStack() as stack,
        ):
            subscribers = [AsyncSubscriber(hub.url, client=http) for _ in range(count)]
            with anyio.fail_after(TIMEOUT):
                for subscriber in subscribers:
                    await stack.enter_async_context(subscriber)  # connected: its position is fixed
            assert hub.app.broadcaster.statistics().clients == count
            metric = hub.service.create_metric("cpu")
            with anyio.fail_after(TIMEOUT):
                for subscriber in subscribers:
                    event = await anext(aiter(subscriber))
                    assert (event.type, event.data["id"]) == ("metric_created", metric.id)
    # Every stream came from one client port: one TCP connection carried them all.
    connects = [vars(record) for record in caplog.records if vars(record).get("event") == "stream_connect"]
    assert len(connects) == count
    assert len({connect["client"] for connect in connects}) == 1


@pytest.mark.parametrize("http2", [False, True], ids=["HTTP/1.1", "HTTP/2"])
def test_close_from_another_thread_ends_an_https_subscriber_at_once(
    certificates: Certificates, http2: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(metricstream.client.core, "HTTP2", http2)
    with https_hub(certificates, heartbeat=60) as hub:  # no traffic to wake the reading thread
        with Subscriber(hub.url, verify=str(certificates.ca)).on_event(lambda event: None) as subscriber:
            [consumer] = consumer_threads(subscriber)  # reading, blocked on the TLS socket
            closed_at = time.monotonic()
        # Leaving the block closed it: shutting the socket down wakes the thread under TLS too.
        assert time.monotonic() - closed_at < 1.0
        assert not consumer.is_alive()
        assert subscriber.error is None


def test_a_client_without_the_ca_is_refused_with_an_ssl_error(certificates: Certificates) -> None:
    with https_hub(certificates) as hub:
        with pytest.raises(httpx.ConnectError, match="CERTIFICATE_VERIFY_FAILED"):
            httpx.get(f"{hub.url}/healthz", timeout=TIMEOUT)
        # A subscriber raises it too, rather than retrying: no retry makes the certificate trusted.
        with pytest.raises(httpx.ConnectError, match="CERTIFICATE_VERIFY_FAILED"), Subscriber(hub.url):
            pass
        assert hub.app.broadcaster.statistics().accepted == 0


def test_http2_refusals_carry_no_connection_header_and_leave_the_connection_open(
    certificates: Certificates,
) -> None:
    # Refusals that end an HTTP/1.1 connection (`connection: close`): a Host not allowed, a write without
    # the token whose body was left unread. Over HTTP/2 only their own stream ends; a stream open on the
    # same connection goes on.
    token = "t" * 32
    settings = {"token": token, "allowed_hosts": ["127.0.0.1"], "max_body": 100}
    with (
        https_hub(certificates, **settings) as hub,
        httpx.Client(http2=True, verify=certificates.context(), timeout=TIMEOUT) as http,
        http.stream("GET", f"{hub.url}/events/watch") as stream,
    ):
        assert stream.http_version == "HTTP/2"
        assert "connection" not in stream.headers
        lines = stream.iter_lines()
        next(line for line in lines if line == "data: connected")
        refusals = [
            http.get(f"{hub.url}/healthz", headers={"host": "rebind.example"}),
            http.post(f"{hub.url}/metrics/readings", content=b"x" * 500, headers={"content-type": "a/json"}),
            http.post(f"{hub.url}/metrics", content=b"x" * 500, headers={"content-type": "a/json"}),
        ]
        assert [answer.status_code for answer in refusals] == [403, 401, 401]
        for answer in refusals:
            assert answer.http_version == "HTTP/2"
            assert "connection" not in answer.headers
            assert "error" in answer.json()
        headers = {"authorization": f"Bearer {token}"}
        created = http.post(f"{hub.url}/metrics", json={"name": "cpu"}, headers=headers)
        assert created.status_code == 201
        next(line for line in lines if line.startswith("data: ") and created.json()["id"] in line)
        assert hub.app.broadcaster.statistics().accepted == 1  # the stream never had to reconnect


# --- metricstream serve ----------------------------------------------------------------------------


def test_serve_with_a_certificate_prints_an_https_url(certificates: Certificates) -> None:
    tls = ["--certfile", str(certificates.certfile), "--keyfile", str(certificates.keyfile)]
    with child([*ENTRY_POINTS["console-script"](), "serve", "--port", "0", *tls]) as process:
        url = serve_url(process)
        assert url.startswith("https://127.0.0.1:")
        with httpx.Client(verify=certificates.context(), http2=True, timeout=TIMEOUT) as http:
            health = http.get(f"{url}/healthz")
        assert (health.status_code, health.http_version) == (200, "HTTP/2")
        process.send_signal(signal.SIGTERM)
        status, _, stderr = finish(process)
    assert status == 0, stderr


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--certfile", "{certfile}"], "certfile is set but keyfile is not"),
        (["--certfile", "{missing}", "--keyfile", "{keyfile}"], "certfile: cannot read '{missing}'"),
    ],
    ids=["certfile-alone", "missing-file"],
)
def test_serve_refuses_bad_certificate_settings(
    certificates: Certificates, tmp_path: Path, flags: list[str], message: str
) -> None:
    names = {"certfile": certificates.certfile, "keyfile": certificates.keyfile, "missing": tmp_path / "no"}
    command = [*ENTRY_POINTS["python-m"](), "serve", "--port", "0", *(flag.format(**names) for flag in flags)]
    with child(command) as process:
        status, out, stderr = finish(process)
    assert status == 2
    assert f"metricstream: invalid settings: {message.format(**names)}" in stderr
    assert "Traceback" not in stderr
    assert "listening" not in out


# --- bad settings -----------------------------------------------------------------------------------


def test_unreadable_or_mismatched_files_fail_the_start(certificates: Certificates, tmp_path: Path) -> None:
    other_key = tmp_path / "other.key"
    trustme.CA().issue_cert("127.0.0.1").private_key_pem.write_to_path(str(other_key))
    not_pem = tmp_path / "notes.txt"
    not_pem.write_text("not a certificate\n")
    certfile, keyfile, missing = str(certificates.certfile), str(certificates.keyfile), str(tmp_path / "no")
    mismatch = "are not a PEM certificate and its private key"
    cases: list[tuple[dict[str, Any], str]] = [
        ({"certfile": missing, "keyfile": keyfile}, f"certfile: cannot read '{missing}': No such file"),
        ({"certfile": certfile, "keyfile": str(tmp_path)}, f"keyfile: cannot read '{tmp_path}': Is a dir"),
        ({"certfile": certfile, "keyfile": str(other_key)}, mismatch),
        ({"certfile": str(not_pem), "keyfile": keyfile}, mismatch),
    ]
    for files, message in cases:
        hub = Hub(port=0, **files)
        with pytest.raises(ValidationError) as refused:
            hub.start()
        assert str(refused.value).startswith("invalid settings: ")
        assert message in str(refused.value)
        assert not hub.running
