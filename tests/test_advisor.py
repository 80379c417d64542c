"""QueryAdvisor: index advice from real PostgreSQL and SQLite plans, batching advice, bounds."""

from __future__ import annotations

import re
import sqlite3
import threading
import uuid
from collections.abc import Callable, Iterator
from contextlib import closing
from pathlib import Path
from typing import Any

import psycopg
import pytest
from hypothesis import given
from hypothesis import strategies as st
from opentelemetry import context as otel_context
from opentelemetry.context import _SUPPRESS_INSTRUMENTATION_KEY

from wedsync_otel.db import QueryAdvisor, Recommendation
from wedsync_otel.db.advisor import explain_postgres, filter_columns, number_placeholders
from wedsync_otel.errors import ConfigError
from wedsync_otel.instrumentation.fingerprint import fingerprint, sanitize

ROWS = 100_000
WAIT_S = 10.0
SLOW_MS = 120.0


class CountingConnect:
    """A connect factory that records which thread called it and whether tracing was off."""

    def __init__(self, connect: Callable[[], Any]) -> None:
        self._connect = connect
        self.threads: list[threading.Thread] = []
        self.suppressed: list[bool] = []

    def __call__(self) -> Any:
        self.threads.append(threading.current_thread())
        self.suppressed.append(otel_context.get_value(_SUPPRESS_INSTRUMENTATION_KEY) is True)
        return self._connect()


def observe(advisor: QueryAdvisor, raw: str, *, runs: int = 5, ms: float = SLOW_MS) -> str:
    """Feed ``runs`` observations of ``raw`` as the span processor would; return its fingerprint."""
    shape = fingerprint(raw)
    for _ in range(runs):
        advisor.observe(fingerprint=shape, statement=sanitize(raw), duration_ms=ms)
    return shape


def index_advice(advisor: QueryAdvisor) -> list[Recommendation]:
    return [rec for rec in advisor.recommendations() if rec.kind == "index"]


@pytest.fixture
def make_advisor() -> Iterator[Callable[..., QueryAdvisor]]:
    made: list[QueryAdvisor] = []

    def make(connect: Callable[[], Any], **settings: Any) -> QueryAdvisor:
        advisor = QueryAdvisor(connect, **settings)
        made.append(advisor)
        return advisor

    yield make
    for advisor in made:
        advisor.close()


@pytest.fixture
def pg_connect(postgres_dsn: str) -> CountingConnect:
    return CountingConnect(lambda: psycopg.connect(postgres_dsn))


@pytest.fixture
def guests(postgres_dsn: str) -> Iterator[str]:
    """A uniquely named, analysed PostgreSQL table of 100,000 guests over 1,000 weddings."""
    table = f"guests_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(postgres_dsn, autocommit=True) as conn:
        conn.execute(f"CREATE TABLE {table} (wedding_id int, email text, name text)")
        conn.execute(
            f"INSERT INTO {table} SELECT i % 1000, 'guest' || i || '@example.com', 'Guest ' || i"
            f" FROM generate_series(1, {ROWS}) AS i"
        )
        conn.execute(f"ANALYZE {table}")
    yield table
    with psycopg.connect(postgres_dsn, autocommit=True) as conn:
        conn.execute(f"DROP TABLE IF EXISTS {table}")


def pg_count(dsn: str, table: str) -> int:
    with psycopg.connect(dsn) as conn:
        row = conn.execute(f"SELECT count(*) FROM {table}").fetchone()
    assert row is not None
    return int(row[0])


@pytest.fixture
def sqlite_path(tmp_path: Path) -> Path:
    """A SQLite file holding a ``guests`` table of 100,000 rows."""
    path = tmp_path / "wedsync.db"
    with closing(sqlite3.connect(path)) as conn:
        conn.execute("CREATE TABLE guests (id INTEGER PRIMARY KEY, wedding_id int, email text)")
        conn.execute(
            "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < ?)"
            " INSERT INTO guests (wedding_id, email) SELECT i % 1000, 'g' || i FROM n",
            (ROWS,),
        )
        conn.commit()
    return path


