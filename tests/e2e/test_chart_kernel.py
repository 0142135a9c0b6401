"""`hub.chart()`'s kernel side, no browser: what `ChartFeed` sends over the widget's comm, against real hubs
on 127.0.0.1 (over HTTP and the event stream, as in a kernel), and the module the widget loads.

A `Recorder` stands in for the comm: it keeps each (content, buffers) the feed sends, buffers decoded as
the browser reads them (Float64). A `ManualClock` drives the coalescing, so "one message per interval"
is asserted exactly: nothing is sent until the test moves the clock.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import threading
from array import array
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

import metricstream
from metricstream import Hub, SubscriptionError, ValidationError
from metricstream.clock import ManualClock
from metricstream.notebook.chart import ESM, WIDGET_JS, bundle
from metricstream.notebook.chart_feed import (
    BUCKET_FIELDS,
    ChartFeed,
    ChartSource,
    chart_selection,
    chart_window,
)
from tests.support.hubs import StartHub, wait_for

WAIT = 10.0
INTERVAL = 0.05
DASHBOARD = Path(metricstream.__file__).parent / "dashboard"


class Recorder:
    """What the feed sent, in order; waits are on a condition the sends notify."""

    def __init__(self) -> None:
        self.messages: list[tuple[dict[str, Any], list[array[float]]]] = []
        self._changed = threading.Condition()

    def __call__(self, content: dict[str, Any], buffers: list[bytes]) -> None:
        decoded = []
        for buffer in buffers:
            values = array("d")
            values.frombytes(buffer)
            decoded.append(values)
        with self._changed:
            # The comm sends JSON: what does not survive it would not reach the browser.
            self.messages.append((json.loads(json.dumps(content)), decoded))
            self._changed.notify_all()

    def wait(self, count: int) -> tuple[dict[str, Any], list[array[float]]]:
        """The `count`th message (1-based), once it has been sent."""
        with self._changed:
            if not self._changed.wait_for(lambda: len(self.messages) >= count, WAIT):
                raise AssertionError(f"message {count} never came; sent: {self.messages}")
            return self.messages[count - 1]

    def kinds(self) -> list[str]:
        with self._changed:
            return [content["kind"] for content, _ in self.messages]


@pytest.fixture
def feeds() -> Iterator[Callable[..., tuple[ChartFeed, Recorder, ManualClock]]]:
    """Start feeds on a hub (`metrics`, `window` as chart() takes them); all closed at the end."""
    opened: list[ChartFeed] = []

    def start(hub: Hub, *metrics: Any, window: int | str = 300) -> tuple[ChartFeed, Recorder, ManualClock]:
        recorder, clock = Recorder(), ManualClock()
        feed = ChartFeed(
            ChartSource(hub.url),
            chart_selection(metrics),
            chart_window(window),
            recorder,
            clock=clock,
            interval=INTERVAL,
        )
        opened.append(feed.start())
        return feed, recorder, clock

    yield start
    for feed in opened:
        feed.close()


def wait_received(feed: ChartFeed, count: int) -> None:
    """Until the feed has taken `count` readings from the stream (they wait for the next message): a
    counter of the feed's, with no event to await."""
    wait_for(lambda: feed.statistics().received >= count, WAIT, f"{count} readings received")


def points(buffer: array[float]) -> list[tuple[float, float]]:
    return [(buffer[i], buffer[i + 1]) for i in range(0, len(buffer), 2)]


def ms(moment: datetime) -> float:
    return moment.timestamp() * 1000


def chart_threads() -> list[str]:
    names = ("metricstream-chart", "metricstream-subscriber")
    return [thread.name for thread in threading.enumerate() if thread.name.startswith(names)]


# --- the module the browser loads


