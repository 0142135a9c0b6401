"""Standalone use: `metricstream serve` (console script and `python -m`), `hypercorn metricstream.asgi:app`,
and `create_app()`. Servers run as real subprocesses on free 127.0.0.1 ports; each is stopped by its test
and killed in a `finally` if it is not.
"""

from __future__ import annotations

import asyncio
import re
import signal
import socket
import subprocess
import time
from typing import Any, cast

import httpx
import pytest
from hypercorn.asyncio import serve
from hypercorn.config import Config

import metricstream
from metricstream.service.demo import DEMO_METRICS
from metricstream.settings import Settings
from metricstream.wire import GENESIS_ID
from tests.support.hubs import free_port, wait_for
from tests.support.processes import (
    ENTRY_POINTS,
    WAIT,
    child,
    child_env,
    finish,
    installed,
    read_until,
    serve_url,
)
from tests.support.raw_stream import RawStream

# --- metricstream serve -----------------------------------------------------------------------


@pytest.mark.parametrize("entry", sorted(ENTRY_POINTS))
@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_serve_prints_url_serves_and_stops_gracefully_on_signal(entry: str, signum: signal.Signals) -> None:
    command = [*ENTRY_POINTS[entry](), "serve", "--port", "0", "--heartbeat", "1"]
    with child(command) as process:
        url = serve_url(process)
        assert not url.endswith(":0")
        health = httpx.get(f"{url}/healthz", timeout=10)
        assert health.status_code == 200
        assert health.json()["status"] == "ok"
        metric = httpx.post(f"{url}/metrics", json={"name": "cpu"}, timeout=10)
        assert metric.status_code == 201
        stream = RawStream(url)
        try:
            stream.expect_open()
            assert httpx.get(f"{url}/healthz", timeout=10).json()["clients"] == 1
            process.send_signal(signum)
            frames = stream.read_to_end()
            assert [frame.data for frame in frames if frame.fields] == ["disconnected"]
            assert stream.chunked_done  # the stream was ended properly, not cut
        finally:
            stream.close()
        status, _, stderr = finish(process)
    assert status == 0, stderr
    assert "Traceback" not in stderr


@pytest.mark.parametrize("loop", ["asyncio", "uvloop"])
def test_serve_flags_configure_the_server(loop: str) -> None:
    flags = ["--port", "0", "--heartbeat", "1", "--retry", "1234", "--loop", loop]
    command = [*ENTRY_POINTS["console-script"](), "serve", *flags]
    with child(command) as process:
        url = serve_url(process)
        stream = RawStream(url)
        try:
            assert stream.next_frame().get("retry") == "1234"
            assert stream.next_frame().data == "connected"
            ping = stream.next_frame(timeout=5)  # within about one heartbeat of quiet
            assert ping.comments == ["ping"]
        finally:
            stream.close()
        process.send_signal(signal.SIGTERM)
        status, _, stderr = finish(process)
    assert status == 0, stderr


def test_serve_is_configured_by_environment_and_flags_win() -> None:
    env = child_env(METRICSTREAM_MAX_CLIENTS="1", METRICSTREAM_RETRY="1500", METRICSTREAM_PORT="0")
    with child([*ENTRY_POINTS["python-m"](), "serve"], env) as process:
        url = serve_url(process)
        first = RawStream(url)
        second: RawStream | None = None
        try:
            assert first.next_frame().get("retry") == "1500"
            assert first.next_frame().data == "connected"
            second = RawStream(url)
            second.expect_open()
            # max_clients=1: the newcomer evicts the first, which is told so.
            assert [frame.data for frame in first.read_to_end()] == ["disconnected"]
            assert first.chunked_done
            assert httpx.get(f"{url}/healthz", timeout=10).json()["clients"] == 1
        finally:
            first.close()
            if second is not None:
                second.close()
        process.send_signal(signal.SIGTERM)
        status, _, stderr = finish(process)
    assert status == 0, stderr

    env = child_env(METRICSTREAM_RETRY="1500")
    with child([*ENTRY_POINTS["python-m"](), "serve", "--port", "0", "--retry", "900"], env) as process:
        stream = RawStream(serve_url(process))
        try:
            assert stream.next_frame().get("retry") == "900"
        finally:
            stream.close()
        process.send_signal(signal.SIGTERM)
        status, _, stderr = finish(process)
    assert status == 0, stderr


def test_max_future_none_as_a_flag_wins_over_the_environment() -> None:
    env = child_env(METRICSTREAM_MAX_FUTURE="5", METRICSTREAM_PORT="0")
    far = {"metric": "cpu", "value": 1, "timestamp": "2099-01-01T00:00:00Z"}
    for flags, status in [([], 400), (["--max-future", "none"], 201)]:
        with child([*ENTRY_POINTS["python-m"](), "serve", *flags], env) as process:
            answer = httpx.post(f"{serve_url(process)}/metrics/readings", json=far, timeout=10)
            assert answer.status_code == status, answer.text
            if status == 400:
                assert "max_future=5;" in answer.json()["error"]
            process.send_signal(signal.SIGTERM)
            code, _, stderr = finish(process)
        assert code == 0, stderr


