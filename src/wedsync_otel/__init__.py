"""wedsync-otel: wedding-aware latency objectives for OpenTelemetry traces and metrics."""

from __future__ import annotations

from wedsync_otel.calendar import ApdexClass, Band
from wedsync_otel.catalogue import EndpointSpec
from wedsync_otel.config import BandMultipliers, WeddingConfig, load_config
from wedsync_otel.context import Wedding, current_wedding, set_wedding_resolver, wedding_context
from wedsync_otel.errors import ConfigError
from wedsync_otel.instrumentation import instrument
from wedsync_otel.metrics import (
    EndpointSnapshot,
    PerformanceMetricExporter,
    PerformanceSnapshot,
    WindowStats,
)
from wedsync_otel.processor import ProcessorStats, WeddingSpanProcessor
from wedsync_otel.setup import WeddingTelemetry, configure

__all__ = [
    "ApdexClass",
    "Band",
    "BandMultipliers",
    "ConfigError",
    "EndpointSnapshot",
    "EndpointSpec",
    "PerformanceMetricExporter",
    "PerformanceSnapshot",
    "ProcessorStats",
    "Wedding",
    "WeddingConfig",
    "WeddingSpanProcessor",
    "WeddingTelemetry",
    "WindowStats",
    "configure",
    "current_wedding",
    "instrument",
    "load_config",
    "set_wedding_resolver",
    "wedding_context",
]
