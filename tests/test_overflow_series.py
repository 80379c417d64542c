"""The overflow series: requests past the recorder's series limit are recorded, not dropped.

As the OTel metrics SDK specifies for a cardinality limit, a measurement whose attribute set
would pass the limit goes to the series whose only attribute is ``otel.metric.overflow = true``,
in every metric the recorder emits; `WeddingRecorder.dropped_series` still counts it.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from opentelemetry import trace
from opentelemetry.sdk.metrics.export import (
    AggregationTemporality,
    ExponentialHistogram,
    MetricsData,
    Sum,
)
from opentelemetry.trace import SpanKind

from helpers import RECORDED_METRICS, TUESDAY, CapturingExporter, FakeClock, Pipeline
from test_exemplars import _families, _fields
from wedsync_otel import PerformanceMetricExporter
from wedsync_otel.metrics import WeddingRecorder, names
from wedsync_otel.metrics.emit import OVERFLOW_ATTRIBUTE
from wedsync_otel.metrics.prometheus_bridge import encode_metrics

MS = 1_000_000
OVERFLOW = {OVERFLOW_ATTRIBUTE: True}


class Limited:
    """A span pipeline whose recorder admits one duration series, and its metric exporter."""

    def __init__(self, pipeline: Pipeline, clock: FakeClock, *, delta: bool = False) -> None:
        self.pipeline = pipeline
        self.clock = clock
        self.recorder = WeddingRecorder(max_series=1)
        pipeline.processor.add_verdict_listener(self.recorder)
        self.capture = CapturingExporter(delta=delta)
        self.exporter = PerformanceMetricExporter(self.capture, clock=clock, recorder=self.recorder)

    def request(
        self, route: str, duration_ms: float, *, hits: int = 0, misses: int = 0, db_ms: float = 0.0
    ) -> None:
        """One request with ``hits`` and ``misses`` cache reads and a query of ``db_ms``."""
        tracer = self.pipeline.tracer
        start = int(self.clock.now.timestamp()) * 1_000_000_000
        root = tracer.start_span(
            "request",
            kind=SpanKind.SERVER,
            attributes={"http.route": route, "http.response.status_code": 200},
            start_time=start,
        )
        with trace.use_span(root, end_on_exit=False):
            for hit in [True] * hits + [False] * misses:
                tracer.start_span(
                    "GET",
                    kind=SpanKind.CLIENT,
                    attributes={"cache.backend": "redis", "cache.hit": hit},
                    start_time=start,
                ).end(end_time=start)
            if db_ms:
                tracer.start_span(
                    "SELECT",
                    kind=SpanKind.CLIENT,
                    attributes={"db.system": "sqlite", "db.statement": "SELECT 1"},
                    start_time=start,
                ).end(end_time=start + round(db_ms * MS))
        root.end(end_time=start + round(duration_ms * MS))

    def export(self) -> MetricsData:
        self.exporter.export(MetricsData(resource_metrics=[]))
        return self.capture.exported[-1]


@pytest.fixture
def limited(make_pipeline: Callable[..., Pipeline], clock: FakeClock) -> Iterator[Limited]:
    made = Limited(make_pipeline(), clock)
    yield made
    made.exporter.shutdown()


def points(data: MetricsData, name: str) -> list[Any]:
    found = [
        metric
        for resource_metrics in data.resource_metrics
        for scope_metrics in resource_metrics.scope_metrics
        for metric in scope_metrics.metrics
        if metric.name == name
    ]
    assert len(found) == 1, name
    return list(found[0].data.data_points)


def overflow_point(data: MetricsData, name: str) -> Any:
    (point,) = [p for p in points(data, name) if OVERFLOW_ATTRIBUTE in (p.attributes or {})]
    return point


def _admitted_then_overflowed(limited: Limited) -> None:
    """rsvp takes the only series; three payments requests (one over 150 ms) overflow."""
    limited.request("/api/rsvp", 40.0, hits=1, db_ms=10.0)
    limited.request("/api/payments/{payment_id}", 30.0, hits=2, misses=1, db_ms=5.0)
    limited.request("/api/payments/{payment_id}", 400.0, db_ms=20.0)
    limited.request("/api/payments/{payment_id}", 20.0)


def test_every_recorded_metric_has_the_overflow_series_with_only_its_attribute(
    limited: Limited,
) -> None:
    """Durations, DB, Apdex, cache and breaches each get one point with only the attribute."""
    _admitted_then_overflowed(limited)
    data = limited.export()
    for name in RECORDED_METRICS:
        assert dict(overflow_point(data, name).attributes) == OVERFLOW, name


def test_the_overflow_series_counts_every_overflowed_request(limited: Limited) -> None:
    """Three requests, 450 ms, one breach, three cache reads and 25 ms of DB time overflowed."""
    _admitted_then_overflowed(limited)
    data = limited.export()
    duration = overflow_point(data, names.SERVER_DURATION)
    assert (duration.count, duration.sum) == (3, pytest.approx(450.0))
    db = overflow_point(data, names.DB_DURATION)
    assert (db.count, db.zero_count, db.sum) == (3, 1, pytest.approx(25.0))
    assert overflow_point(data, names.APDEX_REQUESTS).value == 3
    assert overflow_point(data, names.THRESHOLD_BREACHES).value == 1
    assert overflow_point(data, names.CACHE_REQUESTS).value == 3
    assert limited.recorder.dropped_series == 3


def test_admitted_series_are_left_as_they_were(limited: Limited) -> None:
    """The series inside the limit keep their own attributes and counts."""
    _admitted_then_overflowed(limited)
    data = limited.export()
    (rsvp,) = [
        p for p in points(data, names.SERVER_DURATION) if OVERFLOW_ATTRIBUTE not in p.attributes
    ]
    assert rsvp.attributes[names.STATUS_CLASS] == "2xx"
    assert (rsvp.attributes["wedding.endpoint"], rsvp.count) == ("rsvp", 1)


def test_the_overflow_series_carries_an_exemplar_of_its_slowest_request(
    limited: Limited,
) -> None:
    """The overflowed requests' slowest sampled span is the overflow point's exemplar."""
    _admitted_then_overflowed(limited)
    data = limited.export()
    exemplars = overflow_point(data, names.SERVER_DURATION).exemplars
    slowest = max(exemplars, key=lambda exemplar: exemplar.value)
    assert slowest.value == pytest.approx(400.0)
    assert slowest.trace_id in {span.context.trace_id for span in limited.pipeline.spans()}  # type: ignore[union-attr]


def test_derived_figures_leave_the_overflow_out(limited: Limited) -> None:
    """The snapshot has rsvp's request, no payments data, and no endpoint made of overflow."""
    _admitted_then_overflowed(limited)
    snapshot = limited.exporter.snapshot()
    assert snapshot.endpoints["rsvp"].windows["1m"].count == 1
    assert snapshot.endpoints["payments"].windows == {}  # critical: listed, but no data
    assert "other" not in snapshot.endpoints
    limited.export()  # the gauges build as usual


