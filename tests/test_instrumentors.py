"""`wedsync_otel.instrument`: the contrib instrumentors by name, mistakes found at startup."""

from __future__ import annotations

import asyncio
from collections.abc import Collection, Iterator
from pathlib import Path
from typing import Any

import asyncpg
import pytest
import sqlalchemy
from opentelemetry.instrumentation.asyncpg import AsyncPGInstrumentor
from opentelemetry.instrumentation.instrumentor import BaseInstrumentor  # type: ignore[attr-defined]
from opentelemetry.instrumentation.sqlalchemy import SQLAlchemyInstrumentor
from opentelemetry.trace import SpanKind

from helpers import Pipeline
from wedsync_otel import attributes as attr
from wedsync_otel.instrumentation import instrumentors


class NeedsAFutureLibrary(BaseInstrumentor):  # type: ignore[misc]
    """A real BaseInstrumentor whose library version is not installed."""

    def instrumentation_dependencies(self) -> Collection[str]:
        return ["sqlalchemy >= 99"]

    def _instrument(self, **kwargs: Any) -> None:
        raise AssertionError("must not run: the dependency check refuses first")

    def _uninstrument(self, **kwargs: Any) -> None:
        pass


@pytest.fixture
def turned_on(pipeline: Pipeline) -> Iterator[Pipeline]:
    """The names a test turns on are turned off again, and forgotten."""
    yield pipeline
    for instrumentor in (SQLAlchemyInstrumentor(), AsyncPGInstrumentor()):
        if instrumentor.is_instrumented_by_opentelemetry:
            instrumentor.uninstrument()
    instrumentors._instrumented.difference_update({"sqlalchemy", "asyncpg"})


def test_an_unknown_name_lists_every_known_one() -> None:
    """A typo is a ValueError naming what exists, sqlalchemy and asyncpg included."""
    with pytest.raises(ValueError, match="asyncpg, psycopg, redis, sqlalchemy, sqlite3"):
        instrumentors.instrument("sqlalchemyy")


def test_an_unsupported_library_version_is_an_import_error_naming_the_extra(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The contrib instrumentor would log and trace nothing; we refuse at startup instead."""
    monkeypatch.setitem(
        instrumentors.INSTRUMENTATIONS,
        "future",
        ("sqlalchemy", instrumentors._contrib(__name__, "NeedsAFutureLibrary")),
    )
    with pytest.raises(ImportError, match=r"wedsync-otel\[sqlalchemy\].*sqlalchemy >= 99"):
        instrumentors.instrument("future")
    assert "future" not in instrumentors.instrumented()


def test_sqlalchemy_by_name_rolls_up_each_statement_once(
    turned_on: Pipeline, tmp_path: Path
) -> None:
    """instrument("sqlalchemy", "sqlite3"): two spans per statement, one query counted."""
    instrumentors.instrument("sqlalchemy", tracer_provider=turned_on.provider)
    instrumentors.instrument("sqlalchemy")  # idempotent
    engine = sqlalchemy.create_engine(f"sqlite:///{tmp_path / 'guests.db'}")
    with engine.begin() as connection:
        connection.exec_driver_sql("CREATE TABLE guests (id INTEGER PRIMARY KEY, email TEXT)")
    turned_on.exporter.clear()
    with (
        turned_on.tracer.start_as_current_span(
            "GET /api/rsvp", kind=SpanKind.SERVER, attributes={"http.route": "/api/rsvp"}
        ),
        engine.begin() as connection,
    ):
        connection.exec_driver_sql("INSERT INTO guests (email) VALUES ('ann@example.com')")
        connection.exec_driver_sql("SELECT count(*) FROM guests").scalar()
    engine.dispose()
    request = turned_on.only_span("GET /api/rsvp").attributes or {}
    assert request[attr.ROLLUP_DB_QUERIES] == 2
    assert request[attr.ROLLUP_DB_CONTROL] >= 1  # SQLAlchemy's connect
    exported = [span.attributes or {} for span in turned_on.spans()]
    assert not [a for a in exported if "ann@example.com" in str(a.get("db.statement", ""))]


def test_asyncpg_by_name_counts_transaction_control_apart(
    turned_on: Pipeline, postgres_dsn: str
) -> None:
    """instrument("asyncpg") against a real PostgreSQL: BEGIN and COMMIT are not queries."""
    instrumentors.instrument("asyncpg", tracer_provider=turned_on.provider)

    async def request() -> None:
        connection = await asyncpg.connect(postgres_dsn)
        try:
            with turned_on.tracer.start_as_current_span(
                "GET /api/rsvp", kind=SpanKind.SERVER, attributes={"http.route": "/api/rsvp"}
            ):
                async with connection.transaction():
                    await connection.fetchval("SELECT $1::int + 1", 41)
                    await connection.fetchval("SELECT 'guest@example.com'")
        finally:
            await connection.close()

    asyncio.run(request())
    attributes = turned_on.only_span("GET /api/rsvp").attributes or {}
    assert (attributes[attr.ROLLUP_DB_QUERIES], attributes[attr.ROLLUP_DB_CONTROL]) == (2, 2)
