"""WeddingRecorder: per-span measurements, pre-aggregated in the span processor.

Two SDK instrument calls per span would cost about 0.7x a whole span, so the
processor's verdict listener adds each duration to a compact exponential
histogram in a tally per judgement and status class, and bumps its counters.
The lock is held only to increment; `collect` swaps the tallies out under it,
and everything else (adding them up into tuple-keyed `Deltas`, building data
points) happens after.
"""

from __future__ import annotations

import threading
from collections.abc import Hashable, Mapping
from dataclasses import dataclass, field
from typing import Final, TypeVar

from opentelemetry.sdk.trace import ReadableSpan

from wedsync_otel.calendar import ApdexClass
from wedsync_otel.metrics.buckets import ExponentialBuckets
from wedsync_otel.rules import Judgement, Verdict

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
        _absorb(into, key, buckets if key in into else buckets.copy())  # ``more`` keeps its own


def _add_counts(into: dict[_K, int], more: Mapping[_K, int]) -> None:
    for key, count in more.items():
        _count(into, key, count)


def _count(into: dict[_K, int], key: _K, count: int) -> None:
    if count:
        into[key] = into.get(key, 0) + count


def _absorb(into: dict[_K, ExponentialBuckets], key: _K, buckets: ExponentialBuckets) -> None:
    """Add ``buckets``, which nothing else holds, into ``into`` (no copy when the key is new)."""
    existing = into.get(key)
    if existing is None:
        into[key] = buckets
    else:
        existing.merge(buckets)


class _Tally:
    """What one judgement's requests of one status class added since the last collection.

    Found by two identity-keyed lookups and updated in place, so a request
    builds no key tuple; `WeddingRecorder.collect` turns tallies into `Deltas`.
    """

    __slots__ = ("apdex", "breaches", "db", "durations", "hits", "misses", "no_db")

    def __init__(self) -> None:
        self.durations = ExponentialBuckets()
        self.apdex = [0, 0, 0]
        """Requests by Apdex class, in `_APDEX_ORDER`."""
        self.breaches = 0
        self.db = ExponentialBuckets()
        self.no_db = 0
        """Requests without database time: zeros of ``db``, added at collection."""
        self.hits = 0
        self.misses = 0


_APDEX_ORDER: Final = tuple(ApdexClass)
_APDEX_INDEX: Final = {apdex: index for index, apdex in enumerate(_APDEX_ORDER)}


class WeddingRecorder:
    """Verdict listener that pre-aggregates durations, Apdex classes, breaches, cache and DB."""

    def __init__(self, *, max_series: int = MAX_SERIES) -> None:
        self._lock = threading.Lock()
        self._tallies: dict[Judgement, dict[str, _Tally]] = {}
        self._series: set[DurationKey] = set()
        """The ``wedding.server.duration`` attribute sets the open tallies feed."""
        self._max_series = max_series
        self.rejected_durations = 0
        """Durations that were NaN, negative or over `MAX_DURATION_MS`: not recorded."""
        self.dropped_series = 0
        """Measurements dropped because a metric already had ``max_series`` attribute sets."""

    def record(self, verdict: Verdict) -> None:
        """Add one request's measurements to the current tallies."""
        self(None, verdict)

    def __call__(self, span: ReadableSpan | None, verdict: Verdict) -> None:
        """Record one judged span (the `WeddingSpanProcessor` listener signature).

        The work is here rather than in `record`: the processor calls this once
        per request, and a delegating call would cost a frame each time.
        """
        judgement, _, duration_ms, apdex, failed, status_code, hits, misses, db_ms = verdict
        if not 0.0 <= duration_ms <= MAX_DURATION_MS:  # NaN fails both comparisons
            self.rejected_durations += 1
            return
        # ``2xx``..``5xx`` from the HTTP status; a failed span without one counts as a 5xx.
        if status_code is None:
            status = "5xx" if failed else ""
        else:
            status = _STATUS_CLASS.get(status_code // 100, "")
        with self._lock:
            by_status = self._tallies.get(judgement)
            tally = None if by_status is None else by_status.get(status)
            if tally is None:
                tally = self._open(judgement, status)
                if tally is None:
                    self.dropped_series += 1
                    return
            tally.durations.record(duration_ms)
            tally.apdex[_APDEX_INDEX[apdex]] += 1
            if duration_ms > judgement.threshold_ms:
                tally.breaches += 1
            if db_ms:
                tally.db.record(db_ms)
            else:
                tally.no_db += 1
            if hits:
                tally.hits += hits
            if misses:
                tally.misses += misses

    def _open(self, judgement: Judgement, status: str) -> _Tally | None:
        """A new tally (the lock is held); ``None`` when its series would pass the limit."""
        key = (judgement.endpoint, judgement.critical, judgement.proximity, status)
        if key not in self._series:
            if len(self._series) >= self._max_series:
                return None
            self._series.add(key)
        tally = _Tally()
        self._tallies.setdefault(judgement, {})[status] = tally
        return tally

    def collect(self) -> Deltas:
        """Swap out everything recorded since the last collection, as `Deltas`."""
        with self._lock:
            tallies, self._tallies = self._tallies, {}
            self._series = set()
        deltas = Deltas()
        for judgement, by_status in tallies.items():
            endpoint, critical, band = judgement.endpoint, judgement.critical, judgement.proximity
            for status, tally in by_status.items():
                _absorb(deltas.durations, (endpoint, critical, band, status), tally.durations)
                tally.db.record_zeros(tally.no_db)
                _absorb(deltas.db, (endpoint, band), tally.db)
                for apdex, count in zip(_APDEX_ORDER, tally.apdex, strict=True):
                    _count(deltas.apdex, (endpoint, band, apdex.value), count)
                _count(deltas.breaches, (endpoint, critical, band), tally.breaches)
                _count(deltas.cache, (endpoint, band, "hit"), tally.hits)
                _count(deltas.cache, (endpoint, band, "miss"), tally.misses)
        return deltas
