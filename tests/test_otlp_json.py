"""OTLP JSON file exporters and readers, with a real SDK pipeline behind WeddingSpanProcessor."""

from __future__ import annotations

import base64
import datetime as dt
import json
import subprocess
import sys
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
    ReadCounts,
    SpanRecord,
    _json_documents,
    _json_spans,
    _otlp_ids,
    _proto_records,
    iter_spans,
    otlp_files,
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
        thread.join(60)
    assert not any(thread.is_alive() for thread in threads)
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


# --- the streaming reader: what protobuf would read, a line or document at a time ---------


def _protobuf_spans(line: str) -> list[tuple[object, ...]]:
    """The spans of one line as protobuf's own JSON parser reads them, for comparison."""
    document = json.loads(line)
    _otlp_ids.recode_ids(document, _otlp_ids.hex_to_base64)
    request = json_format.ParseDict(document, ExportTraceServiceRequest())
    found = []
    for resource in request.resource_spans:
        resource_attributes = _proto_records.attributes_of(resource.resource.attributes)
        for scope in resource.scope_spans:
            for span in scope.spans:
                found.append(
                    (
                        span.name,
                        int(span.kind),
                        span.trace_id.hex(),
                        span.span_id.hex(),
                        span.parent_span_id.hex() or None,
                        span.start_time_unix_nano,
                        span.end_time_unix_nano,
                        int(span.status.code),
                        _proto_records.attributes_of(span.attributes),
                        resource_attributes,
                        scope.scope.name,
                        [
                            (e.name, e.time_unix_nano, _proto_records.attributes_of(e.attributes))
                            for e in span.events
                        ],
                    )
                )
    return found


_KIND_NUMBER = {kind: number for number, kind in reversed(list(_json_spans._SPAN_KINDS.items()))}
_STATUS_NUMBER = {code: number for number, code in _json_spans._STATUS_CODES.items()}


def _as_tuple(span: SpanRecord) -> tuple[object, ...]:
    return (
        span.name,
        _KIND_NUMBER[span.kind],
        span.trace_id,
        span.span_id,
        span.parent_span_id,
        span.start_ns,
        span.end_ns,
        _STATUS_NUMBER[span.status_code],
        dict(span.attributes),
        dict(span.resource),
        span.scope,
        [(e.name, e.time_ns, dict(e.attributes)) for e in span.events],
    )


def test_spans_decode_exactly_as_protobufs_parser_reads_them(written: Path) -> None:
    """Every field and attribute of the exporter's lines, typed as ParseDict reads it."""
    lines = (written / "traces.jsonl").read_text(encoding="utf-8").splitlines()
    expected = [span for line in lines for span in _protobuf_spans(line)]
    decoded = [_as_tuple(span) for span in iter_spans(written / "traces.jsonl")]
    assert decoded == expected
    for got, want in zip(decoded, expected, strict=True):
        for key, value in want[8].items():  # type: ignore[attr-defined]
            assert type(got[8][key]) is type(value), key  # type: ignore[index]


def test_reader_takes_proto_field_names_base64_ids_and_enum_names(tmp_path: Path) -> None:
    """protobuf's parser takes snake_case names, base64 ids, enum names and numbers as numbers."""
    trace_id, span_id = bytes(range(16)), bytes(range(8))
    document = {
        "resource_spans": [
            {
                "scope_spans": [
                    {
                        "scope": {"name": "lib"},
                        "spans": [
                            {
                                "trace_id": base64.b64encode(trace_id).decode(),
                                "span_id": base64.b64encode(span_id).decode(),
                                "name": "GET /",
                                "kind": "SPAN_KIND_SERVER",
                                "start_time_unix_nano": 1_000,
                                "end_time_unix_nano": "3000",
                                "status": {"code": "STATUS_CODE_ERROR"},
                                "attributes": [
                                    {"key": "n", "value": {"int_value": 7}},
                                    {"key": "t", "value": {"doubleValue": 150}},
                                    {"key": "nan", "value": {"doubleValue": "NaN"}},
                                    {"key": "b", "value": {"bytesValue": "AAE="}},
                                    {
                                        "key": "kv",
                                        "value": {
                                            "kvlistValue": {
                                                "values": [
                                                    {"key": "a", "value": {"boolValue": True}}
                                                ]
                                            }
                                        },
                                    },
                                    {"key": "empty", "value": {}},
                                ],
                            }
                        ],
                    }
                ]
            }
        ]
    }
    path = tmp_path / "snake.json"
    path.write_text(json.dumps(document), encoding="utf-8")
    (span,) = read_spans(path)
    assert (span.trace_id, span.span_id) == (trace_id.hex(), span_id.hex())
    assert span.kind is SpanKind.SERVER
    assert span.status_code is StatusCode.ERROR
    assert (span.start_ns, span.end_ns) == (1_000, 3_000)
    attributes = dict(span.attributes)
    nan = attributes.pop("nan")
    assert isinstance(nan, float)
    assert nan != nan  # noqa: PLR0124 - NaN
    assert attributes == {"n": 7, "t": 150.0, "b": b"\x00\x01", "kv": {"a": True}, "empty": None}
    assert type(attributes["t"]) is float