@pytest.mark.parametrize(
    ("arguments", "env", "message"),
    [
        (["--port", "abc"], {}, "--port"),
        (["--max-clients", "0"], {}, "max_clients"),
        (["--heartbeat", "-1"], {}, "heartbeat"),
        (["--port", "99999"], {}, "port"),
        (["--no-such-flag"], {}, "--no-such-flag"),
        ([], {"METRICSTREAM_MAX_CLIENTS": "lots", "METRICSTREAM_PORT": "0"}, "max_clients"),
        (["--loop", "tokio"], {}, "loop"),
        (["--max-future", "-1"], {}, "max_future"),
        ([], {"METRICSTREAM_MAX_FUTURE": "later", "METRICSTREAM_PORT": "0"}, "max_future"),
    ],
    ids=[
        "not-a-number",
        "max-clients-0",
        "negative-heartbeat",
        "port-too-big",
        "unknown-flag",
        "bad-env",
        "unknown-loop",
        "negative-max-future",
        "bad-max-future-env",
    ],
)
def test_bad_configuration_exits_non_zero_with_a_message(
    arguments: list[str], env: dict[str, str], message: str
) -> None:
    done = subprocess.run(
        [*ENTRY_POINTS["console-script"](), "serve", *arguments],
        env=child_env(**env),
        capture_output=True,
        timeout=WAIT,
        check=False,
        stdin=subprocess.DEVNULL,
    )
    stderr = done.stderr.decode()
    assert done.returncode != 0
    assert message in stderr
    assert "Traceback" not in stderr
    assert done.stdout == b""


def test_busy_port_exits_non_zero_naming_the_port() -> None:
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        done = subprocess.run(
            [*ENTRY_POINTS["python-m"](), "serve", "--port", str(port)],
            env=child_env(),
            capture_output=True,
            timeout=WAIT,
            check=False,
            stdin=subprocess.DEVNULL,
        )
    stderr = done.stderr.decode()
    assert done.returncode != 0
    assert f"127.0.0.1:{port}" in stderr
    assert "Traceback" not in stderr


@pytest.mark.parametrize("how", ["flag", "env"])
def test_serve_demo_creates_metrics_and_streams_readings(how: str) -> None:
    command = [*ENTRY_POINTS["console-script"](), "serve", "--port", "0"]
    if how == "flag":
        command.append("--demo")
    with child(command, child_env(**({"METRICSTREAM_DEMO": "1"} if how == "env" else {}))) as process:
        url = serve_url(process)  # printed once the demo metrics exist
        stream = RawStream(url, headers={"Last-Event-ID": GENESIS_ID})
        try:
            stream.expect_open()
            created = [stream.next_event() for _ in DEMO_METRICS]
            assert [(frame.event, frame.json()["name"]) for frame in created] == [
                ("metric_created", metric.name) for metric in DEMO_METRICS
            ]
            assert [frame.json()["input_frequency"] for frame in created] == [1.0, 2.0, 0.5]
            pending = {frame.json()["id"] for frame in created}
            while pending:  # each gets a first reading at once, then one per input_frequency
                frame = stream.next_event()
                assert frame.event == "metric_reading_created"
                assert frame.json()["value"] > 0
                pending.discard(frame.json()["metric_id"])
            stopping_at = time.monotonic()
            process.send_signal(signal.SIGTERM)
            frames = stream.read_to_end()
            assert [frame.data for frame in frames if frame.fields][-1] == "disconnected"
            assert stream.chunked_done
        finally:
            stream.close()
        status, _, stderr = finish(process)
        assert time.monotonic() - stopping_at < 5
    assert status == 0, stderr
    assert "Traceback" not in stderr
    assert "Task" not in stderr  # no task destroyed while pending, no exception never retrieved


@pytest.mark.parametrize("entry", sorted(ENTRY_POINTS))
def test_help_lists_every_setting_as_a_flag(entry: str) -> None:
    done = subprocess.run(
        [*ENTRY_POINTS[entry](), "serve", "--help"],
        env=child_env(COLUMNS="200"),
        capture_output=True,
        timeout=WAIT,
        check=True,
    )
    text = done.stdout.decode()
    expected = ["--" + name.replace("_", "-") for name in Settings.model_fields]
    assert expected  # the list is built from the one definition
    missing = [flag for flag in expected if not re.search(rf"(^|\s){re.escape(flag)}\b", text)]
    assert missing == []
    for name in Settings.model_fields:
        assert f"METRICSTREAM_{name.upper()}" in text


