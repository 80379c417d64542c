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

MAX_QUERY_CHARS: Final = 8192
"""Longer statements are cut before sanitising; the cut is marked with ``...``."""

_TOKENS = re.compile(
    r"""
      (?P<comment>--[^\n]*|/\*.*?(?:\*/|\Z))
    | (?P<string>[EeBbXxNn]?'(?:[^']|'')*(?:'|\Z))
    | (?P<dollar>\$(?P<tag>[A-Za-z_]*)\$.*?(?:\$(?P=tag)\$|\Z))
    | (?P<quoted>"(?:[^"]|"")*"|`[^`]*`|\[[^\]]*\])
    | (?P<param>\?|%s|%\(\w+\)s|\$\d+|(?<![:\w]):[A-Za-z_]\w*)
    | (?P<number>(?<![\w.])[-+]?(?:0[xX][0-9a-fA-F]+|(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)(?![\w.]))
    | (?P<bool>\b(?:TRUE|FALSE|true|false|True|False)\b)
    | (?P<space>\s+)
    """,
    re.VERBOSE | re.DOTALL,
)
_LIST = re.compile(r"\(\s*\?(?:\s*,\s*\?)+\s*\)")
_ROWS = re.compile(r"(\(\?\))(?:\s*,\s*\(\?\))+")


def sanitize(statement: str) -> str:
    """The statement with every literal and placeholder as ``?`` and IN-lists collapsed."""
    text = statement[:MAX_QUERY_CHARS]
    parts: list[str] = []
    for match in _TOKENS.finditer(text):
        kind = match.lastgroup
        if kind == "comment":
            parts.append(" ")
        elif kind in {"string", "dollar", "param", "number", "bool"}:
            parts.append("?")
        elif kind == "space":
            parts.append(" ")
        else:
            parts.append(match.group())
    # finditer only yields the tokens above; keep what lies between them.
    rebuilt = _rebuild(text, parts)
    collapsed = _ROWS.sub(r"\1", _LIST.sub("(?)", rebuilt))
    result = " ".join(collapsed.split())
    return result + " ..." if len(statement) > MAX_QUERY_CHARS else result


def _rebuild(text: str, replacements: list[str]) -> str:
    out: list[str] = []
    position = 0
    for match, replacement in zip(_TOKENS.finditer(text), replacements, strict=True):
        out.append(text[position : match.start()])
        out.append(replacement)
        position = match.end()
    out.append(text[position:])
    return "".join(out)


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
