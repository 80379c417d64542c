"""The privacy leak corpus: secrets planted where telemetry carries them, and how to find them.

Each case names the secrets that must never reach an exporter and says how
to produce the telemetry: a statement run on real PostgreSQL or SQLite
(`SqlCase`), a command run on real Redis (`RedisCase`), or a span built by
hand the way some instrumentation would build it (`SpanCase`). The last
part holds what the tests share to look for the secrets: `needles` (the
forms a secret may take once exported) and `exported_texts` (every field
of an exported span, as text).
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Literal
from urllib.parse import unquote

from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.trace import (
    Link,
    NonRecordingSpan,
    SpanContext,
    SpanKind,
    Status,
    StatusCode,
    TraceFlags,
    Tracer,
)
from opentelemetry.util.types import AttributeValue


class LeakClass(StrEnum):
    """Where a secret comes from."""

    POSTGRES_ERROR = "postgres_error"
    SQLITE_ERROR = "sqlite_error"
    REDIS_ERROR = "redis_error"
    SQL_FORM = "sql_form"
    N_PLUS_ONE = "n_plus_one"
    SPAN_NAME = "span_name"
    REDIS = "redis"
    HTTP = "http"
    VALUE = "value"


Backend = Literal["postgresql", "sqlite"]
Parent = Literal["root", "request", "remote"]
"""A span's place in its trace: a local root, a child of a SERVER span, or under a remote parent."""


@dataclass(frozen=True, kw_only=True, slots=True)
class SqlCase:
    """A statement run through the instrumented driver under one request span."""

    id: str
    leak_class: LeakClass
    secrets: tuple[str, ...]
    backend: Backend
    statement: str
    params: tuple[object, ...] | None = None
    error: str | None = None
    """The class name of the exception the server must raise; None: the statement must succeed."""
    repeat: int = 1
    identifiers: tuple[str, ...] = ()
    """Secrets that stand where the grammar has an identifier (``x."..."``, ``[...]``, a bare
    word), which query sanitising keeps by design: only the error text is checked for them."""


@dataclass(frozen=True, kw_only=True, slots=True)
class RedisCase:
    """``execute_command(*command)`` through instrumented redis-py under one request span."""

    id: str
    leak_class: LeakClass
    secrets: tuple[str, ...]
    command: tuple[str, ...]
    setup: tuple[tuple[str, ...], ...] = ()
    """Commands run first with instrumentation suppressed."""
    keys: tuple[str, ...] = ()
    """Keys the case may create, deleted afterwards."""
    error: str | None = None


@dataclass(frozen=True, kw_only=True, slots=True)
class SpanCase:
    """A span built by hand, as an instrumentation or the application would build it."""

    id: str
    leak_class: LeakClass
    secrets: tuple[str, ...]
    name: str = "work"
    kind: SpanKind = SpanKind.INTERNAL
    parent: Parent = "request"
    attributes: Mapping[str, AttributeValue] = field(default_factory=dict)
    events: tuple[tuple[str, Mapping[str, AttributeValue]], ...] = ()
    status: str | None = None
    """An ERROR status description set with ``set_status``."""
    exception: str | None = None
    """The message of a `PlantedError` raised inside the span (an exception event and a status)."""
    links: tuple[Mapping[str, AttributeValue], ...] = ()


Case = SqlCase | RedisCase | SpanCase

# --- the people and their secrets -------------------------------------------------------------

ANNA = "anna.keller@example.com"  # seeded in both databases' guests table
BEA = "bea.sommer@example.org"  # seeded too
CARL = "carl.nagel@example.net"
DORA = "dora.lind+rsvp@example.co.uk"
EMIL = "emil.brandt@example.com"
PHONE_UK = "+44 7700 900123"
PHONE_US = "(415) 555-2671"
CARD = "4111 1111 1111 1111"
PASSWORD = "Sup3rS3cret!"
JWT = (
    "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIiwibmFtZSI6IkFubmEgS2VsbGVyIn0"
    ".SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c"
)

# --- real PostgreSQL --------------------------------------------------------------------------

POSTGRES_SCHEMA = (
    "CREATE TABLE weddings (id int PRIMARY KEY)",
    "CREATE TABLE guests (id serial PRIMARY KEY, wedding_id int REFERENCES weddings(id),"
    " email text UNIQUE, name text NOT NULL, phone varchar(16), age int CHECK (age > 0),"
    " data jsonb, tags text[], UNIQUE (wedding_id, phone))",
    "CREATE TABLE rsvps (id serial PRIMARY KEY, email text REFERENCES guests(email))",
    "CREATE TYPE rsvp_status AS ENUM ('yes', 'no', 'maybe')",
    "INSERT INTO weddings VALUES (1)",
    f"INSERT INTO guests (wedding_id, email, name, phone, age, data) VALUES"
    f" (1, '{ANNA}', 'Anna Keller', '+447700900123', 30, '{{\"email\": \"{ANNA}\"}}'),"
    f" (1, '{BEA}', 'Bea Sommer', NULL, 41, NULL)",
)
"""Created once per module in a schema of its own; every case runs in a transaction rolled back."""

SQLITE_SCHEMA = (
    "PRAGMA foreign_keys = ON",
    "CREATE TABLE weddings (id INTEGER PRIMARY KEY)",
    "CREATE TABLE guests (id INTEGER PRIMARY KEY, wedding_id INT REFERENCES weddings(id),"
    " email TEXT UNIQUE, name TEXT NOT NULL, phone TEXT, age INT CHECK (age > 0))",
    "INSERT INTO weddings VALUES (1)",
    f"INSERT INTO guests (wedding_id, email, name, phone, age) VALUES"
    f" (1, '{ANNA}', 'Anna Keller', '+447700900123', 30), (1, '{BEA}', 'Bea Sommer', NULL, 41)",
)

_INSERT = "INSERT INTO guests (wedding_id, email, name, phone, age) VALUES"


def _pg(
    id: str,
    statement: str,
    secrets: tuple[str, ...],
    error: str | None = None,
    *,
    params: tuple[object, ...] | None = None,
    leak_class: LeakClass = LeakClass.POSTGRES_ERROR,
) -> SqlCase:
    return SqlCase(
        id=f"pg-{id}",
        leak_class=leak_class,
        secrets=secrets,
        backend="postgresql",
        statement=statement,
        params=params,
        error=error,
    )


def _lite(
    id: str,
    statement: str,
    secrets: tuple[str, ...],
    error: str | None = None,
    *,
    params: tuple[object, ...] | None = None,
    leak_class: LeakClass = LeakClass.SQLITE_ERROR,
    identifiers: tuple[str, ...] = (),
) -> SqlCase:
    return SqlCase(
        id=f"sqlite-{id}",
        leak_class=leak_class,
        secrets=secrets,
        backend="sqlite",
        statement=statement,
        params=params,
        error=error,
        identifiers=identifiers,
    )


