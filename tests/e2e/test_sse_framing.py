"""No user-controlled string breaks the stream's framing or injects a field, through a real server: hostile
metric names arrive as one JSON data line, and a hostile Last-Event-ID comes back JSON-escaped in `reset`.
The encoder itself, for every string, is property-tested in tests/unit/stream/test_sse.py."""

from __future__ import annotations

import json
import unicodedata
from collections.abc import Callable
from urllib.parse import quote

import httpx
import pytest

from metricstream.client.subscribers import Subscriber
from metricstream.server.hub import Hub
from metricstream.wire import METRIC_CREATED
from tests.support.hostile import HOSTILE_NAMES
from tests.support.raw_stream import RawStream


def test_hostile_names_arrive_as_one_json_data_line_through_a_server(
    hub: Hub, http: httpx.Client, open_stream: Callable[..., RawStream]
) -> None:
    """Names with control characters are refused at the door (the name rule); the rest, look-alike line
    ends and field-like text included, arrive as one JSON data line. (The pure test above covers every
    string, as a name stored before the rule may hold one.)"""
    position = http.get("/metrics").headers["X-Last-Event-ID"]
    stream = open_stream(hub.url)
    stream.expect_open()
    bodies = []
    for name in HOSTILE_NAMES:
        response = http.post("/metrics", json={"name": name})
        if any(unicodedata.category(character) == "Cc" for character in name.strip()):
            assert response.status_code == 400, response.text
            assert "must not contain control characters" in response.json()["error"]
            continue
        assert response.status_code == 201, response.text
        body = response.json()
        assert body["name"] == name.strip()
        bodies.append(body)
        frame = stream.next_event()  # read off the socket, split on LF only
        assert [field for field, _ in frame.fields] == ["id", "event", "data"]
        assert frame.event == METRIC_CREATED
        assert frame.data is not None
        assert not set(frame.data) & {"\r", "\n", "\0"}
        assert json.loads(frame.data) == body
    with Subscriber(hub.url, last_event_id=position) as subscriber:  # and through the real client
        received = [event for _, event in zip(bodies, subscriber, strict=False)]
    assert [event.data for event in received] == bodies


@pytest.mark.parametrize(
    "hostile", ["x\nevent: injected", "x\r\n\r\ndata: forged", "x\rid: 9", "nul\0", "\ufeff: c"]
)
def test_a_hostile_last_event_id_comes_back_json_escaped_in_reset(
    hub: Hub, open_stream: Callable[..., RawStream], hostile: str
) -> None:
    stream = open_stream(hub.url, "last_event_id=" + quote(hostile))
    stream.expect_open()
    reset = stream.next_event()
    assert [field for field, _ in reset.fields] == ["id", "event", "data"]
    assert reset.event == "reset"
    assert reset.data is not None
    assert not set(reset.data) & {"\r", "\n", "\0"}
    assert reset.json()["last_event_id"] == hostile
