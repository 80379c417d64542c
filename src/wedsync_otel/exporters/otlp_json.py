"""OTLP JSON files: span and metric exporters that append, and readers that read them back.

One line per export, each an ``ExportTraceServiceRequest`` or
``ExportMetricsServiceRequest`` in the OTLP/JSON encoding: what the
OpenTelemetry Collector's ``file`` exporter writes and its ``otlpjsonfile``
receiver reads, so a run can be replayed through a collector, and a
collector's file can be read by ``wedsync-otel report``.

The SDK's own OTLP encoders build the protobuf messages and protobuf's JSON
mapping writes them, with the two changes the OTLP/JSON spec makes to that
mapping: enums are integers, and trace and span ids are hex, not base64 (a
collector decodes base64 ids into the wrong bytes). The readers undo the id
change before `json_format.ParseDict` and accept base64 ids as well.
"""

from __future__ import annotations

import base64
import json
import logging
import os
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, Final, TypeAlias, TypeVar

from google.protobuf import json_format
from google.protobuf.message import Message
from opentelemetry.exporter.otlp.proto.common.metrics_encoder import encode_metrics
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
)
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.metrics.v1 import metrics_pb2
from opentelemetry.proto.trace.v1 import trace_pb2
from opentelemetry.sdk.metrics import (
    Counter,
    Histogram,
    ObservableCounter,
    ObservableGauge,
    ObservableUpDownCounter,
    UpDownCounter,
)
from opentelemetry.sdk.metrics.export import (
    AggregationTemporality,
    MetricExporter,
    MetricExportResult,
    MetricsData,
)
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult
from opentelemetry.trace import SpanKind, StatusCode

logger = logging.getLogger("wedsync_otel")

TRACES_FILE: Final = "traces.jsonl"
METRICS_FILE: Final = "metrics.jsonl"
_SUFFIXES: Final = frozenset({".json", ".jsonl"})
_ID_KEYS: Final = frozenset({"traceId", "spanId", "parentSpanId", "trace_id", "span_id"})
_HEX_ID_LENGTHS: Final = frozenset({16, 32})  # span id and trace id, in hex digits
_SPANS_KEYS: Final = ("resourceSpans", "resource_spans")
_METRICS_KEYS: Final = ("resourceMetrics", "resource_metrics")
_REQUEST_KEYS: Final = frozenset(
    {*_SPANS_KEYS, *_METRICS_KEYS, "resourceLogs", "resource_logs", "resourceProfiles"}
)

# OTLP's SpanKind counts from SPAN_KIND_UNSPECIFIED = 0; the API's from INTERNAL = 0.
_SPAN_KINDS: Final = {
    trace_pb2.Span.SPAN_KIND_UNSPECIFIED: SpanKind.INTERNAL,
    trace_pb2.Span.SPAN_KIND_INTERNAL: SpanKind.INTERNAL,
    trace_pb2.Span.SPAN_KIND_SERVER: SpanKind.SERVER,
    trace_pb2.Span.SPAN_KIND_CLIENT: SpanKind.CLIENT,
    trace_pb2.Span.SPAN_KIND_PRODUCER: SpanKind.PRODUCER,
    trace_pb2.Span.SPAN_KIND_CONSUMER: SpanKind.CONSUMER,
}
_STATUS_CODES: Final = {
    trace_pb2.Status.STATUS_CODE_UNSET: StatusCode.UNSET,
    trace_pb2.Status.STATUS_CODE_OK: StatusCode.OK,
    trace_pb2.Status.STATUS_CODE_ERROR: StatusCode.ERROR,
}

AttributeValue: TypeAlias = (
    "str | bool | int | float | bytes | tuple[AttributeValue, ...] | dict[str, AttributeValue] "
    "| None"
)
"""An OTLP ``AnyValue`` as Python: int64 as `int` (OTLP JSON writes it as a string)."""
Attributes: TypeAlias = Mapping[str, AttributeValue]


# --- writing -------------------------------------------------------------------------------


