"""emit: the recorder's deltas and a snapshot as standard OTel metrics under our scope."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import (
    AggregationTemporality,
    ExponentialHistogram,
    Gauge,
    InMemoryMetricReader,
    Metric,
    MetricsData,
    Sum,
)
from opentelemetry.sdk.resources import Resource
from opentelemetry.trace import SpanContext, TraceFlags

from helpers import RECORDED_METRICS
from wedsync_otel import attributes as attr
from wedsync_otel.metrics import names
from wedsync_otel.metrics.buckets import ExponentialBuckets
from wedsync_otel.metrics.emit import (
    OVERFLOW_ATTRIBUTE,
    SCOPE,
    exemplars_of,
    gauges,
    recorded_metrics,
    with_own_scope,
)
from wedsync_otel.metrics.recording import Deltas, Exemplars, Overflow
from wedsync_otel.metrics.snapshot import EndpointSnapshot, PerformanceSnapshot, WindowStats

START, NOW = 1_000, 2_000
OVERFLOW = {OVERFLOW_ATTRIBUTE: True}


def buckets(*values: float) -> ExponentialBuckets:
    made = ExponentialBuckets()
    for value in values:
        made.record(value)
    return made


def reservoir(*offers: tuple[float, int, int]) -> Exemplars:
    """Exemplars offered (value, end time, span id) in order, all of trace 7."""
    held = Exemplars()
    for value, end_ns, span_id in offers:
        held.offer(
            value, SpanContext(7, span_id, is_remote=False, trace_flags=TraceFlags(1)), end_ns
        )
    return held


def full_deltas() -> Deltas:
    """One series of every recorded metric, on endpoint ``rsvp`` in the wedding-day band."""
    return Deltas(
        durations={("rsvp", True, "wedding_day", "2xx"): buckets(10.0, 30.0)},
        apdex={("rsvp", "wedding_day", "satisfied"): 2},
        breaches={("rsvp", True, "wedding_day"): 1},
        cache={("rsvp", "wedding_day", "hit"): 3},
        db={("rsvp", "wedding_day"): buckets(4.0)},
    )


def emit(histograms: Deltas, counters: Deltas | None = None, **options: Any) -> list[Metric]:
    options.setdefault("delta_histograms", False)
    options.setdefault("delta_counters", False)
    return recorded_metrics(
        histograms,
        histograms if counters is None else counters,
        start_ns=START,
        now_ns=NOW,
        **options,
    )


def by_name(metrics: list[Metric], name: str) -> Any:
    found = [m for m in metrics if m.name == name]
    assert len(found) == 1, [m.name for m in metrics]
    return found[0]


def point_attributes(metric: Metric) -> list[dict[str, Any]]:
    return [dict(point.attributes or {}) for point in metric.data.data_points]


def test_every_recorded_metric_is_emitted_once_in_a_fixed_order() -> None:
    """Durations, DB time, Apdex, cache and breaches come out in that order."""
    assert [m.name for m in emit(full_deltas())] == list(RECORDED_METRICS)


def test_nothing_recorded_emits_no_metric() -> None:
    """Empty deltas give no metric at all, not metrics without points."""
    assert emit(Deltas()) == []


@pytest.mark.parametrize(
    ("name", "unit", "kind"),
    [
        (names.SERVER_DURATION, "ms", ExponentialHistogram),
        (names.DB_DURATION, "ms", ExponentialHistogram),
        (names.APDEX_REQUESTS, "{request}", Sum),
        (names.CACHE_REQUESTS, "{request}", Sum),
        (names.THRESHOLD_BREACHES, "{request}", Sum),
    ],
)
def test_each_metric_has_its_unit_and_data_type(name: str, unit: str, kind: type) -> None:
    """Histograms are exponential in milliseconds; counters are sums of requests."""
    metric = by_name(emit(full_deltas()), name)
    assert (metric.unit, type(metric.data)) == (unit, kind)
    assert metric.description


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        (
            names.SERVER_DURATION,
            {
                attr.WEDDING_ENDPOINT: "rsvp",
                attr.WEDDING_CRITICAL: True,
                attr.WEDDING_PROXIMITY: "wedding_day",
                names.STATUS_CLASS: "2xx",
            },
        ),
        (names.DB_DURATION, {attr.WEDDING_ENDPOINT: "rsvp", attr.WEDDING_PROXIMITY: "wedding_day"}),
        (
            names.APDEX_REQUESTS,
            {
                attr.WEDDING_ENDPOINT: "rsvp",
                attr.WEDDING_PROXIMITY: "wedding_day",
                attr.WEDDING_APDEX: "satisfied",
            },
        ),
        (
            names.CACHE_REQUESTS,
            {
                attr.WEDDING_ENDPOINT: "rsvp",
                attr.WEDDING_PROXIMITY: "wedding_day",
                names.CACHE_RESULT: "hit",
            },
        ),
        (
            names.THRESHOLD_BREACHES,
            {
                attr.WEDDING_ENDPOINT: "rsvp",
                attr.WEDDING_CRITICAL: True,
                attr.WEDDING_PROXIMITY: "wedding_day",
            },
        ),
    ],
)
def test_each_key_becomes_its_attribute_set(name: str, expected: dict[str, Any]) -> None:
    """The parts of a series key land under their documented attribute names."""
    assert point_attributes(by_name(emit(full_deltas()), name)) == [expected]


def test_a_duration_without_status_class_has_no_status_attribute() -> None:
    """An empty status class leaves ``http.response.status_class`` out."""
    deltas = Deltas(durations={("rsvp", False, "unknown", ""): buckets(5.0)})
    [metric] = emit(deltas)
    assert names.STATUS_CLASS not in point_attributes(metric)[0]


@pytest.mark.parametrize("name", [names.APDEX_REQUESTS, names.CACHE_REQUESTS])
def test_only_metrics_with_series_are_emitted(name: str) -> None:
    """A counter with no series is left out while the others are emitted."""
    deltas = full_deltas()
    if name == names.APDEX_REQUESTS:
        deltas.apdex = {}
    else:
        deltas.cache = {}
    assert name not in [m.name for m in emit(deltas)]
    assert len(emit(deltas)) == len(RECORDED_METRICS) - 1


def test_a_histogram_point_carries_the_buckets_figures_and_times() -> None:
    """Count, sum, min, max, scale and bucket counts are the recorder's, stamped start..now."""
    recorded = buckets(10.0, 30.0)
    deltas = Deltas(durations={("rsvp", True, "wedding_day", "2xx"): recorded})
    [point] = emit(deltas)[0].data.data_points
    assert (point.count, point.sum, point.min, point.max) == (2, 40.0, 10.0, 30.0)
    assert (point.scale, point.zero_count) == (recorded.scale, 0)
    assert (point.positive.offset, list(point.positive.bucket_counts)) == (
        recorded.offset,
        list(recorded.counts),
    )
    assert (point.start_time_unix_nano, point.time_unix_nano) == (START, NOW)


