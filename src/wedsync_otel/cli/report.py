"""What the CLI reports: performance figures from enriched spans, and the effective catalogue.

Figures are computed one way everywhere: spans are fed into the same
`WindowStore` and `PerformanceModel` the metrics exporter uses, at their own
end times, and the snapshot is taken at the newest span's end, so a file from
last week reports the hour it covers. Spans rather than the file's metrics:
they carry the breach flag and each request's cache and database totals, and
their end times place every request in its window exactly, where metrics
arrive as cumulative totals once an export interval.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final

from opentelemetry.trace import StatusCode

from wedsync_otel import attributes as attr
from wedsync_otel.calendar import Band
from wedsync_otel.catalogue import OTHER, EndpointSpec
from wedsync_otel.config import WeddingConfig
from wedsync_otel.exporters.otlp_json import SpanRecord
from wedsync_otel.metrics.buckets import ExponentialBuckets
from wedsync_otel.metrics.performance import PerformanceModel
from wedsync_otel.metrics.recording import MAX_DURATION_MS
from wedsync_otel.metrics.snapshot import PerformanceSnapshot, WindowStats
from wedsync_otel.metrics.windows import WINDOWS, WindowStore
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

_NS_PER_S: Final = 1_000_000_000
_STATUS_KEYS: Final = ("http.response.status_code", "http.status_code")


# --- performance ---------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True, slots=True)
class PerformanceReport:
    """A snapshot taken at the newest span's end, with the breaches it does not carry."""

    snapshot: PerformanceSnapshot
    """Endpoints in catalogue order, then the others by name."""
    breaches: Mapping[str, int]
    """Requests over their threshold per endpoint, in the report's window."""
    window: str
    spans: int
    """Spans read."""
    requests: int
    """Enriched spans with a usable duration: what the figures count."""


@dataclass
class _Slot:
    """Requests of one endpoint, band and error status that ended in one fine slot."""

    durations: ExponentialBuckets = field(default_factory=ExponentialBuckets)
    apdex: dict[str, int] = field(default_factory=dict)
    cache_hits: int = 0
    cache_misses: int = 0
    db_ms: float = 0.0


def _number(value: object) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


def _status(value: object) -> float | None:
    """An HTTP status; old instrumentations may write it as a string."""
    if isinstance(value, str) and value.isdigit() and len(value) == 3:
        return float(value)
    return _number(value)


def _is_error(span: SpanRecord) -> bool:
    """A 5xx, or a failed span without a status code: what the recorder counts as ``5xx``."""
    for key in _STATUS_KEYS:
        status = _status(span.attributes.get(key))
        if status is not None:
            return 500 <= status <= 599
    return span.status_code is StatusCode.ERROR


