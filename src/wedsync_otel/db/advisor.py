"""QueryAdvisor: index and batching advice from the queries the application really runs.

The request path only counts: `QueryAdvisor.observe` records a latency under a
short lock and, the first time a fingerprint's p95 passes ``slow_ms``, appends a
job to a bounded queue. One daemon worker drains the queue on its own
connection from ``connect()``, with instrumentation suppressed, and EXPLAINs
each slow read once:

* never a write (`is_read_only` on the sanitised text) and never ``ANALYZE``;
* PostgreSQL: in a ``READ ONLY`` transaction with ``statement_timeout``, always
  rolled back. From 16, ``EXPLAIN (GENERIC_PLAN)`` with ``?`` numbered ``$1..$n``;
  before 16, ``PREPARE`` and ``EXPLAIN EXECUTE p(NULL, ...)`` under
  ``plan_cache_mode = force_generic_plan`` (from 12), which gives the same
  generic plan, since a NULL custom plan would fold ``col = NULL`` away;
* SQLite: ``EXPLAIN QUERY PLAN`` with ``None`` for each ``?`` on a connection set
  to ``PRAGMA query_only``; pass a factory that opens ``file:...?mode=ro`` to
  make the file itself read-only.

A plan earns ``CREATE INDEX`` advice when it scans a large table (at least
``min_table_rows``) whose filter compares columns with parameters, the table is
not read through an index elsewhere in the plan, no valid index already starts
with those columns, and (PostgreSQL) the filter keeps at most 10% of the rows.

Bounds: ``max_fingerprints`` series (least recently observed evicted), as many
fingerprints with advice and as many N+1 reports (oldest evicted), ``max_queue``
jobs (newest dropped); all counted in `AdvisorStats`. A failed EXPLAIN is
retried when the fingerprint is slow again, three attempts in all.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import math
import re
import sqlite3
import threading
from collections import OrderedDict, deque
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Final, Literal, NamedTuple

from opentelemetry import context as otel_context
from opentelemetry.context import _SUPPRESS_INSTRUMENTATION_KEY

from wedsync_otel._safety import RateLimitedWarning, log_internal_error
from wedsync_otel.errors import ConfigError
from wedsync_otel.instrumentation.fingerprint import MAX_QUERY_CHARS, is_read_only, sanitize
from wedsync_otel.metrics.buckets import ExponentialBuckets

__all__ = [
    "AdvisorStats",
    "PostgresPlan",
    "QueryAdvisor",
    "Recommendation",
    "RelationFacts",
    "SqlitePlan",
    "explain_postgres",
    "explain_sqlite",
    "filter_columns",
    "number_placeholders",
]

System = Literal["postgresql", "sqlite"]
Connect = Callable[[], Any]
"""Returns a new DB-API connection; the worker calls it, never the request path."""

_QUANTILE: Final = 0.95
_WINDOW_RUNS: Final = 1024
"""A series that has not turned slow after this many runs starts afresh, so a
query that slows down later is noticed without waiting for a lifetime p95 to move."""
_BUCKETS: Final = 128
"""Buckets per series: about 9% wide over 1 ms to a minute, 1 KiB; evidence only."""
_MAX_ATTEMPTS: Final = 3
"""EXPLAINs of one fingerprint that may fail before it is given up on."""
_MAX_SELECTIVITY: Final = 0.1
"""Above this share of the table a B-tree index rarely beats the scan."""
_CLOSE_TIMEOUT_S: Final = 5.0
_ADVICE_STATEMENT_CHARS: Final = 200


@dataclass(frozen=True, slots=True)
class Recommendation:
    """One piece of advice, with the plan or count that justifies it."""

    fingerprint: str
    statement: str
    kind: Literal["index", "batch"]
    table: str | None
    columns: tuple[str, ...]
    advice: str
    evidence: str


@dataclass(frozen=True, slots=True)
class AdvisorStats:
    """What the advisor has done and what it had to drop, skip or forget."""

    explained: int
    skipped_writes: int
    errors: int
    dropped: int
    evicted: int


# --- SQL text: tokens, placeholders, comparisons (pure) -----------------------------------

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
_PLAIN = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")

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


class _Token(NamedTuple):
    kind: str
    text: str

    def word(self) -> str:
        """The upper-cased text of a bare word, or "" for anything else."""
        return self.text.upper() if self.kind == "name" and _PLAIN.fullmatch(self.text) else ""


class _Condition(NamedTuple):
    qualifier: str | None
    column: str
    """As written, quotes included: it goes into the advice verbatim."""
    key: str
    """Unquoted, to compare with catalogue names."""
    op: str
    equality: bool


def _tokens(text: str) -> list[_Token]:
    return [
        _Token(str(match.lastgroup), match.group())
        for match in _TOKEN.finditer(text)
        if match.lastgroup != "space"
    ]


def _unquote(identifier: str) -> str:
    if identifier[:1] == '"':
        return identifier[1:-1].replace('""', '"')
    if identifier[:1] in "`[":
        return identifier[1:-1]
    return identifier


def _parts(name: str) -> list[str]:
    return _PART.findall(name)


def _quote(identifier: str) -> str:
    """An identifier as SQL, quoted only when it has to be."""
    if _PLAIN.fullmatch(identifier) and identifier.upper() not in _RESERVED:
        return identifier
    return '"' + identifier.replace('"', '""') + '"'


def number_placeholders(statement: str) -> tuple[str, int]:
    """The statement with each ``?`` as ``$1..$n`` (quoted identifiers untouched), and ``n``."""
    counter = itertools.count(1)

    def replace(match: re.Match[str]) -> str:
        return f"${next(counter)}" if match.group() == "?" else match.group()

    text = _QUESTION.sub(replace, statement)
    return text, next(counter) - 1


def _count_placeholders(statement: str) -> int:
    return sum(1 for match in _QUESTION.finditer(statement) if match.group() == "?")


def _strip_casts(tokens: list[_Token]) -> list[_Token]:
    """Drop ``::type`` (multi-word types, ``(n)`` and ``[]`` included): they hide columns."""
    out: list[_Token] = []
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


def _matching(tokens: Sequence[_Token], open_at: int) -> int:
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


def _unwrap(tokens: list[_Token]) -> list[_Token]:
    """Remove parentheses around the whole list and around single tokens."""
    while tokens and tokens[0].kind == "open" and _matching(tokens, 0) == len(tokens) - 1:
        tokens = tokens[1:-1]
    out: list[_Token] = []
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


def _conjuncts(tokens: list[_Token]) -> list[list[_Token]]:
    """The top-level AND terms; none at all when a top-level OR makes them alternatives."""
    terms: list[list[_Token]] = [[]]
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


def _comparison(term: list[_Token]) -> _Condition | None:
    """``column op param`` (either way round), ``IN (?)``, ``= ANY ($1)`` or ``BETWEEN``."""
    term = _unwrap(term)
    kinds = [token.kind for token in term]
    words = [token.word() for token in term]
    column: _Token | None = None
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
    qualifier = _unquote(parts[-2]) if len(parts) > 1 else None
    return _Condition(qualifier, parts[-1], _unquote(parts[-1]), op, op in _EQUALITY_OPS)


def _conditions(tokens: list[_Token]) -> list[_Condition]:
    found = (_comparison(term) for term in _conjuncts(_strip_casts(tokens)))
    return [condition for condition in found if condition is not None]


def _index_columns(conditions: Sequence[_Condition]) -> list[_Condition]:
    """Equality columns in order, then the first range column: what a B-tree can use."""
    chosen: list[_Condition] = []
    seen: set[str] = set()
    for condition in [c for c in conditions if c.equality] + [
        c for c in conditions if not c.equality
    ]:
        if condition.key.lower() in seen:
            continue
        if not condition.equality and any(not c.equality for c in chosen):
            break
        chosen.append(condition)
        seen.add(condition.key.lower())
    return chosen


def filter_columns(filter_text: str) -> tuple[str, ...]:
    """Columns a B-tree index would serve for a plan filter or WHERE clause, in index order."""
    return tuple(
        condition.column for condition in _index_columns(_conditions(_tokens(filter_text)))
    )


def _where_clauses(tokens: list[_Token]) -> Iterator[list[_Token]]:
    """Every WHERE clause, outer and nested, each cut where its own scope ends."""
    for start, token in enumerate(tokens):
        if token.word() != "WHERE":
            continue
        depth = 0
        clause: list[_Token] = []
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


def _table_names(tokens: list[_Token]) -> OrderedDict[str, str]:
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
            table = _unquote(parts[-1]) if parts else tokens[index].text
            names.setdefault(table.lower(), table)
            index += 1
            if index < len(tokens) and tokens[index].word() == "AS":
                index += 1
            if (
                index < len(tokens)
                and tokens[index].kind == "name"
                and tokens[index].word() not in _NOT_ALIASES
            ):
                names.setdefault(_unquote(tokens[index].text).lower(), table)
                index += 1
            if word == "FROM" and index < len(tokens) and tokens[index].kind == "comma":
                index += 1
                continue
            break
    return names


# --- PostgreSQL ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RelationFacts:
    """What the catalogue says about one scanned table."""

    name: str
    """As SQL: schema-qualified and quoted where needed (PostgreSQL's ``regclass`` text)."""
    rows: float | None
    """Estimated rows in the whole table; None when unknown."""
    index_keys: tuple[tuple[str, ...], ...]
    """Key columns of each valid, non-partial index ("" for an expression)."""


@dataclass(frozen=True, slots=True)
class PostgresPlan:
    """An ``EXPLAIN (VERBOSE, FORMAT JSON)`` plan and facts about the tables it scans."""

    plan: Any
    relations: dict[tuple[str, str], RelationFacts]


_PG_SETTINGS = (
    "SELECT current_setting('transaction_read_only'), current_setting('server_version_num')::int"
)
_PG_RELATION = """
SELECT c.oid::regclass::text, c.reltuples::float8, c.relpages
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname = %s AND c.relname = %s
"""
_PG_INDEX_KEYS = """
SELECT i.indexrelid, coalesce(a.attname::text, '')
FROM pg_index i
JOIN pg_class c ON c.oid = i.indrelid
JOIN pg_namespace n ON n.oid = c.relnamespace
CROSS JOIN LATERAL unnest(i.indkey::int2[]) WITH ORDINALITY AS k(attnum, n)
LEFT JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum
WHERE n.nspname = %s AND c.relname = %s
  AND i.indisvalid AND i.indpred IS NULL AND k.n <= i.indnkeyatts
ORDER BY i.indexrelid, k.n
"""
_INDEX_NODES: Final = frozenset({"Index Scan", "Index Only Scan", "Bitmap Heap Scan"})
_prepared_names = itertools.count(1)


def _plan_nodes(plan: Any) -> Iterator[dict[str, Any]]:
    """Every node of an ``EXPLAIN (FORMAT JSON)`` result, parents before children."""
    roots = plan if isinstance(plan, list) else [plan]
    stack: list[Any] = [root.get("Plan") for root in roots if isinstance(root, dict)]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            yield node
            children = node.get("Plans")
            if isinstance(children, list):
                stack.extend(reversed(children))


def _relation_key(node: dict[str, Any]) -> tuple[str, str] | None:
    name = node.get("Relation Name")
    if not isinstance(name, str):
        return None
    schema = node.get("Schema")
    return (schema if isinstance(schema, str) else "public", name)


def explain_postgres(
    connection: Any, statement: str, *, timeout_ms: int = 2000, generic_plan: bool | None = None
) -> PostgresPlan:
    """EXPLAIN a ``?``-placeholder SELECT safely and look up the tables it scans.

    Read-only transaction, ``statement_timeout``, rolled back whatever happens;
    never ANALYZE. ``generic_plan`` None picks ``GENERIC_PLAN`` from server 16 on
    and ``PREPARE``/``EXPLAIN EXECUTE`` before; tests force either. Raises what
    the driver raises.
    """
    autocommit = bool(getattr(connection, "autocommit", False))
    cursor = connection.cursor()
    prepared: list[str] = []
    try:
        try:
            if autocommit:
                cursor.execute("BEGIN READ ONLY")
            else:
                connection.rollback()  # SET TRANSACTION must be what opens the transaction
                cursor.execute("SET TRANSACTION READ ONLY")
            cursor.execute(f"SET LOCAL statement_timeout = {int(timeout_ms)}")
            explained = _explain_read_only(cursor, statement, generic_plan, prepared)
        except BaseException:
            with contextlib.suppress(Exception):  # report the first error, not the cleanup's
                _finish(connection, cursor, autocommit=autocommit, prepared=prepared)
            raise
        _finish(connection, cursor, autocommit=autocommit, prepared=prepared)
        return explained
    finally:
        cursor.close()


def _explain_read_only(
    cursor: Any, statement: str, generic_plan: bool | None, prepared: list[str]
) -> PostgresPlan:
    """The EXPLAIN itself, inside the read-only transaction; names what it PREPAREs."""
    cursor.execute(_PG_SETTINGS)
    read_only, version = cursor.fetchone()
    if read_only != "on":
        raise RuntimeError("the transaction is not read-only; refusing to EXPLAIN")
    numbered, count = number_placeholders(statement)
    if generic_plan if generic_plan is not None else int(version) >= 160000:
        cursor.execute(f"EXPLAIN (GENERIC_PLAN, VERBOSE, FORMAT JSON) {numbered}")
    else:
        cursor.execute("SET LOCAL plan_cache_mode = force_generic_plan")
        name = f"wedsync_advisor_{next(_prepared_names)}"
        cursor.execute(f"PREPARE {name} AS {numbered}")
        prepared.append(name)
        arguments = f"({', '.join(['NULL'] * count)})" if count else ""
        cursor.execute(f"EXPLAIN (VERBOSE, FORMAT JSON) EXECUTE {name}{arguments}")
    plan = _json(cursor.fetchone()[0])
    scanned = {
        _relation_key(node) for node in _plan_nodes(plan) if node.get("Node Type") == "Seq Scan"
    }
    relations = {key: _postgres_relation(cursor, *key) for key in scanned if key is not None}
    return PostgresPlan(plan, relations)


def _json(raw: Any) -> Any:
    """A JSON column as Python: psycopg parses it already, other drivers may not."""
    return json.loads(raw) if isinstance(raw, str | bytes) else raw


def _finish(connection: Any, cursor: Any, *, autocommit: bool, prepared: list[str]) -> None:
    """Roll back, then DEALLOCATE what was prepared: prepared statements outlive a rollback."""
    if autocommit:
        cursor.execute("ROLLBACK")  # we sent BEGIN
    else:
        connection.rollback()
    for name in prepared:
        cursor.execute(f"DEALLOCATE {name}")
        if not autocommit:
            connection.rollback()


def _postgres_relation(cursor: Any, schema: str, name: str) -> RelationFacts:
    cursor.execute(_PG_RELATION, (schema, name))
    row = cursor.fetchone()
    if row is None:
        return RelationFacts(name=name, rows=None, index_keys=())
    qualified, reltuples, relpages = str(row[0]), float(row[1]), int(row[2])
    rows: float | None = reltuples
    if reltuples < 0 or (reltuples == 0 and relpages == 0):  # never analysed: ask the planner
        cursor.execute(f"EXPLAIN (FORMAT JSON) SELECT 1 FROM ONLY {qualified}")
        node = next(_plan_nodes(_json(cursor.fetchone()[0])), {})
        plan_rows = node.get("Plan Rows")
        rows = float(plan_rows) if isinstance(plan_rows, int | float) else None
    cursor.execute(_PG_INDEX_KEYS, (schema, name))
    keys: dict[int, list[str]] = {}
    for index_oid, column in cursor.fetchall():
        keys.setdefault(int(index_oid), []).append(str(column))
    return RelationFacts(name=qualified, rows=rows, index_keys=tuple(map(tuple, keys.values())))


class _IndexAdvice(NamedTuple):
    table: str
    columns: tuple[str, ...]
    evidence: str


def _covered(chosen: Sequence[_Condition], index_keys: Sequence[Sequence[str]], fold: bool) -> bool:
    """True when an existing index starts with the chosen columns (equalities in any order)."""

    def norm(name: str) -> str:
        return name.lower() if fold else name

    equal = {norm(c.key) for c in chosen if c.equality}
    ranged = [norm(c.key) for c in chosen if not c.equality]
    for keys in index_keys:
        normalised = [norm(key) for key in keys]
        head = normalised[: len(equal)]
        if set(head) != equal or len(head) < len(equal):
            continue
        if not ranged or normalised[len(equal) : len(equal) + 1] == ranged:
            return True
    return False


def _rows_text(rows: float | None) -> str:
    return f"~{rows:.0f} rows" if rows is not None else "row count unknown"


def _postgres_advice(explained: PostgresPlan, *, min_table_rows: int) -> list[_IndexAdvice]:
    """Index advice for each large, filtered Seq Scan that no index already serves."""
    nodes = list(_plan_nodes(explained.plan))
    indexed = {_relation_key(node) for node in nodes if node.get("Node Type") in _INDEX_NODES}
    advice: list[_IndexAdvice] = []
    for node in nodes:
        key = _relation_key(node)
        filter_text = node.get("Filter")
        if node.get("Node Type") != "Seq Scan" or key is None or key in indexed:
            continue
        if not isinstance(filter_text, str):
            continue
        facts = explained.relations.get(key)
        chosen = _index_columns(_conditions(_tokens(filter_text)))
        if facts is None or facts.rows is None or facts.rows < min_table_rows or not chosen:
            continue
        plan_rows = node.get("Plan Rows")
        if isinstance(plan_rows, int | float) and plan_rows > _MAX_SELECTIVITY * facts.rows:
            continue
        if _covered(chosen, facts.index_keys, fold=False) or any(
            advice_.table == facts.name for advice_ in advice
        ):
            continue
        shown = _without_alias(filter_text, node.get("Alias"))
        evidence = f"Seq Scan on {facts.name} ({_rows_text(facts.rows)}) with Filter {shown}"
        advice.append(_IndexAdvice(facts.name, tuple(c.column for c in chosen), evidence))
    return advice


def _without_alias(filter_text: str, alias: Any) -> str:
    """VERBOSE qualifies every column with the alias; the evidence reads better without."""
    if not isinstance(alias, str) or not _PLAIN.fullmatch(alias):
        return filter_text
    return re.sub(rf'(?<![\w."$]){re.escape(alias)}\.', "", filter_text)


# --- SQLite -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SqlitePlan:
    """``EXPLAIN QUERY PLAN`` details and catalogue facts about the tables they name."""

    details: tuple[str, ...]
    tables: dict[str, tuple[RelationFacts, frozenset[str]]]
    """Lower-cased table name -> (facts, lower-cased column names)."""
    names: dict[str, str]
    """Lower-cased table names and aliases in the statement -> table."""


_SQLITE_STEP = re.compile(
    r'^(?P<op>SCAN|SEARCH)(?: TABLE)? (?P<name>"(?:[^"]|"")*"|\S+)(?: AS (?P<alias>\S+))?'
)


def _sqlite_step(detail: str, names: dict[str, str]) -> tuple[str, str, set[str]] | None:
    """(SCAN or SEARCH, table, names that refer to it) for one plan step, else None."""
    match = _SQLITE_STEP.match(detail)
    if match is None:
        return None
    shown = _unquote(match.group("name"))
    table = shown if match.group("alias") else names.get(shown.lower(), shown)
    referring = {table.lower(), shown.lower()}
    if match.group("alias"):
        referring.add(_unquote(match.group("alias")).lower())
    return match.group("op"), table, referring


def explain_sqlite(connection: Any, statement: str) -> SqlitePlan:
    """``EXPLAIN QUERY PLAN`` with None for each ``?``, plus catalogue facts; reads only."""
    cursor = connection.cursor()
    try:
        cursor.execute(f"EXPLAIN QUERY PLAN {statement}", (None,) * _count_placeholders(statement))
        details = tuple(str(row[3]) for row in cursor.fetchall())
        names = dict(_table_names(_tokens(statement)))
        tables: dict[str, tuple[RelationFacts, frozenset[str]]] = {}
        for detail in details:
            step = _sqlite_step(detail, names)
            if step is not None and step[1].lower() not in tables:
                tables[step[1].lower()] = _sqlite_table(cursor, step[1])
        return SqlitePlan(details, tables, names)
    finally:
        cursor.close()


def _sqlite_table(cursor: Any, table: str) -> tuple[RelationFacts, frozenset[str]]:
    cursor.execute("SELECT name FROM pragma_table_info(?)", (table,))
    columns = frozenset(str(row[0]).lower() for row in cursor.fetchall())
    rows: float | None = None
    cursor.execute("SELECT 1 FROM sqlite_master WHERE name = 'sqlite_stat1'")
    if cursor.fetchone() is not None:
        cursor.execute("SELECT stat FROM sqlite_stat1 WHERE tbl = ? LIMIT 1", (table,))
        stat = cursor.fetchone()
        head = str(stat[0]).split(" ", 1)[0] if stat else ""
        rows = float(head) if head.isdigit() else None
    if rows is None and columns:
        try:  # max(rowid) reads one B-tree edge: an upper bound, cheap on any size
            cursor.execute(f"SELECT max(rowid) FROM {_quote(table)}")
            top = cursor.fetchone()
            rows = float(top[0]) if top and top[0] is not None else 0.0
        except sqlite3.OperationalError:  # WITHOUT ROWID tables have no rowid
            rows = None
    cursor.execute("SELECT name FROM pragma_index_list(?) WHERE NOT partial", (table,))
    index_keys: list[tuple[str, ...]] = []
    for (index_name,) in cursor.fetchall():
        cursor.execute("SELECT name FROM pragma_index_info(?) ORDER BY seqno", (index_name,))
        index_keys.append(tuple(str(row[0] or "") for row in cursor.fetchall()))
    return RelationFacts(name=table, rows=rows, index_keys=tuple(index_keys)), columns


def _sqlite_advice(
    explained: SqlitePlan, statement: str, *, min_table_rows: int
) -> list[_IndexAdvice]:
    """Index advice for each large table the plan SCANs while WHERE compares its columns."""
    steps = [_sqlite_step(detail, explained.names) for detail in explained.details]
    searched = {step[1].lower() for step in steps if step is not None and step[0] == "SEARCH"}
    conditions = [
        condition
        for clause in _where_clauses(_tokens(statement))
        for condition in _conditions(clause)
    ]
    advice: list[_IndexAdvice] = []
    for step in steps:
        if step is None or step[0] != "SCAN" or step[1].lower() in searched:
            continue
        _, table, referring = step
        facts, columns = explained.tables.get(table.lower(), (None, frozenset[str]()))
        if facts is None or (facts.rows is not None and facts.rows < min_table_rows):
            continue
        own = [
            condition
            for condition in conditions
            if condition.key.lower() in columns
            and (condition.qualifier is None or condition.qualifier.lower() in referring)
        ]
        chosen = _index_columns(own)
        if not chosen or _covered(chosen, facts.index_keys, fold=True):
            continue
        if any(item.table == _quote(table) for item in advice):
            continue
        compared = " AND ".join(f"{c.column} {c.op} ?" for c in chosen)
        evidence = f"SCAN {table} ({_rows_text(facts.rows)}) for WHERE {compared}"
        advice.append(_IndexAdvice(_quote(table), tuple(c.column for c in chosen), evidence))
    return advice


# --- the advisor --------------------------------------------------------------------------

_WATCHING, _QUEUED, _DONE = "watching", "queued", "done"


@dataclass(slots=True)
class _Series:
    """One fingerprint's latencies in the current window and where it stands."""

    statement: str
    latency: ExponentialBuckets = field(
        default_factory=lambda: ExponentialBuckets(max_size=_BUCKETS)
    )
    slow: int = 0
    state: str = _WATCHING
    attempts: int = 0

    def restart(self) -> None:
        self.latency = ExponentialBuckets(max_size=_BUCKETS)
        self.slow = 0
        self.state = _WATCHING


@dataclass(frozen=True, slots=True)
class _Job:
    fingerprint: str
    statement: str
    p95_ms: float
    runs: int


@dataclass(slots=True)
class _Batch:
    statement: str
    largest: int
    reports: int


class _Unexplainable(Exception):
    """A statement that no EXPLAIN could take; retrying would not help."""


class QueryAdvisor:
    """EXPLAINs each slow read once, off the request path, and turns plans into advice.

    ``observe`` and ``report_n_plus_one`` are for the request path: they take one
    short lock, never touch the database and never raise. Everything else runs
    on one daemon worker started on first need (and again after a fork).
    """

    def __init__(
        self,
        connect: Connect,
        *,
        system: System,
        slow_ms: float = 50.0,
        min_samples: int = 5,
        max_fingerprints: int = 1000,
        max_queue: int = 100,
        min_table_rows: int = 10_000,
        statement_timeout_ms: int = 2_000,
    ) -> None:
        if system not in {"postgresql", "sqlite"}:
            raise ConfigError("system", f"{system!r} is neither 'postgresql' nor 'sqlite'")
        if not (isinstance(slow_ms, int | float) and math.isfinite(slow_ms) and slow_ms >= 0):
            raise ConfigError("slow_ms", f"{slow_ms!r} is not a finite number >= 0")
        for key, value in (
            ("min_samples", min_samples),
            ("max_fingerprints", max_fingerprints),
            ("max_queue", max_queue),
            ("statement_timeout_ms", statement_timeout_ms),
        ):
            if not isinstance(value, int) or value < 1:
                raise ConfigError(key, f"{value!r} is not an integer >= 1")
        if not isinstance(min_table_rows, int) or min_table_rows < 0:
            raise ConfigError("min_table_rows", f"{min_table_rows!r} is not an integer >= 0")
        self._connect = connect
        self._system = system
        self._slow_ms = float(slow_ms)
        self._min_samples = min_samples
        self._max_fingerprints = max_fingerprints
        self._max_queue = max_queue
        self._min_table_rows = min_table_rows
        self._timeout_ms = statement_timeout_ms
        self._cond = threading.Condition(threading.Lock())
        self._series: OrderedDict[str, _Series] = OrderedDict()
        self._advice: OrderedDict[str, tuple[Recommendation, ...]] = OrderedDict()
        self._batches: OrderedDict[str, _Batch] = OrderedDict()
        self._queue: deque[_Job] = deque()
        self._pending = 0  # queued plus the one in progress
        self._worker: threading.Thread | None = None
        self._closed = False
        self._explained = self._skipped_writes = self._errors = 0
        self._dropped = self._evicted = 0
        self._failure = RateLimitedWarning("wedsync-otel: QueryAdvisor could not EXPLAIN")

    # --- request path -------------------------------------------------------------------

    def observe(self, *, fingerprint: str, statement: str, duration_ms: float) -> None:
        """Count one run of a sanitised statement; queue its EXPLAIN once its p95 is slow."""
        try:
            with self._cond:
                if self._closed:
                    return
                series = self._series.get(fingerprint)
                if series is None:
                    series = self._track(fingerprint, statement)
                else:
                    self._series.move_to_end(fingerprint)
                if series.state != _WATCHING or not series.latency.record(duration_ms):
                    return
                if duration_ms > self._slow_ms:
                    series.slow += 1
                runs = series.latency.count
                # Nearest-rank p95 is above slow_ms exactly when that many runs were slow.
                if runs >= self._min_samples and series.slow >= runs - round(
                    _QUANTILE * (runs - 1)
                ):
                    p95 = series.latency.quantile(_QUANTILE) or duration_ms
                    self._enqueue(_Job(fingerprint, series.statement, p95, runs), series)
                elif runs >= _WINDOW_RUNS:
                    series.restart()
        except Exception as exc:  # noqa: BLE001 - telemetry must not break the request
            log_internal_error("QueryAdvisor.observe", exc)

    def report_n_plus_one(self, *, fingerprint: str, statement: str, count: int) -> None:
        """Note that one request ran this sanitised statement ``count`` times."""
        try:
            with self._cond:
                if self._closed:
                    return
                batch = self._batches.get(fingerprint)
                if batch is None:
                    if len(self._batches) >= self._max_fingerprints:
                        self._batches.popitem(last=False)
                        self._evicted += 1
                    self._batches[fingerprint] = _Batch(statement, count, 1)
                else:
                    batch.largest = max(batch.largest, count)
                    batch.reports += 1
        except Exception as exc:  # noqa: BLE001 - telemetry must not break the request
            log_internal_error("QueryAdvisor.report_n_plus_one", exc)

    def _track(self, fingerprint: str, statement: str) -> _Series:
        """Start a series, evicting the least recently observed one when at the bound."""
        if len(self._series) >= self._max_fingerprints:
            self._series.popitem(last=False)
            self._evicted += 1
        series = _Series(statement)
        if fingerprint in self._advice:  # explained before it was evicted: once is enough
            series.state = _DONE
        self._series[fingerprint] = series
        return series

    def _enqueue(self, job: _Job, series: _Series) -> None:
        """Queue under the lock, or drop and count; a dropped series starts a new window."""
        if len(self._queue) >= self._max_queue:
            self._dropped += 1
            series.restart()
            return
        series.state = _QUEUED
        self._queue.append(job)
        self._pending += 1
        self._ensure_worker()
        self._cond.notify_all()

    def _ensure_worker(self) -> None:
        """Start the worker if there is none; after a fork the child has none."""
        if self._worker is not None and self._worker.is_alive():
            return
        self._pending = len(self._queue)  # a job a dead worker held will never finish
        self._worker = threading.Thread(
            target=self._run, name="wedsync-otel-query-advisor", daemon=True
        )
        self._worker.start()

    # --- reading --------------------------------------------------------------------------

    def recommendations(self) -> list[Recommendation]:
        """Index advice in the order it was found, then batch advice for N+1 patterns."""
        with self._cond:
            found = [rec for recs in self._advice.values() for rec in recs]
            batches = list(self._batches.items())
        return found + [_batch_recommendation(fp, batch) for fp, batch in batches]

    @property
    def stats(self) -> AdvisorStats:
        """Counts of EXPLAINs run, writes skipped, errors, dropped jobs and evictions."""
        with self._cond:
            return AdvisorStats(
                explained=self._explained,
                skipped_writes=self._skipped_writes,
                errors=self._errors,
                dropped=self._dropped,
                evicted=self._evicted,
            )

    def wait_idle(self, timeout_s: float) -> bool:
        """Wait until every queued EXPLAIN has finished; False if ``timeout_s`` passed first."""
        with self._cond:
            return self._cond.wait_for(lambda: self._pending == 0, timeout=timeout_s)

    def close(self) -> None:
        """Drop queued work, stop the worker and close its connection; idempotent."""
        with self._cond:
            if self._closed:
                return
            self._closed = True
            self._dropped += len(self._queue)
            self._pending -= len(self._queue)
            self._queue.clear()
            worker = self._worker
            self._cond.notify_all()
        if worker is not None and worker is not threading.current_thread():
            worker.join(_CLOSE_TIMEOUT_S)

    # --- the worker -----------------------------------------------------------------------

    def _run(self) -> None:
        # Like the SDK's exporters: the advisor's own queries must not become spans that
        # the span processor would feed back into observe().
        token = otel_context.attach(otel_context.set_value(_SUPPRESS_INSTRUMENTATION_KEY, True))
        connection: Any = None
        try:
            while True:
                with self._cond:
                    while not self._queue and not self._closed:
                        self._cond.wait()
                    if self._closed:
                        return
                    job = self._queue.popleft()
                try:
                    connection = self._process(job, connection)
                finally:
                    with self._cond:
                        self._pending -= 1
                        self._cond.notify_all()
        finally:
            _close_quietly(connection)
            otel_context.detach(token)

    def _process(self, job: _Job, connection: Any) -> Any:
        """EXPLAIN one job and keep its advice; returns the connection to reuse (or None)."""
        statement = sanitize(job.statement)
        if not is_read_only(statement):
            with self._cond:
                self._skipped_writes += 1
                self._settle(job.fingerprint, None)
            return connection
        if len(job.statement) > MAX_QUERY_CHARS or statement.endswith(" ..."):
            self._failed(job, _Unexplainable(f"cut at {MAX_QUERY_CHARS} characters"))
            return connection
        try:
            if connection is None:
                connection = self._open()
            plan: PostgresPlan | SqlitePlan
            if self._system == "postgresql":
                plan = explain_postgres(connection, statement, timeout_ms=self._timeout_ms)
            else:
                plan = explain_sqlite(connection, statement)
        except Exception as exc:  # noqa: BLE001 - any driver error is counted, never raised
            self._failed(job, exc)
            _close_quietly(connection)  # a failed connection may be in any state: start anew
            return None
        try:
            found = self._advise(job, statement, plan)
        except Exception as exc:  # noqa: BLE001 - a bug of ours: logged (raised under pytest)
            with self._cond:
                self._errors += 1
                self._settle(job.fingerprint, None)
            log_internal_error("QueryAdvisor plan analysis", exc)
            return connection
        with self._cond:
            self._explained += 1
            self._settle(job.fingerprint, found)
        return connection

    def _open(self) -> Any:
        connection = self._connect()
        if self._system == "sqlite":
            try:
                connection.execute("PRAGMA query_only = ON")
            except BaseException:
                _close_quietly(connection)
                raise
        return connection

    def _advise(
        self, job: _Job, statement: str, plan: PostgresPlan | SqlitePlan
    ) -> tuple[Recommendation, ...]:
        if isinstance(plan, PostgresPlan):
            found = _postgres_advice(plan, min_table_rows=self._min_table_rows)
        else:
            found = _sqlite_advice(plan, statement, min_table_rows=self._min_table_rows)
        runs = f"p95 {job.p95_ms:.0f} ms over {job.runs} runs"
        return tuple(
            Recommendation(
                fingerprint=job.fingerprint,
                statement=job.statement,
                kind="index",
                table=item.table,
                columns=item.columns,
                advice=_create_index(self._system, item.table, item.columns),
                evidence=f"{item.evidence}, {runs}",
            )
            for item in found
        )

    def _failed(self, job: _Job, exc: Exception) -> None:
        """Count the error; let the fingerprint be queued again, up to three attempts."""
        with self._cond:
            self._errors += 1
            series = self._series.get(job.fingerprint)
            if series is not None:
                series.attempts += 1
                if series.attempts < _MAX_ATTEMPTS and not isinstance(exc, _Unexplainable):
                    series.restart()
                else:
                    series.state = _DONE
        self._failure(f"{job.fingerprint}: {type(exc).__name__}: {exc}".strip())

    def _settle(self, fingerprint: str, found: tuple[Recommendation, ...] | None) -> None:
        """Mark a fingerprint done and keep its advice (bounded); the caller holds the lock."""
        series = self._series.get(fingerprint)
        if series is not None:
            series.state = _DONE
        if found:
            if fingerprint not in self._advice and len(self._advice) >= self._max_fingerprints:
                self._advice.popitem(last=False)
                self._evicted += 1
            self._advice[fingerprint] = found


def _create_index(system: System, table: str, columns: Sequence[str]) -> str:
    """``CREATE INDEX``; SQLite requires an index name, PostgreSQL picks one itself."""
    listed = ", ".join(columns)
    if system == "postgresql":
        return f"CREATE INDEX ON {table} ({listed})"
    words = [_unquote(table), *(_unquote(column) for column in columns)]
    name = re.sub(r"\W+", "_", "_".join(["ix", *words]))[:63]
    return f"CREATE INDEX {_quote(name)} ON {table} ({listed})"


def _batch_recommendation(fingerprint: str, batch: _Batch) -> Recommendation:
    tokens = _tokens(batch.statement)
    tables = list(dict.fromkeys(_table_names(tokens).values()))
    clauses = list(_where_clauses(tokens))
    chosen = [c for c in _conditions(clauses[0]) if c.equality] if clauses else []
    columns = tuple(dict.fromkeys(c.column for c in chosen))
    shown = batch.statement
    if len(shown) > _ADVICE_STATEMENT_CHARS:
        shown = shown[:_ADVICE_STATEMENT_CHARS] + "..."
    batched = f"`{columns[0]} IN (...)`" if columns else "`IN (...)`"
    return Recommendation(
        fingerprint=fingerprint,
        statement=batch.statement,
        kind="batch",
        table=_quote(tables[0]) if tables else None,
        columns=columns,
        advice=f"run one query with {batched} / a join instead of N queries like: {shown}",
        evidence=(
            f"one request ran it {batch.largest} times; "
            f"reported in {batch.reports} request{'s' if batch.reports != 1 else ''}"
        ),
    )


def _close_quietly(connection: Any) -> None:
    if connection is None:
        return
    with contextlib.suppress(Exception):  # closing a broken connection may fail; no matter
        connection.close()
