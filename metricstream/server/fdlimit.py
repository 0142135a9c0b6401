"""Open-file limits: every SSE client holds a descriptor, and REST, the store and the process need more.

The soft RLIMIT_NOFILE is often 1,024, far under the default `max_clients` of 10,000; once streams take
every descriptor, nothing new is accepted: not a REST request, not `/healthz`, not even the stream that
would evict the oldest. So at start-up `metricstream serve`, `Hub` and `metricstream.asgi` raise the soft
limit toward the hard one (as any process may), and if `max_clients` still does not fit with
`FD_RESERVE` descriptors to spare, they lower it and say so in one log line.
"""

from __future__ import annotations

import logging

from ..settings import Settings

__all__ = ["FD_RESERVE", "fit_max_clients", "fit_settings"]

log = logging.getLogger("metricstream.server")

# Descriptors kept from streams: the listener, REST connections, the store, logs.
FD_RESERVE = 64


def fit_max_clients(max_clients: int) -> int:
    """`max_clients`, or fewer if the open-file limit (after raising it) cannot hold that many."""
    try:
        import resource
    except ImportError:  # Windows: no such limit to raise
        return max_clients
    wanted = max_clients + FD_RESERVE
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and soft < wanted:
        target = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
            soft = target
        except (ValueError, OSError):  # e.g. macOS caps it below the hard limit
            pass
    if soft == resource.RLIM_INFINITY or soft >= wanted:
        return max_clients
    fitted = max(1, soft - min(FD_RESERVE, soft // 2))
    log.warning(
        "max_clients lowered from %d to %d: the open-file limit is %d (hard %s), and %d descriptors are "
        "kept for REST and the store; raise it (ulimit -n) to hold more streams",
        max_clients,
        fitted,
        soft,
        "unlimited" if hard == resource.RLIM_INFINITY else hard,
        soft - fitted,
    )
    return fitted


def fit_settings(settings: Settings) -> Settings:
    """`settings` with `max_clients` lowered to what the open-file limit can hold."""
    max_clients = fit_max_clients(settings.max_clients)
    if max_clients == settings.max_clients:
        return settings
    return settings.model_copy(update={"max_clients": max_clients})
