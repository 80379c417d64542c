"""Our series as standard OTel data: exponential histograms, sums and gauges.

The recorder's pre-aggregated deltas become `ExponentialHistogram` and
`Sum` metrics in the wrapped exporter's temporality; a `PerformanceSnapshot`
becomes the derived gauges. Everything goes under this package's scope.

Histogram points carry the interval's exemplars (the SDK's `Exemplar`: value,
time, trace and span id of sampled requests), whatever the temporality, as the
SDK's own reservoirs do. Requests past the recorder's series limit are one more
point per metric, with ``otel.metric.overflow = true`` as its only attribute.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final, Generic, TypeVar

from opentelemetry.sdk.metrics import Exemplar
from opentelemetry.sdk.metrics.export import (
    AggregationTemporality,
    Buckets,
    ExponentialHistogram,
    ExponentialHistogramDataPoint,
    Gauge,
    Metric,
    MetricsData,
    NumberDataPoint,
    ResourceMetrics,
    ScopeMetrics,
    Sum,
)
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.util.instrumentation import InstrumentationScope

from wedsync_otel import attributes as attr
from wedsync_otel.metrics import names
from wedsync_otel.metrics.buckets import ExponentialBuckets
from wedsync_otel.metrics.recording import (
    ApdexKey,
    BandKey,
    BreachKey,
    CacheKey,
    Deltas,
    DurationKey,
    Exemplars,
    Overflow,
)
from wedsync_otel.metrics.scoring import Readiness, Trend
from wedsync_otel.metrics.snapshot import PerformanceSnapshot, WindowStats

SCOPE: Final = InstrumentationScope("wedsync_otel", "0.1.0")
"""Scope of every metric this package emits."""

OVERFLOW_ATTRIBUTE: Final = "otel.metric.overflow"
"""The only attribute of the series that takes measurements past the series limit."""
_OVERFLOW_ATTRIBUTES: Final = {OVERFLOW_ATTRIBUTE: True}

_QUANTILE_GAUGES: Final = (
    (names.LATENCY_P50, "p50_ms"),
    (names.LATENCY_P90, "p90_ms"),
    (names.LATENCY_P95, "p95_ms"),
    (names.LATENCY_P99, "p99_ms"),
)


_Attributes = Mapping[str, str | bool]
_K = TypeVar("_K", bound=Hashable)


@dataclass(frozen=True)
class _Histogram(Generic[_K]):
    """One histogram of the recorder: its series, their exemplars, their overflow part."""

    name: str
    description: str
    attributes: Callable[[_K], _Attributes]
    series: Callable[[Deltas], Mapping[_K, ExponentialBuckets]]
    exemplars: Callable[[Deltas], Mapping[_K, Exemplars]]
    overflow: Callable[[Overflow], ExponentialBuckets]
    overflow_exemplars: Callable[[Overflow], Exemplars]


@dataclass(frozen=True)
class _Counter(Generic[_K]):
    """One monotonic sum of the recorder: its series and their overflow part."""

    name: str
    description: str
    attributes: Callable[[_K], _Attributes]
    series: Callable[[Deltas], Mapping[_K, int]]
    overflow: Callable[[Overflow], int]


def _duration_attributes(key: DurationKey) -> dict[str, str | bool]:
    endpoint, critical, band, status = key
    point_attrs: dict[str, str | bool] = {
        attr.WEDDING_ENDPOINT: endpoint,
        attr.WEDDING_CRITICAL: critical,
        attr.WEDDING_PROXIMITY: band,
    }
    if status:
        point_attrs[names.STATUS_CLASS] = status
    return point_attrs


_HISTOGRAMS: Final[tuple[_Histogram[Any], ...]] = (
    _Histogram[DurationKey](
        names.SERVER_DURATION,
        "Server request duration, judged against wedding-aware thresholds",
        _duration_attributes,
        series=lambda deltas: deltas.durations,
        exemplars=lambda deltas: deltas.exemplars,
        overflow=lambda overflow: overflow.durations,
        overflow_exemplars=lambda overflow: overflow.exemplars,
    ),
    _Histogram[BandKey](
        names.DB_DURATION,
        "Database time per sampled request",
        lambda key: {attr.WEDDING_ENDPOINT: key[0], attr.WEDDING_PROXIMITY: key[1]},
        series=lambda deltas: deltas.db,
        exemplars=lambda deltas: deltas.db_exemplars,
        overflow=lambda overflow: overflow.db,
        overflow_exemplars=lambda overflow: overflow.db_exemplars,
    ),
)
"""The recorder's histograms, in the order they are emitted."""

