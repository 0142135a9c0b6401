"""Serving an app on hypercorn: the socket we bind ourselves (so `port=0` reports the port it got, and
accepted connections inherit our buffer and timeout options), `serve_app` until a stop event, and `run`,
`metricstream serve` in the foreground. Shutdown ends every stream first and only then fires hypercorn's
trigger, so it takes milliseconds instead of hypercorn's graceful timeout.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import ipaddress
import logging
import signal
import socket
import sys
from collections.abc import Callable
from typing import Any, cast

from hypercorn.asyncio import serve
from hypercorn.config import Config

from ..errors import HubError, ValidationError
from ..settings import Settings
from ..storage.base import Storage
from ..web.application import MetricStreamApp
from .fdlimit import fit_settings
from .line_listener import LineListener
from .tls import ALPN, check_certificate

__all__ = ["bind_socket", "exposure_warning", "is_loopback", "loop_factory", "run", "serve_app", "url_of"]

log = logging.getLogger("metricstream.server")


# The send buffer of each connection; the kernel doubles it for its own bookkeeping.
SEND_BUFFER = 128 * 1024


def bind_socket(host: str, port: int, write_timeout: float = 10.0) -> socket.socket:
    """A listening TCP socket; a busy port raises `HubError` naming it.

    Accepted connections inherit two options from it:
    - a send buffer of `SEND_BUFFER` bytes (not the kernel's autotuned megabytes), so a client that stops
      reading backs up into the app soon, where `client_buffer` and `write_timeout` drop it and say why;
    - TCP_USER_TIMEOUT of 3 x `write_timeout`: the kernel aborts a connection whose data stays
      unacknowledged that long: a dead peer, or one that stopped reading altogether (its window stays
      shut). Such a peer could not read `disconnected` anyway; it is counted as gone, and frees its
      resources even if the app never saw it stall (a trickle of events fits in the buffers).
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, SEND_BUFFER)
        if hasattr(socket, "TCP_USER_TIMEOUT"):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_USER_TIMEOUT, int(write_timeout * 3000))
        sock.bind((host, port))
        sock.listen(2048)
    except OSError as error:
        sock.close()
        raise HubError(f"cannot listen on {host}:{port}: {error.strerror or error}") from None
    sock.setblocking(False)
    return sock


def is_loopback(sock: socket.socket) -> bool:
    """Whether `sock` is bound to a loopback address (127.0.0.0/8, ::1), reachable from this machine only."""
    try:
        return ipaddress.ip_address(str(sock.getsockname()[0]).partition("%")[0]).is_loopback
    except ValueError:
        return False


def exposure_warning(sock: socket.socket) -> str:
    address, port = sock.getsockname()[:2]
    return (
        f"listening on {address}:{port} without a token: anyone who can reach this port can create "
        "metrics and readings. Set a token (METRICSTREAM_TOKEN, or token= in Python) or keep host at "
        "127.0.0.1; see docs/security.md."
    )


def url_of(sock: socket.socket, tls: bool = False) -> str:
    host, port = sock.getsockname()[:2]
    host = {"0.0.0.0": "127.0.0.1", "::": "::1"}.get(host, host)
    scheme = "https" if tls else "http"
    return f"{scheme}://[{host}]:{port}" if ":" in host else f"{scheme}://{host}:{port}"


def loop_factory(settings: Settings) -> Callable[[], asyncio.AbstractEventLoop] | None:
    """What makes the server's event loop: asyncio's own (None), or uvloop's for `loop="uvloop"`."""
    if settings.loop == "asyncio":
        return None
    try:
        import uvloop
    except ImportError:
        raise ValidationError(
            'loop="uvloop" needs uvloop: pip install "metricstream[uvloop]" (not on Windows)'
        ) from None
    return uvloop.new_event_loop


# Seconds an idle keep-alive connection is held (nginx's default).
KEEP_ALIVE_TIMEOUT = 75.0


