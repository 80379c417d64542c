"""Tests for wedsync_otel.capacity: instances from the wedding calendar and measured capacity."""

from __future__ import annotations

import datetime as dt
import json
import logging
import zoneinfo
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader, MetricsData, NumberDataPoint

from wedsync_otel import WeddingConfig
from wedsync_otel._safety import RAISE_INTERNAL_ERRORS_ENV
from wedsync_otel.capacity import (
    HORIZON,
    RECOMMENDED_INSTANCES,
    CapacityAdvisor,
    CapacityPlan,
    LoadKind,
    LoadProfile,
    measure_throughput,
    plan_json,
    plan_observations,
    read_wedding_dates,
    recommended_instances_gauge,
    wedding_window,
)
from wedsync_otel.metrics.snapshot import EndpointSnapshot, PerformanceSnapshot, WindowStats

LONDON = zoneinfo.ZoneInfo("Europe/London")
NEW_YORK = zoneinfo.ZoneInfo("America/New_York")
# Base 40 rps, 25 rps per instance planned at 0.8: base 2, season 6, peaks 20 instances.
ADVISOR = CapacityAdvisor(base_rps=40, instance_rps=25)
SATURDAY = dt.date(2026, 6, 20)
FRIDAY = dt.date(2026, 6, 19)
JANUARY_SATURDAY = dt.date(2026, 1, 17)


def local(day: dt.date, hour: int, minute: int = 0, tz: dt.tzinfo = LONDON) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(hour, minute), tzinfo=tz)


def stats(count: int, p95_ms: float) -> WindowStats:
    return WindowStats(
        count=count,
        error_rate=0.0,
        p50_ms=p95_ms / 2,
        p90_ms=p95_ms * 0.9,
        p95_ms=p95_ms,
        p99_ms=p95_ms * 1.2,
        apdex=1.0,
        health=100.0,
    )


def endpoint(
    name: str, *, critical: bool, threshold_ms: float, count: int, p95_ms: float
) -> EndpointSnapshot:
    return EndpointSnapshot(
        name=name,
        critical=critical,
        threshold_ms=threshold_ms,
        wedding_day_threshold_ms=threshold_ms / 2,
        windows={"1h": stats(count, p95_ms), "5m": stats(count // 12, p95_ms)},
    )


def snapshot(*endpoints: EndpointSnapshot) -> PerformanceSnapshot:
    return PerformanceSnapshot(
        taken_at_ns=0,
        endpoints={e.name: e for e in endpoints},
        readiness="ready",
        reasons=[],
    )


# --- the instance formula ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("multiplier", "expected"),
    [(1.0, 2), (3.0, 6), (10.0, 20), (2.5, 5), (0.5, 2)],
)
def test_instances_are_load_over_planned_capacity_per_instance(
    multiplier: float, expected: int
) -> None:
    """Instances are ceil(base x multiplier / (rps per instance x utilisation)), at least min."""
    assert ADVISOR.instances_for(multiplier) == expected


def test_instances_are_capped_at_the_maximum_with_the_reason() -> None:
    """A load beyond max_instances is capped, and the reason says so."""
    advisor = CapacityAdvisor(base_rps=40, instance_rps=25, max_instances=12)
    found = advisor.recommend(local(SATURDAY, 12))
    assert found.instances == 12
    assert "capped at max_instances 12" in found.reason


def test_a_quiet_base_is_raised_to_the_minimum_with_the_reason() -> None:
    """A base load needing 2 instances gets min_instances 3, and the reason says so."""
    advisor = CapacityAdvisor(base_rps=40, instance_rps=25, min_instances=3)
    found = advisor.recommend(local(dt.date(2026, 1, 13), 12))
    assert found.instances == 3
    assert found.driver is LoadKind.BASE
    assert "-> 2, raised to min_instances 3" in found.reason


# --- the calendar ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("hour", "minute", "instances", "driver"),
    [
        (7, 59, 6, LoadKind.SEASON),
        (8, 0, 20, LoadKind.SATURDAY),
        (10, 0, 20, LoadKind.SATURDAY),
        (22, 59, 20, LoadKind.SATURDAY),
        (23, 0, 6, LoadKind.SEASON),
    ],
)
def test_saturday_instances_are_wanted_from_two_hours_before_the_peak_until_it_ends(
    hour: int, minute: int, instances: int, driver: LoadKind
) -> None:
    """On a season Saturday the peak's 20 instances are wanted 08:00-23:00 London time."""
    found = ADVISOR.recommend(local(SATURDAY, hour, minute))
    assert (found.instances, found.driver) == (instances, driver)


