"""Base-2 exponential histogram buckets with OpenTelemetry's semantics, in pure Python.

The span processor pre-aggregates latencies per attribute set with it on the hot
path, and the metrics exporter merges per-interval deltas from many instances and
reads quantiles from it, so it has no OpenTelemetry import and `record` does as
little as possible (one ``log2``, one ``ceil``, a few slot updates).

Semantics are those of the OTel data model: at scale ``s`` the base is
``2 ** 2 ** -s`` and bucket ``i`` holds the values in ``(base**i, base**(i+1)]``.
Exact powers of two land in the lower bucket: whenever ``log2`` lands exactly on
the index grid, the float's bits (`math.frexp`) decide, as in the SDK's mappings.
Zero goes to ``zero_count``. Subnormal values count in the bucket of the smallest
normal value, as the OTel SDK maps them (the data model allows rounding them up).
Negative, NaN and infinite values are refused: `record` returns ``False``.

Size and scale. ``GUARANTEED_SCALE = 6`` is the coarsest scale whose buckets
(``2 ** (1/64)``, 1.09% wide) admit a 1% quantile guarantee (below); scale 5
buckets are 2.19% wide, and no estimate inside one is within 1% of both its ends.
``DEFAULT_MAX_SIZE = 2048`` holds 32 octaves at scale 6: a series whose positive
values span ``max / min <= 2 ** (2047 / 64)``, about 4.2e9 (1 µs to 70 minutes
in ms), never goes coarser. The SDK's 160 drops a sigma-1.3 lognormal to scale 3
(9% buckets). ``DEFAULT_MAX_SCALE = 20`` (OTel's finest): a series keeps the
finest scale its range allows, which keeps small samples accurate. The price is
memory: storage is an ``array('q')`` over the occupied index range only, 8 bytes
a bucket plus the array's header and growth slack, and a series recorded at a
scale below 20 spans more than half of ``max_size``, so most series hold 8 to 17
KB (1 ms to 10 s: scale 7, about 1,700 buckets, 14 KB; the whole 1 µs to 1 h
range: scale 6, about 2,030 buckets, 17 KB), twice what 1,024 buckets took.

Quantile estimate. The reference is the nearest rank: the value at 0-based
index ``r = round(q * (n - 1))`` of the ``n`` recorded values sorted (Python's
``round``, halves to even), zeros included; ranks among the zeros give 0. A
cumulative scan finds the bucket holding rank ``r``, and the bucket is narrowed
to the histogram's ``[min, max]``, giving ``lo..hi``. Inside it the ``k``-th of
``n_b`` samples is put at fraction ``(k + 0.5) / n_b`` of the logarithmic width,
which follows smooth data far more closely than the bucket's width. Where the
bucket is at most 1.0201 wide (scale 6 or finer) that estimate is clamped into
``[hi / 1.01, lo * 1.01]``, the values within 1% of every point of ``lo..hi``.
Ranks ``0`` and ``n - 1`` return ``min`` and ``max`` themselves when those are
recorded values.

The guarantee. The exact value ``x`` lies in ``lo..hi``, so for every ``q`` and
any data the estimate ``e`` has ``max(e / x, x / e) <= 1.01`` at scale 6 or
finer, hence ``|e - x| <= 0.01 * x`` (DDSketch's bound at alpha 0.01). At a
coarser scale ``s`` no estimate can be within 1% of both ends of a bucket, and
``e`` is within one bucket, ``2 ** 2 ** -s`` (2.19% at scale 5, 9.05% at the
scale 3 the SDK's 160 buckets give a wide series): interpolation is kept there,
as the geometric midpoint would halve that bound but cost smooth data 30-fold
(0.13% to 3.8% on a million lognormal latencies at scale 3).
`quantile_error_bound` gives the figure. It holds after any `merge` and
`subtract`, at whatever scale they leave: a merge of series at scale 6 or finer
stays there while the union of their ranges fits ``max_size`` buckets at scale 6;
one coarser input brings the merge down to its scale and bound. The conditions:
the histogram's ``min`` and ``max`` bound its values (true of what `record`,
`merge` and `subtract` keep, and of `from_counts` when the data point's are
right); values are normal floats (a subnormal counts in the bucket of the
smallest normal, below that bucket's edge); a value in the top bucket of the
float range, with no ``max`` known, is not bounded. The clamp costs smooth data
nothing at scale 7 or finer (the bucket lies inside ``[hi / 1.01, 1.01 * lo]``)
and moves an estimate by at most 0.09% at scale 6, where it binds only in the
outer 8% of a bucket's width. The many identical values just above a bucket's
lower edge that quantised timers and cached responses give, which interpolation
alone puts near the upper edge a whole bucket away, come out within 1%.

Not thread-safe: callers hold their own lock around `record`, `merge` and reads.
"""

