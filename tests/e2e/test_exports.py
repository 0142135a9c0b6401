"""Exports over real HTTP, on every store: `GET /readings` and `GET /metrics/{id}/readings` in CSV, JSON,
Arrow IPC and Parquet, read back by pyarrow's and polars' own readers and compared with `frame()` of the
same selection (columns, types and values); the format chosen by `format=` or the Accept header; the
stream position to resume from; the answer streamed while the store is still being read; and refusals."""

from __future__ import annotations

import asyncio
import io
import sys
import threading
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import polars as pl
import pyarrow as pa
import pyarrow.compute
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq
import pytest

from metricstream.domain.values import Metric
from metricstream.errors import UnavailableError
from metricstream.server.hub import Hub
from metricstream.service.metric_service import MetricService
from metricstream.storage.memory import MemoryStorage
from metricstream.storage.rows import ReadingColumns
from tests.support.apitools import OpenStream
from tests.support.hubs import FAST, StartHub
from tests.support.processes import child, child_env, serve_url

FORMATS = ["json", "csv", "arrow", "parquet"]
MEDIA_TYPES = {
    "json": "application/json",
    "csv": "text/csv; charset=utf-8; header=present",
    "arrow": "application/vnd.apache.arrow.stream",
    "parquet": "application/vnd.apache.parquet",
}
T0 = datetime(2026, 3, 1, 12, tzinfo=UTC)
# Floats whose text must read back exactly, and times far apart, to the microsecond.
VALUES = [0.1, 1 / 3, 1e-300, 1.7976931348623157e308, 2.0, 123456.789, 5e-324]
NAME = 'loss, "train"'


def _fill(service: MetricService) -> list[Metric]:
    """Three metrics, two of one name (told apart by labels) whose name and labels need quoting in CSV, one
    with neither labels, unit nor description; readings out of order, tied in time, before 1970 too."""
    metrics = [
        service.create_metric(
            NAME,
            labels={"run": "a", "dc": 'eu,1 "x"\\y'},
            unit="nats",
            description='says "hi", twice: 100% %s',
        ),
        service.create_metric("acc"),
        service.create_metric(NAME, labels={"run": "b"}, unit="nats"),
    ]
    for offset, metric in enumerate(metrics):
        items = [
            {
                "metric_id": metric.id,
                "value": VALUES[(i + offset) % len(VALUES)],
                "timestamp": T0 + timedelta(seconds=(i * 7) % 40, microseconds=i % 2),
            }
            for i in range(60)
        ]
        items.append({"metric_id": metric.id, "value": 7.5, "timestamp": datetime(1969, 7, 20, tzinfo=UTC)})
        service.create_readings(items)
    return metrics


def _arrow(format: str, body: bytes, schema: pa.Schema) -> pa.Table:
    """The export read by pyarrow's reader of its format (CSV told which type each column has, and that
    an empty unquoted field is null but "" is empty text)."""
    if format == "arrow":
        return pa.ipc.open_stream(body).read_all()
    if format == "parquet":
        return pq.read_table(io.BytesIO(body))
    assert format == "csv", format
    options = pa_csv.ConvertOptions(
        column_types=schema, strings_can_be_null=True, quoted_strings_can_be_null=False
    )
    parse = pa_csv.ParseOptions(newlines_in_values=True)
    # CSV has no notion of a non-null column: the frame's schema, once no value is missing
    return pa_csv.read_csv(io.BytesIO(body), convert_options=options, parse_options=parse).cast(schema)


def _polars(format: str, body: bytes, schema: pl.Schema) -> pl.DataFrame:
    """The export read by polars' reader of its format."""
    if format == "arrow":
        return pl.read_ipc_stream(io.BytesIO(body))
    if format == "parquet":
        return pl.read_parquet(io.BytesIO(body))
    if format == "csv":
        return pl.read_csv(io.BytesIO(body), schema=schema)
    return pl.read_json(io.BytesIO(body), schema=schema) if body != b"[]" else pl.DataFrame(schema=schema)


