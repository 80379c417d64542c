"""OTLP JSON file exporters and readers, with a real SDK pipeline behind WeddingSpanProcessor."""

from __future__ import annotations

import datetime as dt
import json
import threading
from pathlib import Path

import pytest
from google.protobuf import json_format
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
)
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.sdk.metrics.export import AggregationTemporality
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExportResult
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

import wedsync_otel
from helpers import TUESDAY, FakeClock
from wedsync_otel.exporters import (
    ExponentialHistogramPoint,
    OtlpJsonFileMetricExporter,
    OtlpJsonFileSpanExporter,
    SpanRecord,
    read_metrics,
    read_spans,
)
from wedsync_otel.metrics.buckets import ExponentialBuckets

_NS_PER_MS = 1_000_000
START_NS = int(TUESDAY.timestamp() * 1e9)
DURATIONS_MS = [10.0 * (i + 1) for i in range(20)]  # 10, 20, ... 200 ms


@pytest.fixture
def written(tmp_path: Path) -> Path:
    """Twenty payments requests for a wedding in five days, through configure() to files."""
    telemetry = wedsync_otel.configure(
        set_global=False,
        span_exporter=OtlpJsonFileSpanExporter(tmp_path),
        metric_exporter=OtlpJsonFileMetricExporter(tmp_path),
        metric_export_interval_millis=3_600_000,
        clock=FakeClock(TUESDAY),
        service_name="wedsync-api",
    )
    tracer = telemetry.tracer_provider.get_tracer("tests")
    for index, duration_ms in enumerate(DURATIONS_MS):
        start = START_NS + index * 1_000 * _NS_PER_MS
        span = tracer.start_span(
            "POST /api/payments/{payment_id}",
            kind=SpanKind.SERVER,
            start_time=start,
            attributes={
                "http.route": "/api/payments/{payment_id}",
                "http.response.status_code": 200,
                "wedding.id": "w-42",
                "wedding.date": "2026-06-21",
            },
        )
        span.add_event("charged", {"amount_pence": 12_500}, timestamp=start + _NS_PER_MS)
        span.end(end_time=start + int(duration_ms * _NS_PER_MS))
    telemetry.shutdown()
    return tmp_path


def _payments(spans: list[SpanRecord]) -> list[SpanRecord]:
    return sorted(
        (span for span in spans if span.attributes.get("wedding.endpoint") == "payments"),
        key=lambda span: span.start_ns,
    )


def test_wedding_attributes_come_back_with_their_python_types(written: Path) -> None:
    """Every wedding.* attribute reads back with the type the processor wrote, int64 as int."""
    spans = _payments(read_spans(written / "traces.jsonl"))
    assert len(spans) == 20
    first = spans[0]
    assert first.kind is SpanKind.SERVER
    assert first.attributes["wedding.critical"] is True
    assert first.attributes["wedding.proximity"] == "final_week"
    assert first.attributes["wedding.days_until"] == 5
    assert type(first.attributes["wedding.days_until"]) is int
    assert first.attributes["wedding.threshold_ms"] == 112.5  # 150 * 0.75
    assert first.attributes["wedding.duration_ms"] == 10.0
    assert first.attributes["wedding.threshold.breached"] is False
    assert first.attributes["wedding.apdex"] == "satisfied"
    assert first.attributes["http.response.status_code"] == 200
    assert type(first.attributes["wedding.cache.hits"]) is int
    assert first.resource["service.name"] == "wedsync-api"
    assert [span.attributes["wedding.duration_ms"] for span in spans] == DURATIONS_MS
    assert spans[-1].attributes["wedding.threshold.breached"] is True
    assert spans[-1].duration_ms == 200.0


def test_span_ids_events_and_status_read_back(written: Path) -> None:
    """Ids come back as lower-case hex; events keep their time and attributes."""
    span = _payments(read_spans(written))[0]
    assert len(span.trace_id) == 32
    assert len(span.span_id) == 16
    int(span.trace_id, 16)
    assert span.parent_span_id is None
    assert span.status_code is StatusCode.UNSET
    assert span.start_ns == START_NS
    (event,) = span.events
    assert event.name == "charged"
    assert event.time_ns == START_NS + _NS_PER_MS
    assert event.attributes == {"amount_pence": 12_500}


