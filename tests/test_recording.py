"""WeddingRecorder: what the per-span tallies add up to at collection."""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Mapping
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.trace import SpanContext, TraceFlags

from wedsync_otel.calendar import ApdexClass, Band, DayFacts
from wedsync_otel.config import WeddingConfig
from wedsync_otel.metrics import WeddingRecorder
from wedsync_otel.metrics.recording import (
    MAX_EXEMPLARS,
    Exemplars,
    ExemplarSample,
    spread_slot,
)
from wedsync_otel.rules import Judgement, Verdict, WeddingRules

RULES = WeddingRules(WeddingConfig.default())
SPECS = (*RULES.config.endpoints, RULES.other)
DAYS = [
    RULES.calendar.day_of(0),  # a Thursday in January
    DayFacts(RULES.calendar.day_of(0).date, saturday=True, season=True),
]
STATUS_CLASS = {None: "", 200: "2xx", 404: "4xx", 503: "5xx", 700: ""}


def judgement(index: int, band: Band, day: int) -> Judgement:
    return RULES.judge(SPECS[index], band, DAYS[day])


verdicts = st.builds(
    lambda index, band, day, duration, apdex, failed, status, hits, misses, db_ms: Verdict(
        judgement(index, band, day), None, duration, apdex, failed, status, hits, misses, db_ms
    ),
    st.integers(min_value=0, max_value=2),
    st.sampled_from([Band.UNKNOWN, Band.WEDDING_DAY]),
    st.integers(min_value=0, max_value=1),
    st.floats(min_value=0.0, max_value=2_000.0),
    st.sampled_from(ApdexClass),
    st.booleans(),
    st.sampled_from(list(STATUS_CLASS)),
    st.integers(min_value=0, max_value=3),
    st.integers(min_value=0, max_value=3),
    st.sampled_from([0.0, 0.0, 1.5, 40.0]),
)


@settings(max_examples=150, deadline=None)
@given(st.lists(verdicts, max_size=40))
def test_collected_deltas_equal_a_direct_count(recorded: list[Verdict]) -> None:
    """Counts, sums and zero counts per attribute set equal a count over the verdicts."""
    recorder = WeddingRecorder()
    for verdict in recorded:
        recorder.record(verdict)
    deltas = recorder.collect()
    durations: Counter[tuple[object, ...]] = Counter()
    duration_sums: Counter[tuple[object, ...]] = Counter()
    apdex: Counter[tuple[object, ...]] = Counter()
    breaches: Counter[tuple[object, ...]] = Counter()
    cache: Counter[tuple[object, ...]] = Counter()
    db: Counter[tuple[object, ...]] = Counter()
    db_zeros: Counter[tuple[object, ...]] = Counter()
    for v in recorded:
        j = v.judgement
        status = "5xx" if v.status_code is None and v.failed else STATUS_CLASS[v.status_code]
        durations[(j.endpoint, j.critical, j.proximity, status)] += 1
        duration_sums[(j.endpoint, j.critical, j.proximity, status)] += v.duration_ms
        apdex[(j.endpoint, j.proximity, v.apdex.value)] += 1
        breaches[(j.endpoint, j.critical, j.proximity)] += v.duration_ms > j.threshold_ms
        cache[(j.endpoint, j.proximity, "hit")] += v.cache_hits
        cache[(j.endpoint, j.proximity, "miss")] += v.cache_misses
        db[(j.endpoint, j.proximity)] += 1
        db_zeros[(j.endpoint, j.proximity)] += v.db_ms == 0.0
    assert {k: b.count for k, b in deltas.durations.items()} == dict(durations)
    for key, buckets in deltas.durations.items():
        assert math.isclose(buckets.sum, duration_sums[key], abs_tol=1e-9)
    assert deltas.apdex == dict(apdex)
    assert deltas.breaches == {k: n for k, n in breaches.items() if n}
    assert deltas.cache == {k: n for k, n in cache.items() if n}
    assert {k: (b.count, b.zero_count) for k, b in deltas.db.items()} == {
        k: (n, db_zeros[k]) for k, n in db.items()
    }
    assert recorder.collect().empty()


def test_series_past_the_limit_go_to_the_overflow_series_and_are_counted() -> None:
    """A third duration series over a limit of two is recorded as overflow and counted."""
    recorder = WeddingRecorder(max_series=2)
    for index in range(3):
        recorder.record(
            Verdict(
                judgement(index, Band.UNKNOWN, 0),
                None,
                900.0,
                ApdexClass.TOLERATING,
                False,
                200,
                2,
                1,
                4.0,
            )
        )
    deltas = recorder.collect()
    assert recorder.dropped_series == 1
    assert len(deltas.durations) == len(deltas.apdex) == len(deltas.db) == 2
    overflow = deltas.overflow
    assert overflow is not None
    assert (overflow.durations.count, overflow.durations.sum) == (1, 900.0)
    assert (overflow.requests, overflow.breaches, overflow.cache) == (1, 1, 3)
    assert (overflow.db.count, overflow.db.sum) == (1, 4.0)
    assert recorder.collect().overflow is None


