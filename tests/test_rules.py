"""Tests for wedsync_otel.rules: the threshold rule, judgements, proximity and Apdex."""

from __future__ import annotations

import dataclasses
import datetime as dt
import math
import zoneinfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from wedsync_otel import attributes as attr
from wedsync_otel.calendar import ApdexClass, Band, DayFacts
from wedsync_otel.catalogue import OTHER, EndpointSpec
from wedsync_otel.config import BandMultipliers, WeddingConfig
from wedsync_otel.rules import Judgement, WeddingRules, threshold_ms

TUESDAY = DayFacts(dt.date(2027, 6, 1), saturday=False, season=True)
SATURDAY = DayFacts(dt.date(2027, 6, 5), saturday=True, season=True)
WINTER_SATURDAY = DayFacts(dt.date(2027, 1, 2), saturday=True, season=False)


@pytest.fixture(scope="module")
def rules() -> WeddingRules:
    return WeddingRules(WeddingConfig())


def judged(rules: WeddingRules, path: str, band: Band, day: DayFacts) -> Judgement:
    return rules.judge(rules.endpoint(path), band, day)


# --- the threshold rule through WeddingRules --------------------------------------------------


@pytest.mark.parametrize(
    ("path", "band", "day", "expected_ms"),
    [
        # the contract's worked examples
        pytest.param("/api/payments/charge", Band.UNKNOWN, SATURDAY, 75, id="payments-saturday"),
        pytest.param(
            "/api/venues/v1/availability", Band.FINAL_WEEK, TUESDAY, 150, id="venue-5-days-tuesday"
        ),
        pytest.param("/api/suppliers/s1/profile", Band.UNKNOWN, SATURDAY, 500, id="supplier-sat"),
        pytest.param("/api/couples/c1/timeline", Band.WEDDING_DAY, TUESDAY, 100, id="timeline-day"),
        # the plain rule: base * multiplier(band)
        pytest.param("/api/payments", Band.PLANNING, TUESDAY, 150, id="payments-planning"),
        pytest.param("/api/payments", Band.FINAL_MONTH, TUESDAY, 150, id="payments-final-month"),
        pytest.param("/api/payments", Band.FINAL_WEEK, TUESDAY, 112.5, id="payments-final-week"),
        pytest.param("/api/payments", Band.PAST, TUESDAY, 150, id="payments-past"),
        pytest.param("/api/payments", Band.UNKNOWN, TUESDAY, 150, id="payments-unknown"),
        pytest.param("/api/guest-lists/1", Band.FINAL_WEEK, TUESDAY, 187.5, id="guests-week"),
        pytest.param("/api/suppliers/profiles", Band.FINAL_WEEK, TUESDAY, 375, id="supplier-week"),
        # wedding-day band: wedding_day multiplier, critical capped at 100 ms
        pytest.param("/api/payments", Band.WEDDING_DAY, TUESDAY, 75, id="payments-day"),
        pytest.param("/api/venues/availability", Band.WEDDING_DAY, TUESDAY, 100, id="venue-day"),
        pytest.param("/api/rsvp/r1", Band.WEDDING_DAY, TUESDAY, 100, id="rsvp-day"),
        pytest.param(
            "/api/couples/timeline", Band.WEDDING_DAY, SATURDAY, 100, id="timeline-day-sat"
        ),
        pytest.param("/api/guest-lists", Band.WEDDING_DAY, TUESDAY, 125, id="guests-day-no-cap"),
        pytest.param("/api/suppliers/profiles", Band.WEDDING_DAY, TUESDAY, 250, id="supplier-day"),
        pytest.param("/unknown", Band.WEDDING_DAY, TUESDAY, 100, id="other-day"),
        # Saturday: wedding-day traffic for critical endpoints only, whatever the band
        pytest.param("/api/payments", Band.PLANNING, SATURDAY, 75, id="payments-sat-planning"),
        pytest.param("/api/payments", Band.FINAL_WEEK, SATURDAY, 75, id="payments-sat-week"),
        pytest.param("/api/payments", Band.PAST, SATURDAY, 75, id="payments-sat-past"),
        pytest.param("/api/payments", Band.UNKNOWN, WINTER_SATURDAY, 75, id="payments-winter-sat"),
        pytest.param(
            "/api/couples/c1/timeline", Band.PLANNING, SATURDAY, 100, id="timeline-sat-plan"
        ),
        pytest.param("/api/rsvp", Band.UNKNOWN, SATURDAY, 100, id="rsvp-sat"),
        pytest.param("/api/venues/availability", Band.FINAL_MONTH, SATURDAY, 100, id="venue-sat"),
        pytest.param("/api/guest-lists", Band.PLANNING, SATURDAY, 250, id="guests-sat"),
        pytest.param("/api/guest-lists", Band.FINAL_WEEK, SATURDAY, 187.5, id="guests-sat-week"),
        pytest.param("/api/suppliers/profiles", Band.FINAL_WEEK, SATURDAY, 375, id="supp-sat-week"),
        pytest.param("/unknown", Band.UNKNOWN, SATURDAY, 200, id="other-sat"),
        pytest.param("/unknown", Band.FINAL_WEEK, TUESDAY, 150, id="other-week"),
    ],
)
def test_threshold_table(
    rules: WeddingRules, path: str, band: Band, day: DayFacts, expected_ms: float
) -> None:
    """The default rules give each endpoint, band and day the contract's threshold."""
    assert judged(rules, path, band, day).threshold_ms == pytest.approx(expected_ms)


