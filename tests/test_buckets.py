"""Exponential buckets: OTel's index mapping, recording, merge, subtract, quantiles."""

from __future__ import annotations

import functools
import math
import random
import sys
from collections import Counter
from decimal import ROUND_CEILING, Context, Decimal, localcontext
from fractions import Fraction

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from wedsync_otel.metrics.buckets import (
    DEFAULT_MAX_SCALE,
    DEFAULT_MAX_SIZE,
    GUARANTEED_SCALE,
    ExponentialBuckets,
    bucket_index,
    lower_boundary,
)

MIN_NORMAL = sys.float_info.min
MAX_FLOAT = sys.float_info.max
SCALES = range(-10, 21)
QUANTILES = (0.5, 0.75, 0.9, 0.95, 0.99, 0.999)
_LN2 = Decimal(2).ln(Context(prec=80))

scales = st.integers(min_value=-10, max_value=20)
normal_floats = st.floats(min_value=MIN_NORMAL, max_value=MAX_FLOAT)
# Latency-like values: zeros, sub-millisecond to hours, plus a few extreme floats.
latencies = st.one_of(
    st.just(0.0),
    st.floats(min_value=1e-6, max_value=1e7),
    st.floats(min_value=0.0, max_value=MAX_FLOAT),
)
latency_lists = st.lists(latencies, max_size=60)
small_sizes = st.integers(min_value=2, max_value=40)


def defined_index(value: float, scale: int) -> int:
    """The ``i`` with ``base**i < value <= base**(i+1)``, from ``log2``: exact, or to 80 digits."""
    mantissa, exponent = math.frexp(value)
    if mantissa == 0.5:  # a power of two: the product is rational, compare exactly
        return math.ceil(Fraction(exponent - 1) * Fraction(2) ** scale) - 1
    with localcontext(Context(prec=80)):
        position = Decimal(value).ln() / _LN2 * Decimal(2) ** scale
        return int(position.to_integral_value(rounding=ROUND_CEILING)) - 1


def recorded(values: list[float], **settings_: int) -> ExponentialBuckets:
    buckets = ExponentialBuckets(**settings_)
    for value in values:
        assert buckets.record(value)
    return buckets


def by_index(buckets: ExponentialBuckets) -> dict[int, int]:
    """Non-empty positive buckets as ``{index: count}``, whatever the storage's edges."""
    return {
        buckets.offset + position: count for position, count in enumerate(buckets.counts) if count
    }


def at_scale(buckets: ExponentialBuckets, scale: int) -> dict[int, int]:
    """Non-empty buckets of ``buckets`` downscaled to ``scale``."""
    shift = buckets.scale - scale
    assert shift >= 0
    merged: Counter[int] = Counter()
    for index, count in by_index(buckets).items():
        merged[index >> shift] += count
    return dict(merged)


# -- the mapping -------------------------------------------------------------------------


@settings(max_examples=300, deadline=None)
@given(value=normal_floats, scale=scales)
def test_bucket_index_matches_the_definition(value: float, scale: int) -> None:
    """Every normal float lands in the bucket ``i`` with ``base**i < value <= base**(i+1)``."""
    assert bucket_index(value, scale) == defined_index(value, scale)


@pytest.mark.parametrize("scale", SCALES)
def test_powers_of_two_land_in_the_lower_bucket(scale: int) -> None:
    """An exact power of two is the upper boundary of its bucket; the next float starts the next."""
    up, down = max(scale, 0), max(-scale, 0)
    for exponent in range(-1021, 1024):
        power = math.ldexp(1.0, exponent)
        below = ((exponent << up) - 1) >> down
        assert bucket_index(power, scale) == below
        assert bucket_index(math.nextafter(power, 0.0), scale) == below
        assert bucket_index(math.nextafter(power, math.inf), scale) == (exponent << up) >> down


@pytest.mark.parametrize("scale", SCALES)
def test_record_agrees_with_bucket_index_around_powers_of_two(scale: int) -> None:
    """`record`'s inlined mapping files powers of two and their neighbours as bucket_index does."""
    for exponent in range(-1021, 1024, 3):
        power = math.ldexp(1.0, exponent)
        values = [math.nextafter(power, 0.0), power, power, math.nextafter(power, math.inf)]
        buckets = recorded(values, max_scale=scale)
        assert buckets.scale == scale
        assert by_index(buckets) == dict(Counter(bucket_index(v, scale) for v in values))