POSTGRES_ERRORS = (
    _pg(
        "unique-email",
        f"{_INSERT} (1, '{ANNA}', 'Anna Twin', NULL, 31)",
        (ANNA, "Anna Twin"),
        "UniqueViolation",
    ),
    _pg(
        "unique-email-params",
        f"{_INSERT} (%s, %s, %s, %s, %s)",
        (BEA,),
        "UniqueViolation",
        params=(1, BEA, "Bea Again", None, 40),
    ),
    _pg(
        "unique-composite-phone-params",
        f"{_INSERT} (%s, %s, %s, %s, %s)",
        ("+447700900123", "447700900123"),
        "UniqueViolation",
        params=(1, CARL, "Carl Nagel", "+447700900123", 52),
    ),
    _pg(
        "unique-on-conflict-other-column",
        f"{_INSERT} (1, '{ANNA}', 'Anna Dup', NULL, 5) ON CONFLICT (id) DO NOTHING",
        (ANNA, "Anna Dup"),
        "UniqueViolation",
    ),
    _pg(
        "check-failing-row",
        f"{_INSERT} (1, '{CARL}', 'Carl Nagel', '+447700900999', -5)",
        (CARL, "Carl Nagel", "+447700900999"),
        "CheckViolation",
    ),
    _pg(
        "check-failing-row-params",
        f"{_INSERT} (%s, %s, %s, %s, %s)",
        (DORA, "Dora Lind"),
        "CheckViolation",
        params=(1, DORA, "Dora Lind", None, 0),
    ),
    _pg(
        "not-null-failing-row",
        f"{_INSERT} (1, '{EMIL}', NULL, '{PHONE_UK}', 5)",
        (EMIL, PHONE_UK),
        "NotNullViolation",
    ),
    _pg(
        "not-null-failing-row-params",
        f"{_INSERT} (%s, %s, %s, %s, %s)",
        (CARL,),
        "NotNullViolation",
        params=(1, CARL, None, None, 9),
    ),
    _pg(
        "invalid-integer",
        "SELECT * FROM guests WHERE id = 'Anna Keller'",
        ("Anna Keller",),
        "InvalidTextRepresentation",
    ),
    _pg(
        "invalid-integer-params",
        "SELECT * FROM guests WHERE id = %s",
        ("Frieda Hahn",),
        "InvalidTextRepresentation",
        params=("Frieda Hahn",),
    ),
    _pg(
        "invalid-integer-update",
        "UPDATE guests SET age = 'Gustav Roth' WHERE id = 1",
        ("Gustav Roth",),
        "InvalidTextRepresentation",
    ),
    _pg(
        "invalid-integer-email",
        f"SELECT '{CARL}'::int",
        (CARL,),
        "InvalidTextRepresentation",
    ),
    _pg(
        "invalid-numeric-card",
        f"SELECT '{CARD}'::numeric",
        (CARD,),
        "InvalidTextRepresentation",
    ),
    _pg(
        "invalid-uuid",
        f"SELECT * FROM guests WHERE data->>'id' = '{DORA}'::uuid::text",
        (DORA,),
        "InvalidTextRepresentation",
    ),
    _pg("invalid-date", "SELECT 'Helga Voss'::date", ("Helga Voss",), "InvalidDatetimeFormat"),
    _pg(
        "invalid-timestamp",
        "SELECT '2026-13-45 Ingo Maier'::timestamp",
        ("Ingo Maier",),
        "InvalidDatetimeFormat",
    ),
    _pg(
        "invalid-interval", "SELECT 'Jana Wolf'::interval", ("Jana Wolf",), "InvalidDatetimeFormat"
    ),
    _pg(
        "invalid-boolean",
        "SELECT 'Karl Berg'::boolean",
        ("Karl Berg",),
        "InvalidTextRepresentation",
    ),
    _pg(
        "invalid-double-pg-sleep",
        "SELECT pg_sleep('Lena Fuchs')",
        ("Lena Fuchs",),
        "InvalidTextRepresentation",
    ),
    _pg(
        "invalid-enum",
        "SELECT 'Mia Koch'::rsvp_status",
        ("Mia Koch",),
        "InvalidTextRepresentation",
    ),
    _pg(
        "invalid-json-token",
        "SELECT '{\"name\": Nora Vogel}'::jsonb",
        ("Nora Vogel", "Nora"),
        "InvalidTextRepresentation",
    ),
    _pg(
        "invalid-json-truncated",
        f'SELECT * FROM guests WHERE data @> \'{{"email": "{EMIL}"\'',
        (EMIL,),
        "InvalidTextRepresentation",
    ),
    _pg(
        "malformed-array",
        f"{_INSERT.replace('age)', 'age, tags)')} (1, 'o@example.com', 'O', NULL, 3,"
        " '{unterminated Otto Lang')",
        ("Otto Lang",),
        "InvalidTextRepresentation",
    ),
    _pg(
        "syntax-error-line-echo",
        f"SELECT * FROM guests WHERE email = '{ANNA}' ANDD name = 'Anna Keller'",
        (ANNA, "Anna Keller"),
        "SyntaxError",
    ),
    _pg(
        "syntax-error-at-literal",
        "SELECT * FROM guests WHERE email = 'x' 'Paula Sauer'",
        ("Paula Sauer",),
        "SyntaxError",
    ),
    _pg(
        "unterminated-string",
        f"SELECT * FROM guests WHERE email = '{CARL}",
        (CARL,),
        "SyntaxError",
    ),
    _pg(
        "trailing-junk-phone",
        "SELECT * FROM guests WHERE phone = 447700900123abc",
        ("447700900123",),
        "SyntaxError",
    ),
    _pg(
        "trailing-junk-card",
        "SELECT * FROM guests WHERE id = 4111111111111111x",
        ("4111111111111111",),
        "SyntaxError",
    ),
    _pg(
        "foreign-key-email",
        f"INSERT INTO rsvps (email) VALUES ('{DORA}')",
        (DORA,),
        "ForeignKeyViolation",
    ),
    _pg(
        "foreign-key-email-params",
        "INSERT INTO rsvps (email) VALUES (%s)",
        (EMIL,),
        "ForeignKeyViolation",
        params=(EMIL,),
    ),
    _pg(
        "value-too-long",
        f"{_INSERT} (1, 'r@example.com', 'Rita Busch', '{PHONE_UK} ext 4567', 3)",
        ("Rita Busch", PHONE_UK),
        "StringDataRightTruncation",
    ),
    _pg(
        "integer-out-of-range-card",
        "SELECT 4111111111111111::int",
        ("4111111111111111",),
        "NumericValueOutOfRange",
    ),
    _pg(
        "division-by-zero-after-literal",
        f"SELECT '{EMIL}', 1 / 0",
        (EMIL,),
        "DivisionByZero",
    ),
    _pg(
        "raise-exception-message",
        f"DO $$ BEGIN RAISE EXCEPTION 'guest {CARL} not invited'; END $$",
        (CARL,),
        "RaiseException",
    ),
    _pg(
        "raise-exception-detail-hint",
        "DO $$ BEGIN RAISE EXCEPTION 'rsvp failed' USING DETAIL = 'guest Sven Ott',"
        f" HINT = 'call {PHONE_UK}'; END $$",
        ("Sven Ott", PHONE_UK),
        "RaiseException",
    ),
    _pg(
        "tsquery-syntax",
        "SELECT to_tsquery('Tilda & & Wirth')",
        ("Tilda & & Wirth", "Wirth"),
        "SyntaxError",
    ),
    _pg(
        "regclass-cross-database",
        f"SELECT '{BEA}'::regclass",
        (BEA,),
        "FeatureNotSupported",
    ),
    _pg(
        "bit-string-digit",
        "SELECT B'10110011100011112'",
        ("10110011100011112",),
        "InvalidTextRepresentation",
    ),
)