def sqlite_read_only(path: Path) -> CountingConnect:
    return CountingConnect(lambda: sqlite3.connect(f"file:{path}?mode=ro", uri=True))


# --- PostgreSQL ---------------------------------------------------------------------------


def test_postgres_seq_scan_on_large_table_gets_index_advice(
    make_advisor: Callable[..., QueryAdvisor], pg_connect: CountingConnect, guests: str
) -> None:
    """A slow lookup by wedding_id on 100,000 unindexed rows is advised an index on wedding_id."""
    advisor = make_advisor(pg_connect, system="postgresql")
    shape = observe(advisor, f"SELECT name, email FROM {guests} WHERE wedding_id = 42")
    assert advisor.wait_idle(WAIT_S)
    [rec] = index_advice(advisor)
    assert (rec.fingerprint, rec.table, rec.columns) == (shape, guests, ("wedding_id",))
    assert rec.advice == f"CREATE INDEX ON {guests} (wedding_id)"
    assert rec.statement == f"SELECT name, email FROM {guests} WHERE wedding_id = ?"
    assert re.fullmatch(
        rf"Seq Scan on {guests} \(~\d+ rows\) with Filter \(wedding_id = \$1\), "
        r"p95 120 ms over 5 runs",
        rec.evidence,
    )


def test_postgres_no_index_advice_once_the_index_exists(
    make_advisor: Callable[..., QueryAdvisor],
    pg_connect: CountingConnect,
    postgres_dsn: str,
    guests: str,
) -> None:
    """After running the advice, a fresh advisor explains the same query and advises nothing."""
    raw = f"SELECT name FROM {guests} WHERE wedding_id = 7"
    first = make_advisor(pg_connect, system="postgresql")
    observe(first, raw)
    assert first.wait_idle(WAIT_S)
    [rec] = index_advice(first)
    with psycopg.connect(postgres_dsn, autocommit=True) as conn:
        conn.execute(rec.advice)
        conn.execute(f"ANALYZE {guests}")
    fresh = make_advisor(pg_connect, system="postgresql")
    observe(fresh, raw)
    assert fresh.wait_idle(WAIT_S)
    assert fresh.stats.explained == 1
    assert index_advice(fresh) == []


@pytest.mark.parametrize("autocommit", [False, True])
def test_postgres_before_16_path_gives_the_generic_plan_and_cleans_up(
    postgres_dsn: str, guests: str, autocommit: bool
) -> None:
    """PREPARE and EXPLAIN EXECUTE with NULLs plan generically and leave nothing behind."""
    with psycopg.connect(postgres_dsn, autocommit=autocommit) as conn:
        explained = explain_postgres(
            conn, f"SELECT * FROM {guests} WHERE wedding_id = ?", generic_plan=False
        )
        left = conn.execute("SELECT count(*) FROM pg_prepared_statements").fetchone()
        conn.rollback()
        status = conn.info.transaction_status
    [node] = [item["Plan"] for item in explained.plan]
    assert node["Node Type"] == "Seq Scan"
    assert node["Filter"] == f"({guests}.wedding_id = $1)"
    assert left == (0,)
    assert status == psycopg.pq.TransactionStatus.IDLE


@pytest.mark.parametrize(
    "raw",
    [
        "UPDATE {t} SET name = 'x' WHERE wedding_id = 1",
        "DELETE FROM {t} WHERE wedding_id = 1",
        "INSERT INTO {t} (wedding_id, email, name) VALUES (1, 'a', 'b')",
    ],
)
def test_slow_writes_are_never_explained(
    make_advisor: Callable[..., QueryAdvisor],
    pg_connect: CountingConnect,
    postgres_dsn: str,
    guests: str,
    raw: str,
) -> None:
    """A slow write is counted as skipped, never reaches the database, and changes nothing."""
    before = pg_count(postgres_dsn, guests)
    advisor = make_advisor(pg_connect, system="postgresql")
    observe(advisor, raw.format(t=guests), runs=20)
    assert advisor.wait_idle(WAIT_S)
    assert (advisor.stats.skipped_writes, advisor.stats.explained) == (1, 0)
    assert pg_connect.threads == []
    assert pg_count(postgres_dsn, guests) == before


