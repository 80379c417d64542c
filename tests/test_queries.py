"""Database and cache spans as the roll-up reads them (`wedsync_otel.instrumentation.queries`)."""

from __future__ import annotations

import inspect
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from wedsync_otel import attributes as attr
from wedsync_otel.instrumentation.fingerprint import fingerprint, sanitize, shape_fingerprint
from wedsync_otel.instrumentation.queries import (
    CONTROL_WORDS,
    CURSOR_PREFIX,
    Query,
    ShapeCache,
    cache_counts,
    query,
    statement_cache_evictions,
    statement_kind,
)
from wedsync_otel.rollup import WorkKind

SELECT = "SELECT name FROM guests WHERE id = 42"

garbage = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(allow_nan=True),
    st.binary(max_size=20),
    st.lists(st.text(max_size=5), max_size=3),
    st.dictionaries(st.text(max_size=3), st.integers(), max_size=2),
)
"""Attribute values of any type but ``str``."""

any_value = st.one_of(garbage, st.text(max_size=60))


def run(
    attrs: dict[str, Any], *, duration_ms: float = 1.0, slow_ms: float = 100.0, name: str = ""
) -> Query:
    """`query` with a private shape cache, so no test depends on another's statements."""
    return query(attrs, duration_ms=duration_ms, slow_ms=slow_ms, name=name, shapes=ShapeCache())


# --- statement_kind ----------------------------------------------------------------------


@pytest.mark.parametrize("word", sorted(CONTROL_WORDS))
def test_every_control_word_is_control_in_any_case(word: str) -> None:
    """Each transaction-control word starts a control statement whatever its case."""
    for text in (word, word.lower(), word.title(), f"{word};", f"  {word.lower()} work\n"):
        assert statement_kind(text) is WorkKind.CONTROL, text


@pytest.mark.parametrize(
    "statement",
    [
        "SELECT ? FROM begin_log",
        "INSERT INTO commits VALUES (?)",
        "BEGINNING",
        "ENDPOINT",
        "release_notes",
        "BEGIN;COMMIT",
        "WITH x AS (SELECT ?) SELECT * FROM x",
        "(SELECT ?)",
        ";",
    ],
)
def test_a_control_word_only_counts_as_the_whole_first_word(statement: str) -> None:
    """A control word inside, or glued to more of, the first word does not make control."""
    assert statement_kind(statement) is WorkKind.QUERY


@pytest.mark.parametrize("statement", ["", " ", "\n\t  "])
def test_no_statement_at_all_is_a_connect(statement: str) -> None:
    """An empty or blank statement is control: the connect round trip."""
    assert statement_kind(statement) is WorkKind.CONTROL


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=80))
def test_statement_kind_never_raises_and_is_query_or_control(statement: str) -> None:
    """Any text at all is a query or control, never a fetch or an exception."""
    assert statement_kind(statement) in {WorkKind.QUERY, WorkKind.CONTROL}


@settings(max_examples=200, deadline=None)
@given(st.sampled_from(sorted(CONTROL_WORDS)), st.text(max_size=40))
def test_a_control_word_then_anything_is_control(word: str, rest: str) -> None:
    """Whatever follows a control word and a space, the statement is control."""
    assert statement_kind(f"{word} {rest}") is WorkKind.CONTROL


# --- cache_counts ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("attrs", "counts"),
    [
        ({attr.CACHE_HIT: True}, (1, 0)),
        ({attr.CACHE_HIT: False}, (0, 1)),
        ({attr.CACHE_HITS: 3, attr.CACHE_MISSES: 2}, (3, 2)),
        ({attr.CACHE_HITS: 4}, (4, 0)),
        ({attr.CACHE_MISSES: 5}, (0, 5)),
        ({attr.CACHE_HIT: True, attr.CACHE_HITS: 7, attr.CACHE_MISSES: 9}, (1, 0)),
        ({attr.CACHE_HIT: False, attr.CACHE_HITS: 7, attr.CACHE_MISSES: 9}, (0, 1)),
        ({}, (0, 0)),
    ],
)
def test_cache_counts_reads_single_and_multi_key_spans(
    attrs: dict[str, Any], counts: tuple[int, int]
) -> None:
    """A boolean hit counts one key and wins over counts; otherwise the counts are taken."""
    assert cache_counts(attrs) == counts


