"""Quantile error, buckets and bytes per series of ExponentialBuckets beside DDSketch(0.01).

The exact quantile is the nearest rank: the sorted sample at index
``round(q * (n - 1))``. Errors are relative to it, in %, as DDSketch states
its guarantee: ``|estimate - exact| / exact``. Buckets are the occupied index
range; bytes are the storage as allocated (ExponentialBuckets: its
``array('q')``; DDSketch: its bins list plus a float object per non-empty bin).

Variants: the defaults (2,048 buckets, scale up to 20), and the previous
estimator (interpolation without the clamp, ``previous rule``) on the same
buckets; ``max_scale=6``, the same guarantee in fewer bytes for narrow series;
``max_size=1024``, the previous size, which lets a wide series settle at scale
5 (no 1% bound there: one bucket, 2.19%), and the previous rule on it, the last
release as it was; ``max_size=160``, the OTel SDK's size (scale 2 to 4 here).

1. One series of 1,000,000 smooth samples: lognormal, ``lognormvariate(log(80),
   1.3)``, and bimodal, 60% ``lognormvariate(log(2), 0.1)`` (cache hits) and 40%
   ``lognormvariate(log(150), 0.1)`` (database round trips).
2. Sparse windows: the worst error over 100 series of 1,000 samples each.
   DDSketch takes rank ``floor(q * (n - 1))`` where the reference rounds, so in
   a sparse tail it can name a neighbouring sample.
3. Adversarial data, 100,000 values each: point masses at bucket edges of a
   series that settles at scale 6, integer-millisecond and 15.625 / 15.6 ms timer
   quantisation (beside 1 µs cache reads and 1 h timeouts, which force scale 6),
   cached responses, Pareto tails, 1 µs to 1 h. Median and maximum over p50,
   p75, p90, p95, p99, p99.9, and the maximum over every q in steps of 0.1%.
   DDSketch is shown against the same reference and against its own floor
   rank, which is what its guarantee is about.
4. Bytes per series by latency range (log-uniform, 10,000 samples).
5. Per-record cost of `ExponentialBuckets.record` against `DDSketch.add`,
   medians of interleaved rounds on pre-warmed sketches; the loop alone too.

Needs ``ddsketch`` (the dev extra). Runs in about 30 s.
"""

from __future__ import annotations

import math
import random
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from ddsketch import DDSketch

from wedsync_otel.metrics.buckets import ExponentialBuckets, bucket_index, lower_boundary

sys.path.insert(0, str(Path(__file__).parent))
from _harness import interleaved, report

SEED = 20_240_601
SAMPLES = 1_000_000
WINDOW_SAMPLES = 1_000
WINDOWS = 100
ADVERSARIAL_SAMPLES = 100_000
QUANTILES = (0.5, 0.75, 0.9, 0.95, 0.99, 0.999)
EVERY_TENTH_PERCENT = tuple(i / 1000 for i in range(1001))
FLOAT_OBJECT_BYTES = sys.getsizeof(1.5)
MICROSECOND_MS = 1e-3
HOUR_MS = 3.6e6

Estimator = Callable[[float], float | None]
Generator = Callable[[random.Random, int], list[float]]


def previous_rule(buckets: ExponentialBuckets) -> Estimator:
    """The estimator before the guarantee: ``(k + 0.5) / n`` of the bucket, not clamped."""

    def estimate(q: float) -> float | None:
        count, zeros = buckets.count, buckets.zero_count
        if count == 0:
            return None
        rank = round(q * (count - 1))
        if rank < zeros:
            return 0.0
        known = buckets.min <= buckets.max
        if known and rank in (0, count - 1):
            return buckets.min if rank == 0 else buckets.max
        below = zeros
        for position, bucket_count in enumerate(buckets.counts):
            if rank < below + bucket_count:
                fraction = (rank - below + 0.5) / bucket_count
                return previous_interpolation(buckets, buckets.offset + position, fraction)
            below += bucket_count
        return buckets.max

    return estimate


def previous_interpolation(buckets: ExponentialBuckets, index: int, fraction: float) -> float:
    low = lower_boundary(index, buckets.scale)
    high = lower_boundary(index + 1, buckets.scale)
    if buckets.min <= buckets.max:
        low = min(max(low, buckets.min), buckets.max)
        high = max(min(high, buckets.max), low)
    if 0.0 < low < high < math.inf:
        return low * math.pow(high / low, fraction)
    return low if low > 0.0 else high


@dataclass(frozen=True)
class Variant:
    name: str
    make: Callable[[], ExponentialBuckets]
    estimator: Callable[[ExponentialBuckets], Estimator] = lambda buckets: buckets.quantile


