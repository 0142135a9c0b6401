"""Helpers for tests that run hubs: fast settings, free ports, waiting on a condition, and letting a
`ManualClock`'s time pass until the event log's TTL sweep has run."""

from __future__ import annotations

import socket
import time
from collections.abc import Callable
from typing import Any

from metricstream.clock import ManualClock
from metricstream.server.hub import Hub

FAST: dict[str, Any] = {"heartbeat": 0.5, "shutdown_timeout": 3.0}
TTL = 60.0  # the event TTL of the retention tests; `swept` lets time pass in steps of it

StartHub = Callable[..., Hub]  # what the `start_hub` fixture gives: settings -> a started in-memory Hub


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for(predicate: Callable[[], bool], timeout: float = 10, what: str = "condition") -> None:
    """Poll a cheap condition that has no event to await (e.g. a server-side counter)."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.01)


def swept(hub: Hub, clock: ManualClock, seconds: float) -> None:
    """Let `seconds` pass and wait until the log's sweep has run (it runs every TTL / 2)."""
    before = hub.app.log.base
    clock.advance(seconds)
    clock.advance(TTL / 2)  # past the next sweep, whatever the phase
    wait_for(lambda: hub.app.log.base > before or len(hub.app.log) == 0, what="the TTL sweep")
