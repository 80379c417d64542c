"""Wedding context: wedding_context, the resolver, and baggage trust."""

from __future__ import annotations

import asyncio
import contextvars
import datetime as dt
import threading
from collections.abc import Callable, Iterator

import pytest
from opentelemetry import baggage
from opentelemetry import context as otel_context
from opentelemetry.trace import SpanKind

from helpers import Pipeline
from wedsync_otel import (
    WeddingConfig,
    current_wedding,
    set_wedding_resolver,
    wedding_context,
)
from wedsync_otel import attributes as attr
from wedsync_otel.context import ResolverCache, _current_context


@pytest.fixture(autouse=True)
def _no_resolver() -> Iterator[None]:
    yield
    set_wedding_resolver(None)


def proximity(pipeline: Pipeline, name: str) -> object:
    return (pipeline.only_span(name).attributes or {}).get(attr.WEDDING_PROXIMITY)


def test_wedding_context_marks_the_current_server_span(pipeline: Pipeline) -> None:
    """Entered inside a server span, the context gives that span its wedding's band."""
    with (
        pipeline.tracer.start_as_current_span("request", kind=SpanKind.SERVER),
        wedding_context(wedding_id="w-1", wedding_date=dt.date(2026, 6, 18)),
    ):
        pass
    attributes = pipeline.only_span("request").attributes or {}
    assert attributes[attr.WEDDING_ID] == "w-1"
    assert attributes[attr.WEDDING_PROXIMITY] == "final_week"
    assert attributes[attr.WEDDING_DAYS_UNTIL] == 2


def test_an_attribute_set_on_the_span_wins_over_the_context(pipeline: Pipeline) -> None:
    """A wedding.date set on the span first is not overwritten by wedding_context."""
    with pipeline.tracer.start_as_current_span("request", kind=SpanKind.SERVER) as span:
        span.set_attribute(attr.WEDDING_DATE, "2026-06-16")
        with wedding_context(wedding_date="2027-01-01"):
            pass
    assert proximity(pipeline, "request") == "wedding_day"


def test_spans_started_in_a_thread_that_carries_the_context_inherit_it(pipeline: Pipeline) -> None:
    """A local root started in a thread running a copy of the context knows the wedding."""
    with wedding_context(wedding_date="2026-06-16"):
        carried = contextvars.copy_context()

    def job() -> None:
        with pipeline.tracer.start_as_current_span("thread-job"):
            pass

    thread = threading.Thread(target=carried.run, args=(job,))
    thread.start()
    thread.join()
    assert proximity(pipeline, "thread-job") == "wedding_day"


def test_asyncio_tasks_inherit_the_wedding(pipeline: Pipeline) -> None:
    """Tasks created inside the context, including under gather, inherit it; others do not."""

    async def job(name: str) -> None:
        with pipeline.tracer.start_as_current_span(name):
            await asyncio.sleep(0)

    async def main() -> None:
        with wedding_context(wedding_date="2026-07-01"):
            await asyncio.gather(job("a"), job("b"))
        await asyncio.create_task(job("outside"))

    asyncio.run(main())
    assert proximity(pipeline, "a") == proximity(pipeline, "b") == "final_month"
    assert proximity(pipeline, "outside") == "unknown"


def test_context_is_gone_after_the_block() -> None:
    """Leaving wedding_context restores the previous context."""
    with wedding_context(wedding_id=7):
        assert current_wedding() is not None
    assert current_wedding() is None


@pytest.mark.parametrize("bad_date", ["2026-13-01", "soon", 20260101, dt.datetime(2026, 1, 1)])
def test_a_bad_date_is_ignored_without_raising(bad_date: object) -> None:
    """wedding_context never raises on a bad date; the date is simply unknown."""
    with wedding_context(wedding_id="w", wedding_date=bad_date) as wedding:  # type: ignore[arg-type]
        assert wedding.wedding_date is None
        assert wedding.wedding_id == "w"


