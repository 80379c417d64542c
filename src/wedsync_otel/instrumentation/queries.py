"""Database and cache spans, read through both semantic conventions.

The contrib dbapi, sqlite3 and psycopg instrumentations have no hooks and
export raw SQL with its literals (open-telemetry/opentelemetry-python-contrib
#1376, #1543, #2003); the span processor's scrubber rewrites their query
text in the copy it forwards, and this module gives the roll-up its
fingerprint. Old and stable names are both read (``OTEL_SEMCONV_STABILITY_OPT_IN``
decides which the contrib writes).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final, NamedTuple

from wedsync_otel import attributes as attr
from wedsync_otel._bounded import BoundedDict
from wedsync_otel.instrumentation.fingerprint import sanitize, shape_fingerprint
from wedsync_otel.rollup import WorkKind


class Query(NamedTuple):
    """One database span, as the roll-up and the query advisor need it."""

    fingerprint: str
    statement: str
    """Sanitised: every literal and placeholder is ``?``."""
    attributes: dict[str, Any]
    """What the forwarded copy adds: the fingerprint and the slow flag (the scrubber rewrites
    the text itself)."""
    kind: WorkKind
    """A query, a connect or transaction control, or a cursor's batch fetch."""


CONTROL_WORDS: Final = frozenset(
    ("BEGIN", "COMMIT", "ROLLBACK", "SAVEPOINT", "RELEASE", "START", "END", "ABORT")
)
"""First words of transaction control: round trips to the database, not queries."""
CURSOR_PREFIX: Final = "CURSOR: "
"""How the contrib asyncpg instrumentation names a server-side cursor's batch fetches."""


def statement_kind(statement: str) -> WorkKind:
    """A statement's kind by its first word; no statement at all is a connect (control)."""
    words = statement.split(None, 1)
    if not words or words[0].rstrip(";").upper() in CONTROL_WORDS:
        return WorkKind.CONTROL
    return WorkKind.QUERY


def cache_counts(attrs: Mapping[str, Any]) -> tuple[int, int]:
    """(hits, misses) of one cache span; multi-key reads count each key."""
    hit = attrs.get(attr.CACHE_HIT)
    if hit is True:
        return 1, 0
    if hit is False:
        return 0, 1
    hits, misses = attrs.get(attr.CACHE_HITS), attrs.get(attr.CACHE_MISSES)
    return (
        hits if isinstance(hits, int) and hits > 0 else 0,
        misses if isinstance(misses, int) and misses > 0 else 0,
    )


class ShapeCache:
    """Raw statement -> (sanitised text, fingerprint, kind), bounded, oldest evicted first.

    Applications run the same parameterised statements over and over, and
    sanitising costs far more than a dict lookup. The raw text is kept in
    process memory only, where the application already holds it; it is never
    exported.
    """

    def __init__(self, max_entries: int = 4096) -> None:
        self._entries: BoundedDict[str, tuple[str, str, WorkKind]] = BoundedDict(max_entries)

    @property
    def evictions(self) -> int:
        """Statements evicted from the cache so far."""
        return self._entries.evictions

    def shape(self, raw: str) -> tuple[str, str, WorkKind]:
        """Sanitised text, fingerprint and kind of ``raw``."""
        found = self._entries.get(raw)
        if found is not None:
            return found
        statement = sanitize(raw)
        return self._entries.put(
            raw,
            (
                statement,
                shape_fingerprint(statement) if statement else "",
                statement_kind(statement),
            ),
        )


_shapes = ShapeCache()


def statement_cache_evictions() -> int:
    """Statements the process-wide shape cache has evicted so far."""
    return _shapes.evictions


def query(
    attrs: Mapping[str, Any],
    *,
    duration_ms: float,
    slow_ms: float,
    name: str = "",
    shapes: ShapeCache = _shapes,
) -> Query:
    """Fingerprint, sanitised text, slow flag and kind of one database span named ``name``."""
    raw = attrs.get("db.query.text")
    if raw.__class__ is not str:
        raw = attrs.get("db.statement")
        if raw.__class__ is not str:
            raw = ""
    statement, shape, kind = shapes.shape(raw)
    extra: dict[str, Any] = {attr.DB_QUERY_SLOW: duration_ms > slow_ms}
    if kind is WorkKind.QUERY and name.startswith(CURSOR_PREFIX):
        kind = WorkKind.FETCH
    if shape:
        extra[attr.DB_FINGERPRINT] = shape
    return Query(shape, statement, extra, kind)