def test_a_counter_point_carries_the_count_as_a_monotonic_sum() -> None:
    """A counter series is one monotonic point holding its count."""
    metric = by_name(emit(full_deltas()), names.CACHE_REQUESTS)
    assert metric.data.is_monotonic
    assert [p.value for p in metric.data.data_points] == [3]


@pytest.mark.parametrize(
    ("delta_histograms", "delta_counters"),
    [(False, False), (True, False), (False, True), (True, True)],
)
def test_histograms_and_counters_take_their_own_temporality(
    delta_histograms: bool, delta_counters: bool
) -> None:
    """``delta_histograms`` sets the histograms' temporality, ``delta_counters`` the sums'."""

    def temporality(delta: bool) -> AggregationTemporality:
        return AggregationTemporality.DELTA if delta else AggregationTemporality.CUMULATIVE

    metrics = emit(full_deltas(), delta_histograms=delta_histograms, delta_counters=delta_counters)
    for metric in metrics:
        expected = (
            delta_histograms if isinstance(metric.data, ExponentialHistogram) else (delta_counters)
        )
        assert metric.data.aggregation_temporality is temporality(expected), metric.name


def test_histograms_and_counters_come_from_their_own_deltas() -> None:
    """Histograms read the first deltas and counters the second."""
    histograms = Deltas(durations={("rsvp", True, "wedding_day", "2xx"): buckets(1.0)})
    counters = Deltas(apdex={("rsvp", "wedding_day", "tolerating"): 5})
    assert [m.name for m in emit(histograms, counters)] == [
        names.SERVER_DURATION,
        names.APDEX_REQUESTS,
    ]


