"""`hub.chart()` in a real JupyterLab, in Debian's Chromium (Playwright): the readings a later cell logs
show on the chart within 2 s, and no request of the page goes to the hub's port, since they reach the
browser through the kernel's comm.

JupyterLab (the `jupyterlab` package of the dev extra) runs on 127.0.0.1, a free port, a token and a
temporary root, with its own config and runtime dirs, no announcements, no update check and a read-only
extension manager, so it reaches for no network; the kernel is this venv's python (ipykernel's native
kernelspec). The Chromium launch settings are those of tests/test_dashboard.py, defined here until
tests/support/chromium.py holds them.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest
from playwright.sync_api import Browser, Page, Route, WebSocketRoute, expect, sync_playwright

from tests.support.chromium import CHROMIUM, CHROMIUM_ARGS
from tests.support.hubs import free_port
from tests.support.processes import terminate

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.timeout(180)]

START = 60.0  # seconds for JupyterLab to answer, and for a cell to run: generous, on a loaded machine
SHOWN_WITHIN_MS = 2_000  # the bound: readings on the chart this soon after their cell ran
RAN = re.compile(r"^\[\d+\]:$")  # a cell's prompt once its run ended ("[*]:" while it runs)


@dataclass
class Lab:
    url: str
    token: str
    root: Path


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    root = tmp_path_factory.mktemp("lab")
    home = tmp_path_factory.mktemp("lab-home")
    port, token = free_port(), secrets.token_hex(16)
    environment = {
        **os.environ,
        "JUPYTER_CONFIG_DIR": str(home / "config"),
        "JUPYTER_RUNTIME_DIR": str(home / "runtime"),
        "IPYTHONDIR": str(home / "ipython"),
        "JUPYTER_PLATFORM_DIRS": "1",
    }
    command = [
        sys.executable,
        "-m",
        "jupyterlab",
        "--no-browser",
        "--ip=127.0.0.1",
        f"--port={port}",
        "--ServerApp.port_retries=0",
        f"--IdentityProvider.token={token}",
        f"--ServerApp.root_dir={root}",
        "--LabApp.news_url=None",
        "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
        "--LabApp.extension_manager=readonly",
        # a container's test runner is often root, which Jupyter refuses unless told
        *(["--allow-root"] if os.geteuid() == 0 else []),
    ]
    log = (home / "lab.log").open("wb")
    server = subprocess.Popen(command, env=environment, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until_up(server, f"{url}/api/status", token, home / "lab.log")
        yield Lab(url, token, root)
    finally:
        terminate(server, 15)
        log.close()


def wait_until_up(server: subprocess.Popen[bytes], status: str, token: str, log: Path) -> None:
    """Until JupyterLab answers: a process starting has no event to await but its port answering."""
    deadline = time.monotonic() + START
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise AssertionError(f"jupyter lab exited with {server.returncode}:\n{log.read_text()}")
        try:
            if httpx.get(status, headers={"Authorization": f"token {token}"}).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    raise AssertionError(f"jupyter lab did not answer within {START} s:\n{log.read_text()}")


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is not installed (apt-get install chromium); never `playwright install`")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@dataclass
class Traffic:
    """Every URL the page asked for (requests and WebSockets), and those the route refused."""

    urls: list[str] = field(default_factory=list)
    refused: list[str] = field(default_factory=list)

    def to_port(self, port: int) -> list[str]:
        return [url for url in self.urls + self.refused if urlsplit(url).port == port]


def notebook(root: Path, name: str, cells: list[str]) -> str:
    document = {
        "cells": [
            {
                "id": f"cell-{index}",
                "cell_type": "code",
                "execution_count": None,
                "metadata": {},
                "outputs": [],
                "source": source,
            }
            for index, source in enumerate(cells)
        ],
        "metadata": {"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}},
        "nbformat": 4,
        "nbformat_minor": 5,
    }
    (root / name).write_text(json.dumps(document))
    return name


def run_cell(page: Page, index: int) -> None:
    """Run cell `index` (0-based) as a user does, Shift+Enter, which selects the next cell, and wait
    until its run ended. The first is clicked; the others are the cell selected by then."""
    cell = page.locator(".jp-Notebook .jp-CodeCell").nth(index)
    if index == 0:
        cell.locator(".jp-InputArea-editor").click()
    page.keyboard.press("Shift+Enter")
    prompt = cell.locator(".jp-InputPrompt")
    expect(prompt).to_have_text(RAN, timeout=START * 1000)


# How many pixels of the chart's canvas have exactly the metric's colour: the newest point's dot at least,
# once there is a reading; none while the chart shows its message.
PIXELS_OF_COLOUR = """(figure) => {
  const canvas = figure.querySelector("canvas");
  const hex = figure.dataset.color;
  const [r, g, b] = [1, 3, 5].map((at) => parseInt(hex.slice(at, at + 2), 16));
  const data = canvas.getContext("2d").getImageData(0, 0, canvas.width, canvas.height).data;
  let count = 0;
  for (let i = 0; i < data.length; i += 4) {
    if (data[i] === r && data[i + 1] === g && data[i + 2] === b && data[i + 3] === 255) count++;
  }
  return count;
}"""

HUB_CELL = """\
from metricstream import Hub
hub = Hub(port=0).start()
print(hub.url)
hub.chart("loss")"""

# The browser cannot reach this hub at all (every port but JupyterLab's is refused to the page); the
# chart is a remote-server chart, read by the kernel with Subscriber.
REMOTE_CELL = """\
import metricstream
from metricstream import Hub
hub = Hub(port=0).start()
print(hub.url)
metricstream.chart(hub.url, "loss")"""

# Two series named "loss", told apart by their labels; one has a unit. Labels are any text: shown as text,
# never run as markup.
LOG_CELL = """\
hub.service.create_metric("loss", labels={"run": "a"}, unit="nats", description="training loss")
for n in range(1, 51):
    hub.service.log("loss", float(n), labels={"run": "a"})
