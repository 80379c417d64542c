"""Collector faults: the rotel hop stopped for 10 s, and a collector that refuses or stalls.

The outage runs once per module against a real rotel and a real gRPC receiver
behind it: an application thread ends 500 server spans a second, rotel is
stopped for 10 s and restarted on the same port, and the tests below read what
that run measured. The latency test runs the pipeline against a real gRPC
receiver that answers healthily, refuses with UNAVAILABLE, or answers slowly.
"""

from __future__ import annotations

import hashlib
import io
import statistics
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import pytest
from opentelemetry.exporter.otlp.proto.grpc.metric_exporter import OTLPMetricExporter
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.metrics.export import (
    ConsoleMetricExporter,
    MetricExportResult,
    MetricsData,
)
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SpanExportResult
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

import wedsync_otel
from collector_support import (
    STEADY_ATTRIBUTES,
    STEADY_ROUTE,
    Fault,
    FaultyOtlpReceiver,
    GcPauses,
    OtlpSink,
    Rotel,
    RotelUnavailable,
    SteadyLoad,
    restart_rotel,
    start_rotel,
)
from servers import require
from wedsync_otel import ConfigError, WeddingConfig
from wedsync_otel.export_tuning import (
    DEFAULT_MAX_QUEUE_SIZE,
    ExportSettings,
    ExportStats,
    ExportTuning,
    RetryingSpanExporter,
)
from wedsync_otel.metrics import names

RATE_PER_S: Final = 500
WARM_UP_S: Final = 4.0
OUTAGE_S: Final = 10.0
AFTER_S: Final = 4.0
DELIVERY_TIMEOUT_S: Final = 30.0
METRIC_INTERVAL_MS: Final = 2_000
MAX_BLOCKED_S: Final = 0.050
"""The longest a ``span.end()`` may take, garbage collection aside, while rotel is away."""


# --- settings ---------------------------------------------------------------------------------


def test_defaults_size_the_queue_for_the_outage_budget() -> None:
    """With nothing set, the queue holds 30 s at 1,000 spans/s and retries last 30 s."""
    settings = ExportTuning().resolve({})
    assert settings == ExportSettings()
    assert (settings.max_queue_size, settings.retry_deadline_s) == (30_000, 30.0)


def test_otel_bsp_variables_override_the_defaults() -> None:
    """OTEL_BSP_MAX_QUEUE_SIZE and its siblings keep their standard meaning."""
    environ = {
        "OTEL_BSP_MAX_QUEUE_SIZE": "4096",
        "OTEL_BSP_MAX_EXPORT_BATCH_SIZE": "256",
        "OTEL_BSP_SCHEDULE_DELAY": "1000",
        "WEDSYNC_OTEL_EXPORT_RETRY_DEADLINE_S": "12.5",
        "WEDSYNC_OTEL_EXPORT_MAX_BACKOFF_S": "2",
    }
    assert ExportTuning().resolve(environ) == ExportSettings(
        max_queue_size=4096,
        max_export_batch_size=256,
        schedule_delay_millis=1000,
        retry_deadline_s=12.5,
        max_backoff_s=2,
    )


def test_arguments_override_the_environment() -> None:
    """A field given to ExportTuning wins over its variable; the others still come from it."""
    environ = {"OTEL_BSP_MAX_QUEUE_SIZE": "4096", "OTEL_BSP_MAX_EXPORT_BATCH_SIZE": "256"}
    settings = ExportTuning(max_queue_size=10_000).resolve(environ)
    assert (settings.max_queue_size, settings.max_export_batch_size) == (10_000, 256)


def test_an_unparsable_otel_bsp_variable_falls_back_to_the_default() -> None:
    """As in the SDK, OTEL_BSP_MAX_QUEUE_SIZE=lots is logged and the default used."""
    settings = ExportTuning().resolve({"OTEL_BSP_MAX_QUEUE_SIZE": "lots"})
    assert settings.max_queue_size == DEFAULT_MAX_QUEUE_SIZE


