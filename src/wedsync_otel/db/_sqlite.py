"""SQLite: EXPLAIN QUERY PLAN for a sanitised SELECT and index advice from its steps.

`explain_sqlite` binds ``None`` for each ``?`` and only reads: the plan, then
``pragma_table_info``, ``sqlite_stat1`` (or ``max(rowid)``) and the index lists
of the tables the plan names. The advisor's connection is set to ``PRAGMA
query_only`` by `set_query_only`; a factory that opens ``file:...?mode=ro``
makes the file itself read-only too.

`sqlite_advice` advises an index for each large table the plan SCANs (and
never SEARCHes) while a WHERE clause compares its columns with parameters,
unless an index already starts with those columns.
"""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from wedsync_otel.db._index import IndexAdvice, RelationFacts, covered, rows_text
from wedsync_otel.db._sql import (
    comparisons,
    count_placeholders,
    index_columns,
    quote,
    table_names,
    tokenize,
    unquote,
    where_clauses,
)

_STEP = re.compile(
    r'^(?P<op>SCAN|SEARCH)(?: TABLE)? (?P<name>"(?:[^"]|"")*"|\S+)(?: AS (?P<alias>\S+))?'
)


@dataclass(frozen=True, slots=True)
class SqlitePlan:
    """``EXPLAIN QUERY PLAN`` details and catalogue facts about the tables they name."""

    details: tuple[str, ...]
    tables: dict[str, tuple[RelationFacts, frozenset[str]]]
    """Lower-cased table name -> (facts, lower-cased column names)."""
    names: dict[str, str]
    """Lower-cased table names and aliases in the statement -> table."""


# --- running EXPLAIN QUERY PLAN -----------------------------------------------------------


def set_query_only(connection: Any) -> None:
    """Make the connection refuse every write, whatever it is asked to run."""
    connection.execute("PRAGMA query_only = ON")


def explain_sqlite(connection: Any, statement: str) -> SqlitePlan:
    """``EXPLAIN QUERY PLAN`` with None for each ``?``, plus catalogue facts; reads only."""
    cursor = connection.cursor()
    try:
        cursor.execute(f"EXPLAIN QUERY PLAN {statement}", (None,) * count_placeholders(statement))
        details = tuple(str(row[3]) for row in cursor.fetchall())
        names = dict(table_names(tokenize(statement)))
        tables: dict[str, tuple[RelationFacts, frozenset[str]]] = {}
        for detail in details:
            step = _step(detail, names)
            if step is not None and step[1].lower() not in tables:
                tables[step[1].lower()] = _table(cursor, step[1])
        return SqlitePlan(details, tables, names)
    finally:
        cursor.close()


def _table(cursor: Any, table: str) -> tuple[RelationFacts, frozenset[str]]:
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
            cursor.execute(f"SELECT max(rowid) FROM {quote(table)}")
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


# --- reading the plan ---------------------------------------------------------------------


def _step(detail: str, names: dict[str, str]) -> tuple[str, str, set[str]] | None:
    """(SCAN or SEARCH, table, names that refer to it) for one plan step, else None."""
    match = _STEP.match(detail)
    if match is None:
        return None
    shown = unquote(match.group("name"))
    table = shown if match.group("alias") else names.get(shown.lower(), shown)
    referring = {table.lower(), shown.lower()}
    if match.group("alias"):
        referring.add(unquote(match.group("alias")).lower())
    return match.group("op"), table, referring


def sqlite_advice(
    explained: SqlitePlan, statement: str, *, min_table_rows: int
) -> list[IndexAdvice]:
    """Index advice for each large table the plan SCANs while WHERE compares its columns."""
    steps = [_step(detail, explained.names) for detail in explained.details]
    searched = {step[1].lower() for step in steps if step is not None and step[0] == "SEARCH"}
    compared = [
        condition
        for clause in where_clauses(tokenize(statement))
        for condition in comparisons(clause)
    ]
    advice: list[IndexAdvice] = []
    for step in steps:
        if step is None or step[0] != "SCAN" or step[1].lower() in searched:
            continue
        _, table, referring = step
        facts, columns = explained.tables.get(table.lower(), (None, frozenset[str]()))
        if facts is None or (facts.rows is not None and facts.rows < min_table_rows):
            continue
        own = [
            condition
            for condition in compared
            if condition.key.lower() in columns
            and (condition.qualifier is None or condition.qualifier.lower() in referring)
        ]
        chosen = index_columns(own)
        if not chosen or covered(chosen, facts.index_keys, fold=True):
            continue
        quoted = quote(table)
        if any(item.table == quoted for item in advice):
            continue
        indexed = tuple(c.column for c in chosen)
        where = " AND ".join(f"{c.column} {c.op} ?" for c in chosen)
        evidence = f"SCAN {table} ({rows_text(facts.rows)}) for WHERE {where}"
        advice.append(IndexAdvice(quoted, indexed, _create_index(quoted, indexed), evidence))
    return advice


def _create_index(table: str, columns: Sequence[str]) -> str:
    """``CREATE INDEX`` with a name made of the table and columns: SQLite requires one."""
    words = [unquote(table), *(unquote(column) for column in columns)]
    name = re.sub(r"\W+", "_", "_".join(["ix", *words]))[:63]
    return f"CREATE INDEX {quote(name)} ON {table} ({', '.join(columns)})"
