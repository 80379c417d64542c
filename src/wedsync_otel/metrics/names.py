"""Metric names, units and the attributes only metrics use: the metric side of the contract."""

from __future__ import annotations

from typing import Final

SERVER_DURATION: Final = "wedding.server.duration"
APDEX_REQUESTS: Final = "wedding.apdex.requests"
THRESHOLD_BREACHES: Final = "wedding.threshold.breaches"
CACHE_REQUESTS: Final = "wedding.cache.requests"
DB_DURATION: Final = "wedding.db.duration"

LATENCY_P50: Final = "wedding.latency.p50"
LATENCY_P90: Final = "wedding.latency.p90"
LATENCY_P95: Final = "wedding.latency.p95"
LATENCY_P99: Final = "wedding.latency.p99"
HEALTH_SCORE: Final = "wedding.health.score"
APDEX_SCORE: Final = "wedding.apdex.score"
TREND: Final = "wedding.trend"
CACHE_HIT_RATE: Final = "wedding.cache.hit_rate"
DB_TIME_SHARE: Final = "wedding.db.time_share"
READINESS: Final = "wedding.readiness"

STATUS_CLASS: Final = "http.response.status_class"
"""``2xx``..``5xx`` on ``wedding.server.duration``."""
WINDOW: Final = "wedding.window"
CACHE_RESULT: Final = "cache.result"
"""``hit`` or ``miss`` on ``wedding.cache.requests``."""
"""``1m``, ``5m`` or ``1h`` on the derived gauges."""

UNITS: Final = {
    LATENCY_P50: "ms",
    LATENCY_P90: "ms",
    LATENCY_P95: "ms",
    LATENCY_P99: "ms",
    HEALTH_SCORE: "1",
    APDEX_SCORE: "1",
    TREND: "1",
    READINESS: "1",
    CACHE_HIT_RATE: "1",
    DB_TIME_SHARE: "1",
}
DESCRIPTIONS: Final = {
    LATENCY_P50: "Median latency over the window, from merged exponential buckets",
    LATENCY_P90: "90th percentile latency over the window",
    LATENCY_P95: "95th percentile latency over the window",
    LATENCY_P99: "99th percentile latency over the window",
    HEALTH_SCORE: "0-100: 100 * Apdex * (1 - error rate) * latency factor(p95 / threshold)",
    APDEX_SCORE: "Apdex 0-1: (satisfied + tolerating / 2) / total",
    TREND: "1 improving, 0 stable, -1 degrading (p95 of 5 min against the hour before)",
    READINESS: "Wedding-day readiness: 1 ready, 0 at risk, -1 not ready",
    CACHE_HIT_RATE: "Cache hits / (hits + misses) of the endpoint's requests over the window",
    DB_TIME_SHARE: "Database time / request time of the endpoint over the window",
}