def assert_reads_as_frame(
    answers: dict[str, httpx.Response], service: MetricService, **selection: Any
) -> None:
    """Each format's answer, read by pyarrow (but JSON, which pyarrow reads only as lines) and by polars,
    is `frame()` of `selection`: the same columns, types and values."""
    expected_arrow = service.frame(**selection, library="arrow")
    expected_polars = service.frame(**selection, library="polars")
    for format, answer in answers.items():
        assert answer.status_code == 200, answer.text
        assert answer.headers["content-type"] == MEDIA_TYPES[format]
        if format != "json":
            got = _arrow(format, answer.content, expected_arrow.schema)
            assert got.schema == expected_arrow.schema, format
            assert got.equals(expected_arrow), format
        got_polars = _polars(format, answer.content, expected_polars.schema)
        assert got_polars.schema == expected_polars.schema, format
        assert got_polars.equals(expected_polars), format


def _each_format(http: httpx.Client, path: str, **params: Any) -> dict[str, httpx.Response]:
    return {format: http.get(path, params={**params, "format": format}) for format in FORMATS}


def test_every_format_reads_back_as_frame(hub: Hub, http: httpx.Client) -> None:
    _fill(hub.service)
    answers = _each_format(http, "/readings")
    assert_reads_as_frame(answers, hub.service)
    assert len(hub.service.frame(library="arrow")) == 183


def test_json_rows_hold_the_columns_as_keys(hub: Hub, http: httpx.Client) -> None:
    first = _fill(hub.service)[0]
    rows = http.get("/readings", params={"name": NAME, "labels": "run=a"}).json()
    expected = hub.service.frame(first, library="arrow").to_pylist()
    assert len(rows) == len(expected) == 61
    assert [{**row, "timestamp": row["timestamp"].isoformat()} for row in expected] == [
        {**row, "timestamp": datetime.fromisoformat(row["timestamp"]).isoformat()} for row in rows
    ]
    assert rows[0] == {
        "metric": NAME,
        "metric_id": first.id,
        "labels": 'dc=eu\\,1 "x"\\\\y,run=a',
        "unit": "nats",
        "description": 'says "hi", twice: 100% %s',
        "timestamp": "1969-07-20T00:00:00.000000Z",
        "value": 7.5,
    }


def test_csv_is_rfc_4180(hub: Hub, http: httpx.Client) -> None:
    metrics = _fill(hub.service)
    answer = http.get(
        f"/metrics/{metrics[1].id}/readings", params={"format": "csv", "until": "1970-01-01T00:00:00Z"}
    )
    assert answer.content == (
        b"metric,metric_id,labels,unit,description,timestamp,value\r\n"
        + f'acc,{metrics[1].id},"",,,1969-07-20T00:00:00.000000Z,7.5\r\n'.encode()
    )
    quoted = http.get(f"/metrics/{metrics[0].id}/readings", params={"format": "csv"}).text.split("\r\n")[1]
    assert quoted.startswith(
        f'"loss, ""train""",{metrics[0].id},"dc=eu\\,1 ""x""\\\\y,run=a",nats,"says ""hi"", twice: 100% %s",'
    )


# Each selection: the route and its query, and what frame() is given for the same rows.
Selection = Callable[[list[Metric]], tuple[str, dict[str, str], dict[str, Any]]]
SINCE, UNTIL = (T0 + timedelta(seconds=5)).isoformat(), (T0 + timedelta(seconds=30)).isoformat()
SELECTIONS: dict[str, Selection] = {
    "one metric": lambda m: (f"/metrics/{m[0].id}/readings", {}, {"metrics": m[0]}),
    "by name": lambda m: ("/readings", {"name": NAME}, {"metrics": NAME}),
    "by labels": lambda m: ("/readings", {"labels": "run=b"}, {"metrics": m[2]}),
    "by name and labels": lambda m: ("/readings", {"name": NAME, "labels": "run=a"}, {"metrics": m[0]}),
    "since and until": lambda m: (
        "/readings",
        {"since": SINCE, "until": UNTIL},
        {"since": SINCE, "until": UNTIL},
    ),
    "one metric since": lambda m: (
        f"/metrics/{m[1].id}/readings",
        {"since": SINCE},
        {"metrics": m[1], "since": SINCE},
    ),
    # from 1969 to 2026: a month's step is under 10,000 buckets
    "step": lambda m: ("/readings", {"step": "30d"}, {"step": "30d"}),
    "one metric step, since and until": lambda m: (
        f"/metrics/{m[2].id}/readings",
        {"step": "5s", "since": SINCE, "until": UNTIL},
        {"metrics": m[2], "step": "5s", "since": SINCE, "until": UNTIL},
    ),
    "by labels with step": lambda m: (
        "/readings",
        {"labels": "run=a", "step": "30d"},
        {"metrics": m[0], "step": "30d"},
    ),
    "none": lambda m: ("/readings", {"name": "nothing"}, {"metrics": []}),
}


