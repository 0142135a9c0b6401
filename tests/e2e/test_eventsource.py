"""The npm `eventsource` package, the client the original Go service documents, reads a Hub's stream.

Runs `tests/js/listen.mjs` under Node.js; its dependencies come from `tests/js/package-lock.json`,
installed by the README's test command (`./tests/run` runs `npm ci --prefix tests/js`).
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import IO, Any

import httpx
import pytest

from metricstream.server.hub import Hub
from metricstream.wire import GENESIS_ID

JS_DIR = Path(__file__).parent / "js"
INSTALL_HINT = (
    "run the README's test command (./tests/run), which installs them with `npm ci --prefix tests/js`"
)


def node_command() -> str:
    node = shutil.which("node")
    if node is None:
        pytest.fail(f"Node.js (`node`) is not on PATH; install Node.js 20 or later, then {INSTALL_HINT}")
    if not (JS_DIR / "node_modules" / "eventsource").is_dir():
        pytest.fail(f"tests/js/node_modules is missing the npm `eventsource` package: {INSTALL_HINT}")
    return node


def read_line(stdout: IO[str], process: subprocess.Popen[str]) -> Any:
    line = stdout.readline()
    if not line:  # the script ended early: show why
        process.wait(10)
        stderr = process.stderr.read() if process.stderr else ""
        raise AssertionError(f"listen.mjs exited with status {process.returncode}: {stderr}")
    return json.loads(line)


def test_npm_eventsource_receives_both_event_types(hub: Hub, http: httpx.Client) -> None:
    node = node_command()
    command = [node, str(JS_DIR / "listen.mjs"), f"{hub.url}/events/watch", "2", "20"]
    with subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) as process:
        try:
            assert process.stdout is not None
            assert read_line(process.stdout, process) == {"type": "open"}  # the server has registered it
            connected = {"type": "message", "id": GENESIS_ID, "data": "connected"}  # its position
            assert read_line(process.stdout, process) == connected
            metric = http.post("/metrics", json={"name": "CPU Temperature", "input_frequency": 10})
            metric_event_id = http.get("/metrics").headers["x-last-event-id"]
            reading = http.post("/metrics/readings", json={"metric_id": metric.json()["id"], "value": 21.5})
            reading_event_id = http.get("/metrics").headers["x-last-event-id"]
            received = [read_line(process.stdout, process) for _ in range(2)]
            assert process.wait(10) == 0  # it closed the stream after two events and exited
        finally:
            if process.poll() is None:
                process.kill()
                process.wait()
    assert received == [
        {"type": "metric_created", "id": metric_event_id, "data": metric.text},
        {"type": "metric_reading_created", "id": reading_event_id, "data": reading.text},
    ]
    assert json.loads(received[0]["data"]) == metric.json()
    assert json.loads(received[1]["data"]) == reading.json()
