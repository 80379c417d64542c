"""Collector faults: a retrying exporter on a fake clock, a blocked export, and a rotel outage.

Nothing here depends on how fast this machine is. The retry deadline, the
backoff and shutdown run on a fake clock that moves only when the exporter
waits; where a real gRPC receiver refuses or accepts, it is the answer that
matters, never how long it took. That the application never waits for the
collector is shown by ending spans while the export is held on an event. The
rotel outage ends a fixed number of spans while rotel is stopped and restarts it
once the pipeline has seen the failure, then checks that every span arrived.
Every wait is on an event or a condition, with a generous timeout that can
fail a test but never pass one. Speed (latency ratios, ``span.end()`` times, memory) is
measured by ``benchmarks/bench_collector.py``.
"""

from __future__ import annotations

import io
import itertools
import logging
import threading
from collections.abc import Callable, Iterator, Sequence
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
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, Tracer

import wedsync_otel
from collector_support import (
    STEADY_ATTRIBUTES,
    STEADY_ROUTE,
    Fault,
    FaultyOtlpReceiver,
    OtlpSink,
    Rotel,
    RotelUnavailable,
    restart_rotel,
    start_rotel,
)
from helpers import FakeSeconds
from servers import require
from wedsync_otel import ConfigError, WeddingConfig
from wedsync_otel.export_tuning import (
    DEFAULT_MAX_BACKOFF_S,
    DEFAULT_MAX_QUEUE_SIZE,
    DEFAULT_RETRY_DEADLINE_S,
    INITIAL_BACKOFF_S,
    ExportSettings,
    ExportStats,
    ExportTuning,
    RetryingSpanExporter,
)
from wedsync_otel.metrics import names

EVENT_TIMEOUT_S: Final = 30.0
"""How long a test waits for something that should happen at once; timing out fails it."""

DELIVERY_TIMEOUT_S: Final = 60.0
"""How long the outage run waits for spans and metrics to arrive behind rotel."""

JITTER: Final = 0.2
"""The retrying exporter's +-20 % jitter on every wait."""

SPAN_NAME: Final = f"GET {STEADY_ROUTE}"


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


# --- fakes ------------------------------------------------------------------------------------


class _RefusingExporter(SpanExporter):
    """A collector that refuses the first ``refusals`` exports (every one, unless given)."""

    def __init__(self, refusals: int | None = None, *, raises: bool = False) -> None:
        self._refusals = refusals
        self._raises = raises
        self.attempts = 0
        self.accepted: list[str] = []
        self.threads: set[int] = set()

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        self.threads.add(threading.get_ident())
        self.attempts += 1
        if self._refusals is None or self.attempts <= self._refusals:
            if self._raises:
                raise ConnectionError("test collector: connection reset")
            return SpanExportResult.FAILURE
        self.accepted.extend(span.name for span in spans)
        return SpanExportResult.SUCCESS


class _BlockedExporter(SpanExporter):
    """A collector that does not answer until the test sets `release` (it does at teardown)."""

    def __init__(self) -> None:
        self.entered = threading.Event()
        self.release = threading.Event()
        self._lock = threading.Lock()
        self._threads: set[int] = set()
        self._returned = 0
        self._exported: list[str] = []
        self._timed_out = False

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        with self._lock:
            self._threads.add(threading.get_ident())
        self.entered.set()
        released = self.release.wait(EVENT_TIMEOUT_S)
        with self._lock:
            self._returned += 1
            self._exported.extend(span.name for span in spans)
            self._timed_out |= not released
        return SpanExportResult.SUCCESS if released else SpanExportResult.FAILURE

    @property
    def returned(self) -> int:
        """Exports that have returned."""
        with self._lock:
            return self._returned

    @property
    def exported(self) -> list[str]:
        """Names of the spans in every export that returned."""
        with self._lock:
            return list(self._exported)

    @property
    def threads(self) -> frozenset[int]:
        """Idents of the threads export ran on."""
        with self._lock:
            return frozenset(self._threads)

    @property
    def timed_out(self) -> bool:
        """Whether an export gave up waiting for `release` (the test would be wrong)."""
        with self._lock:
            return self._timed_out

    def shutdown(self) -> None:
        self.release.set()


