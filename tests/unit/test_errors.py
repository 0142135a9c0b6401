"""The exceptions (`metricstream/errors.py`) carry the standard library's meaning too."""

from __future__ import annotations

from metricstream.errors import HubError, MetricStreamError, NotFoundError, ValidationError


def test_error_classes_carry_the_stdlib_meaning() -> None:
    assert issubclass(ValidationError, ValueError)
    assert issubclass(ValidationError, MetricStreamError)
    assert issubclass(NotFoundError, LookupError)
    assert issubclass(NotFoundError, MetricStreamError)
    assert issubclass(HubError, MetricStreamError)
