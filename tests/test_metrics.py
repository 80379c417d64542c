"""Metrics: recording, the PerformanceMetricExporter, windows, and fleet-wide merging."""

from __future__ import annotations

import datetime as dt
import math
import random
from collections.abc import Iterable, Sequence
from typing import Any

import pytest
from opentelemetry import trace
from opentelemetry.sdk.metrics.export import (
    AggregationTemporality,
    Buckets,
    ExponentialHistogram,
    ExponentialHistogramDataPoint,
    Gauge,
    Metric,
    MetricExportResult,
    MetricsData,
    ResourceMetrics,
    ScopeMetrics,
    Sum,
)
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.sdk.util.instrumentation import InstrumentationScope
from opentelemetry.trace import SpanKind

from helpers import CapturingExporter, FakeClock
from test_exemplars import Service  # a pipeline whose sampler drops requests on demand
from wedsync_otel import PerformanceMetricExporter, WeddingConfig, configure
from wedsync_otel.calendar import ApdexClass, Band
from wedsync_otel.metrics import WeddingRecorder, names
from wedsync_otel.rules import Verdict, WeddingRules

MS = 1_000_000
TUESDAY = dt.datetime(2026, 6, 16, 10, 0, tzinfo=dt.UTC)


class Instance:
    """One application instance: traces into the recorder, metrics through the exporter."""

    def __init__(self, clock: FakeClock, *, name: str = "i-1", delta: bool = False) -> None:
        self.clock = clock
        self.capture = CapturingExporter(delta=delta)
        self.telemetry = configure(
            span_exporter=InMemorySpanExporter(),
            metric_exporter=self.capture,
            metric_export_interval_millis=3_600_000,
            clock=clock,
            resource=Resource.create({"service.name": "wedsync-api", "service.instance.id": name}),
            set_global=False,
        )
        self.exporter = self.telemetry.metric_exporter
        self.tracer = self.telemetry.tracer_provider.get_tracer("t")
        # One instrument of the application's own, to show its data is forwarded unchanged.
        self.telemetry.meter_provider.get_meter("app").create_counter("app.orders").add(3)

    def serve(self, route: str, durations_ms: Iterable[float], *, status: int = 200) -> None:
        start = int(self.clock.now.timestamp()) * 1_000_000_000
        for duration in durations_ms:
            span = self.tracer.start_span(
                "request",
                kind=SpanKind.SERVER,
                attributes={"http.route": route, "http.response.status_code": status},
                start_time=start,
            )
            span.end(end_time=start + round(duration * MS))

    def export(self) -> MetricsData:
        exports = len(self.capture.exported)
        assert self.telemetry.force_flush()
        assert len(self.capture.exported) == exports + 1
        return self.capture.exported[-1]

    def close(self) -> None:
        self.telemetry.shutdown()


def metric(data: MetricsData, name: str) -> Any:
    found = [
        m
        for rm in data.resource_metrics
        for sm in rm.scope_metrics
        for m in sm.metrics
        if m.name == name
    ]
    assert len(found) == 1, name
    return found[0]


def gauge_value(data: MetricsData, name: str, **match: str) -> float:
    gauge = metric(data, name).data
    assert isinstance(gauge, Gauge)
    values = [p.value for p in gauge.data_points if dict(p.attributes or {}) == match]
    assert len(values) == 1, (name, match, [dict(p.attributes or {}) for p in gauge.data_points])
    return float(values[0])


