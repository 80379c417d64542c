"""`wedsync.telemetry.dropped`: every drop the package counts, exported by reason."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any, overload

import pytest
from opentelemetry import trace
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import ReadableSpan, SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from wedsync_otel import WeddingSpanProcessor, set_wedding_resolver, wedding_context
from wedsync_otel._wedding_marks import MARKS, MAX_MARKED_SPANS, mark_span
from wedsync_otel.db import QueryAdvisor
from wedsync_otel.instrumentation import queries
from wedsync_otel.instrumentation.redis_hooks import request_hook
from wedsync_otel.metrics import WeddingRecorder
from wedsync_otel.metrics.self_metrics import DROP_REASONS, DROPPED, register_self_metrics

README = Path(__file__).resolve().parents[1] / "README.md"
START_NS = int(dt.datetime(2026, 6, 16, 10, tzinfo=dt.UTC).timestamp()) * 1_000_000_000


class Broken(SpanProcessor):
    """A downstream whose on_end raises."""

    def on_end(self, span: ReadableSpan) -> None:
        raise RuntimeError("downstream broke")


class Telemetry:
    """A processor, its recorder and the dropped counter read through a real MeterProvider."""

    def __init__(self, downstream: SpanProcessor | None = None) -> None:
        self.exporter = InMemorySpanExporter()
        self.processor = WeddingSpanProcessor(downstream or SimpleSpanProcessor(self.exporter))
        self.recorder = WeddingRecorder()
        self.processor.add_verdict_listener(self.recorder)
        self.provider = TracerProvider()
        self.provider.add_span_processor(self.processor)
        self.tracer = self.provider.get_tracer("tests")
        self.reader = InMemoryMetricReader()
        register_self_metrics(
            MeterProvider(metric_readers=[self.reader]), self.processor, self.recorder
        )

    def dropped(self) -> dict[str, int]:
        data = self.reader.get_metrics_data()
        assert data is not None
        return {
            str(point.attributes["reason"]): int(point.value)
            for resource in data.resource_metrics
            for scope in resource.scope_metrics
            for metric in scope.metrics
            if metric.name == DROPPED
            for point in metric.data.data_points  # type: ignore[union-attr]
            if point.attributes
        }

    def request(self, **attributes: Any) -> None:
        start = attributes.pop("start_ns", START_NS)
        end = attributes.pop("end_ns", start + 5_000_000)
        span = self.tracer.start_span(
            "request",
            kind=SpanKind.SERVER,
            attributes={"http.route": "/api/payments", **attributes},
            start_time=start,
        )
        span.end(end_time=end)


@pytest.fixture
def telemetry() -> Iterator[Telemetry]:
    made = Telemetry()
    yield made
    made.provider.shutdown()
    set_wedding_resolver(None)


def test_every_reason_is_exported_and_documented(telemetry: Telemetry) -> None:
    """Each reason is a data point from the first collection, and the README lists them all."""
    assert set(telemetry.dropped()) == set(DROP_REASONS)
    readme = README.read_text(encoding="utf-8")
    documented = set(re.findall(r"^\| `([a-z_]+)` \|", readme, flags=re.MULTILINE))
    assert set(DROP_REASONS) <= documented


def _raise(wedding_id: str) -> None:
    raise LookupError(wedding_id)


class _UnreadableArgs(Sequence[object]):
    """Command arguments that fail when read, as a broken client wrapper's might."""

    def __len__(self) -> int:
        return 2

    @overload
    def __getitem__(self, index: int) -> object: ...
    @overload
    def __getitem__(self, index: slice) -> Sequence[object]: ...
    def __getitem__(self, index: int | slice) -> object:
        raise ValueError("unreadable")


def _a_bad_redis_key() -> None:
    span = TracerProvider().get_tracer("t").start_span("SET")
    request_hook(span, None, _UnreadableArgs(), {})


TRIGGERS: dict[str, Callable[[Telemetry], None]] = {
    "invalid_date": lambda t: t.request(**{"wedding.date": "the thirty-first of June"}),
    "invalid_wedding_id": lambda t: t.request(**{"wedding.id": 1.5}),
    "invalid_duration": lambda t: t.request(end_ns=START_NS - 1),
    "invalid_time": lambda t: t.request(start_ns=10**22, end_ns=10**22 + 5),
    "rejected_duration": lambda t: t.request(end_ns=START_NS + 2 * 86_400 * 10**9),
    "resolver_error": lambda t: (
        set_wedding_resolver(_raise),
        wedding_context(wedding_id="w-1").__enter__(),
    ),
    "redis_hook_error": lambda t: _a_bad_redis_key(),
}


