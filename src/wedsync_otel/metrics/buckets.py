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

Size and scale. ``DEFAULT_MAX_SIZE = 1024``: scale 5 (buckets 2.2% wide) is the
coarsest scale that meets the 1% target, and 1024 buckets hold 32 octaves at
scale 5, so a latency series spanning less than a factor of 4e9 (1 µs to 70
minutes) never goes coarser. The SDK's 160 drops a sigma-1.3 lognormal to scale 3
(9% buckets). ``DEFAULT_MAX_SCALE = 20`` (OTel's finest): a series keeps the
finest scale its range allows, and that is what keeps small samples accurate.
A window of a few thousand requests spans a narrower range, so it stays at scale
6 or finer, where sparse buckets still give well under 1%; only a large sample
reaches scale 5, and by then its buckets are dense enough for interpolation to
be far inside 1% (a million lognormal latencies: about 600 buckets at scale 5,
fewer than DDSketch's at 1%). The price is memory on narrow series, which fill
``max_size`` at a fine scale. Storage is an ``array('q')`` over the occupied index
range only, 8 bytes a bucket: at most about 8 KiB a series.

Quantile estimate. Rank ``round(q * (count - 1))`` of the sorted samples (the
nearest rank, so a sparse tail gives the sample the exact quantile names, not its
neighbour). A cumulative scan finds the bucket holding that rank; inside it the
``k``-th of ``n`` samples is put at fraction ``(k + 0.5) / n`` of the bucket's
logarithmic width. In a dense bucket this follows the real distribution far more
closely than the bucket's width; a bucket with one sample gets its geometric
midpoint, DDSketch's estimate, within half a bucket. Known min and max narrow the
edge buckets, are returned for the first and last ranks, and clamp the result;
ranks among the zeros give 0.

Not thread-safe: callers hold their own lock around `record`, `merge` and reads.
"""

from __future__ import annotations

import math
import sys
from array import array
from collections.abc import Sequence
from math import ceil, exp2, frexp, ldexp, log2
from typing import Final

DEFAULT_MAX_SIZE: Final = 1024
DEFAULT_MAX_SCALE: Final = 20

MIN_SCALE: Final = -10
"""At scale -10 every normal float maps to bucket -1 or 0: no coarser scale is useful."""
MAX_SCALE: Final = 20
"""OTel's finest scale: indices of all finite floats still fit in a signed 32-bit integer."""

_MIN_NORMAL: Final = sys.float_info.min
_MAX_FLOAT: Final = sys.float_info.max
_ITEMSIZE: Final = 8  # array('q')


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
        """Smallest recorded value; ``inf`` when empty."""
        return self._min

    @property
    def max(self) -> float:
        """Largest recorded value; ``-inf`` when empty."""
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
        brought to the lower of their scales. The result's min and max are
        ``self``'s, an approximation: the delta's own extremes are unknown.
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
        for position, bucket_count in enumerate(earlier._counts):
            if not bucket_count:
                continue
            index = ((earlier._offset + position) >> shift) - offset
            if not 0 <= index < len(counts) or counts[index] < bucket_count:
                raise ValueError("a bucket count went down since the earlier state: a reset")
            counts[index] -= bucket_count
        result._zero_count -= earlier._zero_count
        result._count -= earlier._count
        result._sum -= earlier._sum
        result._trim()
        if result._count == 0:
            result._min, result._max = math.inf, -math.inf
        return result

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
        return twin

    def quantile(self, q: float) -> float | None:
        """Estimated value at the nearest rank ``round(q * (count - 1))``; ``None`` when empty.

        Log-linear interpolation inside the bucket holding the rank (see the
        module docstring). Where min and max are known, the first and last
        ranks return them and the edge buckets are narrowed to them.
        Raises `ValueError` unless ``0 <= q <= 1``.
        """
        if not 0.0 <= q <= 1.0:
            raise ValueError(f"quantile {q!r} outside [0, 1]")
        if self._count == 0:
            return None
        rank = round(q * (self._count - 1))
        if rank < self._zero_count:
            return 0.0
        known = self._min <= self._max
        if known and rank == 0:
            return self._min
        if known and rank == self._count - 1:
            return self._max
        below = self._zero_count
        for position, bucket_count in enumerate(self._counts):
            if rank < below + bucket_count:
                fraction = (rank - below + 0.5) / bucket_count
                return self._interpolate(self._offset + position, fraction)
            below += bucket_count
        return self._max  # unreachable while count == zero_count + sum(counts)

    def _interpolate(self, index: int, fraction: float) -> float:
        """The value ``fraction`` of the way through bucket ``index`` on a log scale."""
        low = lower_boundary(index, self._scale)
        high = lower_boundary(index + 1, self._scale)
        if self._min <= self._max:
            low = min(max(low, self._min), self._max)
            high = max(min(high, self._max), low)
        if 0.0 < low < high < math.inf:
            return low * math.pow(high / low, fraction)
        return low if low > 0.0 else high

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
