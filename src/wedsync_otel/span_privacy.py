"""The scrubber applied to an SDK span's fields other than its own attributes.

`wedsync_otel.privacy.scrubber` works on plain names, mappings and text; this
module walks a `ReadableSpan`'s name, events (exception events included),
status description and links with it, and says which of them changed, so
the processor copies a span only when something has to go.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from opentelemetry.sdk.trace import Event, ReadableSpan
from opentelemetry.trace import Link, Status

from wedsync_otel._sdk import Scrubbed
from wedsync_otel.privacy.scrubber import Scrubber


def scrub_fields(
    scrubber: Scrubber, span: ReadableSpan, attributes: Mapping[str, Any]
) -> Scrubbed | None:
    """The name, events, status and links ``span`` may export, or ``None`` if all are clean."""
    name = span.name
    clean_name: str | None = scrubber.span_name(name, attributes) if isinstance(name, str) else None
    events = span.events
    clean_events = _events(scrubber, events) if events else None
    status = span.status
    clean_status = _status(scrubber, status) if status.description else None
    links = span.links
    clean_links = _links(scrubber, links) if links else None
    if clean_name == name:
        clean_name = None
    if clean_name is None and clean_events is None and clean_status is None and clean_links is None:
        return None
    return Scrubbed(clean_name, clean_events, clean_status, clean_links)


def _events(scrubber: Scrubber, events: Sequence[Event]) -> tuple[Event, ...] | None:
    changed = False
    out: list[Event] = []
    for event in events:
        attributes = scrubber.attributes(event.attributes or {})
        name = scrubber.text(event.name)
        if attributes is None and name is event.name:
            out.append(event)
            continue
        changed = True
        out.append(
            Event(
                name,
                event.attributes if attributes is None else attributes,  # type: ignore[arg-type]
                timestamp=event.timestamp,
            )
        )
    return tuple(out) if changed else None


def _status(scrubber: Scrubber, status: Status) -> Status | None:
    description = status.description or ""
    clean = scrubber.message(description)
    return None if clean == description else Status(status.status_code, clean)


def _links(scrubber: Scrubber, links: Sequence[Link]) -> tuple[Link, ...] | None:
    changed = False
    out: list[Link] = []
    for link in links:
        attributes = scrubber.attributes(link.attributes or {})
        if attributes is None:
            out.append(link)
            continue
        changed = True
        out.append(Link(link.context, attributes))  # type: ignore[arg-type]
    return tuple(out) if changed else None
