"""Test helpers shared by several test modules: a fake clock and a real SDK pipeline."""

from __future__ import annotations

import datetime as dt
import importlib.metadata
from typing import Any

from opentelemetry.sdk.metrics import Counter, Histogram
from opentelemetry.sdk.metrics.export import (
    AggregationTemporality,
    MetricExporter,
    MetricExportResult,
    MetricsData,
)
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from wedsync_otel import WeddingConfig, WeddingSpanProcessor


class FakeClock:
    """A clock that returns whatever instant the test set."""

    def __init__(self, now: dt.datetime) -> None:
        self.now = now

    def __call__(self) -> dt.datetime:
        return self.now


class Pipeline:
    """A TracerProvider with the wedding processor in front of an in-memory exporter."""

    def __init__(self, config: WeddingConfig, clock: FakeClock) -> None:
        self.exporter = InMemorySpanExporter()
        self.clock = clock
        self.processor = WeddingSpanProcessor(
            SimpleSpanProcessor(self.exporter), config=config, clock=clock
        )
        self.provider = TracerProvider()
        self.provider.add_span_processor(self.processor)
        self.tracer = self.provider.get_tracer("tests")

    def spans(self) -> tuple[ReadableSpan, ...]:
        return self.exporter.get_finished_spans()

    def only_span(self, name: str) -> ReadableSpan:
        matching = [span for span in self.spans() if span.name == name]
        assert len(matching) == 1, [span.name for span in self.spans()]
        return matching[0]


# A Tuesday in wedding season, mid-morning in London.
TUESDAY = dt.datetime(2026, 6, 16, 10, 0, tzinfo=dt.UTC)
SATURDAY = dt.datetime(2026, 6, 20, 10, 0, tzinfo=dt.UTC)


def distribution_installed(name: str) -> bool:
    """Whether the distribution ``name`` is installed (a module name can be a namespace)."""
    try:
        importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return False
    return True


class CapturingExporter(MetricExporter):
    """A real MetricExporter that keeps what it is given, like the SDK's in-memory span exporter."""

    def __init__(self, *, delta: bool = False) -> None:
        temporality = AggregationTemporality.DELTA if delta else AggregationTemporality.CUMULATIVE
        super().__init__(preferred_temporality={Histogram: temporality, Counter: temporality})
        self.exported: list[MetricsData] = []

    def export(
        self, metrics_data: MetricsData, timeout_millis: float = 10_000, **kwargs: Any
    ) -> MetricExportResult:
        self.exported.append(metrics_data)
        return MetricExportResult.SUCCESS

    def force_flush(self, timeout_millis: float = 10_000) -> bool:
        return True

    def shutdown(self, timeout_millis: float = 30_000, **kwargs: Any) -> None:
        return None
