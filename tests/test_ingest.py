"""ingest: wedding series from any source, delta or cumulative, into the sliding windows."""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from typing import Any

import pytest
from opentelemetry.sdk.metrics import Counter, Histogram, MeterProvider
from opentelemetry.sdk.metrics.export import (
    AggregationTemporality,
    Buckets,
    ExponentialHistogram,
    ExponentialHistogramDataPoint,
    Gauge,
    InMemoryMetricReader,
    Metric,
    MetricsData,
    NumberDataPoint,
    ResourceMetrics,
    ScopeMetrics,
    Sum,
)
from opentelemetry.sdk.metrics.view import ExponentialBucketHistogramAggregation, View
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.util.instrumentation import InstrumentationScope

from wedsync_otel import attributes as attr
from wedsync_otel.metrics import names
from wedsync_otel.metrics.ingest import Ingester
from wedsync_otel.metrics.windows import Merged, WindowStore

S = 1_000_000_000
NOW = 10_000 * S
RSVP = {attr.WEDDING_ENDPOINT: "rsvp", attr.WEDDING_PROXIMITY: "wedding_day"}
KEY = ("rsvp", "wedding_day")
DELTA = AggregationTemporality.DELTA
CUMULATIVE = AggregationTemporality.CUMULATIVE


# --- an application's own SDK instruments, read by the SDK's in-memory reader ---------------


class App:
    """A meter provider with the wedding instruments, read by an in-memory reader."""

    def __init__(self, *, delta: bool, service: str = "api") -> None:
        temporality = DELTA if delta else CUMULATIVE
        self.reader = InMemoryMetricReader(
            preferred_temporality={Histogram: temporality, Counter: temporality}
        )
        self.provider = MeterProvider(
            metric_readers=[self.reader],
            resource=Resource.create({"service.name": service}),
            views=[
                View(instrument_name=name, aggregation=ExponentialBucketHistogramAggregation())
                for name in (names.SERVER_DURATION, names.DB_DURATION)
            ],
        )
        meter = self.provider.get_meter("app")
        self.durations = meter.create_histogram(names.SERVER_DURATION, unit="ms")
        self.db = meter.create_histogram(names.DB_DURATION, unit="ms")
        self.apdex = meter.create_counter(names.APDEX_REQUESTS)
        self.cache = meter.create_counter(names.CACHE_REQUESTS)

    def collect(self) -> MetricsData:
        data = self.reader.get_metrics_data()
        assert data is not None
        return data


@pytest.fixture(params=[True, False], ids=["delta", "cumulative"])
def app(request: pytest.FixtureRequest) -> Iterator[App]:
    made = App(delta=request.param)
    yield made
    made.provider.shutdown()


def hour(store: WindowStore) -> Merged:
    """The last hour's totals of ``KEY``, up to the wall clock the SDK stamps points with."""
    merged = store.window(time.time_ns(), "1h")
    return merged.get(KEY, Merged())


def test_sdk_durations_reach_the_windows(app: App) -> None:
    """Every duration an SDK histogram recorded is counted once in the windows."""
    store = WindowStore()
    for value in (10.0, 20.0, 30.0):
        app.durations.record(value, RSVP)
    Ingester(store).ingest(app.collect(), time.time_ns())
    merged = hour(store)
    assert (merged.count, merged.durations and merged.durations.sum) == (3, 60.0)


def test_repeated_exports_count_each_request_once(app: App) -> None:
    """Whatever the temporality, two exports add up to the requests recorded, no more."""
    store = WindowStore()
    ingester = Ingester(store)
    app.durations.record(10.0, RSVP)
    app.apdex.add(1, {**RSVP, attr.WEDDING_APDEX: "satisfied"})
    ingester.ingest(app.collect(), time.time_ns())
    app.durations.record(20.0, RSVP)
    app.apdex.add(2, {**RSVP, attr.WEDDING_APDEX: "satisfied"})
    ingester.ingest(app.collect(), time.time_ns())
    merged = hour(store)
    assert (merged.count, merged.satisfied) == (2, 3)


def test_sdk_counters_and_db_histogram_reach_the_windows(app: App) -> None:
    """Apdex classes, cache results and DB time from SDK instruments are windowed."""
    store = WindowStore()
    app.apdex.add(2, {**RSVP, attr.WEDDING_APDEX: "tolerating"})
    app.cache.add(3, {**RSVP, names.CACHE_RESULT: "hit"})
    app.cache.add(1, {**RSVP, names.CACHE_RESULT: "miss"})
    app.db.record(4.0, RSVP)
    app.db.record(6.0, RSVP)
    Ingester(store).ingest(app.collect(), time.time_ns())
    merged = hour(store)
    assert (merged.tolerating, merged.cache_hits, merged.cache_misses) == (2, 3, 1)
    assert (merged.db_ms, merged.db_requests) == (10.0, 2)


# --- hand-built points, for what an SDK would not send ---------------------------------------