SQLITE_ERRORS = (
    _lite(
        "unique-email",
        f"{_INSERT} (1, '{ANNA}', 'Anna Twin', NULL, 31)",
        (ANNA, "Anna Twin"),
        "IntegrityError",
    ),
    _lite(
        "unique-email-params",
        f"{_INSERT} (?, ?, ?, ?, ?)",
        (BEA, "Bea Again"),
        "IntegrityError",
        params=(1, BEA, "Bea Again", None, 40),
    ),
    _lite(
        "check-constraint",
        f"{_INSERT} (1, '{CARL}', 'Carl Nagel', NULL, -1)",
        (CARL, "Carl Nagel"),
        "IntegrityError",
    ),
    _lite(
        "not-null",
        f"{_INSERT} (1, '{EMIL}', NULL, '{PHONE_US}', 3)",
        (EMIL, PHONE_US),
        "IntegrityError",
    ),
    _lite(
        "foreign-key",
        f"{_INSERT} (99, '{DORA}', 'Dora Lind', NULL, 3)",
        (DORA, "Dora Lind"),
        "IntegrityError",
    ),
    _lite(
        "datatype-mismatch-limit",
        f"SELECT * FROM guests WHERE email = '{CARL}' LIMIT 'Frieda Hahn'",
        (CARL, "Frieda Hahn"),
        "IntegrityError",
    ),
    _lite(
        "no-such-column-qualified-double-quoted",
        f'SELECT * FROM guests g WHERE g."{EMIL}" = 1',
        (EMIL,),
        "OperationalError",
    ),
    _lite(
        "no-such-column-excluded-double-quoted",
        f"{_INSERT} (1, '{ANNA}', 'x', NULL, 3) ON CONFLICT(email) DO UPDATE SET"
        ' name = excluded."Gustav Roth"',
        (ANNA, "Gustav Roth"),
        "OperationalError",
        identifiers=("Gustav Roth",),
    ),
    _lite(
        "no-such-column-backtick",
        f"SELECT * FROM guests WHERE email = `{DORA}`",
        (DORA,),
        "OperationalError",
    ),
    _lite(
        "no-such-column-bracket",
        "SELECT * FROM guests WHERE name = [Helga Voss]",
        ("Helga Voss",),
        "OperationalError",
        identifiers=("Helga Voss",),
    ),
    _lite(
        "no-such-column-bare-word",
        "SELECT * FROM guests WHERE name = Ingo_Maier",
        ("Ingo_Maier",),
        "OperationalError",
        identifiers=("Ingo_Maier",),
    ),
    _lite(
        "syntax-error-near-literal-word",
        "SELECT * FROM guests WHERE name = Karl Berg",
        ("Karl Berg", "Berg"),
        "OperationalError",
        identifiers=("Karl Berg", "Berg"),
    ),
    _lite(
        "unrecognized-token-unterminated",
        f"SELECT * FROM guests WHERE email = '{CARL}",
        (CARL,),
        "OperationalError",
    ),
    _lite(
        "unrecognized-token-glued-digits",
        "SELECT * FROM guests WHERE phone = 447700900456abc",
        ("447700900456",),
        "OperationalError",
    ),
    _lite(
        "unrecognized-token-pg-number",
        "SELECT * FROM guests WHERE id = 98_765_4321",
        ("98_765_4321", "765_4321"),
        "OperationalError",
    ),
    _lite(
        "no-such-table-email",
        f'SELECT * FROM "{BEA}"',
        (BEA,),
        "OperationalError",
    ),
    _lite(
        "malformed-json",
        f"SELECT json_extract('{{\"email\": \"{EMIL}\"', '$.email')",
        (EMIL,),
        "OperationalError",
    ),
    _lite(
        "no-such-function-argument",
        f"SELECT send_invite('{DORA}', 'Lena Fuchs')",
        (DORA, "Lena Fuchs"),
        "OperationalError",
    ),
    _lite(
        "wrong-bindings-after-literal",
        f"SELECT * FROM guests WHERE email = '{ANNA}' AND id = ?",
        (ANNA,),
        "ProgrammingError",
        params=(),
    ),
)

POSTGRES_FORMS = (
    ("dollar-quote-digit-tag", f"SELECT $t1${ANNA}$t1$", (ANNA,)),
    ("dollar-quote-non-ascii-tag", "SELECT $ä$Anna Keller$ä$", ("Anna Keller",)),
    ("dollar-quote-underscore-tag", "SELECT $tag_2$Bea Sommer$tag_2$ AS note", ("Bea Sommer",)),
    ("dollar-quote-empty-tag", f"SELECT $$Carl Nagel {PHONE_UK}$$", ("Carl Nagel", PHONE_UK)),
    ("dollar-quote-nested-tag", "SELECT $a$ nested $b$ Dora Lind $b$ $a$", ("Dora Lind",)),
    ("escape-string-quote", f"SELECT E'O\\'Brien {EMIL}'", ("Brien", EMIL)),
    ("escape-string-backslash", "SELECT E'Emil\\\\' || 'Brandt'", ("Emil\\", "Brandt")),
    ("unicode-escape-string", f"SELECT U&'d\\0061t\\+000061 {CARL}'", (CARL,)),
    ("national-string", "SELECT N'Frieda Hahn'", ("Frieda Hahn",)),
    ("doubled-quote", "SELECT 'it''s Gustav Roth'", ("Gustav Roth",)),
    ("continued-string", "SELECT 'Helga'\n'Voss-Continued'", ("Voss-Continued",)),
    ("nested-comment", "SELECT /* outer /* Ingo Maier */ still Jana Wolf */ 1", ("Ingo Maier",)),
    ("nested-comment-hides-literal", "SELECT /* /* */ 'Karl Berg' */ 1", ("Karl Berg",)),
    ("leading-line-comment", "-- guest Lena Fuchs\nSELECT 1", ("Lena Fuchs",)),
    ("trailing-line-comment", "SELECT 1 -- call Mia Koch", ("Mia Koch",)),
    ("array-of-strings", f"SELECT ARRAY['{ANNA}', 'Nora Vogel']", (ANNA, "Nora Vogel")),
    ("array-of-cards", "SELECT ARRAY[4111111111111111, 5555555555554444]", ("4111111111111111",)),
    (
        "subscript-jsonb",
        f"SELECT data['email'] FROM guests WHERE data['email'] = '\"{BEA}\"'",
        (BEA,),
    ),
    ("json-arrow", f"SELECT * FROM guests WHERE data->>'email' = '{CARL}'", (CARL,)),
    (
        "jsonb-contains-phone",
        f'SELECT * FROM guests WHERE data @> \'{{"phone": "{PHONE_UK}"}}\'',
        (PHONE_UK,),
    ),
    ("pg16-underscore-number", "SELECT 1_000_000 + 98_765_4321", ("98_765_4321", "765_4321")),
    ("pg16-octal", "SELECT 0o7654321", ("0o7654321", "7654321")),
    ("pg16-binary", "SELECT 0b1011001110001111", ("1011001110001111",)),
    ("pg16-hex", "SELECT 0x1F2E3D4C", ("1F2E3D4C",)),
    ("bit-string", "SELECT B'1011001110001111'", ("1011001110001111",)),
    ("hex-bit-string", "SELECT X'1F2E3D4C'", ("1F2E3D4C",)),
    ("in-list-emails", f"SELECT * FROM guests WHERE email IN ('{ANNA}', '{DORA}')", (ANNA, DORA)),
    ("ilike-name", "SELECT * FROM guests WHERE name ILIKE '%Otto Lang%'", ("Otto Lang",)),
    ("cast-text", "SELECT 'Paula Sauer'::text, INTERVAL '1 day'", ("Paula Sauer",)),
    ("multi-statement", f"SELECT 1; SELECT '{EMIL}'", (EMIL,)),
    ("card-literal-spaces", f"SELECT '{CARD}' AS card", (CARD,)),
    ("number-card", "SELECT * FROM guests WHERE id = 4012888888881881", ("4012888888881881",)),
)

