"""Past one core: `hypercorn -w 2 metricstream.asgi:app` on the Redis store, against one process.

    .venv/bin/python benchmarks/workers.py [--clients 1000] [--seconds 5] [--reps 3]

Starts its own redis-server on a free port of 127.0.0.1 (Debian's `redis-server`), then for each setup
starts a fresh server, runs `loadgen.py` against it and stops it:

- one process, memory store (`metricstream serve`): the reference without Redis;
- one process, Redis store (`metricstream serve --store redis://...`);
- two worker processes, Redis store (`hypercorn -w 2 metricstream.asgi:app`, configured from the
  environment): the kernel spreads connections over the workers, every event goes through Redis and
  comes back to both.

Figures: saturation deliveries/s with `--clients` clients, and the latency of 20 events/s to the same
number of clients (p50/p99: what Redis adds to one event's path). Prints a Markdown table; every run
checks that every client got every event, in one order.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
PYTHON = sys.executable
TIMES = "\u00d7"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_until_up(port: int, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the server exited with {process.returncode}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1):
                return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError("the server did not answer /healthz")


@contextmanager
def redis_server() -> Iterator[str]:
    binary = shutil.which("redis-server")
    if binary is None:
        raise SystemExit("redis-server is not installed (apt-get install redis-server)")
    port, folder = free_port(), tempfile.mkdtemp(prefix="metricstream-bench-redis-")
    command = [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--dir", folder]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        process.terminate()
        process.wait(10)
        shutil.rmtree(folder, ignore_errors=True)


@contextmanager
def server(setup: str, redis_url: str, prefix: str) -> Iterator[int]:
    """The port of a fresh server for `setup`."""
    port = free_port()
    redis_url = f"{redis_url}?prefix={prefix}"  # a fresh key space for every server
    env = {**os.environ, "METRICSTREAM_STORE": redis_url}
    if setup == "1 process, memory":
        command = [PYTHON, "-m", "metricstream", "serve", "--port", str(port), "--store", "memory://"]
    elif setup == "1 process, Redis":
        command = [PYTHON, "-m", "metricstream", "serve", "--port", str(port), "--store", redis_url]
    else:
        hypercorn = [
            PYTHON,
            "-m",
            "hypercorn",
            "-w",
            "2",
            "--bind",
            f"127.0.0.1:{port}",
            "--keep-alive",
            "75",
        ]
        command = [*hypercorn, "metricstream.asgi:app"]
    process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_until_up(port, process)
        yield port
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(5)


def loadgen(*argv: str) -> dict[str, Any]:
    done = subprocess.run(
        [PYTHON, str(BENCH / "loadgen.py"), *argv], stdout=subprocess.PIPE, timeout=600, check=False
    )
    lines = done.stdout.decode().strip().splitlines()
    result: dict[str, Any] = json.loads(lines[-1]) if lines and lines[-1].startswith("{") else {}
    if done.returncode != 0 or result.get("problems"):
        raise RuntimeError(f"loadgen failed: {result.get('problems') or done.returncode}")
    return result


SETUPS = ("1 process, memory", "1 process, Redis", "2 workers (hypercorn -w 2), Redis")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--clients", type=int, default=1000)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--reps", type=int, default=3)
    args = parser.parse_args()
    results: dict[str, dict[str, list[float]]] = {setup: {} for setup in SETUPS}
    with redis_server() as redis_url:
        for rep in range(args.reps):
            for index, setup in enumerate(SETUPS[rep % 3 :] + SETUPS[: rep % 3]):  # rotating order
                prefix = f"bench{rep}-{index}:"
                with server(setup, redis_url, prefix + "s") as port:
                    saturated = loadgen(
                        "saturate", "--port", str(port), "--clients", str(args.clients),
                        "--seconds", str(args.seconds), "--publish", "batch",
                    )  # fmt: skip
                with server(setup, redis_url, prefix + "r") as port:
                    rate = loadgen(
                        "rate", "--port", str(port), "--clients", str(args.clients),
                        "--rate", "20", "--seconds", str(args.seconds),
                    )  # fmt: skip
                figures = results[setup]
                figures.setdefault("deliveries_per_s", []).append(saturated["deliveries_per_s"])
                figures.setdefault("p50_ms", []).append(rate["p50_ms"])
                figures.setdefault("p99_ms", []).append(rate["p99_ms"])
                print(
                    f"{setup}: {saturated['deliveries_per_s']:,.0f} deliveries/s; 20 events/s: "
                    f"p50 {rate['p50_ms']:.1f} ms, p99 {rate['p99_ms']:.1f} ms",
                    file=sys.stderr,
                    flush=True,
                )
    one = statistics.median(results["1 process, Redis"]["deliveries_per_s"])
    print(f"| Setup ({args.clients:,} clients, median of {args.reps}) | deliveries/s | vs 1 process, Redis "
          "| p50 at 20 events/s (ms) | p99 (ms) |")  # fmt: skip
    print("|---|---:|---:|---:|---:|")
    for setup in SETUPS:
        figures = results[setup]
        deliveries = statistics.median(figures["deliveries_per_s"])
        print(
            f"| {setup} | {deliveries:,.0f} | {deliveries / one:.2f}{TIMES} "
            f"| {statistics.median(figures['p50_ms']):.1f} | {statistics.median(figures['p99_ms']):.1f} |"
        )


if __name__ == "__main__":
    main()
