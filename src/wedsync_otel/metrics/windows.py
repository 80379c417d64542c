"""Sliding windows over per-interval deltas, in a bounded ring of time slots.

Whatever the exporter sees (its own pre-aggregated series, the SDK's
instruments, or many instances' data in a collector) is first turned into
deltas: delta points are taken as they are; a cumulative point is
subtracted from the previous one of the same series, and a counter reset or
restarted reader (a new start time, or counts that went down) makes the new
point the delta. Deltas land in fixed slots of ``slot_s`` seconds, at most
``horizon_s`` long, so memory is bounded whatever the export interval.
Windows are sliding to slot granularity.
"""

from __future__ import annotations

from collections.abc import Hashable
from dataclasses import dataclass, field
from typing import Final

from wedsync_otel.metrics.buckets import ExponentialBuckets

WINDOWS: Final = {"1m": 60, "5m": 300, "1h": 3600}
"""Window name -> length in seconds."""

_NS_PER_S = 1_000_000_000

StatsKey = tuple[str, str]
"""(endpoint, proximity band)."""


@dataclass
class SlotData:
    """Deltas of one slot, per endpoint and band."""

    durations: dict[StatsKey, ExponentialBuckets] = field(default_factory=dict)
    errors: dict[StatsKey, int] = field(default_factory=dict)
    apdex: dict[tuple[str, str, str], int] = field(default_factory=dict)
    cache: dict[StatsKey, list[int]] = field(default_factory=dict)
    """[hits, misses]."""
    db_ms: dict[StatsKey, float] = field(default_factory=dict)
    db_requests: dict[StatsKey, int] = field(default_factory=dict)
    """Requests whose database time ``db_ms`` adds up (under sampling, the sampled ones)."""


@dataclass
class Merged:
    """Sum of the slots of one window, for one endpoint (and optionally one band)."""

    durations: ExponentialBuckets | None = None
    errors: int = 0
    satisfied: int = 0
    tolerating: int = 0
    frustrated: int = 0
    cache_hits: int = 0
    cache_misses: int = 0
    db_ms: float = 0.0
    db_requests: int = 0
    """Requests ``db_ms`` was measured on; 0 when the source did not say (then: all of them)."""

    @property
    def count(self) -> int:
        """Requests in the window."""
        return 0 if self.durations is None else self.durations.count

    def add_apdex(self, apdex: str, count: int) -> None:
        """Count requests of one Apdex class."""
        if apdex == "satisfied":
            self.satisfied += count
        elif apdex == "tolerating":
            self.tolerating += count
        else:
            self.frustrated += count

    def merge(self, other: Merged) -> None:
        """Add another window's totals (another band of the same endpoint)."""
        if other.durations is not None:
            if self.durations is None:
                self.durations = other.durations.copy()
            else:
                self.durations.merge(other.durations)
        self.errors += other.errors
        self.cache_hits += other.cache_hits
        self.cache_misses += other.cache_misses
        self.db_ms += other.db_ms
        self.db_requests += other.db_requests
        self.satisfied += other.satisfied
        self.tolerating += other.tolerating
        self.frustrated += other.frustrated


class WindowRing:
    """A ring of time slots holding deltas; bounded by ``horizon_s / slot_s`` slots."""

    def __init__(self, *, slot_s: int = 10, horizon_s: int = 3600) -> None:
        self.slot_s = slot_s
        self.max_slots = horizon_s // slot_s + 1
        self._slots: dict[int, SlotData] = {}

    def _slot(self, time_ns: int) -> SlotData:
        index = time_ns // (self.slot_s * _NS_PER_S)
        slot = self._slots.get(index)
        if slot is None:
            slot = self._slots[index] = SlotData()
            while len(self._slots) > self.max_slots:
                del self._slots[min(self._slots)]
        return slot

    def add_durations(
        self, time_ns: int, key: StatsKey, delta: ExponentialBuckets, *, error: bool
    ) -> None:
        """Add a duration delta for one endpoint and band; ``error`` when its status is 5xx."""
        slot = self._slot(time_ns)
        existing = slot.durations.get(key)
        if existing is None:
            slot.durations[key] = delta.copy()
        else:
            existing.merge(delta)
        if error:
            slot.errors[key] = slot.errors.get(key, 0) + delta.count

    def add_apdex(self, time_ns: int, endpoint: str, band: str, apdex: str, count: int) -> None:
        """Add requests of one Apdex class."""
        slot = self._slot(time_ns)
        key = (endpoint, band, apdex)
        slot.apdex[key] = slot.apdex.get(key, 0) + count

    def add_cache(self, time_ns: int, key: StatsKey, *, hits: int, misses: int) -> None:
        """Add cache hits and misses."""
        totals = self._slot(time_ns).cache.setdefault(key, [0, 0])
        totals[0] += hits
        totals[1] += misses

    def add_db_ms(self, time_ns: int, key: StatsKey, db_ms: float) -> None:
        """Add database time."""
        slot = self._slot(time_ns)
        slot.db_ms[key] = slot.db_ms.get(key, 0.0) + db_ms

    def add_db_requests(self, time_ns: int, key: StatsKey, count: int) -> None:
        """Add the number of requests whose database time was measured."""
        slot = self._slot(time_ns)
        slot.db_requests[key] = slot.db_requests.get(key, 0) + count

    def aggregate(
        self, now_ns: int, window_s: int, *, skip_recent_s: int = 0
    ) -> dict[StatsKey, Merged]:
        """Merge, per (endpoint, band), the slots of the last ``window_s`` seconds.

        With ``skip_recent_s``, the window ends that long before ``now_ns``
        (the baseline a trend compares against).
        """
        slot_ns = self.slot_s * _NS_PER_S
        newest = (now_ns - skip_recent_s * _NS_PER_S) // slot_ns
        oldest = (now_ns - window_s * _NS_PER_S) // slot_ns
        result: dict[StatsKey, Merged] = {}
        for index, slot in self._slots.items():
            if not oldest < index <= newest:
                continue
            for key, buckets in slot.durations.items():
                merged = result.get(key)
                if merged is None:
                    merged = result[key] = Merged()
                if merged.durations is None:
                    merged.durations = buckets.copy()
                else:
                    merged.durations.merge(buckets)
                merged.errors += slot.errors.get(key, 0)
            for (endpoint, band, apdex), count in slot.apdex.items():
                merged = result.get((endpoint, band))
                if merged is None:
                    merged = result[(endpoint, band)] = Merged()
                merged.add_apdex(apdex, count)
            for key, (hits, misses) in slot.cache.items():
                merged = result.setdefault(key, Merged())
                merged.cache_hits += hits
                merged.cache_misses += misses
            for key, db_ms in slot.db_ms.items():
                result.setdefault(key, Merged()).db_ms += db_ms
            for key, count in slot.db_requests.items():
                result.setdefault(key, Merged()).db_requests += count
        return result


