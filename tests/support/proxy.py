"""A fault-injecting TCP proxy for tests: forwards 127.0.0.1:<free port> to a server and can cut every open
connection at once, the way a flaky network or a restarting load balancer would, or one at random.

Two threads per connection copy bytes each way. `cut()` resets every current connection (SO_LINGER 0, so
both ends see a reset rather than an orderly end of stream); `cut_random(rng)` resets one of them, chosen
by the caller's seeded `random.Random`; new connections keep being accepted.
"""

from __future__ import annotations

import contextlib
import random
import socket
import struct
import threading
from types import TracebackType
from urllib.parse import urlsplit

__all__ = ["FaultProxy"]

_RESET_ON_CLOSE = struct.pack("ii", 1, 0)  # SO_LINGER on, 0 s: close() sends RST and drops unsent data


class _Link:
    """One proxied connection: the client's socket and ours to the server."""

    def __init__(self, downstream: socket.socket, upstream: socket.socket, serial: int = 0) -> None:
        self.sockets = (downstream, upstream)
        self.serial = serial  # accept order, so a seeded choice among open links is reproducible
        self._lock = threading.Lock()
        self._pumps_left = 2
        self.aborted = False

    def abort(self) -> None:
        """Wake both pumps; the last one to finish closes the sockets with a reset."""
        with self._lock:
            if self.aborted:
                return
            self.aborted = True
            for sock in self.sockets:
                with contextlib.suppress(OSError):
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, _RESET_ON_CLOSE)
                    # SHUT_RD sends nothing to the peer but makes a blocked recv() return b"".
                    sock.shutdown(socket.SHUT_RD)

    def pump_done(self) -> None:
        # Sockets are closed only once neither pump uses them, so a recycled descriptor is never written.
        with self._lock:
            self._pumps_left -= 1
            last = self._pumps_left == 0
        if last:
            for sock in self.sockets:
                sock.close()


class FaultProxy:
    """`FaultProxy(server_url)` listens on 127.0.0.1:0; `.url` is its address. Use it as a context manager."""

    def __init__(self, target_url: str) -> None:
        parts = urlsplit(target_url)
        if parts.hostname is None or parts.port is None:
            raise ValueError(f"need a URL with host and port, got {target_url!r}")
        self._target = (parts.hostname, parts.port)
        self._listener = socket.create_server(("127.0.0.1", 0))
        host, port = self._listener.getsockname()[:2]
        self.url = f"http://{host}:{port}"
        self._changed = threading.Condition()
        self._links: set[_Link] = set()
        self._threads: list[threading.Thread] = []
        self._closed = False
        self.accepted = 0  # connections ever accepted
        self.cuts = 0  # connections reset by cut() or cut_random()
        self._acceptor = threading.Thread(target=self._accept_loop, name="fault-proxy-accept", daemon=True)
        self._acceptor.start()

    @property
    def active(self) -> int:
        """Connections open right now."""
        with self._changed:
            return len(self._links)

    def wait_for_accepted(self, count: int, timeout: float = 10) -> None:
        """Block until `count` connections have been accepted in total."""
        with self._changed:
            if not self._changed.wait_for(lambda: self.accepted >= count, timeout):
                raise AssertionError(f"proxy accepted {self.accepted} connections, waited for {count}")

    def cut(self) -> int:
        """Reset every open connection; returns how many there were."""
        with self._changed:
            links = list(self._links)
            self._links.clear()
            self.cuts += len(links)
        for link in links:
            link.abort()
        return len(links)

    def cut_random(self, rng: random.Random) -> bool:
        """Reset one open connection, chosen with `rng`; False if none was open."""
        with self._changed:
            if not self._links:
                return False
            link = rng.choice(sorted(self._links, key=lambda open_link: open_link.serial))
            self._links.discard(link)
            self.cuts += 1
        link.abort()
        return True

    def close(self) -> None:
        """Stop accepting, cut every connection and wait for the proxy's threads."""
        with self._changed:
            self._closed = True
        # accept() is not woken by closing the listener on every OS; a connection wakes it everywhere.
        with contextlib.suppress(OSError), socket.create_connection(self._listener.getsockname()[:2], 1):
            pass
        self._acceptor.join(5)
        self._listener.close()
        self.cut()
        for thread in self._threads:
            thread.join(5)

    def __enter__(self) -> FaultProxy:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def _accept_loop(self) -> None:
        while True:
            try:
                downstream, _ = self._listener.accept()
            except OSError:
                return
            if self._closed:
                downstream.close()
                return
            try:
                upstream = socket.create_connection(self._target, timeout=5)
            except OSError:
                downstream.close()
                continue
            upstream.settimeout(None)
            link = _Link(downstream, upstream, self.accepted)
            with self._changed:
                if self._closed:
                    for sock in link.sockets:
                        sock.close()
                    return
                self._links.add(link)
                self.accepted += 1
                self._changed.notify_all()
            # Forget finished pumps, so a long run with many connections does not pile them up.
            self._threads = [thread for thread in self._threads if thread.is_alive()]
            for source, sink in (link.sockets, link.sockets[::-1]):
                thread = threading.Thread(target=self._pump, args=(link, source, sink), daemon=True)
                self._threads.append(thread)
                thread.start()

    def _pump(self, link: _Link, source: socket.socket, sink: socket.socket) -> None:
        try:
            # A cut stops the flow at once, even if bytes are still arriving or buffered.
            while (data := source.recv(65536)) and not link.aborted:
                sink.sendall(data)
        except OSError:
            pass
        finally:
            link.abort()  # either side ending ends the whole connection
            with self._changed:
                self._links.discard(link)
            link.pump_done()