def to_json_line(request: Message) -> str:
    """One OTLP/JSON line for an export request: protobuf's mapping, integer enums, hex ids."""
    data = json_format.MessageToDict(request, use_integers_for_enums=True)
    _recode_ids(data, _base64_to_hex)
    return json.dumps(data, separators=(",", ":"))


class _JsonLinesFile:
    """An append-only file of lines, opened on first use, written and flushed under a lock."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._stream: IO[str] | None = None
        self._closed = False
        self._failing = False

    def append(self, line: str) -> bool:
        """Write one line and flush it; False (logged once per failure streak) if it failed."""
        with self._lock:
            if self._closed:
                return False
            try:
                if self._stream is None:
                    self.path.parent.mkdir(parents=True, exist_ok=True)
                    self._stream = self.path.open("a", encoding="utf-8")
                self._stream.write(line + "\n")
                self._stream.flush()
            except OSError as exc:
                if not self._failing:
                    logger.warning("wedsync-otel: cannot write %s (%s)", self.path, exc)
                self._failing = True
                return False
            self._failing = False
            return True

    def close(self) -> None:
        """Close the file; later appends fail. Idempotent."""
        with self._lock:
            self._closed = True
            stream, self._stream = self._stream, None
        if stream is not None:
            stream.close()


class OtlpJsonFileSpanExporter(SpanExporter):
    """Appends each export to ``directory/traces.jsonl`` as one ``ExportTraceServiceRequest``.

    The file is created on the first export, so a bad directory is logged (once)
    instead of raising into the application that configured the exporter.
    """

    def __init__(self, directory: str | os.PathLike[str]) -> None:
        self._file = _JsonLinesFile(Path(directory) / TRACES_FILE)

    @property
    def path(self) -> Path:
        """The file written."""
        return self._file.path

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        """Write one line for ``spans``."""
        if not spans:
            return SpanExportResult.SUCCESS
        ok = self._file.append(to_json_line(encode_spans(spans)))
        return SpanExportResult.SUCCESS if ok else SpanExportResult.FAILURE

    def force_flush(self, timeout_millis: int = 30_000) -> bool:
        """Nothing to do: every export is flushed as it is written."""
        return True

    def shutdown(self) -> None:
        """Close the file; later exports fail."""
        self._file.close()


_CUMULATIVE: Final[dict[type, AggregationTemporality]] = dict.fromkeys(
    (
        Counter,
        UpDownCounter,
        Histogram,
        ObservableCounter,
        ObservableUpDownCounter,
        ObservableGauge,
    ),
    AggregationTemporality.CUMULATIVE,
)


class OtlpJsonFileMetricExporter(MetricExporter):
    """Appends each export to ``directory/metrics.jsonl`` as one ``ExportMetricsServiceRequest``.

    Prefers cumulative temporality, as the collector's file exporter writes it:
    every line then stands on its own, and the last one holds the totals.
    """

    def __init__(self, directory: str | os.PathLike[str]) -> None:
        super().__init__(preferred_temporality=dict(_CUMULATIVE))
        self._file = _JsonLinesFile(Path(directory) / METRICS_FILE)

    @property
    def path(self) -> Path:
        """The file written."""
        return self._file.path

    def export(
        self,
        metrics_data: MetricsData,
        timeout_millis: float = 10_000,
        **kwargs: Any,  # the SDK's MetricExporter signature
    ) -> MetricExportResult:
        """Write one line for ``metrics_data``; nothing when it holds no metric."""
        request = encode_metrics(metrics_data)
        if not request.resource_metrics:
            return MetricExportResult.SUCCESS
        ok = self._file.append(to_json_line(request))
        return MetricExportResult.SUCCESS if ok else MetricExportResult.FAILURE

    def force_flush(self, timeout_millis: float = 10_000) -> bool:
        """Nothing to do: every export is flushed as it is written."""
        return True

    def shutdown(
        self,
        timeout_millis: float = 30_000,
        **kwargs: Any,  # the SDK's MetricExporter signature
    ) -> None:
        """Close the file; later exports fail."""
        self._file.close()


# --- reading: records ----------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True, slots=True)
class EventRecord:
    """A span event."""

    name: str
    time_ns: int
    attributes: Attributes


@dataclass(frozen=True, kw_only=True, slots=True)
class SpanRecord:
    """One span read back from OTLP JSON, with plain Python values."""

    name: str
    kind: SpanKind
    trace_id: str
    """32 hex digits."""
    span_id: str
    """16 hex digits."""
    parent_span_id: str | None
    start_ns: int
    end_ns: int
    status_code: StatusCode
    attributes: Attributes
    resource: Attributes
    scope: str
    events: tuple[EventRecord, ...] = ()

    @property
    def duration_ms(self) -> float:
        """End minus start, in milliseconds."""
        return (self.end_ns - self.start_ns) / 1e6


@dataclass(frozen=True, kw_only=True, slots=True)
class NumberPoint:
    """A sum or gauge data point."""

    attributes: Attributes
    start_ns: int
    time_ns: int
    value: int | float


@dataclass(frozen=True, kw_only=True, slots=True)
class ExponentialHistogramPoint:
    """A base-2 exponential histogram data point, as OTLP carries it."""

    attributes: Attributes
    start_ns: int
    time_ns: int
    count: int
    sum: float | None
    min: float | None
    max: float | None
    scale: int
    zero_count: int
    offset: int
    """Index of the first positive bucket."""
    bucket_counts: tuple[int, ...]
    """Positive buckets; negative ones are dropped (latencies have none)."""


@dataclass(frozen=True, kw_only=True, slots=True)
class HistogramPoint:
    """An explicit-bucket histogram data point."""

    attributes: Attributes
    start_ns: int
    time_ns: int
    count: int
    sum: float | None
    min: float | None
    max: float | None
    bucket_counts: tuple[int, ...]
    explicit_bounds: tuple[float, ...]


MetricPoint: TypeAlias = NumberPoint | ExponentialHistogramPoint | HistogramPoint


@dataclass(frozen=True, kw_only=True, slots=True)
class MetricRecord:
    """One metric of one export: its type, temporality and data points."""

    name: str
    description: str
    unit: str
    type: str
    """``gauge``, ``sum``, ``histogram`` or ``exponential_histogram``."""
    temporality: AggregationTemporality | None
    """None for gauges."""
    monotonic: bool | None
    """Sums only."""
    resource: Attributes
    scope: str
    points: tuple[MetricPoint, ...] = field(default_factory=tuple)


# --- reading: files ------------------------------------------------------------------------


def read_spans(path: str | os.PathLike[str]) -> list[SpanRecord]:
    """Every span in an OTLP JSON file, or in the ``*.json``/``*.jsonl`` files of a directory.

    Raises `OSError` when the path cannot be read and `ValueError` (naming the
    file and line) when an explicitly named file is not OTLP JSON.
    """
    records: list[SpanRecord] = []
    for request in _requests(Path(path), _SPANS_KEYS, ExportTraceServiceRequest):
        for resource_spans in request.resource_spans:
            resource = _attributes(resource_spans.resource.attributes)
            for scope_spans in resource_spans.scope_spans:
                scope = scope_spans.scope.name
                records.extend(_span(span, resource, scope) for span in scope_spans.spans)
    return records


def read_metrics(path: str | os.PathLike[str]) -> list[MetricRecord]:
    """Every metric of every export in an OTLP JSON file or directory, in file order.

    Cumulative series repeat in each export; the last one holds the totals.
    Summaries are skipped. Raises like `read_spans`.
    """
    records: list[MetricRecord] = []
    for request in _requests(Path(path), _METRICS_KEYS, ExportMetricsServiceRequest):
        for resource_metrics in request.resource_metrics:
            resource = _attributes(resource_metrics.resource.attributes)
            for scope_metrics in resource_metrics.scope_metrics:
                scope = scope_metrics.scope.name
                for metric in scope_metrics.metrics:
                    record = _metric(metric, resource, scope)
                    if record is not None:
                        records.append(record)
    return records


_M = TypeVar("_M", bound=Message)


def _requests(path: Path, keys: Sequence[str], message_type: type[_M]) -> Iterator[_M]:
    """The export requests of one kind (``keys``) in ``path``, parsed as ``message_type``."""
    if not path.is_dir():
        yield from _file_requests(path, keys, message_type, explicit=True)
        return
    for file in sorted(p for p in path.iterdir() if p.suffix in _SUFFIXES and p.is_file()):
        yield from _file_requests(file, keys, message_type, explicit=False)


def _file_requests(
    file: Path, keys: Sequence[str], message_type: type[_M], *, explicit: bool
) -> Iterator[_M]:
    """The requests of one file.

    In a directory, a file whose first document is not an OTLP request is
    skipped (other JSON lives there too); a named file must be OTLP JSON, and
    so must the rest of a file that started as OTLP JSON.
    """
    first = True
    try:
        for line, document in _documents(file):
            if not isinstance(document, dict) or (document and not _REQUEST_KEYS & document.keys()):
                raise ValueError(f"{file}:{line}: not an OTLP JSON export request")
            first = False
            if any(key in document for key in keys):
                yield _parse(file, line, document, message_type)
    except ValueError:
        if explicit or not first:
            raise


def _parse(file: Path, line: int, document: dict[str, Any], message_type: type[_M]) -> _M:
    _recode_ids(document, _hex_to_base64)
    message = message_type()
    try:
        json_format.ParseDict(document, message, ignore_unknown_fields=True)
    except json_format.ParseError as exc:
        name = message.DESCRIPTOR.name
        raise ValueError(f"{file}:{line}: not a valid {name} ({exc})") from None
    return message


def _documents(file: Path) -> Iterator[tuple[int, object]]:
    """Each JSON document in ``file`` with its line: JSON lines, or one (pretty) document.

    Reads line by line; when the first line is not JSON on its own, the file is
    read whole as a sequence of documents. An unfinished last line (no newline
    yet: an exporter is writing it) is skipped.
    """
    try:
        with file.open(encoding="utf-8") as stream:
            seen = False
            for number, text in enumerate(stream, start=1):
                if not text.strip():
                    continue
                try:
                    document = json.loads(text)
                except json.JSONDecodeError as exc:
                    if seen and not text.endswith("\n"):
                        return  # an unfinished last line: an exporter is still writing it
                    if seen:
                        raise ValueError(f"{file}:{number}: not valid JSON ({exc.msg})") from None
                    stream.seek(0)
                    yield from _whole_documents(file, stream.read())
                    return
                seen = True
                yield number, document
    except UnicodeDecodeError:
        raise ValueError(f"{file}: not UTF-8 text") from None


def _whole_documents(file: Path, text: str) -> Iterator[tuple[int, object]]:
    decoder = json.JSONDecoder()
    position = 0
    while True:
        while position < len(text) and text[position].isspace():
            position += 1
        if position >= len(text):
            return
        line = text.count("\n", 0, position) + 1
        try:
            document, position = decoder.raw_decode(text, position)
        except json.JSONDecodeError as exc:
            raise ValueError(f"{file}:{exc.lineno}: not valid JSON ({exc.msg})") from None
        yield line, document


def _recode_ids(node: object, recode: Callable[[str], str]) -> None:
    """Rewrite every trace/span id in a parsed OTLP JSON document in place."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key in _ID_KEYS and isinstance(value, str):
                node[key] = recode(value)
            elif isinstance(value, dict | list):
                _recode_ids(value, recode)
    elif isinstance(node, list):
        for item in node:
            if isinstance(item, dict | list):
                _recode_ids(item, recode)


