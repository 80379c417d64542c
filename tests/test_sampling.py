"""Head sampling decides what is exported, never what is measured."""

from __future__ import annotations

import random
from collections.abc import Iterator
from typing import Any

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.sdk.trace.id_generator import IdGenerator
from opentelemetry.sdk.trace.sampling import (
    ALWAYS_OFF,
    ALWAYS_ON,
    Decision,
    ParentBased,
    Sampler,
    TraceIdRatioBased,
)
from opentelemetry.trace import NonRecordingSpan, SpanContext, SpanKind, TraceFlags

from helpers import CapturingExporter
from wedsync_otel import WeddingConfig, WeddingSpanProcessor, configure
from wedsync_otel.rules import Verdict
from wedsync_otel.sampling import (
    RECORDED_FOR_METRICS,
    RequestRecordingSampler,
    record_every_request,
)

REQUESTS = 1_000
MS = 1_000_000


class SeededIds(IdGenerator):
    """Trace and span ids from a seeded generator: the same requests in every run."""

    def __init__(self, seed: int) -> None:
        self._random = random.Random(seed)

    def generate_span_id(self) -> int:
        return self._random.getrandbits(64) or 1

    def generate_trace_id(self) -> int:
        return self._random.getrandbits(128) or 1


def _points(exporter: CapturingExporter, name: str) -> list[Any]:
    """The data points of metric ``name`` in the latest export that has it (cumulative)."""
    for data in reversed(exporter.exported):
        found = [
            point
            for resource in data.resource_metrics
            for scope in resource.scope_metrics
            for metric in scope.metrics
            if metric.name == name
            for point in metric.data.data_points
        ]
        if found:
            return found
    return []


def _samplers() -> list[object]:
    return [
        pytest.param(ALWAYS_ON, id="always-on"),
        pytest.param(TraceIdRatioBased(0.1), id="ratio-0.1"),
        pytest.param(TraceIdRatioBased(0.01), id="ratio-0.01"),
        pytest.param(ParentBased(TraceIdRatioBased(0.1)), id="parent-based-0.1"),
        pytest.param(ALWAYS_OFF, id="always-off"),
        pytest.param(ParentBased(ALWAYS_OFF), id="parent-based-off"),
    ]


class Served:
    """What a pipeline measured and exported for a run of requests."""

    def __init__(self, sampler: Sampler) -> None:
        self.exporter = InMemorySpanExporter()
        self.metrics = CapturingExporter()
        self.telemetry = configure(
            set_global=False,
            span_exporter=self.exporter,
            metric_exporter=self.metrics,
            metric_export_interval_millis=3_600_000,
            sampler=sampler,
            config=WeddingConfig(),
        )
        self.telemetry.tracer_provider.id_generator = SeededIds(7)
        self.judged: list[int] = []
        self.telemetry.span_processor.add_verdict_listener(self._judged)
        self.tracer = self.telemetry.tracer_provider.get_tracer("tests")

    def _judged(self, span: ReadableSpan, verdict: Verdict) -> None:
        assert span.context is not None
        self.judged.append(span.context.trace_id)

    def serve(self, count: int, *, slow_every: int = 4) -> None:
        """``count`` payment requests, each with one query; every ``slow_every``-th is slow."""
        start = 1_781_600_000 * 1_000_000_000
        for index in range(count):
            duration_ms = 700 if index % slow_every == 0 else 5
            with self.tracer.start_as_current_span(
                "POST /api/payments",
                kind=SpanKind.SERVER,
                attributes={"http.route": "/api/payments", "http.response.status_code": 200},
                start_time=start,
                end_on_exit=False,
            ) as request:
                self.tracer.start_span(
                    "SELECT", attributes={"db.system": "sqlite", "db.statement": "SELECT 1"}
                ).end()
            request.end(end_time=start + duration_ms * MS)
            start += 1_000 * MS

    def exported_requests(self) -> list[ReadableSpan]:
        self.telemetry.force_flush()
        return [s for s in self.exporter.get_finished_spans() if s.kind is SpanKind.SERVER]


@pytest.fixture
def make_served() -> Iterator[type[Served]]:
    made: list[Served] = []

    class Tracked(Served):
        def __init__(self, sampler: Sampler) -> None:
            super().__init__(sampler)
            made.append(self)

    yield Tracked
    for served in made:
        served.telemetry.shutdown()


