"""Per-span cost in instructions, counted by callgrind: steadier than times on a noisy machine.

Each variant runs twice, with N and 2N spans; the difference divided by N is
the instruction count of one span, start-up excluded, background threads
included. Same variants as bench_processor.py. Not immune to load: the batch
processor's thread switches with real time, which moves the counts by a few per cent.
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


def instructions(variant: str, count: int) -> int:
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
        env={**os.environ, "PYTHONHASHSEED": "0"},
    )
    found = re.search(r"Collected : (\d+)", result.stderr)
    if found is None:
        raise RuntimeError(f"callgrind printed no total: {result.stderr[-500:]}")
    return int(found.group(1))


def main() -> None:
    if shutil.which("valgrind") is None:
        print("== instructions per span: skipped (valgrind not installed)")
        return
    per_span = {
        variant: (instructions(variant, 2 * SPANS) - instructions(variant, SPANS)) / SPANS
        for variant in ("plain", "wedding", "recording")
    }
    print("== span processor: instructions per span (callgrind, PYTHONHASHSEED=0)")
    print(f"  (a) SDK + batch                          {per_span['plain']:10.0f}")
    print(f"  (b) WeddingSpanProcessor + batch         {per_span['wedding']:10.0f}")
    print(f"  (c) (b) + metrics recording              {per_span['recording']:10.0f}")
    b_over_a = per_span["wedding"] / per_span["plain"]
    c_over_b = per_span["recording"] / per_span["wedding"]
    print(f"  ratio b/a (target <= 1.15)               {b_over_a:10.3f}")
    print(f"  ratio c/b (target <= 1.20)               {c_over_b:10.3f}")


if __name__ == "__main__":
    main()
