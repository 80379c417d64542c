"""Wedding context: wedding_context, the resolver, and baggage trust."""

from __future__ import annotations

import asyncio
import contextvars
import dataclasses
import datetime as dt
import math
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from opentelemetry import baggage
from opentelemetry import context as otel_context
from opentelemetry.trace import SpanKind

from helpers import Pipeline
from wedsync_otel import (
    Wedding,
    WeddingConfig,
    current_wedding,
    set_wedding_resolver,
    wedding_context,
)
from wedsync_otel import attributes as attr
from wedsync_otel._safety import RAISE_INTERNAL_ERRORS_ENV
from wedsync_otel.context import (
    MAX_WEDDING_ID_CHARS,
    ResolverCache,
    ResolverStats,
    _current_context,
    resolver_stats,
    wedding_id_text,
)

WAIT_S = 60.0
"""The longest any wait here lasts: a regression fails the test instead of hanging the run."""


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
    thread.join(WAIT_S)
    assert not thread.is_alive()
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

    set_wedding_resolver(resolver, timeout_ms=60_000)
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

    set_wedding_resolver(resolver, timeout_ms=60_000)
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
        assert release.wait(WAIT_S)
        answered.set()
        return "2026-06-20"

    cache = ResolverCache(resolver, timeout_ms=1)
    try:
        assert cache.resolve("w", wait_s=0.001) is None
        assert cache.stats() == ResolverStats(timeouts=1)
    finally:
        release.set()
    assert answered.wait(WAIT_S)
    assert cache.resolve("w", wait_s=WAIT_S) == dt.date(2026, 6, 20)


def test_resolver_cache_is_bounded_and_counts_evictions() -> None:
    """Past max_entries the oldest answers are evicted and counted."""
    cache = ResolverCache(lambda wedding_id: "2026-06-20", max_entries=3)
    for n in range(5):
        cache.resolve(f"w{n}", wait_s=WAIT_S)
    assert cache.stats() == ResolverStats(evictions=2)


def test_resolver_answers_expire_after_their_ttl() -> None:
    """An answer older than the TTL is looked up again."""
    now = [0.0]
    calls: list[str] = []

    def resolver(wedding_id: str) -> str:
        calls.append(wedding_id)
        return "2026-06-20"

    cache = ResolverCache(resolver, ttl_s=60, monotonic=lambda: now[0])
    cache.resolve("w", wait_s=WAIT_S)
    now[0] = 59.0
    cache.resolve("w", wait_s=WAIT_S)
    now[0] = 61.0
    cache.resolve("w", wait_s=WAIT_S)
    assert calls == ["w", "w"]


def test_lookups_past_the_pending_bound_are_refused_and_counted() -> None:
    """A resolver that hangs for every id never holds more than max_pending threads."""
    release = threading.Event()

    def resolver(wedding_id: str) -> str:
        assert release.wait(WAIT_S)
        return "2026-06-20"

    cache = ResolverCache(resolver, max_pending=2)
    try:
        for n in range(5):
            assert cache.resolve(f"w{n}", wait_s=0) is None
        assert cache.stats() == ResolverStats(refusals=3)
        assert cache.refusals == 3
    finally:
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


# --- a resolver that fails in every way ---------------------------------------------------------


class TrioLikeCancelled(BaseException):
    """What trio raises to cancel: a BaseException, not an Exception."""


class GreenletExitLike(BaseException):
    """What gevent raises to kill a greenlet."""


FAILURES: list[type[BaseException]] = [
    LookupError,
    asyncio.CancelledError,
    KeyboardInterrupt,
    SystemExit,
    GeneratorExit,
    TrioLikeCancelled,
    GreenletExitLike,
]