from __future__ import annotations

import math
import sys
from array import array
from collections.abc import Sequence
from math import ceil, exp2, frexp, ldexp, log2
from typing import Final

DEFAULT_MAX_SIZE: Final = 2048
"""32 octaves at `GUARANTEED_SCALE`: 1 µs to 70 minutes in ms keep the 1% guarantee."""
DEFAULT_MAX_SCALE: Final = 20

QUANTILE_RELATIVE_ERROR: Final = 0.01
"""The guaranteed bound on ``|estimate - exact| / exact`` at `GUARANTEED_SCALE` or finer."""
GUARANTEED_SCALE: Final = 6
"""Coarsest scale whose buckets (1.09% wide) admit `QUANTILE_RELATIVE_ERROR`."""

MIN_SCALE: Final = -10
"""At scale -10 every normal float maps to bucket -1 or 0: no coarser scale is useful."""
MAX_SCALE: Final = 20
"""OTel's finest scale: indices of all finite floats still fit in a signed 32-bit integer."""

_MIN_NORMAL: Final = sys.float_info.min
_MAX_FLOAT: Final = sys.float_info.max
_ITEMSIZE: Final = 8  # array('q')
# The clamp ratio, a hair inside 1.01: the computed bucket boundaries and the products
# below are rounded, a few ulps each, and the bound must hold for the exact values.
_RATIO: Final = (1.0 + QUANTILE_RELATIVE_ERROR) * (1.0 - 1e-9)
_EDGE_SLACK: Final = 1e-12  # widens a bound taken from a computed bucket boundary


def _zeros(length: int) -> array[int]:
    return array("q", bytes(_ITEMSIZE * length))


def _exact_index(value: float, scale: int) -> int:
    """Bucket index of a positive normal float from its mantissa and exponent.

    Used when ``log2(value)`` lands exactly on the index grid: then only the
    float's bits can tell a power of two (lower bucket) from a neighbour of it.
    """
    mantissa, exponent = frexp(value)  # value == mantissa * 2**exponent, 0.5 <= mantissa < 1
    if scale > 0:
        # log2(mantissa) lies in [-1, 0): no rounding can push it across the octave.
        return (exponent << scale) + ceil(log2(mantissa) * (1 << scale)) - 1
    return (exponent - 1 - (mantissa == 0.5)) >> -scale


def bucket_index(value: float, scale: int) -> int:
    """Index ``i`` of the bucket ``(base**i, base**(i+1)]`` holding ``value`` at ``scale``.

    ``log2`` is faithfully rounded and scaling by ``2**scale`` is exact, so the
    fast estimate is only in doubt when it falls exactly on the grid; then the
    float's bits decide. Raises `ValueError` for values that have no bucket
    (zero, negative, NaN, infinite); `ExponentialBuckets.record` never raises.
    """
    if not 0.0 < value <= _MAX_FLOAT:
        raise ValueError(f"no bucket for {value!r}: only positive finite values have one")
    if not MIN_SCALE <= scale <= MAX_SCALE:
        raise ValueError(f"scale {scale} outside [{MIN_SCALE}, {MAX_SCALE}]")
    value = max(value, _MIN_NORMAL)  # subnormals count as the smallest normal value
    position = log2(value) * ldexp(1.0, scale)
    upper = ceil(position)
    if upper == position:
        return _exact_index(value, scale)
    return upper - 1


def lower_boundary(index: int, scale: int) -> float:
    """Lower boundary ``base**index`` of bucket ``index``; ``inf`` past the largest float.

    Split into a power of two (exact) and a fractional power in ``[1, 2)`` so
    that large indices lose no precision.
    """
    try:
        if scale > 0:
            octave = index >> scale
            return ldexp(exp2((index - (octave << scale)) / (1 << scale)), octave)
        return ldexp(1.0, index << -scale)
    except OverflowError:
        return math.inf


