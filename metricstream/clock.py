"""Time, from one injectable place.

Wall time (`time()`) stamps events and readings and decides what has outlived its TTL; monotonic time
(`monotonic()`) paces heartbeats, sweeps and write timeouts: `sleep()` waits in it, and `timeout()` bounds a
block by it without a task of its own. `Deadlines` bounds many blocks of one length (every request's body)
with one watchdog for all of them, where a timer each would cost every request more. `SystemClock` is the
real one and the default everywhere. `ManualClock` moves only when told: tests advance it by hours in
milliseconds, and step its wall clock back or forward alone, as NTP or a suspended laptop does.

Nothing reads `time.time()` or `time.monotonic()` for these purposes but through a clock: a quiet period, a
restart or a clock step is then something a test can make happen, not wait for.
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import itertools
import threading
import time
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager
from typing import NamedTuple, Protocol

__all__ = ["Clock", "Deadlines", "ManualClock", "SystemClock"]


class Clock(Protocol):
    def time(self) -> float:
        """Wall-clock seconds since the Unix epoch; may step back or forward."""
        ...

    def monotonic(self) -> float:
        """Seconds that only ever grow, for durations."""
        ...

    async def sleep(self, seconds: float) -> None:
        """Wait `seconds` of monotonic time."""
        ...

    def timeout(self, seconds: float) -> AbstractAsyncContextManager[object]:
        """`async with clock.timeout(s):` cancels the block after `s` seconds of monotonic time and raises
        `TimeoutError`, as `asyncio.timeout` does, in the block's own task."""
        ...


class SystemClock:
    """The machine's clocks."""

    def time(self) -> float:
        return time.time()

    def monotonic(self) -> float:
        return time.monotonic()

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)

    def timeout(self, seconds: float) -> AbstractAsyncContextManager[object]:
        return asyncio.timeout(seconds)

    def __repr__(self) -> str:
        return "SystemClock()"


class ManualClock:
    """A clock that moves only when `advance()` or `step_wall()` is called, from any thread.

    Its wall clock starts at the real time by default, so ids and stores that read their own clock (uuid6,
    Redis) stay near it. A sleeper or timeout whose deadline `advance()` passes is woken, or fires, on its
    own event loop.
    """

    def __init__(self, wall: float | None = None, monotonic: float = 1_000.0) -> None:
        self._lock = threading.Lock()
        self._wall = time.time() if wall is None else wall
        self._monotonic = monotonic
        self._order = itertools.count()  # ties in the heap never compare futures
        self._waiters: list[tuple[float, int, asyncio.AbstractEventLoop, _Waiter]] = []

    def __repr__(self) -> str:
        return f"ManualClock(wall={self._wall!r}, monotonic={self._monotonic!r})"

    def time(self) -> float:
        return self._wall

    def monotonic(self) -> float:
        return self._monotonic

    async def sleep(self, seconds: float) -> None:
        if seconds <= 0:
            await asyncio.sleep(0)
            return
        loop = asyncio.get_running_loop()
        future: asyncio.Future[None] = loop.create_future()
        self._wait(seconds, loop, _Waiter(lambda: not future.done(), lambda: _wake(future)))
        # A cancelled sleeper stays in the heap until its deadline passes; then it is skipped.
        await future

    @contextlib.asynccontextmanager
    async def timeout(self, seconds: float) -> AsyncIterator[object]:
        loop = asyncio.get_running_loop()
        async with asyncio.timeout(None) as scope:  # no deadline of the loop's: advance() sets one
            inside = True

            def fire() -> None:
                if inside:
                    scope.reschedule(loop.time())  # due now: cancels the block, as a deadline would

            self._wait(seconds, loop, _Waiter(lambda: inside, fire))
            try:
                yield scope
            finally:
                inside = False

    def _wait(self, seconds: float, loop: asyncio.AbstractEventLoop, waiter: _Waiter) -> None:
        with self._lock:
            heapq.heappush(self._waiters, (self._monotonic + seconds, next(self._order), loop, waiter))
        if seconds <= 0:
            self.advance(0)

    @property
    def sleepers(self) -> int:
        """Sleepers and timeouts not yet due: how many tasks wait on this clock."""
        with self._lock:
            return sum(1 for *_, waiter in self._waiters if waiter.pending())

    def advance(self, seconds: float) -> None:
        """Move both clocks forward by `seconds` and wake every sleeper now due."""
        if seconds < 0:
            raise ValueError("monotonic time cannot go back; use step_wall() for the wall clock")
        with self._lock:
            self._monotonic += seconds
            self._wall += seconds
            due = []
            while self._waiters and self._waiters[0][0] <= self._monotonic:
                _, _, loop, waiter = heapq.heappop(self._waiters)
                due.append((loop, waiter))
        for loop, waiter in due:
            if not loop.is_closed():
                loop.call_soon_threadsafe(waiter.fire)

    def step_wall(self, seconds: float) -> None:
        """Step the wall clock alone, back (negative) or forward; monotonic time does not move."""
        with self._lock:
            self._wall += seconds


