"""Each statement is counted once whichever DB instrumentations are on (issue 16, point 1).

``opentelemetry-bootstrap`` installs SQLAlchemy's instrumentation and the
driver's: then one statement has two spans, and the pool's connect and the
driver's BEGIN/COMMIT have spans too. Every stack (`db_stack_apps.STACKS`)
runs under SQLAlchemy's instrumentation only, the driver's only, and both,
against real PostgreSQL and a SQLite file, through the contrib ASGI
middleware and `WeddingSpanProcessor`.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator

import pytest
from _pytest.mark import ParameterSet
from opentelemetry.sdk.trace import ReadableSpan

from db_stack_apps import (
    RSVP_STATEMENTS,
    STACKS,
    STREAM_ROWS,
    Databases,
    Driver,
    Instrumented,
    Served,
    Stack,
    create_tables,
    drop_tables,
    serve,
)
from helpers import Pipeline
from wedsync_otel import WeddingConfig
from wedsync_otel import attributes as attr

AIOSQLITE_THREAD = (
    "aiosqlite runs sqlite3 on its own worker thread without the caller's contextvars, so "
    "SQLite3Instrumentor's spans have no parent: each is the root of a trace of its own and "
    "none reaches the request (the SQLAlchemy spans do, when it is instrumented)"
)
PSYCOPG_NAMED_CURSOR = (
    "PsycopgInstrumentor does not trace server-side (named) cursors, which streaming uses: "
    "without SQLAlchemy's span the streamed query has no span at all"
)
SAME_SHAPE_RUNS = 3
"""Runs of one SELECT shape that stacked instrumentations used to count as six."""


def structural_gap(stack: Stack, mode: Instrumented, *, streamed: bool = False) -> str | None:
    """Why no counting can be right for ``stack`` under ``mode``: the spans are not there."""
    if stack.name == "sqlalchemy-async-aiosqlite" and mode is Instrumented.DRIVER:
        return AIOSQLITE_THREAD
    sqlalchemy_span = mode.sqlalchemy and stack.uses_sqlalchemy
    if streamed and stack.driver is Driver.PSYCOPG and not sqlalchemy_span:
        return PSYCOPG_NAMED_CURSOR
    return None


def combos(*, streamed: bool = False) -> list[ParameterSet]:
    """Every stack under each instrumentation choice that applies to it."""
    params = []
    for stack in STACKS:
        for mode in stack.modes:
            reason = structural_gap(stack, mode, streamed=streamed)
            marks = () if reason is None else (pytest.mark.xfail(strict=True, reason=reason),)
            params.append(pytest.param(stack, mode, id=f"{stack.name}-{mode.value}", marks=marks))
    return params


COMBOS = combos()
STREAMED = combos(streamed=True)
COLD = [
    pytest.param(stack, mode, id=f"{stack.name}-{mode.value}")
    for stack in STACKS
    if stack.uses_sqlalchemy
    for mode in (Instrumented.SQLALCHEMY, Instrumented.STACKED)
]


@pytest.fixture(scope="module")
def databases(postgres_dsn: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Databases]:
    """A table of guests of this module's own, in PostgreSQL and in a temp-file SQLite DB."""
    made = Databases(
        postgres_dsn=postgres_dsn,
        sqlite_path=tmp_path_factory.mktemp("db-stacks") / "guests.sqlite3",
        table=f"stack_guests_{uuid.uuid4().hex[:8]}",
    )
    create_tables(made)
    yield made
    drop_tables(made)


@pytest.fixture
def pipeline(make_pipeline: Callable[..., Pipeline]) -> Pipeline:
    return make_pipeline(WeddingConfig.default())


def statement(span: ReadableSpan) -> str:
    """The span's query text as exported (literals already replaced), or ''."""
    attrs = span.attributes or {}
    text = attrs.get("db.query.text", attrs.get("db.statement", ""))
    return text if isinstance(text, str) else ""


def observed(served: Served) -> str:
    """The roll-up and the DB spans, for an assertion message."""
    spans = ", ".join(
        f"{span.name}[{span.instrumentation_scope.name.rsplit('.', 1)[-1]}]"
        if span.instrumentation_scope
        else span.name
        for span in served.db_spans()
    )
    rollup = {key: value for key, value in served.rollup.items() if key.startswith("wedding.db.")}
    return f"rollup {rollup}; request {served.request_ms:.3f} ms; DB spans: {spans}"


