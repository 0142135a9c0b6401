"""Baseline 1: the stream as a user would write it with sse-starlette on uvicorn.

    .venv/bin/python benchmarks/baseline_sse_starlette.py --port 0   # prints "... listening on http://..."

Idiomatic and minimal: one unbounded `asyncio.Queue` per client, every creation put into every queue,
an async generator per client yielding `ServerSentEvent`s to `EventSourceResponse` (which encodes each
event for each client and writes one chunk per event). uvicorn runs with its defaults: with the `bench`
extra's `uvicorn[standard]` that is uvloop and httptools (`--loop asyncio --http h11` for the plain
install). Access logs are off, as in metricstream. The API part is `baseline_common.Store`.
"""

from __future__ import annotations

import argparse
import asyncio
from collections.abc import AsyncIterator

import uvicorn
from baseline_common import ApiError, Event, Store, bind, raise_fd_limit
from sse_starlette import EventSourceResponse, ServerSentEvent
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

store = Store()
clients: set[asyncio.Queue[ServerSentEvent]] = set()


def broadcast(events: list[Event]) -> None:
    for event in events:
        message = ServerSentEvent(data=event.data, event=event.type, id=event.id)
        for queue in clients:
            queue.put_nowait(message)


async def _body(request: Request) -> object:
    try:
        return await request.json()
    except (ValueError, UnicodeDecodeError):
        raise ApiError(400, "body must be JSON") from None


def _error(error: ApiError) -> Response:
    return JSONResponse({"error": error.message}, error.status)


async def create_metric(request: Request) -> Response:
    try:
        metric, event = store.add_metric(await _body(request))
    except ApiError as error:
        return _error(error)
    broadcast([event])
    return JSONResponse(metric, 201)


async def create_reading(request: Request) -> Response:
    try:
        readings, events = store.add_readings([await _body(request)])
    except ApiError as error:
        return _error(error)
    broadcast(events)
    return JSONResponse(readings[0], 201)


async def create_readings(request: Request) -> Response:
    try:
        readings, events = store.add_readings(Store.batch_items(await _body(request)))
    except ApiError as error:
        return _error(error)
    broadcast(events)
    return JSONResponse({"readings": readings}, 201)


async def watch(request: Request) -> Response:
    queue: asyncio.Queue[ServerSentEvent] = asyncio.Queue()
    clients.add(queue)

    async def stream() -> AsyncIterator[ServerSentEvent]:
        try:
            yield ServerSentEvent(data="connected", retry=2000)
            while True:
                yield await queue.get()
        finally:
            clients.discard(queue)

    return EventSourceResponse(stream())


async def healthz(request: Request) -> Response:
    return JSONResponse({"status": "ok", "clients": len(clients)})


app = Starlette(
    routes=[
        Route("/metrics", create_metric, methods=["POST"]),
        Route("/metrics/readings", create_reading, methods=["POST"]),
        Route("/metrics/readings/batch", create_readings, methods=["POST"]),
        Route("/events/watch", watch),
        Route("/healthz", healthz),
    ]
)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, default=8089)
    parser.add_argument("--loop", default="auto", help="uvicorn --loop (auto: uvloop when installed)")
    parser.add_argument("--http", default="auto", help="uvicorn --http (auto: httptools when installed)")
    args = parser.parse_args()
    raise_fd_limit()
    sock = bind(args.port)
    config = uvicorn.Config(
        app, loop=args.loop, http=args.http, access_log=False, log_level="warning", lifespan="off"
    )
    print(f"sse-starlette listening on http://127.0.0.1:{sock.getsockname()[1]}", flush=True)
    uvicorn.Server(config).run(sockets=[sock])


if __name__ == "__main__":
    main()