@pytest.mark.parametrize("scale", SCALES)
def test_largest_float_lands_in_the_top_bucket(scale: int) -> None:
    """The largest float lands in the bucket whose upper boundary, 2**1024, is beyond floats."""
    index = bucket_index(MAX_FLOAT, scale)
    assert index == defined_index(MAX_FLOAT, scale)
    assert lower_boundary(index, scale) < MAX_FLOAT
    assert lower_boundary(index + 1, scale) == math.inf


@given(value=st.floats(min_value=5e-324, max_value=MIN_NORMAL, exclude_max=True), scale=scales)
def test_subnormals_count_in_the_smallest_normal_bucket(value: float, scale: int) -> None:
    """A subnormal value counts in the bucket of the smallest normal value, as the OTel SDK does."""
    assert bucket_index(value, scale) == bucket_index(MIN_NORMAL, scale)
    buckets = ExponentialBuckets(max_scale=scale)
    assert buckets.record(value)
    assert by_index(buckets) == {bucket_index(MIN_NORMAL, scale): 1}
    assert buckets.min == value


@pytest.mark.parametrize("scale", SCALES)
def test_lower_boundary_is_exact_on_octaves(scale: int) -> None:
    """Bucket boundaries that are powers of two come out exactly."""
    step = 1 << max(-scale, 0)  # at negative scales only every 2**-scale-th octave is one
    for exponent in range(-1020 // step * step, 1023, step):
        index = (exponent << scale) if scale >= 0 else exponent >> -scale
        assert lower_boundary(index, scale) == math.ldexp(1.0, exponent)


@given(value=normal_floats, scale=scales)
def test_lower_boundaries_bracket_the_value(value: float, scale: int) -> None:
    """The computed boundaries of a value's bucket enclose it, to a few units in the last place."""
    index = bucket_index(value, scale)
    slack = 1e-12
    assert lower_boundary(index, scale) * (1 - slack) < value
    assert value <= lower_boundary(index + 1, scale) * (1 + slack)


@pytest.mark.parametrize("value", [0.0, -1.0, math.nan, math.inf])
def test_bucket_index_refuses_values_without_a_bucket(value: float) -> None:
    """Zero, negative, NaN and infinite values have no positive bucket."""
    with pytest.raises(ValueError, match="no bucket"):
        bucket_index(value, 0)


# -- recording ---------------------------------------------------------------------------


def test_new_histogram_is_empty_at_max_scale() -> None:
    """A new histogram starts empty at the default maximum scale."""
    buckets = ExponentialBuckets()
    assert (buckets.scale, buckets.count, buckets.zero_count, buckets.sum) == (20, 0, 0, 0.0)
    assert (buckets.min, buckets.max) == (math.inf, -math.inf)
    assert list(buckets.counts) == []
    assert (buckets.max_size, DEFAULT_MAX_SCALE) == (DEFAULT_MAX_SIZE, 20)


@given(values=latency_lists)
def test_record_tracks_count_sum_min_and_max(values: list[float]) -> None:
    """Count, zero count, sum, min and max follow the recorded values."""
    buckets = recorded(values)
    total = 0.0
    for value in values:
        total += value
    assert buckets.count == len(values)
    assert buckets.zero_count == values.count(0.0)
    assert buckets.zero_count + sum(buckets.counts) == buckets.count
    assert buckets.sum == total
    assert buckets.min == min(values, default=math.inf)
    assert buckets.max == max(values, default=-math.inf)


@given(values=latency_lists, zeros=st.integers(min_value=-3, max_value=50))
def test_record_zeros_equals_recording_each_zero(values: list[float], zeros: int) -> None:
    """record_zeros(n) leaves the state n calls of record(0.0) leave; n <= 0 changes nothing."""
    at_once = recorded(values)
    at_once.record_zeros(zeros)
    one_by_one = recorded(values + [0.0] * max(zeros, 0))
    assert at_once.zero_count == one_by_one.zero_count
    assert (at_once.count, at_once.sum, at_once.min, at_once.max) == (
        one_by_one.count,
        one_by_one.sum,
        one_by_one.min,
        one_by_one.max,
    )
    assert (at_once.scale, at_once.offset, list(at_once.counts)) == (
        one_by_one.scale,
        one_by_one.offset,
        list(one_by_one.counts),
    )


@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf, -1.0, -5e-324, 10**400])
def test_record_refuses_negative_nan_and_inf(value: float) -> None:
    """NaN, infinite, negative and too-large values return False and change nothing."""
    buckets = ExponentialBuckets()
    assert buckets.record(value) is False
    assert (buckets.count, buckets.zero_count, buckets.sum) == (0, 0, 0.0)
    assert (buckets.min, buckets.max, list(buckets.counts)) == (math.inf, -math.inf, [])


