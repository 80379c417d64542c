"""WeddingSpanProcessor: the thin OpenTelemetry edge over the wedding rules.

The SDK freezes a span's attributes before ``on_end`` (and ``_on_ending``
cannot add any, open-telemetry/opentelemetry-python#5614), so the verdict is
written onto a copy of the `ReadableSpan` that is forwarded downstream in
place of the original. Only SERVER spans and local roots are judged (a
database or cache span that is a root belongs to no request, and is not);
every other span passes through untouched.
"""

from __future__ import annotations

import datetime as dt
import math
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Final, Protocol

from opentelemetry import context as otel_context
from opentelemetry.attributes import BoundedAttributes
from opentelemetry.sdk.trace import Event, ReadableSpan, Span, SpanLimits, SpanProcessor
from opentelemetry.sdk.trace import Span as SdkSpan
from opentelemetry.sdk.util import BoundedList
from opentelemetry.semconv._incubating.attributes.http_attributes import (
    HTTP_STATUS_CODE,
    HTTP_TARGET,
)
from opentelemetry.semconv.attributes.db_attributes import DB_QUERY_SUMMARY
from opentelemetry.semconv.attributes.http_attributes import (
    HTTP_RESPONSE_STATUS_CODE,
    HTTP_ROUTE,
)
from opentelemetry.semconv.attributes.url_attributes import URL_PATH
from opentelemetry.trace import SpanKind, StatusCode, TraceFlags

from wedsync_otel import attributes as attr
from wedsync_otel._bounded import BoundedDict
from wedsync_otel._safety import RateLimitedWarning, call_guarded, log_internal_error, logger
from wedsync_otel._span_copy import Scrubbed, enriched_copy
from wedsync_otel._wedding_marks import MARKS, Mark, mark_span, take_mark
from wedsync_otel.attributes import (
    CACHE_BACKEND,
    ROLLUP_APP_DURATION_MS,
    WEDDING_APDEX,
    WEDDING_DATE,
    WEDDING_DAYS_UNTIL,
    WEDDING_DURATION_MS,
    WEDDING_ID,
    WEDDING_THRESHOLD_BREACHED,
)
from wedsync_otel.calendar import ApdexClass, Band, DayFacts, parse_wedding_date
from wedsync_otel.catalogue import MAX_PATH_CHARS, bare_path
from wedsync_otel.config import WeddingConfig
from wedsync_otel.context import (
    inherited_wedding,
    resolve_wedding_date,
    wedding_id_text,
    wedding_in_context,
)
from wedsync_otel.instrumentation import queries
from wedsync_otel.privacy.scrubber import CACHE_SYSTEMS, Scrubber
from wedsync_otel.rollup import DbWork, RequestTotals, RollupStore, WorkKind
from wedsync_otel.rules import Judgement, Verdict, WeddingRules
from wedsync_otel.sampling import RECORDED_FOR_METRICS, is_local_root
from wedsync_otel.span_privacy import scrub_fields

_APDEX_TEXT = {apdex: apdex.value for apdex in ApdexClass}
# Enum member lookups go through the metaclass: read it once.
_UNKNOWN = Band.UNKNOWN
_SERVER, _ERROR = SpanKind.SERVER, StatusCode.ERROR
_SAMPLED: Final = TraceFlags.SAMPLED
_SERVER_ERRORS: Final = frozenset(range(500, 600))
"""HTTP statuses that fail a request: one set lookup per span, and None is simply absent."""

Clock = Callable[[], dt.datetime]
"""Returns the current time as an aware datetime."""

_NS_PER_MS = 1_000_000
_DEFAULT_LIMITS: Final = SpanLimits()
_NS_PER_S = 1_000_000_000


class QueryObserver(Protocol):
    """Receives every database query the processor sees (the `QueryAdvisor` is one)."""

    def observe(self, *, fingerprint: str, statement: str, duration_ms: float) -> None:
        """One query ran; ``statement`` is sanitised (its literals are ``?``)."""

    def report_n_plus_one(self, *, fingerprint: str, statement: str, count: int) -> None:
        """One request ran the same query shape ``count`` times."""


