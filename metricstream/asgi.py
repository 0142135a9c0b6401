"""`hypercorn metricstream.asgi:app`: the app configured from `METRICSTREAM_*` variables.

Deviation: ASGI tells an app nothing when its server begins to stop, so under a server other than our own
runner (`metricstream serve`, `Hub`) open streams are cut when that server's graceful timeout runs out
(hypercorn's `--graceful-timeout`, 3 s by default), without `data: disconnected`: a client sees a dropped
connection. Only then does the lifespan shutdown run.
"""

from __future__ import annotations

from .server.fdlimit import fit_settings
from .settings import Settings
from .web.application import MetricStreamApp

app = MetricStreamApp(fit_settings(Settings.build()))