def _spans(count: int) -> list[ReadableSpan]:
    tracer = TracerProvider().get_tracer("tests.collector_faults")
    spans: list[ReadableSpan] = []
    for _ in range(count):
        span = tracer.start_span("GET /api/rsvp", kind=SpanKind.SERVER)
        span.end()
        assert isinstance(span, ReadableSpan)
        spans.append(span)
    return spans


def _end_request(tracer: Tracer) -> bytes:
    """End one server span as the application does; its span id as OTLP carries it."""
    span = tracer.start_span(SPAN_NAME, kind=SpanKind.SERVER, attributes=STEADY_ATTRIBUTES)
    span.end()
    return span.get_span_context().span_id.to_bytes(8, "big")


def _one_shot_otlp(receiver: FaultyOtlpReceiver) -> OTLPSpanExporter:
    """A real OTLP exporter that makes one call per export, so the wrapper's retries are seen.

    Its own first backoff is at least 0.8 s, longer than its 0.75 s timeout, so
    it gives a refused export up at once instead of retrying it itself.
    """
    return OTLPSpanExporter(endpoint=receiver.endpoint, insecure=True, timeout=0.75)


def _nominal_backoffs_s(count: int) -> list[float]:
    """The waits before jitter: 0.5 s doubling up to the 5 s cap."""
    return [min(INITIAL_BACKOFF_S * 2**index, DEFAULT_MAX_BACKOFF_S) for index in range(count)]


# --- the retrying exporter on a fake clock ------------------------------------------------------


def test_backoff_doubles_from_half_a_second_up_to_the_cap() -> None:
    """Waits between attempts are 0.5, 1, 2, 4 s, then 5 s each, every one within +-20 %."""
    clock = FakeSeconds()
    exporter = RetryingSpanExporter(_RefusingExporter(), monotonic=clock, wait=clock.wait)
    exporter.export(_spans(3))
    waits_s = clock.waits_s
    # The waits that ended before the deadline are whole backoffs; the last is cut to fit it.
    whole = [
        waited_s
        for waited_s, total_s in zip(waits_s, itertools.accumulate(waits_s), strict=True)
        if total_s < DEFAULT_RETRY_DEADLINE_S - 1e-6
    ]
    assert len(whole) >= 6, "the deadline came before the cap was reached"
    for waited_s, nominal_s in zip(whole, _nominal_backoffs_s(len(whole)), strict=True):
        assert (1 - JITTER) * nominal_s <= waited_s <= (1 + JITTER) * nominal_s
    assert all(waited_s > 0 for waited_s in waits_s)
    assert sum(waits_s) == pytest.approx(DEFAULT_RETRY_DEADLINE_S)


def test_an_outage_past_the_deadline_drops_and_counts_the_batch() -> None:
    """A collector refusing for the whole 30 s deadline costs that batch, counted as dropped."""
    clock = FakeSeconds()
    with FaultyOtlpReceiver() as receiver:
        receiver.set_fault(Fault.UNAVAILABLE)
        exporter = RetryingSpanExporter(_one_shot_otlp(receiver), monotonic=clock, wait=clock.wait)
        began_s = clock.now_s
        result = exporter.export(_spans(7))
        stats = exporter.stats()
        exporter.shutdown()
        refused = receiver.requests
    assert result is SpanExportResult.FAILURE
    assert (stats.dropped_spans, stats.exported_spans, stats.retrying_spans) == (7, 0, 0)
    assert clock.now_s - began_s == pytest.approx(DEFAULT_RETRY_DEADLINE_S)
    assert sum(clock.waits_s) == pytest.approx(DEFAULT_RETRY_DEADLINE_S)
    assert stats.failed_attempts == len(clock.waits_s) + 1
    assert refused >= 1
    assert stats.failing_for_s == pytest.approx(DEFAULT_RETRY_DEADLINE_S)


