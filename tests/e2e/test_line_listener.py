"""The line-protocol listener (`line_port`, #23 point 3) of a real hub: lines over one TCP connection are
written as they arrive and announced on the stream; a bad line is counted and the connection stays; the
token is the first line; a client that vanishes mid-line, one that never reads, and an endless line leave
the listener serving; TLS when the hub has a certificate; stopping the hub closes it."""

from __future__ import annotations

import socket
import ssl
from collections.abc import Callable, Iterator

import httpx
import pytest

from metricstream.server.hub import Hub
from metricstream.wire import METRIC_CREATED, READING_CREATED
from tests.support.hubs import StartHub
from tests.support.raw_stream import RawStream
from tests.support.tls import Certificates
from tests.support.tokens import WRITE

OpenStream = Callable[..., RawStream]


@pytest.fixture
def lines_hub(make_hub: Callable[..., Hub]) -> Hub:
    hub = make_hub(line_port=0)
    assert hub.line_port is not None
    return hub


@pytest.fixture
def connect(lines_hub: Hub) -> Iterator[Callable[[], socket.socket]]:
    opened: list[socket.socket] = []

    def open_() -> socket.socket:
        assert lines_hub.line_port is not None
        sock = socket.create_connection(("127.0.0.1", lines_hub.line_port), timeout=10)
        opened.append(sock)
        return sock

    yield open_
    for sock in opened:
        sock.close()


def values_of(stream: RawStream, count: int) -> list[float]:
    """The values of the next `count` readings on the stream (metric creations skipped)."""
    values: list[float] = []
    while len(values) < count:
        frame = stream.next_event()
        if frame.event == READING_CREATED:
            values.append(frame.json()["value"])
        else:
            assert frame.event == METRIC_CREATED
    return values


def counted(hub: Hub, outcome: str) -> float:
    text = httpx.get(f"{hub.url}/-/metrics").text  # the Prometheus exposition
    line = f'metricstream_line_protocol_lines_total{{outcome="{outcome}"}} '
    return float(next(row for row in text.splitlines() if row.startswith(line)).split()[-1])


def test_lines_are_written_as_they_arrive_and_a_bad_one_is_counted(
    lines_hub: Hub, connect: Callable[[], socket.socket], open_stream: OpenStream
) -> None:
    stream = open_stream(lines_hub.url)
    stream.expect_open()
    sensor = connect()
    sensor.sendall(b"temp,room=lab value=21.5\nbad line\ntemp,room=lab value=-1\ntemp,room=lab value=22.5\n")
    assert values_of(stream, 2) == [21.5, 22.5]
    sensor.sendall(b"temp,room=lab value=2")  # half a line: nothing yet
    sensor.sendall(b"3.5 1700000000000000000\n")
    assert values_of(stream, 1) == [23.5]
    metric = lines_hub.service.metric("temp", labels={"room": "lab"})
    readings = lines_hub.service.list_readings(metric.id)
    assert [r.value for r in readings] == [23.5, 21.5, 22.5]  # by time: the dated one is oldest
    assert readings[0].timestamp.isoformat() == "2023-11-14T22:13:20+00:00"
    assert (counted(lines_hub, "written"), counted(lines_hub, "refused")) == (3, 2)


def test_a_client_that_vanishes_mid_line_or_never_reads_leaves_the_listener_serving(
    lines_hub: Hub, connect: Callable[[], socket.socket], open_stream: OpenStream
) -> None:
    stream = open_stream(lines_hub.url)
    stream.expect_open()
    gone = connect()
    gone.sendall(b"a value=1\na value=")  # a whole line, then half of one
    assert values_of(stream, 1) == [1.0]
    gone.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
    gone.close()  # a reset: it vanishes
    silent = connect()  # never reads; the listener sends nothing it could block on
    silent.sendall(b"".join(b"b value=%d\n" % i for i in range(1, 2001)))
    assert values_of(stream, 2000) == [float(i) for i in range(1, 2001)]
    late = connect()
    late.sendall(b"c value=3\n")
    assert values_of(stream, 1) == [3.0]
    assert [m.name for m in lines_hub.service.list_metrics()] == ["a", "b", "c"]


def test_an_endless_line_is_refused_and_skipped_to_its_end(start_hub: StartHub) -> None:
    hub = start_hub(line_port=0, max_body=1000)
    assert hub.line_port is not None
    with socket.create_connection(("127.0.0.1", hub.line_port), timeout=10) as sensor:
        stream = RawStream(hub.url)
        try:
            stream.expect_open()
            sensor.sendall(b"x,tag=" + b"y" * 5000)  # past max_body, no line end yet
            sensor.sendall(b"z value=1\nok value=2\n")
            assert values_of(stream, 1) == [2.0]
        finally:
            stream.close()
    assert [m.name for m in hub.service.list_metrics()] == ["ok"]
    assert counted(hub, "refused") == 1


def test_with_a_token_the_first_line_authorises_the_connection(start_hub: StartHub) -> None:
    hub = start_hub(line_port=0, token=WRITE)
    assert hub.line_port is not None
    for first in (b"cpu value=1", b"auth wrong-token-0123456789", b"auth"):
        with socket.create_connection(("127.0.0.1", hub.line_port), timeout=10) as sensor:
            sensor.sendall(first + b"\ncpu value=1\n")
            assert sensor.recv(100) == b"error: the first line must be auth <token>\n"
            assert sensor.recv(100) == b""  # closed
    assert hub.service.list_metrics() == []
    with socket.create_connection(("127.0.0.1", hub.line_port), timeout=10) as sensor:
        stream = RawStream(hub.url, headers={"Authorization": f"Bearer {WRITE}"})
        try:
            stream.expect_open()
            sensor.sendall(b"auth " + WRITE.encode() + b"\r\ncpu value=1\n")
            assert values_of(stream, 1) == [1.0]
        finally:
            stream.close()


def test_the_listener_speaks_tls_with_the_hubs_certificate(
    start_hub: StartHub, certificates: Certificates
) -> None:
    hub = start_hub(
        line_port=0, certfile=str(certificates.certfile), keyfile=str(certificates.keyfile), token=WRITE
    )
    assert hub.line_port is not None
    context = certificates.context()
    with (
        socket.create_connection(("127.0.0.1", hub.line_port), timeout=10) as raw,
        context.wrap_socket(raw, server_hostname="127.0.0.1") as sensor,
    ):
        sensor.sendall(b"auth " + WRITE.encode() + b"\nsecure value=5\n")
        sensor.sendall(b"auth again\n")  # only the first line is the token's: this one is a bad line
    with hub.subscribe(start="earliest") as events:
        received = [next(iter(events)) for _ in range(2)]
    assert [e.type for e in received] == [METRIC_CREATED, READING_CREATED]
    assert received[1].data["value"] == 5.0
    with pytest.raises(ssl.SSLError), socket.create_connection(("127.0.0.1", hub.line_port)) as plain:
        ssl.create_default_context().wrap_socket(plain, server_hostname="127.0.0.1").do_handshake()


def test_stopping_the_hub_closes_the_listener(start_hub: StartHub) -> None:
    hub = start_hub(line_port=0)
    port = hub.line_port
    assert port is not None
    connected = socket.create_connection(("127.0.0.1", port), timeout=10)
    hub.stop()
    assert connected.recv(10) == b""  # the open connection was closed
    connected.close()
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", port), timeout=10)