async def serve_app(
    app: MetricStreamApp,
    sock: socket.socket,
    stop: asyncio.Event,
    on_started: Callable[[], None] | None = None,
    line_sock: socket.socket | None = None,
) -> None:
    """Serve `app` on `sock` (and line protocol on `line_sock`) until `stop` is set, then shut down
    gracefully."""
    try:
        # Here, not in the ASGI lifespan, so a store that is down fails plainly.
        await app.startup()
    except BaseException:
        sock.close()
        raise
    lines = asyncio.create_task(LineListener(app, line_sock).serve()) if line_sock is not None else None
    config = Config()
    config.bind = [f"fd://{sock.detach()}"]
    config.graceful_timeout = app.settings.shutdown_timeout / 2
    config.errorlog = log
    config.accesslog = None
    # Longer than clients keep an idle connection (httpx: 5 s, hypercorn's default too), so the client
    # ends it: a server closing it just as the client reuses it fails that request.
    config.keep_alive_timeout = KEEP_ALIVE_TIMEOUT
    # TLS on our own socket too: hypercorn wraps fd:// binds.
    if app.settings.certfile is not None:
        config.certfile, config.keyfile = app.settings.certfile, app.settings.keyfile
        config.alpn_protocols = list(ALPN)

    async def announce() -> None:
        await app.started.wait()
        if on_started is not None:
            on_started()

    async def shutdown_trigger() -> None:
        await stop.wait()
        await app.drain(app.settings.shutdown_timeout / 2)  # the other half is hypercorn's

    asyncio.get_running_loop().set_exception_handler(_quiet_connection_errors)
    announcer = asyncio.create_task(announce())
    try:
        await serve(cast(Any, app), config, shutdown_trigger=shutdown_trigger)
    finally:
        announcer.cancel()
        if lines is not None:
            lines.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await lines
        _abort_connections()


def _abort_connections() -> None:
    """Drop connections still open once the graceful period is over: a peer that stopped reading
    keeps unsent bytes, and closing would wait for them forever. asyncio's selector loop keeps its
    transports in `_transports` (not public API; absent elsewhere, where this does nothing)."""
    transports = getattr(asyncio.get_running_loop(), "_transports", {})
    for transport in list(transports.values()):
        if isinstance(transport, asyncio.Transport):
            transport.abort()


def _quiet_connection_errors(loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
    # A peer that vanished (reset, or aborted by TCP_USER_TIMEOUT) is routine, not an error.
    if isinstance(context.get("exception"), OSError):
        log.debug("connection closed: %s", context.get("exception"))
        return
    loop.default_exception_handler(context)


def run(settings: Settings, storage: Storage | None = None, *, quiet: bool = False) -> None:
    """Serve in the foreground until Ctrl+C or SIGTERM, then shut down gracefully."""
    # This process is ours: collect young garbage less often. Ingest allocates many short-lived
    # objects, and with the default threshold (700) collections took ~30% of a 10,000-reading batch.
    # (A Hub leaves the GC alone: it lives in someone else's process.)
    gc.set_threshold(50_000, 20, 20)
    # A bad store URL, or a loop that is not installed, fails here, before the port is taken.
    app = MetricStreamApp(fit_settings(settings), storage)
    new_loop = loop_factory(settings)
    check_certificate(settings)
    sock = bind_socket(settings.host, settings.port, settings.write_timeout)
    line_sock = None
    if settings.line_port is not None:
        line_sock = bind_socket(settings.host, settings.line_port, settings.write_timeout)
    url = url_of(sock, tls=settings.certfile is not None)
    exposed = not is_loopback(sock)
    if settings.token is None and exposed:  # even with --quiet
        print(f"metricstream: warning: {exposure_warning(sock)}", file=sys.stderr, flush=True)

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, stop.set)

        def started() -> None:
            if not quiet:
                print(f"metricstream listening on {url} (Ctrl+C to stop)", flush=True)
                if line_sock is not None:
                    where = url.rsplit(":", 1)[0].split("://", 1)[1]
                    print(f"metricstream: line protocol on {where}:{line_sock.getsockname()[1]}", flush=True)
                for note in _start_notes(settings, exposed):
                    print(f"metricstream: note: {note}", flush=True)

        await serve_app(app, sock, stop, started, line_sock)

    with asyncio.Runner(loop_factory=new_loop) as runner:
        runner.run(main())


def _start_notes(settings: Settings, exposed: bool) -> list[str]:
    """What `metricstream serve` notes about access at start (the warning for an exposed one apart)."""
    notes = []
    if settings.token is None and not exposed:
        notes.append(
            "no token is set, so writes are not authenticated; listening on loopback only, so only this "
            "machine can reach it (set METRICSTREAM_TOKEN before binding another --host)"
        )
    if settings.token is not None and settings.subscribe_token is None and exposed:
        notes.append("reads and the stream are open to anyone who can reach this port (no subscribe_token)")
    return notes
