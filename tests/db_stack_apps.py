"""Database stacks behind one small ASGI app, instrumented as ``opentelemetry-bootstrap`` would.

Each `Stack` is a driver with or without SQLAlchemy in front of it, and each
`Instrumented` choice turns on SQLAlchemy's instrumentation, the driver's, or
both (what ``opentelemetry-bootstrap`` installs when both packages are
present). `serve` builds the stack inside one event loop, sends a warm-up
request and then the measured one through the contrib ASGI middleware, and
returns what the in-memory exporter behind `WeddingSpanProcessor` received.

What the instrumentations emit, as seen on PostgreSQL 18 and SQLite
(opentelemetry-instrumentation-* 0.66b1, SQLAlchemy 2.0):

- SQLAlchemy's statement span is a *sibling* of the driver's (same parent,
  around it in time, another instrumentation scope), and its ``connect`` span
  (no statement) is current while the pool connects, so the dialect's
  first-connect statements (``select pg_catalog.version()``, ``PRAGMA
  read_uncommitted``...) are the driver's spans *under* it.
- asyncpg sends BEGIN/COMMIT/ROLLBACK as statements, so they have spans;
  psycopg and sqlite3 begin implicitly and commit inside ``commit()``, so they
  have none. A streamed asyncpg cursor makes one ``CURSOR: ...`` span per
  batch (per *row* through ``async for``).
- aiosqlite runs sqlite3 on its own thread without the caller's contextvars:
  SQLite3Instrumentor's spans there have no parent (roots of their own traces).
- PsycopgInstrumentor does not trace server-side (named) cursors at all.

Instrumentors are process-global: `instrumented` turns them on before the
engine or connection is made (SQLAlchemy's wraps ``create_engine``, psycopg's
wraps ``connect``) and off afterwards, and refuses to start if one was left on.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import re
import sqlite3
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final, Protocol

import asyncpg  # type: ignore[import-untyped]  # no py.typed
import httpx
import psycopg
import sqlalchemy
import sqlalchemy.ext.asyncio
from opentelemetry.instrumentation.asgi import OpenTelemetryMiddleware
from opentelemetry.instrumentation.asyncpg import AsyncPGInstrumentor
from opentelemetry.instrumentation.instrumentor import (  # type: ignore[attr-defined]
    BaseInstrumentor,
)
from opentelemetry.instrumentation.psycopg import PsycopgInstrumentor
from opentelemetry.instrumentation.sqlalchemy import SQLAlchemyInstrumentor
from opentelemetry.instrumentation.sqlite3 import SQLite3Instrumentor
from opentelemetry.instrumentation.utils import suppress_instrumentation
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.trace import SpanKind
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from helpers import Pipeline
from wedsync_otel import attributes as attr

CONTROL_OPERATIONS: Final = "wedding.db.control_operations"
"""Connects and transaction control of a request (the fix in progress adds the constant)."""

SEED_ROWS: Final = 600
STREAM_ROWS: Final = 500
"""Rows the streamed request reads: several batches of every driver's cursor."""
STREAM_BATCH_ROWS: Final = 100


class Instrumented(enum.Enum):
    """Which instrumentations are on: SQLAlchemy's, the driver's, or both (bootstrap's)."""

    SQLALCHEMY = "sqlalchemy-only"
    DRIVER = "driver-only"
    STACKED = "stacked"

    @property
    def sqlalchemy(self) -> bool:
        return self is not Instrumented.DRIVER

    @property
    def driver(self) -> bool:
        return self is not Instrumented.SQLALCHEMY


class Driver(enum.Enum):
    """A DB-API or asyncio driver and its contrib instrumentation."""

    PSYCOPG = "psycopg"
    ASYNCPG = "asyncpg"
    SQLITE3 = "sqlite3"

    def instrumentor(self) -> BaseInstrumentor:
        if self is Driver.PSYCOPG:
            return PsycopgInstrumentor()
        if self is Driver.ASYNCPG:
            return AsyncPGInstrumentor()  # type: ignore[no-untyped-call]
        return SQLite3Instrumentor()

    def instrument(self, provider: TracerProvider) -> None:
        if self is Driver.PSYCOPG:
            PsycopgInstrumentor().instrument(tracer_provider=provider, enable_commenter=False)
        else:
            self.instrumentor().instrument(tracer_provider=provider)


