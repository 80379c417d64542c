"""Quantile error, buckets and bytes per series of ExponentialBuckets beside DDSketch(0.01).

Data, in ms, from ``random.Random(SEED)``: lognormal latencies,
``lognormvariate(log(80), 1.3)`` (median 80 ms, a tail out to tens of seconds),
and a bimodal mix, 60% ``lognormvariate(log(2), 0.1)`` (cache hits) and 40%
``lognormvariate(log(150), 0.1)`` (database round trips). The exact quantile is
the sorted sample at index ``round(q * (n - 1))``.

1. One series of 1,000,000 samples: the issue's target, every error within 1%
   with no more buckets than DDSketch at relative accuracy 0.01. Buckets are the
   occupied index range; bytes are the storage as allocated (ExponentialBuckets:
   its ``array('q')``; DDSketch: its bins list plus a float object per non-empty
   bin). ``max_size=160`` is the OTel SDK's default size.
2. Sparse windows: the worst error over 100 series of 1,000 samples, which is
   where the bucket width shows. DDSketch takes rank ``floor(q * (n - 1))`` where
   the reference rounds, so in a sparse tail it can name a neighbouring sample.
3. Per-record cost of `ExponentialBuckets.record` against `DDSketch.add`, medians
   of interleaved rounds on pre-warmed sketches; the loop alone is shown too.

Needs ``ddsketch`` (the dev extra). Runs in about 20 s.
"""

from __future__ import annotations

import math
import random
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

from ddsketch import DDSketch

from wedsync_otel.metrics.buckets import ExponentialBuckets

sys.path.insert(0, str(Path(__file__).parent))
from _harness import interleaved, report

SEED = 20_240_601
SAMPLES = 1_000_000
WINDOW_SAMPLES = 1_000
WINDOWS = 100
QUANTILES = (0.5, 0.9, 0.95, 0.99, 0.999)
FLOAT_OBJECT_BYTES = sys.getsizeof(1.5)
DDSKETCH = "DDSketch(relative_accuracy=0.01)"
DEFAULTS = "ExponentialBuckets() [defaults]"
VARIANTS: dict[str, Callable[[], ExponentialBuckets]] = {
    DEFAULTS: ExponentialBuckets,
    "ExponentialBuckets(max_scale=5)": lambda: ExponentialBuckets(max_scale=5),
    "ExponentialBuckets(max_size=160)": lambda: ExponentialBuckets(max_size=160),
}

Generator = Callable[[random.Random, int], list[float]]


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


def errors_percent(estimate: Callable[[float], float | None], ordered: list[float]) -> list[float]:
    last = len(ordered) - 1
    result = []
    for q in QUANTILES:
        exact = ordered[round(q * last)]
        value = estimate(q)
        result.append(math.inf if value is None else abs(value - exact) / exact * 100.0)
    return result


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
        made = {name: filled(make, values) for name, make in VARIANTS.items()}
        for name, buckets in made.items():
            print_row(
                data,
                name,
                scale=str(buckets.scale),
                buckets=len(buckets.counts),
                nbytes=buckets.nbytes(),
                errors=errors_percent(buckets.quantile, ordered),
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
        for name, make in VARIANTS.items():
            series = [filled(make, values) for values in windows]
            errors = [errors_percent(b.quantile, o) for b, o in zip(series, ordered, strict=True)]
            scales = sorted({buckets.scale for buckets in series})
            print_row(
                data,
                name,
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


def record_cost(buckets: ExponentialBuckets, sketch: DDSketch, values: list[float]) -> None:
    """Section 3: per-record cost on sketches that already cover the values' range."""

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
    buckets, sketch = filled_sketches["lognormal"]
    record_cost(buckets, sketch, samples["lognormal"][:50_000])
    print(f"\n(total run time {time.perf_counter() - started:.0f} s)")


if __name__ == "__main__":
    main()
