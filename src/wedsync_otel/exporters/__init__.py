"""Exporters that write OTLP JSON files, and the readers that stream them back."""

from __future__ import annotations

from wedsync_otel.exporters.otlp_json import (
    DEFAULT_JSON_DIR,
    JSON_DIR_ENV,
    METRICS_FILE,
    TRACES_FILE,
    OtlpJsonFileMetricExporter,
    OtlpJsonFileSpanExporter,
    json_directory,
)
from wedsync_otel.exporters.reading import (
    ReadCounts,
    iter_spans,
    otlp_files,
    read_metrics,
    read_spans,
)
from wedsync_otel.exporters.records import (
    EventRecord,
    ExponentialHistogramPoint,
    HistogramPoint,
    MetricRecord,
    NumberPoint,
    SpanRecord,
)

__all__ = [
    "DEFAULT_JSON_DIR",
    "JSON_DIR_ENV",
    "METRICS_FILE",
    "TRACES_FILE",
    "EventRecord",
    "ExponentialHistogramPoint",
    "HistogramPoint",
    "MetricRecord",
    "NumberPoint",
    "OtlpJsonFileMetricExporter",
    "OtlpJsonFileSpanExporter",
    "ReadCounts",
    "SpanRecord",
    "iter_spans",
    "json_directory",
    "otlp_files",
    "read_metrics",
    "read_spans",
]
