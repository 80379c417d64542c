"""Exporters that write OTLP JSON files, and the readers for them."""

from __future__ import annotations

from wedsync_otel.exporters.otlp_json import (
    METRICS_FILE,
    TRACES_FILE,
    EventRecord,
    ExponentialHistogramPoint,
    HistogramPoint,
    MetricRecord,
    NumberPoint,
    OtlpJsonFileMetricExporter,
    OtlpJsonFileSpanExporter,
    SpanRecord,
    read_metrics,
    read_spans,
)

__all__ = [
    "METRICS_FILE",
    "TRACES_FILE",
    "EventRecord",
    "ExponentialHistogramPoint",
    "HistogramPoint",
    "MetricRecord",
    "NumberPoint",
    "OtlpJsonFileMetricExporter",
    "OtlpJsonFileSpanExporter",
    "SpanRecord",
    "read_metrics",
    "read_spans",
]