def test_an_unparsable_own_variable_is_a_config_error() -> None:
    """WEDSYNC_OTEL_EXPORT_RETRY_DEADLINE_S=soon raises a ConfigError naming the variable."""
    with pytest.raises(ConfigError, match="WEDSYNC_OTEL_EXPORT_RETRY_DEADLINE_S"):
        ExportTuning().resolve({"WEDSYNC_OTEL_EXPORT_RETRY_DEADLINE_S": "soon"})


def test_a_batch_larger_than_the_queue_is_a_config_error() -> None:
    """max_export_batch_size over max_queue_size is refused before any thread starts."""
    with pytest.raises(ConfigError, match="max_export_batch_size"):
        ExportTuning(max_queue_size=100, max_export_batch_size=512).resolve({})


def test_configure_wraps_the_exporter_unless_retries_are_off() -> None:
    """configure() wraps its exporter in a RetryingSpanExporter, unless the deadline is 0."""
    exporters = []
    for tuning in (None, ExportTuning(retry_deadline_s=0)):
        telemetry = wedsync_otel.configure(
            config=WeddingConfig.default(),
            span_exporter=InMemorySpanExporter(),
            metric_exporter=ConsoleMetricExporter(out=io.StringIO()),
            set_global=False,
            export_tuning=tuning,
        )
        exporters.append(_span_exporter(telemetry))
        telemetry.shutdown()
    assert [type(exporter).__name__ for exporter in exporters] == [
        "RetryingSpanExporter",
        "InMemorySpanExporter",
    ]


# --- the retrying exporter against a real gRPC receiver -----------------------------------------


def _spans(count: int) -> list[ReadableSpan]:
    tracer = TracerProvider().get_tracer("tests.collector_faults")
    spans: list[ReadableSpan] = []
    for _ in range(count):
        span = tracer.start_span("GET /api/rsvp", kind=SpanKind.SERVER)
        span.end()
        assert isinstance(span, ReadableSpan)
        spans.append(span)
    return spans


def _quick_otlp(receiver: FaultyOtlpReceiver) -> OTLPSpanExporter:
    """An OTLP exporter whose own retries end within 1 s, so the wrapper's are what is seen."""
    return OTLPSpanExporter(endpoint=receiver.endpoint, insecure=True, timeout=1)


def test_shutdown_ends_a_retrying_export_at_once() -> None:
    """With the collector refusing and 60 s of retries left, shutdown makes export return now."""
    with FaultyOtlpReceiver() as receiver:
        receiver.set_fault(Fault.UNAVAILABLE)
        exporter = RetryingSpanExporter(_quick_otlp(receiver), retry_deadline_s=60)
        results: list[SpanExportResult] = []
        worker = threading.Thread(target=lambda: results.append(exporter.export(_spans(10))))
        worker.start()
        assert receiver.wait_for_requests(1, timeout_s=10)
        began = time.monotonic()
        exporter.shutdown()
        worker.join(timeout=10)
        took_s = time.monotonic() - began
    assert results == [SpanExportResult.FAILURE]
    assert took_s < 1.0, f"shutdown took {took_s:.2f} s to end the retries"
    assert exporter.stats().dropped_spans == 10


def test_an_outage_past_the_deadline_drops_and_counts_the_batch() -> None:
    """A collector refusing for longer than retry_deadline_s costs that batch, counted."""
    with FaultyOtlpReceiver() as receiver:
        receiver.set_fault(Fault.UNAVAILABLE)
        exporter = RetryingSpanExporter(
            _quick_otlp(receiver), retry_deadline_s=1.5, max_backoff_s=0.5
        )
        result = exporter.export(_spans(7))
        stats = exporter.stats()
        exporter.shutdown()
    assert result is SpanExportResult.FAILURE
    assert (stats.dropped_spans, stats.exported_spans) == (7, 0)
    assert stats.failed_attempts >= 2