class SteppedClock:
    """A monotonic clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def thread_crashes(monkeypatch: pytest.MonkeyPatch) -> list[BaseException | None]:
    """Exceptions that escaped any thread during the test (none should)."""
    seen: list[BaseException | None] = []
    monkeypatch.setattr(threading, "excepthook", lambda args: seen.append(args.exc_value))
    return seen


def failing_then(
    kind: type[BaseException], failures: int
) -> tuple[Callable[[str], str], list[str]]:
    """A resolver raising ``kind`` for its first ``failures`` calls, then answering."""
    calls: list[str] = []

    def resolver(wedding_id: str) -> str:
        calls.append(wedding_id)
        if len(calls) <= failures:
            raise kind(wedding_id)
        return "2026-06-20"

    return resolver, calls


@pytest.mark.parametrize("kind", FAILURES, ids=lambda kind: kind.__name__)
def test_a_resolver_raising_anything_means_no_date_at_once_and_is_counted(
    kind: type[BaseException], thread_crashes: list[BaseException | None]
) -> None:
    """Exception or BaseException, the wait ends at once with no date, counted as one error."""
    resolver, calls = failing_then(kind, failures=1)
    cache = ResolverCache(resolver, timeout_ms=60_000)
    assert cache.resolve("w", wait_s=60) is None
    assert cache.stats() == ResolverStats(errors=1)
    assert calls == ["w"]
    assert thread_crashes == []


@pytest.mark.parametrize("kind", FAILURES, ids=lambda kind: kind.__name__)
def test_a_failed_lookup_is_cached_for_error_ttl_only_then_recovers(
    kind: type[BaseException],
) -> None:
    """The failure answers for error_ttl_s without asking again; then a new lookup succeeds."""
    clock = SteppedClock()
    resolver, calls = failing_then(kind, failures=1)
    cache = ResolverCache(resolver, error_ttl_s=10, monotonic=clock)
    assert cache.resolve("w", wait_s=60) is None
    clock.now = 9.9
    assert cache.resolve("w", wait_s=60) is None
    assert calls == ["w"]
    clock.now = 10.1
    assert cache.resolve("w", wait_s=60) == dt.date(2026, 6, 20)
    assert calls == ["w", "w"]
    assert cache.stats() == ResolverStats(errors=1)


def test_base_exceptions_never_use_up_the_pending_slots() -> None:
    """Forty ids whose lookups are cancelled leave every slot free: the next id still resolves."""

    def resolver(wedding_id: str) -> str:
        if wedding_id.startswith("cancelled"):
            raise TrioLikeCancelled(wedding_id)
        return "2026-06-20"

    cache = ResolverCache(resolver, max_pending=2)
    for n in range(40):
        assert cache.resolve(f"cancelled-{n}", wait_s=60) is None
    assert cache.resolve("w", wait_s=60) == dt.date(2026, 6, 20)
    assert cache.stats() == ResolverStats(errors=40)


def test_every_waiter_on_a_cancelled_lookup_gets_no_date_from_one_call() -> None:
    """Requests waiting on the same failing lookup all end with no date; it ran once."""
    started, release = threading.Event(), threading.Event()
    calls: list[str] = []

    def resolver(wedding_id: str) -> str:
        calls.append(wedding_id)
        started.set()
        assert release.wait(WAIT_S)
        raise asyncio.CancelledError

    cache = ResolverCache(resolver, monotonic=SteppedClock())
    answers: list[dt.date | None] = []
    waiters = [
        threading.Thread(target=lambda: answers.append(cache.resolve("w", wait_s=WAIT_S)))
        for _ in range(8)
    ]
    try:
        assert cache.resolve("w", wait_s=0) is None
        assert started.wait(WAIT_S)
        for waiter in waiters:
            waiter.start()
    finally:
        release.set()
    for waiter in waiters:
        waiter.join(WAIT_S)
        assert not waiter.is_alive()
    assert answers == [None] * 8
    assert calls == ["w"]
    assert cache.stats() == ResolverStats(errors=1)


def test_resolve_async_ends_at_once_when_the_resolver_is_cancelled() -> None:
    """The asyncio wait sees the failed lookup complete instead of waiting out its timeout."""
    resolver, _ = failing_then(GreenletExitLike, failures=1)
    cache = ResolverCache(resolver, timeout_ms=60_000)
    assert asyncio.run(cache.resolve_async("w")) is None
    assert cache.stats() == ResolverStats(errors=1)


def test_cancelling_an_async_wait_cancels_only_the_wait() -> None:
    """A request task cancelled while it waits is cancelled; the lookup still fills the cache."""
    started, release = threading.Event(), threading.Event()

    def resolver(wedding_id: str) -> str:
        started.set()
        assert release.wait(WAIT_S)
        return "2026-06-20"

    cache = ResolverCache(resolver, timeout_ms=60_000)

    async def main() -> None:
        task = asyncio.create_task(cache.resolve_async("w"))
        assert await asyncio.to_thread(started.wait, WAIT_S)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    try:
        asyncio.run(main())
    finally:
        release.set()
    assert cache.resolve("w", wait_s=WAIT_S) == dt.date(2026, 6, 20)
    assert cache.stats() == ResolverStats()


def refuse_threads(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make starting a thread fail as it does when the OS has no more (the OS's part only)."""

    def start(self: threading.Thread) -> None:
        raise RuntimeError("can't start new thread")

    monkeypatch.setattr(threading.Thread, "start", start)