def test_the_saturday_window_is_local_time_in_the_platform_zone() -> None:
    """With New York as the platform zone the Saturday rise is at 08:00 EDT, 12:00 UTC."""
    advisor = CapacityAdvisor(
        base_rps=40, instance_rps=25, config=WeddingConfig(timezone="America/New_York")
    )
    before = dt.datetime(2026, 6, 20, 11, 59, tzinfo=dt.UTC)
    at = dt.datetime(2026, 6, 20, 12, 0, tzinfo=dt.UTC)
    assert advisor.recommend(before).instances == 6
    assert advisor.recommend(at).instances == 20
    assert ADVISOR.recommend(before).instances == 20  # London has been raised since 07:00 UTC


def test_season_and_saturday_take_the_larger_factor_not_the_product() -> None:
    """A season Saturday is 10x base, the same as an off-season Saturday, never 30x."""
    summer = ADVISOR.recommend(local(SATURDAY, 12))
    winter = ADVISOR.recommend(local(JANUARY_SATURDAY, 12))
    assert summer.load_multiplier == winter.load_multiplier == 10.0
    assert summer.instances == winter.instances == 20


def test_the_season_runs_from_local_midnight_without_a_lead() -> None:
    """The season's floor starts at 00:00 on 1 May London time, not two hours before."""
    assert ADVISOR.recommend(local(dt.date(2026, 4, 30), 23, 59)).instances == 2
    assert ADVISOR.recommend(local(dt.date(2026, 5, 1), 0, 0)).instances == 6


def test_a_known_weekday_wedding_raises_its_day_like_a_saturday() -> None:
    """A Friday wedding raises the Friday from 08:00; without it Friday stays at the season."""
    at = local(FRIDAY, 9)
    assert ADVISOR.recommend(at).instances == 6
    found = ADVISOR.recommend(at, [FRIDAY])
    assert (found.instances, found.driver) == (20, LoadKind.WEDDING_DAY)
    assert "wedding day 2026-06-19" in found.reason


def test_a_wedding_more_than_two_hours_before_its_peak_does_not_raise_yet() -> None:
    """At 07:59 on a wedding day the peak is over two hours away: the season figure holds."""
    assert ADVISOR.recommend(local(FRIDAY, 7, 59), [FRIDAY]).instances == 6


def test_a_lead_of_zero_raises_at_the_peak_itself() -> None:
    """With no lead the Saturday figure starts at 10:00."""
    advisor = CapacityAdvisor(base_rps=40, instance_rps=25, profile=LoadProfile(lead_s=0))
    assert advisor.recommend(local(SATURDAY, 9, 59)).instances == 6
    assert advisor.recommend(local(SATURDAY, 10)).instances == 20


# --- the plan ------------------------------------------------------------------------------


def test_the_plan_covers_24_local_hours_from_the_current_one() -> None:
    """The plan has 24 hour blocks starting at the start of the current London hour."""
    plan = ADVISOR.plan(local(FRIDAY, 21, 30))
    assert len(plan.next_24h) == 24
    assert plan.next_24h[0].start == local(FRIDAY, 21)
    assert plan.next_24h[-1].start == local(SATURDAY, 20)
    assert all(hour.start.tzinfo == LONDON for hour in plan.next_24h)