_EMPTY_CACHE_ROLLUP: Final = {
    attr.ROLLUP_CACHE_HITS: 0,
    attr.ROLLUP_CACHE_MISSES: 0,
    attr.ROLLUP_CACHE_DURATION_MS: 0.0,
}
_EMPTY_DB_ROLLUP: Final = {
    attr.ROLLUP_DB_QUERIES: 0,
    attr.ROLLUP_DB_CONTROL: 0,
    attr.ROLLUP_DB_DURATION_MS: 0.0,
    attr.ROLLUP_DB_SLOW_QUERIES: 0,
}


_PER_SPAN_PLACEHOLDERS: Final = {
    attr.WEDDING_DURATION_MS: 0.0,
    attr.WEDDING_THRESHOLD_BREACHED: False,
    attr.WEDDING_APDEX: "",
    attr.ROLLUP_APP_DURATION_MS: 0.0,
}


@dataclass(frozen=True, slots=True)
class ProcessorStats:
    """What the processor has done and what it had to drop or ignore."""

    enriched: int
    invalid_dates: int
    invalid_wedding_ids: int
    invalid_durations: int
    invalid_times: int
    """Spans whose start (or end) is not a calendar instant: judged at the current time."""
    path_cache_evictions: int
    downstream_errors: int
    requests_timed_out: int
    """Requests whose cache/DB totals were evicted because their span never ended in time."""
    requests_overflowed: int
    late_child_work: int = 0
    """Cache/DB spans that ended after their request span had: not counted in its roll-up."""
    repeated_db_spans: int = 0
    """DB spans not counted as queries: another instrumentation's span stood for the same work."""


_new_tuple = tuple.__new__


def _plain_attributes(span: ReadableSpan) -> dict[str, Any]:
    """The span's attributes as a plain dict, without copying when the SDK allows.

    `BoundedAttributes` answers ``get`` through three Python calls; its
    backing dict answers in one C call. Falls back to a copy if a future SDK
    stores attributes differently.
    """
    raw = span._attributes  # noqa: SLF001 - read-only access on the hot path
    if raw is None:
        return {}
    backing = getattr(raw, "_dict", None)
    if isinstance(backing, dict):
        return backing
    return dict(raw)


def _status_code(attrs: Mapping[str, Any]) -> int | None:
    status = attrs.get(HTTP_RESPONSE_STATUS_CODE)
    if status is None:
        status = attrs.get(HTTP_STATUS_CODE)
    if status.__class__ is int:
        return int(status)
    if isinstance(status, str) and status.isdigit() and len(status) == 3:
        return int(status)
    return None


def _fallback_route(attrs: Mapping[str, Any]) -> str | None:
    """Without an ``http.route``: ``url.path``, then the older ``http.target``."""
    for key in (URL_PATH, HTTP_TARGET):
        path = attrs.get(key)
        if type(path) is str:
            return path
    return None


_Entry = tuple[Judgement, dict[str, Any], int]
"""A judgement, the attributes every request span under it starts from, and how many."""
_Row = dict[Band, tuple[tuple[_Entry, ...], ...]]
"""One endpoint's entries: band -> [saturday][season]."""
_MAX_ROUTES: Final = 10_000
"""Routes whose endpoint row is kept; a client can send a million distinct paths."""


def _judgement_table(rules: WeddingRules, rollup: Mapping[str, Any]) -> dict[str, _Row]:
    """Every judgement with its span attributes and ``rollup``'s zeros, indexed for the hot path."""
    table: dict[str, _Row] = {}
    for spec in (*rules.config.endpoints, rules.other):
        judgements = rules.judgements(spec)
        table[spec.name] = {
            band: tuple(
                tuple(
                    _entry(judgements[(band, saturday, season)], rollup) for season in (False, True)
                )
                for saturday in (False, True)
            )
            for band in Band
        }
    return table


