"""What the CLI reports: performance figures from enriched spans, and the effective catalogue.

Figures are computed one way everywhere: spans are fed into the same
`WindowStore` and `PerformanceModel` the metrics exporter uses, at their own
end times, and the snapshot is taken at the newest span's end, so a file from
last week reports the hour it covers. Spans rather than the file's metrics:
they carry the breach flag and each request's cache and database totals, and
their end times place every request in its window exactly, where metrics
arrive as cumulative totals once an export interval.

Who judges: without a catalogue, the spans themselves. The processor wrote
its verdict on each (``wedding.endpoint``, ``wedding.threshold_ms``,
``wedding.critical``, ``wedding.proximity``, ``wedding.apdex``), so the
endpoints are the ones found, each judged by the thresholds its spans carried
(see `wedsync_otel.cli.aggregate.EndpointJudgement`). With a catalogue
(``report --config``), thresholds and critical flags are the catalogue's, and
its critical endpoints are judged even without traffic.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Final

from wedsync_otel.calendar import Band
from wedsync_otel.catalogue import OTHER, EndpointSpec
from wedsync_otel.cli.aggregate import (
    MAX_ENDPOINTS,
    MAX_THRESHOLDS,
    EndpointJudgement,
    SpanAggregator,
    SpanJudgedModel,
)
from wedsync_otel.config import WeddingConfig
from wedsync_otel.exporters.records import SpanRecord
from wedsync_otel.metrics.performance import PerformanceModel
from wedsync_otel.metrics.snapshot import PerformanceSnapshot, WindowStats
from wedsync_otel.render import in_catalogue_order
from wedsync_otel.rules import threshold_ms

REPORT_WINDOW: Final = "1h"
"""The window a report shows by default: readiness is judged on the last hour."""
BAND_ORDER: Final = (
    Band.PLANNING,
    Band.FINAL_MONTH,
    Band.FINAL_WEEK,
    Band.WEDDING_DAY,
    Band.PAST,
    Band.UNKNOWN,
)
"""Bands from the furthest wedding to the nearest, then the two without one."""
JUDGED_BY_SPANS: Final = "spans"
"""The spans' own ``wedding.*`` attributes judged: no catalogue was given."""
JUDGED_BY_CATALOGUE: Final = "catalogue"
"""A catalogue (``--config``) judged."""

_NS_PER_S: Final = 1_000_000_000


# --- performance ---------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True, slots=True)
class PerformanceReport:
    """A snapshot taken at the newest span's end, with the breaches it does not carry."""

    snapshot: PerformanceSnapshot
    """Endpoints in catalogue order (by name without one), then ``other``."""
    breaches: Mapping[str, int]
    """Requests over their threshold per endpoint, in the report's window."""
    window: str
    spans: int
    """Spans read."""
    requests: int
    """Enriched spans with a usable duration: what the figures count."""
    judged_by: str = JUDGED_BY_SPANS
    """`JUDGED_BY_SPANS` or `JUDGED_BY_CATALOGUE`."""
    judgements: Mapping[str, EndpointJudgement] = dataclasses.field(default_factory=dict)
    """Endpoint -> how its spans were judged; empty when a catalogue judged."""
    unenriched: int = 0
    """Request spans without ``wedding.*`` attributes: left out."""
    notes: tuple[str, ...] = ()
    """What a reader should know about the figures: spans left out, thresholds assumed."""


def performance_report(
    spans: Iterable[SpanRecord],
    config: WeddingConfig | None = None,
    *,
    window: str = REPORT_WINDOW,
) -> PerformanceReport | None:
    """Figures from enriched spans as of the newest one's end; None when none is enriched.

    ``config``: the catalogue to judge by; None judges by the spans' own attributes.
    """
    aggregator = SpanAggregator()
    for span in spans:
        aggregator.add(span)
    return aggregated_report(aggregator, config, window=window)


