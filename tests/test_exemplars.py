"""Exemplars: from a sampled request span to OTLP, the Prometheus bridge and a real Prometheus.

A p99 spike on a dashboard should open the trace that caused it, so the duration and DB
histograms carry the trace and span ids of sampled requests: the slowest per series and
interval, and the latest in each power-of-four range. The real-server test needs Debian's
``prometheus`` (``scripts/install-prometheus-tools.sh``); without it it skips, or fails under
``CI=true``.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import http.server
import json
import math
import struct
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterable, Iterator, Sequence
from http import HTTPStatus
from pathlib import Path
from typing import Any, ClassVar

import pytest
from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.exporter.otlp.proto.common.metrics_encoder import (
    encode_metrics as encode_otlp,
)
from opentelemetry.sdk.metrics import Exemplar
from opentelemetry.sdk.metrics.export import (
    AggregationTemporality,
    ExponentialHistogram,
    ExponentialHistogramDataPoint,
    MetricsData,
    ResourceMetrics,
    ScopeMetrics,
)
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.sdk.trace.sampling import (
    Decision,
    ParentBased,
    Sampler,
    SamplingResult,
)
from opentelemetry.trace import Link, SpanKind
from opentelemetry.trace.span import TraceState
from opentelemetry.util.types import Attributes

import wedsync_otel
from helpers import CapturingExporter, FakeClock
from prometheus_support import running_prometheus
from wedsync_otel.metrics import names
from wedsync_otel.metrics.prometheus_bridge import CONTENT_TYPE, PrometheusBridge
from wedsync_otel.metrics.prometheus_bridge import encode_metrics as encode_prometheus
from wedsync_otel.metrics.recording import MAX_EXEMPLARS

MS = 1_000_000
TUESDAY = dt.datetime(2026, 6, 16, 10, 0, tzinfo=dt.UTC)
PAYMENTS = "/api/payments/{payment_id}"
DEADLINE_S = 60.0


class ByAttribute(Sampler):
    """Samples a root span when it carries ``test.sample`` (the test's own head-sampling rule)."""

    def should_sample(
        self,
        parent_context: Context | None,
        trace_id: int,
        name: str,
        kind: SpanKind | None = None,
        attributes: Attributes = None,
        links: Sequence[Link] | None = None,
        trace_state: TraceState | None = None,
    ) -> SamplingResult:
        sampled = bool((attributes or {}).get("test.sample", True))
        decision = Decision.RECORD_AND_SAMPLE if sampled else Decision.DROP
        return SamplingResult(decision, attributes if sampled else None)

    def get_description(self) -> str:
        return "ByAttribute"


class Service:
    """A real pipeline: spans to an in-memory exporter, metrics to ``metric_exporter``."""

    def __init__(self, metric_exporter: Any, *, clock: FakeClock | None = None) -> None:
        self.spans = InMemorySpanExporter()
        self.telemetry = wedsync_otel.configure(
            span_exporter=self.spans,
            metric_exporter=metric_exporter,
            metric_export_interval_millis=3_600_000,
            clock=clock,
            sampler=ParentBased(ByAttribute()),
            set_global=False,
        )
        self.tracer = self.telemetry.tracer_provider.get_tracer("tests")
        self.clock = clock

    def _now_ns(self) -> int:
        if self.clock is None:
            return time.time_ns()
        return int(self.clock.now.timestamp()) * 1_000_000_000

    def request(
        self, duration_ms: float, *, db_ms: float = 0.0, sampled: bool = True, end_ns: int = 0
    ) -> None:
        """One payments request ending at ``end_ns`` (now by default), with a query if ``db_ms``."""
        end = end_ns or self._now_ns()
        start = end - round(duration_ms * MS)
        root = self.tracer.start_span(
            "GET /api/payments/{payment_id}",
            kind=SpanKind.SERVER,
            attributes={
                "http.route": PAYMENTS,
                "http.response.status_code": 200,
                "test.sample": sampled,
            },
            start_time=start,
        )
        if db_ms:
            with trace.use_span(root, end_on_exit=False):
                query = self.tracer.start_span(
                    "SELECT",
                    kind=SpanKind.CLIENT,
                    attributes={"db.system": "sqlite", "db.statement": "SELECT 1"},
                    start_time=start,
                )
                query.end(end_time=start + round(db_ms * MS))
        root.end(end_time=end)

    def flush(self) -> None:
        assert self.telemetry.force_flush()

    def exported(self) -> tuple[ReadableSpan, ...]:
        return self.spans.get_finished_spans()

    def requests(self) -> dict[int, ReadableSpan]:
        """Exported request spans by trace id."""
        return {
            span.context.trace_id: span
            for span in self.exported()
            if span.kind is SpanKind.SERVER and span.context is not None
        }

    def close(self) -> None:
        self.telemetry.shutdown()


def histogram_points(data: MetricsData, name: str) -> list[ExponentialHistogramDataPoint]:
    found = [
        metric.data
        for resource_metrics in data.resource_metrics
        for scope_metrics in resource_metrics.scope_metrics
        for metric in scope_metrics.metrics
        if metric.name == name
    ]
    assert len(found) == 1, name
    histogram = found[0]
    assert isinstance(histogram, ExponentialHistogram)
    return list(histogram.data_points)


@pytest.fixture
def capture() -> CapturingExporter:
    return CapturingExporter()


@pytest.fixture
def service(capture: CapturingExporter) -> Iterator[Service]:
    made = Service(capture, clock=FakeClock(TUESDAY))
    yield made
    made.close()


# --- what the SDK pipeline exports -----------------------------------------------------------


def test_duration_exemplars_name_exported_request_spans(
    service: Service, capture: CapturingExporter
) -> None:
    """Each exemplar's trace id, span id, value and time are those of an exported request."""
    for duration in (12.0, 40.0, 250.0, 900.0):
        service.request(duration)
    service.flush()
    (point,) = histogram_points(capture.exported[-1], names.SERVER_DURATION)
    requests = service.requests()
    assert len(requests) == 4
    assert 1 <= len(point.exemplars) <= MAX_EXEMPLARS
    for exemplar in point.exemplars:
        assert exemplar.trace_id is not None
        span = requests[exemplar.trace_id]
        assert span.context is not None
        assert exemplar.span_id == span.context.span_id
        assert exemplar.time_unix_nano == span.end_time
        assert span.start_time is not None
        assert span.end_time is not None
        assert exemplar.value == pytest.approx((span.end_time - span.start_time) / MS)
        assert dict(exemplar.filtered_attributes or {}) == {}
    assert max(exemplar.value for exemplar in point.exemplars) == pytest.approx(900.0)


def test_the_slowest_request_is_an_exemplar_among_many(
    service: Service, capture: CapturingExporter
) -> None:
    """Among 200 requests in one series the slowest is kept, and no more than eight in all."""
    durations = [5.0 + (n * 37) % 400 for n in range(200)]
    durations[137] = 2_500.0
    for duration in durations:
        service.request(duration)
    service.flush()
    (point,) = histogram_points(capture.exported[-1], names.SERVER_DURATION)
    assert len(point.exemplars) <= MAX_EXEMPLARS
    slowest = max(point.exemplars, key=lambda exemplar: exemplar.value)
    assert slowest.value == pytest.approx(2_500.0)
    assert slowest.trace_id in service.requests()


def test_db_exemplars_point_at_the_request_with_database_time(
    service: Service, capture: CapturingExporter
) -> None:
    """The DB histogram's exemplar is the request span, valued at its database time."""
    service.request(100.0, db_ms=30.0)
    service.flush()
    (point,) = histogram_points(capture.exported[-1], names.DB_DURATION)
    (exemplar,) = point.exemplars
    assert exemplar.value == pytest.approx(30.0)
    assert exemplar.trace_id in service.requests()
    assert exemplar.span_id == service.requests()[exemplar.trace_id].context.span_id  # type: ignore[union-attr]


def test_unsampled_requests_are_counted_but_never_exemplars(
    service: Service, capture: CapturingExporter
) -> None:
    """A request the sampler dropped counts in the durations, not in DB time nor exemplars."""
    service.request(700.0, db_ms=50.0, sampled=False)
    service.request(20.0, db_ms=5.0)
    service.flush()
    requests = service.requests()
    assert len(requests) == 1  # the dropped request was never exported
    (duration,) = histogram_points(capture.exported[-1], names.SERVER_DURATION)
    assert duration.count == 2
    assert [exemplar.trace_id for exemplar in duration.exemplars] == list(requests)
    (db,) = histogram_points(capture.exported[-1], names.DB_DURATION)
    assert (db.count, db.sum) == (1, pytest.approx(5.0))  # the DB count: sampled requests


def test_cumulative_points_carry_only_the_latest_interval_exemplars(
    service: Service, capture: CapturingExporter
) -> None:
    """An export after a quiet interval still counts everything, with no stale exemplar."""
    service.request(80.0)
    service.flush()
    service.flush()
    (point,) = histogram_points(capture.exported[-1], names.SERVER_DURATION)
    assert (point.count, list(point.exemplars)) == (1, [])
    service.request(90.0)
    service.flush()
    (point,) = histogram_points(capture.exported[-1], names.SERVER_DURATION)
    assert point.count == 2
    assert [exemplar.value for exemplar in point.exemplars] == [pytest.approx(90.0)]


def test_delta_points_carry_their_own_interval_exemplars() -> None:
    """With delta temporality each interval's point has that interval's exemplars."""
    capture = CapturingExporter(delta=True)
    service = Service(capture, clock=FakeClock(TUESDAY))
    try:
        service.request(10.0)
        service.flush()
        service.request(20.0)
        service.flush()
        points = [
            histogram_points(data, names.SERVER_DURATION)[0] for data in capture.exported[-2:]
        ]
        assert [[exemplar.value for exemplar in point.exemplars] for point in points] == [
            [pytest.approx(10.0)],
            [pytest.approx(20.0)],
        ]
        assert {
            metric.data.aggregation_temporality
            for data in capture.exported[-2:]
            for rm in data.resource_metrics
            for sm in rm.scope_metrics
            for metric in sm.metrics
            if metric.name == names.SERVER_DURATION
        } == {AggregationTemporality.DELTA}
    finally:
        service.close()


# --- OTLP ------------------------------------------------------------------------------------


def test_the_otlp_encoder_carries_exponential_histogram_exemplars(
    service: Service, capture: CapturingExporter
) -> None:
    """The OTLP proto encoder puts each exemplar's ids, value and time on the wire."""
    service.request(333.0)
    service.flush()
    request = encode_otlp(capture.exported[-1])
    (point,) = [
        point
        for resource_metrics in request.resource_metrics
        for scope_metrics in resource_metrics.scope_metrics
        for metric in scope_metrics.metrics
        if metric.name == names.SERVER_DURATION
        for point in metric.exponential_histogram.data_points
    ]
    (exemplar,) = point.exemplars
    (span,) = service.requests().values()
    assert span.context is not None
    assert exemplar.trace_id == span.context.trace_id.to_bytes(16, "big")
    assert exemplar.span_id == span.context.span_id.to_bytes(8, "big")
    assert exemplar.as_double == pytest.approx(333.0)
    assert exemplar.time_unix_nano == span.end_time


# --- the Prometheus bridge's protobuf --------------------------------------------------------


def _read_varint(data: bytes, position: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        byte = data[position]
        position += 1
        value |= (byte & 0x7F) << shift
        shift += 7
        if not byte & 0x80:
            return value, position


def _fields(data: bytes) -> list[tuple[int, int | bytes]]:
    """(field number, value) of a protobuf message: varints as ints, the rest as bytes."""
    position, out = 0, []
    while position < len(data):
        key, position = _read_varint(data, position)
        number, wire = key >> 3, key & 7
        value: int | bytes
        if wire == 0:
            value, position = _read_varint(data, position)
        elif wire == 1:
            value, position = data[position : position + 8], position + 8
        elif wire == 2:
            length, position = _read_varint(data, position)
            value, position = data[position : position + length], position + length
        else:
            raise AssertionError(f"unexpected wire type {wire}")
        out.append((number, value))
    return out


def _families(body: bytes) -> dict[str, list[bytes]]:
    """Family name -> its encoded Metric messages."""
    position, families = 0, {}
    while position < len(body):
        length, position = _read_varint(body, position)
        fields = _fields(body[position : position + length])
        position += length
        name = next(value for number, value in fields if number == 1)
        assert isinstance(name, bytes)
        families[name.decode()] = [value for number, value in fields if number == 4]  # type: ignore[misc]
    return families


def _exemplar(message: bytes) -> dict[str, Any]:
    fields = _fields(message)
    labels = {}
    for number, value in fields:
        if number == 1:
            assert isinstance(value, bytes)
            pair = dict(_fields(value))
            labels[pair[1].decode()] = pair[2].decode()  # type: ignore[union-attr]
    value = next(v for n, v in fields if n == 2)
    timestamp = dict(_fields(next(v for n, v in fields if n == 3)))  # type: ignore[arg-type]
    return {
        "labels": labels,
        "value": struct.unpack("<d", value)[0],  # type: ignore[arg-type]
        "time_ns": int(timestamp.get(1, 0)) * 1_000_000_000 + int(timestamp.get(2, 0)),  # type: ignore[call-overload]
    }


def _histogram(metric: bytes) -> list[tuple[int, int | bytes]]:
    (histogram,) = [value for number, value in _fields(metric) if number == 7]
    assert isinstance(histogram, bytes)
    return _fields(histogram)


def test_the_bridge_writes_every_exemplar_and_the_slowest_on_a_classic_inf_bucket(
    service: Service, capture: CapturingExporter
) -> None:
    """Histogram.exemplars holds them all oldest first; one +Inf bucket holds the slowest."""
    start = int(TUESDAY.timestamp()) * 1_000_000_000
    for offset_ms, duration in ((0, 30.0), (1, 900.0), (2, 4.0)):
        service.request(duration, end_ns=start + offset_ms * MS)
    service.flush()
    requests = service.requests()
    (metric,) = _families(encode_prometheus(capture.exported[-1]))[
        "wedding_server_duration_milliseconds"
    ]
    histogram = _histogram(metric)
    exemplars = [_exemplar(value) for number, value in histogram if number == 16]  # type: ignore[arg-type]
    assert [exemplar["value"] for exemplar in exemplars] == [30.0, 900.0, 4.0]
    for exemplar in exemplars:
        span = requests[int(exemplar["labels"]["trace_id"], 16)]
        assert span.context is not None
        assert exemplar["labels"]["span_id"] == f"{span.context.span_id:016x}"
        assert exemplar["time_ns"] == span.end_time
    (bucket,) = [dict(_fields(value)) for number, value in histogram if number == 3]  # type: ignore[arg-type]
    count = dict(histogram)[1]
    assert bucket[1] == count == 3  # cumulative count of +Inf: every observation
    assert bucket[2] == b"\x00\x00\x00\x00\x00\x00\xf0\x7f"  # upper bound +Inf
    assert _exemplar(bucket[3]) == exemplars[1]  # type: ignore[arg-type]


def test_the_bridge_writes_no_exemplar_fields_without_exemplars(
    service: Service, capture: CapturingExporter
) -> None:
    """A point without exemplars is the plain native histogram: no bucket, no exemplar field."""
    service.request(10.0, sampled=False)
    service.flush()
    (metric,) = _families(encode_prometheus(capture.exported[-1]))[
        "wedding_server_duration_milliseconds"
    ]
    assert {number for number, _ in _histogram(metric)} & {3, 16} == set()


def test_the_bridge_leaves_out_exemplars_without_trace_ids(
    service: Service, capture: CapturingExporter
) -> None:
    """An exemplar another source recorded without a span links to nothing: not written."""
    service.request(10.0)
    service.flush()
    data = capture.exported[-1]
    (metric,) = [
        metric
        for rm in data.resource_metrics
        for sm in rm.scope_metrics
        for metric in sm.metrics
        if metric.name == names.SERVER_DURATION
    ]
    assert isinstance(metric.data, ExponentialHistogram)
    (point,) = metric.data.data_points
    bare = dataclasses.replace(point, exemplars=[Exemplar({}, 5.0, 1)])
    histogram = dataclasses.replace(metric.data, data_points=[bare])
    only = MetricsData(
        resource_metrics=[
            ResourceMetrics(
                rm.resource,
                [
                    ScopeMetrics(
                        rm.scope_metrics[0].scope, [dataclasses.replace(metric, data=histogram)], ""
                    )
                ],
                "",
            )
            for rm in data.resource_metrics[:1]
        ]
    )
    (encoded,) = _families(encode_prometheus(only))["wedding_server_duration_milliseconds"]
    assert {number for number, _ in _histogram(encoded)} & {3, 16} == set()


# --- a real Prometheus: query_exemplars returns a trace that was exported --------------------


class _Target(http.server.BaseHTTPRequestHandler):
    """Serves the bridge's latest export."""

    bridge: ClassVar[PrometheusBridge]

    def do_GET(self) -> None:
        body = self.bridge.scrape()
        self.send_response(200)
        self.send_header("Content-Type", CONTENT_TYPE)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        return None


def _query_exemplars(port: int, expr: str, start_s: float) -> list[dict[str, Any]]:
    """The series and exemplars Prometheus returns; none while it is still starting (503)."""
    query = urllib.parse.urlencode(
        {"query": expr, "start": f"{start_s:.3f}", "end": f"{time.time() + 60:.3f}"}
    )
    url = f"http://127.0.0.1:{port}/api/v1/query_exemplars?{query}"
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            answer = json.load(response)
    except urllib.error.HTTPError as exc:
        if exc.code == HTTPStatus.SERVICE_UNAVAILABLE:  # the TSDB is not ready yet
            return []
        raise
    assert answer["status"] == "success", answer
    found: list[dict[str, Any]] = answer["data"] or []
    return found


def _trace_ids(series: Iterable[dict[str, Any]]) -> dict[str, float]:
    """Trace id -> exemplar value, over every series returned."""
    return {
        exemplar["labels"]["trace_id"]: float(exemplar["value"])
        for one in series
        for exemplar in one["exemplars"]
    }


@pytest.fixture(scope="module")
def prometheus_answers(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[dict[str, dict[str, float]], dict[str, ReadableSpan], dict[str, float]]]:
    """What Prometheus' query_exemplars returns after scraping a real pipeline's bridge."""
    root: Path = tmp_path_factory.mktemp("exemplars")
    bridge = PrometheusBridge()
    service = Service(bridge)
    _Target.bridge = bridge
    target = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Target)
    threading.Thread(target=target.serve_forever, daemon=True).start()
    started_s = time.time() - 60
    try:
        for duration, db_ms in ((12.0, 0.0), (40.0, 3.0), (250.0, 0.0), (900.0, 45.0)):
            service.request(duration, db_ms=db_ms)
        service.request(5_000.0, sampled=False)  # slower still, but never exported
        service.flush()
        exported = {f"{trace_id:032x}": span for trace_id, span in service.requests().items()}
        slowest = {"duration": 900.0, "db": 45.0}
        deadline = time.monotonic() + DEADLINE_S
        wanted = {
            "duration": "wedding_server_duration_milliseconds",
            "db": "wedding_db_duration_milliseconds",
        }
        with running_prometheus(
            root,
            target_port=target.server_port,
            job="wedsync-exemplars",
            deadline=deadline,
            features=("exemplar-storage", "native-histograms"),
        ) as prometheus:
            answers: dict[str, dict[str, float]] = {}
            while True:
                answers = {
                    key: _trace_ids(_query_exemplars(prometheus.port, expr, started_s))
                    for key, expr in wanted.items()
                }
                if all(answers.values()):
                    break
                if time.monotonic() > deadline or not prometheus.alive():
                    pytest.fail(f"no exemplars in time: {answers}\n{prometheus.log_tail()}")
                time.sleep(0.2)  # polling Prometheus' API until a scrape brought them, bounded
            yield answers, exported, slowest
    finally:
        target.shutdown()
        target.server_close()
        service.close()


def test_prometheus_returns_a_duration_exemplar_of_an_exported_trace(
    prometheus_answers: tuple[
        dict[str, dict[str, float]], dict[str, ReadableSpan], dict[str, float]
    ],
) -> None:
    """query_exemplars on the duration histogram returns exported traces, the slowest among them."""
    answers, exported, slowest = prometheus_answers
    traces = answers["duration"]
    assert traces.keys() <= exported.keys()
    (slowest_trace,) = [
        trace_id for trace_id, value in traces.items() if value == max(traces.values())
    ]
    assert traces[slowest_trace] == pytest.approx(slowest["duration"])
    span = exported[slowest_trace]
    assert span.end_time is not None
    assert span.start_time is not None
    assert math.isclose((span.end_time - span.start_time) / MS, slowest["duration"])


def test_prometheus_returns_a_db_exemplar_of_an_exported_trace(
    prometheus_answers: tuple[
        dict[str, dict[str, float]], dict[str, ReadableSpan], dict[str, float]
    ],
) -> None:
    """query_exemplars on the DB histogram returns the exported request with the most DB time."""
    answers, exported, slowest = prometheus_answers
    traces = answers["db"]
    assert traces.keys() <= exported.keys()
    assert max(traces.values()) == pytest.approx(slowest["db"])
