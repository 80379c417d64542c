"""WeddingRecorder: per-span measurements, pre-aggregated in the span processor.

Two SDK instrument calls per span would cost about 0.7x a whole span, so the
processor's verdict listener adds each duration to a compact exponential
histogram keyed by a small tuple, and bumps two counters. The lock is held
only to increment; `collect` swaps the accumulated deltas out under it and
everything else (merging, building data points) happens after.
"""

from __future__ import annotations

import threading
from collections.abc import Hashable, Mapping
from dataclasses import dataclass, field
from typing import Final, TypeVar

from opentelemetry.sdk.trace import ReadableSpan

from wedsync_otel.calendar import ApdexClass
from wedsync_otel.metrics.buckets import ExponentialBuckets
from wedsync_otel.rules import Verdict

MAX_DURATION_MS: Final = 86_400_000.0
"""A request longer than a day is a clock fault, not a latency: rejected, so it cannot
drag the histogram's scale (and every quantile's accuracy) down."""
MAX_SERIES: Final = 2_000
"""Attribute sets per metric; beyond it measurements are dropped and counted."""

DurationKey = tuple[str, bool, str, str]
"""(endpoint, critical, proximity, status class) of ``wedding.server.duration``."""
ApdexKey = tuple[str, str, str]
"""(endpoint, proximity, apdex class) of ``wedding.apdex.requests``."""
BreachKey = tuple[str, bool, str]
"""(endpoint, critical, proximity) of ``wedding.threshold.breaches``."""
CacheKey = tuple[str, str, str]
"""(endpoint, proximity, ``hit`` or ``miss``) of ``wedding.cache.requests``."""
BandKey = tuple[str, str]
"""(endpoint, proximity) of ``wedding.db.duration``."""

_STATUS_CLASS = {1: "1xx", 2: "2xx", 3: "3xx", 4: "4xx", 5: "5xx"}
_APDEX_TEXT = {apdex: apdex.value for apdex in ApdexClass}


def status_class(status_code: int | None, *, failed: bool) -> str:
    """``2xx``..``5xx`` from the HTTP status; ``5xx`` for a failed span without one, else ``""``."""
    if status_code is not None:
        return _STATUS_CLASS.get(status_code // 100, "")
    return "5xx" if failed else ""


@dataclass
class Deltas:
    """What was recorded between two collections."""

    durations: dict[DurationKey, ExponentialBuckets] = field(default_factory=dict)
    apdex: dict[ApdexKey, int] = field(default_factory=dict)
    breaches: dict[BreachKey, int] = field(default_factory=dict)
    cache: dict[CacheKey, int] = field(default_factory=dict)
    db: dict[BandKey, ExponentialBuckets] = field(default_factory=dict)
    """Per-request database time (ms), zero for requests without queries."""

    def empty(self) -> bool:
        """True when nothing was recorded."""
        return not (self.durations or self.apdex or self.breaches or self.cache or self.db)

    def merge(self, other: Deltas) -> None:
        """Add ``other`` into these deltas (the exporter keeps running totals this way)."""
        _add_buckets(self.durations, other.durations)
        _add_buckets(self.db, other.db)
        _add_counts(self.apdex, other.apdex)
        _add_counts(self.breaches, other.breaches)
        _add_counts(self.cache, other.cache)


_K = TypeVar("_K", bound=Hashable)


def _add_buckets(into: dict[_K, ExponentialBuckets], more: Mapping[_K, ExponentialBuckets]) -> None:
    for key, buckets in more.items():
        existing = into.get(key)
        if existing is None:
            into[key] = buckets.copy()
        else:
            existing.merge(buckets)


def _add_counts(into: dict[_K, int], more: Mapping[_K, int]) -> None:
    for key, count in more.items():
        into[key] = into.get(key, 0) + count


class WeddingRecorder:
    """Verdict listener that pre-aggregates durations, Apdex classes, breaches, cache and DB."""

    def __init__(self, *, max_series: int = MAX_SERIES) -> None:
        self._lock = threading.Lock()
        self._deltas = Deltas()
        self._max_series = max_series
        self.rejected_durations = 0
        """Durations that were NaN, negative or over `MAX_DURATION_MS`: not recorded."""
        self.dropped_series = 0
        """Measurements dropped because a metric already had ``max_series`` attribute sets."""

    def __call__(self, span: ReadableSpan, verdict: Verdict) -> None:
        """Record one judged span (the `WeddingSpanProcessor` listener signature)."""
        self.record(verdict)

    def record(self, verdict: Verdict) -> None:
        """Add one request's measurements to the current deltas."""
        duration_ms = verdict.duration_ms
        if not 0.0 <= duration_ms <= MAX_DURATION_MS:  # NaN fails both comparisons
            self.rejected_durations += 1
            return
        judgement = verdict.judgement
        endpoint, critical, band = judgement.endpoint, judgement.critical, judgement.proximity
        status = status_class(verdict.status_code, failed=verdict.failed)
        duration_key = (endpoint, critical, band, status)
        apdex_key = (endpoint, band, _APDEX_TEXT[verdict.apdex])
        band_key = (endpoint, band)
        with self._lock:
            deltas = self._deltas
            buckets = deltas.durations.get(duration_key)
            if buckets is None:
                if len(deltas.durations) >= self._max_series:
                    self.dropped_series += 1
                    return
                buckets = deltas.durations[duration_key] = ExponentialBuckets()
            buckets.record(duration_ms)
            apdex = deltas.apdex
            apdex[apdex_key] = apdex.get(apdex_key, 0) + 1
            if duration_ms > judgement.threshold_ms:
                breach_key = (endpoint, critical, band)
                deltas.breaches[breach_key] = deltas.breaches.get(breach_key, 0) + 1
            db = deltas.db.get(band_key)
            if db is None:
                db = deltas.db[band_key] = ExponentialBuckets()
            db.record(verdict.db_ms)
            if verdict.cache_hits:
                hit_key = (endpoint, band, "hit")
                deltas.cache[hit_key] = deltas.cache.get(hit_key, 0) + verdict.cache_hits
            if verdict.cache_misses:
                miss_key = (endpoint, band, "miss")
                deltas.cache[miss_key] = deltas.cache.get(miss_key, 0) + verdict.cache_misses

    def collect(self) -> Deltas:
        """Swap out and return everything recorded since the last collection."""
        with self._lock:
            deltas, self._deltas = self._deltas, Deltas()
        return deltas
