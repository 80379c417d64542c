"""Tests for wedsync_otel.calendar: bands, wedding dates and local days in the platform zone."""

from __future__ import annotations

import datetime as dt
import functools
import zoneinfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from wedsync_otel.calendar import (
    Band,
    DayFacts,
    PlatformCalendar,
    band_for_days,
    days_until,
    parse_wedding_date,
)

NS_PER_S = 1_000_000_000
SEASON = frozenset(range(5, 11))

# Zones the contract names, plus zones whose clocks change at (or a minute after) midnight.
DST_ZONES = (
    "Europe/London",
    "America/New_York",
    "Australia/Sydney",
    "Pacific/Apia",
    "America/Santiago",
)
MIDNIGHT_DST_ZONES = (
    "America/Havana",  # 00:00 -> 01:00, and back from 01:00 to 00:00
    "Asia/Beirut",  # 00:00 -> 01:00, and back from 24:00 to 23:00
    "America/Asuncion",
    "America/Sao_Paulo",
    "Asia/Tehran",
    "Africa/Cairo",
    "America/St_Johns",  # fell back from 00:01 to 23:01 the day before, 1987-2010
)
ZONES = DST_ZONES + MIDNIGHT_DST_ZONES


def tz(name: str) -> zoneinfo.ZoneInfo:
    return zoneinfo.ZoneInfo(name)


def calendar(zone: str, season_months: frozenset[int] = SEASON) -> PlatformCalendar:
    return PlatformCalendar(tz(zone), season_months)


def ns(moment: dt.datetime) -> int:
    """Exact nanoseconds since the epoch of an aware datetime."""
    return (moment - dt.datetime(1970, 1, 1, tzinfo=dt.UTC)) // dt.timedelta(microseconds=1) * 1000


def local_ns(
    zone: str,
    year: int,
    month: int,
    day: int,
    hour: int = 0,
    minute: int = 0,
    second: int = 0,
    *,
    fold: int = 0,
) -> int:
    """Nanoseconds since the epoch of a local wall-clock time in ``zone``."""
    wall = dt.datetime(year, month, day, hour, minute, second, tzinfo=tz(zone), fold=fold)
    return ns(wall)


def reference_day(epoch_ns: int, zone: str) -> dt.date:
    """The direct conversion of an instant to its local date.

    The contract writes ``datetime.fromtimestamp(ns / 1e9, tz).date()``. UTC offsets are whole
    seconds, so the instant's date is that of the second containing it; flooring to that second
    keeps the conversion exact where the float form rounds the last half microsecond before
    midnight up into the next day.
    """
    return dt.datetime.fromtimestamp(epoch_ns // NS_PER_S, tz(zone)).date()


@functools.cache
def transitions_s(zone: str, first_year: int = 1985, last_year: int = 2035) -> tuple[int, ...]:
    """Every UTC offset change of ``zone`` in the years given, in whole seconds since the epoch."""
    info = tz(zone)

    def offset(second: int) -> dt.timedelta | None:
        return dt.datetime.fromtimestamp(second, info).utcoffset()

    start = int(dt.datetime(first_year, 1, 1, 12, tzinfo=dt.UTC).timestamp())
    stop = int(dt.datetime(last_year, 12, 31, 12, tzinfo=dt.UTC).timestamp())
    found = []
    for day_start in range(start, stop, 86_400):
        low, high = day_start, day_start + 86_400
        if offset(low) == offset(high):
            continue
        while high - low > 1:
            middle = (low + high) // 2
            if offset(middle) == offset(low):
                low = middle
            else:
                high = middle
        found.append(high)
    return tuple(found)


# --- band_for_days ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("days", "band"),
    [
        (None, Band.UNKNOWN),
        (-1, Band.PAST),
        (-365, Band.PAST),
        (0, Band.WEDDING_DAY),
        (1, Band.FINAL_WEEK),
        (7, Band.FINAL_WEEK),
        (8, Band.FINAL_MONTH),
        (30, Band.FINAL_MONTH),
        (31, Band.PLANNING),
        (10_000, Band.PLANNING),
    ],
)
def test_band_for_days_table(days: int | None, band: Band) -> None:
    """Each whole-day distance falls in the band the contract gives it, edges included."""
    assert band_for_days(days) is band


