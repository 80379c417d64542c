"""The child-span stage (`wedsync_otel.child_spans`): cache and DB spans rolled up into requests."""

from __future__ import annotations

import logging
import math
from typing import Any, Final

import pytest
from opentelemetry.sdk.trace import SpanLimits

from wedsync_otel import attributes as attr
from wedsync_otel._safety import RAISE_INTERNAL_ERRORS_ENV
from wedsync_otel.child_spans import ChildSpanStage, is_child_work
from wedsync_otel.config import WeddingConfig
from wedsync_otel.instrumentation.fingerprint import sanitize, shape_fingerprint
from wedsync_otel.privacy.scrubber import Scrubber

TRACE: Final = 0xABC
REQUEST: Final = 0x100
"""The request span's id: the parent of every child span below."""
MS: Final = 1_000_000
EMAIL_QUERY: Final = "SELECT * FROM users WHERE email = 'ann@example.com'"
GUEST_QUERY: Final = "SELECT name FROM guests WHERE id = {}"
CACHE_ZEROS: Final = {
    attr.ROLLUP_CACHE_HITS: 0,
    attr.ROLLUP_CACHE_MISSES: 0,
    attr.ROLLUP_CACHE_DURATION_MS: 0.0,
}
DB_ZEROS: Final = {
    attr.ROLLUP_DB_QUERIES: 0,
    attr.ROLLUP_DB_CONTROL: 0,
    attr.ROLLUP_DB_DURATION_MS: 0.0,
    attr.ROLLUP_DB_SLOW_QUERIES: 0,
}


@pytest.fixture
def config() -> WeddingConfig:
    return WeddingConfig.default()


@pytest.fixture
def stage(config: WeddingConfig) -> ChildSpanStage:
    return ChildSpanStage(config, Scrubber(config.privacy))


class Recorder:
    """A query observer that keeps every call it receives."""

    def __init__(self) -> None:
        self.observed: list[tuple[str, str, float]] = []
        self.reported: list[tuple[str, str, int]] = []

    def observe(self, *, fingerprint: str, statement: str, duration_ms: float) -> None:
        self.observed.append((fingerprint, statement, duration_ms))

    def report_n_plus_one(self, *, fingerprint: str, statement: str, count: int) -> None:
        self.reported.append((fingerprint, statement, count))


class Broken:
    """A query observer whose every call raises."""

    def observe(self, *, fingerprint: str, statement: str, duration_ms: float) -> None:
        raise RuntimeError("observe failed")

    def report_n_plus_one(self, *, fingerprint: str, statement: str, count: int) -> None:
        raise RuntimeError("report failed")


def shape(raw: str) -> str:
    """The fingerprint of a raw statement, computed here from the fingerprint module."""
    return shape_fingerprint(sanitize(raw))


def db(
    stage: ChildSpanStage,
    statement: str,
    *,
    span_id: int,
    start_ms: float,
    duration_ms: float = 1.0,
    parent_id: int | None = REQUEST,
    system: str = "postgresql",
    trace_id: int = TRACE,
) -> dict[str, Any] | None:
    """Record one database span of ``statement`` under the request."""
    start_ns = round(start_ms * MS)
    return stage.record(
        {"db.system": system, "db.statement": statement},
        name="SELECT",
        trace_id=trace_id,
        span_id=span_id,
        parent_id=parent_id,
        start_ns=start_ns,
        end_ns=start_ns + round(duration_ms * MS),
        scope="tests",
    )


def cache(
    stage: ChildSpanStage,
    attrs: dict[str, Any],
    *,
    span_id: int,
    start_ms: float = 0.0,
    duration_ms: float = 1.0,
    parent_id: int | None = REQUEST,
    trace_id: int = TRACE,
) -> dict[str, Any] | None:
    """Record one cache span with ``attrs`` (``cache.backend`` added) under the request."""
    start_ns = round(start_ms * MS)
    return stage.record(
        {attr.CACHE_BACKEND: "redis", **attrs},
        name="GET",
        trace_id=trace_id,
        span_id=span_id,
        parent_id=parent_id,
        start_ns=start_ns,
        end_ns=start_ns + round(duration_ms * MS),
        scope="tests",
    )


def n_plus_one(stage: ChildSpanStage, count: int) -> None:
    """``count`` same-shape guest queries under the request, one after another."""
    for n in range(count):
        db(stage, GUEST_QUERY.format(n), span_id=0x200 + n, start_ms=10.0 + 2 * n)


