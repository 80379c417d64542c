"""Zero-code on a real stack: FastAPI + SQLAlchemy 2 async + asyncpg against a real PostgreSQL.

tests/data/conduit_app.py, a small RealWorld "Conduit" API with no wedsync-otel code in it, runs
under ``opentelemetry-instrument`` as a user would run it: every installed instrumentation loads,
so the SQLAlchemy and asyncpg instrumentations both trace each query (the stacked case). The app
counts its own database work from SQLAlchemy's events and writes it to a JSON record; the tests
hold the exported, enriched spans to that record.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
import pytest
from opentelemetry.trace import SpanKind
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict
from sqlalchemy.engine import URL

from wedsync_otel import WeddingConfig
from wedsync_otel.exporters import SpanRecord, read_spans

APP = Path(__file__).parent / "data" / "conduit_app.py"
EXPORTER = "wedsync_otlp_json"
TIMEOUT_S = 120

CONFIG = """\
[endpoints.articles]
patterns = ["/api/articles/**"]
threshold_ms = 300
"""

MEASURED = ["get_article", "create_article", "list_lazy", "list_selectin"]
"""Every request but the warm-up, which may pay for the engine's first use."""

DB_TEXT_KEYS = ("db.statement", "db.query.text")


@dataclass(frozen=True, kw_only=True)
class ConduitRun:
    """What one instrumented run of the app left behind."""

    returncode: int
    stderr: str
    spans: list[SpanRecord]
    record: dict[str, Any] | None
    """The app's own account of its work; None if it did not get as far as writing it."""

    def work(self, step: str) -> dict[str, Any]:
        """The app's record of the request named ``step``."""
        assert self.record is not None, f"the app wrote no record:\n{self.stderr[-3000:]}"
        found: list[dict[str, Any]] = [
            work for work in self.record["requests"] if work["step"] == step
        ]
        assert len(found) == 1, f"{len(found)} requests named {step!r}"
        return found[0]

    def request_span(self, step: str) -> SpanRecord:
        """The enriched server span of the request named ``step``, joined by trace id."""
        trace_id = self.work(step)["trace_id"]
        found = [
            span
            for span in self.spans
            if span.kind is SpanKind.SERVER and span.trace_id == trace_id
        ]
        assert len(found) == 1, f"{len(found)} server spans in trace {trace_id} ({step})"
        return found[0]


def _clean_environment(**extra: str) -> dict[str, str]:
    environment = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("OTEL_", "WEDSYNC_", "CONDUIT_")) and key != "PYTEST_CURRENT_TEST"
    }
    environment.update(extra)
    return environment


def asyncpg_url(dsn: str, database: str) -> str:
    """``dsn`` (any form libpq takes: a URL or ``key=value`` pairs) for SQLAlchemy over asyncpg."""
    params = {key: str(value) for key, value in conninfo_to_dict(dsn).items() if value is not None}
    port, sslmode = params.get("port"), params.get("sslmode")
    url = URL.create(
        "postgresql+asyncpg",
        username=params.get("user"),
        password=params.get("password"),
        host=params.get("host"),
        port=int(port) if port else None,
        database=database,
        query={"ssl": sslmode} if sslmode else {},
    )
    return url.render_as_string(hide_password=False)


@pytest.fixture(scope="module")
def database_url(postgres_dsn: str) -> Iterator[str]:
    """A fresh database on the session's PostgreSQL, dropped afterwards, as an asyncpg URL."""
    name = f"conduit_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(postgres_dsn, autocommit=True) as admin:
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    yield asyncpg_url(postgres_dsn, name)
    with psycopg.connect(postgres_dsn, autocommit=True) as admin:
        admin.execute(sql.SQL("DROP DATABASE {} WITH (FORCE)").format(sql.Identifier(name)))


