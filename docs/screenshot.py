"""Render the dashboard to docs/dashboard.png, so a person can look at it without running anything.

    python docs/screenshot.py                     docs/dashboard.png, 1280x800, light
    python docs/screenshot.py --scheme dark -o /tmp/dark.png

Starts a Hub on a free port, creates a few metrics with five minutes of plausible random-walk history,
keeps feeding them live, opens the dashboard in headless Chromium (Debian's `chromium`, driven by
Playwright; `./tests/run` installs both) and saves the page once every chart is full and the stream is
connected.
"""

from __future__ import annotations

import argparse
import random
import sys
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

from playwright.sync_api import sync_playwright

from metricstream.domain.values import Metric
from metricstream.server.hub import Hub
from metricstream.service.demo import Walk, step
from metricstream.service.metric_service import MetricService

# The repo root on the path, for the one definition of how every browser run launches Chromium.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from tests.support.chromium import CHROMIUM, CHROMIUM_ARGS

OUTPUT = Path(__file__).with_name("dashboard.png")
HISTORY = 300  # readings per metric: what one chart holds
# name, seconds between readings, the walk, whether values are whole numbers
METRICS: list[tuple[str, float, Walk, bool]] = [
    ("CPU Temperature", 1.0, Walk(35.0, 95.0, 58.0), False),
    ("Memory Usage", 2.0, Walk(20.0, 95.0, 46.0), False),
    ("Requests per Second", 0.5, Walk(40.0, 900.0, 320.0), True),
    ("p95 Latency (ms)", 1.0, Walk(40.0, 400.0, 120.0), False),
    ("Queue Depth", 0.5, Walk(1.0, 250.0, 30.0), True),
    ("Disk Throughput (MB/s)", 2.0, Walk(5.0, 240.0, 80.0), False),
]
TICK = 0.25  # seconds between rounds of the live feed


def value_of(walk: Walk, value: float, whole: bool, rng: random.Random) -> float:
    value = step(walk, value, rng)
    return float(max(1, round(value))) if whole else value


def backfill(service: MetricService, rng: random.Random) -> list[tuple[Metric, Walk, bool, float]]:
    """The metrics, each with HISTORY readings ending now."""
    now = datetime.now(UTC)
    fed = []
    for name, every, walk, whole in METRICS:
        metric = service.create_metric(name, every)
        value = walk.start
        for back in range(HISTORY, 0, -1):
            value = value_of(walk, value, whole, rng)
            service.create_reading(metric.id, value, now - timedelta(seconds=back * every))
        fed.append((metric, walk, whole, value))
    return fed


def feed(service: MetricService, fed: list[tuple[Metric, Walk, bool, float]], stop: threading.Event) -> None:
    """Live readings, each metric at its own input_frequency, until `stop`."""
    rng = random.Random(2)
    values = [value for *_, value in fed]
    due = [0.0] * len(fed)
    elapsed = 0.0
    while not stop.wait(TICK):
        elapsed += TICK
        for index, (metric, walk, whole, _) in enumerate(fed):
            if elapsed >= due[index]:
                due[index] = elapsed + (metric.input_frequency or 1.0)
                values[index] = value_of(walk, values[index], whole, rng)
                service.create_reading(metric.id, values[index])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-o", "--output", type=Path, default=OUTPUT)
    parser.add_argument("--scheme", choices=["light", "dark"], default="light")
    args = parser.parse_args()

    with Hub(port=0) as hub, sync_playwright() as playwright:
        fed = backfill(hub.service, random.Random(1))
        stop = threading.Event()
        feeder = threading.Thread(target=feed, args=(hub.service, fed, stop), daemon=True)
        feeder.start()
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 800}, color_scheme=args.scheme)
            page.goto(hub.url)
            page.wait_for_selector('#connection[data-state="connected"]')
            page.wait_for_function(
                "([n, full]) => [...document.querySelectorAll('.card')]"
                ".filter((card) => Number(card.dataset.points) >= full).length === n",
                arg=[len(METRICS), HISTORY],
            )
            # a few live seconds, so the chart ends and the readings/s figure are current
            page.wait_for_function(
                "() => document.getElementById('summary').textContent.includes('readings/s')"
            )
            page.screenshot(path=args.output)
        finally:
            browser.close()
            stop.set()
            feeder.join()
    print(f"wrote {args.output}")


if __name__ == "__main__":
    main()
