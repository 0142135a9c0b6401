"""Strings that try to break SSE framing or inject a field: line ends of every kind, look-alike line ends,
field-like text, NUL, a BOM. For the encoder's property tests and for the same names sent through a server."""

from __future__ import annotations
import asyncio
import json
import re
import unicodedata
from collections.abc import AsyncIterator, Callable
from typing import Any
from urllib.parse import quote
import httpx
import orjson
import pytest
from httpx_sse import EventSource
from hypothesis import given, settings
from hypothesis import strategies as st
from metricstream.client.core import StreamEvent
from metricstream.client.subscribers import AsyncSubscriber, Subscriber
from metricstream.domain.values import Metric
from metricstream.ids import new_id
from metricstream.server.hub import Hub
from metricstream.stream.log import Event
from metricstream.stream.sse import encode_event
from metricstream.wire import METRIC_CREATED
from .conftest import RawStream


HOSTILE_NAMES = [
    "line\nbreak",
    "crlf\r\nbreak",
    "cr\rbreak",
    "x\nevent: injected",
    "x\r\nid: injected",
    "x\rdata: injected",
    'x\n\ndata: {"forged": true}\n\nid: 9',
    "x\nretry: 1",
    "nul\0byte",
    "look-alike \u2028 line \u2029 ends \x85 \x0b \x0c \x1c inside",
    "look-alike \u2028 line \u2029 separators",
    "\ufeffBOM first",
    ": comment-like",
    "data: z",
    "id: y",
    "event: x",
    "ünïcödé ✓ 🚀 \U0010ffff",
]