def test_after_the_deadline_each_batch_gets_one_attempt() -> None:
    """Once the outage has outlasted the deadline, the next batch is tried once, not retried."""
    clock = FakeSeconds()
    with FaultyOtlpReceiver() as receiver:
        receiver.set_fault(Fault.UNAVAILABLE)
        exporter = RetryingSpanExporter(_one_shot_otlp(receiver), monotonic=clock, wait=clock.wait)
        exporter.export(_spans(7))
        attempts, waits = exporter.stats().failed_attempts, len(clock.waits_s)
        result = exporter.export(_spans(3))
        stats = exporter.stats()
        exporter.shutdown()
    assert result is SpanExportResult.FAILURE
    assert (stats.failed_attempts, len(clock.waits_s)) == (attempts + 1, waits)
    assert stats.dropped_spans == 10


def test_retries_deliver_a_batch_once_the_collector_answers() -> None:
    """A batch refused at first is delivered by the retry after the collector comes back."""
    clock = FakeSeconds()
    with FaultyOtlpReceiver() as receiver:
        receiver.set_fault(Fault.UNAVAILABLE)

        def collector_returns(timeout_s: float) -> bool:
            receiver.set_fault(Fault.NONE)  # during the first backoff
            return clock.wait(timeout_s)

        exporter = RetryingSpanExporter(
            _one_shot_otlp(receiver), monotonic=clock, wait=collector_returns
        )
        result = exporter.export(_spans(5))
        stats = exporter.stats()
        exporter.shutdown()
        accepted = receiver.accepted_spans
    assert result is SpanExportResult.SUCCESS
    assert (stats.exported_spans, stats.dropped_spans, stats.retrying_spans) == (5, 0, 0)
    assert stats.failed_attempts >= 1
    assert accepted >= 5  # at least once: gRPC cannot promise once across a timed-out call
    assert stats.failing_for_s == 0.0


def test_failing_for_s_counts_from_the_first_failure_and_resets_on_success() -> None:
    """stats() during a retry shows the batch and the outage's length; a success clears both."""
    clock = FakeSeconds()
    seen: list[ExportStats] = []
    exporter: RetryingSpanExporter

    def wait(timeout_s: float) -> bool:
        clock.wait(timeout_s)
        seen.append(exporter.stats())
        return False

    exporter = RetryingSpanExporter(_RefusingExporter(refusals=3), monotonic=clock, wait=wait)
    result = exporter.export(_spans(4))
    after = exporter.stats()
    assert result is SpanExportResult.SUCCESS
    assert [stats.failing_for_s for stats in seen] == pytest.approx(
        [sum(clock.waits_s[: index + 1]) for index in range(3)]
    )
    assert {(stats.retrying_spans, stats.exported_spans) for stats in seen} == {(4, 0)}
    assert (after.failing_for_s, after.retrying_spans, after.exported_spans) == (0.0, 0, 4)


def test_an_exporter_that_raises_is_retried_like_one_that_fails() -> None:
    """An exporter that raises instead of returning FAILURE is retried, and nothing is raised."""
    clock = FakeSeconds()
    inner = _RefusingExporter(refusals=2, raises=True)
    exporter = RetryingSpanExporter(inner, monotonic=clock, wait=clock.wait)
    assert exporter.export(_spans(2)) is SpanExportResult.SUCCESS
    assert (inner.attempts, len(clock.waits_s), exporter.stats().failed_attempts) == (3, 2, 2)


def test_dropped_batches_are_logged_once_per_interval(caplog: pytest.LogCaptureFixture) -> None:
    """Two batches dropped within a minute of each other cost one warning; both are counted."""
    clock = FakeSeconds()
    exporter = RetryingSpanExporter(_RefusingExporter(), monotonic=clock, wait=clock.wait)
    with caplog.at_level(logging.WARNING, logger="wedsync_otel"):
        exporter.export(_spans(7))
        exporter.export(_spans(3))
    dropped = [record for record in caplog.records if "spans dropped" in record.getMessage()]
    assert len(dropped) == 1
    assert "7 spans in all" in dropped[0].getMessage()
    assert exporter.stats().dropped_spans == 10