@pytest.mark.parametrize("selection", SELECTIONS)
def test_a_selection_reads_back_as_its_frame(hub: Hub, http: httpx.Client, selection: str) -> None:
    path, params, chosen = SELECTIONS[selection](_fill(hub.service))
    json_route = path.startswith("/metrics/")  # whose json is the paged answer, not rows
    answers = _each_format(http, path, **params)
    if json_route:
        del answers["json"]
    assert_reads_as_frame(answers, hub.service, **chosen)


# --- the format asked for, and the answer's headers ---------------------------------------------------


@pytest.mark.parametrize("format", ["csv", "arrow", "parquet"])
def test_the_accept_header_chooses_the_format(hub: Hub, http: httpx.Client, format: str) -> None:
    metric = _fill(hub.service)[1]
    media_type = MEDIA_TYPES[format].split(";")[0]
    for path, filename in (
        (f"/metrics/{metric.id}/readings", f"readings-{metric.id}"),
        ("/readings", "readings"),
    ):
        answer = http.get(path, headers={"Accept": f"application/json;q=0.5, {media_type}"})
        assert answer.headers["content-type"] == MEDIA_TYPES[format]
        suffix = {"csv": "csv", "arrow": "arrows", "parquet": "parquet"}[format]
        assert answer.headers["content-disposition"] == f'attachment; filename="{filename}.{suffix}"'
        assert answer.headers["vary"] == "Accept"
    assert_reads_as_frame({format: answer}, hub.service)


@pytest.mark.parametrize("accept", [None, "*/*", "application/json", "text/html, */*;q=0.8", "image/png"])
def test_json_stays_the_answer_unless_asked_otherwise(
    hub: Hub, http: httpx.Client, accept: str | None
) -> None:
    metric = _fill(hub.service)[1]
    headers = {} if accept is None else {"Accept": accept}
    paged = http.get(f"/metrics/{metric.id}/readings", headers=headers)
    assert paged.headers["content-type"] == "application/json"
    assert paged.json() == http.get(f"/metrics/{metric.id}/readings").json()
    assert [reading["id"] for reading in paged.json()][:1] != []
    rows = http.get("/readings", headers=headers)
    assert rows.headers["content-type"] == "application/json"
    assert "content-disposition" not in rows.headers
    assert len(rows.json()) == 183


def test_format_wins_over_the_accept_header(hub: Hub, http: httpx.Client) -> None:
    _fill(hub.service)
    answer = http.get(
        "/readings", params={"format": "csv"}, headers={"Accept": "application/vnd.apache.parquet"}
    )
    assert answer.headers["content-type"] == MEDIA_TYPES["csv"]
    assert_reads_as_frame({"csv": answer}, hub.service)


def test_head_answers_the_headers_alone(hub: Hub, http: httpx.Client) -> None:
    _fill(hub.service)
    answer = http.head("/readings", params={"format": "parquet"})
    assert answer.status_code == 200
    assert answer.headers["content-type"] == MEDIA_TYPES["parquet"]
    assert answer.headers["x-last-event-id"] == http.get("/metrics").headers["x-last-event-id"]
    assert answer.content == b""


def test_an_export_resumes_on_the_stream_from_its_last_event_id(
    hub: Hub, http: httpx.Client, open_stream: OpenStream
) -> None:
    metrics = _fill(hub.service)
    answer = http.get("/readings", params={"format": "arrow"})
    position = answer.headers["x-last-event-id"]
    assert position == http.get("/metrics").headers["x-last-event-id"]
    later = hub.service.create_reading(metrics[1].id, 42.0)
    stream = open_stream(hub.url, headers={"Last-Event-ID": position})
    stream.expect_open()
    event = stream.next_event()
    assert event.event == "metric_reading_created"
    assert event.json() == later.to_dict()
    # and the export held every reading the stream does not replay
    assert pa.ipc.open_stream(answer.content).read_all().num_rows == 183


