"""Every use of the OpenTelemetry SDK's private state, in one place.

The SDK has no public API for what this package must do in three places:
read an ended span's attributes without a Python call per lookup, forward a
copy of an ended span with more attributes (the SDK freezes them before
``on_end``), and put the wedding processor and metric exporter in front of
what zero-code setup already installed. Everything that reads or writes a
private field is here, so that tests/test_sdk_shape.py can check each one
against the installed SDK and fail by name when a release moves it;
everywhere else the package uses the public API.
"""

from __future__ import annotations

import contextvars
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, Final, NamedTuple, TypeVar

from opentelemetry import context as otel_context
from opentelemetry.attributes import BoundedAttributes
from opentelemetry.sdk._configuration import _OTelSDKConfigurator
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import MetricExporter, PeriodicExportingMetricReader
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import (
    Event,
    ReadableSpan,
    Span,
    SpanLimits,
    SpanProcessor,
    TracerProvider,
)
from opentelemetry.sdk.util import BoundedList
from opentelemetry.trace import Link, Status

from wedsync_otel import attributes as attr

_T = TypeVar("_T")
_P = TypeVar("_P", bound=SpanProcessor)

SdkConfigurator = _OTelSDKConfigurator
"""The SDK's configurator, which opentelemetry-distro subclasses the same way."""


def plain_attributes(span: ReadableSpan) -> dict[str, Any]:
    """The span's attributes as a plain dict to read, without copying when the SDK allows.

    `BoundedAttributes` answers ``get`` through three Python calls; its backing
    dict answers in one C call. A copy if a future SDK stores them differently.
    """
    raw = span._attributes  # noqa: SLF001
    if raw is None:
        return {}
    backing = getattr(raw, "_dict", None)
    if isinstance(backing, dict):
        return backing
    return dict(raw)


def has_more_than_attributes(span: ReadableSpan) -> bool:
    """Whether the span has a status text, events or links (without copying them)."""
    events, links = span._events, span._links  # noqa: SLF001
    return bool(
        span._status._description  # noqa: SLF001
        or (events._dq if events.__class__ is BoundedList else events)  # type: ignore[attr-defined]  # noqa: SLF001
        or (links._dq if links.__class__ is BoundedList else links)  # type: ignore[attr-defined]  # noqa: SLF001
    )


def limits_of(span: object) -> SpanLimits | None:
    """The limits a live SDK span was made with (None if a later SDK moves them)."""
    limits = getattr(span, "_limits", None)
    return limits if isinstance(limits, SpanLimits) else None


class Scrubbed(NamedTuple):
    """The fields of a span other than its attributes as they may be exported; None: unchanged."""

    name: str | None
    events: tuple[Event, ...] | None
    status: Status | None
    links: tuple[Link, ...] | None


class _EnrichedSpan(ReadableSpan):
    """A `ReadableSpan` copy with more attributes; keeps the original's dropped count."""

    _dropped_attributes = 0  # the common case; set on the copy only when some were dropped

    @property
    def dropped_attributes(self) -> int:
        return self._dropped_attributes


def enriched_copy(
    span: ReadableSpan,
    attributes: dict[str, Any],
    events: Sequence[Event] | None = None,
    *,
    scrubbed: Scrubbed | None = None,
    removed: int = 0,
) -> ReadableSpan:
    """A copy of ``span`` carrying ``attributes`` instead of its own (and ``events`` added).

    ``scrubbed`` replaces the name, events, status or links the scrubber rewrote;
    ``removed`` is how many of the span's attributes the scrubber dropped.

    The span's limits hold on the copy as the SDK would apply them: at most
    ``max_span_attributes`` attributes, the application's first and the
    contract's in `KEPT_FIRST` order in the room left; at most ``max_events``
    events, the oldest dropped; every dropped count true.

    Built with `ReadableSpan`'s constructor from the original's fields (its
    properties copy events and links into tuples, and the SDK's resource
    would be rebuilt if passed as None).
    """
    name, event_list, status, links = span._name, span._events, span._status, span._links  # noqa: SLF001
    if scrubbed is not None:
        if scrubbed.name is not None:
            name = scrubbed.name
        if scrubbed.status is not None:
            status = scrubbed.status
        if scrubbed.links is not None:
            links = _bounded_like(links, scrubbed.links)
        if scrubbed.events is not None:
            event_list = _bounded_like(event_list, (*scrubbed.events, *(events or ())))
            events = None
    if events:
        event_list = _bounded_like(event_list, (*event_list, *events))
    raw = span._attributes  # noqa: SLF001
    dropped = span.dropped_attributes + removed
    if (
        raw.__class__ is BoundedAttributes
        and raw.maxlen is not None
        and len(attributes) > raw.maxlen
    ):
        attributes, over = _within_limit(attributes, raw, raw.maxlen)
        dropped += over
    copy = _EnrichedSpan(
        name,
        span._context,  # noqa: SLF001
        span._parent,  # noqa: SLF001
        span._resource,  # noqa: SLF001
        attributes,
        event_list,
        links,
        span._kind,  # noqa: SLF001
        span._instrumentation_info,  # noqa: SLF001 - the property warns that it is deprecated
        status,
        span._start_time,  # noqa: SLF001
        span._end_time,  # noqa: SLF001
        span._instrumentation_scope,  # noqa: SLF001
    )
    if dropped:
        copy._dropped_attributes = dropped  # noqa: SLF001
    return copy


