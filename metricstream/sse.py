"""Server-Sent Events framing, both ways, with no I/O: events, comments and control frames to bytes, and
bytes back to events (`SSEDecoder`, which the subscriber uses).

Every field value is written so that it cannot break framing: a value with CR or LF is split into several
`data:` lines (which a WHATWG decoder joins back with LF), and CR/LF/NUL are refused in `id:` and `event:`
where the spec gives them no escape. The JSON we send never contains a raw line break, so each event is one
`data:` line in practice. Data can't carry a CR: CR and CRLF come back as LF, as from any SSE decoder.

The decoder follows the WHATWG "event stream interpretation" rules exactly, where httpx-sse 0.4.3 does not
(it reads `retry: +5` or `retry: 5_0` through `int()`, dispatches blocks without data, keeps a leading BOM,
decodes with the charset the header names, and holds back a block that ends in CR until more bytes come).
One deliberate deviation: a `retry:` of more than 18 digits (over 30 million years) is ignored.
"""

from __future__ import annotations

import codecs
import re
from collections.abc import AsyncGenerator, AsyncIterable, Iterable, Iterator
from dataclasses import dataclass

__all__ = [
    "DISCONNECTED",
    "PING",
    "Message",
    "SSEDecoder",
    "aiter_messages",
    "encode_comment",
    "encode_event",
    "encode_retry",
    "iter_messages",
]

_LINE_BREAK = re.compile(r"\r\n|\r|\n")


def _field(name: str, value: str) -> str:
    if any(char in value for char in "\r\n\0"):
        raise ValueError(f"SSE {name} must not contain CR, LF or NUL: {value!r}")
    return f"{name}: {value}\n" if value else f"{name}:\n"


def encode_event(data: str, *, event: str | None = None, id: str | None = None) -> bytes:
    """One event block. `data` may hold any text, line breaks included."""
    if id and event and "\n" not in data and "\r" not in data and _plain(id) and _plain(event):
        return f"id: {id}\nevent: {event}\ndata: {data}\n\n".encode()  # the usual case, made quick
    head = ""
    if id is not None:
        head += _field("id", id)
    if event is not None:
        head += _field("event", event)
    lines = "".join(f"data: {line}\n" for line in _LINE_BREAK.split(data))
    return (head + lines + "\n").encode()


def _plain(value: str) -> bool:
    return "\n" not in value and "\r" not in value and "\0" not in value


def encode_comment(text: str) -> bytes:
    """Comment lines, ignored by clients; used as the heartbeat."""
    return "".join(f": {line}\n" for line in _LINE_BREAK.split(text)).encode() + b"\n"


def encode_retry(milliseconds: int) -> bytes:
    """The reconnection delay a client should use, as its own block."""
    if milliseconds < 0:
        raise ValueError("retry must be >= 0")
    return f"retry: {milliseconds}\n\n".encode()


DISCONNECTED = encode_event("disconnected")
PING = encode_comment("ping")


# --- decoding ---------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Message:
    """One dispatched event, as an EventSource hands it to its listeners."""

    data: str
    event: str = "message"
    id: str = ""  # the stream's last event id at dispatch: it carries over to events that set none
    retry: int | None = None  # the stream's reconnection time (ms) at dispatch, if it ever set one


class SSEDecoder:
    """The WHATWG event stream parser, fed the response body in chunks of any size.

    `feed(chunk)` returns the events that chunk completed. The body is UTF-8 whatever the header says,
    one leading BOM is dropped, and lines end in CR, LF or CRLF, mixed. A block is dispatched at a blank
    line only if it had a `data` field; an unfinished block at the end of the stream is dropped.
    `last_event_id` and `retry` are the stream's state, updated as soon as their fields are read.
    """

    def __init__(self) -> None:
        self._text = codecs.getincrementaldecoder("utf-8-sig")(errors="replace")
        self._partial: list[str] = []  # the line not yet ended
        self._after_cr = False  # the last chunk ended in CR: an LF opening the next one belongs to it
        self._data: list[str] = []
        self._event = ""
        self.last_event_id = ""
        self.retry: int | None = None

    def feed(self, chunk: bytes) -> list[Message]:
        text = self._text.decode(chunk)
        if not text:
            return []
        if self._after_cr and text[0] == "\n":
            text = text[1:]
        self._after_cr = text.endswith("\r")  # a line end already: nothing waits to see what follows
        *lines, rest = _LINE_BREAK.split(text)
        if not lines:
            self._partial.append(rest)
            return []
        lines[0] = "".join(self._partial) + lines[0]
        self._partial = [rest]
        return [message for line in lines if (message := self._line(line)) is not None]

    def _line(self, line: str) -> Message | None:
        if not line:
            return self._dispatch()
        name, _, value = line.partition(":")  # no colon: the whole line names a field with an empty value
        if value.startswith(" "):
            value = value[1:]
        if name == "data":
            self._data.append(value)
        elif name == "event":
            self._event = value
        elif name == "id":
            if "\0" not in value:
                self.last_event_id = value
        elif name == "retry":
            digits = value.lstrip("0") or "0"
            if value.isascii() and value.isdigit() and len(digits) <= 18:
                self.retry = int(digits)
        return None  # a comment (empty name) or an unknown field

    def _dispatch(self) -> Message | None:
        data, self._data = self._data, []
        event, self._event = self._event, ""
        if not data:
            return None
        return Message("\n".join(data), event or "message", self.last_event_id, self.retry)


def iter_messages(chunks: Iterable[bytes]) -> Iterator[Message]:
    """The events of a body read chunk by chunk, e.g. from `httpx.Response.iter_bytes()`."""
    decoder = SSEDecoder()
    for chunk in chunks:
        yield from decoder.feed(chunk)


async def aiter_messages(chunks: AsyncIterable[bytes]) -> AsyncGenerator[Message, None]:
    """`iter_messages` for an async body, e.g. `httpx.Response.aiter_bytes()`."""
    decoder = SSEDecoder()
    async for chunk in chunks:
        for message in decoder.feed(chunk):
            yield message
