"""SQL text read without a database: tokens, placeholders, comparisons, tables (`db._sql`)."""

from __future__ import annotations

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from wedsync_otel.db._sql import (
    PLAIN,
    Condition,
    Token,
    comparisons,
    count_placeholders,
    filter_columns,
    filter_conditions,
    index_columns,
    number_placeholders,
    quote,
    table_names,
    tokenize,
    unquote,
    where_clauses,
)

sql_text = st.text(
    alphabet=st.sampled_from(list("abcXYZ_$.,;:()=<>!?'\"`[] \n0123456789")) | st.characters(),
    max_size=80,
)
"""Text weighted towards SQL punctuation, with any character now and then."""


def texts(tokens: list[Token]) -> list[str]:
    return [token.text for token in tokens]


# --- tokenize ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "tokens"),
    [
        ("a = ?", [("name", "a"), ("op", "="), ("param", "?")]),
        ("t.col >= $12", [("name", "t.col"), ("op", ">="), ("param", "$12")]),
        ("x::int", [("name", "x"), ("cast", "::"), ("name", "int")]),
        (
            "f(a, b)",
            [
                ("name", "f"),
                ("open", "("),
                ("name", "a"),
                ("comma", ","),
                ("name", "b"),
                ("close", ")"),
            ],
        ),
        ("'it''s' <> 1", [("other", "'it''s'"), ("op", "<>"), ("other", "1")]),
        ('"My ""T""" . "c d"', [("name", '"My ""T""" . "c d"')]),
        ("`b c` != [d e]", [("name", "`b c`"), ("op", "!="), ("name", "[d e]")]),
        ("s.t.u", [("name", "s.t.u")]),
        ("a==b", [("name", "a"), ("op", "=="), ("name", "b")]),
        ("  \n\t ", []),
    ],
)
def test_tokenize_kinds_and_texts(text: str, tokens: list[tuple[str, str]]) -> None:
    """Names (quoted and dotted), parameters, casts, operators and literals are told apart."""
    assert tokenize(text) == [Token(kind, value) for kind, value in tokens]


@settings(max_examples=300, deadline=None)
@given(sql_text)
def test_tokenize_loses_nothing_but_whitespace_between_tokens(text: str) -> None:
    """Every character outside whitespace runs between tokens is in exactly one token, in order."""
    tokens = tokenize(text)
    assert all(token.text for token in tokens)
    joined = "".join(texts(tokens))
    assert re.sub(r"\s", "", joined) == re.sub(r"\s", "", text)


@settings(max_examples=200, deadline=None)
@given(sql_text)
def test_tokenize_is_deterministic(text: str) -> None:
    """The same text always gives the same tokens."""
    assert tokenize(text) == tokenize(text)


@pytest.mark.parametrize(
    ("token", "word"),
    [
        (Token("name", "select"), "SELECT"),
        (Token("name", "Where"), "WHERE"),
        (Token("name", '"select"'), ""),
        (Token("name", "t.col"), ""),
        (Token("param", "?"), ""),
        (Token("other", "abc"), ""),
    ],
)
def test_word_is_only_a_bare_name_upper_cased(token: Token, word: str) -> None:
    """Only a plain unquoted, undotted name is a word; anything else is ""."""
    assert token.word() == word


# --- quote / unquote ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("identifier", "quoted"),
    [
        ("guests", "guests"),
        ("wedding_id", "wedding_id"),
        ("_x1", "_x1"),
        ("user", '"user"'),
        ("Order", '"Order"'),
        ("1abc", '"1abc"'),
        ("Guest List", '"Guest List"'),
        ('say "hi"', '"say ""hi"""'),
        ("", '""'),
    ],
)
def test_quote_quotes_only_when_it_has_to(identifier: str, quoted: str) -> None:
    """Plain non-reserved identifiers stay bare; others are double-quoted with quotes doubled."""
    assert quote(identifier) == quoted


@pytest.mark.parametrize(
    ("identifier", "bare"),
    [
        ('"a""b"', 'a"b'),
        ('"Guest List"', "Guest List"),
        ("`b c`", "b c"),
        ("[d e]", "d e"),
        ("plain", "plain"),
        ("", ""),
    ],
)
def test_unquote_removes_each_quoting_style(identifier: str, bare: str) -> None:
    """Double quotes (with doubled quotes undone), backticks and brackets are removed."""
    assert unquote(identifier) == bare


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=30))
def test_unquote_undoes_quote(identifier: str) -> None:
    """Quoting then unquoting any identifier gives it back."""
    assert unquote(quote(identifier)) == identifier


@settings(max_examples=300, deadline=None)
@given(st.text(min_size=1, max_size=30))
def test_a_quoted_identifier_is_one_name_token(identifier: str) -> None:
    """Whatever the identifier holds, its quoted form reads back as one name."""
    quoted = quote(identifier)
    assert tokenize(quoted) == [Token("name", quoted)]


