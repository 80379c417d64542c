"""Each statement counted once, whatever instrumentations are stacked (`wedsync_otel.rollup`).

The span shapes here are those the contrib SQLAlchemy, asyncpg, psycopg and
sqlite3 instrumentations produce (tests/test_db_stacks.py runs the real ones
against real servers): SQLAlchemy's statement span is a sibling of the
driver's, around it in time; its ``connect`` span is the parent of the
driver's set-up statements; asyncpg names each cursor batch ``CURSOR: ...``.
"""

from __future__ import annotations

from typing import Any

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.trace import SpanKind

from helpers import Pipeline
from wedsync_otel import attributes as attr
from wedsync_otel.instrumentation.queries import statement_kind
from wedsync_otel.rollup import RECENT_WORK, DbWork, RequestTotals, RollupStore, WorkKind

SQLALCHEMY = "opentelemetry.instrumentation.sqlalchemy"
ASYNCPG = "opentelemetry.instrumentation.asyncpg"
MS = 1_000_000


def work(
    *,
    start_ms: float,
    end_ms: float,
    span_id: int,
    parent_id: int = 1,
    scope: str = ASYNCPG,
    fingerprint: str = "f1",
    kind: WorkKind = WorkKind.QUERY,
) -> DbWork:
    return DbWork(
        fingerprint,
        "SELECT ? FROM t",
        int(start_ms * MS),
        int(end_ms * MS),
        span_id,
        parent_id,
        scope,
        kind,
        slow=False,
    )


def settled(*items: DbWork) -> RequestTotals:
    totals = RequestTotals(created_s=0.0)
    for item in items:
        totals.add(item)
    totals.settle()
    return totals


@pytest.mark.parametrize(
    ("statement", "kind"),
    [
        ("", WorkKind.CONTROL),
        ("BEGIN", WorkKind.CONTROL),
        ("begin isolation level read committed;", WorkKind.CONTROL),
        ("COMMIT;", WorkKind.CONTROL),
        ("ROLLBACK", WorkKind.CONTROL),
        ("SAVEPOINT sa_savepoint_1", WorkKind.CONTROL),
        ("RELEASE SAVEPOINT sa_savepoint_1", WorkKind.CONTROL),
        ("START TRANSACTION", WorkKind.CONTROL),
        ("END", WorkKind.CONTROL),
        ("ABORT", WorkKind.CONTROL),
        ("SELECT ? FROM begin_log", WorkKind.QUERY),
        ("INSERT INTO commits VALUES (?)", WorkKind.QUERY),
        ("select pg_catalog.version()", WorkKind.QUERY),
    ],
)
def test_statement_kind_tells_transaction_control_from_queries(
    statement: str, kind: WorkKind
) -> None:
    """Transaction control and a span without a statement are control, anything else a query."""
    assert statement_kind(statement) is kind


def test_statement_span_around_the_drivers_is_counted_once() -> None:
    """SQLAlchemy's sibling span around asyncpg's same statement is the same query."""
    totals = settled(
        work(start_ms=1, end_ms=4, span_id=3),
        work(start_ms=0, end_ms=5, span_id=2, scope=SQLALCHEMY),
    )
    assert (totals.db_queries, totals.db_repeats, totals.db_ms) == (1, 1, 5.0)
    assert totals.fingerprints == {"f1": 1}


def test_connect_takes_the_drivers_set_up_statements_as_one_control_operation() -> None:
    """The dialect's set-up queries under SQLAlchemy's connect span are that connect's work."""
    connect = work(
        start_ms=0, end_ms=10, span_id=2, scope=SQLALCHEMY, fingerprint="", kind=WorkKind.CONTROL
    )
    set_up = [
        work(start_ms=1 + n, end_ms=1.5 + n, span_id=10 + n, parent_id=2, fingerprint=f"s{n}")
        for n in range(4)
    ]
    totals = settled(*set_up, connect)
    assert (totals.db_queries, totals.db_control, totals.db_ms) == (0, 1, 10.0)


def test_concurrent_queries_of_one_scope_both_count_and_their_time_overlaps_once() -> None:
    """Two same-scope queries in flight together are two queries, and DB time is wall time."""
    totals = settled(
        work(start_ms=1, end_ms=3, span_id=3, parent_id=1),
        work(start_ms=0, end_ms=4, span_id=2, parent_id=1),
    )
    assert (totals.db_queries, totals.db_repeats) == (2, 0)
    assert totals.db_ms == pytest.approx(4.0)


def test_a_different_statement_inside_another_scopes_span_is_counted() -> None:
    """Only the same statement repeats: another one running meanwhile is other work."""
    totals = settled(
        work(start_ms=1, end_ms=2, span_id=3, fingerprint="other"),
        work(start_ms=0, end_ms=5, span_id=2, scope=SQLALCHEMY),
    )
    assert totals.db_queries == 2


