"""`new_id`: canonical UUIDv7s, unique and increasing, in one thread and across many."""

from __future__ import annotations

import itertools
import threading
import uuid

import pytest

from metricstream.ids import new_id


def test_new_id_is_a_canonical_uuid7() -> None:
    text = new_id()
    parsed = uuid.UUID(text)
    assert parsed.version == 7
    assert parsed.variant == uuid.RFC_4122
    assert str(parsed) == text


def test_new_id_strictly_increasing_in_one_thread() -> None:
    ids = [new_id() for _ in range(10_000)]
    assert all(a < b for a, b in itertools.pairwise(ids))


@pytest.mark.parametrize("threads", [2, 8, 16])
def test_new_id_unique_and_ordered_across_threads(threads: int) -> None:
    per_thread = 5_000
    start = threading.Barrier(threads)
    results: list[list[str]] = [[] for _ in range(threads)]
    errors: list[BaseException] = []

    def work(out: list[str]) -> None:
        try:
            start.wait()  # all threads generate at once
            out.extend(new_id() for _ in range(per_thread))
        except BaseException as error:  # surfaced below, not lost in the thread
            errors.append(error)

    workers = [threading.Thread(target=work, args=(out,)) for out in results]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()

    assert errors == []
    every = [item for out in results for item in out]
    assert len(every) == threads * per_thread
    assert len(set(every)) == len(every)
    for out in results:  # each thread sees its own ids in increasing order
        assert all(a < b for a, b in itertools.pairwise(out))
    assert all(uuid.UUID(item).version == 7 for item in every)


def test_new_id_keeps_increasing_across_many_threads_interleaved() -> None:
    """Ids collected in one shared list under a lock are in the order they were made."""
    order_lock = threading.Lock()
    shared: list[str] = []
    start = threading.Barrier(8)

    def work() -> None:
        start.wait()
        for _ in range(2_000):
            with order_lock:
                shared.append(new_id())

    workers = [threading.Thread(target=work) for _ in range(8)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    assert len(shared) == 16_000
    assert shared == sorted(shared)
    assert len(set(shared)) == len(shared)
