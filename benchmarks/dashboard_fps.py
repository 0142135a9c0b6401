"""The dashboard under load: frame rate, long tasks and catch-up time in Debian's Chromium.

    .venv/bin/python benchmarks/dashboard_fps.py [--rate 1000] [--metrics 20] [--seconds 10] [--runs 3]
        [--window live|10m|1h|6h|1d]

Each run starts a Hub on 127.0.0.1 (memory store), creates the metrics with a full chart of history (300
readings each, spread over the window), opens the dashboard with `--window` chosen (default: the raw
readings of "Latest readings") in a viewport large enough for every chart to be on screen (so every one is
drawn), then posts `--rate` readings/s round-robin over the metrics for `--seconds`, in steps of 10.
Prints, per run and as the median of the runs, while posting: animation frames/s, the worst gap between
frames, long tasks (over 50 ms), chart redraws/s, the share of time the page's main thread was busy
(Chromium's own count); and how long after the last post the page showed every metric's last value.
Run by hand: timings depend on the machine, so no test asserts them.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from playwright.sync_api import Browser, CDPSession, Page, sync_playwright

from metricstream.server.hub import Hub

# The repo root on the path, for the one definition of how every browser run launches Chromium.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from tests.support.chromium import CHROMIUM, CHROMIUM_ARGS

HISTORY = 300  # readings per chart, as the dashboard keeps

# Counts chart redraws: the dashboard clears a canvas once per draw. Injected before the page's script.
DRAW_COUNTER = """
const clearRect = CanvasRenderingContext2D.prototype.clearRect;
window.chartDraws = 0;
CanvasRenderingContext2D.prototype.clearRect = function (...args) {
  window.chartDraws++;
  return clearRect.apply(this, args);
};
"""

PROBE_START = """() => {
  const probe = {frames: 0, worstGap: 0, longTasks: 0, longTaskTime: 0, longestTask: 0,
                 start: performance.now(), draws: window.chartDraws, running: true};
  let last = probe.start;
  const count = (now) => {
    if (!probe.running) return;
    probe.frames++;
    probe.worstGap = Math.max(probe.worstGap, now - last);
    last = now;
    requestAnimationFrame(count);
  };
  requestAnimationFrame(count);
  new PerformanceObserver((list) => {
    for (const entry of list.getEntries()) {
      if (!probe.running) return;
      probe.longTasks++;
      probe.longTaskTime += entry.duration;
      probe.longestTask = Math.max(probe.longestTask, entry.duration);
    }
  }).observe({type: "longtask"});
  window.probe = probe;
}"""

PROBE_STOP = """() => {
  const probe = window.probe;
  probe.running = false;
  return {...probe, elapsed: performance.now() - probe.start, draws: window.chartDraws - probe.draws};
}"""

# The picker's windows, in seconds (the raw readings' spread over a minute: 5 readings/s)
WINDOWS = {"live": 60, "10m": 600, "1h": 3600, "6h": 6 * 3600, "1d": 86_400}


def spread(now: datetime, span: float) -> list[str]:
    """HISTORY timestamps spread evenly over the `span` seconds before now, so that a window of buckets
    holds a full chart too."""
    return [(now - timedelta(seconds=span * (HISTORY - i) / HISTORY)).isoformat() for i in range(HISTORY)]


# Every card shows its history: a full chart of raw readings, or its buckets once loaded.
LOADED = """(full) => [...document.querySelectorAll('.card')].every((card) =>
  card.dataset.history === undefined
    ? Number(card.dataset.points) === full
    : card.dataset.history === 'ready')"""

CAUGHT_UP = """(final) => Object.entries(final).every(([id, value]) =>
  Number(document.querySelector(`.card[data-metric-id="${id}"]`).dataset.value) === value)"""


@dataclass(frozen=True)
class Run:
    fps: float
    worst_gap_ms: float
    long_tasks: int
    long_task_ms: float
    longest_task_ms: float
    draws_per_second: float
    busy: float  # share of the page's main thread spent in tasks, while posting
    script: float  # of which running JavaScript
    posted_in: float
    catch_up: float

    def line(self) -> str:
        return (
            f"{self.fps:5.1f} frames/s, worst gap {self.worst_gap_ms:4.0f} ms; "
            f"{self.long_tasks:3d} long tasks ({self.long_task_ms:5.0f} ms in all, longest "
            f"{self.longest_task_ms:3.0f} ms); {self.draws_per_second:4.0f} chart redraws/s; main thread "
            f"{self.busy:4.0%} busy ({self.script:4.0%} script); "
            f"posted in {self.posted_in:.2f} s, all shown {self.catch_up:.2f} s after the last post"
        )


def one_run(browser: Browser, rate: int, metric_count: int, seconds: float, window: str) -> Run:
    with Hub(host="127.0.0.1", port=0, store="memory://") as hub:
        metrics = [hub.service.create_metric(f"Sensor {number:02}") for number in range(metric_count)]
        now = datetime.now(UTC)
        hub.service.create_readings(
            [
                {"metric_id": metric.id, "value": float(value), "timestamp": stamp}
                for metric in metrics
                for value, stamp in enumerate(spread(now, WINDOWS[window]), start=1)
            ]
        )
        context = browser.new_context(viewport={"width": 1920, "height": 1400})
        try:
            page = context.new_page()
            page.add_init_script(DRAW_COUNTER)
            page.add_init_script(f"localStorage.setItem('metricstream.window', {json.dumps(window)})")
            errors: list[str] = []
            page.on("pageerror", lambda error: errors.append(str(error)))
            page.goto(hub.url)
            page.wait_for_selector('#connection[data-state="connected"]')
            page.wait_for_function(f"() => document.querySelectorAll('.card').length === {metric_count}")
            page.wait_for_function(LOADED, arg=HISTORY)
            run = drive(page, hub, [metric.id for metric in metrics], rate, seconds)
            if errors:
                raise RuntimeError(f"the page failed: {errors}")
            return run
        finally:
            context.close()


def main_thread(cdp: CDPSession) -> dict[str, float]:
    """Chromium's cumulative times (s) of the page's main thread: TaskDuration, ScriptDuration, …"""
    answer = cdp.send("Performance.getMetrics")
    return {metric["name"]: metric["value"] for metric in answer["metrics"]}


def drive(page: Page, hub: Hub, metric_ids: list[str], rate: int, seconds: float) -> Run:
    cdp = page.context.new_cdp_session(page)
    cdp.send("Performance.enable")
    page.evaluate(PROBE_START)
    before = main_thread(cdp)
    final: dict[str, float] = {}
    start = time.monotonic()
    for index in range(int(rate * seconds)):
        metric_id = metric_ids[index % len(metric_ids)]
        value = round(1 + (index * 7919 % 10_000) / 100, 2)
        hub.service.create_reading(metric_id, value)
        final[metric_id] = value
        if index % 10 == 9:
            delay = start + (index + 1) / rate - time.monotonic()
            if delay > 0:
                time.sleep(delay)  # pacing the producer
    posted = time.monotonic()
    probe: dict[str, Any] = page.evaluate(PROBE_STOP)
    after = main_thread(cdp)
    page.wait_for_function(CAUGHT_UP, arg=final, timeout=60_000)
    caught_up = time.monotonic()
    elapsed = probe["elapsed"] / 1000
    return Run(
        fps=probe["frames"] / elapsed,
        worst_gap_ms=probe["worstGap"],
        long_tasks=probe["longTasks"],
        long_task_ms=probe["longTaskTime"],
        longest_task_ms=probe["longestTask"],
        draws_per_second=probe["draws"] / elapsed,
        busy=(after["TaskDuration"] - before["TaskDuration"]) / elapsed,
        script=(after["ScriptDuration"] - before["ScriptDuration"]) / elapsed,
        posted_in=posted - start,
        catch_up=caught_up - posted,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=int, default=1000, help="readings per second (default 1000)")
    parser.add_argument("--metrics", type=int, default=20, help="metrics, all on screen (default 20)")
    parser.add_argument("--seconds", type=float, default=10.0, help="posting time per run (default 10)")
    parser.add_argument("--runs", type=int, default=3, help="runs, each with a new server and page")
    parser.add_argument(
        "--window", choices=list(WINDOWS), default="live", help="the dashboard's window (default live)"
    )
    args = parser.parse_args()
    if not Path(CHROMIUM).exists():
        sys.exit(f"{CHROMIUM} is missing: apt-get install chromium (never `playwright install`)")

    print(
        f"{args.rate} readings/s over {args.metrics} metrics for {args.seconds:g} s, {args.runs} runs, "
        f"window {args.window}"
    )
    runs: list[Run] = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            for number in range(args.runs):
                runs.append(one_run(browser, args.rate, args.metrics, args.seconds, args.window))
                print(f"run {number + 1}: {runs[-1].line()}", flush=True)
        finally:
            browser.close()
    middle = statistics.median
    median = Run(
        fps=middle(run.fps for run in runs),
        worst_gap_ms=middle(run.worst_gap_ms for run in runs),
        long_tasks=round(middle(run.long_tasks for run in runs)),
        long_task_ms=middle(run.long_task_ms for run in runs),
        longest_task_ms=middle(run.longest_task_ms for run in runs),
        draws_per_second=middle(run.draws_per_second for run in runs),
        busy=middle(run.busy for run in runs),
        script=middle(run.script for run in runs),
        posted_in=middle(run.posted_in for run in runs),
        catch_up=middle(run.catch_up for run in runs),
    )
    print(f"median: {median.line()}")


if __name__ == "__main__":
    main()
