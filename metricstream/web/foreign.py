"""The write routes of other tools' formats, as plain ASGI handlers beside `ingest.py`'s: Influx line
protocol as InfluxDB 2 (`POST /api/v2/write`, influxdb-client and Telegraf's `influxdb_v2` output) and
InfluxDB 1 (`POST /write`, Telegraf's `influxdb` output) take it, OTLP/HTTP metrics (`POST /v1/metrics`,
the OpenTelemetry SDKs and the Collector), and Prometheus remote write 1.0 (`POST /api/v1/write`). The
gate has checked the token and read the body; here it is decompressed (bounded as the body was), decoded
into samples and written by `service/foreign.py`. docs/ingest.md tells the mapping."""

from __future__ import annotations

import dataclasses
import zlib
from collections import Counter
from typing import TYPE_CHECKING, Final

from ..domain.labels import Sample
from ..domain.line_protocol import LineError, parse_lines
from ..domain.otlp import OtlpDecoded, decode_metrics, encode_response, otlp_media_type, reasons_message
from ..domain.remote_write import (
    FamilyMetadata,
    check_remote_write_headers,
    decode_write_request,
    series_text,
    snappy_decompressed,
)
from ..errors import (
    PayloadTooLargeError,
    UnsupportedMediaTypeError,
    ValidationError,
)
from ..service.foreign import refused_whole, write_all, write_what_passes
from .access import header, query_parameters
from .ingest import answer_write

if TYPE_CHECKING:
    from ..service.use_cases import AsyncMetricService
    from .telemetry import Telemetry
    from .types import Receive, Scope, Send

__all__ = [
    "INFLUX_V1_PATH",
    "INFLUX_V2_PATH",
    "OTLP_PATH",
    "REMOTE_WRITE_PATH",
    "ForeignIngest",
    "decompressed",
]

INFLUX_V2_PATH: Final = "/api/v2/write"
INFLUX_V1_PATH: Final = "/write"
OTLP_PATH: Final = "/v1/metrics"
REMOTE_WRITE_PATH: Final = "/api/v1/write"
# Metric families whose remote-write metadata is kept, for the metrics later samples create.
_KNOWN_FAMILIES: Final = 10_000
_V2_PRECISIONS: Final = frozenset({"ns", "us", "ms", "s"})  # /write takes v1's names too
_GZIP_WINDOW: Final = 16 + zlib.MAX_WBITS  # zlib reads the gzip format with this window size


def decompressed(body: bytes, encoding: str | None, limit: int) -> bytes:
    """`body` as sent before `Content-Encoding` (identity or gzip), never more than `limit` bytes of it:
    a small body that inflates past the limit (a gzip bomb) is refused before it is all inflated."""
    coding = (encoding or "identity").strip().lower()
    if coding == "identity":
        return body
    if coding != "gzip":
        raise UnsupportedMediaTypeError(f"Content-Encoding must be gzip or identity, not {coding!r}")
    inflater = zlib.decompressobj(_GZIP_WINDOW)
    try:
        data = inflater.decompress(body, limit + 1)
    except zlib.error as error:
        raise ValidationError(f"request body is not valid gzip: {error}") from None
    if len(data) > limit:
        raise PayloadTooLargeError(f"request body is larger than {limit} bytes once decompressed")
    if not inflater.eof:
        raise ValidationError("request body is not valid gzip: it ends before its last block")
    return data


