"""SQL literal redaction and db.query.summary (wedsync_otel.privacy.sql)."""

from __future__ import annotations

import ast
import importlib.util
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from helpers import CountingText, counting_work
from wedsync_otel.privacy import sql
from wedsync_otel.privacy.sql import (
    MAX_QUERY_CHARS,
    MAX_SUMMARY_CHARS,
    query_summary,
    redacted_literals,
    sanitize_sql,
    tokenize,
)

_CASES: list[dict[str, Any]] = json.loads(
    (Path(__file__).parent / "data" / "db-sql-test-cases.json").read_text(encoding="utf-8")
)
_IDS = [case["name"] for case in _CASES]
_DIALECTS = [
    "postgresql",
    "sqlite",
    "mysql",
    "mariadb",
    "mssql",
    "microsoft.sql_server",
    "oracle",
    "other_sql",
    "snowflake",
]


@pytest.mark.parametrize("case", _CASES, ids=_IDS)
def test_reference_query_text(case: dict[str, Any]) -> None:
    """Each semantic-conventions reference query sanitises to one of its expected texts."""
    source = case["input"]
    text = sanitize_sql(source["query"], dialect=source["db.system.name"])
    assert text in case["expected"]["db.query.text"]


@pytest.mark.parametrize("case", _CASES, ids=_IDS)
def test_reference_query_summary(case: dict[str, Any]) -> None:
    """Each semantic-conventions reference query has exactly the expected summary."""
    source = case["input"]
    summary = query_summary(source["query"], dialect=source["db.system.name"])
    assert summary == case["expected"]["db.query.summary"]


