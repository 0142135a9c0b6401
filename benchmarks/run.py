"""metricstream against the SSE stacks a user would otherwise pick, measured side by side in one run.

    .venv/bin/python benchmarks/run.py            # full: every figure the median of 3 runs -> docs/
    .venv/bin/python benchmarks/run.py --quick    # 1 run, fewer clients, shorter -> a temporary folder

For each stack — metricstream (`metricstream serve`), sse-starlette on uvicorn, aiohttp with aiohttp-sse —
and each scenario, it starts the server as a subprocess on a free port of 127.0.0.1, waits until
`/healthz` answers, runs `loadgen.py` (its own process) against it and stops it with SIGTERM: a fresh
server for every run, so no run inherits another's memory or retained events. Runs of one repetition go
scenario by scenario with the stacks in rotating order, so a disturbance on the machine is spread over all
stacks. Output: `performance.md` (table with ratios against the best baseline, the machine, how to
reproduce) and `performance.png` (deliveries/s and p99 latency against clients); the raw results go
to a JSON file next to the server logs.
Needs the `bench` extra: `pip install -e '.[bench]'`.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import importlib.metadata
import json
import math
import os
import platform
import re
import resource
import select
import shlex
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "benchmarks"
PYTHON = sys.executable
TIMES, DASH = "\u00d7", "\u2013"  # x and - as Markdown should show them
QUIET_CPU = 25.0  # % of one core used by other processes below which the machine counts as quiet
QUIET_WAIT = 10.0  # seconds to wait for a quiet machine before a run, at most
QUIET_BUDGET = 120.0  # seconds of such waiting in a whole invocation, at most


@dataclass(frozen=True)
class Stack:
    name: str
    command: tuple[str, ...]


BASELINES = ("sse-starlette", "aiohttp-sse")
# Optional columns, in their scenarios only; ratios stay metricstream's against the baselines (the floor
# has a target of its own).
UVLOOP = "metricstream (loop=uvloop)"  # --uvloop: the same server on uvloop
BARE_API = "API on bare ASGI, hypercorn"  # --bare-api: benchmarks/bare_api_hypercorn.py
FLOOR = "floor: bare ASGI on hypercorn"  # --floor: benchmarks/floor_asgi.py, a POST's least on hypercorn
EXTRAS = (UVLOOP, BARE_API, FLOOR)
_STREAMED = tuple(f"{kind}-{n}" for kind in ("saturate", "rate", "sustain") for n in (300, 1000))
EXTRA_SCENARIOS = {
    UVLOOP: (*_STREAMED, "ingest-single"),
    BARE_API: (*_STREAMED, "ingest-single"),
    FLOOR: ("ingest-single",),  # it has no stream
}


def stacks(metricstream_args: Sequence[str]) -> tuple[Stack, ...]:
    serve = (PYTHON, "-m", "metricstream", "serve", "--port", "0", *metricstream_args)
    return (
        Stack("metricstream", serve),
        Stack(UVLOOP, (*serve, "--loop", "uvloop")),
        Stack(BARE_API, (PYTHON, str(BENCH / "bare_api_hypercorn.py"), "--port", "0")),
        Stack(FLOOR, (PYTHON, str(BENCH / "floor_asgi.py"), "--port", "0")),
        Stack("sse-starlette", (PYTHON, str(BENCH / "baseline_sse_starlette.py"), "--port", "0")),
        Stack("aiohttp-sse", (PYTHON, str(BENCH / "baseline_aiohttp.py"), "--port", "0")),
    )


@dataclass(frozen=True)
class Scenario:
    key: str
    label: str
    argv: tuple[str, ...]  # loadgen arguments besides --port and --server-pid
    only: str | None = None  # one stack only
    server: bool = True
    timeout: float = 300.0


@dataclass(frozen=True)
class Target:
    text: str
    kind: str  # "vs" (ratio to a baseline, or to the best one) or "abs"
    bound: float
    against: str = "best"

    def met(self, value: float, medians: dict[str, float], higher: bool) -> bool | None:
        if self.kind == "abs":
            reference = self.bound
        else:
            names = BASELINES if self.against == "best" else (self.against,)
            pool = [medians.get(name, math.nan) for name in names]
            pool = [v for v in pool if not math.isnan(v)]
            if not pool:
                return None
            reference = (max(pool) if higher else min(pool)) * self.bound
        return value >= reference if higher else value <= reference


@dataclass(frozen=True)
class Figure:
    scenario: str
    field: str
    label: str
    higher: bool
    digits: int = 0  # decimals shown
    targets: tuple[Target, ...] = ()
    diagnostic: bool = False  # about the measurement, not the stack: no ratio


@dataclass
class Plan:
    reps: int
    clients: list[int]
    saturate_seconds: float
    rate_clients: int
    rate: float
    rate_seconds: float
    idle_clients: int
    ingest_seconds: float
    sustain_seconds: float = 3.0
    sustain_bisect: int = 3
    publish: str = "batch"
    scenarios: list[Scenario] = field(default_factory=list)
    figures: list[Figure] = field(default_factory=list)

    def build(self) -> None:
        sat = [str(self.saturate_seconds), "--publish", self.publish]
        for n in self.clients:
            self.scenarios.append(
                Scenario(
                    f"saturate-{n}",
                    f"saturation, {n:,} clients",
                    ("saturate", "--clients", str(n), "--seconds", *sat),
                )
            )
        self.scenarios += [
            Scenario(
                f"rate-{self.rate_clients}",
                f"{self.rate:g} events/s to {self.rate_clients:,} clients",
                (
                    "rate",
                    "--clients",
                    str(self.rate_clients),
                    "--rate",
                    str(self.rate),
                    "--seconds",
                    str(self.rate_seconds),
                ),
            ),
            Scenario(
                f"sustain-{self.rate_clients}",
                f"sustainable rate to {self.rate_clients:,} clients",
                (
                    "sustain",
                    "--clients",
                    str(self.rate_clients),
                    "--rate",
                    "20",
                    "--seconds",
                    str(self.sustain_seconds),
                    "--bisect",
                    str(self.sustain_bisect),
                    "--probes",
                    "50",
                ),
                timeout=900.0,
            ),
            Scenario(
                f"idle-{self.idle_clients}",
                f"{self.idle_clients:,} idle clients",
                ("idle", "--clients", str(self.idle_clients)),
            ),
            Scenario(
                "ingest-single",
                "ingest, single POSTs (one keep-alive connection)",
                ("ingest", "--mode", "single", "--seconds", str(self.ingest_seconds)),
            ),
            Scenario(
                "ingest-batch",
                "ingest, POST /metrics/readings/batch of 10,000",
                ("ingest", "--mode", "batch", "--seconds", str(self.ingest_seconds)),
            ),
            Scenario(
                "ingest-service",
                "ingest, hub.service.create_readings of 10,000 (in-process)",
                ("service", "--seconds", str(self.ingest_seconds)),
                only="metricstream",
                server=False,
            ),
            Scenario(
                "post-cost",
                "a single POST in process (the ASGI app called in a loop, no sockets)",
                ("post-cost",),
                only="metricstream",
                server=False,
            ),
            Scenario(
                "event-memory",
                "Python memory per retained event (tracemalloc, in-process)",
                ("event-memory", "--events", "100000"),
                only="metricstream",
                server=False,
            ),
        ]
        for n in self.clients:
            key = f"saturate-{n}"
            goal = {100: 3.0, 1000: 5.0}.get(n)
            targets = (Target(f"≥ {goal:g}{TIMES} best", "vs", goal),) if goal else ()
            deliveries = Figure(
                key, "deliveries_per_s", f"Saturation, {n:,} clients: deliveries/s", True, 0, targets
            )
            p99 = Figure(key, "p99_ms", f"Saturation, {n:,} clients: p99 latency (ms)", False, 1)
            if n not in (self.clients[0], self.clients[-1]):
                self.figures += [deliveries, p99]  # a point between, for the chart
                continue
            self.figures += [
                deliveries,
                Figure(key, "p50_ms", f"Saturation, {n:,} clients: p50 latency (ms)", False, 1),
                p99,
                Figure(key, "server_cpu", f"Saturation, {n:,} clients: server CPU (%)", False, 0),
                Figure(
                    key,
                    "server_rss_mb",
                    f"Saturation, {n:,} clients: server RSS at the end (MB)",
                    False,
                    0,
                    (Target(f"≤ 4{TIMES} best", "vs", 4.0),) if n == 100 else (),
                ),
                Figure(
                    key,
                    "retained_events",
                    f"Saturation, {n:,} clients: events retained at the end (in that RSS)",
                    False,
                    0,
                    diagnostic=True,
                ),
                Figure(
                    key,
                    "loadgen_cpu",
                    f"Saturation, {n:,} clients: load generator CPU (%)",
                    False,
                    0,
                    diagnostic=True,
                ),
            ]
        rate = f"rate-{self.rate_clients}"
        rate_label = f"{self.rate:g} events/s to {self.rate_clients:,} clients"
        rate_target = (
            (Target(f"≤ 1.0{TIMES} best", "vs", 1.0), Target(f"stretch ≤ 0.6{TIMES} best", "vs", 0.6))
            if self.rate_clients == 1000
            else ()
        )
        idle = f"idle-{self.idle_clients}"
        idle_targets = (
            (
                Target(f"≤ 0.6{TIMES} sse-starlette", "vs", 0.6, "sse-starlette"),
                Target(f"≤ 1.3{TIMES} aiohttp-sse", "vs", 1.3, "aiohttp-sse"),
            )
            if self.idle_clients == 10_000
            else ()
        )
        self.figures += [
            Figure(rate, "p50_ms", f"{rate_label}: p50 latency (ms)", False, 1),
            Figure(rate, "p99_ms", f"{rate_label}: p99 latency (ms)", False, 1, rate_target),
            Figure(rate, "server_cpu", f"{rate_label}: server CPU (%)", False, 0, rate_target),
            Figure(
                f"sustain-{self.rate_clients}",
                "sustained_rate",
                f"Sustainable rate to {self.rate_clients:,} clients (every event, p99 ≤ 100 ms): events/s",
                True,
                0,
                (Target(f"≥ 3{TIMES} best", "vs", 3.0),) if self.rate_clients == 1000 else (),
            ),
            Figure(
                idle,
                "kb_per_conn",
                f"{self.idle_clients:,} idle clients: memory per connection (KB)",
                False,
                1,
                idle_targets,
            ),
            Figure(
                idle, "rss_before_mb", f"{self.idle_clients:,} idle clients: server RSS before (MB)", False, 0
            ),
            Figure(
                "ingest-single",
                "readings_per_s",
                "Ingest, single POSTs, keep-alive: readings/s",
                True,
                0,
                (
                    Target(f"≥ 1.0{TIMES} best", "vs", 1.0),
                    Target(f"stretch ≥ 1.5{TIMES} best", "vs", 1.5),
                    Target(f"≥ 0.9{TIMES} floor", "vs", 0.9, FLOOR),
                ),
            ),
            Figure(
                "post-cost",
                "own_us",
                "A single POST in process: metricstream's own CPU time (µs)",
                False,
                1,
                (Target("≤ 40 µs", "abs", 40),),
            ),
            Figure(
                "post-cost",
                "floor_us",
                "A single POST in process: the bare ASGI app's CPU time (µs)",
                False,
                1,
                diagnostic=True,
            ),
            Figure(
                "post-cost",
                "reference_us",
                "A single POST in process: `sum(range(100))` meanwhile (µs, the machine's speed)",
                False,
                2,
                diagnostic=True,
            ),
            Figure(
                "ingest-batch",
                "readings_per_s",
                "Ingest, batch POSTs of 10,000: readings/s",
                True,
                0,
                (Target("≥ 100,000/s", "abs", 100_000),),
            ),
            Figure(
                "ingest-service",
                "readings_per_s",
                "Ingest, `hub.service.create_readings` of 10,000: readings/s",
                True,
                0,
                (Target("≥ 100,000/s", "abs", 100_000),),
            ),
            Figure(
                "event-memory",
                "beyond_body",
                "Memory per retained event beyond its body (B)",
                False,
                0,
                (Target("≤ 400 B", "abs", 400),),
            ),
            Figure(
                "event-memory", "bytes_per_event", "Memory per retained event, body included (B)", False, 0
            ),
        ]
        self.figures += [
            Figure(s.key, "background_cpu", f"{s.label}: other processes' CPU (%)", False, 0, diagnostic=True)
            for s in self.scenarios
            if not s.key.startswith(("idle", "event-memory", "sustain", "post-cost"))
        ]


def full_plan() -> Plan:
    return Plan(
        reps=3,
        clients=[100, 300, 1000],
        saturate_seconds=5,
        rate_clients=1000,
        rate=20,
        rate_seconds=8,
        idle_clients=10_000,
        ingest_seconds=3,
    )


def quick_plan() -> Plan:
    return Plan(
        reps=1,
        clients=[100, 300],
        saturate_seconds=2,
        rate_clients=300,
        rate=20,
        rate_seconds=3,
        idle_clients=1000,
        ingest_seconds=2,
        sustain_seconds=2,
        sustain_bisect=1,
    )


# --- running ------------------------------------------------------------------------------------


def say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def machine_busy() -> float:
    with open("/proc/stat", "rb") as file:
        user, nice, system, _idle, _iowait, irq, softirq, steal = map(int, file.readline().split()[1:9])
    return (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")


_quiet_budget = [QUIET_BUDGET]
WORKDIR = [ROOT]  # where subprocesses start; `python -m metricstream` imports from there first


def git(*args: str) -> str:
    return subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True, check=True).stdout.strip()


def use_snapshot(revision: str) -> str:
    """Serve metricstream from `revision`'s files, exported to a temporary folder, whatever the work tree
    holds meanwhile (someone editing it would otherwise change the code under test mid-run)."""
    folder = Path(tempfile.mkdtemp(prefix="metricstream-bench-src-"))
    archive = subprocess.run(
        ["git", "archive", revision, "metricstream"], cwd=ROOT, capture_output=True, check=True
    )
    subprocess.run(["tar", "-x", "-C", str(folder)], input=archive.stdout, check=True)
    WORKDIR[0] = folder
    os.environ["PYTHONPATH"] = str(folder)  # before the editable install's finder, for the in-process run
    return f"commit {git('rev-parse', '--short', revision)} (exported, `--snapshot {revision}`)"


def work_tree_version() -> str:
    try:
        dirty = bool(git("status", "--porcelain", "--untracked-files=no", "--", "metricstream"))
        return f"commit {git('rev-parse', '--short', 'HEAD')}" + (
            " with uncommitted changes" if dirty else ""
        )
    except (OSError, subprocess.CalledProcessError):
        return "the work tree"


def wait_for_quiet() -> float:
    """Wait (bounded) until other processes use less than QUIET_CPU % of a core; return that %."""
    started = time.monotonic()
    deadline = started + min(QUIET_WAIT, _quiet_budget[0])
    while True:
        before, sampled = machine_busy(), time.monotonic()
        time.sleep(0.5)
        busy = 100 * (machine_busy() - before) / (time.monotonic() - sampled)
        if busy < QUIET_CPU or time.monotonic() > deadline:
            _quiet_budget[0] = max(0.0, _quiet_budget[0] - (time.monotonic() - started - 0.5))
            return busy


class Server:
    """A stack's server as a subprocess on a free port, stopped with SIGTERM."""

    def __init__(self, stack: Stack, log_path: Path) -> None:
        self.stack = stack
        self.log = log_path.open("ab")
        self.process = subprocess.Popen(
            stack.command, stdout=subprocess.PIPE, stderr=self.log, cwd=WORKDIR[0]
        )
        self.port = self._read_port()
        # Whatever else it prints goes to its log: an unread pipe that fills up would block the server.
        self._drain = threading.Thread(target=self._copy_output, daemon=True)
        self._drain.start()
        self._wait_healthy()

    def _copy_output(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.log.write(line)

    def _read_port(self) -> int:
        assert self.process.stdout is not None
        ready, _, _ = select.select([self.process.stdout], [], [], 60)
        line = self.process.stdout.readline().decode() if ready else ""
        match = re.search(r"http://127\.0\.0\.1:(\d+)", line)
        if not match:
            self.stop()
            raise RuntimeError(f"{self.stack.name} did not report its URL: {line!r}")
        return int(match.group(1))

    def _wait_healthy(self) -> None:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            url = f"http://127.0.0.1:{self.port}/healthz"
            with contextlib.suppress(OSError), urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return
            time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"{self.stack.name} did not answer /healthz")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)
        drain = getattr(self, "_drain", None)
        if drain is not None:
            drain.join(5)  # the pipe ends with the process
        if self.process.stdout is not None:
            self.process.stdout.close()
        self.log.close()


