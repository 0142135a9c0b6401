"""service/tables.py's pure parts: which metrics a selection names, the checks made before any read, and
the table built in each library from columns."""

from __future__ import annotations

import subprocess
import sys
from array import array
from datetime import UTC, datetime

import pandas as pd
import pytest

from metricstream.domain.values import Metric
from metricstream.errors import NotFoundError, ValidationError
from metricstream.service.tables import TableBuilder, select_metrics, start_table
from metricstream.storage.rows import ReadingColumns

LOSS = Metric("01a21b5a-9c48-7513-90f9-87cc5399a7f6", "loss")
ACC = Metric("01a21b5a-9c48-7513-90f9-87cc5399a7f7", "acc")
LOSS2 = Metric("01a21b5a-9c48-7513-90f9-87cc5399a7f8", "loss")
EVERY = [LOSS, ACC, LOSS2]


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


def _table(library: str) -> TableBuilder:
    table, _ = start_table(None, None, None, library)
    moment = datetime(1500, 1, 1, tzinfo=UTC)  # before pandas' nanoseconds reach: microseconds hold it
    micros = int((moment - datetime(1970, 1, 1, tzinfo=UTC)).total_seconds()) * 1_000_000
    table.add(LOSS, ReadingColumns(array("q", [micros, 0]), array("d", [0.5, 1.5]), (moment, "x")))
    table.add(LOSS, ReadingColumns(array("q", [1]), array("d", [2.5]), (moment, "y")))
    table.add(ACC, ReadingColumns(array("q"), array("d"), None))
    table.add(LOSS2, ReadingColumns(array("q", [2]), array("d", [3.5]), (moment, "z")))
    return table


def test_each_library_gets_the_same_columns_and_rows() -> None:
    pandas = _table("pandas").build()
    polars = _table("polars").build()
    arrow = _table("arrow").build()
    assert isinstance(pandas, pd.DataFrame)
    rows = [(m, i, t.to_pydatetime(), v) for m, i, t, v in pandas.itertuples(index=False)]
    assert rows == polars.rows() == [tuple(r.values()) for r in arrow.to_pylist()]
    assert [row[:2] for row in rows] == [("loss", LOSS.id)] * 3 + [("loss", LOSS2.id)]
    assert rows[0][2] == datetime(1500, 1, 1, tzinfo=UTC)
    assert [str(t) for t in pandas.dtypes] == ["str", "str", "datetime64[us, UTC]", "float64"]
    assert [str(t) for t in polars.dtypes] == [
        "String",
        "String",
        "Datetime(time_unit='us', time_zone='UTC')",
        "Float64",
    ]
    assert [str(t) for t in arrow.schema.types] == ["string", "string", "timestamp[us, tz=UTC]", "double"]


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
