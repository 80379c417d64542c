"""Wedding performance metrics: recording, windows, scoring and the metrics exporter."""

from __future__ import annotations

from wedsync_otel.metrics.exporter import PerformanceMetricExporter
from wedsync_otel.metrics.recording import WeddingRecorder
from wedsync_otel.metrics.snapshot import EndpointSnapshot, PerformanceSnapshot, WindowStats

__all__ = [
    "EndpointSnapshot",
    "PerformanceMetricExporter",
    "PerformanceSnapshot",
    "WeddingRecorder",
    "WindowStats",
]