def _base64_to_hex(value: str) -> str:
    return base64.b64decode(value).hex()


def _hex_to_base64(value: str) -> str:
    """Hex ids (the OTLP/JSON spec) to protobuf's base64; anything else is left as it is."""
    if len(value) not in _HEX_ID_LENGTHS:
        return value
    try:
        return base64.b64encode(bytes.fromhex(value)).decode("ascii")
    except ValueError:
        return value


# --- reading: protobuf to records ----------------------------------------------------------


_SCALAR_FIELDS: Final = frozenset(
    {"string_value", "bool_value", "int_value", "double_value", "bytes_value"}
)


def _value(value: AnyValue) -> AttributeValue:
    which = value.WhichOneof("value")
    if which in _SCALAR_FIELDS:
        scalar: str | bool | int | float | bytes = getattr(value, which)
        return scalar
    if which == "array_value":
        return tuple(_value(item) for item in value.array_value.values)
    if which == "kvlist_value":
        return {item.key: _value(item.value) for item in value.kvlist_value.values}
    return None


def _attributes(pairs: Sequence[KeyValue]) -> dict[str, AttributeValue]:
    return {pair.key: _value(pair.value) for pair in pairs}


def _span(span: trace_pb2.Span, resource: Attributes, scope: str) -> SpanRecord:
    return SpanRecord(
        name=span.name,
        kind=_SPAN_KINDS.get(span.kind, SpanKind.INTERNAL),
        trace_id=span.trace_id.hex(),
        span_id=span.span_id.hex(),
        parent_span_id=span.parent_span_id.hex() or None,
        start_ns=span.start_time_unix_nano,
        end_ns=span.end_time_unix_nano,
        status_code=_STATUS_CODES.get(span.status.code, StatusCode.UNSET),
        attributes=_attributes(span.attributes),
        resource=resource,
        scope=scope,
        events=tuple(
            EventRecord(
                name=event.name,
                time_ns=event.time_unix_nano,
                attributes=_attributes(event.attributes),
            )
            for event in span.events
        ),
    )


