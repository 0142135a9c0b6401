"""Strings that try to break SSE framing or inject a field: line ends of every kind, look-alike line ends,
field-like text, NUL, a BOM. For the encoder's property tests and for the same names sent through a server."""

from __future__ import annotations

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
