"""`Storage.latest_readings` on every store (what `GET /metrics/export` reads): each metric's newest reading
by timestamp then id, whatever order they were written in, metrics in creation order, those without
readings left out; after a trim, a cap and a deletion too."""

from __future__ import annotations

from metricstream.domain.values import Metric, MetricReading
from metricstream.ids import new_id
from metricstream.storage.base import Storage
from metricstream.storage.rows import moment
from metricstream.stream.log import Event
from metricstream.wire import METRIC_DELETED
from tests.support.stores import add_readings, new_metric, on_store

SECOND = 1_000_000  # microseconds


def pairs(found: list[tuple[Metric, MetricReading]]) -> list[tuple[str, float]]:
    return [(metric.id, reading.value) for metric, reading in found]


def test_the_newest_reading_of_each_metric_by_timestamp_then_id(store_url: str) -> None:
    async def scenario(store: Storage) -> None:
        # written out of order: the newest by timestamp is not the last written
        first, _ = await new_metric(store, [(5 * SECOND, 5.0), (9 * SECOND, 9.0), (7 * SECOND, 7.0)])
        empty, _ = await new_metric(store)
        # two at one time: the larger id (written later, as ids grow) is the newer
        tied, _ = await new_metric(store, [(3 * SECOND, 1.0), (3 * SECOND, 2.0)])
        found = await store.latest_readings()
        assert pairs(found) == [(first, 9.0), (tied, 2.0)]
        assert empty not in {metric.id for metric, _ in found}
        newest = found[0][1]
        assert (newest.metric_id, newest.timestamp) == (first, moment(9 * SECOND))
        assert found[0][0].name == f"m-{first}"

    on_store(store_url, scenario)


def test_a_later_write_a_cap_a_trim_and_a_deletion_are_seen(store_url: str) -> None:
    async def scenario(store: Storage) -> None:
        kept, _ = await new_metric(store, [(1 * SECOND, 1.0), (2 * SECOND, 2.0)])
        capped, _ = await new_metric(store, [(5 * SECOND, 1.0)])
        trimmed, _ = await new_metric(store, [(1 * SECOND, 1.0)])
        deleted, _ = await new_metric(store, [(4 * SECOND, 4.0)])
        await add_readings(store, [MetricReading(new_id(), kept, 3.0, moment(3 * SECOND))])
        # a write capped at one reading keeps the newest by timestamp: the older one written now goes
        await add_readings(store, [MetricReading(new_id(), capped, 0.5, moment(0))], keep=1)
        await store.trim_readings(moment(2 * SECOND - 1))  # trimmed's only reading, not kept's newest
        gone = Event.create(METRIC_DELETED, Metric(deleted, "x"), 1.0)
        assert await store.delete_metric(deleted, gone)
        assert pairs(await store.latest_readings()) == [(kept, 3.0), (capped, 1.0)]
        assert trimmed not in {metric.id for metric, _ in await store.latest_readings()}

    on_store(store_url, scenario)


def test_no_metric_no_reading(store_url: str) -> None:
    async def scenario(store: Storage) -> None:
        assert await store.latest_readings() == []

    on_store(store_url, scenario)