@given(st.integers(min_value=-(10**9), max_value=10**9))
def test_band_for_days_matches_ranges(days: int) -> None:
    """Every integer distance maps onto exactly the band its range defines."""
    if days < 0:
        expected = Band.PAST
    elif days == 0:
        expected = Band.WEDDING_DAY
    elif days <= 7:
        expected = Band.FINAL_WEEK
    elif days <= 30:
        expected = Band.FINAL_MONTH
    else:
        expected = Band.PLANNING
    assert band_for_days(days) is expected


def test_band_values_are_attribute_strings() -> None:
    """Band values are the strings written to spans."""
    assert [band.value for band in Band] == [
        "wedding_day",
        "final_week",
        "final_month",
        "planning",
        "past",
        "unknown",
    ]


# --- days_until ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("wedding", "today", "days"),
    [
        (dt.date(2028, 2, 29), dt.date(2028, 2, 29), 0),
        (dt.date(2028, 2, 29), dt.date(2028, 2, 28), 1),
        (dt.date(2028, 3, 1), dt.date(2028, 2, 28), 2),
        (dt.date(2028, 2, 29), dt.date(2028, 3, 1), -1),
        (dt.date(2028, 2, 29), dt.date(2027, 2, 28), 366),
        (dt.date(2027, 3, 1), dt.date(2027, 2, 28), 1),
        (dt.date(2028, 1, 1), dt.date(2027, 12, 31), 1),
    ],
)
def test_days_until_table(wedding: dt.date, today: dt.date, days: int) -> None:
    """Whole days to the wedding count 29 February in leap years only, and go negative after it."""
    assert days_until(wedding, today) == days


@given(
    st.dates(min_value=dt.date(1000, 1, 1), max_value=dt.date(9000, 1, 1)),
    st.integers(min_value=-300_000, max_value=300_000),
)
def test_days_until_inverts_adding_days(today: dt.date, days: int) -> None:
    """The wedding ``n`` days after today is ``n`` days away."""
    assert days_until(today + dt.timedelta(days=days), today) == days


@pytest.mark.parametrize(
    ("today", "band"),
    [
        (dt.date(2028, 2, 29), Band.WEDDING_DAY),
        (dt.date(2028, 2, 28), Band.FINAL_WEEK),
        (dt.date(2028, 2, 22), Band.FINAL_WEEK),
        (dt.date(2028, 2, 21), Band.FINAL_MONTH),
        (dt.date(2028, 1, 30), Band.FINAL_MONTH),
        (dt.date(2028, 1, 29), Band.PLANNING),
        (dt.date(2028, 3, 1), Band.PAST),
    ],
)
def test_leap_day_wedding_bands(today: dt.date, band: Band) -> None:
    """A wedding on 29 February 2028 is banded by whole days counting that leap day."""
    assert band_for_days(days_until(dt.date(2028, 2, 29), today)) is band


# --- parse_wedding_date ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2027-06-05", dt.date(2027, 6, 5)),
        ("2028-02-29", dt.date(2028, 2, 29)),
        ("2000-02-29", dt.date(2000, 2, 29)),
        ("0001-01-01", dt.date(1, 1, 1)),
        ("9999-12-31", dt.date(9999, 12, 31)),
        (dt.date(2028, 2, 29), dt.date(2028, 2, 29)),
    ],
)
def test_parse_wedding_date_accepts(value: object, expected: dt.date) -> None:
    """A date or a strict YYYY-MM-DD string gives that date."""
    assert parse_wedding_date(value) == expected


