"""The contrib DB instrumentations' operation name, kept to SQL keywords.

The dbapi, sqlite3 and psycopg instrumentations take the statement's first
word as the span name and, under ``OTEL_SEMCONV_STABILITY_OPT_IN=database``,
as the ``db.operation.name`` attribute of their ``db.client.operation.duration``
metric. A statement that starts with a literal (``VALUES('anna@example.com')``)
or a word glued to one puts personal data in both, and a metric attribute
cannot be rewritten after it is recorded. They offer no hook for this, so
`protect_operation_names` wraps their ``CursorTracer.get_operation_name`` once:
a first word that is not an SQL keyword becomes ``""``, which they already
treat as "no operation" (the span is named after the database, the metric
has no operation attribute). The span processor then names DB spans by
``db.query.summary``.
"""

from __future__ import annotations

import functools
import importlib
import threading
from collections.abc import Callable
from typing import Any, Final

SQL_OPERATIONS: Final = frozenset(
    {
        "ALTER", "ANALYZE", "BEGIN", "CALL", "CHECKPOINT", "CLOSE", "CLUSTER", "COMMENT",
        "COMMIT", "COPY", "CREATE", "DEALLOCATE", "DECLARE", "DELETE", "DISCARD", "DO", "DROP",
        "END", "EXEC", "EXECUTE", "EXPLAIN", "FETCH", "GRANT", "IMPORT", "INSERT", "LISTEN",
        "LOAD", "LOCK", "MERGE", "MOVE", "NOTIFY", "PRAGMA", "PREPARE", "REFRESH", "REINDEX",
        "RELEASE", "REPLACE", "RESET", "REVOKE", "ROLLBACK", "SAVEPOINT", "SELECT", "SET",
        "SHOW", "START", "TABLE", "TRUNCATE", "UNLISTEN", "UPDATE", "UPSERT", "VACUUM", "VALUES",
        "WITH", "ATTACH", "DETACH", "USE", "DESCRIBE",
    }
)  # fmt: skip
"""Words that may name an operation; anything else the contrib takes from a statement does not."""

_TRACERS: Final = (
    ("opentelemetry.instrumentation.dbapi", "CursorTracer"),
    ("opentelemetry.instrumentation.psycopg", "CursorTracer"),
)
_MARK: Final = "__wedsync_safe_operation__"
_lock = threading.Lock()


def safe_operation(name: object) -> str:
    """``name`` if it is an SQL keyword (any case), else ``""``."""
    if isinstance(name, str) and name.upper() in SQL_OPERATIONS:
        return name
    return ""


def _wrapped(original: Callable[..., Any]) -> Callable[..., str]:
    @functools.wraps(original)
    def get_operation_name(self: object, cursor: object, args: Any) -> str:
        return safe_operation(original(self, cursor, args))

    setattr(get_operation_name, _MARK, True)
    return get_operation_name


def protect_operation_names() -> int:
    """Wrap every importable contrib ``CursorTracer``; idempotent. Returns how many were wrapped."""
    wrapped = 0
    with _lock:
        for module_name, class_name in _TRACERS:
            try:
                tracer_class = getattr(importlib.import_module(module_name), class_name)
            except (ImportError, AttributeError):
                continue
            original = tracer_class.__dict__.get("get_operation_name")
            if original is None or getattr(original, _MARK, False):
                continue
            tracer_class.get_operation_name = _wrapped(original)
            wrapped += 1
    return wrapped
