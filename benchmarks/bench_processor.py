"""Per-span cost of the WeddingSpanProcessor and its metrics recording.

(a) SDK + BatchSpanProcessor with a dropping exporter; (b) the same behind
WeddingSpanProcessor; (c) (b) plus the WeddingRecorder pre-aggregating the
metrics, with each round ending in a metrics snapshot (the exporter's drain
and window merge) so that work counts too. A SERVER span with eight usual
HTTP attributes, in interleaved rounds; process CPU time counts background
threads. Targets: b/a <= 1.15; recording adds <= 20%, (c - b) / b.
(s) is (b) with the privacy scrubber bypassed, so b/s is what scrubbing
every field of the span costs.

Head sampling: (c) is a sampled request; (u) the same request dropped by the
user's sampler (ALWAYS_OFF) but recorded for the metrics by
`RequestRecordingSampler`, judged and measured, never exported; (o) the
plain SDK with the same sampler, where a dropped span is not recorded at all.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from opentelemetry.sdk.metrics.export import ConsoleMetricExporter
from opentelemetry.sdk.trace import ReadableSpan, SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult
from opentelemetry.sdk.trace.sampling import ALWAYS_OFF, Sampler
from opentelemetry.trace import SpanKind

from wedsync_otel import PerformanceMetricExporter, WeddingSpanProcessor
from wedsync_otel.metrics import WeddingRecorder
from wedsync_otel.sampling import record_every_request

sys.path.insert(0, str(Path(__file__).parent))
from _harness import interleaved, report

HTTP_ATTRIBUTES = {
    "http.request.method": "GET",
    "http.route": "/api/venues/{venue_id}/availability",
    "url.path": "/api/venues/42/availability",
    "url.scheme": "https",
    "server.address": "api.wedsync.example",
    "server.port": 443,
    "http.response.status_code": 200,
    "user_agent.original": "Mozilla/5.0 (X11; Linux x86_64)",
}


class DroppingExporter(SpanExporter):
    """Accepts and forgets every batch, so only the pipeline's own cost is measured."""

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        return SpanExportResult.SUCCESS

    def shutdown(self) -> None:
        return None


def span_loop(
    processor: SpanProcessor,
    after_round: Callable[[], object] | None = None,
    *,
    sampler: Sampler | None = None,
    measure_unsampled: bool = False,
) -> tuple[Callable[[int], None], TracerProvider]:
    provider = TracerProvider(sampler=sampler)
    if measure_unsampled:
        record_every_request(provider)
    provider.add_span_processor(processor)
    tracer = provider.get_tracer("bench")

    def run(count: int) -> None:
        for _ in range(count):
            span = tracer.start_span(
                "GET /api/venues/{venue_id}/availability",
                kind=SpanKind.SERVER,
                attributes=HTTP_ATTRIBUTES,
            )
            span.end()
        provider.force_flush()
        if after_round is not None:
            after_round()

    return run, provider


def batch() -> BatchSpanProcessor:
    # A queue large enough that no span is dropped: dropping would hide export work.
    return BatchSpanProcessor(DroppingExporter(), max_queue_size=100_000, max_export_batch_size=512)


def main() -> None:
    plain, plain_provider = span_loop(batch())
    wedding, wedding_provider = span_loop(WeddingSpanProcessor(batch()))
    unscrubbed_processor = WeddingSpanProcessor(batch())
    # The two hooks the processor calls the scrubber through, made to find nothing.
    unscrubbed_processor._scrub_attributes = lambda attributes: None  # type: ignore[method-assign]  # noqa: SLF001
    unscrubbed_processor._scrub_fields = lambda scrubber, span, attributes: None  # noqa: SLF001
    unscrubbed, unscrubbed_provider = span_loop(unscrubbed_processor)
    recorder = WeddingRecorder()
    recording_processor = WeddingSpanProcessor(batch())
    recording_processor.add_verdict_listener(recorder)
    exporter = PerformanceMetricExporter(ConsoleMetricExporter(), recorder=recorder)
    recording, recording_provider = span_loop(recording_processor, exporter.snapshot)
    a, b, c = "(a) SDK + batch", "(b) WeddingSpanProcessor + batch", "(c) (b) + metrics recording"
    s = "(s) (b), scrubber bypassed"
    figures = interleaved(
        {a: plain, s: unscrubbed, b: wedding, c: recording}, operations=20_000, rounds=21
    )
    report(
        "span processor: per-span cost",
        list(figures.values()),
        [
            ("b/a (target <= 1.15)", b, a),
            ("c/b (target <= 1.20)", c, b),
            ("c/a", c, a),
            ("s/a (without the scrubber)", s, a),
            ("b/s (what scrubbing costs)", b, s),
        ],
    )
    for provider in (plain_provider, wedding_provider, recording_provider, unscrubbed_provider):
        provider.shutdown()
    sampling()


def sampling() -> None:
    """A sampled request beside one the sampler dropped, measured all the same."""
    loops: dict[str, Callable[[int], None]] = {}
    providers: list[TracerProvider] = []
    for label, sampler, measured in (
        ("(c) sampled request, measured", None, False),
        ("(u) unsampled request, measured", ALWAYS_OFF, True),
        ("(o) unsampled request, plain SDK", ALWAYS_OFF, False),
    ):
        recorder = WeddingRecorder()
        processor = WeddingSpanProcessor(batch())
        processor.add_verdict_listener(recorder)
        exporter = PerformanceMetricExporter(ConsoleMetricExporter(), recorder=recorder)
        after = exporter.snapshot if sampler is None or measured else None
        run, provider = span_loop(
            processor if sampler is None or measured else batch(),
            after,
            sampler=sampler,
            measure_unsampled=measured,
        )
        loops[label] = run
        providers.append(provider)
    c, u, o = loops
    figures = interleaved(loops, operations=20_000, rounds=11)
    report(
        "head sampling: per-request cost",
        list(figures.values()),
        [("u/c (unsampled vs sampled)", u, c), ("u/o (measuring a dropped request)", u, o)],
    )
    for provider in providers:
        provider.shutdown()


if __name__ == "__main__":
    main()
