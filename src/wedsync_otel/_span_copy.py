"""The enriched copy of a `ReadableSpan` that the processor forwards in place of the original.

The SDK freezes a span's attributes before ``on_end``, so the verdict travels on
a copy. Every request span is copied, so the copy sets the constructor's fields
directly instead of running the constructor.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Final, NamedTuple, TypeVar

from opentelemetry.attributes import BoundedAttributes
from opentelemetry.sdk.trace import Event, ReadableSpan
from opentelemetry.sdk.util import BoundedList
from opentelemetry.trace import Link, Status

from wedsync_otel import attributes as attr

_T = TypeVar("_T")

_new_span = object.__new__


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

    Sets the fields `ReadableSpan.__init__` sets, one by one: cheaper than the constructor
    or a copy of the instance dictionary, and the copy keeps its values inline (no
    dictionary object for the garbage collector). tests/test_processor.py checks the list
    against the SDK's constructor and every public property against the original.
    """
    copy = _new_span(_EnrichedSpan)
    copy._name = span._name  # noqa: SLF001 - the fields behind ReadableSpan's properties
    copy._context = span._context  # noqa: SLF001
    copy._kind = span._kind  # noqa: SLF001
    copy._instrumentation_info = span._instrumentation_info  # noqa: SLF001
    copy._instrumentation_scope = span._instrumentation_scope  # noqa: SLF001
    copy._parent = span._parent  # noqa: SLF001
    copy._start_time = span._start_time  # noqa: SLF001
    copy._end_time = span._end_time  # noqa: SLF001
    copy._attributes = attributes  # noqa: SLF001
    copy._events = (  # noqa: SLF001
        span._events if not events else _bounded_like(span._events, (*span._events, *events))  # noqa: SLF001
    )
    copy._links = span._links  # noqa: SLF001
    copy._resource = span._resource  # noqa: SLF001
    copy._status = span._status  # noqa: SLF001
    if scrubbed is not None:
        _apply(copy, span, scrubbed, events)
    raw = span._attributes  # noqa: SLF001
    if raw.__class__ is BoundedAttributes:
        dropped, maxlen = raw.dropped + removed, raw.maxlen
        if maxlen is not None and len(attributes) > maxlen:
            copy._attributes, over = _within_limit(attributes, raw, maxlen)  # noqa: SLF001
            dropped += over
    else:
        dropped = span.dropped_attributes + removed
    if dropped:
        copy._dropped_attributes = dropped  # noqa: SLF001
    return copy


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


class Scrubbed(NamedTuple):
    """The fields of a span other than its attributes as they may be exported; None: unchanged."""

    name: str | None
    events: tuple[Event, ...] | None
    status: Status | None
    links: tuple[Link, ...] | None


def _apply(
    copy: ReadableSpan, span: ReadableSpan, scrubbed: Scrubbed, added: Sequence[Event] | None
) -> None:
    if scrubbed.name is not None:
        copy._name = scrubbed.name  # noqa: SLF001
    if scrubbed.events is not None:
        items = (*scrubbed.events, *added) if added else scrubbed.events
        copy._events = _bounded_like(span._events, items)  # noqa: SLF001
    if scrubbed.status is not None:
        copy._status = scrubbed.status  # noqa: SLF001
    if scrubbed.links is not None:
        copy._links = _bounded_like(span._links, scrubbed.links)  # noqa: SLF001


COPIED_FIELDS: Final = (
    "_name",
    "_context",
    "_kind",
    "_instrumentation_info",
    "_instrumentation_scope",
    "_parent",
    "_start_time",
    "_end_time",
    "_attributes",
    "_events",
    "_links",
    "_resource",
    "_status",
)
"""The instance fields `ReadableSpan.__init__` sets, which `enriched_copy` copies."""