def test_retries_deliver_a_batch_once_the_collector_answers() -> None:
    """A batch refused at first is delivered by a retry, and the outage clock resets."""
    with FaultyOtlpReceiver() as receiver:
        receiver.set_fault(Fault.UNAVAILABLE)
        exporter = RetryingSpanExporter(_quick_otlp(receiver), retry_deadline_s=30)
        results: list[SpanExportResult] = []
        worker = threading.Thread(target=lambda: results.append(exporter.export(_spans(5))))
        worker.start()
        assert receiver.wait_for_requests(1, timeout_s=10)
        receiver.set_fault(Fault.NONE)
        worker.join(timeout=20)
        stats = exporter.stats()
        exporter.shutdown()
        accepted = receiver.accepted_spans
    assert results == [SpanExportResult.SUCCESS]
    assert (accepted, stats.exported_spans, stats.dropped_spans) == (5, 5, 0)
    assert stats.failing_for_s == 0.0


# --- a 10 s rotel outage under 500 spans/s -------------------------------------------------------


class _CountingMetricExporter(OTLPMetricExporter):
    """The real OTLP metric exporter, counting the exports that failed."""

    def __init__(self, endpoint: str) -> None:
        super().__init__(endpoint=endpoint, insecure=True)
        self.failures = 0

    def export(
        self, metrics_data: MetricsData, timeout_millis: float = 10_000, **kwargs: Any
    ) -> MetricExportResult:
        result = super().export(metrics_data, timeout_millis=timeout_millis, **kwargs)
        if result is MetricExportResult.FAILURE:
            self.failures += 1
        return result


@dataclass(frozen=True)
class OutageRun:
    """What the outage run measured."""

    sent: frozenset[bytes]
    received: frozenset[bytes]
    received_count: int
    ended_in_outage: int
    """Spans ended in the 10 s rotel was away (not counting its restart)."""
    max_end_in_outage_s: float
    max_blocked_in_outage_s: float
    longest_gc_in_outage_s: float
    errors: tuple[BaseException, ...]
    held_at_restart: int
    export_stats: ExportStats
    metric_failures_in_outage: int
    apdex_requests: int
    restart_took_s: float


def _span_exporter(telemetry: wedsync_otel.WeddingTelemetry) -> Any:
    """The exporter behind configure()'s batch processor (the SDK's public property)."""
    return getattr(telemetry.span_processor.downstream, "span_exporter", None)


def _apdex_requests(sink: OtlpSink) -> int:
    """The total of wedding.apdex.requests in its latest (cumulative) export, 0 if none."""
    exports = [metric for metric in sink.metrics() if metric.name == names.APDEX_REQUESTS]
    return sum(point.as_int for point in exports[-1].sum.data_points) if exports else 0


def _max_blocked_s(load: SteadyLoad, phase: str, gc_pauses: GcPauses) -> float:
    """The longest span.end() in ``phase`` less the garbage collection that ran inside it."""
    return max(
        (
            call.took_s - gc_pauses.overlap(call.started, call.started + call.took_s)
            for call in load.slow_calls(phase)
        ),
        default=load.max_end_s(phase),
    )


@pytest.fixture(scope="module")
def outage(tmp_path_factory: pytest.TempPathFactory) -> Iterator[OutageRun]:
    """Run 500 spans/s through rotel, stop rotel for 10 s, restart it; measure everything."""
    workdir = tmp_path_factory.mktemp("rotel-outage")
    with OtlpSink() as sink:
        try:
            rotels = [start_rotel(exporter_endpoint=sink.endpoint, workdir=workdir)]
        except RotelUnavailable as exc:
            require("rotel", exc)
        try:
            yield _outage_run(sink, rotels, workdir)
        finally:
            for rotel in rotels:
                rotel.stop()


