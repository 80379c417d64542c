"""Cache and database work rolled up onto the request span, with real SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import contextvars
import sqlite3
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import psycopg
import pytest
import redis
from opentelemetry import trace
from opentelemetry.instrumentation.psycopg import PsycopgInstrumentor
from opentelemetry.instrumentation.sqlite3 import SQLite3Instrumentor
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.trace import SpanKind

from helpers import Pipeline
from wedsync_otel import WeddingConfig
from wedsync_otel import attributes as attr
from wedsync_otel.instrumentation.fingerprint import fingerprint
from wedsync_otel.instrumentation.redis_hooks import instrument_redis, uninstrument_redis
from wedsync_otel.rollup import RollupStore

SECRETS = ("alice@example.com", "Ada Lovelace", "4242424242424242")
WAIT_S = 30.0
"""The longest a thread is waited for: a regression fails the test instead of hanging it."""


@pytest.fixture
def traced(make_pipeline: Callable[..., Pipeline]) -> Iterator[Pipeline]:
    """A pipeline whose provider the contrib sqlite3 and psycopg instrumentations report to."""
    pipeline = make_pipeline(WeddingConfig(slow_query_ms=50))
    SQLite3Instrumentor().instrument(tracer_provider=pipeline.provider)
    PsycopgInstrumentor().instrument(tracer_provider=pipeline.provider, enable_commenter=False)
    yield pipeline
    SQLite3Instrumentor().uninstrument()
    PsycopgInstrumentor().uninstrument()


@pytest.fixture
def guests_db(traced: Pipeline) -> Iterator[sqlite3.Connection]:
    connection = sqlite3.connect(":memory:", check_same_thread=False)
    connection.execute(
        "CREATE TABLE guests (id INTEGER PRIMARY KEY, wedding_id INT, email TEXT, name TEXT)"
    )
    connection.executemany(
        "INSERT INTO guests (wedding_id, email, name) VALUES (?, ?, ?)",
        [(n % 10, f"guest{n}@example.com", f"Guest {n}") for n in range(100)],
    )
    traced.exporter.clear()
    yield connection
    connection.close()


def run(connection: sqlite3.Connection, sql: str, params: tuple[Any, ...] = ()) -> None:
    """Run a query through a cursor: the contrib traces cursors, not Connection.execute."""
    connection.cursor().execute(sql, params).fetchall()


def request_span(pipeline: Pipeline) -> ReadableSpan:
    return pipeline.only_span("request")


def db_spans(pipeline: Pipeline) -> list[ReadableSpan]:
    return [
        s
        for s in pipeline.spans()
        if "db.system" in (s.attributes or {}) or "db.system.name" in (s.attributes or {})
    ]


def duration_ms(span: ReadableSpan) -> float:
    assert span.start_time is not None
    assert span.end_time is not None
    return (span.end_time - span.start_time) / 1e6


def serve(pipeline: Pipeline, work: Callable[[], object]) -> ReadableSpan:
    with pipeline.tracer.start_as_current_span(
        "request", kind=SpanKind.SERVER, attributes={"http.route": "/api/rsvp"}
    ):
        work()
    return request_span(pipeline)


def test_db_totals_equal_the_sums_over_child_spans(
    traced: Pipeline, guests_db: sqlite3.Connection
) -> None:
    """wedding.db.queries and .duration_ms are the count and sum of the request's DB spans."""

    def work() -> None:
        for wedding in range(3):
            run(guests_db, "SELECT * FROM guests WHERE wedding_id = ?", (wedding,))
        run(guests_db, "SELECT count(*) FROM guests")

    root = serve(traced, work).attributes or {}
    children = db_spans(traced)
    assert len(children) == 4
    assert root[attr.ROLLUP_DB_QUERIES] == 4
    assert root[attr.ROLLUP_DB_DURATION_MS] == pytest.approx(sum(duration_ms(s) for s in children))
    assert root[attr.ROLLUP_APP_DURATION_MS] == pytest.approx(
        duration_ms(request_span(traced)) - root[attr.ROLLUP_DB_DURATION_MS]
    )
    assert attr.ROLLUP_CACHE_HITS not in root  # no cache work in this app: no cache zeros