@settings(max_examples=200, deadline=None)
@given(st.from_regex(PLAIN, fullmatch=True))
def test_plain_identifiers_need_at_most_reserved_word_quoting(identifier: str) -> None:
    """A plain identifier is left bare unless it is a reserved word."""
    assert quote(identifier) in {identifier, f'"{identifier}"'}


# --- placeholders ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("statement", "numbered", "count"),
    [
        ("SELECT * FROM t WHERE a = ? AND b = ?", "SELECT * FROM t WHERE a = $1 AND b = $2", 2),
        ('SELECT "a?", `b?`, [c?], ? FROM t', 'SELECT "a?", `b?`, [c?], $1 FROM t', 1),
        ('SELECT "x""?" FROM t WHERE y = ?', 'SELECT "x""?" FROM t WHERE y = $1', 1),
        ("SELECT 1", "SELECT 1", 0),
        ("", "", 0),
        ("??", "$1$2", 2),
    ],
)
def test_number_placeholders_numbers_question_marks_outside_quoted_names(
    statement: str, numbered: str, count: int
) -> None:
    """Each bare ``?`` becomes ``$1..$n`` in order; those inside quoted identifiers stay."""
    assert number_placeholders(statement) == (numbered, count)


@pytest.mark.parametrize(
    ("statement", "count"),
    [
        ("SELECT ? , ?", 2),
        ('SELECT "?" FROM t', 0),
        ("SELECT [?], `?`, ?", 1),
        ("SELECT $1", 0),
    ],
)
def test_count_placeholders_counts_bare_question_marks(statement: str, count: int) -> None:
    """Only ``?`` outside quoted identifiers counts; ``$n`` does not."""
    assert count_placeholders(statement) == count


@settings(max_examples=300, deadline=None)
@given(sql_text)
def test_numbering_agrees_with_counting_and_leaves_no_bare_marks(statement: str) -> None:
    """Numbering reports as many placeholders as counting finds, and leaves none to count."""
    numbered, count = number_placeholders(statement)
    assert count == count_placeholders(statement)
    assert count_placeholders(numbered) == 0
    assert all(f"${n}" in numbered for n in range(1, count + 1))


# --- comparisons and index columns -------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "columns"),
    [
        ("a = ?", ("a",)),
        ("t.a = $1", ("a",)),
        ("? = a", ("a",)),
        ("a == ?", ("a",)),
        ("a IN (?, ?)", ("a",)),
        ("a = ANY ($1)", ("a",)),
        ("a IS ?", ("a",)),
        ("a BETWEEN ? AND ?", ("a",)),
        ("((a = ?))", ("a",)),
        ("(a)::text = $1", ("a",)),
        ("a::timestamp with time zone >= $1", ("a",)),
        ("a::character varying(20) = $1", ("a",)),
        ("a::int[] = $1", ("a",)),
        ('"Wedding ""Id""" = ?', ('"Wedding ""Id"""',)),
        ("`b` = ? AND [c d] = ?", ("`b`", "[c d]")),
    ],
)
def test_filter_columns_recognises_parameter_comparisons(
    text: str, columns: tuple[str, ...]
) -> None:
    """Equality, IN, ANY, IS, BETWEEN and ranges against a parameter name the column as written."""
    assert filter_columns(text) == columns


@pytest.mark.parametrize(
    "text",
    [
        "a = b",
        "a <> ?",
        "a != ?",
        "a LIKE ?",
        "a IS NULL",
        "NULL = ?",
        "a = ? OR b = ?",
        "a IN (SELECT b FROM t)",
        "a IN ()",
        "f(a) = ?",
        "a + 1 = ?",
        "",
    ],
)
def test_unrecognised_shapes_yield_no_column(text: str) -> None:
    """Joins, inequality, LIKE, NULL tests, top-level OR and expressions name no column."""
    assert filter_columns(text) == ()


@pytest.mark.parametrize(
    ("text", "columns"),
    [
        ("a = ? AND b > ? AND c = ?", ("a", "c", "b")),
        ("a > ? AND b < ? AND c = ?", ("c", "a")),
        ("a BETWEEN ? AND ? AND b = ?", ("b", "a")),
        ("a = ? AND A = ? AND a > ?", ("a",)),
        ("a = ? AND (b = ? OR c = ?)", ("a",)),
        ("x.a = $1 AND y.b = $2", ("a", "b")),
    ],
)
def test_index_order_is_equalities_then_the_first_range(
    text: str, columns: tuple[str, ...]
) -> None:
    """Equality columns come first in order, then one range column; repeats count once."""
    assert filter_columns(text) == columns


def test_conditions_carry_qualifier_unquoted_key_and_operator() -> None:
    """A condition keeps the alias, the column as written, its bare key, the op and equality."""
    assert filter_conditions('g."Wedding Id" = $1 AND g.seats >= $2') == [
        Condition("g", '"Wedding Id"', "Wedding Id", "=", True),
        Condition("g", "seats", "seats", ">=", False),
    ]