@pytest.mark.parametrize(
    ("span", "problem"),
    [
        ({"spanId": "not base64 or hex!"}, "not a valid ExportTraceServiceRequest"),
        ({"startTimeUnixNano": "soon"}, "not a valid ExportTraceServiceRequest"),
        ({"attributes": [{"key": "x", "value": "bare"}]}, "attribute value must be an object"),
        ({"attributes": {"x": 1}}, "attributes must be a list"),
    ],
    ids=["bad-id", "bad-time", "bare-value", "attributes-object"],
)
def test_a_malformed_span_names_file_and_line(
    tmp_path: Path, span: dict[str, object], problem: str
) -> None:
    """A span protobuf would refuse is one ValueError naming the file, line and problem."""
    document = {"resourceSpans": [{"scopeSpans": [{"spans": [{"name": "x", **span}]}]}]}
    path = tmp_path / "bad.jsonl"
    path.write_text('{"resourceSpans": []}\n' + json.dumps(document) + "\n", encoding="utf-8")
    with pytest.raises(ValueError, match=f"bad.jsonl:2: .*{problem}"):
        read_spans(path)


def _pretty_documents(count: int) -> str:
    documents = []
    for index in range(count):
        span = {
            "traceId": f"{index + 1:032x}",
            "spanId": f"{index + 1:016x}",
            "name": f"span {index}",
            "attributes": [{"key": "text", "value": {"stringValue": "é" * 50}}],
        }
        documents.append({"resourceSpans": [{"scopeSpans": [{"spans": [span]}]}]})
    return "\n".join(json.dumps(document, indent=2, ensure_ascii=False) for document in documents)


def test_pretty_documents_stream_across_chunk_boundaries(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Documents and multi-byte characters cut by a chunk's edge read; each byte is counted once."""
    monkeypatch.setattr(_json_documents, "_CHUNK_BYTES", 37)
    path = tmp_path / "pretty.json"
    path.write_text(_pretty_documents(12), encoding="utf-8")
    heard: list[int] = []
    counts = ReadCounts()
    spans = list(iter_spans(path, progress=heard.append, counts=counts))
    assert [span.name for span in spans] == [f"span {i}" for i in range(12)]
    assert spans[3].attributes["text"] == "é" * 50
    assert sum(heard) == counts.bytes_read == path.stat().st_size
    assert counts.span_requests == 12


def test_a_broken_pretty_document_is_reported_at_its_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A syntax error in the third document names the line it is on, not the chunk's."""
    monkeypatch.setattr(_json_documents, "_CHUNK_BYTES", 64)
    text = _pretty_documents(3)
    lines = text.splitlines()
    target = max(i for i, line in enumerate(lines) if '"name": "span 2"' in line)
    lines[target] = lines[target].replace('"name"', "name")
    path = tmp_path / "pretty.json"
    path.write_text("\n".join(lines), encoding="utf-8")
    with pytest.raises(ValueError, match=f"pretty.json:{target + 1}: not valid JSON"):
        read_spans(path)


def test_counts_say_what_a_directory_held(written: Path) -> None:
    """Bytes of both files, span and metric export requests told apart, files counted."""
    counts = ReadCounts()
    heard: list[int] = []
    spans = list(iter_spans(written, progress=heard.append, counts=counts))
    assert len(_payments(spans)) == 20
    files = otlp_files(written)
    assert [file.name for file in files] == ["metrics.jsonl", "traces.jsonl"]
    assert sum(heard) == counts.bytes_read == sum(file.stat().st_size for file in files)
    assert counts.files == 2
    assert counts.span_requests >= 1
    assert counts.metric_requests >= 1


def test_progress_counts_a_skipped_file_as_done(written: Path) -> None:
    """Other JSON in a directory is passed over, and progress still reaches the total."""
    (written / "package.json").write_text('{"name": "x"}\n' + " " * 5_000, encoding="utf-8")
    counts = ReadCounts()
    heard: list[int] = []
    list(iter_spans(written, progress=heard.append, counts=counts))
    files = otlp_files(written)
    assert len(files) == 3
    assert sum(heard) == sum(file.stat().st_size for file in files)
    assert counts.files == 2


_WRITER = """
import sys
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from wedsync_otel.exporters import OtlpJsonFileSpanExporter

provider = TracerProvider()
provider.add_span_processor(SimpleSpanProcessor(OtlpJsonFileSpanExporter(sys.argv[1])))
tracer = provider.get_tracer("writer")
for index in range(int(sys.argv[3])):
    with tracer.start_as_current_span(f"{sys.argv[2]}-{index}", attributes={"pad": "x" * 200_000}):
        pass
provider.shutdown()
"""


def test_processes_appending_to_one_file_leave_whole_lines(tmp_path: Path) -> None:
    """Four processes (pre-forked workers) writing 200 kB lines at once: every line is whole."""
    writers = [
        subprocess.Popen([sys.executable, "-c", _WRITER, str(tmp_path), f"p{n}", "15"])
        for n in range(4)
    ]
    for writer in writers:
        assert writer.wait(timeout=120) == 0
    lines = (tmp_path / "traces.jsonl").read_text(encoding="utf-8").splitlines()
    assert len(lines) == 60
    assert len({span.name for span in read_spans(tmp_path)}) == 60
