"""HTTP/2: finish reading a request's body before the answer ends its stream.

Over HTTP/1.1 a refusal that leaves the body unread (401 before the body, 413) says `connection: close`
and the connection goes. Over HTTP/2 the connection carries other streams, a dashboard's or a
subscriber's, and must stay; but hypercorn 0.18 ends the whole connection when body data arrives for a
stream it has already closed (a `KeyError` in its h2 protocol: pgjones/hypercorn#329). So on an HTTP/2
request the last piece of an answer waits until the body is in: read by whoever reads it (Quart reads every
body in a task of its own), or here, and thrown away. Bounded: past `limit` bytes or `DRAIN_TIMEOUT`
seconds the answer goes anyway, and only that client's connection can suffer.
"""

from __future__ import annotations

import asyncio
from collections.abc import MutableMapping
from typing import TYPE_CHECKING, Any, Final

from .types import Receive, Send

if TYPE_CHECKING:
    from ..clock import Clock

__all__ = ["DRAIN_TIMEOUT", "guard_body"]

# Seconds an answer waits for the rest of a body it does not need.
DRAIN_TIMEOUT: Final = 10.0


def guard_body(receive: Receive, send: Send, limit: int, clock: Clock) -> tuple[Receive, Send]:
    """`receive` and `send` for an HTTP/2 request whose final body message waits for the request body."""
    # Set once the body is in (or the client has gone); `readers` counts calls of receive under way.
    complete = asyncio.Event()
    readers = 0
    drained = 0

    async def guarded_receive() -> MutableMapping[str, Any]:
        nonlocal readers
        readers += 1
        try:
            message = await receive()
        finally:
            readers -= 1
        if message["type"] != "http.request" or not message.get("more_body", False):
            complete.set()
        return message

    async def drain() -> None:
        nonlocal drained
        while not complete.is_set() and drained <= limit:
            if readers:  # someone else reads it (Quart's body task): wait for them
                await complete.wait()
            else:
                drained += len((await guarded_receive()).get("body", b""))

    async def guarded_send(message: MutableMapping[str, Any]) -> None:
        final = message["type"] == "http.response.body" and not message.get("more_body", False)
        if final and not complete.is_set():
            drainer = asyncio.ensure_future(drain())
            timer = asyncio.ensure_future(clock.sleep(DRAIN_TIMEOUT))  # the one injectable clock
            try:
                await asyncio.wait((drainer, timer), return_when=asyncio.FIRST_COMPLETED)
            finally:
                drainer.cancel()
                timer.cancel()
        await send(message)

    return guarded_receive, guarded_send