def test_record_counts_negative_zero_as_zero() -> None:
    """Negative zero is a zero, recorded as 0.0."""
    buckets = ExponentialBuckets()
    assert buckets.record(-0.0)
    assert (buckets.zero_count, buckets.count, buckets.min, buckets.max) == (1, 1, 0.0, 0.0)
    assert math.copysign(1.0, buckets.min) == 1.0


@settings(deadline=None)
@given(values=latency_lists, max_size=small_sizes, max_scale=scales)
def test_downscaling_keeps_every_value_in_the_bucket_that_covers_it(
    values: list[float], max_size: int, max_scale: int
) -> None:
    """After automatic downscaling each value is counted in its bucket at the final scale."""
    buckets = recorded(values, max_size=max_size, max_scale=max_scale)
    expected = Counter(bucket_index(value, buckets.scale) for value in values if value > 0)
    assert by_index(buckets) == dict(expected)
    assert len(buckets.counts) <= max_size
    assert sum(buckets.counts) + buckets.zero_count == len(values)


@settings(deadline=None)
@given(values=latency_lists, max_size=small_sizes)
def test_downscaling_goes_no_further_than_needed(values: list[float], max_size: int) -> None:
    """The histogram keeps the finest scale at which its values fit in ``max_size`` buckets."""
    buckets = recorded(values, max_size=max_size)
    positive = [value for value in values if value > 0]
    if buckets.scale < DEFAULT_MAX_SCALE and positive:
        finer = [bucket_index(value, buckets.scale + 1) for value in positive]
        assert max(finer) - min(finer) + 1 > max_size


def test_default_size_keeps_scale_six_on_a_wide_lognormal() -> None:
    """With the default size a sigma-1.3 lognormal keeps scale 6, which the 1% guarantee needs."""
    assert samples("lognormal")[1].scale == GUARANTEED_SCALE == 6


def test_default_size_keeps_scale_six_from_a_microsecond_to_an_hour() -> None:
    """1 µs and 1 h, in ms, fit in 2,048 buckets at scale 6: the supported range keeps it."""
    assert recorded([1e-3, 3.6e6]).scale == 6


def test_scale_six_holds_exactly_2048_buckets() -> None:
    """Just above 1 to 2**32 is buckets 0..2047 at scale 6; one float more needs scale 5."""
    above_one = math.nextafter(1.0, math.inf)
    assert recorded([above_one, 2.0**32]).scale == 6
    assert recorded([above_one, math.nextafter(2.0**32, math.inf)]).scale == 5


@given(
    low=st.floats(min_value=1e-9, max_value=1e9),
    ratio=st.floats(min_value=1.0, max_value=2 ** (2047 / 64)),
)
def test_a_range_within_two_to_the_2047_64_keeps_scale_six(low: float, ratio: float) -> None:
    """Any two values with ``max / min <= 2 ** (2047 / 64)`` (about 4.2e9) settle at scale 6+."""
    assert recorded([low, low * ratio]).scale >= GUARANTEED_SCALE


# -- merge -------------------------------------------------------------------------------


@settings(deadline=None)
@given(first=latency_lists, second=latency_lists, max_size=small_sizes)
def test_merge_equals_recording_all_values_into_one(
    first: list[float], second: list[float], max_size: int
) -> None:
    """Merging two histograms gives the histogram of all their values, at the common scale."""
    merged = recorded(first, max_size=max_size)
    merged.merge(recorded(second, max_size=max_size))
    together = recorded(first + second, max_size=max_size)
    assert (merged.scale, merged.zero_count, merged.count) == (
        together.scale,
        together.zero_count,
        together.count,
    )
    assert by_index(merged) == by_index(together)
    assert (merged.min, merged.max) == (together.min, together.max)
    assert math.isclose(merged.sum, together.sum, rel_tol=1e-9)


