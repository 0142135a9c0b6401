"""What an export of readings is asked for: its format, and on `GET /readings` which metrics (one name,
some labels), from when to when, with which step. No I/O: `service/exports.py` produces the file and
`web/exports.py` answers it (docs/protocol.md#exports).

An export holds every matching reading (or bucket), never cut, in `frame()`'s columns; so `limit`,
`cursor` and `order`, which page a JSON answer, do not apply to it and are refused rather than ignored.
"""

from __future__ import annotations

from typing import Annotated, Final, Literal

from pydantic import BaseModel, ConfigDict, Field

from ..errors import ValidationError
from .validation import STEP_DESCRIPTION, LabelFilter, NameFilter, ReadingsQuery, Step, Timestamp

__all__ = [
    "ARROW_FORMATS",
    "EXPORT_FORMATS",
    "FILE_SUFFIXES",
    "MEDIA_TYPES",
    "PAGING_PARAMETERS",
    "ExportFormat",
    "ExportQuery",
    "ReadingsExportQuery",
    "refuse_paging",
]

ExportFormat = Literal["json", "csv", "arrow", "parquet"]
EXPORT_FORMATS: Final[tuple[ExportFormat, ...]] = ("json", "csv", "arrow", "parquet")
# Written with pyarrow, an optional dependency (the `arrow` extra).
ARROW_FORMATS: Final = frozenset({"arrow", "parquet"})
# JSON first: what an answer is when the Accept header prefers none of the others.
MEDIA_TYPES: Final[dict[ExportFormat, str]] = {
    "json": "application/json",
    "csv": "text/csv",
    "arrow": "application/vnd.apache.arrow.stream",
    "parquet": "application/vnd.apache.parquet",
}
# `.arrows` is what Arrow recommends for its IPC stream format (`.arrow` is the file format's).
FILE_SUFFIXES: Final[dict[ExportFormat, str]] = {
    "json": "json",
    "csv": "csv",
    "arrow": "arrows",
    "parquet": "parquet",
}
PAGING_PARAMETERS: Final = ("limit", "cursor", "order")

_FORMAT_DESCRIPTION: Final = (
    "json, csv (RFC 4180), arrow (Arrow IPC stream) or parquet; without it, the Accept header may ask for "
    "text/csv, application/vnd.apache.arrow.stream or application/vnd.apache.parquet. arrow and parquet "
    "need pyarrow on the server (501 without it)."
)
Format = Annotated[ExportFormat, Field(description=_FORMAT_DESCRIPTION)]


class ReadingsExportQuery(ReadingsQuery):
    """Query of `GET /metrics/{id}/readings`: `ReadingsQuery` and the answer's format. Any format but json
    is an export: every reading (or bucket) from since to until."""

    format: Format = "json"


class ExportQuery(BaseModel):
    """Query of `GET /readings`: every reading (or bucket) of the chosen metrics, as one long table."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    format: Format = "json"
    name: NameFilter = None
    # Read from every `labels=` parameter by `labels.parse_label_query`; here to be documented.
    labels: LabelFilter = None
    since: Timestamp = None
    until: Timestamp = None
    step: Annotated[
        Step,
        Field(
            description=f"{STEP_DESCRIPTION} With step, each metric's buckets from since (or its first "
            "reading) to until (or its last), at most 10,000 of them per metric."
        ),
    ] = None

    def window(self) -> ReadingsQuery:
        """Its time range and step, as the query of each metric's first page."""
        update = {"since": self.since, "until": self.until, "step": self.step}
        return ReadingsQuery().model_copy(update=update)


def refuse_paging(given: set[str], format: ExportFormat) -> None:
    """Refuse `limit`, `cursor` and `order` (those of them in `given`) on an export."""
    paging = [name for name in PAGING_PARAMETERS if name in given]
    if paging:
        raise ValidationError(
            f"{', '.join(paging)} do{'es' if len(paging) == 1 else ''} not apply to format={format}: an "
            "export holds every reading from since to until, oldest first; narrow it with since and until"
        )