def run_loadgen(argv: Sequence[str], timeout: float) -> dict[str, Any]:
    command = [PYTHON, str(BENCH / "loadgen.py"), *argv]
    try:
        done = subprocess.run(command, stdout=subprocess.PIPE, timeout=timeout, cwd=WORKDIR[0], check=False)
    except subprocess.TimeoutExpired:
        return {"failed": f"load generator timed out after {timeout:.0f} s"}
    lines = done.stdout.decode().strip().splitlines()
    result: dict[str, Any] = json.loads(lines[-1]) if lines and lines[-1].startswith("{") else {}
    if done.returncode != 0:
        result["failed"] = "; ".join(result.get("problems", [])) or f"load generator exited {done.returncode}"
    return result


def run_one(scenario: Scenario, stack: Stack, logs: Path) -> dict[str, Any]:
    background = wait_for_quiet()
    if not scenario.server:
        result = run_loadgen(scenario.argv, scenario.timeout)
    else:
        try:
            server = Server(stack, logs / f"{stack.name}.log")
        except RuntimeError as error:
            return {"failed": str(error)}
        try:
            result = run_loadgen(
                [*scenario.argv, "--port", str(server.port), "--server-pid", str(server.process.pid)],
                scenario.timeout,
            )
        finally:
            server.stop()
    result["background_before"] = background
    return result