def exp_point(
    point_attrs: dict[str, Any],
    *,
    counts: Sequence[int] = (1, 1),
    total: float = 30.0,
    start_ns: int = 1,
    time_ns: int = NOW,
    scale: int = 3,
    zero_count: int = 0,
) -> ExponentialHistogramDataPoint:
    return ExponentialHistogramDataPoint(
        attributes=point_attrs,
        start_time_unix_nano=start_ns,
        time_unix_nano=time_ns,
        count=zero_count + sum(counts),
        sum=total,
        scale=scale,
        zero_count=zero_count,
        positive=Buckets(offset=20, bucket_counts=list(counts)),
        negative=Buckets(offset=0, bucket_counts=[]),
        flags=0,
        min=10.0,
        max=20.0,
    )


def histogram(
    name: str, *points: ExponentialHistogramDataPoint, temporality: AggregationTemporality = DELTA
) -> Metric:
    return Metric(
        name=name,
        description="",
        unit="ms",
        data=ExponentialHistogram(data_points=list(points), aggregation_temporality=temporality),
    )


def counter(
    name: str,
    *values: tuple[dict[str, Any], int],
    temporality: AggregationTemporality = DELTA,
    start_ns: int = 1,
    time_ns: int = NOW,
) -> Metric:
    points = [
        NumberDataPoint(
            attributes=point_attrs,
            start_time_unix_nano=start_ns,
            time_unix_nano=time_ns,
            value=value,
        )
        for point_attrs, value in values
    ]
    return Metric(
        name=name,
        description="",
        unit="{request}",
        data=Sum(data_points=points, aggregation_temporality=temporality, is_monotonic=True),
    )


def data(*metrics: Metric, service: str = "api") -> MetricsData:
    return MetricsData(
        resource_metrics=[
            ResourceMetrics(
                resource=Resource({"service.name": service}),
                scope_metrics=[
                    ScopeMetrics(
                        scope=InstrumentationScope("src"), metrics=list(metrics), schema_url=""
                    )
                ],
                schema_url="",
            )
        ]
    )


def ingested(*batches: MetricsData, now_ns: int = NOW) -> tuple[Ingester, dict[Any, Merged]]:
    """An ingester fed ``batches`` in order, and the last hour's totals per series."""
    store = WindowStore()
    ingester = Ingester(store)
    for batch in batches:
        ingester.ingest(batch, now_ns)
    return ingester, store.window(now_ns, "1h")


@pytest.mark.parametrize(("status", "errors"), [("5xx", 2), ("4xx", 0), ("2xx", 0), (None, 0)])
def test_only_5xx_durations_count_as_errors(status: str | None, errors: int) -> None:
    """A duration point's requests are errors exactly when its status class is 5xx."""
    point_attrs = dict(RSVP) if status is None else {**RSVP, names.STATUS_CLASS: status}
    _, merged = ingested(data(histogram(names.SERVER_DURATION, exp_point(point_attrs))))
    assert (merged[KEY].count, merged[KEY].errors) == (2, errors)


def test_missing_endpoint_and_band_read_as_other_and_unknown() -> None:
    """A point without wedding attributes lands under endpoint ``other``, band ``unknown``."""
    _, merged = ingested(data(histogram(names.SERVER_DURATION, exp_point({}))))
    assert list(merged) == [("other", "unknown")]


def test_a_point_without_a_time_is_placed_at_now() -> None:
    """A zero point time falls back to the ``now_ns`` of the ingest."""
    batch = data(histogram(names.SERVER_DURATION, exp_point(RSVP, time_ns=0)))
    _, merged = ingested(batch, now_ns=NOW)
    assert merged[KEY].count == 2


def test_a_point_lands_at_its_own_time() -> None:
    """A point stamped two hours ago is outside the last hour."""
    batch = data(histogram(names.SERVER_DURATION, exp_point(RSVP, time_ns=NOW - 7200 * S)))
    _, merged = ingested(batch, now_ns=NOW)
    assert merged == {}


@pytest.mark.parametrize(
    ("apdex", "expected"),
    [
        ("satisfied", (5, 0, 0)),
        ("tolerating", (0, 5, 0)),
        ("frustrated", (0, 0, 5)),
        (None, (0, 0, 5)),
    ],
)
def test_apdex_points_count_in_their_class(
    apdex: str | None, expected: tuple[int, int, int]
) -> None:
    """Apdex counts go to their class; a point without one counts as frustrated."""
    point_attrs = dict(RSVP) if apdex is None else {**RSVP, attr.WEDDING_APDEX: apdex}
    _, merged = ingested(data(counter(names.APDEX_REQUESTS, (point_attrs, 5))))
    totals = merged[KEY]
    assert (totals.satisfied, totals.tolerating, totals.frustrated) == expected


@pytest.mark.parametrize(
    ("result", "hits", "misses"), [("hit", 4, 0), ("miss", 0, 4), (None, 0, 4)]
)
def test_cache_points_count_hits_and_everything_else_as_misses(
    result: str | None, hits: int, misses: int
) -> None:
    """``cache.result = hit`` counts hits; any other point counts misses."""
    point_attrs = dict(RSVP) if result is None else {**RSVP, names.CACHE_RESULT: result}
    _, merged = ingested(data(counter(names.CACHE_REQUESTS, (point_attrs, 4))))
    assert (merged[KEY].cache_hits, merged[KEY].cache_misses) == (hits, misses)


