"""Error messages of database drivers, caches and Python, with the values taken out.

Drivers echo the data that failed: PostgreSQL's ``Key (email)=(...) already
exists.`` and ``Failing row contains (...)``, ``invalid input syntax for
type integer: "..."``, a ``LINE 1: ...`` echo of the statement, SQLite's
``no such column: ...`` (its answer to a double-quoted string), MySQL's
``Duplicate entry '...'``, and Redis's ``unknown command `...`, with args
beginning with: `...` ``. What stays is what a reader needs to act: the
error class, the wording, and the names of constraints, tables, columns and
keys. Quoted text becomes ``?`` unless a schema word (``constraint``,
``relation``, ``column``, ...) stands before it; a parenthesised value list
after ``=`` or ``contains`` becomes ``(?)``; an echoed statement is
sanitised as SQL. PostgreSQL's DETAIL, HINT, CONTEXT and WHERE lines are kept
only in their fixed wordings (``Key (email)=(?) already exists.``); any other
is free text (``RAISE ... USING DETAIL``, a JSON excerpt) and becomes ``?``,
as does the message of an error the application raised itself
(``RaiseException``) or a Lua script's ``error()``. The scan is linear: each
quote is closed with one ``str.find``.
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

USER_RAISED_ERRORS: Final = frozenset({"RaiseException", "RaiseError"})
"""Exception classes (psycopg, asyncpg) whose message the application's own SQL wrote."""

_QUOTES: Final = "\"'`"
_SPECIAL = re.compile(
    r"""(?P<quote>["'`])
      | (?P<values>(?:=|\bcontains\s)\s*\()
      | (?P<echo>^[ \t]*LINE\ \d+:\ )
      | (?P<frame>^[ \t]*File\ "[^"\n]*")
      | (?P<unquoted>\bno\ such\ (?:column|function|collation):\ )
      | (?P<user>^[ \t]*[\w.]*(?:RaiseException|RaiseError):\ |@?\buser_script:\d+:\ )
      | (?P<detail>^[ \t]*(?:DETAIL|HINT|CONTEXT|WHERE):\ +)
    """,
    re.VERBOSE | re.MULTILINE,
)
_TEMPLATED_DETAIL = re.compile(
    r"""(?:Key\ \([^)]*\)=\(\?\)\ (?:already\ exists|is\ not\ present\ in\ table\ "[^"]*"
          |is\ still\ referenced\ from\ table\ "[^"]*"|conflicts\ with\ existing\ key)\.
       | Failing\ row\ contains\ \(\?\)\.
       | Token\ "\?"\ is\ invalid\.
       | Array\ value\ must\ start\ with\ "\{"\ or\ dimension\ information\.
       | No\ (?:operator|function)\ matches\ the\ given\ name\ and\ argument\ types?\.[^\n]*
       | There\ is\ a\ column\ named\ "[^"]*"\ in\ table\ "[^"]*"[^\n]*
       | Perhaps\ you\ meant\ to\ reference\ the\ column\ "[^"]*"\.
       )$""",
    re.VERBOSE,
)
"""PostgreSQL DETAIL and HINT lines whose wording is fixed once values are out; others go whole."""
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


def _quote(text: str, match: re.Match[str]) -> tuple[str, int]:
    start, end = match.start(), match.end()
    if _is_apostrophe(text, start):
        return match.group(), end
    quote = match.group()
    close = text.find(quote, end)
    stop = _line_end(text, end) if close < 0 else close + 1
    body = text[end : stop - 1] if close >= 0 else text[end:stop]
    if _word_before(text, start) in SCHEMA_WORDS and "\n" not in body:
        return text[start:stop], stop
    return f"{quote}{VALUE_MARK}{quote if close >= 0 else ''}", stop


def _values(text: str, match: re.Match[str]) -> tuple[str, int]:
    return f"{match.group()}{VALUE_MARK})", _closing_paren(text, match.end())


def _echo(text: str, match: re.Match[str]) -> tuple[str, int]:
    stop = _line_end(text, match.end())
    return match.group() + sanitize_sql(text[match.end() : stop]), stop


def _detail(text: str, match: re.Match[str]) -> tuple[str, int]:
    stop = _line_end(text, match.end())
    line = scrub_message(text[match.end() : stop])
    return match.group() + (line if _TEMPLATED_DETAIL.match(line) else VALUE_MARK), stop


def _frame(text: str, match: re.Match[str]) -> tuple[str, int]:
    return match.group(), match.end()


def _rest_of_line(text: str, match: re.Match[str]) -> tuple[str, int]:
    """Text the application raised, or a value after a fixed phrase: the rest of the line."""
    stop = _line_end(text, match.end())
    return match.group() + (VALUE_MARK if match.end() < stop else ""), stop


_RULES: Final = {
    "quote": _quote,
    "values": _values,
    "echo": _echo,
    "detail": _detail,
    "frame": _frame,
    "user": _rest_of_line,
    "unquoted": _rest_of_line,
}


def scrub_message(text: str) -> str:
    """``text`` with every value a driver or exception echoed replaced by ``?``."""
    out: list[str] = []
    position = 0
    while (match := _SPECIAL.search(text, position)) is not None:
        replacement, stop = _RULES[str(match.lastgroup)](text, match)
        out.append(text[position : match.start()])
        out.append(replacement)
        position = stop
    if not out:
        return text
    out.append(text[position:])
    return "".join(out)


def scrub_raised(text: str) -> str:
    """The message of an error the application raised itself: its first line is free text."""
    _, newline, rest = text.partition("\n")
    return VALUE_MARK + newline + scrub_message(rest) if newline else VALUE_MARK