def exact_quantile(samples: Sequence[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[round(q * (len(ordered) - 1))]


@pytest.fixture
def instance(clock: FakeClock) -> Iterable[Instance]:
    made = Instance(clock)
    yield made
    made.close()


def test_figures_match_hand_computed_values(instance: Instance) -> None:
    """Quantiles within 1%, and Apdex, error rate and health exactly as documented."""
    # rsvp: T = 200 ms. 60 satisfied (10..69 ms), 30 tolerating (300 ms), 10 frustrated (5xx).
    satisfied = [10.0 + n for n in range(60)]
    instance.serve("/api/rsvp", satisfied)
    instance.serve("/api/rsvp", [300.0] * 30)
    instance.serve("/api/rsvp", [50.0] * 10, status=503)
    samples = satisfied + [300.0] * 30 + [50.0] * 10
    stats = instance.exporter.snapshot().endpoints["rsvp"].windows["1m"]
    assert stats.count == 100
    assert stats.error_rate == pytest.approx(0.10)
    assert stats.apdex == pytest.approx((60 + 30 / 2) / 100)
    for q, value in (
        (0.5, stats.p50_ms),
        (0.9, stats.p90_ms),
        (0.95, stats.p95_ms),
        (0.99, stats.p99_ms),
    ):
        assert value == pytest.approx(exact_quantile(samples, q), rel=0.01)
    # p95 = 300 ms = 1.5 T: latency factor 1 - 0.5 / 3.
    assert stats.health == pytest.approx(100 * 0.75 * 0.9 * (1 - 0.5 / 3), rel=0.01)


def test_exported_data_is_forwarded_with_standard_histograms_sums_and_gauges(
    instance: Instance,
) -> None:
    """The app's own metric passes through; wedding series are exponential histograms and sums."""
    instance.serve("/api/payments/1", [20.0, 40.0, 700.0])
    data = instance.export()
    assert isinstance(metric(data, "app.orders").data, Sum)
    duration = metric(data, names.SERVER_DURATION)
    assert duration.unit == "ms"
    assert isinstance(duration.data, ExponentialHistogram)
    (point,) = duration.data.data_points
    assert dict(point.attributes or {}) == {
        "wedding.endpoint": "payments",
        "wedding.critical": True,
        "wedding.proximity": "unknown",
        "http.response.status_class": "2xx",
    }
    assert point.count == 3
    assert point.sum == pytest.approx(760.0)
    apdex = metric(data, names.APDEX_REQUESTS).data
    assert isinstance(apdex, Sum)
    assert apdex.is_monotonic
    assert {p.attributes["wedding.apdex"]: p.value for p in apdex.data_points} == {  # type: ignore[index]
        "satisfied": 2,
        "frustrated": 1,
    }
    breaches = metric(data, names.THRESHOLD_BREACHES).data
    assert [p.value for p in breaches.data_points] == [1]
    assert gauge_value(
        data, names.LATENCY_P50, **{"wedding.endpoint": "payments", "wedding.window": "1m"}
    ) == (pytest.approx(40.0, rel=0.01))
    assert gauge_value(data, names.READINESS) in {-1, 0, 1}


def test_cumulative_series_keep_growing_between_exports(instance: Instance) -> None:
    """With cumulative temporality each export carries everything since the start."""
    instance.serve("/api/rsvp", [10.0] * 5)
    instance.export()
    instance.serve("/api/rsvp", [10.0] * 7)
    (point,) = metric(instance.export(), names.SERVER_DURATION).data.data_points
    assert point.count == 12


def test_delta_temporality_is_honoured(clock: FakeClock) -> None:
    """An inner exporter preferring delta gets only what happened since the last export."""
    instance = Instance(clock, delta=True)
    instance.serve("/api/rsvp", [10.0] * 5)
    instance.export()
    instance.serve("/api/rsvp", [10.0] * 7)
    duration = metric(instance.export(), names.SERVER_DURATION).data
    assert duration.aggregation_temporality is AggregationTemporality.DELTA
    assert [p.count for p in duration.data_points] == [7]
    instance.close()


def test_windows_slide_and_empty_windows_have_no_figures(
    instance: Instance, clock: FakeClock
) -> None:
    """Two minutes after the last request the 1m window is absent and the 5m one is not."""
    instance.serve("/api/rsvp", [10.0] * 5)
    instance.exporter.snapshot()
    clock.now = TUESDAY + dt.timedelta(minutes=2)
    windows = instance.exporter.snapshot().endpoints["rsvp"].windows
    assert "1m" not in windows
    assert windows["5m"].count == 5
    data = instance.export()
    gauge = metric(data, names.LATENCY_P95).data
    assert {p.attributes["wedding.window"] for p in gauge.data_points} == {"5m", "1h"}  # type: ignore[index]


def test_an_hour_later_everything_is_gone(instance: Instance, clock: FakeClock) -> None:
    """Data older than the longest window yields no gauges at all (never a fake 0)."""
    instance.serve("/api/guest-lists", [10.0] * 5)
    instance.exporter.snapshot()
    clock.now = TUESDAY + dt.timedelta(hours=2)
    assert "guest_lists" not in instance.exporter.snapshot().endpoints


@pytest.mark.parametrize("duration", [math.nan, -5.0, math.inf, 1e15])
def test_unusable_durations_are_rejected_and_counted(duration: float) -> None:
    """NaN, negative, infinite and absurdly long durations are counted, never recorded."""
    rules = WeddingRules(WeddingConfig.default())
    judgement = rules.judge(rules.other, Band.UNKNOWN, rules.calendar.day_of(0))
    recorder = WeddingRecorder()
    recorder.record(Verdict(judgement, None, duration, ApdexClass.FRUSTRATED, False, 200))
    assert recorder.rejected_durations == 1
    assert recorder.collect().empty()


def test_fleet_percentiles_come_from_merged_buckets(clock: FakeClock) -> None:
    """Merged buckets of three instances give the fleet p95 within 1%; averaging p95s does not."""
    rng = random.Random(7)
    profiles = {
        "fast": [rng.lognormvariate(math.log(20), 0.3) for _ in range(6000)],
        "normal": [rng.lognormvariate(math.log(60), 0.4) for _ in range(3000)],
        "slow": [rng.lognormvariate(math.log(250), 0.5) for _ in range(300)],
    }
    fleet = PerformanceMetricExporter(CapturingExporter(), clock=clock)
    per_instance_p95 = []
    all_samples: list[float] = []
    for name, samples in profiles.items():
        instance = Instance(clock, name=name)
        instance.serve("/api/payments/x", samples)
        per_instance_p95.append(
            instance.exporter.snapshot().endpoints["payments"].windows["1h"].p95_ms
        )
        fleet.export(instance.export())
        instance.close()
        all_samples.extend(samples)
    exact = exact_quantile(all_samples, 0.95)
    fleet_stats = fleet.snapshot().endpoints["payments"].windows["1h"]
    assert fleet_stats.count == len(all_samples)
    assert fleet_stats.p95_ms == pytest.approx(exact, rel=0.01)
    averaged = sum(per_instance_p95) / len(per_instance_p95)
    assert abs(averaged - exact) / exact > 0.5  # the slow instance drags the average far off
    threshold = 150.0
    satisfied = sum(1 for s in all_samples if s <= threshold)
    tolerating = sum(1 for s in all_samples if threshold < s <= 4 * threshold)
    assert fleet_stats.apdex == pytest.approx(
        (satisfied + tolerating / 2) / len(all_samples), abs=1e-12
    )


def test_cumulative_input_is_turned_into_deltas_across_resets(clock: FakeClock) -> None:
    """Repeated cumulative points count once; a restarted instance counts afresh."""
    fleet = PerformanceMetricExporter(CapturingExporter(), clock=clock)
    instance = Instance(clock, name="a")
    instance.serve("/api/rsvp", [10.0] * 100)
    fleet.export(instance.export())
    instance.serve("/api/rsvp", [10.0] * 50)
    fleet.export(instance.export())
    fleet.export(instance.export())  # nothing new: adds nothing
    instance.close()
    clock.now = TUESDAY + dt.timedelta(seconds=30)
    restarted = Instance(clock, name="a")  # same resource, new start time, counts from zero
    restarted.serve("/api/rsvp", [10.0] * 30)
    fleet.export(restarted.export())
    restarted.close()
    assert fleet.snapshot().endpoints["rsvp"].windows["1h"].count == 180


def test_delta_input_windows_equal_cumulative_input_windows(clock: FakeClock) -> None:
    """The same traffic exported as deltas or cumulatively gives the same window figures."""
    results = []
    for delta in (False, True):
        fleet = PerformanceMetricExporter(CapturingExporter(), clock=clock)
        instance = Instance(clock, name="a", delta=delta)
        for batch in range(3):
            instance.serve("/api/rsvp", [10.0 + batch * 20] * 40)
            fleet.export(instance.export())
        instance.close()
        stats = fleet.snapshot().endpoints["rsvp"].windows["1h"]
        results.append((stats.count, round(stats.p95_ms, 6), stats.apdex))
    assert results[0] == results[1]
    assert results[0][0] == 120


def test_trend_degrades_when_the_last_minutes_are_much_slower(
    instance: Instance, clock: FakeClock
) -> None:
    """p95 doubling in the last five minutes against the hour before reads as degrading."""
    for minute in range(30):
        clock.now = TUESDAY + dt.timedelta(minutes=minute)
        instance.serve("/api/rsvp", [50.0] * 20)
        instance.exporter.snapshot()
    clock.now = TUESDAY + dt.timedelta(minutes=33)
    instance.serve("/api/rsvp", [120.0] * 100)
    snapshot = instance.exporter.snapshot()
    assert snapshot.endpoints["rsvp"].trend == "degrading"


def test_trend_is_stable_under_jitter(instance: Instance, clock: FakeClock) -> None:
    """Ordinary jitter in latency reads as stable."""
    rng = random.Random(3)
    for minute in range(40):
        clock.now = TUESDAY + dt.timedelta(minutes=minute)
        instance.serve("/api/rsvp", [rng.uniform(40, 60) for _ in range(30)])
        instance.exporter.snapshot()
    assert instance.exporter.snapshot().endpoints["rsvp"].trend == "stable"


def test_readiness_needs_every_critical_endpoint_fast_and_error_free(instance: Instance) -> None:
    """Fast critical endpoints are ready; one slow critical endpoint makes the API not ready."""
    for route in (
        "/api/venues/availability",
        "/api/couples/timeline",
        "/api/payments/x",
        "/api/rsvp",
    ):
        instance.serve(route, [20.0] * 200)
    assert instance.exporter.snapshot().readiness == "ready"
    instance.serve("/api/payments/x", [400.0] * 50)
    snapshot = instance.exporter.snapshot()
    assert snapshot.readiness == "not_ready"
    assert snapshot.endpoints["payments"].readiness == "not_ready"
    assert any(reason.startswith("payments: p95") for reason in snapshot.reasons)


def test_readiness_is_at_risk_without_enough_requests(instance: Instance) -> None:
    """With no traffic on critical endpoints there is not enough to judge: at risk, with reasons."""
    snapshot = instance.exporter.snapshot()
    assert snapshot.readiness == "at_risk"
    assert {reason.split(":")[0] for reason in snapshot.reasons} == {
        "venue_availability",
        "couple_timeline",
        "payments",
        "rsvp",
    }


def _request_with_cache_and_db(
    instance: Instance, *, hits: int, misses: int, db_ms: float, total_ms: float
) -> None:
    start = int(instance.clock.now.timestamp()) * 1_000_000_000
    root = instance.tracer.start_span(
        "request", kind=SpanKind.SERVER, attributes={"http.route": "/api/rsvp"}, start_time=start
    )
    with trace.use_span(root, end_on_exit=False):
        for hit in [True] * hits + [False] * misses:
            instance.tracer.start_span(
                "GET",
                kind=SpanKind.CLIENT,
                attributes={"cache.backend": "redis", "cache.hit": hit},
                start_time=start,
            ).end(end_time=start)
        query = instance.tracer.start_span(
            "SELECT",
            kind=SpanKind.CLIENT,
            attributes={"db.system": "sqlite", "db.statement": "SELECT 1"},
            start_time=start,
        )
        query.end(end_time=start + round(db_ms * MS))
    root.end(end_time=start + round(total_ms * MS))


def test_cache_hit_rate_and_db_time_share_per_endpoint(instance: Instance) -> None:
    """Roll-ups feed the cache and DB series; the snapshot shows hit rate and DB share."""
    for _ in range(10):
        _request_with_cache_and_db(instance, hits=2, misses=1, db_ms=30.0, total_ms=120.0)
    stats = instance.exporter.snapshot().endpoints["rsvp"].windows["1m"]
    assert stats.cache_hit_rate == pytest.approx(2 / 3)
    assert stats.db_time_share == pytest.approx(0.25, rel=0.01)
    data = instance.export()
    cache = metric(data, names.CACHE_REQUESTS).data
    assert {p.attributes["cache.result"]: p.value for p in cache.data_points} == {
        "hit": 20,
        "miss": 10,
    }  # type: ignore[index]
    db = metric(data, names.DB_DURATION).data
    assert isinstance(db, ExponentialHistogram)
    assert [(p.count, round(p.sum, 6)) for p in db.data_points] == [(10, 300.0)]
    assert gauge_value(
        data, names.CACHE_HIT_RATE, **{"wedding.endpoint": "rsvp", "wedding.window": "1m"}
    ) == pytest.approx(2 / 3)


def test_fleet_cache_and_db_figures_merge_from_counters(clock: FakeClock) -> None:
    """A fleet exporter fed two instances' data gets the combined hit rate and DB share."""
    fleet = PerformanceMetricExporter(CapturingExporter(), clock=clock)
    for name, hits, misses in (("a", 3, 1), ("b", 1, 3)):
        instance = Instance(clock, name=name)
        for _ in range(5):
            _request_with_cache_and_db(
                instance, hits=hits, misses=misses, db_ms=10.0, total_ms=100.0
            )
        fleet.export(instance.export())
        instance.close()
    stats = fleet.snapshot().endpoints["rsvp"].windows["1h"]
    assert stats.cache_hit_rate == pytest.approx(0.5)
    assert stats.db_time_share == pytest.approx(0.1, rel=0.01)


def test_garbage_histogram_points_are_rejected_and_counted(clock: FakeClock) -> None:
    """A point with negative bucket counts is counted, not ingested, and never raises."""
    point = ExponentialHistogramDataPoint(
        attributes={"wedding.endpoint": "rsvp"},
        start_time_unix_nano=0,
        time_unix_nano=int(TUESDAY.timestamp()) * 1_000_000_000,
        count=3,
        sum=30.0,
        scale=3,
        zero_count=0,
        positive=Buckets(offset=10, bucket_counts=[1, -5, 2]),
        negative=Buckets(offset=0, bucket_counts=[]),
        flags=0,
        min=1.0,
        max=20.0,
    )
    metric_ = Metric(
        name=names.SERVER_DURATION,
        description="",
        unit="ms",
        data=ExponentialHistogram(
            data_points=[point], aggregation_temporality=AggregationTemporality.DELTA
        ),
    )
    data = MetricsData(
        resource_metrics=[
            ResourceMetrics(
                resource=Resource.create({}),
                scope_metrics=[
                    ScopeMetrics(
                        scope=InstrumentationScope("other"), metrics=[metric_], schema_url=""
                    )
                ],
                schema_url="",
            )
        ]
    )
    capture = CapturingExporter()
    fleet = PerformanceMetricExporter(capture, clock=clock)
    assert fleet.export(data) is MetricExportResult.SUCCESS
    assert fleet.rejected_points == 1
    assert fleet.snapshot().endpoints["rsvp"].windows == {}  # critical: listed, but no data
    assert capture.exported[-1].resource_metrics[0].scope_metrics[0].metrics[0] is metric_


def test_unsampled_requests_count_in_the_figures_but_not_in_the_db_histogram(
    clock: FakeClock,
) -> None:
    """A request the sampler dropped counts in count and Apdex; the DB histogram counts sampled."""
    capture = CapturingExporter()
    service = Service(capture, clock=clock)
    try:
        service.request(500.0, db_ms=40.0, sampled=False)  # tolerating on payments (T = 150 ms)
        service.request(50.0, db_ms=10.0)
        stats = service.telemetry.snapshot().endpoints["payments"].windows["1m"]
        assert (stats.count, stats.apdex) == (2, pytest.approx((1 + 0.5) / 2))
        service.flush()
        (db,) = metric(capture.exported[-1], names.DB_DURATION).data.data_points
        (duration,) = metric(capture.exported[-1], names.SERVER_DURATION).data.data_points
        assert (db.count, duration.count) == (1, 2)  # the DB count is the sampled share
    finally:
        service.close()