@settings(deadline=None)
@given(first=latency_lists, second=latency_lists, max_size=small_sizes)
def test_merge_is_commutative_in_counts(
    first: list[float], second: list[float], max_size: int
) -> None:
    """``a + b`` and ``b + a`` have the same scale and counts."""
    one = recorded(first, max_size=max_size)
    one.merge(recorded(second, max_size=max_size))
    other = recorded(second, max_size=max_size)
    other.merge(recorded(first, max_size=max_size))
    assert (one.scale, one.zero_count, one.count) == (other.scale, other.zero_count, other.count)
    assert by_index(one) == by_index(other)


@settings(deadline=None)
@given(parts=st.lists(latency_lists, min_size=3, max_size=3), max_size=small_sizes)
def test_merge_is_associative_in_counts(parts: list[list[float]], max_size: int) -> None:
    """``(a + b) + c`` and ``a + (b + c)`` have the same scale and counts."""
    a, b, c = (recorded(part, max_size=max_size) for part in parts)
    left = a.copy()
    left.merge(b)
    left.merge(c)
    right_tail = b.copy()
    right_tail.merge(c)
    right = a.copy()
    right.merge(right_tail)
    assert (left.scale, left.count) == (right.scale, right.count)
    assert by_index(left) == by_index(right)


def test_merge_brings_both_sides_to_the_lower_scale() -> None:
    """A fine histogram merged with a coarse one ends at the coarse scale, the other untouched."""
    fine = recorded([1.0, 1.001])
    coarse = recorded([1.0, 1000.0], max_size=16)
    assert fine.scale > coarse.scale
    before = by_index(coarse)
    fine.merge(coarse)
    assert fine.scale == coarse.scale
    values = (1.0, 1.001, 1.0, 1000.0)
    assert by_index(fine) == dict(Counter(bucket_index(v, fine.scale) for v in values))
    assert by_index(coarse) == before


def test_merge_with_itself_doubles_the_counts() -> None:
    """Merging a histogram into itself doubles every count."""
    buckets = recorded([0.0, 1.5, 3.0, 3.0])
    buckets.merge(buckets)
    scale = buckets.scale
    assert by_index(buckets) == {bucket_index(1.5, scale): 2, bucket_index(3.0, scale): 4}
    assert (buckets.count, buckets.zero_count, buckets.sum) == (8, 2, 15.0)


# -- subtract ----------------------------------------------------------------------------


@settings(deadline=None)
@given(earlier=latency_lists, later=latency_lists, max_size=small_sizes)
def test_subtract_inverts_merge(earlier: list[float], later: list[float], max_size: int) -> None:
    """A cumulative state minus an earlier one leaves what was added since, at the common scale."""
    before = recorded(earlier, max_size=max_size)
    added = recorded(later, max_size=max_size)
    after = before.copy()
    after.merge(added)
    delta = after.subtract(before)
    assert delta.scale == after.scale
    assert by_index(delta) == at_scale(added, delta.scale)
    assert (delta.count, delta.zero_count) == (added.count, added.zero_count)
    if math.isfinite(after.sum):  # huge values may overflow the float sum
        assert math.isclose(delta.sum, added.sum, rel_tol=1e-9, abs_tol=1e-9 * after.sum)


def test_subtract_downscales_an_earlier_state_kept_at_a_finer_scale() -> None:
    """An earlier state still at a finer scale is downscaled before subtracting."""
    series = recorded([10.0, 10.5], max_size=8)
    earlier = series.copy()
    for value in (0.001, 5000.0, 10.2):
        series.record(value)
    assert earlier.scale > series.scale
    delta = series.subtract(earlier)
    assert by_index(delta) == dict(
        Counter(bucket_index(v, series.scale) for v in (0.001, 5000.0, 10.2))
    )
    assert delta.count == 3


def test_subtract_narrows_min_and_max_to_the_delta_buckets() -> None:
    """Extremes recorded before the delta give way to the edges of the delta's own buckets."""
    earlier = recorded([1.0, 900.0])
    later = earlier.copy()
    later.record(5.0)
    delta = later.subtract(earlier)
    scale = delta.scale
    index = bucket_index(5.0, scale)
    assert delta.count == 1
    assert lower_boundary(index, scale) * (1 - 1e-9) < delta.min <= 5.0
    assert 5.0 <= delta.max < lower_boundary(index + 1, scale) * (1 + 1e-9)
    assert delta.quantile(0.5) == pytest.approx(5.0, rel=0.01)  # not the earlier 1.0