@dataclass(frozen=True, kw_only=True)
class Stack:
    """A driver, with SQLAlchemy (sync or asyncio) in front of it or used directly."""

    name: str
    driver: Driver
    sqlalchemy_driver: str | None
    """SQLAlchemy's ``dialect+driver`` (``postgresql+psycopg``), or None: the raw driver."""
    is_async: bool
    transaction_spans: int
    """Spans the driver's instrumentation makes for one BEGIN ... COMMIT (asyncpg: 2)."""

    @property
    def uses_sqlalchemy(self) -> bool:
        return self.sqlalchemy_driver is not None

    @property
    def modes(self) -> tuple[Instrumented, ...]:
        """The instrumentation choices that mean something here (raw drivers: no SQLAlchemy)."""
        if self.uses_sqlalchemy:
            return tuple(Instrumented)
        return (Instrumented.DRIVER, Instrumented.STACKED)

    def control_operations(self, mode: Instrumented) -> int:
        """Connects and transaction control the instrumentations show for one transaction.

        SQLAlchemy's ``connect`` span comes with every ``Engine.connect`` (a pool
        checkout once warm); the driver's BEGIN/COMMIT spans only from asyncpg.
        """
        connects = 1 if mode.sqlalchemy and self.uses_sqlalchemy else 0
        return connects + (self.transaction_spans if mode.driver else 0)


STACKS: Final = (
    Stack(
        name="sqlalchemy-psycopg",
        driver=Driver.PSYCOPG,
        sqlalchemy_driver="postgresql+psycopg",
        is_async=False,
        transaction_spans=0,
    ),
    Stack(
        name="sqlalchemy-async-psycopg",
        driver=Driver.PSYCOPG,
        sqlalchemy_driver="postgresql+psycopg",
        is_async=True,
        transaction_spans=0,
    ),
    Stack(
        name="sqlalchemy-async-asyncpg",
        driver=Driver.ASYNCPG,
        sqlalchemy_driver="postgresql+asyncpg",
        is_async=True,
        transaction_spans=2,
    ),
    Stack(
        name="sqlalchemy-pysqlite",
        driver=Driver.SQLITE3,
        sqlalchemy_driver="sqlite+pysqlite",
        is_async=False,
        transaction_spans=0,
    ),
    Stack(
        name="sqlalchemy-async-aiosqlite",
        driver=Driver.SQLITE3,
        sqlalchemy_driver="sqlite+aiosqlite",
        is_async=True,
        transaction_spans=0,
    ),
    Stack(
        name="asyncpg",
        driver=Driver.ASYNCPG,
        sqlalchemy_driver=None,
        is_async=True,
        transaction_spans=2,
    ),
    Stack(
        name="psycopg",
        driver=Driver.PSYCOPG,
        sqlalchemy_driver=None,
        is_async=False,
        transaction_spans=0,
    ),
)


@dataclass(frozen=True, kw_only=True)
class Databases:
    """The real servers a test module uses, and the table it made in each."""

    postgres_dsn: str
    sqlite_path: Path
    table: str

    def url(self, stack: Stack) -> str:
        """The SQLAlchemy URL of ``stack``'s database."""
        assert stack.sqlalchemy_driver is not None
        if stack.driver is Driver.SQLITE3:
            return f"{stack.sqlalchemy_driver}:///{self.sqlite_path}"
        url = sqlalchemy.engine.make_url(self.postgres_dsn).set(drivername=stack.sqlalchemy_driver)
        return url.render_as_string(hide_password=False)


def create_tables(databases: Databases) -> None:
    """Create and fill the module's table in PostgreSQL and in the SQLite file, untraced."""
    table = databases.table
    with suppress_instrumentation():
        with psycopg.connect(databases.postgres_dsn, autocommit=True) as conn:
            conn.execute(f"CREATE TABLE {table} (id serial PRIMARY KEY, name text NOT NULL)")
            conn.execute(
                f"INSERT INTO {table} (name) SELECT 'guest ' || n FROM generate_series(1, %s) n",
                (SEED_ROWS,),
            )
        with contextlib.closing(sqlite3.connect(databases.sqlite_path)) as lite, lite:
            lite.execute(f"CREATE TABLE {table} (id INTEGER PRIMARY KEY, name TEXT NOT NULL)")
            lite.executemany(
                f"INSERT INTO {table} (name) VALUES (?)",
                [(f"guest {n}",) for n in range(1, SEED_ROWS + 1)],
            )


