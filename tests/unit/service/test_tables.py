"""service/tables.py's pure parts: which metrics a selection names, the checks made before any read, and
the table built in each library from columns."""

from __future__ import annotations

import subprocess
import sys
from array import array
from datetime import UTC, datetime
from typing import Any

import pandas as pd
import polars as pl
import pyarrow as pa
import pytest

from metricstream.domain.values import Metric
from metricstream.errors import NotFoundError, ValidationError
from metricstream.service.tables import (
    BUCKET_COLUMNS,
    READING_COLUMNS,
    TableBuilder,
    _arrow_text,
    select_metrics,
    start_table,
    table_columns,
)
from metricstream.storage.rows import ReadingColumns

LOSS = Metric(
    "01a21b5a-9c48-7513-90f9-87cc5399a7f6",
    "loss",
    labels={"dc": "x,1", "run": "a"},
    unit="nats",
    description="training loss",
)
ACC = Metric("01a21b5a-9c48-7513-90f9-87cc5399a7f7", "acc", labels={"host": "gpu1"})
LOSS2 = Metric("01a21b5a-9c48-7513-90f9-87cc5399a7f8", "loss", labels={"run": "b"})
EVERY = [LOSS, ACC, LOSS2]
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@pytest.mark.parametrize(
    ("wanted", "chosen"),
    [
        (None, EVERY),
        ("loss", [LOSS, LOSS2]),
        (ACC, [ACC]),
        (ACC.id.upper(), [ACC]),
        ([LOSS2, "acc", LOSS2.id], [ACC, LOSS2]),
        ([], []),
        (iter(["acc"]), [ACC]),
    ],
    ids=["none", "a-name-two-have", "metric", "id-any-case", "mixed-in-creation-order", "empty", "iterator"],
)
def test_a_selection_names_metrics_in_creation_order(wanted: object, chosen: list[Metric]) -> None:
    assert select_metrics(EVERY, wanted) == chosen  # type: ignore[arg-type]


def test_a_selection_of_what_no_metric_is_refused() -> None:
    with pytest.raises(NotFoundError, match="no metric has the id or name 'los'"):
        select_metrics(EVERY, ["loss", "los"])
    with pytest.raises(ValidationError, match="metrics must be names, ids or Metrics"):
        select_metrics(EVERY, [LOSS, 3])  # type: ignore[list-item]


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({"library": "numpy"}, "library must be one of 'pandas', 'polars', 'arrow', got 'numpy'"),
        ({"since": "2026-01-02T00:00:00Z", "until": "2026-01-01T00:00:00Z"}, "since must not be later"),
        ({"step": 0}, "step"),
    ],
)
def test_arguments_are_checked_before_any_read(arguments: dict[str, object], message: str) -> None:
    given = {"since": None, "until": None, "step": None, "library": "pandas", **arguments}
    with pytest.raises(ValidationError, match=message):
        start_table(**given)  # type: ignore[arg-type]


def _table(library: str, label_columns: bool = False) -> TableBuilder:
    table, _ = start_table(None, None, None, library, label_columns)
    moment = datetime(1500, 1, 1, tzinfo=UTC)  # before pandas' nanoseconds reach: microseconds hold it
    micros = int((moment - datetime(1970, 1, 1, tzinfo=UTC)).total_seconds()) * 1_000_000
    table.add(LOSS, ReadingColumns(array("q", [micros, 0]), array("d", [0.5, 1.5]), (moment, "x")))
    table.add(LOSS, ReadingColumns(array("q", [1]), array("d", [2.5]), (moment, "y")))
    table.add(ACC, ReadingColumns(array("q"), array("d"), None))
    table.add(LOSS2, ReadingColumns(array("q", [2]), array("d", [3.5]), (moment, "z")))
    return table


def _rows(table: Any) -> list[tuple[Any, ...]]:
    """A table's rows as tuples of Python values, whatever its library; pandas' missing text (NaN in
    pandas 3's str dtype) as None."""
    if isinstance(table, pd.DataFrame):
        return [
            tuple(
                v.to_pydatetime() if isinstance(v, pd.Timestamp) else None if v is None or v != v else v
                for v in row
            )
            for row in table.itertuples(index=False)
        ]
    if isinstance(table, pl.DataFrame):
        return table.rows()
    assert isinstance(table, pa.Table)
    return [tuple(row.values()) for row in table.to_pylist()]


