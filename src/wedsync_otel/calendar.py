"""Wedding-calendar rules: proximity bands, Saturdays, season, thresholds, Apdex.

Pure functions over plain values, with no OpenTelemetry import, so every rule
can be tested with tables and hypothesis.
"""

from __future__ import annotations

import datetime as dt
import enum
import re
from collections.abc import Callable
from typing import NamedTuple

Clock = Callable[[], dt.datetime]
"""Returns the current time as an aware datetime: what every ``clock`` parameter takes."""

_NS_PER_S = 1_000_000_000
_SATURDAY = 5  # date.weekday()
_MAX_DATE_TEXT = 10  # len("YYYY-MM-DD")
_ISO_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")


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


# Enum member lookups go through the metaclass (about 0.3 us each); per-span code reads these.
_WEDDING_DAY, _FINAL_WEEK, _FINAL_MONTH = Band.WEDDING_DAY, Band.FINAL_WEEK, Band.FINAL_MONTH
_PLANNING, _PAST, _UNKNOWN = Band.PLANNING, Band.PAST, Band.UNKNOWN
_SATISFIED, _TOLERATING, _FRUSTRATED = (
    ApdexClass.SATISFIED,
    ApdexClass.TOLERATING,
    ApdexClass.FRUSTRATED,
)


def band_for_days(days_until: int | None) -> Band:
    """Map whole days from the request's date to the wedding onto a band."""
    if days_until is None:
        return _UNKNOWN
    if days_until < 0:
        return _PAST
    if days_until == 0:
        return _WEDDING_DAY
    if days_until <= 7:
        return _FINAL_WEEK
    if days_until <= 30:
        return _FINAL_MONTH
    return _PLANNING


def parse_wedding_date(value: object) -> dt.date | None:
    """Read a wedding date from an attribute, baggage or argument; ``None`` if unusable.

    Only a `date` or a strict ISO ``YYYY-MM-DD`` string is accepted: anything
    longer is rejected before parsing, so a huge attribute costs nothing.
    """
    if isinstance(value, dt.datetime):
        return None  # a datetime is ambiguous about its time zone: refuse it
    if isinstance(value, dt.date):
        return value
    if not isinstance(value, str):
        return None
    # A str subclass is read by its characters, not by methods it may override (the compiled
    # core reads them so whatever the class says): both builds agree.
    text = value if type(value) is str else str.__str__(value)
    if len(text) != _MAX_DATE_TEXT or not _ISO_DATE.match(text):
        return None  # fromisoformat alone would also take week dates like 2026-W25-6
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        return None


def apdex_class(duration_ms: float, threshold_ms: float, *, failed: bool) -> ApdexClass:
    """Apdex class: satisfied <= T < tolerating <= 4T < frustrated; a failure frustrates."""
    if failed or not duration_ms <= 4 * threshold_ms:  # `not <=` also catches NaN
        return _FRUSTRATED
    if duration_ms <= threshold_ms:
        return _SATISFIED
    return _TOLERATING


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

    Requests arrive in time order, so the span of time around the last
    instant during which the local date cannot change is kept, and most
    lookups are two integer comparisons instead of a time-zone conversion.
    That span is at most one UTC hour, clipped to the local day, and kept
    only when the UTC offset is the same at both of its ends: a local day is
    not one interval when clocks fall back across midnight, but no zone
    changes its offset twice within an hour. The cached span is one tuple,
    replaced whole, so readers on other threads never see half of it.
    """

    def __init__(self, timezone: dt.tzinfo, season_months: frozenset[int]) -> None:
        self._tz = timezone
        self._season_months = season_months
        self.last_day: tuple[int, int, DayFacts] = (0, 0, self._facts(dt.date(1970, 1, 1)))
        """``(start_ns, end_ns, facts)``: the day of every instant in ``[start_ns, end_ns)``.

        What `day_of` tests first; a caller on a hot path may test it itself
        and call `day_of` only when the instant falls outside.
        """

    def _facts(self, day: dt.date) -> DayFacts:
        return DayFacts(day, day.weekday() == _SATURDAY, day.month in self._season_months)

    def day_of(self, epoch_ns: int) -> DayFacts:
        """The local day containing the instant ``epoch_ns`` (nanoseconds since the epoch)."""
        start_ns, end_ns, facts = self.last_day
        if start_ns <= epoch_ns < end_ns:
            return facts
        local = self._local(epoch_ns)
        facts = self._facts(local.date())
        span = self._stable_span(epoch_ns, local)
        if span is not None:
            self.last_day = (*span, facts)
        return facts

    def today(self, now: dt.datetime) -> DayFacts:
        """The local day of an aware datetime."""
        return self._facts(now.astimezone(self._tz).date())

    def _local(self, epoch_ns: int) -> dt.datetime:
        # Offsets are whole seconds, so the date of the floor second is the instant's date.
        return dt.datetime.fromtimestamp(epoch_ns // _NS_PER_S, self._tz)

    def _stable_span(self, epoch_ns: int, local: dt.datetime) -> tuple[int, int] | None:
        """Bounds around ``epoch_ns`` within which the local date cannot change, if provable."""
        offset = local.utcoffset()
        if offset is None:
            return None
        offset_ns = (offset.days * 86_400 + offset.seconds) * _NS_PER_S
        midnight = dt.datetime.combine(local.date(), dt.time(0))
        day_start = int((midnight - _EPOCH).total_seconds()) * _NS_PER_S - offset_ns
        hour_start = epoch_ns - epoch_ns % _NS_PER_HOUR
        low = max(hour_start, day_start)
        high = min(hour_start + _NS_PER_HOUR, day_start + _NS_PER_DAY)
        if not low <= epoch_ns < high:
            return None
        for edge in (low, high - 1):
            if self._local(edge).utcoffset() != offset:
                return None
        return low, high


_EPOCH = dt.datetime(1970, 1, 1)
_NS_PER_HOUR = 3600 * _NS_PER_S
_NS_PER_DAY = 86_400 * _NS_PER_S


def days_until(wedding_date: dt.date, today: dt.date) -> int:
    """Whole days from ``today`` to the wedding; negative once it has passed."""
    return (wedding_date - today).days