@pytest.mark.parametrize(
    ("attrs", "counts"),
    [
        ({attr.CACHE_HIT: 1}, (0, 0)),
        ({attr.CACHE_HIT: "true"}, (0, 0)),
        ({attr.CACHE_HIT: None, attr.CACHE_HITS: 2}, (2, 0)),
        ({attr.CACHE_HITS: -3, attr.CACHE_MISSES: 0}, (0, 0)),
        ({attr.CACHE_HITS: "3", attr.CACHE_MISSES: b"2"}, (0, 0)),
        ({attr.CACHE_HITS: 2.5, attr.CACHE_MISSES: [1]}, (0, 0)),
        ({attr.CACHE_HITS: None, attr.CACHE_MISSES: 6}, (0, 6)),
    ],
)
def test_cache_counts_ignores_garbage_values(
    attrs: dict[str, Any], counts: tuple[int, int]
) -> None:
    """A hit that is not a bool, or a count that is not a positive int, counts nothing."""
    assert cache_counts(attrs) == counts


@settings(max_examples=300, deadline=None)
@given(
    st.dictionaries(
        st.sampled_from([attr.CACHE_HIT, attr.CACHE_HITS, attr.CACHE_MISSES, "x"]), any_value
    )
)
def test_cache_counts_never_raises_and_never_goes_negative(attrs: dict[str, Any]) -> None:
    """Whatever the attributes hold, the counts are two non-negative ints."""
    hits, misses = cache_counts(attrs)
    assert isinstance(hits, int)
    assert isinstance(misses, int)
    assert hits >= 0
    assert misses >= 0


# --- query -------------------------------------------------------------------------------


def test_query_returns_a_four_tuple_of_fingerprint_statement_attributes_kind() -> None:
    """The result unpacks as (fingerprint, sanitised statement, extra attributes, kind)."""
    result = run({"db.query.text": SELECT})
    shape, statement, extra, kind = result
    assert isinstance(result, Query)
    assert len(result) == 4
    assert (result.fingerprint, result.statement, result.attributes, result.kind) == (
        shape,
        statement,
        extra,
        kind,
    )
    assert statement == "SELECT name FROM guests WHERE id = ?"
    assert shape == fingerprint(SELECT)
    assert kind is WorkKind.QUERY
    assert extra == {attr.DB_QUERY_SLOW: False, attr.DB_FINGERPRINT: shape}


@pytest.mark.parametrize("key", ["db.query.text", "db.statement"])
def test_either_convention_gives_the_same_query(key: str) -> None:
    """The stable ``db.query.text`` and the old ``db.statement`` read alike."""
    assert run({key: SELECT}) == run({"db.query.text": SELECT})


def test_db_query_text_wins_over_db_statement() -> None:
    """When a span carries both names, the stable one is read."""
    result = run({"db.query.text": SELECT, "db.statement": "DELETE FROM guests"})
    assert result.statement == "SELECT name FROM guests WHERE id = ?"


@pytest.mark.parametrize("bad", [None, 42, b"SELECT 1", ["SELECT 1"], 1.5, True])
def test_a_non_string_query_text_falls_back_to_db_statement(bad: object) -> None:
    """A ``db.query.text`` that is not a string is skipped for ``db.statement``."""
    assert run({"db.query.text": bad, "db.statement": SELECT}).statement == sanitize(SELECT)


@settings(max_examples=200, deadline=None)
@given(garbage, garbage)
def test_no_string_statement_is_a_connect_without_fingerprint(text: object, old: object) -> None:
    """With no string under either name the span is control, unfingerprinted."""
    result = run({"db.query.text": text, "db.statement": old})
    assert result.fingerprint == ""
    assert result.statement == ""
    assert result.kind is WorkKind.CONTROL
    assert attr.DB_FINGERPRINT not in result.attributes


def test_an_empty_statement_is_a_connect_without_fingerprint() -> None:
    """An empty statement string is control and carries no fingerprint attribute."""
    result = run({"db.statement": ""})
    assert (result.fingerprint, result.statement, result.kind) == ("", "", WorkKind.CONTROL)
    assert result.attributes == {attr.DB_QUERY_SLOW: False}


