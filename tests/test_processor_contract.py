"""The SDK's span-processor contract, kept by WeddingSpanProcessor around any downstream.

Limits, dropped counts, lifecycle hooks and errors as the SDK's own pipeline
would have them, checked through a real TracerProvider.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from typing import Any, ClassVar

import pytest
from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.sdk.trace import ReadableSpan, Span, SpanLimits, SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import Link, NonRecordingSpan, SpanContext, SpanKind, TraceFlags

from wedsync_otel import WeddingSpanProcessor, wedding_context
from wedsync_otel import attributes as attr
from wedsync_otel._sdk import KEPT_FIRST
from wedsync_otel._wedding_marks import MARKS

ROUTE = {"http.route": "/api/payments"}
QUERY = {"db.system": "sqlite", "db.statement": "SELECT name FROM guests WHERE id = ?"}


class Recorder(SpanProcessor):
    """A downstream that keeps every span and hook call it gets."""

    def __init__(self) -> None:
        self.started: list[object] = []
        self.ending: list[object] = []
        self.ended: list[object] = []

    def on_start(self, span: Span, parent_context: Context | None = None) -> None:
        self.started.append(span)

    def _on_ending(self, span: Span) -> None:
        self.ending.append(span)

    def on_end(self, span: ReadableSpan) -> None:
        self.ended.append(span)


class Failing(SpanProcessor):
    """A downstream whose lifecycle methods raise."""

    def __init__(self) -> None:
        self.shutdowns = 0

    def shutdown(self) -> None:
        self.shutdowns += 1
        raise RuntimeError("downstream shutdown broke")

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        raise RuntimeError("downstream flush broke")


def _pipeline(limits: SpanLimits | None = None) -> tuple[TracerProvider, InMemorySpanExporter]:
    exporter = InMemorySpanExporter()
    provider = TracerProvider(span_limits=limits or SpanLimits())
    provider.add_span_processor(WeddingSpanProcessor(SimpleSpanProcessor(exporter)))
    return provider, exporter


@pytest.fixture(autouse=True)
def _no_marks_left() -> Iterator[None]:
    yield
    MARKS.clear()


class DuckSpan:
    """Something that is not an SDK span but reaches processors anyway."""

    name = "duck"
    attributes: ClassVar = {"user.email": "ada@example.com"}


@pytest.mark.parametrize(
    "span",
    [
        NonRecordingSpan(SpanContext(1, 2, is_remote=False, trace_flags=TraceFlags(1))),
        NonRecordingSpan(SpanContext(0, 0, is_remote=False)),
        DuckSpan(),
        object(),
        None,
    ],
    ids=["non-recording", "invalid-context", "duck", "object", "none"],
)
def test_a_span_the_sdk_did_not_make_is_forwarded_untouched(span: Any) -> None:
    """Not an SDK span: every hook forwards the very object, and no internal error is raised."""
    downstream = Recorder()
    processor = WeddingSpanProcessor(downstream)
    processor.on_start(span)
    processor._on_ending(span)
    processor.on_end(span)
    assert downstream.started == [span]
    assert downstream.ending == [span]
    assert downstream.ended == [span]


def test_a_hook_replaced_after_construction_is_called() -> None:
    """Which downstream hooks run is not decided once: a hook set later still runs."""
    downstream = SimpleSpanProcessor(InMemorySpanExporter())
    processor = WeddingSpanProcessor(downstream)
    seen: list[str] = []
    downstream.on_start = lambda span, parent_context=None: seen.append("on_start")  # type: ignore[method-assign]
    downstream._on_ending = lambda span: seen.append("_on_ending")  # type: ignore[method-assign]
    provider = TracerProvider()
    provider.add_span_processor(processor)
    provider.get_tracer("t").start_span("s").end()
    assert seen == ["on_start", "_on_ending"]


def _n_plus_one_request(tracer: trace.Tracer, *, app_events: int) -> None:
    """A request that records ``app_events`` events and runs one query shape six times."""
    with tracer.start_as_current_span("request", kind=SpanKind.SERVER, attributes=ROUTE) as root:
        for index in range(app_events):
            root.add_event(f"app.event{index}")
        for _ in range(6):
            tracer.start_span("SELECT", attributes=QUERY).end()


@pytest.mark.parametrize(("max_events", "app_events"), [(2, 5), (3, 3), (4, 1), (1, 0)])
def test_the_n_plus_one_event_keeps_the_event_limit_and_the_dropped_count(
    max_events: int, app_events: int
) -> None:
    """The N+1 event is added as the SDK adds one: oldest dropped at the limit, and counted."""
    provider, exporter = _pipeline(SpanLimits(max_events=max_events))
    _n_plus_one_request(provider.get_tracer("t"), app_events=app_events)
    root = next(s for s in exporter.get_finished_spans() if s.name == "request")
    every = [*(f"app.event{index}" for index in range(app_events)), attr.DB_N_PLUS_ONE]
    assert [event.name for event in root.events] == every[-max_events:]
    assert root.dropped_events == max(0, len(every) - max_events)


def test_the_n_plus_one_event_obeys_the_event_attribute_limit() -> None:
    """The event carries at most ``max_event_attributes`` attributes, like any SDK event."""
    provider, exporter = _pipeline(SpanLimits(max_event_attributes=1))
    _n_plus_one_request(provider.get_tracer("t"), app_events=0)
    root = next(s for s in exporter.get_finished_spans() if s.name == "request")
    (event,) = root.events
    assert len(event.attributes or {}) == 1


def test_scrubbed_events_and_links_keep_their_limits_and_dropped_counts() -> None:
    """Events and links the scrubber rewrites keep the SDK's bound and dropped count."""
    provider, exporter = _pipeline(SpanLimits(max_events=2, max_links=1))
    tracer = provider.get_tracer("t")
    other = SpanContext(7, 8, is_remote=True)
    links = [Link(other, {"guest.email": "ada@example.com"}), Link(other, {"k": "v"})]
    span = tracer.start_span("work", links=links)
    for index in range(4):
        span.add_event("sent", {"to": f"guest{index}@example.com"})
    span.end()
    (exported,) = exporter.get_finished_spans()
    assert len(exported.events) == 2
    assert exported.dropped_events == 2
    assert len(exported.links) == 1
    assert exported.dropped_links == 1
    assert "example.com" not in repr([dict(e.attributes or {}) for e in exported.events])