# (dialect, query, sanitised text, planted secret that must be gone or None)
_DIALECT_CASES: list[tuple[str, str, str, str | None]] = [
    ("postgresql", "SELECT $t1$anna@example.com$t1$", "SELECT ?", "anna@example.com"),
    ("postgresql", "SELECT $é$Anna Smith$é$ FROM t", "SELECT ? FROM t", "Anna"),
    ("postgresql", "SELECT $$it's Anna$$, $1", "SELECT ?, $1", "Anna"),
    ("postgresql", "SELECT $tag$a $other$ Anna$tag$", "SELECT ?", "Anna"),
    ("postgresql", "SELECT $a$Anna", "SELECT ?", "Anna"),
    ("postgresql", "SELECT E'it\\'s anna@example.com'", "SELECT ?", "anna@example.com"),
    ("postgresql", "SELECT e'\\\\' || 'Anna'", "SELECT ? || ?", "Anna"),
    ("postgresql", "SELECT 'C:\\', 'Anna'", "SELECT ?, ?", "Anna"),
    ("other_sql", "SELECT a /* outer /* inner */ Anna */ FROM t", "SELECT a  FROM t", "Anna"),
    ("other_sql", "SELECT ARRAY['anna@example.com']", "SELECT ARRAY[?]", "anna@example.com"),
    ("postgresql", "SELECT data['anna'] FROM t", "SELECT data[?] FROM t", "anna"),
    (
        "mssql",
        "SELECT [Name] FROM [dbo].[Guests] WHERE [Email] = N'anna@example.com'",
        "SELECT [Name] FROM [dbo].[Guests] WHERE [Email] = ?",
        "anna@example.com",
    ),
    ("postgresql", "SELECT 1_000, 0o777, 0b1010, 0x1F", "SELECT ?, ?, ?, ?", "777"),
    ("other_sql", "SELECT 123abc, 1e, 4111111111111111x", "SELECT ?, ?, ?", "4111111111111111"),
    ("other_sql", "SELECT 12.34E+56, .5e-3", "SELECT ?, ?", "34"),
    ("other_sql", "SELECT -5, a-1, a - 1", "SELECT ?, a?, a - ?", "5"),
    (
        "sqlite",
        'SELECT * FROM guests WHERE email = "anna@example.com"',
        "SELECT * FROM guests WHERE email = ?",
        "anna@example.com",
    ),
    (
        "sqlite",
        'SELECT * FROM "guests" WHERE "guests".name = "Anna"',
        'SELECT * FROM "guests" WHERE "guests".name = ?',
        "Anna",
    ),
    ("sqlite", 'SELECT "Anna Smith"', "SELECT ?", "Anna"),
    (
        "mysql",
        "SELECT * FROM t WHERE name = 'O\\'Brien'",
        "SELECT * FROM t WHERE name = ?",
        "Brien",
    ),
    ("mysql", 'SELECT * FROM t WHERE a = "say \\"Anna\\""', "SELECT * FROM t WHERE a = ?", "Anna"),
    ("mariadb", "SELECT 'a\\\\', 'Anna'", "SELECT ?, ?", "Anna"),
    ("mysql", "SELECT a # Anna's note\nFROM t", "SELECT a \nFROM t", "Anna"),
    (
        "mysql",
        "SELECT `first name` FROM `guests` WHERE `id` = 7",
        "SELECT `first name` FROM `guests` WHERE `id` = ?",
        None,
    ),
    ("postgresql", "SELECT a # b FROM t", "SELECT a # b FROM t", None),
    (
        "other_sql",
        "SELECT * FROM t WHERE email = 'anna@exam",
        "SELECT * FROM t WHERE email = ?",
        "anna",
    ),
    ("other_sql", "SELECT a FROM t /* Anna", "SELECT a FROM t ", "Anna"),
    ("other_sql", 'SELECT "Anna', "SELECT ?", "Anna"),
    ("mysql", "SELECT `Anna", "SELECT ?", "Anna"),
    ("other_sql", "SELECT 1 -- Anna", "SELECT ? ", "Anna"),
    ("other_sql", "SELECT ?, ?1 FROM t", "SELECT ?, ?1 FROM t", None),
    ("postgresql", "SELECT $1, $2::int FROM t", "SELECT $1, $2::int FROM t", None),
    ("other_sql", "SELECT %s, %(guest_id)s", "SELECT %s, %(guest_id)s", None),
    ("oracle", "SELECT :name, :1 FROM dual", "SELECT :name, :1 FROM dual", None),
    ("mssql", "SELECT @p1, @@ROWCOUNT", "SELECT @p1, @@ROWCOUNT", None),
    ("postgresql", "SELECT a::text FROM t", "SELECT a::text FROM t", None),
    (
        "postgresql",
        'SELECT "Column1", col2 FROM "Tab 3"',
        'SELECT "Column1", col2 FROM "Tab 3"',
        None,
    ),
    ("postgresql", 'SELECT "anna@example.com" FROM t', "SELECT ? FROM t", "anna@example.com"),
    ("postgresql", 'SELECT "4111 1111 1111"', "SELECT ?", "4111"),
    ("oracle", "SELECT q'[it's Anna]' FROM dual", "SELECT ? FROM dual", "Anna"),
    ("oracle", "SELECT nq'{Anna}'", "SELECT ?", "Anna"),
    ("other_sql", "SELECT X'4A', B'0101', N'Anna', U&'d\\0061t'", "SELECT ?, ?, ?, ?", "Anna"),
    ("postgresql", 'SELECT U&"Tab" FROM t', 'SELECT U&"Tab" FROM t', None),
    ("other_sql", "SELECT 'Anna''s' FROM t", "SELECT ? FROM t", "Anna"),
    ("postgresql", "SELECT 'a' 'Anna'", "SELECT ? ?", "Anna"),
    (
        "other_sql",
        "UPDATE guests SET rsvp = TRUE WHERE id = 7",
        "UPDATE guests SET rsvp = TRUE WHERE id = ?",
        None,
    ),
    (
        "mssql",
        "EXEC sp_guest @email = N'anna@example.com'",
        "EXEC sp_guest @email = ?",
        "anna@example.com",
    ),
    ("postgresql", "SELECT a$b$c FROM t", "SELECT a$b$c FROM t", None),
    ("snowflake", 'SELECT "Anna" FROM t', "SELECT ? FROM t", "Anna"),
    ("snowflake", "SELECT a # Anna\nFROM t", "SELECT a \nFROM t", "Anna"),
]