@pytest.mark.parametrize("statement", ["   ", "/* ping */", "-- keepalive"])
def test_a_statement_with_nothing_left_after_sanitising_has_no_fingerprint(
    statement: str,
) -> None:
    """A statement that sanitises to nothing is fingerprinted like no statement at all."""
    result = run({"db.statement": statement})
    assert result.kind is WorkKind.CONTROL
    assert result.fingerprint == ""


@pytest.mark.parametrize(
    ("raw", "kind"),
    [
        ("BEGIN", WorkKind.CONTROL),
        ("commit;", WorkKind.CONTROL),
        ("/* app=web */ ROLLBACK", WorkKind.CONTROL),
        ("-- note\nSAVEPOINT sa_1", WorkKind.CONTROL),
        ("RELEASE SAVEPOINT sa_1", WorkKind.CONTROL),
        ("START TRANSACTION ISOLATION LEVEL SERIALIZABLE", WorkKind.CONTROL),
        ("END", WorkKind.CONTROL),
        ("ABORT", WorkKind.CONTROL),
        ("UPDATE guests SET rsvp = TRUE WHERE id = 3", WorkKind.QUERY),
    ],
)
def test_query_kind_is_judged_on_the_sanitised_text(raw: str, kind: WorkKind) -> None:
    """Comments are gone before the first word is read, so a commented BEGIN is control."""
    result = run({"db.statement": raw})
    assert result.kind is kind
    assert result.fingerprint == fingerprint(raw)


@pytest.mark.parametrize(
    ("name", "raw", "kind"),
    [
        (f"{CURSOR_PREFIX}SELECT * FROM guests", SELECT, WorkKind.FETCH),
        (CURSOR_PREFIX, SELECT, WorkKind.FETCH),
        (f"{CURSOR_PREFIX}BEGIN", "BEGIN", WorkKind.CONTROL),
        (f"{CURSOR_PREFIX}connect", "", WorkKind.CONTROL),
        ("cursor: SELECT * FROM guests", SELECT, WorkKind.QUERY),
        ("CURSOR:SELECT * FROM guests", SELECT, WorkKind.QUERY),
        (f" {CURSOR_PREFIX}SELECT", SELECT, WorkKind.QUERY),
        ("SELECT guests", SELECT, WorkKind.QUERY),
        ("", SELECT, WorkKind.QUERY),
    ],
)
def test_only_a_cursor_named_query_is_a_fetch(name: str, raw: str, kind: WorkKind) -> None:
    """A query span named with the exact ``CURSOR: `` prefix is a fetch; control stays control."""
    assert run({"db.statement": raw}, name=name).kind is kind


def test_a_cursor_fetch_keeps_the_query_fingerprint() -> None:
    """A fetch is fingerprinted like the query it reads from."""
    fetch = run({"db.statement": SELECT}, name=f"{CURSOR_PREFIX}SELECT")
    plain = run({"db.statement": SELECT})
    assert fetch.fingerprint == plain.fingerprint != ""
    assert fetch.statement == plain.statement


@pytest.mark.parametrize(
    ("duration_ms", "slow_ms", "slow"),
    [
        (100.001, 100.0, True),
        (100.0, 100.0, False),
        (99.9, 100.0, False),
        (0.0, 0.0, False),
        (0.1, 0.0, True),
        (float("inf"), 100.0, True),
        (float("nan"), 100.0, False),
    ],
)
def test_slow_means_strictly_longer_than_the_threshold(
    duration_ms: float, slow_ms: float, slow: bool
) -> None:
    """The slow flag is set only when the duration exceeds the threshold."""
    result = run({"db.statement": SELECT}, duration_ms=duration_ms, slow_ms=slow_ms)
    assert result.attributes[attr.DB_QUERY_SLOW] is slow


def test_a_control_statement_can_be_slow_too() -> None:
    """The slow flag is set on control spans as well as on queries."""
    result = run({"db.statement": "COMMIT"}, duration_ms=500.0, slow_ms=100.0)
    assert result.kind is WorkKind.CONTROL
    assert result.attributes[attr.DB_QUERY_SLOW] is True