def test_the_series_limit_starts_afresh_after_a_collection() -> None:
    """Series counted against the limit are the ones since the last collection."""
    recorder = WeddingRecorder(max_series=1)
    for index in range(3):
        recorder.record(
            Verdict(judgement(index, Band.UNKNOWN, 0), None, 10.0, ApdexClass.SATISFIED, False, 200)
        )
        assert len(recorder.collect().durations) == 1
    assert recorder.dropped_series == 0


def test_one_series_fed_by_two_judgements_is_one_series() -> None:
    """A Saturday and a weekday judgement of one endpoint and band share their series."""
    recorder = WeddingRecorder(max_series=1)
    for day in (0, 1):
        recorder.record(
            Verdict(judgement(0, Band.UNKNOWN, day), None, 10.0, ApdexClass.SATISFIED, False, 200)
        )
    (buckets,) = recorder.collect().durations.values()
    assert (buckets.count, recorder.dropped_series) == (2, 0)


# --- exemplars, and requests the sampler dropped ---------------------------------------------

SAMPLED = TraceFlags(TraceFlags.SAMPLED)
NOT_SAMPLED = TraceFlags(TraceFlags.DEFAULT)


def request_span(
    number: int, *, flags: TraceFlags = SAMPLED, end_ns: int | None = None
) -> ReadableSpan:
    """An ended request span with trace id ``number`` and span id ``number + 1000``."""
    context = SpanContext(number, number + 1000, is_remote=False, trace_flags=flags)
    end = 1_000_000 * number if end_ns is None else end_ns
    return ReadableSpan("request", context=context, start_time=0, end_time=end)


def verdict(duration_ms: float, *, db_ms: float = 0.0, hits: int = 0, misses: int = 0) -> Verdict:
    return Verdict(
        judgement(0, Band.UNKNOWN, 0),
        None,
        duration_ms,
        ApdexClass.SATISFIED,
        False,
        200,
        hits,
        misses,
        db_ms,
    )


def only(mapping: Mapping[Any, Exemplars]) -> list[ExemplarSample]:
    """The samples of the one series in ``mapping``."""
    (exemplars,) = mapping.values()
    return exemplars.samples()


@pytest.mark.parametrize(
    ("value_ms", "slot"),
    [
        (0.0, 0),
        (1e-9, 0),
        (1.99, 0),
        (2.0, 1),
        (7.99, 1),
        (8.0, 2),
        (100.0, 3),
        (128.0, 4),
        (511.0, 4),
        (512.0, 5),
        (2047.0, 5),
        (2048.0, 6),
        (86_400_000.0, 6),
        (1e300, 6),
    ],
)
def test_spread_slots_are_powers_of_four_wide(value_ms: float, slot: int) -> None:
    """Slot 0 is under 2 ms, then one slot per power of four, the last from 2 s on."""
    assert spread_slot(value_ms) == slot


def test_a_sampled_span_is_an_exemplar_with_its_ids_value_and_end_time() -> None:
    """The exemplar carries the span's trace id, span id, the duration and the end time."""
    recorder = WeddingRecorder()
    recorder(request_span(7, end_ns=123_456_789), verdict(42.5))
    assert only(recorder.collect().exemplars) == [
        ExemplarSample(value=42.5, time_unix_nano=123_456_789, trace_id=7, span_id=1007)
    ]


def test_a_verdict_without_a_span_has_no_exemplar() -> None:
    """`record` has no span to point at, so the series carries no exemplar."""
    recorder = WeddingRecorder()
    recorder.record(verdict(42.5))
    deltas = recorder.collect()
    assert deltas.durations
    assert deltas.exemplars == {}


def test_the_slowest_request_and_one_per_range_are_kept_at_most_eight() -> None:
    """A thousand requests leave the slowest and the latest of each power-of-four range."""
    recorder = WeddingRecorder()
    durations = [0.5 + (number * 7.31) % 5_000 for number in range(1, 1001)]
    for number, duration in enumerate(durations, start=1):
        recorder(request_span(number), verdict(duration))
    samples = only(recorder.collect().exemplars)
    assert len(samples) <= MAX_EXEMPLARS
    slowest = max(range(len(durations)), key=lambda index: (durations[index], index))
    assert max(sample.value for sample in samples) == durations[slowest]
    assert slowest + 1 in {sample.trace_id for sample in samples}
    latest_per_slot = {
        spread_slot(duration): number for number, duration in enumerate(durations, 1)
    }
    assert set(latest_per_slot.values()) <= {sample.trace_id for sample in samples}
    assert [sample.time_unix_nano for sample in samples] == sorted(
        sample.time_unix_nano for sample in samples
    )
    for sample in samples:  # each exemplar is the request it names
        assert sample.value == durations[sample.trace_id - 1]
        assert sample.span_id == sample.trace_id + 1000