SQLITE_FORMS = (
    ("double-quoted-string", f'SELECT * FROM guests WHERE email = "{ANNA}"', (ANNA,)),
    ("double-quoted-update", 'UPDATE guests SET name = "Rita Busch" WHERE id = 1', ("Rita Busch",)),
    ("double-quoted-both", f'SELECT * FROM guests WHERE "{CARL}" = email', (CARL,)),
    (
        "non-nested-comment",
        f"SELECT /* /* */ '{DORA}' AS e /* */",
        (DORA,),
    ),
    ("doubled-quote", "SELECT 'it''s Sven Ott'", ("Sven Ott",)),
    ("blob-literal", "SELECT x'616e6e612e6b656c6c6572'", ("616e6e612e6b656c6c6572",)),
    ("hex-number", "SELECT 0x1F2E3D4C", ("1F2E3D4C",)),
    ("card-number", "SELECT * FROM guests WHERE id = 4111111111111111", ("4111111111111111",)),
    ("phone-string", f"SELECT * FROM guests WHERE phone = '{PHONE_US}'", (PHONE_US,)),
    ("trailing-comment", f"SELECT * FROM guests WHERE email = '{EMIL}' -- Tilda Wirth", (EMIL,)),
    ("in-list", f"SELECT * FROM guests WHERE email IN ('{ANNA}', \"{BEA}\")", (ANNA, BEA)),
    ("like-pattern", "SELECT * FROM guests WHERE name LIKE 'Ulla%Brandt'", ("Ulla%Brandt",)),
)

SQL_FORMS = (
    *(
        _pg(id, statement, secrets, leak_class=LeakClass.SQL_FORM)
        for id, statement, secrets in POSTGRES_FORMS
    ),
    *(
        _lite(id, statement, secrets, leak_class=LeakClass.SQL_FORM)
        for id, statement, secrets in SQLITE_FORMS
    ),
)

N_PLUS_ONE_REPEAT = 6
"""More than `WeddingConfig.n_plus_one_limit` (5): the request span gets the N+1 event."""

_N_PLUS_ONE_FORMS = {
    "postgresql": (
        "dollar-quote-digit-tag",
        "dollar-quote-non-ascii-tag",
        "escape-string-quote",
        "nested-comment-hides-literal",
        "pg16-underscore-number",
        "pg16-octal",
        "pg16-binary",
        "array-of-strings",
        "subscript-jsonb",
        "in-list-emails",
    ),
    "sqlite": ("double-quoted-string", "non-nested-comment", "blob-literal", "in-list"),
}

N_PLUS_ONE = tuple(
    SqlCase(
        id=f"{case.id}-n-plus-one",
        leak_class=LeakClass.N_PLUS_ONE,
        secrets=case.secrets,
        backend=case.backend,
        statement=case.statement,
        repeat=N_PLUS_ONE_REPEAT,
    )
    for case in SQL_FORMS
    if case.id.split("-", 1)[1] in _N_PLUS_ONE_FORMS[case.backend]
    and case.id.startswith("pg-" if case.backend == "postgresql" else "sqlite-")
)

SQL_SPAN_NAMES = (
    _pg("values-first", f"VALUES('{ANNA}')", (ANNA,), leak_class=LeakClass.SPAN_NAME),
    _pg(
        "values-name-first",
        "VALUES('Anna Keller', 1)",
        ("Anna Keller",),
        leak_class=LeakClass.SPAN_NAME,
    ),
    _pg("select-glued-literal", f"SELECT'{BEA}'", (BEA,), leak_class=LeakClass.SPAN_NAME),
    _pg(
        "parenthesised-first",
        "(SELECT 'Carl Nagel')",
        ("Carl Nagel",),
        leak_class=LeakClass.SPAN_NAME,
    ),
    _pg(
        "leading-comment-first",
        "/*Dora Lind*/SELECT 1",
        ("Dora Lind",),
        leak_class=LeakClass.SPAN_NAME,
    ),
    _pg(
        "with-cte",
        f"WITH g AS (SELECT '{EMIL}' AS e) SELECT * FROM g",
        (EMIL,),
        leak_class=LeakClass.SPAN_NAME,
    ),
    _lite("values-first", f"VALUES('{ANNA}')", (ANNA,), leak_class=LeakClass.SPAN_NAME),
    _lite("values-double-quoted", f'VALUES("{CARL}")', (CARL,), leak_class=LeakClass.SPAN_NAME),
    _lite(
        "values-name-first",
        "VALUES('Frieda Hahn')",
        ("Frieda Hahn",),
        leak_class=LeakClass.SPAN_NAME,
    ),
    _lite("select-glued-literal", f"SELECT'{DORA}'", (DORA,), leak_class=LeakClass.SPAN_NAME),
)

SQL_CASES: tuple[SqlCase, ...] = (
    *POSTGRES_ERRORS,
    *SQLITE_ERRORS,
    *SQL_FORMS,
    *N_PLUS_ONE,
    *SQL_SPAN_NAMES,
)

# --- real Redis -------------------------------------------------------------------------------

_GUEST_KEY = f"guest:{ANNA}"


def _redis(
    id: str,
    command: tuple[str, ...],
    secrets: tuple[str, ...],
    error: str | None = None,
    *,
    setup: tuple[tuple[str, ...], ...] = (),
    keys: tuple[str, ...] = (),
    leak_class: LeakClass = LeakClass.REDIS_ERROR,
) -> RedisCase:
    return RedisCase(
        id=f"redis-{id}",
        leak_class=leak_class,
        secrets=secrets,
        command=command,
        setup=setup,
        keys=keys,
        error=error,
    )


