"""`RawStream`: `GET /events/watch` over HTTP/1.1 on a plain socket, so tests can see every frame byte for
byte, stop reading (a slow client) or vanish (a dead peer): things a friendly client library hides."""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit


@dataclass
class Frame:
    """One SSE block as sent: its fields in order, comments apart."""

    fields: list[tuple[str, str]] = field(default_factory=list)
    comments: list[str] = field(default_factory=list)

    def get(self, name: str) -> str | None:
        values = [value for key, value in self.fields if key == name]
        return "\n".join(values) if values else None

    @property
    def id(self) -> str | None:
        return self.get("id")

    @property
    def event(self) -> str | None:
        return self.get("event")

    @property
    def data(self) -> str | None:
        return self.get("data")

    def json(self) -> Any:
        assert self.data is not None
        return json.loads(self.data)


class RawStream:
    """`GET /events/watch` over a bare socket, decoding chunked transfer by hand."""

    def __init__(
        self,
        url: str,
        query: str = "",
        headers: dict[str, str] | None = None,
        receive_buffer: int | None = None,
    ) -> None:
        parts = urlsplit(url)
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        if receive_buffer is not None:  # small, so a client that stops reading fills up fast
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, receive_buffer)
        self.sock.settimeout(10)
        self.sock.connect((parts.hostname, parts.port))
        lines = [f"GET /events/watch{'?' + query if query else ''} HTTP/1.1", f"Host: {parts.netloc}"]
        lines += [f"{name}: {value}" for name, value in (headers or {}).items()]
        self.sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
        self._buffer = b""
        self._body = b""
        self.chunked_done = False
        self.chunks = 0  # body chunks read: one per write the server made
        head = self._read_until(b"\r\n\r\n").decode("latin-1").split("\r\n")
        self.status = int(head[0].split()[1])
        self.headers = {
            name.strip().lower(): value.strip()
            for name, _, value in (line.partition(":") for line in head[1:])
        }

    def _recv(self, deadline: float) -> bytes:
        self.sock.settimeout(max(0.001, deadline - time.monotonic()))
        data = self.sock.recv(65536)
        if not data:
            raise EOFError("connection closed")
        return data

    def _read_until(self, marker: bytes, deadline: float | None = None) -> bytes:
        deadline = deadline or time.monotonic() + 10
        while marker not in self._buffer:
            self._buffer += self._recv(deadline)
        head, _, self._buffer = self._buffer.partition(marker)
        return head

    def _read_exact(self, size: int, deadline: float) -> bytes:
        while len(self._buffer) < size:
            self._buffer += self._recv(deadline)
        data, self._buffer = self._buffer[:size], self._buffer[size:]
        return data

    def _read_chunk(self, deadline: float) -> None:
        size = int(self._read_until(b"\r\n", deadline), 16)
        if size == 0:
            self.chunked_done = True
            raise EOFError("stream ended")
        self._body += self._read_exact(size, deadline)
        self._read_exact(2, deadline)
        self.chunks += 1

    def body(self) -> bytes:
        """The rest of a non-streaming (content-length) response."""
        return self._read_exact(int(self.headers["content-length"]), time.monotonic() + 10)

    def next_frame(self, timeout: float = 10) -> Frame:
        deadline = time.monotonic() + timeout
        while b"\n\n" not in self._body:
            self._read_chunk(deadline)
        return self._take_frame()

    def next_write(self, timeout: float = 10) -> list[Frame]:
        """The frames of the server's next write (one chunk), all read before it: the opening frames."""
        assert not self._body, "frames of an earlier write are still unread"
        self._read_chunk(time.monotonic() + timeout)
        frames = []
        while b"\n\n" in self._body:
            frames.append(self._take_frame())
        return frames

    def _take_frame(self) -> Frame:
        block, _, self._body = self._body.partition(b"\n\n")
        frame = Frame()
        for line in block.decode().split("\n"):
            name, _, value = line.partition(":")
            value = value[1:] if value.startswith(" ") else value
            if name:
                frame.fields.append((name, value))
            else:
                frame.comments.append(value)
        return frame

    def next_event(self, timeout: float = 10) -> Frame:
        """The next frame that is not a heartbeat comment."""
        while True:
            frame = self.next_frame(timeout)
            if frame.fields:
                return frame

    def read_to_end(self, timeout: float = 10) -> list[Frame]:
        """Every frame until the server ends the response or drops the connection."""
        frames = []
        try:
            while True:
                frames.append(self.next_frame(timeout))
        except (EOFError, ConnectionResetError):
            return frames

    def expect_open(self) -> None:
        """Consume the opening `retry:` and `data: connected` blocks."""
        retry = self.next_frame()
        assert retry.get("retry") is not None
        assert self.next_frame().data == "connected"

    def close(self) -> None:
        self.sock.close()


OpenStream = Callable[..., RawStream]