def drop_tables(databases: Databases) -> None:
    """Drop the module's table from PostgreSQL and from the SQLite file, untraced."""
    with suppress_instrumentation():
        with psycopg.connect(databases.postgres_dsn, autocommit=True) as conn:
            conn.execute(f"DROP TABLE IF EXISTS {databases.table}")
        with contextlib.closing(sqlite3.connect(databases.sqlite_path)) as lite, lite:
            lite.execute(f"DROP TABLE IF EXISTS {databases.table}")


# --- what a request runs --------------------------------------------------------------------


@dataclass(frozen=True)
class Statement:
    """SQL with SQLAlchemy-style ``:name`` parameters, and their values."""

    sql: str
    params: Mapping[str, Any]


_PARAM = re.compile(r":(\w+)")


def psycopg_sql(sql: str) -> str:
    """``:name`` parameters as psycopg's ``%(name)s``."""
    return _PARAM.sub(r"%(\1)s", sql)


def asyncpg_sql(statement: Statement) -> tuple[str, list[Any]]:
    """``:name`` parameters as asyncpg's ``$1, $2``, with the values in that order."""
    names: list[str] = []

    def number(match: re.Match[str]) -> str:
        names.append(match.group(1))
        return f"${len(names)}"

    sql = _PARAM.sub(number, statement.sql)
    return sql, [statement.params[name] for name in names]


def rsvp_statements(table: str) -> tuple[Statement, ...]:
    """The four statements of one RSVP, run in one transaction."""
    return (
        Statement(f"SELECT name FROM {table} WHERE id = :id", {"id": 1}),
        Statement(f"INSERT INTO {table} (name) VALUES (:name)", {"name": "plus one"}),
        Statement(f"UPDATE {table} SET name = :name WHERE id = :id", {"name": "Ada", "id": 2}),
        Statement(f"SELECT count(*) FROM {table}", {}),
    )


RSVP_STATEMENTS: Final = 4


def repeated_statements(table: str, times: int) -> tuple[Statement, ...]:
    """One SELECT shape, ``times`` times with a different id each time (an N+1 loop)."""
    return tuple(
        Statement(f"SELECT name FROM {table} WHERE id = :id", {"id": n})
        for n in range(1, times + 1)
    )


def stream_sql(table: str) -> str:
    return f"SELECT id, name FROM {table} ORDER BY id LIMIT {STREAM_ROWS}"


# --- each stack's way of running them ----------------------------------------------------------


class Runner(Protocol):
    """A stack's database handle, used from the app's event loop."""

    async def open(self) -> None: ...

    async def close(self) -> None: ...

    async def transaction(self, statements: Sequence[Statement]) -> None: ...

    async def stream(self, sql: str) -> int:
        """Read ``sql`` through a streamed (server-side, where there is one) cursor; the rows."""
        ...


class SyncEngineRunner:
    """SQLAlchemy's sync engine, run on Starlette's thread pool as a sync endpoint would be."""

    def __init__(self, url: str) -> None:
        self._url = url
        self._engine: sqlalchemy.Engine | None = None

    @property
    def engine(self) -> sqlalchemy.Engine:
        assert self._engine is not None
        return self._engine

    async def open(self) -> None:
        self._engine = sqlalchemy.create_engine(self._url)  # the instrumented create_engine

    async def close(self) -> None:
        if self._engine is not None:
            self._engine.dispose()

    def _transaction(self, statements: Sequence[Statement]) -> None:
        with self.engine.begin() as conn:
            for statement in statements:
                result = conn.execute(sqlalchemy.text(statement.sql), statement.params)
                if result.returns_rows:
                    result.all()

    def _stream(self, sql: str) -> int:
        with self.engine.connect() as conn:
            streamed = conn.execution_options(
                stream_results=True, max_row_buffer=STREAM_BATCH_ROWS
            ).execute(sqlalchemy.text(sql))
            return sum(1 for _ in streamed)

    async def transaction(self, statements: Sequence[Statement]) -> None:
        await run_in_threadpool(self._transaction, statements)

    async def stream(self, sql: str) -> int:
        return await run_in_threadpool(self._stream, sql)


