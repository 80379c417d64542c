"""No planted secret reaches an exporter: the leak corpus through real servers and real spans."""

from __future__ import annotations

import re
import sqlite3
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import psycopg
import pytest
import redis
from opentelemetry.instrumentation._semconv import _OpenTelemetrySemanticConventionStability
from opentelemetry.instrumentation.psycopg import PsycopgInstrumentor
from opentelemetry.instrumentation.sqlite3 import SQLite3Instrumentor
from opentelemetry.instrumentation.utils import suppress_instrumentation
from opentelemetry.metrics import _internal as metrics_internal
from opentelemetry.sdk.metrics import Counter, Histogram, MeterProvider, UpDownCounter
from opentelemetry.sdk.metrics.export import (
    AggregationTemporality,
    InMemoryMetricReader,
    MetricsData,
)
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import (
    SpanKind,
    Tracer,
)

import leak_corpus as corpus
from helpers import CapturingExporter, Pipeline
from leak_corpus import RedisCase, SpanCase, SqlCase, exported_texts, leaks, render, views
from wedsync_otel import WeddingConfig, configure
from wedsync_otel import attributes as attr
from wedsync_otel.instrumentation import instrumentors
from wedsync_otel.instrumentation.redis_hooks import uninstrument_redis
from wedsync_otel.setup import WeddingTelemetry

INSTRUMENTATIONS = ("sqlite3", "psycopg", "redis")
OPERATION_DURATION = "db.client.operation.duration"
_OPERATION_WORD = re.compile(r"[A-Za-z]+")
_DELTA = AggregationTemporality.DELTA
_STATEMENT_FIELDS = (" attributes['db.statement']", " attributes['db.query.text']")


def metric_texts(data: MetricsData | None) -> set[tuple[str, str]]:
    """(field, text) for every data point attribute key and value in ``data``."""
    found: set[tuple[str, str]] = set()
    for resource_metrics in data.resource_metrics if data is not None else ():
        for scope_metrics in resource_metrics.scope_metrics:
            for metric in scope_metrics.metrics:
                for point in metric.data.data_points:
                    for key, value in (point.attributes or {}).items():
                        found.add((f"metric {metric.name} point key", str(key)))
                        found.add((f"metric {metric.name}[{key!r}]", render(value)))
    return found


def operation_names(data: MetricsData | None) -> list[object]:
    """``db.operation.name`` of every ``db.client.operation.duration`` point ([] if absent)."""
    names: list[object] = []
    for resource_metrics in data.resource_metrics if data is not None else ():
        for scope_metrics in resource_metrics.scope_metrics:
            for metric in scope_metrics.metrics:
                if metric.name == OPERATION_DURATION:
                    names.extend(
                        (point.attributes or {}).get("db.operation.name", "")
                        for point in metric.data.data_points
                    )
    return names


def span_texts(spans: tuple[ReadableSpan, ...]) -> list[tuple[str, str]]:
    return [text for span in spans for text in exported_texts(span)]


def live(raw: str, secrets: tuple[str, ...]) -> bool:
    """Whether at least one secret really is in what the application or the server produced."""
    seen = views(raw)
    return any(
        needle in form for secret in secrets for needle in corpus.needles(secret) for form in seen
    )


# --- real servers -----------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class Stack:
    """configure() with the companion instrumentations on, and connections to the real servers."""

    mode: str
    telemetry: WeddingTelemetry
    tracer: Tracer
    spans: InMemorySpanExporter
    wedding_metrics: CapturingExporter
    contrib_metrics: InMemoryMetricReader
    postgres: psycopg.Connection[Any]
    sqlite: sqlite3.Connection
    redis_url: str


def _seed_postgres(connection: psycopg.Connection[Any], schema: str) -> None:
    with suppress_instrumentation():
        connection.execute(f"CREATE SCHEMA {schema}")
        connection.execute(f"SET search_path TO {schema}")
        for statement in corpus.POSTGRES_SCHEMA:
            connection.execute(statement)
        connection.commit()


def _seed_sqlite(connection: sqlite3.Connection) -> None:
    with suppress_instrumentation():
        for statement in corpus.SQLITE_SCHEMA:
            connection.cursor().execute(statement)
        connection.commit()