def _temporality(value: int) -> AggregationTemporality:
    try:
        return AggregationTemporality(value)
    except ValueError:
        return AggregationTemporality.UNSPECIFIED


def _metric(metric: metrics_pb2.Metric, resource: Attributes, scope: str) -> MetricRecord | None:
    which = metric.WhichOneof("data")
    temporality: AggregationTemporality | None = None
    monotonic: bool | None = None
    points: tuple[MetricPoint, ...]
    if which == "gauge":
        points = tuple(_number(point) for point in metric.gauge.data_points)
    elif which == "sum":
        temporality = _temporality(metric.sum.aggregation_temporality)
        monotonic = metric.sum.is_monotonic
        points = tuple(_number(point) for point in metric.sum.data_points)
    elif which == "exponential_histogram":
        data = metric.exponential_histogram
        temporality = _temporality(data.aggregation_temporality)
        points = tuple(_exponential(point) for point in data.data_points)
    elif which == "histogram":
        temporality = _temporality(metric.histogram.aggregation_temporality)
        points = tuple(_histogram(point) for point in metric.histogram.data_points)
    else:
        return None  # a summary, or no data
    return MetricRecord(
        name=metric.name,
        description=metric.description,
        unit=metric.unit,
        type=which,
        temporality=temporality,
        monotonic=monotonic,
        resource=resource,
        scope=scope,
        points=points,
    )


