"""Exports over HTTP: how long `GET /readings?format=...` takes for every reading of a SQLite store, and how
much memory the server holds meanwhile, at two sizes, to show that its peak does not grow with the export.

    .venv/bin/python benchmarks/export_http.py [--readings 100000 1000000] [--metrics 10] [--formats ...]

For each size, a SQLite store gets `--metrics` metrics (two labels, a unit and a description each, which
every row carries) sharing the readings, one a second each, written straight through the store (as
benchmarks/export_table.py does). A `metricstream serve` process serves it; after a small export in each
format (so that pyarrow and the encoders are loaded, as on any server that has exported once), each format
is exported in full by an httpx client in this process that reads the answer as it streams and counts its
bytes. The server's resident memory is read from /proc/<pid>/status: before each export, its peak during
it (VmHWM, reset before each export through /proc/<pid>/clear_refs), and after. Linux only.
"""

from __future__ import annotations

import argparse
import asyncio
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
from export_table import fill

from metricstream.storage import open_storage

FORMATS = ("csv", "json", "arrow", "parquet")
COLUMNS = ("readings", "format", "MB sent", "seconds", "rows/s", "RSS before", "peak", "after")
URL_LINE = re.compile(rb"metricstream listening on (http://127\.0\.0\.1:\d+)")


def memory(pid: int, field: str) -> float:
    """A field of /proc/<pid>/status (VmRSS, VmHWM) in MiB."""
    status = Path(f"/proc/{pid}/status").read_text()
    match = re.search(rf"^{field}:\s+(\d+) kB", status, re.MULTILINE)
    assert match is not None, field
    return int(match[1]) / 1024


def reset_peak(pid: int) -> None:
    """Set VmHWM back to the current RSS (Linux >= 4.0)."""
    Path(f"/proc/{pid}/clear_refs").write_text("5")


def make_store(path: Path, metrics: int, readings: int) -> str:
    url = f"sqlite:///{path}"
    store = open_storage(url)

    async def write() -> None:
        await store.open()
        await fill(store, metrics, readings)
        await store.close()

    started = time.perf_counter()
    asyncio.run(write())
    print(f"{readings:,} readings written in {time.perf_counter() - started:.1f} s", flush=True)
    return url


def export(client: httpx.Client, pid: int, format: str, params: dict[str, str]) -> tuple[float, ...]:
    """Export once; (bytes, seconds, RSS before, peak, after)."""
    before = memory(pid, "VmRSS")
    reset_peak(pid)
    started = time.perf_counter()
    size = 0
    with client.stream("GET", "/readings", params={"format": format, **params}) as answer:
        answer.raise_for_status()
        for chunk in answer.iter_raw():
            size += len(chunk)
    seconds = time.perf_counter() - started
    return size, seconds, before, memory(pid, "VmHWM"), memory(pid, "VmRSS")


def measure(url: str, readings: int, formats: list[str]) -> list[tuple[object, ...]]:
    command = [sys.executable, "-m", "metricstream", "serve", "--port", "0", "--store", url]
    with subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL) as server:
        try:
            assert server.stdout is not None
            match = None
            while match is None:
                line = server.stdout.readline()
                if not line:
                    raise RuntimeError("metricstream serve ended before listening")
                match = URL_LINE.search(line)
            with httpx.Client(base_url=match[1].decode(), timeout=600) as client:
                for format in formats:  # warm up: modules loaded, one page's work done once
                    export(client, server.pid, format, {"name": "metric0", "until": "2026-01-01T00:01:00Z"})
                rows: list[tuple[object, ...]] = []
                for format in formats:
                    size, seconds, before, peak, after = export(client, server.pid, format, {})
                    rows.append(
                        (readings, format, size / 2**20, seconds, readings / seconds, before, peak, after)
                    )
                    print(*map(_cell, rows[-1]), sep="  ", flush=True)
                return rows
        finally:
            server.terminate()
            server.wait(30)


def _cell(value: object) -> str:
    if isinstance(value, float):
        return f"{value:,.0f}" if value >= 1000 else f"{value:.1f}"
    return f"{value:,}" if isinstance(value, int) else str(value)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--readings", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument("--metrics", type=int, default=10)
    parser.add_argument("--formats", nargs="+", default=list(FORMATS), choices=FORMATS)
    args = parser.parse_args()
    results = []
    with tempfile.TemporaryDirectory() as directory:
        for readings in args.readings:
            url = make_store(Path(directory) / f"export-{readings}.db", args.metrics, readings)
            results += measure(url, readings, args.formats)
    print("\nMemory in MiB (the server's RSS); peak: VmHWM during the export.")
    widths = [max(len(column), 10) for column in COLUMNS]
    print("  ".join(column.ljust(width) for column, width in zip(COLUMNS, widths, strict=True)))
    for row in results:
        print("  ".join(_cell(cell).ljust(width) for cell, width in zip(row, widths, strict=True)))


if __name__ == "__main__":
    main()