def test_venue_availability_five_days_out_on_a_tuesday(rules: WeddingRules) -> None:
    """A venue check on Tuesday for a wedding five days later is final_week, T = 150 ms."""
    band, days = rules.proximity(dt.date(2027, 6, 6), TUESDAY)
    judgement = judged(rules, "/api/venues/{venue_id}/availability", band, TUESDAY)
    assert (band, days, judgement.threshold_ms) == (Band.FINAL_WEEK, 5, 150)


@pytest.mark.parametrize(
    ("path", "band", "expected_ms"),
    [
        ("/api/payments", Band.UNKNOWN, 150),
        ("/api/payments", Band.FINAL_WEEK, 112.5),
        ("/api/payments", Band.WEDDING_DAY, 75),
        ("/api/couples/c1/timeline", Band.WEDDING_DAY, 100),
        ("/api/guest-lists", Band.PLANNING, 250),
    ],
)
def test_saturday_mode_off_treats_saturday_as_any_day(
    path: str, band: Band, expected_ms: float
) -> None:
    """With Saturday mode off a Saturday is judged like a Tuesday."""
    rules = WeddingRules(WeddingConfig(saturday_mode=False))
    assert judged(rules, path, band, SATURDAY).threshold_ms == pytest.approx(expected_ms)


def test_season_does_not_change_thresholds(rules: WeddingRules) -> None:
    """In and out of season, every judgement has the same threshold."""
    for spec in (*rules.config.endpoints, rules.other):
        table = rules.judgements(spec)
        for (band, saturday, _), judgement in table.items():
            assert judgement.threshold_ms == table[(band, saturday, False)].threshold_ms


def test_default_threshold_sets_other() -> None:
    """Unclaimed paths use the configured default threshold."""
    custom = WeddingRules(WeddingConfig(default_threshold_ms=420))
    assert judged(custom, "/nope", Band.PLANNING, TUESDAY).threshold_ms == 420


def test_cap_is_configurable() -> None:
    """A critical wedding-day threshold is capped at critical_wedding_day_cap_ms."""
    rules = WeddingRules(WeddingConfig(critical_wedding_day_cap_ms=60))
    assert judged(rules, "/api/payments", Band.WEDDING_DAY, TUESDAY).threshold_ms == 60


def test_band_multipliers_are_configurable() -> None:
    """Changing a band's multiplier changes that band's thresholds."""
    rules = WeddingRules(WeddingConfig(bands=BandMultipliers(planning=2.0)))
    assert judged(rules, "/api/guest-lists", Band.PLANNING, TUESDAY).threshold_ms == 500