def test_each_line_is_an_export_trace_service_request_with_hex_ids(written: Path) -> None:
    """Lines parse with json_format.Parse; ids are hex and enums integers, as OTLP/JSON says."""
    lines = (written / "traces.jsonl").read_text(encoding="utf-8").splitlines()
    assert lines
    records = {span.span_id: span for span in read_spans(written)}
    names = []
    for line in lines:
        request = json_format.Parse(line, ExportTraceServiceRequest())
        names += [
            span.name
            for resource in request.resource_spans
            for scope in resource.scope_spans
            for span in scope.spans
        ]
        raw = json.loads(line)["resourceSpans"][0]["scopeSpans"][0]["spans"][0]
        assert raw["spanId"] in records
        assert raw["traceId"] == records[raw["spanId"]].trace_id
        assert raw["kind"] == 2
        assert isinstance(raw["startTimeUnixNano"], str)
    assert names.count("POST /api/payments/{payment_id}") == 20


def test_metrics_file_holds_server_duration_as_exponential_histogram(written: Path) -> None:
    """wedding.server.duration reads back as a cumulative exponential histogram of the requests."""
    for line in (written / "metrics.jsonl").read_text(encoding="utf-8").splitlines():
        json_format.Parse(line, ExportMetricsServiceRequest())
    records = [r for r in read_metrics(written) if r.name == "wedding.server.duration"]
    assert records
    record = records[-1]
    assert record.type == "exponential_histogram"
    assert record.unit == "ms"
    assert record.temporality is AggregationTemporality.CUMULATIVE
    (point,) = record.points
    assert isinstance(point, ExponentialHistogramPoint)
    assert point.attributes["wedding.endpoint"] == "payments"
    assert point.attributes["wedding.proximity"] == "final_week"
    assert point.count == 20
    assert point.sum == pytest.approx(sum(DURATIONS_MS))
    assert (point.min, point.max) == (10.0, 200.0)
    assert point.zero_count + sum(point.bucket_counts) == point.count
    buckets = ExponentialBuckets.from_counts(
        scale=point.scale,
        offset=point.offset,
        counts=point.bucket_counts,
        zero_count=point.zero_count,
        total_sum=point.sum or 0.0,
        minimum=point.min or 0.0,
        maximum=point.max or 0.0,
    )
    assert buckets.quantile(0.5) == pytest.approx(110.0, rel=0.01)


def test_sums_and_gauges_keep_value_and_temporality(written: Path) -> None:
    """Apdex counts are cumulative monotonic sums; the derived p50 is a gauge per window."""
    metrics = read_metrics(written)
    apdex = [r for r in metrics if r.name == "wedding.apdex.requests"][-1]
    assert apdex.type == "sum"
    assert apdex.monotonic is True
    assert apdex.temporality is AggregationTemporality.CUMULATIVE
    counts = {p.attributes["wedding.apdex"]: getattr(p, "value", None) for p in apdex.points}
    assert counts == {"satisfied": 11, "tolerating": 9}  # T = 112.5 ms: 10..110 satisfied
    p50 = [r for r in metrics if r.name == "wedding.latency.p50"][-1]
    assert p50.type == "gauge"
    assert p50.temporality is None
    assert {p.attributes.get("wedding.window") for p in p50.points} >= {"1h"}


def test_reader_takes_a_pretty_collector_document_with_upper_case_hex_ids(tmp_path: Path) -> None:
    """A multi-line document like the OTLP examples reads, with arrays and error status."""
    document = {
        "resourceSpans": [
            {
                "resource": {
                    "attributes": [{"key": "service.name", "value": {"stringValue": "a"}}]
                },
                "scopeSpans": [
                    {
                        "scope": {"name": "lib"},
                        "spans": [
                            {
                                "traceId": "5B8EFFF798038103D269B633813FC60C",
                                "spanId": "EEE19B7EC3C1B174",
                                "parentSpanId": "EEE19B7EC3C1B173",
                                "name": "GET /",
                                "kind": "SPAN_KIND_CLIENT",
                                "startTimeUnixNano": 1544712660000000000,
                                "endTimeUnixNano": "1544712661000000000",
                                "status": {"code": 2},
                                "attributes": [
                                    {
                                        "key": "tags",
                                        "value": {
                                            "arrayValue": {
                                                "values": [{"stringValue": "x"}, {"intValue": "7"}]
                                            }
                                        },
                                    },
                                    {"key": "ratio", "value": {"doubleValue": 0.5}},
                                    {"key": "newField", "value": {"stringValue": "kept"}},
                                ],
                                "someFutureField": True,
                            }
                        ],
                    }
                ],
            }
        ]
    }
    path = tmp_path / "trace.json"
    path.write_text(json.dumps(document, indent=2), encoding="utf-8")
    (span,) = read_spans(path)
    assert span.trace_id == "5b8efff798038103d269b633813fc60c"
    assert span.parent_span_id == "eee19b7ec3c1b173"
    assert span.kind is SpanKind.CLIENT
    assert span.status_code is StatusCode.ERROR
    assert span.duration_ms == 1000.0
    assert span.attributes == {"tags": ("x", 7), "ratio": 0.5, "newField": "kept"}
    assert span.resource == {"service.name": "a"}
    assert span.scope == "lib"


