"""WeddingRecorder: per-span measurements, pre-aggregated in the span processor.

Two SDK instrument calls per span would cost about 0.7x a whole span, so the
processor's verdict listener adds each duration to a compact exponential
histogram in a tally per judgement and status class, and bumps its counters.
The lock is held only to increment; `collect` swaps the tallies out under it,
and everything else (adding them up into tuple-keyed `Deltas`, building data
points) happens after.

Exemplars. A sampled request span (one that will be exported) is offered to its
tally's `Exemplars`: the slowest request of the interval, and the latest one in
each of seven duration ranges a power of four wide (under 2 ms, 2-8, ... 512 ms-2 s,
2 s and over), so at most `MAX_EXEMPLARS` per series and interval, found with one
``frexp`` and a table look-up. The span context and end time are kept as they
are; trace and span ids are read at collection.

Unsampled request spans (recorded, never exported: a sampler wrapper keeps them
for the metrics) count in durations, Apdex and breaches like any other, but not in
the DB histogram nor the cache counters (their child spans were not recorded, so
their totals would be zeros), and never as exemplars. The DB histogram's count is
then the number of sampled requests.

Past `MAX_SERIES` duration attribute sets, a request is recorded into one overflow
tally, emitted as the series with only ``otel.metric.overflow = true`` in every
metric (the OTel metrics SDK's cardinality limit), and counted in `dropped_series`.
"""

from __future__ import annotations

import threading
from collections.abc import Hashable, Mapping
from dataclasses import dataclass, field
from math import frexp
from typing import Final, NamedTuple, TypeVar

from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.trace import SpanContext, TraceFlags

from wedsync_otel.calendar import ApdexClass
from wedsync_otel.metrics.buckets import ExponentialBuckets
from wedsync_otel.rules import Judgement, Verdict

MAX_DURATION_MS: Final = 86_400_000.0
"""A request longer than a day is a clock fault, not a latency: rejected, so it cannot
drag the histogram's scale (and every quantile's accuracy) down."""
MAX_SERIES: Final = 2_000
"""Duration attribute sets between collections; beyond it requests go to the overflow series."""
SPREAD_SLOTS: Final = 7
"""Exemplar slots spread over durations, a power of four wide each, besides the slowest."""
MAX_EXEMPLARS: Final = SPREAD_SLOTS + 1
"""Most exemplars one series carries per interval."""

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
_SAMPLED: Final = TraceFlags.SAMPLED

_Offer = tuple[float, SpanContext, int]
"""(value in ms, span context, end time in ns): what the hot path keeps of an exemplar."""

_SLOT_OF_EXPONENT: Final = tuple(min(exponent >> 1, SPREAD_SLOTS - 1) for exponent in range(1025))
"""``frexp`` exponent ``e`` (a value in ``[2**(e-1), 2**e)``) -> its slot; e <= 0 is slot 0."""


def spread_slot(value_ms: float) -> int:
    """The spread slot of a duration: 0 under 2 ms, then one per power of four, 6 from 2 s."""
    exponent = frexp(value_ms)[1]
    return _SLOT_OF_EXPONENT[exponent] if exponent > 0 else 0


class ExemplarSample(NamedTuple):
    """One exemplar: a sampled request's value and the span that measured it."""

    value: float
    time_unix_nano: int
    trace_id: int
    span_id: int