@pytest.mark.parametrize(
    "value",
    [
        pytest.param(dt.datetime(2027, 6, 5, 12, 0), id="naive-datetime"),
        pytest.param(dt.datetime(2027, 6, 5, tzinfo=dt.UTC), id="aware-datetime"),
        pytest.param("2027-02-30", id="30-february"),
        pytest.param("2027-02-29", id="29-february-common-year"),
        pytest.param("2100-02-29", id="29-february-2100"),
        pytest.param("2027-13-01", id="month-13"),
        pytest.param("2027-00-10", id="month-0"),
        pytest.param("2027-04-31", id="31-april"),
        pytest.param("0000-01-01", id="year-0"),
        pytest.param("20270605", id="basic-format"),
        pytest.param("2027-6-5", id="unpadded"),
        pytest.param(" 2027-06-05", id="leading-space"),
        pytest.param("2027-06-05 ", id="trailing-space"),
        pytest.param("2027-06-05\n", id="trailing-newline"),
        pytest.param("2027-06-05T00:00", id="iso-datetime"),
        pytest.param("2027/06/05", id="slashes"),
        pytest.param("05-06-2027", id="day-first"),
        pytest.param("+027-06-05", id="signed-year"),
        pytest.param("2027-W22-6", id="iso-week-date"),
        pytest.param("2027W226xx", id="compact-week-date-with-junk"),
        pytest.param("\uff12\uff10\uff12\uff17-06-05", id="fullwidth-digits"),
        pytest.param("\u0662\u0660\u0662\u0667-\u0660\u0666-\u0660\u0665", id="arabic-digits"),
        pytest.param("2027-06-0\ud800", id="lone-surrogate"),
        pytest.param("", id="empty"),
        pytest.param("wedding!!!", id="garbage"),
        pytest.param("2027-06-05" * 100_000, id="huge-string"),
        pytest.param("x" * 10_000_000, id="ten-megabytes"),
        pytest.param(b"2027-06-05", id="bytes"),
        pytest.param(20270605, id="int"),
        pytest.param(2027.0605, id="float"),
        pytest.param(None, id="none"),
        pytest.param(["2027-06-05"], id="list"),
        pytest.param({"date": "2027-06-05"}, id="dict"),
        pytest.param(object(), id="object"),
    ],
)
def test_parse_wedding_date_rejects(value: object) -> None:
    """Anything but a real date or a strict YYYY-MM-DD string gives None."""
    assert parse_wedding_date(value) is None


@given(st.dates())
def test_parse_wedding_date_round_trips_isoformat(day: dt.date) -> None:
    """Every date's YYYY-MM-DD text parses back to that date."""
    assert parse_wedding_date(day.isoformat()) == day


def _date_spellings(day: dt.date) -> st.SearchStrategy[str]:
    """Ways of writing a date, ISO and otherwise, some of them exactly ten characters long."""
    year, week, weekday = day.isocalendar()
    return st.sampled_from(
        [
            day.isoformat(),
            f"{day.year:04d}{day.month:02d}{day.day:02d}",
            f"{year:04d}-W{week:02d}-{weekday}",
            f"{year:04d}W{week:02d}{weekday}",
            f"{year:04d}W{week:02d}{weekday}00",
            f"{day.year:04d}-{day.month:02d}-{day.day:02d}T0",
            f"{day.year:04d}/{day.month:02d}/{day.day:02d}",
            f"{day.day:02d}-{day.month:02d}-{day.year:04d}",
            f"{day.year:04d}-{day.timetuple().tm_yday:03d}",
        ]
    )


@settings(max_examples=200)
@given(
    st.one_of(
        st.dates(min_value=dt.date(1000, 1, 1)).flatmap(_date_spellings),
        st.text(alphabet="0123456789-W:T+ Z.", min_size=8, max_size=12),
        st.text(min_size=10, max_size=10),
        st.builds(
            "{:04d}-{:02d}-{:02d}".format,
            st.integers(min_value=0, max_value=9999),
            st.integers(min_value=0, max_value=99),
            st.integers(min_value=0, max_value=99),
        ),
    )
)
def test_parse_wedding_date_is_strict(text: str) -> None:
    """A string parses only if it is exactly the YYYY-MM-DD spelling of the date it gives."""
    parsed = parse_wedding_date(text)
    assert parsed is None or parsed.isoformat() == text


