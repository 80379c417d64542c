"""Collector-side helpers: the tail-sampling evaluator and the rotel trace processor."""

from __future__ import annotations

from wedsync_otel.collector.rotel_processor import processor_path as rotel_processor_path
from wedsync_otel.collector.tail_sampling import (
    Decision,
    PolicyError,
    SampledSpan,
    StatusCode,
    TailSampler,
    Trace,
    UnsupportedPolicy,
)

__all__ = [
    "Decision",
    "PolicyError",
    "SampledSpan",
    "StatusCode",
    "TailSampler",
    "Trace",
    "UnsupportedPolicy",
    "rotel_processor_path",
]