def test_each_hour_block_wants_the_most_it_needs() -> None:
    """The 07:00 block is the season figure, the 08:00 and 22:00 blocks the peak, 23:00 not."""
    plan = ADVISOR.plan(local(FRIDAY, 23, 10))
    by_hour = {hour.start.hour: hour.instances for hour in plan.next_24h}
    assert by_hour[7] == 6
    assert by_hour[8] == 20
    assert by_hour[22] == 20
    assert by_hour[23] == 6


def test_the_plan_reasons_name_now_and_each_change() -> None:
    """The reasons say what is wanted now and from when the figure changes, with why."""
    plan = ADVISOR.plan(local(FRIDAY, 21, 30), [FRIDAY])
    assert plan.now == 20
    assert plan.reasons[0].startswith("now (Fri 19 Jun 21:30 BST): 20 instances: wedding day")
    assert plan.reasons[1].startswith("from Fri 19 Jun 23:00 BST: 6 instances: wedding season")
    assert plan.reasons[2].startswith("from Sat 20 Jun 08:00 BST: 20 instances: Saturday")
    assert len(plan.reasons) == 3


def test_peak_24h_is_the_most_wanted_over_the_plan() -> None:
    """On a Friday evening the next 24 hours peak at the Saturday figure."""
    plan = ADVISOR.plan(local(FRIDAY, 23, 10))
    assert (plan.now, plan.peak_24h) == (6, 20)


def test_a_plan_is_json_ready() -> None:
    """plan_json gives plain data that json.dumps accepts, with every hour."""
    data = plan_json(ADVISOR.plan(local(FRIDAY, 21, 30)))
    assert json.loads(json.dumps(data))["peak_24h"] == 20
    assert len(data["next_24h"]) == 24


def test_a_naive_datetime_is_refused() -> None:
    """A datetime without a time zone is ambiguous about Saturdays and refused."""
    with pytest.raises(ValueError, match="aware datetime"):
        ADVISOR.plan(dt.datetime(2026, 6, 20, 12))


# --- properties ----------------------------------------------------------------------------

ZONES = st.sampled_from(["Europe/London", "America/New_York", "Asia/Kolkata", "Australia/Sydney"])
INSTANTS = st.datetimes(
    min_value=dt.datetime(2025, 1, 1),
    max_value=dt.datetime(2028, 12, 31),
    timezones=st.just(dt.UTC),
)
DATES = st.dates(min_value=dt.date(2024, 12, 25), max_value=dt.date(2029, 1, 5))
MULTIPLIERS = st.floats(min_value=1.0, max_value=50.0)


@st.composite
def advisors(draw: st.DrawFn) -> CapacityAdvisor:
    low = draw(st.integers(1, 20))
    return CapacityAdvisor(
        base_rps=draw(st.floats(min_value=0.1, max_value=5000.0)),
        instance_rps=draw(st.floats(min_value=0.1, max_value=500.0)),
        target_utilisation=draw(st.floats(min_value=0.1, max_value=1.0)),
        min_instances=low,
        max_instances=low + draw(st.integers(0, 200)),
        config=WeddingConfig(
            timezone=draw(ZONES),
            season_months=frozenset(draw(st.sets(st.integers(1, 12)))),
        ),
        profile=LoadProfile(
            season_multiplier=draw(MULTIPLIERS),
            saturday_multiplier=draw(MULTIPLIERS),
            wedding_day_multiplier=draw(MULTIPLIERS),
        ),
    )


@settings(max_examples=60, deadline=None)
@given(advisor=advisors(), now=INSTANTS, weddings=st.sets(DATES, max_size=5))
def test_every_figure_lies_between_min_and_max(
    advisor: CapacityAdvisor, now: dt.datetime, weddings: set[dt.date]
) -> None:
    """No figure of a plan is below min_instances or above max_instances."""
    plan = advisor.plan(now, weddings)
    figures = [plan.now, *(hour.instances for hour in plan.next_24h)]
    assert all(advisor.min_instances <= n <= advisor.max_instances for n in figures)


