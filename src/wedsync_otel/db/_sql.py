"""SQL text, read without a database: tokens, placeholders, comparisons, tables.

Pure functions over strings. They read sanitised statements (``?`` for every
literal) and PostgreSQL plan filters (``$n`` parameters, ``::type`` casts,
columns qualified by alias) well enough to name the columns a B-tree index
would serve; a comparison of a shape they do not recognise yields no column.
"""

from __future__ import annotations

import itertools
import re
from collections import OrderedDict
from collections.abc import Iterator, Sequence
from typing import Final, NamedTuple

_IDENT = r'(?:[A-Za-z_][\w$]*|"(?:[^"]|"")*"|`[^`]*`|\[[^\]]*\])'
_TOKEN = re.compile(
    rf"""
      (?P<name>{_IDENT}(?:\s*\.\s*{_IDENT})*)
    | (?P<param>\?|\$\d+)
    | (?P<cast>::)
    | (?P<op><=|>=|<>|!=|==|=|<|>)
    | (?P<open>\()
    | (?P<close>\))
    | (?P<comma>,)
    | (?P<space>\s+)
    | (?P<other>'(?:[^']|'')*'|.)
    """,
    re.VERBOSE | re.DOTALL,
)
_PART = re.compile(_IDENT)
_QUESTION = re.compile(r'"(?:[^"]|"")*"|`[^`]*`|\[[^\]]*\]|\?')
PLAIN: Final = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
"""An identifier that needs no quoting (unless it is a reserved word)."""

_EQUALITY_OPS: Final = frozenset({"=", "==", "IN", "IS"})
_RANGE_OPS: Final = frozenset({"<", "<=", ">", ">=", "BETWEEN"})
_TYPE_WORDS: Final = frozenset({"with", "without", "time", "zone", "varying", "precision"})
_NOT_COLUMNS: Final = frozenset(
    {"NULL", "NOT", "TRUE", "FALSE", "EXISTS", "CASE", "ANY", "ALL", "SELECT", "DEFAULT"}
)
_CLAUSE_END: Final = frozenset(
    {"GROUP", "ORDER", "LIMIT", "OFFSET", "HAVING", "WINDOW", "UNION", "EXCEPT", "INTERSECT",
     "RETURNING", "FETCH", "FOR"}
)  # fmt: skip
_NOT_ALIASES: Final = _CLAUSE_END | frozenset(
    {"WHERE", "JOIN", "INNER", "LEFT", "RIGHT", "FULL", "CROSS", "NATURAL", "ON", "USING",
     "INDEXED", "NOT", "SET", "VALUES", "AS", "OUTER", "LATERAL"}
)  # fmt: skip
_RESERVED: Final = frozenset(
    {"ALL", "AND", "AS", "CHECK", "COLUMN", "CONSTRAINT", "CREATE", "DEFAULT", "FROM", "GROUP",
     "IN", "INDEX", "KEY", "LIMIT", "NOT", "NULL", "ON", "OR", "ORDER", "PRIMARY", "REFERENCES",
     "SELECT", "TABLE", "TO", "UNIQUE", "USER", "WHERE", "WITH"}
)  # fmt: skip


class Token(NamedTuple):
    """One lexical token: its kind (a group name of the tokenizer) and its text."""

    kind: str
    text: str

    def word(self) -> str:
        """The upper-cased text of a bare word, or "" for anything else."""
        return self.text.upper() if self.kind == "name" and PLAIN.fullmatch(self.text) else ""


class Condition(NamedTuple):
    """One top-level ``column op parameter`` comparison."""

    qualifier: str | None
    column: str
    """As written, quotes included: it goes into the advice verbatim."""
    key: str
    """Unquoted, to compare with catalogue names."""
    op: str
    equality: bool


def tokenize(text: str) -> list[Token]:
    """The tokens of ``text``, whitespace left out."""
    return [
        Token(str(match.lastgroup), match.group())
        for match in _TOKEN.finditer(text)
        if match.lastgroup != "space"
    ]