def test_the_widget_module_is_built_now_from_the_dashboard_files_it_imports() -> None:
    assert bundle() == ESM
    for name in ("chart.js", "colors.js", "format.js", "history.js", "series.js"):
        source = (DASHBOARD / name).read_text()
        # every line of each module is in it, as written, but its imports and exports
        body = [line for line in source.splitlines() if not line.startswith(("import ", "export "))]
        missing = [line for line in body if line not in ESM.splitlines()]
        assert not missing, f"{name}: {missing[:3]}"
    # one module: no import left to resolve from a blob URL
    assert [line for line in ESM.splitlines() if line.startswith("import ")] == []
    assert WIDGET_JS.name in ESM.splitlines()[0]


@pytest.mark.skipif(shutil.which("node") is None, reason="node runs the module")
def test_the_widget_module_runs_and_colours_as_the_dashboard_does(tmp_path: Path) -> None:
    (tmp_path / "widget.mjs").write_text(ESM)
    script = f"""
        import widget, {{ metricColor as widgetColor }} from "./widget.mjs";
        import {{ metricColor }} from "{(DASHBOARD / "colors.js").as_uri()}";
        const ids = ["loss", "01a24a6c-a663-7a45-b679-bb20f5f9d838", "é"];
        console.log(JSON.stringify({{
          hooks: Object.keys(widget).sort(),
          same: ids.map((id) => widgetColor(id) === metricColor(id)),
          color: widgetColor("loss"),
        }}));
    """
    (tmp_path / "check.mjs").write_text(script)
    run = subprocess.run(["node", "check.mjs"], cwd=tmp_path, capture_output=True, text=True, timeout=30)
    assert run.returncode == 0, run.stderr
    answer = json.loads(run.stdout)
    assert answer["hooks"] == ["initialize", "render"]
    assert answer["same"] == [True, True, True]
    assert answer["color"].startswith("#")


# --- arguments


@pytest.mark.parametrize(
    ("window", "message"),
    [
        (0, "window must be from 1 to 10000 readings, not 0"),
        (10_001, "window must be from 1 to 10000 readings, not 10001"),
        (True, "window must be a number of readings or one of '10m', '1h', '6h', '1d', not True"),
        ("2h", "window must be a number of readings or one of '10m', '1h', '6h', '1d', not '2h'"),
        (1.5, "window must be a number of readings or one of '10m', '1h', '6h', '1d', not 1.5"),
    ],
)
def test_a_bad_window_is_refused_with_its_reason(start_hub: StartHub, window: Any, message: str) -> None:
    hub = start_hub()
    with pytest.raises(ValidationError) as refused:
        hub.chart(window=window)
    assert str(refused.value) == message
    assert chart_threads() == []


@pytest.mark.parametrize("metric", [3, None, ""])
def test_a_bad_metric_or_height_is_refused(start_hub: StartHub, metric: Any) -> None:
    hub = start_hub()
    with pytest.raises(ValidationError, match="chart\\(\\) takes metric names, ids or Metrics"):
        hub.chart(metric)
    with pytest.raises(ValidationError, match="height must be a whole number of pixels"):
        hub.chart(height=0)
    assert chart_threads() == []


def test_a_server_refusing_the_chart_raises_in_the_cell(start_hub: StartHub) -> None:
    hub = start_hub(subscribe_token="s3cret-token-for-the-test")
    with pytest.raises(SubscriptionError, match="GET /metrics: 401 a bearer token is required") as refused:
        metricstream.chart(hub.url)
    assert refused.value.status == 401
    assert chart_threads() == []
    widget = metricstream.chart(hub.url, token="s3cret-token-for-the-test")
    try:
        assert widget.feed.statistics().running
    finally:
        widget.close()
    assert hub.chart().feed.statistics().running  # a hub's own chart knows its token


# --- what it sends


