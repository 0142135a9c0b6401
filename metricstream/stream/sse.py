"""Server-Sent Events framing with no I/O: events, comments and control frames to bytes. (The subscriber
decodes with httpx-sse; `client/subscribers.py` says where that departs from WHATWG, and why it cannot
matter.)

Every field value is written so that it cannot break framing: a value with CR or LF is split into several
`data:` lines (which a WHATWG decoder joins back with LF), and CR/LF/NUL are refused in `id:` and `event:`
where the spec gives them no escape. The JSON we send never contains a raw line break, so each event is one
`data:` line in practice. Data can't carry a CR: CR and CRLF come back as LF, as from any SSE decoder.
"""

from __future__ import annotations

import re

__all__ = ["DISCONNECTED", "PING", "encode_comment", "encode_event", "encode_retry", "plain"]

_LINE_BREAK = re.compile(r"\r\n|\r|\n")


def _field(name: str, value: str) -> str:
    if any(char in value for char in "\r\n\0"):
        raise ValueError(f"SSE {name} must not contain CR, LF or NUL: {value!r}")
    return f"{name}: {value}\n" if value else f"{name}:\n"


def encode_event(data: str, *, event: str | None = None, id: str | None = None) -> bytes:
    """One event block. `data` may hold any text, line breaks included."""
    if id and event and "\n" not in data and "\r" not in data and plain(id) and plain(event):
        return f"id: {id}\nevent: {event}\ndata: {data}\n\n".encode()  # the usual case, made quick
    head = ""
    if id is not None:
        head += _field("id", id)
    if event is not None:
        head += _field("event", event)
    lines = "".join(f"data: {line}\n" for line in _LINE_BREAK.split(data))
    return (head + lines + "\n").encode()


def plain(value: str) -> bool:
    """Whether `value` may stand on one field line as it is."""
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
