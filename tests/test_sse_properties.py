"""Property tests for SSE framing both ways: `sse.encode_event` and the subscriber's decoding path
(`sse.SSEDecoder`, fed the body in chunks cut anywhere), checked against the WHATWG event stream rules, plus
the guarantee that no user-controlled string can break framing or inject a field, through a real server.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import AsyncIterator, Callable
from typing import Any
from urllib.parse import quote

import httpx
import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from metricstream import Hub, StreamEvent, Subscriber
from metricstream.client import AsyncSubscriber
from metricstream.models import METRIC_CREATED, Event, Metric, new_id
from metricstream.sse import Message, SSEDecoder, encode_event

from .conftest import RawStream

PROPERTY = settings(max_examples=300, derandomize=True, database=None, deadline=None)
BOM = "\ufeff"
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


def decode(body: bytes, at: list[int] | None = None) -> tuple[list[Message], SSEDecoder]:
    """Every event of `body`, fed to one decoder in chunks cut at `at`."""
    decoder = SSEDecoder()
    messages = [m for chunk in cut(body, at or []) for m in decoder.feed(chunk)]
    return messages, decoder


def reference(stream: str) -> tuple[list[Message], str, int | None]:
    """The WHATWG "interpret an event stream" steps as written, over a whole decoded stream without its BOM:
    (events dispatched, last event id, reconnection time)."""
    messages: list[Message] = []
    data, event, last_id, retry = "", "", "", None
    for line in LINE_END.split(stream)[:-1]:  # what follows the last line end is unfinished: dropped
        if line == "":
            if data:
                messages.append(Message(data.removesuffix("\n"), event or "message", last_id, retry))
            data, event = "", ""
        elif line.startswith(":"):
            continue
        else:
            field, colon, value = line.partition(":")
            if colon and value.startswith(" "):
                value = value[1:]
            if field == "event":
                event = value
            elif field == "data":
                data += value + "\n"
            elif field == "id" and "\0" not in value:
                last_id = value
            elif field == "retry" and all_digits(value):
                retry = int(value)
    return messages, last_id, retry


def all_digits(value: str) -> bool:
    """The WHATWG test for `retry`, less the decoder's one deviation (over 18 digits is ignored)."""
    return value != "" and all(c in "0123456789" for c in value) and len(value.lstrip("0")) <= 18


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
@given(data=texts, event=st.none() | one_line, id=st.none() | one_line, at=cuts, bom=st.booleans())
def test_any_data_survives_encode_decode(
    data: str, event: str | None, id: str | None, at: list[int], bom: bool
) -> None:
    try:
        frame = encode_event(data, event=event, id=id)
    except ValueError:  # no escape exists for NUL in an id or event name: the encoder refuses it
        assert "\0" in (event or "") + (id or "")
        return
    messages, _ = decode((BOM.encode() if bom else b"") + frame, at)
    assert messages == [Message(normalized(data), event or "message", id or "")]


@PROPERTY
@given(data=st.text(st.characters(codec="utf-8", exclude_characters="\r")), at=cuts)
def test_data_without_cr_survives_unchanged(data: str, at: list[int]) -> None:
    messages, _ = decode(encode_event(data, event="metric_created", id="1"), at)
    assert [m.data for m in messages] == [data]


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
    messages, _ = decode(body.encode(), data.draw(cuts))
    assert messages == [
        Message(normalized(text), name or "message", str(i)) for i, (text, name) in enumerate(events)
    ]


# --- the decoder against the WHATWG rules -----------------------------------------------------------

lines = st.one_of(
    st.just(""),  # a blank line: dispatch
    st.builds(
        lambda name, sep, value: name + sep + value,
        st.sampled_from(["data", "event", "id", "retry", "Data", "dat", "datum", "", " data", "\ufeffdata"]),
        st.sampled_from([":", ": ", ":  ", ""]),
        one_line,
    ),
    st.builds(
        lambda sep, v: "retry" + sep + v, st.sampled_from([":", ": "]), st.text("0123456789", max_size=12)
    ),
    st.builds(lambda text: ":" + text, one_line),  # a comment
)


@PROPERTY
@given(body=st.lists(lines, max_size=20), bom=st.booleans(), tail=st.booleans(), data=st.data())
def test_decoder_matches_the_whatwg_steps(
    body: list[str], bom: bool, tail: bool, data: st.DataObject
) -> None:
    ends = data.draw(st.lists(st.sampled_from(["\n", "\r", "\r\n"]), min_size=len(body), max_size=len(body)))
    stream = "".join(line + end for line, end in zip(body, ends, strict=True))
    if tail:  # the stream ends mid-line
        stream += data.draw(one_line)
    stream = (BOM if bom else "") + stream
    messages, decoder = decode(stream.encode(), data.draw(cuts))
    expected, last_id, retry = reference(stream.removeprefix(BOM))  # one BOM, if any, is not the stream's
    assert messages == expected
    assert (decoder.last_event_id, decoder.retry) == (last_id, retry)


@PROPERTY
@given(value=one_line, space=st.booleans())
def test_retry_only_when_all_ascii_digits(value: str, space: bool) -> None:
    after_colon = (" " if space else "") + value
    seen = after_colon.removeprefix(" ")  # one space after the colon is not part of the value
    _, decoder = decode(f"retry:{after_colon}\n".encode())
    assert decoder.retry == (int(seen) if all_digits(seen) else None)