def unquote(identifier: str) -> str:
    """An identifier without its ``"..."``, backtick or ``[...]`` quotes."""
    if identifier[:1] == '"':
        return identifier[1:-1].replace('""', '"')
    if identifier[:1] in "`[":
        return identifier[1:-1]
    return identifier


def _parts(name: str) -> list[str]:
    return _PART.findall(name)


def quote(identifier: str) -> str:
    """An identifier as SQL, quoted only when it has to be."""
    if PLAIN.fullmatch(identifier) and identifier.upper() not in _RESERVED:
        return identifier
    return '"' + identifier.replace('"', '""') + '"'


def number_placeholders(statement: str) -> tuple[str, int]:
    """The statement with each ``?`` as ``$1..$n`` (quoted identifiers untouched), and ``n``."""
    counter = itertools.count(1)

    def replace(match: re.Match[str]) -> str:
        return f"${next(counter)}" if match.group() == "?" else match.group()

    text = _QUESTION.sub(replace, statement)
    return text, next(counter) - 1


def count_placeholders(statement: str) -> int:
    """How many ``?`` the statement has outside quoted identifiers."""
    return sum(1 for match in _QUESTION.finditer(statement) if match.group() == "?")


def _strip_casts(tokens: list[Token]) -> list[Token]:
    """Drop ``::type`` (multi-word types, ``(n)`` and ``[]`` included): they hide columns."""
    out: list[Token] = []
    index = 0
    while index < len(tokens):
        if tokens[index].kind != "cast":
            out.append(tokens[index])
            index += 1
            continue
        index += 2  # '::' and the type's first word
        while index < len(tokens) and (
            tokens[index].text.lower() in _TYPE_WORDS or tokens[index].text.startswith("[")
        ):
            index += 1
        if index < len(tokens) and tokens[index].kind == "open":
            close = _matching(tokens, index)
            inner = tokens[index + 1 : close]
            if close > index and all(token.kind in {"other", "comma"} for token in inner):
                index = close + 1
    return out


def _matching(tokens: Sequence[Token], open_at: int) -> int:
    """Index of the parenthesis closing the one at ``open_at``, or -1."""
    depth = 0
    for index in range(open_at, len(tokens)):
        if tokens[index].kind == "open":
            depth += 1
        elif tokens[index].kind == "close":
            depth -= 1
            if depth == 0:
                return index
    return -1


def _unwrap(tokens: list[Token]) -> list[Token]:
    """Remove parentheses around the whole list and around single tokens."""
    while tokens and tokens[0].kind == "open" and _matching(tokens, 0) == len(tokens) - 1:
        tokens = tokens[1:-1]
    out: list[Token] = []
    index = 0
    while index < len(tokens):
        token = tokens[index]
        if (
            token.kind == "open"
            and index + 2 < len(tokens)
            and tokens[index + 2].kind == "close"
            and tokens[index + 1].kind in {"name", "param"}
        ):
            out.append(tokens[index + 1])
            index += 3
        else:
            out.append(token)
            index += 1
    return out


def _conjuncts(tokens: list[Token]) -> list[list[Token]]:
    """The top-level AND terms; none at all when a top-level OR makes them alternatives."""
    terms: list[list[Token]] = [[]]
    depth = 0
    in_between = False
    for token in _unwrap(tokens):
        word = token.word()
        if token.kind == "open":
            depth += 1
        elif token.kind == "close":
            depth -= 1
        elif depth == 0 and word == "OR":
            return []
        elif depth == 0 and word == "BETWEEN":
            in_between = True
        elif depth == 0 and word == "AND":
            if in_between:
                in_between = False
            else:
                terms.append([])
                continue
        terms[-1].append(token)
    return [term for term in terms if term]


