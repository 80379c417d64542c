"""WeddingSpanProcessor: the thin OpenTelemetry edge over the wedding rules.

The SDK freezes a span's attributes before ``on_end`` (and ``_on_ending``
cannot add any, open-telemetry/opentelemetry-python#5614), so the verdict is
written onto a copy of the `ReadableSpan` that is forwarded downstream in
place of the original. Only SERVER spans and local roots are judged; every
other span passes through untouched.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from opentelemetry import context as otel_context
from opentelemetry.attributes import BoundedAttributes
from opentelemetry.sdk.trace import ReadableSpan, Span, SpanProcessor
from opentelemetry.semconv._incubating.attributes.http_attributes import (
    HTTP_STATUS_CODE,
    HTTP_TARGET,
)
from opentelemetry.semconv.attributes.http_attributes import (
    HTTP_RESPONSE_STATUS_CODE,
    HTTP_ROUTE,
)
from opentelemetry.semconv.attributes.url_attributes import URL_PATH
from opentelemetry.trace import SpanKind, StatusCode

from wedsync_otel import attributes as attr
from wedsync_otel._safety import RateLimitedWarning, log_internal_error, logger
from wedsync_otel.calendar import ApdexClass, Band, apdex_class, parse_wedding_date
from wedsync_otel.config import WeddingConfig
from wedsync_otel.context import (
    current_wedding,
    inherited_wedding,
    resolve_wedding_date,
    wedding_id_text,
)
from wedsync_otel.rules import Verdict, WeddingRules

_APDEX_TEXT = {apdex: apdex.value for apdex in ApdexClass}
# Enum member lookups go through the metaclass: read them once.
_UNKNOWN, _FRUSTRATED = Band.UNKNOWN, ApdexClass.FRUSTRATED
_SATISFIED, _TOLERATING, _FRUSTRATED = (
    ApdexClass.SATISFIED,
    ApdexClass.TOLERATING,
    ApdexClass.FRUSTRATED,
)

Clock = Callable[[], dt.datetime]
"""Returns the current time as an aware datetime."""

_NS_PER_MS = 1_000_000
_NS_PER_S = 1_000_000_000


@dataclass(frozen=True, slots=True)
class ProcessorStats:
    """What the processor has done and what it had to drop or ignore."""

    enriched: int
    invalid_dates: int
    invalid_durations: int
    path_cache_evictions: int
    downstream_errors: int


_new_span = object.__new__


class _EnrichedSpan(ReadableSpan):
    """A `ReadableSpan` copy with more attributes; keeps the original's dropped count."""

    _original_dropped: int

    @property
    def dropped_attributes(self) -> int:
        return self._original_dropped


def enriched_copy(span: ReadableSpan, attributes: dict[str, Any]) -> ReadableSpan:
    """A copy of ``span`` carrying ``attributes`` instead of its own.

    Copies the instance dictionary instead of calling the constructor: it is
    several times cheaper on this hot path, and it carries every field,
    including ones a later SDK adds. tests/test_processor.py checks that the
    copy matches the original on every public property.
    """
    copy = _new_span(_EnrichedSpan)
    copy.__dict__ = span.__dict__.copy()
    copy._attributes = attributes  # noqa: SLF001 - our own subclass
    copy._original_dropped = span.dropped_attributes  # noqa: SLF001
    return copy


def _plain_attributes(span: ReadableSpan) -> Mapping[str, Any]:
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


def is_local_root_or_server(span: ReadableSpan) -> bool:
    """Spans that stand for a request: SERVER spans and local roots."""
    parent = span.parent
    return span.kind is SpanKind.SERVER or parent is None or parent.is_remote