@given(advisor=advisors(), low=MULTIPLIERS, high=MULTIPLIERS)
def test_instances_never_fall_as_the_load_multiplier_rises(
    advisor: CapacityAdvisor, low: float, high: float
) -> None:
    """A larger load multiplier never asks for fewer instances."""
    low, high = sorted((low, high))
    assert advisor.instances_for(low) <= advisor.instances_for(high)


@settings(max_examples=60, deadline=None)
@given(
    advisor=advisors(),
    now=INSTANTS,
    weddings=st.sets(DATES, max_size=3),
    extra=st.tuples(MULTIPLIERS, MULTIPLIERS, MULTIPLIERS),
)
def test_raising_a_profile_multiplier_never_lowers_the_plan(
    advisor: CapacityAdvisor,
    now: dt.datetime,
    weddings: set[dt.date],
    extra: tuple[float, float, float],
) -> None:
    """Larger season, Saturday or wedding-day multipliers never lower any figure of the plan."""
    p = advisor.profile
    louder = CapacityAdvisor(
        base_rps=advisor.base_rps,
        instance_rps=advisor.instance_rps,
        target_utilisation=advisor.target_utilisation,
        min_instances=advisor.min_instances,
        max_instances=advisor.max_instances,
        config=advisor.config,
        profile=LoadProfile(
            season_multiplier=p.season_multiplier + extra[0],
            saturday_multiplier=p.saturday_multiplier + extra[1],
            wedding_day_multiplier=p.wedding_day_multiplier + extra[2],
        ),
    )
    assert_not_lower(advisor.plan(now, weddings), louder.plan(now, weddings))


@settings(max_examples=60, deadline=None)
@given(advisor=advisors(), now=INSTANTS, weddings=st.sets(DATES, max_size=3), wedding=DATES)
def test_a_known_wedding_never_lowers_the_plan(
    advisor: CapacityAdvisor, now: dt.datetime, weddings: set[dt.date], wedding: dt.date
) -> None:
    """Adding a wedding to the calendar never lowers any figure of the plan."""
    assert_not_lower(advisor.plan(now, weddings), advisor.plan(now, {*weddings, wedding}))


@settings(max_examples=60, deadline=None)
@given(advisor=advisors(), day=DATES, minutes_ahead=st.integers(0, 120))
def test_a_wedding_peak_within_two_hours_raises_now_to_the_wedding_figure(
    advisor: CapacityAdvisor, day: dt.date, minutes_ahead: int
) -> None:
    """When a known wedding's peak starts within 2 h, now wants at least the wedding-day figure."""
    peak_start = dt.datetime.combine(
        day, dt.time(advisor.profile.peak_start_hour), tzinfo=advisor.timezone
    )
    at = peak_start.astimezone(dt.UTC) - dt.timedelta(minutes=minutes_ahead)
    plan = advisor.plan(at, [day])
    assert plan.now >= advisor.instances_for(advisor.profile.wedding_day_multiplier)


def assert_not_lower(before: CapacityPlan, after: CapacityPlan) -> None:
    assert after.now >= before.now
    for old, new in zip(before.next_24h, after.next_24h, strict=True):
        assert new.instances >= old.instances, (old, new)


# --- measured throughput -------------------------------------------------------------------


def test_throughput_per_instance_is_the_window_count_over_its_length_and_instances() -> None:
    """36,000 + 18,000 requests in an hour over 3 instances is 5 rps per instance."""
    measured = measure_throughput(
        snapshot(
            endpoint("payments", critical=True, threshold_ms=150, count=36_000, p95_ms=90),
            endpoint("guest_lists", critical=False, threshold_ms=250, count=18_000, p95_ms=100),
        ),
        instances=3,
    )
    assert measured is not None
    assert measured.fleet_rps == pytest.approx(15.0)
    assert measured.rps_per_instance == pytest.approx(5.0)
    assert measured.p95_to_threshold == pytest.approx(0.6)
    assert measured.sustainable_rps_per_instance == pytest.approx(5.0)


