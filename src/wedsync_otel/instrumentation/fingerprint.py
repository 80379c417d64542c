"""Query fingerprints and literal-free query text: pure functions, no OpenTelemetry.

`sanitize` replaces every literal (strings, numbers, booleans, dollar-quoted
bodies) and every bind placeholder with ``?``, collapses IN-lists and
multi-row VALUES to one element, drops comments (sqlcommenter ones too) and
normalises whitespace. What remains is the query's shape, safe to export.
`fingerprint` is a short stable hash of that shape, case-folded, so the
same shape always gives the same fingerprint.
"""

from __future__ import annotations

import hashlib
import re
from typing import Final

from wedsync_otel.privacy.sql import COMMENT, LITERAL, PARAM, SPACE, WORD, tokenize

MAX_QUERY_CHARS: Final = 8192
"""Longer statements are cut before sanitising; the cut is marked with ``...``."""

_HOLES: Final = frozenset({LITERAL, PARAM})
_GAPS: Final = frozenset({SPACE, COMMENT})
_BOOLEANS: Final = frozenset({"TRUE", "FALSE"})
# Possessive, on text whose whitespace is already single spaces: nothing is re-scanned.
_LIST = re.compile(r"\( ?\?(?: ?, ?\?)++ ?\)")
_ROWS = re.compile(r"(\(\?\))(?: ?, ?\(\?\))++")


def sanitize(statement: str) -> str:
    """The statement with every literal and placeholder as ``?`` and IN-lists collapsed.

    Built on the one SQL lexer (`wedsync_otel.privacy.sql`), so what counts as
    a literal here is exactly what the exported ``db.query.text`` redacts.
    """
    parts: list[str] = []
    for kind, value in tokenize(statement[:MAX_QUERY_CHARS]):
        if kind in _HOLES or (kind == WORD and value.upper() in _BOOLEANS):
            parts.append("?")
        elif kind in _GAPS:
            parts.append(" ")
        else:
            parts.append(value)
    shape = " ".join("".join(parts).split())
    collapsed = _ROWS.sub(r"\1", _LIST.sub("(?)", shape))
    return collapsed + " ..." if len(statement) > MAX_QUERY_CHARS else collapsed


def fingerprint(statement: str) -> str:
    """16 hex digits naming the statement's shape; equal shapes give equal fingerprints."""
    return shape_fingerprint(sanitize(statement))


def shape_fingerprint(sanitized: str) -> str:
    """`fingerprint` of a statement already passed through `sanitize`.

    Case and the spacing around operators and punctuation do not change the
    shape: ``wedding_id=?`` and ``WEDDING_ID = ?`` are one fingerprint.
    """
    shape = _AROUND_OPERATORS.sub(r"\1", sanitized.lower())
    return hashlib.blake2b(shape.encode(), digest_size=8).hexdigest()


_AROUND_OPERATORS = re.compile(r"\s*([=<>!,()+\-*/%|;])\s*")


_WRITE_KEYWORDS = re.compile(
    r"\b(insert|into|update|delete|merge|upsert|replace|create|drop|alter|truncate|grant|revoke"
    r"|vacuum|analyze|copy|call|do|lock|refresh|reindex|cluster|set|reset|begin|commit"
    r"|rollback|savepoint|attach|detach|pragma)\b",
    re.IGNORECASE,
)


def is_read_only(statement: str) -> bool:
    """True only for a plain SELECT (or WITH ... SELECT) that cannot write anything.

    Judged on the sanitised text, so a keyword inside a string literal does
    not count; anything in doubt is treated as a write.
    """
    shape = sanitize(statement).strip().lower()
    if not shape.startswith(("select", "with")):
        return False
    return _WRITE_KEYWORDS.search(shape) is None and ";" not in shape.rstrip(";")
