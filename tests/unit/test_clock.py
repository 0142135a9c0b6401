"""`ManualClock`: time moves only when told, sleepers wake on their own loop, the wall clock steps alone;
`Deadlines`: one watchdog on a clock for many blocks of one length."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Awaitable, Callable

import pytest

from metricstream.clock import Deadlines, ManualClock, SystemClock


def test_a_manual_clock_moves_only_when_told() -> None:
    clock = ManualClock(wall=1000.0, monotonic=5.0)
    assert (clock.time(), clock.monotonic()) == (1000.0, 5.0)
    clock.advance(3600)
    assert (clock.time(), clock.monotonic()) == (4600.0, 3605.0)
    clock.step_wall(-7200)  # NTP stepped the wall clock back two hours
    assert (clock.time(), clock.monotonic()) == (-2600.0, 3605.0)
    with pytest.raises(ValueError, match="monotonic time cannot go back"):
        clock.advance(-1)


def test_sleepers_wake_in_deadline_order_when_advanced_past_them() -> None:
    clock = ManualClock()
    woke: list[str] = []

    async def sleeper(name: str, seconds: float) -> None:
        await clock.sleep(seconds)
        woke.append(name)

    async def main() -> None:
        tasks = [asyncio.create_task(sleeper(name, s)) for name, s in (("late", 20), ("soon", 5))]
        while clock.sleepers < 2:  # noqa: ASYNC110 - a count has no event; one loop turn at a time
            await asyncio.sleep(0)
        clock.advance(4.9)
        await asyncio.sleep(0)
        assert woke == []
        clock.advance(0.1)
        await tasks[1]
        assert woke == ["soon"]
        clock.advance(3600)  # far past: wakes once, not once per 20 s
        await tasks[0]
        assert woke == ["soon", "late"]
        assert clock.sleepers == 0

    asyncio.run(main())


def test_advance_from_another_thread_wakes_a_sleeper_on_its_loop() -> None:
    clock = ManualClock()
    registered = threading.Event()

    async def main() -> float:
        sleep = asyncio.create_task(clock.sleep(60))
        while clock.sleepers < 1:  # noqa: ASYNC110 - a count has no event; one loop turn at a time
            await asyncio.sleep(0)
        registered.set()
        await sleep
        return clock.monotonic()

    def advance_once_registered() -> None:
        registered.wait(5)
        clock.advance(60)

    advancer = threading.Thread(target=advance_once_registered)
    advancer.start()
    assert asyncio.run(main()) == 1060.0
    advancer.join()


def test_a_cancelled_sleeper_is_skipped() -> None:
    clock = ManualClock()

    async def main() -> None:
        task = asyncio.create_task(clock.sleep(10))
        await asyncio.sleep(0)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert clock.sleepers == 0
        clock.advance(10)  # must not try to wake the cancelled future

    asyncio.run(main())


def test_the_system_clock_is_the_machines() -> None:
    import time

    clock = SystemClock()
    assert abs(clock.time() - time.time()) < 1
    assert abs(clock.monotonic() - time.monotonic()) < 1
    asyncio.run(clock.sleep(0))


# --- Deadlines: one watchdog for many blocks of one length ------------------------------------------


async def _until(condition: Callable[[], bool]) -> None:
    """Let the loop turn until `condition` holds (a count of sleepers has no event to await)."""
    for _ in range(1000):
        if condition():
            return
        await asyncio.sleep(0)
    raise AssertionError("the condition never held")


def test_blocks_that_outlast_their_deadline_time_out_in_order_under_one_watchdog() -> None:
    clock = ManualClock()
    deadlines = Deadlines(clock, 60)
    outcome: dict[str, str] = {}
    release = asyncio.Event()

    async def block(name: str, waits_for: Awaitable[object]) -> None:
        try:
            async with deadlines.limit():
                await waits_for
            outcome[name] = "done"
        except TimeoutError:
            outcome[name] = "timed out"

    async def main() -> None:
        first = asyncio.create_task(block("first", asyncio.Event().wait()))  # never ends by itself
        await _until(lambda: clock.sleepers == 1)
        clock.advance(30)
        second = asyncio.create_task(block("second", asyncio.Event().wait()))
        quick = asyncio.create_task(block("quick", release.wait()))
        await asyncio.sleep(0)
        assert clock.sleepers == 1, "one watchdog for all the blocks, not a timer each"
        release.set()
        await quick
        clock.advance(29)
        await asyncio.sleep(0)
        assert outcome == {"quick": "done"}
        clock.advance(1)  # the first one's 60 s
        await first
        assert outcome == {"quick": "done", "first": "timed out"}
        await _until(lambda: clock.sleepers == 1)  # asleep until the second one's deadline
        clock.advance(30)
        await second
        assert outcome["second"] == "timed out"
        await _until(lambda: len(asyncio.all_tasks()) == 1)  # woke to no open block: it ended
        assert clock.sleepers == 0

    asyncio.run(main())


def test_a_cancellation_from_outside_stays_a_cancellation() -> None:
    clock = ManualClock()
    deadlines = Deadlines(clock, 60)

    async def block() -> None:
        async with deadlines.limit():
            await asyncio.Event().wait()

    async def main() -> None:
        task = asyncio.create_task(block())
        await _until(lambda: clock.sleepers == 1)
        task.cancel()  # a client that went away, a shutdown
        with pytest.raises(asyncio.CancelledError):
            await task
        clock.advance(60)  # the watchdog finds nothing to cancel, and ends
        await _until(lambda: len(asyncio.all_tasks()) == 1)

    asyncio.run(main())


def test_closing_ends_the_watchdog_and_a_new_block_starts_another() -> None:
    clock = ManualClock()
    deadlines = Deadlines(clock, 5)

    async def main() -> None:
        async with deadlines.limit():
            pass
        assert len(asyncio.all_tasks()) == 2  # this one and the watchdog, asleep until 5 s
        await deadlines.close()
        assert asyncio.all_tasks() == {asyncio.current_task()}

        async def stalled() -> None:
            async with deadlines.limit():
                clock.advance(5)
                await asyncio.Event().wait()

        with pytest.raises(TimeoutError):
            await stalled()
        await deadlines.close()

    asyncio.run(main())
