"""PerformanceMetricExporter: forwards metrics unchanged and adds the derived gauges.

It wraps any `MetricExporter` (OTLP, console, Prometheus bridge, in-memory).
On each export it (1) drains the `WeddingRecorder` into standard
exponential-histogram and sum metrics, (2) feeds every ``wedding.*``
duration and Apdex series it sees, its own or another source's, delta or
cumulative, into sliding windows, (3) adds the percentile, Apdex, health,
trend and readiness gauges, and (4) hands the lot to the wrapped exporter.
"""

from __future__ import annotations

import datetime as dt
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, Final

from opentelemetry.sdk.metrics import Counter, Histogram
from opentelemetry.sdk.metrics.export import (
    AggregationTemporality,
    Buckets,
    ExponentialHistogram,
    ExponentialHistogramDataPoint,
    Gauge,
    Metric,
    MetricExporter,
    MetricExportResult,
    MetricsData,
    NumberDataPoint,
    ResourceMetrics,
    ScopeMetrics,
    Sum,
)
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.util.instrumentation import InstrumentationScope

from wedsync_otel import attributes as attr
from wedsync_otel._safety import log_internal_error
from wedsync_otel.config import WeddingConfig
from wedsync_otel.metrics import names
from wedsync_otel.metrics.buckets import ExponentialBuckets
from wedsync_otel.metrics.performance import PerformanceModel
from wedsync_otel.metrics.recording import Deltas, WeddingRecorder
from wedsync_otel.metrics.scoring import Readiness, Trend
from wedsync_otel.metrics.snapshot import PerformanceSnapshot, WindowStats
from wedsync_otel.metrics.windows import DeltaTracker, WindowStore

Clock = Callable[[], dt.datetime]

SCOPE: Final = InstrumentationScope("wedsync_otel", "0.1.0")
"""Scope of every metric this package emits."""

_COUNTER_INGESTERS: Final = frozenset({names.APDEX_REQUESTS, names.CACHE_REQUESTS})

_QUANTILE_GAUGES: Final = (
    (names.LATENCY_P50, "p50_ms"),
    (names.LATENCY_P90, "p90_ms"),
    (names.LATENCY_P95, "p95_ms"),
    (names.LATENCY_P99, "p99_ms"),
)


