"""One variant of the span workload, run under callgrind by bench_instructions.py."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from bench_processor import batch, span_loop
from wedsync_otel import WeddingSpanProcessor
from wedsync_otel.metrics import WeddingRecorder


def main() -> None:
    variant, count = sys.argv[1], int(sys.argv[2])
    if variant == "plain":
        processor = batch()
    else:
        processor = WeddingSpanProcessor(batch())
        if variant == "recording":
            processor.add_verdict_listener(WeddingRecorder())
    run, provider = span_loop(processor)
    run(200)  # warm caches and the adaptive interpreter before the measured part
    run(count)
    provider.shutdown()


if __name__ == "__main__":
    main()
