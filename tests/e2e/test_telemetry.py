"""Observability end to end: the Prometheus scrape at `/-/metrics` through a real server, the structured log
lines of the stream, and logging staying quiet unless `metricstream serve` (or the program) asks for it."""

from __future__ import annotations

import logging
import signal
import subprocess
import sys
import textwrap
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from metricstream.server.hub import Hub
from metricstream.web.telemetry import DROP_REASONS, METRICS_PATH
from tests.support.hubs import wait_for
from tests.support.processes import WAIT, child, child_env, finish, read_until, serve_url
from tests.support.raw_stream import OpenStream, RawStream

DURATION = "metricstream_http_request_duration_seconds"


class Scrape:
    """One parsed scrape: families by name, sample values by (sample name, labels)."""

    def __init__(self, text: str) -> None:
        self.families = {family.name: family for family in text_string_to_metric_families(text)}
        self.samples = {
            (sample.name, frozenset(sample.labels.items())): sample.value
            for family in self.families.values()
            for sample in family.samples
        }

    def __call__(self, name: str, **labels: str) -> float | None:
        return self.samples.get((name, frozenset(labels.items())))

    def label_values(self, name: str, label: str) -> set[str]:
        return {dict(labels)[label] for sample, labels in self.samples if sample == name}


def scrape(url: str) -> Scrape:
    response = httpx.get(f"{url}{METRICS_PATH}", timeout=10)
    assert response.status_code == 200
    return Scrape(response.text)


def stream_records(caplog: pytest.LogCaptureFixture, event: str) -> list[logging.LogRecord]:
    return [record for record in caplog.records if getattr(record, "event", None) == event]


@pytest.fixture
def stream_logs(caplog: pytest.LogCaptureFixture) -> Iterator[pytest.LogCaptureFixture]:
    with caplog.at_level(logging.INFO, logger="metricstream.stream"):
        yield caplog


# --- the scrape --------------------------------------------------------------------------------------


def test_scrape_is_prometheus_text_with_every_family(hub: Hub, http: httpx.Client) -> None:
    response = http.get(METRICS_PATH)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain; version=0.0.4")
    found = Scrape(response.text)
    kinds = {name: family.type for name, family in found.families.items()}
    assert (
        kinds.items()
        >= {
            "metricstream_clients_connected": "gauge",
            "metricstream_clients_accepted": "counter",
            "metricstream_clients_dropped": "counter",
            "metricstream_clients_reset": "counter",
            "metricstream_events_published": "counter",
            "metricstream_events_replayed": "counter",
            "metricstream_events_retained": "gauge",
            "python_info": "gauge",
        }.items()
    )
    # every reason exists from the start, so rate() works before the first drop
    for reason in DROP_REASONS:
        assert found("metricstream_clients_dropped_total", reason=reason) == 0
    assert found("metricstream_clients_connected") == 0
    assert found("metricstream_events_published_total") == 0


def test_openmetrics_when_the_scraper_asks(hub: Hub, http: httpx.Client) -> None:
    response = http.get(METRICS_PATH, headers={"Accept": "application/openmetrics-text; version=1.0.0"})
    assert response.headers["content-type"].startswith("application/openmetrics-text")
    assert response.text.endswith("# EOF\n")


def test_the_metrics_path_is_documented_as_text(http: httpx.Client) -> None:
    operation = http.get("/openapi.json").json()["paths"][METRICS_PATH]["get"]
    assert set(operation["responses"]["200"]["content"]) == {"text/plain", "application/openmetrics-text"}


def test_clients_gauge_and_counters_follow_a_stream(hub: Hub, open_stream: OpenStream) -> None:
    stream = open_stream(hub.url)
    stream.expect_open()
    found = scrape(hub.url)
    assert found("metricstream_clients_connected") == 1
    assert found("metricstream_clients_accepted_total") == 1
    stream.close()
    wait_for(lambda: scrape(hub.url)("metricstream_clients_connected") == 0, what="the disconnect")
    found = scrape(hub.url)
    assert found("metricstream_clients_dropped_total", reason="gone") == 1
    assert found("metricstream_clients_accepted_total") == 1