def test_comparisons_keeps_every_condition_before_index_choice() -> None:
    """`comparisons` returns all recognised terms; `index_columns` then chooses among them."""
    found = comparisons(tokenize("a > ? AND b < ? AND c = ? AND c = ?"))
    assert [(c.column, c.op) for c in found] == [("a", ">"), ("b", "<"), ("c", "="), ("c", "=")]
    assert [c.column for c in index_columns(found)] == ["c", "a"]


def test_index_columns_of_nothing_is_nothing() -> None:
    """No conditions, no index columns."""
    assert index_columns([]) == []


@settings(max_examples=300, deadline=None)
@given(sql_text)
def test_filter_reading_never_raises_and_is_well_formed(text: str) -> None:
    """Any text gives columns with at most one range, equalities first, no key twice."""
    found = filter_conditions(text)
    assert tuple(c.column for c in found) == filter_columns(text)
    ranges = [c for c in found if not c.equality]
    assert len(ranges) <= 1
    assert found == [c for c in found if c.equality] + ranges
    keys = [c.key.lower() for c in found]
    assert len(keys) == len(set(keys))


# --- where_clauses and table_names -------------------------------------------------------


def test_where_clauses_yields_outer_and_nested_clauses_each_cut_at_its_scope() -> None:
    """The outer WHERE stops at ORDER BY; a subquery's WHERE stops at its closing parenthesis."""
    tokens = tokenize(
        "SELECT * FROM g WHERE g.id = ? AND g.w IN (SELECT id FROM w WHERE k = ?) ORDER BY 1"
    )
    assert [texts(clause) for clause in where_clauses(tokens)] == [
        ["g.id", "=", "?", "AND", "g.w", "IN", "(", "SELECT", "id", "FROM", "w", "WHERE", "k",
         "=", "?", ")"],
        ["k", "=", "?"],
    ]  # fmt: skip


@pytest.mark.parametrize(
    ("statement", "clause"),
    [
        ("SELECT * FROM t WHERE a = ? GROUP BY a", ["a", "=", "?"]),
        ("SELECT * FROM t WHERE a = ? LIMIT ?", ["a", "=", "?"]),
        ("SELECT * FROM t WHERE a = ?; SELECT 1", ["a", "=", "?"]),
        ("UPDATE t SET x = ? WHERE a = ? RETURNING *", ["a", "=", "?"]),
        ("SELECT * FROM t WHERE a = ? FOR UPDATE", ["a", "=", "?"]),
        ("SELECT * FROM t WHERE", []),
    ],
)
def test_a_where_clause_ends_at_the_next_clause(statement: str, clause: list[str]) -> None:
    """GROUP, LIMIT, RETURNING, FOR and ``;`` end a WHERE clause."""
    assert [texts(found) for found in where_clauses(tokenize(statement))] == [clause]


def test_no_where_no_clauses() -> None:
    """A statement without WHERE has no clauses, a quoted "where" included."""
    assert list(where_clauses(tokenize('SELECT "where" FROM t'))) == []


@pytest.mark.parametrize(
    ("statement", "names"),
    [
        ("SELECT * FROM guests", {"guests": "guests"}),
        ("SELECT * FROM guests g", {"guests": "guests", "g": "guests"}),
        (
            "SELECT * FROM guests AS g JOIN weddings w ON g.w = w.id",
            {"guests": "guests", "g": "guests", "weddings": "weddings", "w": "weddings"},
        ),
        ("SELECT * FROM a, b c, d", {"a": "a", "b": "b", "c": "b", "d": "d"}),
        ('SELECT * FROM public."Guests" WHERE x = ?', {"guests": "Guests"}),
        ("SELECT * FROM Guests WHERE x = ?", {"guests": "Guests"}),
        ("SELECT * FROM t LEFT JOIN u USING (id)", {"t": "t", "u": "u"}),
        ("SELECT * FROM t ORDER BY 1", {"t": "t"}),
        ("SELECT 1", {}),
    ],
)
def test_table_names_maps_tables_and_aliases_to_tables(
    statement: str, names: dict[str, str]
) -> None:
    """Each table after FROM or JOIN, and its alias, is keyed lower-case to the table's name."""
    assert dict(table_names(tokenize(statement))) == names


def test_table_names_keeps_first_seen_order() -> None:
    """Tables come out in the order the statement names them."""
    names = table_names(tokenize("SELECT * FROM b JOIN a ON a.x = b.x JOIN c ON c.y = a.y"))
    assert list(names) == ["b", "a", "c"]


@settings(max_examples=300, deadline=None)
@given(sql_text)
def test_clause_and_table_reading_never_raises(text: str) -> None:
    """Any text gives WHERE clauses drawn from its tokens and a table map of strings."""
    tokens = tokenize(text)
    for clause in where_clauses(tokens):
        assert all(token in tokens for token in clause)
    names = table_names(tokens)
    assert all(key == key.lower() for key in names)
    assert all(isinstance(value, str) for value in names.values())