def test_each_library_gets_the_same_columns_and_rows() -> None:
    pandas = _table("pandas").build()
    polars = _table("polars").build()
    arrow = _table("arrow").build()
    assert isinstance(pandas, pd.DataFrame)
    columns = ["metric", "metric_id", "labels", "unit", "description", "timestamp", "value"]
    assert list(pandas.columns) == polars.columns == arrow.column_names == columns
    assert [column.name for column in READING_COLUMNS] == columns
    rows = _rows(pandas)
    assert rows == _rows(polars) == _rows(arrow)
    # the metric's own columns, run by run; labels as `labels=` writes them, a comma escaped
    loss = ("loss", LOSS.id, "dc=x\\,1,run=a", "nats", "training loss")
    assert [row[:5] for row in rows] == [loss] * 3 + [("loss", LOSS2.id, "run=b", None, None)]
    assert [row[5:] for row in rows][:2] == [(datetime(1500, 1, 1, tzinfo=UTC), 0.5), (EPOCH, 1.5)]
    assert [str(t) for t in pandas.dtypes] == ["str"] * 5 + ["datetime64[us, UTC]", "float64"]
    assert [str(t) for t in polars.dtypes] == ["String"] * 5 + [
        "Datetime(time_unit='us', time_zone='UTC')",
        "Float64",
    ]
    assert [str(t) for t in arrow.schema.types] == ["string"] * 5 + ["timestamp[us, tz=UTC]", "double"]
    # what may be null, as a Parquet file written from it says (the others are required there)
    assert [field.nullable for field in arrow.schema] == [False, False, False, True, True, False, False]


def test_label_columns_are_every_label_name_of_the_metrics_added_sorted_after_labels() -> None:
    """ACC has no rows, but its label names are columns still: the columns follow the metrics chosen."""
    tables = [_table(library, label_columns=True).build() for library in ("pandas", "polars", "arrow")]
    names = ["metric", "metric_id", "labels", "labels.dc", "labels.host", "labels.run", "unit"]
    assert [
        list(table.schema.names if isinstance(table, pa.Table) else table.columns)[:7] for table in tables
    ] == [names] * 3
    rows = [_rows(table) for table in tables]
    assert rows[0] == rows[1] == rows[2]
    assert [row[3:6] for row in rows[0]] == [("x,1", None, "a")] * 3 + [(None, None, "b")]
    assert [str(t) for t in tables[1].dtypes[3:6]] == ["String"] * 3
    assert [column.name for column in table_columns(True, ["b", "a"])] == [
        *["metric", "metric_id", "labels", "labels.a", "labels.b", "unit", "description"],
        *["start", "count", "min", "max", "avg", "first", "last"],
    ]


@pytest.mark.parametrize("library", ["pandas", "polars", "arrow"])
def test_an_empty_table_has_every_column_and_its_type(library: str) -> None:
    table, _ = start_table(None, None, "1m", library)
    table.add(ACC, [])
    built = table.build()
    assert _rows(built) == []
    names = built.column_names if library == "arrow" else list(built.columns)
    assert names == [column.name for column in BUCKET_COLUMNS]


def test_arrow_text_comes_in_chunks_that_string_offsets_can_hold() -> None:
    """A pyarrow `string` chunk holds under 2 GiB of text: a long description repeated over many rows is
    cut into chunks of at most `chunk_bytes` (here small, rather than 2 GiB of memory)."""
    texts = ["é" * 10, None, "ab"]  # the longest is 20 bytes of UTF-8
    indices = array("q", [0] * 5 + [1] * 3 + [2] * 2)
    column = _arrow_text(pa, texts, pa.py_buffer(indices), len(indices), chunk_bytes=60)
    assert [len(chunk) for chunk in column.chunks] == [3, 3, 3, 1]
    assert column.type == pa.string()
    assert column.to_pylist() == ["é" * 10] * 5 + [None] * 3 + ["ab"] * 2


def test_a_label_columns_flag_must_be_a_bool() -> None:
    with pytest.raises(ValidationError, match="label_columns must be True or False, got 'yes'"):
        start_table(None, None, None, "pandas", "yes")


def test_a_missing_library_names_the_extra() -> None:
    # In a process of its own, where polars cannot be imported, as for a user without it.
    program = (
        "import sys; sys.modules['polars'] = None\n"
        "from metricstream.service.tables import start_table\n"
        "start_table(None, None, None, 'polars')[0].build()\n"
    )
    ran = subprocess.run([sys.executable, "-c", program], capture_output=True, text=True, timeout=60)
    assert ran.returncode == 1
    last = ran.stderr.strip().splitlines()[-1]
    assert (
        last == """ImportError: frame(library="polars") needs polars: pip install 'metricstream[notebook]'"""
    )
