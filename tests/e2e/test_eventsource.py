"""The npm `eventsource` package, the client the original Go service documents, reads a Hub's stream.

Runs `tests/js/listen.mjs` under Node.js; its dependencies come from `tests/js/package-lock.json`,
installed by the README's test command (`./tests/run` runs `npm ci --prefix tests/js`).
"""

from __future__ import annotations

import json
import subprocess

import httpx

from metricstream.server.hub import Hub
from metricstream.wire import GENESIS_ID
from tests.support.node import JS_DIR, node_command, read_line


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