@pytest.mark.parametrize(
    ("attrs", "child"),
    [
        pytest.param({attr.CACHE_BACKEND: "redis"}, True, id="cache"),
        pytest.param({attr.CACHE_BACKEND: "memory"}, True, id="memory-cache"),
        pytest.param({"db.system": "postgresql"}, True, id="db-old-name"),
        pytest.param({"db.system.name": "postgresql"}, True, id="db-stable-name"),
        pytest.param({"db.system": "redis"}, True, id="redis-by-db-system"),
        pytest.param({"db.statement": "SELECT 1"}, False, id="statement-alone"),
        pytest.param({"http.route": "/api/payments"}, False, id="request"),
        pytest.param({"cache.hit": True}, False, id="hit-without-backend"),
        pytest.param({}, False, id="nothing"),
    ],
)
def test_is_child_work_table(attrs: dict[str, Any], child: bool) -> None:
    """Cache work has cache.backend; database work has db.system or db.system.name."""
    assert is_child_work(attrs) is child


def test_a_cache_span_counts_into_its_request_and_adds_nothing(stage: ChildSpanStage) -> None:
    """Cache hits and misses (single- and multi-key) add up in the request's totals."""
    assert cache(stage, {attr.CACHE_HIT: True}, span_id=1, duration_ms=2.0) is None
    assert cache(stage, {attr.CACHE_HIT: False}, span_id=2, duration_ms=1.0) is None
    assert cache(stage, {attr.CACHE_HITS: 3, attr.CACHE_MISSES: 2}, span_id=3) is None
    totals = stage.take(TRACE, REQUEST)
    assert totals is not None
    assert (totals.cache_hits, totals.cache_misses) == (4, 3)
    assert totals.cache_ms == pytest.approx(4.0)


def test_a_cache_span_of_no_request_is_not_counted(stage: ChildSpanStage) -> None:
    """A cache span with parent_id None belongs to no request: nothing waits to be taken."""
    assert cache(stage, {attr.CACHE_HIT: True}, span_id=1, parent_id=None) is None
    assert stage.take(TRACE, REQUEST) is None


def test_a_db_span_gets_fingerprint_slow_flag_and_summary(stage: ChildSpanStage) -> None:
    """A query's returned attributes are its fingerprint, slow flag (> 50 ms) and summary."""
    extra = db(stage, EMAIL_QUERY, span_id=1, start_ms=0.0, duration_ms=60.0)
    assert extra is not None
    assert extra[attr.DB_FINGERPRINT] == shape(EMAIL_QUERY)
    assert extra[attr.DB_QUERY_SLOW] is True
    assert "users" in extra["db.query.summary"]
    assert set(extra) == {attr.DB_FINGERPRINT, attr.DB_QUERY_SLOW, "db.query.summary"}


def test_a_db_span_returns_no_literal(stage: ChildSpanStage) -> None:
    """No returned value carries a literal of the raw statement (here an email address)."""
    extra = db(stage, EMAIL_QUERY, span_id=1, start_ms=0.0)
    assert extra is not None
    assert extra[attr.DB_QUERY_SLOW] is False
    for value in extra.values():
        assert "ann" not in str(value)
        assert "example.com" not in str(value)


def test_a_summary_the_span_has_is_kept(stage: ChildSpanStage) -> None:
    """A span that already carries db.query.summary does not get another."""
    extra = stage.record(
        {"db.system": "postgresql", "db.statement": EMAIL_QUERY, "db.query.summary": "own"},
        name="SELECT",
        trace_id=TRACE,
        span_id=1,
        parent_id=REQUEST,
        start_ns=0,
        end_ns=MS,
        scope="tests",
    )
    assert extra is not None
    assert "db.query.summary" not in extra


def test_a_db_span_of_no_request_is_rewritten_observed_never_rolled_up(
    stage: ChildSpanStage,
) -> None:
    """With parent_id None a query is rewritten and observed at once, but never rolled up."""
    recorder = Recorder()
    stage.add_observer(recorder)
    extra = db(stage, EMAIL_QUERY, span_id=1, start_ms=0.0, duration_ms=3.0, parent_id=None)
    assert extra is not None
    assert extra[attr.DB_FINGERPRINT] == shape(EMAIL_QUERY)
    assert recorder.observed == [(shape(EMAIL_QUERY), sanitize(EMAIL_QUERY), 3.0)]
    assert stage.take(TRACE, REQUEST) is None
    rollup, _ = stage.roll_up(None, 10.0, end_ns=None, limits=None)
    assert rollup == {attr.ROLLUP_APP_DURATION_MS: 10.0}  # no DB zeros: no request's DB work


