"""The exceptions (`metricstream/errors.py`) carry the standard library's meaning too."""

from __future__ import annotations

from metricstream.errors import HubError, MetricStreamError, NotFoundError, ValidationError


def test_error_classes_carry_the_stdlib_meaning() -> None:
    assert issubclass(ValidationError, ValueError)
    assert issubclass(ValidationError, MetricStreamError)
    assert issubclass(NotFoundError, LookupError)
    assert issubclass(NotFoundError, MetricStreamError)
    assert issubclass(HubError, MetricStreamError)


def test_a_missing_optional_package_is_an_import_error_answered_501() -> None:
    from metricstream.errors import MissingDependencyError

    assert issubclass(MissingDependencyError, ImportError)
    assert MissingDependencyError("needs pyarrow").status_code == 501
