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
    """Median per-operation cost of one variant, in microseconds."""

    name: str
    cpu_us: float
    wall_us: float


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
        name: Figure(name, statistics.median(cpu[name]), statistics.median(wall[name]))
        for name in names
    }


def report(title: str, figures: Sequence[Figure], ratios: Sequence[tuple[str, str, str]]) -> None:
    """Print medians and the named ratios (label, numerator, denominator)."""
    by_name = {figure.name: figure for figure in figures}
    print(f"== {title}")
    for figure in figures:
        print(f"  {figure.name:<40} cpu {figure.cpu_us:8.2f} us   wall {figure.wall_us:8.2f} us")
    for label, numerator, denominator in ratios:
        cpu_ratio = by_name[numerator].cpu_us / by_name[denominator].cpu_us
        wall_ratio = by_name[numerator].wall_us / by_name[denominator].wall_us
        print(f"  ratio {label:<34} cpu {cpu_ratio:8.3f}      wall {wall_ratio:8.3f}")
