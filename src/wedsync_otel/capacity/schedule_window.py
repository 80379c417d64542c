"""wedding_window: which known weddings a schedule made today covers.

Pure. A KEDA cron (`wedsync_otel.ops.keda`) has no year, so a schedule covers a horizon of at
most a year; the rest of the known dates are past or beyond it.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Final

from wedsync_otel.capacity._checks import is_int

MAX_WEDDING_HORIZON_DAYS: Final = 365
"""A 5-field cron has no year: a date a year or more ahead would fire this year first."""


@dataclass(frozen=True, kw_only=True, slots=True)
class WeddingWindow:
    """Which known weddings a schedule made on ``today`` covers."""

    today: dt.date
    horizon_days: int
    upcoming: tuple[dt.date, ...]
    """From today (included) to ``today + horizon_days`` (excluded)."""
    past: tuple[dt.date, ...]
    beyond: tuple[dt.date, ...]


def wedding_window(
    weddings: Iterable[dt.date], *, today: dt.date, horizon_days: int = 90
) -> WeddingWindow:
    """Split known wedding dates into past, upcoming within the horizon, and beyond it."""
    if not is_int(horizon_days) or not 1 <= horizon_days <= MAX_WEDDING_HORIZON_DAYS:
        raise ValueError(
            f"horizon_days: must be 1-{MAX_WEDDING_HORIZON_DAYS} (a cron has no year), "
            f"got {horizon_days!r}"
        )
    dates = sorted(set(weddings))
    end = today + dt.timedelta(days=horizon_days)
    return WeddingWindow(
        today=today,
        horizon_days=horizon_days,
        upcoming=tuple(d for d in dates if today <= d < end),
        past=tuple(d for d in dates if d < today),
        beyond=tuple(d for d in dates if d >= end),
    )