@pytest.mark.parametrize("sampler", _samplers())
def test_every_request_is_counted_whatever_the_sampler(
    make_served: type[Served], sampler: Sampler
) -> None:
    """A thousand requests are a thousand in the snapshot at any sampling rate, Apdex exact."""
    served = make_served(sampler)
    served.serve(REQUESTS)
    payments = served.telemetry.snapshot().endpoints["payments"].windows["1h"]
    assert payments.count == REQUESTS
    assert payments.apdex == pytest.approx(0.75)  # 750 satisfied, 250 frustrated (> 4 x 150)


@pytest.mark.parametrize("sampler", _samplers())
def test_what_is_exported_is_exactly_what_the_sampler_chose(
    make_served: type[Served], sampler: Sampler
) -> None:
    """Exported request spans are the sampler's own choice; no span carries the marker."""
    served = make_served(sampler)
    served.serve(REQUESTS)
    exported = served.exported_requests()
    assert len(served.judged) == REQUESTS
    chosen = {
        trace_id
        for trace_id in served.judged
        if sampler.should_sample(None, trace_id, "POST /api/payments", SpanKind.SERVER).decision
        is Decision.RECORD_AND_SAMPLE
    }
    assert {span.context.trace_id for span in exported if span.context} == chosen
    every = served.exporter.get_finished_spans()
    assert all(RECORDED_FOR_METRICS not in (span.attributes or {}) for span in every)
    assert all(span.context is not None and span.context.trace_flags.sampled for span in every)


def test_unsampled_requests_record_no_children(make_served: type[Served]) -> None:
    """Children of an unsampled request keep the user's decision: not recorded, not rolled up."""
    served = make_served(ParentBased(ALWAYS_OFF))
    served.serve(10)
    served.telemetry.force_flush()
    assert served.exporter.get_finished_spans() == ()
    assert len(served.judged) == 10
    assert sum(point.count for point in _points(served.metrics, "wedding.server.duration")) == 10
    assert _points(served.metrics, "wedding.db.duration") == []


def test_a_downstream_processor_never_sees_a_span_recorded_for_the_metrics() -> None:
    """Lifecycle hooks of the downstream skip the spans the user's sampler dropped."""
    seen: list[str] = []

    class Watching(SimpleSpanProcessor):
        def on_start(self, span: object, parent_context: object = None) -> None:
            seen.append("on_start")

        def _on_ending(self, span: object) -> None:
            seen.append("_on_ending")

        def on_end(self, span: ReadableSpan) -> None:
            seen.append("on_end")

    provider = TracerProvider(sampler=ALWAYS_OFF)
    record_every_request(provider)
    processor = WeddingSpanProcessor(Watching(InMemorySpanExporter()))
    judged: list[Verdict] = []
    processor.add_verdict_listener(lambda span, verdict: judged.append(verdict))
    provider.add_span_processor(processor)
    provider.get_tracer("t").start_span("GET", kind=SpanKind.SERVER).end()
    assert seen == []
    assert len(judged) == 1


def test_tracers_made_before_the_wrapping_measure_every_request_too() -> None:
    """Zero-code setup wraps the sampler after instrumentations took their tracers."""
    provider = TracerProvider(sampler=TraceIdRatioBased(0.0))
    early = provider.get_tracer("early")
    record_every_request(provider, tracers_exist=True)
    span = early.start_span("GET", kind=SpanKind.SERVER)
    assert span.is_recording()
    assert not span.get_span_context().trace_flags.sampled


def test_wrapping_twice_changes_nothing() -> None:
    """record_every_request is idempotent: one wrapper, one decision per span."""
    provider = TracerProvider(sampler=ALWAYS_OFF)
    first = record_every_request(provider)
    assert record_every_request(provider) is first
    span = provider.get_tracer("t").start_span("GET", kind=SpanKind.SERVER)
    assert dict(span.attributes or {}) == {RECORDED_FOR_METRICS: True}


