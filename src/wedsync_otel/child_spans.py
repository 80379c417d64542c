"""The child-span stage: cache and database spans rolled up into their request.

A cache or database span ends before its request span. This stage counts
its work into the request's `RequestTotals` (hits, misses, queries, DB time
with overlaps counted once), rewrites a query's attributes to its sanitised
shape (fingerprint, slow flag, summary), tells query observers (the
`QueryAdvisor`) about every query, and, when the request span ends, writes
the totals and an N+1 event onto it. It reads plain values, never an SDK
span; every call into an observer goes through `call_guarded`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any, Final, Protocol

from opentelemetry.attributes import BoundedAttributes
from opentelemetry.sdk.trace import Event, SpanLimits
from opentelemetry.semconv.attributes.db_attributes import DB_QUERY_SUMMARY

from wedsync_otel import attributes as attr
from wedsync_otel._safety import call_guarded
from wedsync_otel.config import WeddingConfig
from wedsync_otel.instrumentation import queries
from wedsync_otel.privacy.scrubber import CACHE_SYSTEMS, Scrubber
from wedsync_otel.rollup import DbWork, RequestTotals, RollupStore, WorkKind


class QueryObserver(Protocol):
    """Receives every database query the processor sees (the `QueryAdvisor` is one)."""

    def observe(self, *, fingerprint: str, statement: str, duration_ms: float) -> None:
        """One query ran; ``statement`` is sanitised (its literals are ``?``)."""

    def report_n_plus_one(self, *, fingerprint: str, statement: str, count: int) -> None:
        """One request ran the same query shape ``count`` times."""


_CACHE_ZEROS: Final = {
    attr.ROLLUP_CACHE_HITS: 0,
    attr.ROLLUP_CACHE_MISSES: 0,
    attr.ROLLUP_CACHE_DURATION_MS: 0.0,
}
_DB_ZEROS: Final = {
    attr.ROLLUP_DB_QUERIES: 0,
    attr.ROLLUP_DB_CONTROL: 0,
    attr.ROLLUP_DB_DURATION_MS: 0.0,
    attr.ROLLUP_DB_SLOW_QUERIES: 0,
}
_DEFAULT_LIMITS: Final = SpanLimits()


def is_child_work(attrs: Mapping[str, Any]) -> bool:
    """Whether a span is cache or database work (by the attributes its instrumentation sets)."""
    return attr.CACHE_BACKEND in attrs or "db.system" in attrs or "db.system.name" in attrs


class ChildSpanStage:
    """Counts child work per request and writes it onto the request span when that ends."""

    def __init__(self, config: WeddingConfig, scrubber: Scrubber) -> None:
        self.rollup = RollupStore(timeout_s=config.request_timeout_s)
        self.observers: tuple[QueryObserver, ...] = ()
        """Swapped whole by `add_observer`, read without a lock."""
        self._scrubber = scrubber
        self._slow_query_ms = config.slow_query_ms
        self._n_plus_one_limit = config.n_plus_one_limit
        self._cache_seen = self._db_seen = False
        """Kinds of child work seen so far: request spans carry roll-up zeros for these only."""

    def add_observer(self, observer: QueryObserver) -> None:
        """Tell ``observer`` about every query and every N+1 found (the caller holds a lock)."""
        self.observers = (*self.observers, observer)
        self.rollup.keep_counted = True  # observed when its request ends, counted once

    def record(
        self,
        attrs: Mapping[str, Any],
        *,
        name: str,
        trace_id: int,
        span_id: int,
        parent_id: int | None,
        start_ns: int | None,
        end_ns: int | None,
        scope: str,
    ) -> dict[str, Any] | None:
        """Count one cache or database span; the attributes its query adds, if any.

        ``parent_id`` is the span's parent's id (0 for none), or None for a span
        that belongs to no request: rewritten and observed, never rolled up.
        """
        timed = start_ns is not None and end_ns is not None and end_ns >= start_ns
        duration_ms = (end_ns - start_ns) / 1e6 if timed else 0.0  # type: ignore[operator]
        if attr.CACHE_BACKEND in attrs:
            if parent_id is not None:
                self._cache_seen = True
                hits, misses = queries.cache_counts(attrs)
                self.rollup.add_cache(
                    trace_id, hits=hits, misses=misses, duration_ms=duration_ms, parent_id=parent_id
                )
            return None
        system = attrs.get("db.system.name") or attrs.get("db.system")
        if type(system) is not str or system in CACHE_SYSTEMS:
            return None
        query = queries.query(
            attrs, duration_ms=duration_ms, slow_ms=self._slow_query_ms, name=name
        )
        rewritten = query.attributes
        raw = attrs.get("db.query.text") or attrs.get("db.statement")
        if type(raw) is str and DB_QUERY_SUMMARY not in attrs:
            rewritten[DB_QUERY_SUMMARY] = self._scrubber.summary(raw, system.lower())
        if parent_id is None:
            if query.kind is not WorkKind.CONTROL:
                self._observe(query.fingerprint, query.statement, duration_ms)
            return rewritten
        self._db_seen = True
        work = DbWork(
            query.fingerprint,
            query.statement,
            start_ns if timed else 0,  # type: ignore[arg-type]
            end_ns if timed else 0,  # type: ignore[arg-type]
            span_id,
            parent_id,
            scope,
            query.kind,
            duration_ms > self._slow_query_ms,
        )
        self.rollup.add_db_work(trace_id, work)
        return rewritten

    def take(self, trace_id: int, span_id: int) -> RequestTotals | None:
        """The totals of the request whose span this is, removed from the store."""
        return self.rollup.pop(trace_id, span_id) if self.rollup.waiting else None

    def roll_up(
        self,
        totals: RequestTotals | None,
        duration_ms: float,
        *,
        end_ns: int | None,
        limits: SpanLimits | None,
    ) -> tuple[dict[str, Any], Event | None]:
        """The roll-up attributes of a request span, and its N+1 event when one is found.

        A request without child work carries zeros for the kinds of work the
        application has shown so far, so a dashboard can tell "none" from "not
        instrumented"; its app time is all of its duration.
        """
        rollup: dict[str, Any] = {}
        if self._cache_seen:
            rollup.update(_CACHE_ZEROS)
        if self._db_seen:
            rollup.update(_DB_ZEROS)
        if not math.isnan(duration_ms):
            rollup[attr.ROLLUP_APP_DURATION_MS] = duration_ms
        if totals is None:
            return rollup, None
        if self._cache_seen:
            rollup[attr.ROLLUP_CACHE_HITS] = totals.cache_hits
            rollup[attr.ROLLUP_CACHE_MISSES] = totals.cache_misses
            rollup[attr.ROLLUP_CACHE_DURATION_MS] = totals.cache_ms
        if self._db_seen:
            rollup[attr.ROLLUP_DB_QUERIES] = totals.db_queries
            rollup[attr.ROLLUP_DB_CONTROL] = totals.db_control
            rollup[attr.ROLLUP_DB_DURATION_MS] = totals.db_ms
            rollup[attr.ROLLUP_DB_SLOW_QUERIES] = totals.db_slow
        for work in totals.counted or ():
            self._observe(work.fingerprint, work.statement, work.duration_ms)
        if not math.isnan(duration_ms):
            rollup[attr.ROLLUP_APP_DURATION_MS] = max(
                0.0, duration_ms - totals.cache_ms - totals.db_ms
            )
        return rollup, self._n_plus_one(totals, rollup, end_ns, limits)

    def _n_plus_one(
        self,
        totals: RequestTotals,
        rollup: dict[str, Any],
        end_ns: int | None,
        limits: SpanLimits | None,
    ) -> Event | None:
        repeated = totals.repeated(self._n_plus_one_limit)
        if repeated is None:
            return None
        fingerprint, count = repeated
        statement = totals.statements.get(fingerprint, "")
        rollup[attr.DB_N_PLUS_ONE] = fingerprint
        for observer in self.observers:
            call_guarded(
                "a query observer",
                observer.report_n_plus_one,
                fingerprint=fingerprint,
                statement=statement,
                count=count,
            )
        # Bounded as the SDK bounds an event it adds itself, by the provider's limits.
        limits = limits or _DEFAULT_LIMITS
        event_attributes = BoundedAttributes(
            limits.max_event_attributes,
            {attr.DB_FINGERPRINT: fingerprint, "db.query.count": count, "db.query.text": statement},
            max_value_len=limits.max_attribute_length,
            immutable=True,
        )
        return Event(attr.DB_N_PLUS_ONE, event_attributes, timestamp=end_ns)

    def _observe(self, fingerprint: str, statement: str, duration_ms: float) -> None:
        for observer in self.observers:
            call_guarded(
                "a query observer",
                observer.observe,
                fingerprint=fingerprint,
                statement=statement,
                duration_ms=duration_ms,
            )