def test_cursor_batches_of_one_cursor_are_one_query_with_all_their_time() -> None:
    """asyncpg's CURSOR batch spans after a BEGIN count once; their gaps are not DB time."""
    begin = work(start_ms=0, end_ms=1, span_id=2, fingerprint="b", kind=WorkKind.CONTROL)
    batches = [
        work(start_ms=2 + 3 * n, end_ms=3 + 3 * n, span_id=10 + n, kind=WorkKind.FETCH)
        for n in range(5)
    ]
    totals = settled(begin, *batches)
    assert (totals.db_queries, totals.db_control) == (1, 1)
    assert totals.db_ms == pytest.approx(1.0 + 5 * 1.0)


def test_a_streamed_statement_and_its_cursor_batches_are_one_query() -> None:
    """SQLAlchemy's stream: its statement span, then the cursor's batches, one query."""
    statement = work(start_ms=0, end_ms=1, span_id=2, scope=SQLALCHEMY)
    batches = [
        work(start_ms=2 + n, end_ms=2.5 + n, span_id=10 + n, kind=WorkKind.FETCH) for n in range(3)
    ]
    assert settled(statement, *batches).db_queries == 1


def test_cursors_separated_by_other_work_are_separate_queries() -> None:
    """A new transaction between two cursors of one shape makes them two queries."""
    items = []
    for n in range(3):
        base = 10 * n
        items += [
            work(start_ms=base, end_ms=base + 1, span_id=100 + n, kind=WorkKind.CONTROL),
            work(start_ms=base + 2, end_ms=base + 3, span_id=200 + n, kind=WorkKind.FETCH),
            work(start_ms=base + 4, end_ms=base + 5, span_id=300 + n, kind=WorkKind.FETCH),
        ]
    totals = settled(*items)
    assert (totals.db_queries, totals.db_control) == (3, 3)
    assert totals.fingerprints == {"f1": 3}


def test_a_loop_of_stacked_statements_counts_each_run_once() -> None:
    """N runs of one shape under two instrumentations are N queries: N+1 sees the real loop."""
    items = []
    for n in range(RECENT_WORK * 3):  # more than stay open to matching
        base = 10 * n
        items += [
            work(start_ms=base + 1, end_ms=base + 2, span_id=1000 + n),
            work(start_ms=base, end_ms=base + 3, span_id=5000 + n, scope=SQLALCHEMY),
        ]
    totals = settled(*items)
    assert totals.db_queries == RECENT_WORK * 3
    assert totals.fingerprints == {"f1": RECENT_WORK * 3}
    assert totals.db_repeats == RECENT_WORK * 3


def test_observers_get_counted_queries_only_when_asked() -> None:
    """The store keeps the counted queries for observers only when one is registered."""
    store = RollupStore()
    store.add_db_work(7, work(start_ms=0, end_ms=1, span_id=2))
    quiet = store.pop(7)
    store.keep_counted = True
    store.add_db_work(8, work(start_ms=1, end_ms=2, span_id=3))
    store.add_db_work(8, work(start_ms=0, end_ms=3, span_id=4, scope=SQLALCHEMY))
    observed = store.pop(8)
    assert quiet is not None
    assert quiet.counted is None
    assert observed is not None
    assert observed.counted is not None
    assert [item.span_id for item in observed.counted] == [4]
    assert store.repeats == 1


# Through the processor, with SDK spans shaped as the contrib instrumentations make them.


def _client(tracer: trace.Tracer, name: str, statement: str | None, **times: int) -> Any:
    attributes: dict[str, Any] = {"db.system": "postgresql"}
    if statement is not None:
        attributes["db.statement"] = statement
    return tracer.start_span(name, kind=SpanKind.CLIENT, attributes=attributes, **times)


def _request(pipeline: Pipeline) -> ReadableSpan:
    return next(
        span for span in pipeline.spans() if attr.WEDDING_ENDPOINT in (span.attributes or {})
    )