@pytest.fixture(scope="module")
def config_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The app's WEDSYNC_OTEL_CONFIG: its one endpoint, everything else left at the default."""
    path = tmp_path_factory.mktemp("config") / "wedsync.toml"
    path.write_text(CONFIG, encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def n_plus_one_limit(config_file: Path) -> int:
    """The ``n_plus_one_limit`` in force in the app (the environment's is left out)."""
    return WeddingConfig.from_file(config_file).n_plus_one_limit


@pytest.fixture(scope="module")
def conduit(
    database_url: str,
    config_file: Path,
    n_plus_one_limit: int,
    tmp_path_factory: pytest.TempPathFactory,
) -> ConduitRun:
    """One run of the app under ``opentelemetry-instrument``, read back."""
    tmp_path = tmp_path_factory.mktemp("conduit")
    out, record = tmp_path / "telemetry", tmp_path / "record.json"
    environment = _clean_environment(
        OTEL_PYTHON_CONFIGURATOR="wedsync_otel",
        OTEL_TRACES_EXPORTER=EXPORTER,
        OTEL_METRICS_EXPORTER=EXPORTER,
        OTEL_LOGS_EXPORTER="none",
        OTEL_SERVICE_NAME="conduit",
        WEDSYNC_OTEL_CONFIG=str(config_file),
        WEDSYNC_OTEL_JSON_DIR=str(out),
        CONDUIT_DATABASE_URL=database_url,
        CONDUIT_RECORD=str(record),
        CONDUIT_LIST_SIZE=str(n_plus_one_limit + 1),
    )
    instrument = Path(sys.executable).parent / "opentelemetry-instrument"
    result = subprocess.run(
        [str(instrument), sys.executable, str(APP)],
        capture_output=True,
        text=True,
        env=environment,
        cwd=tmp_path,
        timeout=TIMEOUT_S,
        check=False,
    )
    return ConduitRun(
        returncode=result.returncode,
        stderr=result.stderr,
        spans=read_spans(out) if out.is_dir() else [],
        record=json.loads(record.read_text(encoding="utf-8")) if record.is_file() else None,
    )


def test_the_app_runs_cleanly_under_opentelemetry_instrument(conduit: ConduitRun) -> None:
    """The instrumented app exits 0 with no traceback on stderr."""
    assert conduit.returncode == 0, conduit.stderr[-3000:]
    assert "Traceback" not in conduit.stderr, conduit.stderr[-3000:]


def test_every_request_is_one_enriched_server_span(conduit: ConduitRun) -> None:
    """Each request the app served is exported as one server span classified ``articles``."""
    assert conduit.record is not None, conduit.stderr[-3000:]
    steps = [work["step"] for work in conduit.record["requests"]]
    assert steps == ["warm_up", *MEASURED]
    endpoints = {step: conduit.request_span(step).attributes["wedding.endpoint"] for step in steps}
    assert endpoints == dict.fromkeys(steps, "articles")


@pytest.mark.parametrize("step", MEASURED)
def test_db_queries_is_the_number_of_statements_the_request_ran(
    conduit: ConduitRun, step: str
) -> None:
    """``wedding.db.queries`` equals the statements SQLAlchemy sent, each counted once."""
    statements = conduit.work(step)["statements"]
    assert statements > 0
    assert conduit.request_span(step).attributes.get("wedding.db.queries") == statements


@pytest.mark.parametrize("step", MEASURED)
def test_control_operations_are_counted_where_a_transaction_ran(
    conduit: ConduitRun, step: str
) -> None:
    """A request that ran a transaction carries ``wedding.db.control_operations`` above 0."""
    assert conduit.work(step)["transactions"] > 0
    control = conduit.request_span(step).attributes.get("wedding.db.control_operations")
    assert isinstance(control, int)
    assert control > 0


@pytest.mark.parametrize("step", MEASURED)
def test_db_time_is_within_the_request_time(conduit: ConduitRun, step: str) -> None:
    """``wedding.db.duration_ms`` is above 0 and at most the request's ``wedding.duration_ms``."""
    attributes = conduit.request_span(step).attributes
    db_ms, total_ms = attributes["wedding.db.duration_ms"], attributes["wedding.duration_ms"]
    assert isinstance(db_ms, float)
    assert isinstance(total_ms, float)
    assert 0 < db_ms <= total_ms


@pytest.mark.parametrize("step", MEASURED)
def test_app_time_is_left_over(conduit: ConduitRun, step: str) -> None:
    """``wedding.app.duration_ms``, the time outside the database, is above 0."""
    app_ms = conduit.request_span(step).attributes["wedding.app.duration_ms"]
    assert isinstance(app_ms, float)
    assert app_ms > 0


def test_lazy_loading_each_author_is_flagged_n_plus_one(
    conduit: ConduitRun, n_plus_one_limit: int
) -> None:
    """The listing that lazy-loads its authors one by one carries ``wedding.db.n_plus_one``."""
    assert conduit.work("list_lazy")["statements"] == 1 + n_plus_one_limit + 1
    fingerprint = conduit.request_span("list_lazy").attributes.get("wedding.db.n_plus_one")
    assert isinstance(fingerprint, str)
    assert len(fingerprint) == 16


def test_the_selectinload_listing_is_not_flagged(conduit: ConduitRun) -> None:
    """The same listing with ``selectinload`` runs two statements and is no N+1."""
    assert conduit.work("list_selectin")["statements"] == 2
    assert "wedding.db.n_plus_one" not in conduit.request_span("list_selectin").attributes


def test_no_exported_query_carries_a_literal_the_app_sent(conduit: ConduitRun) -> None:
    """No ``db.statement`` or ``db.query.text`` holds an email, title, body or slug the app sent."""
    assert conduit.record is not None, conduit.stderr[-3000:]
    assert conduit.record["literals_in_sql"], "the app put no literal into its SQL text"
    texts = [
        value
        for span in conduit.spans
        for key in DB_TEXT_KEYS
        if isinstance(value := span.attributes.get(key), str)
    ]
    assert texts, "no database span was exported"
    leaks = {
        literal: text for literal in conduit.record["literals"] for text in texts if literal in text
    }
    assert leaks == {}


def test_no_span_has_cache_attributes(conduit: ConduitRun) -> None:
    """The app has no cache, so no exported span carries a ``wedding.cache.*`` attribute."""
    assert conduit.spans, conduit.stderr[-3000:]
    found = {
        (span.name, key)
        for span in conduit.spans
        for key in span.attributes
        if key.startswith("wedding.cache.")
    }
    assert found == set()