# --- threshold_ms directly ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("critical", "saturday", "band", "expected_ms"),
    [
        (True, False, Band.WEDDING_DAY, 100),
        (False, False, Band.WEDDING_DAY, 200),
        (True, True, Band.PLANNING, 100),
        (False, True, Band.PLANNING, 400),
        (True, False, Band.PLANNING, 400),
    ],
)
def test_cap_applies_to_critical_only(
    critical: bool, saturday: bool, band: Band, expected_ms: float
) -> None:
    """The wedding-day cap tightens critical endpoints and leaves others at base * multiplier."""
    config = WeddingConfig(bands=BandMultipliers(wedding_day=1.0, planning=2.0))
    got = threshold_ms(200, band, config, critical=critical, saturday=saturday)
    assert got == expected_ms


_CONFIG = WeddingConfig()


@given(
    st.floats(min_value=0.001, max_value=1e9),
    st.sampled_from(Band),
    st.booleans(),
    st.booleans(),
    st.booleans(),
)
def test_threshold_rule_property(
    base: float, band: Band, critical: bool, saturday: bool, saturday_mode: bool
) -> None:
    """Threshold is base * multiplier, or the wedding-day multiplier and cap on wedding days."""
    config = _CONFIG if saturday_mode else _CONFIG.replace(saturday_mode=False)
    wedding_day = band is Band.WEDDING_DAY or (saturday_mode and critical and saturday)
    expected = base * (0.5 if wedding_day else config.bands.for_band(band))
    if wedding_day and critical:
        expected = min(expected, 100.0)
    got = threshold_ms(base, band, config, critical=critical, saturday=saturday)
    assert got == pytest.approx(expected)


@given(st.floats(min_value=0.001, max_value=1e9), st.sampled_from(Band), st.booleans())
def test_saturday_never_loosens_a_threshold(base: float, band: Band, critical: bool) -> None:
    """A Saturday threshold is never looser than the same request on a weekday."""
    weekday = threshold_ms(base, band, _CONFIG, critical=critical, saturday=False)
    assert threshold_ms(base, band, _CONFIG, critical=critical, saturday=True) <= weekday


# --- judgements -----------------------------------------------------------------------------------


def test_judgement_span_attributes(rules: WeddingRules) -> None:
    """A judgement carries the static wedding.* attributes for its endpoint, band and day."""
    judgement = judged(rules, "/api/payments", Band.FINAL_WEEK, SATURDAY)
    assert dict(judgement.span_attributes) == {
        attr.WEDDING_ENDPOINT: "payments",
        attr.WEDDING_CRITICAL: True,
        attr.WEDDING_PROXIMITY: "final_week",
        attr.WEDDING_SATURDAY: True,
        attr.WEDDING_SEASON: True,
        attr.WEDDING_THRESHOLD_MS: 75.0,
    }


def test_judgement_fields(rules: WeddingRules) -> None:
    """A judgement's fields name the endpoint, criticality, band, day kind and threshold."""
    judgement = judged(rules, "/api/guest-lists", Band.PLANNING, WINTER_SATURDAY)
    assert (
        judgement.endpoint,
        judgement.critical,
        judgement.band,
        judgement.saturday,
        judgement.season,
        judgement.threshold_ms,
    ) == ("guest_lists", False, Band.PLANNING, True, False, 250)


def test_every_combination_is_judged(rules: WeddingRules) -> None:
    """Each endpoint has a judgement for every band, Saturday and season combination."""
    for spec in (*rules.config.endpoints, rules.other):
        assert len(rules.judgements(spec)) == len(Band) * 2 * 2


def test_judge_returns_the_same_object(rules: WeddingRules) -> None:
    """Judging is a lookup: the same inputs give the same Judgement object."""
    first = judged(rules, "/api/rsvp", Band.FINAL_MONTH, TUESDAY)
    assert judged(rules, "/api/rsvp/x", Band.FINAL_MONTH, TUESDAY) is first


