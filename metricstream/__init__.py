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

from .client import AsyncSubscriber, StreamEvent, Subscriber
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

__version__ = "0.1.0"

# A library stays quiet unless the application configures logging (`metricstream serve` does).
logging.getLogger("metricstream").addHandler(logging.NullHandler())

if TYPE_CHECKING:
    from .application import MetricStreamApp, create_app
    from .blocking import MetricService
    from .buckets import Bucket
    from .dataframe import to_dataframe
    from .models import Metric, MetricReading, Snapshot
    from .paging import Page
    from .server import Hub
    from .service import AsyncMetricService
    from .settings import Settings

_LAZY = {
    "AsyncMetricService": ".service",
    "Bucket": ".buckets",
    "Hub": ".server",
    "Metric": ".models",
    "MetricReading": ".models",
    "Snapshot": ".models",
    "MetricService": ".blocking",
    "Page": ".paging",
    "MetricStreamApp": ".application",
    "Settings": ".settings",
    "create_app": ".application",
    "to_dataframe": ".dataframe",
}

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
    "create_app",
    "to_dataframe",
]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'metricstream' has no attribute {name!r}")
    value = getattr(importlib.import_module(module, __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
