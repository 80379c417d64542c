"""The quantile guarantee of exponential buckets, on adversarial data.

At scale 6 or finer every quantile is within 1% of the exact nearest-rank sample
quantile, ``sorted(values)[round(q * (n - 1))]``, in the ratio form
``max(estimate / exact, exact / estimate) <= 1.01`` (which implies
``|estimate - exact| <= 0.01 * exact``); below scale 6, within one bucket.
Data sets: point masses at bucket edges at every scale a series can settle at,
integer-millisecond and 15.6 ms timer quantisation, cached responses, Pareto
tails, 1 µs to 1 h; then merges and cumulative deltas of them. All seeded.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from wedsync_otel.metrics.buckets import (
    DEFAULT_MAX_SIZE,
    GUARANTEED_SCALE,
    MAX_SCALE,
    QUANTILE_RELATIVE_ERROR,
    ExponentialBuckets,
    bucket_index,
    lower_boundary,
    quantile_error_bound,
)

QUANTILES = (0.5, 0.75, 0.9, 0.95, 0.99, 0.999)
EVERY_HALF_PERCENT = tuple(i / 200 for i in range(201))
"""Beyond the quantiles the gauges report: the bound holds for every q."""
SEED = 20_240_601
MICROSECOND_MS = 1e-3
HOUR_MS = 3.6e6
SETTLED_SCALES = range(GUARANTEED_SCALE, MAX_SCALE + 1)
"""Every scale a series within the supported range can settle at."""


def recorded(values: list[float], *, max_size: int = DEFAULT_MAX_SIZE) -> ExponentialBuckets:
    buckets = ExponentialBuckets(max_size=max_size)
    for value in values:
        assert buckets.record(value)
    return buckets


def exact_quantile(ordered: list[float], q: float) -> float:
    """The nearest-rank sample quantile the estimate is held to."""
    return ordered[round(q * (len(ordered) - 1))]


def worst_ratio_error(
    buckets: ExponentialBuckets, values: list[float], qs: tuple[float, ...]
) -> float:
    """Largest ``max(e / x, x / e) - 1`` over ``qs``; zero exact values must be estimated as 0."""
    ordered = sorted(values)
    worst = 0.0
    for q in qs:
        exact = exact_quantile(ordered, q)
        estimate = buckets.quantile(q)
        assert estimate is not None
        if exact == 0.0:
            assert estimate == 0.0, (q, estimate)
            continue
        assert estimate > 0.0, (q, exact)
        worst = max(worst, estimate / exact - 1.0, exact / estimate - 1.0)
    return worst


def assert_within_one_percent(
    buckets: ExponentialBuckets, values: list[float], qs: tuple[float, ...] = QUANTILES
) -> None:
    """Each quantile in ``qs`` is within 1% of the exact one, both ways round."""
    assert buckets.scale >= GUARANTEED_SCALE
    ordered = sorted(values)
    for q in qs:
        exact = exact_quantile(ordered, q)
        estimate = buckets.quantile(q)
        assert estimate is not None
        assert abs(estimate - exact) <= QUANTILE_RELATIVE_ERROR * exact, (q, estimate, exact)
        assert estimate <= exact * 1.01, (q, estimate, exact)
        assert exact <= estimate * 1.01, (q, estimate, exact)


def lowest_in(index: int, scale: int) -> float:
    """The smallest float in bucket ``index``: just above its lower edge."""
    value = lower_boundary(index, scale)
    while bucket_index(value, scale) >= index:
        value = math.nextafter(value, 0.0)
    while bucket_index(value, scale) < index:
        value = math.nextafter(value, math.inf)
    return value


def highest_in(index: int, scale: int) -> float:
    """The largest float in bucket ``index``: its upper edge (buckets are ``(l, u]``)."""
    value = lower_boundary(index + 1, scale)
    while bucket_index(value, scale) <= index:
        value = math.nextafter(value, math.inf)
    while bucket_index(value, scale) > index:
        value = math.nextafter(value, 0.0)
    return value


# -- the bound itself -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("scale", "expected"),
    [
        *((scale, 0.01) for scale in range(6, 21)),
        (5, 2 ** (1 / 32) - 1),  # 2.19%
        (4, 2 ** (1 / 16) - 1),
        (3, 2 ** (1 / 8) - 1),  # 9.05%, where the SDK's 160 buckets put a wide series
        (0, 1.0),
        (-9, 2.0**512 - 1),
        (-10, math.inf),  # buckets as wide as the float range
    ],
)
def test_error_bound_is_one_percent_from_scale_six_and_a_bucket_below(
    scale: int, expected: float
) -> None:
    """The bound is 1% at scale 6 and finer; coarser, the bucket's width."""
    assert quantile_error_bound(scale) == pytest.approx(expected, rel=1e-12)
    assert (2**2**-scale <= 1.01**2) is (scale >= GUARANTEED_SCALE)


