"""PostgreSQL: EXPLAIN a sanitised SELECT safely and read index advice from the plan.

`explain_postgres` runs in a ``READ ONLY`` transaction with ``statement_timeout``,
always rolled back, and never ``ANALYZE``. From server 16 it uses
``EXPLAIN (GENERIC_PLAN)`` with ``?`` numbered ``$1..$n``; before 16, ``PREPARE``
and ``EXPLAIN EXECUTE p(NULL, ...)`` under ``plan_cache_mode =
force_generic_plan`` (from 12), which gives the same generic plan, since a NULL
custom plan would fold ``col = NULL`` away. What it prepares it deallocates.

`postgres_advice` advises an index for each Seq Scan of a large table whose
filter compares columns with parameters and keeps at most 10% of the rows,
unless the table is read through an index elsewhere in the plan or a valid
index already starts with those columns.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Final

from wedsync_otel.db._index import IndexAdvice, RelationFacts, covered, rows_text
from wedsync_otel.db._sql import PLAIN, filter_conditions, number_placeholders

_MAX_SELECTIVITY: Final = 0.1
"""Above this share of the table a B-tree index rarely beats the scan."""

_SETTINGS = (
    "SELECT current_setting('transaction_read_only'), current_setting('server_version_num')::int"
)
_RELATION = """
SELECT c.oid::regclass::text, c.reltuples::float8, c.relpages
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname = %s AND c.relname = %s
"""
_INDEX_KEYS = """
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


@dataclass(frozen=True, slots=True)
class PostgresPlan:
    """An ``EXPLAIN (VERBOSE, FORMAT JSON)`` plan and facts about the tables it scans."""

    plan: Any
    relations: dict[tuple[str, str], RelationFacts]


# --- running EXPLAIN ----------------------------------------------------------------------


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
    cursor.execute(_SETTINGS)
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
    plan = _fetch_plan(cursor)
    scanned = {
        _relation_key(node) for node in _plan_nodes(plan) if node.get("Node Type") == "Seq Scan"
    }
    relations = {key: _relation(cursor, *key) for key in scanned if key is not None}
    return PostgresPlan(plan, relations)


def _fetch_plan(cursor: Any) -> Any:
    """The JSON plan just EXPLAINed, as Python: psycopg parses it already, others may not."""
    raw = cursor.fetchone()[0]
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


def _relation(cursor: Any, schema: str, name: str) -> RelationFacts:
    cursor.execute(_RELATION, (schema, name))
    row = cursor.fetchone()
    if row is None:
        return RelationFacts(name=name, rows=None, index_keys=())
    qualified, reltuples, relpages = str(row[0]), float(row[1]), int(row[2])
    rows: float | None = reltuples
    if reltuples < 0 or (reltuples == 0 and relpages == 0):  # never analysed: ask the planner
        cursor.execute(f"EXPLAIN (FORMAT JSON) SELECT 1 FROM ONLY {qualified}")
        node = next(_plan_nodes(_fetch_plan(cursor)), {})
        plan_rows = node.get("Plan Rows")
        rows = float(plan_rows) if isinstance(plan_rows, int | float) else None
    cursor.execute(_INDEX_KEYS, (schema, name))
    keys: dict[int, list[str]] = {}
    for index_oid, column in cursor.fetchall():
        keys.setdefault(int(index_oid), []).append(str(column))
    return RelationFacts(name=qualified, rows=rows, index_keys=tuple(map(tuple, keys.values())))


# --- reading the plan ---------------------------------------------------------------------


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


def postgres_advice(explained: PostgresPlan, *, min_table_rows: int) -> list[IndexAdvice]:
    """Index advice for each large, filtered Seq Scan that no index already serves."""
    nodes = list(_plan_nodes(explained.plan))
    indexed = {_relation_key(node) for node in nodes if node.get("Node Type") in _INDEX_NODES}
    advice: list[IndexAdvice] = []
    for node in nodes:
        key = _relation_key(node)
        filter_text = node.get("Filter")
        if node.get("Node Type") != "Seq Scan" or key is None or key in indexed:
            continue
        if not isinstance(filter_text, str):
            continue
        facts = explained.relations.get(key)
        chosen = filter_conditions(filter_text)
        if facts is None or facts.rows is None or facts.rows < min_table_rows or not chosen:
            continue
        plan_rows = node.get("Plan Rows")
        if isinstance(plan_rows, int | float) and plan_rows > _MAX_SELECTIVITY * facts.rows:
            continue
        if covered(chosen, facts.index_keys, fold=False) or any(
            item.table == facts.name for item in advice
        ):
            continue
        columns = tuple(c.column for c in chosen)
        shown = _without_alias(filter_text, node.get("Alias"))
        evidence = f"Seq Scan on {facts.name} ({rows_text(facts.rows)}) with Filter {shown}"
        advice.append(
            IndexAdvice(facts.name, columns, _create_index(facts.name, columns), evidence)
        )
    return advice


def _without_alias(filter_text: str, alias: Any) -> str:
    """VERBOSE qualifies every column with the alias; the evidence reads better without."""
    if not isinstance(alias, str) or not PLAIN.fullmatch(alias):
        return filter_text
    return re.sub(rf'(?<![\w."$]){re.escape(alias)}\.', "", filter_text)


def _create_index(table: str, columns: Sequence[str]) -> str:
    """``CREATE INDEX`` without a name: PostgreSQL picks one itself."""
    return f"CREATE INDEX ON {table} ({', '.join(columns)})"