def test_wedding_context_survives_a_thread_that_cannot_start(
    pipeline: Pipeline, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No thread for the lookup: no date, no exception in the application, one start failure."""
    calls: list[str] = []

    def resolver(wedding_id: str) -> None:
        calls.append(wedding_id)

    set_wedding_resolver(resolver, timeout_ms=60_000)
    before = resolver_stats()
    assert before is not None
    refuse_threads(monkeypatch)
    with (
        pipeline.tracer.start_as_current_span("request", kind=SpanKind.SERVER),
        wedding_context(wedding_id="w-1") as wedding,
    ):
        assert wedding == Wedding("w-1", None)
    monkeypatch.undo()
    assert resolver_stats() == before + ResolverStats(start_failures=1)
    assert calls == []
    attributes = pipeline.only_span("request").attributes or {}
    assert (attributes[attr.WEDDING_ID], attributes[attr.WEDDING_PROXIMITY]) == ("w-1", "unknown")


def test_after_a_thread_start_failure_the_slot_is_free_and_the_id_recovers(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The failed start frees its slot at once and is cached for error_ttl_s only."""
    clock = SteppedClock()
    cache = ResolverCache(lambda wedding_id: "2026-06-20", max_pending=1, monotonic=clock)
    refuse_threads(monkeypatch)
    assert cache.resolve("w", wait_s=60) is None
    assert cache.resolve("w", wait_s=60) is None  # cached: no second attempt
    monkeypatch.undo()
    assert cache.resolve("other", wait_s=60) == dt.date(2026, 6, 20)
    assert cache.resolve("w", wait_s=60) is None
    clock.now = 10.1
    assert cache.resolve("w", wait_s=60) == dt.date(2026, 6, 20)
    assert cache.stats() == ResolverStats(start_failures=1)


def test_resolve_never_raises_when_the_cache_itself_breaks(monkeypatch: pytest.MonkeyPatch) -> None:
    """An internal error in resolve or resolve_async is logged and means no date."""
    monkeypatch.setenv(RAISE_INTERNAL_ERRORS_ENV, "0")
    cache = ResolverCache(lambda wedding_id: "2026-06-20")
    unhashable: Any = ["w"]
    assert cache.resolve(unhashable, wait_s=1) is None
    assert asyncio.run(cache.resolve_async(unhashable)) is None


def test_resolver_stats_never_go_down_when_a_resolver_is_replaced_or_removed() -> None:
    """A replacement resolver, or none, keeps what the previous one counted."""
    resolver, _ = failing_then(TrioLikeCancelled, failures=1)
    set_wedding_resolver(resolver, timeout_ms=60_000)
    before = resolver_stats()
    assert before is not None
    with wedding_context(wedding_id="w-1"):
        pass
    set_wedding_resolver(lambda wedding_id: None)
    assert resolver_stats() == before + ResolverStats(errors=1)
    set_wedding_resolver(None)
    assert resolver_stats() == before + ResolverStats(errors=1)


def test_resolver_stats_are_none_until_a_resolver_is_registered() -> None:
    """In a fresh interpreter, before any resolver, there is nothing to count."""
    code = "from wedsync_otel.context import resolver_stats; print(resolver_stats())"
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert result.stdout.strip() == "None"


def test_resolver_stats_fields_are_the_exported_reasons() -> None:
    """The counters another module exports, one reason each, are exactly these."""
    assert [field.name for field in dataclasses.fields(ResolverStats)] == [
        "errors",
        "timeouts",
        "refusals",
        "start_failures",
        "evictions",
    ]


# --- any input at all ----------------------------------------------------------------------------


class RaisingEverything:
    """An object whose every conversion raises."""

    def __str__(self) -> str:
        raise RuntimeError("str")

    def __repr__(self) -> str:
        raise RuntimeError("repr")

    def __len__(self) -> int:
        raise RuntimeError("len")

    def __index__(self) -> int:
        raise RuntimeError("index")


class RaisingClassAttribute:
    """An object whose __class__ raises, so even isinstance() raises."""

    @property  # type: ignore[misc]
    def __class__(self) -> type:
        raise RuntimeError("__class__")


class LoudInt(int):
    """An int whose own conversions raise, so only int's digits can be read."""

    def __str__(self) -> str:
        raise RuntimeError("str")

    def __repr__(self) -> str:
        raise RuntimeError("repr")


class LoudStr(str):
    """A str whose length and conversion raise."""

    __slots__ = ()

    def __len__(self) -> int:
        raise RuntimeError("len")

    def __str__(self) -> str:
        raise RuntimeError("str")


ODD_OBJECTS = [
    RaisingEverything(),
    RaisingClassAttribute(),
    LoudInt(42),
    LoudInt(10**5000),
    LoudStr("w-1"),
    LoudStr("2026-06-20"),
    object(),
    Decimal("NaN"),
    complex(1, 2),
    bytearray(b"w-1"),
    memoryview(b"w-1"),
    [1, 2],
    {"w": 1},
    dt.datetime(2026, 6, 20, tzinfo=dt.UTC),
    10**5000,
    -(10**5000),
    math.nan,
    math.inf,
]

ANYTHING = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.integers(0, 20_000).map(lambda digits: 10**digits),
    st.integers(400, 450).map(lambda bits: -(2**bits) + 1),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(st.characters(exclude_categories=())),
    st.text(min_size=120, max_size=140),
    st.binary(),
    st.dates(),
    st.dates().map(dt.date.isoformat),
    # Hypothesis itself reads __class__: the object whose __class__ raises is tested below.
    st.sampled_from([odd for odd in ODD_OBJECTS if type(odd) is not RaisingClassAttribute]),
)