@given(
    st.one_of(
        st.none(),
        st.booleans(),
        st.integers(),
        st.floats(),
        st.text(),
        st.binary(),
        st.dates(),
        st.datetimes(),
        st.times(),
        st.lists(st.text(), max_size=3),
        st.dictionaries(st.text(max_size=3), st.text(max_size=3), max_size=3),
    )
)
def test_parse_wedding_date_never_raises(value: object) -> None:
    """Whatever arrives in an attribute, parsing returns a date or None without raising."""
    parsed = parse_wedding_date(value)
    assert parsed is None or type(parsed) is dt.date


# --- PlatformCalendar.day_of: fixed instants --------------------------------------------------


@pytest.mark.parametrize(
    ("zone", "fields", "saturday"),
    [
        ("Europe/London", (2027, 6, 4, 23, 59, 59), False),
        ("Europe/London", (2027, 6, 5, 0, 0, 0), True),
        ("Europe/London", (2027, 6, 5, 23, 59, 59), True),
        ("Europe/London", (2027, 6, 6, 0, 0, 0), False),
        ("America/New_York", (2027, 6, 4, 23, 59, 59), False),
        ("America/New_York", (2027, 6, 5, 0, 0, 0), True),
        ("America/New_York", (2027, 6, 5, 23, 59, 59), True),
        ("America/New_York", (2027, 6, 6, 0, 0, 0), False),
        ("Australia/Sydney", (2027, 6, 4, 23, 59, 59), False),
        ("Australia/Sydney", (2027, 6, 5, 0, 0, 0), True),
        ("Pacific/Apia", (2027, 6, 4, 23, 59, 59), False),
        ("Pacific/Apia", (2027, 6, 5, 0, 0, 0), True),
        ("Asia/Kolkata", (2027, 6, 4, 23, 59, 59), False),
        ("Asia/Kolkata", (2027, 6, 5, 0, 0, 0), True),
        ("Asia/Kathmandu", (2027, 6, 4, 23, 59, 59), False),
        ("Asia/Kathmandu", (2027, 6, 5, 0, 0, 0), True),
        ("UTC", (2027, 6, 4, 23, 59, 59), False),
        ("UTC", (2027, 6, 5, 0, 0, 0), True),
    ],
)
def test_saturday_starts_at_local_midnight(
    zone: str, fields: tuple[int, ...], saturday: bool
) -> None:
    """Friday 23:59:59 local is not a Saturday, Saturday 00:00 local is, in every zone."""
    assert calendar(zone).day_of(local_ns(zone, *fields)).saturday is saturday


@pytest.mark.parametrize(
    ("zone", "date", "saturday"),
    [
        ("Europe/London", dt.date(2027, 6, 5), True),
        ("America/New_York", dt.date(2027, 6, 4), False),
        ("America/Los_Angeles", dt.date(2027, 6, 4), False),
        ("Australia/Sydney", dt.date(2027, 6, 5), True),
        ("UTC", dt.date(2027, 6, 4), False),
    ],
)
def test_one_utc_instant_is_saturday_in_some_zones_only(
    zone: str, date: dt.date, saturday: bool
) -> None:
    """Friday 23:30 UTC is Saturday in London and Sydney but Friday in New York and UTC."""
    facts = calendar(zone).day_of(ns(dt.datetime(2027, 6, 4, 23, 30, tzinfo=dt.UTC)))
    assert (facts.date, facts.saturday) == (date, saturday)


def test_utc_saturday_afternoon_is_sunday_in_sydney() -> None:
    """Saturday 15:00 UTC is already Sunday in Sydney, so not a Saturday there."""
    facts = calendar("Australia/Sydney").day_of(ns(dt.datetime(2027, 6, 5, 15, tzinfo=dt.UTC)))
    assert (facts.date, facts.saturday) == (dt.date(2027, 6, 6), False)