def test_explain_never_executes_the_statement(
    make_advisor: Callable[..., QueryAdvisor], pg_connect: CountingConnect, postgres_dsn: str
) -> None:
    """EXPLAINing ``SELECT nextval(...)`` leaves the sequence where it was: no ANALYZE."""
    sequence = f"invitations_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(postgres_dsn, autocommit=True) as conn:
        conn.execute(f"CREATE SEQUENCE {sequence}")
        conn.execute(f"SELECT nextval('{sequence}')")
    try:
        advisor = make_advisor(pg_connect, system="postgresql")
        observe(advisor, f"SELECT nextval('{sequence}')")
        assert advisor.wait_idle(WAIT_S)
        with psycopg.connect(postgres_dsn) as conn:
            last = conn.execute(f"SELECT last_value FROM {sequence}").fetchone()
    finally:
        with psycopg.connect(postgres_dsn, autocommit=True) as conn:
            conn.execute(f"DROP SEQUENCE {sequence}")
    assert (advisor.stats.explained, advisor.stats.errors) == (1, 0)
    assert last == (1,)


def test_broken_statement_is_counted_not_raised(
    make_advisor: Callable[..., QueryAdvisor], pg_connect: CountingConnect
) -> None:
    """EXPLAIN of a query on a missing table counts one error and advises nothing."""
    advisor = make_advisor(pg_connect, system="postgresql")
    observe(advisor, f"SELECT * FROM missing_{uuid.uuid4().hex[:8]} WHERE id = 1")
    assert advisor.wait_idle(WAIT_S)
    assert (advisor.stats.errors, advisor.stats.explained) == (1, 0)
    assert advisor.recommendations() == []


# --- SQLite -------------------------------------------------------------------------------


def test_sqlite_scan_on_large_table_gets_index_advice(
    make_advisor: Callable[..., QueryAdvisor], sqlite_path: Path
) -> None:
    """A slow lookup that SCANs 100,000 SQLite rows is advised a named index on wedding_id."""
    advisor = make_advisor(sqlite_read_only(sqlite_path), system="sqlite")
    observe(advisor, "SELECT email FROM guests WHERE wedding_id = 42")
    assert advisor.wait_idle(WAIT_S)
    [rec] = index_advice(advisor)
    assert (rec.table, rec.columns) == ("guests", ("wedding_id",))
    assert rec.advice == "CREATE INDEX ix_guests_wedding_id ON guests (wedding_id)"
    assert rec.evidence == (
        "SCAN guests (~100000 rows) for WHERE wedding_id = ?, p95 120 ms over 5 runs"
    )


def test_sqlite_no_index_advice_once_the_index_exists(
    make_advisor: Callable[..., QueryAdvisor], sqlite_path: Path
) -> None:
    """After running the advice, a fresh advisor sees SEARCH ... USING INDEX and advises nothing."""
    raw = "SELECT email FROM guests AS g WHERE g.wedding_id = 3"
    first = make_advisor(sqlite_read_only(sqlite_path), system="sqlite")
    observe(first, raw)
    assert first.wait_idle(WAIT_S)
    [rec] = index_advice(first)
    with closing(sqlite3.connect(sqlite_path)) as conn:
        conn.execute(rec.advice)
    fresh = make_advisor(sqlite_read_only(sqlite_path), system="sqlite")
    observe(fresh, raw)
    assert fresh.wait_idle(WAIT_S)
    assert fresh.stats.explained == 1
    assert index_advice(fresh) == []


