"""WeddingRecorder: what the per-span tallies add up to at collection."""

from __future__ import annotations

import math
from collections import Counter

from hypothesis import given, settings
from hypothesis import strategies as st

from wedsync_otel.calendar import ApdexClass, Band, DayFacts
from wedsync_otel.config import WeddingConfig
from wedsync_otel.metrics import WeddingRecorder
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


def test_series_past_the_limit_are_dropped_and_counted() -> None:
    """A third duration series over a limit of two is dropped whole and counted."""
    recorder = WeddingRecorder(max_series=2)
    for index in range(3):
        recorder.record(
            Verdict(judgement(index, Band.UNKNOWN, 0), None, 10.0, ApdexClass.SATISFIED, False, 200)
        )
    deltas = recorder.collect()
    assert recorder.dropped_series == 1
    assert len(deltas.durations) == len(deltas.apdex) == len(deltas.db) == 2


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