def test_no_literal_reaches_the_exporter(traced: Pipeline, guests_db: sqlite3.Connection) -> None:
    """Emails, names and card numbers in query text never appear in any exported attribute."""

    def work() -> None:
        run(
            guests_db, f"SELECT * FROM guests WHERE email = '{SECRETS[0]}' OR name = '{SECRETS[1]}'"
        )
        run(guests_db, f"SELECT * FROM guests WHERE id IN (1, 2, {SECRETS[2]})")

    serve(traced, work)
    (first, second) = db_spans(traced)
    statements = [(span.attributes or {})["db.statement"] for span in (first, second)]
    assert statements == [
        "SELECT * FROM guests WHERE email = ? OR name = ?",
        "SELECT * FROM guests WHERE id IN (?, ?, ?)",  # the conventions keep one ? per literal
    ]
    for span in traced.spans():
        values = [str(v) for v in (span.attributes or {}).values()]
        values += [str(v) for event in span.events for v in (event.attributes or {}).values()]
        for secret in SECRETS:
            assert not any(secret in value for value in values), (span.name, secret)


def test_same_shape_gives_the_same_fingerprint(
    traced: Pipeline, guests_db: sqlite3.Connection
) -> None:
    """Two queries differing only in literals and spacing share a fingerprint."""

    def work() -> None:
        run(guests_db, "SELECT * FROM guests WHERE wedding_id = 1")
        run(guests_db, "select *   from guests where wedding_id=2")

    serve(traced, work)
    fingerprints = {(s.attributes or {})[attr.DB_FINGERPRINT] for s in db_spans(traced)}
    assert fingerprints == {fingerprint("SELECT * FROM guests WHERE wedding_id = 3")}


@pytest.mark.parametrize(("repeats", "flagged"), [(5, False), (6, True)])
def test_n_plus_one_is_reported_past_the_limit(
    traced: Pipeline, guests_db: sqlite3.Connection, repeats: int, flagged: bool
) -> None:
    """The same shape run more than five times under one request is an N+1, with an event."""

    def work() -> None:
        for guest in range(repeats):
            run(guests_db, "SELECT name FROM guests WHERE id = ?", (guest,))

    root = serve(traced, work)
    expected = fingerprint("SELECT name FROM guests WHERE id = ?")
    assert ((root.attributes or {}).get(attr.DB_N_PLUS_ONE) == expected) is flagged
    events = [e for e in root.events if e.name == attr.DB_N_PLUS_ONE]
    assert len(events) == int(flagged)
    if flagged:
        assert (events[0].attributes or {})["db.query.count"] == repeats
        assert (events[0].attributes or {})[
            "db.query.text"
        ] == "SELECT name FROM guests WHERE id = ?"


def test_a_slow_postgresql_query_is_flagged_and_counted(
    traced: Pipeline, postgres_dsn: str
) -> None:
    """A real PostgreSQL query over the 50 ms threshold carries db.query.slow and is counted.

    pg_sleep(0.08) cannot take less than 80 ms, however busy the machine; how a
    fast query is judged is tested on exact span times below.
    """
    with psycopg.connect(postgres_dsn, autocommit=True) as connection:
        traced.exporter.clear()
        root = serve(traced, lambda: connection.execute("SELECT pg_sleep(0.08)")).attributes or {}
    (span,) = db_spans(traced)
    assert (span.attributes or {})["db.statement"] == "SELECT pg_sleep(?)"
    assert (span.attributes or {})[attr.DB_QUERY_SLOW] is True
    assert root[attr.ROLLUP_DB_SLOW_QUERIES] == 1
    assert root[attr.ROLLUP_DB_QUERIES] == 1


QUERY_START_NS = 1_750_000_000_000_000_000
"""An instant to start the queries of the threshold test at; their end times are set from it."""