hub.service.log("loss", 2.5, labels={"run": "<i>b</i>", "dc": "eu"})"""


@pytest.mark.parametrize("blocked", [False, True], ids=["hub", "remote-hub-blocked-for-the-browser"])
def test_readings_a_later_cell_logs_show_within_2s_and_the_page_never_asks_the_hub(
    lab: Lab, browser: Browser, blocked: bool
) -> None:
    name = notebook(lab.root, f"chart-{blocked}.ipynb", [REMOTE_CELL if blocked else HUB_CELL, LOG_CELL])
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    context.set_default_timeout(START * 1000)
    traffic = Traffic()
    lab_port = urlsplit(lab.url).port

    def elsewhere(url: str) -> bool:
        return urlsplit(url).port != lab_port

    def refuse(route: Route) -> None:
        traffic.refused.append(route.request.url)
        route.abort()

    def refuse_socket(socket: WebSocketRoute) -> None:
        traffic.refused.append(socket.url)
        socket.close()

    if blocked:  # the page may reach JupyterLab's port and nothing else, over HTTP or WebSocket
        context.route(elsewhere, refuse)
        context.route_web_socket(elsewhere, refuse_socket)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.on("request", lambda request: traffic.urls.append(request.url))
    page.on("websocket", lambda socket: traffic.urls.append(socket.url))
    try:
        # a workspace of its own, so no notebook of another test is open beside this one
        workspace = name.removesuffix(".ipynb")
        page.goto(f"{lab.url}/lab/workspaces/{workspace}/tree/{name}?reset&token={lab.token}")
        # the kernel has started (a cell run before then may be dropped)
        expect(page.get_by_text("Python 3 (ipykernel) | Idle")).to_be_visible(timeout=START * 1000)

        run_cell(page, 0)
        hub_port = urlsplit(page.locator(".jp-OutputArea-output pre").first.inner_text().strip()).port
        assert hub_port is not None
        widget = page.locator(".jp-OutputArea-output .metricstream-chart").first
        expect(widget).to_be_attached()
        view = page.locator(".jp-OutputArea-output [data-metrics]").first
        expect(view).to_have_attribute("data-metrics", "0")  # "loss" is not yet a metric

        run_cell(page, 1)
        # within 2 s of the cell's end: the metrics appeared, with all 51 readings drawn
        expect(view).to_have_attribute("data-points", "51", timeout=SHOWN_WITHIN_MS)
        figure, other = widget.locator("figure").first, widget.locator("figure").nth(1)
        expect(figure).to_have_attribute("data-points", "50", timeout=SHOWN_WITHIN_MS)
        assert figure.evaluate(PIXELS_OF_COLOUR) > 0
        assert figure.locator(".axis .label").inner_text() == "time"
        assert figure.locator(".axis .to").inner_text() != ""
        # the legend: the name, the labels as the dashboard writes them, the newest value and its unit
        assert [caption.inner_text().split() for caption in widget.locator("figcaption").all()] == [
            ["loss", "run=a", "50", "nats"],
            ["loss", "dc=eu", "·", "run=<i>b</i>", "2.50"],
        ]
        assert widget.locator("figcaption i").count() == 2  # the colour dots, and no label's markup
        assert figure.locator("figcaption b").get_attribute("title") == "loss run=a\ntraining loss"
        described = other.locator("canvas").get_attribute("aria-label") or ""
        assert described.startswith("loss dc=eu · run=<i>b</i>: Chart of")

        assert traffic.to_port(hub_port) == []
        assert traffic.refused == []  # nor anywhere else but JupyterLab
        assert errors == []
        if blocked:  # and the page could not have: the hub's port is shut to it
            probe = f"http://127.0.0.1:{hub_port}/healthz"
            assert page.evaluate("(url) => fetch(url).then(() => true, () => false)", probe) is False
            assert traffic.refused == [probe]
    finally:
        page.close()
        context.close()
