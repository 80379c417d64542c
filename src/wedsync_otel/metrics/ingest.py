"""Feed ``wedding.*`` series from any source into the sliding windows.

The SDK's own instruments, another process's exporter, many instances
behind a collector: their points arrive delta or cumulative. Delta points
are taken as they are; cumulative ones go through a `DeltaTracker` keyed by
resource, metric and attributes, which also spots counter resets and
restarted readers.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from opentelemetry.sdk.metrics.export import (
    AggregationTemporality,
    ExponentialHistogram,
    Metric,
    MetricsData,
    Sum,
)

from wedsync_otel import attributes as attr
from wedsync_otel.metrics import names
from wedsync_otel.metrics.buckets import ExponentialBuckets
from wedsync_otel.metrics.windows import DeltaTracker, StatsKey, WindowStore


def _stats_key(point_attrs: Mapping[str, Any]) -> StatsKey:
    return (
        str(point_attrs.get(attr.WEDDING_ENDPOINT, "other")),
        str(point_attrs.get(attr.WEDDING_PROXIMITY, "unknown")),
    )


class Ingester:
    """Reads wedding series out of `MetricsData` into a `WindowStore`."""

    def __init__(self, store: WindowStore) -> None:
        self._store = store
        self._tracker = DeltaTracker()
        self.rejected_points = 0
        """Histogram points that could not be read (negative counts, bad scale)."""

    def ingest(self, metrics_data: MetricsData, now_ns: int) -> None:
        """Add every wedding duration, Apdex, cache and DB point of ``metrics_data``."""
        for resource_metrics in metrics_data.resource_metrics:
            source = tuple(sorted((resource_metrics.resource.attributes or {}).items()))
            for scope_metrics in resource_metrics.scope_metrics:
                for metric in scope_metrics.metrics:
                    if metric.name == names.SERVER_DURATION:
                        self._durations(source, metric, now_ns)
                    elif metric.name in (names.APDEX_REQUESTS, names.CACHE_REQUESTS):
                        self._counter(source, metric, now_ns)
                    elif metric.name == names.DB_DURATION:
                        self._db(source, metric, now_ns)

    @staticmethod
    def _points(
        source: tuple[Any, ...], metric: Metric, kind: type[Sum] | type[ExponentialHistogram]
    ) -> Iterator[tuple[Any, dict[str, Any], tuple[Any, ...] | None]]:
        """(point, its attributes, its series key when cumulative) of a metric of ``kind``."""
        data = metric.data
        if not isinstance(data, kind):
            return
        cumulative = data.aggregation_temporality is AggregationTemporality.CUMULATIVE
        for point in data.data_points:
            point_attrs = dict(point.attributes or {})
            series = (
                (source, metric.name, tuple(sorted(point_attrs.items()))) if cumulative else None
            )
            yield point, point_attrs, series

    def _increase(self, series: tuple[Any, ...] | None, start_ns: int, value: float) -> float:
        return value if series is None else self._tracker.counter_delta(series, start_ns, value)

    def _durations(self, source: tuple[Any, ...], metric: Metric, now_ns: int) -> None:
        for point, point_attrs, series in self._points(source, metric, ExponentialHistogram):
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
                self.rejected_points += 1
                continue
            if series is not None:
                buckets = self._tracker.histogram_delta(series, point.start_time_unix_nano, buckets)
            if buckets.count:
                error = point_attrs.get(names.STATUS_CLASS) == "5xx"
                time_ns = point.time_unix_nano or now_ns
                self._store.add_durations(time_ns, _stats_key(point_attrs), buckets, error=error)

    def _counter(self, source: tuple[Any, ...], metric: Metric, now_ns: int) -> None:
        for point, point_attrs, series in self._points(source, metric, Sum):
            count = int(self._increase(series, point.start_time_unix_nano, float(point.value)))
            if count <= 0:
                continue
            time_ns = point.time_unix_nano or now_ns
            key = _stats_key(point_attrs)
            if metric.name == names.APDEX_REQUESTS:
                apdex = str(point_attrs.get(attr.WEDDING_APDEX, "frustrated"))
                self._store.add_apdex(time_ns, *key, apdex, count)
            elif point_attrs.get(names.CACHE_RESULT) == "hit":
                self._store.add_cache(time_ns, key, hits=count, misses=0)
            else:
                self._store.add_cache(time_ns, key, hits=0, misses=count)

    def _db(self, source: tuple[Any, ...], metric: Metric, now_ns: int) -> None:
        """Database time per request: the histogram's sum and count (the requests measured)."""
        for point, point_attrs, series in self._points(source, metric, ExponentialHistogram):
            start_ns, time_ns = point.start_time_unix_nano, point.time_unix_nano or now_ns
            total = self._increase(series, start_ns, float(point.sum))
            counted = self._increase(
                None if series is None else (*series, "count"), start_ns, float(point.count)
            )
            key = _stats_key(point_attrs)
            if total > 0:
                self._store.add_db_ms(time_ns, key, total)
            if counted > 0:
                self._store.add_db_requests(time_ns, key, int(counted))
