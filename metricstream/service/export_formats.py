"""The four export formats as encoders: each turns one metric's page of readings (or buckets) into the
next bytes of the file, and at the end gives its last bytes. No I/O; `exports.py` runs them in a worker
thread, a page at a time, and streams what they give.

Every format has `frame()`'s columns (`tables.table_columns`), in its order, with the same types:
- csv, RFC 4180: a header line, then a line per row, CRLF; a field quoted when it holds a comma, a quote
  or a line break, or is empty text (`""`), so that a null (unit, description) is an empty unquoted field
  and told apart; times in RFC 3339 with microseconds and a Z, as the API writes them; floats as Python's
  `repr`, the shortest text that reads back as the same float.
- json: an array of one object per row, the columns as keys; times and nulls as in csv.
- arrow: an Arrow IPC stream, a record batch per page, the schema of `frame(library="arrow")`.
- parquet: a Parquet file, a row group per page, the same schema; its footer is written at the end.
Arrow and Parquet are written by pyarrow into a sink that hands back, after each page, what was written.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterable, Sequence
from typing import Any, Final, Protocol

import orjson

from ..domain.buckets import Bucket
from ..domain.exports import ARROW_FORMATS, ExportFormat
from ..domain.values import Metric, format_timestamp
from ..errors import MissingDependencyError
from ..storage.rows import ReadingColumns, moment
from .tables import Column, TableBuilder

__all__ = ["ARROW_EXTRA", "Encoder", "open_encoder", "require_pyarrow"]

ARROW_EXTRA: Final = "pip install 'metricstream[arrow]'"
_CSV_SPECIAL: Final = frozenset(',"\r\n')

Page = ReadingColumns | Sequence[Bucket]


class Encoder(Protocol):
    def page(self, metric: Metric, page: Page) -> bytes:
        """The bytes that follow for a page of one metric's readings (or buckets)."""
        ...

    def end(self) -> bytes:
        """The file's last bytes."""
        ...


def require_pyarrow(format: ExportFormat) -> Any:
    """pyarrow, with pyarrow.parquet loaded for parquet; `MissingDependencyError` if not installed."""
    try:
        if format == "parquet":
            importlib.import_module("pyarrow.parquet")
        return importlib.import_module("pyarrow")
    except ImportError:
        raise MissingDependencyError(
            f"the {format} format needs pyarrow, which this server does not have: {ARROW_EXTRA}"
        ) from None


def open_encoder(format: ExportFormat, buckets: bool) -> Encoder:
    """An encoder of `format`, for readings or (`buckets`) buckets."""
    if format in ARROW_FORMATS:
        return _ArrowEncoder(format, buckets)
    return _CsvEncoder(buckets) if format == "csv" else _JsonEncoder(buckets)


def _page_table(metric: Metric, page: Page, buckets: bool) -> TableBuilder:
    # The library matters only to `build()`, which only the Arrow encoder calls.
    table = TableBuilder("arrow", buckets=buckets)
    table.add(metric, page)
    return table


def time_texts(times: Iterable[int]) -> list[str]:
    """Times in microseconds since the epoch as the API writes them (`format_timestamp`): each minute's
    text made once, as readings of a page mostly share theirs (a third of the time per reading)."""
    minutes: dict[int, str] = {}
    texts = []
    for micros in times:
        seconds, fraction = divmod(micros, 1_000_000)
        minute, second = divmod(seconds, 60)
        prefix = minutes.get(minute)
        if prefix is None:  # "YYYY-MM-DDTHH:MM:"
            prefix = minutes[minute] = format_timestamp(moment(minute * 60_000_000))[:17]
        texts.append("%s%02d.%06dZ" % (prefix, second, fraction))  # noqa: UP031 (quicker than f-strings)
    return texts


def _varying_cells(table: TableBuilder, columns: Sequence[Column]) -> list[list[str]]:
    """The time and number columns of a page as text: times as the API writes them, floats by `repr`."""
    cells = []
    for column in columns:
        numbers = table.numbers(column)
        if column.kind == "time":
            cells.append(time_texts(numbers))
        else:
            cells.append(list(map(repr if column.kind == "float" else str, numbers)))
    return cells


