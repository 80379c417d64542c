"""Per-request totals of cache and database work, rolled up onto the request span.

Child spans end before their request span, so their figures wait here,
keyed by trace id (one request, one trace: concurrent requests never mix),
until the request's span ends and takes them. A request whose span never
ends would leave its totals behind: entries older than ``timeout_s`` are
evicted, the store never holds more than ``max_requests``, and both kinds of
eviction are counted.

Each statement is counted once whichever instrumentations are active
(`DbWork`): ``opentelemetry-bootstrap`` installs SQLAlchemy's and the
driver's, and then one statement has two spans.
"""

from __future__ import annotations

import threading
import time
from bisect import bisect_left
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from enum import Enum
from typing import Final

from wedsync_otel._bounded import BoundedDict

MAX_FINGERPRINTS_PER_REQUEST: Final = 64
"""Distinct query shapes counted per request; beyond it new shapes are not tracked."""
RECENT_WORK: Final = 32
"""Database spans of a request kept open to matching; older ones are settled (counted).

An outer span that repeats inner work (SQLAlchemy's around the driver's)
ends right after the inner one, so only the last few can be repeated.
"""


MAX_OBSERVED_PER_REQUEST: Final = 1024
"""Counted queries kept per request for query observers; beyond it they are not observed."""
MAX_BUSY_PERIODS: Final = 1024
"""Separate stretches of database time kept per request to merge overlaps exactly."""


class WorkKind(Enum):
    """What one database span stands for."""

    QUERY = "query"
    CONTROL = "control"
    """A connect or transaction control (BEGIN, COMMIT, ...): a round trip, not a query."""
    FETCH = "fetch"
    """One batch of a server-side cursor (asyncpg's ``CURSOR: ...`` spans)."""
    MORE = "more"
    """A later batch of a cursor already counted: its time counts, not another query."""


@dataclass(slots=True)
class DbWork:
    """One database span of a request, as the once-only counting needs it."""

    fingerprint: str
    statement: str
    """Sanitised: literals are ``?``."""
    start_ns: int
    end_ns: int
    span_id: int
    parent_id: int
    """The span id of its parent (0 for none)."""
    scope: str
    """The instrumentation scope that made the span (SQLAlchemy's, asyncpg's, ...)."""
    kind: WorkKind
    slow: bool

    @property
    def duration_ms(self) -> float:
        return max(0, self.end_ns - self.start_ns) / 1e6

    def repeats(self, inner: DbWork) -> bool:
        """Whether ``inner`` is this span's own work seen again by another instrumentation.

        A DB span inside another is the same work: a child (the driver's set-up
        statements under SQLAlchemy's ``connect``), or, from another scope, the
        same statement within this span's time (SQLAlchemy's statement span is a
        sibling of the driver's, around it). Two same-scope siblings overlapping
        in time are concurrent queries, both counted.
        """
        if not (self.start_ns <= inner.start_ns and inner.end_ns <= self.end_ns):
            return False
        if inner.parent_id == self.span_id:
            return True
        return inner.scope != self.scope and inner.fingerprint == self.fingerprint

    def continues(self, earlier: DbWork) -> bool:
        """Whether this cursor batch goes on from ``earlier``, the same parent's last work."""
        return (
            earlier.parent_id == self.parent_id
            and earlier.fingerprint == self.fingerprint
            and earlier.kind is not WorkKind.CONTROL
            and earlier.end_ns <= self.start_ns
        )


