"""``wedsync-otel report`` throughput: spans/s and MB/s reading an OTLP JSON file.

The file is what the project's own pipeline writes (`configure()` in front of
`OtlpJsonFileSpanExporter`): 2,500 requests at 170 requests/s (three routes, a
fifth with a wedding date, 1% 5xx), repeated four times, each copy later, so
10,000 spans over about a minute, in lines of the batch processor's 512 spans.

Variants, medians of interleaved rounds (CPU time per span):

- ``report``: what the command does, the streamed read into `SpanAggregator`
  and the snapshot;
- ``read``: the streamed read alone (`iter_spans`);
- ``previous reader``: json.loads, ids recoded, protobuf's ``ParseDict`` and
  the conversion of the messages, as ``read_spans`` did before the reader
  decoded the JSON itself.

Runs in about a minute.
"""

from __future__ import annotations

import datetime as dt
import json
import sys
import tempfile
from pathlib import Path

from google.protobuf import json_format
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.trace import SpanKind

import wedsync_otel
from wedsync_otel.cli.aggregate import SpanAggregator
from wedsync_otel.cli.report import aggregated_report
from wedsync_otel.exporters import OtlpJsonFileSpanExporter, iter_spans
from wedsync_otel.exporters._otlp_ids import hex_to_base64, recode_ids
from wedsync_otel.exporters._proto_records import attributes_of

sys.path.insert(0, str(Path(__file__).parent))
from _harness import interleaved

REQUESTS = 2_500
REPEATS = 4
RATE = 170
ROUNDS = 5
ROUTES = ("/api/payments/{payment_id}", "/api/rsvp/{wedding_id}", "/items/{item_id}")
START = dt.datetime(2026, 6, 16, 10, 0, tzinfo=dt.UTC)


class _Clock:
    def __call__(self) -> dt.datetime:
        return START


def write_file(directory: Path) -> Path:
    """REQUESTS through the project's pipeline, then REPEATS copies of its lines, each later."""
    telemetry = wedsync_otel.configure(
        set_global=False,
        span_exporter=OtlpJsonFileSpanExporter(directory / "base"),
        metric_export_interval_millis=3_600_000,
        clock=_Clock(),
    )
    tracer = telemetry.tracer_provider.get_tracer("bench")
    start_ns = int(START.timestamp() * 1e9)
    for index in range(REQUESTS):
        start = start_ns + index * 1_000_000_000 // RATE
        attributes: dict[str, str | int] = {
            "http.route": ROUTES[index % 3],
            "http.response.status_code": 503 if index % 100 == 0 else 200,
        }
        if index % 5 == 0:
            attributes["wedding.date"] = "2026-06-20"
        span = tracer.start_span(
            "GET", kind=SpanKind.SERVER, start_time=start, attributes=attributes
        )
        span.end(end_time=start + (index % 89 + 1) * 1_000_000)
    telemetry.shutdown()
    lines = (directory / "base" / "traces.jsonl").read_text(encoding="utf-8").splitlines()
    path = directory / "traces.jsonl"
    with path.open("w", encoding="utf-8") as stream:
        for repeat in range(REPEATS):
            shift_ns = repeat * REQUESTS * 1_000_000_000 // RATE
            for line in lines:
                document = json.loads(line)
                for resource in document["resourceSpans"]:
                    for scope in resource["scopeSpans"]:
                        for span in scope["spans"]:
                            for key in ("startTimeUnixNano", "endTimeUnixNano"):
                                span[key] = str(int(span[key]) + shift_ns)
                stream.write(json.dumps(document, separators=(",", ":")) + "\n")
    return path


def report(path: Path) -> None:
    aggregator = SpanAggregator()
    for span in iter_spans(path):
        aggregator.add(span)
    assert aggregated_report(aggregator, None) is not None


def read(path: Path) -> None:
    for _span in iter_spans(path):
        pass


def previous_reader(path: Path) -> None:
    with path.open(encoding="utf-8") as stream:
        for line in stream:
            document = json.loads(line)
            recode_ids(document, hex_to_base64)  # the old path
            request = json_format.ParseDict(
                document, ExportTraceServiceRequest(), ignore_unknown_fields=True
            )
            for resource in request.resource_spans:
                resource_attributes = attributes_of(resource.resource.attributes)
                for scope in resource.scope_spans:
                    for span in scope.spans:
                        attributes_of(span.attributes)
                        _ = (span.trace_id.hex(), span.span_id.hex(), resource_attributes)


def main() -> None:
    with tempfile.TemporaryDirectory() as temporary:
        path = write_file(Path(temporary))
        spans = REQUESTS * REPEATS
        size = path.stat().st_size
        figures = interleaved(
            {
                "report": lambda _n: report(path),
                "read": lambda _n: read(path),
                "previous reader": lambda _n: previous_reader(path),
            },
            operations=spans,
            rounds=ROUNDS,
        )
    print(
        f"== wedsync-otel report: {spans:,} spans, {size / 1e6:.1f} MB ({size / spans:.0f} B/span)"
    )
    for figure in figures.values():
        spans_per_s = 1e6 / figure.cpu_us
        mb_per_s = size / spans * spans_per_s / 1e6
        print(
            f"  {figure.name:<16} {figure.cpu_us:8.1f} us/span   {spans_per_s:9,.0f} spans/s   "
            f"{mb_per_s:6.1f} MB/s   (wall {figure.wall_us:.1f} us/span)"
        )
    ratio = figures["previous reader"].cpu_us / figures["read"].cpu_us
    print(f"  read vs previous reader: {ratio:.1f}x faster")
    print(f"  (medians of {ROUNDS} interleaved rounds, process CPU time)")


if __name__ == "__main__":
    main()
