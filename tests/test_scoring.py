"""Health, trend and readiness formulas: bounds, monotonicity and worked examples."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from wedsync_otel.metrics import scoring
from wedsync_otel.metrics.scoring import Readiness, Trend

unit = st.floats(min_value=0.0, max_value=1.0)
latency = st.floats(min_value=0.0, max_value=1e6, allow_nan=False)
threshold = st.floats(min_value=1.0, max_value=1e4)


def test_health_is_100_when_everything_is_satisfied_and_nothing_errs() -> None:
    """All satisfied, no errors, p95 under T: health 100."""
    assert scoring.health_score(apdex=1.0, error_rate=0.0, p95_ms=80, threshold_ms=200) == 100.0


def test_health_worked_example_from_the_readme() -> None:
    """Apdex 0.9, 1% errors, p95 = 1.5T: 100 * 0.9 * 0.99 * (1 - 0.5/3) = 74.25."""
    score = scoring.health_score(apdex=0.9, error_rate=0.01, p95_ms=300, threshold_ms=200)
    assert score == pytest.approx(74.25)


@settings(max_examples=300, deadline=None)
@given(unit, unit, latency, threshold)
def test_health_stays_within_0_and_100(apdex: float, errors: float, p95: float, t: float) -> None:
    """Whatever the inputs, health lies in [0, 100]."""
    assert (
        0.0
        <= scoring.health_score(apdex=apdex, error_rate=errors, p95_ms=p95, threshold_ms=t)
        <= 100.0
    )


@settings(max_examples=300, deadline=None)
@given(unit, unit, unit, latency, latency, threshold)
def test_health_never_rises_when_things_get_worse(
    apdex: float, errors: float, more_errors: float, p95: float, slower: float, t: float
) -> None:
    """Lower Apdex, more errors or a slower p95 never raise health."""
    base = scoring.health_score(apdex=apdex, error_rate=errors, p95_ms=p95, threshold_ms=t)
    worse_errors = max(errors, more_errors)
    worse_p95 = max(p95, slower)
    assert (
        scoring.health_score(apdex=apdex * 0.5, error_rate=errors, p95_ms=p95, threshold_ms=t)
        <= base
    )
    assert (
        scoring.health_score(apdex=apdex, error_rate=worse_errors, p95_ms=p95, threshold_ms=t)
        <= base
    )
    assert (
        scoring.health_score(apdex=apdex, error_rate=errors, p95_ms=worse_p95, threshold_ms=t)
        <= base
    )


def test_health_is_zero_at_four_times_the_threshold() -> None:
    """p95 at 4T (the frustration point) takes health to 0."""
    assert scoring.health_score(apdex=1.0, error_rate=0.0, p95_ms=800, threshold_ms=200) == 0.0


def test_nan_inputs_do_not_escape() -> None:
    """A NaN p95 or Apdex gives a number in range, not NaN."""
    score = scoring.health_score(apdex=math.nan, error_rate=0.0, p95_ms=math.nan, threshold_ms=200)
    assert 0.0 <= score <= 100.0


@pytest.mark.parametrize(
    ("satisfied", "tolerating", "frustrated", "expected"),
    [(10, 0, 0, 1.0), (0, 10, 0, 0.5), (0, 0, 10, 0.0), (6, 2, 2, 0.7), (0, 0, 0, None)],
)
def test_apdex_score(
    satisfied: int, tolerating: int, frustrated: int, expected: float | None
) -> None:
    """Apdex = (satisfied + tolerating / 2) / total."""
    assert scoring.apdex_score(satisfied, tolerating, frustrated) == expected


@pytest.mark.parametrize(
    ("recent", "baseline", "expected"),
    [
        (100.0, 100.0, Trend.STABLE),
        (119.0, 100.0, Trend.STABLE),
        (121.0, 100.0, Trend.DEGRADING),
        (84.0, 100.0, Trend.STABLE),
        (83.0, 100.0, Trend.IMPROVING),
        (None, 100.0, Trend.STABLE),
    ],
)
def test_trend_has_a_noise_band(recent: float | None, baseline: float, expected: Trend) -> None:
    """Within +-20% of the baseline p95 is stable; beyond it, a direction."""
    assert scoring.trend(recent, baseline, recent_count=100, baseline_count=100) is expected


def test_trend_needs_enough_requests_on_both_sides() -> None:
    """A doubling seen in only a handful of requests is still stable."""
    assert scoring.trend(200.0, 100.0, recent_count=5, baseline_count=500) is Trend.STABLE


@pytest.mark.parametrize(
    ("p95", "error_rate", "count", "expected"),
    [
        (50.0, 0.0, 1000, Readiness.READY),
        (85.0, 0.0, 1000, Readiness.AT_RISK),
        (120.0, 0.0, 1000, Readiness.NOT_READY),
        (50.0, 0.002, 1000, Readiness.NOT_READY),
        (50.0, 0.0, 99, Readiness.AT_RISK),
        (None, None, 0, Readiness.AT_RISK),
    ],
)
def test_readiness_verdicts(
    p95: float | None, error_rate: float | None, count: int, expected: Readiness
) -> None:
    """p95 against the wedding-day threshold, errors under 0.1%, and enough requests."""
    verdict, reasons = scoring.readiness(
        "payments", p95_ms=p95, error_rate=error_rate, count=count, wedding_day_threshold_ms=100
    )
    assert verdict is expected
    assert bool(reasons) is (expected is not Readiness.READY)
    assert all(reason.startswith("payments: ") for reason in reasons)


def test_worst_verdict_wins() -> None:
    """The API is as ready as its least ready critical endpoint."""
    assert (
        scoring.worst([Readiness.READY, Readiness.NOT_READY, Readiness.AT_RISK])
        is Readiness.NOT_READY
    )
    assert scoring.worst([]) is Readiness.READY


def test_gauge_values() -> None:
    """Trend and readiness map onto the documented gauge values."""
    assert [t.gauge for t in (Trend.IMPROVING, Trend.STABLE, Trend.DEGRADING)] == [1, 0, -1]
    assert [r.gauge for r in (Readiness.READY, Readiness.AT_RISK, Readiness.NOT_READY)] == [
        1,
        0,
        -1,
    ]