def test_throughput_over_the_threshold_is_scaled_down_by_the_worst_ratio() -> None:
    """With payments' p95 at twice its threshold, the sustainable rate is half the measured."""
    measured = measure_throughput(
        snapshot(endpoint("payments", critical=True, threshold_ms=150, count=36_000, p95_ms=300)),
        instances=1,
    )
    assert measured is not None
    assert measured.worst_endpoint == "payments"
    assert measured.sustainable_rps_per_instance == pytest.approx(5.0)


def test_p95_is_judged_on_critical_endpoints_when_they_have_data() -> None:
    """A slow non-critical endpoint does not set the ratio while a critical one has data."""
    measured = measure_throughput(
        snapshot(
            endpoint("rsvp", critical=True, threshold_ms=200, count=1_000, p95_ms=100),
            endpoint(
                "supplier_profiles", critical=False, threshold_ms=500, count=1_000, p95_ms=2000
            ),
        ),
        instances=1,
    )
    assert measured is not None
    assert (measured.worst_endpoint, measured.p95_to_threshold) == ("rsvp", 0.5)


def test_a_young_process_passes_the_time_its_window_covers() -> None:
    """A 1h window that holds 10 minutes is measured over 600 s when window_s says so."""
    measured = measure_throughput(
        snapshot(endpoint("payments", critical=True, threshold_ms=150, count=6_000, p95_ms=50)),
        instances=1,
        window_s=600,
    )
    assert measured is not None
    assert measured.rps_per_instance == pytest.approx(10.0)


def test_too_few_requests_leave_the_ratio_unjudged() -> None:
    """Under min_requests the p95 is noise: no ratio and no sustainable estimate."""
    measured = measure_throughput(
        snapshot(endpoint("payments", critical=True, threshold_ms=150, count=10, p95_ms=50)),
        instances=1,
    )
    assert measured is not None
    assert measured.p95_to_threshold is None
    assert measured.sustainable_rps_per_instance is None


def test_an_empty_window_measures_nothing() -> None:
    """A snapshot with no requests in the window gives None, never a fake zero."""
    assert measure_throughput(snapshot(), instances=2) is None


# --- the wedding calendar file -------------------------------------------------------------


def test_wedding_dates_are_read_from_a_csv_date_column(tmp_path: Path) -> None:
    """A CSV with a wedding_date column gives its dates sorted and without repeats."""
    path = tmp_path / "weddings.csv"
    path.write_text("wedding_id,wedding_date\nw-2,2026-06-19\nw-1,2026-06-12\n\nw-3,2026-06-19\n")
    assert read_wedding_dates(path) == (dt.date(2026, 6, 12), dt.date(2026, 6, 19))


def test_a_bad_csv_date_is_named_by_file_and_line(tmp_path: Path) -> None:
    """A value that is not YYYY-MM-DD raises ValueError naming the file and line."""
    path = tmp_path / "weddings.csv"
    path.write_text("date\n2026-06-12\n19/06/2026\n")
    with pytest.raises(ValueError, match=r"weddings\.csv:3: not a date YYYY-MM-DD: '19/06/2026'"):
        read_wedding_dates(path)


def test_a_csv_without_a_date_column_is_refused(tmp_path: Path) -> None:
    """A CSV header without wedding_date or date is refused on line 1."""
    path = tmp_path / "weddings.csv"
    path.write_text("id,when\nw-1,2026-06-12\n")
    with pytest.raises(ValueError, match=r"weddings\.csv:1: no wedding_date or date column"):
        read_wedding_dates(path)


