"""windows: the bounded ring of time slots, the two-ring store and cumulative-to-delta tracking."""

from __future__ import annotations

import pytest

from wedsync_otel.metrics.buckets import ExponentialBuckets
from wedsync_otel.metrics.windows import WINDOWS, DeltaTracker, Merged, WindowRing, WindowStore

S = 1_000_000_000
NOW = 10_000 * S
"""A whole number of minutes: slot boundaries of both rings fall on it."""
KEY = ("rsvp", "wedding_day")


def buckets(*values: float) -> ExponentialBuckets:
    made = ExponentialBuckets()
    for value in values:
        made.record(value)
    return made


def count_at(ring: WindowRing | WindowStore, time_ns: int) -> None:
    """Add one 10 ms request for ``KEY`` at ``time_ns``."""
    ring.add_durations(time_ns, KEY, buckets(10.0), error=False)


def window_count(merged: dict[tuple[str, str], Merged]) -> int:
    return merged[KEY].count if KEY in merged else 0


def test_window_lengths_are_one_minute_five_minutes_and_one_hour() -> None:
    """The named windows are 60, 300 and 3600 seconds long."""
    assert WINDOWS == {"1m": 60, "5m": 300, "1h": 3600}


# --- Merged ---------------------------------------------------------------------------------


def test_an_empty_merge_counts_no_request() -> None:
    """A window without durations has a count of zero."""
    assert Merged().count == 0


@pytest.mark.parametrize(
    ("apdex", "expected"),
    [
        ("satisfied", (4, 0, 0)),
        ("tolerating", (0, 4, 0)),
        ("frustrated", (0, 0, 4)),
        ("anything else", (0, 0, 4)),
    ],
)
def test_apdex_classes_are_counted_apart(apdex: str, expected: tuple[int, int, int]) -> None:
    """Each Apdex class has its counter; an unknown class counts as frustrated."""
    merged = Merged()
    merged.add_apdex(apdex, 4)
    assert (merged.satisfied, merged.tolerating, merged.frustrated) == expected


def test_merging_adds_every_total() -> None:
    """Merging one window into another adds durations and every counter."""
    first = Merged(durations=buckets(1.0), errors=1, satisfied=1, cache_hits=2, db_ms=3.0)
    second = Merged(
        durations=buckets(2.0, 3.0),
        errors=2,
        tolerating=1,
        frustrated=1,
        cache_misses=1,
        db_ms=1.5,
        db_requests=2,
    )
    first.merge(second)
    assert (first.count, first.errors, first.cache_hits, first.cache_misses) == (3, 3, 2, 1)
    assert (first.satisfied, first.tolerating, first.frustrated) == (1, 1, 1)
    assert (first.db_ms, first.db_requests) == (4.5, 2)


def test_merging_into_an_empty_window_copies_the_durations() -> None:
    """A merged window never shares buckets with the one it was merged from."""
    source = Merged(durations=buckets(1.0))
    target = Merged()
    target.merge(source)
    target.merge(source)
    assert (target.count, source.count) == (2, 1)


# --- WindowRing -----------------------------------------------------------------------------


def test_a_window_adds_up_every_slot_within_it() -> None:
    """Requests in different slots of one window are merged into one count."""
    ring = WindowRing(slot_s=10, horizon_s=300)
    for seconds_ago in (0, 10, 20, 50):
        count_at(ring, NOW - seconds_ago * S)
    assert window_count(ring.aggregate(NOW, 60)) == 4


@pytest.mark.parametrize(
    ("seconds_ago", "inside"),
    [(0, True), (9, True), (50, True), (51, False), (60, False), (-10, False)],
)
def test_a_window_holds_only_slots_of_its_length(seconds_ago: int, inside: bool) -> None:
    """A one-minute window over 10 s slots is the six slots up to and including now's."""
    ring = WindowRing(slot_s=10, horizon_s=300)
    count_at(ring, NOW - seconds_ago * S)
    assert window_count(ring.aggregate(NOW, 60)) == int(inside)


def test_skipping_recent_seconds_leaves_out_the_newest_slots() -> None:
    """With ``skip_recent_s`` the window ends that long before now."""
    ring = WindowRing(slot_s=60, horizon_s=3600)
    count_at(ring, NOW)
    count_at(ring, NOW - 600 * S)
    assert window_count(ring.aggregate(NOW, 3600, skip_recent_s=300)) == 1


def test_the_ring_keeps_at_most_its_horizon_of_slots() -> None:
    """Past ``horizon_s / slot_s + 1`` slots, the oldest slot is dropped."""
    ring = WindowRing(slot_s=10, horizon_s=60)
    assert ring.max_slots == 7
    for slot in range(8):
        count_at(ring, NOW + slot * 10 * S)
    newest = NOW + 7 * 10 * S
    assert window_count(ring.aggregate(newest, 10_000)) == 7


