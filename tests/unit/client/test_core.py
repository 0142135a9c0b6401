"""Tests for the I/O-free core of metricstream.client, plus its loops over httpx.MockTransport."""

from __future__ import annotations

import asyncio
import random
import re
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
from httpx_sse import EventSource, ServerSentEvent

from metricstream.client.core import BaseSubscriber, StreamEvent
from metricstream.client.subscribers import AsyncSubscriber, Subscriber

BASE = "http://127.0.0.1:8089"
SSE_HEADERS = {"content-type": "text/event-stream; charset=utf-8"}


def feed(sub: BaseSubscriber, text: str) -> list[StreamEvent]:
    """Decode `text` as the subscriber does and run every block through `sub.process`."""
    events = []
    response = httpx.Response(200, headers=SSE_HEADERS, content=text.encode())
    for sse in EventSource(response).iter_sse():
        event = sub.process(sse)
        if event is not None:
            events.append(event)
    return events


def metric_block(event_id: str, value: int = 1) -> str:
    return f'id: {event_id}\nevent: metric_reading_created\ndata: {{"value": {value}}}\n\n'


# -- request building


@pytest.mark.parametrize(
    "url",
    [BASE, BASE + "/", BASE + "/events/watch", BASE + "/events/watch/"],
)
def test_url_gets_watch_path_once(url: str) -> None:
    assert str(BaseSubscriber(url).url) == BASE + "/events/watch"


def test_url_keeps_a_path_prefix() -> None:
    assert str(BaseSubscriber("http://h/api/").url) == "http://h/api/events/watch"


def test_params_from_filters() -> None:
    sub = BaseSubscriber(BASE, types=["metric_created", "metric_reading_created"], metric_id="m1")
    assert sub.params() == {"types": "metric_created,metric_reading_created", "metric_id": "m1"}


def test_params_empty_without_filters_and_a_lone_type_string_is_one_type() -> None:
    assert BaseSubscriber(BASE).params() == {}
    assert BaseSubscriber(BASE, types=[]).params() == {}
    assert BaseSubscriber(BASE, types="metric_created").params() == {"types": "metric_created"}


def test_resume_position_goes_in_the_header_not_the_query() -> None:
    sub = BaseSubscriber(BASE, last_event_id="abc")
    assert sub.headers()["Last-Event-ID"] == "abc"
    assert "last_event_id" not in sub.params()


def test_the_request_is_httpx_sses_with_our_headers() -> None:
    seen: list[httpx.Request] = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(400, json={"error": "stop here"})

    client = httpx.Client(transport=httpx.MockTransport(answer))
    sub = Subscriber(BASE, start="abc", token="t" * 16, types=["metric_created"], client=client)
    with pytest.raises(ValueError, match="stop here"):
        sub.connect()
    [request] = seen
    assert request.headers["Accept"] == "text/event-stream"  # connect_sse's
    assert request.headers["Cache-Control"] == "no-store"
    assert request.headers["Last-Event-ID"] == "abc"
    assert request.headers["Authorization"] == "Bearer " + "t" * 16
    assert request.url.params["types"] == "metric_created"
    client.close()


@pytest.mark.parametrize(
    ("start", "params", "header"), [("now", {}, None), ("earliest", {"start": "earliest"}, None)]
)
def test_named_starting_points(start: str, params: dict[str, str], header: str | None) -> None:
    sub = BaseSubscriber(BASE, start=start)
    assert sub.params() == params
    assert sub.headers().get("Last-Event-ID") == header
    feed(sub, "data: connected\nid: position\n\n")
    assert sub.params() == {}  # once placed, the position says where to resume
    assert sub.headers()["Last-Event-ID"] == "position"


def test_a_start_that_is_not_a_name_is_an_id() -> None:
    assert BaseSubscriber(BASE, start="0193e5a2-1234-7abc-8def-0123456789ab").last_event_id == (
        "0193e5a2-1234-7abc-8def-0123456789ab"
    )
    with pytest.raises(ValueError, match="start must be"):
        BaseSubscriber(BASE, start="")


@pytest.mark.parametrize("last_event_id", [None, ""])
def test_no_resume_header_without_an_id(last_event_id: str | None) -> None:
    sub = BaseSubscriber(BASE, last_event_id=last_event_id)
    assert sub.last_event_id is None
    assert "Last-Event-ID" not in sub.headers()