def test_directory_skips_json_that_is_not_otlp(written: Path) -> None:
    """Other JSON files in a directory are ignored; metrics lines are not spans."""
    (written / "package.json").write_text('{"name": "x"}\n', encoding="utf-8")
    (written / "notes.jsonl").write_text("not json at all\n", encoding="utf-8")
    assert len(_payments(read_spans(written))) == 20
    assert read_spans(written / "metrics.jsonl") == []


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        ("not json\n", "garbage.jsonl:1: not valid JSON"),
        ('{"name": "x"}\n', "garbage.jsonl:1: not an OTLP JSON export request"),
        ('{"resourceSpans": []}\n{"resourceSpans": [\n', "garbage.jsonl:2: not valid JSON"),
        ('{"resourceSpans": [{"scopeSpans": 5}]}\n', "garbage.jsonl:1: not a valid"),
    ],
)
def test_a_named_file_that_is_not_otlp_json_raises_naming_file_and_line(
    tmp_path: Path, content: str, problem: str
) -> None:
    """A named file must be OTLP JSON: the error says which file and line is wrong."""
    path = tmp_path / "garbage.jsonl"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(ValueError, match=problem):
        read_spans(path)


def test_an_unfinished_last_line_is_skipped(written: Path) -> None:
    """A line still being written (no newline yet) is left for the next read."""
    path = written / "traces.jsonl"
    with path.open("a", encoding="utf-8") as stream:
        stream.write('{"resourceSpans": [{"scopeSpans": [{"spans": [{"na')
    assert len(_payments(read_spans(path))) == 20


def test_binary_file_raises_value_error(tmp_path: Path) -> None:
    """Bytes that are not UTF-8 are reported as such, not as a decoding traceback."""
    path = tmp_path / "traces.jsonl"
    path.write_bytes(b"\xff\xfe\x00garbage")
    with pytest.raises(ValueError, match="not UTF-8 text"):
        read_spans(path)


def test_missing_path_raises_os_error(tmp_path: Path) -> None:
    """A path that does not exist is an OSError naming it."""
    with pytest.raises(FileNotFoundError):
        read_spans(tmp_path / "missing.jsonl")


def _provider(exporter: OtlpJsonFileSpanExporter) -> TracerProvider:
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    return provider


def test_concurrent_exports_write_whole_lines(tmp_path: Path) -> None:
    """Spans ended on eight threads at once each land on a line of their own."""
    exporter = OtlpJsonFileSpanExporter(tmp_path / "nested" / "dir")
    provider = _provider(exporter)
    tracer = provider.get_tracer("threads")

    def work(thread: int) -> None:
        for index in range(25):
            with tracer.start_as_current_span(f"t{thread}-{index}"):
                pass

    threads = [threading.Thread(target=work, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    provider.shutdown()
    assert exporter.path == tmp_path / "nested" / "dir" / "traces.jsonl"
    assert len(exporter.path.read_text(encoding="utf-8").splitlines()) == 200
    assert len({span.name for span in read_spans(exporter.path)}) == 200


def _finished_span() -> ReadableSpan:
    memory = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(memory))
    with provider.get_tracer("t").start_as_current_span("one"):
        pass
    (span,) = memory.get_finished_spans()
    return span


def test_export_after_shutdown_fails_without_raising(tmp_path: Path) -> None:
    """Shutdown closes the file; a later export reports failure and writes nothing."""
    exporter = OtlpJsonFileSpanExporter(tmp_path)
    assert exporter.export([_finished_span()]) is SpanExportResult.SUCCESS
    exporter.shutdown()
    exporter.shutdown()
    assert exporter.export([_finished_span()]) is SpanExportResult.FAILURE
    assert len(read_spans(tmp_path)) == 1


def test_unwritable_directory_fails_the_export_without_raising(tmp_path: Path) -> None:
    """A directory that is a file makes the export fail; the application never sees an error."""
    blocker = tmp_path / "blocker"
    blocker.write_text("", encoding="utf-8")
    exporter = OtlpJsonFileSpanExporter(blocker)
    assert exporter.export([_finished_span()]) is SpanExportResult.FAILURE
    assert exporter.export([_finished_span()]) is SpanExportResult.FAILURE


def test_timestamps_survive_as_exact_nanoseconds(written: Path) -> None:
    """int64 nanoseconds are strings in OTLP JSON; they read back exact, not as floats."""
    span = _payments(read_spans(written))[-1]
    expected = START_NS + 19 * 1_000 * _NS_PER_MS
    assert span.start_ns == expected
    assert dt.datetime.fromtimestamp(span.start_ns / 1e9, tz=dt.UTC).date() == TUESDAY.date()