def test_the_wedding_never_takes_an_application_attribute_slot() -> None:
    """At the attribute limit the application's own attributes all survive wedding_context."""
    provider, exporter = _pipeline()
    tracer = provider.get_tracer("t")
    own = {**ROUTE, **{f"app.k{index:03}": index for index in range(127)}}
    with wedding_context(wedding_id="1001", wedding_date="2026-06-20"):
        span = tracer.start_span("request", kind=SpanKind.SERVER, attributes=own)
        with (
            trace.use_span(span, end_on_exit=True),
            wedding_context(wedding_id="1002", wedding_date="2026-06-21"),
        ):
            assert attr.WEDDING_ID not in (span.attributes or {})  # nothing on the live span
    (exported,) = exporter.get_finished_spans()
    attributes = dict(exported.attributes or {})
    assert {key: attributes[key] for key in own} == own
    assert len(attributes) == 128
    assert exported.dropped_attributes == len(_unlimited_attributes(own, "1001")) - 128


def _unlimited_attributes(own: dict[str, Any], wedding_id: str | None = None) -> dict[str, Any]:
    """What the same request exports with no attribute limit (in a wedding, given its id)."""
    provider, exporter = _pipeline(SpanLimits(max_span_attributes=10_000))
    tracer = provider.get_tracer("t")
    if wedding_id is None:
        tracer.start_span("request", kind=SpanKind.SERVER, attributes=own).end()
    else:
        with wedding_context(wedding_id=wedding_id, wedding_date="2026-06-20"):
            tracer.start_span("request", kind=SpanKind.SERVER, attributes=own).end()
    (span,) = exporter.get_finished_spans()
    return dict(span.attributes or {})


def test_a_wedding_set_by_the_application_wins_over_the_context() -> None:
    """An application's own wedding.id is exported, not the context's."""
    provider, exporter = _pipeline()
    with wedding_context(wedding_id="2002"):
        provider.get_tracer("t").start_span(
            "request", kind=SpanKind.SERVER, attributes={**ROUTE, attr.WEDDING_ID: "1001"}
        ).end()
    (span,) = exporter.get_finished_spans()
    assert (span.attributes or {})[attr.WEDDING_ID] == "1001"