# --- streamed ---------------------------------------------------------------------------------------


class GatedStorage(MemoryStorage):
    """A memory store whose pages after a metric's first wait until `opened` is set (`waiting` says one
    does): what an answer holds before then was sent while the store was still being read."""

    def __init__(self) -> None:
        super().__init__()
        self.opened = threading.Event()
        self.waiting = threading.Event()

    async def reading_columns(
        self,
        metric_id: str,
        since: datetime | None,
        until: datetime | None,
        limit: int,
        after: tuple[datetime, str] | None = None,
    ) -> ReadingColumns:
        if after is not None:
            self.waiting.set()
            await asyncio.to_thread(self.opened.wait, 20)
        return await super().reading_columns(metric_id, since, until, limit, after)


@pytest.fixture
def gated() -> Iterator[tuple[Hub, GatedStorage]]:
    store = GatedStorage()
    with Hub(port=0, storage=store, **FAST) as hub:
        yield hub, store
        store.opened.set()


def _read_in_thread(answer: httpx.Response) -> tuple[threading.Thread, bytearray, threading.Event]:
    """Read `answer`'s body on a thread, into the bytearray given back; the event is set once some
    arrived."""
    received, arrived = bytearray(), threading.Event()

    def read() -> None:
        for chunk in answer.iter_raw():
            received.extend(chunk)
            arrived.set()

    reader = threading.Thread(target=read, name="export-reader", daemon=True)
    reader.start()
    return reader, received, arrived


@pytest.mark.parametrize("format", FORMATS)
def test_the_first_page_arrives_before_the_next_is_read(gated: tuple[Hub, GatedStorage], format: str) -> None:
    hub, store = gated
    _many(hub.service, "many", 25_000)  # three pages of 10,000
    with (
        httpx.Client(base_url=hub.url, timeout=10) as http,
        http.stream("GET", "/readings", params={"format": format}) as answer,
    ):
        assert answer.headers["transfer-encoding"] == "chunked"
        reader, received, arrived = _read_in_thread(answer)
        # While the store waits to read the second page, the first page's bytes have arrived.
        assert store.waiting.wait(10)
        assert arrived.wait(10)
        assert not store.opened.is_set()
        store.opened.set()
        reader.join(10)
        assert not reader.is_alive()
    whole = httpx.Response(200, content=bytes(received), headers={"content-type": MEDIA_TYPES[format]})
    assert_reads_as_frame({format: whole}, hub.service)
    assert len(hub.service.frame(library="arrow")) == 25_000


def _many(service: MetricService, name: str, count: int) -> Metric:
    metric = service.create_metric(name)
    for start in range(0, count, 10_000):
        service.create_readings(
            {"metric_id": metric.id, "value": i + 1.0, "timestamp": T0 + timedelta(seconds=i)}
            for i in range(start, min(start + 10_000, count))
        )
    return metric


def test_a_metric_deleted_while_exported_ends_its_rows_there(gated: tuple[Hub, GatedStorage]) -> None:
    hub, store = gated
    deleted, kept = _many(hub.service, "deleted", 25_000), _many(hub.service, "kept", 10)
    with (
        httpx.Client(base_url=hub.url, timeout=10) as http,
        http.stream("GET", "/readings", params={"format": "parquet"}) as answer,
    ):
        reader, received, _ = _read_in_thread(answer)
        assert store.waiting.wait(10)  # the first page of `deleted` is read
        assert http.delete(f"/metrics/{deleted.id}").status_code == 204
        store.opened.set()
        reader.join(10)
    table = pq.read_table(io.BytesIO(bytes(received)))
    # group_by's order is pyarrow's (threads may change it): sorted by name
    counts = table.group_by("metric").aggregate([("value", "count")]).sort_by("metric")
    assert counts.to_pylist() == [
        {"metric": "deleted", "value_count": 10_000},
        {"metric": "kept", "value_count": 10},
    ]
    assert table.filter(pa.compute.equal(table["metric"], "kept")).equals(
        hub.service.frame(kept, library="arrow")
    )


