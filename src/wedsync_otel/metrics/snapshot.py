"""PerformanceSnapshot: typed figures for the CLI, the demo and tests."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field


@dataclass(frozen=True, kw_only=True, slots=True)
class WindowStats:
    """One endpoint's figures over one window (1m, 5m or 1h)."""

    count: int
    error_rate: float
    p50_ms: float
    p90_ms: float
    p95_ms: float
    p99_ms: float
    apdex: float | None
    """None when no Apdex counts arrived for the window (durations from another source)."""
    health: float
    cache_hit_rate: float | None = None
    """Cache hits / (hits + misses); None without cache operations."""
    db_time_share: float | None = None
    """Database time / request time; None when no database time was reported."""


@dataclass(frozen=True, kw_only=True, slots=True)
class EndpointSnapshot:
    """One endpoint: its windows, per-band windows, trend and readiness."""

    name: str
    critical: bool
    threshold_ms: float
    """Base threshold, what health compares p95 against."""
    wedding_day_threshold_ms: float
    windows: Mapping[str, WindowStats]
    """Window name -> figures; a window with no data is absent."""
    bands: Mapping[str, Mapping[str, WindowStats]] = field(default_factory=dict)
    """Proximity band -> window name -> figures, where there is data."""
    trend: str = "stable"
    readiness: str = "ready"
    reasons: list[str] = field(default_factory=list)


@dataclass(frozen=True, kw_only=True, slots=True)
class PerformanceSnapshot:
    """Every endpoint, and the wedding-day verdict for the whole API."""

    taken_at_ns: int
    endpoints: Mapping[str, EndpointSnapshot]
    readiness: str
    """Worst readiness of the critical endpoints."""
    reasons: list[str]