def test_subtract_keeps_extremes_recorded_in_the_delta() -> None:
    """A later min or max in a bucket the earlier state had nothing in is the delta's own."""
    earlier = recorded([40.0, 50.0])
    later = earlier.copy()
    for value in (3.0, 45.0, 700.0):
        later.record(value)
    delta = later.subtract(earlier)
    assert (delta.min, delta.max) == (3.0, 700.0)
    assert (delta.quantile(0.0), delta.quantile(1.0)) == (3.0, 700.0)


def test_subtract_gives_zero_as_the_minimum_of_a_delta_with_zeros() -> None:
    """A zero in the delta is its minimum, and a delta of zeros alone has zero as its maximum."""
    earlier = recorded([0.0, 8.0])
    later = earlier.copy()
    later.record(0.0)
    delta = later.subtract(earlier)
    assert (delta.count, delta.min, delta.max) == (1, 0.0, 0.0)
    assert delta.quantile(0.5) == 0.0


def test_subtract_of_an_unchanged_state_is_empty() -> None:
    """Subtracting an identical state gives an empty delta with no buckets."""
    state = recorded([0.0, 2.0, 7.5])
    delta = state.subtract(state.copy())
    assert (delta.count, delta.zero_count, list(delta.counts)) == (0, 0, [])
    assert (delta.min, delta.max, delta.quantile(0.5)) == (math.inf, -math.inf, None)


@pytest.mark.parametrize(
    ("earlier", "later"),
    [
        ([1.0, 2.0, 2.0], [1.0, 2.0, 3.0]),  # a bucket went down
        ([0.0, 1.0], [1.0, 1.0]),  # the zero count went down
        ([5.0], [1.0]),  # a bucket vanished
        ([1.0, 2.0], [1.0]),  # fewer values in all
    ],
)
def test_subtract_raises_on_a_reset(earlier: list[float], later: list[float]) -> None:
    """A later state with fewer counts anywhere is a reset: ValueError."""
    with pytest.raises(ValueError, match="reset"):
        recorded(later).subtract(recorded(earlier))


# -- quantiles ---------------------------------------------------------------------------


@functools.cache
def samples(name: str) -> tuple[list[float], ExponentialBuckets]:
    """200,000 seeded latencies in ms, sorted, and their histogram."""
    rng = random.Random(20_240_601)
    if name == "lognormal":
        values = [rng.lognormvariate(math.log(80.0), 1.3) for _ in range(200_000)]
    else:  # bimodal: 60% cache hits near 2 ms, 40% database round trips near 150 ms
        values = [
            rng.lognormvariate(math.log(2.0), 0.1)
            if rng.random() < 0.6
            else rng.lognormvariate(math.log(150.0), 0.1)
            for _ in range(200_000)
        ]
    values.sort()
    return values, recorded(values)


@pytest.mark.parametrize("q", QUANTILES)
@pytest.mark.parametrize("name", ["lognormal", "bimodal"])
def test_quantile_is_within_one_percent(name: str, q: float) -> None:
    """On 200,000 latencies each reported quantile is within 1% of the exact sample quantile."""
    values, buckets = samples(name)
    exact = values[round(q * (len(values) - 1))]
    estimate = buckets.quantile(q)
    assert estimate is not None
    assert abs(estimate - exact) <= 0.01 * exact


def test_quantile_of_an_empty_histogram_is_none() -> None:
    """An empty histogram has no quantiles."""
    assert ExponentialBuckets().quantile(0.5) is None


def test_quantile_extremes_are_min_and_max() -> None:
    """q=0 and q=1 give exactly the recorded min and max."""
    buckets = recorded([3.7, 12.0, 250.25, 99.0])
    assert (buckets.quantile(0.0), buckets.quantile(1.0)) == (3.7, 250.25)


def test_quantile_in_the_zero_bucket_is_zero() -> None:
    """A rank among the recorded zeros gives 0."""
    buckets = recorded([0.0] * 6 + [40.0] * 4)
    assert buckets.quantile(0.5) == 0.0
    assert buckets.quantile(0.9) == pytest.approx(40.0, rel=1e-6)  # within its scale-20 bucket