class AsyncEngineRunner:
    """SQLAlchemy's asyncio engine."""

    def __init__(self, url: str) -> None:
        self._url = url
        self._engine: sqlalchemy.ext.asyncio.AsyncEngine | None = None

    @property
    def engine(self) -> sqlalchemy.ext.asyncio.AsyncEngine:
        assert self._engine is not None
        return self._engine

    async def open(self) -> None:
        self._engine = sqlalchemy.ext.asyncio.create_async_engine(self._url)

    async def close(self) -> None:
        if self._engine is not None:
            await self._engine.dispose()

    async def transaction(self, statements: Sequence[Statement]) -> None:
        async with self.engine.begin() as conn:
            for statement in statements:
                result = await conn.execute(sqlalchemy.text(statement.sql), statement.params)
                if result.returns_rows:
                    result.all()

    async def stream(self, sql: str) -> int:
        rows = 0
        async with self.engine.connect() as conn:
            streamed = await conn.stream(sqlalchemy.text(sql))
            async for _ in streamed:
                rows += 1
        return rows


class AsyncpgRunner:
    """One asyncpg connection, kept open across requests as a pool would keep it."""

    def __init__(self, dsn: str) -> None:
        self._dsn = dsn
        self._conn: asyncpg.Connection | None = None

    @property
    def conn(self) -> asyncpg.Connection:
        assert self._conn is not None
        return self._conn

    async def open(self) -> None:
        self._conn = await asyncpg.connect(self._dsn)

    async def close(self) -> None:
        if self._conn is not None:
            await self._conn.close()

    async def transaction(self, statements: Sequence[Statement]) -> None:
        async with self.conn.transaction():
            for statement in statements:
                sql, args = asyncpg_sql(statement)
                await self.conn.fetch(sql, *args)

    async def stream(self, sql: str) -> int:
        rows = 0
        async with self.conn.transaction():
            async for _ in self.conn.cursor(sql, prefetch=STREAM_BATCH_ROWS):
                rows += 1
        return rows


class PsycopgRunner:
    """One psycopg connection, used from Starlette's thread pool."""

    def __init__(self, dsn: str) -> None:
        self._dsn = dsn
        self._conn: psycopg.Connection[Any] | None = None

    @property
    def conn(self) -> psycopg.Connection[Any]:
        assert self._conn is not None
        return self._conn

    async def open(self) -> None:
        self._conn = psycopg.connect(self._dsn)  # the instrumented connect

    async def close(self) -> None:
        if self._conn is not None:
            self._conn.close()

    def _transaction(self, statements: Sequence[Statement]) -> None:
        with self.conn.transaction():
            for statement in statements:
                cursor = self.conn.execute(psycopg_sql(statement.sql), statement.params)
                if cursor.description is not None:
                    cursor.fetchall()

    def _stream(self, sql: str) -> int:
        with self.conn.transaction(), self.conn.cursor(name="stream_guests") as cursor:
            cursor.itersize = STREAM_BATCH_ROWS
            cursor.execute(sql)
            return sum(1 for _ in cursor)

    async def transaction(self, statements: Sequence[Statement]) -> None:
        await run_in_threadpool(self._transaction, statements)

    async def stream(self, sql: str) -> int:
        return await run_in_threadpool(self._stream, sql)


def runner_for(stack: Stack, databases: Databases) -> Runner:
    if stack.uses_sqlalchemy:
        url = databases.url(stack)
        return AsyncEngineRunner(url) if stack.is_async else SyncEngineRunner(url)
    if stack.driver is Driver.ASYNCPG:
        return AsyncpgRunner(databases.postgres_dsn)
    return PsycopgRunner(databases.postgres_dsn)


# --- instrumentation and the app ---------------------------------------------------------------


@contextlib.contextmanager
def instrumented(stack: Stack, mode: Instrumented, provider: TracerProvider) -> Iterator[None]:
    """``mode``'s instrumentations on, reporting to ``provider``, for the block only."""
    everything = (SQLAlchemyInstrumentor(), *(driver.instrumentor() for driver in Driver))
    left_on = [type(each).__name__ for each in everything if each.is_instrumented_by_opentelemetry]
    assert not left_on, f"left instrumented by another test: {left_on}"
    turned_on: list[BaseInstrumentor] = []
    try:
        if mode.sqlalchemy:
            SQLAlchemyInstrumentor().instrument(tracer_provider=provider, enable_commenter=False)
            turned_on.append(SQLAlchemyInstrumentor())
        if mode.driver:
            stack.driver.instrument(provider)
            turned_on.append(stack.driver.instrumentor())
        yield
    finally:
        for instrumentor in reversed(turned_on):
            instrumentor.uninstrument()


