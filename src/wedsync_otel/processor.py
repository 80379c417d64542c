"""WeddingSpanProcessor: the thin OpenTelemetry edge over the request judge and child stage.

The SDK freezes a span's attributes before ``on_end`` (and ``_on_ending``
cannot add any, open-telemetry/opentelemetry-python#5614), so the verdict is
written onto a copy of the `ReadableSpan` that is forwarded downstream in
place of the original. This module only classifies and dispatches: a
request span (SERVER, or a local root) goes to the `RequestJudge`, a cache
or database span to the `ChildSpanStage`, every span through the privacy
scrubber; then it copies, forwards and tells listeners.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final

from opentelemetry import context as otel_context
from opentelemetry.sdk.trace import ReadableSpan, Span, SpanLimits, SpanProcessor
from opentelemetry.trace import SpanContext, SpanKind, StatusCode, TraceFlags

from wedsync_otel import _sdk
from wedsync_otel._safety import call_guarded, log_internal_error, logger
from wedsync_otel._sdk import Scrubbed, enriched_copy, plain_attributes
from wedsync_otel._wedding_marks import MARKS, mark_span, take_mark, with_mark
from wedsync_otel.attributes import (
    ROLLUP_APP_DURATION_MS,
    WEDDING_APDEX,
    WEDDING_DURATION_MS,
    WEDDING_THRESHOLD_BREACHED,
)
from wedsync_otel.calendar import Clock
from wedsync_otel.child_spans import ChildSpanStage, QueryObserver, is_child_work
from wedsync_otel.config import WeddingConfig
from wedsync_otel.context import inherited_wedding, wedding_in_context
from wedsync_otel.privacy.scrubber import Scrubber
from wedsync_otel.request_judge import RequestJudge
from wedsync_otel.rules import Verdict, WeddingRules
from wedsync_otel.sampling import RECORDED_FOR_METRICS, is_local_root
from wedsync_otel.span_privacy import scrub_fields

__all__ = ["Clock", "ProcessorStats", "QueryObserver", "WeddingSpanProcessor"]

_TIMED_KEYS: Final = (
    WEDDING_DURATION_MS,
    WEDDING_THRESHOLD_BREACHED,
    WEDDING_APDEX,
    ROLLUP_APP_DURATION_MS,
)
"""What only a span with a usable duration carries: never the application's own values."""
_SERVER, _ERROR, _SAMPLED = SpanKind.SERVER, StatusCode.ERROR, TraceFlags.SAMPLED
"""Read once: an enum member lookup goes through the metaclass, a Python call each time."""


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