def test_quantile_takes_the_nearest_rank() -> None:
    """Rank ``q * (n - 1)`` is rounded, so a sparse tail gives the sample the exact one names."""
    buckets = recorded([1.0, 2.0, 1000.0])
    assert buckets.quantile(0.76) == 1000.0  # rank 1.52 rounds to 2: the largest value
    assert buckets.quantile(0.74) == pytest.approx(2.0, rel=0.01)  # rank 1.48 rounds to 1


def test_quantile_of_one_value_is_that_value() -> None:
    """A single value is every quantile, thanks to the clamp to min and max."""
    buckets = recorded([42.5])
    assert {buckets.quantile(q) for q in QUANTILES} == {42.5}


@pytest.mark.parametrize("q", [-0.01, 1.01, math.nan])
def test_quantile_refuses_q_outside_zero_to_one(q: float) -> None:
    """A quantile outside [0, 1] is a caller error: ValueError."""
    with pytest.raises(ValueError, match="outside"):
        recorded([1.0]).quantile(q)


# -- from_counts, copy, size -------------------------------------------------------------


@given(
    scale=scales,
    offset=st.integers(min_value=-5000, max_value=5000),
    counts=st.lists(st.integers(min_value=0, max_value=2**40), max_size=50),
    zero_count=st.integers(min_value=0, max_value=1000),
)
def test_from_counts_round_trips(
    scale: int, offset: int, counts: list[int], zero_count: int
) -> None:
    """A data point's scale, offset and counts come back unchanged, with the total count."""
    buckets = ExponentialBuckets.from_counts(
        scale=scale,
        offset=offset,
        counts=counts,
        zero_count=zero_count,
        total_sum=12.5,
        minimum=0.5,
        maximum=99.0,
    )
    assert (buckets.scale, list(buckets.counts)) == (scale, counts)
    assert buckets.offset == (offset if counts else 0)
    assert buckets.count == zero_count + sum(counts)
    assert (buckets.zero_count, buckets.sum, buckets.min, buckets.max) == (
        zero_count,
        12.5,
        0.5,
        99.0,
    )


def test_from_counts_downscales_to_fit_max_size() -> None:
    """A data point wider than ``max_size`` is downscaled, keeping every count."""
    buckets = ExponentialBuckets.from_counts(scale=3, offset=-7, counts=[1] * 20, max_size=8)
    assert buckets.scale == 1
    assert len(buckets.counts) <= 8
    assert by_index(buckets) == dict(Counter(index >> 2 for index in range(-7, 13)))


def test_from_counts_refuses_negative_counts() -> None:
    """Negative bucket or zero counts are not a histogram: ValueError."""
    with pytest.raises(ValueError, match="negative"):
        ExponentialBuckets.from_counts(scale=0, offset=0, counts=[1, -1])
    with pytest.raises(ValueError, match="negative"):
        ExponentialBuckets.from_counts(scale=0, offset=0, counts=[1], zero_count=-1)


def test_from_counts_continues_recording_at_its_scale() -> None:
    """A histogram built from counts records new values into the same buckets."""
    buckets = ExponentialBuckets.from_counts(scale=2, offset=0, counts=[1])
    buckets.record(1.1)
    assert by_index(buckets) == {0: 2}
    assert buckets.count == 2


def test_copy_is_independent() -> None:
    """Recording into a copy leaves the original unchanged."""
    original = recorded([1.0, 2.0])
    twin = original.copy()
    twin.record(3.0)
    twin.record(0.5)
    assert (original.count, by_index(original)) == (2, by_index(recorded([1.0, 2.0])))
    assert twin.count == 4


def test_nbytes_covers_eight_bytes_a_bucket() -> None:
    """The reported storage is at least eight bytes per bucket held."""
    buckets = recorded([1.0, 1000.0])
    assert buckets.nbytes() >= 8 * len(buckets.counts) > 0


@pytest.mark.parametrize(("max_size", "max_scale"), [(1, 20), (160, 21), (160, -11)])
def test_constructor_refuses_unusable_settings(max_size: int, max_scale: int) -> None:
    """A size below two or a scale outside OTel's -10..20 is refused."""
    with pytest.raises(ValueError, match="max_"):
        ExponentialBuckets(max_size=max_size, max_scale=max_scale)