def summary(result: dict[str, Any]) -> str:
    if "failed" in result:
        return f"FAILED: {result['failed']}"
    parts = []
    if "deliveries_per_s" in result:
        parts.append(f"{result['deliveries_per_s']:,.0f} deliveries/s")
    if "p99_ms" in result:
        parts.append(f"p50 {result['p50_ms']:.1f} ms, p99 {result['p99_ms']:.1f} ms")
    if "sustained_rate" in result:
        parts.append(f"sustained {result['sustained_rate']:,.0f} events/s")
    if "beyond_body" in result:
        parts.append(
            f"{result['bytes_per_event']:.0f} B per event, {result['beyond_body']:.0f} B beyond the body"
        )
    if "kb_per_conn" in result:
        parts.append(f"{result['kb_per_conn']:.1f} KB/connection")
    if "readings_per_s" in result:
        value = result["readings_per_s"]
        parts.append("n/a" if value is None else f"{value:,.0f} readings/s")
    for name, key in (("server", "server_cpu"), ("loadgen", "loadgen_cpu"), ("others", "background_cpu")):
        if key in result:
            parts.append(f"{name} CPU {result[key]:.0f}%")
    return ", ".join(parts)


def offers_batch(stack: Stack, logs: Path) -> bool:
    server = Server(stack, logs / f"{stack.name}.log")
    try:
        return bool(run_loadgen(["probe", "--port", str(server.port)], 60).get("batch"))
    finally:
        server.stop()


