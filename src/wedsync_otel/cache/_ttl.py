"""How long a cached entry may live: the TTL rules, as pure functions over dates.

The table of bands is in the `wedsync_otel.cache` docstring; the bands come
from `wedsync_otel.calendar.band_for_days`.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from types import MappingProxyType
from typing import Final

from wedsync_otel.cache._key_layout import SUPPLIER, TIMELINE, VENUE
from wedsync_otel.calendar import Band, band_for_days, days_until

_MINUTE_S: Final = 60
_HOUR_S: Final = 3600
_DAY_S: Final = 86_400

SUPPLIER_TTL_S: Final = _DAY_S
VENUE_AVAILABILITY_TTL_S: Final = 15 * _MINUTE_S
TIMELINE_TTL_S: Final = 30 * _MINUTE_S
TIMELINE_NEAR_TTL_S: Final = 3 * _MINUTE_S
WEDDING_INDEX_TTL_S: Final = _DAY_S
"""Life of ``wedding:{id}:keys`` after each write, and so the longest a wedding's entry lives."""

TTL_BY_BAND: Final[Mapping[Band, int]] = MappingProxyType(
    {
        Band.PLANNING: _DAY_S,
        Band.FINAL_MONTH: _HOUR_S,
        Band.FINAL_WEEK: 15 * _MINUTE_S,
        Band.WEDDING_DAY: 5 * _MINUTE_S,
        Band.PAST: _DAY_S,
        Band.UNKNOWN: 15 * _MINUTE_S,
    }
)
"""`ttl_for`'s table, in seconds."""


def ttl_for(wedding_date: dt.date | None, today: dt.date) -> int:
    """Seconds an entry about a wedding may live: shorter as the day approaches (see the table)."""
    days = None if wedding_date is None else days_until(wedding_date, today)
    return TTL_BY_BAND[band_for_days(days)]


def timeline_ttl_for(wedding_date: dt.date | None, today: dt.date) -> int:
    """30 min, or 3 min from the day before the wedding to the day after, when plans move fast."""
    if wedding_date is not None and abs(days_until(wedding_date, today)) <= 1:
        return TIMELINE_NEAR_TTL_S
    return TIMELINE_TTL_S


def rule_ttl_s(namespace: str, wedding_date: dt.date | None, today: dt.date) -> int:
    """The TTL a namespace's rule gives when the caller names none."""
    if namespace == SUPPLIER:
        return SUPPLIER_TTL_S
    if namespace == VENUE:
        return VENUE_AVAILABILITY_TTL_S
    if namespace == TIMELINE:
        return timeline_ttl_for(wedding_date, today)
    return ttl_for(wedding_date, today)