def test_each_call_gets_its_own_attributes_dict() -> None:
    """Changing one result's attributes does not change the next result's."""
    shapes = ShapeCache()
    first = query({"db.statement": SELECT}, duration_ms=1.0, slow_ms=2.0, shapes=shapes)
    first.attributes["extra"] = 1
    second = query({"db.statement": SELECT}, duration_ms=1.0, slow_ms=2.0, shapes=shapes)
    assert "extra" not in second.attributes


def test_the_raw_text_is_never_in_the_result() -> None:
    """Literals of the raw statement appear nowhere in what `query` returns."""
    result = run({"db.statement": "SELECT * FROM guests WHERE email = 'alice@example.com'"})
    assert "alice" not in repr(result)


@settings(max_examples=300, deadline=None)
@given(
    st.dictionaries(st.sampled_from(["db.query.text", "db.statement", "db.system"]), any_value),
    st.floats(allow_nan=True),
    st.floats(allow_nan=True),
    st.text(max_size=20),
)
def test_query_never_raises_and_is_deterministic(
    attrs: dict[str, Any], duration_ms: float, slow_ms: float, name: str
) -> None:
    """Any attributes give a well-formed result, the same from a fresh cache as a warm one."""
    shapes = ShapeCache()
    first = query(attrs, duration_ms=duration_ms, slow_ms=slow_ms, name=name, shapes=shapes)
    again = query(attrs, duration_ms=duration_ms, slow_ms=slow_ms, name=name, shapes=shapes)
    fresh = query(attrs, duration_ms=duration_ms, slow_ms=slow_ms, name=name, shapes=ShapeCache())
    assert first == again == fresh
    assert isinstance(first.attributes[attr.DB_QUERY_SLOW], bool)
    assert first.attributes.get(attr.DB_FINGERPRINT, "") == first.fingerprint
    assert first.kind in {WorkKind.QUERY, WorkKind.CONTROL, WorkKind.FETCH}


# --- the shape cache ---------------------------------------------------------------------


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=80))
def test_the_shape_cache_returns_what_sanitising_would(raw: str) -> None:
    """A cached shape equals the sanitised text, its fingerprint and its kind, hit or miss."""
    shapes = ShapeCache(max_entries=2)
    statement = sanitize(raw)
    expected = (
        statement,
        shape_fingerprint(statement) if statement else "",
        statement_kind(statement),
    )
    assert shapes.shape(raw) == expected
    assert shapes.shape(raw) == expected


def test_the_shape_cache_evicts_beyond_its_bound_and_counts_it() -> None:
    """Each distinct statement past the bound evicts one, and the count says so."""
    shapes = ShapeCache(max_entries=2)
    shapes.shape("SELECT 1")
    shapes.shape("SELECT 2")
    assert shapes.evictions == 0
    shapes.shape("SELECT 3")
    shapes.shape("SELECT 4")
    assert shapes.evictions == 2


def test_repeating_a_cached_statement_evicts_nothing() -> None:
    """Shaping statements already held does not evict, however often."""
    shapes = ShapeCache(max_entries=2)
    for _ in range(5):
        shapes.shape("SELECT 1")
        shapes.shape("SELECT 2")
    assert shapes.evictions == 0


def test_the_oldest_statement_is_evicted_first() -> None:
    """After an eviction the oldest statement is the one that must be shaped again."""
    shapes = ShapeCache(max_entries=2)
    shapes.shape("SELECT 1")
    shapes.shape("SELECT 2")
    shapes.shape("SELECT 3")  # evicts SELECT 1
    shapes.shape("SELECT 3")
    shapes.shape("SELECT 2")
    assert shapes.evictions == 1
    shapes.shape("SELECT 1")  # a miss again: evicts SELECT 2
    assert shapes.evictions == 2


def test_the_process_wide_cache_counts_its_evictions() -> None:
    """More distinct statements than the default cache holds raise the process-wide count."""
    before = statement_cache_evictions()
    held = inspect.signature(ShapeCache).parameters["max_entries"].default
    for index in range(held + 1):
        query({"db.statement": f"SELECT c{index} FROM t"}, duration_ms=0.0, slow_ms=1.0)
    assert statement_cache_evictions() > before