@pytest.mark.parametrize(
    ("instant", "zone", "expected_ms"),
    [
        (dt.datetime(2027, 6, 4, 23, 30, tzinfo=dt.UTC), "Europe/London", 75),
        (dt.datetime(2027, 6, 4, 23, 30, tzinfo=dt.UTC), "America/New_York", 150),
        (dt.datetime(2027, 6, 5, 4, 30, tzinfo=dt.UTC), "America/New_York", 75),
    ],
)
def test_saturday_is_judged_in_the_platform_zone(
    instant: dt.datetime, zone: str, expected_ms: float
) -> None:
    """Friday 23:30 UTC is a Saturday payment in London but a Friday one in New York."""
    rules = WeddingRules(WeddingConfig(timezone=zone))
    epoch_ns = (instant - dt.datetime(1970, 1, 1, tzinfo=dt.UTC)) // dt.timedelta(microseconds=1)
    day = rules.calendar.day_of(epoch_ns * 1000)
    assert judged(rules, "/api/payments", Band.UNKNOWN, day).threshold_ms == expected_ms


def test_rules_calendar_uses_the_configured_zone() -> None:
    """The rules' calendar reads days in the configured time zone."""
    rules = WeddingRules(WeddingConfig(timezone="Australia/Sydney"))
    moment = dt.datetime(2027, 6, 5, 15, tzinfo=zoneinfo.ZoneInfo("Europe/London"))
    assert rules.calendar.today(moment).date == dt.date(2027, 6, 6)


# --- endpoint -------------------------------------------------------------------------------------


def test_endpoint_of_none_is_other(rules: WeddingRules) -> None:
    """A span without a route or path is judged as other."""
    assert rules.endpoint(None) is rules.other


def test_endpoint_of_unknown_path_is_other(rules: WeddingRules) -> None:
    """A path the catalogue does not claim is other."""
    assert rules.endpoint("/metrics") is rules.other


def test_other_entry(rules: WeddingRules) -> None:
    """The other entry has the default threshold, no patterns and is not critical."""
    assert rules.other == EndpointSpec(name=OTHER, patterns=(), threshold_ms=200.0)


@pytest.mark.parametrize(
    ("path", "name"),
    [
        ("/api/venues/{venue_id}/availability", "venue_availability"),
        ("/api/venues/v-9/availability", "venue_availability"),
        ("/api/payments?x=1", "payments"),
    ],
)
def test_endpoint_classifies_routes_and_paths(rules: WeddingRules, path: str, name: str) -> None:
    """A route template and a concrete path resolve to the same catalogue entry."""
    assert rules.endpoint(path).name == name


# --- proximity ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("wedding", "today", "band", "days"),
    [
        (None, dt.date(2027, 6, 5), Band.UNKNOWN, None),
        (dt.date(2027, 6, 5), dt.date(2027, 6, 5), Band.WEDDING_DAY, 0),
        (dt.date(2027, 6, 5), dt.date(2027, 5, 31), Band.FINAL_WEEK, 5),
        (dt.date(2027, 6, 5), dt.date(2027, 5, 29), Band.FINAL_WEEK, 7),
        (dt.date(2027, 6, 5), dt.date(2027, 5, 28), Band.FINAL_MONTH, 8),
        (dt.date(2027, 6, 5), dt.date(2027, 5, 6), Band.FINAL_MONTH, 30),
        (dt.date(2027, 6, 5), dt.date(2027, 5, 5), Band.PLANNING, 31),
        (dt.date(2027, 6, 5), dt.date(2027, 6, 6), Band.PAST, -1),
        (dt.date(2028, 2, 29), dt.date(2028, 2, 22), Band.FINAL_WEEK, 7),
        (dt.date(2028, 2, 29), dt.date(2028, 1, 30), Band.FINAL_MONTH, 30),
        (dt.date(2028, 2, 29), dt.date(2028, 3, 1), Band.PAST, -1),
    ],
)
def test_proximity_table(
    rules: WeddingRules,
    wedding: dt.date | None,
    today: dt.date,
    band: Band,
    days: int | None,
) -> None:
    """Proximity is the band and whole days from the request's local date to the wedding."""
    day = DayFacts(today, saturday=today.weekday() == 5, season=False)
    assert rules.proximity(wedding, day) == (band, days)


# --- Apdex ----------------------------------------------------------------------------------------


_ANY_JUDGEMENT = WeddingRules(WeddingConfig()).judge(
    EndpointSpec(name=OTHER, patterns=(), threshold_ms=200.0), Band.UNKNOWN, TUESDAY
)


