"""`ManualClock`: time moves only when told, sleepers wake on their own loop, the wall clock steps alone."""

from __future__ import annotations

import asyncio
import threading

import pytest

from metricstream.clock import ManualClock, SystemClock


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