@pytest.mark.parametrize("zone", ZONES)
def test_both_sides_of_midnight(zone: str) -> None:
    """The last second before local midnight is the old day and midnight itself the new one."""
    cal = calendar(zone)
    midnight = local_ns(zone, 2027, 6, 5)
    assert [cal.day_of(midnight - NS_PER_S).date, cal.day_of(midnight).date] == [
        dt.date(2027, 6, 4),
        dt.date(2027, 6, 5),
    ]


@pytest.mark.parametrize("zone", ["Europe/London", "America/New_York", "Australia/Sydney"])
def test_leap_day_is_its_own_day(zone: str) -> None:
    """29 February 2028 runs from its own local midnight to that of 1 March."""
    cal = calendar(zone)
    days = [
        cal.day_of(local_ns(zone, 2028, 2, 28, 23, 59, 59)).date,
        cal.day_of(local_ns(zone, 2028, 2, 29)).date,
        cal.day_of(local_ns(zone, 2028, 2, 29, 23, 59, 59)).date,
        cal.day_of(local_ns(zone, 2028, 3, 1)).date,
    ]
    assert days == [
        dt.date(2028, 2, 28),
        dt.date(2028, 2, 29),
        dt.date(2028, 2, 29),
        dt.date(2028, 3, 1),
    ]


@pytest.mark.parametrize(
    ("zone", "fields", "season"),
    [
        ("Europe/London", (2027, 4, 30, 23, 59, 59), False),
        ("Europe/London", (2027, 5, 1, 0, 0, 0), True),
        ("Europe/London", (2027, 10, 31, 23, 59, 59), True),
        ("Europe/London", (2027, 11, 1, 0, 0, 0), False),
        ("Australia/Sydney", (2027, 5, 1, 0, 0, 0), True),
        ("Australia/Sydney", (2027, 4, 30, 23, 59, 59), False),
    ],
)
def test_season_follows_the_local_month(zone: str, fields: tuple[int, ...], season: bool) -> None:
    """Season starts and ends at local midnight on the first and last season days."""
    assert calendar(zone).day_of(local_ns(zone, *fields)).season is season


def test_season_months_are_configurable() -> None:
    """A calendar with an empty season never reports season."""
    cal = calendar("Europe/London", frozenset())
    assert cal.day_of(local_ns("Europe/London", 2027, 6, 5, 12)).season is False


def test_day_facts_kind_is_saturday_and_season() -> None:
    """The kind of a day is its (saturday, season) pair."""
    assert DayFacts(dt.date(2027, 6, 5), True, False).kind == (True, False)


@pytest.mark.parametrize(
    ("zone", "fields", "fold"),
    [
        # Santiago: 2028-09-02 24:00 -04 jumps to 2028-09-03 01:00 -03 (midnight skipped).
        ("America/Santiago", (2028, 9, 2, 23, 59, 59), 0),
        ("America/Santiago", (2028, 9, 3, 1, 0, 0), 0),
        # Santiago: 2028-04-01 24:00 -03 falls back to 23:00 -04 (the last hour repeats).
        ("America/Santiago", (2028, 4, 1, 23, 30, 0), 0),
        ("America/Santiago", (2028, 4, 1, 23, 30, 0), 1),
        ("America/Santiago", (2028, 4, 2, 0, 0, 0), 0),
        # Havana: 2028-03-12 00:00 jumps to 01:00, 2028-11-05 01:00 falls back to 00:00.
        ("America/Havana", (2028, 3, 11, 23, 59, 59), 0),
        ("America/Havana", (2028, 3, 12, 1, 0, 0), 0),
        ("America/Havana", (2028, 11, 5, 0, 0, 0), 0),
        ("America/Havana", (2028, 11, 5, 0, 0, 0), 1),
        ("America/Havana", (2028, 11, 4, 23, 59, 59), 0),
        # London and Sydney: ordinary early-morning changes.
        ("Europe/London", (2027, 3, 28, 0, 59, 59), 0),
        ("Europe/London", (2027, 3, 28, 2, 0, 0), 0),
        ("Europe/London", (2027, 10, 31, 1, 30, 0), 1),
        ("Australia/Sydney", (2027, 4, 4, 2, 30, 0), 1),
        ("Australia/Sydney", (2027, 10, 3, 3, 0, 0), 0),
    ],
)
def test_dst_change_days_after_a_warm_cache(zone: str, fields: tuple[int, ...], fold: int) -> None:
    """An instant on a DST-change day has its own local date even right after the day before."""
    cal = calendar(zone)
    target = local_ns(zone, *fields, fold=fold)
    cal.day_of(target - 20 * 3600 * NS_PER_S)
    cal.day_of(target - NS_PER_S)
    assert cal.day_of(target).date == dt.date(*fields[:3])