def _number(point: metrics_pb2.NumberDataPoint) -> NumberPoint:
    value: int | float = point.as_int if point.WhichOneof("value") == "as_int" else point.as_double
    return NumberPoint(
        attributes=_attributes(point.attributes),
        start_ns=point.start_time_unix_nano,
        time_ns=point.time_unix_nano,
        value=value,
    )


def _exponential(point: metrics_pb2.ExponentialHistogramDataPoint) -> ExponentialHistogramPoint:
    return ExponentialHistogramPoint(
        attributes=_attributes(point.attributes),
        start_ns=point.start_time_unix_nano,
        time_ns=point.time_unix_nano,
        count=point.count,
        sum=point.sum if point.HasField("sum") else None,
        min=point.min if point.HasField("min") else None,
        max=point.max if point.HasField("max") else None,
        scale=point.scale,
        zero_count=point.zero_count,
        offset=point.positive.offset,
        bucket_counts=tuple(point.positive.bucket_counts),
    )


def _histogram(point: metrics_pb2.HistogramDataPoint) -> HistogramPoint:
    return HistogramPoint(
        attributes=_attributes(point.attributes),
        start_ns=point.start_time_unix_nano,
        time_ns=point.time_unix_nano,
        count=point.count,
        sum=point.sum if point.HasField("sum") else None,
        min=point.min if point.HasField("min") else None,
        max=point.max if point.HasField("max") else None,
        bucket_counts=tuple(point.bucket_counts),
        explicit_bounds=tuple(point.explicit_bounds),
    )