def test_version_and_top_level_help() -> None:
    script = ENTRY_POINTS["console-script"]()
    version = subprocess.run([*script, "--version"], capture_output=True, timeout=WAIT, check=True)
    assert version.stdout.decode().strip() == f"metricstream {metricstream.__version__}"
    helped = subprocess.run([*script, "--help"], capture_output=True, timeout=WAIT, check=True)
    assert "serve" in helped.stdout.decode()
    bare = subprocess.run(script, capture_output=True, timeout=WAIT, check=False)
    assert bare.returncode != 0
    assert "Traceback" not in bare.stderr.decode()


# --- hypercorn metricstream.asgi:app --------------------------------------------------------------


def test_hypercorn_serves_the_asgi_app_configured_from_the_environment() -> None:
    port = free_port()
    env = child_env(METRICSTREAM_RETRY="1234", METRICSTREAM_MAX_BODY="200", METRICSTREAM_MAX_CLIENTS="1")
    command = [*installed("hypercorn"), "metricstream.asgi:app", "--bind", f"127.0.0.1:{port}"]
    with child(command, env) as process:
        assert process.stderr is not None
        log = bytearray()
        read_until(process.stderr, rf"Running on http://127\.0\.0\.1:{port}\b", log)
        url = f"http://127.0.0.1:{port}"
        with httpx.Client(base_url=url, timeout=10) as http:
            assert http.get("/healthz").json() == {"status": "ok", "clients": 0, "events": 0}
            assert http.get("/metrics").json() == []
            created = http.post("/metrics", json={"name": "cpu"})
            assert created.status_code == 201
            assert http.get("/metrics").json() == [created.json()]
            too_big = http.post("/metrics", json={"name": "x" * 300})  # METRICSTREAM_MAX_BODY=200
            assert too_big.status_code == 413
            first = RawStream(url)
            second: RawStream | None = None
            try:
                assert first.next_frame().get("retry") == "1234"  # METRICSTREAM_RETRY
                assert first.next_frame().data == "connected"
                second = RawStream(url)
                second.expect_open()
                # METRICSTREAM_MAX_CLIENTS=1: the second stream evicted the first
                assert [frame.data for frame in first.read_to_end()] == ["disconnected"]
                reading = http.post("/metrics/readings", json={"metric_id": created.json()["id"], "value": 1})
                event = second.next_event()
                assert (event.event, event.data) == ("metric_reading_created", reading.text)
            finally:
                first.close()
                if second is not None:
                    second.close()
            wait_for(lambda: http.get("/healthz").json()["clients"] == 0, what="the closed streams noticed")
        process.send_signal(signal.SIGTERM)
        status, _, stderr = finish(process)
    assert status == 0, log.decode() + stderr
    assert "Traceback" not in stderr


def test_hypercorn_stops_on_sigterm_even_with_a_stream_open() -> None:
    """A foreign server knows nothing of our streams: they are cut at its graceful timeout (see asgi.py)."""
    port = free_port()
    command = [
        *installed("hypercorn"),
        "metricstream.asgi:app",
        "--bind",
        f"127.0.0.1:{port}",
        "--graceful-timeout",
        "1",
    ]
    with child(command) as process:
        assert process.stderr is not None
        read_until(process.stderr, rf"Running on http://127\.0\.0\.1:{port}\b", bytearray())
        stream = RawStream(f"http://127.0.0.1:{port}")
        try:
            stream.expect_open()
            started = time.monotonic()
            process.send_signal(signal.SIGTERM)
            stream.read_to_end(timeout=WAIT)  # ends instead of holding the server open
            assert time.monotonic() - started < 1 + 5
        finally:
            stream.close()
        status, _, _ = finish(process)
    assert status == 0


# --- create_app -----------------------------------------------------------------------------------


def test_create_app_runs_under_a_server_of_ones_own() -> None:
    """Served by plain `hypercorn.asyncio.serve`, as someone embedding it would; max_clients=3 applies."""
    app = metricstream.create_app(max_clients=3, heartbeat=0.5)
    listener = socket.create_server(("127.0.0.1", 0))
    url = f"http://127.0.0.1:{listener.getsockname()[1]}"

    def use_it() -> list[str | None]:
        streams: list[RawStream] = []
        try:
            for _ in range(4):
                streams.append(RawStream(url))
                streams[-1].expect_open()
            assert httpx.get(f"{url}/healthz", timeout=10).json()["clients"] == 3
            return [frame.data for frame in streams[0].read_to_end()]
        finally:
            for stream in streams:
                stream.close()

    async def main() -> list[str | None]:
        config = Config()
        config.bind = [f"fd://{listener.detach()}"]
        config.accesslog = None
        stop = asyncio.Event()
        server = asyncio.create_task(serve(cast(Any, app), config, shutdown_trigger=stop.wait))
        try:
            await asyncio.wait_for(app.started.wait(), WAIT)
            return await asyncio.to_thread(use_it)
        finally:
            stop.set()
            await asyncio.wait_for(server, WAIT)

    try:
        assert asyncio.run(main()) == ["disconnected"]  # the oldest of four was evicted
    finally:
        listener.close()