def test_published_counts_every_event_and_retained_holds_them(hub: Hub, http: httpx.Client) -> None:
    metric = http.post("/metrics", json={"name": "cpu"}).json()
    for value in (1, 2, 3):
        assert http.post("/metrics/readings", json={"metric_id": metric["id"], "value": value}).is_success
    batch = {"readings": [{"metric_id": metric["id"], "value": value} for value in range(1, 5)]}
    assert http.post("/metrics/readings/batch", json=batch).status_code == 201
    hub.service.create_reading(metric["id"], 5)
    found = scrape(hub.url)
    assert found("metricstream_events_published_total") == 1 + 3 + 4 + 1
    assert found("metricstream_events_retained") == 9


def test_replayed_after_last_event_id_and_reset_for_an_unknown_one(
    hub: Hub, http: httpx.Client, open_stream: OpenStream
) -> None:
    metric = hub.service.create_metric("cpu")
    resume_from = http.get("/metrics").headers["X-Last-Event-ID"]  # the metric_created event
    for value in (1, 2, 3):
        hub.service.create_reading(metric.id, value)
    resumed = open_stream(hub.url, headers={"Last-Event-ID": resume_from})
    resumed.expect_open()
    assert [resumed.next_event().json()["value"] for _ in range(3)] == [1, 2, 3]
    found = scrape(hub.url)
    assert found("metricstream_events_replayed_total") == 3
    assert found("metricstream_clients_reset_total") == 0
    open_stream(hub.url, "last_event_id=no-such-id").expect_open()
    found = scrape(hub.url)
    assert found("metricstream_clients_reset_total") == 1
    assert found("metricstream_events_replayed_total") == 3


def test_eviction_beyond_max_clients_is_dropped_for_limit(
    make_hub: Callable[..., Hub], open_stream: OpenStream
) -> None:
    hub = make_hub(max_clients=1)
    oldest = open_stream(hub.url)
    oldest.expect_open()
    open_stream(hub.url).expect_open()
    assert [frame.data for frame in oldest.read_to_end()] == ["disconnected"]
    found = scrape(hub.url)
    assert found("metricstream_clients_dropped_total", reason="limit") == 1
    assert found("metricstream_clients_connected") == 1
    assert found("metricstream_clients_accepted_total") == 2


def test_request_histogram_is_labelled_by_route_rule_method_and_status(
    hub: Hub, http: httpx.Client, open_stream: OpenStream
) -> None:
    metric = http.post("/metrics", json={"name": "cpu"}).json()
    for _ in range(2):
        assert http.get(f"/metrics/{metric['id']}").status_code == 200
    assert http.get("/metrics/not-a-uuid").status_code == 400
    assert http.get("/no/such/path").status_code == 404
    assert http.request("BREW", "/metrics").status_code == 405
    open_stream(hub.url).expect_open()  # the stream is not a timed request
    found = scrape(hub.url)
    count = f"{DURATION}_count"
    assert found(count, method="GET", route="/metrics/<metric_id>", status="200") == 2
    assert found(count, method="GET", route="/metrics/<metric_id>", status="400") == 1
    assert found(count, method="POST", route="/metrics", status="201") == 1
    assert found(count, method="GET", route="<unmatched>", status="404") == 1
    assert found(count, method="other", route="<unmatched>", status="405") == 1
    assert found(f"{DURATION}_bucket", method="POST", route="/metrics", status="201", le="+Inf") == 1
    # bounded labels: rules only, never a raw path or a client's made-up method
    assert found.label_values(count, "route") == {"/metrics", "/metrics/<metric_id>", "<unmatched>"}
    assert found.label_values(count, "method") == {"GET", "POST", "other"}
    # the scrape itself is timed, under its own rule
    assert scrape(hub.url)(count, method="GET", route=METRICS_PATH, status="200") == 1