def test_read_timeout_is_the_idle_watchdog() -> None:
    timeout = BaseSubscriber(BASE, idle_timeout=45.0).timeout()
    assert timeout.read == 45.0
    assert timeout.connect == 10.0
    assert BaseSubscriber(BASE, idle_timeout=2.0).timeout().connect == 2.0


@pytest.mark.parametrize("kwargs", [{"idle_timeout": 0}, {"max_backoff": -1.0}])
def test_rejects_non_positive_timings(kwargs: dict[str, float]) -> None:
    with pytest.raises(ValueError, match="must be positive"):
        BaseSubscriber(BASE, **kwargs)  # type: ignore[arg-type]


# -- processing the stream


def test_control_messages_and_comments_are_not_yielded() -> None:
    sub = BaseSubscriber(BASE)
    text = "retry: 2000\ndata: connected\n\n: ping\n\n"
    text += metric_block("a")
    text += "data: disconnected\n\n"
    assert feed(sub, text) == [StreamEvent("a", "metric_reading_created", {"value": 1})]
    assert sub.last_event_id == "a"
    assert sub.stream_ended


def test_empty_data_is_never_yielded_but_its_id_is_kept() -> None:
    """httpx-sse dispatches a block without data, which WHATWG does not; WHATWG keeps its id all the same."""
    sub = BaseSubscriber(BASE)
    assert sub.process(ServerSentEvent(event="metric_created", data="", id="x")) is None
    assert sub.last_event_id == "x"
    assert feed(sub, "id: y\n\n") == []
    assert sub.last_event_id == "y"


def test_events_update_the_last_id_in_order() -> None:
    sub = BaseSubscriber(BASE)
    events = feed(sub, "data: connected\n\n" + metric_block("a", 1) + metric_block("b", 2))
    assert [(e.id, e.data) for e in events] == [("a", {"value": 1}), ("b", {"value": 2})]
    assert sub.last_event_id == "b"


def test_event_repeating_the_last_id_is_dropped() -> None:
    sub = BaseSubscriber(BASE, last_event_id="a")
    assert [e.id for e in feed(sub, metric_block("a") + metric_block("b"))] == ["b"]


def test_control_messages_do_not_touch_the_last_id() -> None:
    sub = BaseSubscriber(BASE, last_event_id="a")
    feed(sub, "data: connected\n\ndata: disconnected\n\n")
    assert sub.last_event_id == "a"


def test_reset_is_yielded_and_moves_the_position() -> None:
    sub = BaseSubscriber(BASE, last_event_id="gone")
    data = '{"reason": "unknown_last_event_id", "last_event_id": "gone"}'
    events = feed(sub, f"data: connected\n\nid: newest\nevent: reset\ndata: {data}\n\n")
    assert events == [
        StreamEvent("newest", "reset", {"reason": "unknown_last_event_id", "last_event_id": "gone"})
    ]
    assert sub.last_event_id == "newest"
    assert sub.headers()["Last-Event-ID"] == "newest"


def test_reset_with_empty_id_clears_the_position() -> None:
    sub = BaseSubscriber(BASE, last_event_id="gone")
    events = feed(sub, 'id:\nevent: reset\ndata: {"reason": "unknown_last_event_id"}\n\n')
    assert [(e.id, e.type) for e in events] == [("", "reset")]
    assert sub.last_event_id is None
    assert "Last-Event-ID" not in sub.headers()


def test_non_json_data_is_kept_as_text() -> None:
    sub = BaseSubscriber(BASE)
    assert feed(sub, "id: a\nevent: metric_created\ndata: oops\n\n")[0].data == "oops"


def test_retry_in_a_block_of_its_own_is_honoured() -> None:
    # The server sends `retry:` as its own block, then `connected`: the decoder hands the stream's
    # retry over with the next dispatched message.
    sub = BaseSubscriber(BASE, rand=lambda: 1.0)
    feed(sub, "retry: 250\n\ndata: connected\n\n")
    assert sub.retry_ms == 250
    assert sub.next_delay() == pytest.approx(0.25)


# -- backoff


def test_backoff_starts_at_one_second_doubles_and_caps() -> None:
    sub = BaseSubscriber(BASE, max_backoff=30.0, rand=lambda: 1.0)
    assert [sub.next_delay() for _ in range(7)] == [1.0, 2.0, 4.0, 8.0, 16.0, 30.0, 30.0]