@pytest.mark.parametrize("scale", [-11, 21])
def test_error_bound_refuses_scales_outside_otel(scale: int) -> None:
    """A scale outside -10..20 has no bound: ValueError."""
    with pytest.raises(ValueError, match="outside"):
        quantile_error_bound(scale)


# -- point masses at bucket edges --------------------------------------------------------

N = 10_000


def edge_mass(scale: int, edge: str, q: float) -> list[float]:
    """10,000 values: a point mass at one edge of a bucket near 50 ms, placed to mislead at ``q``.

    The mass sits just above the bucket's lower edge and ends at the rank of
    ``q`` (so interpolation alone puts it near the upper edge), or on the
    upper edge and starts at that rank (interpolation alone: near the lower
    edge). The values below and above it sit 0.375 of the 2,048 buckets of
    ``scale`` away on either side: the series spans 0.75 of what ``scale``
    holds and 1.5 of what ``scale + 1`` holds, so it settles at exactly ``scale``.
    """
    index = bucket_index(50.0, scale)
    mass = lowest_in(index, scale) if edge == "lower" else highest_in(index, scale)
    half_span = 2.0 ** (DEFAULT_MAX_SIZE * 0.375 / 2**scale)
    rank = round(q * (N - 1))
    if edge == "lower":
        size = min(1000, rank)
        below = rank - size + 1
    else:
        size = min(1000, N - 1 - rank)
        below = rank
    above = N - below - size
    return [mass / half_span] * below + [mass] * size + [mass * half_span] * above


@pytest.mark.parametrize("q", QUANTILES)
@pytest.mark.parametrize("edge", ["lower", "upper"])
@pytest.mark.parametrize("scale", SETTLED_SCALES)
def test_point_mass_at_a_bucket_edge_is_within_one_percent(scale: int, edge: str, q: float) -> None:
    """A point mass on either edge of a bucket, at each scale 6..20 a series can take: within 1%."""
    values = edge_mass(scale, edge, q)
    buckets = recorded(values)
    assert buckets.scale == scale
    assert_within_one_percent(buckets, values)


def test_interpolation_alone_would_miss_a_lower_edge_mass_by_a_bucket() -> None:
    """Unclamped, a mass's last rank lands at the top of its 1.09% bucket; the clamp holds 1%."""
    values = edge_mass(6, "lower", 0.999)
    mass = values[round(0.999 * (N - 1))]
    index = bucket_index(mass, 6)
    low, high = lower_boundary(index, 6), lower_boundary(index + 1, 6)
    unclamped = low * (high / low) ** ((1000 - 0.5) / 1000)  # the last of 1,000 in the bucket
    assert unclamped / mass - 1 > 0.0108
    assert recorded(values).quantile(0.999) == pytest.approx(mass * 1.01, rel=1e-6)


@pytest.mark.parametrize("scale", SETTLED_SCALES)
def test_masses_on_every_edge_of_many_buckets_are_within_one_percent(scale: int) -> None:
    """Masses on both edges of 64 neighbouring buckets, in uneven amounts, stay within 1%."""
    rng = random.Random(SEED + scale)
    first = bucket_index(20.0, scale)
    values: list[float] = []
    for index in range(first, first + 64):
        values += [lowest_in(index, scale)] * rng.randint(1, 60)
        values += [highest_in(index, scale)] * rng.randint(0, 3)
    half_span = 2.0 ** (DEFAULT_MAX_SIZE * 0.375 / 2**scale)
    values += [20.0 / half_span, 20.0 * half_span]
    buckets = recorded(values)
    assert buckets.scale == scale
    assert_within_one_percent(buckets, values)


