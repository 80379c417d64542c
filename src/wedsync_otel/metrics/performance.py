"""From window totals to a `PerformanceSnapshot`: quantiles, Apdex, health, trend, readiness."""

from __future__ import annotations

from collections.abc import Mapping

from wedsync_otel.calendar import Band
from wedsync_otel.catalogue import EndpointSpec
from wedsync_otel.config import WeddingConfig
from wedsync_otel.metrics import scoring
from wedsync_otel.metrics.snapshot import EndpointSnapshot, PerformanceSnapshot, WindowStats
from wedsync_otel.metrics.windows import WINDOWS, Merged, StatsKey, WindowStore
from wedsync_otel.rules import WeddingRules, threshold_ms

TREND_RECENT_WINDOW = "5m"


def window_stats(merged: Merged, threshold: float) -> WindowStats | None:
    """Figures of one window; ``None`` when it holds no request."""
    buckets = merged.durations
    if buckets is None or buckets.count == 0:
        return None
    quantiles = [buckets.quantile(q) for q in (0.5, 0.9, 0.95, 0.99)]
    p50, p90, p95, p99 = (value if value is not None else 0.0 for value in quantiles)
    error_rate = merged.errors / buckets.count
    apdex = scoring.apdex_score(merged.satisfied, merged.tolerating, merged.frustrated)
    health = scoring.health_score(
        apdex=1.0 if apdex is None else apdex,
        error_rate=error_rate,
        p95_ms=p95,
        threshold_ms=threshold,
    )
    cache_ops = merged.cache_hits + merged.cache_misses
    return WindowStats(
        cache_hit_rate=merged.cache_hits / cache_ops if cache_ops else None,
        db_time_share=_db_time_share(merged, buckets.sum, buckets.count),
        count=buckets.count,
        error_rate=error_rate,
        p50_ms=p50,
        p90_ms=p90,
        p95_ms=p95,
        p99_ms=p99,
        apdex=apdex,
        health=health,
    )


def _by_endpoint(per_band: Mapping[StatsKey, Merged]) -> dict[str, Merged]:
    totals: dict[str, Merged] = {}
    for (endpoint, _band), merged in per_band.items():
        totals.setdefault(endpoint, Merged()).merge(merged)
    return totals


class PerformanceModel:
    """Knows the catalogue; turns a `WindowStore` into a snapshot."""

    def __init__(self, config: WeddingConfig) -> None:
        self.config = config
        self.rules = WeddingRules(config)
        self._specs = {spec.name: spec for spec in (*config.endpoints, self.rules.other)}

    def spec(self, name: str) -> EndpointSpec:
        """The catalogue entry of an endpoint name; unknown names get the default threshold."""
        return self._specs.get(name) or EndpointSpec(
            name=name, patterns=(), threshold_ms=self.config.default_threshold_ms
        )

    def wedding_day_threshold_ms(self, spec: EndpointSpec) -> float:
        """The threshold a request to ``spec`` gets on a wedding day."""
        return threshold_ms(
            spec.threshold_ms, Band.WEDDING_DAY, self.config, critical=spec.critical, saturday=True
        )

    def band_threshold_ms(self, spec: EndpointSpec, band: str) -> float:
        """The weekday threshold of one band (what per-band health compares against)."""
        known = band if band in Band.__members__.values() else Band.UNKNOWN.value
        return threshold_ms(
            spec.threshold_ms, Band(known), self.config, critical=spec.critical, saturday=False
        )

    def snapshot(self, store: WindowStore, now_ns: int) -> PerformanceSnapshot:
        """Every endpoint's figures now; critical endpoints appear even without data."""
        per_window = {name: store.window(now_ns, name) for name in WINDOWS}
        endpoint_windows = {name: _by_endpoint(data) for name, data in per_window.items()}
        baseline = _by_endpoint(store.baseline(now_ns))
        names = {name for totals in endpoint_windows.values() for name in totals}
        names.update(spec.name for spec in self.config.endpoints if spec.critical)
        endpoints = {
            name: self._endpoint(name, per_window, endpoint_windows, baseline)
            for name in sorted(names)
        }
        critical = [snap for snap in endpoints.values() if snap.critical]
        verdict = scoring.worst(scoring.Readiness(snap.readiness) for snap in critical)
        reasons = [reason for snap in critical for reason in snap.reasons]
        return PerformanceSnapshot(
            taken_at_ns=now_ns, endpoints=endpoints, readiness=verdict.value, reasons=reasons
        )

    def _endpoint(
        self,
        name: str,
        per_window: Mapping[str, Mapping[StatsKey, Merged]],
        endpoint_windows: Mapping[str, Mapping[str, Merged]],
        baseline: Mapping[str, Merged],
    ) -> EndpointSnapshot:
        spec = self.spec(name)
        windows: dict[str, WindowStats] = {}
        for window, totals in endpoint_windows.items():
            merged = totals.get(name)
            stats = None if merged is None else window_stats(merged, spec.threshold_ms)
            if stats is not None:
                windows[window] = stats
        bands: dict[str, dict[str, WindowStats]] = {}
        for window, data in per_window.items():
            for (endpoint, band), merged in data.items():
                if endpoint != name:
                    continue
                stats = window_stats(merged, self.band_threshold_ms(spec, band))
                if stats is not None:
                    bands.setdefault(band, {})[window] = stats
        recent = windows.get(TREND_RECENT_WINDOW)
        before = baseline.get(name)
        before_p95 = (
            None if before is None or before.durations is None else before.durations.quantile(0.95)
        )
        trend = scoring.trend(
            None if recent is None else recent.p95_ms,
            before_p95,
            recent_count=0 if recent is None else recent.count,
            baseline_count=0 if before is None else before.count,
        )
        wedding_day = self.wedding_day_threshold_ms(spec)
        readiness, reasons = scoring.Readiness.READY, list[str]()
        if spec.critical:
            hour = windows.get("1h")
            readiness, reasons = scoring.readiness(
                name,
                p95_ms=None if hour is None else hour.p95_ms,
                error_rate=None if hour is None else hour.error_rate,
                count=0 if hour is None else hour.count,
                wedding_day_threshold_ms=wedding_day,
            )
        return EndpointSnapshot(
            name=name,
            critical=spec.critical,
            threshold_ms=spec.threshold_ms,
            wedding_day_threshold_ms=wedding_day,
            windows=windows,
            bands=bands,
            trend=trend.value,
            readiness=readiness.value,
            reasons=reasons,
        )


def _db_time_share(merged: Merged, request_ms: float, requests: int) -> float | None:
    """Mean database time per request over mean request time, clamped to 1.

    Database time is measured on sampled requests only (their cache and database
    spans are the only ones recorded), request time on every request: the means
    per request compare like with like. A source that does not count its
    database requests measured them all.
    """
    if request_ms <= 0 or requests <= 0:
        return None
    if merged.db_requests <= 0:
        return min(1.0, merged.db_ms / request_ms)
    return min(1.0, (merged.db_ms / merged.db_requests) / (request_ms / requests))