class _Waiter(NamedTuple):
    """A task waiting on a `ManualClock`: whether it still waits, and what wakes it (on its loop)."""

    pending: Callable[[], bool]
    fire: Callable[[], None]


def _wake(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


class Deadlines:
    """`seconds` of a clock's monotonic time for each of many blocks, kept by one watchdog task rather than
    a timer per block: `async with deadlines.limit():` cancels a block that outlasts them and raises
    `TimeoutError`, as `async with clock.timeout(seconds):` does, in the block's own task.

    Every block has the same length, so deadlines come in the order blocks start and the watchdog sleeps
    until the oldest open one's. It starts with the first block after a quiet spell, on that block's loop,
    and ends when it wakes to find none open; `close()` ends it at once (a shutdown).
    """

    def __init__(self, clock: Clock, seconds: float) -> None:
        self.clock, self.seconds = clock, seconds
        # The open blocks, oldest first: in order of their deadlines.
        self._open: dict[_Limit, None] = {}
        self._watchdog: asyncio.Task[None] | None = None

    def limit(self) -> _Limit:
        return _Limit(self)

    @property
    def open(self) -> int:
        """Blocks under a deadline now."""
        return len(self._open)

    async def close(self) -> None:
        """End the watchdog; a block that opens afterwards starts another."""
        watchdog, self._watchdog = self._watchdog, None
        if watchdog is None or watchdog.done():
            return
        watchdog.cancel()
        if watchdog.get_loop() is asyncio.get_running_loop():  # else its loop is gone, and it with it
            with contextlib.suppress(asyncio.CancelledError):
                await watchdog

    def _opened(self, limit: _Limit) -> None:
        self._open[limit] = None
        if self._watchdog is None:
            self._watchdog = asyncio.get_running_loop().create_task(
                self._watch(), name="metricstream-deadlines"
            )

    async def _watch(self) -> None:
        try:
            while self._open:
                oldest = next(iter(self._open))
                wait = oldest.deadline - self.clock.monotonic()
                if wait > 0:
                    await self.clock.sleep(wait)
                    continue
                del self._open[oldest]
                oldest.expire()
        finally:
            if self._watchdog is asyncio.current_task():
                self._watchdog = None


class _Limit:
    """One block under `Deadlines`: its task, its deadline, and whether the watchdog cancelled it."""

    __slots__ = ("_cancelling", "_deadlines", "_expired", "_task", "deadline")

    def __init__(self, deadlines: Deadlines) -> None:
        self._deadlines = deadlines
        self._expired = False

    async def __aenter__(self) -> None:
        task = asyncio.current_task()
        if task is None:
            raise RuntimeError("Deadlines.limit() is for a task")
        self._task, self._cancelling = task, task.cancelling()
        deadlines = self._deadlines
        self.deadline = deadlines.clock.monotonic() + deadlines.seconds
        deadlines._opened(self)

    async def __aexit__(
        self, kind: type[BaseException] | None, error: BaseException | None, _: object
    ) -> None:
        self._deadlines._open.pop(self, None)
        # As asyncio.timeout: our cancellation, and no other pending, becomes a TimeoutError.
        if self._expired and kind is asyncio.CancelledError and self._task.uncancel() <= self._cancelling:
            raise TimeoutError from error

    def expire(self) -> None:
        self._expired = True
        self._task.cancel()
