"""OTLP JSON files: the span and metric exporters that append them.

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

Reading them back lives in `wedsync_otel.exporters.reading` and the records
it returns in `wedsync_otel.exporters.records`. Both are re-exported here,
where their names were first imported from.
"""

from __future__ import annotations

import json
import logging
import os
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Final

from google.protobuf import json_format
from google.protobuf.message import Message
from opentelemetry.exporter.otlp.proto.common.metrics_encoder import encode_metrics
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
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

from wedsync_otel.exporters._otlp_ids import base64_to_hex, recode_ids
from wedsync_otel.exporters.reading import (
    Progress,
    ReadCounts,
    iter_spans,
    otlp_files,
    read_metrics,
    read_spans,
)
from wedsync_otel.exporters.records import (
    Attributes,
    AttributeValue,
    EventRecord,
    ExponentialHistogramPoint,
    HistogramPoint,
    MetricPoint,
    MetricRecord,
    NumberPoint,
    SpanRecord,
)

__all__ = [
    "DEFAULT_JSON_DIR",
    "JSON_DIR_ENV",
    "METRICS_FILE",
    "TRACES_FILE",
    "AttributeValue",
    "Attributes",
    "EventRecord",
    "ExponentialHistogramPoint",
    "HistogramPoint",
    "MetricPoint",
    "MetricRecord",
    "NumberPoint",
    "OtlpJsonFileMetricExporter",
    "OtlpJsonFileSpanExporter",
    "Progress",
    "ReadCounts",
    "SpanRecord",
    "iter_spans",
    "json_directory",
    "otlp_files",
    "read_metrics",
    "read_spans",
    "to_json_line",
]

logger = logging.getLogger("wedsync_otel")

TRACES_FILE: Final = "traces.jsonl"
METRICS_FILE: Final = "metrics.jsonl"
JSON_DIR_ENV: Final = "WEDSYNC_OTEL_JSON_DIR"
"""Directory the exporters write to when built without one (zero-code: the entry points)."""
DEFAULT_JSON_DIR: Final = "wedsync-telemetry"
"""Directory (under the working directory) when neither an argument nor `JSON_DIR_ENV` names one."""


def to_json_line(request: Message) -> str:
    """One OTLP/JSON line for an export request: protobuf's mapping, integer enums, hex ids."""
    data = json_format.MessageToDict(request, use_integers_for_enums=True)
    recode_ids(data, base64_to_hex)
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