def _outage_run(sink: OtlpSink, rotels: list[Rotel], workdir: Path) -> OutageRun:
    """The scenario; ``rotels`` gains the restarted rotel, so the caller stops it."""
    rotel = rotels[0]
    metric_exporter = _CountingMetricExporter(rotel.endpoint)
    telemetry = wedsync_otel.configure(
        config=WeddingConfig.default(),
        service_name="wedsync-outage-test",
        span_exporter=OTLPSpanExporter(endpoint=rotel.endpoint, insecure=True),
        metric_exporter=metric_exporter,
        metric_export_interval_millis=METRIC_INTERVAL_MS,
        set_global=False,
    )
    retrying = _span_exporter(telemetry)
    assert isinstance(retrying, RetryingSpanExporter)
    load = SteadyLoad(telemetry.tracer_provider.get_tracer("tests.outage"), rate_per_s=RATE_PER_S)
    paused = threading.Event()  # never set: its wait() paces the scenario
    try:
        with GcPauses() as gc_pauses:
            load.start()
            assert sink.wait_until(lambda s: bool(s.spans()), timeout_s=DELIVERY_TIMEOUT_S)
            paused.wait(WARM_UP_S)

            assert rotel.stop() == 0, rotel.log()
            load.set_phase("outage")
            outage_began = time.perf_counter()
            ended_before = load.ended
            failures_before = metric_exporter.failures
            paused.wait(OUTAGE_S)
            ended = load.ended  # nothing is exported while rotel is away, so read this first
            stats = retrying.stats()
            held = ended - stats.exported_spans - stats.dropped_spans
            outage_ended = time.perf_counter()

            restarting = time.monotonic()
            rotels.append(restart_rotel(rotel, exporter_endpoint=sink.endpoint, workdir=workdir))
            restart_took_s = time.monotonic() - restarting
            load.set_phase("after")
            metric_failures = metric_exporter.failures - failures_before
            paused.wait(AFTER_S)
            load.stop()

        sent = load.span_ids()
        sink.wait_until(
            lambda s: {span.span_id for span in s.spans()} >= sent,
            timeout_s=DELIVERY_TIMEOUT_S,
        )
        assert telemetry.meter_provider.force_flush(timeout_millis=20_000)
        sink.wait_until(lambda s: _apdex_requests(s) >= len(sent), timeout_s=DELIVERY_TIMEOUT_S)
        received = [span.span_id for span in sink.spans()]
        run = OutageRun(
            sent=sent,
            received=frozenset(received),
            received_count=len(received),
            ended_in_outage=ended - ended_before,
            max_end_in_outage_s=load.max_end_s("outage"),
            max_blocked_in_outage_s=_max_blocked_s(load, "outage", gc_pauses),
            longest_gc_in_outage_s=gc_pauses.longest(outage_began, outage_ended),
            errors=load.errors,
            held_at_restart=held,
            export_stats=retrying.stats(),
            metric_failures_in_outage=metric_failures,
            apdex_requests=_apdex_requests(sink),
            restart_took_s=restart_took_s,
        )
    finally:
        load.stop()
        telemetry.shutdown()
    print(
        f"\noutage: sent {len(run.sent)}, received {len(run.received)} distinct "
        f"({run.received_count} with duplicates), {run.ended_in_outage} ended while rotel was "
        f"away; rotel back in {run.restart_took_s:.2f} s\n"
        f"  span.end() max {run.max_end_in_outage_s * 1e3:.1f} ms, "
        f"{run.max_blocked_in_outage_s * 1e3:.1f} ms less garbage collection "
        f"(longest collection {run.longest_gc_in_outage_s * 1e3:.1f} ms)\n"
        f"  held in the queue and the batch being retried at restart: "
        f"{run.held_at_restart} spans\n"
        f"  exporter: {run.export_stats}\n"
        f"  metric exports failed during the outage: {run.metric_failures_in_outage}; "
        f"wedding.apdex.requests after it: {run.apdex_requests}"
    )
    return run


def test_no_span_is_lost_in_a_10_s_outage(outage: OutageRun) -> None:
    """Every span ended before, during and after the outage reaches the receiver behind rotel."""
    assert outage.ended_in_outage >= 0.9 * RATE_PER_S * OUTAGE_S
    missing = outage.sent - outage.received
    assert not missing, f"{len(missing)} of {len(outage.sent)} spans never arrived"


def test_the_exporter_drops_nothing_in_a_10_s_outage(outage: OutageRun) -> None:
    """The retrying exporter reports no span given up and none still being retried."""
    assert outage.export_stats.dropped_spans == 0
    assert outage.export_stats.retrying_spans == 0
    assert outage.export_stats.failed_attempts >= 1


def test_the_application_thread_never_waits_for_the_collector(outage: OutageRun) -> None:
    """While rotel is away, span.end() raises nothing and takes under 50 ms, collection aside."""
    assert outage.errors == ()
    assert outage.max_blocked_in_outage_s < MAX_BLOCKED_S


