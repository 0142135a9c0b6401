"""metricstream: real-time metric streaming over Server-Sent Events, embeddable anywhere.

    from metricstream import Hub
    with Hub(port=0) as hub:
        metric = hub.service.create_metric("CPU Temperature")
        hub.service.create_reading(metric.id, 42.5)
"""

from __future__ import annotations

__version__ = "0.1.0"

from .app import MetricStreamApp, create_app
from .client import AsyncSubscriber, StreamEvent, Subscriber
from .errors import (
    HubError,
    MetricStreamError,
    NotFoundError,
    PayloadTooLargeError,
    UnavailableError,
    ValidationError,
)
from .models import Metric, MetricReading
from .server import Hub
from .service import AsyncMetricService, MetricService
from .settings import Settings

__all__ = [
    "AsyncMetricService",
    "AsyncSubscriber",
    "Hub",
    "HubError",
    "Metric",
    "MetricReading",
    "MetricService",
    "MetricStreamApp",
    "MetricStreamError",
    "NotFoundError",
    "PayloadTooLargeError",
    "Settings",
    "StreamEvent",
    "Subscriber",
    "UnavailableError",
    "ValidationError",
    "__version__",
    "create_app",
]
