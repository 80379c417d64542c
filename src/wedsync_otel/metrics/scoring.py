"""Health, trend and readiness: the documented formulas, as pure functions.

No OpenTelemetry import; every formula here is quoted in the README with a
worked example, and tested for its bounds and monotonicity.
"""

from __future__ import annotations

import enum
import math
from collections.abc import Iterable
from typing import Final

LATENCY_FALLOFF: Final = 3.0
"""p95 at ``(1 + LATENCY_FALLOFF) * T`` (the Apdex frustration point, 4T) takes health to 0."""
TREND_NOISE_BAND: Final = 0.20
"""p95 within +-20% of the baseline is noise: stable."""
TREND_MIN_REQUESTS: Final = 20
"""Fewer requests than this in either window: not enough to call a trend."""
READINESS_MIN_REQUESTS: Final = 100
"""A critical endpoint needs this many requests in the last hour to be judged ready."""
READINESS_MAX_ERROR_RATE: Final = 0.001
"""Error rate must stay under 0.1%."""
READINESS_MARGIN: Final = 0.8
"""p95 above 80% of the wedding-day threshold is at risk: no headroom for a peak."""


class Trend(enum.StrEnum):
    """Direction of an endpoint's p95."""

    IMPROVING = "improving"
    STABLE = "stable"
    DEGRADING = "degrading"

    @property
    def gauge(self) -> int:
        """Value of the ``wedding.trend`` gauge: 1 improving, 0 stable, -1 degrading."""
        return {"improving": 1, "stable": 0, "degrading": -1}[self.value]


class Readiness(enum.StrEnum):
    """Wedding-day readiness verdict."""

    READY = "ready"
    AT_RISK = "at_risk"
    NOT_READY = "not_ready"

    @property
    def gauge(self) -> int:
        """Value of the ``wedding.readiness`` gauge: 1 ready, 0 at risk, -1 not ready."""
        return {"ready": 1, "at_risk": 0, "not_ready": -1}[self.value]


def apdex_score(satisfied: int, tolerating: int, frustrated: int) -> float | None:
    """Apdex = (satisfied + tolerating / 2) / total; ``None`` without requests."""
    total = satisfied + tolerating + frustrated
    if total <= 0:
        return None
    return (satisfied + tolerating / 2) / total


def latency_factor(p95_ms: float, threshold_ms: float) -> float:
    """1 while p95 <= T, falling linearly to 0 at 4T."""
    if not p95_ms > threshold_ms:  # also NaN-safe: an unknown p95 does not penalise
        return 1.0
    return max(0.0, 1.0 - (p95_ms / threshold_ms - 1.0) / LATENCY_FALLOFF)


def health_score(*, apdex: float, error_rate: float, p95_ms: float, threshold_ms: float) -> float:
    """Health 0-100 = 100 * Apdex * (1 - error rate) * latency factor(p95, T).

    Each factor lies in [0, 1] and none grows when requests get slower or
    fail more often, so health is bounded and monotonic; it is 100 exactly
    when every request is satisfied and none errs.
    """
    apdex = min(1.0, max(0.0, apdex))
    errors = min(1.0, max(0.0, error_rate))
    score = 100.0 * apdex * (1.0 - errors) * latency_factor(p95_ms, threshold_ms)
    return 0.0 if math.isnan(score) else score


def trend(
    recent_p95_ms: float | None,
    baseline_p95_ms: float | None,
    *,
    recent_count: int,
    baseline_count: int,
) -> Trend:
    """Latest window's p95 against the preceding windows', with a noise band.

    Degrading when the recent p95 is more than 20% above the baseline,
    improving when more than 20% below, stable otherwise or when either
    side has too few requests to say.
    """
    if (
        recent_p95_ms is None
        or baseline_p95_ms is None
        or min(recent_count, baseline_count) < TREND_MIN_REQUESTS
        or baseline_p95_ms <= 0
    ):
        return Trend.STABLE
    ratio = recent_p95_ms / baseline_p95_ms
    if ratio > 1 + TREND_NOISE_BAND:
        return Trend.DEGRADING
    if ratio < 1 / (1 + TREND_NOISE_BAND):
        return Trend.IMPROVING
    return Trend.STABLE


def readiness(
    endpoint: str,
    *,
    p95_ms: float | None,
    error_rate: float | None,
    count: int,
    wedding_day_threshold_ms: float,
) -> tuple[Readiness, list[str]]:
    """Readiness of one critical endpoint for wedding-day traffic, judged on the last hour.

    Not ready: p95 over the wedding-day threshold, or error rate at or over
    0.1%. At risk: fewer than 100 requests to judge, or p95 above 80% of the
    threshold. Ready otherwise.
    """
    if count < READINESS_MIN_REQUESTS or p95_ms is None or error_rate is None:
        return Readiness.AT_RISK, [
            f"{endpoint}: only {count} requests in the last hour "
            f"(need {READINESS_MIN_REQUESTS} to judge)"
        ]
    reasons: list[str] = []
    if p95_ms > wedding_day_threshold_ms:
        reasons.append(
            f"{endpoint}: p95 {p95_ms:.1f} ms over the wedding-day threshold "
            f"{wedding_day_threshold_ms:.0f} ms"
        )
    if error_rate >= READINESS_MAX_ERROR_RATE:
        reasons.append(f"{endpoint}: error rate {error_rate:.2%} (limit 0.1%)")
    if reasons:
        return Readiness.NOT_READY, reasons
    if p95_ms > READINESS_MARGIN * wedding_day_threshold_ms:
        return Readiness.AT_RISK, [
            f"{endpoint}: p95 {p95_ms:.1f} ms is within 20% of the wedding-day threshold "
            f"{wedding_day_threshold_ms:.0f} ms"
        ]
    return Readiness.READY, []


def worst(verdicts: Iterable[Readiness]) -> Readiness:
    """The worst verdict of several; ready when there are none."""
    order = [Readiness.READY, Readiness.AT_RISK, Readiness.NOT_READY]
    return max(verdicts, key=order.index, default=Readiness.READY)
