"""Baseline 2: the stream as a user would write it with aiohttp and aiohttp-sse.

    .venv/bin/python benchmarks/baseline_aiohttp.py --port 0   # prints "... listening on http://..."

Idiomatic and minimal, following aiohttp-sse's README: one unbounded `asyncio.Queue` per client, every
creation put into every queue, and a handler per client that loops `await response.send(...)` inside
`async with sse_response(request)` (one encode and one write per event per client). aiohttp's own server
(`web.run_app`) on the default asyncio loop; access logs off, as in metricstream. The API part is
`baseline_common.Store`.
"""

from __future__ import annotations

import argparse
import asyncio

from aiohttp import web
from aiohttp_sse import sse_response
from baseline_common import ApiError, Event, Store, bind, raise_fd_limit

store = Store()
clients: set[asyncio.Queue[Event]] = set()


def broadcast(events: list[Event]) -> None:
    for event in events:
        for queue in clients:
            queue.put_nowait(event)


async def _body(request: web.Request) -> object:
    try:
        return await request.json()
    except (ValueError, UnicodeDecodeError):
        raise ApiError(400, "body must be JSON") from None


def _error(error: ApiError) -> web.Response:
    return web.json_response({"error": error.message}, status=error.status)


async def create_metric(request: web.Request) -> web.Response:
    try:
        metric, event = store.add_metric(await _body(request))
    except ApiError as error:
        return _error(error)
    broadcast([event])
    return web.json_response(metric, status=201)


async def create_reading(request: web.Request) -> web.Response:
    try:
        readings, events = store.add_readings([await _body(request)])
    except ApiError as error:
        return _error(error)
    broadcast(events)
    return web.json_response(readings[0], status=201)


async def create_readings(request: web.Request) -> web.Response:
    try:
        readings, events = store.add_readings(Store.batch_items(await _body(request)))
    except ApiError as error:
        return _error(error)
    broadcast(events)
    return web.json_response({"readings": readings}, status=201)


async def watch(request: web.Request) -> web.StreamResponse:
    queue: asyncio.Queue[Event] = asyncio.Queue()
    async with sse_response(request) as response:
        clients.add(queue)
        try:
            await response.send("connected", retry=2000)
            while response.is_connected():
                event = await queue.get()
                await response.send(event.data, id=event.id, event=event.type)
        finally:
            clients.discard(queue)
    return response


async def healthz(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok", "clients": len(clients)})


def create_app() -> web.Application:
    app = web.Application()
    app.router.add_post("/metrics", create_metric)
    app.router.add_post("/metrics/readings", create_reading)
    app.router.add_post("/metrics/readings/batch", create_readings)
    app.router.add_get("/events/watch", watch)
    app.router.add_get("/healthz", healthz)
    return app


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, default=8089)
    args = parser.parse_args()
    raise_fd_limit()
    sock = bind(args.port)
    print(f"aiohttp-sse listening on http://127.0.0.1:{sock.getsockname()[1]}", flush=True)
    web.run_app(create_app(), sock=sock, access_log=None, print=None, shutdown_timeout=2.0)


if __name__ == "__main__":
    main()