def test_apia_skipped_day_never_appears() -> None:
    """Samoa skipped 30 December 2011: the second after 29 December 23:59:59 is 31 December."""
    cal = calendar("Pacific/Apia")
    last_second = local_ns("Pacific/Apia", 2011, 12, 29, 23, 59, 59)
    cal.day_of(last_second - 12 * 3600 * NS_PER_S)
    assert [cal.day_of(last_second).date, cal.day_of(last_second + NS_PER_S).date] == [
        dt.date(2011, 12, 29),
        dt.date(2011, 12, 31),
    ]


@pytest.mark.parametrize("zone", ["Europe/London", "America/New_York", "Australia/Sydney"])
def test_call_order_does_not_change_days(zone: str) -> None:
    """Days around a DST change come out the same forwards, backwards and interleaved."""
    change = transitions_s(zone, 2027, 2027)[0] * NS_PER_S
    instants = [change + k * 1800 * NS_PER_S for k in range(-60, 60)]
    expected = [reference_day(i, zone) for i in instants]
    orders = [instants, instants[::-1], instants[::2] + instants[1::2]]
    results = []
    for order in orders:
        cal = calendar(zone)
        by_instant = {i: cal.day_of(i).date for i in order}
        results.append([by_instant[i] for i in instants])
    assert results == [expected, expected, expected]


# --- Instants that a cached day's UTC bounds can get wrong ------------------------------------


def test_instant_just_before_midnight_is_the_same_day_warm_or_cold() -> None:
    """One nanosecond before local midnight, a fresh calendar and a warm one agree on the day."""
    instant = local_ns("Europe/London", 2027, 6, 5) - 1
    cold = calendar("Europe/London").day_of(instant).date
    warm_cal = calendar("Europe/London")
    warm_cal.day_of(local_ns("Europe/London", 2027, 6, 4, 12))
    warm = warm_cal.day_of(instant).date
    assert (cold, warm) == (reference_day(instant, "Europe/London"),) * 2


def test_repeated_hour_before_midnight_is_the_previous_day() -> None:
    """St John's fell back from 00:01 to 23:01 on 25 October 1987: the repeat is 24 October."""
    cal = calendar("America/St_Johns")
    cal.day_of(local_ns("America/St_Johns", 1987, 10, 25, 0, 0, 30))
    repeated = local_ns("America/St_Johns", 1987, 10, 24, 23, 30, fold=1)
    assert cal.day_of(repeated).date == dt.date(1987, 10, 24)


def test_midnight_inside_a_gap_starts_the_day_at_the_gap() -> None:
    """Toronto jumped from 23:30 on 30 March 1919 to 00:30 on 31 March: 00:45 is 31 March."""
    cal = calendar("America/Toronto")
    cal.day_of(local_ns("America/Toronto", 1919, 3, 30, 12))
    assert cal.day_of(local_ns("America/Toronto", 1919, 3, 31, 0, 45)).date == dt.date(1919, 3, 31)


# --- PlatformCalendar.day_of: hypothesis -----------------------------------------------------

_OFFSET_NS = st.one_of(
    st.integers(min_value=-36 * 3600, max_value=36 * 3600).map(lambda s: s * NS_PER_S),
    st.integers(min_value=-2 * 3600, max_value=2 * 3600).map(lambda s: s * NS_PER_S),
    st.integers(min_value=-2_000, max_value=2_000),
)
"""Distance from an anchor: whole seconds up to a day and a half, or a few nanoseconds."""


