"""Per-span cost in instructions, counted by callgrind: steadier than times on a noisy machine.

Each variant runs twice, with N and 2N spans; the difference divided by N is
the instruction count of one span, start-up excluded, background threads
included. Same variants as bench_processor.py. Not immune to load: the batch
processor's thread switches with real time, which moves the counts by a few per cent.
Both builds side by side: the pure-Python package and, once `make compiled` has
built it, the mypyc-compiled core (the same source).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

WORKLOAD = Path(__file__).with_name("_span_workload.py")
SPANS = 4000
VARIANTS = ("wedding", "recording")


DEFAULT_COMPILED = Path(__file__).parents[1] / ".build" / "compiled"
COMPILED = Path(os.environ.get("WEDSYNC_OTEL_COMPILED", DEFAULT_COMPILED))
"""Where `make compiled` unpacked the mypyc-built wheel; its variants are measured when present."""


def instructions(variant: str, count: int, *, compiled: bool) -> int:
    env = {**os.environ, "PYTHONHASHSEED": "0"}
    if compiled:
        env["PYTHONPATH"] = os.pathsep.join(filter(None, (str(COMPILED), env.get("PYTHONPATH"))))
    result = subprocess.run(
        [
            "valgrind",
            "--tool=callgrind",
            "--callgrind-out-file=/dev/null",
            sys.executable,
            str(WORKLOAD),
            variant,
            str(count),
        ],
        capture_output=True,
        text=True,
        check=True,
        # String hashes (dict probe lengths) vary per process: one source of variance fixed.
        env=env,
    )
    found = re.search(r"Collected : (\d+)", result.stderr)
    if found is None:
        raise RuntimeError(f"callgrind printed no total: {result.stderr[-500:]}")
    return int(found.group(1))


def per_span(variant: str, *, compiled: bool = False) -> float:
    """Instructions of one span: the run of 2N spans less the run of N."""
    twice = instructions(variant, 2 * SPANS, compiled=compiled)
    return (twice - instructions(variant, SPANS, compiled=compiled)) / SPANS


def main() -> None:
    if shutil.which("valgrind") is None:
        print("== instructions per span: skipped (valgrind not installed)")
        return
    builds = {"pure Python": False}
    if (COMPILED / ".built").exists():
        builds["compiled core"] = True
    else:
        print(f"  (no compiled core at {COMPILED}: `make compiled` builds it)")
    plain = per_span("plain")  # the SDK alone: the same in both builds
    counts = {
        name: {variant: per_span(variant, compiled=compiled) for variant in VARIANTS}
        for name, compiled in builds.items()
    }
    print("== span processor: instructions per span (callgrind, PYTHONHASHSEED=0)")
    print(f"  {'':<40} " + " ".join(f"{name:>14}" for name in builds))
    rows = (
        ("(a) SDK + batch", lambda c: plain),
        ("(b) WeddingSpanProcessor + batch", lambda c: c["wedding"]),
        ("(c) (b) + metrics recording", lambda c: c["recording"]),
        ("processor's own cost, b - a", lambda c: c["wedding"] - plain),
    )
    for label, value in rows:
        print(f"  {label:<40} " + " ".join(f"{value(c):14.0f}" for c in counts.values()))
    ratios = (
        ("ratio b/a (target <= 1.10)", lambda c: c["wedding"] / plain),
        ("ratio c/b (target <= 1.20)", lambda c: c["recording"] / c["wedding"]),
        ("ratio c/a (target <= 1.25)", lambda c: c["recording"] / plain),
    )
    for label, value in ratios:
        print(f"  {label:<40} " + " ".join(f"{value(c):14.3f}" for c in counts.values()))


if __name__ == "__main__":
    main()