def test_the_outage_is_held_within_the_bounded_queue(outage: OutageRun) -> None:
    """At restart the pipeline holds every span of the outage, and no more than queue and batch."""
    assert outage.ended_in_outage <= outage.held_at_restart <= DEFAULT_MAX_QUEUE_SIZE + 512


def test_cumulative_metrics_after_the_outage_are_complete(outage: OutageRun) -> None:
    """Metric exports fail while rotel is away; the next cumulative export counts every request."""
    assert outage.metric_failures_in_outage >= 1
    assert outage.apdex_requests == len(outage.sent)


# --- a collector that refuses or stalls: the application's latency ------------------------------

ROUNDS: Final = 4
PHASE_S: Final = 1.5
REQUESTS_PER_S: Final = 500
WORK_BLOCKS: Final = 40
PAYLOAD: Final = b"wedsync" * 64
MAX_LATENCY_RATIO: Final = 1.5


def _request(tracer: Any) -> float:
    """One request of fixed work inside a server span; its duration in seconds."""
    started = time.perf_counter()
    with tracer.start_as_current_span(
        f"GET {STEADY_ROUTE}", kind=SpanKind.SERVER, attributes=STEADY_ATTRIBUTES
    ):
        digest = PAYLOAD
        for _ in range(WORK_BLOCKS):
            digest = hashlib.sha256(digest + PAYLOAD).digest()
    return time.perf_counter() - started


def test_request_latency_is_unchanged_by_a_failing_or_slow_collector() -> None:
    """Median request latency with the collector refusing or stalling is within 1.5x of healthy."""
    phases = ("healthy", "unavailable", "healthy again", "slow")
    faults = {
        "healthy": Fault.NONE,
        "unavailable": Fault.UNAVAILABLE,
        "healthy again": Fault.NONE,
        "slow": Fault.SLOW,
    }
    durations: dict[str, list[float]] = {phase: [] for phase in phases}
    pacer = threading.Event()  # never set: its wait() paces the requests
    with FaultyOtlpReceiver(slow_s=2.0) as receiver:
        telemetry = wedsync_otel.configure(
            config=WeddingConfig.default(),
            service_name="wedsync-latency-test",
            span_exporter=OTLPSpanExporter(endpoint=receiver.endpoint, insecure=True),
            metric_exporter=OTLPMetricExporter(endpoint=receiver.endpoint, insecure=True),
            metric_export_interval_millis=3_600_000,
            set_global=False,
        )
        tracer = telemetry.tracer_provider.get_tracer("tests.latency")
        try:
            for _ in range(200):
                _request(tracer)  # warm caches and the adaptive interpreter
            for round_index in range(ROUNDS):
                order = phases if round_index % 2 == 0 else tuple(reversed(phases))
                for phase in order:
                    receiver.set_fault(faults[phase])
                    began = time.monotonic()
                    for index in range(int(PHASE_S * REQUESTS_PER_S)):
                        pacer.wait(max(0.0, began + index / REQUESTS_PER_S - time.monotonic()))
                        durations[phase].append(_request(tracer))
        finally:
            receiver.set_fault(Fault.NONE)
            telemetry.shutdown()
        accepted = receiver.accepted_spans
    medians = {phase: statistics.median(values) for phase, values in durations.items()}
    healthy = medians["healthy"]
    print(f"\nrequest latency at {REQUESTS_PER_S} requests/s, median of interleaved phases:")
    for phase in phases:
        print(
            f"  {phase:<14} {medians[phase] * 1e6:8.1f} us   ratio to healthy "
            f"{medians[phase] / healthy:6.3f}   ({len(durations[phase])} requests)"
        )
    print(f"  spans the receiver accepted in all: {accepted}")
    noise = medians["healthy again"] / healthy
    assert 1 / MAX_LATENCY_RATIO < noise < MAX_LATENCY_RATIO, f"healthy phases differ: {noise}"
    assert medians["unavailable"] / healthy < MAX_LATENCY_RATIO
    assert medians["slow"] / healthy < MAX_LATENCY_RATIO
