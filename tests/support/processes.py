"""`metricstream serve` and other child processes: started with piped output and no METRICSTREAM_*
variables of this one, read line by line under a deadline, and killed on the way out if still running."""

from __future__ import annotations

import contextlib
import os
import re
import select
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import IO

WAIT = 20  # seconds any single step of a child process may take at most


def installed(script: str) -> list[str]:
    """The command for a console script of this venv (or, failing that, from PATH)."""
    path = shutil.which(script, path=str(Path(sys.executable).parent)) or shutil.which(script)
    assert path is not None, f"{script} is not installed"
    return [path]


ENTRY_POINTS = {
    "console-script": lambda: installed("metricstream"),
    "python-m": lambda: [sys.executable, "-m", "metricstream"],
}


def child_env(**overrides: str) -> dict[str, str]:
    """This environment without any METRICSTREAM_* variable, plus `overrides`."""
    env = {name: value for name, value in os.environ.items() if not name.startswith("METRICSTREAM_")}
    return {**env, **overrides}


def read_until(pipe: IO[bytes], pattern: str, seen: bytearray, timeout: float = WAIT) -> re.Match[str]:
    """Read a child's pipe into `seen` until `pattern` matches a complete line."""
    regex = re.compile(pattern)
    deadline_at = time.monotonic() + timeout
    while True:
        text = seen.decode(errors="replace")
        for line in text.splitlines(keepends=True):
            match = regex.search(line)
            if match and line.endswith("\n"):
                return match
        ready, _, _ = select.select([pipe], [], [], max(0.0, deadline_at - time.monotonic()))
        if not ready:
            raise AssertionError(f"{pattern!r} not seen within {timeout}s; got {text!r}")
        chunk = os.read(pipe.fileno(), 65536)
        if not chunk:
            raise AssertionError(f"the pipe closed before {pattern!r}; got {text!r}")
        seen += chunk


@contextlib.contextmanager
def child(args: list[str], env: dict[str, str] | None = None) -> Iterator[subprocess.Popen[bytes]]:
    """A child process with piped output, killed on the way out if it is still running."""
    with subprocess.Popen(
        args,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env if env is not None else child_env(),
    ) as process:
        try:
            yield process
        finally:
            if process.poll() is None:
                process.kill()
                process.wait(WAIT)


def terminate(process: subprocess.Popen[bytes], within: float = 10) -> None:
    """Ask a server to stop (SIGTERM); kill it if it has not within `within` seconds."""
    process.terminate()
    try:
        process.wait(within)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def finish(process: subprocess.Popen[bytes]) -> tuple[int, str, str]:
    """Wait (bounded) for the child to exit: (status, rest of stdout, stderr)."""
    out, err = process.communicate(timeout=WAIT)
    return process.returncode, out.decode(errors="replace"), err.decode(errors="replace")


URL_LINE = r"metricstream listening on (https?://127\.0\.0\.1:\d+)"  # https with --certfile


def serve_url(process: subprocess.Popen[bytes]) -> str:
    assert process.stdout is not None
    return read_until(process.stdout, URL_LINE, bytearray()).group(1)


@contextlib.contextmanager
def servers_on(store: str, count: int) -> Iterator[list[str]]:
    """`count` `metricstream serve` processes on one store; stopped (and checked) on the way out."""
    command = [sys.executable, "-m", "metricstream", "serve", "--port", "0", "--store", store]
    with contextlib.ExitStack() as stack:
        processes = [stack.enter_context(child(command)) for _ in range(count)]
        yield [serve_url(process) for process in processes]
        for process in processes:
            process.send_signal(signal.SIGTERM)
        for process in processes:
            assert process.wait(20) == 0