def test_processor_counts_a_sqlalchemy_and_asyncpg_stack_once(pipeline: Pipeline) -> None:
    """connect, BEGIN, 4 statements twice each and COMMIT: 4 queries and 3 control operations."""
    sqlalchemy = pipeline.provider.get_tracer(SQLALCHEMY)
    asyncpg = pipeline.provider.get_tracer(ASYNCPG)
    statements = [
        "SELECT id FROM articles WHERE slug = $1",
        "INSERT INTO articles (slug) VALUES ($1)",
        "UPDATE articles SET body = $1 WHERE id = $2",
        "SELECT count(*) FROM articles",
    ]
    clock = [1_000 * MS]

    def tick() -> int:
        clock[0] += MS
        return clock[0]

    with pipeline.tracer.start_as_current_span(
        "GET /api/payments/charge",
        kind=SpanKind.SERVER,
        attributes={"http.route": "/api/payments/charge"},
        start_time=tick(),
    ) as request:
        connect = _client(sqlalchemy, "connect", None, start_time=tick())
        with trace.use_span(connect, end_on_exit=False):
            _client(asyncpg, "SELECT", "select pg_catalog.version()", start_time=tick()).end(
                end_time=tick()
            )
        connect.end(end_time=tick())
        _client(asyncpg, "BEGIN", "BEGIN;", start_time=tick()).end(end_time=tick())
        for statement in statements:
            outer = _client(sqlalchemy, statement.split()[0], statement, start_time=tick())
            _client(asyncpg, statement.split()[0], statement, start_time=tick()).end(
                end_time=tick()
            )
            outer.end(end_time=tick())
        _client(asyncpg, "COMMIT", "COMMIT;", start_time=tick()).end(end_time=tick())
        request_end = tick()
    request.end(end_time=request_end)
    attributes = _request(pipeline).attributes or {}
    assert attributes[attr.ROLLUP_DB_QUERIES] == 4
    assert attributes[attr.ROLLUP_DB_CONTROL] == 3
    assert attr.DB_N_PLUS_ONE not in attributes
    assert attributes[attr.ROLLUP_DB_DURATION_MS] <= attributes[attr.WEDDING_DURATION_MS]


def test_a_database_span_with_no_request_is_not_judged_as_one(pipeline: Pipeline) -> None:
    """A query a worker thread ran without context (aiosqlite's thread) is rewritten, not judged."""
    tracer = pipeline.provider.get_tracer("opentelemetry.instrumentation.sqlite3")
    tracer.start_span(
        "SELECT",
        kind=SpanKind.CLIENT,
        attributes={"db.system": "sqlite", "db.statement": "SELECT * FROM t WHERE a = 'x@y.z'"},
    ).end()
    (span,) = pipeline.spans()
    attributes = span.attributes or {}
    assert attr.WEDDING_ENDPOINT not in attributes
    assert attributes["db.statement"] == "SELECT * FROM t WHERE a = ?"
    assert attr.DB_FINGERPRINT in attributes
    assert len(pipeline.processor.rollup) == 0  # nothing waits for a request that never comes


def test_work_after_its_request_ended_is_counted_late_and_kept_nowhere(pipeline: Pipeline) -> None:
    """A ROLLBACK sent after the response (FastAPI's session clean-up) waits for no request."""
    asyncpg = pipeline.provider.get_tracer(ASYNCPG)
    with pipeline.tracer.start_as_current_span("GET /api/payments/charge", kind=SpanKind.SERVER):
        _client(asyncpg, "SELECT", "SELECT 1").end()
    request = trace.NonRecordingSpan(_request(pipeline).get_span_context())  # type: ignore[arg-type]
    with trace.use_span(request):
        _client(asyncpg, "ROLLBACK", "ROLLBACK;").end()
    assert len(pipeline.processor.rollup) == 0
    assert pipeline.processor.stats().late_child_work == 1


def test_a_connect_outside_any_request_leaves_nothing_waiting(pipeline: Pipeline) -> None:
    """A pool's first connect at start-up is a root: its set-up statements wait for nobody."""
    sqlalchemy = pipeline.provider.get_tracer(SQLALCHEMY)
    asyncpg = pipeline.provider.get_tracer(ASYNCPG)
    connect = _client(sqlalchemy, "connect", None)
    with trace.use_span(connect, end_on_exit=True):
        _client(asyncpg, "SELECT", "select pg_catalog.version()").end()
    assert len(pipeline.processor.rollup) == 0
    assert all(attr.WEDDING_ENDPOINT not in (span.attributes or {}) for span in pipeline.spans())


def test_repeated_spans_are_counted_in_the_stats(pipeline: Pipeline) -> None:
    """Spans that stood for another's work are counted, so stacked instrumentations show."""
    sqlalchemy = pipeline.provider.get_tracer(SQLALCHEMY)
    asyncpg = pipeline.provider.get_tracer(ASYNCPG)
    with pipeline.tracer.start_as_current_span("GET /api/payments/charge", kind=SpanKind.SERVER):
        outer = _client(sqlalchemy, "SELECT", "SELECT 1")
        _client(asyncpg, "SELECT", "SELECT 1").end()
        outer.end()
    assert pipeline.processor.stats().repeated_db_spans == 1
    assert (_request(pipeline).attributes or {})[attr.ROLLUP_DB_QUERIES] == 1


def test_db_time_stays_exact_past_the_kept_stretches() -> None:
    """Thousands of separate queries: every millisecond counted, memory bounded."""
    count = 3000
    totals = settled(
        *(
            work(start_ms=2 * n, end_ms=2 * n + 1, span_id=10 + n, fingerprint=f"q{n % 7}")
            for n in range(count)
        )
    )
    assert totals.db_ms == pytest.approx(float(count))
    assert totals.db_queries == count
    assert len(totals.busy_starts) == len(totals.busy_ends) <= 1024
