"""The demo feed's walk (`service/demo.py`): within its bounds, a walk and not a jump, and where each metric
starts; and a feed that ends even when its cancellation is swallowed. `Hub(demo=True)` end to end:
tests/e2e/test_demo.py."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import random
from typing import Any, cast

import pytest

import metricstream.service.demo as demo_module
from metricstream.domain.values import Metric
from metricstream.service.demo import DEMO_METRICS, GENERIC_WALK, Walk, step, walk_for
from tests.support.subscribers import TAKE_TIMEOUT

BOUNDS = {metric.name: metric.walk for metric in DEMO_METRICS}


@pytest.mark.parametrize("walk", [*BOUNDS.values(), GENERIC_WALK, Walk(0.5, 1.5, 1.0)])
def test_a_walk_stays_within_its_bounds_and_above_zero(walk: Walk) -> None:
    rng = random.Random(7)
    value = walk.start
    seen = []
    for _ in range(20_000):
        value = step(walk, value, rng)
        seen.append(value)
    assert all(walk.low <= value <= walk.high for value in seen)
    assert min(seen) > 0
    assert all(value == round(value, 2) for value in seen)
    assert len(set(seen)) > min(1000, (walk.high - walk.low) * 50)  # it does wander
    steps = [abs(after - before) for before, after in itertools.pairwise(seen)]
    assert max(steps) < (walk.high - walk.low) * 0.25  # a walk, not a jump around the range


def test_a_walk_survives_a_step_longer_than_its_range() -> None:
    class Huge(random.Random):
        def gauss(self, mu: float = 0.0, sigma: float = 1.0) -> float:
            return 1e6

    assert 1.0 <= step(Walk(1.0, 2.0, 1.5), 1.5, Huge()) <= 2.0


def test_walk_for_a_metric() -> None:
    cpu = Metric("id", "CPU Temperature", 1.0)
    assert walk_for(cpu, None) == BOUNDS["CPU Temperature"]
    assert walk_for(cpu, 61.5).start == 61.5  # goes on from its newest reading
    assert walk_for(cpu, 500.0) == BOUNDS["CPU Temperature"]  # unless that is out of its range
    other = Metric("id", "Disk Queue", None)
    assert walk_for(other, None) == GENERIC_WALK
    assert walk_for(other, 2000.0) == Walk(1000.0, 3000.0, 2000.0)  # plausible for that metric


def test_the_feed_ends_even_when_its_cancellation_is_swallowed() -> None:
    """On Python 3.11 `asyncio.wait_for` (through which redis-py sends commands) can drop a cancellation."""

    class SwallowingService:
        def __init__(self) -> None:
            self.writing = asyncio.Event()
            self.writes = 0
            self.storage = self

        async def list_readings(self, metric_id: str, **_: object) -> list[object]:
            return []

        async def create_reading(self, metric_id: str, value: float) -> None:
            self.writes += 1
            self.writing.set()
            with contextlib.suppress(asyncio.CancelledError):  # swallowed as wait_for may, without uncancel()
                await asyncio.sleep(1)

    async def main() -> None:
        service = SwallowingService()
        metric = Metric("id", "Swallowed", 0.01)
        feed = asyncio.create_task(demo_module.run_demo(cast(Any, service), [metric]))
        await service.writing.wait()
        feed.cancel()
        done, _ = await asyncio.wait([feed], timeout=TAKE_TIMEOUT)
        assert done == {feed}
        assert feed.cancelled()
        assert service.writes == 1

    asyncio.run(main())
