"""What the telemetry itself dropped or ignored, as observable counters by ``reason``.

Every bounded cache, queue and guard in the package counts what it had to
drop; this module is the one place that reads them all, so a platform
engineer finds them in their metrics backend instead of in ``stats()``
objects. Also keeps every periodic collection non-empty, so the performance
exporter is called (and its gauges exported) even when the application has
no instruments of its own.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Final

from opentelemetry.metrics import CallbackOptions, Observation
from opentelemetry.sdk.metrics import MeterProvider

from wedsync_otel._wedding_marks import marks_evicted
from wedsync_otel.asgi import middleware_stats
from wedsync_otel.context import resolver_stats
from wedsync_otel.db.advisor import AdvisorStats
from wedsync_otel.export_tuning import RetryingSpanExporter
from wedsync_otel.instrumentation import queries
from wedsync_otel.instrumentation.redis_hooks import hook_errors
from wedsync_otel.metrics.recording import WeddingRecorder
from wedsync_otel.processor import WeddingSpanProcessor

DROPPED: Final = "wedsync.telemetry.dropped"
"""Counter of inputs the telemetry could not use, by ``reason``."""
REDACTED: Final = "wedsync.telemetry.redacted"
"""Counter of values the scrubber redacted or rewrote before export, by ``reason``."""

DROP_REASONS: Final = {
    "invalid_date": "spans whose wedding.date would not parse",
    "invalid_wedding_id": "spans whose wedding.id is not a short string or integer",
    "invalid_duration": "request spans without a usable duration (judged frustrated)",
    "invalid_time": "request spans whose start is off the calendar (judged at the current time)",
    "downstream_error": "calls into the downstream span processor that raised",
    "path_cache_eviction": "routes evicted from the processor's route cache",
    "catalogue_eviction": "paths evicted from the endpoint catalogue's cache",
    "statement_cache_eviction": "SQL statements evicted from the fingerprint cache",
    "wedding_mark_eviction": "live spans' wedding marks evicted before the span ended",
    "rollup_timeout": "requests whose cache/DB totals expired before their span ended",
    "rollup_overflow": "requests whose cache/DB totals were evicted from a full store",
    "rollup_late": "cache/DB spans that ended after their request span (not in its roll-up)",
    "rejected_duration": "durations that were NaN, negative or over a day",
    "series_limit": "requests past the recorder's attribute-set limit",
    "resolver_error": "wedding lookups whose resolver raised (cancellations included)",
    "resolver_timeout": "waits for a wedding lookup that ended before the answer",
    "resolver_refused": "wedding lookups refused: too many already running",
    "resolver_not_started": "wedding lookups whose thread could not start",
    "resolver_cache_eviction": "wedding dates evicted from the resolver's cache",
    "forwarded_trust_refused": "trusted-network callers refused: forwarding headers present",
    "query_id_ignored": "query-string wedding ids ignored: the endpoint reads its id from the path",
    "query_truncated": "query strings over 8 KB, of which only the start was read",
    "redis_hook_error": "errors the Redis instrumentation hooks caught",
    "export_retry_dropped": "spans given up after the collector stayed unreachable",
    "advisor_error": "EXPLAINs the query advisor could not run",
    "advisor_dropped": "queries the query advisor had no room to watch",
    "advisor_eviction": "query shapes the query advisor forgot to stay bounded",
}
"""Every ``reason`` of `DROPPED`, with what it counts (the README lists the same)."""


def drop_counts(
    processor: WeddingSpanProcessor,
    recorder: WeddingRecorder,
    exporter: RetryingSpanExporter | None = None,
) -> dict[str, int]:
    """Every drop counter, by reason: read at each collection, so it is always current."""
    stats = processor.stats()
    counts = {
        "invalid_date": stats.invalid_dates,
        "invalid_wedding_id": stats.invalid_wedding_ids,
        "invalid_duration": stats.invalid_durations,
        "invalid_time": stats.invalid_times,
        "downstream_error": stats.downstream_errors,
        "path_cache_eviction": stats.path_cache_evictions,
        "catalogue_eviction": processor.rules.catalogue.evictions,
        "statement_cache_eviction": queries.statement_cache_evictions(),
        "wedding_mark_eviction": marks_evicted(),
        "rollup_timeout": stats.requests_timed_out,
        "rollup_overflow": stats.requests_overflowed,
        "rollup_late": stats.late_child_work,
        "rejected_duration": recorder.rejected_durations,
        "series_limit": recorder.dropped_series,
        "redis_hook_error": hook_errors(),
        "export_retry_dropped": 0 if exporter is None else exporter.stats().dropped_spans,
    }
    middleware = middleware_stats()
    counts["forwarded_trust_refused"] = middleware.forwarded_refusals
    counts["query_id_ignored"] = middleware.query_ids_ignored
    counts["query_truncated"] = middleware.truncated_queries
    resolver = resolver_stats()
    counts["resolver_error"] = 0 if resolver is None else resolver.errors
    counts["resolver_timeout"] = 0 if resolver is None else resolver.timeouts
    counts["resolver_refused"] = 0 if resolver is None else resolver.refusals
    counts["resolver_not_started"] = 0 if resolver is None else resolver.start_failures
    counts["resolver_cache_eviction"] = 0 if resolver is None else resolver.evictions
    counts["advisor_error"], counts["advisor_dropped"], counts["advisor_eviction"] = (
        _advisor_counts(processor)
    )
    return counts


def _advisor_counts(processor: WeddingSpanProcessor) -> tuple[int, int, int]:
    """Errors, drops and evictions of the query advisors observing ``processor``, added up."""
    errors = dropped = evicted = 0
    for observer in processor.query_observers:
        found = getattr(observer, "stats", None)  # QueryAdvisor.stats is a property
        if isinstance(found, AdvisorStats):
            errors += found.errors
            dropped += found.dropped
            evicted += found.evicted
    return errors, dropped, evicted


def register_self_metrics(
    meter_provider: MeterProvider,
    processor: WeddingSpanProcessor,
    recorder: WeddingRecorder,
    *,
    exporter: RetryingSpanExporter | None = None,
) -> None:
    """Register the ``wedsync.telemetry.dropped`` and ``.redacted`` counters."""

    def observe(options: CallbackOptions) -> Iterable[Observation]:
        for reason, value in drop_counts(processor, recorder, exporter).items():
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