class Exemplars:
    """A bounded exemplar reservoir: the slowest offer, and the latest one per spread slot.

    The recorder writes `slowest` and `spread` itself on the hot path; `merge`
    combines reservoirs of one series by the same rule (the slowest overall, the
    latest per slot), so a merged reservoir is what one reservoir would hold.
    """

    __slots__ = ("slowest", "spread")

    def __init__(self) -> None:
        self.slowest: _Offer | None = None
        self.spread: list[_Offer | None] = [None] * SPREAD_SLOTS

    def __bool__(self) -> bool:
        return self.slowest is not None

    def offer(self, value_ms: float, context: SpanContext, end_ns: int) -> None:
        """Consider one sampled measurement (what the recorder does inline)."""
        offered = (value_ms, context, end_ns)
        self.spread[spread_slot(value_ms)] = offered
        if self.slowest is None or value_ms >= self.slowest[0]:
            self.slowest = offered

    def merge(self, other: Exemplars) -> None:
        """Add ``other``'s exemplars: the slower of the two slowest, the later one per slot."""
        theirs = other.slowest
        if theirs is None:
            return
        mine = self.slowest
        if mine is None or (theirs[0], theirs[2]) >= (mine[0], mine[2]):
            self.slowest = theirs
        spread = self.spread
        for slot, offered in enumerate(other.spread):
            if offered is not None:
                held = spread[slot]
                if held is None or offered[2] >= held[2]:
                    spread[slot] = offered

    def copy(self) -> Exemplars:
        """An independent reservoir holding the same exemplars."""
        twin = Exemplars()
        twin.slowest = self.slowest
        twin.spread = self.spread[:]
        return twin

    def samples(self) -> list[ExemplarSample]:
        """At most `MAX_EXEMPLARS` distinct exemplars, oldest first; the slowest among them."""
        chosen: list[_Offer] = []
        for offered in (self.slowest, *self.spread):
            # Equal, not identical: the compiled core rebuilds a tuple each time it reads one.
            if offered is not None and offered not in chosen:
                chosen.append(offered)
        chosen.sort(key=lambda offered: offered[2])
        return [
            ExemplarSample(value, end_ns, context.trace_id, context.span_id)
            for value, context, end_ns in chosen
        ]

    def slowest_sample(self) -> ExemplarSample | None:
        """The slowest exemplar, or ``None`` when nothing was offered."""
        if self.slowest is None:
            return None
        value, context, end_ns = self.slowest
        return ExemplarSample(value, end_ns, context.trace_id, context.span_id)


@dataclass
class Overflow:
    """Requests recorded past the series limit: the series with only the overflow attribute."""

    durations: ExponentialBuckets = field(default_factory=ExponentialBuckets)
    requests: int = 0
    """``wedding.apdex.requests`` of every Apdex class."""
    breaches: int = 0
    cache: int = 0
    """``wedding.cache.requests``, hits and misses."""
    db: ExponentialBuckets = field(default_factory=ExponentialBuckets)
    exemplars: Exemplars = field(default_factory=Exemplars)
    db_exemplars: Exemplars = field(default_factory=Exemplars)

    def merge(self, other: Overflow, *, exemplars: bool = True) -> None:
        """Add ``other`` into this overflow series."""
        self.durations.merge(other.durations)
        self.db.merge(other.db)
        self.requests += other.requests
        self.breaches += other.breaches
        self.cache += other.cache
        if exemplars:
            self.exemplars.merge(other.exemplars)
            self.db_exemplars.merge(other.db_exemplars)


