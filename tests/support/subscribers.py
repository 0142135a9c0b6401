"""Helpers for the subscriber tests: a `Subscriber` iterated on its own thread (`Consumer`), the hub's
counts and position as a client would read them, and checks on what arrived."""

from __future__ import annotations

import queue
import threading
import time

import httpx

from metricstream.client.core import StreamEvent
from metricstream.client.subscribers import Subscriber
from metricstream.server.hub import Hub

METRIC_CREATED = "metric_created"
READING_CREATED = "metric_reading_created"
TAKE_TIMEOUT = 10.0  # seconds to wait for events that should arrive in milliseconds


def clients(hub: Hub) -> int:
    return int(httpx.get(f"{hub.url}/healthz").json()["clients"])


def position(hub: Hub) -> str:
    """The newest event id, as a client loading state over REST would learn it."""
    return httpx.get(f"{hub.url}/metrics").headers["x-last-event-id"]


def values(events: list[StreamEvent]) -> list[float]:
    assert all(event.type == READING_CREATED for event in events), [event.type for event in events]
    return [event.data["value"] for event in events]


def assert_each_once_in_order(events: list[StreamEvent], expected: list[float]) -> None:
    assert values(events) == expected
    assert len({event.id for event in events}) == len(events)


class Consumer:
    """Iterates a `Subscriber` on its own thread; `take` awaits what it yields."""

    def __init__(self, sub: Subscriber) -> None:
        self.sub = sub
        self._items: queue.Queue[StreamEvent | Exception | None] = queue.Queue()
        self._thread = threading.Thread(target=self._run, name="consumer", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            for event in self.sub:
                self._items.put(event)
        except Exception as exc:  # handed to the test thread by take()
            self._items.put(exc)
        finally:
            self._items.put(None)

    def take(self, count: int) -> list[StreamEvent]:
        deadline = time.monotonic() + TAKE_TIMEOUT
        events: list[StreamEvent] = []
        while len(events) < count:
            try:
                item = self._items.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                raise AssertionError(f"got {len(events)} of {count} events; last: {events[-1:]}") from None
            if item is None:
                raise AssertionError(f"iteration ended after {len(events)} of {count} events")
            if isinstance(item, Exception):
                raise item
            events.append(item)
        return events

    def close(self) -> None:
        self.sub.close()
        self._thread.join(5)
        assert not self._thread.is_alive(), "close() did not end the iteration"


def consumer_threads(sub: Subscriber) -> list[threading.Thread]:
    return [thread for thread in threading.enumerate() if thread.name == f"metricstream-subscriber-{sub.url}"]