REDIS_ERRORS = (
    _redis(
        "unknown-command-one-string",
        (f"NOSUCH supplier:42:{ANNA}",),
        (ANNA,),
        "ResponseError",
    ),
    _redis("unknown-command-args", ("GETT", f"supplier:42:{BEA}"), (BEA,), "ResponseError"),
    _redis(
        "unknown-command-name-args",
        ("RSVPGET", "guest:Carl-Nagel", PHONE_UK),
        ("Carl-Nagel", PHONE_UK),
        "ResponseError",
    ),
    _redis(
        "wrongtype-one-string",
        (f"LPUSH {_GUEST_KEY} x",),
        (ANNA,),
        "ResponseError",
        setup=(("SET", _GUEST_KEY, "Anna Keller"),),
        keys=(_GUEST_KEY,),
    ),
    _redis(
        "wrong-arity-one-string",
        (f"GET guest:{DORA} extra",),
        (DORA,),
        "ResponseError",
    ),
    _redis(
        "syntax-error-set-name",
        (f"SET guest:{EMIL} Emil Brandt",),
        (EMIL, "Emil Brandt"),
        "ResponseError",
    ),
    _redis(
        "config-set-invalid-argument",
        (f"CONFIG SET maxmemory-policy {CARL}",),
        (CARL,),
        "ResponseError",
    ),
    _redis(
        "unknown-subcommand-script",
        (f"SCRIPT {DORA}",),
        (DORA,),
        "ResponseError",
    ),
    _redis("unknown-subcommand-client", ("CLIENT Gustav-Roth",), ("Gustav-Roth",), "ResponseError"),
    _redis("unknown-subcommand-object", ("OBJECT", EMIL), (EMIL,), "ResponseError"),
    _redis("unknown-subcommand-xinfo", (f"XINFO {ANNA}",), (ANNA,), "ResponseError"),
    _redis(
        "lua-error-message",
        ("EVAL", "error('Helga Voss')", "0"),
        ("Helga Voss",),
        "ResponseError",
    ),
    _redis(
        "lua-error-reply",
        ("EVAL", f"return redis.error_reply('guest {BEA}')", "0"),
        (BEA,),
        "ResponseError",
    ),
    _redis(
        "acl-setuser-bad-modifier",
        (f"ACL SETUSER probe badmod-{CARL}",),
        (CARL,),
        "ResponseError",
    ),
    _redis(
        "auth-wrong-user",
        ("AUTH", DORA, PASSWORD),
        (DORA, PASSWORD),
        "AuthenticationError",
    ),
    _redis(
        "getex-bad-ttl",
        (f"GETEX guest:{EMIL} EX Ingo-Maier",),
        (EMIL, "Ingo-Maier"),
        "ResponseError",
        setup=(("SET", f"guest:{EMIL}", "x"),),
        keys=(f"guest:{EMIL}",),
    ),
    _redis(
        "xadd-stale-id",
        (f"XADD stream:rsvp 1-0 email {ANNA}",),
        (ANNA,),
        "ResponseError",
        setup=(("XADD", "stream:rsvp", "5-0", "email", "x"),),
        keys=("stream:rsvp",),
    ),
)

REDIS_COMMANDS = (
    _redis(
        "get-one-string",
        (f"GET supplier:42:{ANNA}",),
        (ANNA,),
        leak_class=LeakClass.REDIS,
    ),
    _redis(
        "auth-default-password",
        (f"AUTH default {PASSWORD}",),
        (PASSWORD,),
        leak_class=LeakClass.REDIS,
    ),
    _redis(
        "hello-auth-password",
        (f"HELLO 2 AUTH default {PASSWORD}",),
        (PASSWORD,),
        leak_class=LeakClass.REDIS,
    ),
    _redis(
        "setex-one-string",
        (f"SETEX session:{BEA} 60 {JWT}",),
        (BEA, JWT),
        leak_class=LeakClass.REDIS,
        keys=(f"session:{BEA}",),
    ),
    _redis(
        "hset-one-string",
        (f"HSET guest:{CARL} phone +447700900777",),
        (CARL, "+447700900777", "447700900777"),
        leak_class=LeakClass.REDIS,
        keys=(f"guest:{CARL}",),
    ),
    _redis(
        "publish-one-string",
        (f"PUBLISH rsvp:{DORA} yes",),
        (DORA,),
        leak_class=LeakClass.REDIS,
    ),
    _redis(
        "client-setname-card",
        ("CLIENT SETNAME Jana-Wolf-4111111111111111",),
        ("Jana-Wolf", "4111111111111111"),
        leak_class=LeakClass.REDIS,
    ),
    _redis(
        "namespace-person-name",
        ("GET", "Karl-Berg:rsvp"),
        ("Karl-Berg",),
        leak_class=LeakClass.REDIS,
    ),
    _redis(
        "namespace-phone-number",
        ("SET", "07700900456:guest", "x"),
        ("07700900456",),
        leak_class=LeakClass.REDIS,
        keys=("07700900456:guest",),
    ),
    _redis(
        "namespace-email",
        ("GET", f"{EMIL}:profile"),
        (EMIL,),
        leak_class=LeakClass.REDIS,
    ),
    _redis(
        "mget-one-string",
        (f"MGET guest:{ANNA} guest:{BEA}",),
        (ANNA, BEA),
        leak_class=LeakClass.REDIS,
    ),
    _redis(
        "eval-script-literal",
        ("EVAL", f"return '{CARL}'", "0"),
        (CARL,),
        leak_class=LeakClass.REDIS,
    ),
)

REDIS_CASES: tuple[RedisCase, ...] = (*REDIS_ERRORS, *REDIS_COMMANDS)

# --- spans built by hand ----------------------------------------------------------------------

_SERVER = SpanKind.SERVER
_CLIENT = SpanKind.CLIENT


def _span(id: str, leak_class: LeakClass, secrets: tuple[str, ...], **spec: object) -> SpanCase:
    return SpanCase(id=id, leak_class=leak_class, secrets=secrets, **spec)  # type: ignore[arg-type]