COPY_PARAMETERS: Final = (
    "name",
    "context",
    "parent",
    "resource",
    "attributes",
    "events",
    "links",
    "kind",
    "instrumentation_info",
    "status",
    "start_time",
    "end_time",
    "instrumentation_scope",
)
"""`ReadableSpan.__init__`'s parameters in the order `enriched_copy` passes them."""

KEPT_FIRST: Final = (
    attr.WEDDING_ENDPOINT,
    attr.WEDDING_APDEX,
    attr.WEDDING_THRESHOLD_BREACHED,
    attr.WEDDING_DURATION_MS,
    attr.WEDDING_THRESHOLD_MS,
    attr.WEDDING_PROXIMITY,
    attr.WEDDING_ID,
    attr.WEDDING_DATE,
)
"""The contract's attributes kept first when a span's attribute limit leaves little room."""


def _within_limit(
    attributes: dict[str, Any], own: Mapping[str, Any], maxlen: int
) -> tuple[dict[str, Any], int]:
    """At most ``maxlen`` of ``attributes``: the application's (``own``) first, then ours."""
    kept = {key: value for key, value in attributes.items() if key in own}
    for key in (*KEPT_FIRST, *attributes):
        if len(kept) >= maxlen:
            break
        if key in attributes and key not in kept:
            kept[key] = attributes[key]
    return kept, len(attributes) - len(kept)


def _bounded_like(original: Sequence[_T], items: Sequence[_T]) -> Sequence[_T]:
    """``original`` with its items replaced by ``items``, under its bound and dropped count.

    The SDK holds events and links in a `BoundedList`, whose ``dropped`` the
    exporters read: the copy's list keeps the bound (the oldest items go
    first, as on the live span) and adds what it drops to the count.
    """
    if not isinstance(original, BoundedList):
        return tuple(items)
    queue = getattr(original, "_dq", None)
    bounded: BoundedList[_T] = BoundedList(getattr(queue, "maxlen", None))
    bounded.dropped = original.dropped
    bounded.extend(tuple(items))
    return bounded


def replace_span_processors(
    provider: TracerProvider, front: Callable[[tuple[SpanProcessor, ...]], _P]
) -> _P:
    """Put ``front(installed processors)`` in their place, as the provider's only processor."""
    active: Any = provider._active_span_processor  # noqa: SLF001
    with active._lock:  # noqa: SLF001
        processor = front(tuple(active._span_processors))  # noqa: SLF001
        active._span_processors = (processor,)  # noqa: SLF001
    return processor


def span_processors(provider: TracerProvider) -> tuple[SpanProcessor, ...]:
    """The processors the provider calls, in order."""
    return tuple(provider._active_span_processor._span_processors)  # noqa: SLF001


def restore_span_processors(
    provider: TracerProvider, processors: tuple[SpanProcessor, ...]
) -> None:
    """Put back what `span_processors` returned."""
    active: Any = provider._active_span_processor  # noqa: SLF001
    with active._lock:  # noqa: SLF001
        active._span_processors = processors  # noqa: SLF001


def periodic_readers(meter_provider: MeterProvider) -> Iterable[PeriodicExportingMetricReader]:
    """The provider's periodic readers: the ones with an exporter to wrap."""
    readers: Any = meter_provider._metric_readers  # noqa: SLF001
    return [reader for reader in readers if isinstance(reader, PeriodicExportingMetricReader)]


def reader_exporter(reader: PeriodicExportingMetricReader) -> MetricExporter:
    """The exporter a periodic reader hands its metrics to."""
    exporter: MetricExporter = reader._exporter  # noqa: SLF001
    return exporter


def set_reader_exporter(reader: PeriodicExportingMetricReader, exporter: MetricExporter) -> None:
    """Make a periodic reader hand its metrics to ``exporter`` instead."""
    reader._exporter = exporter  # noqa: SLF001


def meter_resource(meter_provider: MeterProvider) -> Resource:
    """The resource the meter provider was made with."""
    resource: Resource = meter_provider._sdk_config.resource  # noqa: SLF001
    return resource


def exporter_preferences(exporter: MetricExporter) -> tuple[dict[Any, Any], dict[Any, Any]]:
    """An exporter's preferred temporality and aggregation, for a wrapper to mirror."""
    return (
        dict(exporter._preferred_temporality or {}),  # noqa: SLF001
        dict(exporter._preferred_aggregation or {}),  # noqa: SLF001
    )


def current_context_reader() -> Callable[[], otel_context.Context]:
    """A function returning the current context: the runtime's `ContextVar` read directly.

    Every span start asks for the current context; the default runtime keeps
    it in one `ContextVar`, whose ``get`` answers without two Python frames.
    Any other runtime context is asked through the public API.
    """
    runtime = getattr(otel_context, "_RUNTIME_CONTEXT", None)
    variable = getattr(runtime, "_current_context", None)
    if isinstance(variable, contextvars.ContextVar):
        getter: Callable[[], otel_context.Context] = variable.get
        return getter
    return otel_context.get_current


def forward_on_ending(downstream: SpanProcessor, span: Span) -> None:
    """Pass the SDK's ``_on_ending`` hook on: looked up per call, so a hook set later runs."""
    downstream._on_ending(span)  # noqa: SLF001