def test_wedding_dates_are_read_from_json_strings_or_objects(tmp_path: Path) -> None:
    """A JSON list may mix date strings and objects with a wedding_date or date key."""
    path = tmp_path / "weddings.json"
    path.write_text(
        '["2026-06-12", {"id": "w-2", "wedding_date": "2026-06-19"}, {"date": "2026-07-03"}]'
    )
    assert read_wedding_dates(path) == (
        dt.date(2026, 6, 12),
        dt.date(2026, 6, 19),
        dt.date(2026, 7, 3),
    )


def test_a_bad_json_item_is_named_by_its_index(tmp_path: Path) -> None:
    """An object without a date key is refused naming its item index."""
    path = tmp_path / "weddings.json"
    path.write_text('["2026-06-12", {"id": "w-2"}]')
    with pytest.raises(ValueError, match=r"item 1: no wedding_date or date key"):
        read_wedding_dates(path)


def test_a_weddings_file_of_another_kind_is_refused(tmp_path: Path) -> None:
    """Only .csv and .json weddings files are read."""
    with pytest.raises(ValueError, match=r"must be \.csv or \.json"):
        read_wedding_dates(tmp_path / "weddings.txt")


def test_the_wedding_window_splits_past_upcoming_and_beyond() -> None:
    """Today's wedding is upcoming; yesterday's is past; one at the horizon is beyond it."""
    today = dt.date(2026, 6, 1)
    window = wedding_window(
        [dt.date(2026, 5, 31), today, dt.date(2026, 6, 30), dt.date(2026, 7, 1)],
        today=today,
        horizon_days=30,
    )
    assert window.past == (dt.date(2026, 5, 31),)
    assert window.upcoming == (today, dt.date(2026, 6, 30))
    assert window.beyond == (dt.date(2026, 7, 1),)


def test_a_horizon_of_a_year_or_more_is_refused() -> None:
    """A cron has no year, so a horizon over 365 days is refused."""
    with pytest.raises(ValueError, match="horizon_days"):
        wedding_window([], today=dt.date(2026, 6, 1), horizon_days=366)


# --- validation ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"season_multiplier": 0.5}, "at least 1"),
        ({"peak_start_hour": 23, "peak_end_hour": 23}, "start < end"),
        ({"lead_s": 90}, "whole minutes"),
        ({"peak_start_hour": 1, "lead_s": 7200}, "previous day"),
    ],
)
def test_a_bad_load_profile_is_refused(changes: dict[str, float], message: str) -> None:
    """Multipliers under 1, empty peaks, odd leads and leads into the previous day are refused."""
    with pytest.raises(ValueError, match=message):
        LoadProfile(**changes)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"instance_rps": 0}, "instance_rps"),
        ({"target_utilisation": 1.5}, "target_utilisation"),
        ({"min_instances": 5, "max_instances": 4}, "min <= max"),
    ],
)
def test_a_bad_advisor_is_refused(changes: dict[str, float], message: str) -> None:
    """Non-positive capacity, utilisation over 1 and min above max are refused."""
    arguments: dict[str, float] = {"base_rps": 40, "instance_rps": 25, **changes}
    with pytest.raises(ValueError, match=message):
        CapacityAdvisor(**arguments)  # type: ignore[arg-type]


# --- the gauge -----------------------------------------------------------------------------


def gauge_points(reader: InMemoryMetricReader) -> dict[str, int]:
    data = reader.get_metrics_data()
    if data is None:  # nothing observed at all
        return {}
    assert isinstance(data, MetricsData)
    points = {}
    for resource in data.resource_metrics:
        for scope in resource.scope_metrics:
            for metric in scope.metrics:
                assert metric.name == RECOMMENDED_INSTANCES
                for point in metric.data.data_points:
                    assert isinstance(point, NumberDataPoint)
                    assert point.attributes is not None
                    points[str(point.attributes[HORIZON])] = int(point.value)
    return points


