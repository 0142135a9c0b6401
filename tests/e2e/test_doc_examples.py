"""Every ```python block of README.md and docs/*.md runs as a program of its own (a fresh interpreter,
warnings as errors, bounded in time) and must exit cleanly; they start their own hubs on free ports."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.markdown import PYTHON_BLOCKS, Block

EXAMPLE_TIMEOUT = 40.0  # seconds for one example; the slowest takes about one


@pytest.mark.parametrize("block", PYTHON_BLOCKS, ids=[block.name for block in PYTHON_BLOCKS])
def test_python_example_runs(block: Block, tmp_path: Path) -> None:
    env = {name: value for name, value in os.environ.items() if not name.startswith("METRICSTREAM_")}
    try:
        done = subprocess.run(
            [sys.executable, "-W", "error", "-c", block.code],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=EXAMPLE_TIMEOUT,
        )
    except subprocess.TimeoutExpired as expired:
        pytest.fail(f"{block.name} did not finish within {EXAMPLE_TIMEOUT} s; output:\n{expired.stdout!r}")
    assert done.returncode == 0, f"{block.name} failed:\n{done.stdout}\n{done.stderr}"