# --- reporting ----------------------------------------------------------------------------------


def is_number(value: object) -> bool:
    return isinstance(value, int | float) and not math.isnan(value)


def spread(values: list[float]) -> tuple[float, float, float]:
    return statistics.median(values), min(values), max(values)


def number(value: float, digits: int) -> str:
    if math.isnan(value):
        return "n/a"
    return f"{value:,.{digits}f}"


def ratio_text(value: float) -> str:
    if math.isnan(value):
        return "n/a"
    return f"{value:.2f}{TIMES}" if value < 10 else f"{value:.1f}{TIMES}"


def machine() -> dict[str, str]:
    cpu = "unknown"
    with contextlib.suppress(OSError), open("/proc/cpuinfo") as file:
        cpu = next((line.split(":", 1)[1].strip() for line in file if line.startswith("model name")), cpu)
    memory = "unknown"
    with contextlib.suppress(OSError), open("/proc/meminfo") as file:
        kb = next(int(line.split()[1]) for line in file if line.startswith("MemTotal"))
        memory = f"{kb / 2**20:.1f} GiB"
    packages = []
    for name in (
        "metricstream",
        "hypercorn",
        "quart",
        "orjson",
        "sse-starlette",
        "starlette",
        "uvicorn",
        "uvloop",
        "httptools",
        "aiohttp",
        "aiohttp-sse",
    ):
        with contextlib.suppress(importlib.metadata.PackageNotFoundError):
            packages.append(f"{name} {importlib.metadata.version(name)}")
    return {
        "cpu": cpu,
        "cores": str(os.cpu_count()),
        "memory": memory,
        "kernel": f"{platform.system()} {platform.release()}",
        "python": platform.python_version(),
        "packages": ", ".join(packages),
        "fd_limit": "{} soft / {} hard".format(*resource.getrlimit(resource.RLIMIT_NOFILE)),
        "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
    }


