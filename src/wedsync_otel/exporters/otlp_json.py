"""OTLP JSON files: span and metric exporters that append, and readers that stream them back.

One line per export, each an ``ExportTraceServiceRequest`` or
``ExportMetricsServiceRequest`` in the OTLP/JSON encoding: what the
OpenTelemetry Collector's ``file`` exporter writes and its ``otlpjsonfile``
receiver reads, so a run can be replayed through a collector, and a
collector's file can be read by ``wedsync-otel report``.

Writing: the SDK's own OTLP encoders build the protobuf messages and
protobuf's JSON mapping writes them, with the two changes the OTLP/JSON spec
makes to that mapping: enums are integers, and trace and span ids are hex,
not base64 (a collector decodes base64 ids into the wrong bytes). Each line
goes to the file in one ``write`` on a descriptor opened with ``O_APPEND``, so
several processes (pre-forked workers) appending to one file leave whole lines.

Both exporters can be built without arguments, as the SDK's configurator
builds the exporters it finds under the ``opentelemetry_traces_exporter`` and
``opentelemetry_metrics_exporter`` entry points (both named
``wedsync_otlp_json``): the directory is then `JSON_DIR_ENV`
(``WEDSYNC_OTEL_JSON_DIR``), else `DEFAULT_JSON_DIR` under the working directory.

Reading streams: a file is read a line (JSON lines) or a document (a pretty
file) at a time, never whole, and spans are decoded straight from the parsed
JSON into `SpanRecord`s, hex or base64 ids, camelCase or snake_case field
names and int64 as string or number alike. Metrics go through protobuf's
``ParseDict``, after the ids are recoded to base64.
"""

from __future__ import annotations

import base64
import binascii
import codecs
import contextlib
import json
import logging
import os
import re
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
JSON_DIR_ENV: Final = "WEDSYNC_OTEL_JSON_DIR"
"""Directory the exporters write to when built without one (zero-code: the entry points)."""
DEFAULT_JSON_DIR: Final = "wedsync-telemetry"
"""Directory (under the working directory) when neither an argument nor `JSON_DIR_ENV` names one."""
_SUFFIXES: Final = frozenset({".json", ".jsonl"})
_ID_KEYS: Final = frozenset(
    {"traceId", "spanId", "parentSpanId", "trace_id", "span_id", "parent_span_id"}
)
_HEX_ID_LENGTHS: Final = frozenset({16, 32})  # span id and trace id, in hex digits
_SPANS_KEYS: Final = ("resourceSpans", "resource_spans")
_METRICS_KEYS: Final = ("resourceMetrics", "resource_metrics")
_REQUEST_KEYS: Final = frozenset(
    {*_SPANS_KEYS, *_METRICS_KEYS, "resourceLogs", "resource_logs", "resourceProfiles"}
)