@pytest.mark.parametrize(("dialect", "query", "expected", "secret"), _DIALECT_CASES)
def test_dialect_rules(dialect: str, query: str, expected: str, secret: str | None) -> None:
    """Each dialect's quoting, comment, number and placeholder rule gives the exact text."""
    out = sanitize_sql(query, dialect=dialect)
    assert out == expected
    if secret is not None:
        assert secret not in out


_SUMMARY_CASES: list[tuple[str, str, str]] = [
    ("other_sql", "WITH w AS (SELECT 1) SELECT * FROM w", "SELECT SELECT w"),
    ("other_sql", "DELETE FROM guests WHERE id = 1", "DELETE guests"),
    ("other_sql", "UPDATE guests g SET a = 1", "UPDATE guests"),
    ("other_sql", "SELECT EXTRACT(YEAR FROM d) FROM t", "SELECT t"),
    ("other_sql", "CREATE UNIQUE INDEX IF NOT EXISTS idx ON t (a)", "CREATE UNIQUE INDEX idx"),
    ("other_sql", "DROP TABLE IF EXISTS a, b CASCADE", "DROP TABLE a b"),
    ("other_sql", "TRUNCATE guests", "TRUNCATE guests"),
    ("other_sql", "begin", "begin"),
    ("other_sql", "SET search_path = 'anna'", "SET"),
    ("postgresql", "EXPLAIN (ANALYZE, FORMAT JSON) SELECT * FROM t", "EXPLAIN SELECT t"),
    ("other_sql", "CALL add_guest('Anna')", "CALL add_guest"),
    ("other_sql", "VALUES('x')", ""),
    ("other_sql", "'x'", ""),
    ("other_sql", "", ""),
    ("other_sql", "hello world", ""),
    ("postgresql", 'SELECT * FROM "anna@example.com"', "SELECT"),
    ("postgresql", 'SELECT * FROM "Tab 3"', 'SELECT "Tab 3"'),
    ("mysql", "SELECT * FROM `anna@example.com`", "SELECT"),
    ("mssql", "SELECT * FROM [Order Details] od", "SELECT [Order Details]"),
    ("other_sql", "INSERT INTO t VALUES (1); SELECT * FROM u", "INSERT t SELECT u"),
    ("other_sql", "CREATE USER anna WITH PASSWORD 'x'", "CREATE USER"),
    (
        "other_sql",
        "MERGE INTO t USING s ON t.id = s.id WHEN MATCHED THEN UPDATE SET a = 1",
        "MERGE t s",
    ),
    ("sqlite", 'SELECT * FROM "guests" WHERE email = "anna@x.com"', 'SELECT "guests"'),
    ("postgresql", "COPY guests FROM STDIN", "COPY guests"),
    ("postgresql", "VACUUM FULL guests", "VACUUM guests"),
    ("other_sql", "SELECT * FROM t1 LEFT JOIN t2 ON a = b", "SELECT t1 t2"),
    ("other_sql", "SELECT * FROM a WHERE x IS DISTINCT FROM b", "SELECT a"),
    ("other_sql", "GRANT SELECT ON t TO anna", "GRANT"),
    ("other_sql", "SELECT * FROM t FOR UPDATE", "SELECT t"),
    ("sqlite", "INSERT OR REPLACE INTO t VALUES (1)", "INSERT t"),
    ("postgresql", "LOCK TABLE guests IN EXCLUSIVE MODE", "LOCK TABLE guests"),
    ("other_sql", "CREATE TABLE t AS SELECT * FROM s", "CREATE TABLE t SELECT s"),
    ("other_sql", "DELETE FROM t WHERE id IN (SELECT id FROM u)", "DELETE t SELECT u"),
    (
        "postgresql",
        "WITH gone AS (DELETE FROM g RETURNING *) SELECT * FROM gone",
        "DELETE g SELECT gone",
    ),
]


