"""Exceptions raised by metricstream.

    MetricStreamError
    ├── ValidationError      (also a ValueError)   bad input           → HTTP 400
    ├── NotFoundError        (also a LookupError)  no such metric      → HTTP 404
    ├── LimitExceededError                         a configured limit reached → HTTP 409
    ├── PayloadTooLargeError (also a ValueError)   body over the limit → HTTP 413
    ├── UnavailableError                           shutting down, store down → HTTP 503
    ├── HubError             (also a RuntimeError) a Hub could not start or was misused
    └── SubscriptionError    (also a ValueError)   a server refused a subscription (client side)

The HTTP layer maps them to status codes in one place (`app.py`); the message is what a client reads in
`{"error": ...}` and what a Python caller reads in `str(exc)`.
"""

from __future__ import annotations

__all__ = [
    "HubError",
    "LimitExceededError",
    "MetricStreamError",
    "NotFoundError",
    "PayloadTooLargeError",
    "SubscriptionError",
    "UnavailableError",
    "ValidationError",
]


class MetricStreamError(Exception):
    """Base class of every error metricstream raises on purpose.

    `errors` details a batch: one `{"index": i, "error": "..."}` per rejected item.
    """

    status_code = 500

    def __init__(self, message: str, errors: list[dict[str, object]] | None = None) -> None:
        super().__init__(message)
        self.errors = errors or []

    @property
    def message(self) -> str:
        return str(self.args[0]) if self.args else self.__class__.__name__


class ValidationError(MetricStreamError, ValueError):
    status_code = 400


class NotFoundError(MetricStreamError, LookupError):
    status_code = 404


class LimitExceededError(MetricStreamError):
    """A valid request the server refuses because a configured limit is reached (HTTP 409)."""

    status_code = 409


class PayloadTooLargeError(MetricStreamError, ValueError):
    status_code = 413


class UnavailableError(MetricStreamError):
    status_code = 503


class HubError(MetricStreamError, RuntimeError):
    pass


class SubscriptionError(MetricStreamError, ValueError):
    """A server refused a subscription for good: a bad filter (400), a missing or wrong token (401), no
    stream at that URL (404), an answer that is not an event stream, or HTTP 204 ("stop reconnecting").
    `status` is the HTTP status it answered."""

    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.status = status
