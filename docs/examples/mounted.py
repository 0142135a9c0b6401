"""metricstream mounted under `/ms` in a Starlette app (FastAPI: `app.mount("/ms", metricstream_app)`).

    hypercorn docs/examples/mounted.py:app --bind 127.0.0.1:8000

Then the dashboard is at http://127.0.0.1:8000/ms/, the API at /ms/metrics and the stream at
/ms/events/watch. Starlette does not pass its lifespan on to a mounted app, so this app's lifespan runs
metricstream's: it starts the store and the stream's heartbeats, and ends every stream on shutdown.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Mount, Route

from metricstream.web.application import create_app

metricstream_app = create_app()  # settings as keyword arguments, or METRICSTREAM_* variables


@contextlib.asynccontextmanager
async def lifespan(app: Starlette) -> AsyncIterator[None]:
    async with metricstream_app.lifespan():
        yield


async def home(request: Request) -> PlainTextResponse:
    return PlainTextResponse("My app. Live metrics: /ms/\n")


app = Starlette(routes=[Route("/", home), Mount("/ms", app=metricstream_app)], lifespan=lifespan)
