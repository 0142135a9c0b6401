"""OTLP/HTTP metrics (what `POST /v1/metrics` takes), decoded into `Sample`s with no I/O, and the answer.

The classes are `opentelemetry-proto`'s, imported only when a request comes (the `otlp` extra). Gauges and
sums, cumulative or delta, give one sample per data point; histograms, exponential histograms and summaries
give `<name>_count` and `<name>_sum`, and the rest of such a point (buckets, quantiles) is refused in the
answer's `partial_success`, as the OTLP spec describes. Decisions (docs/ingest.md: the mapping, examples):
- the name is the OTLP metric name unchanged (metricstream names allow dots), trimmed and checked as every
  name is;
- labels: resource attributes, then the point's, which win; keys through `label_name_from`; two keys that
  give one label name have their values joined with `;` in key order, as the Collector's Prometheus
  translator does. Values as text: bool `true`/`false`, numbers in Python's shortest form, bytes base64,
  arrays and kvlists as compact JSON; an empty value is no label. Left out of the resource's: those the SDK
  adds to every process, `telemetry.sdk.*`, `telemetry.distro.*` and `service.instance.id` (a random id per
  process start, so a series would be a new metric after each restart); the Collector's Prometheus
  exporter keeps these in `target_info`, not on each series. Scope name and attributes are not labels: they
  name the instrumentation library, not the series, and would spend the 32 labels;
- `_count` has no unit (it counts points); `_sum` and plain points carry the OTLP unit; empty unit: none;
- time: `time_unix_nano` truncated to microseconds (what is stored); 0 means now;
- a point flagged "no recorded value" is skipped and not counted as rejected: it says there is no value;
- a point that cannot be written (no value, not finite, a bad name or labels) is rejected with its reason,
  so that the rest of the request is still written;
- OTLP/JSON: exemplars are not read, so their hex trace and span ids need no translation; unknown fields are
  ignored, as the spec asks; 64-bit integers as strings or numbers, enums as integers (names too).
"""

from __future__ import annotations

import base64
import math
import re
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from types import ModuleType
from typing import TYPE_CHECKING, Final, TypeVar

import orjson

from ..errors import UnsupportedMediaTypeError, ValidationError
from ..wire import MAX_NAME_LENGTH
from .labels import Sample, label_name_from, validate_labels
from .names import normalize_name

if TYPE_CHECKING:
    from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
        ExportMetricsServiceRequest,
        ExportMetricsServiceResponse,
    )
    from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
    from opentelemetry.proto.metrics.v1.metrics_pb2 import (
        ExponentialHistogramDataPoint,
        HistogramDataPoint,
        Metric,
        NumberDataPoint,
        SummaryDataPoint,
    )

__all__ = ["JSON", "PROTOBUF", "OtlpDecoded", "decode_metrics", "encode_response", "otlp_media_type"]

PROTOBUF: Final = "application/x-protobuf"
JSON: Final = "application/json"
_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)
_NO_RECORDED_VALUE: Final = 1  # DataPointFlags.DATA_POINT_FLAGS_NO_RECORDED_VALUE_MASK
# resource attributes that describe the process, not the series (see the module's docstring)
_PROCESS_ATTRIBUTE: Final = re.compile(r"telemetry\.(sdk|distro)\..+|service\.instance\.id")
_MAX_REASONS: Final = 10  # the answer's message lists this many distinct reasons, then a count of the rest
_NOT_STORED: Final = {
    "histogram": "histogram buckets are not stored, only _count and _sum",
    "exponential_histogram": "exponential histogram buckets are not stored, only _count and _sum",
    "summary": "summary quantiles are not stored, only _count and _sum",
}

_Point = TypeVar(
    "_Point", "NumberDataPoint", "HistogramDataPoint", "ExponentialHistogramDataPoint", "SummaryDataPoint"
)


@dataclass(frozen=True, slots=True)
class OtlpDecoded:
    """What a request gave: the samples to write, and how many data points were refused and why."""

    samples: tuple[Sample, ...] = ()
    rejected_data_points: int = 0
    error_message: str = ""  # empty when nothing was rejected


def otlp_media_type(content_type: str) -> str:
    """`PROTOBUF` or `JSON` from a Content-Type header (parameters and case ignored), or an
    `UnsupportedMediaTypeError` (415) saying which two are taken."""
    media = content_type.partition(";")[0].strip().lower()
    if media not in (PROTOBUF, JSON):
        shown = media or "none"
        raise UnsupportedMediaTypeError(
            f"OTLP metrics must be sent as {PROTOBUF} or {JSON}, not {shown[:100]}"
        )
    return media