def test_backoff_starts_at_the_server_retry() -> None:
    sub = BaseSubscriber(BASE, rand=lambda: 1.0)
    feed(sub, "retry: 3000\ndata: connected\n\n")
    assert [sub.next_delay() for _ in range(3)] == [3.0, 6.0, 12.0]


def test_server_retry_above_the_cap_is_capped() -> None:
    sub = BaseSubscriber(BASE, max_backoff=5.0, rand=lambda: 1.0)
    feed(sub, "retry: 60000\n\ndata: connected\n\n")
    assert sub.next_delay() == 5.0


def test_tiny_server_retry_is_floored() -> None:
    sub = BaseSubscriber(BASE, rand=lambda: 1.0)
    feed(sub, "retry: 0\n\ndata: connected\n\n")
    assert sub.next_delay() == pytest.approx(0.1)


def test_connected_resets_the_failure_count() -> None:
    sub = BaseSubscriber(BASE, rand=lambda: 1.0)
    sub.next_delay()
    sub.next_delay()
    feed(sub, "data: connected\n\n")
    assert sub.failures == 0
    assert sub.next_delay() == 1.0


def test_backoff_does_not_overflow_after_many_failures() -> None:
    sub = BaseSubscriber(BASE, max_backoff=30.0, rand=lambda: 1.0)
    sub.failures = 10_000
    assert sub.next_delay() == 30.0


@pytest.mark.parametrize("rand", [lambda: 0.0, random.Random(7).random])
def test_jitter_stays_between_half_and_full_delay(rand: Callable[[], float]) -> None:
    sub = BaseSubscriber(BASE, max_backoff=30.0, rand=rand)
    for attempt in range(12):
        ceiling = min(30.0, 2.0**attempt)
        assert ceiling / 2 <= sub.next_delay() <= ceiling


# -- classifying answers and errors


@pytest.mark.parametrize(
    ("status", "headers", "expected"),
    [
        (200, SSE_HEADERS, "stream"),
        (200, {"content-type": "application/json"}, "fatal"),
        (400, {}, "fatal"),
        (404, {}, "fatal"),
        (408, {}, "retry"),
        (429, {}, "retry"),
        (500, {}, "retry"),
        (503, {}, "retry"),
    ],
)
def test_classify(status: int, headers: dict[str, str], expected: str) -> None:
    assert BaseSubscriber(BASE).classify(httpx.Response(status, headers=headers)) == expected


def test_rejection_carries_the_server_message() -> None:
    response = httpx.Response(400, json={"error": "unknown event type 'nope'"})
    error = BaseSubscriber(BASE).rejection(response)
    assert isinstance(error, ValueError)
    assert "400" in str(error)
    assert "unknown event type 'nope'" in str(error)


def test_rejection_of_a_non_json_answer_quotes_the_body() -> None:
    error = BaseSubscriber(BASE).rejection(httpx.Response(404, text="no such page"))
    assert "no such page" in str(error)


def test_rejection_of_a_wrong_content_type() -> None:
    response = httpx.Response(200, headers={"content-type": "text/html"})
    assert "text/html" in str(BaseSubscriber(BASE).rejection(response))


@pytest.mark.parametrize(
    ("exc", "transient"),
    [
        (httpx.ConnectError("refused"), True),
        (httpx.ReadTimeout("idle"), True),
        (httpx.RemoteProtocolError("incomplete chunked read"), True),
        (httpx.UnsupportedProtocol("ftp"), False),
        (ValueError("bad"), False),
    ],
)
def test_is_transient(exc: Exception, transient: bool) -> None:
    assert BaseSubscriber(BASE).is_transient(exc) is transient


# -- the sync and async loops over a mock transport


