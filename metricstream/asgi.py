"""`hypercorn metricstream.asgi:app`: the app configured from `METRICSTREAM_*` variables.

Under a server other than our own runner, streams end at that server's graceful shutdown (after its
graceful timeout), when the app's lifespan shutdown tells every client `disconnected`.
"""

from __future__ import annotations

from .app import create_app

app = create_app()
