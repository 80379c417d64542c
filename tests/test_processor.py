"""WeddingSpanProcessor through a real TracerProvider and the SDK's in-memory exporter."""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Callable
from typing import Any

import pytest
from opentelemetry.context import Context
from opentelemetry.sdk.trace import (
    ReadableSpan,
    Span,
    SpanProcessor,
    TracerProvider,
)
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, Status, StatusCode

from helpers import SATURDAY, TUESDAY, FakeClock, Pipeline
from wedsync_otel import WeddingConfig, WeddingSpanProcessor
from wedsync_otel import attributes as attr
from wedsync_otel._sdk import enriched_copy
from wedsync_otel.rules import Verdict

MS = 1_000_000
START = int(dt.datetime(2026, 6, 16, 10, 0, tzinfo=dt.UTC).timestamp()) * 1_000_000_000


def serve(
    pipeline: Pipeline,
    route: str,
    *,
    duration_ms: float = 10.0,
    extra: dict[str, Any] | None = None,
    status: int = 200,
    name: str = "request",
) -> ReadableSpan:
    attributes: dict[str, Any] = {
        "http.request.method": "GET",
        "http.route": route,
        "http.response.status_code": status,
    }
    attributes.update(extra or {})
    span = pipeline.tracer.start_span(
        name, kind=SpanKind.SERVER, attributes=attributes, start_time=START
    )
    span.end(end_time=START + int(duration_ms * MS))
    return pipeline.only_span(name)


def test_server_span_carries_the_whole_attribute_contract(pipeline: Pipeline) -> None:
    """An enriched server span has every contract attribute with the right type."""
    span = serve(
        pipeline,
        "/api/venues/{venue_id}/availability",
        duration_ms=120,
        extra={attr.WEDDING_DATE: "2026-06-21"},
    )
    assert dict(span.attributes or {}) == {
        "http.request.method": "GET",
        "http.route": "/api/venues/{venue_id}/availability",
        "http.response.status_code": 200,
        attr.WEDDING_DATE: "2026-06-21",
        attr.WEDDING_ENDPOINT: "venue_availability",
        attr.WEDDING_CRITICAL: True,
        attr.WEDDING_PROXIMITY: "final_week",
        attr.WEDDING_DAYS_UNTIL: 5,
        attr.WEDDING_SATURDAY: False,
        attr.WEDDING_SEASON: True,
        attr.WEDDING_THRESHOLD_MS: 150.0,
        attr.WEDDING_DURATION_MS: 120.0,
        attr.WEDDING_THRESHOLD_BREACHED: False,
        attr.WEDDING_APDEX: "satisfied",
        attr.ROLLUP_APP_DURATION_MS: 120.0,
    }


def test_roll_up_zeros_appear_once_the_app_has_that_kind_of_work(pipeline: Pipeline) -> None:
    """No cache or DB zeros before such work is seen; after it, every request carries them."""
    before = serve(pipeline, "/api/payments/charge", name="before").attributes or {}
    assert not [key for key in before if key.startswith(("wedding.cache.", "wedding.db."))]
    with (
        pipeline.tracer.start_as_current_span("work", kind=SpanKind.SERVER),
        pipeline.tracer.start_as_current_span("SELECT", kind=SpanKind.CLIENT) as query,
    ):
        query.set_attributes({"db.system": "sqlite", "db.statement": "SELECT 1"})
    after_db = serve(pipeline, "/api/payments/charge", name="after-db").attributes or {}
    assert {key: after_db[key] for key in after_db if key.startswith("wedding.db.")} == {
        attr.ROLLUP_DB_QUERIES: 0,
        attr.ROLLUP_DB_CONTROL: 0,
        attr.ROLLUP_DB_DURATION_MS: 0.0,
        attr.ROLLUP_DB_SLOW_QUERIES: 0,
    }
    assert not [key for key in after_db if key.startswith("wedding.cache.")]
    with (
        pipeline.tracer.start_as_current_span("work", kind=SpanKind.SERVER),
        pipeline.tracer.start_as_current_span("GET", kind=SpanKind.CLIENT) as get,
    ):
        get.set_attributes({attr.CACHE_BACKEND: "redis", attr.CACHE_HIT: True})
    after_cache = serve(pipeline, "/api/payments/charge", name="after-cache").attributes or {}
    assert {key: after_cache[key] for key in after_cache if key.startswith("wedding.cache.")} == {
        attr.ROLLUP_CACHE_HITS: 0,
        attr.ROLLUP_CACHE_MISSES: 0,
        attr.ROLLUP_CACHE_DURATION_MS: 0.0,
    }
    assert after_cache[attr.ROLLUP_DB_QUERIES] == 0