def test_many_readings_make_one_message_per_interval_with_binary_buffers_and_none_lost(
    start_hub: StartHub, feeds: Callable[..., tuple[ChartFeed, Recorder, ManualClock]]
) -> None:
    hub = start_hub()
    metrics = [hub.service.create_metric(f"m{n:02}") for n in range(20)]
    feed, recorder, clock = feeds(hub)
    state, buffers = recorder.wait(1)
    assert state["kind"] == "state"
    assert [metric["name"] for metric in state["metrics"]] == [metric.name for metric in metrics]
    assert all(len(buffer) == 0 for buffer in buffers)

    start = datetime(2026, 1, 1, tzinfo=UTC)
    logged: dict[str, list[tuple[float, float]]] = {metric.id: [] for metric in metrics}
    items = []
    for n in range(2000):
        metric, moment = metrics[n % 20], start + timedelta(milliseconds=n)
        items.append({"metric_id": metric.id, "value": n + 1, "timestamp": moment.isoformat()})
        logged[metric.id].append((ms(moment), n + 1))
    for batch in (items[:1000], items[1000:]):
        hub.service.create_readings(batch)
    wait_received(feed, 2000)
    assert recorder.kinds() == ["state"]  # the interval since the state has not passed
    assert feed.statistics().pending == 2000

    clock.advance(INTERVAL)
    update, buffers = recorder.wait(2)
    assert update["kind"] == "update"
    assert [item["id"] for item in update["appended"]] == [metric.id for metric in metrics]
    assert [item["points"] for item in update["appended"]] == [100] * 20
    assert {item["id"]: points(buffer) for item, buffer in zip(update["appended"], buffers, strict=True)} == (
        logged
    )
    stats = feed.statistics()
    assert (stats.messages, stats.received, stats.sent, stats.pending) == (2, 2000, 2000, 0)

    hub.service.create_reading(metrics[0].id, 7)
    wait_received(feed, 2001)
    assert recorder.kinds() == ["state", "update"]  # held until the next interval
    clock.advance(INTERVAL)
    assert points(recorder.wait(3)[1][0])[0][1] == 7


def test_the_history_is_the_newest_readings_and_the_stream_goes_on_from_it(
    hub: Hub, feeds: Callable[..., tuple[ChartFeed, Recorder, ManualClock]]
) -> None:
    loss = hub.service.create_metric("loss")
    hub.service.create_readings([{"metric_id": loss.id, "value": n} for n in range(1, 11)])
    feed, recorder, clock = feeds(hub, "loss", window=4)
    state, [history] = recorder.wait(1)
    assert state["window"] == {"limit": 4}
    assert [value for _, value in points(history)] == [7, 8, 9, 10]
    hub.service.create_reading(loss.id, 11)
    wait_received(feed, 1)
    clock.advance(INTERVAL)
    assert [value for _, value in points(recorder.wait(2)[1][0])] == [11]  # no duplicate, no gap


def test_readings_written_while_the_history_loads_arrive_once_each(
    hub: Hub, feeds: Callable[..., tuple[ChartFeed, Recorder, ManualClock]]
) -> None:
    loss = hub.service.create_metric("loss")
    writing = threading.Thread(
        target=lambda: [hub.service.create_reading(loss.id, n) for n in range(1, 301)], daemon=True
    )
    writing.start()  # while the feed loads and subscribes, wherever in the writing that falls
    feed, recorder, clock = feeds(hub, window=1000)
    writing.join(WAIT)
    [history] = recorder.wait(1)[1]
    loaded = [value for _, value in points(history)]
    wait_received(feed, 300 - len(loaded))
    streamed: list[float] = []
    if len(loaded) < 300:
        clock.advance(INTERVAL)
        streamed = [value for _, value in points(recorder.wait(2)[1][0])]
    assert loaded + streamed == list(range(1, 301))  # no gap, no duplicate
    assert feed.statistics().received == len(streamed)