@pytest.fixture(scope="module", params=["default", "database"])
def stack(request: pytest.FixtureRequest, postgres_dsn: str, redis_url: str) -> Iterator[Stack]:
    """The pipeline under the default and the stable (``database``) semantic conventions.

    The mode is read once per process, so its cache is reset before the
    contrib instrumentations are turned on and restored afterwards; their
    ``db.client.operation.duration`` goes to the global MeterProvider, here
    one with an in-memory reader.
    """
    mode: str = request.param
    assert not instrumentors.instrumented() & set(INSTRUMENTATIONS), "left instrumented"
    with pytest.MonkeyPatch.context() as patch:
        if mode == "database":
            patch.setenv("OTEL_SEMCONV_STABILITY_OPT_IN", "database")
        else:
            patch.delenv("OTEL_SEMCONV_STABILITY_OPT_IN", raising=False)
        stability = _OpenTelemetrySemanticConventionStability
        patch.setattr(stability, "_initialized", False)
        patch.setattr(stability, "_OTEL_SEMCONV_STABILITY_SIGNAL_MAPPING", {})
        reader = InMemoryMetricReader(
            preferred_temporality={Histogram: _DELTA, Counter: _DELTA, UpDownCounter: _DELTA}
        )
        meter_provider = MeterProvider(metric_readers=[reader])
        patch.setattr(metrics_internal, "_METER_PROVIDER", meter_provider)
        spans = InMemorySpanExporter()
        wedding_metrics = CapturingExporter(delta=True)
        telemetry = configure(
            config=WeddingConfig.default(),
            span_exporter=spans,
            metric_exporter=wedding_metrics,
            metric_export_interval_millis=3_600_000,
            instrument=INSTRUMENTATIONS,
            set_global=False,
        )
        schema = f"leaks_{uuid.uuid4().hex[:8]}"
        postgres = psycopg.connect(postgres_dsn)
        lite = sqlite3.connect(":memory:")
        try:
            _seed_postgres(postgres, schema)
            _seed_sqlite(lite)
            yield Stack(
                mode=mode,
                telemetry=telemetry,
                tracer=telemetry.tracer_provider.get_tracer("leaks"),
                spans=spans,
                wedding_metrics=wedding_metrics,
                contrib_metrics=reader,
                postgres=postgres,
                sqlite=lite,
                redis_url=redis_url,
            )
        finally:
            with suppress_instrumentation():
                postgres.rollback()
                postgres.execute(f"DROP SCHEMA {schema} CASCADE")
                postgres.commit()
            postgres.close()
            lite.close()
            SQLite3Instrumentor().uninstrument()
            PsycopgInstrumentor().uninstrument()
            uninstrument_redis()
            instrumentors._instrumented.difference_update(INSTRUMENTATIONS)
            telemetry.shutdown()
            meter_provider.shutdown()


@dataclass(frozen=True, kw_only=True)
class Exported:
    """What one case made: spans and the metric attributes new since it started."""

    spans: tuple[ReadableSpan, ...]
    metric_texts: set[tuple[str, str]]
    operation_names: list[object]

    def texts(self) -> list[tuple[str, str]]:
        return [*span_texts(self.spans), *sorted(self.metric_texts)]


class _Recording:
    """Clears the exporters before a case and collects what it exported after."""

    def __init__(self, stack: Stack) -> None:
        self.stack = stack
        stack.telemetry.force_flush()
        stack.spans.clear()
        stack.contrib_metrics.get_metrics_data()  # delta: what earlier cases recorded goes
        self._before = metric_texts(self._wedding_data())

    def _wedding_data(self) -> MetricsData | None:
        exported = self.stack.wedding_metrics.exported
        return exported[-1] if exported else None

    def collect(self) -> Exported:
        assert self.stack.telemetry.force_flush()
        contrib = self.stack.contrib_metrics.get_metrics_data()
        wedding = metric_texts(self._wedding_data()) - self._before
        return Exported(
            spans=self.stack.spans.get_finished_spans(),
            metric_texts=metric_texts(contrib) | wedding,
            operation_names=operation_names(contrib),
        )


def _request(stack: Stack) -> Any:
    return stack.tracer.start_as_current_span(
        "POST /api/guests",
        kind=SpanKind.SERVER,
        attributes={"http.route": "/api/guests", "http.request.method": "POST"},
    )