class FailingStorage(MemoryStorage):
    """A memory store that fails to read any page after a metric's first, as a store that goes away."""

    async def reading_columns(
        self,
        metric_id: str,
        since: datetime | None,
        until: datetime | None,
        limit: int,
        after: tuple[datetime, str] | None = None,
    ) -> ReadingColumns:
        if after is not None:
            raise UnavailableError("the store failed: disk I/O error")
        return await super().reading_columns(metric_id, since, until, limit, after)


@pytest.mark.parametrize("format", FORMATS)
def test_a_store_failing_midway_leaves_the_answer_incomplete(format: str) -> None:
    """Not a shorter file that reads as whole: the chunked answer ends without its last chunk."""
    with (
        Hub(port=0, storage=FailingStorage(), **FAST) as hub,
        httpx.Client(base_url=hub.url, timeout=10) as http,
    ):
        _many(hub.service, "many", 15_000)
        with pytest.raises(httpx.RemoteProtocolError, match="incomplete chunked read"):
            http.get("/readings", params={"format": format})
        assert http.get("/healthz").status_code == 200


# --- refused ----------------------------------------------------------------------------------------

BAD_QUERIES: dict[str, tuple[dict[str, str], str]] = {
    "unknown format": ({"format": "xlsx"}, "format must be json, csv, arrow or parquet"),
    "format in capitals": ({"format": "CSV"}, "format must be json, csv, arrow or parquet"),
    "bad labels": (
        {"format": "csv", "labels": "host"},
        "labels must be name=value pairs separated by commas (labels=host=a,dc=x), not 'host'",
    ),
    "bad label name": (
        {"format": "csv", "labels": "__x=1"},
        "label name '__x' is not valid: names starting with __ are reserved",
    ),
    "bad since": (
        {"format": "csv", "since": "yesterday"},
        "since must be an RFC 3339 date-time with an offset, e.g. 2026-01-01T12:00:00Z",
    ),
    "naive until": (
        {"format": "arrow", "until": "2026-03-01T12:00:00"},
        "until must be an RFC 3339 date-time with an offset: 2026-03-01T12:00:00 has no UTC offset: "
        "add Z (UTC) or +hh:mm, e.g. 2026-03-01T12:00:00Z",
    ),
    "since after until": (
        {"format": "parquet", "since": UNTIL, "until": SINCE},
        "since must not be later than until",
    ),
    "bad step": (
        {"format": "csv", "step": "0"},
        "step must be a number of seconds or a duration such as 10s, 5m, 1h (from 1ms to 366d)",
    ),
}


# On /metrics/{id}/readings, name and labels are not parameters (the metric is chosen).
CHOOSING = {"bad labels", "bad label name"}


@pytest.mark.parametrize("case", BAD_QUERIES)
def test_bad_queries_are_refused(hub: Hub, http: httpx.Client, case: str) -> None:
    metric = _fill(hub.service)[0]
    params, message = BAD_QUERIES[case]
    paths = ["/readings"] if case in CHOOSING else ["/readings", f"/metrics/{metric.id}/readings"]
    for path in paths:
        answer = http.get(path, params=params)
        assert answer.status_code == 400, (path, answer.text)
        assert answer.headers["content-type"] == "application/json"
        assert answer.json() == {"error": message}


def test_too_many_buckets_are_refused_before_any_byte(hub: Hub, http: httpx.Client) -> None:
    metrics = _fill(hub.service)
    answer = http.get("/readings", params={"format": "csv", "step": "1ms"})
    assert answer.status_code == 400
    assert answer.json() == {
        "error": f"step 0.001 s from the first reading to the last of metric {metrics[0].id} spans "
        "1786622439001 buckets, more than 10000: use a larger step or a shorter range"
    }
    answer = http.get("/readings", params={"format": "csv", "step": "1ms", "since": SINCE, "until": UNTIL})
    assert answer.json() == {
        "error": "step 0.001 s from since to until spans 25001 buckets, more than 10000: "
        "use a larger step or a shorter range"
    }


