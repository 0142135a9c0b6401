"""Exports over HTTP: which format a request asks for (`format=`, else its Accept header), and the
streamed answer, a piece per page as `service/exports.py` makes them. `routes.py` wires the two routes,
`GET /metrics/{id}/readings` (json: the paged answer as before; any other format: an export) and
`GET /readings` (every matching metric; json too, as rows)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Final

from quart import Response, request

from ..domain.exports import EXPORT_FORMATS, FILE_SUFFIXES, MEDIA_TYPES, ExportFormat, ExportQuery
from ..domain.validation import validate
from ..service.exports import Export, ExportService, export_chunks

__all__ = ["CONTENT_TYPES", "export_response", "requested_format"]

# What each format is sent as: the CSV's header line said (RFC 4180's `header` parameter).
CONTENT_TYPES: Final[dict[ExportFormat, str]] = {
    **MEDIA_TYPES,
    "csv": "text/csv; charset=utf-8; header=present",
}
# Formats saved as a file rather than shown.
_ATTACHED: Final = frozenset({"csv", "arrow", "parquet"})


def requested_format() -> ExportFormat:
    """The format this request asks for: `format=` if given (checked), else the media type its Accept
    header prefers, JSON on a tie or when it prefers none of them (any other Accept is answered in JSON,
    as before exports existed)."""
    given = request.args.get("format")
    if given is not None:
        return validate(ExportQuery, {"format": given}).format
    best = request.accept_mimetypes.best_match(list(MEDIA_TYPES.values()), MEDIA_TYPES["json"])
    return next(format for format in EXPORT_FORMATS if MEDIA_TYPES[format] == best)


def export_response(service: ExportService, export: Export, filename: str) -> Response:
    """The export as a streamed answer: `X-Last-Event-ID` the position read before its data, a file's
    name for the formats saved as files."""
    headers = {"X-Last-Event-ID": export.position, "Vary": "Accept"}
    if export.format in _ATTACHED:
        headers["Content-Disposition"] = f'attachment; filename="{filename}.{FILE_SUFFIXES[export.format]}"'
    head = request.method == "HEAD"
    # HEAD: the headers alone, nothing read.
    chunks: AsyncIterator[bytes] | bytes = b"" if head else export_chunks(service, export)
    answer = Response(chunks, 200, headers, content_type=CONTENT_TYPES[export.format])
    if head:  # not known until it is made, as for a GET
        del answer.headers["Content-Length"]
    # As long as the export takes: a page at a time, however slow the client reads (Quart's default is
    # to end any answer after 60 s).
    answer.timeout = None
    return answer
