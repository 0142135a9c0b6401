"""`create_app()` (`web/application.py`): settings from keywords and the environment, and the errors bad
ones raise. The app under a server of one's own: tests/e2e/test_cli.py."""

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


def test_create_app_settings_faces(monkeypatch: pytest.MonkeyPatch) -> None:
    app = metricstream.create_app(max_clients=3)
    assert isinstance(app, MetricStreamApp)
    assert callable(app)
    assert app.settings.max_clients == 3
    assert app.broadcaster.max_clients == 3
    monkeypatch.setenv("METRICSTREAM_MAX_CLIENTS", "7")
    assert metricstream.create_app().settings.max_clients == 7
    assert metricstream.create_app(max_clients=3).settings.max_clients == 3
    with pytest.raises(ValidationError, match="max_clients"):
        metricstream.create_app(max_clients=0)
    with pytest.raises(TypeError, match="max_client"):
        metricstream.create_app(max_client=3)