@pytest.mark.parametrize(("dialect", "query", "summary"), _SUMMARY_CASES)
def test_summary(dialect: str, query: str, summary: str) -> None:
    """Operations and table names come out in order, and nothing else."""
    assert query_summary(query, dialect=dialect) == summary


def test_summary_is_cut_between_parts() -> None:
    """A summary over the limit ends at the last whole table name that fits."""
    query = "SELECT * FROM " + ", ".join(f"table_{i:03}" for i in range(100))
    summary = query_summary(query)
    assert len(summary) <= MAX_SUMMARY_CHARS
    assert summary.startswith("SELECT table_000 table_001")
    assert summary.split()[-1].startswith("table_")
    assert len(summary.split()[-1]) == len("table_000")


def test_long_text_is_cut_and_marked() -> None:
    """Text over the limit is cut before lexing and marked, even inside a string."""
    out = sanitize_sql("SELECT '" + "x" * MAX_QUERY_CHARS + "'")
    assert out == "SELECT ? ..."


def test_redacted_literals_counts_replacements() -> None:
    """The count is the number of literals that became ``?``."""
    assert redacted_literals("SELECT 'a', 1, $1, \"Tab\" FROM t WHERE x = -2") == 3


def test_tokens_give_back_the_text() -> None:
    """Joined, the tokens are the input exactly, so sanitising only ever replaces tokens."""
    query = "SELECT $a$x$a$, E'\\'' /* c */ FROM \"t\" -- z\n"
    assert "".join(token.text for token in tokenize(query, dialect="postgresql")) == query


def test_module_imports_only_the_standard_library() -> None:
    """The module imports nothing but the standard library, so a collector can load it by path."""
    tree = ast.parse(Path(sql.__file__).read_text(encoding="utf-8"))
    roots: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            roots.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            assert node.level == 0
            roots.add((node.module or "").split(".")[0])
    assert roots <= set(sys.stdlib_module_names) | {"__future__"}


def test_module_loads_by_file_path() -> None:
    """Loaded from its file outside the package, the module sanitises the same."""
    spec = importlib.util.spec_from_file_location("standalone_sql", sql.__file__)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert module.sanitize_sql("SELECT 'anna'") == "SELECT ?"


def _standard(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _mysql(text: str) -> str:
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


def _mysql_double(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '""') + '"'


def _escape_string(text: str) -> str:
    return "E'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


def _dollar(text: str) -> str:
    assume((text + "$q$").find("$q$") == len(text))
    return "$q$" + text + "$q$"


def _sqlite_double(text: str) -> str:
    return '"' + text.replace('"', '""') + '"'


def _q_quote(text: str) -> str:
    assume((text + "]'").find("]'") == len(text))
    return "q'[" + text + "]'"


def _national(text: str) -> str:
    return "N" + _standard(text)


_QUOTINGS: list[tuple[str, Callable[[str], str]]] = [
    *((dialect, _standard) for dialect in _DIALECTS if dialect not in {"mysql", "mariadb"}),
    ("mysql", _mysql),
    ("mariadb", _mysql),
    ("mysql", _mysql_double),
    ("postgresql", _escape_string),
    ("postgresql", _dollar),
    ("other_sql", _dollar),
    ("sqlite", _sqlite_double),
    ("snowflake", _sqlite_double),
    ("oracle", _q_quote),
    ("mssql", _national),
]


@settings(max_examples=400, deadline=None)
@given(st.sampled_from(_QUOTINGS), st.text(min_size=1))
def test_no_planted_string_survives(quoting: tuple[str, Callable[[str], str]], text: str) -> None:
    """Whatever a string literal holds, in any quoting of any dialect, only ``?`` is left."""
    dialect, quote = quoting
    query = f"SELECT a FROM t WHERE b = {quote(text)} AND c = 1"
    assert sanitize_sql(query, dialect=dialect) == "SELECT a FROM t WHERE b = ? AND c = ?"
    assert query_summary(query, dialect=dialect) == "SELECT t"


_NUMBERS = st.one_of(
    st.integers().map(str),
    st.floats(allow_nan=False, allow_infinity=False).map(repr),
    st.integers(min_value=0).map(hex),
    st.integers(min_value=0).map(lambda value: f"{value:_}"),
)


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(_DIALECTS), _NUMBERS)
def test_no_planted_number_survives(dialect: str, number: str) -> None:
    """Whatever number is written, with its sign and exponent, only ``?`` is left."""
    query = f"SELECT a FROM t WHERE b = {number} AND c = 1"
    assert sanitize_sql(query, dialect=dialect) == "SELECT a FROM t WHERE b = ? AND c = ?"