def test_only_queries_over_the_threshold_are_slow(traced: Pipeline) -> None:
    """With a 50 ms threshold, queries of 49 ms and exactly 50 ms are not slow; 50.001 ms is."""
    durations_ns = {"SELECT 49": 49_000_000, "SELECT 50": 50_000_000, "SELECT 51": 50_001_000}

    def work() -> None:
        for statement, took_ns in durations_ns.items():
            query = traced.tracer.start_span(
                "SELECT",
                kind=SpanKind.CLIENT,
                attributes={"db.system.name": "postgresql", "db.query.text": statement},
                start_time=QUERY_START_NS,
            )
            query.end(end_time=QUERY_START_NS + took_ns)

    root = serve(traced, work).attributes or {}
    slow = [(s.attributes or {})[attr.DB_QUERY_SLOW] for s in db_spans(traced)]
    assert slow == [False, False, True]
    assert root[attr.ROLLUP_DB_SLOW_QUERIES] == 1
    assert root[attr.ROLLUP_DB_QUERIES] == 3


def test_queries_in_threads_and_asyncio_tasks_count_for_their_request(
    traced: Pipeline, guests_db: sqlite3.Connection
) -> None:
    """Queries in a thread carrying the context and in asyncio.gather tasks roll up."""
    lock = threading.Lock()

    def query() -> None:
        with lock:  # one sqlite connection: serialise, the context is what is under test
            run(guests_db, "SELECT * FROM guests WHERE wedding_id = 1")

    async def gathered() -> None:
        await asyncio.gather(*(asyncio.to_thread(query) for _ in range(3)))

    def work() -> None:
        with ThreadPoolExecutor(2) as pool:
            pool.submit(contextvars.copy_context().run, query).result()
        asyncio.run(gathered())

    root = serve(traced, work).attributes or {}
    assert root[attr.ROLLUP_DB_QUERIES] == 4