@pytest.mark.parametrize("name", ["limit", "cursor", "order"])
def test_paging_does_not_apply_to_an_export(hub: Hub, http: httpx.Client, name: str) -> None:
    metric = _fill(hub.service)[0]
    # a cursor as a cut JSON answer links to it
    cursor = (
        http.get(f"/metrics/{metric.id}/readings", params={"limit": 1}).links["next"]["url"].split("=")[-1]
    )
    given = {"limit": "10", "cursor": cursor, "order": "desc"}[name]
    answer = http.get(f"/metrics/{metric.id}/readings", params={"format": "csv", name: given})
    assert answer.status_code == 400
    assert answer.json() == {
        "error": f"{name} does not apply to format=csv: an export holds every reading from since to until, "
        "oldest first; narrow it with since and until"
    }
    both = http.get(
        f"/metrics/{metric.id}/readings", params={"format": "arrow", "limit": "1", "order": "asc"}
    )
    assert both.json()["error"].startswith("limit, order do not apply to format=arrow")


def test_a_metric_no_one_has_is_not_found(http: httpx.Client) -> None:
    missing = "01a21b32-2870-78a3-85f4-5b37387bfd17"
    answer = http.get(f"/metrics/{missing}/readings", params={"format": "parquet"})
    assert answer.status_code == 404
    assert answer.json() == {"error": f"metric {missing} not found"}
    answer = http.get("/metrics/x/readings", params={"format": "csv"})
    assert answer.status_code == 400
    assert answer.json() == {"error": "id must be a UUID, got 'x'"}


def test_exports_need_the_read_token(make_hub: Callable[..., Hub]) -> None:
    hub = make_hub(token="write-secret-0123456789", subscribe_token="read-secret-0123456789")
    with httpx.Client(base_url=hub.url, timeout=10) as http:
        assert http.get("/readings", params={"format": "csv"}).status_code == 401
        answer = http.get(
            "/readings", params={"format": "csv"}, headers={"Authorization": "Bearer read-secret-0123456789"}
        )
        assert answer.status_code == 200
        assert answer.text == "metric,metric_id,labels,unit,description,timestamp,value\r\n"


# A server whose Python cannot import pyarrow, as one installed without the extra.
WITHOUT_PYARROW = (
    "import sys; sys.modules['pyarrow'] = None; from metricstream.cli import main; sys.exit(main())"
)


def test_without_pyarrow_arrow_and_parquet_are_not_implemented_but_csv_is() -> None:
    command = [sys.executable, "-c", WITHOUT_PYARROW, "serve", "--port", "0"]
    with (
        child(command, child_env()) as process,
        httpx.Client(base_url=serve_url(process), timeout=10) as http,
    ):
        metric = http.post("/metrics", json={"name": "x"}).json()
        http.post(
            "/metrics/readings",
            json={"metric_id": metric["id"], "value": 1.5, "timestamp": "2026-03-01T12:00:00Z"},
        )
        for format in ("arrow", "parquet"):
            for answer in (
                http.get("/readings", params={"format": format}),
                http.get(f"/metrics/{metric['id']}/readings", headers={"Accept": MEDIA_TYPES[format]}),
            ):
                assert answer.status_code == 501
                assert answer.json() == {
                    "error": f"the {format} format needs pyarrow, which this server does not have: "
                    "pip install 'metricstream[arrow]'"
                }
        csv = http.get("/readings", params={"format": "csv"})
        assert csv.status_code == 200
        assert csv.text.endswith(f'x,{metric["id"]},"",,,2026-03-01T12:00:00.000000Z,1.5\r\n')


def test_a_page_in_a_browser_may_read_the_position_and_the_file_name(start_hub: StartHub) -> None:
    hub = start_hub(cors_origins="http://localhost:3000")
    with httpx.Client(base_url=hub.url, timeout=10, headers={"Origin": "http://localhost:3000"}) as http:
        answer = http.get("/readings", params={"format": "csv"})
    assert answer.headers["access-control-allow-origin"] == "http://localhost:3000"
    exposed = {h.strip().lower() for h in answer.headers["access-control-expose-headers"].split(",")}
    assert {"x-last-event-id", "content-disposition"} <= exposed
