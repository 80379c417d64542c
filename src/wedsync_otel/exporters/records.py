"""What the readers return: spans and metrics read back from OTLP JSON, as plain Python values.

Frozen dataclasses with no protobuf in them, so a report, a test or a
benchmark works on spans and data points without knowing how a file encoded
them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TypeAlias

from opentelemetry.sdk.metrics.export import AggregationTemporality
from opentelemetry.trace import SpanKind, StatusCode

AttributeValue: TypeAlias = (
    "str | bool | int | float | bytes | tuple[AttributeValue, ...] | dict[str, AttributeValue] "
    "| None"
)
"""An OTLP ``AnyValue`` as Python: int64 as `int` (OTLP JSON writes it as a string)."""
Attributes: TypeAlias = Mapping[str, AttributeValue]


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
