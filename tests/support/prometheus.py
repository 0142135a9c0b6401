"""A real Prometheus (Debian's `prometheus` package, which ./tests/run installs) for the tests that speak
its protocols: started on 127.0.0.1 on a free port with the test's configuration and data folder, ready
once `/-/ready` answers, and stopped on the way out. `create_blocks` fills a data folder from OpenMetrics
text with `promtool`, for data older than Prometheus would take live."""

from __future__ import annotations

import contextlib
import shutil
import subprocess
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import httpx

from .hubs import free_port
from .processes import terminate

STARTUP = 30.0  # seconds Prometheus may take to replay its folder and answer /-/ready
# Blocks made from old OpenMetrics text would be deleted at once under the default 15 days.
_RETENTION = "--storage.tsdb.retention.time=36500d"


@dataclass(frozen=True)
class Prometheus:
    url: str
    data: Path
    log: Path


def binary(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        raise RuntimeError(f"{name} is not installed: run ./tests/run, which installs Debian's prometheus")
    return path


@contextlib.contextmanager
def running_prometheus(
    workdir: Path, config: str = "global: {}\n", flags: Sequence[str] = ()
) -> Iterator[Prometheus]:
    """Prometheus with `config` (YAML) and extra `flags`, its data in `workdir / "data"`."""
    workdir.mkdir(parents=True, exist_ok=True)
    (workdir / "prometheus.yml").write_text(config)
    data, log = workdir / "data", workdir / "prometheus.log"
    port = free_port()
    command = [
        binary("prometheus"),
        f"--config.file={workdir / 'prometheus.yml'}",
        f"--storage.tsdb.path={data}",
        f"--web.listen-address=127.0.0.1:{port}",
        _RETENTION,
        *flags,
    ]
    with log.open("wb") as output, subprocess.Popen(command, stdout=output, stderr=output) as process:
        try:
            url = f"http://127.0.0.1:{port}"
            _wait_ready(url, process, log)
            yield Prometheus(url, data, log)
        finally:
            terminate(process)


def _wait_ready(url: str, process: subprocess.Popen[bytes], log: Path) -> None:
    """Poll /-/ready: Prometheus tells readiness no other way a test can await."""
    deadline = time.monotonic() + STARTUP
    with httpx.Client(timeout=2) as client:
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise RuntimeError(f"prometheus exited ({process.returncode}): {log.read_text()[-2000:]}")
            with contextlib.suppress(httpx.TransportError):
                if client.get(f"{url}/-/ready").status_code == 200:
                    return
            time.sleep(0.05)
    raise RuntimeError(f"prometheus was not ready within {STARTUP} s: {log.read_text()[-2000:]}")


def create_blocks(openmetrics: str, data: Path) -> None:
    """Write `openmetrics` (text ending in `# EOF`, timestamps in seconds) as TSDB blocks into `data`."""
    data.mkdir(parents=True, exist_ok=True)
    source = data.parent / "blocks.om"
    source.write_text(openmetrics)
    subprocess.run(
        [binary("promtool"), "tsdb", "create-blocks-from", "openmetrics", str(source), str(data)],
        check=True,
        capture_output=True,
        timeout=120,
    )