def table(plan: Plan, results: dict[str, dict[str, list[dict[str, Any]]]]) -> tuple[str, list[str]]:
    """The Markdown table, and the list of targets missed."""
    extras = [name for name in EXTRAS if any(name in by_stack for by_stack in results.values())]
    names = ["metricstream", *extras, *BASELINES]
    rows = [
        "| Figure | " + " | ".join(names) + " | metricstream ÷ best baseline | Target |",
        "|---|" + "---:|" * len(names) + "---:|---|",
    ]
    missed = []
    for figure in plan.figures:
        cells, medians = [], {}
        for name in names:
            runs = results.get(figure.scenario, {}).get(name)
            if runs is None:
                cells.append("—")
                medians[name] = math.nan
                continue
            values = [r[figure.field] for r in runs if "failed" not in r and is_number(r.get(figure.field))]
            failed = sum("failed" in r for r in runs)
            if not values:
                cells.append("failed" if failed else "n/a")
                medians[name] = math.nan
                continue
            middle, low, high = spread(values)
            medians[name] = middle
            cell = number(middle, figure.digits)
            if len(values) > 1:
                cell += f" ({number(low, figure.digits)}{DASH}{number(high, figure.digits)})"
            if failed:
                cell += f" [{failed} failed]"
            cells.append(cell)
        pool = [medians[b] for b in BASELINES if not math.isnan(medians[b])]
        best = (max(pool) if figure.higher else min(pool)) if pool else math.nan
        ratio = "—" if figure.diagnostic else ratio_text(medians["metricstream"] / best if pool else math.nan)
        goals = []
        for target in figure.targets:
            met = (
                None
                if math.isnan(medians["metricstream"])
                else target.met(medians["metricstream"], medians, figure.higher)
            )
            mark = {True: "met", False: "**missed**", None: "n/a"}[met]
            goals.append(f"{target.text}: {mark}")
            if met is False:
                missed.append(f"{figure.label} — {target.text}")
        rows.append(f"| {figure.label} | " + " | ".join(cells) + f" | {ratio} | {'; '.join(goals)} |")
    return "\n".join(rows), missed


