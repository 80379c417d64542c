"""The enriched copy of a `ReadableSpan` that the processor forwards in place of the original.

The SDK freezes a span's attributes before ``on_end``, so the verdict travels on
a copy. Every request span is copied, so the copy sets the constructor's fields
directly instead of running the constructor.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Final, NamedTuple

from opentelemetry.attributes import BoundedAttributes
from opentelemetry.sdk.trace import Event, ReadableSpan
from opentelemetry.trace import Link, Status

_new_span = object.__new__


class _EnrichedSpan(ReadableSpan):
    """A `ReadableSpan` copy with more attributes; keeps the original's dropped count."""

    _dropped_attributes = 0  # the common case; set on the copy only when the SDK dropped some

    @property
    def dropped_attributes(self) -> int:
        return self._dropped_attributes


def enriched_copy(
    span: ReadableSpan,
    attributes: dict[str, Any],
    events: Sequence[Event] | None = None,
    *,
    scrubbed: Scrubbed | None = None,
) -> ReadableSpan:
    """A copy of ``span`` carrying ``attributes`` instead of its own (and ``events`` added).

    ``scrubbed`` replaces the name, events, status or links the scrubber rewrote.

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
    copy._events = (*span._events, *events) if events else span._events  # noqa: SLF001
    copy._links = span._links  # noqa: SLF001
    copy._resource = span._resource  # noqa: SLF001
    copy._status = span._status  # noqa: SLF001
    if scrubbed is not None:
        _apply(copy, scrubbed, events)
    raw = span._attributes  # noqa: SLF001
    if raw.__class__ is BoundedAttributes and raw.dropped:
        copy._dropped_attributes = raw.dropped  # noqa: SLF001
    return copy


class Scrubbed(NamedTuple):
    """The fields of a span other than its attributes as they may be exported; None: unchanged."""

    name: str | None
    events: tuple[Event, ...] | None
    status: Status | None
    links: tuple[Link, ...] | None


def _apply(copy: ReadableSpan, scrubbed: Scrubbed, added: Sequence[Event] | None) -> None:
    if scrubbed.name is not None:
        copy._name = scrubbed.name  # noqa: SLF001
    if scrubbed.events is not None:
        copy._events = (*scrubbed.events, *added) if added else scrubbed.events  # noqa: SLF001
    if scrubbed.status is not None:
        copy._status = scrubbed.status  # noqa: SLF001
    if scrubbed.links is not None:
        copy._links = scrubbed.links  # noqa: SLF001


def rescrubbed(copy: ReadableSpan, original: ReadableSpan, scrubbed: Scrubbed) -> None:
    """Apply ``scrubbed`` to a copy `enriched_copy` made of ``original`` (events it added kept)."""
    added = tuple(copy._events)[len(original._events) :]  # noqa: SLF001
    _apply(copy, scrubbed, added)


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
