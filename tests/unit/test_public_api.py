"""The package's public surface names what users need (the whole of `__all__` is checked in test_docs.py)."""

from __future__ import annotations

import metricstream


def test_public_names() -> None:
    for name in ("Hub", "MetricService", "Subscriber", "ValidationError", "NotFoundError", "HubError"):
        assert name in metricstream.__all__
        assert getattr(metricstream, name) is not None