def _judgement(threshold: float) -> Judgement:
    """A judgement whose threshold is ``threshold``, whatever else a Judgement holds."""
    return dataclasses.replace(_ANY_JUDGEMENT, threshold_ms=threshold)


@pytest.mark.parametrize(
    ("duration_ms", "failed", "apdex"),
    [
        (0.0, False, ApdexClass.SATISFIED),
        (99.999, False, ApdexClass.SATISFIED),
        (100.0, False, ApdexClass.SATISFIED),
        (100.001, False, ApdexClass.TOLERATING),
        (400.0, False, ApdexClass.TOLERATING),
        (400.001, False, ApdexClass.FRUSTRATED),
        (1e12, False, ApdexClass.FRUSTRATED),
        (math.inf, False, ApdexClass.FRUSTRATED),
        (math.nan, False, ApdexClass.FRUSTRATED),
        (0.0, True, ApdexClass.FRUSTRATED),
        (100.0, True, ApdexClass.FRUSTRATED),
        (250.0, True, ApdexClass.FRUSTRATED),
    ],
)
def test_apdex_table(duration_ms: float, failed: bool, apdex: ApdexClass) -> None:
    """Against T = 100 ms: satisfied up to T, tolerating up to 4T, frustrated beyond or failed."""
    assert _judgement(100.0).apdex(duration_ms, failed=failed) is apdex


@given(
    st.floats(min_value=0.001, max_value=1e6),
    st.floats(allow_nan=True, allow_infinity=True),
)
def test_apdex_matches_its_definition(threshold: float, duration_ms: float) -> None:
    """Any duration, NaN and infinities included, gets the class its definition gives."""
    if duration_ms <= threshold:
        expected = ApdexClass.SATISFIED
    elif duration_ms <= 4 * threshold:
        expected = ApdexClass.TOLERATING
    else:
        expected = ApdexClass.FRUSTRATED
    assert _judgement(threshold).apdex(duration_ms, failed=False) is expected


@given(st.floats(min_value=0.001, max_value=1e6), st.floats(allow_nan=True))
def test_failed_requests_are_frustrated(threshold: float, duration_ms: float) -> None:
    """A failed request is frustrated however fast it was."""
    assert _judgement(threshold).apdex(duration_ms, failed=True) is ApdexClass.FRUSTRATED


@given(
    st.floats(min_value=0.001, max_value=1e6),
    st.floats(min_value=0, max_value=1e7),
    st.floats(min_value=0, max_value=1e7),
)
def test_apdex_never_improves_with_a_slower_request(
    threshold: float, first: float, second: float
) -> None:
    """A slower request never gets a better Apdex class than a faster one."""
    order = [ApdexClass.SATISFIED, ApdexClass.TOLERATING, ApdexClass.FRUSTRATED]
    fast, slow = sorted((first, second))
    judgement = _judgement(threshold)
    fast_rank = order.index(judgement.apdex(fast, failed=False))
    assert order.index(judgement.apdex(slow, failed=False)) >= fast_rank


def test_apdex_uses_the_judged_threshold(rules: WeddingRules) -> None:
    """A 90 ms payment is satisfied on a weekday but tolerating on a Saturday (T = 75 ms)."""
    weekday = judged(rules, "/api/payments", Band.UNKNOWN, TUESDAY).apdex(90, failed=False)
    saturday = judged(rules, "/api/payments", Band.UNKNOWN, SATURDAY).apdex(90, failed=False)
    assert (weekday, saturday) == (ApdexClass.SATISFIED, ApdexClass.TOLERATING)


def test_judgements_are_keys_by_identity() -> None:
    """Each judgement hashes and compares as itself, so per-span caches can key by it."""
    rules = WeddingRules(WeddingConfig.default())
    again = WeddingRules(WeddingConfig.default())
    one = rules.judge(rules.other, Band.UNKNOWN, TUESDAY)
    assert {one: 1}[rules.judge(rules.other, Band.UNKNOWN, TUESDAY)] == 1
    assert one != again.judge(again.other, Band.UNKNOWN, TUESDAY)