def performance_report(
    spans: Iterable[SpanRecord], config: WeddingConfig, *, window: str = REPORT_WINDOW
) -> PerformanceReport | None:
    """Figures from enriched spans as of the newest one's end; None when none is enriched.

    Spans are pre-aggregated per fine slot (every request of a slot lands in
    the same slot of both rings), then added to a `WindowStore`.
    """
    store = WindowStore()
    slot_ns = math.gcd(store.fine.slot_s, store.coarse.slot_s) * _NS_PER_S
    slots: dict[tuple[int, str, str, bool], _Slot] = {}
    breached_at: list[tuple[int, str]] = []
    newest_ns = 0
    count = requests = 0
    for span in spans:
        count += 1
        endpoint = span.attributes.get(attr.WEDDING_ENDPOINT)
        duration_ms = _number(span.attributes.get(attr.WEDDING_DURATION_MS))
        if not isinstance(endpoint, str) or duration_ms is None:
            continue
        if not 0.0 <= duration_ms <= MAX_DURATION_MS:  # the recorder rejects these too
            continue
        requests += 1
        newest_ns = max(newest_ns, span.end_ns)
        band = span.attributes.get(attr.WEDDING_PROXIMITY)
        key = (span.end_ns // slot_ns, endpoint, str(band or Band.UNKNOWN), _is_error(span))
        slot = slots.get(key)
        if slot is None:
            slot = slots[key] = _Slot()
        slot.durations.record(duration_ms)
        apdex = str(span.attributes.get(attr.WEDDING_APDEX, "frustrated"))
        slot.apdex[apdex] = slot.apdex.get(apdex, 0) + 1
        slot.cache_hits += int(_number(span.attributes.get(attr.ROLLUP_CACHE_HITS)) or 0)
        slot.cache_misses += int(_number(span.attributes.get(attr.ROLLUP_CACHE_MISSES)) or 0)
        slot.db_ms += _number(span.attributes.get(attr.ROLLUP_DB_DURATION_MS)) or 0.0
        if span.attributes.get(attr.WEDDING_THRESHOLD_BREACHED) is True:
            breached_at.append((span.end_ns, endpoint))
    if not requests:
        return None
    for (index, endpoint, band, error), slot in slots.items():
        time_ns, series = index * slot_ns, (endpoint, band)
        store.add_durations(time_ns, series, slot.durations, error=error)
        for apdex, apdex_count in slot.apdex.items():
            store.add_apdex(time_ns, endpoint, band, apdex, apdex_count)
        if slot.cache_hits or slot.cache_misses:
            store.add_cache(time_ns, series, hits=slot.cache_hits, misses=slot.cache_misses)
        store.add_db_ms(time_ns, series, slot.db_ms)
    snapshot = PerformanceModel(config).snapshot(store, newest_ns)
    breaches: dict[str, int] = {}
    for end_ns, endpoint in breached_at:
        if _in_window(store, end_ns, newest_ns, window):
            breaches[endpoint] = breaches.get(endpoint, 0) + 1
    return PerformanceReport(
        snapshot=in_catalogue_order(snapshot, config),
        breaches=breaches,
        window=window,
        spans=count,
        requests=requests,
    )


def _in_window(store: WindowStore, time_ns: int, now_ns: int, window: str) -> bool:
    """Whether ``time_ns`` falls in the slots `WindowStore.window` merges for ``window``."""
    window_s = WINDOWS[window]
    ring = (
        store.fine if window_s <= store.fine.slot_s * (store.fine.max_slots - 1) else store.coarse
    )
    ring_slot_ns = ring.slot_s * _NS_PER_S
    oldest = (now_ns - window_s * _NS_PER_S) // ring_slot_ns
    return oldest < time_ns // ring_slot_ns <= now_ns // ring_slot_ns


def in_catalogue_order(snapshot: PerformanceSnapshot, config: WeddingConfig) -> PerformanceSnapshot:
    """The snapshot with endpoints in catalogue order, then the others by name, ``other`` last."""
    catalogue = [spec.name for spec in config.endpoints if spec.name in snapshot.endpoints]
    rest = sorted(set(snapshot.endpoints) - set(catalogue), key=lambda name: (name == OTHER, name))
    ordered = {name: snapshot.endpoints[name] for name in (*catalogue, *rest)}
    reasons = [reason for snap in ordered.values() if snap.critical for reason in snap.reasons]
    return dataclasses.replace(snapshot, endpoints=ordered, reasons=reasons)


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
    """The report as JSON-ready data: endpoints -> figures, readiness and reasons."""
    snapshot = report.snapshot
    endpoints = {
        name: {
            "critical": endpoint.critical,
            "threshold_ms": endpoint.threshold_ms,
            "wedding_day_threshold_ms": endpoint.wedding_day_threshold_ms,
            **_window_json(endpoint.windows.get(report.window)),
            "breaches": report.breaches.get(name, 0),
            "trend": endpoint.trend,
            "readiness": endpoint.readiness if endpoint.critical else None,
            "reasons": list(endpoint.reasons),
        }
        for name, endpoint in snapshot.endpoints.items()
    }
    return {
        "window": report.window,
        "window_end": iso_time(snapshot.taken_at_ns),
        "window_end_unix_nano": snapshot.taken_at_ns,
        "spans": report.spans,
        "requests": report.requests,
        "endpoints": endpoints,
        "readiness": snapshot.readiness,
        "reasons": list(snapshot.reasons),
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
