"""metricstream mounted under a path in another ASGI app: docs/examples/mounted.py, served by hypercorn as
a user would run it. Every route answers under the prefix (`root_path`): REST, the write routes, the stream
and the dashboard, whose page asks for nothing outside it."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest

from metricstream.client.subscribers import Subscriber
from tests.e2e.test_dashboard import Tab, browser, card  # noqa: F401 - browser: a fixture used here
from tests.e2e.test_dashboard import tab as tab  # a fixture
from tests.support.hubs import free_port

EXAMPLE = Path(__file__).parents[2] / "docs" / "examples" / "mounted.py"


@pytest.fixture(scope="module")
def site() -> Iterator[str]:
    """The example app on hypercorn (its own CLI) on a free loopback port; its base URL."""
    port = free_port()
    command = [sys.executable, "-m", "hypercorn", f"{EXAMPLE}:app", "--bind", f"127.0.0.1:{port}"]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:  # hypercorn has no readiness signal but answering
            try:
                if httpx.get(f"{base}/ms/healthz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert process.poll() is None, process.communicate()[0]
            assert time.monotonic() < deadline, "the mounted example did not start"
            time.sleep(0.1)
        yield base
    finally:
        process.send_signal(signal.SIGTERM)
        output = process.communicate(timeout=30)[0]
    assert process.returncode == 0, output


def test_the_host_app_and_the_api_answer_under_the_prefix(site: str) -> None:
    with httpx.Client(base_url=site, timeout=10) as http:
        assert http.get("/").text == "My app. Live metrics: /ms/\n"
        assert http.get("/metrics").status_code == 404  # nothing of metricstream outside the prefix
        metric = http.post("/ms/metrics", json={"name": "mounted cpu"})
        assert metric.status_code == 201, metric.text
        metric_id = metric.json()["id"]
        single = http.post("/ms/metrics/readings", json={"metric_id": metric_id, "value": 1.5})
        assert single.status_code == 201, single.text
        batch = http.post(
            "/ms/metrics/readings/batch", json={"readings": [{"metric_id": metric_id, "value": 2}]}
        )
        assert batch.status_code == 201, batch.text
        readings = http.get(f"/ms/metrics/{metric_id}/readings").json()
        assert [reading["value"] for reading in readings] == [1.5, 2]
        first = http.get(f"/ms/metrics/{metric_id}/readings", params={"limit": 1})
        assert first.headers["x-truncated"] == "true"
        rest = http.get(first.url.join(first.links["next"]["url"]))  # relative: it stays under the prefix
        assert rest.url.path == f"/ms/metrics/{metric_id}/readings"
        assert [reading["value"] for reading in rest.json()] == [2]
        assert http.get("/ms/openapi.json").status_code == 200
        assert http.get("/ms/-/metrics").status_code == 200


def test_the_stream_under_the_prefix_replays_and_goes_on(site: str) -> None:
    with httpx.Client(base_url=site, timeout=10) as http:
        metric_id = http.post("/ms/metrics", json={"name": "streamed"}).json()["id"]
        http.post("/ms/metrics/readings", json={"metric_id": metric_id, "value": 6})
        with Subscriber(f"{site}/ms", start="earliest", metric_id=metric_id) as subscriber:
            events = iter(subscriber)
            assert next(events).data["value"] == 6  # replayed
            http.post("/ms/metrics/readings", json={"metric_id": metric_id, "value": 7})
            event = next(events)
            assert (event.type, event.data["value"]) == ("metric_reading_created", 7)


def test_the_dashboard_under_the_prefix_is_live_and_asks_only_under_it(tab: Tab, site: str) -> None:
    with httpx.Client(base_url=site, timeout=10) as http:
        metric_id = http.post("/ms/metrics", json={"name": "on the board"}).json()["id"]
        page = tab.page
        page.goto(f"{site}/ms/")
        page.wait_for_selector('#connection[data-state="connected"]')
        page.wait_for_selector(card(metric_id))
        http.post("/ms/metrics/readings", json={"metric_id": metric_id, "value": 42})
        page.wait_for_selector(f"{card(metric_id)} .value:text('42')")
        page.goto(f"{site}/ms/?metric={metric_id}")  # the single-metric view too
        page.wait_for_selector('#connection[data-state="connected"]')
        page.wait_for_selector(card(metric_id))
    paths = {urlsplit(request.url).path for request in tab.requests if request.url.startswith(site)}
    assert paths
    assert all(path.startswith("/ms/") for path in paths), sorted(paths)
    assert tab.errors == []
