"""PerformanceMetricExporter: forwards metrics unchanged and adds the derived gauges.

It wraps any `MetricExporter` (OTLP, console, Prometheus bridge, in-memory).
On each export it (1) drains the `WeddingRecorder` into standard
exponential-histogram and sum metrics, (2) feeds every ``wedding.*``
duration and Apdex series it sees, its own or another source's, delta or
cumulative, into sliding windows, (3) adds the percentile, Apdex, health,
trend and readiness gauges, and (4) hands the lot to the wrapped exporter.

The recorder's histogram points carry the exemplars of the interval since the
previous export, in either temporality. Overflow points (``otel.metric.overflow``,
requests past the series limit) have no endpoint: they are exported, but no
window reads them, neither the recorder's nor another source's.
"""

from __future__ import annotations

import dataclasses
import threading
import time
from typing import Any, Final

from opentelemetry.sdk.metrics import Counter, Histogram
from opentelemetry.sdk.metrics.export import (
    AggregationTemporality,
    ExponentialHistogram,
    Metric,
    MetricExporter,
    MetricExportResult,
    MetricsData,
    ResourceMetrics,
    ScopeMetrics,
    Sum,
)
from opentelemetry.sdk.resources import Resource

from wedsync_otel._safety import log_internal_error
from wedsync_otel._sdk import exporter_preferences
from wedsync_otel.calendar import Clock
from wedsync_otel.config import WeddingConfig
from wedsync_otel.metrics import names
from wedsync_otel.metrics.emit import (
    OVERFLOW_ATTRIBUTE,
    SCOPE,
    gauges,
    recorded_metrics,
    with_own_scope,
)
from wedsync_otel.metrics.ingest import Ingester
from wedsync_otel.metrics.performance import PerformanceModel
from wedsync_otel.metrics.recording import Deltas, WeddingRecorder
from wedsync_otel.metrics.snapshot import PerformanceSnapshot
from wedsync_otel.metrics.windows import WindowStore

_WINDOWED: Final = frozenset(
    {names.SERVER_DURATION, names.APDEX_REQUESTS, names.CACHE_REQUESTS, names.DB_DURATION}
)
"""The metrics the windows read from incoming data."""

__all__ = ["SCOPE", "PerformanceMetricExporter", "gauges"]


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
        temporality, aggregation = exporter_preferences(inner)
        super().__init__(preferred_temporality=temporality, preferred_aggregation=aggregation)
        self._inner = inner
        self._clock = clock
        self._recorder = recorder
        self._resource = resource
        self._model = PerformanceModel(config or WeddingConfig.default())
        self._store = WindowStore()
        self._ingester = Ingester(self._store)
        self._lock = threading.Lock()
        self._start_ns = self._now_ns()
        self._cumulative = Deltas()
        self._since_export = Deltas()
        self._shutdown = False

    @property
    def rejected_points(self) -> int:
        """Incoming histogram points that could not be read (negative counts, bad scale)."""
        return self._ingester.rejected_points

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
            # Before our own series are added; overflow points name no endpoint to file under.
            self._ingester.ingest(without_overflow(metrics_data), now_ns)
            snapshot = self._model.snapshot(self._store, now_ns)
            own = self._recorded_metrics(now_ns)
            self._since_export = Deltas()
        own.extend(gauges(snapshot, now_ns))
        return with_own_scope(metrics_data, own, self._resource)

    def _drain_recorder(self, now_ns: int) -> None:
        if self._recorder is None:
            return
        deltas = self._recorder.collect()
        if deltas.empty():
            return
        self._cumulative.merge(deltas, exemplars=False)  # exemplars are per interval
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
            self._store.add_db_requests(now_ns, key, buckets.count)

    def _recorded_metrics(self, now_ns: int) -> list[Metric]:
        """The recorder's series, in the inner exporter's temporality."""
        preferred = self._preferred_temporality or {}
        delta_histograms = preferred.get(Histogram) is AggregationTemporality.DELTA
        delta_counters = preferred.get(Counter) is AggregationTemporality.DELTA
        return recorded_metrics(
            self._since_export if delta_histograms else self._cumulative,
            self._since_export if delta_counters else self._cumulative,
            exemplars=self._since_export,
            delta_histograms=delta_histograms,
            delta_counters=delta_counters,
            start_ns=self._start_ns,
            now_ns=now_ns,
        )

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


def _overflowed(point: Any) -> bool:
    return (point.attributes or {}).get(OVERFLOW_ATTRIBUTE) is True


def without_overflow(metrics_data: MetricsData) -> MetricsData:
    """``metrics_data`` without the overflow points of the metrics the windows read.

    Such a point has only ``otel.metric.overflow``: read as an endpoint's, it would
    count under ``other`` (and its Apdex requests as frustrated, its cache reads as
    misses). The same object comes back when there is none, the usual case.
    """
    if not any(
        _overflowed(point)
        for resource_metrics in metrics_data.resource_metrics
        for scope_metrics in resource_metrics.scope_metrics
        for metric in scope_metrics.metrics
        if metric.name in _WINDOWED
        for point in getattr(metric.data, "data_points", ())
    ):
        return metrics_data
    return MetricsData(
        resource_metrics=[
            ResourceMetrics(
                resource=resource_metrics.resource,
                scope_metrics=[
                    ScopeMetrics(
                        scope=scope_metrics.scope,
                        metrics=[_kept(metric) for metric in scope_metrics.metrics],
                        schema_url=scope_metrics.schema_url,
                    )
                    for scope_metrics in resource_metrics.scope_metrics
                ],
                schema_url=resource_metrics.schema_url,
            )
            for resource_metrics in metrics_data.resource_metrics
        ]
    )


def _kept(metric: Metric) -> Metric:
    data = metric.data
    if metric.name not in _WINDOWED:
        return metric
    kept: Sum | ExponentialHistogram
    if isinstance(data, Sum):
        kept = Sum(
            data_points=[point for point in data.data_points if not _overflowed(point)],
            aggregation_temporality=data.aggregation_temporality,
            is_monotonic=data.is_monotonic,
        )
    elif isinstance(data, ExponentialHistogram):
        kept = ExponentialHistogram(
            data_points=[point for point in data.data_points if not _overflowed(point)],
            aggregation_temporality=data.aggregation_temporality,
        )
    else:
        return metric
    return dataclasses.replace(metric, data=kept)