class WeddingSpanProcessor(SpanProcessor):
    """Judges server spans against the wedding rules and forwards an enriched copy.

    ``downstream`` (typically a `BatchSpanProcessor`) receives every span;
    ``clock`` returns "now" as an aware datetime (default: the span's own start
    time, which is the real time the request began).
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
        self._bad_duration = RateLimitedWarning("wedsync-otel: span has an unusable duration")
        self._listeners: tuple[Callable[[ReadableSpan, Verdict], None], ...] = ()
        self._enriched = 0
        self._downstream_errors = 0

    @property
    def downstream(self) -> SpanProcessor:
        """The processor that receives every span."""
        return self._downstream

    def stats(self) -> ProcessorStats:
        """Counters of what was enriched, ignored or dropped so far."""
        return ProcessorStats(
            enriched=self._enriched,
            invalid_dates=self._bad_date.count,
            invalid_durations=self._bad_duration.count,
            path_cache_evictions=self.rules.catalogue.evictions,
            downstream_errors=self._downstream_errors,
        )

    def add_verdict_listener(self, listener: Callable[[ReadableSpan, Verdict], None]) -> None:
        """Call ``listener`` with every enriched span and its verdict (metrics hook in here)."""
        self._listeners = (*self._listeners, listener)

    def on_start(self, span: Span, parent_context: otel_context.Context | None = None) -> None:
        try:
            # Cheapest test first: most spans start outside any wedding context.
            if (self._trust_baggage or current_wedding(parent_context) is not None) and (
                is_local_root_or_server(span)
            ):
                self._inherit_wedding(span, parent_context)
        except Exception as exc:  # noqa: BLE001 - never raise into the application
            log_internal_error("WeddingSpanProcessor.on_start", exc)
        try:
            self._downstream.on_start(span, parent_context=parent_context)
        except Exception as exc:  # noqa: BLE001
            self._downstream_failed("on_start", exc)

    def _inherit_wedding(self, span: Span, parent_context: otel_context.Context | None) -> None:
        wedding_id, wedding_date = inherited_wedding(
            parent_context, trust_baggage=self._trust_baggage
        )
        if wedding_id is None and wedding_date is None:
            return
        existing = span.attributes or {}
        if wedding_id is not None and attr.WEDDING_ID not in existing:
            span.set_attribute(attr.WEDDING_ID, wedding_id)
        if wedding_date is not None and attr.WEDDING_DATE not in existing:
            span.set_attribute(attr.WEDDING_DATE, wedding_date)

    def _on_ending(self, span: Span) -> None:
        try:
            self._downstream._on_ending(span)  # noqa: SLF001 - the SDK's own hook, forwarded
        except Exception as exc:  # noqa: BLE001
            self._downstream_failed("_on_ending", exc)

    def on_end(self, span: ReadableSpan) -> None:
        forwarded = span
        if is_local_root_or_server(span):
            try:
                forwarded = self._enrich(span)
            except Exception as exc:  # noqa: BLE001 - forward the original instead
                log_internal_error("WeddingSpanProcessor.on_end", exc)
        try:
            self._downstream.on_end(forwarded)
        except Exception as exc:  # noqa: BLE001
            self._downstream_failed("on_end", exc)

    def _enrich(self, span: ReadableSpan) -> ReadableSpan:  # noqa: PLR0912 - kept flat for speed
        # The hot path: one flat function, locals instead of attribute chains.
        raw = span._attributes  # noqa: SLF001 - read-only; see _plain_attributes
        attrs = raw._dict if raw.__class__ is BoundedAttributes else _plain_attributes(span)  # noqa: SLF001
        route = attrs.get(HTTP_ROUTE)
        if route.__class__ is not str:
            route = attrs.get(URL_PATH)
            if route.__class__ is not str:
                route = attrs.get(HTTP_TARGET)
                if route.__class__ is not str:
                    route = None
        rules = self.rules
        spec = rules.endpoint(route)
        start, end = span.start_time, span.end_time
        if self._clock is None:
            now_ns = start if start is not None else (end or 0)
        else:
            now_ns = int(self._clock().timestamp() * _NS_PER_S)
        day = rules.calendar.day_of(now_ns)
        if attr.WEDDING_DATE in attrs or attr.WEDDING_ID in attrs:
            band, days = rules.proximity(self._wedding_date(attrs), day)
        else:
            band, days = _UNKNOWN, None
        judgement = rules.judge(spec, band, day)
        status_code = attrs.get(HTTP_RESPONSE_STATUS_CODE)
        if status_code.__class__ is not int:
            status_code = _status_code(attrs)
        failed = span.status.status_code is StatusCode.ERROR or (
            status_code is not None and 500 <= status_code <= 599
        )
        if start is None or end is None or end < start:
            self._bad_duration((start, end))
            duration_ms = math.nan
            apdex = _FRUSTRATED  # a span with no usable duration frustrates
            merged = {**attrs, **judgement.span_attributes}
        else:
            duration_ms = (end - start) / _NS_PER_MS
            threshold = judgement.threshold_ms
            apdex = apdex_class(duration_ms, threshold, failed=failed)
            merged = {
                **attrs,
                **judgement.span_attributes,
                attr.WEDDING_DURATION_MS: duration_ms,
                attr.WEDDING_THRESHOLD_BREACHED: duration_ms > threshold,
                attr.WEDDING_APDEX: _APDEX_TEXT[apdex],
            }
        if days is not None:
            merged[attr.WEDDING_DAYS_UNTIL] = days
        copy = enriched_copy(span, merged)
        self._enriched += 1
        if self._listeners:
            verdict = Verdict(judgement, days, duration_ms, apdex, failed, status_code)
            for listener in self._listeners:
                try:
                    listener(copy, verdict)
                except Exception as exc:  # noqa: BLE001 - the span still goes downstream enriched
                    log_internal_error("a verdict listener", exc)
        return copy

    def _wedding_date(self, attrs: Mapping[str, Any]) -> dt.date | None:
        raw = attrs.get(attr.WEDDING_DATE)
        if raw is not None:
            date = parse_wedding_date(raw)
            if date is None:
                self._bad_date(raw if not isinstance(raw, str) else raw[:40])
            return date
        wedding_id = attrs.get(attr.WEDDING_ID)
        if wedding_id is None:
            return None
        key = wedding_id_text(wedding_id)
        return None if key is None else resolve_wedding_date(key)

    def _downstream_failed(self, where: str, exc: Exception) -> None:
        self._downstream_errors += 1
        if self._downstream_errors == 1:
            logger.warning(
                "wedsync-otel: downstream %s raised; span kept going", where, exc_info=exc
            )

    def shutdown(self) -> None:
        self._downstream.shutdown()

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return self._downstream.force_flush(timeout_millis)