class ForeignIngest:
    """The foreign write routes, for one app's service and telemetry."""

    def __init__(
        self, service: AsyncMetricService, telemetry: Telemetry, limit: int, max_lines: int | None
    ) -> None:
        self.service, self.telemetry = service, telemetry
        self.limit = limit  # bytes of a body, decompressed too
        self.max_lines = max_lines
        # Remote write's metadata by family, newest last: Prometheus sends it apart from the samples.
        self.families: dict[str, FamilyMetadata] = {}

    async def influx_v2(self, scope: Scope, receive: Receive, send: Send, body: bytes | None) -> None:
        """`POST /api/v2/write?bucket=&precision=ns|us|ms|s`: line protocol, all or nothing, 204."""
        precision = query_parameters(scope).get("precision", [""])[-1] or "ns"

        async def write() -> tuple[int, bytes, bytes]:
            if precision not in _V2_PRECISIONS:
                raise ValidationError(f"precision must be ns, us, ms or s, not {precision[:20]!r}")
            return await self._write_lines(scope, body, precision)

        await answer_write(self.telemetry, INFLUX_V2_PATH, send, write)

    async def influx_v1(self, scope: Scope, receive: Receive, send: Send, body: bytes | None) -> None:
        """`POST /write?db=&precision=n|u|ms|s|m|h`: the same as InfluxDB 1 takes it."""
        precision = query_parameters(scope).get("precision", [""])[-1] or "n"

        async def write() -> tuple[int, bytes, bytes]:
            return await self._write_lines(scope, body, precision)

        await answer_write(self.telemetry, INFLUX_V1_PATH, send, write)

    async def otlp(self, scope: Scope, receive: Receive, send: Send, body: bytes | None) -> None:
        """`POST /v1/metrics`: OTLP/HTTP, protobuf or JSON; what cannot be written is counted in the
        answer's `partial_success`, the rest is written."""
        content_type = header(scope, b"content-type") or ""

        async def write() -> tuple[int, bytes, bytes]:
            media = otlp_media_type(content_type)
            data = decompressed(body or b"", header(scope, b"content-encoding"), self.limit)
            decoded = decode_metrics(data, content_type, max_name_length=self.service.max_name_length)
            written = await write_what_passes(self.service, decoded.samples)
            if written.refused:
                decoded = _with_refusals(decoded, written.refused)
            return 200, media.encode("latin-1"), encode_response(decoded, content_type)

        await answer_write(self.telemetry, OTLP_PATH, send, write)

    async def remote_write(self, scope: Scope, receive: Receive, send: Send, body: bytes | None) -> None:
        """`POST /api/v1/write`: Prometheus remote write 1.0, every sample or none, 204 (what Prometheus
        expects); a refusal is a 4xx, which Prometheus does not retry."""

        async def write() -> tuple[int, bytes, bytes]:
            check_remote_write_headers(header(scope, b"content-type"), header(scope, b"content-encoding"))
            decoded = decode_write_request(snappy_decompressed(body or b"", self.limit), self.families)
            self._remember(decoded.metadata)
            count = len(decoded.samples)
            if self.max_lines is not None and count > self.max_lines:
                raise ValidationError(
                    f"at most {self.max_lines} samples per write, got {count}: set max_samples_per_send "
                    "in the remote_write queue_config to at most that (the max_batch setting)"
                )
            await write_all(self.service, decoded.samples, count + decoded.stale, "sample", _series_of)
            return 204, b"", b""

        await answer_write(self.telemetry, REMOTE_WRITE_PATH, send, write)

    def _remember(self, metadata: dict[str, FamilyMetadata]) -> None:
        for family, details in metadata.items():
            self.families.pop(family, None)
            self.families[family] = details
        while len(self.families) > _KNOWN_FAMILIES:
            del self.families[next(iter(self.families))]

    async def _write_lines(
        self, scope: Scope, body: bytes | None, precision: str
    ) -> tuple[int, bytes, bytes]:
        """A line-protocol body written all or nothing: 204, or every refused line's number and reason."""
        data = decompressed(body or b"", header(scope, b"content-encoding"), self.limit)
        parsed = parse_lines(data, precision)
        lines = len({s.line for s in parsed.samples} | {e.line for e in parsed.errors})
        if self.max_lines is not None and lines > self.max_lines:
            raise ValidationError(f"at most {self.max_lines} lines per write, got {lines}")
        if parsed.errors:
            raise refused_whole(parsed.errors, lines)
        await write_all(self.service, parsed.samples, lines)
        return 204, b"", b""


def _with_refusals(decoded: OtlpDecoded, refused: list[LineError]) -> OtlpDecoded:
    """The decoded request's answer, counting the data points the write refused as well."""
    said = reasons_message(Counter(refusal.reason for refusal in refused))
    return dataclasses.replace(
        decoded,
        rejected_data_points=decoded.rejected_data_points + len({refusal.line for refusal in refused}),
        error_message=f"{decoded.error_message}; {said}" if decoded.error_message else said,
    )


def _series_of(sample: Sample) -> str:
    return series_text(sample.name, sample.labels)