@dataclass
class Deltas:
    """What was recorded between two collections."""

    durations: dict[DurationKey, ExponentialBuckets] = field(default_factory=dict)
    apdex: dict[ApdexKey, int] = field(default_factory=dict)
    breaches: dict[BreachKey, int] = field(default_factory=dict)
    cache: dict[CacheKey, int] = field(default_factory=dict)
    db: dict[BandKey, ExponentialBuckets] = field(default_factory=dict)
    """Per-request database time (ms) of sampled requests, zero for those without queries."""
    exemplars: dict[DurationKey, Exemplars] = field(default_factory=dict)
    """Exemplars of ``durations``, only for series that had a sampled request."""
    db_exemplars: dict[BandKey, Exemplars] = field(default_factory=dict)
    """Exemplars of ``db`` (the request span of a sampled request with database time)."""
    overflow: Overflow | None = None
    """Requests past the series limit, or ``None`` when there were none."""

    def empty(self) -> bool:
        """True when nothing was recorded."""
        return not (
            self.durations
            or self.apdex
            or self.breaches
            or self.cache
            or self.db
            or self.overflow is not None
        )

    def merge(self, other: Deltas, *, exemplars: bool = True) -> None:
        """Add ``other`` into these deltas (the exporter keeps running totals this way).

        ``exemplars=False`` leaves the exemplars out, for totals that never emit them.
        """
        _add_buckets(self.durations, other.durations)
        _add_buckets(self.db, other.db)
        _add_counts(self.apdex, other.apdex)
        _add_counts(self.breaches, other.breaches)
        _add_counts(self.cache, other.cache)
        if exemplars:
            _add_exemplars(self.exemplars, other.exemplars)
            _add_exemplars(self.db_exemplars, other.db_exemplars)
        if other.overflow is not None:
            if self.overflow is None:
                self.overflow = Overflow()
            self.overflow.merge(other.overflow, exemplars=exemplars)


_K = TypeVar("_K", bound=Hashable)


def _add_buckets(into: dict[_K, ExponentialBuckets], more: Mapping[_K, ExponentialBuckets]) -> None:
    for key, buckets in more.items():
        _absorb(into, key, buckets if key in into else buckets.copy())  # ``more`` keeps its own


def _add_exemplars(into: dict[_K, Exemplars], more: Mapping[_K, Exemplars]) -> None:
    for key, exemplars in more.items():
        existing = into.get(key)
        if existing is None:
            into[key] = exemplars.copy()
        else:
            existing.merge(exemplars)


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


def _absorb_exemplars(into: dict[_K, Exemplars], key: _K, exemplars: Exemplars) -> None:
    """Add ``exemplars``, which nothing else holds, into ``into``; nothing when it is empty."""
    if not exemplars:
        return
    existing = into.get(key)
    if existing is None:
        into[key] = exemplars
    else:
        existing.merge(exemplars)


class _Tally:
    """What one judgement's requests of one status class added since the last collection.

    Found by two identity-keyed lookups and updated in place, so a request
    builds no key tuple; `WeddingRecorder.collect` turns tallies into `Deltas`.
    """

    __slots__ = (
        "apdex",
        "breaches",
        "db",
        "db_exemplars",
        "durations",
        "exemplars",
        "hits",
        "misses",
        "no_db",
    )

    def __init__(self) -> None:
        self.durations = ExponentialBuckets()
        self.apdex = [0, 0, 0]
        """Requests by Apdex class, in `_APDEX_ORDER`."""
        self.breaches = 0
        self.db = ExponentialBuckets()
        self.no_db = 0
        """Sampled requests without database time: zeros of ``db``, added at collection."""
        self.hits = 0
        self.misses = 0
        self.exemplars = Exemplars()
        self.db_exemplars = Exemplars()


_APDEX_ORDER: Final = tuple(ApdexClass)
_APDEX_INDEX: Final = {apdex: index for index, apdex in enumerate(_APDEX_ORDER)}