class WindowStore:
    """Two rings: 10 s slots for the 1 m and 5 m windows, 60 s slots for the hour.

    Every delta is added to both, so a window merges at most 60 slots per
    series however often metrics are exported.
    """

    def __init__(self) -> None:
        self.fine = WindowRing(slot_s=10, horizon_s=WINDOWS["5m"])
        self.coarse = WindowRing(slot_s=60, horizon_s=WINDOWS["1h"])

    def add_durations(
        self, time_ns: int, key: StatsKey, delta: ExponentialBuckets, *, error: bool
    ) -> None:
        """Add a duration delta to both rings."""
        self.fine.add_durations(time_ns, key, delta, error=error)
        self.coarse.add_durations(time_ns, key, delta, error=error)

    def add_apdex(self, time_ns: int, endpoint: str, band: str, apdex: str, count: int) -> None:
        """Add Apdex-class counts to both rings."""
        self.fine.add_apdex(time_ns, endpoint, band, apdex, count)
        self.coarse.add_apdex(time_ns, endpoint, band, apdex, count)

    def add_cache(self, time_ns: int, key: StatsKey, *, hits: int, misses: int) -> None:
        """Add cache hits and misses to both rings."""
        self.fine.add_cache(time_ns, key, hits=hits, misses=misses)
        self.coarse.add_cache(time_ns, key, hits=hits, misses=misses)

    def add_db_ms(self, time_ns: int, key: StatsKey, db_ms: float) -> None:
        """Add database time to both rings."""
        self.fine.add_db_ms(time_ns, key, db_ms)
        self.coarse.add_db_ms(time_ns, key, db_ms)

    def add_db_requests(self, time_ns: int, key: StatsKey, count: int) -> None:
        """Add the requests that database time was measured on, to both rings."""
        self.fine.add_db_requests(time_ns, key, count)
        self.coarse.add_db_requests(time_ns, key, count)

    def window(self, now_ns: int, name: str) -> dict[StatsKey, Merged]:
        """Per (endpoint, band) totals of one named window."""
        window_s = WINDOWS[name]
        ring = (
            self.fine if window_s <= self.fine.slot_s * (self.fine.max_slots - 1) else self.coarse
        )
        return ring.aggregate(now_ns, window_s)

    def baseline(self, now_ns: int) -> dict[StatsKey, Merged]:
        """The hour before the last five minutes: what a trend compares against."""
        return self.coarse.aggregate(now_ns, WINDOWS["1h"], skip_recent_s=WINDOWS["5m"])


class DeltaTracker:
    """Turns cumulative points into deltas, per series, detecting resets."""

    def __init__(self, *, max_series: int = 20_000) -> None:
        self._previous: dict[Hashable, tuple[int, ExponentialBuckets | float]] = {}
        self._max_series = max_series
        self.resets = 0
        """Cumulative series whose start time changed or whose counts went down."""
        self.evictions = 0

    def histogram_delta(
        self, series: Hashable, start_ns: int, cumulative: ExponentialBuckets
    ) -> ExponentialBuckets:
        """The part of ``cumulative`` not seen before for this series."""
        previous = self._remember(series, start_ns, cumulative)
        if previous is None:
            return cumulative
        if not isinstance(previous, ExponentialBuckets):
            return cumulative
        try:
            return cumulative.subtract(previous)
        except ValueError:
            self.resets += 1
            return cumulative

    def counter_delta(self, series: Hashable, start_ns: int, cumulative: float) -> float:
        """The increase of a cumulative counter (or histogram sum) since the last point."""
        previous = self._remember(series, start_ns, cumulative)
        if previous is None or isinstance(previous, ExponentialBuckets):
            return cumulative
        if cumulative < previous:
            self.resets += 1
            return cumulative
        return cumulative - previous

    def _remember(
        self, series: Hashable, start_ns: int, value: ExponentialBuckets | float
    ) -> ExponentialBuckets | float | None:
        # Popped and stored again, so the dict's order is last use: the series evicted is the
        # one unseen longest, never a busy one whose next point would then count in full.
        before = self._previous.pop(series, None)
        if before is None and len(self._previous) >= self._max_series:
            del self._previous[next(iter(self._previous))]
            self.evictions += 1
        stored = value.copy() if isinstance(value, ExponentialBuckets) else value
        self._previous[series] = (start_ns, stored)
        if before is None:
            return None
        previous_start, previous = before
        if previous_start != start_ns:
            self.resets += 1
            return None
        return previous