class PerformanceMetricExporter(MetricExporter):
    """Wraps ``inner``; adds wedding performance gauges to everything it forwards."""

    def __init__(
        self,
        inner: MetricExporter,
        *,
        clock: Clock | None = None,
        config: WeddingConfig | None = None,
        recorder: WeddingRecorder | None = None,
        resource: Resource | None = None,
    ) -> None:
        # Mirror the wrapped exporter's preferences: the reader asks us, not it.
        super().__init__(
            preferred_temporality=dict(inner._preferred_temporality or {}),  # noqa: SLF001
            preferred_aggregation=dict(inner._preferred_aggregation or {}),  # noqa: SLF001
        )
        self._inner = inner
        self._clock = clock
        self._recorder = recorder
        self._resource = resource
        self._model = PerformanceModel(config or WeddingConfig.default())
        self._store = WindowStore()
        self._tracker = DeltaTracker()
        self._lock = threading.Lock()
        self._start_ns = self._now_ns()
        self._cumulative = Deltas()
        self._since_export = Deltas()
        self._shutdown = False
        self.rejected_points = 0
        """Incoming histogram points that could not be read (negative counts, bad scale)."""

    @property
    def inner(self) -> MetricExporter:
        """The wrapped exporter."""
        return self._inner

    def _now_ns(self) -> int:
        if self._clock is None:
            return time.time_ns()
        return int(self._clock().timestamp() * 1_000_000_000)

    def snapshot(self) -> PerformanceSnapshot:
        """The figures from everything recorded so far, without waiting for an export."""
        now_ns = self._now_ns()
        with self._lock:
            self._drain_recorder(now_ns)
            return self._model.snapshot(self._store, now_ns)

    def export(
        self,
        metrics_data: MetricsData,
        timeout_millis: float = 10_000,
        **kwargs: Any,  # the SDK's MetricExporter signature
    ) -> MetricExportResult:
        """Forward ``metrics_data`` with the recorder's series and the derived gauges added."""
        try:
            metrics_data = self._augment(metrics_data)
        except Exception as exc:  # noqa: BLE001 - forward the original data instead
            log_internal_error("PerformanceMetricExporter.export", exc)
        return self._inner.export(metrics_data, timeout_millis=timeout_millis, **kwargs)

    def _augment(self, metrics_data: MetricsData) -> MetricsData:
        now_ns = self._now_ns()
        with self._lock:
            self._drain_recorder(now_ns)
            self._ingest(metrics_data, now_ns)
            snapshot = self._model.snapshot(self._store, now_ns)
            own = self._recorded_metrics(now_ns)
            self._since_export = Deltas()
        own.extend(gauges(snapshot, now_ns))
        return _with_own_scope(metrics_data, own, self._resource)

    def _drain_recorder(self, now_ns: int) -> None:
        if self._recorder is None:
            return
        deltas = self._recorder.collect()
        if deltas.empty():
            return
        self._cumulative.merge(deltas)
        self._since_export.merge(deltas)
        for (endpoint, _critical, band, status), buckets in deltas.durations.items():
            self._store.add_durations(now_ns, (endpoint, band), buckets, error=status == "5xx")
        for (endpoint, band, apdex), count in deltas.apdex.items():
            self._store.add_apdex(now_ns, endpoint, band, apdex, count)
        for (endpoint, band, result), count in deltas.cache.items():
            hit = result == "hit"
            self._store.add_cache(
                now_ns, (endpoint, band), hits=count * hit, misses=count * (not hit)
            )
        for key, buckets in deltas.db.items():
            self._store.add_db_ms(now_ns, key, buckets.sum)

    def _ingest(self, metrics_data: MetricsData, now_ns: int) -> None:
        """Feed ``wedding.*`` series from other sources (SDK instruments, other instances).

        Runs on the data as received, before this exporter adds its own
        series, so nothing is counted twice.
        """
        for resource_metrics in metrics_data.resource_metrics:
            source = tuple(sorted((resource_metrics.resource.attributes or {}).items()))
            for scope_metrics in resource_metrics.scope_metrics:
                for metric in scope_metrics.metrics:
                    if metric.name == names.SERVER_DURATION:
                        self._ingest_durations(source, metric, now_ns)
                    elif metric.name in _COUNTER_INGESTERS:
                        self._ingest_counter(source, metric, now_ns)
                    elif metric.name == names.DB_DURATION:
                        self._ingest_db(source, metric, now_ns)

    def _ingest_durations(self, source: tuple[Any, ...], metric: Metric, now_ns: int) -> None:
        data = metric.data
        if not isinstance(data, ExponentialHistogram):
            return
        cumulative = data.aggregation_temporality is AggregationTemporality.CUMULATIVE
        for point in data.data_points:
            point_attrs = dict(point.attributes or {})
            try:
                buckets = ExponentialBuckets.from_counts(
                    scale=point.scale,
                    offset=point.positive.offset,
                    counts=point.positive.bucket_counts,
                    zero_count=point.zero_count,
                    total_sum=point.sum,
                    minimum=point.min,
                    maximum=point.max,
                )
            except ValueError:
                self.rejected_points += 1  # negative counts or an impossible scale
                continue
            if cumulative:
                series = (source, metric.name, tuple(sorted(point_attrs.items())))
                buckets = self._tracker.histogram_delta(series, point.start_time_unix_nano, buckets)
            if buckets.count == 0:
                continue
            key = (
                str(point_attrs.get(attr.WEDDING_ENDPOINT, "other")),
                str(point_attrs.get(attr.WEDDING_PROXIMITY, "unknown")),
            )
            error = point_attrs.get(names.STATUS_CLASS) == "5xx"
            self._store.add_durations(point.time_unix_nano or now_ns, key, buckets, error=error)

    def _ingest_counter(self, source: tuple[Any, ...], metric: Metric, now_ns: int) -> None:
        """Apdex-class and cache-result counters, delta or cumulative."""
        data = metric.data
        if not isinstance(data, Sum):
            return
        cumulative = data.aggregation_temporality is AggregationTemporality.CUMULATIVE
        for point in data.data_points:
            point_attrs = dict(point.attributes or {})
            count = float(point.value)
            if cumulative:
                series = (source, metric.name, tuple(sorted(point_attrs.items())))
                count = self._tracker.counter_delta(series, point.start_time_unix_nano, count)
            if not count > 0:
                continue
            time_ns = point.time_unix_nano or now_ns
            endpoint = str(point_attrs.get(attr.WEDDING_ENDPOINT, "other"))
            band = str(point_attrs.get(attr.WEDDING_PROXIMITY, "unknown"))
            if metric.name == names.APDEX_REQUESTS:
                apdex = str(point_attrs.get(attr.WEDDING_APDEX, "frustrated"))
                self._store.add_apdex(time_ns, endpoint, band, apdex, int(count))
            else:
                hit = point_attrs.get(names.CACHE_RESULT) == "hit"
                hits, misses = (int(count), 0) if hit else (0, int(count))
                self._store.add_cache(time_ns, (endpoint, band), hits=hits, misses=misses)

    def _ingest_db(self, source: tuple[Any, ...], metric: Metric, now_ns: int) -> None:
        """Database time per request: only the histogram's sum is needed."""
        data = metric.data
        if not isinstance(data, ExponentialHistogram):
            return
        cumulative = data.aggregation_temporality is AggregationTemporality.CUMULATIVE
        for point in data.data_points:
            point_attrs = dict(point.attributes or {})
            total = float(point.sum)
            if cumulative:
                series = (source, metric.name, tuple(sorted(point_attrs.items())))
                total = self._tracker.counter_delta(series, point.start_time_unix_nano, total)
            if not total > 0:
                continue
            key = (
                str(point_attrs.get(attr.WEDDING_ENDPOINT, "other")),
                str(point_attrs.get(attr.WEDDING_PROXIMITY, "unknown")),
            )
            self._store.add_db_ms(point.time_unix_nano or now_ns, key, total)

    def _recorded_metrics(self, now_ns: int) -> list[Metric]:
        """The recorder's series as standard metrics, in the inner exporter's temporality."""
        preferred = self._preferred_temporality or {}
        delta_histograms = preferred.get(Histogram) is AggregationTemporality.DELTA
        delta_counters = preferred.get(Counter) is AggregationTemporality.DELTA
        histograms = self._since_export if delta_histograms else self._cumulative
        counters = self._since_export if delta_counters else self._cumulative
        start_ns = self._start_ns
        metrics: list[Metric] = []
        if histograms.durations:
            metrics.append(
                Metric(
                    name=names.SERVER_DURATION,
                    description="Server request duration, judged against wedding-aware thresholds",
                    unit="ms",
                    data=ExponentialHistogram(
                        data_points=[
                            _histogram_point(key, buckets, start_ns, now_ns)
                            for key, buckets in histograms.durations.items()
                        ],
                        aggregation_temporality=_temporality(delta_histograms),
                    ),
                )
            )
        if counters.apdex:
            metrics.append(
                _sum(
                    names.APDEX_REQUESTS,
                    "Requests by Apdex class",
                    [
                        (
                            {
                                attr.WEDDING_ENDPOINT: e,
                                attr.WEDDING_PROXIMITY: b,
                                attr.WEDDING_APDEX: a,
                            },
                            n,
                        )
                        for (e, b, a), n in counters.apdex.items()
                    ],
                    start_ns,
                    now_ns,
                    delta=delta_counters,
                )
            )
        if histograms.db:
            metrics.append(
                Metric(
                    name=names.DB_DURATION,
                    description="Database time per request",
                    unit="ms",
                    data=ExponentialHistogram(
                        data_points=[
                            _exp_point(
                                {attr.WEDDING_ENDPOINT: e, attr.WEDDING_PROXIMITY: b},
                                buckets,
                                start_ns,
                                now_ns,
                            )
                            for (e, b), buckets in histograms.db.items()
                        ],
                        aggregation_temporality=_temporality(delta_histograms),
                    ),
                )
            )
        if counters.cache:
            metrics.append(
                _sum(
                    names.CACHE_REQUESTS,
                    "Cache reads by result",
                    [
                        (
                            {
                                attr.WEDDING_ENDPOINT: e,
                                attr.WEDDING_PROXIMITY: b,
                                names.CACHE_RESULT: r,
                            },
                            n,
                        )
                        for (e, b, r), n in counters.cache.items()
                    ],
                    start_ns,
                    now_ns,
                    delta=delta_counters,
                )
            )
        if counters.breaches:
            metrics.append(
                _sum(
                    names.THRESHOLD_BREACHES,
                    "Requests slower than their wedding-aware threshold",
                    [
                        (
                            {
                                attr.WEDDING_ENDPOINT: e,
                                attr.WEDDING_CRITICAL: c,
                                attr.WEDDING_PROXIMITY: b,
                            },
                            n,
                        )
                        for (e, c, b), n in counters.breaches.items()
                    ],
                    start_ns,
                    now_ns,
                    delta=delta_counters,
                )
            )
        return metrics

    def force_flush(self, timeout_millis: float = 10_000) -> bool:
        """Flush the wrapped exporter."""
        return self._inner.force_flush(timeout_millis=timeout_millis)

    def shutdown(
        self,
        timeout_millis: float = 30_000,
        **kwargs: Any,  # the SDK's MetricExporter signature
    ) -> None:
        """Shut the wrapped exporter down, once."""
        if self._shutdown:
            return
        self._shutdown = True
        self._inner.shutdown(timeout_millis=timeout_millis, **kwargs)


