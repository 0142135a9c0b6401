"""Exceptions raised by metricstream.

    MetricStreamError
    ├── ValidationError      (also a ValueError)   bad input           → HTTP 400
    ├── UnauthorizedError                          no or a wrong token → HTTP 401 (HTTP only)
    ├── ForbiddenError                             a Host not answered → HTTP 403 (HTTP only)
    ├── NotFoundError        (also a LookupError)  no such metric      → HTTP 404
    ├── MethodNotAllowedError                      a method a path does not take → HTTP 405 (HTTP only)
    ├── LimitExceededError                         a configured limit reached → HTTP 409
    ├── ConflictError                              a name several metrics share → HTTP 409
    ├── RequestTimeoutError                        a body that did not arrive → HTTP 408 (HTTP only)
    ├── PayloadTooLargeError (also a ValueError)   body over the limit → HTTP 413
    ├── UnsupportedMediaTypeError                  a body not JSON     → HTTP 415 (HTTP only)
    ├── EvaluationError                            a query too large to answer → HTTP 422 (HTTP only)
    ├── TooManyRequestsError                       too many wrong tokens → HTTP 429 (HTTP only)
    ├── MissingDependencyError (also an ImportError) an optional package missing → HTTP 501 (HTTP only)
    ├── UnavailableError                           shutting down, store down → HTTP 503
    │   └── QueryTimeoutError                      a query out of time → HTTP 503 (HTTP only)
    ├── HubError             (also a RuntimeError) a Hub could not start or was misused
    └── SubscriptionError    (also a ValueError)   a server refused a subscription (client side)

Each class carries its HTTP status (`status_code`), and an error may carry response headers (`headers`,
e.g. `WWW-Authenticate`), as Starlette's `HTTPException` does; `web/answers.py` turns any of them into
`{"error": message}` with that status and those headers, for every route. The message is what a client
reads in `{"error": ...}` and what a Python caller reads in `str(exc)`. The HTTP-only ones are not
exported: no Python API call raises them.
"""

from __future__ import annotations

__all__ = [
    "ConflictError",
    "EvaluationError",
    "ForbiddenError",
    "HubError",
    "LimitExceededError",
    "MethodNotAllowedError",
    "MetricStreamError",
    "MissingDependencyError",
    "NotFoundError",
    "PayloadTooLargeError",
    "QueryTimeoutError",
    "RequestTimeoutError",
    "SubscriptionError",
    "TooManyRequestsError",
    "UnauthorizedError",
    "UnavailableError",
    "UnsupportedMediaTypeError",
    "ValidationError",
]


class MetricStreamError(Exception):
    """Base class of every error metricstream raises on purpose.

    `errors` details a batch: one `{"index": i, "error": "..."}` per rejected item.
    """

    status_code = 500

    def __init__(
        self,
        message: str,
        errors: list[dict[str, object]] | None = None,
        *,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.errors = errors or []
        self.headers = headers or {}

    @property
    def message(self) -> str:
        return str(self.args[0]) if self.args else self.__class__.__name__


class ValidationError(MetricStreamError, ValueError):
    status_code = 400


class UnauthorizedError(MetricStreamError):
    """A request without the token it needs (HTTP 401, with `WWW-Authenticate` in `headers`)."""

    status_code = 401


class ForbiddenError(MetricStreamError):
    """A request to a Host this server does not answer to (HTTP 403)."""

    status_code = 403


class RequestTimeoutError(MetricStreamError):
    """A request body that did not arrive in time (HTTP 408)."""

    status_code = 408


class TooManyRequestsError(MetricStreamError):
    """A client address with too many wrong tokens (HTTP 429, with `Retry-After` in `headers`)."""

    status_code = 429


class UnsupportedMediaTypeError(MetricStreamError):
    status_code = 415


class NotFoundError(MetricStreamError, LookupError):
    status_code = 404


class MethodNotAllowedError(MetricStreamError):
    """A method a path does not take (HTTP 405, with `Allow` in `headers`)."""

    status_code = 405


class LimitExceededError(MetricStreamError):
    """A valid request the server refuses because a configured limit is reached (HTTP 409)."""

    status_code = 409


class ConflictError(MetricStreamError):
    """A valid request the stored state makes ambiguous: a write by a name several metrics have (HTTP 409)."""

    status_code = 409


class PayloadTooLargeError(MetricStreamError, ValueError):
    status_code = 413


class MissingDependencyError(MetricStreamError, ImportError):
    """What was asked for needs an optional package this installation lacks (pyarrow for an Arrow or
    Parquet export): HTTP 501, since the request is fine and another server could answer it."""

    status_code = 501


class EvaluationError(MetricStreamError):
    """A well-formed query that cannot be answered: it would hold too many samples, or gives two series
    of the same labels (HTTP 422, Prometheus's `execution` error)."""

    status_code = 422


class UnavailableError(MetricStreamError):
    status_code = 503


class QueryTimeoutError(UnavailableError):
    """A query that did not finish within its time (HTTP 503, Prometheus's `timeout` error)."""


class HubError(MetricStreamError, RuntimeError):
    pass


class SubscriptionError(MetricStreamError, ValueError):
    """A server refused a subscription for good: a bad filter (400), a missing or wrong token (401), no
    stream at that URL (404), an answer that is not an event stream, or HTTP 204 ("stop reconnecting").
    `status` is the HTTP status it answered."""

    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.status = status
