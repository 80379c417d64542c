"""What the telemetry itself dropped or ignored, as an observable counter.

Also keeps every periodic collection non-empty, so the performance
exporter is called (and its gauges exported) even when the application
has no instruments of its own.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Final

from opentelemetry.metrics import CallbackOptions, Observation
from opentelemetry.sdk.metrics import MeterProvider

from wedsync_otel.metrics.recording import WeddingRecorder
from wedsync_otel.processor import WeddingSpanProcessor

DROPPED: Final = "wedsync.telemetry.dropped"
"""Counter of inputs the telemetry could not use, by ``reason``."""
REDACTED: Final = "wedsync.telemetry.redacted"
"""Counter of values the scrubber redacted or rewrote before export, by ``reason``."""


def register_self_metrics(
    meter_provider: MeterProvider, processor: WeddingSpanProcessor, recorder: WeddingRecorder
) -> None:
    """Register the ``wedsync.telemetry.dropped`` and ``.redacted`` counters."""

    def observe(options: CallbackOptions) -> Iterable[Observation]:
        stats = processor.stats()
        for reason, value in (
            ("invalid_date", stats.invalid_dates),
            ("invalid_duration", stats.invalid_durations),
            ("path_cache_eviction", stats.path_cache_evictions),
            ("downstream_error", stats.downstream_errors),
            ("rejected_duration", recorder.rejected_durations),
            ("series_limit", recorder.dropped_series),
        ):
            yield Observation(value, {"reason": reason})

    def observe_redactions(options: CallbackOptions) -> Iterable[Observation]:
        for reason, value in sorted(processor.scrubber.counts().items()):
            yield Observation(value, {"reason": reason})

    meter = meter_provider.get_meter("wedsync_otel")
    meter.create_observable_counter(
        DROPPED,
        callbacks=[observe],
        unit="{item}",
        description="Inputs wedsync-otel dropped or ignored, by reason",
    )
    meter.create_observable_counter(
        REDACTED,
        callbacks=[observe_redactions],
        unit="{value}",
        description="Values wedsync-otel redacted or rewrote before export, by reason",
    )
