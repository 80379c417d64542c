"""Where WeddingCache puts an entry: ``namespace[:wedding_id][:part]...`` and each wedding's index.

Pure and separate from `wedsync_otel.cache_keys`, which reads a namespace back
out of any key for span attributes: this module builds the cache's own keys.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Final, TypeAlias

from wedsync_otel.cache_keys import key_namespace

KeyPart: TypeAlias = str | int | dt.date

SUPPLIER: Final = "supplier"
VENUE: Final = "venue"
TIMELINE: Final = "timeline"
INDEX_NAMESPACE: Final = "wedding"


@dataclass(frozen=True, slots=True)
class EntryKey:
    """A built key with the parts the core needs to route and index it."""

    text: str
    namespace: str
    wedding_id: str | None
    """Set for wedding-scoped keys, which `invalidate_wedding` removes."""


def entry_key(namespace: str, parts: tuple[KeyPart, ...], wedding_id: str | None) -> EntryKey:
    """``namespace[:wedding_id][:part]...``; a bad namespace is the caller's bug (ValueError)."""
    if namespace == INDEX_NAMESPACE or key_namespace(f"{namespace}:") != namespace:
        raise ValueError(
            f"cache namespace must be 1-64 of [A-Za-z0-9_.-] and not "
            f"{INDEX_NAMESPACE!r}: {namespace!r}"
        )
    segments = [namespace] if wedding_id is None else [namespace, str(wedding_id)]
    segments.extend(part.isoformat() if isinstance(part, dt.date) else str(part) for part in parts)
    return EntryKey(":".join(segments), namespace, None if wedding_id is None else str(wedding_id))


def index_key(wedding_id: str) -> str:
    """The Redis set listing every key written for a wedding."""
    return f"{INDEX_NAMESPACE}:{wedding_id}:keys"
