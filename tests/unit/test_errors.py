"""The exceptions (`metricstream/errors.py`) carry the standard library's meaning too."""

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


def test_error_classes_carry_the_stdlib_meaning() -> None:
    assert issubclass(ValidationError, ValueError)
    assert issubclass(ValidationError, MetricStreamError)
    assert issubclass(NotFoundError, LookupError)
    assert issubclass(NotFoundError, MetricStreamError)
    assert issubclass(HubError, MetricStreamError)