def _temporality(delta: bool) -> AggregationTemporality:
    return AggregationTemporality.DELTA if delta else AggregationTemporality.CUMULATIVE


def _histogram_point(
    key: tuple[str, bool, str, str], buckets: ExponentialBuckets, start_ns: int, now_ns: int
) -> ExponentialHistogramDataPoint:
    endpoint, critical, band, status = key
    point_attrs: dict[str, str | bool] = {
        attr.WEDDING_ENDPOINT: endpoint,
        attr.WEDDING_CRITICAL: critical,
        attr.WEDDING_PROXIMITY: band,
    }
    if status:
        point_attrs[names.STATUS_CLASS] = status
    return _exp_point(point_attrs, buckets, start_ns, now_ns)


def _exp_point(
    point_attrs: Mapping[str, str | bool],
    buckets: ExponentialBuckets,
    start_ns: int,
    now_ns: int,
) -> ExponentialHistogramDataPoint:
    return ExponentialHistogramDataPoint(
        attributes=dict(point_attrs),
        start_time_unix_nano=start_ns,
        time_unix_nano=now_ns,
        count=buckets.count,
        sum=buckets.sum,
        scale=buckets.scale,
        zero_count=buckets.zero_count,
        positive=Buckets(offset=buckets.offset, bucket_counts=list(buckets.counts)),
        negative=Buckets(offset=0, bucket_counts=[]),
        flags=0,
        min=buckets.min,
        max=buckets.max,
    )


