"""Per-request totals of cache and database work, rolled up onto the request span.

Child spans end before their request span, so their figures wait here,
keyed by trace id (one request, one trace: concurrent requests never mix),
until the request's span ends and takes them. A request whose span never
ends would leave its totals behind: entries older than ``timeout_s`` are
evicted, the store never holds more than ``max_requests``, and both kinds of
eviction are counted.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Final

MAX_FINGERPRINTS_PER_REQUEST: Final = 64
"""Distinct query shapes counted per request; beyond it new shapes are not tracked."""


@dataclass
class RequestTotals:
    """Cache and database work of one request so far."""

    created_s: float
    cache_hits: int = 0
    cache_misses: int = 0
    cache_ms: float = 0.0
    db_queries: int = 0
    db_ms: float = 0.0
    db_slow: int = 0
    fingerprints: dict[str, int] = field(default_factory=dict)
    statements: dict[str, str] = field(default_factory=dict)
    """First sanitised statement seen per fingerprint (no literals), for the N+1 event."""

    def repeated(self, limit: int) -> tuple[str, int] | None:
        """The fingerprint run most often, if more than ``limit`` times."""
        if not self.fingerprints:
            return None
        fingerprint, count = max(self.fingerprints.items(), key=lambda item: item[1])
        return (fingerprint, count) if count > limit else None


class RollupStore:
    """Bounded, thread-safe map from trace id to `RequestTotals`."""

    def __init__(
        self,
        *,
        max_requests: int = 10_000,
        timeout_s: float = 300.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._lock = threading.Lock()
        self._totals: dict[int, RequestTotals] = {}
        self.waiting: Mapping[int, RequestTotals] = self._totals
        """Read-only view of the requests with totals; empty most of the time, and cheap to test."""
        self._max_requests = max_requests
        self._timeout_s = timeout_s
        self._clock = clock
        self.timed_out = 0
        """Requests whose totals were evicted because their span had not ended in time."""
        self.overflowed = 0
        """Requests whose totals were evicted because the store was full."""

    def __len__(self) -> int:
        return len(self._totals)

    def _new_entry(self, trace_id: int) -> RequestTotals:
        """Fresh totals for ``trace_id``, making room first; call with the lock held."""
        now = self._clock()
        store = self._totals
        while store:
            oldest_id = next(iter(store))
            if now - store[oldest_id].created_s > self._timeout_s:
                del store[oldest_id]
                self.timed_out += 1
            elif len(store) >= self._max_requests:
                del store[oldest_id]
                self.overflowed += 1
            else:
                break
        totals = store[trace_id] = RequestTotals(created_s=now)
        return totals

    def add_cache(self, trace_id: int, *, hits: int, misses: int, duration_ms: float) -> None:
        """Count one cache operation of a request."""
        with self._lock:
            totals = self._totals.get(trace_id) or self._new_entry(trace_id)
            totals.cache_hits += hits
            totals.cache_misses += misses
            totals.cache_ms += duration_ms

    def add_query(
        self, trace_id: int, *, fingerprint: str, statement: str, duration_ms: float, slow: bool
    ) -> None:
        """Count one database query of a request."""
        with self._lock:
            totals = self._totals.get(trace_id) or self._new_entry(trace_id)
            totals.db_queries += 1
            totals.db_ms += duration_ms
            totals.db_slow += slow
            seen = totals.fingerprints
            if fingerprint in seen:
                seen[fingerprint] += 1
            elif len(seen) < MAX_FINGERPRINTS_PER_REQUEST:
                seen[fingerprint] = 1
                totals.statements[fingerprint] = statement

    def pop(self, trace_id: int) -> RequestTotals | None:
        """Take the totals of a request whose span is ending."""
        if trace_id not in self._totals:  # most requests: no lock needed to learn that
            return None
        with self._lock:
            return self._totals.pop(trace_id, None)