def test_exemplars_default_to_the_histograms_own() -> None:
    """Without ``exemplars``, a series carries the exemplars held beside its buckets."""
    key = ("rsvp", True, "wedding_day", "2xx")
    deltas = Deltas(durations={key: buckets(10.0)}, exemplars={key: reservoir((10.0, 50, 3))})
    [point] = emit(deltas)[0].data.data_points
    assert [(e.value, e.time_unix_nano, e.trace_id, e.span_id) for e in point.exemplars] == [
        (10.0, 50, 7, 3)
    ]


def test_exemplars_argument_replaces_the_histograms_own() -> None:
    """Given ``exemplars``, points carry those and not the ones held in ``histograms``."""
    key = ("rsvp", "wedding_day")
    totals = Deltas(db={key: buckets(4.0)}, db_exemplars={key: reservoir((4.0, 50, 3))})
    interval = Deltas(db_exemplars={key: reservoir((2.0, 60, 9))})
    [point] = emit(totals, Deltas(), exemplars=interval)[0].data.data_points
    assert [e.span_id for e in point.exemplars] == [9]


def test_a_series_without_exemplars_has_an_empty_list() -> None:
    """A series the exemplar deltas do not name carries no exemplar."""
    deltas = Deltas(durations={("rsvp", True, "wedding_day", "2xx"): buckets(10.0)})
    [point] = emit(deltas)[0].data.data_points
    assert point.exemplars == []


def test_overflow_adds_one_point_per_metric_with_only_the_overflow_attribute() -> None:
    """Every metric with overflowed requests ends with a point of just ``otel.metric.overflow``."""
    deltas = full_deltas()
    deltas.overflow = Overflow(
        durations=buckets(1.0, 2.0), requests=2, breaches=1, cache=4, db=buckets(0.0)
    )
    metrics = emit(deltas)
    assert [point_attributes(m)[-1] for m in metrics] == [OVERFLOW] * len(RECORDED_METRICS)
    counts = [
        m.data.data_points[-1].count
        if isinstance(m.data, ExponentialHistogram)
        else m.data.data_points[-1].value
        for m in metrics
    ]
    assert counts == [2, 1, 2, 4, 1]


@pytest.mark.parametrize("name", RECORDED_METRICS)
def test_an_overflow_of_zero_adds_no_point(name: str) -> None:
    """An overflow part that counted nothing for a metric adds no point to it."""
    deltas = full_deltas()
    deltas.overflow = Overflow()
    assert OVERFLOW not in point_attributes(by_name(emit(deltas), name))


def test_overflow_alone_still_emits_its_metric() -> None:
    """A metric whose only requests overflowed is emitted with the overflow point alone."""
    deltas = Deltas(overflow=Overflow(durations=buckets(3.0)))
    [metric] = emit(deltas)
    assert (metric.name, point_attributes(metric)) == (names.SERVER_DURATION, [OVERFLOW])


def test_overflow_points_carry_the_overflow_exemplars() -> None:
    """The overflow point of each histogram carries that histogram's overflow exemplars."""
    deltas = Deltas(
        overflow=Overflow(
            durations=buckets(3.0),
            db=buckets(1.0),
            exemplars=reservoir((3.0, 10, 1)),
            db_exemplars=reservoir((1.0, 20, 2)),
        )
    )
    metrics = emit(deltas)
    assert [[e.span_id for e in m.data.data_points[0].exemplars] for m in metrics] == [[1], [2]]


def test_overflow_exemplars_are_empty_when_the_exemplar_deltas_have_no_overflow() -> None:
    """Separate exemplar deltas without an overflow part leave the overflow point bare."""
    deltas = Deltas(overflow=Overflow(durations=buckets(3.0), exemplars=reservoir((3.0, 10, 1))))
    [metric] = emit(deltas, exemplars=Deltas())
    assert metric.data.data_points[0].exemplars == []