def test_an_added_delta_is_copied() -> None:
    """Changing a delta after adding it does not change the window."""
    ring = WindowRing()
    delta = buckets(10.0)
    ring.add_durations(NOW, KEY, delta, error=False)
    delta.record(20.0)
    assert window_count(ring.aggregate(NOW, 60)) == 1


def test_deltas_in_one_slot_are_merged() -> None:
    """Two deltas of one series in one slot add up."""
    ring = WindowRing()
    ring.add_durations(NOW, KEY, buckets(10.0), error=False)
    ring.add_durations(NOW + S, KEY, buckets(20.0, 30.0), error=False)
    assert window_count(ring.aggregate(NOW + S, 60)) == 3


@pytest.mark.parametrize(("error", "errors"), [(True, 2), (False, 0)])
def test_error_deltas_count_their_requests_as_errors(error: bool, errors: int) -> None:
    """A 5xx duration delta adds all its requests to the errors; others add none."""
    ring = WindowRing()
    ring.add_durations(NOW, KEY, buckets(1.0, 2.0), error=error)
    assert ring.aggregate(NOW, 60)[KEY].errors == errors


def test_series_are_kept_per_endpoint_and_band() -> None:
    """Different (endpoint, band) keys aggregate apart."""
    ring = WindowRing()
    ring.add_durations(NOW, KEY, buckets(1.0), error=False)
    ring.add_durations(NOW, ("rsvp", "unknown"), buckets(1.0, 2.0), error=False)
    merged = ring.aggregate(NOW, 60)
    assert {key: m.count for key, m in merged.items()} == {KEY: 1, ("rsvp", "unknown"): 2}


def test_apdex_cache_and_db_totals_are_windowed() -> None:
    """Apdex classes, cache reads and database time add up per series within the window."""
    ring = WindowRing()
    ring.add_apdex(NOW, *KEY, "satisfied", 3)
    ring.add_apdex(NOW - 10 * S, *KEY, "tolerating", 1)
    ring.add_cache(NOW, KEY, hits=2, misses=1)
    ring.add_cache(NOW - 10 * S, KEY, hits=1, misses=0)
    ring.add_db_ms(NOW, KEY, 4.5)
    ring.add_db_ms(NOW, KEY, 0.5)
    ring.add_db_requests(NOW, KEY, 3)
    merged = ring.aggregate(NOW, 60)[KEY]
    assert (merged.satisfied, merged.tolerating, merged.frustrated) == (3, 1, 0)
    assert (merged.cache_hits, merged.cache_misses) == (3, 1)
    assert (merged.db_ms, merged.db_requests) == (5.0, 3)
    assert merged.count == 0


def test_a_window_before_any_data_is_empty() -> None:
    """Aggregating a ring with nothing in the window gives no series."""
    ring = WindowRing()
    count_at(ring, NOW)
    assert ring.aggregate(NOW + 3600 * S, 60) == {}


# --- WindowStore ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "seconds_ago", "inside"),
    [
        ("1m", 30, True),
        ("1m", 90, False),
        ("5m", 290, True),
        ("5m", 310, False),
        ("1h", 3000, True),
        ("1h", 3700, False),
    ],
)
def test_named_windows_have_their_length(name: str, seconds_ago: int, inside: bool) -> None:
    """Each named window holds what arrived within its length, and nothing older."""
    store = WindowStore()
    count_at(store, NOW - seconds_ago * S)
    assert window_count(store.window(NOW, name)) == int(inside)


def test_the_baseline_is_the_hour_before_the_last_five_minutes() -> None:
    """The baseline leaves out the last five minutes and keeps the rest of the hour."""
    store = WindowStore()
    count_at(store, NOW - 60 * S)
    count_at(store, NOW - 1200 * S)
    count_at(store, NOW - 1200 * S)
    assert window_count(store.baseline(NOW)) == 2


@pytest.mark.parametrize("name", list(WINDOWS))
def test_every_total_reaches_every_window(name: str) -> None:
    """The store adds each kind of delta to both rings, so every window sees it."""
    store = WindowStore()
    store.add_durations(NOW, KEY, buckets(10.0), error=True)
    store.add_apdex(NOW, *KEY, "frustrated", 1)
    store.add_cache(NOW, KEY, hits=1, misses=2)
    store.add_db_ms(NOW, KEY, 2.5)
    store.add_db_requests(NOW, KEY, 1)
    merged = store.window(NOW, name)[KEY]
    assert (merged.count, merged.errors, merged.frustrated) == (1, 1, 1)
    assert (merged.cache_hits, merged.cache_misses, merged.db_ms, merged.db_requests) == (
        1,
        2,
        2.5,
        1,
    )