def test_small_table_gets_no_index_advice(
    make_advisor: Callable[..., QueryAdvisor], tmp_path: Path
) -> None:
    """A scan of a table below min_table_rows is explained but not worth an index."""
    path = tmp_path / "small.db"
    with closing(sqlite3.connect(path)) as conn:
        conn.execute("CREATE TABLE venues (id INTEGER PRIMARY KEY, city text)")
        conn.executemany("INSERT INTO venues (city) VALUES (?)", [("Bath",)] * 100)
        conn.commit()
    advisor = make_advisor(sqlite_read_only(path), system="sqlite")
    observe(advisor, "SELECT id FROM venues WHERE city = 'Bath'")
    assert advisor.wait_idle(WAIT_S)
    assert (advisor.stats.explained, advisor.recommendations()) == (1, [])


# --- when and how often it EXPLAINs -------------------------------------------------------


def test_fast_fingerprints_are_not_explained(
    make_advisor: Callable[..., QueryAdvisor], sqlite_path: Path
) -> None:
    """A query whose p95 stays under slow_ms never reaches the worker."""
    connect = sqlite_read_only(sqlite_path)
    advisor = make_advisor(connect, system="sqlite")
    observe(advisor, "SELECT email FROM guests WHERE wedding_id = 1", runs=200, ms=5.0)
    assert advisor.wait_idle(WAIT_S)
    assert (advisor.stats.explained, connect.threads) == (0, [])


def test_one_outlier_in_twenty_runs_is_not_a_slow_p95(
    make_advisor: Callable[..., QueryAdvisor], sqlite_path: Path
) -> None:
    """Nineteen fast runs and one slow one keep the nearest-rank p95 under slow_ms."""
    connect = sqlite_read_only(sqlite_path)
    advisor = make_advisor(connect, system="sqlite")
    raw = "SELECT email FROM guests WHERE wedding_id = 1"
    observe(advisor, raw, runs=19, ms=5.0)
    observe(advisor, raw, runs=1)
    assert advisor.wait_idle(WAIT_S)
    assert connect.threads == []


def test_slow_fingerprint_is_explained_once(
    make_advisor: Callable[..., QueryAdvisor], sqlite_path: Path
) -> None:
    """Observed hundreds of times, a slow fingerprint is EXPLAINed exactly once."""
    connect = sqlite_read_only(sqlite_path)
    advisor = make_advisor(connect, system="sqlite")
    raw = "SELECT email FROM guests WHERE wedding_id = 9"
    observe(advisor, raw, runs=100)
    assert advisor.wait_idle(WAIT_S)
    observe(advisor, raw, runs=300)
    assert advisor.wait_idle(WAIT_S)
    assert advisor.stats.explained == 1
    assert len(connect.threads) == 1
    assert len(index_advice(advisor)) == 1


def test_observe_never_opens_a_connection(
    make_advisor: Callable[..., QueryAdvisor], sqlite_path: Path
) -> None:
    """Only the advisor's worker thread calls the connect factory."""
    connect = sqlite_read_only(sqlite_path)
    advisor = make_advisor(connect, system="sqlite")
    for wedding in range(3):
        observe(
            advisor, f"SELECT email FROM guests WHERE wedding_id = {wedding} AND id > {wedding}"
        )
        observe(advisor, f"SELECT id FROM guests WHERE email = 'x' LIMIT {wedding + 1}, 5")
    assert advisor.wait_idle(WAIT_S)
    assert connect.threads
    assert threading.current_thread() not in connect.threads


def test_worker_runs_with_instrumentation_suppressed(
    make_advisor: Callable[..., QueryAdvisor], sqlite_path: Path
) -> None:
    """The advisor's own connection and EXPLAINs run untraced, so they never feed observe."""
    connect = sqlite_read_only(sqlite_path)
    advisor = make_advisor(connect, system="sqlite")
    observe(advisor, "SELECT email FROM guests WHERE wedding_id = 5")
    assert advisor.wait_idle(WAIT_S)
    assert connect.suppressed == [True]