@settings(max_examples=500, deadline=None)
@given(st.sampled_from(_DIALECTS), st.text())
def test_arbitrary_text_never_raises(dialect: str, text: str) -> None:
    """Any text at all sanitises, summarises and tokenises back to itself without raising."""
    assert isinstance(sanitize_sql(text, dialect=dialect), str)
    assert len(query_summary(text, dialect=dialect)) <= MAX_SUMMARY_CHARS
    assert "".join(token.text for token in tokenize(text, dialect=dialect)) == text


ADVERSARIAL: dict[str, tuple[str, Callable[[int], str]]] = {
    "digits_then_letter": ("other_sql", lambda size: "1" * size + "a"),
    "letters": ("other_sql", lambda size: "a" * size),
    "nested_comments": ("other_sql", lambda size: "/*" * (size // 2)),
    "unterminated_quotes": ("other_sql", lambda size: "x = '" * (size // 5)),
    "quote_runs": ("sqlite", lambda size: "\"'`" * (size // 3)),
    "backslash_quotes": ("mysql", lambda size: "'\\" * (size // 2)),
    "escape_strings": ("postgresql", lambda size: "E'\\" * (size // 3)),
    "dollars": ("postgresql", lambda size: "$" * size),
    "dollar_tags": ("postgresql", lambda size: "$a" * (size // 2)),
    "open_dollar_tag": ("postgresql", lambda size: "$" + "a" * size),
    "distinct_dollar_tags": (
        "postgresql",
        lambda size: "".join(f"$t{n}$" for n in range(size // 8)),
    ),
    "exponents": ("other_sql", lambda size: "1e" * (size // 2)),
    "colons": ("oracle", lambda size: ":" * size),
    "pyformat": ("other_sql", lambda size: "%(" * (size // 2)),
}
"""Inputs a careless lexer re-scans: name -> (dialect, text of about ``size`` characters).

benchmarks/bench_scrub.py times the lexer on the same inputs at 200 and 400 KB.
"""

LINEARITY_SIZE = 2_000
"""Characters in the smaller of the two inputs compared; the larger has twice as many."""


def _work_per_character(dialect: str, text: str) -> float:
    """The lexer's counted work (`helpers.WorkMeter`) on ``text``, per character of it."""
    with counting_work(sql) as meter:
        tokens = list(tokenize(CountingText(text, meter), dialect=dialect))
    assert "".join(token.text for token in tokens) == text
    return meter.total / len(text)


@pytest.mark.parametrize("name", sorted(ADVERSARIAL))
def test_lexing_is_linear(name: str) -> None:
    """Doubling an adversarial input at most doubles the lexer's work, counted, not timed.

    The work (bytecode run in sql.py, characters its searches and slices
    cross) is the same on every machine. Linear work is ``a + b * n``, whose
    cost per character cannot grow with ``n``; a quadratic part an eighth of the
    linear one at this size would already grow it by more than 10 %.
    """
    dialect, build = ADVERSARIAL[name]
    small = _work_per_character(dialect, build(LINEARITY_SIZE))
    large = _work_per_character(dialect, build(2 * LINEARITY_SIZE))
    assert large <= 1.1 * small