def test_two_hubs_have_independent_metrics(make_hub: Callable[..., Hub], open_stream: OpenStream) -> None:
    # (the second on its own store: two hubs sharing a Redis store rightly publish the same events)
    first, second = make_hub(), make_hub(store="memory://")
    metric = first.service.create_metric("only on the first")
    first.service.create_reading(metric.id, 1)
    open_stream(first.url).expect_open()
    httpx.get(f"{first.url}/metrics", timeout=10)
    a, b = scrape(first.url), scrape(second.url)
    assert a("metricstream_events_published_total") == 2
    assert b("metricstream_events_published_total") == 0
    assert a("metricstream_clients_connected") == 1
    assert b("metricstream_clients_connected") == 0
    assert a(f"{DURATION}_count", method="GET", route="/metrics", status="200") == 1
    assert b(f"{DURATION}_count", method="GET", route="/metrics", status="200") is None


def test_an_unexpected_error_is_logged_once_and_counted(
    hub: Hub, http: httpx.Client, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def broken(*_: object, **__: object) -> None:
        raise RuntimeError("the store caught fire")

    monkeypatch.setattr(hub.app.service, "list_metrics", broken)
    with caplog.at_level(logging.ERROR, logger="metricstream"):
        response = http.get("/metrics")
    assert response.status_code == 500
    assert response.json() == {"error": "internal server error"}
    [record] = stream_records(caplog, "request_error")
    assert record.levelno == logging.ERROR
    assert record.getMessage() == "event=request_error method=GET path=/metrics status=500"
    assert record.exc_info is not None
    assert "caught fire" in str(record.exc_info[1])
    assert scrape(hub.url)(f"{DURATION}_count", method="GET", route="/metrics", status="500") == 1


# --- log lines -----------------------------------------------------------------------------------------


def test_connect_and_disconnect_are_logged_with_filters_position_reason_and_duration(
    hub: Hub, http: httpx.Client, open_stream: OpenStream, stream_logs: pytest.LogCaptureFixture
) -> None:
    metric = hub.service.create_metric("cpu")
    resume_from = http.get("/metrics").headers["X-Last-Event-ID"]
    hub.service.create_reading(metric.id, 1)
    stream = open_stream(
        hub.url,
        f"types=metric_reading_created&metric_id={metric.id}",
        headers={"Last-Event-ID": resume_from},
    )
    stream.expect_open()
    peer = f"127.0.0.1:{stream.sock.getsockname()[1]}"
    [connect] = stream_records(stream_logs, "stream_connect")
    assert connect.levelno == logging.INFO
    assert connect.name == "metricstream.stream"
    assert connect.getMessage() == (
        f"event=stream_connect stream=1 client={peer} last_event_id={resume_from} "
        f"types=metric_reading_created metric_id={metric.id} replay=1 reset=false clients=1"
    )
    stream.close()
    wait_for(lambda: bool(stream_records(stream_logs, "stream_disconnect")), what="the disconnect line")
    [disconnect] = stream_records(stream_logs, "stream_disconnect")
    fields: dict[str, Any] = vars(disconnect)
    assert (fields["stream"], fields["client"], fields["reason"], fields["clients"]) == (1, peer, "gone", 0)
    assert isinstance(fields["duration"], float)
    assert 0 <= fields["duration"] < 30
    assert f"reason=gone duration={fields['duration']:.3f} " in disconnect.getMessage()


def test_evicted_and_shut_down_streams_log_their_reason(
    make_hub: Callable[..., Hub], open_stream: OpenStream, stream_logs: pytest.LogCaptureFixture
) -> None:
    hub = make_hub(max_clients=1)
    oldest = open_stream(hub.url, headers={"Last-Event-ID": "gone-long-ago"})
    oldest.expect_open()
    assert oldest.next_event().event == "reset"
    open_stream(hub.url).expect_open()
    oldest.read_to_end()
    hub.stop()
    connects = {
        vars(record)["stream"]: vars(record) for record in stream_records(stream_logs, "stream_connect")
    }
    assert connects[1]["reset"] is True
    assert connects[1]["last_event_id"] == "gone-long-ago"
    assert connects[2]["reset"] is False
    reasons = {
        vars(record)["stream"]: vars(record)["reason"]
        for record in stream_records(stream_logs, "stream_disconnect")
    }
    assert reasons == {1: "limit", 2: "shutdown"}


def test_a_refused_stream_is_logged(
    hub: Hub, open_stream: OpenStream, stream_logs: pytest.LogCaptureFixture
) -> None:
    assert open_stream(hub.url, "types=bogus").status == 400
    [refused] = stream_records(stream_logs, "stream_refused")
    assert refused.getMessage().startswith("event=stream_refused client=127.0.0.1:")
    assert 'status=400 error="types must be a comma-separated list of ' in refused.getMessage()
    assert not stream_records(stream_logs, "stream_connect")


# --- quiet by default --------------------------------------------------------------------------------


def test_a_hub_session_adds_no_handler_and_prints_nothing(
    make_hub: Callable[..., Hub], open_stream: OpenStream, capsys: pytest.CaptureFixture[str]
) -> None:
    root_before = list(logging.getLogger().handlers)
    hub = make_hub()
    stream = open_stream(hub.url)
    stream.expect_open()
    metric = hub.service.create_metric("cpu")
    hub.service.create_reading(metric.id, 1)
    stream.next_event()
    stream.close()
    wait_for(lambda: not hub.app.broadcaster.clients, what="the disconnect")
    hub.stop()
    assert logging.getLogger().handlers == root_before
    package = logging.getLogger("metricstream")
    assert package.level == logging.NOTSET
    assert all(type(handler) is logging.NullHandler for handler in package.handlers)
    assert capsys.readouterr() == ("", "")


QUIET_SESSION = """
    import logging
    from metricstream import Hub
    from metricstream.wire import GENESIS_ID

    with Hub(port=0) as hub:
        with hub.subscribe(last_event_id=GENESIS_ID) as sub:
            metric = hub.service.create_metric("cpu")
            hub.service.create_reading(metric.id, 1)
            events = iter(sub)
            next(events), next(events)
        # What a library logs at warning must not reach stderr either (Python's last-resort handler):
        logging.getLogger("metricstream.stream").warning("should stay unseen")
    assert logging.getLogger().handlers == []
"""


def test_a_fresh_interpreter_using_a_hub_prints_nothing() -> None:
    # Outside pytest, whose own capture handlers sit on the root logger and would hide the difference.
    done = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(QUIET_SESSION)],
        capture_output=True,
        env=child_env(),
        timeout=WAIT,
        check=False,
    )
    assert (done.returncode, done.stdout, done.stderr) == (0, b"", b"")