DEFAULTS = "ExponentialBuckets() [defaults]"
VARIANTS = (
    Variant(DEFAULTS, ExponentialBuckets),
    Variant("  previous rule, same buckets", ExponentialBuckets, previous_rule),
    Variant("ExponentialBuckets(max_scale=6)", lambda: ExponentialBuckets(max_scale=6)),
    Variant("ExponentialBuckets(max_size=1024)", lambda: ExponentialBuckets(max_size=1024)),
    Variant(
        "  previous rule: the last release",
        lambda: ExponentialBuckets(max_size=1024),
        previous_rule,
    ),
    Variant("ExponentialBuckets(max_size=160)", lambda: ExponentialBuckets(max_size=160)),
)
DDSKETCH = "DDSketch(relative_accuracy=0.01)"
DDSKETCH_FLOOR = "  DDSketch vs its floor rank"


# -- data --------------------------------------------------------------------------------


def lognormal(rng: random.Random, n: int) -> list[float]:
    return [rng.lognormvariate(math.log(80.0), 1.3) for _ in range(n)]


def bimodal(rng: random.Random, n: int) -> list[float]:
    return [
        rng.lognormvariate(math.log(2.0), 0.1)
        if rng.random() < 0.6
        else rng.lognormvariate(math.log(150.0), 0.1)
        for _ in range(n)
    ]


DATASETS: dict[str, Generator] = {"lognormal": lognormal, "bimodal": bimodal}


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


def widened(values: list[float]) -> list[float]:
    """Add 1 µs cache reads and 1 h timeouts, so the series settles at scale 6."""
    return [MICROSECOND_MS] * 3 + values + [HOUR_MS] * 3