class WeddingRecorder:
    """Verdict listener that pre-aggregates durations, Apdex classes, breaches, cache and DB."""

    def __init__(self, *, max_series: int = MAX_SERIES) -> None:
        self._lock = threading.Lock()
        self._tallies: dict[Judgement, dict[str, _Tally]] = {}
        self._series: set[DurationKey] = set()
        """The ``wedding.server.duration`` attribute sets the open tallies feed."""
        self._overflow: _Tally | None = None
        """Where requests past ``max_series`` go; never in ``_tallies``."""
        self._max_series = max_series
        self.rejected_durations = 0
        """Durations that were NaN, negative or over `MAX_DURATION_MS`: not recorded."""
        self.dropped_series = 0
        """Measurements recorded into the overflow series: their metric had ``max_series`` sets."""

    def record(self, verdict: Verdict) -> None:
        """Add one request's measurements to the current tallies (no span: no exemplar)."""
        self(None, verdict)

    def __call__(self, span: ReadableSpan | None, verdict: Verdict) -> None:  # noqa: PLR0912 - the hot path, kept flat for speed
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
        offered: _Offer | None = None
        slot = 0
        sampled = True
        # ``& _SAMPLED`` is ``.sampled``, without its property call.
        if span is not None and (context := span.context) is not None:
            if context.trace_flags & _SAMPLED:
                offered = (duration_ms, context, span.end_time or 0)
                exponent = frexp(duration_ms)[1]
                slot = _SLOT_OF_EXPONENT[exponent] if exponent > 0 else 0
            else:
                sampled = False  # recorded only: its cache and DB totals were never gathered
        with self._lock:
            by_status = self._tallies.get(judgement)
            tally = None if by_status is None else by_status.get(status)
            if tally is None:
                tally = self._open(judgement, status)
            tally.durations.record(duration_ms)
            tally.apdex[_APDEX_INDEX[apdex]] += 1
            if duration_ms > judgement.threshold_ms:
                tally.breaches += 1
            if sampled:
                if db_ms:
                    tally.db.record(db_ms)
                else:
                    tally.no_db += 1
                if hits:
                    tally.hits += hits
                if misses:
                    tally.misses += misses
            if offered is not None:
                exemplars = tally.exemplars
                exemplars.spread[slot] = offered
                slowest = exemplars.slowest
                if slowest is None or duration_ms >= slowest[0]:
                    exemplars.slowest = offered
                if db_ms > 0.0:  # NaN fails too
                    tally.db_exemplars.offer(db_ms, offered[1], offered[2])

    def _open(self, judgement: Judgement, status: str) -> _Tally:
        """A new tally (the lock is held); the overflow tally when its series passes the limit."""
        key = (judgement.endpoint, judgement.critical, judgement.proximity, status)
        if key not in self._series:
            if len(self._series) >= self._max_series:
                self.dropped_series += 1
                if self._overflow is None:
                    self._overflow = _Tally()
                return self._overflow
            self._series.add(key)
        tally = _Tally()
        self._tallies.setdefault(judgement, {})[status] = tally
        return tally

    def collect(self) -> Deltas:
        """Swap out everything recorded since the last collection, as `Deltas`."""
        with self._lock:
            tallies, self._tallies = self._tallies, {}
            overflow, self._overflow = self._overflow, None
            self._series = set()
        deltas = Deltas()
        for judgement, by_status in tallies.items():
            endpoint, critical, band = judgement.endpoint, judgement.critical, judgement.proximity
            for status, tally in by_status.items():
                key = (endpoint, critical, band, status)
                _absorb(deltas.durations, key, tally.durations)
                _absorb_exemplars(deltas.exemplars, key, tally.exemplars)
                tally.db.record_zeros(tally.no_db)
                if tally.db.count:  # unsampled requests alone leave no DB series
                    _absorb(deltas.db, (endpoint, band), tally.db)
                _absorb_exemplars(deltas.db_exemplars, (endpoint, band), tally.db_exemplars)
                for apdex, count in zip(_APDEX_ORDER, tally.apdex, strict=True):
                    _count(deltas.apdex, (endpoint, band, apdex.value), count)
                _count(deltas.breaches, (endpoint, critical, band), tally.breaches)
                _count(deltas.cache, (endpoint, band, "hit"), tally.hits)
                _count(deltas.cache, (endpoint, band, "miss"), tally.misses)
        if overflow is not None:
            overflow.db.record_zeros(overflow.no_db)
            deltas.overflow = Overflow(
                durations=overflow.durations,
                requests=sum(overflow.apdex),
                breaches=overflow.breaches,
                cache=overflow.hits + overflow.misses,
                db=overflow.db,
                exemplars=overflow.exemplars,
                db_exemplars=overflow.db_exemplars,
            )
        return deltas