def test_only_the_metrics_chosen_by_name_id_or_metric_are_shown(
    start_hub: StartHub, feeds: Callable[..., tuple[ChartFeed, Recorder, ManualClock]]
) -> None:
    hub = start_hub()
    loss, acc, lr = (hub.service.create_metric(name) for name in ("loss", "acc", "lr"))
    grad = hub.service.create_metric("grad")
    feed, recorder, clock = feeds(hub, "loss", acc.id, grad)
    state, _ = recorder.wait(1)
    assert [metric["name"] for metric in state["metrics"]] == ["loss", "acc", "grad"]
    hub.service.create_readings([{"metric_id": m.id, "value": 1} for m in (lr, acc, lr, loss)])
    wait_received(feed, 2)
    clock.advance(INTERVAL)
    update, _ = recorder.wait(2)
    assert [item["id"] for item in update["appended"]] == [acc.id, loss.id]
    assert feed.statistics().metrics == ("loss", "acc", "grad")


def test_a_new_metric_of_the_selection_appears_with_its_readings(
    start_hub: StartHub, feeds: Callable[..., tuple[ChartFeed, Recorder, ManualClock]]
) -> None:
    hub = start_hub()
    feed, recorder, clock = feeds(hub, "later")
    assert recorder.wait(1)[0]["metrics"] == []
    other = hub.service.create_metric("other")
    hub.service.create_reading(other.id, 1)
    later = hub.service.log("later", 2.5)
    wait_received(feed, 1)
    clock.advance(INTERVAL)
    update, buffers = recorder.wait(2)
    assert update["added"] == [
        {"id": later.metric_id, "name": "later", "labels": {}, "unit": None, "description": None}
    ]
    assert update["appended"] == [{"id": later.metric_id, "points": 1}]
    assert points(buffers[0]) == [(ms(later.timestamp), 2.5)]


def test_each_metric_comes_with_its_labels_unit_and_description(
    start_hub: StartHub, feeds: Callable[..., tuple[ChartFeed, Recorder, ManualClock]]
) -> None:
    """What the widget's legend tells series of one name apart by, and writes beside their values: in the
    state, and for a metric created later."""
    hub = start_hub()
    eu = hub.service.create_metric("cpu", labels={"host": "a", "dc": "eu"}, unit="%", description="busy")
    plain = hub.service.create_metric("cpu")
    feed, recorder, clock = feeds(hub, "cpu")
    state, _ = recorder.wait(1)
    assert [{k: v for k, v in m.items() if k != "points"} for m in state["metrics"]] == [
        {"id": eu.id, "name": "cpu", "labels": {"dc": "eu", "host": "a"}, "unit": "%", "description": "busy"},
        {"id": plain.id, "name": "cpu", "labels": {}, "unit": None, "description": None},
    ]
    us = hub.service.create_metric("cpu", labels={"host": "b", "dc": "us"}, unit="%")
    hub.service.create_reading(us.id, 1)
    wait_received(feed, 1)
    clock.advance(INTERVAL)
    update, _ = recorder.wait(2)
    assert update["added"] == [
        {"id": us.id, "name": "cpu", "labels": {"dc": "us", "host": "b"}, "unit": "%", "description": None}
    ]


def test_a_deleted_metric_goes_with_its_pending_readings(
    start_hub: StartHub, feeds: Callable[..., tuple[ChartFeed, Recorder, ManualClock]]
) -> None:
    hub = start_hub()
    gone, kept = hub.service.create_metric("gone"), hub.service.create_metric("kept")
    feed, recorder, clock = feeds(hub)
    recorder.wait(1)
    hub.service.create_readings([{"metric_id": m.id, "value": 1} for m in (gone, kept)])
    wait_received(feed, 2)
    hub.service.delete_metric(gone.id)
    hub.service.create_reading(kept.id, 2)
    wait_received(feed, 3)
    clock.advance(INTERVAL)
    update, _ = recorder.wait(2)
    assert update["removed"] == [gone.id]
    assert update["appended"] == [{"id": kept.id, "points": 2}]
    assert feed.statistics().metrics == ("kept",)