def quantile_error_bound(scale: int) -> float:
    """The guaranteed relative error of `ExponentialBuckets.quantile` at ``scale``.

    ``QUANTILE_RELATIVE_ERROR`` at `GUARANTEED_SCALE` or finer; at a coarser
    scale one bucket, ``2 ** 2 ** -scale - 1``. It bounds both
    ``estimate / exact - 1`` and ``exact / estimate - 1``, under the conditions
    the module docstring states. Raises `ValueError` outside OTel's scales.
    """
    if not MIN_SCALE <= scale <= MAX_SCALE:
        raise ValueError(f"scale {scale} outside [{MIN_SCALE}, {MAX_SCALE}]")
    if scale >= GUARANTEED_SCALE:
        return QUANTILE_RELATIVE_ERROR
    octaves = ldexp(1.0, -scale)  # log2 of the bucket's width
    return math.inf if octaves >= 1024 else math.expm1(math.log(2.0) * octaves)


def _downscale_needed(low: int, high: int, scale: int, max_size: int) -> int:
    """Smallest scale reduction that fits indices ``low..high`` into ``max_size`` buckets."""
    change = 0
    while high - low + 1 > max_size and scale - change > MIN_SCALE:
        low >>= 1
        high >>= 1
        change += 1
    return change


class ExponentialBuckets:
    """Positive buckets, zero count, count, sum, min and max of one latency series.

    Read the public properties; change the state only through the methods.
    ``counts`` is the live storage, typed read-only: copy it to keep it.
    """

    __slots__ = (
        "_count",
        "_counts",
        "_exact_extremes",
        "_factor",
        "_max",
        "_max_scale",
        "_max_size",
        "_min",
        "_offset",
        "_scale",
        "_sum",
        "_zero_count",
    )

    def __init__(
        self, *, max_size: int = DEFAULT_MAX_SIZE, max_scale: int = DEFAULT_MAX_SCALE
    ) -> None:
        if max_size < 2:
            raise ValueError(f"max_size {max_size} < 2: scale -10 still needs two buckets")
        if not MIN_SCALE <= max_scale <= MAX_SCALE:
            raise ValueError(f"max_scale {max_scale} outside [{MIN_SCALE}, {MAX_SCALE}]")
        self._max_size = max_size
        self._max_scale = max_scale
        self._scale = max_scale
        self._factor = ldexp(1.0, max_scale)
        self._zero_count = 0
        self._offset = 0
        self._counts: array[int] = array("q")
        self._count = 0
        self._sum = 0.0
        self._min = math.inf
        self._max = -math.inf
        self._exact_extremes = True
        """Min and max are recorded values; False when they are only bounds (a delta's)."""

    def __repr__(self) -> str:
        return (
            f"ExponentialBuckets(scale={self._scale}, count={self._count}, "
            f"zero_count={self._zero_count}, offset={self._offset}, buckets={len(self._counts)})"
        )

    @property
    def scale(self) -> int:
        """Current scale: starts at ``max_scale`` and only ever goes down."""
        return self._scale

    @property
    def max_size(self) -> int:
        """Most positive buckets this histogram keeps before it downscales."""
        return self._max_size

    @property
    def zero_count(self) -> int:
        """Number of recorded zeros."""
        return self._zero_count

    @property
    def offset(self) -> int:
        """Bucket index of ``counts[0]``."""
        return self._offset

    @property
    def counts(self) -> Sequence[int]:
        """Positive bucket counts from index ``offset`` on (the live array, not a copy)."""
        return self._counts

    @property
    def count(self) -> int:
        """Number of recorded values, zeros included."""
        return self._count

    @property
    def sum(self) -> float:
        """Sum of the recorded values."""
        return self._sum

    @property
    def min(self) -> float:
        """Smallest recorded value (for a `subtract` delta, a lower bound); ``inf`` when empty."""
        return self._min

    @property
    def max(self) -> float:
        """Largest recorded value (for a `subtract` delta, an upper bound); ``-inf`` if empty."""
        return self._max

    def record(self, value: float) -> bool:
        """Count one value; ``False``, with nothing recorded, for negative, NaN or inf.

        The hot path: a normal value whose bucket is already in range costs one
        ``log2``, one ``ceil`` and a few slot updates.
        """
        try:
            # Literals are the smallest normal and the largest finite float; NaN fails both.
            if not 2.2250738585072014e-308 <= value <= 1.7976931348623157e308:
                return self._record_special(value)
            position = log2(value) * self._factor
        except TypeError:
            return False
        index = ceil(position)
        if index == position:  # on the grid: maybe an exact power of two
            index = _exact_index(value, self._scale) + 1
        index -= 1 + self._offset
        counts = self._counts
        if 0 <= index < len(counts):
            counts[index] += 1
        else:
            self._insert(index + self._offset)
        self._count += 1
        self._sum += value
        # Two comparisons are cheaper than two calls of min() and max() on this path.
        if value < self._min:  # noqa: PLR1730
            self._min = value
        if value > self._max:  # noqa: PLR1730
            self._max = value
        return True

    def record_zeros(self, count: int) -> None:
        """Count ``count`` zeros at once, as ``count`` calls of ``record(0.0)`` would."""
        if count <= 0:
            return
        self._zero_count += count
        self._count += count
        self._min = min(self._min, 0.0)
        self._max = max(self._max, 0.0)

    def _record_special(self, value: float) -> bool:
        """Zero, subnormal, or a value that is refused."""
        if value == 0.0:
            self._zero_count += 1
            value = 0.0  # -0.0 is recorded as 0.0
        elif 0.0 < value < _MIN_NORMAL:
            self._insert(bucket_index(value, self._scale))
        else:
            return False
        self._count += 1
        self._sum += value
        self._min = min(self._min, value)
        self._max = max(self._max, value)
        return True

    def _insert(self, index: int) -> None:
        """Count one value at ``index`` (current scale), growing or downscaling as needed."""
        counts = self._counts
        if not counts:
            self._offset = index
            counts.append(1)
            return
        offset = self._offset
        change = _downscale_needed(
            min(offset, index), max(offset + len(counts) - 1, index), self._scale, self._max_size
        )
        if change:
            self._downscale(change)
            index >>= change
        self._widen(index, index)
        self._counts[index - self._offset] += 1

    def _set_scale(self, scale: int) -> None:
        self._scale = scale
        self._factor = ldexp(1.0, scale)

    def _downscale(self, change: int) -> None:
        """Lower the scale by ``change``, adding each bucket into its parent."""
        if change <= 0:
            return
        counts = self._counts
        if counts:
            offset = self._offset
            new_offset = offset >> change
            merged = _zeros(((offset + len(counts) - 1) >> change) - new_offset + 1)
            for position, bucket_count in enumerate(counts):
                if bucket_count:
                    merged[((offset + position) >> change) - new_offset] += bucket_count
            self._counts = merged
            self._offset = new_offset
        self._set_scale(self._scale - change)

    def _widen(self, low: int, high: int) -> None:
        """Make the storage cover indices ``low..high`` at the current scale."""
        counts = self._counts
        if not counts:
            self._counts = _zeros(high - low + 1)
            self._offset = low
            return
        end = self._offset + len(counts) - 1
        if high > end:
            counts.extend(_zeros(high - end))
        if low < self._offset:
            counts[0:0] = _zeros(self._offset - low)
            self._offset = low

    def _trim(self) -> None:
        """Drop empty buckets at both ends, so a delta is as compact as its data."""
        counts = self._counts
        first = 0
        while first < len(counts) and not counts[first]:
            first += 1
        if first == len(counts):
            self._counts = array("q")
            self._offset = 0
            return
        last = len(counts) - 1
        while not counts[last]:
            last -= 1
        if first or last < len(counts) - 1:
            self._counts = counts[first : last + 1]
            self._offset += first

    def merge(self, other: ExponentialBuckets) -> None:
        """Add ``other`` into this histogram at the lower of the two scales, within ``max_size``.

        ``other`` is not changed; min and max are exact, sum is the float sum.
        """
        if other is self:
            self.merge(self.copy())
            return
        if other._count == 0:
            return
        self._zero_count += other._zero_count
        self._count += other._count
        self._sum += other._sum
        self._min = min(self._min, other._min)
        self._max = max(self._max, other._max)
        self._exact_extremes = self._exact_extremes and other._exact_extremes
        theirs = other._counts
        if not theirs:
            return
        target = min(self._scale, other._scale)
        their_shift = other._scale - target
        low = other._offset >> their_shift
        high = (other._offset + len(theirs) - 1) >> their_shift
        if self._counts:
            my_shift = self._scale - target
            low = min(low, self._offset >> my_shift)
            high = max(high, (self._offset + len(self._counts) - 1) >> my_shift)
        change = _downscale_needed(low, high, target, self._max_size)
        target -= change
        self._downscale(self._scale - target)
        self._widen(low >> change, high >> change)
        their_shift = other._scale - target
        counts = self._counts
        offset = self._offset
        for position, bucket_count in enumerate(theirs):
            if bucket_count:
                counts[((other._offset + position) >> their_shift) - offset] += bucket_count

    def subtract(self, earlier: ExponentialBuckets) -> ExponentialBuckets:
        """A new histogram of what was recorded after ``earlier``: ``self - earlier``.

        ``earlier`` is an older cumulative state of the same series; both are
        brought to the lower of their scales. The delta's own extremes were
        never seen, so its min and max are the tightest bounds the two states
        give: ``self``'s, narrowed to the delta's first and last buckets. One is
        exact (a recorded value) when ``self``'s lies in a bucket ``earlier``
        had nothing in, or is a zero the delta has; `quantile` returns min and
        max for the extreme ranks only when both are exact.
        Raises `ValueError` when any count would go negative: the series was reset.
        """
        if earlier._zero_count > self._zero_count or earlier._count > self._count:
            raise ValueError("earlier state has more counts than the later one: a reset")
        result: ExponentialBuckets = self.copy()
        target = min(self._scale, earlier._scale)
        result._downscale(result._scale - target)
        shift = earlier._scale - target
        counts = result._counts
        offset = result._offset
        touched: set[int] = set()  # indices, at the common scale, that ``earlier`` has counts in
        for position, bucket_count in enumerate(earlier._counts):
            if not bucket_count:
                continue
            index = ((earlier._offset + position) >> shift) - offset
            if not 0 <= index < len(counts) or counts[index] < bucket_count:
                raise ValueError("a bucket count went down since the earlier state: a reset")
            counts[index] -= bucket_count
            touched.add(index + offset)
        result._zero_count -= earlier._zero_count
        result._count -= earlier._count
        result._sum -= earlier._sum
        result._trim()
        result._bound_delta_extremes(touched)
        return result

    def _bound_delta_extremes(self, touched: set[int]) -> None:
        """Narrow a fresh delta's min and max, still the later state's, to what the delta holds.

        ``touched`` are the bucket indices the subtracted earlier state had
        counts in: a later extreme in a bucket outside it was recorded in the
        delta. Unknown extremes (``min > max``) stay unknown.
        """
        if self._count == 0:
            self._min, self._max = math.inf, -math.inf
            self._exact_extremes = True
            return
        minimum, maximum = self._min, self._max
        if not minimum <= maximum:
            return
        recorded = self._exact_extremes  # the later state's extremes are values it holds
        counts = self._counts
        first, last = self._offset, self._offset + len(counts) - 1
        if self._zero_count:  # values are never negative: a zero of the delta is its minimum
            minimum, low_exact = 0.0, True
        else:  # some positive values, so ``counts`` (trimmed) is not empty
            low_exact = recorded and minimum > 0.0 and self._holds_alone(minimum, first, touched)
            if first > bucket_index(_MIN_NORMAL, self._scale):  # subnormals sit below that edge
                minimum = max(minimum, lower_boundary(first, self._scale) * (1.0 - _EDGE_SLACK))
        if not counts:  # only zeros
            maximum, high_exact = 0.0, True
        else:
            high_exact = recorded and maximum > 0.0 and self._holds_alone(maximum, last, touched)
            maximum = min(maximum, lower_boundary(last + 1, self._scale) * (1.0 + _EDGE_SLACK))
        self._min, self._max = minimum, maximum
        self._exact_extremes = low_exact and high_exact

    def _holds_alone(self, value: float, index: int, touched: set[int]) -> bool:
        """Whether ``value`` falls in bucket ``index`` and the earlier state had nothing there."""
        return bucket_index(value, self._scale) == index and index not in touched

    def copy(self) -> ExponentialBuckets:
        """An independent copy with the same settings and state."""
        twin = ExponentialBuckets(max_size=self._max_size, max_scale=self._max_scale)
        twin._set_scale(self._scale)
        twin._zero_count = self._zero_count
        twin._offset = self._offset
        twin._counts = self._counts[:]
        twin._count = self._count
        twin._sum = self._sum
        twin._min = self._min
        twin._max = self._max
        twin._exact_extremes = self._exact_extremes
        return twin

    def quantile(self, q: float) -> float | None:
        """Estimated value at the nearest rank ``round(q * (count - 1))``; ``None`` when empty.

        Log-linear interpolation inside the bucket holding the rank, narrowed to
        min and max and clamped so that the estimate is within
        `quantile_error_bound` of the exact value, whatever the data (see the
        module docstring). When min and max are recorded values, the first and
        last ranks return them. Raises `ValueError` unless ``0 <= q <= 1``.
        """
        if not 0.0 <= q <= 1.0:
            raise ValueError(f"quantile {q!r} outside [0, 1]")
        if self._count == 0:
            return None
        rank = round(q * (self._count - 1))
        if rank < self._zero_count:
            return 0.0
        if self._exact_extremes and self._min <= self._max:
            if rank == 0:
                return self._min
            if rank == self._count - 1:
                return self._max
        below = self._zero_count
        for position, bucket_count in enumerate(self._counts):
            if rank < below + bucket_count:
                fraction = (rank - below + 0.5) / bucket_count
                return self._estimate(self._offset + position, fraction)
            below += bucket_count
        return self._max  # unreachable while count == zero_count + sum(counts)

    def _estimate(self, index: int, fraction: float) -> float:
        """The value ``fraction`` of the way through bucket ``index`` on a log scale, clamped.

        The bucket is narrowed to the known min and max, ``low..high``, which
        holds the exact value ``x``. An estimate ``e`` in ``[high / 1.01,
        low * 1.01]`` has ``max(e / x, x / e) <= 1.01``. That interval is empty
        when ``high / low > 1.0201`` (coarser than scale 6); then ``e`` stays
        in the bucket, within ``high / low`` of ``x``.
        """
        low = lower_boundary(index, self._scale)
        high = lower_boundary(index + 1, self._scale)
        if self._min <= self._max:
            low = min(max(low, self._min), self._max)
            high = max(min(high, self._max), low)
        if not 0.0 < low < high < math.inf:  # a point, or no upper bound past the largest float
            return low if low > 0.0 else high
        estimate = low * math.pow(high / low, fraction)
        if high / low > _RATIO * _RATIO:  # coarser than scale 6: no 1% bound, keep the bucket's
            return min(max(estimate, low), high)
        return min(max(estimate, high / _RATIO, low), low * _RATIO, high)

    def nbytes(self) -> int:
        """Approximate memory of the bucket storage: the array, header and growth slack included."""
        return sys.getsizeof(self._counts)

    @classmethod
    def from_counts(
        cls,
        *,
        scale: int,
        offset: int,
        counts: Sequence[int],
        zero_count: int = 0,
        total_sum: float = 0.0,
        minimum: float = math.inf,
        maximum: float = -math.inf,
        max_size: int = DEFAULT_MAX_SIZE,
    ) -> ExponentialBuckets:
        """Build from an OTel ``ExponentialHistogramDataPoint``'s fields (positive buckets only).

        ``count`` is ``zero_count + sum(counts)``. A scale above 20 or more than
        ``max_size`` buckets is downscaled to fit. Raises `ValueError` for a
        scale below -10 or a negative count.
        """
        if scale < MIN_SCALE:
            raise ValueError(f"scale {scale} below {MIN_SCALE}")
        stored = array("q", counts)
        if zero_count < 0 or (stored and min(stored) < 0):
            raise ValueError("bucket counts must not be negative")
        buckets = cls(max_size=max_size)
        buckets._scale = scale
        buckets._offset = offset if stored else 0
        buckets._counts = stored
        buckets._zero_count = zero_count
        buckets._count = zero_count + sum(stored)
        buckets._sum = total_sum
        buckets._min = minimum
        buckets._max = maximum
        change = max(scale - MAX_SCALE, 0)
        if stored:
            last = offset + len(stored) - 1
            change += _downscale_needed(offset >> change, last >> change, scale - change, max_size)
        buckets._downscale(change)
        buckets._set_scale(buckets._scale)
        return buckets