def test_the_resolver_supplies_the_date_for_an_id(pipeline: Pipeline) -> None:
    """With a resolver registered, an id alone is enough; answers are cached."""
    calls: list[str] = []

    def resolver(wedding_id: str) -> dt.date:
        calls.append(wedding_id)
        return dt.date(2026, 6, 17)

    set_wedding_resolver(resolver, timeout_ms=5_000)
    for name in ("first", "second"):
        with (
            pipeline.tracer.start_as_current_span(name, kind=SpanKind.SERVER),
            wedding_context(wedding_id="w-9"),
        ):
            pass
    assert proximity(pipeline, "first") == proximity(pipeline, "second") == "final_week"
    assert calls == ["w-9"]


def test_a_raising_resolver_leaves_the_date_unknown(pipeline: Pipeline) -> None:
    """A resolver that raises never breaks the request."""

    def resolver(wedding_id: str) -> dt.date:
        raise LookupError(wedding_id)

    set_wedding_resolver(resolver, timeout_ms=5_000)
    with (
        pipeline.tracer.start_as_current_span("request", kind=SpanKind.SERVER),
        wedding_context(wedding_id="w-1") as wedding,
    ):
        assert wedding.wedding_date is None
    assert proximity(pipeline, "request") == "unknown"


def test_a_hanging_resolver_costs_at_most_its_timeout_then_fills_the_cache() -> None:
    """While the resolver hangs the date is unknown; once it answers, the cache has it."""
    release = threading.Event()
    answered = threading.Event()

    def resolver(wedding_id: str) -> str:
        release.wait()
        answered.set()
        return "2026-06-20"

    cache = ResolverCache(resolver, timeout_ms=1)
    assert cache.resolve("w", wait_s=0.001) is None
    assert cache.timeouts == 1
    release.set()
    answered.wait()
    assert cache.resolve("w", wait_s=5) == dt.date(2026, 6, 20)


def test_resolver_cache_is_bounded_and_counts_evictions() -> None:
    """Past max_entries the oldest answers are evicted and counted."""
    cache = ResolverCache(lambda wedding_id: "2026-06-20", max_entries=3)
    for n in range(5):
        cache.resolve(f"w{n}", wait_s=5)
    assert cache.evictions == 2


def test_resolver_answers_expire_after_their_ttl() -> None:
    """An answer older than the TTL is looked up again."""
    now = [0.0]
    calls: list[str] = []

    def resolver(wedding_id: str) -> str:
        calls.append(wedding_id)
        return "2026-06-20"

    cache = ResolverCache(resolver, ttl_s=60, clock=lambda: now[0])
    cache.resolve("w", wait_s=5)
    now[0] = 59.0
    cache.resolve("w", wait_s=5)
    now[0] = 61.0
    cache.resolve("w", wait_s=5)
    assert calls == ["w", "w"]


def test_lookups_past_the_pending_bound_are_dropped_and_counted() -> None:
    """A resolver that hangs for every id never holds more than max_pending threads."""
    release = threading.Event()

    def resolver(wedding_id: str) -> str:
        release.wait()
        return "2026-06-20"

    cache = ResolverCache(resolver, max_pending=2)
    for n in range(5):
        assert cache.resolve(f"w{n}", wait_s=0) is None
    assert cache.dropped == 3
    release.set()


@pytest.mark.parametrize(("trusted", "band"), [(False, "unknown"), (True, "wedding_day")])
def test_baggage_is_used_only_when_trusted(
    make_pipeline: Callable[..., Pipeline], trusted: bool, band: str
) -> None:
    """Client baggage wedding.date changes nothing unless the config trusts baggage."""
    pipeline = make_pipeline(WeddingConfig(trust_baggage=trusted))
    token = otel_context.attach(baggage.set_baggage(attr.BAGGAGE_WEDDING_DATE, "2026-06-16"))
    try:
        with pipeline.tracer.start_as_current_span("request", kind=SpanKind.SERVER):
            pass
    finally:
        otel_context.detach(token)
    assert proximity(pipeline, "request") == band


def test_the_fast_current_context_reader_agrees_with_the_api() -> None:
    """The span-start shortcut to the current context returns what the API's get_current does."""
    token = otel_context.attach(otel_context.set_value("wedsync.test", 1))
    try:
        assert _current_context() is otel_context.get_current()
    finally:
        otel_context.detach(token)
    assert _current_context() is otel_context.get_current()