@pytest.mark.parametrize(
    "index", range(len(ODD_OBJECTS)), ids=[type(odd).__name__ for odd in ODD_OBJECTS]
)  # by index: pytest, like hypothesis, reads the parameters' __class__
def test_odd_objects_are_no_id_and_no_date(pipeline: Pipeline, index: int) -> None:
    """Objects that raise from every conversion (even isinstance) are ignored, never raised."""
    odd = ODD_OBJECTS[index]
    assert wedding_id_text(odd) in {None, "42", "w-1", "2026-06-20"}
    # A str subclass is a date by its characters, whatever its own methods do.
    date = (
        dt.date(2026, 6, 20) if type(odd) is LoudStr and str.__str__(odd) == "2026-06-20" else None
    )
    with (
        pipeline.tracer.start_as_current_span("request", kind=SpanKind.SERVER),
        wedding_context(wedding_id=odd, wedding_date=odd) as wedding,  # type: ignore[arg-type]
    ):
        assert wedding.wedding_date == date


@given(ANYTHING)
def test_wedding_id_text_never_raises_and_returns_a_usable_id_or_none(value: object) -> None:
    """Whatever it is given, wedding_id_text returns a plain printable short str or None."""
    text = wedding_id_text(value)
    if text is not None:
        assert type(text) is str
        assert 0 < len(text) <= MAX_WEDDING_ID_CHARS
        assert text.isprintable()