def edge_masses(rng: random.Random, n: int, *, upper: bool) -> list[float]:
    """Masses on one edge of 64 neighbouring scale-6 buckets from 20 ms, widened to scale 6."""
    first = bucket_index(20.0, 6)
    edge = highest_in if upper else lowest_in
    weights = [rng.randint(1, 100) for _ in range(64)]
    total = sum(weights)
    values = [
        edge(first + offset, 6)
        for offset, weight in enumerate(weights)
        for _ in range(n * weight // total)
    ]
    return widened(values)


def integer_ms(rng: random.Random, n: int) -> list[float]:
    """A 1 ms timer: lognormal durations (median 4 ms) truncated to whole ms, zeros included."""
    return widened([float(math.floor(rng.lognormvariate(math.log(4.0), 1.0))) for _ in range(n)])


def timer(tick_ms: float) -> Generator:
    def quantised(rng: random.Random, n: int) -> list[float]:
        values = [rng.lognormvariate(math.log(25.0), 1.2) for _ in range(n)]
        return widened([math.floor(value / tick_ms) * tick_ms for value in values])

    return quantised


def cached_responses(rng: random.Random, n: int) -> list[float]:
    """70% cache hits of one duration just above a bucket edge, the rest database trips."""
    hit = 0.25 + 2**-20
    return [
        hit if rng.random() < 0.7 else rng.lognormvariate(math.log(120.0), 0.6) for _ in range(n)
    ]


def pareto(alpha: float) -> Generator:
    def tail(rng: random.Random, n: int) -> list[float]:
        return [min(rng.paretovariate(alpha), HOUR_MS) for _ in range(n)]

    return tail


def microsecond_to_hour(rng: random.Random, n: int) -> list[float]:
    """Log-uniform from 1 µs to 1 h, plus two thirds as much again just above an edge near 1 s."""
    span = math.log(HOUR_MS / MICROSECOND_MS)
    spread = [MICROSECOND_MS * math.exp(rng.random() * span) for _ in range(n // 3)]
    mass = lowest_in(bucket_index(1000.0, 6), 6)
    return [MICROSECOND_MS, HOUR_MS, *spread] + [mass] * (n - len(spread) - 2)


ADVERSARIAL: dict[str, Generator] = {
    "lower-edge masses": lambda rng, n: edge_masses(rng, n, upper=False),
    "upper-edge masses": lambda rng, n: edge_masses(rng, n, upper=True),
    "integer ms": integer_ms,
    "15.625 ms timer": timer(15.625),
    "15.6 ms timer": timer(15.6),
    "cached responses": cached_responses,
    "pareto 1.1": pareto(1.1),
    "pareto 0.8": pareto(0.8),
    "1 us..1 h + mass": microsecond_to_hour,
}


# -- measuring ---------------------------------------------------------------------------


def filled(make: Callable[[], ExponentialBuckets], values: list[float]) -> ExponentialBuckets:
    buckets = make()
    for value in values:
        buckets.record(value)
    return buckets


def sketched(values: list[float]) -> DDSketch:
    sketch = DDSketch(relative_accuracy=0.01)
    for value in values:
        sketch.add(value)
    return sketch


def sketch_figures(sketch: DDSketch) -> tuple[int, int]:
    """Occupied buckets and allocated bytes of a DDSketch's positive store."""
    store = sketch._store  # noqa: SLF001 - DDSketch offers no public view of its bins
    bins: list[float] = store.bins
    occupied = store.max_key - store.min_key + 1 if store.count else 0
    nonzero = sum(1 for value in bins if value)
    return occupied, sys.getsizeof(bins) + nonzero * FLOAT_OBJECT_BYTES


def errors_percent(
    estimate: Estimator,
    ordered: list[float],
    qs: tuple[float, ...] = QUANTILES,
    rank: Callable[[float], int] | None = None,
) -> list[float]:
    """Relative error (%) per quantile against ``ordered[rank(q)]``, nearest rank by default."""
    last = len(ordered) - 1
    result = []
    for q in qs:
        exact = ordered[round(q * last) if rank is None else rank(q)]
        value = estimate(q)
        if value is None:
            result.append(math.inf)
        elif exact == 0.0:
            result.append(0.0 if value == 0.0 else math.inf)
        else:
            result.append(abs(value - exact) / exact * 100.0)
    return result


def floor_rank(count: int) -> Callable[[float], int]:
    return lambda q: math.floor(q * (count - 1))


def print_header(title: str) -> None:
    quantiles = " ".join(f"{'p' + format(q * 100, 'g'):>7}" for q in QUANTILES)
    print(f"== {title}")
    columns = f"{'data':<10} {'sketch':<34} {'scale':>5} {'buckets':>7} {'bytes':>7}"
    print(f"{columns}  {quantiles}    worst")


def print_row(
    data: str, name: str, *, scale: str, buckets: int, nbytes: int, errors: list[float]
) -> None:
    cells = " ".join(f"{error:7.3f}" for error in errors)
    line = f"{data:<10} {name:<34} {scale:>5} {buckets:>7} {nbytes:>7}  {cells}  {max(errors):7.3f}"
    print(line)


def one_large_series(
    samples: dict[str, list[float]],
) -> dict[str, tuple[ExponentialBuckets, DDSketch]]:
    """Table 1; returns the filled default histogram and sketch per data set, for timing."""
    print_header(f"relative error (%) on one series of {SAMPLES:,} samples")
    filled_sketches = {}
    for data, values in samples.items():
        ordered = sorted(values)
        made = {variant.name: filled(variant.make, values) for variant in VARIANTS}
        for variant in VARIANTS:
            buckets = made[variant.name]
            print_row(
                data,
                variant.name,
                scale=str(buckets.scale),
                buckets=len(buckets.counts),
                nbytes=buckets.nbytes(),
                errors=errors_percent(variant.estimator(buckets), ordered),
            )
        sketch = sketched(values)
        occupied, nbytes = sketch_figures(sketch)
        errors = errors_percent(sketch.get_quantile_value, ordered)
        print_row(data, DDSKETCH, scale="-", buckets=occupied, nbytes=nbytes, errors=errors)
        filled_sketches[data] = (made[DEFAULTS], sketch)
    return filled_sketches


def sparse_windows() -> None:
    """Table 2: worst error per quantile over many small series; median buckets and bytes."""
    print_header(
        f"worst relative error (%) over {WINDOWS} series of {WINDOW_SAMPLES:,} samples"
        " (median buckets and bytes)"
    )
    for data, generate in DATASETS.items():
        rng = random.Random(SEED + 1)
        windows = [generate(rng, WINDOW_SAMPLES) for _ in range(WINDOWS)]
        ordered = [sorted(values) for values in windows]
        for variant in VARIANTS:
            series = [filled(variant.make, values) for values in windows]
            errors = [
                errors_percent(variant.estimator(b), o)
                for b, o in zip(series, ordered, strict=True)
            ]
            scales = sorted({buckets.scale for buckets in series})
            print_row(
                data,
                variant.name,
                scale=f"{scales[0]}-{scales[-1]}" if len(scales) > 1 else str(scales[0]),
                buckets=round(statistics.median(len(buckets.counts) for buckets in series)),
                nbytes=round(statistics.median(buckets.nbytes() for buckets in series)),
                errors=[max(column) for column in zip(*errors, strict=True)],
            )
        sketches = [sketched(values) for values in windows]
        figures = [sketch_figures(sketch) for sketch in sketches]
        errors = [
            errors_percent(s.get_quantile_value, o) for s, o in zip(sketches, ordered, strict=True)
        ]
        print_row(
            data,
            DDSKETCH,
            scale="-",
            buckets=round(statistics.median(occupied for occupied, _ in figures)),
            nbytes=round(statistics.median(nbytes for _, nbytes in figures)),
            errors=[max(column) for column in zip(*errors, strict=True)],
        )


def adversarial() -> None:
    """Table 3: median and worst error per adversarial data set, beside DDSketch(0.01)."""
    print(
        f"== relative error (%) on adversarial data ({ADVERSARIAL_SAMPLES:,} values each):"
        " median and max over p50..p99.9, max over every q in steps of 0.1%"
    )
    header = f"{'data':<18} {'sketch':<34} {'scale':>5} {'buckets':>7} {'bytes':>7}"
    print(f"{header}  {'median':>7} {'max':>7} {'every q':>8}")

    def row(
        data: str,
        name: str,
        *,
        scale: str,
        figures: tuple[int, int],
        estimate: Estimator,
        ordered: list[float],
        rank: Callable[[float], int] | None = None,
    ) -> None:
        buckets, nbytes = figures
        errors = errors_percent(estimate, ordered, rank=rank)
        every = max(errors_percent(estimate, ordered, EVERY_TENTH_PERCENT, rank=rank))
        cells = f"{statistics.median(errors):7.3f} {max(errors):7.3f} {every:8.3f}"
        print(f"{data:<18} {name:<34} {scale:>5} {buckets:>7} {nbytes:>7}  {cells}")

    for data, generate in ADVERSARIAL.items():
        values = generate(random.Random(SEED + 2), ADVERSARIAL_SAMPLES)
        ordered = sorted(values)
        for variant in VARIANTS:
            buckets = filled(variant.make, values)
            row(
                data,
                variant.name,
                scale=str(buckets.scale),
                figures=(len(buckets.counts), buckets.nbytes()),
                estimate=variant.estimator(buckets),
                ordered=ordered,
            )
        sketch = sketched(values)
        figures = sketch_figures(sketch)
        estimate = sketch.get_quantile_value
        row(data, DDSKETCH, scale="-", figures=figures, estimate=estimate, ordered=ordered)
        own = floor_rank(len(ordered))
        row(
            data,
            DDSKETCH_FLOOR,
            scale="-",
            figures=figures,
            estimate=estimate,
            ordered=ordered,
            rank=own,
        )


def bytes_per_series() -> None:
    """Table 4: storage of one series by the range its latencies span."""
    ranges = {
        "one value": (80.0, 80.0),
        "10 ms..1 s": (10.0, 1000.0),
        "1 ms..10 s": (1.0, 10_000.0),
        "1 us..1 h": (MICROSECOND_MS, HOUR_MS),
    }
    print("== bytes per series (buckets) by range, 10,000 log-uniform samples")
    storage = [variant for variant in VARIANTS if variant.estimator is not previous_rule]
    names = [variant.name for variant in storage]
    print(f"{'range':<12} " + " ".join(f"{name[:34]:>36}" for name in [*names, DDSKETCH]))
    for label, (low, high) in ranges.items():
        rng = random.Random(SEED + 3)
        values = [low * (high / low) ** rng.random() for _ in range(10_000)] + [low, high]
        cells = []
        for variant in storage:
            buckets = filled(variant.make, values)
            cells.append(
                f"{buckets.nbytes():>7} ({len(buckets.counts):>4}, scale {buckets.scale:>2})"
            )
        occupied, nbytes = sketch_figures(sketched(values))
        cells.append(f"{nbytes:>7} ({occupied:>4})")
        print(f"{label:<12} " + " ".join(f"{cell:>36}" for cell in cells))


def record_cost(buckets: ExponentialBuckets, sketch: DDSketch, values: list[float]) -> None:
    """Section 5: per-record cost on sketches that already cover the values' range."""

    def record_loop(count: int) -> None:
        record = buckets.record
        for value in values[:count]:
            record(value)

    def add_loop(count: int) -> None:
        add = sketch.add
        for value in values[:count]:
            add(value)

    def loop_alone(count: int) -> None:
        for _value in values[:count]:
            pass

    figures = interleaved(
        {
            "ExponentialBuckets.record": record_loop,
            "DDSketch.add": add_loop,
            "(loop alone)": loop_alone,
        },
        operations=len(values),
        rounds=11,
    )
    report(
        f"per-record cost (median of 11 interleaved rounds of {len(values):,} lognormal values)",
        list(figures.values()),
        [("record / DDSketch.add", "ExponentialBuckets.record", "DDSketch.add")],
    )


def main() -> None:
    started = time.perf_counter()
    rng = random.Random(SEED)
    samples = {data: generate(rng, SAMPLES) for data, generate in DATASETS.items()}
    filled_sketches = one_large_series(samples)
    print()
    sparse_windows()
    print()
    adversarial()
    print()
    bytes_per_series()
    print()
    buckets, sketch = filled_sketches["lognormal"]
    record_cost(buckets, sketch, samples["lognormal"][:50_000])
    print(f"\n(total run time {time.perf_counter() - started:.0f} s)")


if __name__ == "__main__":
    main()
