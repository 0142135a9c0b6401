"""The export encoders (`service/export_formats.py`) without a server: times written as the API writes them,
CSV fields quoted as RFC 4180 says, text holding `%` kept as it is, empty files that still read back, and a
file split over many pages that reads back as one. Over HTTP, against `frame()`: tests/e2e/test_exports.py."""

from __future__ import annotations

import csv
import io
import json
from array import array
from datetime import UTC, datetime

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import given
from hypothesis import strategies as st

from metricstream.domain.buckets import Bucket
from metricstream.domain.exports import EXPORT_FORMATS, ExportFormat
from metricstream.domain.values import Metric, format_timestamp
from metricstream.service.export_formats import open_encoder, time_texts
from metricstream.storage.rows import ReadingColumns, micros, moment

EARLIEST = micros(datetime(1, 1, 1, tzinfo=UTC))
LATEST = micros(datetime(9999, 12, 31, 23, 59, 59, 999999, tzinfo=UTC))
METRIC = Metric(
    "01a21b32-2870-78a3-85f4-5b37387bfd17",
    'cpu %s, "100%"',
    labels={"host": "a,b", "note": 'say "x"\nthen y'},
    unit="%",
    description=None,
)


def _page(*times: int) -> ReadingColumns:
    return ReadingColumns(array("q", times), array("d", [0.5 + i for i in range(len(times))]), None)


@given(st.lists(st.integers(EARLIEST, LATEST), max_size=50))
def test_times_are_written_as_the_api_writes_them(times: list[int]) -> None:
    assert time_texts(times) == [format_timestamp(moment(value)) for value in times]


def test_times_of_one_minute_and_either_side_of_1970() -> None:
    times = [-1, 0, 59_999_999, 60_000_000, EARLIEST, LATEST]
    assert time_texts(times) == [
        "1969-12-31T23:59:59.999999Z",
        "1970-01-01T00:00:00.000000Z",
        "1970-01-01T00:00:59.999999Z",
        "1970-01-01T00:01:00.000000Z",
        "0001-01-01T00:00:00.000000Z",
        "9999-12-31T23:59:59.999999Z",
    ]


def _encode(format: ExportFormat, pages: list[ReadingColumns | list[Bucket]], buckets: bool = False) -> bytes:
    encoder = open_encoder(format, buckets)
    return b"".join([encoder.page(METRIC, page) for page in pages]) + encoder.end()


def test_csv_quotes_what_must_be_quoted_and_nothing_else() -> None:
    body = _encode("csv", [_page(0)])
    assert body.decode().split("\r\n") == [
        "metric,metric_id,labels,unit,description,timestamp,value",
        '"cpu %s, ""100%""",01a21b32-2870-78a3-85f4-5b37387bfd17,"host=a\\,b,note=say ""x""\nthen y",%,,'
        "1970-01-01T00:00:00.000000Z,0.5",
        "",
    ]
    (row,) = csv.DictReader(io.StringIO(body.decode(), newline=""))
    assert row["metric"] == METRIC.name
    assert row["labels"] == 'host=a\\,b,note=say "x"\nthen y'


def test_json_rows_keep_percent_signs_and_nulls() -> None:
    rows = json.loads(_encode("json", [_page(0, 1), _page(2)]))
    assert [row["metric"] for row in rows] == [METRIC.name] * 3
    assert rows[2] == {
        "metric": METRIC.name,
        "metric_id": METRIC.id,
        "labels": 'host=a\\,b,note=say "x"\nthen y',
        "unit": "%",
        "description": None,
        "timestamp": "1970-01-01T00:00:00.000002Z",
        "value": 0.5,
    }


@pytest.mark.parametrize("format", EXPORT_FORMATS)
@pytest.mark.parametrize("buckets", [False, True])
def test_an_export_of_no_rows_is_a_whole_empty_file(format: ExportFormat, buckets: bool) -> None:
    body = _encode(format, [[] if buckets else _page()], buckets)
    header = "metric,metric_id,labels,unit,description," + (
        "start,count,min,max,avg,first,last" if buckets else "timestamp,value"
    )
    if format == "csv":
        assert body == f"{header}\r\n".encode()
    elif format == "json":
        assert body == b"[]"
    else:
        table = pa.ipc.open_stream(body).read_all() if format == "arrow" else pq.read_table(io.BytesIO(body))
        assert table.num_rows == 0
        assert table.column_names == header.split(",")


def test_pages_are_record_batches_and_row_groups() -> None:
    pages = [_page(0, 1), _page(), _page(2, 3, 4)]
    stream = pa.ipc.open_stream(_encode("arrow", list(pages)))
    assert [batch.num_rows for batch in stream] == [2, 3]
    parquet = pq.ParquetFile(io.BytesIO(_encode("parquet", list(pages))))
    assert [parquet.metadata.row_group(i).num_rows for i in range(parquet.num_row_groups)] == [2, 3]
    assert parquet.read().column("value").to_pylist() == [0.5, 1.5, 0.5, 1.5, 2.5]


def test_buckets_keep_their_count_as_an_integer() -> None:
    start = datetime(2026, 3, 1, tzinfo=UTC)
    body = _encode("csv", [[Bucket(start, 3, 0.5, 2.5, 1.5, 0.5, 2.5)]], buckets=True)
    assert body.decode().split("\r\n")[1].endswith(",2026-03-01T00:00:00.000000Z,3,0.5,2.5,1.5,0.5,2.5")