@settings(suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(wedding_id=ANYTHING, wedding_date=ANYTHING)
def test_wedding_context_never_raises_for_any_input(
    pipeline: Pipeline, wedding_id: Any, wedding_date: Any
) -> None:
    """wedding_context, inside a recording span, takes any id and date without raising."""
    with (
        pipeline.tracer.start_as_current_span("request", kind=SpanKind.SERVER),
        wedding_context(wedding_id=wedding_id, wedding_date=wedding_date) as wedding,
    ):
        assert wedding.wedding_id is None or type(wedding.wedding_id) is str
        assert wedding.wedding_date is None or isinstance(wedding.wedding_date, dt.date)


@settings(max_examples=50)
@given(ANYTHING)
def test_a_resolver_answering_garbage_means_no_date(answer: object) -> None:
    """Whatever a resolver returns, the lookup ends with a date or None, never an exception."""
    cache = ResolverCache(lambda wedding_id: answer)  # type: ignore[arg-type, return-value]
    found = cache.resolve("w", wait_s=60)
    assert found is None or isinstance(found, dt.date)
    assert cache.stats().timeouts == 0


@pytest.mark.parametrize(
    ("value", "text"),
    [
        pytest.param(10**127, "1" + "0" * 127, id="128-digits"),
        pytest.param(-(10**126), "-1" + "0" * 126, id="minus-127-digits"),
        pytest.param(10**128, None, id="129-digits"),
        pytest.param(-(10**127), None, id="minus-128-digits"),
        pytest.param(2**425, str(2**425), id="425-bits"),
        pytest.param(2**426, None, id="427-bits"),
        pytest.param(0, "0", id="zero"),
        pytest.param(-7, "-7", id="negative"),
        pytest.param(LoudInt(42), "42", id="int-subclass"),
        pytest.param(LoudInt(10**5000), None, id="huge-int-subclass"),
        pytest.param(10**5000, None, id="5001-digits"),
        pytest.param(True, None, id="bool"),
        pytest.param(1.0, None, id="float"),
        pytest.param("w" * 128, "w" * 128, id="128-chars"),
        pytest.param("w" * 129, None, id="129-chars"),
        pytest.param("", None, id="empty"),
        pytest.param("w-\ud800", None, id="lone-surrogate"),
        pytest.param("w-1\n", None, id="newline"),
        pytest.param("w\x00", None, id="nul"),
        pytest.param("mariée-2026", "mariée-2026", id="non-ascii"),
        pytest.param(b"w-1", None, id="bytes"),
        pytest.param(LoudStr("w-1"), "w-1", id="str-subclass-raising-len"),
    ],
)
def test_wedding_id_text_limits(value: object, text: str | None) -> None:
    """Ints up to 128 characters of digits and printable strings up to 128 characters are ids."""
    assert wedding_id_text(value) == text


def test_a_huge_int_id_is_refused_from_its_size_not_its_text() -> None:
    """wedding_context(wedding_id=10**5000) is no id: its digits are never produced."""
    with wedding_context(wedding_id=10**5000) as wedding:
        assert wedding.wedding_id is None


def test_the_processor_ignores_a_huge_int_wedding_id_attribute(pipeline: Pipeline) -> None:
    """A span whose wedding.id attribute is 10**5000 is still judged, with the date unknown."""
    set_wedding_resolver(lambda wedding_id: "2026-06-16", timeout_ms=60_000)
    with pipeline.tracer.start_as_current_span("request", kind=SpanKind.SERVER) as span:
        span.set_attribute(attr.WEDDING_ID, 10**5000)
    assert proximity(pipeline, "request") == "unknown"