def test_counter_overflow_comes_from_the_counter_deltas() -> None:
    """The counters' overflow point counts what the counter deltas overflowed."""
    histograms = Deltas(overflow=Overflow(requests=9))
    counters = Deltas(overflow=Overflow(requests=4))
    [metric] = emit(histograms, counters)
    assert [p.value for p in metric.data.data_points] == [4]


def test_exemplars_of_nothing_is_empty() -> None:
    """No reservoir converts to no exemplar."""
    assert exemplars_of(None) == []


def test_exemplars_of_a_reservoir_are_oldest_first_with_ids() -> None:
    """SDK exemplars keep value, time, trace and span id, sorted by time."""
    held = reservoir((500.0, 30, 1), (1.0, 10, 2), (40.0, 20, 3))
    converted = exemplars_of(held)
    assert [(e.value, e.time_unix_nano, e.trace_id, e.span_id) for e in converted] == [
        (1.0, 10, 7, 2),
        (40.0, 20, 7, 3),
        (500.0, 30, 7, 1),
    ]
    assert all(e.filtered_attributes == {} for e in converted)


# --- gauges ---------------------------------------------------------------------------------


def stats(**overrides: Any) -> WindowStats:
    figures: dict[str, Any] = {
        "count": 10,
        "error_rate": 0.0,
        "p50_ms": 50.0,
        "p90_ms": 90.0,
        "p95_ms": 95.0,
        "p99_ms": 99.0,
        "apdex": None,
        "health": 80.0,
    }
    figures.update(overrides)
    return WindowStats(**figures)


def snapshot(*endpoints: EndpointSnapshot, readiness: str = "ready") -> PerformanceSnapshot:
    return PerformanceSnapshot(
        taken_at_ns=NOW,
        endpoints={endpoint.name: endpoint for endpoint in endpoints},
        readiness=readiness,
        reasons=[],
    )


def endpoint(**overrides: Any) -> EndpointSnapshot:
    fields: dict[str, Any] = {
        "name": "rsvp",
        "critical": False,
        "threshold_ms": 200.0,
        "wedding_day_threshold_ms": 100.0,
        "windows": {"5m": stats()},
    }
    fields.update(overrides)
    return EndpointSnapshot(**fields)


def values(metrics: list[Metric], name: str) -> list[tuple[dict[str, Any], float]]:
    """(attributes, value) of every point of gauge ``name``, none when it is absent."""
    found = [m for m in metrics if m.name == name]
    if not found:
        return []
    [gauge] = found
    assert isinstance(gauge.data, Gauge)
    return [(dict(p.attributes or {}), p.value) for p in gauge.data.data_points]


WINDOW_5M = {attr.WEDDING_ENDPOINT: "rsvp", names.WINDOW: "5m"}


@pytest.mark.parametrize(
    ("name", "value"),
    [
        (names.LATENCY_P50, 50.0),
        (names.LATENCY_P90, 90.0),
        (names.LATENCY_P95, 95.0),
        (names.LATENCY_P99, 99.0),
        (names.HEALTH_SCORE, 80.0),
    ],
)
def test_every_window_has_its_quantiles_and_health(name: str, value: float) -> None:
    """Each window gives one point per quantile and health, keyed by endpoint and window."""
    assert values(gauges(snapshot(endpoint()), NOW), name) == [(WINDOW_5M, value)]


@pytest.mark.parametrize(
    ("name", "field_name"),
    [
        (names.APDEX_SCORE, "apdex"),
        (names.CACHE_HIT_RATE, "cache_hit_rate"),
        (names.DB_TIME_SHARE, "db_time_share"),
    ],
)
def test_optional_figures_are_gauges_only_when_known(name: str, field_name: str) -> None:
    """Apdex, cache hit rate and DB time share appear only when the window has them."""
    unknown = gauges(snapshot(endpoint()), NOW)
    known = gauges(snapshot(endpoint(windows={"5m": stats(**{field_name: 0.25})})), NOW)
    assert values(unknown, name) == []
    assert values(known, name) == [(WINDOW_5M, 0.25)]