def _rows(template: str, cells: list[list[str]]) -> str:
    """Each row's cells put into `template` (a %s per cell), joined."""
    return "".join([template % row for row in zip(*cells, strict=True)])


def _split(columns: Sequence[Column]) -> tuple[list[Column], list[Column]]:
    """The metric's own columns (one text per page) and the rest; the former come first."""
    constant = [column for column in columns if column.of_metric is not None]
    assert list(columns[: len(constant)]) == constant, columns
    return constant, list(columns[len(constant) :])


def _csv_field(text: str | None) -> str:
    if text is None:
        return ""
    if text and _CSV_SPECIAL.isdisjoint(text):
        return text
    return '"' + text.replace('"', '""') + '"'


class _CsvEncoder:
    def __init__(self, buckets: bool) -> None:
        self._buckets = buckets
        self._constant, self._varying = _split(TableBuilder("arrow", buckets=buckets).columns())
        names = [column.name for column in (*self._constant, *self._varying)]
        self._head = ",".join(map(_csv_field, names)) + "\r\n"

    def page(self, metric: Metric, page: Page) -> bytes:
        table = _page_table(metric, page, self._buckets)
        texts = [column.of_metric(metric) for column in self._constant if column.of_metric]
        prefix = "".join(_csv_field(text) + "," for text in texts).replace("%", "%%")
        template = prefix + ",".join(["%s"] * len(self._varying)) + "\r\n"
        head, self._head = self._head, ""
        return (head + _rows(template, _varying_cells(table, self._varying))).encode()

    def end(self) -> bytes:
        return self._head.encode()


class _JsonEncoder:
    def __init__(self, buckets: bool) -> None:
        self._buckets = buckets
        self._constant, self._varying = _split(TableBuilder("arrow", buckets=buckets).columns())
        self._opening = "["

    def page(self, metric: Metric, page: Page) -> bytes:
        table = _page_table(metric, page, self._buckets)
        if not table.times:
            return b""
        texts = {column.name: column.of_metric(metric) for column in self._constant if column.of_metric}
        prefix = orjson.dumps(texts)[:-1].decode().replace("%", "%%")
        # ,{"metric":...,"timestamp":"%s","value":%s}: a time is a JSON string, a number itself
        fields = [
            f'"{column.name}":' + ('"%s"' if column.kind == "time" else "%s") for column in self._varying
        ]
        template = "," + prefix + "," + ",".join(fields) + "}"
        rows = _rows(template, _varying_cells(table, self._varying))
        # the array opens, or goes on, where the first row's comma is
        opening, self._opening = self._opening, ","
        return (opening + rows[1:]).encode()

    def end(self) -> bytes:
        return b"[]" if self._opening == "[" else b"]"


class _Sink:
    """A write-only file for pyarrow's writers that keeps what they write until `take` hands it over."""

    def __init__(self) -> None:
        self._parts: list[bytes] = []
        self._written = 0
        self.closed = False

    def write(self, data: Any) -> int:
        self._parts.append(bytes(data))
        self._written += len(self._parts[-1])
        return len(self._parts[-1])

    def tell(self) -> int:
        return self._written

    def flush(self) -> None:
        pass

    def close(self) -> None:
        self.closed = True

    def take(self) -> bytes:
        data = b"".join(self._parts)
        self._parts.clear()
        return data


class _ArrowEncoder:
    def __init__(self, format: ExportFormat, buckets: bool) -> None:
        pa = require_pyarrow(format)
        self._buckets = buckets
        self._sink = _Sink()
        # The schema is that of any table of these columns: an empty one's.
        schema = TableBuilder("arrow", buckets=buckets).build().schema
        file = pa.PythonFile(self._sink, mode="w")
        if format == "arrow":
            self._writer = pa.ipc.new_stream(file, schema)
        else:
            self._writer = importlib.import_module("pyarrow.parquet").ParquetWriter(file, schema)

    def page(self, metric: Metric, page: Page) -> bytes:
        table = _page_table(metric, page, self._buckets)
        if table.times:
            self._writer.write_table(table.build())
        return self._sink.take()

    def end(self) -> bytes:
        self._writer.close()
        return self._sink.take()