def test_concurrent_requests_never_mix(traced: Pipeline, guests_db: sqlite3.Connection) -> None:
    """Requests served at once on two threads each get only their own queries."""
    lock = threading.Lock()
    barrier = threading.Barrier(2, timeout=WAIT_S)

    def handle(name: str, queries: int) -> None:
        with traced.tracer.start_as_current_span(
            name, kind=SpanKind.SERVER, attributes={"http.route": "/api/rsvp"}
        ):
            barrier.wait()
            for _ in range(queries):
                with lock:
                    run(guests_db, "SELECT 1")

    threads = [threading.Thread(target=handle, args=(f"r{n}", n)) for n in (2, 7)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(WAIT_S)
        assert not thread.is_alive()
    assert (traced.only_span("r2").attributes or {})[attr.ROLLUP_DB_QUERIES] == 2
    assert (traced.only_span("r7").attributes or {})[attr.ROLLUP_DB_QUERIES] == 7


def _client_span(pipeline: Pipeline, name: str, attributes: dict[str, Any]) -> None:
    pipeline.tracer.start_span(name, kind=SpanKind.CLIENT, attributes=attributes).end()


def test_cache_spans_roll_up_as_hits_misses_and_time(traced: Pipeline) -> None:
    """Single-key hits and misses and multi-key counts add up on the request span."""

    def work() -> None:
        _client_span(
            traced, "GET", {"db.system": "redis", attr.CACHE_BACKEND: "redis", attr.CACHE_HIT: True}
        )
        _client_span(
            traced,
            "GET",
            {"db.system": "redis", attr.CACHE_BACKEND: "redis", attr.CACHE_HIT: False},
        )
        _client_span(
            traced,
            "MGET",
            {
                "db.system": "redis",
                attr.CACHE_BACKEND: "redis",
                attr.CACHE_HITS: 3,
                attr.CACHE_MISSES: 2,
            },
        )
        _client_span(traced, "cache GET", {attr.CACHE_BACKEND: "memory", attr.CACHE_HIT: True})

    root = serve(traced, work).attributes or {}
    cache_spans = [s for s in traced.spans() if attr.CACHE_BACKEND in (s.attributes or {})]
    assert (root[attr.ROLLUP_CACHE_HITS], root[attr.ROLLUP_CACHE_MISSES]) == (5, 3)
    assert root[attr.ROLLUP_CACHE_DURATION_MS] == pytest.approx(
        sum(duration_ms(s) for s in cache_spans)
    )
    assert attr.ROLLUP_DB_QUERIES not in root  # redis spans are cache work, not queries


def test_stable_database_conventions_are_rewritten_too(traced: Pipeline) -> None:
    """A span with db.system.name and db.query.text is fingerprinted and sanitised alike."""

    def work() -> None:
        _client_span(
            traced,
            "SELECT",
            {
                "db.system.name": "postgresql",
                "db.query.text": f"SELECT 1 FROM t WHERE email = '{SECRETS[0]}'",
            },
        )

    root = serve(traced, work).attributes or {}
    (span,) = db_spans(traced)
    assert (span.attributes or {})["db.query.text"] == "SELECT ? FROM t WHERE email = ?"
    assert root[attr.ROLLUP_DB_QUERIES] == 1


def test_totals_of_requests_that_never_end_are_evicted_and_counted() -> None:
    """Totals older than the timeout go when new requests arrive; the store stays bounded."""
    now = [0.0]
    store = RollupStore(max_requests=3, timeout_s=300, monotonic=lambda: now[0])
    store.add_cache(1, hits=1, misses=0, duration_ms=1)
    now[0] = 301.0
    store.add_cache(2, hits=1, misses=0, duration_ms=1)
    assert store.pop(1) is None
    assert store.timed_out == 1
    for trace_id in range(3, 8):
        store.add_cache(trace_id, hits=1, misses=0, duration_ms=1)
    assert len(store) == 3
    assert store.overflowed == 3


def test_processor_counts_requests_whose_span_never_ended(
    make_pipeline: Callable[..., Pipeline],
) -> None:
    """A child DB span whose request never ends is evicted after the timeout and counted."""
    pipeline = make_pipeline(WeddingConfig(request_timeout_s=1e-9))
    root = pipeline.tracer.start_span("never-ends", kind=SpanKind.SERVER)
    with trace.use_span(root):
        _client_span(pipeline, "q1", {"db.system": "sqlite", "db.statement": "SELECT 1"})
    other = pipeline.tracer.start_span("other", kind=SpanKind.SERVER)
    with trace.use_span(other):
        _client_span(pipeline, "q2", {"db.system": "sqlite", "db.statement": "SELECT 1"})
    assert pipeline.processor.stats().requests_timed_out >= 1


def test_real_redis_reads_roll_up_onto_the_request(
    make_pipeline: Callable[..., Pipeline], redis_url: str
) -> None:
    """GET hits and misses and an MGET against a real Redis add up on the request span."""
    pipeline = make_pipeline()
    instrument_redis(tracer_provider=pipeline.provider)
    try:
        with redis.Redis.from_url(redis_url) as client:
            client.set("supplier:rollup-1", "x")
            pipeline.exporter.clear()

            def work() -> None:
                client.get("supplier:rollup-1")
                client.get("supplier:rollup-missing")
                client.mget("supplier:rollup-1", "supplier:rollup-2", "supplier:rollup-3")

            root = serve(pipeline, work).attributes or {}
            client.delete("supplier:rollup-1")
    finally:
        uninstrument_redis()
    assert (root[attr.ROLLUP_CACHE_HITS], root[attr.ROLLUP_CACHE_MISSES]) == (2, 3)
    trace_id = pipeline.only_span("request").context.trace_id  # type: ignore[union-attr]
    redis_spans = [
        s
        for s in pipeline.spans()
        if (s.attributes or {}).get("db.system") == "redis" and s.context.trace_id == trace_id  # type: ignore[union-attr]
    ]
    assert len(redis_spans) == 3
    assert root[attr.ROLLUP_CACHE_DURATION_MS] == pytest.approx(
        sum(duration_ms(s) for s in redis_spans)
    )
    for span in pipeline.spans():
        assert not any("rollup-1" in str(value) for value in (span.attributes or {}).values())


def test_raw_redis_search_text_is_redacted(traced: Pipeline) -> None:
    """The contrib's raw FT.SEARCH query text never leaves the process."""

    def work() -> None:
        _client_span(
            traced,
            "FT.SEARCH",
            {"db.system": "redis", attr.CACHE_BACKEND: "redis", "redis.search.query": SECRETS[0]},
        )

    serve(traced, work)
    (span,) = [s for s in traced.spans() if s.name == "FT.SEARCH"]
    assert (span.attributes or {})["redis.search.query"] == "?"
