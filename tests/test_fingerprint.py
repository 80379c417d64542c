"""Query fingerprints and literal-free query text."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from wedsync_otel.instrumentation.fingerprint import (
    MAX_QUERY_CHARS,
    fingerprint,
    is_read_only,
    sanitize,
)


@pytest.mark.parametrize(
    ("statement", "sanitized"),
    [
        ("SELECT * FROM guests WHERE id = 42", "SELECT * FROM guests WHERE id = ?"),
        ("SELECT * FROM t WHERE email = 'a@b.com'", "SELECT * FROM t WHERE email = ?"),
        ("SELECT * FROM t WHERE name = 'O''Brien'", "SELECT * FROM t WHERE name = ?"),
        ("SELECT * FROM t WHERE id IN (1, 2, 3)", "SELECT * FROM t WHERE id IN (?)"),
        ("SELECT * FROM t WHERE id IN (%s, %s)", "SELECT * FROM t WHERE id IN (?)"),
        ("INSERT INTO t (a, b) VALUES (1, 'x'), (2, 'y')", "INSERT INTO t (a, b) VALUES (?)"),
        ("SELECT $1, $2::int, :name", "SELECT ?, ?::int, ?"),
        ("SELECT $$body$$, $tag$x$tag$", "SELECT ?, ?"),
        ("SELECT 1.5e3, -4, 0xFF, TRUE", "SELECT ?, ?, ?, ?"),
        (
            "SELECT a /* traceparent='00-x' */ FROM t -- note\nWHERE b = 1",
            "SELECT a FROM t WHERE b = ?",
        ),
        ('SELECT "Column1", col2 FROM "Tab 3"', 'SELECT "Column1", col2 FROM "Tab 3"'),
        ("SELECT   a\n\tFROM t", "SELECT a FROM t"),
        ("SELECT * FROM t WHERE x = E'\\n'", "SELECT * FROM t WHERE x = ?"),
    ],
)
def test_sanitize_replaces_literals_and_keeps_the_shape(statement: str, sanitized: str) -> None:
    """Literals, placeholders and comments go; identifiers and keywords stay."""
    assert sanitize(statement) == sanitized


literal_text = st.text(
    alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="'\\"),
    min_size=3,
    max_size=40,
).filter(lambda text: text.strip() == text and "?" not in text)


@settings(max_examples=300, deadline=None)
@given(literal_text, st.integers(min_value=1000, max_value=10**18))
def test_no_literal_survives(text: str, number: int) -> None:
    """Whatever a string or number literal holds, none of it is left in the sanitised text."""
    statement = f"SELECT name FROM guests WHERE email = '{text}' AND card = {number}"
    out = sanitize(statement)
    assert out == "SELECT name FROM guests WHERE email = ? AND card = ?"
    assert str(number) not in out


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.integers(min_value=-(10**9), max_value=10**9), min_size=1, max_size=50),
    st.integers(0, 3),
)
def test_in_lists_of_any_length_share_a_fingerprint(values: list[int], spaces: int) -> None:
    """IN-lists collapse, spacing and case do not matter: one shape, one fingerprint."""
    listed = (", " + " " * spaces).join(str(v) for v in values)
    statement = f"select id from guests where wedding_id={values[0]} and id in ({listed})"
    assert fingerprint(statement) == fingerprint(
        "SELECT id FROM guests WHERE wedding_id = 7 AND id IN (1)"
    )


def test_different_shapes_have_different_fingerprints() -> None:
    """A different table or column is a different fingerprint."""
    assert fingerprint("SELECT * FROM guests WHERE id = 1") != fingerprint(
        "SELECT * FROM venues WHERE id = 1"
    )
    assert fingerprint("SELECT * FROM guests WHERE id = 1") != fingerprint(
        "SELECT * FROM guests WHERE rsvp = 1"
    )


def test_fingerprint_is_short_hex() -> None:
    """A fingerprint is 16 lowercase hex digits."""
    value = fingerprint("SELECT 1")
    assert len(value) == 16
    int(value, 16)


def test_huge_statements_are_cut() -> None:
    """Statements longer than the limit are cut and marked, so sanitising stays bounded."""
    out = sanitize("SELECT " + "a, " * MAX_QUERY_CHARS + "b FROM t")
    assert out.endswith(" ...")
    assert len(out) <= MAX_QUERY_CHARS + 4


def test_an_unterminated_string_is_still_removed() -> None:
    """A truncated statement ending inside a string literal leaks none of it."""
    assert (
        sanitize("SELECT * FROM t WHERE email = 'alice@exam") == "SELECT * FROM t WHERE email = ?"
    )


@pytest.mark.parametrize(
    ("statement", "read_only"),
    [
        ("SELECT * FROM guests WHERE id = 1", True),
        ("  select count(*) from guests", True),
        ("WITH w AS (SELECT 1) SELECT * FROM w", True),
        ("SELECT * FROM t WHERE note = 'delete me'", True),
        ("UPDATE guests SET rsvp = true", False),
        ("DELETE FROM guests", False),
        ("INSERT INTO guests VALUES (1)", False),
        ("WITH gone AS (DELETE FROM guests RETURNING *) SELECT * FROM gone", False),
        ("SELECT 1; DROP TABLE guests", False),
        ("SELECT * INTO backup FROM guests", False),
        ("EXPLAIN ANALYZE SELECT 1", False),
        ("CREATE TABLE x (a int)", False),
    ],
)
def test_is_read_only(statement: str, read_only: bool) -> None:
    """Only plain SELECTs count as read-only; a write keyword anywhere outside literals does not."""
    assert is_read_only(statement) is read_only
