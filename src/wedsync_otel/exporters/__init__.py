"""Exporters that write OTLP JSON files, and the readers that stream them back."""

from __future__ import annotations

from wedsync_otel.exporters.otlp_json import (
    DEFAULT_JSON_DIR,
    JSON_DIR_ENV,
    METRICS_FILE,
    TRACES_FILE,
    EventRecord,
    ExponentialHistogramPoint,
    HistogramPoint,
    MetricRecord,
    NumberPoint,
    OtlpJsonFileMetricExporter,
    OtlpJsonFileSpanExporter,
    ReadCounts,
    SpanRecord,
    iter_spans,
    json_directory,
    otlp_files,
    read_metrics,
    read_spans,
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