def decode_metrics(body: bytes, content_type: str, *, max_name_length: int = MAX_NAME_LENGTH) -> OtlpDecoded:
    """The samples of an `ExportMetricsServiceRequest` in `body` (protobuf or JSON, by `content_type`).
    A body that is not such a request: `ValidationError` (400, not retried, as the spec asks). Points that
    cannot be written are counted in `rejected_data_points`, not raised: the rest is still written."""
    request = _parse_request(body, otlp_media_type(content_type))
    return _Decoder(max_name_length).decode(request)


def encode_response(decoded: OtlpDecoded, content_type: str) -> bytes:
    """The `ExportMetricsServiceResponse` for `decoded`, in the request's encoding: `partial_success` is set
    only when points were rejected (the spec: it MUST be left unset on full success)."""
    media = otlp_media_type(content_type)
    response: ExportMetricsServiceResponse = _metrics_service().ExportMetricsServiceResponse()
    if decoded.rejected_data_points:
        response.partial_success.rejected_data_points = decoded.rejected_data_points
        response.partial_success.error_message = decoded.error_message
    if media == PROTOBUF:
        return response.SerializeToString()
    from google.protobuf import json_format

    return orjson.dumps(json_format.MessageToDict(response))


def _metrics_service() -> ModuleType:
    """The OTLP metrics service's module, imported on first use: `opentelemetry-proto` is an extra."""
    try:
        from opentelemetry.proto.collector.metrics.v1 import metrics_service_pb2
    except ImportError:
        raise UnsupportedMediaTypeError(
            "OTLP is not installed on this server: pip install 'metricstream[otlp]'"
        ) from None
    return metrics_service_pb2


def _parse_request(body: bytes, media: str) -> ExportMetricsServiceRequest:
    from google.protobuf import json_format
    from google.protobuf.message import DecodeError

    request: ExportMetricsServiceRequest = _metrics_service().ExportMetricsServiceRequest()
    if media == PROTOBUF:
        try:
            request.ParseFromString(body)
        except DecodeError:
            raise ValidationError(
                "request body is not an OTLP ExportMetricsServiceRequest in protobuf"
            ) from None
        return request
    try:
        document = orjson.loads(body)
    except orjson.JSONDecodeError as error:
        raise ValidationError(f"request body is not valid JSON: {error}") from None
    if not isinstance(document, dict):
        raise ValidationError("request body must be a JSON object (an OTLP ExportMetricsServiceRequest)")
    try:
        json_format.ParseDict(document, request, ignore_unknown_fields=True)
    except (json_format.ParseError, RecursionError) as error:
        # the parser's message nests one "Failed to parse <field> field: " (and one "." after) per level:
        # its end is the cause
        reason = str(error).rstrip(".") or "nested too deeply"
        reason = reason if len(reason) <= 300 else "..." + reason[-297:]
        raise ValidationError(
            f"request body is not an OTLP/JSON ExportMetricsServiceRequest: {reason}"
        ) from None
    return request


class _Decoder:
    """One request's walk: samples in request order, and the reasons points were refused."""

    def __init__(self, max_name_length: int) -> None:
        self.max_name_length = max_name_length
        self.samples: list[Sample] = []
        self.reasons: Counter[str] = Counter()
        self.position = 0  # 1-based position of the data point in the request: `Sample.line`

    def decode(self, request: ExportMetricsServiceRequest) -> OtlpDecoded:
        for resource_metrics in request.resource_metrics:
            try:
                resource_labels: dict[str, str] | ValidationError = _labels(
                    resource_metrics.resource.attributes, _PROCESS_ATTRIBUTE
                )
            except ValidationError as error:
                resource_labels = error  # each of its points is refused with this reason
            for scope_metrics in resource_metrics.scope_metrics:
                for metric in scope_metrics.metrics:
                    self._metric(metric, resource_labels)
        rejected = sum(self.reasons.values())
        return OtlpDecoded(tuple(self.samples), rejected, reasons_message(self.reasons))

    def _metric(self, metric: Metric, resource_labels: dict[str, str] | ValidationError) -> None:
        kind = metric.WhichOneof("data")
        if kind == "gauge":
            self._points(metric, metric.gauge.data_points, _number, resource_labels)
        elif kind == "sum":
            self._points(metric, metric.sum.data_points, _number, resource_labels)
        elif kind == "histogram":
            self._points(metric, metric.histogram.data_points, _histogram, resource_labels, kind)
        elif kind == "exponential_histogram":
            points = metric.exponential_histogram.data_points
            self._points(metric, points, _histogram, resource_labels, kind)
        elif kind == "summary":
            self._points(metric, metric.summary.data_points, _summary, resource_labels, kind)
        # no data (kind None): no points to write or refuse

    def _points(
        self,
        metric: Metric,
        points: Iterable[_Point],
        values: Callable[[_Point], list[tuple[str, float]]],
        resource_labels: dict[str, str] | ValidationError,
        partly_stored: str = "",
    ) -> None:
        """A sample per (suffix, value) of each point; `partly_stored`: the kind whose rest is refused."""
        name = self._name(metric.name, "_count" if partly_stored else "")
        for point in points:
            self.position += 1
            if point.flags & _NO_RECORDED_VALUE:
                continue
            try:
                if isinstance(name, ValidationError):
                    raise name
                if isinstance(resource_labels, ValidationError):
                    raise resource_labels
                labels = validate_labels({**resource_labels, **_labels(point.attributes)})
                pairs = values(point)
            except ValidationError as error:
                self.reasons[f"metric {metric.name[:100]!r}: {error.message}"] += 1
                continue
            moment = _moment(point.time_unix_nano)
            for suffix, value in pairs:
                # a count has no unit: it counts what was measured
                unit = None if suffix == "_count" else metric.unit or None
                self.samples.append(
                    Sample(
                        name + suffix,
                        value,
                        labels,
                        moment,
                        unit,
                        metric.description or None,
                        self.position,
                    )
                )
            if partly_stored:
                self.reasons[_NOT_STORED[partly_stored]] += 1

    def _name(self, name: str, suffix: str) -> str | ValidationError:
        """`name` as every path takes a name (trimmed, NFC), or why it cannot name a metric with the longest
        `suffix` its kind adds: each of the metric's points is then refused with that reason."""
        try:
            checked = normalize_name(name)
        except ValueError as error:
            return ValidationError(f"the name {error}")
        if not checked or len(checked + suffix) > self.max_name_length:
            longest = self.max_name_length - len(suffix)
            return ValidationError(f"the name must be 1 to {longest} characters (after trimming spaces)")
        return checked


