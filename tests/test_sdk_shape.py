"""The SDK's private fields this package reads or writes are where it expects them.

Every such access lives in `wedsync_otel._sdk`: it reads an ended span's
attribute dict, builds the enriched copy with `ReadableSpan`'s constructor
(positionally), reads a live span's limits, and lets the zero-code setup
swap the provider's processors and readers' exporters, for which the SDK
has no public API. A new SDK release that moves one of them must fail
here, by name, rather than quietly in production (every access has a
fallback or a guard, so the symptom there would be a missing attribute, not
an error). Pinned: the lowest SDK the package declares and what the venv has.
"""

from __future__ import annotations

import inspect
import threading
from collections import deque

import pytest
from opentelemetry import context as otel_context
from opentelemetry.attributes import BoundedAttributes
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import (
    InMemoryMetricReader,
    MetricExporter,
    PeriodicExportingMetricReader,
)
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, SpanLimits, Status, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.sdk.util import BoundedList
from opentelemetry.sdk.util.instrumentation import InstrumentationScope
from opentelemetry.trace import SpanContext, SpanKind, StatusCode

from wedsync_otel._sdk import COPY_PARAMETERS, enriched_copy

SPAN_FIELDS = {
    "_name": str,
    "_kind": SpanKind,
    "_context": SpanContext,
    "_parent": SpanContext,
    "_start_time": int,
    "_end_time": int,
    "_attributes": BoundedAttributes,
    "_events": BoundedList,
    "_links": BoundedList,
    "_status": Status,
    "_resource": Resource,
    "_instrumentation_scope": InstrumentationScope,
}
"""What `_sdk` reads off an ended span (the ReadableSpan snapshot on_end gets)."""


@pytest.fixture
def ended() -> ReadableSpan:
    """A child span as the SDK hands it to ``on_end``, with one event and one link."""
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracer = provider.get_tracer("shape")
    with tracer.start_as_current_span("parent") as parent:
        link_to = parent.get_span_context()
        with tracer.start_as_current_span("child", links=[], attributes={"a": 1}) as child:
            child.add_event("e", {"k": "v"})
            child.add_link(link_to)
    (span,) = [span for span in exporter.get_finished_spans() if span.name == "child"]
    return span


@pytest.mark.parametrize(("field", "kind"), SPAN_FIELDS.items())
def test_an_ended_span_has_each_field_the_processor_reads(
    ended: ReadableSpan, field: str, kind: type
) -> None:
    """Each private field is there, with the type the hot path relies on."""
    assert isinstance(getattr(ended, field), kind), field


def test_the_containers_keep_their_backing_stores(ended: ReadableSpan) -> None:
    """BoundedAttributes keeps a dict in _dict, BoundedList a deque in _dq, Status its parts."""
    attributes = ended._attributes
    assert isinstance(attributes, BoundedAttributes)
    assert isinstance(attributes._dict, dict)
    assert isinstance(ended._events._dq, deque)  # type: ignore[attr-defined]
    assert isinstance(ended._links._dq, deque)  # type: ignore[attr-defined]
    status = ended._status
    assert status._status_code is StatusCode.UNSET
    assert status._description is None


def test_a_live_span_carries_its_limits() -> None:
    """The processor reads the provider's limits off the first live span (_limits)."""
    provider = TracerProvider(span_limits=SpanLimits(max_attributes=7))
    span = provider.get_tracer("shape").start_span("live")
    limits = span._limits  # type: ignore[attr-defined]
    span.end()
    assert isinstance(limits, SpanLimits)
    assert limits.max_attributes == 7


def test_a_copy_built_field_by_field_reads_back_like_the_original(ended: ReadableSpan) -> None:
    """enriched_copy sets every field a ReadableSpan's properties read: nothing is left unset."""
    copy = enriched_copy(ended, {"a": 1, "b": 2})
    assert copy.to_json() != ended.to_json()
    for name in ("name", "kind", "context", "parent", "start_time", "end_time", "status"):
        assert getattr(copy, name) == getattr(ended, name), name
    assert (copy.resource, copy.instrumentation_scope) == (
        ended.resource,
        ended.instrumentation_scope,
    )
    assert dict(copy.attributes or {}) == {"a": 1, "b": 2}
    assert [event.name for event in copy.events] == ["e"]
    assert len(copy.links) == 1


def test_the_copy_passes_the_constructor_its_parameters_in_order() -> None:
    """enriched_copy calls ReadableSpan(...) positionally: a reordered SDK signature fails here."""
    parameters = tuple(inspect.signature(ReadableSpan.__init__).parameters)
    assert parameters[1:] == COPY_PARAMETERS


def test_the_tracer_provider_keeps_a_tuple_of_processors_under_a_lock() -> None:
    """Zero-code setup swaps _active_span_processor._span_processors under its _lock."""
    provider = TracerProvider()
    processor = SimpleSpanProcessor(InMemorySpanExporter())
    provider.add_span_processor(processor)
    active = provider._active_span_processor
    assert isinstance(active._span_processors, tuple)
    assert processor in active._span_processors
    assert isinstance(active._lock, type(threading.Lock()))


class _Quiet(MetricExporter):
    def export(
        self, metrics_data: object, timeout_millis: float = 10_000, **kwargs: object
    ) -> None:  # type: ignore[override]
        return None

    def force_flush(self, timeout_millis: float = 10_000) -> bool:
        return True

    def shutdown(self, timeout_millis: float = 30_000, **kwargs: object) -> None:
        return None


def test_the_meter_provider_keeps_its_readers_and_their_exporters() -> None:
    """Zero-code setup wraps each periodic reader's _exporter, found in _metric_readers."""
    exporter = _Quiet()
    reader = PeriodicExportingMetricReader(exporter, export_interval_millis=10**9)
    provider = MeterProvider(metric_readers=[reader, InMemoryMetricReader()])
    try:
        assert reader in provider._metric_readers
        assert reader._exporter is exporter
        assert isinstance(provider._sdk_config.resource, Resource)
        # Read by PerformanceMetricExporter to offer its inner exporter's preferences.
        assert hasattr(exporter, "_preferred_temporality")
        assert hasattr(exporter, "_preferred_aggregation")
    finally:
        provider.shutdown()


def test_the_context_runtime_is_where_the_fast_path_looks() -> None:
    """context.py reads the API's _RUNTIME_CONTEXT for a cheaper current-context lookup."""
    runtime = getattr(otel_context, "_RUNTIME_CONTEXT", None)
    assert runtime is not None
    assert callable(runtime.get_current)