def _sum(
    name: str,
    description: str,
    points: Iterable[tuple[Mapping[str, str | bool], int]],
    start_ns: int,
    now_ns: int,
    *,
    delta: bool,
) -> Metric:
    return Metric(
        name=name,
        description=description,
        unit="{request}",
        data=Sum(
            data_points=[
                NumberDataPoint(
                    attributes=dict(point_attrs),
                    start_time_unix_nano=start_ns,
                    time_unix_nano=now_ns,
                    value=value,
                )
                for point_attrs, value in points
            ],
            aggregation_temporality=_temporality(delta),
            is_monotonic=True,
        ),
    )


def gauges(snapshot: PerformanceSnapshot, now_ns: int) -> list[Metric]:
    """The derived gauges of a snapshot, per endpoint, window and (where there is data) band."""
    points: dict[str, list[NumberDataPoint]] = {}

    def add(name: str, value: float, point_attrs: Mapping[str, str]) -> None:
        points.setdefault(name, []).append(
            NumberDataPoint(
                attributes=dict(point_attrs),
                start_time_unix_nano=now_ns,
                time_unix_nano=now_ns,
                value=value,
            )
        )

    def add_window(stats: WindowStats, point_attrs: Mapping[str, str]) -> None:
        for name, field_name in _QUANTILE_GAUGES:
            add(name, getattr(stats, field_name), point_attrs)
        add(names.HEALTH_SCORE, stats.health, point_attrs)
        if stats.apdex is not None:
            add(names.APDEX_SCORE, stats.apdex, point_attrs)
        if stats.cache_hit_rate is not None:
            add(names.CACHE_HIT_RATE, stats.cache_hit_rate, point_attrs)
        if stats.db_time_share is not None:
            add(names.DB_TIME_SHARE, stats.db_time_share, point_attrs)

    for endpoint in snapshot.endpoints.values():
        for window, stats in endpoint.windows.items():
            add_window(stats, {attr.WEDDING_ENDPOINT: endpoint.name, names.WINDOW: window})
        for band, windows in endpoint.bands.items():
            for window, stats in windows.items():
                add_window(
                    stats,
                    {
                        attr.WEDDING_ENDPOINT: endpoint.name,
                        attr.WEDDING_PROXIMITY: band,
                        names.WINDOW: window,
                    },
                )
        add(names.TREND, Trend(endpoint.trend).gauge, {attr.WEDDING_ENDPOINT: endpoint.name})
        if endpoint.critical:
            add(
                names.READINESS,
                Readiness(endpoint.readiness).gauge,
                {attr.WEDDING_ENDPOINT: endpoint.name},
            )
    add(names.READINESS, Readiness(snapshot.readiness).gauge, {})
    return [
        Metric(
            name=name,
            description=names.DESCRIPTIONS[name],
            unit=names.UNITS[name],
            data=Gauge(data_points=data),
        )
        for name, data in points.items()
    ]


def _with_own_scope(
    metrics_data: MetricsData, own: Sequence[Metric], resource: Resource | None
) -> MetricsData:
    """``metrics_data`` with ``own`` added under this package's scope, on the first resource."""
    if not own:
        return metrics_data
    scope_metrics = ScopeMetrics(scope=SCOPE, metrics=list(own), schema_url="")
    resources = list(metrics_data.resource_metrics)
    if resources:
        first = resources[0]
        resources[0] = ResourceMetrics(
            resource=first.resource,
            scope_metrics=[*first.scope_metrics, scope_metrics],
            schema_url=first.schema_url,
        )
    else:
        resources.append(
            ResourceMetrics(
                resource=resource or Resource.create(), scope_metrics=[scope_metrics], schema_url=""
            )
        )
    return MetricsData(resource_metrics=resources)