HTTP_CASES = (
    _span(
        "http-url-query-email",
        LeakClass.HTTP,
        ("anna%40example.com", "anna@example.com"),
        name="GET /api/guests",
        kind=_SERVER,
        parent="root",
        attributes={"http.route": "/api/guests", "url.query": "email=anna%40example.com&page=2"},
    ),
    _span(
        "http-url-query-name-and-phone",
        LeakClass.HTTP,
        ("Bea+Sommer", "Bea Sommer", "%2B447700900123"),
        name="GET /api/guests",
        kind=_SERVER,
        parent="root",
        attributes={"url.query": "guest=Bea+Sommer&phone=%2B447700900123"},
    ),
    _span(
        "http-url-query-bare-email",
        LeakClass.HTTP,
        (CARL,),
        name="GET /api/lookup",
        kind=_SERVER,
        parent="root",
        attributes={"url.query": CARL},
    ),
    _span(
        "http-url-full-userinfo",
        LeakClass.HTTP,
        ("dora.lind", PASSWORD, "s3cr3t-t0ken-value"),
        name="GET",
        kind=_CLIENT,
        attributes={
            "url.full": f"https://dora.lind:{PASSWORD}@api.example.com/v1/rsvp"
            "?token=s3cr3t-t0ken-value&page=1",
            "server.address": "api.example.com",
        },
    ),
    _span(
        "http-url-full-query-email-fragment",
        LeakClass.HTTP,
        (EMIL, "emil.brandt%40example.com", "Frieda Hahn"),
        name="GET",
        kind=_CLIENT,
        attributes={
            "url.full": "https://maps.example.com/search?q=emil.brandt%40example.com"
            "#guest=Frieda Hahn"
        },
    ),
    _span(
        "http-target-query",
        LeakClass.HTTP,
        ("gustav.roth", "Gustav Roth"),
        name="GET /rsvp",
        kind=_SERVER,
        parent="root",
        attributes={"http.target": "/rsvp?email=gustav.roth%40example.com&name=Gustav%20Roth"},
    ),
    _span(
        "http-target-path-email",
        LeakClass.HTTP,
        ("helga.voss@example.com",),
        name="GET /guests",
        kind=_SERVER,
        parent="root",
        attributes={"http.target": "/guests/helga.voss@example.com/rsvp"},
    ),
    _span(
        "http-url-old",
        LeakClass.HTTP,
        ("ingo.maier", PASSWORD, "4111111111111111"),
        name="POST",
        kind=_CLIENT,
        attributes={
            "http.url": f"http://ingo.maier:{PASSWORD}@pay.example.com/charge?card=4111111111111111"
        },
    ),
    _span(
        "http-url-original",
        LeakClass.HTTP,
        ("jana.wolf@example.com",),
        name="GET",
        kind=_CLIENT,
        attributes={"url.original": "https://x.example.com/u/jana.wolf@example.com?x=1"},
    ),
    _span(
        "http-header-authorization",
        LeakClass.HTTP,
        ("Basic a2FybDpwYXNzd29yZA==", "a2FybDpwYXNzd29yZA=="),
        name="GET /api/me",
        kind=_SERVER,
        parent="root",
        attributes={"http.request.header.authorization": ("Basic a2FybDpwYXNzd29yZA==",)},
    ),
    _span(
        "http-header-authorization-bearer",
        LeakClass.HTTP,
        (JWT,),
        name="GET /api/me",
        kind=_SERVER,
        parent="root",
        attributes={"http.request.header.authorization": (f"Bearer {JWT}",)},
    ),
    _span(
        "http-header-cookie",
        LeakClass.HTTP,
        ("q9Zx81LmN0pQ",),
        name="GET /api/me",
        kind=_SERVER,
        parent="root",
        attributes={"http.request.header.cookie": ("sid=q9Zx81LmN0pQ; theme=dark",)},
    ),
    _span(
        "http-header-set-cookie",
        LeakClass.HTTP,
        ("Zm9vYmFyYmF6cXV4",),
        name="POST /login",
        kind=_SERVER,
        parent="root",
        attributes={"http.response.header.set-cookie": ("session=Zm9vYmFyYmF6cXV4; HttpOnly",)},
    ),
    _span(
        "http-header-x-api-key",
        LeakClass.HTTP,
        ("wk_live_51HqPz2eZvKYlo2C",),
        name="GET /api/venues",
        kind=_SERVER,
        parent="root",
        attributes={"http.request.header.x-api-key": ("wk_live_51HqPz2eZvKYlo2C",)},
    ),
    _span(
        "http-header-x-api-key-string",
        LeakClass.HTTP,
        ("wk_test_9aZ8bY7cX6dW5e",),
        name="GET /api/venues",
        kind=_CLIENT,
        attributes={"http.request.header.x_api_key": "wk_test_9aZ8bY7cX6dW5e"},
    ),
    _span(
        "http-path-segment-email-name",
        LeakClass.HTTP,
        ("karl.berg@example.com",),
        name="GET /api/guests/karl.berg@example.com",
        kind=_SERVER,
        parent="root",
        attributes={"url.path": "/api/guests/karl.berg@example.com", "http.request.method": "GET"},
    ),
    _span(
        "http-path-segment-encoded-email",
        LeakClass.HTTP,
        ("lena.fuchs%40example.com", "lena.fuchs"),
        name="GET /api/guests/lena.fuchs%40example.com",
        kind=_SERVER,
        parent="root",
        attributes={"url.path": "/api/guests/lena.fuchs%40example.com"},
    ),
    _span(
        "http-route-raw-path",
        LeakClass.HTTP,
        ("mia.koch@example.com",),
        name="GET /guests/mia.koch@example.com",
        kind=_SERVER,
        parent="root",
        attributes={"http.route": "/guests/mia.koch@example.com"},
    ),
    _span(
        "http-user-agent-mailto",
        LeakClass.HTTP,
        ("nora.vogel@example.com",),
        name="GET /",
        kind=_SERVER,
        parent="root",
        attributes={
            "user_agent.original": "Mozilla/5.0 (compatible; WedBot/1.0;"
            " +mailto:nora.vogel@example.com)"
        },
    ),
    _span(
        "http-enduser-id-email",
        LeakClass.HTTP,
        ("otto.lang@example.com",),
        name="GET /api/me",
        kind=_SERVER,
        parent="root",
        attributes={"enduser.id": "otto.lang@example.com"},
    ),
    _span(
        "wedding-id-email",
        LeakClass.HTTP,
        ("paula.sauer@example.com",),
        name="GET /api/weddings/{wedding_id}",
        kind=_SERVER,
        parent="root",
        attributes={
            "http.route": "/api/weddings/{wedding_id}",
            "wedding.id": "paula.sauer@example.com",
        },
    ),
    _span(
        "wedding-id-phone",
        LeakClass.HTTP,
        (PHONE_UK,),
        name="GET /api/weddings/{wedding_id}",
        kind=_SERVER,
        parent="root",
        attributes={"http.route": "/api/weddings/{wedding_id}", "wedding.id": PHONE_UK},
    ),
    _span(
        "wedding-id-phone-digits",
        LeakClass.HTTP,
        ("07700900456",),
        name="GET /api/weddings/{wedding_id}",
        kind=_SERVER,
        parent="root",
        attributes={"wedding.id": "07700900456"},
    ),
    _span(
        "wedding-id-on-child",
        LeakClass.HTTP,
        ("rita.busch@example.com",),
        kind=SpanKind.INTERNAL,
        attributes={"wedding.id": "rita.busch@example.com"},
    ),
    _span(
        "wedding-id-int-card",
        LeakClass.HTTP,
        ("4111111111111111",),
        name="GET /api/weddings/{wedding_id}",
        kind=_SERVER,
        parent="root",
        attributes={"wedding.id": 4111111111111111},
    ),
)

EDGE_CASES = (
    _span(
        "http-path-segment-phone",
        LeakClass.HTTP,
        (PHONE_UK,),
        name="GET /api/guests/{phone}/rsvp",
        kind=_SERVER,
        parent="root",
        attributes={
            "http.route": "/api/guests/{phone}/rsvp",
            "url.path": f"/api/guests/{PHONE_UK}/rsvp",
        },
    ),
    _span(
        "value-phone-before-colon",
        LeakClass.VALUE,
        (PHONE_US,),
        kind=_CLIENT,
        attributes={"messaging.destination.name": f"sms:{PHONE_US}:queued"},
    ),
    _span(
        "value-phone-in-dotted-name",
        LeakClass.VALUE,
        ("+1-202-555-0143",),
        name="notify.+1-202-555-0143.sent",
    ),
    _span(
        "value-bearer-in-underscored-key",
        LeakClass.VALUE,
        ("abcdefghij0123456789",),
        attributes={"auth_Bearer abcdefghij0123456789": "x"},
    ),
    _span(
        "value-bearer-in-event-key",
        LeakClass.VALUE,
        ("Zx81LmN0pQq9Zx81LmN0",),
        events=(("login", {"header_Bearer Zx81LmN0pQq9Zx81LmN0": 1}),),
    ),
)

