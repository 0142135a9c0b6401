"""metricstream: real-time metric streaming over Server-Sent Events, embeddable anywhere.

    from metricstream import Hub
    with Hub(port=0) as hub:
        metric = hub.service.create_metric("CPU Temperature")
        hub.service.create_reading(metric.id, 42.5)

The server side (Quart, hypercorn) is imported on first use, so `Subscriber` works where only the client
dependencies are installed.
"""

from __future__ import annotations

import importlib
import logging
from typing import TYPE_CHECKING, Any

from .client.core import StreamEvent
from .client.subscribers import AsyncSubscriber, Subscriber
from .errors import (
    ConflictError,
    HubError,
    LimitExceededError,
    MetricStreamError,
    NotFoundError,
    PayloadTooLargeError,
    SubscriptionError,
    UnavailableError,
    ValidationError,
)
from .wire import __version__

# A library stays quiet unless the application configures logging (`metricstream serve` does).
logging.getLogger("metricstream").addHandler(logging.NullHandler())

if TYPE_CHECKING:
    from .domain.buckets import Bucket
    from .domain.paging import Page
    from .domain.values import Metric, MetricReading, Snapshot
    from .notebook.chart import remote_chart as chart
    from .notebook.dataframe import to_dataframe
    from .server.hub import Hub
    from .service.metric_service import MetricService
    from .service.use_cases import AsyncMetricService
    from .settings import Settings
    from .web.application import MetricStreamApp, create_app

_LAZY = {
    "AsyncMetricService": ".service.use_cases",
    "Bucket": ".domain.buckets",
    "Hub": ".server.hub",
    "Metric": ".domain.values",
    "MetricReading": ".domain.values",
    "Snapshot": ".domain.values",
    "MetricService": ".service.metric_service",
    "Page": ".domain.paging",
    "MetricStreamApp": ".web.application",
    "Settings": ".settings",
    "chart": ".notebook.chart",
    "create_app": ".web.application",
    "to_dataframe": ".notebook.dataframe",
}

_RENAMED = {"chart": "remote_chart"}

__all__ = [
    "AsyncMetricService",
    "AsyncSubscriber",
    "Bucket",
    "ConflictError",
    "Hub",
    "HubError",
    "LimitExceededError",
    "Metric",
    "MetricReading",
    "MetricService",
    "MetricStreamApp",
    "MetricStreamError",
    "NotFoundError",
    "Page",
    "PayloadTooLargeError",
    "Settings",
    "Snapshot",
    "StreamEvent",
    "Subscriber",
    "SubscriptionError",
    "UnavailableError",
    "ValidationError",
    "__version__",
    "chart",
    "create_app",
    "to_dataframe",
]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'metricstream' has no attribute {name!r}")
    # `chart` is the remote one; `Hub.chart` is the same for a hub of this process.
    value = getattr(importlib.import_module(module, __name__), _RENAMED.get(name, name))
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
