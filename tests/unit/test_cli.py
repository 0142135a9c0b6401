"""The command line's parser (`metricstream/cli.py`): every bool setting is a switch both ways. `metricstream
serve` itself runs as a subprocess in tests/e2e/test_cli.py."""

from __future__ import annotations
import asyncio
import contextlib
import os
import re
import select
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any, cast
import httpx
import pytest
from hypercorn.asyncio import serve
from hypercorn.config import Config
import metricstream
from metricstream.cli import build_parser
from metricstream.errors import ValidationError
from metricstream.service.demo import DEMO_METRICS
from metricstream.settings import Settings
from metricstream.web.application import MetricStreamApp
from metricstream.wire import GENESIS_ID
from tests.support.raw_stream import RawStream
from tests.support.hubs import wait_for


def test_bool_settings_are_switches() -> None:
    switches = [name for name, field in Settings.model_fields.items() if field.annotation is bool]
    assert "demo" in switches
    parser = build_parser()
    for name in switches:
        assert vars(parser.parse_args(["serve", "--" + name.replace("_", "-")]))[name] is True
        assert vars(parser.parse_args(["serve", "--no-" + name.replace("_", "-")]))[name] is False
        assert vars(parser.parse_args(["serve"]))[name] is None  # left to METRICSTREAM_* or the default