CACHE_SPANS = (
    _span(
        "redisearch-document-attribute",
        LeakClass.REDIS,
        (ANNA, "Anna Keller", "anna\\.keller"),
        name="redis.search",
        kind=_CLIENT,
        attributes={
            "db.system": "redis",
            "db.statement": "FT.SEARCH ? ?",
            "redis.search.index": "guests-idx",
            "redis.search.query": "@email:{anna\\.keller\\@example\\.com}",
            "redis.search.total": 1,
            f"redis.search.xdoc_guest:{ANNA}.name": "Anna Keller",
            f"redis.search.xdoc_guest:{ANNA}.email": ANNA,
        },
    ),
    _span(
        "redisearch-query-name",
        LeakClass.REDIS,
        ("Bea Sommer",),
        name="redis.search",
        kind=_CLIENT,
        attributes={"db.system": "redis", "redis.search.query": "@name:(Bea Sommer)"},
    ),
    _span(
        "memcached-raw-statement",
        LeakClass.REDIS,
        (CARL,),
        name=f"get guest:{CARL}",
        kind=_CLIENT,
        attributes={"db.system": "memcached", "db.statement": f"get guest:{CARL}"},
    ),
    _span(
        "memcached-set-value",
        LeakClass.REDIS,
        (DORA, "Dora Lind"),
        name="set",
        kind=_CLIENT,
        attributes={
            "db.system.name": "memcached",
            "db.query.text": f"set guest:{DORA} 0 60 9\r\nDora Lind",
        },
    ),
    _span(
        "valkey-raw-statement",
        LeakClass.REDIS,
        (EMIL, PASSWORD),
        name=f"AUTH {EMIL} {PASSWORD}",
        kind=_CLIENT,
        attributes={"db.system.name": "valkey", "db.query.text": f"AUTH {EMIL} {PASSWORD}"},
    ),
    _span(
        "redis-pipeline-statement",
        LeakClass.REDIS,
        (ANNA, BEA),
        name="MULTI",
        kind=_CLIENT,
        attributes={"db.system": "redis", "db.statement": f"SET guest:{ANNA} x\nGET guest:{BEA}"},
    ),
    _span(
        "cache-namespace-name",
        LeakClass.REDIS,
        ("Frieda Hahn",),
        kind=_CLIENT,
        attributes={"cache.backend": "redis", "cache.key.namespace": "Frieda Hahn"},
    ),
    _span(
        "cache-namespace-phone",
        LeakClass.REDIS,
        (PHONE_UK,),
        kind=_CLIENT,
        attributes={"cache.backend": "redis", "cache.key.namespace": PHONE_UK},
    ),
    _span(
        "cache-namespace-email",
        LeakClass.REDIS,
        (CARL,),
        kind=_CLIENT,
        attributes={"cache.backend": "redis", "cache.key.namespace": CARL},
    ),
    _span(
        "mysql-duplicate-entry",
        LeakClass.SQL_FORM,
        (ANNA, "Anna Keller"),
        name="INSERT",
        kind=_CLIENT,
        attributes={
            "db.system": "mysql",
            "db.statement": f"INSERT INTO guests (email, name) VALUES ('{ANNA}', 'Anna Keller')",
        },
        exception=f"(1062, \"Duplicate entry '{ANNA}' for key 'guests.email'\")",
    ),
    _span(
        "db-response-message",
        LeakClass.SQL_FORM,
        ("Gustav Roth",),
        name="SELECT",
        kind=_CLIENT,
        attributes={
            "db.system.name": "postgresql",
            "db.query.text": "SELECT 1",
            "db.response.message": 'invalid input syntax for type integer: "Gustav Roth"',
        },
    ),
    _span(
        "db-summary-literal",
        LeakClass.SPAN_NAME,
        ("Helga Voss",),
        name="'Helga Voss'",
        kind=_CLIENT,
        attributes={"db.system.name": "postgresql", "db.query.summary": "'Helga Voss'"},
    ),
    _span(
        "db-operation-literal",
        LeakClass.SPAN_NAME,
        (BEA,),
        name=f"VALUES('{BEA}')",
        kind=_CLIENT,
        attributes={"db.system": "postgresql", "db.operation.name": f"VALUES('{BEA}')"},
    ),
    _span(
        "db-name-without-statement",
        LeakClass.SPAN_NAME,
        (DORA,),
        name=f"SELECT '{DORA}'",
        kind=_CLIENT,
        attributes={"db.system": "sqlite"},
    ),
)

# Values anywhere: every form of every kind of secret in every field, on every span kind.
VALUE_FORMS: tuple[tuple[str, str, tuple[str, ...]], ...] = (
    ("email", "frieda.hahn@example.com", ("frieda.hahn@example.com",)),
    ("email-upper", "GUSTAV.ROTH@EXAMPLE.COM", ("GUSTAV.ROTH@EXAMPLE.COM",)),
    ("email-plus", "helga.voss+wedding@example.co.uk", ("helga.voss+wedding@example.co.uk",)),
    ("email-percent", "ingo.maier%40example.com", ("ingo.maier%40example.com",)),
    ("email-double-percent", "jana.wolf%2540example.com", ("jana.wolf%2540example.com",)),
    ("email-fullwidth-at", "karl.berg\uff20example.com", ("karl.berg\uff20example.com",)),
    ("email-idn", "lena.fuchs@bücher.example", ("lena.fuchs@bücher.example",)),
    ("email-idn-cjk", "mia.koch@例え.jp", ("mia.koch@例え.jp",)),
    ("email-punycode", "nora.vogel@xn--bcher-kva.example", ("nora.vogel@xn--bcher-kva.example",)),
    ("card-spaces", "4111 1111 1111 1111", ("4111 1111 1111 1111",)),
    ("card-dashes", "5555-5555-5555-4444", ("5555-5555-5555-4444",)),
    ("card-dots", "4012.8888.8888.1881", ("4012.8888.8888.1881",)),
    ("card-underscores", "4000_0566_5566_5556", ("4000_0566_5566_5556",)),
    ("card-double-spaces", "6011  0009  9013  9424", ("6011  0009  9013  9424",)),
    ("card-amex-groups", "3782 822463 10005", ("3782 822463 10005",)),
    ("card-plain", "5105105105105100", ("5105105105105100",)),
    ("phone-uk", "+44 7700 900123", ("+44 7700 900123",)),
    ("phone-us-parens", "(415) 555-2671", ("(415) 555-2671",)),
    ("phone-us-dashes", "+1-202-555-0143", ("+1-202-555-0143",)),
    ("phone-de", "+49 30 90182077", ("+49 30 90182077",)),
    ("bearer", "Bearer 2YotnFZFEjr1zCsicMWpAA", ("2YotnFZFEjr1zCsicMWpAA",)),
    ("jwt", JWT, (JWT, JWT.split(".")[1])),
    ("aws-access-key", "AKIAIOSFODNN7EXAMPLE", ("AKIAIOSFODNN7EXAMPLE",)),
    (
        "aws-secret-key",
        "aws_secret_access_key=wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
        ("wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",),
    ),
)

_KINDS = (SpanKind.INTERNAL, SpanKind.CLIENT, SpanKind.PRODUCER, SpanKind.CONSUMER, SpanKind.SERVER)
_PARENTS: tuple[Parent, ...] = ("request", "root", "remote")


def _placements(text: str) -> dict[str, dict[str, object]]:
    """Where a value goes: each entry is the `SpanCase` fields that plant ``text``."""
    return {
        "attr-str": {"attributes": {"guest.note": f"contact {text} today"}},
        "attr-bytes": {"attributes": {"messaging.payload": f"to={text}".encode()}},
        "attr-list": {"attributes": {"guest.contacts": ("ok", f"x {text}", "fine")}},
        "attr-key": {"attributes": {f"guest.{text}.rsvp": "yes"}},
        "event-name": {"events": ((f"emailed {text}", {}),)},
        "event-attr": {"events": (("notify", {"recipient": f"{text}", "attempt": 1}),)},
        "status": {"status": f"could not reach {text}"},
        "exception": {"exception": f"bad contact {text}"},
        "link-attr": {"links": ({"peer": f"{text}"},)},
        "span-name": {"name": f"notify {text}"},
    }