@pytest.mark.parametrize(
    "attrs",
    [
        pytest.param({"db.system": "redis", "db.statement": "GET guest:1"}, id="redis"),
        pytest.param({"db.system": "memcached", "db.statement": "get guest:1"}, id="memcached"),
        pytest.param({"db.system.name": "valkey", "db.query.text": "GET k"}, id="valkey-stable"),
        pytest.param({"db.system": 5, "db.statement": "SELECT 1"}, id="non-str-system"),
    ],
)
def test_a_cache_system_db_span_is_neither_rewritten_nor_counted(
    stage: ChildSpanStage, attrs: dict[str, Any]
) -> None:
    """A db.system naming a cache (or no str system) returns None and counts no DB work."""
    extra = stage.record(
        attrs,
        name="GET",
        trace_id=TRACE,
        span_id=1,
        parent_id=REQUEST,
        start_ns=0,
        end_ns=MS,
        scope="tests",
    )
    assert extra is None
    assert stage.take(TRACE, REQUEST) is None


def test_a_request_before_any_child_work_gets_only_its_app_time(stage: ChildSpanStage) -> None:
    """Before any cache or DB work is seen, a request carries no zeros: all its time is app."""
    assert stage.take(TRACE, REQUEST) is None
    assert stage.roll_up(None, 12.5, end_ns=None, limits=None) == (
        {attr.ROLLUP_APP_DURATION_MS: 12.5},
        None,
    )


def test_a_request_without_totals_gets_zeros_for_the_kinds_seen(stage: ChildSpanStage) -> None:
    """Once cache work, then DB work, has been seen, a request with none carries their zeros."""
    cache(stage, {attr.CACHE_HIT: True}, span_id=1, trace_id=1)
    rollup, _ = stage.roll_up(stage.take(2, 0x99), 7.0, end_ns=None, limits=None)
    assert rollup == {**CACHE_ZEROS, attr.ROLLUP_APP_DURATION_MS: 7.0}
    db(stage, EMAIL_QUERY, span_id=2, start_ms=0.0, trace_id=1)
    rollup, _ = stage.roll_up(stage.take(3, 0x98), 7.0, end_ns=None, limits=None)
    assert rollup == {**CACHE_ZEROS, **DB_ZEROS, attr.ROLLUP_APP_DURATION_MS: 7.0}


def test_app_time_is_duration_less_cache_and_db(stage: ChildSpanStage) -> None:
    """A 20 ms request with 3 ms of cache and 5 ms of DB spent 12 ms in the app."""
    cache(stage, {attr.CACHE_HIT: True}, span_id=1, duration_ms=3.0)
    db(stage, EMAIL_QUERY, span_id=2, start_ms=4.0, duration_ms=5.0)
    totals = stage.take(TRACE, REQUEST)
    rollup, event = stage.roll_up(totals, 20.0, end_ns=None, limits=None)
    assert event is None
    assert rollup[attr.ROLLUP_APP_DURATION_MS] == pytest.approx(12.0)
    assert rollup[attr.ROLLUP_CACHE_HITS] == 1
    assert rollup[attr.ROLLUP_DB_QUERIES] == 1
    assert rollup[attr.ROLLUP_DB_DURATION_MS] == pytest.approx(5.0)
    assert rollup[attr.ROLLUP_DB_SLOW_QUERIES] == 0


def test_app_time_is_never_negative(stage: ChildSpanStage) -> None:
    """Child time longer than the request's own duration leaves app time at 0, not below."""
    cache(stage, {attr.CACHE_HIT: True}, span_id=1, duration_ms=3.0)
    db(stage, EMAIL_QUERY, span_id=2, start_ms=4.0, duration_ms=5.0)
    rollup, _ = stage.roll_up(stage.take(TRACE, REQUEST), 6.0, end_ns=None, limits=None)
    assert rollup[attr.ROLLUP_APP_DURATION_MS] == 0.0


def test_totals_are_taken_once(stage: ChildSpanStage) -> None:
    """The request's totals leave the store when taken: a second take finds none."""
    db(stage, EMAIL_QUERY, span_id=1, start_ms=0.0)
    assert stage.take(TRACE, REQUEST) is not None
    assert stage.take(TRACE, REQUEST) is None


@pytest.mark.parametrize("with_totals", [True, False])
def test_a_nan_duration_has_no_app_time(stage: ChildSpanStage, with_totals: bool) -> None:
    """A request without a usable duration gets no app duration, with or without child work."""
    db(stage, EMAIL_QUERY, span_id=1, start_ms=0.0)
    totals = stage.take(TRACE, REQUEST) if with_totals else None
    rollup, _ = stage.roll_up(totals, math.nan, end_ns=None, limits=None)
    assert attr.ROLLUP_APP_DURATION_MS not in rollup
    assert rollup[attr.ROLLUP_DB_QUERIES] == (1 if with_totals else 0)