def run_sql(stack: Stack, case: SqlCase) -> tuple[Exported, BaseException | None]:
    """Run the case's statement on the real server, ``repeat`` times under one request span."""
    recording = _Recording(stack)
    connection: Any = stack.postgres if case.backend == "postgresql" else stack.sqlite
    error: BaseException | None = None
    with _request(stack):
        for _ in range(case.repeat):
            cursor = connection.cursor()
            try:
                if case.params is None:
                    cursor.execute(case.statement)
                else:
                    cursor.execute(case.statement, case.params)
            except (psycopg.Error, sqlite3.Error) as exc:
                error = exc
            finally:
                cursor.close()
                with suppress_instrumentation():
                    connection.rollback()
    return recording.collect(), error


def run_redis(stack: Stack, case: RedisCase) -> tuple[Exported, BaseException | None]:
    """``execute_command`` on the real Redis (a fresh client: AUTH and HELLO change it)."""
    recording = _Recording(stack)
    client = redis.Redis.from_url(stack.redis_url, socket_timeout=5.0)
    error: BaseException | None = None
    try:
        with suppress_instrumentation():
            for command in case.setup:
                client.execute_command(*command)
        with _request(stack):
            try:
                client.execute_command(*case.command)
            except redis.RedisError as exc:
                error = exc
    finally:
        with suppress_instrumentation():
            if case.keys:
                client.delete(*case.keys)
        client.close()
    return recording.collect(), error


def _check_outcome(expected: str | None, error: BaseException | None) -> None:
    if expected is None:
        assert error is None, f"the case must succeed but raised {error!r}"
    else:
        assert error is not None, f"the server must raise {expected}, it did not"
        assert type(error).__name__ == expected, f"expected {expected}, got {error!r}"


def _check_metrics(stack: Stack, exported: Exported, *, database: bool) -> list[str]:
    problems = []
    if stack.mode == "database" and database:
        assert exported.operation_names, f"no {OPERATION_DURATION} point was recorded"
    for name in exported.operation_names:
        if name and not (isinstance(name, str) and _OPERATION_WORD.fullmatch(name)):
            problems.append(f"{OPERATION_DURATION} db.operation.name = {name!r}")
    return problems


@pytest.mark.parametrize("case", corpus.SQL_CASES, ids=[case.id for case in corpus.SQL_CASES])
def test_sql_case_exports_no_secret(stack: Stack, case: SqlCase) -> None:
    """A statement run or failed on the real server leaves no planted secret in any field."""
    exported, error = run_sql(stack, case)
    _check_outcome(case.error, error)
    raw = f"{case.statement}\n{case.params!r}\n{error}"
    assert live(raw, case.secrets), "the planted secret is neither in the statement nor the error"
    if case.repeat > stack.telemetry.config.n_plus_one_limit:
        (request,) = [s for s in exported.spans if s.kind is SpanKind.SERVER]
        assert any(event.name == attr.DB_N_PLUS_ONE for event in request.events), "no N+1 event"
    texts = exported.texts()
    statements = [(where, text) for where, text in texts if where.endswith(_STATEMENT_FIELDS)]
    others = [(where, text) for where, text in texts if not where.endswith(_STATEMENT_FIELDS)]
    outside = tuple(secret for secret in case.secrets if secret not in case.identifiers)
    found = [*leaks(others, case.secrets), *leaks(statements, outside)]
    found += _check_metrics(stack, exported, database=True)
    assert not found, "\n".join(found)


@pytest.mark.parametrize("case", corpus.REDIS_CASES, ids=[case.id for case in corpus.REDIS_CASES])
def test_redis_case_exports_no_secret(stack: Stack, case: RedisCase) -> None:
    """A command run on the real Redis leaves no planted secret in any exported field."""
    exported, error = run_redis(stack, case)
    _check_outcome(case.error, error)
    assert live(f"{case.command!r}\n{error}", case.secrets)
    assert any(span.kind is SpanKind.CLIENT for span in exported.spans), "no Redis span"
    found = leaks(exported.texts(), case.secrets) + _check_metrics(stack, exported, database=False)
    assert not found, "\n".join(found)