@pytest.mark.parametrize(
    ("kind", "parent", "recorded"),
    [
        (SpanKind.SERVER, None, True),
        (SpanKind.INTERNAL, None, True),  # a local root: a job, a consumer
        (SpanKind.SERVER, SpanContext(1, 2, is_remote=True), True),
        (SpanKind.INTERNAL, SpanContext(1, 2, is_remote=True), True),
        (SpanKind.SERVER, SpanContext(1, 2, is_remote=False), True),
        (SpanKind.CLIENT, SpanContext(1, 2, is_remote=False), False),
        (SpanKind.INTERNAL, SpanContext(1, 2, is_remote=False), False),
    ],
)
def test_only_request_spans_are_recorded_for_the_metrics(
    kind: SpanKind, parent: SpanContext | None, recorded: bool
) -> None:
    """SERVER spans and local roots the sampler drops are recorded; other children are not."""
    sampler = RequestRecordingSampler(ALWAYS_OFF)
    context = None if parent is None else trace.set_span_in_context(NonRecordingSpan(parent))
    result = sampler.should_sample(context, 5, "s", kind, {"k": "v"})
    assert (result.decision is Decision.RECORD_ONLY) is recorded
    if recorded:
        assert dict(result.attributes or {}) == {"k": "v", RECORDED_FOR_METRICS: True}


def test_a_sampled_decision_passes_unchanged() -> None:
    """What the user's sampler keeps is returned as it decided, attributes and trace state."""
    sampler = RequestRecordingSampler(ALWAYS_ON)
    parent = SpanContext(1, 2, is_remote=True, trace_flags=TraceFlags(TraceFlags.SAMPLED))
    result = sampler.should_sample(
        trace.set_span_in_context(NonRecordingSpan(parent)), 5, "s", SpanKind.SERVER, {"k": "v"}
    )
    assert result.decision is Decision.RECORD_AND_SAMPLE
    assert dict(result.attributes or {}) == {"k": "v"}
    assert sampler.get_description() == "RequestRecording{AlwaysOnSampler}"


def test_measuring_unsampled_requests_can_be_turned_off(make_served: type[Served]) -> None:
    """With measure_unsampled off the metrics count only what the sampler kept."""
    exporter = InMemorySpanExporter()
    telemetry = configure(
        set_global=False,
        span_exporter=exporter,
        metric_exporter=CapturingExporter(),
        metric_export_interval_millis=3_600_000,
        sampler=ALWAYS_OFF,
        config=WeddingConfig(measure_unsampled=False),
    )
    try:
        telemetry.tracer_provider.get_tracer("t").start_span(
            "GET", kind=SpanKind.SERVER, attributes={"http.route": "/api/payments"}
        ).end()
        payments = telemetry.snapshot().endpoints.get("payments")
        assert payments is None or not payments.windows
    finally:
        telemetry.shutdown()


def test_the_cache_and_database_metrics_come_from_sampled_requests_only(
    make_served: type[Served],
) -> None:
    """The DB time histogram counts sampled requests only: its count is the sampled share."""
    served = make_served(TraceIdRatioBased(0.1))
    served.serve(REQUESTS)
    served.telemetry.force_flush()
    sampled = len(served.exported_requests())
    db_counts = [point.count for point in _points(served.metrics, "wedding.db.duration")]
    server_counts = [point.count for point in _points(served.metrics, "wedding.server.duration")]
    assert sum(server_counts) == REQUESTS
    assert sum(db_counts) == sampled
    assert 0 < sampled < REQUESTS


@pytest.mark.parametrize("sampler", _samplers()[:4])
def test_the_db_time_share_is_true_at_any_sampling_rate(
    make_served: type[Served], sampler: Sampler
) -> None:
    """4 ms of queries in each 10 ms request is a share of 0.4, whatever share is sampled."""
    served = make_served(sampler)
    start = 1_781_600_000 * 1_000_000_000
    for _ in range(REQUESTS):
        with served.tracer.start_as_current_span(
            "POST /api/payments",
            kind=SpanKind.SERVER,
            attributes={"http.route": "/api/payments", "http.response.status_code": 200},
            start_time=start,
            end_on_exit=False,
        ) as request:
            query = served.tracer.start_span(
                "SELECT",
                attributes={"db.system": "sqlite", "db.statement": "SELECT 1"},
                start_time=start + 1 * MS,
            )
            query.end(end_time=start + 5 * MS)
        request.end(end_time=start + 10 * MS)
        start += 1_000 * MS
    payments = served.telemetry.snapshot().endpoints["payments"].windows["1h"]
    assert payments.count == REQUESTS
    assert payments.db_time_share == pytest.approx(0.4)
