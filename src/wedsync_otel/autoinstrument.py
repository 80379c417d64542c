"""Zero-code setup: ``opentelemetry-instrument`` entry points.

Two ways in, both ending with the same wiring:

- ``OTEL_PYTHON_CONFIGURATOR=wedsync_otel`` selects `WeddingConfigurator`:
  the SDK's own configurator builds the providers from the usual ``OTEL_*``
  variables, then `install` puts the wedding processing in front.
- Beside another distro (``opentelemetry-distro`` or a vendor's), the
  ``opentelemetry_post_instrument`` hook `post_instrument` does the same to
  whatever providers that distro installed.

The trap: a processor passed through the configurator's ``span_processors``
argument, or added with ``add_span_processor``, sits BESIDE the exporters'
batch processors, so an enriched copy would never reach them. The SDK has
no public API to put a processor in front of those already registered, so
`install` swaps the provider's processor tuple for one `WeddingSpanProcessor`
whose downstream holds the original processors, under the SDK's own lock.
Metrics likewise: each periodic reader's exporter is wrapped in a
`PerformanceMetricExporter` (the reader has no public setter for it).
"""

from __future__ import annotations

import logging
import threading
from typing import Any

from opentelemetry import metrics, trace
from opentelemetry.sdk._configuration import _OTelSDKConfigurator
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader
from opentelemetry.sdk.trace import SynchronousMultiSpanProcessor, TracerProvider

from wedsync_otel.config import WeddingConfig, load_config
from wedsync_otel.instrumentation.operation_names import protect_operation_names
from wedsync_otel.metrics import PerformanceMetricExporter, WeddingRecorder
from wedsync_otel.metrics.self_metrics import register_self_metrics
from wedsync_otel.processor import WeddingSpanProcessor

logger = logging.getLogger("wedsync_otel")

_lock = threading.Lock()
_installed: WeddingSpanProcessor | None = None


def install(config: WeddingConfig | None = None) -> WeddingSpanProcessor | None:
    """Put the wedding processing in front of the global providers' exporters, once.

    Returns the processor, or ``None`` when the global tracer provider is not
    the SDK's (nothing to wrap).
    """
    global _installed  # noqa: PLW0603 - one installation per process, like the global providers
    with _lock:
        if _installed is not None:
            return _installed
        provider = trace.get_tracer_provider()
        if not isinstance(provider, TracerProvider):
            logger.warning("wedsync-otel: no SDK TracerProvider installed; nothing to enrich")
            return None
        effective = config if config is not None else load_config()
        protect_operation_names()  # the contrib's DB metrics: no literal as db.operation.name
        recorder = WeddingRecorder()
        processor = _front_span_processors(provider, effective)
        processor.add_verdict_listener(recorder)
        meter_provider = metrics.get_meter_provider()
        if isinstance(meter_provider, MeterProvider):
            _wrap_metric_exporters(meter_provider, effective, recorder)
            register_self_metrics(meter_provider, processor, recorder)
        _installed = processor
        return processor


def _front_span_processors(provider: TracerProvider, config: WeddingConfig) -> WeddingSpanProcessor:
    active: Any = provider._active_span_processor  # noqa: SLF001 - no public API, see module doc
    with active._lock:  # noqa: SLF001
        existing = tuple(active._span_processors)  # noqa: SLF001
        downstream = SynchronousMultiSpanProcessor()  # type: ignore[no-untyped-call]
        for span_processor in existing:
            downstream.add_span_processor(span_processor)
        processor = WeddingSpanProcessor(downstream, config=config)
        active._span_processors = (processor,)  # noqa: SLF001
    return processor


def _wrap_metric_exporters(
    meter_provider: MeterProvider, config: WeddingConfig, recorder: WeddingRecorder
) -> None:
    readers: Any = meter_provider._metric_readers  # noqa: SLF001 - no public API
    wrapped = False
    for reader in readers:
        if isinstance(reader, PeriodicExportingMetricReader):
            inner = reader._exporter  # noqa: SLF001
            if not isinstance(inner, PerformanceMetricExporter):
                # Only the first reader drains the recorder: two would split its deltas.
                reader._exporter = PerformanceMetricExporter(  # noqa: SLF001
                    inner,
                    config=config,
                    recorder=None if wrapped else recorder,
                    resource=meter_provider._sdk_config.resource,  # noqa: SLF001
                )
                wrapped = True


class WeddingConfigurator(_OTelSDKConfigurator):
    """The SDK's configurator (all ``OTEL_*`` variables), then the wedding processing."""

    def _configure(self, **kwargs: Any) -> None:  # the SDK's signature
        super()._configure(**kwargs)  # type: ignore[no-untyped-call]
        install()


def post_instrument(*args: Any, **kwargs: Any) -> None:  # any entry-point signature
    """``opentelemetry_post_instrument`` hook: wrap whatever another distro installed."""
    try:
        install()
    except Exception as exc:  # noqa: BLE001 - zero-code setup must not stop the application
        logger.warning("wedsync-otel: zero-code setup failed: %s", exc)