def aggregated_report(
    aggregator: SpanAggregator, config: WeddingConfig | None, *, window: str = REPORT_WINDOW
) -> PerformanceReport | None:
    """The report of the spans an aggregator took; None when none was an enriched request."""
    aggregator.flush()
    tally = aggregator.tally()
    if not tally.requests:
        return None
    now_ns = tally.newest_ns
    judgements: dict[str, EndpointJudgement] = {}
    model: PerformanceModel
    if config is None:
        base = WeddingConfig.default().replace(endpoints=())
        judgements = aggregator.judgements(now_ns, default_threshold_ms=base.default_threshold_ms)
        model, ordering = SpanJudgedModel(judgements, base), base
    else:
        model, ordering = PerformanceModel(config), config
    snapshot = in_catalogue_order(model.snapshot(aggregator.store, now_ns), ordering)
    notes = _tally_notes(aggregator)
    if config is None:
        notes += _judgement_notes(snapshot, judgements)
    return PerformanceReport(
        snapshot=snapshot,
        breaches=aggregator.breaches(now_ns, window),
        window=window,
        spans=tally.spans,
        requests=tally.requests,
        judged_by=JUDGED_BY_SPANS if config is None else JUDGED_BY_CATALOGUE,
        judgements={name: judgements[name] for name in snapshot.endpoints if name in judgements},
        unenriched=tally.unenriched,
        notes=notes,
    )


def _tally_notes(aggregator: SpanAggregator) -> tuple[str, ...]:
    tally = aggregator.tally()
    notes = []
    if tally.unenriched:
        notes.append(
            f"{tally.unenriched} request spans (SERVER or root) carry no wedding.* attributes "
            "and are left out: were they exported behind WeddingSpanProcessor?"
        )
    if tally.unusable:
        notes.append(
            f"{tally.unusable} enriched spans have no usable wedding.duration_ms and are left out"
        )
    if tally.overflow:
        notes.append(
            f"{tally.overflow} requests of endpoints beyond the first {MAX_ENDPOINTS} names "
            "are left out"
        )
    if tally.without_threshold:
        notes.append(f"{tally.without_threshold} requests carry no wedding.threshold_ms")
    if tally.thresholds_dropped:
        notes.append(
            f"{tally.thresholds_dropped} requests' thresholds were not kept (more than "
            f"{MAX_THRESHOLDS} distinct values in one 10 s slot of one endpoint and band)"
        )
    return tuple(notes)


def _judgement_notes(
    snapshot: PerformanceSnapshot, judgements: Mapping[str, EndpointJudgement]
) -> tuple[str, ...]:
    notes = []
    defaulted, tightest = [], []
    for name in snapshot.endpoints:
        judged = judgements.get(name)
        if judged is None:
            continue
        if not judged.from_spans:
            defaulted.append(f"{name} ({judged.threshold_ms:g} ms)")
        elif judged.critical and not judged.wedding_day_traffic:
            tightest.append(f"{name} ({judged.wedding_day_threshold_ms:g} ms)")
    if tightest:
        notes.append(
            f"no wedding-day traffic in the hour for {', '.join(tightest)}: readiness is judged "
            "against the tightest threshold their spans carried (--config FILE judges by a "
            "catalogue's wedding-day thresholds)"
        )
    if defaulted:
        notes.append(
            f"no wedding.threshold_ms on the spans of {', '.join(defaulted)}: "
            "judged against the default threshold"
        )
    return tuple(notes)


def _window_json(stats: WindowStats | None) -> dict[str, Any]:
    if stats is None:
        return {"requests": 0}
    return {
        "requests": stats.count,
        "p50_ms": stats.p50_ms,
        "p90_ms": stats.p90_ms,
        "p95_ms": stats.p95_ms,
        "p99_ms": stats.p99_ms,
        "error_rate": stats.error_rate,
        "apdex": stats.apdex,
        "health": stats.health,
        "cache_hit_rate": stats.cache_hit_rate,
        "db_time_share": stats.db_time_share,
    }


