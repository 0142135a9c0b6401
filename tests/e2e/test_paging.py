"""Answers cut by a limit (issue 20.11): `GET /metrics/{id}/readings` says so (`X-Truncated`) and links to
the rest (`Link: <?...&cursor=...>; rel="next"`); `hub.service.list_readings` returns a `Page` with
`truncated` and `next_cursor`, and `iter_readings` pages through everything. On every store, over real HTTP
and in Python: 2,500 readings paged through with ties in time across page boundaries and readings written
between pages, the newest N, bad cursors, and each store's cursor query against a plain reference."""

from __future__ import annotations

import asyncio
import base64
import random
import struct
from collections.abc import AsyncIterator, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qsl, urljoin

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st

from metricstream.domain.paging import CURSOR_MESSAGE, Cursor, Page
from metricstream.domain.values import MetricReading, format_timestamp
from metricstream.errors import ValidationError
from metricstream.ids import new_id
from metricstream.server.hub import Hub
from metricstream.storage.base import Storage
from tests.support.apitools import UUID7, assert_error, state
from tests.support.hubs import StartHub
from tests.support.stores import PROPERTY, new_metric, on_store

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
COUNT = 2500
TIES = 7  # readings per moment: the page boundaries (every 1,000) fall inside runs of ties


def at(seconds: float) -> str:
    return format_timestamp(T0 + timedelta(seconds=seconds))


