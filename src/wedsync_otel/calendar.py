"""Wedding-calendar rules: proximity bands, Saturdays, season, thresholds, Apdex.

Pure functions over plain values, with no OpenTelemetry import, so every rule
can be tested with tables and hypothesis.
"""

from __future__ import annotations

import datetime as dt
import enum
import math
from typing import NamedTuple

_NS_PER_S = 1_000_000_000
_SATURDAY = 5  # date.weekday()
_MAX_DATE_TEXT = 10  # len("YYYY-MM-DD")


class Band(enum.StrEnum):
    """How close the request's wedding is."""

    WEDDING_DAY = "wedding_day"
    FINAL_WEEK = "final_week"
    FINAL_MONTH = "final_month"
    PLANNING = "planning"
    PAST = "past"
    UNKNOWN = "unknown"


class ApdexClass(enum.StrEnum):
    """Apdex class of one request against its threshold T."""

    SATISFIED = "satisfied"
    TOLERATING = "tolerating"
    FRUSTRATED = "frustrated"


def band_for_days(days_until: int | None) -> Band:
    """Map whole days from the request's date to the wedding onto a band."""
    if days_until is None:
        return Band.UNKNOWN
    if days_until < 0:
        return Band.PAST
    if days_until == 0:
        return Band.WEDDING_DAY
    if days_until <= 7:
        return Band.FINAL_WEEK
    if days_until <= 30:
        return Band.FINAL_MONTH
    return Band.PLANNING


def parse_wedding_date(value: object) -> dt.date | None:
    """Read a wedding date from an attribute, baggage or argument; ``None`` if unusable.

    Only a `date` or a strict ISO ``YYYY-MM-DD`` string is accepted: anything
    longer is rejected before parsing, so a huge attribute costs nothing.
    """
    if isinstance(value, dt.datetime):
        return None  # a datetime is ambiguous about its time zone: refuse it
    if isinstance(value, dt.date):
        return value
    if not isinstance(value, str) or len(value) != _MAX_DATE_TEXT:
        return None
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        return None


def apdex_class(duration_ms: float, threshold_ms: float, *, failed: bool) -> ApdexClass:
    """Apdex class: satisfied <= T < tolerating <= 4T < frustrated; a failure frustrates."""
    if failed or not duration_ms <= 4 * threshold_ms:  # `not <=` also catches NaN
        return ApdexClass.FRUSTRATED
    if duration_ms <= threshold_ms:
        return ApdexClass.SATISFIED
    return ApdexClass.TOLERATING


class DayFacts(NamedTuple):
    """What the calendar says about one local day."""

    date: dt.date
    saturday: bool
    season: bool

    @property
    def kind(self) -> tuple[bool, bool]:
        """(saturday, season): what thresholds depend on."""
        return (self.saturday, self.season)


class PlatformCalendar:
    """Turns instants into local days in the platform time zone.

    Requests arrive in time order, so the current day's UTC bounds are kept
    and most lookups are two integer comparisons instead of a time-zone
    conversion. The cached day is one tuple, replaced whole, so readers on
    other threads never see half of it.
    """

    def __init__(self, timezone: dt.tzinfo, season_months: frozenset[int]) -> None:
        self._tz = timezone
        self._season_months = season_months
        self._day: tuple[int, int, DayFacts] = (0, 0, self._facts(dt.date(1970, 1, 1)))

    def _facts(self, day: dt.date) -> DayFacts:
        return DayFacts(day, day.weekday() == _SATURDAY, day.month in self._season_months)

    def day_of(self, epoch_ns: int) -> DayFacts:
        """The local day containing the instant ``epoch_ns`` (nanoseconds since the epoch)."""
        start_ns, end_ns, facts = self._day
        if start_ns <= epoch_ns < end_ns:
            return facts
        local = dt.datetime.fromtimestamp(epoch_ns / _NS_PER_S, self._tz)
        facts = self._facts(local.date())
        start_ns, end_ns = self._bounds_ns(facts.date)
        if start_ns <= epoch_ns < end_ns:
            self._day = (start_ns, end_ns, facts)
        return facts

    def today(self, now: dt.datetime) -> DayFacts:
        """The local day of an aware datetime."""
        return self._facts(now.astimezone(self._tz).date())

    def _bounds_ns(self, day: dt.date) -> tuple[int, int]:
        """UTC bounds of a local day, robust to DST changes at midnight."""
        start = _first_instant(day, self._tz)
        end = _first_instant(day + dt.timedelta(days=1), self._tz)
        return _to_ns(start), _to_ns(end)


def _first_instant(day: dt.date, tz: dt.tzinfo) -> dt.datetime:
    """The earliest instant whose local date is ``day``.

    Local midnight can be skipped by a DST change (some zones jump 00:00 to
    01:00); then midnight maps past the start, so step back an hour and keep
    the later candidate that still falls on ``day``.
    """
    midnight = dt.datetime.combine(day, dt.time(0), tz)
    earlier = (midnight.astimezone(dt.UTC) - dt.timedelta(hours=1)).astimezone(tz)
    return earlier if earlier.date() == day else midnight


def _to_ns(moment: dt.datetime) -> int:
    return math.floor(moment.timestamp()) * _NS_PER_S


def days_until(wedding_date: dt.date, today: dt.date) -> int:
    """Whole days from ``today`` to the wedding; negative once it has passed."""
    return (wedding_date - today).days