def test_db_points_give_database_time_and_requests_measured() -> None:
    """A DB histogram point adds its sum as database time and its count as requests."""
    point = exp_point(RSVP, counts=(2, 1), total=12.5, zero_count=1)
    _, merged = ingested(data(histogram(names.DB_DURATION, point)))
    assert (merged[KEY].db_ms, merged[KEY].db_requests, merged[KEY].count) == (12.5, 4, 0)


def test_cumulative_db_points_add_only_their_increase() -> None:
    """The second cumulative DB point adds the growth of its sum and count."""
    first = exp_point(RSVP, counts=(1, 1), total=10.0)
    second = exp_point(RSVP, counts=(2, 1), total=16.0)
    _, merged = ingested(
        data(histogram(names.DB_DURATION, first, temporality=CUMULATIVE)),
        data(histogram(names.DB_DURATION, second, temporality=CUMULATIVE)),
    )
    assert (merged[KEY].db_ms, merged[KEY].db_requests) == (16.0, 3)


@pytest.mark.parametrize(
    "metric",
    [
        counter(names.THRESHOLD_BREACHES, (RSVP, 3)),
        counter("app.orders", (RSVP, 3)),
        histogram("app.latency", exp_point(RSVP)),
        Metric(
            name=names.SERVER_DURATION,
            description="",
            unit="ms",
            data=Gauge(
                data_points=[
                    NumberDataPoint(
                        attributes=RSVP, start_time_unix_nano=1, time_unix_nano=NOW, value=5.0
                    )
                ]
            ),
        ),
        counter(names.APDEX_REQUESTS, ({**RSVP, attr.WEDDING_APDEX: "satisfied"}, 0)),
        histogram(names.SERVER_DURATION, exp_point(RSVP, counts=())),
    ],
    ids=["breaches", "other-counter", "other-histogram", "wrong-type", "zero-count", "empty"],
)
def test_what_the_windows_do_not_read_is_ignored(metric: Metric) -> None:
    """Other metrics, a wedding name with the wrong data type and empty points add nothing."""
    ingester, merged = ingested(data(metric))
    assert (merged, ingester.rejected_points) == ({}, 0)


@pytest.mark.parametrize(
    "point",
    [exp_point(RSVP, counts=(1, -5, 2)), exp_point(RSVP, scale=-11)],
    ids=["negative-count", "scale-below-minimum"],
)
def test_unreadable_duration_points_are_rejected_and_counted(
    point: ExponentialHistogramDataPoint,
) -> None:
    """A point the buckets cannot hold is counted in ``rejected_points`` and not windowed."""
    ingester, merged = ingested(data(histogram(names.SERVER_DURATION, point)))
    assert (merged, ingester.rejected_points) == ({}, 1)


def test_a_rejected_point_does_not_stop_the_next_ones() -> None:
    """Points after a rejected one in the same metric are still read."""
    bad = exp_point(RSVP, counts=(1, -5, 2))
    good = exp_point(RSVP)
    ingester, merged = ingested(data(histogram(names.SERVER_DURATION, bad, good)))
    assert (merged[KEY].count, ingester.rejected_points) == (2, 1)


def test_cumulative_durations_add_only_what_is_new() -> None:
    """A cumulative point repeated, then grown, adds its growth only."""
    first = exp_point(RSVP, counts=(1, 1))
    grown = exp_point(RSVP, counts=(1, 3))
    batches = [
        data(histogram(names.SERVER_DURATION, point, temporality=CUMULATIVE))
        for point in (first, first, grown)
    ]
    _, merged = ingested(*batches)
    assert merged[KEY].count == 4


def test_delta_durations_add_every_point() -> None:
    """The same delta point sent twice is two intervals' worth of requests."""
    point = exp_point(RSVP)
    _, merged = ingested(*[data(histogram(names.SERVER_DURATION, point))] * 2)
    assert merged[KEY].count == 4


def test_a_restarted_cumulative_counter_counts_afresh() -> None:
    """A new start time makes the cumulative value the delta."""
    apdex = {**RSVP, attr.WEDDING_APDEX: "satisfied"}
    _, merged = ingested(
        data(counter(names.APDEX_REQUESTS, (apdex, 10), temporality=CUMULATIVE, start_ns=1)),
        data(counter(names.APDEX_REQUESTS, (apdex, 3), temporality=CUMULATIVE, start_ns=2)),
    )
    assert merged[KEY].satisfied == 13


def test_cumulative_series_of_different_resources_are_tracked_apart() -> None:
    """Two instances with the same attributes are two series, not one that went back."""
    apdex = {**RSVP, attr.WEDDING_APDEX: "satisfied"}
    _, merged = ingested(
        data(counter(names.APDEX_REQUESTS, (apdex, 10), temporality=CUMULATIVE), service="a"),
        data(counter(names.APDEX_REQUESTS, (apdex, 4), temporality=CUMULATIVE), service="b"),
    )
    assert merged[KEY].satisfied == 14