def _value_cases() -> Iterator[SpanCase]:
    for i, (label, text, secrets) in enumerate(VALUE_FORMS):
        for j, (where, spec) in enumerate(_placements(text).items()):
            kind = _KINDS[(i + j) % len(_KINDS)]
            parent = _PARENTS[(i * 3 + j) % len(_PARENTS)]
            yield SpanCase(
                id=f"value-{label}-{where}-{kind.name.lower()}-{parent}",
                leak_class=LeakClass.VALUE,
                secrets=secrets,
                kind=kind,
                parent=parent,
                **spec,  # type: ignore[arg-type]
            )
    for card in (4111111111111111, 5555555555554444, 378282246310005):
        for kind in (SpanKind.INTERNAL, SpanKind.SERVER):
            yield SpanCase(
                id=f"value-card-int-{card}-{kind.name.lower()}",
                leak_class=LeakClass.VALUE,
                secrets=(str(card),),
                kind=kind,
                parent="root" if kind is SpanKind.SERVER else "request",
                attributes={"payment.reference": card, "payment.references": (1, card)},
                events=(("charged", {"card": card}),),
            )


VALUE_CASES = tuple(_value_cases())

SPAN_CASES: tuple[SpanCase, ...] = (*HTTP_CASES, *EDGE_CASES, *CACHE_SPANS, *VALUE_CASES)

CASES: tuple[Case, ...] = (*SQL_CASES, *REDIS_CASES, *SPAN_CASES)


def counts_by_class() -> dict[str, int]:
    """How many cases each `LeakClass` has."""
    counts = {leak_class.value: 0 for leak_class in LeakClass}
    for case in CASES:
        counts[case.leak_class.value] += 1
    return counts


# --- making the spans -------------------------------------------------------------------------


class PlantedError(Exception):
    """The exception a `SpanCase` raises: no other error is mistaken for it."""


_TRACE_ID = 0x5B8EFFF798038103D269B633813FC60C
_SPAN_ID = 0xEEE19B7EC3C1B174
_LINKED_SPAN_ID = 0x00F067AA0BA902B7


def _remote(span_id: int) -> SpanContext:
    return SpanContext(
        trace_id=_TRACE_ID,
        span_id=span_id,
        is_remote=True,
        trace_flags=TraceFlags(TraceFlags.SAMPLED),
    )


def emit(tracer: Tracer, case: SpanCase) -> None:
    """The span ``case`` describes, ended; its exception propagates out of it as in an app."""
    context = None
    if case.parent == "remote":
        context = trace.set_span_in_context(NonRecordingSpan(_remote(_SPAN_ID)))
    links = [Link(_remote(_LINKED_SPAN_ID), dict(attributes)) for attributes in case.links]

    def body() -> None:
        with tracer.start_as_current_span(
            case.name,
            context=context,
            kind=case.kind,
            attributes=dict(case.attributes),
            links=links,
        ) as span:
            for name, attributes in case.events:
                span.add_event(name, dict(attributes))
            if case.status is not None:
                span.set_status(Status(StatusCode.ERROR, case.status))
            if case.exception is not None:
                raise PlantedError(case.exception)

    try:
        if case.parent == "request":
            with tracer.start_as_current_span(
                "GET /api/rsvp", kind=SpanKind.SERVER, attributes={"http.route": "/api/rsvp"}
            ):
                body()
        else:
            body()
    except PlantedError:
        pass


# --- looking for the secrets ------------------------------------------------------------------

_SEPARATORS = re.compile(r"(?<=\d)[ \-._]+(?=\d)")
_AT_FORMS = ("@", "\uff20", "%40", "%2540")


def _normal(text: str) -> str:
    return unicodedata.normalize("NFKC", text).casefold()


def _luhn(digits: str) -> bool:
    total = 0
    for index, char in enumerate(reversed(digits)):
        digit = int(char)
        if index % 2:
            digit = digit * 2 - 9 if digit > 4 else digit * 2
        total += digit
    return total % 10 == 0


def needles(secret: str) -> frozenset[str]:
    """The forms ``secret`` may take once exported, normalised as `views` normalises text.

    The secret itself; for an email, its local part too (decoded); for a card
    or phone number, its digit run once separators are removed.
    """
    found = {_normal(secret)}
    decoded = unquote(unquote(secret))
    found.add(_normal(decoded))
    for at in _AT_FORMS:
        if at in secret:
            local = secret.split(at, 1)[0]
            local = unquote(unquote(local)).rsplit(":", 1)[-1].lstrip("{\\")
            if len(local) >= 4:
                found.add(_normal(local))
            break
    digits = re.sub(r"\D", "", secret)
    if re.fullmatch(r"[+(]?[\d \-._()]+", secret.strip()) and 10 <= len(digits) <= 19:
        found.add(digits)
    return frozenset(found)


def views(text: str) -> tuple[str, ...]:
    """``text`` as exported, percent-decoded, and with separators between digits removed."""
    once = unquote(text)
    forms = {_normal(text), _normal(once), _normal(unquote(once))}
    return tuple({*forms, *(_SEPARATORS.sub("", form) for form in forms)})


def render(value: object) -> str:
    """An attribute value as text: bytes decoded, sequences element by element."""
    if isinstance(value, str):
        return value
    if isinstance(value, bytes | bytearray):
        return bytes(value).decode("utf-8", "replace")
    if isinstance(value, Sequence):
        return "\x1f".join(render(item) for item in value)
    return f"{value}\x1f{value!r}"


def _attribute_texts(
    where: str, attributes: Mapping[str, object] | None
) -> Iterator[tuple[str, str]]:
    for key, value in (attributes or {}).items():
        yield f"{where} key", str(key)
        yield f"{where}[{key!r}]", render(value)


def exported_texts(span: ReadableSpan) -> Iterator[tuple[str, str]]:
    """(field, text) for every field of ``span`` an exporter sends, by its public properties."""
    label = f"span {span.name!r}"
    yield f"{label} name", span.name
    yield from _attribute_texts(f"{label} attributes", span.attributes)
    for index, event in enumerate(span.events):
        yield f"{label} events[{index}].name", event.name
        yield from _attribute_texts(f"{label} events[{index}].attributes", event.attributes)
    yield f"{label} status.description", span.status.description or ""
    for index, link in enumerate(span.links):
        yield from _attribute_texts(f"{label} links[{index}].attributes", link.attributes)
    yield from _attribute_texts(f"{label} resource", span.resource.attributes)


def leaks(
    texts: Iterator[tuple[str, str]] | Sequence[tuple[str, str]], secrets: Sequence[str]
) -> list[str]:
    """``field: secret form`` for every secret form found in any of ``texts``."""
    wanted = {(secret, needle) for secret in secrets for needle in needles(secret)}
    found = []
    for where, text in texts:
        for secret, needle in sorted(wanted):
            form = next((form for form in views(text) if needle in form), None)
            if form is not None:
                at = form.index(needle)
                excerpt = form[max(0, at - 60) : at + len(needle) + 20]
                found.append(f"{where}: ...{excerpt!r}... leaks {needle!r} (of {secret!r})")
    return found