def test_parametrised_query_text_survives(stack: Stack) -> None:
    """A statement whose values are parameters is exported as written, and names its span."""
    statement = "SELECT * FROM guests WHERE id = %s"
    case = SqlCase(
        id="pg-parametrised",
        leak_class=corpus.LeakClass.SQL_FORM,
        secrets=("Anna Keller",),
        backend="postgresql",
        statement=statement,
        params=(1,),
    )
    exported, error = run_sql(stack, case)
    assert error is None
    (query,) = [span for span in exported.spans if span.kind is SpanKind.CLIENT]
    attributes = query.attributes or {}
    text = attributes.get("db.query.text", attributes.get("db.statement"))
    assert text == statement
    assert query.name.startswith("SELECT")


# --- spans built by hand ----------------------------------------------------------------------


@pytest.mark.parametrize("case", corpus.SPAN_CASES, ids=[case.id for case in corpus.SPAN_CASES])
def test_span_case_exports_no_secret(pipeline: Pipeline, case: SpanCase) -> None:
    """A secret planted in any field of a span of any kind is not in any exported field."""
    corpus.emit(pipeline.tracer, case)
    spans = pipeline.spans()
    assert spans
    found = leaks(span_texts(spans), case.secrets)
    assert not found, "\n".join(found)


# --- the corpus itself and what must survive --------------------------------------------------


def test_corpus_has_unique_ids_and_every_class() -> None:
    """Case ids are unique, there are at least 150 cases, and every class has some."""
    ids = [case.id for case in corpus.CASES]
    assert len(ids) == len(set(ids))
    assert len(ids) >= 150
    assert all(corpus.counts_by_class().values())


def test_needles_include_local_parts_and_digit_runs() -> None:
    """An email's local part and a card's bare digits count as the secret too."""
    assert "anna.keller" in corpus.needles("anna.keller%40example.com")
    assert "karl.berg" in corpus.needles("karl.berg\uff20example.com")
    assert "4111111111111111" in corpus.needles("4111 1111 1111 1111")
    assert corpus.leaks([("x", "ref 4111-1111-1111-1111")], ["4111 1111 1111 1111"])


def test_useful_request_telemetry_survives(pipeline: Pipeline) -> None:
    """Route, method, server, scheme, wedding.* and a templated SERVER span name are kept."""
    name = "GET /api/venues/{venue_id}/availability"
    kept = {
        "http.route": "/api/venues/{venue_id}/availability",
        "http.request.method": "GET",
        "server.address": "api.wedsync.example",
        "server.port": 443,
        "url.scheme": "https",
        "url.path": "/api/venues/42/availability",
        "http.response.status_code": 200,
        "wedding.id": "w-1042",
        "wedding.date": "2026-06-20",
    }
    with pipeline.tracer.start_as_current_span(name, kind=SpanKind.SERVER, attributes=kept):
        pass
    span = pipeline.only_span(name)
    attributes = dict(span.attributes or {})
    assert {key: attributes.get(key) for key in kept} == kept
    assert attributes[attr.WEDDING_APDEX] in {"satisfied", "tolerating", "frustrated"}


def test_sanitised_query_text_survives(pipeline: Pipeline) -> None:
    """A query whose literals are already ``?`` is exported as it is, with its system."""
    statement = "SELECT * FROM guests WHERE id = ?"
    with (
        pipeline.tracer.start_as_current_span("GET /api/guests", kind=SpanKind.SERVER),
        pipeline.tracer.start_as_current_span(
            "SELECT guests",
            kind=SpanKind.CLIENT,
            attributes={
                "db.system.name": "postgresql",
                "db.query.text": statement,
                "db.namespace": "wedsync",
            },
        ),
    ):
        pass
    query = pipeline.only_span("SELECT guests")
    attributes = query.attributes or {}
    assert attributes["db.query.text"] == statement
    assert attributes["db.system.name"] == "postgresql"
    assert attributes["db.namespace"] == "wedsync"


def test_known_cache_namespace_and_command_survive(pipeline: Pipeline) -> None:
    """A cache span keeps its command, a sanitised statement and a known namespace."""
    with pipeline.tracer.start_as_current_span(
        "GET",
        kind=SpanKind.CLIENT,
        attributes={
            "db.system": "redis",
            "db.statement": "GET ?",
            "cache.backend": "redis",
            "cache.key.namespace": "venues",
        },
    ):
        pass
    (span,) = pipeline.spans()
    attributes = span.attributes or {}
    assert span.name == "GET"
    assert attributes["db.statement"] == "GET ?"
    assert attributes["cache.key.namespace"] == "venues"