@pytest.mark.parametrize("level", ["info", "warning"])
def test_serve_writes_log_lines_to_stderr(level: str) -> None:
    command = [sys.executable, "-m", "metricstream", "serve", "--port", "0", "--log-level", level]
    with child(command) as process:
        assert process.stderr is not None
        url = serve_url(process)
        stream = RawStream(url, "types=metric_created")
        stream.expect_open()
        peer = f"127.0.0.1:{stream.sock.getsockname()[1]}"
        seen = bytearray()
        if level == "info":
            read_until(process.stderr, r"event=stream_connect stream=1 client=" + peer, seen)
        stream.close()
        if level == "info":
            found = read_until(
                process.stderr, r"event=stream_disconnect .*reason=(\w+) duration=([\d.]+)", seen
            )
            assert found.group(1) == "gone"
        else:
            wait_for(lambda: scrape(url)("metricstream_clients_connected") == 0, what="the disconnect")
        process.send_signal(signal.SIGTERM)
        status, _, rest = finish(process)
    assert status == 0
    stderr = seen.decode() + rest
    lines = stderr.splitlines()
    assert all(line.startswith("time=") for line in lines), stderr
    stream_lines = [line for line in lines if "logger=metricstream.stream" in line]
    if level == "info":
        assert len(stream_lines) == 2, stderr
        assert " level=info logger=metricstream.stream event=stream_connect stream=1 " in stream_lines[0]
        assert "types=metric_created replay=0 reset=false clients=1" in stream_lines[0]
    else:
        assert stream_lines == []
