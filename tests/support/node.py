"""The npm `eventsource` package under Node.js (`tests/js/listen.mjs`): the client the original Go service
documents, and an EventSource as browsers have it. Its dependencies come from `tests/js/package-lock.json`,
installed by the README's test command (`./tests/run` runs `npm ci --prefix tests/js`)."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import IO, Any

import pytest

JS_DIR = Path(__file__).resolve().parent.parent / "js"
INSTALL_HINT = (
    "run the README's test command (./tests/run), which installs them with `npm ci --prefix tests/js`"
)


def node_command() -> str:
    node = shutil.which("node")
    if node is None:
        pytest.fail(f"Node.js (`node`) is not on PATH; install Node.js 20 or later, then {INSTALL_HINT}")
    if not (JS_DIR / "node_modules" / "eventsource").is_dir():
        pytest.fail(f"tests/js/node_modules is missing the npm `eventsource` package: {INSTALL_HINT}")
    return node


def read_line(stdout: IO[str], process: subprocess.Popen[str]) -> Any:
    line = stdout.readline()
    if not line:  # the script ended early: show why
        process.wait(10)
        stderr = process.stderr.read() if process.stderr else ""
        raise AssertionError(f"listen.mjs exited with status {process.returncode}: {stderr}")
    return json.loads(line)