def test_db_exemplars_point_at_requests_with_database_time() -> None:
    """The DB histogram's exemplar is the request span, valued at its database time."""
    recorder = WeddingRecorder()
    recorder(request_span(1), verdict(50.0, db_ms=12.0))
    recorder(request_span(2), verdict(60.0))  # no database time: no DB exemplar
    assert [(s.trace_id, s.value) for s in only(recorder.collect().db_exemplars)] == [(1, 12.0)]


def test_an_unsampled_request_counts_but_not_in_cache_db_or_exemplars() -> None:
    """Durations, Apdex and breaches count it; the DB histogram, cache and exemplars do not."""
    recorder = WeddingRecorder()
    recorder(request_span(1, flags=NOT_SAMPLED), verdict(500.0, db_ms=30.0, hits=2, misses=1))
    recorder(request_span(2), verdict(20.0, db_ms=5.0, hits=1))
    deltas = recorder.collect()
    ((key, durations),) = deltas.durations.items()
    assert durations.count == 2
    assert sum(deltas.apdex.values()) == 2
    assert deltas.breaches == {key[:3]: 1}
    ((_, db),) = deltas.db.items()
    assert (db.count, db.sum) == (1, 5.0)  # the DB count is the sampled requests
    assert sorted(deltas.cache.values()) == [1]
    assert [sample.trace_id for sample in only(deltas.exemplars)] == [2]
    assert [sample.trace_id for sample in only(deltas.db_exemplars)] == [2]


def test_only_unsampled_requests_leave_no_db_series() -> None:
    """A series whose requests were all unsampled has durations but no DB point and no exemplar."""
    recorder = WeddingRecorder()
    recorder(request_span(1, flags=NOT_SAMPLED), verdict(10.0))
    deltas = recorder.collect()
    assert deltas.durations
    assert (deltas.db, deltas.exemplars, deltas.cache) == ({}, {}, {})


def test_overflow_requests_carry_exemplars_too() -> None:
    """The overflow series keeps its own slowest exemplar."""
    recorder = WeddingRecorder(max_series=0)
    recorder(request_span(3), verdict(70.0, db_ms=2.0))
    overflow = recorder.collect().overflow
    assert overflow is not None
    assert [s.trace_id for s in overflow.exemplars.samples()] == [3]
    assert [s.value for s in overflow.db_exemplars.samples()] == [2.0]


offers = st.lists(
    st.tuples(st.floats(min_value=0.0, max_value=1e6), st.integers(0, 10**6)),
    max_size=60,
)


def _reservoir(offered: list[tuple[float, int]], first_number: int = 1) -> Exemplars:
    reservoir = Exemplars()
    for number, (value, end_ns) in enumerate(offered, start=first_number):
        reservoir.offer(value, request_span(number).context, end_ns)
    return reservoir


@settings(max_examples=150, deadline=None)
@given(offers)
def test_a_reservoir_holds_the_slowest_and_stays_bounded(offered: list[tuple[float, int]]) -> None:
    """Whatever is offered, at most eight distinct exemplars, the slowest value among them."""
    samples = _reservoir(offered).samples()
    assert len(samples) <= MAX_EXEMPLARS
    assert len({sample.trace_id for sample in samples}) == len(samples)
    if offered:
        assert max(sample.value for sample in samples) == max(value for value, _ in offered)
    else:
        assert samples == []


@settings(max_examples=150, deadline=None)
@given(offers, offers)
def test_merged_reservoirs_keep_the_slowest_and_one_per_slot(
    first: list[tuple[float, int]], second: list[tuple[float, int]]
) -> None:
    """Merging two reservoirs keeps the slowest of both and a sample in every occupied slot."""
    merged = _reservoir(first)
    merged.merge(_reservoir(second, first_number=len(first) + 1))
    samples = merged.samples()
    everything = first + second
    assert len(samples) <= MAX_EXEMPLARS
    if everything:
        assert max(sample.value for sample in samples) == max(value for value, _ in everything)
    assert {spread_slot(sample.value) for sample in samples} >= {
        spread_slot(value) for value, _ in everything
    }
