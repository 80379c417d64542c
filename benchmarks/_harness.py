"""Shared benchmark harness: interleaved rounds, medians and ratios in one process.

The machine is noisy, so variants run in alternating order within each round
and only medians and their ratios are reported. Time is process CPU time, so
work done on background threads (the batch processor's exporter thread)
counts too; wall time is printed beside it.
"""

from __future__ import annotations

import gc
import statistics
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class Figure:
    """Median per-operation cost of one variant, in microseconds, and its cost in each round."""

    name: str
    cpu_us: float
    wall_us: float
    cpu_by_round: tuple[float, ...] = ()


def interleaved(
    variants: Mapping[str, Callable[[int], None]],
    *,
    operations: int,
    rounds: int,
) -> dict[str, Figure]:
    """Run each variant ``rounds`` times, alternating the order; median cost per operation."""
    names = list(variants)
    cpu: dict[str, list[float]] = {name: [] for name in names}
    wall: dict[str, list[float]] = {name: [] for name in names}
    for round_index in range(rounds):
        order = names if round_index % 2 == 0 else list(reversed(names))
        for name in order:
            gc.collect()
            cpu_start, wall_start = time.process_time(), time.perf_counter()
            variants[name](operations)
            cpu[name].append((time.process_time() - cpu_start) / operations * 1e6)
            wall[name].append((time.perf_counter() - wall_start) / operations * 1e6)
    return {
        name: Figure(
            name,
            statistics.median(cpu[name]),
            statistics.median(wall[name]),
            tuple(cpu[name]),
        )
        for name in names
    }


def build() -> str:
    """Which build of the package this process runs: the mypyc-compiled core or pure Python."""
    import wedsync_otel.processor  # noqa: PLC0415 - the answer is where this import comes from

    compiled = not wedsync_otel.processor.__file__.endswith(".py")
    return "compiled core (mypyc)" if compiled else "pure Python"


def report(title: str, figures: Sequence[Figure], ratios: Sequence[tuple[str, str, str]]) -> None:
    """Print medians and the named ratios (label, numerator, denominator)."""
    by_name = {figure.name: figure for figure in figures}
    print(f"== {title} [{build()}]")
    for figure in figures:
        print(f"  {figure.name:<40} cpu {figure.cpu_us:8.2f} us   wall {figure.wall_us:8.2f} us")
    for label, numerator, denominator in ratios:
        top, bottom = by_name[numerator], by_name[denominator]
        cpu_ratio = top.cpu_us / bottom.cpu_us
        wall_ratio = top.wall_us / bottom.wall_us
        paired = paired_ratio(top, bottom)
        print(
            f"  ratio {label:<34} cpu {cpu_ratio:8.3f}      wall {wall_ratio:8.3f}"
            f"      per round {paired:6.3f}"
        )
    print("  (per round: the median of the cpu ratios within each round, the steadiest figure)")


def paired_ratio(top: Figure, bottom: Figure) -> float:
    """Median over rounds of top/bottom, each pair measured moments apart.

    On a shared machine the load drifts between rounds; a ratio within one
    round cancels most of that drift, where a ratio of medians does not.
    """
    pairs = zip(top.cpu_by_round, bottom.cpu_by_round, strict=True)
    return statistics.median(t / b for t, b in pairs)
