"""The Prometheus HTTP API over real HTTP: as `prometheus-api-client` (the client Python users point at a
Prometheus) reads it, GET and POST forms alike, every refusal in Prometheus's error envelope (never a 500),
the token rules (a query sent as a POST form is a read), and the discovery routes Grafana asks."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from prometheus_api_client import PrometheusConnect

from metricstream.server.hub import Hub
from tests.support.hubs import StartHub

T = datetime(2026, 1, 1, tzinfo=UTC)
SECONDS = T.timestamp()


def _fill(hub: Hub) -> None:
    hub.service.create_metric("temperature", labels={"host": "a"}, unit="Cel", description="Room temperature")
    items = [
        {
            "metric": "temperature",
            "labels": {"host": host},
            "value": value + i,
            "timestamp": T + timedelta(seconds=15 * i),
        }
        for host, value in (("a", 20.0), ("b", 30.0))
        for i in range(41)  # 10 minutes
    ]
    items += [
        {
            "metric": "requests_total",
            "labels": {"job": "api"},
            "value": 1.0 + i,
            "timestamp": T + timedelta(seconds=15 * i),
        }
        for i in range(41)
    ]
    hub.service.create_readings(items)


@pytest.fixture
def filled(make_hub: Callable[..., Hub]) -> Hub:
    hub = make_hub()
    _fill(hub)
    return hub


def test_prometheus_api_client_queries_metricstream_as_it_would_prometheus(filled: Hub) -> None:
    prometheus = PrometheusConnect(url=filled.url, disable_ssl=True)
    at = str(SECONDS + 300)
    vector = prometheus.custom_query('temperature{host="b"}', params={"time": at})
    assert vector == [{"metric": {"__name__": "temperature", "host": "b"}, "value": [SECONDS + 300, "50"]}]
    rate = prometheus.custom_query("rate(requests_total[1m])", params={"time": at})
    assert rate == [{"metric": {"job": "api"}, "value": [SECONDS + 300, "0.06666666666666667"]}]
    matrix = prometheus.custom_query_range(
        "avg(temperature)", start_time=T + timedelta(minutes=1), end_time=T + timedelta(minutes=3), step="60"
    )
    assert matrix == [
        {"metric": {}, "values": [[SECONDS + 60, "29"], [SECONDS + 120, "33"], [SECONDS + 180, "37"]]}
    ]
    assert prometheus.all_metrics() == ["requests_total", "temperature"]
    assert prometheus.get_label_names() == ["__name__", "host", "job"]
    assert prometheus.get_label_values("host") == ["a", "b"]
    series = prometheus.get_series(T, T + timedelta(hours=1), params={"match[]": "temperature"})
    assert series == [{"__name__": "temperature", "host": "a"}, {"__name__": "temperature", "host": "b"}]
    metadata = prometheus.get_metric_metadata("temperature")
    assert {
        "metric_name": "temperature",
        "type": "gauge",
        "help": "Room temperature",
        "unit": "Cel",
    } in metadata
    current = prometheus.get_current_metric_value("temperature", {"host": "a"}, params={"time": at})
    assert current == [{"metric": {"__name__": "temperature", "host": "a"}, "value": [SECONDS + 300, "40"]}]


def test_a_post_form_answers_as_the_query_string_does(start_hub: StartHub) -> None:
    hub = start_hub()
    _fill(hub)
    parameters = {
        "query": "max(temperature) - 1",
        "start": str(SECONDS),
        "end": str(SECONDS + 600),
        "step": "1m",
    }
    with httpx.Client(base_url=hub.url) as client:
        by_get = client.get("/api/v1/query_range", params=parameters)
        by_post = client.post("/api/v1/query_range", data=parameters)
        # the form's value first, as Prometheus (Go's FormValue) takes it
        mixed = client.post("/api/v1/query_range", params={"query": "nothing("}, data=parameters)
    assert by_get.status_code == by_post.status_code == mixed.status_code == 200
    assert by_get.json() == by_post.json() == mixed.json()
    values = by_get.json()["data"]["result"][0]["values"]
    assert values[0] == [SECONDS, "29"]
    assert len(values) == 11


@pytest.mark.parametrize(
    ("path", "parameters", "message"),
    [
        ("/api/v1/query", {}, "no expression found"),
        ("/api/v1/query", {"query": "up", "time": "yesterday"}, "invalid parameter 'time'"),
        ("/api/v1/query", {"query": "sum(", "time": "0"}, "invalid PromQL"),
        ("/api/v1/query", {"query": "holt_winters(x[5m], 0.5, 0.5)"}, "function holt_winters"),
        ("/api/v1/query", {"query": 'x{a=~"(a+)+"}'}, "repeated group"),
        ("/api/v1/query", {"query": "up", "timeout": "soon"}, "invalid parameter 'timeout'"),
        ("/api/v1/query_range", {"query": "up", "end": "10", "step": "1"}, "invalid parameter 'start'"),
        ("/api/v1/query_range", {"query": "up", "start": "0", "end": "10"}, "invalid parameter 'step'"),
        ("/api/v1/query_range", {"query": "up", "start": "0", "end": "10", "step": "0"}, "zero or negative"),
        ("/api/v1/query_range", {"query": "up", "start": "0", "end": "86400", "step": "1"}, "11,000 points"),
        (
            "/api/v1/query_range",
            {"query": "up", "start": "10", "end": "0", "step": "1"},
            "must not be before",
        ),
        ("/api/v1/series", {}, "no match[] parameter provided"),
        ("/api/v1/series", {"match[]": "rate(x[1m])"}, "not a series selector"),
        ("/api/v1/series", {"match[]": '{a=~".*"}'}, "at least one non-empty matcher"),
        ("/api/v1/labels", {"match[]": "{"}, "invalid PromQL"),
        ("/api/v1/label/1bad/values", {}, "invalid label name"),
        ("/api/v1/metadata", {"limit": "ten"}, "limit must be a number"),
    ],
)
def test_bad_requests_get_prometheus_s_error_envelope(
    start_hub: StartHub, path: str, parameters: dict[str, str], message: str
) -> None:
    hub = start_hub()
    for answer in (
        httpx.get(f"{hub.url}{path}", params=parameters),
        httpx.post(f"{hub.url}{path}", data=parameters),
    ):
        if answer.status_code == 405:  # label values and metadata are GET only, as in Prometheus
            continue
        assert answer.status_code == 400, answer.text
        assert answer.headers["content-type"] == "application/json"
        body = answer.json()
        assert body["status"] == "error"
        assert body["errorType"] == "bad_data"
        assert message in body["error"]


def test_a_query_that_cannot_be_answered_is_an_execution_error(start_hub: StartHub) -> None:
    hub = start_hub()
    hub.service.create_readings(
        [{"metric": name, "labels": {"x": "1"}, "value": 1.0, "timestamp": T} for name in ("a", "b")]
    )
    answer = httpx.get(
        f"{hub.url}/api/v1/query", params={"query": '-{__name__=~"a|b"}', "time": str(SECONDS)}
    )
    assert answer.status_code == 422
    assert answer.json() == {
        "status": "error",
        "errorType": "execution",
        "error": "vector cannot contain metrics with the same labelset",
    }


def test_queries_are_reads_whether_sent_as_get_or_as_a_post_form(start_hub: StartHub) -> None:
    hub = start_hub(token="writer-token-0123456789", subscribe_token="reader-token-0123456789")
    form = {"query": "1 + 1", "time": "0"}
    reader = {"Authorization": "Bearer reader-token-0123456789"}
    with httpx.Client(base_url=hub.url) as client:
        assert client.post("/api/v1/query", data=form).status_code == 401
        assert client.get("/api/v1/labels").status_code == 401
        assert client.post("/api/v1/query", data=form, headers=reader).json()["data"]["result"] == [0, "2"]
        assert client.get("/api/v1/query", params=form, headers=reader).status_code == 200
        for path, status in (("/api/v1/query_range", 400), ("/api/v1/series", 400), ("/api/v1/labels", 200)):
            assert client.post(path, data={}, headers=reader).status_code == status  # past the gate
        refused = client.post("/api/v1/query", data=form, headers={"Authorization": "Bearer wrong"})
    assert refused.status_code == 401
    assert "error" in refused.json()  # the gate's own refusal, as on every route


def test_buildinfo_names_the_prometheus_version_whose_semantics_are_followed(start_hub: StartHub) -> None:
    answer = httpx.get(f"{start_hub().url}/api/v1/status/buildinfo")
    assert answer.status_code == 200
    assert answer.json()["status"] == "success"
    assert answer.json()["data"]["version"] == "2.42.0"


def test_metadata_tells_unit_and_description(start_hub: StartHub) -> None:
    hub = start_hub()
    hub.service.create_metric("temperature", labels={"room": "1"}, unit="Cel", description="Room temperature")
    hub.service.create_metric("temperature", labels={"room": "2"}, unit="Cel", description="Room temperature")
    hub.service.create_metric("bytes_total", unit="By")
    data = httpx.get(f"{hub.url}/api/v1/metadata").json()["data"]
    assert data == {
        "temperature": [{"type": "gauge", "help": "Room temperature", "unit": "Cel"}],
        "bytes_total": [{"type": "unknown", "help": "", "unit": "By"}],
    }
    assert httpx.get(f"{hub.url}/api/v1/metadata", params={"limit": "1"}).json()["data"].keys() == {
        "temperature"
    }
    only = httpx.get(f"{hub.url}/api/v1/metadata", params={"metric": "bytes_total"}).json()["data"]
    assert list(only) == ["bytes_total"]


def test_series_and_labels_between_start_and_end_are_those_with_readings_then(start_hub: StartHub) -> None:
    hub = start_hub()
    _fill(hub)
    hub.service.create_metric("idle", labels={"host": "c"})
    with httpx.Client(base_url=hub.url) as client:
        every = client.get("/api/v1/label/host/values").json()["data"]
        between = client.get(
            "/api/v1/label/host/values", params={"start": str(SECONDS), "end": str(SECONDS + 60)}
        )
        later = client.get("/api/v1/series", params={"match[]": '{host=~".+"}', "start": str(SECONDS + 3600)})
    assert every == ["a", "b", "c"]
    assert between.json()["data"] == ["a", "b"]
    assert later.json()["data"] == []