def test_shutdown_ends_a_retrying_export_at_once() -> None:
    """With the collector refusing and an hour's backoff ahead, shutdown makes export return."""
    clock = FakeSeconds()  # never moves: the deadline cannot pass while the test runs
    with FaultyOtlpReceiver() as receiver:
        receiver.set_fault(Fault.UNAVAILABLE)
        exporter = RetryingSpanExporter(
            _one_shot_otlp(receiver),
            retry_deadline_s=7_200,
            initial_backoff_s=3_600,
            max_backoff_s=3_600,
            monotonic=clock,  # and the default wait: the shutdown event's
        )
        results: list[SpanExportResult] = []
        worker = threading.Thread(target=lambda: results.append(exporter.export(_spans(10))))
        worker.start()
        assert clock.read.wait(EVENT_TIMEOUT_S), "the first attempt never failed"
        exporter.shutdown()
        worker.join(timeout=EVENT_TIMEOUT_S)
        still_waiting = worker.is_alive()
    assert not still_waiting, "shutdown did not end the backoff wait"
    assert results == [SpanExportResult.FAILURE]
    assert exporter.stats().dropped_spans == 10


def test_shutdown_during_an_injected_wait_stops_the_retries() -> None:
    """A wait that shutdown cannot interrupt is still the last one once shutdown has come."""
    clock = FakeSeconds()
    exporter: RetryingSpanExporter

    def shutdown_arrives(timeout_s: float) -> bool:
        exporter.shutdown()
        return clock.wait(timeout_s)

    inner = _RefusingExporter()
    exporter = RetryingSpanExporter(inner, monotonic=clock, wait=shutdown_arrives)
    assert exporter.export(_spans(4)) is SpanExportResult.FAILURE
    assert (inner.attempts, len(clock.waits_s), exporter.stats().dropped_spans) == (1, 1, 4)


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


# --- the application never waits for the collector --------------------------------------------

QUEUED: Final = 100
"""Spans the application ends while the first one's export is held."""


def test_span_end_returns_while_the_export_is_blocked() -> None:
    """span.end() returns on the application thread while configure()'s exporter is stuck."""
    exporter = _BlockedExporter()
    telemetry = wedsync_otel.configure(
        config=WeddingConfig.default(),
        service_name="wedsync-blocked-test",
        span_exporter=exporter,
        metric_exporter=ConsoleMetricExporter(out=io.StringIO()),
        metric_export_interval_millis=3_600_000,
        set_global=False,
        export_tuning=ExportTuning(max_export_batch_size=1),  # the first span starts an export
    )
    assert isinstance(_span_exporter(telemetry), RetryingSpanExporter)
    tracer = telemetry.tracer_provider.get_tracer("tests.blocked")
    try:
        _end_request(tracer)
        assert exporter.entered.wait(EVENT_TIMEOUT_S), "the worker never began an export"
        for _ in range(QUEUED):
            _end_request(tracer)
        returned_meanwhile = exporter.returned
    finally:
        exporter.release.set()
        telemetry.shutdown()
    assert returned_meanwhile == 0, "the export returned before it was released"
    assert threading.get_ident() not in exporter.threads
    assert len(exporter.threads) == 1  # the batch processor's worker
    assert exporter.exported == [SPAN_NAME] * (QUEUED + 1)
    assert not exporter.timed_out


def test_span_end_returns_while_a_refused_batch_waits_for_its_retry() -> None:
    """With the collector refusing, span.end() returns while the worker waits out the backoff."""
    clock = FakeSeconds()
    waiting = threading.Event()
    release = threading.Event()
    wait_threads: set[int] = set()

    def wait(timeout_s: float) -> bool:
        wait_threads.add(threading.get_ident())
        waiting.set()
        return release.wait(EVENT_TIMEOUT_S)  # True once released, as when shutdown ends it

    refusing = _RefusingExporter()
    retrying = RetryingSpanExporter(refusing, monotonic=clock, wait=wait)
    provider = TracerProvider()
    provider.add_span_processor(
        BatchSpanProcessor(retrying, max_export_batch_size=1, schedule_delay_millis=3_600_000)
    )
    tracer = provider.get_tracer("tests.refused")
    try:
        _end_request(tracer)
        assert waiting.wait(EVENT_TIMEOUT_S), "the worker never began waiting to retry"
        for _ in range(QUEUED):
            _end_request(tracer)
        during = retrying.stats()
    finally:
        release.set()
        provider.shutdown()
    assert (during.retrying_spans, during.failed_attempts, during.exported_spans) == (1, 1, 0)
    assert threading.get_ident() not in wait_threads | refusing.threads
    assert retrying.stats().dropped_spans == QUEUED + 1


