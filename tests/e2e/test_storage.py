"""Durable and shared storage: SQLite across restarts and `kill -9`, Redis across processes and outages.

The backend-neutral contract (HTTP, SSE, Python API) runs on every backend through the parametrized
`make_hub` fixture in conftest; this module covers what only a durable or a shared store can show.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from metricstream.errors import HubError, ValidationError
from metricstream.server.hub import Hub
from metricstream.storage import open_storage
from metricstream.storage.sqlite import _MIGRATIONS
from metricstream.wire import GENESIS_ID
from tests.support.hubs import FAST, free_port, wait_for
from tests.support.processes import WAIT, child, child_env, serve_url, servers_on
from tests.support.raw_stream import RawStream

# --- SQLite -----------------------------------------------------------------------------------


def test_sqlite_keeps_data_and_replays_across_a_restart(tmp_path: Path) -> None:
    store = f"sqlite:///{tmp_path / 'data.db'}"
    with Hub(port=0, store=store, **FAST) as hub:
        metric = hub.service.create_metric("cpu")
        first = hub.service.create_reading(metric.id, 1)
        resume_from = hub.service.last_event_id
        later = [hub.service.create_reading(metric.id, v) for v in (2, 3)]
    with Hub(port=0, store=store, **FAST) as hub:
        assert hub.service.list_metrics() == [metric]
        assert hub.service.list_readings(metric.id) == [first, *later]
        stream = RawStream(hub.url, headers={"Last-Event-ID": resume_from})
        try:
            stream.expect_open()
            after_restart = hub.service.create_reading(metric.id, 4)
            got = [stream.next_event().json()["id"] for _ in range(3)]
            assert got == [later[0].id, later[1].id, after_restart.id]  # no gap, no duplicate
        finally:
            stream.close()


def test_sqlite_ids_keep_growing_across_restarts_even_if_stored_ids_are_ahead(tmp_path: Path) -> None:
    store = f"sqlite:///{tmp_path / 'data.db'}"
    with Hub(port=0, store=store, **FAST) as hub:
        hub.service.create_metric("cpu")
    ahead = str(uuid.UUID(int=((int(time.time() * 1000) + 3_600_000) << 80) | (7 << 76) | (2 << 62)))
    with sqlite3.connect(tmp_path / "data.db") as db:  # as if a burst had pushed ids an hour ahead
        db.execute("UPDATE events SET id = ?", (ahead,))
    with Hub(port=0, store=store, **FAST) as hub:
        assert hub.service.last_event_id == ahead
        newer = hub.service.create_metric("mem")
        assert hub.service.last_event_id > ahead
        assert newer.id > ahead


def test_sqlite_replay_of_an_expired_id_resets_after_restart(tmp_path: Path) -> None:
    store = f"sqlite:///{tmp_path / 'data.db'}"
    with Hub(port=0, store=store, event_ttl=0.2, **FAST) as hub:
        metric = hub.service.create_metric("cpu")
        expired = hub.service.last_event_id
        hub.service.create_reading(metric.id, 1)
        wait_for(lambda: len(hub.app.log) <= 1, what="the sweep")
    with Hub(port=0, store=store, event_ttl=0.2, **FAST) as hub:
        for resume, expect_reset in ((expired, True), (GENESIS_ID, True)):
            stream = RawStream(hub.url, headers={"Last-Event-ID": resume})
            try:
                stream.expect_open()
                frame = stream.next_event()
                assert (frame.event == "reset") is expect_reset
            finally:
                stream.close()


def test_sqlite_schema_is_versioned(tmp_path: Path) -> None:
    path = tmp_path / "data.db"
    with Hub(port=0, store=f"sqlite:///{path}", **FAST):
        pass
    with sqlite3.connect(path) as db:
        assert db.execute("PRAGMA user_version").fetchone()[0] == len(_MIGRATIONS)
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        db.execute("PRAGMA user_version = 99")  # written by a newer release
    with pytest.raises(Exception, match="schema version 99"):
        Hub(port=0, store=f"sqlite:///{path}", **FAST).start()


def test_acknowledged_writes_survive_kill_9(tmp_path: Path) -> None:
    """Every reading that got a 201 is there after the server is killed mid-load and restarted."""
    store = f"sqlite:///{tmp_path / 'data.db'}"
    command = [sys.executable, "-m", "metricstream", "serve", "--port", "0", "--store", store]
    acknowledged: list[str] = []
    with child(command) as server:
        url = serve_url(server)
        metric = httpx.post(f"{url}/metrics", json={"name": "load"}).json()
        stop = threading.Event()

        def post() -> None:
            with httpx.Client(base_url=url, timeout=5) as http:
                value = 1
                while not stop.is_set():
                    try:
                        response = http.post(
                            "/metrics/readings", json={"metric_id": metric["id"], "value": value}
                        )
                    except httpx.HTTPError:
                        return  # the server is gone
                    if response.status_code == 201:
                        acknowledged.append(response.json()["id"])
                    value += 1

        writers = [threading.Thread(target=post) for _ in range(3)]
        for writer in writers:
            writer.start()
        wait_for(lambda: len(acknowledged) >= 300, what="some acknowledged writes")
        server.send_signal(signal.SIGKILL)
        server.wait(10)
        stop.set()
        for writer in writers:
            writer.join(10)
    with Hub(port=0, store=store, **FAST) as hub:
        stored = {reading.id for reading in hub.service.list_readings(metric["id"], limit=10_000)}
    assert set(acknowledged) <= stored
    assert len(acknowledged) >= 300


# --- SQLite: one process per file ------------------------------------------------------------


def serve_on(store: str) -> list[str]:
    return [sys.executable, "-m", "metricstream", "serve", "--port", "0", "--store", store]


def refusal(store: str) -> str:
    """What `metricstream serve` on `store` prints as it refuses to start (it must exit non-zero)."""
    done = subprocess.run(
        serve_on(store),
        env=child_env(),
        capture_output=True,
        timeout=WAIT,
        check=False,
        stdin=subprocess.DEVNULL,
    )
    stderr = done.stderr.decode()
    assert done.returncode != 0, done.stdout.decode()
    assert "Traceback" not in stderr
    assert done.stdout == b""
    return stderr


@pytest.mark.slow
def test_a_second_process_on_one_sqlite_file_is_refused_even_after_kill_9(tmp_path: Path) -> None:
    path = tmp_path / "data.db"
    store = f"sqlite:///{path}"
    with child(serve_on(store)) as first:
        url = serve_url(first)
        metric = httpx.post(f"{url}/metrics", json={"name": "cpu"}, timeout=10).json()
        message = refusal(store)
        assert f"{path} is in use by process {first.pid} " in message
        assert "metricstream" in message  # the holder's program
        assert httpx.get(f"{url}/healthz", timeout=10).status_code == 200  # the first one serves on
        first.send_signal(signal.SIGKILL)
        first.wait(WAIT)
    with child(serve_on(store)) as again:  # at once: the kernel dropped the dead process's lock
        url = serve_url(again)
        assert httpx.get(f"{url}/metrics", timeout=10).json() == [metric]
        assert f"in use by process {again.pid} " in refusal(store)


def test_two_hubs_of_one_process_on_one_sqlite_file(tmp_path: Path) -> None:
    path = tmp_path / "data.db"
    with Hub(port=0, store=f"sqlite:///{path}", **FAST) as first:
        metric = first.service.create_metric("cpu")
        second = Hub(port=0, store=f"sqlite:///{tmp_path}/./data.db", **FAST)  # the same file
        with pytest.raises(HubError, match=f"{re.escape(str(path))} is in use by this process"):
            second.start()
        assert not second.running
        assert first.service.list_metrics() == [metric]  # untouched
    with second:  # once the first let go
        assert second.service.list_metrics() == [metric]


def test_a_restarted_hub_takes_its_sqlite_file_again(tmp_path: Path) -> None:
    path = tmp_path / "data.db"
    hub = Hub(port=0, store=f"sqlite:///{path}", **FAST)
    with hub:
        pass
    with child(serve_on(f"sqlite:///{path}")) as other:  # free while the hub is stopped
        serve_url(other)
        other.send_signal(signal.SIGTERM)
        assert other.wait(WAIT) == 0
    with hub:
        hub.service.create_metric("after the restart")
        assert f"{path} is in use by process {os.getpid()} " in refusal(f"sqlite:///{path}")


def test_unknown_store_url_is_a_clear_error() -> None:
    with pytest.raises(ValidationError, match="unsupported store URL 'ftp://x'"):
        open_storage("ftp://x")
    with pytest.raises(ValidationError, match="unsupported store URL"):
        Hub(port=0, store="sqlite://").start()


# --- Redis ------------------------------------------------------------------------------------


def event_id_of(url: str, reading_id: str) -> str:
    """The id of the event announcing `reading_id`, read from a replay of the stream."""
    stream = RawStream(url, headers={"Last-Event-ID": GENESIS_ID})
    try:
        stream.expect_open()
        while True:
            frame = stream.next_event()
            if frame.json()["id"] == reading_id:
                return str(frame.id)
    finally:
        stream.close()


@pytest.mark.slow
def test_processes_sharing_redis_give_every_client_one_global_order(redis_server: str) -> None:
    store = f"{redis_server}?prefix=cross{uuid.uuid4().hex[:8]}:"
    with servers_on(store, 3) as urls:
        metric = httpx.post(f"{urls[0]}/metrics", json={"name": "shared"}).json()
        streams = [RawStream(url, headers={"Last-Event-ID": GENESIS_ID}) for url in urls for _ in (1, 2)]
        try:
            for stream in streams:
                stream.expect_open()
            posted: list[str] = []
            lock = threading.Lock()

            def publish(url: str, values: range) -> None:
                with httpx.Client(base_url=url, timeout=10) as http:
                    for value in values:
                        body = {"metric_id": metric["id"], "value": value}
                        reading = http.post("/metrics/readings", json=body)
                        assert reading.status_code == 201, reading.text
                        with lock:
                            posted.append(reading.json()["id"])

            publishers = [
                threading.Thread(target=publish, args=(url, range(1 + 100 * i, 101 + 100 * i)))
                for i, url in enumerate(urls)
            ]
            for publisher in publishers:
                publisher.start()
            for publisher in publishers:
                publisher.join(60)
            assert len(posted) == 300
            sequences = []
            for stream in streams:
                assert stream.next_event().json()["id"] == metric["id"]
                sequences.append([stream.next_event().json()["id"] for _ in posted])
            assert all(sequence == sequences[0] for sequence in sequences)  # one order everywhere
            assert sorted(sequences[0]) == sorted(posted)  # each reading exactly once
        finally:
            for stream in streams:
                stream.close()
        # A client resumes on another process from an event id it got from the first one.
        middle = sequences[0][150]
        resumed = RawStream(urls[2], headers={"Last-Event-ID": event_id_of(urls[0], middle)})
        try:
            resumed.expect_open()
            assert [resumed.next_event().json()["id"] for _ in range(149)] == sequences[0][151:]
        finally:
            resumed.close()


@contextlib.contextmanager
def redis_process(port: int, directory: Path) -> Iterator[subprocess.Popen[bytes]]:
    """A redis-server of our own that keeps its data in `directory` across restarts."""
    command = [
        shutil.which("redis-server") or "redis-server",
        "--port", str(port), "--bind", "127.0.0.1", "--dir", str(directory),
        "--appendonly", "yes", "--save", "",
    ]  # fmt: skip
    with child(command) as process:
        wait_for(lambda: _answers(port), what="redis-server to answer")
        yield process
        process.terminate()
        process.wait(10)


def _answers(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1) as probe:
            probe.sendall(b"PING\r\n")
            return probe.recv(16).startswith(b"+PONG")
    except OSError:
        return False


def test_redis_outage_fails_writes_fast_keeps_streams_and_recovers(tmp_path: Path) -> None:
    port = free_port()
    with contextlib.ExitStack() as stack:
        redis = stack.enter_context(redis_process(port, tmp_path))
        hub = stack.enter_context(Hub(port=0, store=f"redis://127.0.0.1:{port}/0", **FAST))
        http = stack.enter_context(httpx.Client(base_url=hub.url, timeout=10))
        stream = RawStream(hub.url)
        stack.callback(stream.close)
        stream.expect_open()
        metric = http.post("/metrics", json={"name": "cpu"}).json()
        assert stream.next_event().json() == metric
        body = {"metric_id": metric["id"], "value": 1}

        redis.terminate()  # the outage
        redis.wait(10)
        started = time.monotonic()
        failed = http.post("/metrics/readings", json=body)
        assert failed.status_code == 503
        assert "the store (Redis) is unavailable" in failed.json()["error"]
        assert time.monotonic() - started < 5  # fails fast, never hangs
        assert stream.next_frame().comments == ["ping"]  # the stream stays up meanwhile

        with redis_process(port, tmp_path):  # back, with its data
            accepted: list[dict[str, object]] = []

            def write() -> bool:
                response = http.post("/metrics/readings", json=body)
                if response.status_code == 201:
                    accepted.append(response.json())
                return bool(accepted)

            wait_for(write, what="writes to succeed again")
            assert stream.next_event().json() == accepted[0]  # no reset: nothing was lost


def test_redis_coming_back_empty_makes_clients_reset(tmp_path: Path) -> None:
    port = free_port()
    (tmp_path / "before").mkdir()
    (tmp_path / "after").mkdir()
    with contextlib.ExitStack() as stack:
        redis = stack.enter_context(redis_process(port, tmp_path / "before"))
        hub = stack.enter_context(Hub(port=0, store=f"redis://127.0.0.1:{port}/0", **FAST))
        http = stack.enter_context(httpx.Client(base_url=hub.url, timeout=10))
        stream = RawStream(hub.url)
        stack.callback(stream.close)
        stream.expect_open()
        http.post("/metrics", json={"name": "cpu"})
        seen = stream.next_event()
        redis.terminate()
        redis.wait(10)
        with redis_process(port, tmp_path / "after"):  # its events are gone
            wait_for(
                lambda: http.post("/metrics", json={"name": "new"}).status_code == 201,
                what="writes to succeed again",
            )
            assert [frame.data for frame in stream.read_to_end()][-1] == "disconnected"
            resumed = RawStream(hub.url, headers={"Last-Event-ID": str(seen.id)})
            stack.callback(resumed.close)
            resumed.expect_open()
            reset = resumed.next_event()
            assert reset.event == "reset"
            assert reset.json()["last_event_id"] == seen.id
