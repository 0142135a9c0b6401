"""Prometheus remote write 1.0 (what `POST /api/v1/write` takes), decoded into `Sample`s with no I/O.

The body is a protobuf `prometheus.WriteRequest` compressed with snappy's block format (no framing), sent
with `Content-Encoding: snappy` and `Content-Type: application/x-protobuf`. Snappy is `cramjam`'s and the
protobuf runtime `protobuf`'s, both imported when a request comes (the `remote-write` extra). The four
messages read are declared here with protobuf's descriptor API (`_MESSAGES`, field numbers as in
prometheus/prompb's remote.proto and types.proto): no generated `_pb2` to keep in step with the runtime,
and fields not declared (exemplars) are skipped by the parser. Decisions (docs/ingest.md tells them):
- the name is the `__name__` label, checked as every name is; the other labels are labels, checked as
  every label is (a name Prometheus reserves, `__` first, is refused); an empty value is no label, as in
  Prometheus; a series without `__name__` is refused;
- each sample is a reading at its timestamp (milliseconds, so exact in what is stored);
- a staleness marker (the NaN Prometheus sends when a series disappears) is no reading and no refusal: it
  is counted and skipped; any other NaN or infinity is refused as any reading's value is;
- native histogram samples are refused: they would be dropped otherwise, and silently;
- metadata (Prometheus sends it every minute in requests of its own) gives the unit and HELP of the
  metrics a later sample creates: `RemoteWrite.metadata` is for the caller to keep. A family's metadata
  applies to its series' names (`x`, `x_total`, `x_sum`...); the unit not to `_count`, `_bucket` and
  `_created`, which count or date. A unit or help that would not be stored (too long) is left out.
"""

from __future__ import annotations

import math
import struct
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import cache
from typing import Any, Final

from ..errors import PayloadTooLargeError, UnsupportedMediaTypeError, ValidationError
from .labels import MAX_DESCRIPTION_LENGTH, MAX_UNIT_LENGTH, Sample, optional_text

__all__ = [
    "STALE_NAN",
    "FamilyMetadata",
    "RemoteWrite",
    "check_remote_write_headers",
    "decode_write_request",
    "series_text",
    "snappy_decompressed",
]

PROTOBUF: Final = "application/x-protobuf"
_PROTO_V1: Final = "prometheus.WriteRequest"
# The NaN Prometheus writes when a series goes stale (value.StaleNaN): a bit pattern, not a value.
STALE_NAN: Final = 0x7FF0000000000002
_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)
# Series names a family's metadata covers, and whether its unit applies to them.
_FAMILY_SUFFIXES: Final = {
    "_total": True,
    "_sum": True,
    "_count": False,
    "_bucket": False,
    "_created": False,
    "_info": True,
}
_SERIES_TEXT_LENGTH: Final = 200  # a series as a refusal shows it, at most

# Message name -> fields as (number, name, type, repeated, message type). Types: FieldDescriptorProto's.
_STRING, _DOUBLE, _INT64, _INT32, _BYTES, _MESSAGE = 9, 1, 3, 5, 12, 11
_MESSAGES: Final = {
    "Label": [(1, "name", _STRING, False, ""), (2, "value", _STRING, False, "")],
    "Sample": [(1, "value", _DOUBLE, False, ""), (2, "timestamp", _INT64, False, "")],
    # histograms: only counted, so declared as bytes (their wire type); exemplars (3) not declared
    "TimeSeries": [
        (1, "labels", _MESSAGE, True, "Label"),
        (2, "samples", _MESSAGE, True, "Sample"),
        (4, "histograms", _BYTES, True, ""),
    ],
    # type is an enum, which is an int32 on the wire
    "MetricMetadata": [
        (1, "type", _INT32, False, ""),
        (2, "metric_family_name", _STRING, False, ""),
        (4, "help", _STRING, False, ""),
        (5, "unit", _STRING, False, ""),
    ],
    "WriteRequest": [
        (1, "timeseries", _MESSAGE, True, "TimeSeries"),
        (3, "metadata", _MESSAGE, True, "MetricMetadata"),
    ],
}