# --- rotel stopped and restarted under load ---------------------------------------------------

BEFORE_SPANS: Final = 1_024
OUTAGE_SPANS: Final = 5_120
"""Ended while rotel is away: about 10 s at 500 spans/s, ten full batches."""
AFTER_SPANS: Final = 1_024
OUTAGE_RETRY_DEADLINE_S: Final = 3_600.0
"""Longer than any wait here, so whether spans survive never depends on this machine's speed.

The 30 s default deadline is tested on the fake clock above; here rotel's
restart may take as long as it takes.
"""


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


class _ObservedExporter(SpanExporter):
    """A real exporter, noting which thread each export ran on and signalling failed ones."""

    def __init__(self, inner: SpanExporter) -> None:
        self._inner = inner
        self._lock = threading.Lock()
        self._threads: set[int] = set()
        self.failed = threading.Event()

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        with self._lock:
            self._threads.add(threading.get_ident())
        result = self._inner.export(spans)
        if result is not SpanExportResult.SUCCESS:
            self.failed.set()
        return result

    @property
    def threads(self) -> frozenset[int]:
        """Idents of the threads export ran on."""
        with self._lock:
            return frozenset(self._threads)

    def force_flush(self, timeout_millis: int = 30_000) -> bool:
        return self._inner.force_flush(timeout_millis)

    def shutdown(self) -> None:
        self._inner.shutdown()


@dataclass(frozen=True)
class OutageRun:
    """What the outage run saw."""

    sent: frozenset[bytes]
    received: frozenset[bytes]
    received_count: int
    held_at_restart: int
    """Spans ended but neither exported nor given up when rotel came back."""
    export_stats: ExportStats
    export_threads: frozenset[int]
    application_thread: int
    metric_failures_in_outage: int
    apdex_requests: int


def _span_exporter(telemetry: wedsync_otel.WeddingTelemetry) -> Any:
    """The exporter behind configure()'s batch processor (the SDK's public property)."""
    return getattr(telemetry.span_processor.downstream, "span_exporter", None)


def _apdex_requests(sink: OtlpSink) -> int:
    """The total of wedding.apdex.requests in its latest (cumulative) export, 0 if none."""
    exports = [metric for metric in sink.metrics() if metric.name == names.APDEX_REQUESTS]
    return sum(point.as_int for point in exports[-1].sum.data_points) if exports else 0


def _received_all(sent: frozenset[bytes]) -> Callable[[OtlpSink], bool]:
    return lambda sink: {span.span_id for span in sink.spans()} >= sent