def test_band_windows_add_the_proximity_attribute() -> None:
    """A per-band window's points carry the band besides endpoint and window."""
    made = endpoint(windows={}, bands={"wedding_day": {"1m": stats(p50_ms=7.0)}})
    assert values(gauges(snapshot(made), NOW), names.LATENCY_P50) == [
        (
            {
                attr.WEDDING_ENDPOINT: "rsvp",
                attr.WEDDING_PROXIMITY: "wedding_day",
                names.WINDOW: "1m",
            },
            7.0,
        )
    ]


@pytest.mark.parametrize(("trend", "gauge"), [("improving", 1), ("stable", 0), ("degrading", -1)])
def test_the_trend_is_a_gauge_per_endpoint(trend: str, gauge: int) -> None:
    """``wedding.trend`` is 1, 0 or -1 per endpoint, whatever its windows."""
    metrics = gauges(snapshot(endpoint(trend=trend)), NOW)
    assert values(metrics, names.TREND) == [({attr.WEDDING_ENDPOINT: "rsvp"}, gauge)]


@pytest.mark.parametrize(("critical", "points"), [(True, 2), (False, 1)])
def test_readiness_per_endpoint_only_for_critical_ones(critical: bool, points: int) -> None:
    """Critical endpoints get their own readiness point beside the API-wide one."""
    made = endpoint(critical=critical, readiness="at_risk")
    assert len(values(gauges(snapshot(made), NOW), names.READINESS)) == points


@pytest.mark.parametrize(("readiness", "gauge"), [("ready", 1), ("at_risk", 0), ("not_ready", -1)])
def test_the_api_wide_readiness_has_no_attributes(readiness: str, gauge: int) -> None:
    """Even without endpoints, the whole API's readiness is one point with no attributes."""
    assert values(gauges(snapshot(readiness=readiness), NOW), names.READINESS) == [({}, gauge)]


def test_gauges_are_stamped_now_with_documented_units() -> None:
    """Every gauge point starts and ends at ``now_ns``; units and descriptions are the table's."""
    for metric in gauges(snapshot(endpoint(windows={"5m": stats(apdex=0.9)})), NOW):
        assert (metric.unit, metric.description) == (
            names.UNITS[metric.name],
            names.DESCRIPTIONS[metric.name],
        )
        for point in metric.data.data_points:
            assert (point.start_time_unix_nano, point.time_unix_nano) == (NOW, NOW)


# --- our scope ------------------------------------------------------------------------------


@pytest.fixture
def app_data() -> Iterator[MetricsData]:
    """What the SDK's in-memory reader collects from one application counter."""
    reader = InMemoryMetricReader()
    provider = MeterProvider(
        metric_readers=[reader], resource=Resource.create({"service.name": "app"})
    )
    provider.get_meter("app").create_counter("app.orders").add(3)
    data = reader.get_metrics_data()
    assert data is not None
    yield data
    provider.shutdown()


def test_nothing_of_our_own_returns_the_data_unchanged(app_data: MetricsData) -> None:
    """With no metrics of our own, the incoming data is returned as it is."""
    assert with_own_scope(app_data, [], None) is app_data


def test_our_metrics_join_the_first_resource_under_our_scope(app_data: MetricsData) -> None:
    """Our metrics are one more scope on the first resource, after the application's."""
    own = emit(full_deltas())
    merged = with_own_scope(app_data, own, Resource.create({"service.name": "other"}))
    [resource_metrics] = merged.resource_metrics
    assert resource_metrics.resource.attributes["service.name"] == "app"
    app_scope, our_scope = resource_metrics.scope_metrics
    assert app_scope.scope.name == "app"
    assert (our_scope.scope, our_scope.metrics) == (SCOPE, own)


def test_the_input_data_is_not_modified(app_data: MetricsData) -> None:
    """Adding our scope builds new data and leaves the reader's untouched."""
    with_own_scope(app_data, emit(full_deltas()), None)
    assert len(app_data.resource_metrics[0].scope_metrics) == 1


def test_without_resources_our_metrics_get_the_given_resource() -> None:
    """Empty data becomes one resource, the given one, holding our scope."""
    resource = Resource.create({"service.name": "wedsync-api"})
    merged = with_own_scope(MetricsData(resource_metrics=[]), emit(full_deltas()), resource)
    [resource_metrics] = merged.resource_metrics
    assert resource_metrics.resource is resource
    assert [s.scope for s in resource_metrics.scope_metrics] == [SCOPE]