def report_json(report: PerformanceReport) -> dict[str, Any]:
    """The report as JSON-ready data: endpoints -> figures, readiness and reasons.

    Judged by the spans, each endpoint also says how many of its spans in the
    hour were wedding-day traffic (``wedding_day_traffic``): with none, its
    ``wedding_day_threshold_ms`` is the tightest threshold its spans carried.
    """
    snapshot = report.snapshot
    endpoints: dict[str, dict[str, Any]] = {}
    for name, endpoint in snapshot.endpoints.items():
        figures: dict[str, Any] = {
            "critical": endpoint.critical,
            "threshold_ms": endpoint.threshold_ms,
            "wedding_day_threshold_ms": endpoint.wedding_day_threshold_ms,
            **_window_json(endpoint.windows.get(report.window)),
            "breaches": report.breaches.get(name, 0),
            "trend": endpoint.trend,
            "readiness": endpoint.readiness if endpoint.critical else None,
            "reasons": list(endpoint.reasons),
        }
        judged = report.judgements.get(name)
        if judged is not None:
            figures["wedding_day_traffic"] = judged.wedding_day_traffic
            figures["thresholds_ms_by_band"] = dict(judged.band_thresholds_ms)
        endpoints[name] = figures
    return {
        "window": report.window,
        "window_end": iso_time(snapshot.taken_at_ns),
        "window_end_unix_nano": snapshot.taken_at_ns,
        "judged_by": report.judged_by,
        "spans": report.spans,
        "requests": report.requests,
        "unenriched_request_spans": report.unenriched,
        "endpoints": endpoints,
        "readiness": snapshot.readiness,
        "reasons": list(snapshot.reasons),
        "notes": list(report.notes),
    }


def iso_time(time_ns: int) -> str:
    """An instant in UTC, to the second: ``2026-06-16T10:01:54Z``."""
    instant = dt.datetime.fromtimestamp(time_ns / _NS_PER_S, tz=dt.UTC)
    return instant.isoformat(timespec="seconds").replace("+00:00", "Z")


# --- the effective catalogue ---------------------------------------------------------------


@dataclass(frozen=True, kw_only=True, slots=True)
class EndpointThresholds:
    """One endpoint of the effective catalogue with its threshold per band and kind of day."""

    name: str
    patterns: tuple[str, ...]
    critical: bool
    base_ms: float
    weekday: Mapping[str, float]
    """Band -> threshold on a weekday."""
    saturday: Mapping[str, float]
    """Band -> threshold on a Saturday (tighter for critical endpoints in Saturday mode)."""


def catalogue_thresholds(config: WeddingConfig) -> list[EndpointThresholds]:
    """Every catalogue endpoint, then ``other``, with the thresholds the processor applies."""
    other = EndpointSpec(name=OTHER, patterns=(), threshold_ms=config.default_threshold_ms)
    specs = (*config.endpoints, other)
    return [
        EndpointThresholds(
            name=spec.name,
            patterns=spec.patterns,
            critical=spec.critical,
            base_ms=spec.threshold_ms,
            weekday={
                band.value: threshold_ms(
                    spec.threshold_ms, band, config, critical=spec.critical, saturday=False
                )
                for band in BAND_ORDER
            },
            saturday={
                band.value: threshold_ms(
                    spec.threshold_ms, band, config, critical=spec.critical, saturday=True
                )
                for band in BAND_ORDER
            },
        )
        for spec in specs
    ]


def calendar_settings(config: WeddingConfig) -> dict[str, Any]:
    """The settings that decide bands, Saturdays and caps."""
    return {
        "timezone": config.timezone,
        "saturday_mode": config.saturday_mode,
        "season_months": sorted(config.season_months),
        "default_threshold_ms": config.default_threshold_ms,
        "critical_wedding_day_cap_ms": config.critical_wedding_day_cap_ms,
        "bands": {band.value: config.bands.for_band(band) for band in BAND_ORDER},
    }


def config_json(config: WeddingConfig) -> dict[str, Any]:
    """The effective catalogue and calendar as JSON-ready data."""
    return {
        "endpoints": {
            entry.name: {
                "patterns": list(entry.patterns),
                "critical": entry.critical,
                "threshold_ms": entry.base_ms,
                "thresholds_ms": {"weekday": dict(entry.weekday), "saturday": dict(entry.saturday)},
            }
            for entry in catalogue_thresholds(config)
        },
        "calendar": calendar_settings(config),
    }