class WeddingSpanProcessor(SpanProcessor):
    """Judges request spans against the wedding rules and forwards an enriched copy.

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
        self.judge = RequestJudge(self.rules, clock=clock)
        self.scrubber = Scrubber(self.config.privacy)
        """Applied to every field of every span this processor forwards."""
        self.children = ChildSpanStage(self.config, self.scrubber)
        self.rollup = self.children.rollup
        self._trust_baggage = self.config.trust_baggage
        self._lock = threading.Lock()
        self._shut_down = False
        self._limits: SpanLimits | None = None
        """The provider's span limits, read off the first live span (ended spans lack them)."""
        self._listeners: tuple[Callable[[ReadableSpan, Verdict], None], ...] = ()
        self._enriched = 0
        self._downstream_errors = 0
        self._scrub_attributes = self.scrubber.attributes
        self._scrub_fields = scrub_fields
        self._clean_names = self.scrubber.clean_values

    @property
    def downstream(self) -> SpanProcessor:
        """The processor that receives every span."""
        return self._downstream

    @property
    def query_observers(self) -> tuple[QueryObserver, ...]:
        """The observers `add_query_observer` registered, in order."""
        return self.children.observers

    def stats(self) -> ProcessorStats:
        """Counters of what was enriched, ignored or dropped so far."""
        return ProcessorStats(
            enriched=self._enriched,
            invalid_dates=self.judge.bad_date.count,
            invalid_wedding_ids=self.judge.bad_id.count,
            invalid_durations=self.judge.bad_duration.count,
            invalid_times=self.judge.bad_time.count,
            path_cache_evictions=self.rules.catalogue.evictions,
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
            self.children.add_observer(observer)

    def on_start(self, span: Span, parent_context: otel_context.Context | None = None) -> None:
        try:
            if self._limits is None:
                self._limits = _sdk.limits_of(span)
            if isinstance(span, ReadableSpan):
                context = span.context
                if (span.kind is _SERVER or is_local_root(span.parent)) and (
                    self._trust_baggage or wedding_in_context(parent_context)
                ):
                    self._inherit_wedding(context, parent_context)
                if _measured_only(span, context):
                    return  # recorded for the metrics only: no downstream sees it
        except Exception as exc:  # noqa: BLE001 - never raise into the application
            log_internal_error("WeddingSpanProcessor.on_start", exc)
        try:
            self._downstream.on_start(span, parent_context=parent_context)
        except Exception as exc:  # noqa: BLE001
            self._downstream_failed("on_start", exc)

    def _inherit_wedding(
        self, context: SpanContext | None, parent_context: otel_context.Context | None
    ) -> None:
        """Mark the span with its context's wedding: beside it, never in its attribute slots."""
        wedding_id, wedding_date = inherited_wedding(
            parent_context, trust_baggage=self._trust_baggage
        )
        if context is not None:
            mark_span(context.span_id, wedding_id, wedding_date)

    def _on_ending(self, span: Span) -> None:
        try:
            if isinstance(span, ReadableSpan) and _measured_only(span, span.context):
                return
            _sdk.forward_on_ending(self._downstream, span)
        except Exception as exc:  # noqa: BLE001
            self._downstream_failed("_on_ending", exc)

    def on_end(self, span: ReadableSpan) -> None:
        forwarded = span
        try:
            # The SDK ends a span by handing on a ReadableSpan snapshot of it.
            if isinstance(span, ReadableSpan):
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
        own = plain_attributes(span)
        attrs = own
        context = span.context
        if MARKS and context is not None:  # some live span was marked with its wedding: this one?
            mark = take_mark(context.span_id)
            if mark is not None:
                attrs = with_mark(own, mark)
        if RECORDED_FOR_METRICS in own:  # judged and measured, never exported: nothing to scrub
            self._judged(span, context, attrs, attrs, None, fields=None, removed=0)
            return None
        # Judged on what the application set; exported as the scrubber lets it go.
        clean = self._scrub_attributes(attrs)
        exported = attrs if clean is None else clean
        removed = 0 if clean is None else len(attrs) - len(clean)
        child = is_child_work(attrs)
        fields = None
        # The usual span has a name seen clean before, no status text, no events, no links.
        if child or _sdk.has_more_than_attributes(span) or span.name not in self._clean_names:
            fields = self._scrub_fields(self.scrubber, span, attrs)
        server = span.kind is _SERVER
        extra = self._child_work(span, context, attrs, server=server) if child else None
        # A cache or DB span that is a local root belongs to no request: it is not one.
        if server or (not child and is_local_root(span.parent)):
            return self._judged(
                span, context, attrs, exported, extra, fields=fields, removed=removed
            )
        if extra or fields is not None or exported is not own:
            return enriched_copy(
                span, exported | extra if extra else exported, scrubbed=fields, removed=removed
            )
        return span

    def _child_work(
        self,
        span: ReadableSpan,
        context: SpanContext | None,
        attrs: dict[str, Any],
        *,
        server: bool,
    ) -> dict[str, Any] | None:
        """Hand a cache or database span to the child stage; the attributes its query adds.

        A local root of this kind that is not a SERVER span (a query a worker
        thread ran with no context, as aiosqlite's does) belongs to no request.
        """
        parent, scope = span.parent, span.instrumentation_scope
        belongs = server or not is_local_root(parent)
        extra = self.children.record(
            attrs,
            name=span.name,
            trace_id=0 if context is None else context.trace_id,
            span_id=0 if context is None else context.span_id,
            parent_id=(0 if parent is None else parent.span_id) if belongs else None,
            start_ns=span.start_time,
            end_ns=span.end_time,
            scope="" if scope is None else scope.name,
        )
        if not belongs and context is not None:  # its children's work has no taker
            self.rollup.discard(context.trace_id)
        return extra

    def _judged(
        self,
        span: ReadableSpan,
        context: SpanContext | None,
        attrs: dict[str, Any],
        exported: dict[str, Any],
        extra: dict[str, Any] | None,
        *,
        fields: Scrubbed | None,
        removed: int,
    ) -> ReadableSpan:
        """A request span's copy carrying its verdict and roll-up; listeners told."""
        end = span.end_time
        verdict, marks = self.judge.judge(
            attrs, span.start_time, end, error_status=span.status.status_code is _ERROR
        )
        totals = None if context is None else self.children.take(context.trace_id, context.span_id)
        rollup, event = self.children.roll_up(
            totals, verdict.duration_ms, end_ns=end, limits=self._limits
        )
        merged = exported | marks  # the judge's attributes win over any the application set
        if math.isnan(verdict.duration_ms):
            for key in _TIMED_KEYS:
                merged.pop(key, None)
        merged.update(rollup)
        if extra:
            merged.update(extra)
        copy = enriched_copy(
            span, merged, None if event is None else (event,), scrubbed=fields, removed=removed
        )
        self._enriched += 1
        if self._listeners:
            if totals is not None:
                verdict = verdict.with_rollup(totals.cache_hits, totals.cache_misses, totals.db_ms)
            for listener in self._listeners:  # the span still goes downstream if one raises
                call_guarded("a verdict listener", listener, copy, verdict)
        return copy

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


def _measured_only(span: ReadableSpan, context: SpanContext | None) -> bool:
    """Whether `RequestRecordingSampler` recorded this span (its own ``context``) for metrics."""
    if context is None or context.trace_flags & _SAMPLED:
        return False
    return RECORDED_FOR_METRICS in plain_attributes(span)