def test_plan_observations_are_now_and_the_24_hour_peak() -> None:
    """The gauge's points are plan.now (horizon now) and plan.peak_24h (horizon 24h)."""
    plan = ADVISOR.plan(local(FRIDAY, 23, 10))
    assert plan_observations(plan) == ((6, {HORIZON: "now"}), (20, {HORIZON: "24h"}))


def test_the_gauge_reports_the_advisors_plan_at_each_collection() -> None:
    """The registered gauge reports the current plan every time the reader collects."""
    reader = InMemoryMetricReader()
    provider = MeterProvider(metric_readers=[reader])
    now = [local(FRIDAY, 23, 10)]
    recommended_instances_gauge(provider, lambda: ADVISOR.plan(now[0]))
    assert gauge_points(reader) == {"now": 6, "24h": 20}
    now[0] = local(SATURDAY, 9)
    assert gauge_points(reader) == {"now": 20, "24h": 20}
    provider.shutdown()


def test_a_failing_advisor_callable_yields_no_points_and_is_logged(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """An advisor callable that raises gives no data points and an error log, not a crash."""
    monkeypatch.setenv(RAISE_INTERNAL_ERRORS_ENV, "0")
    reader = InMemoryMetricReader()
    provider = MeterProvider(metric_readers=[reader])

    def broken() -> CapacityPlan:
        raise RuntimeError("calendar unavailable")

    recommended_instances_gauge(provider, broken)
    with caplog.at_level(logging.ERROR, logger="wedsync_otel"):
        data = reader.get_metrics_data()
    points = [
        point
        for resource in (data.resource_metrics if data else [])
        for scope in resource.scope_metrics
        for metric in scope.metrics
        for point in metric.data.data_points
    ]
    assert points == []
    assert "capacity gauge callback" in caplog.text
    provider.shutdown()


def test_no_plan_means_no_points() -> None:
    """An advisor callable returning None (no data yet) gives no data points."""
    reader = InMemoryMetricReader()
    provider = MeterProvider(metric_readers=[reader])
    recommended_instances_gauge(provider, lambda: None)
    assert gauge_points(reader) == {}
    provider.shutdown()


CAPACITY_SRC = Path(__file__).resolve().parent.parent / "src" / "wedsync_otel" / "capacity"


def top_level_imports(module: str) -> list[str]:
    """The ``import`` and ``from`` lines at the top level of a capacity module."""
    source = (CAPACITY_SRC / f"{module}.py").read_text(encoding="utf-8")
    return [line for line in source.splitlines() if line.startswith(("import ", "from "))]


@pytest.mark.parametrize(
    "module", ["advisor", "throughput", "schedule_window", "calendar_file", "json_output"]
)
def test_only_the_gauge_imports_opentelemetry(module: str) -> None:
    """Every capacity module but the gauge keeps OpenTelemetry out of its imports."""
    assert not [line for line in top_level_imports(module) if "opentelemetry" in line]


def test_the_advisor_reads_no_files() -> None:
    """The advisor imports nothing that reads files: the calendar file has its own module."""
    file_modules = ("csv", "json", "pathlib", "io", "os")
    assert not [
        line
        for line in top_level_imports("advisor")
        if line.split()[1].split(".")[0] in file_modules
    ]


def test_new_york_instances_rise_at_local_eight_on_a_wedding_day() -> None:
    """A Friday wedding in New York raises from 08:00 EDT (12:00 UTC), not London's 08:00."""
    advisor = CapacityAdvisor(
        base_rps=40, instance_rps=25, config=WeddingConfig(timezone="America/New_York")
    )
    assert advisor.recommend(local(FRIDAY, 7, 59, NEW_YORK), [FRIDAY]).instances == 6
    assert advisor.recommend(local(FRIDAY, 8, 0, NEW_YORK), [FRIDAY]).instances == 20