@pytest.mark.parametrize("limit", [0, 1, 2, 3, 5, 8, 12, 20, 30])
def test_the_attribute_limit_holds_on_the_copy_with_the_application_first(limit: int) -> None:
    """A limit of N exports at most N attributes: the application's, then ours by priority."""
    own = {**ROUTE, "app.a": 1, "app.b": 2}
    provider, exporter = _pipeline(SpanLimits(max_span_attributes=limit))
    provider.get_tracer("t").start_span("request", kind=SpanKind.SERVER, attributes=own).end()
    (span,) = exporter.get_finished_spans()
    attributes = dict(span.attributes or {})
    full = _unlimited_attributes(own)
    kept_own = [key for key in own if key in attributes]
    assert len(attributes) == min(limit, len(full))
    assert kept_own == list(own)[max(0, len(own) - limit) :]  # the SDK keeps the newest
    assert span.dropped_attributes == len(full) - len(attributes)
    if limit > len(own):
        wanted = [key for key in KEPT_FIRST if key in full][: limit - len(own)]
        assert set(wanted) <= set(attributes)
    timed = (attr.WEDDING_DURATION_MS, attr.ROLLUP_APP_DURATION_MS)  # differ from run to run
    assert all(attributes[key] == full[key] for key in attributes if key not in timed)


def test_no_limit_exports_everything() -> None:
    """With the attribute limit unset nothing is trimmed or counted."""
    provider, exporter = _pipeline(SpanLimits(max_span_attributes=SpanLimits.UNSET))
    own = {**ROUTE, **{f"app.k{index}": index for index in range(300)}}
    provider.get_tracer("t").start_span("request", kind=SpanKind.SERVER, attributes=own).end()
    (span,) = exporter.get_finished_spans()
    assert len(span.attributes or {}) > 300
    assert span.dropped_attributes == 0


def test_attributes_the_scrubber_drops_are_counted_as_dropped() -> None:
    """An attribute the scrubber removes (data in its name) counts in dropped_attributes."""
    provider, exporter = _pipeline()
    sampled = SpanContext(1, 2, is_remote=False, trace_flags=TraceFlags(TraceFlags.SAMPLED))
    parent = trace.set_span_in_context(NonRecordingSpan(sampled))
    provider.get_tracer("t").start_span(
        "s",
        context=parent,
        attributes={"redis.search.xdoc_guest:ada@example.com.name": "x", "k": "v"},
    ).end()
    (span,) = exporter.get_finished_spans()
    assert dict(span.attributes or {}) == {"k": "v"}
    assert span.dropped_attributes == 1


def test_a_failing_downstream_shutdown_is_caught_logged_counted_and_done_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """shutdown() never raises, logs and counts the downstream's error, and runs only once."""
    downstream = Failing()
    processor = WeddingSpanProcessor(downstream)
    with caplog.at_level(logging.WARNING, logger="wedsync_otel"):
        processor.shutdown()
        processor.shutdown()
    assert downstream.shutdowns == 1
    assert processor.stats().downstream_errors == 1
    assert "shutdown" in caplog.text


def test_a_failing_downstream_flush_returns_false() -> None:
    """force_flush() answers False, as for a flush that did not finish, and counts the error."""
    processor = WeddingSpanProcessor(Failing())
    assert processor.force_flush(10) is False
    assert processor.stats().downstream_errors == 1


def test_force_flush_returns_what_the_downstream_answers() -> None:
    """The downstream's own answer, unchanged."""

    class Slow(SpanProcessor):
        def force_flush(self, timeout_millis: int = 30000) -> bool:
            return timeout_millis > 100

    processor = WeddingSpanProcessor(Slow())
    assert processor.force_flush(50) is False
    assert processor.force_flush(500) is True


def test_concurrent_registrations_are_all_kept() -> None:
    """Listeners and observers added from many threads at once are all registered."""
    processor = WeddingSpanProcessor(Recorder())
    threads, per_thread = 8, 300
    start = threading.Barrier(threads, timeout=60)

    def register() -> None:
        start.wait()
        for _ in range(per_thread):
            processor.add_verdict_listener(lambda span, verdict: None)
            processor.add_query_observer(_Observer())

    workers = [threading.Thread(target=register) for _ in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(60)
    assert not any(worker.is_alive() for worker in workers)
    assert len(processor._listeners) == threads * per_thread
    assert len(processor.query_observers) == threads * per_thread


class _Observer:
    def observe(self, *, fingerprint: str, statement: str, duration_ms: float) -> None:
        """Nothing to do."""

    def report_n_plus_one(self, *, fingerprint: str, statement: str, count: int) -> None:
        """Nothing to do."""