@dataclass(frozen=True, slots=True)
class FamilyMetadata:
    """A metric family's unit and HELP, as a remote write's metadata gives them (None: none)."""

    unit: str | None = None
    description: str | None = None


@dataclass(frozen=True, slots=True)
class RemoteWrite:
    """A request's samples (`Sample.line`: the sample's position in the request, from 1), the staleness
    markers skipped, and the metadata it carried, by family name."""

    samples: list[Sample]
    stale: int
    metadata: dict[str, FamilyMetadata]


def check_remote_write_headers(content_type: str | None, encoding: str | None) -> None:
    """Refuse (415) a request that is not remote write 1.0: protobuf (with `proto=` naming the 1.0
    message if named at all: remote write 2.0 names another), compressed with snappy."""
    media, _, parameters = (content_type or "").partition(";")
    media = media.strip().lower()
    if media != PROTOBUF:
        shown = media[:100] or "none"
        raise UnsupportedMediaTypeError(f"remote write must be sent as {PROTOBUF}, not {shown}")
    for parameter in parameters.split(";"):
        name, _, value = parameter.partition("=")
        proto = value.strip().strip('"')
        if name.strip().lower() == "proto" and proto != _PROTO_V1:
            raise UnsupportedMediaTypeError(
                f"remote write takes {_PROTO_V1} (remote write 1.0), not {proto[:100]!r}: set "
                "protobuf_message: prometheus.WriteRequest in the remote_write configuration"
            )
    coding = (encoding or "").strip().lower()
    if coding != "snappy":
        raise UnsupportedMediaTypeError(
            f"remote write must be sent with Content-Encoding: snappy, not {coding[:100] or 'none'}"
        )


def snappy_decompressed(body: bytes, limit: int) -> bytes:
    """`body` decompressed from snappy's block format, refused (413) before any of it is decompressed if
    its header says it holds more than `limit` bytes."""
    snappy = _cramjam().snappy
    error_type = _cramjam().DecompressionError
    try:
        size = snappy.decompress_raw_len(body)
    except error_type as error:
        raise ValidationError(f"request body is not snappy-compressed: {error}") from None
    if size > limit:
        raise PayloadTooLargeError(f"request body is larger than {limit} bytes once decompressed")
    try:
        return bytes(snappy.decompress_raw(body))
    except error_type as error:
        raise ValidationError(f"request body is not valid snappy: {error}") from None


def decode_write_request(data: bytes, known: Mapping[str, FamilyMetadata] | None = None) -> RemoteWrite:
    """The samples of a `WriteRequest` in `data`; their metrics' unit and description from the request's
    own metadata, else from `known` (what earlier requests carried). A body that is not a WriteRequest, a
    series without a name, native histograms: `ValidationError`, nothing written."""
    request = _parse(data)
    metadata = _metadata(request.metadata)
    families = {**(known or {}), **metadata}
    samples: list[Sample] = []
    stale = position = 0
    for number, series in enumerate(request.timeseries, start=1):
        labels = {label.name: label.value for label in series.labels if label.value}
        name = labels.pop("__name__", None)
        if name is None:
            raise ValidationError(f"series {number} ({series_text('', labels)}) has no __name__ label")
        if series.histograms:
            raise ValidationError(
                f"series {number} ({series_text(name, labels)}) carries native histogram samples, which "
                "are not stored: leave send_native_histograms off, or drop them with write_relabel_configs"
            )
        unit, description = _details(name, families)
        for sample in series.samples:
            position += 1
            value = sample.value
            if math.isnan(value) and _bits(value) == STALE_NAN:
                stale += 1
                continue
            moment = _moment(sample.timestamp, number, name, labels)
            samples.append(Sample(name, value, labels, moment, unit, description, position))
    return RemoteWrite(samples, stale, metadata)