# OTLP's SpanKind counts from SPAN_KIND_UNSPECIFIED = 0; the API's from INTERNAL = 0.
_SPAN_KINDS: Final[dict[int, SpanKind]] = {
    trace_pb2.Span.SPAN_KIND_UNSPECIFIED: SpanKind.INTERNAL,
    trace_pb2.Span.SPAN_KIND_INTERNAL: SpanKind.INTERNAL,
    trace_pb2.Span.SPAN_KIND_SERVER: SpanKind.SERVER,
    trace_pb2.Span.SPAN_KIND_CLIENT: SpanKind.CLIENT,
    trace_pb2.Span.SPAN_KIND_PRODUCER: SpanKind.PRODUCER,
    trace_pb2.Span.SPAN_KIND_CONSUMER: SpanKind.CONSUMER,
}
_STATUS_CODES: Final[dict[int, StatusCode]] = {
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


def json_directory(directory: str | os.PathLike[str] | None = None) -> Path:
    """Where the exporters write: ``directory``, else `JSON_DIR_ENV`, else `DEFAULT_JSON_DIR`.

    Made absolute against the working directory now, so a later ``chdir`` does
    not move the files. An empty variable counts as unset.
    """
    if directory is None:
        directory = os.environ.get(JSON_DIR_ENV, "").strip() or DEFAULT_JSON_DIR
    return Path(directory).absolute()


class _JsonLinesFile:
    """An append-only file of lines, opened on first use, written under a lock.

    Opened with ``O_APPEND`` and written with one ``os.write`` per line: no
    user-space buffer splits a line, so threads here and other processes
    appending to the same file each leave whole lines (on a local file system;
    a write cut short by a full disk is finished in further writes).
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._fd: int | None = None
        self._closed = False
        self._failing = False

    def append(self, line: str) -> bool:
        """Write one line; False (logged once per failure streak) if it failed."""
        data = memoryview((line + "\n").encode("utf-8"))
        with self._lock:
            if self._closed:
                return False
            try:
                if self._fd is None:
                    self.path.parent.mkdir(parents=True, exist_ok=True)
                    self._fd = os.open(self.path, _APPEND_FLAGS, 0o644)
                while data:
                    data = data[os.write(self._fd, data) :]
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
            fd, self._fd = self._fd, None
        if fd is not None:
            os.close(fd)


_APPEND_FLAGS: Final = os.O_WRONLY | os.O_APPEND | os.O_CREAT | getattr(os, "O_CLOEXEC", 0)


class OtlpJsonFileSpanExporter(SpanExporter):
    """Appends each export to ``directory/traces.jsonl`` as one ``ExportTraceServiceRequest``.

    ``directory`` defaults to `JSON_DIR_ENV`, else `DEFAULT_JSON_DIR` (see
    `json_directory`): ``OTEL_TRACES_EXPORTER=wedsync_otlp_json`` builds it so.
    The file is created on the first export, so a bad directory is logged (once)
    instead of raising into the application that configured the exporter.
    """

    def __init__(self, directory: str | os.PathLike[str] | None = None) -> None:
        self._file = _JsonLinesFile(json_directory(directory) / TRACES_FILE)

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
    ``directory`` defaults like `OtlpJsonFileSpanExporter`'s:
    ``OTEL_METRICS_EXPORTER=wedsync_otlp_json`` builds it without one.
    """

    def __init__(self, directory: str | os.PathLike[str] | None = None) -> None:
        super().__init__(preferred_temporality=dict(_CUMULATIVE))
        self._file = _JsonLinesFile(json_directory(directory) / METRICS_FILE)

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


Progress: TypeAlias = Callable[[int], None]
"""Called with the number of bytes just read, as a read goes through its files."""


@dataclass(kw_only=True, slots=True)
class ReadCounts:
    """What a read went through: filled in as `iter_spans` streams, complete once it ends."""

    files: int = 0
    """Files read (in a directory, those that held OTLP JSON)."""
    bytes_read: int = 0
    span_requests: int = 0
    """Export requests holding spans."""
    metric_requests: int = 0
    """Export requests holding metrics, passed over by a span read."""
    other_requests: int = 0
    """Logs, profiles and empty documents."""


def otlp_files(path: str | os.PathLike[str]) -> list[Path]:
    """The files a read of ``path`` goes through: the file itself, or a directory's candidates.

    A directory's ``*.json`` and ``*.jsonl`` files, in name order; those that
    turn out not to hold OTLP JSON are skipped as they are read.
    """
    path = Path(path)
    if not path.is_dir():
        return [path]
    return sorted(p for p in path.iterdir() if p.suffix in _SUFFIXES and p.is_file())


def iter_spans(
    path: str | os.PathLike[str],
    *,
    progress: Progress | None = None,
    counts: ReadCounts | None = None,
) -> Iterator[SpanRecord]:
    """Every span in an OTLP JSON file, or in the ``*.json``/``*.jsonl`` files of a directory.

    Streams: one line or document is held at a time, whatever the file's size.
    ``progress`` hears of every chunk of bytes read; ``counts`` is filled in
    as the read goes. Raises `OSError` when the path cannot be read and
    `ValueError` (naming the file and line) when an explicitly named file, or
    the rest of a file that started as OTLP JSON, is not OTLP JSON.
    """
    counts = ReadCounts() if counts is None else counts
    for file, explicit in _files(Path(path)):
        for line, document in _file_requests(
            file, explicit=explicit, counts=counts, progress=progress
        ):
            if not any(key in document for key in _SPANS_KEYS):
                continue
            try:
                spans = _spans_of(document)
            except (TypeError, ValueError, AttributeError, KeyError, binascii.Error) as exc:
                raise ValueError(
                    f"{file}:{line}: not a valid ExportTraceServiceRequest ({_problem(exc)})"
                ) from None
            yield from spans


def read_spans(path: str | os.PathLike[str]) -> list[SpanRecord]:
    """Every span of `iter_spans` in a list: for small files; a report streams instead."""
    return list(iter_spans(path))


def read_metrics(path: str | os.PathLike[str]) -> list[MetricRecord]:
    """Every metric of every export in an OTLP JSON file or directory, in file order.

    Cumulative series repeat in each export; the last one holds the totals.
    Summaries are skipped. Raises like `iter_spans`.
    """
    records: list[MetricRecord] = []
    counts = ReadCounts()
    for file, explicit in _files(Path(path)):
        for line, document in _file_requests(file, explicit=explicit, counts=counts, progress=None):
            if not any(key in document for key in _METRICS_KEYS):
                continue
            request = _parse(file, line, document, ExportMetricsServiceRequest)
            for resource_metrics in request.resource_metrics:
                resource = _attributes(resource_metrics.resource.attributes)
                for scope_metrics in resource_metrics.scope_metrics:
                    scope = scope_metrics.scope.name
                    for metric in scope_metrics.metrics:
                        record = _metric(metric, resource, scope)
                        if record is not None:
                            records.append(record)
    return records


def _files(path: Path) -> Iterator[tuple[Path, bool]]:
    """Each file to read, and whether it was named (a named file must be OTLP JSON)."""
    if not path.is_dir():
        yield path, True
        return
    for file in otlp_files(path):
        yield file, False


def _file_requests(
    file: Path, *, explicit: bool, counts: ReadCounts, progress: Progress | None
) -> Iterator[tuple[int, dict[str, Any]]]:
    """The export requests of one file, with their lines, counted by kind.

    In a directory, a file whose first document is not an OTLP request is
    skipped (other JSON lives there too); a named file must be OTLP JSON, and
    so must the rest of a file that started as OTLP JSON.
    """
    read = 0

    def tally(size: int) -> None:
        nonlocal read
        read += size
        counts.bytes_read += size
        if progress is not None:
            progress(size)

    first = True
    try:
        for line, document in _documents(file, tally):
            if not isinstance(document, dict) or (document and not _REQUEST_KEYS & document.keys()):
                raise ValueError(f"{file}:{line}: not an OTLP JSON export request")
            if first:
                counts.files += 1
            first = False
            if any(key in document for key in _SPANS_KEYS):
                counts.span_requests += 1
            elif any(key in document for key in _METRICS_KEYS):
                counts.metric_requests += 1
            else:
                counts.other_requests += 1
            yield line, document
    except ValueError:
        if explicit or not first:
            raise
        if progress is not None:  # passed over: the rest of it counts as done
            with contextlib.suppress(OSError):
                progress(max(0, file.stat().st_size - read))


_M = TypeVar("_M", bound=Message)


def _parse(file: Path, line: int, document: dict[str, Any], message_type: type[_M]) -> _M:
    _recode_ids(document, _hex_to_base64)
    message = message_type()
    try:
        json_format.ParseDict(document, message, ignore_unknown_fields=True)
    except json_format.ParseError as exc:
        name = message.DESCRIPTOR.name
        raise ValueError(f"{file}:{line}: not a valid {name} ({exc})") from None
    return message


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


_CHUNK_BYTES: Final = 1 << 20
_NOT_SPACE: Final = re.compile(r"\S")
_TAIL_CHARS: Final = 64
"""A JSON error this close to the end of what was read may be a document cut off: read on."""


def _documents(file: Path, tally: Callable[[int], None]) -> Iterator[tuple[int, object]]:
    """Each JSON document in ``file`` with its line: JSON lines, or (pretty) documents.

    Reads line by line; when the first line is not JSON on its own, the file is
    read again as a stream of documents, a chunk at a time. An unfinished last
    line (no newline yet: an exporter is writing it) is skipped. ``tally``
    hears of every byte read, once.
    """
    with file.open("rb") as stream:
        seen = False
        counted = 0
        for number, raw in enumerate(stream, start=1):
            tally(len(raw))
            counted += len(raw)
            if not raw.strip():
                continue
            try:
                text = raw.decode("utf-8-sig" if number == 1 else "utf-8")
            except UnicodeDecodeError:
                raise ValueError(f"{file}: not UTF-8 text") from None
            try:
                document = json.loads(text)
            except json.JSONDecodeError as exc:
                if seen and not raw.endswith(b"\n"):
                    return  # an unfinished last line: an exporter is still writing it
                if seen:
                    raise ValueError(f"{file}:{number}: not valid JSON ({exc.msg})") from None
                stream.seek(0)
                yield from _streamed_documents(file, stream, _recounted(tally, counted))
                return
            seen = True
            yield number, document


def _recounted(tally: Callable[[int], None], counted: int) -> Callable[[int], None]:
    """``tally`` for a second pass over a file, passing over the ``counted`` bytes it heard of."""
    remaining = counted

    def fresh(size: int) -> None:
        nonlocal remaining
        skipped = min(size, remaining)
        remaining -= skipped
        if size > skipped:
            tally(size - skipped)

    return fresh


def _streamed_documents(
    file: Path, stream: IO[bytes], tally: Callable[[int], None]
) -> Iterator[tuple[int, object]]:
    """Documents one after another (pretty-printed, or several on a line), a chunk at a time.

    Only the document being decoded is held, with at most a chunk beyond it:
    when the buffer ends inside a document, what was decoded is dropped and as
    much again as the buffer holds is read (so a large document costs a
    bounded number of attempts), then the document is decoded again.
    """
    decoder = json.JSONDecoder()
    utf8 = codecs.getincrementaldecoder("utf-8-sig")()
    buffer, position, line, eof = "", 0, 1, False

    def more(keep: str) -> str:
        nonlocal eof
        raw = stream.read(max(_CHUNK_BYTES, len(keep)))
        tally(len(raw))
        eof = not raw
        try:
            return keep + utf8.decode(raw, final=eof)
        except UnicodeDecodeError:
            raise ValueError(f"{file}: not UTF-8 text") from None

    while True:
        found = _NOT_SPACE.search(buffer, position)
        if found is None:
            line += buffer.count("\n", position)
            if eof:
                return
            buffer, position = more(""), 0
            continue
        line += buffer.count("\n", position, found.start())
        position = found.start()
        try:
            document, end = decoder.raw_decode(buffer, position)
        except json.JSONDecodeError as exc:
            cut_off = exc.pos >= len(buffer) - _TAIL_CHARS or exc.msg.startswith("Unterminated")
            if eof or not cut_off:
                where = line + buffer.count("\n", position, exc.pos)
                raise ValueError(f"{file}:{where}: not valid JSON ({exc.msg})") from None
            buffer, position = more(buffer[position:]), 0
            continue
        yield line, document
        line += buffer.count("\n", position, end)
        position = end


# --- reading: OTLP JSON spans to records ---------------------------------------------------


_KIND_NAMES: Final = {
    "SPAN_KIND_UNSPECIFIED": SpanKind.INTERNAL,
    "SPAN_KIND_INTERNAL": SpanKind.INTERNAL,
    "SPAN_KIND_SERVER": SpanKind.SERVER,
    "SPAN_KIND_CLIENT": SpanKind.CLIENT,
    "SPAN_KIND_PRODUCER": SpanKind.PRODUCER,
    "SPAN_KIND_CONSUMER": SpanKind.CONSUMER,
}
_STATUS_NAMES: Final = {
    "STATUS_CODE_UNSET": StatusCode.UNSET,
    "STATUS_CODE_OK": StatusCode.OK,
    "STATUS_CODE_ERROR": StatusCode.ERROR,
}


def _problem(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}" if isinstance(exc, KeyError | TypeError) else str(exc)


def _get(node: Mapping[str, Any], camel: str, snake: str) -> Any:
    """A field by its JSON name or its proto name, as protobuf's parser accepts both."""
    value = node.get(camel)
    return node.get(snake) if value is None else value


def _list(node: Mapping[str, Any], camel: str, snake: str) -> list[Any]:
    value = _get(node, camel, snake)
    if value is None:
        return []
    if not isinstance(value, list):
        raise TypeError(f"{camel} must be a list, got {type(value).__name__}")
    return value


def _object(node: Mapping[str, Any], camel: str, snake: str) -> Mapping[str, Any]:
    value = _get(node, camel, snake)
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise TypeError(f"{camel} must be an object, got {type(value).__name__}")
    return value


def _int64(value: object) -> int:
    """An int64 field: a string (what OTLP/JSON writes) or a number."""
    if value is None:
        return 0
    if isinstance(value, bool):
        raise TypeError("an integer field holds a boolean")
    if isinstance(value, int):
        return value
    if isinstance(value, str):
        return int(value)
    if isinstance(value, float) and value.is_integer():
        return int(value)
    raise TypeError(f"not an integer: {value!r}")


def _double(value: object) -> float:
    """A double field: a number, or the strings ``NaN``/``Infinity`` protobuf writes."""
    if isinstance(value, bool):
        raise TypeError("a number field holds a boolean")
    if isinstance(value, int | float | str):
        return float(value)
    raise TypeError(f"not a number: {value!r}")


def _text(value: object) -> str:
    if value is None:
        return ""
    if not isinstance(value, str):
        raise TypeError(f"not a string: {value!r}")
    return value


def _flag(value: object) -> bool:
    if not isinstance(value, bool):
        raise TypeError(f"not a boolean: {value!r}")
    return value


def _id(value: object) -> str:
    """A trace or span id as lower-case hex: hex as the OTLP/JSON spec writes it, or base64."""
    text = _text(value)
    if len(text) in _HEX_ID_LENGTHS:
        try:
            return bytes.fromhex(text).hex()
        except ValueError:
            pass
    return base64.b64decode(text, validate=True).hex()


def _kind(value: object) -> SpanKind:
    """A span kind: the integer OTLP/JSON writes, or the enum's name."""
    if isinstance(value, str):
        return _KIND_NAMES.get(value, SpanKind.INTERNAL)
    return _SPAN_KINDS.get(_int64(value), SpanKind.INTERNAL)


def _status_code(value: object) -> StatusCode:
    """A status code: the integer OTLP/JSON writes, or the enum's name."""
    if isinstance(value, str):
        return _STATUS_NAMES.get(value, StatusCode.UNSET)
    return _STATUS_CODES.get(_int64(value), StatusCode.UNSET)


def _any_array(value: object) -> tuple[AttributeValue, ...]:
    if not isinstance(value, dict):
        raise TypeError("arrayValue must be an object")
    return tuple(_any(item) for item in _list(value, "values", "values"))


def _any_kvlist(value: object) -> dict[str, AttributeValue]:
    if not isinstance(value, dict):
        raise TypeError("kvlistValue must be an object")
    return _json_attributes(_list(value, "values", "values"))


def _any_bytes(value: object) -> bytes:
    return base64.b64decode(_text(value))


_ANY_VALUES: Final[Mapping[str, Callable[[Any], AttributeValue]]] = {
    "stringValue": _text,
    "string_value": _text,
    "boolValue": _flag,
    "bool_value": _flag,
    "intValue": _int64,
    "int_value": _int64,
    "doubleValue": _double,
    "double_value": _double,
    "arrayValue": _any_array,
    "array_value": _any_array,
    "kvlistValue": _any_kvlist,
    "kvlist_value": _any_kvlist,
    "bytesValue": _any_bytes,
    "bytes_value": _any_bytes,
}


def _any(value: object) -> AttributeValue:
    """An OTLP ``AnyValue`` as Python; an empty one (or ``null``) is None."""
    if value is None:
        return None
    if not isinstance(value, dict):
        raise TypeError(f"an attribute value must be an object, got {type(value).__name__}")
    for key, inner in value.items():
        convert = _ANY_VALUES.get(key)
        if convert is not None and inner is not None:
            return convert(inner)
    return None


def _json_attributes(pairs: list[Any]) -> dict[str, AttributeValue]:
    attributes: dict[str, AttributeValue] = {}
    for pair in pairs:
        if not isinstance(pair, dict):
            raise TypeError("an attribute must be an object")
        key, value = pair.get("key"), pair.get("value")
        if type(key) is not str:
            key = _text(key)
        # The hot path: what the exporters write, one exact-typed field per value.
        if type(value) is dict and len(value) == 1:
            ((field_name, inner),) = value.items()
            kind = type(inner)
            if (
                (kind is str and field_name == "stringValue")
                or (kind is bool and field_name == "boolValue")
                or (kind is float and field_name == "doubleValue")
            ):
                attributes[key] = inner
                continue
            if kind is str and field_name == "intValue":
                attributes[key] = int(inner)
                continue
        attributes[key] = _any(value)
    return attributes


def _spans_of(document: Mapping[str, Any]) -> list[SpanRecord]:
    """The spans of one parsed ``ExportTraceServiceRequest``; TypeError/ValueError if malformed."""
    records: list[SpanRecord] = []
    for resource_spans in _list(document, "resourceSpans", "resource_spans"):
        if not isinstance(resource_spans, dict):
            raise TypeError("resourceSpans must hold objects")
        resource_node = _object(resource_spans, "resource", "resource")
        resource = _json_attributes(_list(resource_node, "attributes", "attributes"))
        for scope_spans in _list(resource_spans, "scopeSpans", "scope_spans"):
            if not isinstance(scope_spans, dict):
                raise TypeError("scopeSpans must hold objects")
            scope = _text(_object(scope_spans, "scope", "scope").get("name"))
            records.extend(
                _json_span(span, resource, scope) for span in _list(scope_spans, "spans", "spans")
            )
    return records


def _json_span(span: object, resource: Attributes, scope: str) -> SpanRecord:
    if not isinstance(span, dict):
        raise TypeError("spans must hold objects")
    status = _object(span, "status", "status")
    parent = _id(_get(span, "parentSpanId", "parent_span_id"))
    return SpanRecord(
        name=_text(span.get("name")),
        kind=_kind(span.get("kind")),
        trace_id=_id(_get(span, "traceId", "trace_id")),
        span_id=_id(_get(span, "spanId", "span_id")),
        parent_span_id=parent or None,
        start_ns=_int64(_get(span, "startTimeUnixNano", "start_time_unix_nano")),
        end_ns=_int64(_get(span, "endTimeUnixNano", "end_time_unix_nano")),
        status_code=_status_code(status.get("code")),
        attributes=_json_attributes(_list(span, "attributes", "attributes")),
        resource=resource,
        scope=scope,
        events=tuple(_json_event(event) for event in _list(span, "events", "events")),
    )


def _json_event(event: object) -> EventRecord:
    if not isinstance(event, dict):
        raise TypeError("events must hold objects")
    return EventRecord(
        name=_text(event.get("name")),
        time_ns=_int64(_get(event, "timeUnixNano", "time_unix_nano")),
        attributes=_json_attributes(_list(event, "attributes", "attributes")),
    )


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