@dataclass
class RequestTotals:
    """Cache and database work of one request so far."""

    created_s: float
    cache_hits: int = 0
    cache_misses: int = 0
    cache_ms: float = 0.0
    db_queries: int = 0
    db_control: int = 0
    """Connects and transaction control (BEGIN, COMMIT, ...): counted apart from queries."""
    db_ms: float = 0.0
    """Wall time with database work in flight: overlapping spans count once."""
    db_slow: int = 0
    db_repeats: int = 0
    """DB spans that repeated another's work (stacked instrumentations) and were not counted."""
    fingerprints: dict[str, int] = field(default_factory=dict)
    statements: dict[str, str] = field(default_factory=dict)
    """First sanitised statement seen per fingerprint (no literals), for the N+1 event."""
    recent: list[DbWork] = field(default_factory=list)
    """Database spans still open to matching, in the order they ended."""
    busy_starts: list[int] = field(default_factory=list)
    busy_ends: list[int] = field(default_factory=list)
    """Settled database time as sorted, disjoint stretches: overlaps count once. Plain ints, not
    tuples: thousands of long-lived tuples per request would keep the garbage collector busy."""
    closed_ms: float = 0.0
    closed_until_ns: int = 0
    """Stretches beyond `MAX_BUSY_PERIODS` are closed: summed, and later work clipped after them."""
    counted: list[DbWork] | None = None
    """The queries counted, for query observers (kept only when some are registered)."""

    def repeated(self, limit: int) -> tuple[str, int] | None:
        """The fingerprint run most often, if more than ``limit`` times."""
        if not self.fingerprints:
            return None
        fingerprint, count = max(self.fingerprints.items(), key=lambda item: item[1])
        return (fingerprint, count) if count > limit else None

    def add(self, work: DbWork) -> None:
        """Take one database span: it may repeat or continue recent work, or be new."""
        recent = self.recent
        # Spans end in order, so only the last few, those that ended after this one
        # began, can be inside it: one comparison for a query that ran alone.
        first = len(recent)
        while first and recent[first - 1].end_ns >= work.start_ns:
            first -= 1
        if first < len(recent):
            inside = recent[first:]
            kept = [inner for inner in inside if not work.repeats(inner)]
            self.db_repeats += len(inside) - len(kept)
            recent[first:] = kept
        if recent and work.kind is WorkKind.FETCH:
            earlier = next(
                (item for item in reversed(recent) if item.parent_id == work.parent_id), None
            )
            if earlier is not None and work.continues(earlier):
                work.kind = WorkKind.MORE
        recent.append(work)
        if len(recent) >= 2 * RECENT_WORK:  # settled in batches: one pass over warm memory
            for old in recent[:RECENT_WORK]:
                self._settle(old)
            del recent[:RECENT_WORK]

    def settle(self) -> None:
        """Count every database span still open to matching (the request has ended)."""
        for work in self.recent:
            self._settle(work)
        self.recent = []
        self.db_ms = self.closed_ms + (sum(self.busy_ends) - sum(self.busy_starts)) / 1e6

    def _busy(self, start: int, end: int) -> None:
        """Add one stretch of database time, merged with those it overlaps."""
        start = max(start, self.closed_until_ns)
        if end <= start:
            return
        starts, ends = self.busy_starts, self.busy_ends
        if not ends or start > ends[-1]:  # after all the rest: the usual case
            starts.append(start)
            ends.append(end)
        else:
            first = bisect_left(starts, start)
            if first and ends[first - 1] >= start:
                first -= 1
                start = starts[first]
            last = first
            while last < len(starts) and starts[last] <= end:
                end = max(end, ends[last])
                last += 1
            starts[first:last] = [start]
            ends[first:last] = [end]
        if len(starts) > MAX_BUSY_PERIODS:
            oldest_start, oldest_end = starts.pop(0), ends.pop(0)
            self.closed_ms += (oldest_end - oldest_start) / 1e6
            self.closed_until_ns = oldest_end

    def _settle(self, work: DbWork) -> None:
        self._busy(work.start_ns, work.end_ns)
        if work.kind is WorkKind.CONTROL:
            self.db_control += 1
            return
        if work.kind is WorkKind.MORE:
            return
        self.db_queries += 1
        self.db_slow += work.slow
        if self.counted is not None and len(self.counted) < MAX_OBSERVED_PER_REQUEST:
            self.counted.append(work)
        seen = self.fingerprints
        fingerprint = work.fingerprint
        if fingerprint in seen:
            seen[fingerprint] += 1
        elif len(seen) < MAX_FINGERPRINTS_PER_REQUEST:
            seen[fingerprint] = 1
            self.statements[fingerprint] = work.statement


class RollupStore:
    """Bounded, thread-safe map from trace id to `RequestTotals`."""

    def __init__(
        self,
        *,
        max_requests: int = 10_000,
        timeout_s: float = 300.0,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._lock = threading.Lock()
        self._totals: dict[int, RequestTotals] = {}
        self.waiting: Mapping[int, RequestTotals] = self._totals
        """Read-only view of the requests with totals; empty most of the time, and cheap to test."""
        self._max_requests = max_requests
        self._timeout_s = timeout_s
        self._monotonic = monotonic
        self.keep_counted = False
        """Keep each request's counted queries (`RequestTotals.counted`) for query observers."""
        self.timed_out = 0
        """Requests whose totals were evicted because their span had not ended in time."""
        self.overflowed = 0
        """Requests whose totals were evicted because the store was full."""
        self.repeats = 0
        """DB spans not counted because they repeated another instrumentation's span."""
        self._ended: BoundedDict[int, None] = BoundedDict(max_requests)
        """Span ids of requests whose totals were taken: their children's work is late now."""
        self.late = 0
        """Cache/DB spans whose request span had already ended (a session closed after the
        response, such as FastAPI's dependency clean-up sending ROLLBACK): not counted."""

    def __len__(self) -> int:
        return len(self._totals)

    def _new_entry(self, trace_id: int) -> RequestTotals:
        """Fresh totals for ``trace_id``, making room first; call with the lock held."""
        now = self._monotonic()
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
        if self.keep_counted:
            totals.counted = []
        return totals

    def add_cache(
        self, trace_id: int, *, hits: int, misses: int, duration_ms: float, parent_id: int = 0
    ) -> None:
        """Count one cache operation of a request (its span's parent is ``parent_id``)."""
        if parent_id in self._ended:
            self.late += 1
            return
        with self._lock:
            totals = self._totals.get(trace_id) or self._new_entry(trace_id)
            totals.cache_hits += hits
            totals.cache_misses += misses
            totals.cache_ms += duration_ms

    def add_db_work(self, trace_id: int, work: DbWork) -> None:
        """Take one database span of a request; counted when it can no longer be repeated."""
        if work.parent_id in self._ended:
            self.late += 1
            return
        with self._lock:
            totals = self._totals.get(trace_id) or self._new_entry(trace_id)
            totals.add(work)

    def pop(self, trace_id: int, span_id: int = 0) -> RequestTotals | None:
        """Take the totals of request span ``span_id`` as it ends, every database span counted."""
        if trace_id not in self._totals:  # most requests: no lock needed to learn that
            return None
        with self._lock:
            totals = self._totals.pop(trace_id, None)
            if totals is not None:
                totals.settle()
                self.repeats += totals.db_repeats
                if span_id:
                    self._ended.put(span_id, None)
        return totals

    def discard(self, trace_id: int) -> None:
        """Drop the totals of a trace whose root is no request (a pool's first connect)."""
        if trace_id in self._totals:
            with self._lock:
                self._totals.pop(trace_id, None)