def series_text(name: str, labels: Mapping[str, str]) -> str:
    """A series as Prometheus writes it, `name{label="value",...}`, cut at 200 characters."""
    pairs = ",".join(f'{key}="{_escaped(value)}"' for key, value in labels.items())
    text = f"{name}{{{pairs}}}" if pairs or not name else name
    return text if len(text) <= _SERIES_TEXT_LENGTH else text[: _SERIES_TEXT_LENGTH - 3] + "..."


def _escaped(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _bits(value: float) -> int:
    return int.from_bytes(struct.pack("<d", value), "little")


def _moment(milliseconds: int, number: int, name: str, labels: Mapping[str, str]) -> datetime:
    try:
        return _EPOCH + timedelta(milliseconds=milliseconds)
    except OverflowError:
        raise ValidationError(
            f"series {number} ({series_text(name, labels)}) has a sample at {milliseconds} ms since 1970, "
            "past the years a timestamp can have (1 to 9999)"
        ) from None


def _details(name: str, families: Mapping[str, FamilyMetadata]) -> tuple[str | None, str | None]:
    """The unit and description a series named `name` takes from its family's metadata."""
    if not families:
        return None, None
    found = families.get(name)
    if found is not None:
        return found.unit, found.description
    for suffix, keeps_unit in _FAMILY_SUFFIXES.items():
        if name.endswith(suffix) and (found := families.get(name.removesuffix(suffix))) is not None:
            return (found.unit if keeps_unit else None), found.description
    return None, None


def _metadata(entries: Any) -> dict[str, FamilyMetadata]:
    """The request's metadata by family name; a unit or help that could not be stored is left out."""
    metadata: dict[str, FamilyMetadata] = {}
    for entry in entries:
        unit = _stored_or_none(entry.unit, "unit", MAX_UNIT_LENGTH)
        description = _stored_or_none(entry.help, "description", MAX_DESCRIPTION_LENGTH)
        if entry.metric_family_name and (unit or description):
            metadata[entry.metric_family_name] = FamilyMetadata(unit, description)
    return metadata


def _stored_or_none(text: str, field: str, max_length: int) -> str | None:
    try:
        return optional_text(text, field, max_length)
    except ValidationError:
        return None  # metadata only describes: a bad one is no reason to refuse the samples


def _parse(data: bytes) -> Any:
    request = _classes()["WriteRequest"]()
    from google.protobuf.message import DecodeError  # there: _classes found protobuf

    try:
        request.ParseFromString(data)
    except DecodeError:
        raise ValidationError(
            "request body is not a Prometheus remote write WriteRequest in protobuf"
        ) from None
    return request


def _cramjam() -> Any:
    try:
        import cramjam
    except ImportError:
        raise UnsupportedMediaTypeError(
            "remote write is not installed on this server: pip install 'metricstream[remote-write]'"
        ) from None
    return cramjam


@cache
def _classes() -> dict[str, Any]:
    """The message classes of `_MESSAGES`, in a pool of their own (another library may register
    Prometheus' own `prometheus.*` in the default pool)."""
    try:
        from google.protobuf import descriptor_pb2, descriptor_pool, message_factory
    except ImportError:
        raise UnsupportedMediaTypeError(
            "remote write is not installed on this server: pip install 'metricstream[remote-write]'"
        ) from None
    file = descriptor_pb2.FileDescriptorProto(
        name="metricstream/remote_write.proto", package="prometheus", syntax="proto3"
    )
    for message_name, fields in _MESSAGES.items():
        message = file.message_type.add(name=message_name)
        for number, field_name, kind, repeated, type_name in fields:
            field = message.field.add(name=field_name, number=number, type=kind)
            field.label = field.LABEL_REPEATED if repeated else field.LABEL_OPTIONAL
            if type_name:
                field.type_name = f".prometheus.{type_name}"
    pool = descriptor_pool.DescriptorPool()
    pool.Add(file)
    return {
        name: message_factory.GetMessageClass(pool.FindMessageTypeByName(f"prometheus.{name}"))
        for name in _MESSAGES
    }
