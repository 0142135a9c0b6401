"""The floor of a POST on hypercorn: a bare ASGI app that does nothing a server could skip.

    .venv/bin/python benchmarks/floor_asgi.py --port 0

For `run.py --floor` and `post_cost.py`. Every POST's body is read, parsed with orjson and answered 201
with a small JSON body; `GET /healthz` answers 200 (so the runner sees it up). Nothing is checked,
stored or published: what single POSTs cost here is hypercorn's HTTP/1.1 path and the least an app must
do, so metricstream's single-POST figure divided by this one is the share its own work leaves.
"""

from __future__ import annotations

import argparse
import asyncio
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any, Final

import orjson
from baseline_common import bind, raise_fd_limit
from hypercorn.asyncio import serve
from hypercorn.config import Config

Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

# Every answer names this id: the load generator reads a created metric's id from its answer.
ANSWER_ID: Final = "01900000-0000-7000-8000-000000000000"
_HEALTHY: Final = b'{"status":"ok"}'
# hypercorn's own keep-alive, as metricstream's serving.py sets it
KEEP_ALIVE_TIMEOUT: Final = 75


async def app(scope: MutableMapping[str, Any], receive: Receive, send: Send) -> None:
    if scope["type"] != "http":
        return
    if scope["method"] != "POST":
        await _answer(send, 200, _HEALTHY)
        return
    chunks = []
    while True:
        message = await receive()
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            break
    body = orjson.loads(b"".join(chunks))
    value = body.get("value") if isinstance(body, dict) else None
    await _answer(send, 201, orjson.dumps({"id": ANSWER_ID, "value": value}))


async def _answer(send: Send, status: int, body: bytes) -> None:
    headers = [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(body))]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, default=8093)
    args = parser.parse_args()
    raise_fd_limit()
    sock = bind(args.port)
    config = Config()
    config.bind = [f"fd://{sock.fileno()}"]
    config.accesslog = None
    config.keep_alive_timeout = KEEP_ALIVE_TIMEOUT
    print(f"floor listening on http://127.0.0.1:{sock.getsockname()[1]}", flush=True)
    asyncio.run(serve(app, config))  # type: ignore[arg-type]


if __name__ == "__main__":
    main()
