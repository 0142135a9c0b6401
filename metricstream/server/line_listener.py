"""The line-protocol listener (`line_port`): Influx line protocol over TCP, as Telegraf's `socket_writer` and
sensor firmware send it, newline-separated, on the HTTP server's host (and with its TLS, when it has one).

Each read's complete lines are written as they arrive, as a batch of what passes (`service/foreign.py`); a
bad line is logged and counted (`metricstream_line_protocol_lines`) and its connection stays. Nothing is
sent back, except one `error: ...` line before a refused connection is closed. With a token set, a
connection's first line is `auth <token>`; without one the server binds loopback only, as it does for HTTP.
Timestamps are in nanoseconds, the protocol's default."""

from __future__ import annotations

import hmac
import logging
import socket
import ssl
from typing import TYPE_CHECKING, Final

import anyio
from anyio.abc import ByteStream, SocketListener
from anyio.streams.tls import TLSListener

from ..domain.line_protocol import parse_lines
from ..errors import MetricStreamError
from ..service.foreign import write_what_passes

if TYPE_CHECKING:
    from ..web.application import MetricStreamApp

__all__ = ["LineListener"]

log = logging.getLogger("metricstream")

_READ_SIZE: Final = 64 * 1024
_AUTH: Final = b"auth "


class LineListener:
    """Accepts line-protocol connections on `sock` for `app` until cancelled."""

    def __init__(self, app: MetricStreamApp, sock: socket.socket) -> None:
        self.app = app
        self.sock = sock
        token = app.settings.token
        self.token = token.get_secret_value().encode() if token is not None else None
        self.max_line = app.settings.max_body  # a longer line is refused and skipped to its end
        self.max_lines = app.settings.max_batch  # lines per write

    async def serve(self) -> None:
        listener: SocketListener | TLSListener = await SocketListener.from_socket(self.sock)
        settings = self.app.settings
        if settings.certfile is not None:
            context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            context.load_cert_chain(settings.certfile, settings.keyfile)
            listener = TLSListener(listener, context, standard_compatible=False)
        async with listener:
            await listener.serve(self._connection)

    async def _connection(self, stream: ByteStream) -> None:
        async with stream:
            try:
                await self._read(stream)
            except (anyio.EndOfStream, anyio.BrokenResourceError, anyio.ClosedResourceError, OSError):
                pass  # the client went away: what it sent whole is written already
            except ssl.SSLError as error:
                log.info("line protocol: TLS failed: %s", error)

    async def _read(self, stream: ByteStream) -> None:
        pending, skipping, authorised = b"", False, self.token is None
        while True:
            pending += await stream.receive(_READ_SIZE)
            end = pending.rfind(b"\n")
            if end < 0:
                if len(pending) > self.max_line:  # no line end in sight: drop it, and the rest of it
                    pending, skipping = b"", True
                continue
            complete, pending = pending[: end + 1], pending[end + 1 :]
            if skipping:
                complete = complete.partition(b"\n")[2]
                skipping = False
                self._refused(1, f"a line longer than {self.max_line} bytes")
            if not authorised:
                first, _, complete = complete.partition(b"\n")
                if not self._authorised(first):
                    await stream.send(b"error: the first line must be auth <token>\n")
                    return
                authorised = True
            await self._write(complete)

    def _authorised(self, line: bytes) -> bool:
        line = line.rstrip(b"\r")
        presented = line[len(_AUTH) :].strip() if line.startswith(_AUTH) else b""
        return self.token is not None and hmac.compare_digest(presented, self.token)

    async def _write(self, data: bytes) -> None:
        """The complete lines of one read, written max_batch lines at a time."""
        if data.count(b"\n") <= self.max_lines:  # the usual read: one write, the bytes as they came
            chunks = [data]
        else:
            lines = data.split(b"\n")
            chunks = [
                b"\n".join(lines[at : at + self.max_lines]) for at in range(0, len(lines), self.max_lines)
            ]
        for chunk in chunks:
            parsed = parse_lines(chunk)
            for error in parsed.errors:
                self._refused(1, error.reason)
            if not parsed.samples:
                continue
            try:
                written = await write_what_passes(self.app.service, parsed.samples)
            except MetricStreamError as error:  # the whole write: a limit, a store that is down
                self._refused(len({s.line for s in parsed.samples}), error.message)
                continue
            refused_lines = {refusal.line for refusal in written.refused}
            for refusal in written.refused:
                log.warning("line protocol: a line refused: %s", refusal.reason)
            self._refused(len(refused_lines), None)
            self.app.telemetry.lines_written.inc(len({s.line for s in parsed.samples} - refused_lines))

    def _refused(self, count: int, reason: str | None) -> None:
        if count <= 0:
            return
        if reason is not None:
            log.warning("line protocol: %d line(s) refused: %s", count, reason)
        self.app.telemetry.lines_refused.inc(count)