def _number(point: NumberDataPoint) -> list[tuple[str, float]]:
    kind = point.WhichOneof("value")
    if kind is None:
        raise ValidationError("a data point has no value")
    value = point.as_double if kind == "as_double" else float(point.as_int)
    return [("", _finite(value))]


def _histogram(point: HistogramDataPoint | ExponentialHistogramDataPoint) -> list[tuple[str, float]]:
    pairs = [("_count", float(point.count))]
    if point.HasField("sum"):  # optional: left out where values can be negative
        pairs.append(("_sum", _finite(point.sum)))
    return pairs


def _summary(point: SummaryDataPoint) -> list[tuple[str, float]]:
    return [("_count", float(point.count)), ("_sum", _finite(point.sum))]


def _finite(value: float) -> float:
    if not math.isfinite(value):
        raise ValidationError(f"a data point's value must be a finite number, not {value}")
    return value


def _moment(time_unix_nano: int) -> datetime | None:
    """The point's time to the microsecond (truncated, as stored), or None (now) for 0, OTLP's unset."""
    if not time_unix_nano:
        return None
    # fixed64 nanoseconds end in 2554: always a datetime
    return _EPOCH + timedelta(microseconds=time_unix_nano // 1000)


def _labels(attributes: Iterable[KeyValue], leave_out: re.Pattern[str] | None = None) -> dict[str, str]:
    """Attributes as label names and texts, not yet checked for count and length (`validate_labels`), but
    those whose whole key `leave_out` matches."""
    labels: dict[str, str] = {}
    for key, text in sorted((pair.key, _text(pair.value)) for pair in attributes):
        # an empty value is no label, as in Prometheus
        if not text or (leave_out and leave_out.fullmatch(key)):
            continue
        name = label_name_from(key)
        labels[name] = f"{labels[name]};{text}" if name in labels else text
    return labels


def _text(value: AnyValue) -> str:
    kind = value.WhichOneof("value")
    if kind == "string_value":
        return value.string_value
    if kind is None:
        return ""
    if kind == "bool_value":
        return "true" if value.bool_value else "false"
    if kind in ("array_value", "kvlist_value"):
        return orjson.dumps(_plain(value)).decode()
    return str(_plain(value))


def _plain(value: AnyValue) -> object:
    """An attribute value as plain data: what its JSON or its text shows."""
    kind = value.WhichOneof("value")
    if kind == "bool_value":
        return value.bool_value
    if kind == "int_value":
        return value.int_value
    if kind == "double_value":
        return value.double_value
    if kind == "bytes_value":
        return base64.b64encode(value.bytes_value).decode()
    if kind == "array_value":
        return [_plain(item) for item in value.array_value.values]
    if kind == "kvlist_value":
        return {pair.key: _plain(pair.value) for pair in value.kvlist_value.values}
    return value.string_value if kind == "string_value" else None


def reasons_message(reasons: Counter[str]) -> str:
    """The answer's `error_message`: each reason once with its count, the most frequent first."""
    shown = [
        f"{reason} ({count} data point{'s' if count > 1 else ''})" for reason, count in reasons.most_common()
    ]
    if len(shown) > _MAX_REASONS:
        shown[_MAX_REASONS:] = [f"and {len(shown) - _MAX_REASONS} more reasons"]
    return "; ".join(shown)
