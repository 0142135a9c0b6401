"""The package's public surface names what users need (the whole of `__all__` is checked in test_docs.py)."""

from __future__ import annotations
import asyncio
import dataclasses
import json
import os
import queue
import select
import socket
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone
from html.parser import HTMLParser
from typing import IO, Any
import httpx
import pytest
import metricstream
from metricstream.client.core import StreamEvent
from metricstream.domain.values import Metric, MetricReading
from metricstream.errors import HubError, MetricStreamError, NotFoundError, ValidationError
from metricstream.server.hub import Hub
from tests.support.raw_stream import RawStream


def test_public_names() -> None:
    for name in ("Hub", "MetricService", "Subscriber", "ValidationError", "NotFoundError", "HubError"):
        assert name in metricstream.__all__
        assert getattr(metricstream, name) is not None