# -- quantised timers, cached responses, tails, ranges -----------------------------------


def lognormal_ms(rng: random.Random, median_ms: float, sigma: float, n: int) -> list[float]:
    return [rng.lognormvariate(math.log(median_ms), sigma) for _ in range(n)]


def integer_ms(rng: random.Random) -> list[float]:
    """A 1 ms timer: durations truncated to whole milliseconds, zeros included."""
    return [float(math.floor(v)) for v in lognormal_ms(rng, 4.0, 1.0, 20_000)]


def rounded_ms(rng: random.Random) -> list[float]:
    """Durations rounded to whole milliseconds: 1, 2, 4, 8... are exact upper bucket edges."""
    return [float(round(v)) for v in lognormal_ms(rng, 30.0, 0.8, 20_000)]


def windows_timer(tick_ms: float) -> Callable[[random.Random], list[float]]:
    def quantised(rng: random.Random) -> list[float]:
        """A coarse system clock: multiples of one tick, many of them zero."""
        return [math.floor(v / tick_ms) * tick_ms for v in lognormal_ms(rng, 25.0, 1.2, 20_000)]

    return quantised


def cached_responses(rng: random.Random) -> list[float]:
    """70% cache hits of one identical duration, the rest database round trips."""
    hit = 0.25 + 2**-20
    return [
        hit if rng.random() < 0.7 else rng.lognormvariate(math.log(120.0), 0.6)
        for _ in range(20_000)
    ]


def pareto(alpha: float) -> Callable[[random.Random], list[float]]:
    def tail(rng: random.Random) -> list[float]:
        """A Pareto tail from 1 ms, capped at an hour (a timeout)."""
        return [min(rng.paretovariate(alpha), HOUR_MS) for _ in range(20_000)]

    return tail


def microsecond_to_hour(rng: random.Random) -> list[float]:
    """Log-uniform from 1 µs to 1 h, with point masses at both ends."""
    span = math.log(HOUR_MS / MICROSECOND_MS)
    values = [MICROSECOND_MS * math.exp(rng.random() * span) for _ in range(20_000)]
    return values + [MICROSECOND_MS] * 300 + [HOUR_MS] * 300


def microsecond_to_hour_with_edge_mass(rng: random.Random) -> list[float]:
    """1 µs to 1 h, two thirds of the values in a mass just above a scale-6 edge near 1 s."""
    values = microsecond_to_hour(rng)
    return values + [lowest_in(bucket_index(1000.0, 6), 6)] * (2 * len(values))


def widened(data: Callable[[random.Random], list[float]]) -> Callable[[random.Random], list[float]]:
    def wide(rng: random.Random) -> list[float]:
        """The same data beside a few 1 µs cache reads and 1 h timeouts: scale 6, the coarsest."""
        return [MICROSECOND_MS] * 3 + data(rng) + [HOUR_MS] * 3

    return wide


DATA_SETS: dict[str, Callable[[random.Random], list[float]]] = {
    "integer_ms": integer_ms,
    "integer_ms_wide": widened(integer_ms),
    "rounded_ms": rounded_ms,
    "rounded_ms_wide": widened(rounded_ms),
    "timer_15.625ms": windows_timer(15.625),
    "timer_15.625ms_wide": widened(windows_timer(15.625)),
    "timer_15.6ms": windows_timer(15.6),
    "timer_15.6ms_wide": widened(windows_timer(15.6)),
    "cached_responses": cached_responses,
    "pareto_0.8": pareto(0.8),
    "pareto_1.1": pareto(1.1),
    "pareto_2.5": pareto(2.5),
    "microsecond_to_hour": microsecond_to_hour,
    "microsecond_to_hour_mass": microsecond_to_hour_with_edge_mass,
}


@pytest.mark.parametrize("name", DATA_SETS)
def test_adversarial_data_set_is_within_one_percent(name: str) -> None:
    """Quantised timers, cached responses, Pareto tails and 1 µs..1 h: every quantile within 1%."""
    values = DATA_SETS[name](random.Random(SEED))
    assert_within_one_percent(recorded(values), values, QUANTILES + EVERY_HALF_PERCENT)