@pytest.mark.parametrize("reason", sorted(TRIGGERS))
def test_a_drop_moves_its_own_reason(
    telemetry: Telemetry, reason: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Triggering one kind of drop raises that reason's count, by exactly one."""
    monkeypatch.setenv("WEDSYNC_OTEL_RAISE_INTERNAL_ERRORS", "0")  # hooks swallow, as in prod
    before = telemetry.dropped()
    TRIGGERS[reason](telemetry)
    after = telemetry.dropped()
    assert after[reason] == before[reason] + 1


def test_a_failing_downstream_is_counted() -> None:
    """Every span a raising downstream refused is one downstream_error."""
    telemetry = Telemetry(Broken())
    for _ in range(3):
        telemetry.request()
    assert telemetry.dropped()["downstream_error"] == 3


def test_a_flood_of_paths_counts_route_cache_evictions(telemetry: Telemetry) -> None:
    """Ten thousand and more distinct paths evict from the processor's route cache, counted."""
    for n in range(10_000 + 7):
        span = telemetry.tracer.start_span(
            "request", kind=SpanKind.SERVER, attributes={"url.path": f"/api/payments/{n}"}
        )
        span.end()
    assert telemetry.dropped()["path_cache_eviction"] == 7


def test_a_flood_of_paths_counts_catalogue_evictions(telemetry: Telemetry) -> None:
    """The catalogue's own cache (the ASGI middleware's lookups) counts what it evicts."""
    catalogue = telemetry.processor.rules.catalogue
    for n in range(10_000 + 7):
        catalogue.match(f"/api/payments/{n}")
    assert telemetry.dropped()["catalogue_eviction"] == 7


def test_a_flood_of_statements_counts_statement_cache_evictions(telemetry: Telemetry) -> None:
    """Distinct statements past the fingerprint cache's bound are counted as they evict."""
    before = telemetry.dropped()["statement_cache_eviction"]
    for n in range(4096 + 5):
        queries.query(
            {"db.system": "sqlite", "db.statement": f"SELECT c{n} FROM t"},
            duration_ms=1.0,
            slow_ms=50.0,
        )
    assert telemetry.dropped()["statement_cache_eviction"] >= before + 5


def test_marks_of_spans_that_never_end_are_evicted_and_counted(telemetry: Telemetry) -> None:
    """The store of live spans' weddings stays bounded; what it evicts is counted."""
    before = telemetry.dropped()["wedding_mark_eviction"]
    try:
        for span_id in range(MAX_MARKED_SPANS + 3):
            mark_span(span_id, "w", None)
        assert telemetry.dropped()["wedding_mark_eviction"] == before + 3
    finally:
        MARKS.clear()


def test_requests_whose_totals_overflow_the_store_are_counted(telemetry: Telemetry) -> None:
    """Requests left open while their queries ran evict the oldest totals once the store is full."""
    parents = [
        telemetry.tracer.start_span("request", kind=SpanKind.SERVER) for _ in range(10_000 + 4)
    ]
    for parent in parents:
        telemetry.tracer.start_span(
            "SELECT",
            context=trace.set_span_in_context(parent),
            attributes={"db.system": "sqlite", "db.statement": "SELECT 1"},
        ).end()
    assert telemetry.dropped()["rollup_overflow"] == 4


def test_the_advisors_drops_are_counted(telemetry: Telemetry) -> None:
    """A query advisor's failed EXPLAINs and forgotten shapes are exported too."""
    advisor = QueryAdvisor(_no_connection, system="sqlite", min_samples=1, max_fingerprints=1)
    telemetry.processor.add_query_observer(advisor)
    try:
        advisor.observe(fingerprint="a", statement="SELECT a FROM t", duration_ms=90.0)
        assert advisor.wait_idle(30.0)
        advisor.observe(fingerprint="b", statement="SELECT b FROM t", duration_ms=1.0)
        dropped = telemetry.dropped()
        assert dropped["advisor_error"] == 1
        assert dropped["advisor_eviction"] == 1
    finally:
        advisor.close()


def _no_connection() -> Any:
    raise ConnectionError("no database here")
