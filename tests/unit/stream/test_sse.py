"""Property tests for SSE framing both ways: `sse.encode_event`, and the subscriber's decoding path
(httpx-sse, fed the body in chunks cut anywhere), plus the guarantee that no user-controlled string can
break framing or inject a field, through a real server.

httpx-sse 0.4.3 departs from the WHATWG rules in ways a metricstream server never exercises (a leading BOM,
a charset other than UTF-8, `retry:` values `int()` accepts, blocks without data: see `client.py`), so
what is checked here is that everything the server's encoder can produce comes back intact.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import AsyncIterator, Callable
from typing import Any

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
from metricstream.stream.log import Event
from metricstream.stream.sse import encode_event
from metricstream.wire import METRIC_CREATED
from tests.support.hostile import HOSTILE_NAMES

PROPERTY = settings(max_examples=300, derandomize=True, database=None, deadline=None)
SSE_HEADERS = {"content-type": "text/event-stream; charset=utf-8"}  # what the server sends
LINE_END = re.compile(r"\r\n|\r|\n")

# Any text UTF-8 can carry, leaning on what matters to SSE: line ends, colons, spaces, NUL, BOMs, and
# look-alike line ends (NEL, LS, PS, VT, FF, FS: not line ends in SSE, though str.splitlines() and httpx's
# iter_lines() split on them).
TRICKY = "\r\n:  \0\ufeff\x85\u2028\u2029\x0b\x0c\x1c"
texts = st.text(st.one_of(st.characters(codec="utf-8"), st.sampled_from(TRICKY)))
one_line = st.text(
    st.one_of(
        st.characters(codec="utf-8", exclude_characters="\r\n"), st.sampled_from(":  \0\ufeff\x85\u2028")
    )
)


def normalized(data: str) -> str:
    """What SSE can carry of `data`: every CR and CRLF becomes LF."""
    return LINE_END.sub("\n", data)


def cut(data: bytes, cuts: list[int]) -> list[bytes]:
    """`data` in chunks, cut at the given offsets (empty chunks included)."""
    points = sorted(min(c, len(data)) for c in cuts)
    return [data[a:b] for a, b in zip([0, *points], [*points, len(data)], strict=True)]


cuts = st.lists(st.integers(min_value=0, max_value=10_000), max_size=16)


Decoded = tuple[str, str, str]  # (data, event type, last event id) of one event with data


def decode(body: bytes, at: list[int] | None = None) -> list[Decoded]:
    """Every event of `body` as the subscriber reads it: httpx-sse's `EventSource.iter_sse()` over an httpx
    body that arrives in chunks cut at `at`, less the blocks without data that it dispatches and the
    subscriber skips."""
    response = httpx.Response(200, headers=SSE_HEADERS, content=iter(cut(body, at or [])))
    return [(sse.data, sse.event, sse.id) for sse in EventSource(response).iter_sse() if sse.data]


@st.composite
def line_ends(draw: st.DrawFn, count: int) -> list[str]:
    """`count` line ends, mixed, never a CR followed by an LF of its own (that pair would be one CRLF)."""
    ends: list[str] = []
    for _ in range(count):
        choices = ["\r", "\r\n"] if ends and ends[-1] == "\r" else ["\n", "\r", "\r\n"]
        ends.append(draw(st.sampled_from(choices)))
    return ends


def with_line_ends(body: str, ends: list[str]) -> str:
    """`body`, whose lines end in LF, with each LF replaced by the next of `ends`."""
    parts = body.split("\n")
    return "".join(part + end for part, end in zip(parts, ends, strict=False)) + parts[-1]


# --- encode → decode ------------------------------------------------------------------------------


@PROPERTY
@given(data=texts, event=st.none() | one_line, id=st.none() | one_line, at=cuts)
def test_any_data_survives_encode_decode(data: str, event: str | None, id: str | None, at: list[int]) -> None:
    try:
        frame = encode_event(data, event=event, id=id)
    except ValueError:  # no escape exists for NUL in an id or event name: the encoder refuses it
        assert "\0" in (event or "") + (id or "")
        return
    expected = [(normalized(data), event or "message", id or "")] if normalized(data) else []
    assert decode(frame, at) == expected


@PROPERTY
@given(data=st.text(st.characters(codec="utf-8", exclude_characters="\r")), at=cuts)
def test_data_without_cr_survives_unchanged(data: str, at: list[int]) -> None:
    assert [got for got, _, _ in decode(encode_event(data, event="metric_created", id="1"), at)] == (
        [data] if data else []
    )


@PROPERTY
@given(events=st.lists(st.tuples(texts, one_line), max_size=8), data=st.data())
def test_a_stream_of_events_survives_in_order_with_any_line_ends(
    events: list[tuple[str, str]], data: st.DataObject
) -> None:
    events = [(text, name) for text, name in events if "\0" not in name]
    body = "".join(
        encode_event(text, event=name, id=str(i)).decode() for i, (text, name) in enumerate(events)
    )
    body = with_line_ends(body, data.draw(line_ends(body.count("\n"))))
    assert decode(body.encode(), data.draw(cuts)) == [
        (normalized(text), name or "message", str(i))
        for i, (text, name) in enumerate(events)
        if normalized(text)
    ]


# --- the subscriber's whole path: httpx body → decoder → Subscriber ------------------------------------


class _Instant(Subscriber):
    def next_delay(self) -> float:
        return 0.0


def expected_event(event_id: str, data: str) -> StreamEvent:
    try:
        value: Any = orjson.loads(data)
    except orjson.JSONDecodeError:
        value = data
    return StreamEvent(event_id, METRIC_CREATED, value)


def subscriber_stream(datas: list[str]) -> tuple[bytes, list[StreamEvent]]:
    body = b"retry: 10\n\ndata: connected\n\n"
    expected = []
    for i, data in enumerate(datas):
        body += encode_event(data, event=METRIC_CREATED, id=f"e{i}")
        if normalized(data):  # the subscriber yields only events with data: ours are JSON
            expected.append(expected_event(f"e{i}", normalized(data)))
    return body + b"data: disconnected\n\n", expected


# The stream, as the server labels it; then a refusal ends the loop.
STREAM_HEADERS = SSE_HEADERS
DONE = {"error": "done"}


def answers(first: httpx.Response) -> Callable[[httpx.Request], httpx.Response]:
    scripted = [first, httpx.Response(400, json=DONE)]
    return lambda request: scripted.pop(0)


@PROPERTY
@given(datas=st.lists(texts, max_size=6), at=cuts)
def test_subscriber_yields_every_event_whatever_the_chunking(datas: list[str], at: list[int]) -> None:
    body, expected = subscriber_stream(datas)
    received: list[StreamEvent] = []
    stream = httpx.Response(200, headers=STREAM_HEADERS, content=iter(cut(body, at)))
    with httpx.Client(transport=httpx.MockTransport(answers(stream))) as client:
        subscriber = _Instant("http://127.0.0.1:1", client=client)
        with pytest.raises(ValueError, match="done"):
            received.extend(subscriber)
    assert received == expected


@settings(max_examples=50, derandomize=True, database=None, deadline=None)
@given(datas=st.lists(texts, max_size=6), at=cuts)
def test_async_subscriber_yields_every_event_whatever_the_chunking(datas: list[str], at: list[int]) -> None:
    body, expected = subscriber_stream(datas)

    async def chunks() -> AsyncIterator[bytes]:  # an async body
        for chunk in cut(body, at):
            yield chunk

    class Instant(AsyncSubscriber):
        def next_delay(self) -> float:
            return 0.0

    async def drain(subscriber: AsyncSubscriber, received: list[StreamEvent]) -> None:
        async for event in subscriber:
            received.append(event)

    async def run() -> list[StreamEvent]:
        received: list[StreamEvent] = []
        stream = httpx.Response(200, headers=STREAM_HEADERS, content=chunks())
        async with httpx.AsyncClient(transport=httpx.MockTransport(answers(stream))) as client:
            with pytest.raises(ValueError, match="done"):
                await drain(Instant("http://127.0.0.1:1", client=client), received)
        return received

    assert asyncio.run(run()) == expected


# --- no user string can break framing ----------------------------------------------------------------


@PROPERTY
@given(name=st.one_of(texts, st.sampled_from(HOSTILE_NAMES)), at=cuts)
def test_a_metric_event_is_one_json_data_line_whatever_the_name(name: str, at: list[int]) -> None:
    event = Event.create(METRIC_CREATED, Metric(new_id(), name, None), 0.0)
    lines = event.frame.split(b"\n")
    assert lines[:2] == [f"id: {event.id}".encode(), b"event: metric_created"]
    assert lines[2].startswith(b"data: ")
    assert lines[3:] == [b"", b""]  # then the blank line that ends the block
    assert b"\r" not in event.frame
    assert b"\0" not in event.frame
    [(data, type_, event_id)] = decode(event.frame, at)
    assert (type_, event_id) == (METRIC_CREATED, event.id)
    assert json.loads(data)["name"] == name