def app_for(runner: Runner, table: str, provider: TracerProvider) -> OpenTelemetryMiddleware:
    """``/rsvp`` (the four statements), ``/guests/repeat?times=N`` and ``/guests/stream``."""

    async def rsvp(request: Request) -> PlainTextResponse:
        await runner.transaction(rsvp_statements(table))
        return PlainTextResponse("ok")

    async def repeat(request: Request) -> PlainTextResponse:
        times = int(request.query_params["times"])
        await runner.transaction(repeated_statements(table, times))
        return PlainTextResponse("ok")

    async def stream(request: Request) -> PlainTextResponse:
        return PlainTextResponse(str(await runner.stream(stream_sql(table))))

    app = Starlette(
        routes=[
            Route("/rsvp", rsvp),
            Route("/guests/repeat", repeat),
            Route("/guests/stream", stream),
        ]
    )
    return OpenTelemetryMiddleware(app, tracer_provider=provider)


@dataclass(frozen=True, kw_only=True)
class Served:
    """The spans one measured request exported, and its response."""

    body: str
    spans: tuple[ReadableSpan, ...]

    @property
    def request(self) -> ReadableSpan:
        """The request's SERVER span, as the processor enriched it."""
        (server,) = [span for span in self.spans if span.kind is SpanKind.SERVER]
        return server

    @property
    def rollup(self) -> Mapping[str, Any]:
        return self.request.attributes or {}

    @property
    def queries(self) -> object:
        return self.rollup.get(attr.ROLLUP_DB_QUERIES)

    @property
    def control_operations(self) -> object:
        return self.rollup.get(CONTROL_OPERATIONS)

    @property
    def request_ms(self) -> float:
        return _duration_ns(self.request) / 1e6

    def db_spans(self) -> list[ReadableSpan]:
        """The database spans in the request's trace (orphans elsewhere are not)."""
        trace_id = self.request.context.trace_id
        return [
            span
            for span in self.spans
            if span.context.trace_id == trace_id
            and ("db.system" in (attrs := span.attributes or {}) or "db.system.name" in attrs)
        ]

    def db_wall_ms(self) -> float:
        """Wall time with at least one of the request's database spans open (overlaps once)."""
        intervals = sorted(
            (span.start_time, span.end_time)
            for span in self.db_spans()
            if span.start_time is not None and span.end_time is not None
        )
        covered_ns = 0
        reached = None
        for start, end in intervals:
            begin = start if reached is None else max(start, reached)
            if end > begin:
                covered_ns += end - begin
            reached = end if reached is None else max(reached, end)
        return covered_ns / 1e6


def _duration_ns(span: ReadableSpan) -> int:
    assert span.start_time is not None
    assert span.end_time is not None
    return span.end_time - span.start_time


def serve(
    stack: Stack,
    mode: Instrumented,
    pipeline: Pipeline,
    databases: Databases,
    path: str,
    *,
    warm: bool = True,
) -> Served:
    """Send one request for ``path`` to ``stack``'s app under ``mode``; what it exported.

    With ``warm``, one ``/rsvp`` request first fills the pool: the dialect's
    first-connect set-up statements (``select pg_catalog.version()``, ``show
    standard_conforming_strings``, ``PRAGMA read_uncommitted``...) run only on a
    new connection. With only the driver instrumented they are real round trips
    under the request, seen as queries; warming up keeps them out of the
    measured request.
    """
    with instrumented(stack, mode, pipeline.provider):
        return asyncio.run(_serve(stack, pipeline, databases, path, warm=warm))


async def _serve(
    stack: Stack, pipeline: Pipeline, databases: Databases, path: str, *, warm: bool
) -> Served:
    runner = runner_for(stack, databases)  # inside the loop: asyncpg and async engines bind to it
    await runner.open()
    try:
        transport = httpx.ASGITransport(app=app_for(runner, databases.table, pipeline.provider))
        async with httpx.AsyncClient(transport=transport, base_url="http://wedsync.test") as client:
            if warm:
                (await client.get("/rsvp")).raise_for_status()
            pipeline.exporter.clear()
            response = await client.get(path)
            response.raise_for_status()
            spans = pipeline.spans()  # before closing: what the request made, nothing else
    finally:
        await runner.close()
    return Served(body=response.text, spans=spans)