def test_the_n_plus_one_limit_itself_is_no_n_plus_one(
    stage: ChildSpanStage, config: WeddingConfig
) -> None:
    """Exactly n_plus_one_limit same-shape queries under one request are not flagged."""
    n_plus_one(stage, config.n_plus_one_limit)
    rollup, event = stage.roll_up(stage.take(TRACE, REQUEST), 100.0, end_ns=None, limits=None)
    assert event is None
    assert attr.DB_N_PLUS_ONE not in rollup


def test_more_than_the_limit_is_an_n_plus_one_with_one_event(
    stage: ChildSpanStage, config: WeddingConfig
) -> None:
    """One query shape run more than the limit marks the span and adds one sanitised event."""
    count = config.n_plus_one_limit + 1
    db(stage, EMAIL_QUERY, span_id=1, start_ms=0.0)  # another shape, run once
    n_plus_one(stage, count)
    rollup, event = stage.roll_up(stage.take(TRACE, REQUEST), 100.0, end_ns=123, limits=None)
    fingerprint = shape(GUEST_QUERY.format(0))
    assert rollup[attr.DB_N_PLUS_ONE] == fingerprint
    assert event is not None
    assert (event.name, event.timestamp) == (attr.DB_N_PLUS_ONE, 123)
    assert dict(event.attributes or {}) == {
        attr.DB_FINGERPRINT: fingerprint,
        "db.query.count": count,
        "db.query.text": "SELECT name FROM guests WHERE id = ?",
    }


def test_the_n_plus_one_event_is_bounded_by_the_span_limits(
    stage: ChildSpanStage, config: WeddingConfig
) -> None:
    """With max_event_attributes=2 the event keeps two attributes (statement and count)."""
    n_plus_one(stage, config.n_plus_one_limit + 1)
    limits = SpanLimits(max_event_attributes=2, max_attribute_length=20)
    _, event = stage.roll_up(stage.take(TRACE, REQUEST), 100.0, end_ns=None, limits=limits)
    assert event is not None
    attributes = event.attributes or {}
    assert dict(attributes) == {
        "db.query.count": config.n_plus_one_limit + 1,
        "db.query.text": "SELECT name FROM gue",  # cut to max_attribute_length
    }
    assert getattr(attributes, "dropped", None) == 1


def test_observers_see_each_counted_query_and_the_n_plus_one_once(
    stage: ChildSpanStage, config: WeddingConfig
) -> None:
    """observe() runs per counted query when the request ends; report_n_plus_one() once."""
    recorder = Recorder()
    stage.add_observer(recorder)
    count = config.n_plus_one_limit + 1
    n_plus_one(stage, count)
    assert recorder.observed == []  # counted (and observed) when the request ends
    stage.roll_up(stage.take(TRACE, REQUEST), 100.0, end_ns=None, limits=None)
    statement = "SELECT name FROM guests WHERE id = ?"
    fingerprint = shape(GUEST_QUERY.format(0))
    assert recorder.observed == [(fingerprint, statement, 1.0)] * count
    assert recorder.reported == [(fingerprint, statement, count)]


def test_control_statements_of_no_request_are_not_observed(stage: ChildSpanStage) -> None:
    """A COMMIT outside any request is rewritten but no observer hears of it as a query."""
    recorder = Recorder()
    stage.add_observer(recorder)
    assert db(stage, "COMMIT", span_id=1, start_ms=0.0, parent_id=None) is not None
    assert recorder.observed == []


def test_a_raising_observer_does_not_stop_the_stage(
    stage: ChildSpanStage,
    config: WeddingConfig,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Outside tests an observer's error is logged; later observers and the roll-up go on."""
    monkeypatch.setenv(RAISE_INTERNAL_ERRORS_ENV, "0")  # as in production: logged, not raised
    caplog.set_level(logging.ERROR, logger="wedsync_otel")
    recorder = Recorder()
    stage.add_observer(Broken())
    stage.add_observer(recorder)
    count = config.n_plus_one_limit + 1
    n_plus_one(stage, count)
    db(stage, EMAIL_QUERY, span_id=1, start_ms=0.0, parent_id=None)
    rollup, event = stage.roll_up(stage.take(TRACE, REQUEST), 100.0, end_ns=None, limits=None)
    assert event is not None
    assert rollup[attr.ROLLUP_DB_QUERIES] == count
    assert len(recorder.observed) == count + 1
    assert len(recorder.reported) == 1
    assert any("a query observer" in record.getMessage() for record in caplog.records)


def test_a_raising_observer_fails_a_test_run(stage: ChildSpanStage) -> None:
    """Under pytest the guard re-raises: a broken observer fails the test instead of hiding."""
    stage.add_observer(Broken())
    with pytest.raises(RuntimeError, match="observe failed"):
        db(stage, EMAIL_QUERY, span_id=1, start_ms=0.0, parent_id=None)