def test_an_unknown_window_name_raises() -> None:
    """Only the named windows exist."""
    with pytest.raises(KeyError):
        WindowStore().window(NOW, "2m")


# --- DeltaTracker ---------------------------------------------------------------------------


def test_the_first_cumulative_histogram_is_its_own_delta() -> None:
    """A series seen for the first time contributes everything it holds."""
    tracker = DeltaTracker()
    assert tracker.histogram_delta("s", 1, buckets(1.0, 2.0)).count == 2


def test_a_later_cumulative_histogram_gives_only_what_is_new() -> None:
    """The next point of the same series contributes the difference."""
    tracker = DeltaTracker()
    tracker.histogram_delta("s", 1, buckets(1.0, 2.0))
    delta = tracker.histogram_delta("s", 1, buckets(1.0, 2.0, 40.0))
    assert (delta.count, delta.sum) == (1, 40.0)
    assert tracker.resets == 0


def test_the_tracker_keeps_its_own_copy_of_a_histogram() -> None:
    """Changing a histogram after passing it does not change what later deltas subtract."""
    tracker = DeltaTracker()
    first = buckets(1.0)
    tracker.histogram_delta("s", 1, first)
    first.record(2.0)
    assert tracker.histogram_delta("s", 1, buckets(1.0, 2.0)).count == 1


def test_a_histogram_whose_counts_went_down_is_a_reset() -> None:
    """Fewer counts than before means a restart: the new point is the delta and it is counted."""
    tracker = DeltaTracker()
    tracker.histogram_delta("s", 1, buckets(1.0, 2.0, 3.0))
    assert tracker.histogram_delta("s", 1, buckets(5.0)).count == 1
    assert tracker.resets == 1


@pytest.mark.parametrize("kind", ["histogram", "counter"])
def test_a_new_start_time_is_a_reset(kind: str) -> None:
    """A changed start time (a restarted reader) makes the new point the whole delta."""
    tracker = DeltaTracker()
    if kind == "histogram":
        tracker.histogram_delta("s", 1, buckets(1.0, 2.0, 3.0))
        assert tracker.histogram_delta("s", 2, buckets(1.0, 2.0, 3.0, 4.0)).count == 4
    else:
        tracker.counter_delta("s", 1, 10.0)
        assert tracker.counter_delta("s", 2, 12.0) == 12.0
    assert tracker.resets == 1


@pytest.mark.parametrize(
    ("points", "deltas"),
    [
        ([5.0], [5.0]),
        ([5.0, 8.0], [5.0, 3.0]),
        ([5.0, 5.0], [5.0, 0.0]),
        ([5.0, 8.0, 2.0], [5.0, 3.0, 2.0]),
    ],
)
def test_counter_deltas(points: list[float], deltas: list[float]) -> None:
    """A counter contributes its increase, or its whole value after going down."""
    tracker = DeltaTracker()
    assert [tracker.counter_delta("c", 1, point) for point in points] == deltas


def test_a_counter_that_went_down_is_a_reset() -> None:
    """A decreasing cumulative counter counts one reset."""
    tracker = DeltaTracker()
    tracker.counter_delta("c", 1, 5.0)
    tracker.counter_delta("c", 1, 2.0)
    assert tracker.resets == 1


def test_series_are_tracked_apart() -> None:
    """Each series key has its own previous point."""
    tracker = DeltaTracker()
    tracker.counter_delta("a", 1, 5.0)
    assert tracker.counter_delta("b", 1, 7.0) == 7.0
    assert tracker.counter_delta("a", 1, 6.0) == 1.0


def test_past_the_series_limit_the_oldest_series_is_forgotten() -> None:
    """A new series past ``max_series`` evicts the one unseen longest; its next point is new."""
    tracker = DeltaTracker(max_series=2)
    tracker.counter_delta("a", 1, 5.0)
    tracker.counter_delta("b", 1, 5.0)
    tracker.counter_delta("c", 1, 5.0)
    assert tracker.evictions == 1
    assert tracker.counter_delta("b", 1, 6.0) == 1.0
    assert tracker.counter_delta("a", 1, 6.0) == 6.0


def test_a_busy_series_is_not_evicted_for_being_first() -> None:
    """The series evicted is the least recently seen, so a busy first series keeps its deltas."""
    tracker = DeltaTracker(max_series=2)
    tracker.counter_delta("busy", 1, 5.0)
    tracker.counter_delta("quiet", 1, 5.0)
    tracker.counter_delta("busy", 1, 6.0)
    tracker.counter_delta("new", 1, 5.0)
    assert tracker.evictions == 1
    assert tracker.counter_delta("busy", 1, 8.0) == 2.0
    assert tracker.counter_delta("quiet", 1, 6.0) == 6.0