_COUNTERS: Final[tuple[_Counter[Any], ...]] = (
    _Counter[ApdexKey](
        names.APDEX_REQUESTS,
        "Requests by Apdex class",
        lambda key: {
            attr.WEDDING_ENDPOINT: key[0],
            attr.WEDDING_PROXIMITY: key[1],
            attr.WEDDING_APDEX: key[2],
        },
        series=lambda deltas: deltas.apdex,
        overflow=lambda overflow: overflow.requests,
    ),
    _Counter[CacheKey](
        names.CACHE_REQUESTS,
        "Cache reads by result",
        lambda key: {
            attr.WEDDING_ENDPOINT: key[0],
            attr.WEDDING_PROXIMITY: key[1],
            names.CACHE_RESULT: key[2],
        },
        series=lambda deltas: deltas.cache,
        overflow=lambda overflow: overflow.cache,
    ),
    _Counter[BreachKey](
        names.THRESHOLD_BREACHES,
        "Requests slower than their wedding-aware threshold",
        lambda key: {
            attr.WEDDING_ENDPOINT: key[0],
            attr.WEDDING_CRITICAL: key[1],
            attr.WEDDING_PROXIMITY: key[2],
        },
        series=lambda deltas: deltas.breaches,
        overflow=lambda overflow: overflow.breaches,
    ),
)
"""The recorder's counters, emitted after the histograms in this order."""


def recorded_metrics(
    histograms: Deltas,
    counters: Deltas,
    *,
    exemplars: Deltas | None = None,
    delta_histograms: bool,
    delta_counters: bool,
    start_ns: int,
    now_ns: int,
) -> list[Metric]:
    """The recorder's series: ``histograms``/``counters`` hold cumulative or delta totals.

    ``exemplars`` holds the interval's exemplars (``histograms`` itself when omitted).
    """
    exemplar_source = histograms if exemplars is None else exemplars
    held_overflow = exemplar_source.overflow
    metrics: list[Metric] = []
    for histogram in _HISTOGRAMS:
        held = histogram.exemplars(exemplar_source)
        points = [
            _exp_point(histogram.attributes(key), buckets, start_ns, now_ns, held.get(key))
            for key, buckets in histogram.series(histograms).items()
        ]
        if histograms.overflow is not None:
            buckets = histogram.overflow(histograms.overflow)
            if buckets.count:
                overflow_held = (
                    None if held_overflow is None else histogram.overflow_exemplars(held_overflow)
                )
                points.append(
                    _exp_point(_OVERFLOW_ATTRIBUTES, buckets, start_ns, now_ns, overflow_held)
                )
        if points:
            metrics.append(
                _exp_histogram(
                    histogram.name, histogram.description, points, delta=delta_histograms
                )
            )
    for counter in _COUNTERS:
        values: list[tuple[_Attributes, int]] = [
            (counter.attributes(key), count) for key, count in counter.series(counters).items()
        ]
        if counters.overflow is not None and (count := counter.overflow(counters.overflow)):
            values.append((_OVERFLOW_ATTRIBUTES, count))
        if values:
            metrics.append(
                _sum(
                    counter.name,
                    counter.description,
                    values,
                    start_ns,
                    now_ns,
                    delta=delta_counters,
                )
            )
    return metrics


def _exp_histogram(
    name: str,
    description: str,
    points: list[ExponentialHistogramDataPoint],
    *,
    delta: bool,
) -> Metric:
    return Metric(
        name=name,
        description=description,
        unit="ms",
        data=ExponentialHistogram(data_points=points, aggregation_temporality=_temporality(delta)),
    )


def _temporality(delta: bool) -> AggregationTemporality:
    return AggregationTemporality.DELTA if delta else AggregationTemporality.CUMULATIVE


def exemplars_of(held: Exemplars | None) -> list[Exemplar]:
    """The SDK exemplars of a reservoir, oldest first (none for ``None``)."""
    if held is None:
        return []
    return [
        Exemplar(
            filtered_attributes={},
            value=sample.value,
            time_unix_nano=sample.time_unix_nano,
            span_id=sample.span_id,
            trace_id=sample.trace_id,
        )
        for sample in held.samples()
    ]


def _exp_point(
    point_attrs: Mapping[str, str | bool],
    buckets: ExponentialBuckets,
    start_ns: int,
    now_ns: int,
    held: Exemplars | None = None,
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
        exemplars=exemplars_of(held),
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


def with_own_scope(
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
