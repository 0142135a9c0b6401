"""The API on a bare ASGI app on hypercorn, no framework, for `run.py --bare-api`.

    .venv/bin/python benchmarks/bare_api_hypercorn.py --port 0 [--loop uvloop]

Not a baseline a user would pick, but a measure: the same API and stream as metricstream with none of its
checks, limits or replay, so the fan-out figures can tell metricstream's share from the server's. (Not
the floor of a POST: its ingest validates and stores as the baselines do; `floor_asgi.py` is that.)
The API part is `baseline_common.Store` (as the baselines); each event's frame is encoded once and
written to every client from one shared list, a cursor per client, as metricstream does, with no limits,
no replay and no eviction. One `send` per write, as any ASGI app must.
"""

from __future__ import annotations

import argparse
import asyncio
import json
from typing import Any

from baseline_common import ApiError, Event, Store, bind, raise_fd_limit
from hypercorn.asyncio import serve
from hypercorn.config import Config

store = Store()
frames: list[bytes] = []
waiting: set[asyncio.Future[None]] = set()
clients = 0
JSON = [(b"content-type", b"application/json")]


def publish(events: list[Event]) -> None:
    frames.extend(f"id: {e.id}\nevent: {e.type}\ndata: {e.data}\n\n".encode() for e in events)
    for future in waiting:
        if not future.done():
            future.set_result(None)
    waiting.clear()


async def answer(send: Any, status: int, body: object) -> None:
    data = json.dumps(body).encode()
    headers = [*JSON, (b"content-length", b"%d" % len(data))]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": data})


async def read_body(receive: Any) -> object:
    chunks = []
    while True:
        message = await receive()
        chunks.append(message.get("body", b""))
        if not message.get("more_body"):
            break
    try:
        return json.loads(b"".join(chunks))
    except ValueError:
        raise ApiError(400, "body must be JSON") from None


async def stream(receive: Any, send: Any) -> None:
    """One client: a cursor into `frames`, one future to wait on; a listener task notices it leave."""
    global clients
    headers = [(b"content-type", b"text/event-stream"), (b"cache-control", b"no-cache")]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send(
        {"type": "http.response.body", "body": b"retry: 2000\n\ndata: connected\n\n", "more_body": True}
    )
    clients += 1
    await receive()  # the (empty) request body; the next message is http.disconnect
    loop = asyncio.get_running_loop()
    gone = False
    future: asyncio.Future[None] | None = None

    async def listen() -> None:
        nonlocal gone
        await receive()
        gone = True
        if future is not None and not future.done():
            future.set_result(None)

    listener = asyncio.ensure_future(listen())
    cursor = len(frames)
    try:
        while not gone:
            if cursor < len(frames):
                chunk = frames[cursor] if cursor + 1 == len(frames) else b"".join(frames[cursor:])
                cursor = len(frames)
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
                continue
            future = loop.create_future()
            waiting.add(future)
            await future
    finally:
        clients -= 1
        listener.cancel()


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] != "http":
        return
    method, path = scope["method"], scope["path"]
    try:
        if method == "GET" and path == "/events/watch":
            await stream(receive, send)
        elif method == "GET" and path == "/healthz":
            await answer(send, 200, {"status": "ok", "clients": clients})
        elif method == "POST" and path == "/metrics":
            metric, event = store.add_metric(await read_body(receive))
            publish([event])
            await answer(send, 201, metric)
        elif method == "POST" and path == "/metrics/readings":
            readings, events = store.add_readings([await read_body(receive)])
            publish(events)
            await answer(send, 201, readings[0])
        elif method == "POST" and path == "/metrics/readings/batch":
            readings, events = store.add_readings(Store.batch_items(await read_body(receive)))
            publish(events)
            await answer(send, 201, {"readings": readings})
        else:
            await answer(send, 404, {"error": "not found"})
    except ApiError as error:
        await answer(send, error.status, {"error": error.message})


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, default=8092)
    parser.add_argument("--loop", choices=["asyncio", "uvloop"], default="asyncio")
    args = parser.parse_args()
    raise_fd_limit()
    sock = bind(args.port)
    config = Config()
    config.bind = [f"fd://{sock.fileno()}"]
    config.accesslog = None
    config.keep_alive_timeout = 75
    print(f"floor listening on http://127.0.0.1:{sock.getsockname()[1]}", flush=True)
    if args.loop == "uvloop":
        import uvloop

        uvloop.run(serve(app, config))  # type: ignore[arg-type]
    else:
        asyncio.run(serve(app, config))  # type: ignore[arg-type]


if __name__ == "__main__":
    main()