@pytest.mark.parametrize(
    "value", ["+5", "-5", " 5", "5 ", "5_0", "1e3", "0x10", "1.5", "\uff15", "\u0665", "", "5\0"]
)
def test_retry_rejects_what_int_accepts(value: str) -> None:
    messages, decoder = decode(f"retry: 7\n\nretry: {value}\ndata: x\n\n".encode())
    assert decoder.retry == 7
    assert [m.retry for m in messages] == [7]


def test_retry_with_leading_zeros_and_an_absurd_retry() -> None:
    assert decode(b"retry: 0000250\n")[1].retry == 250
    assert decode(b"retry: " + b"0" * 5000 + b"1\n")[1].retry == 1
    assert decode(b"retry: 5\nretry: " + b"9" * 19 + b"\n")[1].retry == 5  # the one deliberate deviation


@PROPERTY
@given(first=one_line, second=one_line)
def test_an_id_with_nul_is_ignored(first: str, second: str) -> None:
    messages, decoder = decode(f"id: {first}\ndata: a\n\nid: {second}\ndata: b\n\n".encode())
    first_id = first if "\0" not in first else ""
    second_id = second if "\0" not in second else first_id
    assert [m.id for m in messages] == [first_id, second_id]
    assert decoder.last_event_id == second_id


@PROPERTY
@given(
    block=st.lists(
        st.sampled_from(["id: 1", "event: e", "retry: 5", ": c", "x: y", "id", "event"]), max_size=6
    )
)
def test_a_block_without_data_is_not_dispatched(block: list[str]) -> None:
    messages, _ = decode(("\n".join(block) + "\n\n").encode())
    assert messages == []
    data_messages, _ = decode(("\n".join([*block, "data"]) + "\n\n").encode())
    assert [m.data for m in data_messages] == [""]  # an empty `data` field is data: dispatched, empty


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (b"data:x\n\n", [Message("x")]),
        (b"data: x\n\n", [Message("x")]),
        (b"data:  x\n\n", [Message(" x")]),
        (b"data\n\n", [Message("")]),
        (b"data:\n\n", [Message("")]),
        (b"data\ndata\n\n", [Message("\n")]),
        (b"data: a\ndata:\ndata: b\n\n", [Message("a\n\nb")]),
        (b"event\ndata: x\n\n", [Message("x")]),  # an empty event type means "message"
        (b"event: e\ndata: x\n\nid: 3\ndata: y\n\n", [Message("x", "e"), Message("y", "message", "3")]),
        (b"id: 3\ndata: x\n\nid\ndata: y\n\n", [Message("x", id="3"), Message("y")]),  # `id` alone clears it
        (b": comment\ndata: x\n: another\n\n", [Message("x")]),
        (b"data: x\r\rdata: y\r\n\r\ndata: z\n\n", [Message("x"), Message("y"), Message("z")]),
        (b"data: a\rdata: b\r\ndata: c\n\n", [Message("a\nb\nc")]),
        (b"\xef\xbb\xbfdata: x\n\n", [Message("x")]),  # one BOM dropped
        (b"\xef\xbb\xbf\xef\xbb\xbfdata: x\n\n", []),  # a second one is part of the field name
        (b"data: x\n\n\xef\xbb\xbfdata: y\n\n", [Message("x")]),  # only at the start of the stream
        (b"data: \xff\xfe\n\n", [Message("\ufffd\ufffd")]),  # invalid UTF-8 becomes U+FFFD
        (b"data: x\n", []),  # the stream ended before the blank line
        (b"data: x", []),
        ("data: \u2028\x85\x0b\n\n".encode(), [Message("\u2028\x85\x0b")]),  # not line ends in SSE
    ],
)
def test_whatwg_examples(body: bytes, expected: list[Message]) -> None:
    assert decode(body)[0] == expected
    decoder = SSEDecoder()  # and byte by byte
    assert [m for i in range(len(body)) for m in decoder.feed(body[i : i + 1])] == expected


def test_a_block_ending_in_cr_is_dispatched_at_once() -> None:
    # httpx-sse holds a trailing CR back until more bytes arrive: with a server that ends lines in CR,
    # each event would wait for the next heartbeat.
    decoder = SSEDecoder()
    assert decoder.feed(b"data: x\r\r") == [Message("x")]
    assert decoder.feed(b"\ndata: y\n\n") == [Message("y")]  # the LF pairs with the CR before it


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


# The stream, under a charset the decoder must ignore (SSE is always UTF-8); then a refusal ends the loop.
STREAM_HEADERS = {"content-type": "text/event-stream; charset=latin-1"}
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
    "\ufeffBOM first",
    ": comment-like",
    "data: z",
    "id: y",
    "event: x",
    "ünïcödé ✓ 🚀 \U0010ffff",
]


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
    messages, _ = decode(event.frame, at)
    assert len(messages) == 1
    assert (messages[0].event, messages[0].id) == (METRIC_CREATED, event.id)
    assert json.loads(messages[0].data)["name"] == name


def test_hostile_names_arrive_as_one_json_data_line_through_a_server(
    hub: Hub, http: httpx.Client, open_stream: Callable[..., RawStream]
) -> None:
    position = http.get("/metrics").headers["X-Last-Event-ID"]
    stream = open_stream(hub.url)
    stream.expect_open()
    bodies = []
    for name in HOSTILE_NAMES:
        response = http.post("/metrics", json={"name": name})
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