@pytest.mark.parametrize(
    ("route", "now", "wedding_date", "threshold_ms"),
    [
        ("/api/payments/charge", SATURDAY, None, 75.0),
        ("/api/venues/{venue_id}/availability", None, "2026-06-21", 150.0),
        ("/api/suppliers/{supplier_id}/profile", SATURDAY, None, 500.0),
        ("/api/couples/{couple_id}/timeline", None, "2026-06-16", 100.0),
        ("/api/unknown", None, None, 200.0),
    ],
)
def test_threshold_follows_the_issue_examples(
    pipeline: Pipeline,
    clock: FakeClock,
    route: str,
    now: dt.datetime | None,
    wedding_date: str | None,
    threshold_ms: float,
) -> None:
    """The threshold on the span matches the worked examples of the threshold rule."""
    if now is not None:
        clock.now = now
    extra = {attr.WEDDING_DATE: wedding_date} if wedding_date else {}
    span = serve(pipeline, route, extra=extra)
    assert (span.attributes or {})[attr.WEDDING_THRESHOLD_MS] == threshold_ms


@pytest.mark.parametrize(
    ("duration_ms", "status", "apdex", "breached"),
    [
        (100.0, 200, "satisfied", False),
        (200.0, 200, "satisfied", False),
        (200.5, 200, "tolerating", True),
        (800.0, 200, "tolerating", True),
        (800.5, 200, "frustrated", True),
        (5.0, 503, "frustrated", False),
        (5.0, 404, "satisfied", False),
    ],
)
def test_apdex_class_and_breach_follow_duration_and_status(
    pipeline: Pipeline, duration_ms: float, status: int, apdex: str, breached: bool
) -> None:
    """Apdex is satisfied up to T, tolerating up to 4T, frustrated beyond or on 5xx."""
    span = serve(pipeline, "/api/rsvp/respond", duration_ms=duration_ms, status=status)
    attributes = span.attributes or {}
    assert attributes[attr.WEDDING_THRESHOLD_MS] == 200.0
    assert attributes[attr.WEDDING_APDEX] == apdex
    assert attributes[attr.WEDDING_THRESHOLD_BREACHED] is breached


def test_error_status_frustrates_a_fast_request(pipeline: Pipeline) -> None:
    """A span with status ERROR is frustrated however fast it was."""
    span = pipeline.tracer.start_span(
        "failed", kind=SpanKind.SERVER, attributes={"http.route": "/api/rsvp"}
    )
    span.set_status(Status(StatusCode.ERROR))
    span.end()
    assert (pipeline.only_span("failed").attributes or {})[attr.WEDDING_APDEX] == "frustrated"


def test_old_http_conventions_classify_like_the_stable_ones(pipeline: Pipeline) -> None:
    """http.target with a query and http.status_code work like the stable conventions."""
    span = pipeline.tracer.start_span(
        "old",
        kind=SpanKind.SERVER,
        attributes={
            "http.method": "GET",
            "http.target": "/api/payments/42?x=1",
            "http.status_code": 502,
        },
    )
    span.end()
    attributes = pipeline.only_span("old").attributes or {}
    assert attributes[attr.WEDDING_ENDPOINT] == "payments"
    assert attributes[attr.WEDDING_APDEX] == "frustrated"


