"""Per-span cost of the WeddingSpanProcessor against the plain SDK pipeline.

(a) SDK + BatchSpanProcessor with a dropping exporter; (b) the same behind
WeddingSpanProcessor. A SERVER span with eight usual HTTP attributes, in
interleaved rounds. Target: b/a <= 1.15.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from opentelemetry.sdk.trace import ReadableSpan, SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult
from opentelemetry.trace import SpanKind

from wedsync_otel import WeddingSpanProcessor

sys.path.insert(0, str(Path(__file__).parent))
from _harness import interleaved, report  # noqa: E402

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


def span_loop(processor: SpanProcessor) -> tuple[Callable[[int], None], TracerProvider]:
    provider = TracerProvider()
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

    return run, provider


def batch() -> BatchSpanProcessor:
    # A queue large enough that no span is dropped: dropping would hide export work.
    return BatchSpanProcessor(DroppingExporter(), max_queue_size=100_000, max_export_batch_size=512)


def main() -> None:
    plain, plain_provider = span_loop(batch())
    wedding, wedding_provider = span_loop(WeddingSpanProcessor(batch()))
    figures = interleaved(
        {"(a) SDK + batch": plain, "(b) WeddingSpanProcessor + batch": wedding},
        operations=20_000,
        rounds=9,
    )
    report(
        "span processor: per-span cost",
        list(figures.values()),
        [("b/a (target <= 1.15)", "(b) WeddingSpanProcessor + batch", "(a) SDK + batch")],
    )
    plain_provider.shutdown()
    wedding_provider.shutdown()


if __name__ == "__main__":
    main()