@pytest.mark.parametrize("name", DATA_SETS)
def test_adversarial_windows_are_within_one_percent(name: str) -> None:
    """Small windows of the same data (50 to 2,000 values) are within 1% too."""
    rng = random.Random(SEED + 1)
    values = DATA_SETS[name](rng)
    for size in (50, 200, 2000):
        start = rng.randrange(len(values) - size)
        window = values[start : start + size]
        assert_within_one_percent(recorded(window), window, QUANTILES + EVERY_HALF_PERCENT)


def test_the_microsecond_to_hour_range_settles_at_scale_six() -> None:
    """The widest supported range just fits 2,048 buckets at scale 6."""
    values = microsecond_to_hour(random.Random(SEED))
    assert recorded(values).scale == 6


# -- any data: hypothesis ----------------------------------------------------------------


@st.composite
def edge_values(draw: st.DrawFn) -> float:
    """A float on a bucket edge at some scale 6..20, or just inside, between 1 µs and 1 h."""
    scale = draw(st.integers(min_value=GUARANTEED_SCALE, max_value=MAX_SCALE))
    low, high = bucket_index(MICROSECOND_MS, scale) + 1, bucket_index(HOUR_MS, scale) - 1
    index = draw(st.integers(min_value=low, max_value=high))
    return lowest_in(index, scale) if draw(st.booleans()) else highest_in(index, scale)


supported_values = st.one_of(
    st.just(0.0),
    st.floats(min_value=MICROSECOND_MS, max_value=HOUR_MS),
    st.sampled_from([1.0, 2.0, 15.625, 15.6, 31.25, 1000.0, MICROSECOND_MS, HOUR_MS]),
    edge_values(),
)
repeated = st.lists(
    st.tuples(supported_values, st.integers(min_value=1, max_value=300)), min_size=1, max_size=25
)


def expand(pairs: list[tuple[float, int]]) -> list[float]:
    return [value for value, times in pairs for _ in range(times)]


@settings(max_examples=300, deadline=None)
@given(pairs=repeated, extra=st.lists(st.floats(min_value=0.0, max_value=1.0), max_size=5))
def test_any_data_in_the_supported_range_is_within_one_percent(
    pairs: list[tuple[float, int]], extra: list[float]
) -> None:
    """Any mix of masses, edges and zeros from 1 µs to 1 h: every quantile, any q, within 1%."""
    values = expand(pairs)
    assert_within_one_percent(recorded(values), values, (*QUANTILES, 0.0, 1.0, *extra))


@settings(max_examples=200, deadline=None)
@given(
    pairs=st.lists(
        st.tuples(
            st.one_of(st.just(0.0), st.floats(min_value=1e-300, max_value=1e300), edge_values()),
            st.integers(min_value=1, max_value=50),
        ),
        min_size=1,
        max_size=20,
    ),
    max_size=st.integers(min_value=2, max_value=300),
    q=st.floats(min_value=0.0, max_value=1.0),
)
def test_any_data_at_any_scale_is_within_the_scale_bound(
    pairs: list[tuple[float, int]], max_size: int, q: float
) -> None:
    """At whatever scale a series settles, every quantile is within `quantile_error_bound`."""
    values = expand(pairs)
    buckets = recorded(values, max_size=max_size)
    bound = quantile_error_bound(buckets.scale)
    assert worst_ratio_error(buckets, values, (*QUANTILES, q)) <= bound * (1 + 1e-9)


# -- merges and deltas -------------------------------------------------------------------


@settings(max_examples=150, deadline=None)
@given(parts=st.lists(repeated, min_size=2, max_size=4))
def test_merged_series_keep_the_guarantee(parts: list[list[tuple[float, int]]]) -> None:
    """Series recorded apart, at different scales and on disjoint ranges, merge within 1%."""
    series = [expand(part) for part in parts]
    merged = recorded(series[0])
    for values in series[1:]:
        merged.merge(recorded(values))
    assert_within_one_percent(merged, [value for values in series for value in values])


