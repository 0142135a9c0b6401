"""Prometheus remote-write bodies for the tests, written with the protobuf wire format by hand (field
numbers from prometheus/prompb's remote.proto and types.proto), independently of the decoder's declared
messages: a field the decoder declares wrongly then fails the tests rather than agreeing with itself."""

from __future__ import annotations

import struct
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import cramjam

STALE_NAN = struct.unpack("<d", (0x7FF0000000000002).to_bytes(8, "little"))[0]
HEADERS = {
    "Content-Type": "application/x-protobuf",
    "Content-Encoding": "snappy",
    "X-Prometheus-Remote-Write-Version": "0.1.0",
}


@dataclass(frozen=True)
class Series:
    labels: Mapping[str, str]  # __name__ included
    samples: Sequence[tuple[float, int]]  # (value, milliseconds since 1970)
    histograms: int = 0  # native histogram samples (empty ones: only their presence matters)


@dataclass(frozen=True)
class Metadata:
    family: str
    unit: str = ""
    help: str = ""
    type: int = 2  # GAUGE in MetricMetadata.MetricType


@dataclass(frozen=True)
class WriteRequest:
    series: Sequence[Series] = ()
    metadata: Sequence[Metadata] = field(default_factory=tuple)

    def encode(self) -> bytes:
        """The protobuf bytes of this WriteRequest."""
        body = b"".join(_field(1, 2, _series(series)) for series in self.series)
        return body + b"".join(_field(3, 2, _metadata(entry)) for entry in self.metadata)

    def compressed(self) -> bytes:
        """As Prometheus sends it: snappy's block format."""
        return snappy(self.encode())


def snappy(data: bytes) -> bytes:
    return bytes(cramjam.snappy.compress_raw(data))


def varint(number: int) -> bytes:
    number &= (1 << 64) - 1  # negative int64s as two's complement, ten bytes
    out = bytearray()
    while True:
        low, number = number & 0x7F, number >> 7
        out.append(low | 0x80 if number else low)
        if not number:
            return bytes(out)


def _field(number: int, wire_type: int, payload: bytes) -> bytes:
    key = varint(number << 3 | wire_type)
    return key + (varint(len(payload)) + payload if wire_type == 2 else payload)


def _text(number: int, text: str) -> bytes:
    return _field(number, 2, text.encode("utf-8", "surrogatepass"))


def _series(series: Series) -> bytes:
    labels = b"".join(_field(1, 2, _text(1, k) + _text(2, v)) for k, v in series.labels.items())
    samples = b"".join(
        _field(2, 2, _field(1, 1, struct.pack("<d", value)) + _field(2, 0, varint(ms)))
        for value, ms in series.samples
    )
    # a native histogram sample: its count (field 1) alone
    histograms = b"".join(_field(4, 2, _field(1, 0, varint(1))) for _ in range(series.histograms))
    return labels + samples + histograms


def _metadata(entry: Metadata) -> bytes:
    return (
        _field(1, 0, varint(entry.type))
        + _text(2, entry.family)
        + (_text(4, entry.help) if entry.help else b"")
        + (_text(5, entry.unit) if entry.unit else b"")
    )