def test_failing_connect_is_counted_not_raised(
    make_advisor: Callable[..., QueryAdvisor],
) -> None:
    """A connect factory that raises costs one error per attempt and nothing else."""

    def connect() -> Any:
        raise OSError("the database is down")

    advisor = make_advisor(connect, system="postgresql")
    observe(advisor, "SELECT * FROM guests WHERE wedding_id = 1")
    assert advisor.wait_idle(WAIT_S)
    assert (advisor.stats.errors, advisor.stats.explained) == (1, 0)
    assert advisor.recommendations() == []


def test_fingerprint_is_retried_after_an_error_at_most_three_times(
    make_advisor: Callable[..., QueryAdvisor],
) -> None:
    """After a failed EXPLAIN a fingerprint is queued again when slow again, three tries in all."""
    connect = CountingConnect(lambda: sqlite3.connect(":memory:"))  # no tables: EXPLAIN fails
    advisor = make_advisor(connect, system="sqlite")
    for _ in range(5):
        observe(advisor, "SELECT email FROM guests WHERE wedding_id = 1")
        assert advisor.wait_idle(WAIT_S)
    assert advisor.stats.errors == 3


# --- N+1 ----------------------------------------------------------------------------------


def test_n_plus_one_report_gives_batch_advice(
    make_advisor: Callable[..., QueryAdvisor],
) -> None:
    """A reported N+1 pattern becomes one batch recommendation without any EXPLAIN."""
    connect = CountingConnect(lambda: sqlite3.connect(":memory:"))
    advisor = make_advisor(connect, system="sqlite")
    raw = "SELECT * FROM guests g WHERE g.wedding_id = 12"
    for count in (25, 40):
        advisor.report_n_plus_one(
            fingerprint=fingerprint(raw), statement=sanitize(raw), count=count
        )
    [rec] = advisor.recommendations()
    assert rec == Recommendation(
        fingerprint=fingerprint(raw),
        statement="SELECT * FROM guests g WHERE g.wedding_id = ?",
        kind="batch",
        table="guests",
        columns=("wedding_id",),
        advice=(
            "run one query with `wedding_id IN (...)` / a join instead of N queries like: "
            "SELECT * FROM guests g WHERE g.wedding_id = ?"
        ),
        evidence="one request ran it 40 times; reported in 2 requests",
    )
    assert connect.threads == []


# --- bounds and lifecycle -----------------------------------------------------------------


def test_full_queue_drops_and_counts(make_advisor: Callable[..., QueryAdvisor]) -> None:
    """While the worker is busy, a job beyond max_queue is dropped, counted, and observe returns."""
    entered, release = threading.Event(), threading.Event()

    def connect() -> Any:
        entered.set()
        release.wait(WAIT_S)
        return sqlite3.connect(":memory:")

    advisor = make_advisor(connect, system="sqlite", max_queue=1)
    observe(advisor, "SELECT a FROM t1 WHERE b = 1")
    assert entered.wait(WAIT_S)  # the worker holds the first job
    observe(advisor, "SELECT a FROM t2 WHERE b = 1")  # queued
    observe(advisor, "SELECT a FROM t3 WHERE b = 1")  # dropped
    assert advisor.stats.dropped == 1
    release.set()
    assert advisor.wait_idle(WAIT_S)


def test_fingerprints_beyond_the_bound_are_evicted_and_counted(
    make_advisor: Callable[..., QueryAdvisor],
) -> None:
    """Tracking a third fingerprint with max_fingerprints=2 evicts the oldest one."""
    advisor = make_advisor(lambda: sqlite3.connect(":memory:"), system="sqlite", max_fingerprints=2)
    for table in ("a", "b", "c"):
        observe(advisor, f"SELECT x FROM {table} WHERE y = 1", runs=1, ms=1.0)
    assert advisor.stats.evicted == 1