def test_route_wins_over_url_path(pipeline: Pipeline) -> None:
    """http.route is matched first, then url.path."""
    span = serve(pipeline, "/api/rsvp/{rsvp_id}", extra={"url.path": "/api/payments/1"})
    assert (span.attributes or {})[attr.WEDDING_ENDPOINT] == "rsvp"


def test_url_path_is_used_without_a_route(pipeline: Pipeline) -> None:
    """Without http.route the stable url.path classifies the span."""
    span = pipeline.tracer.start_span(
        "path", kind=SpanKind.SERVER, attributes={"url.path": "/api/guest-lists/7"}
    )
    span.end()
    assert (pipeline.only_span("path").attributes or {})[attr.WEDDING_ENDPOINT] == "guest_lists"


def test_children_and_client_spans_pass_through_untouched(pipeline: Pipeline) -> None:
    """Only server spans and local roots are enriched; a child internal span is forwarded as is."""
    with pipeline.tracer.start_as_current_span(
        "root", kind=SpanKind.SERVER, attributes={"http.route": "/api/rsvp"}
    ):
        with pipeline.tracer.start_as_current_span("child", attributes={"k": "v"}):
            pass
        with pipeline.tracer.start_as_current_span("client", kind=SpanKind.CLIENT):
            pass
    assert dict(pipeline.only_span("child").attributes or {}) == {"k": "v"}
    assert dict(pipeline.only_span("client").attributes or {}) == {}
    assert (pipeline.only_span("root").attributes or {})[attr.WEDDING_ENDPOINT] == "rsvp"


def test_a_local_root_internal_span_is_enriched(pipeline: Pipeline) -> None:
    """A local root that is not a server span (a background job) is enriched as ``other``."""
    with pipeline.tracer.start_as_current_span("nightly-job"):
        pass
    attributes = pipeline.only_span("nightly-job").attributes or {}
    assert attributes[attr.WEDDING_ENDPOINT] == "other"
    assert attributes[attr.WEDDING_THRESHOLD_MS] == 200.0


@pytest.mark.parametrize(
    "garbage",
    ["2026-02-30", "tomorrow", "x" * 100_000, 20260620, 3.5, ["2026-06-20"], True, ""],
)
def test_garbage_wedding_date_is_forwarded_as_unknown(pipeline: Pipeline, garbage: Any) -> None:
    """An unusable wedding.date gives proximity unknown and a counted warning; the span goes out."""
    span = serve(pipeline, "/api/payments", extra={attr.WEDDING_DATE: garbage})
    attributes = span.attributes or {}
    assert attributes[attr.WEDDING_PROXIMITY] == "unknown"
    assert attr.WEDDING_DAYS_UNTIL not in attributes
    assert pipeline.processor.stats().invalid_dates == 1


@pytest.mark.parametrize(
    "garbage", [12345, None, b"/api/payments", "/" + "a/" * 5000, "\x00\udcff", ["/api/rsvp"]]
)
def test_garbage_routes_classify_as_other(pipeline: Pipeline, garbage: Any) -> None:
    """Wrong types and huge or odd strings in http.route never break enrichment."""
    span = pipeline.tracer.start_span("odd", kind=SpanKind.SERVER)
    span.set_attribute("http.route", garbage)
    span.end()
    assert (pipeline.only_span("odd").attributes or {}).get(attr.WEDDING_ENDPOINT) == "other"