def chart(plan: Plan, results: dict[str, dict[str, list[dict[str, Any]]]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, (left, right) = plt.subplots(1, 2, figsize=(11, 4.4))
    styles = {
        "metricstream": ("tab:blue", "o"),
        "sse-starlette": ("tab:orange", "s"),
        "aiohttp-sse": ("tab:green", "^"),
    }
    rate_key = f"rate-{plan.rate_clients}"
    for name, (color, marker) in styles.items():
        for axis, field_name in ((left, "deliveries_per_s"), (right, "p99_ms")):
            xs, ys, lows, highs = [], [], [], []
            for n in plan.clients:
                runs = results.get(f"saturate-{n}", {}).get(name, [])
                values = [r[field_name] for r in runs if "failed" not in r and is_number(r.get(field_name))]
                if values:
                    middle, low, high = spread(values)
                    xs.append(n)
                    ys.append(middle)
                    lows.append(middle - low)
                    highs.append(high - middle)
            if xs:
                label = name if axis is left else f"{name}, saturated"
                axis.errorbar(xs, ys, yerr=[lows, highs], color=color, marker=marker, capsize=3, label=label)
        runs = results.get(rate_key, {}).get(name, [])
        values = [r["p99_ms"] for r in runs if "failed" not in r and is_number(r.get("p99_ms"))]
        if values:
            right.scatter(
                [plan.rate_clients],
                [statistics.median(values)],
                facecolors="none",
                edgecolors=color,
                marker=marker,
                s=90,
                label=f"{name}, {plan.rate:g} events/s",
            )
    left.set(
        xscale="log",
        yscale="log",
        xlabel="connected clients",
        ylabel=f"deliveries/s (events {TIMES} clients)",
        title="Saturated fan-out (higher is better)",
    )
    right.set(
        xscale="log",
        yscale="log",
        xlabel="connected clients",
        ylabel="p99 latency (ms)",
        title="p99 latency (lower is better)",
    )
    for axis in (left, right):
        axis.minorticks_off()
        axis.set_xticks(plan.clients, [f"{n:,}" for n in plan.clients])
        axis.grid(True, which="major", alpha=0.3)
    for axis, size in ((left, 8), (right, 7)):
        if axis.get_legend_handles_labels()[0]:
            axis.legend(fontsize=size)
    figure.suptitle("metricstream vs sse-starlette (uvicorn) vs aiohttp-sse — medians, bars = range of runs")
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)


def lower_bounds(plan: Plan, results: dict[str, dict[str, list[dict[str, Any]]]]) -> list[str]:
    """A note for each saturation figure the load generator, not the server, may have limited."""
    notes = []
    for n in plan.clients:
        by_stack = results.get(f"saturate-{n}", {})
        for name, runs in by_stack.items():
            busy = [r["loadgen_cpu"] for r in runs if "failed" not in r and is_number(r.get("loadgen_cpu"))]
            server = [r["server_cpu"] for r in runs if "failed" not in r and is_number(r.get("server_cpu"))]
            if busy and statistics.median(busy) >= 90 and server and statistics.median(server) < 97:
                notes.append(
                    f"- Saturation at {n:,} clients, {name}: the load generator ran at "
                    f"{statistics.median(busy):.0f} % CPU while the server had "
                    f"{statistics.median(server):.0f} %: the load generator was the limit, so "
                    f"{name}'s deliveries/s there is a lower bound."
                )
    return notes


def document(
    plan: Plan,
    results: dict[str, dict[str, list[dict[str, Any]]]],
    info: dict[str, str],
    command: str,
    minutes: float,
) -> str:
    body, missed = table(plan, results)
    background = [
        r["background_cpu"]
        for by_stack in results.values()
        for runs in by_stack.values()
        for r in runs
        if "background_cpu" in r
    ]
    failures = [
        f"{key} / {name}: {r['failed']}"
        for key, by_stack in results.items()
        for name, runs in by_stack.items()
        for r in runs
        if "failed" in r
    ]
    publishing = "batches of 100 readings" if plan.publish == "batch" else "single readings"
    lines = [
        "# Performance",
        "",
        "metricstream against the two stacks a user would otherwise pick for Server-Sent Events in",
        "Python, measured side by side in one run by `benchmarks/run.py`. The ratio is metricstream's",
        "median divided by the best baseline's (throughput: higher is better; latency, CPU, memory:",
        f"lower is better). Every figure is the median of {plan.reps} run(s), range in brackets; every",
        "run had a fresh server process.",
        "",
        body,
        "",
        "![deliveries/s and p99 latency against connected clients](performance.png)",
        "",
    ]
    if missed:
        lines += ["Targets missed in this run:", "", *[f"- {m}" for m in missed], ""]
    if failures:
        lines += ["Runs that failed (not in the figures):", "", *[f"- {f}" for f in failures], ""]
    lines += [
        "## The machine",
        "",
        f"- CPU: {info['cpu']}, {info['cores']} cores; RAM {info['memory']}; {info['kernel']}",
        f"- Python {info['python']}; open files {info['fd_limit']}",
        f"- metricstream measured: {info['code']}"
        + (f", served with `{info['flags']}`" if info.get("flags") else ", default settings"),
        f"- {info['packages']}",
        f"- Date: {info['date']}; the whole run took {minutes:.1f} minutes",
        (
            f"- Other processes' CPU while measuring (all runs but idle): median "
            f"{statistics.median(background):.0f}%, max {max(background):.0f}% of one core"
            if background
            else "- Other processes' CPU while measuring: not recorded"
        ),
        "",
        "## How to reproduce",
        "",
        "```sh",
        "python -m venv .venv && .venv/bin/pip install -e '.[bench]'",
        command,
        "```",
        "",
        "`--quick` does one short run with fewer clients and writes to a temporary folder; `--out DIR`",
        "writes elsewhere; `--metricstream-args '--flag value'` passes flags to `metricstream serve`;",
        "`--only KEY,...` and `--stacks NAME,...` run a part; `--snapshot [REV]` measures metricstream as",
        "committed (default HEAD) rather than the work tree. Close other busy programs first: the server",
        "and the load generator need a core each.",
        "",
        "## What is measured",
        "",
        "- **Servers.** metricstream: `python -m metricstream serve`, default settings (hypercorn, one",
        "  process). sse-starlette: `benchmarks/baseline_sse_starlette.py`, Starlette on uvicorn with its",
        "  defaults (uvloop and httptools, as `uvicorn[standard]` installs them). aiohttp-sse:",
        "  `benchmarks/baseline_aiohttp.py`, aiohttp's own server on asyncio. The baselines are minimal,",
        "  idiomatic servers for the same API: the same JSON in and out, the same `id:`/`event:`/`data:`",
        "  frames, one unbounded `asyncio.Queue` per client, every event put into every queue.",
        *(
            [
                f"- **{UVLOOP}** and **{BARE_API}** (`benchmarks/bare_api_hypercorn.py`: the same API",
                "  on a bare ASGI app, one shared list of frames, no limits or replay) run in the",
                f"  saturation, fixed-rate, sustainable-rate and single-POST scenarios only; **{FLOOR}**",
                "  (`benchmarks/floor_asgi.py`: reads the body, parses it with orjson, answers 201 with a",
                "  small JSON body, nothing else) in the single-POST scenario only. They are measures, not",
                "  baselines: the ratio column is metricstream's, default loop. The floor has a target of",
                "  its own: metricstream's single POSTs/s at least 0.9x the floor's, both from this run.",
            ]
            if any(name in by_stack for by_stack in results.values() for name in EXTRAS)
            else []
        ),
        "- **Load generator** (`benchmarks/loadgen.py`): its own process, raw asyncio sockets; the SSE",
        "  clients count a marker in each read. A reading's `value` is its sequence number and the",
        "  publisher, in the same process, keeps each one's send time: latency is the time a client read",
        "  the event minus the time its POST was written, on one clock. Every run checks that every",
        "  client got every event and that the clients that time events (spread over the connection",
        "  order) all saw one order; a run failing that is reported as failed. Its own CPU is in the",
        "  table: near 100 % would make it, not the server, the limit.",
        f"- **Saturation** ({', '.join(f'{n:,}' for n in plan.clients)} clients): 4 publishers post",
        f"  {publishing}, each on its own keep-alive connection, as fast as the clients keep up:",
        "  never more than 500 events ahead of the slowest client, so no stack's buffers grow without",
        "  bound and no client is dropped as slow. After a 1 s warm-up, deliveries/s = reading events",
        f"  received by all clients together per second over {plan.saturate_seconds:g} s; p50/p99 =",
        "  latency of every event published from the start until the window closed, timed by 10",
        "  clients.",
        f"- **Fixed rate**: one reading every {1000 / plan.rate:g} ms (single POSTs) to"
        f" {plan.rate_clients:,} clients",
        f"  for {plan.rate_seconds:g} s after a 1 s warm-up; every client times every event.",
        f"- **Sustainable rate** ({plan.rate_clients:,} clients, the same streams throughout): single POSTs",
        "  at a fixed rate, doubling from 20 events/s, each step"
        f" {plan.sustain_seconds:g} s; after the first step that fails, the rate is",
        f"  bisected {plan.sustain_bisect} times. A step passes when every client got every event of it, the",
        "  50 timing clients saw them in publishing order, none was dropped, p99 ≤ 100 ms and the",
        "  publisher achieved ≥ 95 % of the rate asked. The figure is the highest rate that passed.",
        "- **Memory per retained event**: tracemalloc in the load generator's process, 100,000 reading",
        "  events built as the service builds them and appended to an `EventLog`: what the log holds",
        "  per event (the event, its frame and id, the index entry), and that minus the body's length.",
        f"- **Idle memory**: server RSS (VmRSS) with {plan.idle_clients:,} connected idle streams, minus",
        "  RSS before they connected (after 20 clients came and went), divided by the number of clients.",
        "- **Ingest**, no SSE client connected: single POSTs one after another on one keep-alive",
        "  connection (reconnecting if the server closes it); batch POSTs of 10,000",
        "  readings; and `hub.service.create_readings` with 10,000 readings per call, in the load",
        "  generator's process (metricstream only). A server without the batch route shows n/a.",
        "- **A single POST in process** (`benchmarks/post_cost.py`): metricstream's ASGI app called in",
        "  a loop with a fake receive and send, no sockets, each request's body in two messages as",
        "  hypercorn sends it (`POST /metrics/readings`, memory store); the CPU time of the best of 7",
        "  repeats of 5,000, and the bare ASGI app's (`benchmarks/floor_asgi.py`) the same way, in",
        "  turn. Far less noisy than the socket figures, which add hypercorn's own cost per request.",
        "  `sum(range(100))` timed alongside says how fast the machine ran Python meanwhile.",
        "- Server CPU % is of one core, from /proc/<pid>/stat over the measured window; RSS from",
        "  /proc/<pid>/status. The runs of one repetition cycle through the stacks in rotating order;",
        f"  before each run the runner waits (at most {QUIET_WAIT:g} s, {QUIET_BUDGET:g} s in all) for other",
        f"  processes to use less than {QUIET_CPU:g} % of a core; what they used while measuring is in the",
        '  table ("other processes\' CPU"): far from 0, the machine was shared and the run is noisy.',
        "",
        "## Fairness and uncertainty",
        "",
        "- The baselines do less per request than metricstream: hand-written checks instead of pydantic",
        "  models, no retained event log for `Last-Event-ID` replay, no slow-client eviction, no client",
        "  limit. They buffer without bound: under a publisher that does not wait for its clients they",
        "  grow until memory runs out, where metricstream drops the slow client. The saturation publisher",
        "  waits for the slowest client, which keeps the comparison about throughput.",
        "- uvicorn runs with uvloop and httptools (its `[standard]` install), the faster and common",
        "  production choice; a plain `pip install uvicorn` (asyncio, h11) is slower. metricstream and",
        "  aiohttp run on the stdlib asyncio loop.",
        "- Two cores: the server and the load generator get about one each. The load generator is Python",
        "  too; where its CPU nears 100 % the server's figure is a lower bound.",
        "- In saturation, latency is mostly queueing behind the 500-event window: compare it across",
        "  stacks, not as a service time. The fixed-rate scenario is the latency a user sees.",
        "- metricstream's RSS under load includes its retained event log (`event_ttl`, 60 s by default,",
        "  for `Last-Event-ID` replay) and its stored readings; the baselines store readings but retain",
        "  no events.",
        "- In the baselines a client's handler sends everything in its queue before another handler",
        "  runs (nothing suspends while the socket takes the data): clients advance in steps of hundreds",
        "  of events, up to ~400 apart in a check at 300 clients, and the slowest one lags the whole",
        "  window. That, more than per-event cost, is their saturation latency.",
        "- A single check of sse-starlette on plain uvicorn (`--loop asyncio --http h11`) on this machine",
        "  gave about 19 % fewer deliveries/s at 300 clients than with uvloop and httptools.",
        *lower_bounds(plan, results),
        "",
    ]
    return "\n".join(lines)


# --- main ---------------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="1 run, fewer clients, shorter (development)")
    parser.add_argument("--out", type=Path, default=None, help="folder for performance.md and .png")
    parser.add_argument("--only", default=None, help="comma-separated scenario keys to run (e.g. idle-10000)")
    parser.add_argument("--stacks", default=None, help="comma-separated stack names to run")
    parser.add_argument("--reps", type=int, default=None, help="runs of each figure (default 3; --quick 1)")
    parser.add_argument("--metricstream-args", default="", help="extra flags for `metricstream serve`")
    parser.add_argument(
        "--uvloop", action="store_true", help="also metricstream with --loop uvloop (a column)"
    )
    parser.add_argument(
        "--floor", action="store_true", help="also a bare ASGI app on hypercorn, single POSTs (a column)"
    )
    parser.add_argument(
        "--bare-api", action="store_true", help="also the API on a bare ASGI app on hypercorn (a column)"
    )
    parser.add_argument(
        "--workers", action="store_true", help="also run benchmarks/workers.py (hypercorn -w 2 on Redis)"
    )
    parser.add_argument(
        "--snapshot",
        nargs="?",
        const="HEAD",
        default=None,
        metavar="REV",
        help="measure metricstream as committed at REV (default HEAD), not the work tree",
    )
    parser.add_argument(
        "--render",
        type=Path,
        default=None,
        metavar="JSON",
        help="run nothing: write performance.md/.png from a saved performance.json",
    )
    args = parser.parse_args()
    if args.render:
        render(json.loads(args.render.read_text()), args.out or ROOT / "docs")
        return
    started = time.monotonic()
    plan = quick_plan() if args.quick else full_plan()
    if args.reps:
        plan.reps = args.reps
    out = args.out or (Path(tempfile.mkdtemp(prefix="metricstream-bench-")) if args.quick else ROOT / "docs")
    out.mkdir(parents=True, exist_ok=True)
    logs = Path(tempfile.mkdtemp(prefix="metricstream-bench-logs-"))
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != hard:  # the servers and the load generator inherit it (and raise it themselves too)
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    environment = {k: v for k, v in os.environ.items() if not k.startswith("METRICSTREAM_")}
    os.environ.clear()
    os.environ.update(environment)  # every stack with its defaults, whatever this shell has set
    code = use_snapshot(args.snapshot) if args.snapshot else work_tree_version()
    all_stacks = stacks(shlex.split(args.metricstream_args))
    chosen = [
        s
        for s in all_stacks
        if (args.stacks is None or s.name in args.stacks.split(","))
        and (
            s.name not in EXTRAS or {UVLOOP: args.uvloop, BARE_API: args.bare_api, FLOOR: args.floor}[s.name]
        )
    ]
    metricstream = next(s for s in all_stacks if s.name == "metricstream")
    batch = offers_batch(metricstream, logs)
    plan.publish = "batch" if batch else "single"
    plan.build()
    scenarios = [s for s in plan.scenarios if args.only is None or s.key in args.only.split(",")]
    say(
        f"metricstream {'offers' if batch else 'lacks'} POST /metrics/readings/batch: saturation publishes "
        f"{'batches of 100' if batch else 'single readings'}; server logs in {logs}"
    )
    todo = [
        (rep, scenario, stack)
        for rep in range(plan.reps)
        for scenario in scenarios
        for stack in (chosen[rep % len(chosen) :] + chosen[: rep % len(chosen)])
        if (scenario.only is None or scenario.only == stack.name)
        and (stack.name not in EXTRAS or scenario.key in EXTRA_SCENARIOS[stack.name])
    ]
    results: dict[str, dict[str, list[dict[str, Any]]]] = {}
    for index, (rep, scenario, stack) in enumerate(todo, 1):
        say(f"[{index:2d}/{len(todo)}] run {rep + 1}/{plan.reps} · {scenario.label} · {stack.name}")
        began = time.monotonic()
        result = run_one(scenario, stack, logs)
        results.setdefault(scenario.key, {}).setdefault(stack.name, []).append(result)
        say(f"        {summary(result)}  ({time.monotonic() - began:.1f} s)")
    workers = ""
    if args.workers:
        say("benchmarks/workers.py: hypercorn -w 2 on Redis against one process")
        reps = ["--reps", str(plan.reps)] + (["--clients", "300", "--seconds", "2"] if args.quick else [])
        done = subprocess.run(
            [PYTHON, str(BENCH / "workers.py"), *reps],
            capture_output=True,
            text=True,
            cwd=WORKDIR[0],
            check=False,
        )
        workers = done.stdout if done.returncode == 0 else f"workers.py failed: {done.stderr[-2000:]}"
    minutes = (time.monotonic() - started) / 60
    command = " ".join(
        [".venv/bin/python benchmarks/run.py"]
        + (["--quick"] if args.quick else [])
        + ([f"--snapshot {args.snapshot}"] if args.snapshot else [])
        + ([f"--reps {args.reps}"] if args.reps else [])
        + ([f"--metricstream-args {shlex.quote(args.metricstream_args)}"] if args.metricstream_args else [])
        + (["--uvloop"] if args.uvloop else [])
        + (["--floor"] if args.floor else [])
        + (["--bare-api"] if args.bare_api else [])
        + (["--workers"] if args.workers else [])
    )
    report = {
        "plan": {name: getattr(plan, name) for name in PLAN_FIELDS},
        "info": machine() | {"code": code, "flags": args.metricstream_args},
        "minutes": minutes,
        "command": command,
        "results": results,
        "workers": workers,
    }
    raw = logs / "performance.json"
    raw.write_text(json.dumps(report, indent=1))
    render(report, out)
    say(f"done in {minutes:.1f} minutes: {out / 'performance.md'}, {out / 'performance.png'}; raw: {raw}")
    print(table(plan, results)[0])


WORKERS_SECTION = """## Past one core: two workers on Redis

`benchmarks/workers.py` (run with `--workers`): a fresh server per run, its own redis-server on
127.0.0.1; saturation (batches of 100, 4 publishers) and 20 events/s (single POSTs), to the same
number of clients. Two workers share the machine's two cores with the load generator, so this shows
what the shared log costs more than what a second core gives.
"""

PLAN_FIELDS = (
    "reps",
    "clients",
    "saturate_seconds",
    "rate_clients",
    "rate",
    "rate_seconds",
    "idle_clients",
    "ingest_seconds",
    "sustain_seconds",
    "sustain_bisect",
    "publish",
)


def render(report: dict[str, Any], out: Path) -> None:
    """performance.md and performance.png from a run's results (as saved in its performance.json)."""
    plan = Plan(**report["plan"])
    plan.build()
    out.mkdir(parents=True, exist_ok=True)
    chart(plan, report["results"], out / "performance.png")
    document_text = document(plan, report["results"], report["info"], report["command"], report["minutes"])
    if report.get("workers"):
        document_text += "\n" + WORKERS_SECTION + "\n" + report["workers"]
    analysis = BENCH / "analysis.md"  # hand-written: profiles and causes, kept beside the generated part
    if analysis.exists():
        document_text += "\n" + analysis.read_text()
    (out / "performance.md").write_text(document_text)


if __name__ == "__main__":
    main()