def test_advised_fingerprint_is_not_explained_again_after_eviction(
    make_advisor: Callable[..., QueryAdvisor], sqlite_path: Path
) -> None:
    """A fingerprint that already has advice is not EXPLAINed again when it comes back."""
    advisor = make_advisor(sqlite_read_only(sqlite_path), system="sqlite", max_fingerprints=1)
    raw = "SELECT email FROM guests WHERE wedding_id = 4"
    observe(advisor, raw)
    assert advisor.wait_idle(WAIT_S)
    observe(advisor, "SELECT id FROM guests WHERE id = 1", runs=1, ms=1.0)  # evicts it
    observe(advisor, raw)
    assert advisor.wait_idle(WAIT_S)
    assert (advisor.stats.explained, advisor.stats.evicted) == (1, 2)


@pytest.mark.parametrize(
    ("setting", "value"),
    [("system", "mysql"), ("slow_ms", -1.0), ("min_samples", 0), ("max_queue", 0)],
)
def test_unusable_settings_raise_config_error_naming_the_key(setting: str, value: Any) -> None:
    """A setting that cannot work is refused at construction, naming the setting."""
    settings: dict[str, Any] = {"system": "sqlite", setting: value}
    with pytest.raises(ConfigError) as caught:
        QueryAdvisor(lambda: None, **settings)
    assert caught.value.key == setting


def test_close_is_idempotent_and_stops_observing(
    make_advisor: Callable[..., QueryAdvisor], sqlite_path: Path
) -> None:
    """After close, a second close is harmless and slow queries are no longer explained."""
    connect = sqlite_read_only(sqlite_path)
    advisor = make_advisor(connect, system="sqlite")
    advisor.close()
    advisor.close()
    observe(advisor, "SELECT email FROM guests WHERE wedding_id = 1")
    assert advisor.wait_idle(WAIT_S)
    assert (advisor.stats.explained, connect.threads) == (0, [])


# --- pure helpers -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "columns"),
    [
        ("(wedding_id = $1)", ("wedding_id",)),
        ("((created_at > $3) AND (wedding_id = $1) AND ((email)::text = $2))",
         ("wedding_id", "email", "created_at")),
        ("((g.wedding_id = $1) AND ((g.email)::text = $2))", ("wedding_id", "email")),
        ("(wedding_id = ANY ($1))", ("wedding_id",)),
        ("(created_at >= ($1)::timestamp with time zone)", ("created_at",)),
        ('($1 = "Wedding Id")', ('"Wedding Id"',)),
        ("((name ~~ $2) AND (wedding_id = $1))", ("wedding_id",)),
        ("((lower(name) = $1) OR (wedding_id = $2))", ()),
        ("w = ? AND s IN (?) AND d BETWEEN ? AND ? AND x > ?", ("w", "s", "d")),
        ("g.wedding_id = ? AND deleted_at IS NULL", ("wedding_id",)),
        ("NOT (a = ?)", ()),
        ("a <> ?", ()),
        ("a = b", ()),
    ],
)  # fmt: skip
def test_filter_columns(text: str, columns: tuple[str, ...]) -> None:
    """Equality columns come first in filter order, then one range column; OR gives none."""
    assert filter_columns(text) == columns


@given(st.lists(st.sampled_from(["?", '"a?b"', "x", "=", ",", "(", ")"]), max_size=30))
def test_number_placeholders_numbers_every_bare_question_mark(parts: list[str]) -> None:
    """Each ``?`` outside a quoted identifier becomes the next ``$n``; quoted ones stay."""
    numbered, count = number_placeholders(" ".join(parts))
    assert count == parts.count("?")
    assert re.findall(r"\$(\d+)", numbered) == [str(n) for n in range(1, count + 1)]
    assert numbered.count('"a?b"') == parts.count('"a?b"')