def test_a_time_window_opens_with_the_servers_buckets_then_streams_readings(
    hub: Hub, feeds: Callable[..., tuple[ChartFeed, Recorder, ManualClock]]
) -> None:
    cpu = hub.service.create_metric("cpu")
    now = datetime.now(UTC)
    hub.service.create_readings(
        [
            {"metric_id": cpu.id, "value": n, "timestamp": (now - timedelta(seconds=30 * n)).isoformat()}
            for n in range(1, 100)
        ]
    )
    feed, recorder, clock = feeds(hub, window="1h")
    state, [buckets] = recorder.wait(1)
    assert state["window"] == {"name": "1h", "step": 12, "span": 3600, "title": "the last hour"}
    # the window the dashboard asks for: it ends with the current step (history.js bucketsUrl)
    step = 12_000
    end = (int(ms(datetime.fromtimestamp(clock.time(), UTC))) // step + 1) * step
    expected = hub.service.list_readings(
        cpu.id,
        since=datetime.fromtimestamp((end - 3_600_000) / 1000, UTC),
        until=datetime.fromtimestamp((end + 3_600_000) / 1000, UTC),
        step=12,
    )
    width = len(BUCKET_FIELDS)
    rows = [list(buckets[i : i + width]) for i in range(0, len(buckets), width)]
    assert len(rows) == len(expected) > 0
    assert rows == [[ms(b.start), b.count, b.min, b.max, b.avg, b.first, b.last] for b in expected]
    hub.service.create_reading(cpu.id, 5)
    wait_received(feed, 1)
    clock.advance(INTERVAL)
    assert [value for _, value in points(recorder.wait(2)[1][0])] == [5]


def test_a_reset_of_the_stream_reloads_the_state(
    start_hub: StartHub, feeds: Callable[..., tuple[ChartFeed, Recorder, ManualClock]]
) -> None:
    first = start_hub()
    first.service.create_metric("before")
    _, recorder, _ = feeds(first)
    assert [m["name"] for m in recorder.wait(1)[0]["metrics"]] == ["before"]
    # A server of no persistence restarted: it knows nothing of the position the feed resumes from.
    port = int(first.url.rsplit(":", 1)[1])
    first.stop()
    second = start_hub(port=port)
    after = second.service.create_metric("after")
    second.service.create_reading(after.id, 3)
    state, [history] = recorder.wait(2)
    assert state["kind"] == "state"
    assert [m["name"] for m in state["metrics"]] == ["after"]
    assert [value for _, value in points(history)] == [3]


def test_a_view_saying_hello_and_reset_reload_the_state(start_hub: StartHub) -> None:
    hub = start_hub()
    widget = hub.chart()
    assert widget.feed.statistics().metrics == ()
    hub.service.create_metric("m")  # no reading, so the state alone names it
    # ipywidgets' entry for a custom message from the browser: what the model sends when it opens
    widget._handle_custom_msg({"kind": "hello"}, [])
    wait_for(lambda: widget.feed.statistics().messages == 2, WAIT, "the state sent again")
    assert widget.feed.statistics().metrics == ("m",)
    hub.service.create_metric("n")
    widget.reset()
    wait_for(lambda: widget.feed.statistics().messages == 3, WAIT, "the state sent again")
    assert widget.feed.statistics().metrics == ("m", "n")
    widget.close()


# --- lifetime


def test_close_and_hub_stop_end_every_thread_of_the_chart(start_hub: StartHub) -> None:
    before = set(threading.enumerate())
    hub = start_hub()
    widget = hub.chart()
    assert len(chart_threads()) == 2  # the subscriber's and the feed's
    widget.close()
    assert chart_threads() == []
    assert not widget.feed.statistics().running

    charts = [hub.chart(), hub.chart("x", window="10m")]
    assert len(chart_threads()) == 4
    hub.stop()
    assert chart_threads() == []
    assert all(not chart.feed.statistics().running for chart in charts)
    assert set(threading.enumerate()) <= before