def test_span_ending_before_it_started_is_forwarded_without_a_duration(pipeline: Pipeline) -> None:
    """A negative duration is counted and the duration-based attributes are left out."""
    span = pipeline.tracer.start_span(
        "backwards", kind=SpanKind.SERVER, attributes={"http.route": "/api/rsvp"}, start_time=START
    )
    span.end(end_time=START - MS)
    attributes = pipeline.only_span("backwards").attributes or {}
    assert attributes[attr.WEDDING_ENDPOINT] == "rsvp"
    assert attr.WEDDING_DURATION_MS not in attributes
    assert attr.WEDDING_APDEX not in attributes
    assert pipeline.processor.stats().invalid_durations == 1


def test_enriched_copy_keeps_every_public_property_of_the_original(pipeline: Pipeline) -> None:
    """The copy differs from the original only in its attributes."""
    with pipeline.tracer.start_as_current_span(
        "full", kind=SpanKind.SERVER, attributes={"http.route": "/api/rsvp"}
    ) as live:
        live.add_event("checkpoint", {"n": 1})
        live.set_status(Status(StatusCode.OK))
    original = pipeline.only_span("full")
    copy = enriched_copy(original, {"a": 1})
    for name in (
        "name",
        "context",
        "parent",
        "kind",
        "status",
        "events",
        "links",
        "resource",
        "instrumentation_scope",
        "start_time",
        "end_time",
        "dropped_attributes",
        "dropped_events",
        "dropped_links",
    ):
        assert getattr(copy, name) == getattr(original, name), name
    assert dict(copy.attributes or {}) == {"a": 1}
    assert copy.to_json() != original.to_json()


def test_wedding_attributes_the_span_set_itself_are_replaced_by_the_verdict(
    pipeline: Pipeline,
) -> None:
    """A span that set wedding.* names of the contract itself carries the processor's values."""
    span = serve(
        pipeline,
        "/api/payments/charge",
        duration_ms=400,
        extra={
            attr.WEDDING_ENDPOINT: "spoofed",
            attr.WEDDING_THRESHOLD_MS: 99999.0,
            attr.WEDDING_APDEX: "satisfied",
            "app.own": "kept",
        },
    )
    attributes = span.attributes or {}
    assert attributes[attr.WEDDING_ENDPOINT] == "payments"
    assert attributes[attr.WEDDING_THRESHOLD_MS] == 150.0
    assert attributes[attr.WEDDING_APDEX] == "tolerating"
    assert attributes[attr.WEDDING_THRESHOLD_BREACHED] is True
    assert attributes["app.own"] == "kept"


class RecordingProcessor(SpanProcessor):
    """A downstream processor that remembers which lifecycle calls reached it."""

    def __init__(self, *, fail_on_end: bool = False) -> None:
        self.calls: list[str] = []
        self.ended: list[ReadableSpan] = []
        self.fail_on_end = fail_on_end

    def on_start(self, span: Span, parent_context: Context | None = None) -> None:
        self.calls.append("on_start")

    def _on_ending(self, span: Span) -> None:
        self.calls.append("_on_ending")

    def on_end(self, span: ReadableSpan) -> None:
        self.calls.append("on_end")
        if self.fail_on_end:
            raise RuntimeError("downstream broke")
        self.ended.append(span)

    def shutdown(self) -> None:
        self.calls.append("shutdown")

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        self.calls.append(f"force_flush:{timeout_millis}")
        return True


def test_lifecycle_calls_reach_downstream() -> None:
    """on_start, _on_ending, on_end, force_flush and shutdown are all forwarded."""
    downstream = RecordingProcessor()
    provider = TracerProvider()
    provider.add_span_processor(WeddingSpanProcessor(downstream))
    provider.get_tracer("t").start_span("s").end()
    assert provider.force_flush(60_000)
    provider.shutdown()
    assert downstream.calls[:3] == ["on_start", "_on_ending", "on_end"]
    assert downstream.calls[4] == "shutdown"
    flush, timeout = downstream.calls[3].split(":")
    assert flush == "force_flush"
    assert 0 < int(timeout) <= 60_000  # the SDK passes what is left of the caller's deadline