def _comparison(term: list[Token]) -> Condition | None:
    """``column op param`` (either way round), ``IN (?)``, ``= ANY ($1)`` or ``BETWEEN``."""
    term = _unwrap(term)
    kinds = [token.kind for token in term]
    words = [token.word() for token in term]
    column: Token | None = None
    op = ""
    if kinds in (["name", "op", "param"], ["name", "name", "param"]):
        column, op = term[0], words[1] or term[1].text
    elif kinds == ["param", "op", "name"]:
        column, op = term[2], term[1].text
    elif kinds == ["name", "op", "name", "param"] and words[2] == "ANY":
        column, op = term[0], "IN"
    elif kinds[:3] == ["name", "name", "open"] and words[1] == "IN":
        inner = set(kinds[3:-1]) if kinds[-1] == "close" else {"bad"}
        column, op = (term[0], "IN") if inner <= {"param", "comma"} and inner else (None, "")
    elif kinds == ["name", "name", "param", "name", "param"] and words[1:4:2] == [
        "BETWEEN",
        "AND",
    ]:
        column, op = term[0], "BETWEEN"
    if column is None or column.word() in _NOT_COLUMNS:
        return None
    if op not in _EQUALITY_OPS and op not in _RANGE_OPS:
        return None
    parts = _parts(column.text)
    if not parts:
        return None
    qualifier = unquote(parts[-2]) if len(parts) > 1 else None
    return Condition(qualifier, parts[-1], unquote(parts[-1]), op, op in _EQUALITY_OPS)


def comparisons(tokens: list[Token]) -> list[Condition]:
    """The comparisons with a parameter among the top-level AND terms of ``tokens``."""
    found = (_comparison(term) for term in _conjuncts(_strip_casts(tokens)))
    return [condition for condition in found if condition is not None]


def index_columns(found: Sequence[Condition]) -> list[Condition]:
    """Equality columns in order, then the first range column: what a B-tree can use."""
    chosen: list[Condition] = []
    seen: set[str] = set()
    for condition in [c for c in found if c.equality] + [c for c in found if not c.equality]:
        if condition.key.lower() in seen:
            continue
        if not condition.equality and any(not c.equality for c in chosen):
            break
        chosen.append(condition)
        seen.add(condition.key.lower())
    return chosen


def filter_conditions(filter_text: str) -> list[Condition]:
    """The conditions of a plan filter or WHERE clause a B-tree index would serve, in order."""
    return index_columns(comparisons(tokenize(filter_text)))


def filter_columns(filter_text: str) -> tuple[str, ...]:
    """Columns a B-tree index would serve for a plan filter or WHERE clause, in index order."""
    return tuple(condition.column for condition in filter_conditions(filter_text))


def where_clauses(tokens: list[Token]) -> Iterator[list[Token]]:
    """Every WHERE clause, outer and nested, each cut where its own scope ends."""
    for start, token in enumerate(tokens):
        if token.word() != "WHERE":
            continue
        depth = 0
        clause: list[Token] = []
        for item in tokens[start + 1 :]:
            if item.kind == "open":
                depth += 1
            elif item.kind == "close":
                if depth == 0:
                    break
                depth -= 1
            elif depth == 0 and (item.word() in _CLAUSE_END or item.text == ";"):
                break
            clause.append(item)
        yield clause


def table_names(tokens: list[Token]) -> OrderedDict[str, str]:
    """Lower-cased table names and aliases after FROM and JOIN, each mapped to its table."""
    names: OrderedDict[str, str] = OrderedDict()
    index = 0
    while index < len(tokens):
        word = tokens[index].word()
        index += 1
        if word not in {"FROM", "JOIN"}:
            continue
        while index < len(tokens) and tokens[index].kind == "name":
            parts = _parts(tokens[index].text)
            table = unquote(parts[-1]) if parts else tokens[index].text
            names.setdefault(table.lower(), table)
            index += 1
            if index < len(tokens) and tokens[index].word() == "AS":
                index += 1
            if (
                index < len(tokens)
                and tokens[index].kind == "name"
                and tokens[index].word() not in _NOT_ALIASES
            ):
                names.setdefault(unquote(tokens[index].text).lower(), table)
                index += 1
            if word == "FROM" and index < len(tokens) and tokens[index].kind == "comma":
                index += 1
                continue
            break
    return names
