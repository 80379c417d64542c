"""configure(): one call that installs the wedding-aware tracing pipeline."""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Mapping

from opentelemetry import trace
from opentelemetry.sdk.resources import SERVICE_NAME, Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter, SpanExporter

from wedsync_otel.config import WeddingConfig, load_config
from wedsync_otel.processor import Clock, WeddingSpanProcessor

logger = logging.getLogger("wedsync_otel")

_OTLP_ENDPOINT_ENVS = ("OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")


class WeddingTelemetry:
    """The installed pipeline: its providers, flush and shutdown."""

    def __init__(
        self,
        *,
        tracer_provider: TracerProvider,
        span_processor: WeddingSpanProcessor,
        config: WeddingConfig,
    ) -> None:
        self.tracer_provider = tracer_provider
        self.span_processor = span_processor
        self.config = config
        self._shutdown_once = threading.Lock()
        self._is_shut_down = False

    def force_flush(self, timeout_millis: int = 30_000) -> bool:
        """Export every finished span now; False if the deadline passed first."""
        return self.tracer_provider.force_flush(timeout_millis)

    def shutdown(self) -> None:
        """Flush and stop the pipeline; a second call does nothing."""
        with self._shutdown_once:
            if self._is_shut_down:
                return
            self._is_shut_down = True
        self.tracer_provider.shutdown()


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


def configure(
    *,
    config: WeddingConfig | None = None,
    span_exporter: SpanExporter | None = None,
    clock: Clock | None = None,
    service_name: str | None = None,
    resource: Resource | None = None,
    set_global: bool = True,
) -> WeddingTelemetry:
    """Build the pipeline: `WeddingSpanProcessor` in front of a `BatchSpanProcessor`.

    ``config`` defaults to `load_config()` (the ``WEDSYNC_OTEL_CONFIG`` file and
    ``WEDSYNC_OTEL_*`` variables); the resource honours ``OTEL_SERVICE_NAME``
    and ``OTEL_RESOURCE_ATTRIBUTES``, with ``service_name`` winning. With
    ``set_global`` (the default) the provider becomes the global one, once:
    a second call returns the pipeline already installed.
    """
    global _installed  # noqa: PLW0603 - mirrors the SDK's one global provider
    with _install_lock:
        if set_global and _installed is not None:
            logger.warning("wedsync-otel: configure() called again; keeping the installed pipeline")
            return _installed
        effective = config if config is not None else load_config()
        base = resource if resource is not None else Resource.create()
        if service_name is not None:
            base = base.merge(Resource.create({SERVICE_NAME: service_name}))
        exporter = span_exporter if span_exporter is not None else default_span_exporter()
        processor = WeddingSpanProcessor(
            BatchSpanProcessor(exporter), config=effective, clock=clock
        )
        provider = TracerProvider(resource=base)
        provider.add_span_processor(processor)
        telemetry = WeddingTelemetry(
            tracer_provider=provider, span_processor=processor, config=effective
        )
        if set_global:
            trace.set_tracer_provider(provider)
            _installed = telemetry
        return telemetry