def test_a_fleet_exporter_does_not_file_overflow_points_under_an_endpoint(
    limited: Limited, clock: FakeClock
) -> None:
    """Fed an instance's export, a collector-side exporter ignores its overflow points."""
    _admitted_then_overflowed(limited)
    fleet = PerformanceMetricExporter(CapturingExporter(), clock=clock)
    fleet.export(limited.export())
    snapshot = fleet.snapshot()
    assert "other" not in snapshot.endpoints
    stats = snapshot.endpoints["rsvp"].windows["1h"]
    assert (stats.count, stats.apdex, stats.cache_hit_rate) == (1, 1.0, 1.0)


def test_cumulative_overflow_keeps_growing(limited: Limited) -> None:
    """A cumulative overflow point carries every overflowed request since the start."""
    _admitted_then_overflowed(limited)
    limited.export()
    limited.request("/api/rsvp", 40.0)  # the limit starts afresh: rsvp takes the series again
    limited.request("/api/payments/{payment_id}", 10.0)
    data = limited.export()
    assert overflow_point(data, names.SERVER_DURATION).count == 4
    metric_types = {
        type(metric.data): metric.data.aggregation_temporality
        for rm in data.resource_metrics
        for sm in rm.scope_metrics
        for metric in sm.metrics
        if metric.name in RECORDED_METRICS and isinstance(metric.data, Sum | ExponentialHistogram)
    }
    assert set(metric_types.values()) == {AggregationTemporality.CUMULATIVE}


def test_delta_overflow_counts_one_interval(
    make_pipeline: Callable[..., Pipeline], clock: FakeClock
) -> None:
    """A delta overflow point has only the interval's overflowed requests, and none after."""
    limited = Limited(make_pipeline(), clock, delta=True)
    _admitted_then_overflowed(limited)
    assert overflow_point(limited.export(), names.SERVER_DURATION).count == 3
    clock.now = TUESDAY + dt.timedelta(seconds=10)
    limited.request("/api/payments/{payment_id}", 10.0)  # now the only series: admitted
    data = limited.export()
    assert [dict(p.attributes) for p in points(data, names.SERVER_DURATION)] == [
        {
            "wedding.endpoint": "payments",
            "wedding.critical": True,
            "wedding.proximity": "unknown",
            names.STATUS_CLASS: "2xx",
        }
    ]


def test_prometheus_sees_the_overflow_series_with_one_label(limited: Limited) -> None:
    """The bridge renders the overflow point with the single label otel_metric_overflow="true"."""
    _admitted_then_overflowed(limited)
    families = _families(encode_metrics(limited.export()))
    for family in (
        "wedding_server_duration_milliseconds",
        "wedding_db_duration_milliseconds",
        "wedding_apdex_requests_total",
        "wedding_cache_requests_total",
        "wedding_threshold_breaches_total",
    ):
        label_sets = []
        for metric in families[family]:
            labels = {}
            for number, value in _fields(metric):
                if number == 1:
                    assert isinstance(value, bytes)
                    pair = dict(_fields(value))
                    labels[pair[1].decode()] = pair[2].decode()  # type: ignore[union-attr]
            label_sets.append(labels)
        assert {"otel_metric_overflow": "true"} in label_sets, family