def _midnight_ns(zone: str) -> st.SearchStrategy[int]:
    return st.dates(min_value=dt.date(1901, 1, 2), max_value=dt.date(2099, 12, 30)).map(
        lambda day: ns(dt.datetime.combine(day, dt.time(0), tz(zone)))
    )


def _transition_ns(zone: str) -> st.SearchStrategy[int]:
    return st.sampled_from(transitions_s(zone)).map(lambda change: change * NS_PER_S)


def _instants(zone: str) -> st.SearchStrategy[list[int]]:
    """Requests clustered around one to three local midnights or DST changes, in any order."""
    anchors = st.lists(
        st.one_of(_midnight_ns(zone), _transition_ns(zone)), min_size=1, max_size=3, unique=True
    )
    return anchors.flatmap(
        lambda points: st.lists(
            st.builds(int.__add__, st.sampled_from(points), _OFFSET_NS), min_size=1, max_size=20
        )
    )


@settings(max_examples=100, deadline=None)
@given(st.sampled_from(ZONES).flatmap(lambda zone: st.tuples(st.just(zone), _instants(zone))))
def test_day_of_matches_direct_conversion_in_any_order(case: tuple[str, list[int]]) -> None:
    """Instants near midnights and DST changes, asked in any order, get their direct date."""
    zone, instants = case
    cal = calendar(zone)
    got = [cal.day_of(instant).date for instant in instants]
    assert got == [reference_day(instant, zone) for instant in instants]


@settings(max_examples=50, deadline=None)
@given(
    st.sampled_from(ZONES).flatmap(lambda zone: st.tuples(st.just(zone), _instants(zone))),
    st.data(),
)
def test_day_of_facts_follow_the_date(case: tuple[str, list[int]], data: st.DataObject) -> None:
    """Saturday and season always describe the date day_of returned."""
    zone, instants = case
    months = data.draw(st.frozensets(st.integers(min_value=1, max_value=12)))
    cal = calendar(zone, months)
    for instant in instants:
        facts = cal.day_of(instant)
        assert facts.kind == (facts.date.weekday() == 5, facts.date.month in months)


@settings(max_examples=100, deadline=None)
@given(st.sampled_from(ZONES).flatmap(lambda zone: st.tuples(st.just(zone), _instants(zone))))
def test_last_day_names_the_day_of_every_instant_in_its_interval(
    case: tuple[str, list[int]],
) -> None:
    """Whatever day_of was last asked, last_day's interval holds only instants of its date."""
    zone, instants = case
    cal = calendar(zone)
    for asked in instants:
        cal.day_of(asked)
        low, high, facts = cal.last_day
        for probe in (*instants, low, high - 1):
            if low <= probe < high:
                assert reference_day(probe, zone) == facts.date


# --- PlatformCalendar.today ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("zone", "date"),
    [
        ("Europe/London", dt.date(2027, 6, 5)),
        ("America/New_York", dt.date(2027, 6, 4)),
        ("Australia/Sydney", dt.date(2027, 6, 5)),
    ],
)
def test_today_converts_an_aware_datetime(zone: str, date: dt.date) -> None:
    """today() reads an aware datetime's date in the platform zone, not in its own zone."""
    assert calendar(zone).today(dt.datetime(2027, 6, 4, 23, 30, tzinfo=dt.UTC)).date == date


@settings(max_examples=100, deadline=None)
@given(
    st.sampled_from(ZONES),
    st.datetimes(
        min_value=dt.datetime(1901, 1, 2),
        max_value=dt.datetime(2099, 12, 30),
        timezones=st.sampled_from([dt.UTC, tz("Asia/Tokyo"), tz("America/Los_Angeles")]),
    ),
)
def test_today_agrees_with_day_of(zone: str, moment: dt.datetime) -> None:
    """today() of an aware datetime gives the same facts as day_of() of the same instant."""
    cal = calendar(zone)
    assert cal.today(moment) == cal.day_of(ns(moment))
