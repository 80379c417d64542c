"""The wedding a live span concerns, kept beside the span instead of on it.

Writing ``wedding.id``/``wedding.date`` onto a live span would take two of
the application's attribute slots: at the SDK's limit (128 by default) the
SDK then evicts the application's oldest attribute to make room. So
`wedding_context` and the processor's ``on_start`` mark the span here, by
its span id, and the processor adds the mark to the copy it exports, where
the application's attributes come first (see `_sdk`).
"""

from __future__ import annotations

from typing import Any, Final

from wedsync_otel._bounded import BoundedDict
from wedsync_otel.attributes import WEDDING_DATE, WEDDING_ID

MAX_MARKED_SPANS: Final = 100_000
"""Live spans whose mark is kept; a span that never ends is evicted, oldest first, counted."""

Mark = tuple[str | None, str | None]
"""The wedding's id and ISO date (either may be unknown)."""

MARKS: Final[BoundedDict[int, Mark]] = BoundedDict(MAX_MARKED_SPANS)
"""Span id -> mark. Readers test it for truth first: an empty store costs one check a span."""


def mark_span(span_id: int, wedding_id: str | None, wedding_date: str | None) -> None:
    """Remember the wedding of the live span ``span_id``; what was marked first wins."""
    if wedding_id is None and wedding_date is None:
        return
    known = MARKS.get(span_id)
    if known is not None:
        wedding_id = known[0] if known[0] is not None else wedding_id
        wedding_date = known[1] if known[1] is not None else wedding_date
    MARKS.put(span_id, (wedding_id, wedding_date))


def marked(span_id: int) -> Mark | None:
    """The mark of a live span, if it has one (the span keeps it)."""
    return MARKS.get(span_id)


def take_mark(span_id: int) -> Mark | None:
    """The mark of a span that has ended, removed from the store."""
    return MARKS.pop(span_id, None) if MARKS else None


def marks_evicted() -> int:
    """Marks evicted because their spans did not end before ``MAX_MARKED_SPANS`` newer ones."""
    return MARKS.evictions


def with_mark(attributes: dict[str, Any], mark: Mark) -> dict[str, Any]:
    """The span's attributes with its wedding mark, where the application set none itself."""
    wedding_id, wedding_date = mark
    marked = dict(attributes)
    if wedding_id is not None and WEDDING_ID not in attributes:
        marked[WEDDING_ID] = wedding_id
    if wedding_date is not None and WEDDING_DATE not in attributes:
        marked[WEDDING_DATE] = wedding_date
    return marked