def test_a_failing_downstream_never_raises_into_the_application() -> None:
    """A downstream that raises is counted; span.end() returns normally."""
    downstream = RecordingProcessor(fail_on_end=True)
    processor = WeddingSpanProcessor(downstream)
    provider = TracerProvider()
    provider.add_span_processor(processor)
    provider.get_tracer("t").start_span("s", kind=SpanKind.SERVER).end()
    assert processor.stats().downstream_errors == 1


def _broken_listener(span: ReadableSpan, verdict: Verdict) -> None:
    raise ZeroDivisionError("bug in a listener")


def test_internal_errors_are_raised_under_pytest(pipeline: Pipeline) -> None:
    """Under pytest an internal bug fails loudly instead of hiding."""
    pipeline.processor.add_verdict_listener(_broken_listener)
    span = pipeline.tracer.start_span("s", kind=SpanKind.SERVER)
    with pytest.raises(ZeroDivisionError):
        span.end()


def test_internal_errors_are_swallowed_in_production(
    pipeline: Pipeline, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """Outside tests an internal bug is logged once and the enriched span still goes out."""
    monkeypatch.setenv("WEDSYNC_OTEL_RAISE_INTERNAL_ERRORS", "0")
    pipeline.processor.add_verdict_listener(_broken_listener)
    for _ in range(3):
        pipeline.tracer.start_span("s", kind=SpanKind.SERVER).end()
    assert len(pipeline.spans()) == 3
    assert all(attr.WEDDING_ENDPOINT in (s.attributes or {}) for s in pipeline.spans())
    assert sum("internal error" in r.getMessage() for r in caplog.records) == 1


def test_verdict_listeners_see_the_judgement(pipeline: Pipeline) -> None:
    """A listener receives the enriched copy and a verdict consistent with its attributes."""
    seen: list[tuple[ReadableSpan, Verdict]] = []
    pipeline.processor.add_verdict_listener(lambda span, verdict: seen.append((span, verdict)))
    serve(pipeline, "/api/payments/x", duration_ms=400, status=201)
    ((span, verdict),) = seen
    assert verdict.judgement.endpoint == "payments"
    assert verdict.duration_ms == 400.0
    assert verdict.status_code == 201
    assert verdict.apdex.value == (span.attributes or {})[attr.WEDDING_APDEX] == "tolerating"


def test_concurrent_threads_each_get_their_own_verdict(
    make_pipeline: Callable[..., Pipeline],
) -> None:
    """Spans ended on many threads at once are all enriched with their own endpoint."""
    pipeline = make_pipeline()
    routes = ["/api/payments", "/api/rsvp", "/api/guest-lists", "/elsewhere"]
    expected = {
        "/api/payments": "payments",
        "/api/rsvp": "rsvp",
        "/api/guest-lists": "guest_lists",
        "/elsewhere": "other",
    }
    barrier = threading.Barrier(8, timeout=60)

    def work(index: int) -> None:
        barrier.wait()
        for n in range(200):
            route = routes[(index + n) % len(routes)]
            pipeline.tracer.start_span(
                route, kind=SpanKind.SERVER, attributes={"http.route": route}
            ).end()

    threads = [threading.Thread(target=work, args=(i,)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert not any(thread.is_alive() for thread in threads)
    spans = pipeline.spans()
    assert len(spans) == 1600
    assert all((s.attributes or {})[attr.WEDDING_ENDPOINT] == expected[s.name] for s in spans)


def test_wedding_day_band_uses_the_platform_time_zone(pipeline: Pipeline, clock: FakeClock) -> None:
    """At 00:30 BST on the wedding day (23:30 UTC the day before) the band is wedding_day."""
    clock.now = dt.datetime(2026, 6, 19, 23, 30, tzinfo=dt.UTC)
    span = serve(pipeline, "/api/rsvp", extra={attr.WEDDING_DATE: "2026-06-20"})
    attributes = span.attributes or {}
    assert attributes[attr.WEDDING_PROXIMITY] == "wedding_day"
    assert attributes[attr.WEDDING_SATURDAY] is True
    assert attributes[attr.WEDDING_THRESHOLD_MS] == 100.0


def test_without_a_clock_the_span_start_time_is_now() -> None:
    """The default clock is the span's own start time, so a replayed span is judged on its day."""
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(WeddingSpanProcessor(SimpleSpanProcessor(exporter)))
    saturday_ns = int(SATURDAY.timestamp()) * 1_000_000_000
    span = provider.get_tracer("t").start_span(
        "s",
        kind=SpanKind.SERVER,
        attributes={"http.route": "/api/payments"},
        start_time=saturday_ns,
    )
    span.end(end_time=saturday_ns + MS)
    attributes = exporter.get_finished_spans()[0].attributes or {}
    assert attributes[attr.WEDDING_SATURDAY] is True
    assert attributes[attr.WEDDING_THRESHOLD_MS] == 75.0


def test_config_without_saturday_mode_keeps_base_thresholds(
    make_pipeline: Callable[..., Pipeline], clock: FakeClock
) -> None:
    """With Saturday mode off a Saturday payment keeps its base threshold."""
    pipeline = make_pipeline(WeddingConfig(saturday_mode=False))
    clock.now = SATURDAY
    span = serve(pipeline, "/api/payments")
    assert (span.attributes or {})[attr.WEDDING_THRESHOLD_MS] == 150.0


def _unclocked() -> tuple[TracerProvider, WeddingSpanProcessor, InMemorySpanExporter]:
    exporter = InMemorySpanExporter()
    processor = WeddingSpanProcessor(SimpleSpanProcessor(exporter))
    provider = TracerProvider()
    provider.add_span_processor(processor)
    return provider, processor, exporter


def test_without_a_clock_each_span_is_judged_on_its_own_day() -> None:
    """Spans alternating between a Tuesday and a Saturday each get their own day's verdict."""
    provider, _, exporter = _unclocked()
    tracer = provider.get_tracer("t")
    days = [TUESDAY, SATURDAY, SATURDAY + dt.timedelta(minutes=30), TUESDAY, SATURDAY]
    for day in days:
        start = int(day.timestamp()) * 1_000_000_000
        span = tracer.start_span(
            "s", kind=SpanKind.SERVER, attributes={"http.route": "/api/payments"}, start_time=start
        )
        span.end(end_time=start + MS)
    saturdays = [(s.attributes or {})[attr.WEDDING_SATURDAY] for s in exporter.get_finished_spans()]
    assert saturdays == [day.weekday() == 5 for day in days]


def test_distinct_paths_past_the_bound_evict_and_are_counted() -> None:
    """Distinct paths beyond the cache's bound evict older ones, each eviction counted."""
    provider, processor, exporter = _unclocked()
    tracer = provider.get_tracer("t")
    extra = 25
    for n in range(10_000 + extra):
        tracer.start_span(
            "s", kind=SpanKind.SERVER, attributes={"url.path": f"/api/payments/{n}"}
        ).end()
    assert processor.stats().path_cache_evictions == extra
    endpoints = {(s.attributes or {})[attr.WEDDING_ENDPOINT] for s in exporter.get_finished_spans()}
    assert endpoints == {"payments"}


def test_query_strings_do_not_fill_the_route_cache() -> None:
    """Old-style targets that differ only in their query string share one cache entry."""
    provider, processor, exporter = _unclocked()
    tracer = provider.get_tracer("t")
    for n in range(12_000):
        tracer.start_span(
            "s", kind=SpanKind.SERVER, attributes={"http.target": f"/api/rsvp/respond?token={n}"}
        ).end()
    assert processor.stats().path_cache_evictions == 0
    endpoints = {(s.attributes or {})[attr.WEDDING_ENDPOINT] for s in exporter.get_finished_spans()}
    assert endpoints == {"rsvp"}