def _entry(judgement: Judgement, rollup: Mapping[str, Any]) -> _Entry:
    # The duration-dependent keys are present already, so setting them per span replaces a
    # value instead of growing the dict; a span without a usable duration drops them.
    base = {**judgement.span_attributes, **rollup, **_PER_SPAN_PLACEHOLDERS}
    return judgement, _with_room(base), len(base)


def _with_room(attributes: dict[str, Any]) -> dict[str, Any]:
    """``attributes`` in a hash table with room for a span's own, so per-span copies never grow.

    `dict.copy` (and ``|``) clones a table at its size when at most a third of
    its slots were deleted. Filled with half as many keys again and emptied of
    them, the table has room for more: with the 16 attributes of a judgement
    and the roll-up zeros of an app with a cache and a database, 18 more, so a
    request span's own merge in without a resize. Only speed depends on this
    CPython detail; the contents are the same either way.
    """
    roomy = dict(attributes)
    spare = [f"\0spare{index}" for index in range(len(attributes) // 2)]  # str: a compact table
    for key in spare:
        roomy[key] = None
    for key in spare:
        del roomy[key]
    return roomy


class WeddingSpanProcessor(SpanProcessor):
    """Judges server spans against the wedding rules and forwards an enriched copy.

    ``downstream`` (typically a `BatchSpanProcessor`) receives every span;
    ``clock`` returns "now" as an aware datetime (default: the span's own start
    time, which is the real time the request began). A span that is not an SDK
    span (an API `NonRecordingSpan`, a duck-typed span) is forwarded untouched.
    """

    def __init__(
        self,
        downstream: SpanProcessor,
        *,
        config: WeddingConfig | None = None,
        clock: Clock | None = None,
    ) -> None:
        self._downstream = downstream
        self.config = config or WeddingConfig.default()
        self.rules = WeddingRules(self.config)
        self._clock = clock
        self._trust_baggage = self.config.trust_baggage
        self._bad_date = RateLimitedWarning("wedsync-otel: span has an unusable wedding.date")
        self._bad_id = RateLimitedWarning("wedsync-otel: span has an unusable wedding.id")
        self._bad_duration = RateLimitedWarning("wedsync-otel: span has an unusable duration")
        self._bad_time = RateLimitedWarning(
            "wedsync-otel: span time is not on the calendar; judged at the current time"
        )
        self._lock = threading.Lock()
        self._shut_down = False
        self._limits: SpanLimits | None = None
        """The provider's span limits, read off the first live span (ended spans lack them)."""
        self._listeners: tuple[Callable[[ReadableSpan, Verdict], None], ...] = ()
        self._query_observers: tuple[QueryObserver, ...] = ()
        self.rollup = RollupStore(timeout_s=self.config.request_timeout_s)
        # Hot-path lookups, bound once: endpoint name -> band -> [saturday][season], and
        # route -> that endpoint's row (None, for a span without one, is never a key).
        self._calendar = self.rules.calendar
        self._day_of = self.rules.calendar.day_of
        self._other = self.rules.other.name
        self._cache_seen = self._db_seen = False
        """Kinds of child work seen so far: request spans carry roll-up zeros for these only."""
        self._table = _judgement_table(self.rules, {})
        self._rows_by_route: BoundedDict[str | None, _Row] = BoundedDict(_MAX_ROUTES)
        self._waiting = self.rollup.waiting
        self._marks = MARKS
        self._slow_query_ms = self.config.slow_query_ms
        self._enriched = 0
        self._downstream_errors = 0
        self.scrubber = Scrubber(self.config.privacy)
        """Applied to every field of every span this processor forwards."""
        self._scrub_attributes = self.scrubber.attributes
        self._scrub_fields = scrub_fields
        self._clean_values = self.scrubber.clean_values

    @property
    def downstream(self) -> SpanProcessor:
        """The processor that receives every span."""
        return self._downstream

    @property
    def query_observers(self) -> tuple[QueryObserver, ...]:
        """The observers `add_query_observer` registered, in order."""
        return self._query_observers

    def stats(self) -> ProcessorStats:
        """Counters of what was enriched, ignored or dropped so far."""
        return ProcessorStats(
            enriched=self._enriched,
            invalid_dates=self._bad_date.count,
            invalid_wedding_ids=self._bad_id.count,
            invalid_durations=self._bad_duration.count,
            invalid_times=self._bad_time.count,
            path_cache_evictions=self._rows_by_route.evictions,
            downstream_errors=self._downstream_errors,
            requests_timed_out=self.rollup.timed_out,
            requests_overflowed=self.rollup.overflowed,
            late_child_work=self.rollup.late,
            repeated_db_spans=self.rollup.repeats,
        )

    def add_verdict_listener(self, listener: Callable[[ReadableSpan, Verdict], None]) -> None:
        """Call ``listener`` with every enriched span and its verdict (metrics hook in here)."""
        with self._lock:  # the hot path reads the tuple without a lock; writers swap it
            self._listeners = (*self._listeners, listener)

    def add_query_observer(self, observer: QueryObserver) -> None:
        """Tell ``observer`` (a `QueryAdvisor`) about every query and every N+1 found."""
        with self._lock:
            self._query_observers = (*self._query_observers, observer)
            self.rollup.keep_counted = True  # observed when its request ends, counted once

    def _saw_work(self, *, cache: bool) -> None:
        """The first cache (or database) span: from now on request spans carry its zeros."""
        with self._lock:
            if cache:
                self._cache_seen = True
            else:
                self._db_seen = True
            zeros = {
                **(_EMPTY_CACHE_ROLLUP if self._cache_seen else {}),
                **(_EMPTY_DB_ROLLUP if self._db_seen else {}),
            }
            self._table = _judgement_table(self.rules, zeros)
            self._rows_by_route.clear()  # its rows are the old table's

    def on_start(self, span: Span, parent_context: otel_context.Context | None = None) -> None:
        try:
            if self._limits is None:
                self._limits = _limits_of(span)
            if span.__class__ is SdkSpan or isinstance(span, ReadableSpan):
                # Cheapest test first: most spans are children (queries, cache calls), and the
                # fields behind Span.kind and .parent spare a property call each.
                if (span._kind is _SERVER or is_local_root(span._parent)) and (  # noqa: SLF001
                    self._trust_baggage or wedding_in_context(parent_context)
                ):
                    self._inherit_wedding(span, parent_context)
                if _measured_only(span):
                    return  # recorded for the metrics only: no downstream sees it
        except Exception as exc:  # noqa: BLE001 - never raise into the application
            log_internal_error("WeddingSpanProcessor.on_start", exc)
        try:
            self._downstream.on_start(span, parent_context=parent_context)
        except Exception as exc:  # noqa: BLE001
            self._downstream_failed("on_start", exc)

    def _inherit_wedding(self, span: Span, parent_context: otel_context.Context | None) -> None:
        """Mark the span with its context's wedding: beside it, never in its attribute slots."""
        wedding_id, wedding_date = inherited_wedding(
            parent_context, trust_baggage=self._trust_baggage
        )
        context = span._context  # noqa: SLF001
        if context is not None:
            mark_span(context.span_id, wedding_id, wedding_date)

    def _on_ending(self, span: Span) -> None:
        try:
            if isinstance(span, ReadableSpan) and _measured_only(span):
                return
            self._downstream._on_ending(span)  # noqa: SLF001 - the SDK's own hook, forwarded
        except Exception as exc:  # noqa: BLE001
            self._downstream_failed("_on_ending", exc)

    def on_end(self, span: ReadableSpan) -> None:
        forwarded = span
        try:
            # The SDK ends a span by handing on a ReadableSpan snapshot of it.
            if span.__class__ is ReadableSpan or isinstance(span, ReadableSpan):
                exported = self._exported(span)
                if exported is None:
                    return  # judged and measured; the user's sampler dropped it
                forwarded = exported
        except Exception as exc:  # noqa: BLE001 - forward the original instead
            log_internal_error("WeddingSpanProcessor.on_end", exc)
        try:
            self._downstream.on_end(forwarded)
        except Exception as exc:  # noqa: BLE001
            self._downstream_failed("on_end", exc)

    def _exported(self, span: ReadableSpan) -> ReadableSpan | None:
        """The span as it goes downstream: judged, rolled up and scrubbed, or itself.

        None for a request recorded only for the metrics (`RequestRecordingSampler`).
        """
        raw = span._attributes  # noqa: SLF001 - read-only; see _plain_attributes
        own = raw._dict if raw.__class__ is BoundedAttributes else _plain_attributes(span)  # noqa: SLF001
        attrs = own
        if self._marks:  # some live span was marked with its wedding: is it this one?
            context = span._context  # noqa: SLF001
            mark = None if context is None else take_mark(context.span_id)
            if mark is not None:
                attrs = _with_mark(own, mark)
        if RECORDED_FOR_METRICS in own:  # judged and measured, never exported: nothing to scrub
            self._enrich(span, attrs, None, attrs, fields=None, removed=0)
            return None
        # Judged on what the application set; exported as the scrubber lets it go.
        clean = self._scrub_attributes(attrs)
        exported = attrs if clean is None else clean
        removed = 0 if clean is None else len(attrs) - len(clean)
        fields = None
        forwarded = span
        if CACHE_BACKEND in attrs or "db.system" in attrs or "db.system.name" in attrs:
            fields = self._scrub_fields(self.scrubber, span, attrs)  # renamed by its query
            forwarded = self._with_child_work(span, attrs, exported, fields, removed)
        else:
            # The usual span: a name seen clean, no status text, no events, no links.
            events, links = span._events, span._links  # noqa: SLF001
            if (
                span._name not in self._clean_values  # noqa: SLF001
                or span._status._description  # noqa: SLF001
                or (events._dq if events.__class__ is BoundedList else events)  # type: ignore[attr-defined]  # noqa: SLF001
                or (links._dq if links.__class__ is BoundedList else links)  # type: ignore[attr-defined]  # noqa: SLF001
            ):
                fields = self._scrub_fields(self.scrubber, span, attrs)
            # A request: a SERVER span or a local root (the fields, not the properties).
            if span._kind is _SERVER or is_local_root(span._parent):  # noqa: SLF001
                forwarded = self._enrich(
                    span, attrs, None, exported, fields=fields, removed=removed
                )
        if forwarded is span and (fields is not None or exported is not own):
            return enriched_copy(span, exported, scrubbed=fields, removed=removed)
        return forwarded

    def _with_child_work(
        self,
        span: ReadableSpan,
        attrs: dict[str, Any],
        exported: dict[str, Any],
        fields: Scrubbed | None,
        removed: int,
    ) -> ReadableSpan:
        """A cache or database span: rolled up into its request, its text rewritten.

        A local root of this kind (a query a worker thread ran with no context,
        as aiosqlite's thread does) belongs to no request: it is not judged as one.
        """
        parent = span._parent  # noqa: SLF001
        parent_id = 0 if parent is None else parent.span_id
        if span._kind is _SERVER:  # noqa: SLF001 - a server that is also a DB client: a request
            extra = self._child_work(span, attrs, parent_id=parent_id)
            return self._enrich(span, attrs, extra, exported, fields=fields, removed=removed)
        if is_local_root(parent):  # a root that is no request
            extra = self._child_work(span, attrs, parent_id=None)
            context = span._context  # noqa: SLF001
            if context is not None and self._waiting:  # its children's work has no taker
                self.rollup.discard(context.trace_id)
        else:
            extra = self._child_work(span, attrs, parent_id=parent_id)
        if extra:
            return enriched_copy(span, exported | extra, scrubbed=fields, removed=removed)
        return span  # _exported copies it when its fields or attributes were scrubbed

    def _child_work(
        self, span: ReadableSpan, attrs: Mapping[str, Any], *, parent_id: int | None
    ) -> dict[str, Any] | None:
        """Roll a cache or database span up into its request; rewrite a query's text.

        ``parent_id`` is the span's parent's id (0 for none), or None for a span
        that belongs to no request: rewritten and observed, never rolled up.
        """
        context = span._context  # noqa: SLF001 - the fields, not the properties (a call each)
        trace_id = 0 if context is None else context.trace_id
        start, end = span._start_time, span._end_time  # noqa: SLF001
        timed = start is not None and end is not None and end >= start
        duration_ms = (end - start) / 1e6 if timed else 0.0  # type: ignore[operator]
        if attr.CACHE_BACKEND in attrs:
            if parent_id is not None:
                if not self._cache_seen:
                    self._saw_work(cache=True)
                hits, misses = queries.cache_counts(attrs)
                self.rollup.add_cache(
                    trace_id, hits=hits, misses=misses, duration_ms=duration_ms, parent_id=parent_id
                )
            return None
        system = attrs.get("db.system.name") or attrs.get("db.system")
        if system.__class__ is not str or system in CACHE_SYSTEMS:
            return None
        fingerprint, statement, rewritten, kind = queries.query(
            attrs,
            duration_ms=duration_ms,
            slow_ms=self._slow_query_ms,
            name=span._name,  # noqa: SLF001
        )
        raw = attrs.get("db.query.text") or attrs.get("db.statement")
        if raw.__class__ is str and DB_QUERY_SUMMARY not in attrs:
            rewritten[DB_QUERY_SUMMARY] = self.scrubber.summary(raw, system.lower())
        if parent_id is None:
            if kind is not WorkKind.CONTROL:
                self._observe(fingerprint, statement, duration_ms)
            return rewritten
        if not self._db_seen:
            self._saw_work(cache=False)
        scope = span._instrumentation_scope  # noqa: SLF001
        work = DbWork(
            fingerprint,
            statement,
            start if timed else 0,  # type: ignore[arg-type]
            end if timed else 0,  # type: ignore[arg-type]
            0 if context is None else context.span_id,
            parent_id,
            "" if scope is None else scope.name,
            kind,
            duration_ms > self._slow_query_ms,
        )
        self.rollup.add_db_work(trace_id, work)
        return rewritten

    def _observe(self, fingerprint: str, statement: str, duration_ms: float) -> None:
        for observer in self._query_observers:
            call_guarded(
                "a query observer",
                observer.observe,
                fingerprint=fingerprint,
                statement=statement,
                duration_ms=duration_ms,
            )

    def _enrich(  # noqa: PLR0912, PLR0915 - the hot path, kept flat for speed
        self,
        span: ReadableSpan,
        attrs: dict[str, Any],
        extra: dict[str, Any] | None,
        exported: dict[str, Any],
        *,
        fields: Scrubbed | None,
        removed: int,
    ) -> ReadableSpan:
        """The verdict on one request span, written onto its copy (the hot path: kept flat)."""
        route = attrs.get(HTTP_ROUTE)
        if route.__class__ is not str:
            route = _fallback_route(attrs)
        row = self._rows_by_route.get(route)
        if row is None:
            row = self._row_for(route)
        start, end = span._start_time, span._end_time  # noqa: SLF001 - not the properties
        if self._clock is None and start is not None:
            # day_of's own first test, inline: the day changes once an hour at most.
            low, high, day = self._calendar.last_day
            if not low <= start < high:
                day = self._day_at(start)
        else:
            day = self._day_at(self._now_ns(end))
        if WEDDING_DATE in attrs or WEDDING_ID in attrs:
            band, days = self.rules.proximity(self._wedding_date(attrs), day)
        else:
            band, days = _UNKNOWN, None
        judgement, base, size = row[band][day.saturday][day.season]
        status_code = attrs.get(HTTP_RESPONSE_STATUS_CODE)
        if status_code.__class__ is not int:
            status_code = _status_code(attrs)
        failed = status_code in _SERVER_ERRORS or span._status._status_code is _ERROR  # noqa: SLF001
        merged = base | exported  # a clone of base's keys table, then the span's few keys
        if len(merged) != size + len(exported):  # the span set some wedding.* itself
            merged.update(base)
        if start is None or end is None or end < start:
            self._bad_duration((start, end))
            duration_ms = math.nan  # no usable duration: frustrated, with no duration attributes
            for key in _PER_SPAN_PLACEHOLDERS:
                del merged[key]
            apdex = judgement.apdex(duration_ms, failed=failed)
        else:
            merged[WEDDING_DURATION_MS] = merged[ROLLUP_APP_DURATION_MS] = duration_ms = (
                end - start
            ) / _NS_PER_MS
            apdex = judgement.apdex(duration_ms, failed=failed)
            merged[WEDDING_APDEX] = _APDEX_TEXT[apdex]
            merged[WEDDING_THRESHOLD_BREACHED] = judgement.breached(duration_ms)
        if days is not None:
            merged[WEDDING_DAYS_UNTIL] = days
        if extra:
            merged.update(extra)
        totals = events = None
        if self._waiting:  # a request with cache or database work: its totals wait here
            context = span._context  # noqa: SLF001
            totals = None if context is None else self.rollup.pop(context.trace_id, context.span_id)
            if totals is not None:
                events = self._roll_up(span, merged, totals, duration_ms)
        copy = enriched_copy(span, merged, events, scrubbed=fields, removed=removed)
        self._enriched += 1
        if self._listeners:
            # tuple.__new__ is what Verdict() calls, minus a Python frame and its defaults.
            hits, misses, db_ms = (
                (0, 0, 0.0)
                if totals is None
                else (totals.cache_hits, totals.cache_misses, totals.db_ms)
            )
            verdict = _new_tuple(
                Verdict,
                (judgement, days, duration_ms, apdex, failed, status_code, hits, misses, db_ms),
            )
            for listener in self._listeners:  # the span still goes downstream if one raises
                call_guarded("a verdict listener", listener, copy, verdict)
        return copy

    def _roll_up(
        self,
        span: ReadableSpan,
        merged: dict[str, Any],
        totals: RequestTotals,
        duration_ms: float,
    ) -> tuple[Event, ...] | None:
        """Write the request's cache and database totals; an N+1 event when one is found."""
        if self._cache_seen:
            merged[attr.ROLLUP_CACHE_HITS] = totals.cache_hits
            merged[attr.ROLLUP_CACHE_MISSES] = totals.cache_misses
            merged[attr.ROLLUP_CACHE_DURATION_MS] = totals.cache_ms
        if self._db_seen:
            merged[attr.ROLLUP_DB_QUERIES] = totals.db_queries
            merged[attr.ROLLUP_DB_CONTROL] = totals.db_control
            merged[attr.ROLLUP_DB_DURATION_MS] = totals.db_ms
            merged[attr.ROLLUP_DB_SLOW_QUERIES] = totals.db_slow
        for work in totals.counted or ():
            self._observe(work.fingerprint, work.statement, work.duration_ms)
        if not math.isnan(duration_ms):
            merged[attr.ROLLUP_APP_DURATION_MS] = max(
                0.0, duration_ms - totals.cache_ms - totals.db_ms
            )
        repeated = totals.repeated(self.config.n_plus_one_limit)
        if repeated is None:
            return None
        fingerprint, count = repeated
        statement = totals.statements.get(fingerprint, "")
        merged[attr.DB_N_PLUS_ONE] = fingerprint
        for observer in self._query_observers:
            call_guarded(
                "a query observer",
                observer.report_n_plus_one,
                fingerprint=fingerprint,
                statement=statement,
                count=count,
            )
        # Bounded as the SDK bounds an event it adds itself, by the provider's limits.
        limits = self._limits or _DEFAULT_LIMITS
        event_attributes = BoundedAttributes(
            limits.max_event_attributes,
            {attr.DB_FINGERPRINT: fingerprint, "db.query.count": count, "db.query.text": statement},
            max_value_len=limits.max_attribute_length,
            immutable=True,
        )
        return (Event(attr.DB_N_PLUS_ONE, event_attributes, timestamp=span._end_time),)  # noqa: SLF001

    def _row_for(self, route: str | None) -> _Row:
        """The entries of a route not seen lately: the catalogue decides, once per path.

        Cached by the catalogue's bare path (a query string never decides, so
        a million tokens in ``http.target`` share one entry); this is the one
        cache of its answers on the hot path. A path too long to classify is
        not kept, so the cache stays small in bytes too.
        """
        if route is None:
            return self._table[self._other]
        path = bare_path(route)
        row = self._rows_by_route.get(path)
        if row is None:
            spec = self.rules.catalogue.classify(path)
            row = self._table[self._other if spec is None else spec.name]
            if len(path) <= MAX_PATH_CHARS:
                self._rows_by_route.put(path, row)
        return row

    def _day_at(self, epoch_ns: int) -> DayFacts:
        """The calendar day of an instant; an instant off the calendar is judged as now, counted."""
        try:
            return self._day_of(epoch_ns)
        except (OverflowError, ValueError, OSError, TypeError):
            self._bad_time(epoch_ns)
            return self._day_of(time.time_ns())

    def _now_ns(self, end_ns: int | None) -> int:
        """The instant a span is judged at: the injected clock, else its end (it has no start)."""
        if self._clock is not None:
            return int(self._clock().timestamp() * _NS_PER_S)
        return end_ns or 0

    def _wedding_date(self, attrs: Mapping[str, Any]) -> dt.date | None:
        raw = attrs.get(WEDDING_DATE)
        if raw is not None:
            date = parse_wedding_date(raw)
            if date is None:
                self._bad_date(raw)
            return date
        wedding_id = attrs.get(WEDDING_ID)
        if wedding_id is None:
            return None
        key = wedding_id_text(wedding_id)
        if key is None:
            self._bad_id(wedding_id)
            return None
        return resolve_wedding_date(key)

    def _downstream_failed(self, where: str, exc: Exception) -> None:
        self._downstream_errors += 1
        if self._downstream_errors == 1:
            logger.warning(
                "wedsync-otel: downstream %s raised; span kept going", where, exc_info=exc
            )

    def shutdown(self) -> None:
        """Shut the downstream down once; what it raises is logged and counted, never raised."""
        with self._lock:
            if self._shut_down:
                return
            self._shut_down = True
        try:
            self._downstream.shutdown()
        except Exception as exc:  # noqa: BLE001 - the README promises this never raises
            self._downstream_failed("shutdown", exc)

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        """The downstream's answer; False (not flushed) when it raises."""
        try:
            return self._downstream.force_flush(timeout_millis)
        except Exception as exc:  # noqa: BLE001
            self._downstream_failed("force_flush", exc)
            return False


def _measured_only(span: ReadableSpan) -> bool:
    """Whether `RequestRecordingSampler` recorded this span for the metrics only."""
    context = span._context  # noqa: SLF001
    if context is None or context.trace_flags & _SAMPLED:
        return False
    return RECORDED_FOR_METRICS in _plain_attributes(span)


def _limits_of(span: object) -> SpanLimits | None:
    """The limits an SDK span was made with (a private field: None if a later SDK moves it)."""
    limits = getattr(span, "_limits", None)
    return limits if isinstance(limits, SpanLimits) else None


def _with_mark(attributes: dict[str, Any], mark: Mark) -> dict[str, Any]:
    """The span's attributes with its wedding mark, where the application set none itself."""
    wedding_id, wedding_date = mark
    marked = dict(attributes)
    if wedding_id is not None and WEDDING_ID not in attributes:
        marked[WEDDING_ID] = wedding_id
    if wedding_date is not None and WEDDING_DATE not in attributes:
        marked[WEDDING_DATE] = wedding_date
    return marked
