"""Error messages of database drivers, caches and Python, with the values taken out.

Drivers echo the data that failed: PostgreSQL's ``Key (email)=(...) already
exists.`` and ``Failing row contains (...)``, ``invalid input syntax for
type integer: "..."``, a ``LINE 1: ...`` echo of the statement, SQLite's
``no such column: ...`` (its answer to a double-quoted string), MySQL's
``Duplicate entry '...'`` and Redis's ``unknown command `...`, with args
beginning with: `...` ``. What stays is what a reader needs to act: the
error class, the wording, and the names of constraints, tables, columns and
keys. Quoted text becomes ``?`` unless a schema word (``constraint``,
``relation``, ``column``, ...) stands before it; a parenthesised value list
after ``=`` or ``contains`` becomes ``(?)``; an echoed statement is
sanitised as SQL. The scan is linear: each quote is closed with one
``str.find``.
"""

from __future__ import annotations

import re
from typing import Final

from .sql import sanitize_sql

VALUE_MARK: Final = "?"

SCHEMA_WORDS: Final = frozenset(
    {
        "constraint", "relation", "column", "table", "index", "type", "schema", "database",
        "key", "sequence", "view", "function", "operator", "trigger", "extension", "file",
        "module", "attribute",
    }
)  # fmt: skip
"""A quoted name after one of these words is a schema name, kept."""

_QUOTES: Final = "\"'`"
_SPECIAL = re.compile(
    r"""(?P<quote>["'`])
      | (?P<values>(?:=|\bcontains\s)\s*\()
      | (?P<echo>^[ \t]*LINE\ \d+:\ )
      | (?P<frame>^[ \t]*File\ "[^"\n]*")
      | (?P<unquoted>\bno\ such\ (?:column|function|collation):\ )
    """,
    re.VERBOSE | re.MULTILINE,
)
_WORD_BEFORE = re.compile(r"(\w+)\W*$")


def _word_before(text: str, index: int) -> str:
    window = text[max(0, index - 32) : index]
    match = _WORD_BEFORE.search(window)
    return match.group(1).lower() if match else ""


def _line_end(text: str, start: int) -> int:
    end = text.find("\n", start)
    return len(text) if end < 0 else end


def _closing_paren(text: str, start: int) -> int:
    """Index past the ``)`` closing the list opened before ``start``; else the line's end."""
    depth = 1
    index = start
    limit = len(text)
    while index < limit:
        char = text[index]
        if char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
            if depth == 0:
                return index + 1
        elif char in _QUOTES:
            close = text.find(char, index + 1)
            if close < 0:
                return _line_end(text, index)
            index = close
        index += 1
    return limit


def _is_apostrophe(text: str, index: int) -> bool:
    return (
        text[index] == "'"
        and 0 < index < len(text) - 1
        and text[index - 1].isalpha()
        and text[index + 1].isalpha()
    )


def scrub_message(text: str) -> str:
    """``text`` with every value a driver or exception echoed replaced by ``?``."""
    out: list[str] = []
    position = 0
    while True:
        match = _SPECIAL.search(text, position)
        if match is None:
            break
        kind, start, end = match.lastgroup, match.start(), match.end()
        if kind == "quote":
            if _is_apostrophe(text, start):
                out.append(text[position:end])
                position = end
                continue
            close = text.find(match.group(), end)
            stop = _line_end(text, end) if close < 0 else close + 1
            body = text[end : stop - 1] if close >= 0 else text[end:stop]
            if _word_before(text, start) in SCHEMA_WORDS and "\n" not in body:
                out.append(text[position:stop])
            else:
                quote = match.group()
                closing = quote if close >= 0 else ""
                out.append(f"{text[position:start]}{quote}{VALUE_MARK}{closing}")
            position = stop
        elif kind == "values":
            stop = _closing_paren(text, end)
            out.append(f"{text[position:end]}{VALUE_MARK})")
            position = stop
        elif kind == "echo":
            stop = _line_end(text, end)
            out.append(text[position:end] + sanitize_sql(text[end:stop]))
            position = stop
        elif kind == "frame":
            out.append(text[position:end])
            position = end
        else:  # a value that follows a fixed phrase without quotes: the rest of the line
            stop = _line_end(text, end)
            out.append(text[position:end] + (VALUE_MARK if end < stop else ""))
            position = stop
    if not out:
        return text
    out.append(text[position:])
    return "".join(out)