@pytest.mark.parametrize(("stack", "mode"), COMBOS)
def test_each_statement_is_counted_once(
    stack: Stack, mode: Instrumented, pipeline: Pipeline, databases: Databases
) -> None:
    """The request span's wedding.db.queries is the four statements the app ran."""
    served = serve(stack, mode, pipeline, databases, "/rsvp")
    assert served.queries == RSVP_STATEMENTS, observed(served)


@pytest.mark.parametrize(("stack", "mode"), COMBOS)
def test_connects_and_transaction_control_are_control_operations(
    stack: Stack, mode: Instrumented, pipeline: Pipeline, databases: Databases
) -> None:
    """Connects and BEGIN/COMMIT go to wedding.db.control_operations, not wedding.db.queries."""
    served = serve(stack, mode, pipeline, databases, "/rsvp")
    expected = (RSVP_STATEMENTS, stack.control_operations(mode))
    assert (served.queries, served.control_operations) == expected, observed(served)


@pytest.mark.parametrize(("stack", "mode"), COMBOS)
def test_db_time_is_within_the_request(
    stack: Stack, mode: Instrumented, pipeline: Pipeline, databases: Databases
) -> None:
    """wedding.db.duration_ms is above zero and within the request and its DB spans' wall time."""
    served = serve(stack, mode, pipeline, databases, "/rsvp")
    db_ms = served.rollup.get(attr.ROLLUP_DB_DURATION_MS)
    bound_ms = min(served.request_ms, served.db_wall_ms())
    assert isinstance(db_ms, float), observed(served)
    assert 0 < db_ms <= bound_ms + 1e-6, f"DB wall time {served.db_wall_ms():.3f} ms; " + (
        observed(served)
    )


@pytest.mark.parametrize(("stack", "mode"), COMBOS)
def test_one_shape_run_three_times_is_no_n_plus_one(
    stack: Stack, mode: Instrumented, pipeline: Pipeline, databases: Databases
) -> None:
    """One SELECT shape run three times counts three and, below the N+1 limit, fires no N+1."""
    assert pipeline.processor.config.n_plus_one_limit > SAME_SHAPE_RUNS  # the default limit, 5
    served = serve(stack, mode, pipeline, databases, f"/guests/repeat?times={SAME_SHAPE_RUNS}")
    assert (served.queries, served.rollup.get(attr.DB_N_PLUS_ONE)) == (SAME_SHAPE_RUNS, None), (
        observed(served)
    )


@pytest.mark.parametrize(("stack", "mode"), COMBOS)
def test_a_real_loop_past_the_limit_fires_n_plus_one(
    stack: Stack, mode: Instrumented, pipeline: Pipeline, databases: Databases
) -> None:
    """One SELECT shape run limit + 1 times fires N+1 with that shape's fingerprint."""
    times = pipeline.processor.config.n_plus_one_limit + 1
    served = serve(stack, mode, pipeline, databases, f"/guests/repeat?times={times}")
    shapes = {
        (span.attributes or {}).get(attr.DB_FINGERPRINT)
        for span in served.db_spans()
        if statement(span).startswith("SELECT name FROM")
    }
    assert len(shapes) == 1, observed(served)  # every instrumentation's span: the one shape
    assert served.rollup.get(attr.DB_N_PLUS_ONE) == shapes.pop(), observed(served)


@pytest.mark.parametrize(("stack", "mode"), STREAMED)
def test_a_streamed_cursor_is_one_query(
    stack: Stack, mode: Instrumented, pipeline: Pipeline, databases: Databases
) -> None:
    """A query read through a streamed cursor, in batches, is one query."""
    served = serve(stack, mode, pipeline, databases, "/guests/stream")
    assert served.body == str(STREAM_ROWS)
    assert served.queries == 1, observed(served)


@pytest.mark.parametrize(("stack", "mode"), COLD)
def test_a_new_connections_set_up_is_not_counted_as_queries(
    stack: Stack, mode: Instrumented, pipeline: Pipeline, databases: Databases
) -> None:
    """On a cold pool, SQLAlchemy's connect and the dialect's set-up under it are no queries."""
    # Only the driver instrumented, the set-up statements are real round trips under the
    # request itself and are counted as queries; nothing then shows they belong to a connect.
    served = serve(stack, mode, pipeline, databases, "/rsvp", warm=False)
    assert served.queries == RSVP_STATEMENTS, observed(served)
