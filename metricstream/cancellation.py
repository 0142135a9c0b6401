"""Ending tasks under Python 3.11, whose `asyncio.wait_for` drops a cancellation that arrives as the awaited
operation completes (fixed in 3.12). redis-py sends every command through it, so a task that awaits Redis
may carry on after being cancelled: these two helpers make sure it does not, from either side.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

__all__ = ["cancel_and_wait", "raise_if_cancelled"]

log = logging.getLogger("metricstream")


async def cancel_and_wait(task: asyncio.Task[Any], within: float = 5.0) -> None:
    """Cancel `task` and wait for it to end, cancelling again if it swallowed the cancellation; give up,
    logged, after `within` seconds rather than hang a shutdown."""
    deadline = asyncio.get_running_loop().time() + within
    while not task.done():
        task.cancel()
        await asyncio.wait([task], timeout=0.1)
        if asyncio.get_running_loop().time() > deadline:
            log.warning("task %s did not end after cancellation", task.get_name())
            return
    if not task.cancelled() and task.exception() is not None:
        log.error("task %s failed", task.get_name(), exc_info=task.exception())


def raise_if_cancelled() -> None:
    """Raise `CancelledError` in a task that was cancelled although the await that was cancelled returned
    (a loop that carried on would keep a shutdown waiting for it forever)."""
    task = asyncio.current_task()
    if task is not None and task.cancelling():
        raise asyncio.CancelledError