@pytest.mark.parametrize("seed", range(5))
def test_merging_disjoint_narrow_series_keeps_scale_six_and_the_guarantee(seed: int) -> None:
    """A fine series near 1 µs and scale-6 edge masses near 1 h merge at scale 6, within 1%."""
    rng = random.Random(SEED + seed)
    fast = [MICROSECOND_MS * (1 + rng.random() / 5) for _ in range(500)]
    first = bucket_index(HOUR_MS / 2, 6)
    slow = [
        lowest_in(index, 6) for index in range(first, first + 64) for _ in range(rng.randint(1, 40))
    ]
    fast_buckets, slow_buckets = recorded(fast), recorded(slow)
    assert min(fast_buckets.scale, slow_buckets.scale) > 6
    merged = fast_buckets.copy()
    merged.merge(slow_buckets)
    assert merged.scale == 6
    assert_within_one_percent(merged, fast + slow)


def test_merging_a_coarse_foreign_point_falls_back_to_its_bucket_width() -> None:
    """A scale-3 point from an SDK with 160 buckets drags the merge to scale 3: 9.05%, not 1%."""
    rng = random.Random(SEED)
    ours = lognormal_ms(rng, 80.0, 1.3, 2000)
    theirs = lognormal_ms(rng, 80.0, 1.3, 2000)
    foreign = recorded(theirs, max_size=160)
    assert foreign.scale == 3
    merged = recorded(ours)
    merged.merge(
        ExponentialBuckets.from_counts(
            scale=foreign.scale,
            offset=foreign.offset,
            counts=foreign.counts,
            minimum=foreign.min,
            maximum=foreign.max,
        )
    )
    assert merged.scale == 3
    error = worst_ratio_error(merged, ours + theirs, QUANTILES)
    assert error <= quantile_error_bound(3) * (1 + 1e-9)


@settings(max_examples=200, deadline=None)
@given(earlier=repeated, later=repeated)
def test_a_cumulative_delta_keeps_the_guarantee(
    earlier: list[tuple[float, int]], later: list[tuple[float, int]]
) -> None:
    """``(earlier + later) - earlier`` gives the later values' quantiles within 1%, extremes too."""
    before, added = expand(earlier), expand(later)
    state = recorded(before)
    cumulative = state.copy()
    for value in added:
        cumulative.record(value)
    delta = cumulative.subtract(state)
    assert delta.min <= min(added)
    assert delta.max >= max(added)
    assert_within_one_percent(delta, added, (*QUANTILES, 0.0, 1.0))


@settings(max_examples=100, deadline=None)
@given(intervals=st.lists(repeated, min_size=2, max_size=5))
def test_a_window_of_cumulative_deltas_keeps_the_guarantee(
    intervals: list[list[tuple[float, int]]],
) -> None:
    """A window merging successive deltas of one cumulative series is within 1%, as ingest does."""
    cumulative = ExponentialBuckets()
    window: ExponentialBuckets | None = None
    values: list[float] = []
    for interval in intervals[1:]:
        earlier = cumulative.copy()
        for value in expand(interval):
            cumulative.record(value)
        values += expand(interval)
        delta = cumulative.subtract(earlier)
        if window is None:
            window = delta
        else:
            window.merge(delta)
    assert window is not None
    window.merge(recorded(expand(intervals[0])))  # an exact series merged into the same window
    values += expand(intervals[0])
    assert_within_one_percent(window, values, (*QUANTILES, 0.0, 1.0))


# -- smooth data keeps its accuracy ------------------------------------------------------


@pytest.mark.parametrize(
    ("median_ms", "sigma", "worst_percent"),
    [(80.0, 1.3, 0.3), (2.0, 0.1, 0.015), (150.0, 0.5, 0.07)],
)
def test_smooth_data_stays_far_inside_the_bound(
    median_ms: float, sigma: float, worst_percent: float
) -> None:
    """On 200,000 lognormal latencies interpolation still beats 1%, and the midpoint, by far.

    The bucket midpoints alone would give 0.53%, 0.022% and 0.13% here.
    """
    values = lognormal_ms(random.Random(SEED), median_ms, sigma, 200_000)
    error = worst_ratio_error(recorded(values), values, QUANTILES)
    assert error * 100 <= worst_percent