def write_series(hub: Hub, count: int = COUNT) -> tuple[str, list[dict[str, Any]]]:
    """A metric with `count` readings, TIES to a moment, written in a shuffled order (so ids do not follow
    the values); the readings as dicts, in the order every store keeps: by (timestamp, id)."""
    metric = hub.service.create_metric("paged")
    items = [{"metric_id": metric.id, "value": i + 1, "timestamp": at(i // TIES)} for i in range(count)]
    random.Random(20).shuffle(items)
    readings = hub.service.create_readings(items)
    return metric.id, [r.to_dict() for r in sorted(readings, key=lambda r: (r.timestamp, r.id))]


def walk(http: httpx.Client, path: str, params: dict[str, str]) -> list[httpx.Response]:
    """Every page, following each answer's Link rel=next as a client would (resolved against its URL)."""
    answers = [http.get(path, params=params)]
    while True:
        answer = answers[-1]
        assert answer.status_code == 200, answer.text
        following = answer.links.get("next")
        assert answer.headers["x-truncated"] == ("false" if following is None else "true")
        if following is None:
            return answers
        assert following["url"].startswith("?")  # relative: it holds wherever the app is mounted
        answers.append(http.get(urljoin(str(answer.url), following["url"])))


def flatten(answers: Sequence[httpx.Response]) -> list[dict[str, Any]]:
    return [item for answer in answers for item in answer.json()]


def cursor_of(answer: httpx.Response) -> str:
    return dict(parse_qsl(answer.links["next"]["url"][1:]))["cursor"]


def test_2500_readings_page_through_completely(hub: Hub, http: httpx.Client) -> None:
    metric_id, expected = write_series(hub)
    path = f"/metrics/{metric_id}/readings"
    # the issue: the first 1,000 came with no sign that more exist
    first = http.get(path)
    assert first.headers["x-truncated"] == "true"
    assert hub.service.list_readings(metric_id).truncated
    answers = walk(http, path, {})
    assert [len(answer.json()) for answer in answers] == [1000, 1000, 500]
    assert flatten(answers) == expected  # no duplicate, no gap, in order
    # the same pages in Python, by next_cursor
    pages = [hub.service.list_readings(metric_id)]
    while pages[-1].next_cursor is not None:
        pages.append(hub.service.list_readings(metric_id, cursor=pages[-1].next_cursor))
    assert [[r.to_dict() for r in page] for page in pages] == [answer.json() for answer in answers]
    assert [page.truncated for page in pages] == [True, True, False]
    assert [page.next_cursor for page in pages[:-1]] == [cursor_of(answer) for answer in answers[:-1]]
    # and by iterating, in pages of any size
    for page_size in (1000, 333, 1, 10_000):
        readings = list(hub.service.iter_readings(metric_id, page_size=page_size))
        assert [r.to_dict() for r in readings] == expected, page_size


def test_2500_readings_page_through_newest_first(hub: Hub, http: httpx.Client) -> None:
    metric_id, expected = write_series(hub)
    answers = walk(http, f"/metrics/{metric_id}/readings", {"order": "desc", "limit": "700"})
    assert [len(answer.json()) for answer in answers] == [700, 700, 700, 400]
    assert flatten(answers) == expected[::-1]
    newest = hub.service.list_readings(metric_id, order="desc", limit=700)
    assert [r.to_dict() for r in newest] == answers[0].json()
    readings = list(hub.service.iter_readings(metric_id, order="desc", page_size=999))
    assert [r.to_dict() for r in readings] == expected[::-1]


def test_readings_written_between_pages_are_neither_repeated_nor_skipped(
    hub: Hub, http: httpx.Client
) -> None:
    metric_id, expected = write_series(hub)
    path = f"/metrics/{metric_id}/readings"
    first = http.get(path)
    last_seen = first.json()[-1]
    assert expected.index(last_seen) == 999
    assert expected[1000]["timestamp"] == last_seen["timestamp"]  # a run of ties goes on past the page
    written = hub.service.create_readings(
        [
            {"metric_id": metric_id, "value": 9001, "timestamp": last_seen["timestamp"]},  # a tie, a later id
            {"metric_id": metric_id, "value": 9002, "timestamp": at(200)},  # inside the next page
            {"metric_id": metric_id, "value": 9003, "timestamp": at(10_000)},  # after everything
            {"metric_id": metric_id, "value": 9004, "timestamp": at(1)},  # before the cursor: not seen
        ]
    )
    rest = walk(http, path, {"cursor": cursor_of(first)})
    later = sorted([r.to_dict() for r in written[:3]], key=lambda r: (r["timestamp"], r["id"]))
    want = sorted(expected[1000:] + later, key=lambda r: (r["timestamp"], r["id"]))
    assert flatten(rest) == want
    # Python: the same while iterating, a write landing between two pages
    readings = hub.service.iter_readings(metric_id, page_size=1000)
    seen = [next(readings) for _ in range(1000)]
    late = hub.service.create_reading(metric_id, 5, at(400))
    seen += readings
    everything = sorted(
        expected + [r.to_dict() for r in [*written, late]], key=lambda r: (r["timestamp"], r["id"])
    )
    assert [r.to_dict() for r in seen] == everything


def test_the_newest_n_compose_with_since_until_and_cursor(hub: Hub, http: httpx.Client) -> None:
    metric_id, expected = write_series(hub, 100)
    path = f"/metrics/{metric_id}/readings"
    in_range = [r for r in expected if at(3) <= r["timestamp"] <= at(10)]
    params = {"since": at(3), "until": at(10), "order": "desc", "limit": "5"}
    answers = walk(http, path, params)
    assert answers[0].json() == in_range[::-1][:5]
    assert flatten(answers) == in_range[::-1]
    link = dict(parse_qsl(answers[0].links["next"]["url"][1:]))
    assert link == {**params, "cursor": link["cursor"]}  # every other parameter kept
    page = hub.service.list_readings(metric_id, since=at(3), until=at(10), order="desc", limit=5)
    assert [r.to_dict() for r in page] == answers[0].json()
    older = hub.service.list_readings(metric_id, at(3), at(10), 5, order="desc", cursor=page.next_cursor)
    assert [r.to_dict() for r in older] == answers[1].json()
    # a cursor outside the range: the range holds (since goes first here; until leaves nothing)
    assert (
        http.get(path, params={"since": at(11), "cursor": cursor_of(answers[0])}).json()
        == expected[77:][:1000]
    )
    assert http.get(path, params={"until": at(2), "cursor": cursor_of(answers[0])}).json() == []


@pytest.mark.parametrize(("count", "truncated"), [(4, False), (5, False), (6, True)])
def test_an_answer_says_whether_a_limit_cut_it(
    hub: Hub, http: httpx.Client, count: int, truncated: bool
) -> None:
    metric_id, expected = write_series(hub, count)
    answer = http.get(f"/metrics/{metric_id}/readings", params={"limit": "5", "extra": "kept"})
    assert answer.headers["x-truncated"] == str(truncated).lower()
    assert ("link" in answer.headers) is truncated
    if truncated:
        assert answer.headers["link"] == f'<?limit=5&extra=kept&cursor={cursor_of(answer)}>; rel="next"'
    page = hub.service.list_readings(metric_id, limit=5)
    assert isinstance(page, Page)
    assert (page.truncated, page.next_cursor is not None) == (truncated, truncated)
    assert [r.to_dict() for r in page] == answer.json() == expected[:5]


def test_bucket_answers_cut_by_limit_link_to_the_rest(hub: Hub, http: httpx.Client) -> None:
    metric_id, _ = write_series(hub, 100)  # 15 moments a second apart
    path = f"/metrics/{metric_id}/readings"
    query = {"since": at(0), "until": at(60), "step": "2s"}
    whole = http.get(path, params=query)
    assert whole.headers["x-truncated"] == "false"
    assert len(whole.json()) == 8
    answers = walk(http, path, {**query, "limit": "3"})
    assert [len(answer.json()) for answer in answers] == [3, 3, 2]
    assert flatten(answers) == whole.json()
    pages = [hub.service.list_readings(metric_id, at(0), at(60), 3, step="2s")]
    while pages[-1].truncated:
        pages.append(
            hub.service.list_readings(metric_id, at(0), at(60), 3, step="2s", cursor=pages[-1].next_cursor)
        )
    assert [[b.to_dict() for b in page] for page in pages] == [answer.json() for answer in answers]
    # without since: the window before until, and a cursor going on within it
    answers = walk(http, path, {"until": at(14), "step": "1s", "limit": "10"})
    assert [len(answer.json()) for answer in answers] == [10, 1]


BAD_CURSORS = [
    "garbage!",
    "",
    "abc",
    "A" * 34,  # a reading cursor's length, but not one (kind byte 0)
    base64.urlsafe_b64encode(b"r" + struct.pack(">q", 2**62) + bytes(16)).decode().rstrip("="),  # no datetime
    base64.urlsafe_b64encode(b"b" + struct.pack(">q", -(2**62))).decode(),  # no datetime either
    Cursor(T0, UUID7).encode() + "=",
    Cursor(T0, UUID7).encode()[:-1] + "B",  # bits past the end set: not a token we made
    Cursor(T0, UUID7).encode()[:-2],
]


@pytest.mark.parametrize("bad", BAD_CURSORS)
def test_a_bad_cursor_is_a_400_and_a_validation_error(hub: Hub, http: httpx.Client, bad: str) -> None:
    metric_id, _ = write_series(hub, 3)
    before = state(http)
    for query in ({}, {"step": "1s"}):
        answer = http.get(f"/metrics/{metric_id}/readings", params={**query, "cursor": bad})
        assert_error(answer, 400, CURSOR_MESSAGE)
        with pytest.raises(ValidationError) as raised:
            hub.service.list_readings(metric_id, cursor=bad, **query)  # type: ignore[call-overload]
        assert raised.value.message == CURSOR_MESSAGE
    assert state(http) == before


def test_a_cursor_goes_back_only_to_the_kind_of_answer_it_came_from(hub: Hub, http: httpx.Client) -> None:
    metric_id, _ = write_series(hub, 30)
    path = f"/metrics/{metric_id}/readings"
    of_readings = cursor_of(http.get(path, params={"limit": "2"}))
    of_buckets = cursor_of(
        http.get(path, params={"since": at(0), "until": at(9), "step": "1s", "limit": "2"})
    )
    cases = [
        ({"cursor": of_buckets}, "cursor is from an answer of buckets: go on with step, as that query was"),
        (
            {"step": "1s", "cursor": of_readings},
            "cursor is from an answer of readings: go on without step, as that query was",
        ),
        ({"step": "1s", "order": "desc"}, "order must be asc with step: buckets come oldest first"),
        ({"order": "newest"}, "order must be asc or desc"),
    ]
    for params, message in cases:
        assert_error(http.get(path, params=params), 400, message)
        with pytest.raises(ValidationError) as raised:
            hub.service.list_readings(metric_id, **params)  # type: ignore[call-overload]
        assert raised.value.message == message
    with pytest.raises(ValidationError, match=r"^page_size must be an integer from 1 to 10000$"):
        hub.service.iter_readings(metric_id, page_size=0)  # refused at once, not at the first page


def test_a_page_in_a_browser_may_read_the_paging_headers(start_hub: StartHub) -> None:
    hub = start_hub(cors_origins="http://localhost:3000")
    metric_id, _ = write_series(hub, 3)
    with httpx.Client(base_url=hub.url, timeout=10, headers={"Origin": "http://localhost:3000"}) as http:
        answer = http.get(f"/metrics/{metric_id}/readings", params={"limit": "2"})
    assert answer.headers["x-truncated"] == "true"
    exposed = {h.strip().lower() for h in answer.headers["access-control-expose-headers"].split(",")}
    assert {"x-truncated", "link"} <= exposed


def test_a_snapshot_says_which_metrics_have_older_readings(hub: Hub) -> None:
    metric_id, expected = write_series(hub, 10)
    few = hub.service.create_metric("few")
    hub.service.create_reading(few.id, 1.0)
    snapshot = hub.service.snapshot(readings_limit=4)
    newest = snapshot.readings[metric_id]
    assert [r.to_dict() for r in newest] == expected[-4:]
    assert newest.truncated
    assert not snapshot.readings[few.id].truncated
    older = hub.service.list_readings(metric_id, order="desc", cursor=newest.next_cursor)
    assert [r.to_dict() for r in older] == expected[:-4][::-1]


def test_the_async_service_pages_alike(hub: Hub) -> None:
    metric_id, expected = write_series(hub, 50)
    service = hub.app.service

    async def read() -> tuple[list[MetricReading], list[MetricReading]]:
        first = await service.list_readings(metric_id, limit=20, order="desc")
        rest = await service.list_readings(metric_id, limit=40, order="desc", cursor=first.next_cursor)
        assert rest.next_cursor is None
        readings: AsyncIterator[MetricReading] = service.iter_readings(metric_id, page_size=7)
        return first + rest, [reading async for reading in readings]

    assert hub._loop is not None
    newest_first, everything = asyncio.run_coroutine_threadsafe(read(), hub._loop).result(timeout=30)
    assert [r.to_dict() for r in newest_first] == expected[::-1]
    assert [r.to_dict() for r in everything] == expected


# --- each store's cursor query, against a plain reference ---------------------------------------------

SECOND = 1_000_000


@st.composite
def reading_queries(draw: st.DrawFn) -> tuple[list[int], int | None, int | None, int | None, bool, int]:
    """Timestamps from a small pool (ties are common), bounds, a limit, an order, and which reading (by
    its index in the reference order, or past either end) the cursor names."""
    pool = draw(st.lists(st.integers(-5, 5).map(lambda s: s * SECOND), min_size=1, max_size=6))
    stamps = draw(st.lists(st.sampled_from(pool), max_size=30))
    bound = st.none() | st.sampled_from(pool) | st.integers(-6 * SECOND, 6 * SECOND)
    limit = draw(st.none() | st.integers(1, 12))
    return stamps, draw(bound), draw(bound), limit, draw(st.booleans()), draw(st.integers(-1, 31))


@PROPERTY
@given(query=reading_queries())
def test_each_store_pages_as_the_reference_does(
    store_url: str, query: tuple[list[int], int | None, int | None, int | None, bool, int]
) -> None:
    stamps, since, until, limit, descending, named = query

    async def scenario(store: Storage) -> None:
        metric_id, readings = await new_metric(store, [(ts, 1.0) for ts in stamps])
        ordered = sorted(readings, key=lambda r: (r.timestamp, r.id))
        low = None if since is None else moment_of(since)
        high = None if until is None else moment_of(until)
        inside = [
            r
            for r in ordered
            if (low is None or low <= r.timestamp) and (high is None or r.timestamp <= high)
        ]
        after = None
        if 0 <= named < len(ordered):  # a reading of the series, maybe outside the bounds
            after = (ordered[named].timestamp, ordered[named].id)
            key = (ordered[named].timestamp, ordered[named].id)
            inside = [
                r for r in inside if ((r.timestamp, r.id) < key if descending else (r.timestamp, r.id) > key)
            ]
        elif named >= len(ordered):  # a moment past every reading, an id no reading has
            after = (moment_of(6 * SECOND), new_id())
            inside = inside if descending else []
        want = (inside[::-1] if descending else inside)[:limit]
        got = await store.list_readings(metric_id, low, high, limit, descending, after)
        assert got == want

    on_store(store_url, scenario)


def moment_of(micros: int) -> datetime:
    return datetime(1970, 1, 1, tzinfo=UTC) + timedelta(microseconds=micros)


def test_each_store_resumes_inside_a_long_run_of_ties(store_url: str) -> None:
    """Thousands of readings of one moment: a cursor resumes inside the run by id, either way."""

    async def scenario(store: Storage) -> None:
        metric_id, readings = await new_metric(store, [(0, float(i)) for i in range(3000)])
        ordered = sorted(readings, key=lambda r: r.id)
        for index in (0, 1234, 2999):
            after = (ordered[index].timestamp, ordered[index].id)
            assert await store.list_readings(metric_id, limit=5, after=after) == ordered[index + 1 :][:5]
            back = await store.list_readings(metric_id, limit=5, descending=True, after=after)
            assert back == ordered[:index][::-1][:5]

    on_store(store_url, scenario)