@pytest.fixture(scope="module")
def outage(tmp_path_factory: pytest.TempPathFactory) -> Iterator[OutageRun]:
    """End spans through rotel, stop it, end 5,120 more, restart it, end more; see what arrived."""
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
    """The scenario, on this (the application's) thread; ``rotels`` gains the restarted rotel."""
    rotel = rotels[0]
    metric_exporter = _CountingMetricExporter(rotel.endpoint)
    observed = _ObservedExporter(OTLPSpanExporter(endpoint=rotel.endpoint, insecure=True))
    telemetry = wedsync_otel.configure(
        config=WeddingConfig.default(),
        service_name="wedsync-outage-test",
        span_exporter=observed,
        metric_exporter=metric_exporter,
        metric_export_interval_millis=3_600_000,  # metrics are exported when the run flushes
        set_global=False,
        export_tuning=ExportTuning(retry_deadline_s=OUTAGE_RETRY_DEADLINE_S),
    )
    retrying = _span_exporter(telemetry)
    assert isinstance(retrying, RetryingSpanExporter)
    tracer = telemetry.tracer_provider.get_tracer("tests.outage")
    sent: list[bytes] = []
    try:
        sent += [_end_request(tracer) for _ in range(BEFORE_SPANS)]
        assert sink.wait_until(_received_all(frozenset(sent)), timeout_s=DELIVERY_TIMEOUT_S)
        observed.failed.clear()

        assert rotel.stop() == 0, rotel.log()
        sent += [_end_request(tracer) for _ in range(OUTAGE_SPANS)]
        telemetry.meter_provider.force_flush(timeout_millis=20_000)  # fails: rotel is away
        assert observed.failed.wait(DELIVERY_TIMEOUT_S), "no span export failed without rotel"
        stats = retrying.stats()  # nothing can be exported while rotel is away
        held = len(sent) - stats.exported_spans - stats.dropped_spans
        metric_failures = metric_exporter.failures

        rotels.append(restart_rotel(rotel, exporter_endpoint=sink.endpoint, workdir=workdir))
        sent += [_end_request(tracer) for _ in range(AFTER_SPANS)]
        all_sent = frozenset(sent)
        sink.wait_until(_received_all(all_sent), timeout_s=DELIVERY_TIMEOUT_S)
        assert telemetry.meter_provider.force_flush(timeout_millis=20_000)
        sink.wait_until(lambda s: _apdex_requests(s) >= len(all_sent), timeout_s=DELIVERY_TIMEOUT_S)
        received = [span.span_id for span in sink.spans()]
        run = OutageRun(
            sent=all_sent,
            received=frozenset(received),
            received_count=len(received),
            held_at_restart=held,
            export_stats=retrying.stats(),
            export_threads=observed.threads,
            application_thread=threading.get_ident(),
            metric_failures_in_outage=metric_failures,
            apdex_requests=_apdex_requests(sink),
        )
    finally:
        telemetry.shutdown()
    print(
        f"\noutage: sent {len(run.sent)}, received {len(run.received)} distinct "
        f"({run.received_count} with duplicates); {OUTAGE_SPANS} ended while rotel was away\n"
        f"  held in the queue and the batch being retried at restart: "
        f"{run.held_at_restart} spans\n"
        f"  exporter: {run.export_stats}\n"
        f"  metric exports failed during the outage: {run.metric_failures_in_outage}; "
        f"wedding.apdex.requests after it: {run.apdex_requests}"
    )
    return run


def test_no_span_is_lost_while_rotel_is_away(outage: OutageRun) -> None:
    """Every span ended before, during and after the outage reaches the receiver behind rotel."""
    assert len(outage.sent) == BEFORE_SPANS + OUTAGE_SPANS + AFTER_SPANS
    missing = outage.sent - outage.received
    assert not missing, f"{len(missing)} of {len(outage.sent)} spans never arrived"


def test_the_exporter_drops_nothing_while_rotel_is_away(outage: OutageRun) -> None:
    """The retrying exporter failed while rotel was away, yet gave up no span and holds none."""
    assert outage.export_stats.failed_attempts >= 1
    assert outage.export_stats.dropped_spans == 0
    assert outage.export_stats.retrying_spans == 0


def test_exports_run_on_the_worker_thread_not_the_application_thread(outage: OutageRun) -> None:
    """Every export, failed or not, ran on the batch worker, never on the thread ending spans."""
    assert outage.application_thread not in outage.export_threads
    assert len(outage.export_threads) == 1


def test_the_outage_is_held_within_the_bounded_queue(outage: OutageRun) -> None:
    """At restart the pipeline holds every span of the outage, and no more than queue and batch."""
    assert OUTAGE_SPANS <= outage.held_at_restart <= DEFAULT_MAX_QUEUE_SIZE + 512


def test_cumulative_metrics_after_the_outage_are_complete(outage: OutageRun) -> None:
    """The metric export during the outage fails; the next cumulative one counts every request."""
    assert outage.metric_failures_in_outage == 1
    assert outage.apdex_requests == len(outage.sent)