def scripted(answers: list[httpx.Response], seen: list[httpx.Request]) -> httpx.MockTransport:
    def handle(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return answers.pop(0)

    return httpx.MockTransport(handle)


def stream_answer(text: str) -> httpx.Response:
    return httpx.Response(200, headers=SSE_HEADERS, content=text.encode())


DISCONNECTED = "data: disconnected\n\n"


def script() -> list[httpx.Response]:
    return [
        stream_answer("retry: 10\ndata: connected\n\n" + metric_block("a") + DISCONNECTED),
        httpx.Response(503, json={"error": "shutting down"}),
        stream_answer("data: connected\n\n" + metric_block("a") + metric_block("b")),
        httpx.Response(400, json={"error": "bad filter"}),
    ]


def check_requests(seen: list[httpx.Request]) -> None:
    assert [r.headers.get("Last-Event-ID") for r in seen] == [None, "a", "a", "b"]
    assert all(r.url.params["types"] == "metric_created" for r in seen)
    assert all(r.url.path == "/events/watch" for r in seen)


def test_subscriber_resumes_then_raises_on_4xx(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[httpx.Request] = []
    with httpx.Client(transport=scripted(script(), seen)) as client:
        sub = Subscriber(BASE, types=["metric_created"], client=client)
        monkeypatch.setattr(sub, "next_delay", lambda: 0.0)
        received: list[str] = []
        with pytest.raises(ValueError, match="bad filter"):
            received.extend(event.id for event in sub)
        sub.close()
        assert not client.is_closed  # a client passed in stays the caller's
    assert received == ["a", "b"]
    check_requests(seen)


def test_async_subscriber_resumes_then_raises_on_4xx(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[httpx.Request] = []

    async def run() -> list[str]:
        received: list[str] = []

        async def drain(sub: AsyncSubscriber) -> None:
            async for event in sub:
                received.append(event.id)

        async with httpx.AsyncClient(transport=scripted(script(), seen)) as client:
            async with AsyncSubscriber(BASE, types=["metric_created"], client=client) as sub:
                monkeypatch.setattr(sub, "next_delay", lambda: 0.0)
                with pytest.raises(ValueError, match="bad filter"):
                    await drain(sub)
            assert not client.is_closed
        return received

    assert asyncio.run(run()) == ["a", "b"]
    check_requests(seen)


def test_close_inside_the_loop_ends_iteration_and_reuse_fails() -> None:
    seen: list[httpx.Request] = []
    answers = [stream_answer("data: connected\n\n" + metric_block("a") + metric_block("b"))]
    received = []
    with httpx.Client(transport=scripted(answers, seen)) as client:
        sub = Subscriber(BASE, client=client)
        for event in sub:
            received.append(event.id)
            sub.close()
    assert received == ["a"]
    assert len(seen) == 1
    with pytest.raises(RuntimeError):
        iter(sub)


def test_close_closes_an_owned_client() -> None:
    sub = Subscriber(BASE)
    sub.close()
    assert sub._client.is_closed


def test_async_aclose_inside_the_loop_ends_iteration() -> None:
    seen: list[httpx.Request] = []
    answers = [stream_answer("data: connected\n\n" + metric_block("a") + metric_block("b"))]

    async def run() -> list[str]:
        received = []
        client = httpx.AsyncClient(transport=scripted(answers, seen))
        async with client, AsyncSubscriber(BASE, client=client) as sub:
            async for event in sub:
                received.append(event.id)
                await sub.aclose()
        return received

    assert asyncio.run(run()) == ["a"]
    assert len(seen) == 1


def test_dispatch_yields_the_event_a_marker_for_connected_or_nothing() -> None:
    sub = BaseSubscriber(BASE)
    reading = ServerSentEvent(event="metric_reading_created", data='{"value": 2}', id="e1")
    assert sub.dispatch(ServerSentEvent(data="connected", id="e0")) == (None,)
    assert sub.dispatch(reading) == (StreamEvent("e1", "metric_reading_created", {"value": 2}),)
    assert sub.dispatch(reading) == ()  # the same id again: already delivered
    assert sub.dispatch(ServerSentEvent(event="metric_created", data="", id="e2")) == ()
    assert sub.dispatch(ServerSentEvent(data="disconnected")) == ()
    assert sub.stream_ended
    assert sub.last_event_id == "e2"


def test_a_subscriber_refuses_a_ca_it_cannot_load_or_verify_with_a_client(tmp_path: Path) -> None:
    missing = tmp_path / "no-ca.pem"
    with pytest.raises(ValueError, match=re.escape(f"verify: cannot load CA certificates from '{missing}'")):
        Subscriber("https://127.0.0.1:1", verify=missing)
    with (
        httpx.Client() as http,
        pytest.raises(ValueError, match=r"^pass verify= or client=, not both"),
    ):
        Subscriber("https://127.0.0.1:1", verify=False, client=http)
    with pytest.raises(ValueError, match=r"^pass verify= or client=, not both"):
        AsyncSubscriber("https://127.0.0.1:1", verify=True, client=httpx.AsyncClient())
