"""configure(): one call that installs the wedding-aware tracing pipeline."""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Mapping, Sequence
from typing import Any

from opentelemetry import metrics, trace
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import (
    ConsoleMetricExporter,
    MetricExporter,
    MetricExportResult,
    MetricsData,
    PeriodicExportingMetricReader,
)
from opentelemetry.sdk.resources import SERVICE_NAME, Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import ConsoleSpanExporter, SpanExporter
from opentelemetry.sdk.trace.sampling import Sampler

from wedsync_otel.config import WeddingConfig, load_config
from wedsync_otel.export_tuning import ExportTuning, RetryingSpanExporter, batch_span_processor
from wedsync_otel.instrumentation import instrument as turn_on
from wedsync_otel.metrics import PerformanceMetricExporter, PerformanceSnapshot, WeddingRecorder
from wedsync_otel.metrics.self_metrics import register_self_metrics
from wedsync_otel.processor import Clock, WeddingSpanProcessor
from wedsync_otel.sampling import record_every_request

logger = logging.getLogger("wedsync_otel")

_OTLP_ENDPOINT_ENVS = ("OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
_OTLP_METRICS_ENDPOINT_ENVS = ("OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_METRICS_ENDPOINT")


class WeddingTelemetry:
    """The installed pipeline: its providers, flush, shutdown and performance snapshot."""

    def __init__(
        self,
        *,
        tracer_provider: TracerProvider,
        meter_provider: MeterProvider,
        span_processor: WeddingSpanProcessor,
        metric_exporter: PerformanceMetricExporter,
        recorder: WeddingRecorder,
        config: WeddingConfig,
    ) -> None:
        self.tracer_provider = tracer_provider
        self.meter_provider = meter_provider
        self.span_processor = span_processor
        self.metric_exporter = metric_exporter
        self.recorder = recorder
        self.config = config
        self._shutdown_once = threading.Lock()
        self._is_shut_down = False

    def force_flush(self, timeout_millis: int = 30_000) -> bool:
        """Export every finished span and the metrics now; False if the deadline passed first."""
        spans = self.tracer_provider.force_flush(timeout_millis)
        return self.meter_provider.force_flush(timeout_millis) and spans

    def snapshot(self) -> PerformanceSnapshot:
        """Percentiles, Apdex, health, trend and readiness from everything recorded so far."""
        return self.metric_exporter.snapshot()

    def shutdown(self) -> None:
        """Flush and stop the pipeline; a second call does nothing."""
        with self._shutdown_once:
            if self._is_shut_down:
                return
            self._is_shut_down = True
        self.tracer_provider.shutdown()  # spans first: their measurements feed the last export
        self.meter_provider.shutdown()


_installed: WeddingTelemetry | None = None
_install_lock = threading.Lock()


def default_span_exporter(environ: Mapping[str, str] | None = None) -> SpanExporter:
    """OTLP over gRPC when the ``otlp`` extra is installed and an endpoint is set; else console."""
    env = os.environ if environ is None else environ
    if any(env.get(name) for name in _OTLP_ENDPOINT_ENVS):
        try:
            from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import (  # noqa: PLC0415 - optional extra
                OTLPSpanExporter,
            )
        except ImportError:
            logger.warning(
                "wedsync-otel: OTEL_EXPORTER_OTLP_ENDPOINT is set but the 'otlp' extra is not "
                "installed (pip install 'wedsync-otel[otlp]'); exporting to the console"
            )
        else:
            return OTLPSpanExporter()
    return ConsoleSpanExporter()


def default_metric_exporter(environ: Mapping[str, str] | None = None) -> MetricExporter:
    """OTLP when an endpoint is set; the console if ``OTEL_METRICS_EXPORTER=console``; else none.

    Without an endpoint the figures are still computed, for `WeddingTelemetry.snapshot`
    and the derived gauges, but nothing is printed: a user who chose a span exporter
    does not expect every metric dumped to stdout each interval.
    """
    env = os.environ if environ is None else environ
    if any(env.get(name) for name in _OTLP_METRICS_ENDPOINT_ENVS):
        try:
            from opentelemetry.exporter.otlp.proto.grpc.metric_exporter import (  # noqa: PLC0415 - optional extra
                OTLPMetricExporter,
            )
        except ImportError:
            pass  # default_span_exporter has already said why
        else:
            return OTLPMetricExporter()
    if env.get("OTEL_METRICS_EXPORTER", "").strip().lower() == "console":
        return ConsoleMetricExporter()
    logger.info(
        "wedsync-otel: no metrics endpoint (OTEL_EXPORTER_OTLP_ENDPOINT) and no metric_exporter: "
        "metrics are computed for telemetry.snapshot() but not exported"
    )
    return UnexportedMetrics()


class UnexportedMetrics(MetricExporter):
    """Takes every collection and sends it nowhere: the metrics live on in the snapshot."""

    def export(
        self, metrics_data: MetricsData, timeout_millis: float = 10_000, **kwargs: Any
    ) -> MetricExportResult:
        return MetricExportResult.SUCCESS

    def force_flush(self, timeout_millis: float = 10_000) -> bool:
        return True

    def shutdown(self, timeout_millis: float = 30_000, **kwargs: Any) -> None:
        return None


def configure(
    *,
    config: WeddingConfig | None = None,
    span_exporter: SpanExporter | None = None,
    metric_exporter: MetricExporter | None = None,
    metric_export_interval_millis: float | None = None,
    clock: Clock | None = None,
    service_name: str | None = None,
    resource: Resource | None = None,
    instrument: Sequence[str] = (),
    set_global: bool = True,
    export_tuning: ExportTuning | None = None,
    sampler: Sampler | None = None,
) -> WeddingTelemetry:
    """Build the pipelines: traces and the wedding performance metrics.

    Traces: `WeddingSpanProcessor` in front of a `BatchSpanProcessor` and
    ``span_exporter``; the batch queue is sized and the exporter wrapped in a
    `RetryingSpanExporter`, so a collector outage of up to 30 s at 1,000
    spans/s loses nothing (``export_tuning``, else the ``OTEL_BSP_*`` and
    ``WEDSYNC_OTEL_EXPORT_*`` variables: see `wedsync_otel.export_tuning`).
    Metrics: the processor's `WeddingRecorder` feeds a
    `PerformanceMetricExporter` wrapped around ``metric_exporter``, read by a
    `PeriodicExportingMetricReader` (interval: the argument, else
    ``OTEL_METRIC_EXPORT_INTERVAL``, else 60 s). ``config`` defaults to
    `load_config()` (the ``WEDSYNC_OTEL_CONFIG`` file and ``WEDSYNC_OTEL_*``
    variables); the resource honours ``OTEL_SERVICE_NAME`` and
    ``OTEL_RESOURCE_ATTRIBUTES``, with ``service_name`` winning. With
    ``set_global`` (the default) both providers become the global ones, once:
    a second call returns the pipeline already installed. ``instrument``
    names companion instrumentations to turn on (see `instrument`). ``sampler``
    (default: ``OTEL_TRACES_SAMPLER``) decides which traces are exported; every
    request is measured whatever it decides, unless ``measure_unsampled`` is off
    (see `wedsync_otel.sampling`).
    """
    global _installed  # noqa: PLW0603 - mirrors the SDK's one global provider
    with _install_lock:
        if set_global and _installed is not None:
            logger.warning("wedsync-otel: configure() called again; keeping the installed pipeline")
            return _installed
        effective = config if config is not None else load_config()
        export_settings = (export_tuning or ExportTuning()).resolve()
        base = resource if resource is not None else Resource.create()
        if service_name is not None:
            base = base.merge(Resource.create({SERVICE_NAME: service_name}))
        exporter = span_exporter if span_exporter is not None else default_span_exporter()
        recorder = WeddingRecorder()
        performance = PerformanceMetricExporter(
            metric_exporter if metric_exporter is not None else default_metric_exporter(),
            clock=clock,
            config=effective,
            recorder=recorder,
            resource=base,
        )
        reader = PeriodicExportingMetricReader(
            performance, export_interval_millis=metric_export_interval_millis
        )
        meter_provider = MeterProvider(resource=base, metric_readers=[reader])
        batch = batch_span_processor(exporter, export_settings, meter_provider=meter_provider)
        processor = WeddingSpanProcessor(batch, config=effective, clock=clock)
        processor.add_verdict_listener(recorder)
        tracer_provider = TracerProvider(resource=base, sampler=sampler)
        if effective.measure_unsampled:
            record_every_request(tracer_provider)
        tracer_provider.add_span_processor(processor)
        retrying = batch.span_exporter
        register_self_metrics(
            meter_provider,
            processor,
            recorder,
            exporter=retrying if isinstance(retrying, RetryingSpanExporter) else None,
        )
        telemetry = WeddingTelemetry(
            tracer_provider=tracer_provider,
            meter_provider=meter_provider,
            span_processor=processor,
            metric_exporter=performance,
            recorder=recorder,
            config=effective,
        )
        if set_global:
            trace.set_tracer_provider(tracer_provider)
            metrics.set_meter_provider(meter_provider)
            _installed = telemetry
        if instrument:
            # With set_global the contrib spans reach this pipeline through the global provider.
            turn_on(*instrument, tracer_provider=None if set_global else tracer_provider)
        return telemetry
