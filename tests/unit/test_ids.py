"""`new_id` and `new_ids`: canonical UUIDv7s (RFC 9562), unique and increasing, in one thread and across
many, whatever the floor `ensure_ids_after` sets; checked against uuid6's own parser."""

from __future__ import annotations

import itertools
import threading
import uuid

import pytest
import uuid6
from hypothesis import given, settings
from hypothesis import strategies as st

from metricstream.ids import IdMaker, new_id, new_ids

# The low 62 bits of a UUIDv7, below its variant: what a millisecond's ids count up in.
RAND_B = (1 << 62) - 1


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


def assert_uuid7(text: str) -> uuid6.UUID:
    """`text` is a canonical UUIDv7 as uuid6 reads one: version 7, RFC 9562's variant."""
    parsed = uuid6.UUID(text)
    assert parsed.version == 7, text
    assert parsed.variant == uuid.RFC_4122, text
    assert str(parsed) == text
    return parsed


class StillClock:
    """Unix milliseconds that move only when told: a millisecond that lasts as long as a test wants."""

    def __init__(self, milliseconds: int = 1_780_000_000_000) -> None:
        self.now = milliseconds

    def __call__(self) -> int:
        return self.now


@settings(max_examples=200)
@given(st.lists(st.integers(min_value=1, max_value=300), min_size=1, max_size=20))
def test_batches_of_ids_are_valid_and_ascending(counts: list[int]) -> None:
    made = [text for count in counts for text in new_ids(count)]
    assert len(made) == sum(counts)
    for text in made:
        assert_uuid7(text)
    assert all(a < b for a, b in itertools.pairwise(made))
    # text order is integer order: the stores and the log compare ids as text
    assert [uuid.UUID(text).int for text in made] == sorted(uuid.UUID(text).int for text in made)


@settings(max_examples=100)
@given(st.lists(st.tuples(st.integers(0, 3), st.integers(1, 40)), min_size=1, max_size=30))
def test_ids_carry_the_clocks_millisecond_and_count_up_within_it(steps: list[tuple[int, int]]) -> None:
    """Each id's time is the clock's millisecond; within one, ids count up by one from the first, whose
    74 random bits are drawn afresh for every new millisecond."""
    clock = StillClock()
    maker = IdMaker(clock)
    previous: uuid6.UUID | None = None
    for advance, count in steps:
        clock.now += advance
        made = [assert_uuid7(text) for text in maker.new_ids(count)]
        assert all(parsed.time == clock.now for parsed in made)
        assert [p.int for p in made] == list(range(made[0].int, made[0].int + count))
        if previous is not None:
            assert made[0].int > previous.int
            if advance == 0:
                assert made[0].int == previous.int + 1
        previous = made[-1]


def test_a_new_millisecond_draws_new_random_bits() -> None:
    clock = StillClock()
    maker = IdMaker(clock)
    firsts = []
    for _ in range(50):
        clock.now += 1
        firsts.append(uuid.UUID(maker.new_ids(1)[0]).int & ((0xFFF << 64) | RAND_B))
    assert len(set(firsts)) == 50


@settings(max_examples=200)
@given(
    milliseconds=st.integers(min_value=0, max_value=(1 << 47)),
    rand_a=st.integers(min_value=0, max_value=0xFFF),
    rand_b=st.integers(min_value=0, max_value=RAND_B),
    count=st.integers(min_value=1, max_value=50),
    behind=st.booleans(),
)
def test_ids_after_any_uuid7_floor_are_valid_and_greater(
    milliseconds: int, rand_a: int, rand_b: int, count: int, behind: bool
) -> None:
    """Wherever the floor is, ahead of the clock or behind it, with its counter all but spent or not, the
    next ids are UUIDv7s above it: counting up never carries into the variant."""
    clock = StillClock(milliseconds + 1 if behind else milliseconds)
    maker = IdMaker(clock)
    floor = uuid6.UUID(int=(milliseconds << 80) | (rand_a << 64) | rand_b, version=7)
    maker.ensure_after(str(floor))
    made = [assert_uuid7(text) for text in maker.new_ids(count)]
    assert made[0].int > floor.int
    assert all(a.int < b.int for a, b in itertools.pairwise(made))
    if not behind and rand_b + count <= RAND_B:
        # the clock stands at the floor's millisecond, with room to count: counted up from it
        assert [p.int for p in made] == [floor.int + 1 + i for i in range(count)]
    elif not behind:
        assert made[0].time == milliseconds + 1, "a spent counter moves a millisecond on"


@pytest.mark.parametrize(
    "floor",
    [
        uuid.UUID(int=0x0190_0000_0000_0000_0000_0000_0000_0005),
        uuid.UUID("01900000-0000-4fff-bfff-fffffffffff0"),
    ],
    ids=["no version bits", "a uuid4"],
)
def test_ids_after_a_floor_of_another_kind_are_uuid7s_above_it(floor: uuid.UUID) -> None:
    """A stored id from elsewhere (not a UUIDv7) is not counted on from: ids start past its millisecond."""
    maker = IdMaker(StillClock(floor.int >> 80))
    maker.ensure_after(str(floor))
    made = [assert_uuid7(text) for text in maker.new_ids(4)]
    assert made[0].int > floor.int
    assert made[0].time == (floor.int >> 80) + 1


def test_a_forked_child_draws_its_next_id_afresh_past_the_parents() -> None:
    """After a fork, parent and child could both count on from the last id; the child does not."""
    clock = StillClock()
    maker = IdMaker(clock)
    last = uuid6.UUID(maker.new_ids(1)[0])
    maker.forked()  # what the process's maker runs in a child of os.fork
    child = assert_uuid7(maker.new_ids(1)[0])
    assert child.int > last.int
    assert child.time > last.time, "the child counted on from the parent's last id"


@settings(max_examples=25, deadline=None)
@given(threads=st.integers(min_value=2, max_value=6), count=st.integers(min_value=1, max_value=5))
def test_batches_in_many_threads_are_unique_and_each_threads_ascending(threads: int, count: int) -> None:
    """On a clock that stands still, every id of every thread comes from counting in one millisecond."""
    maker = IdMaker(StillClock())
    start = threading.Barrier(threads)
    results: list[list[str]] = [[] for _ in range(threads)]

    def work(out: list[str]) -> None:
        start.wait()
        for _ in range(300):
            out.extend(maker.new_ids(count))

    workers = [threading.Thread(target=work, args=(out,)) for out in results]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    every = [text for out in results for text in out]
    assert len(set(every)) == len(every) == threads * 300 * count
    for out in results:
        assert all(a < b for a, b in itertools.pairwise(out))
    ordered = sorted(uuid.UUID(text).int for text in every)
    assert ordered == list(range(ordered[0], ordered[0] + len(ordered)))  # no gap, no repeat
    for text in every[:: max(1, len(every) // 200)]:
        assert_uuid7(text)


@pytest.mark.parametrize("count", [1, 2, 3])
@pytest.mark.parametrize("node", [(1 << 48) - 3, (1 << 48) - 2, (1 << 48) - 1])
def test_ids_counting_past_the_last_group_are_written_whole(node: int, count: int) -> None:
    """Text is written per group only while counting up leaves the others alone; across the last
    group's end each id is written whole, as `uuid.UUID` writes it."""
    clock = StillClock()
    floor = uuid6.UUID(int=(clock.now << 80) | (0x123 << 64) | (0b1011 << 48) | node, version=7)
    maker = IdMaker(clock)
    maker.ensure_after(str(floor))
    made = maker.new_ids(count)
    assert made == [str(uuid.UUID(int=floor.int + 1 + i)) for i in range(count)]
