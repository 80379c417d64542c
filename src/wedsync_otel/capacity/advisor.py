"""CapacityAdvisor: how many instances the wedding calendar needs, now and over the next 24 h.

Pure: plain values in, a `CapacityPlan` out, with no file I/O and no OpenTelemetry. Reading
the known weddings from a file (`calendar_file`), measuring ``instance_rps`` from a snapshot
(`throughput`), the gauge (`gauge`) and the JSON form of a plan (`json_output`) live beside it.

**The model.** The fleet's load at an instant is ``base_rps x multiplier``, and one instance
sustains ``instance_rps`` with p95 under its threshold, run at ``target_utilisation`` of that
for headroom, so::

    instances = ceil(base_rps * multiplier / (instance_rps * target_utilisation))

clamped to ``[min_instances, max_instances]``. The multiplier is the **largest** of the factors
that apply (`LoadProfile`): 1 (base); ``season_multiplier`` (3x) when the local date is in a
season month of the config; ``saturday_multiplier`` (10x) inside a Saturday's raised window;
``wedding_day_multiplier`` (10x) inside a known wedding day's raised window. The largest, not
the product: the performance report's 10x is the peak of a season Saturday measured against the
base, so a season Saturday is 10x, not 3 x 10 = 30x, a figure nobody measured. For an off-season
Saturday the maximum is the cautious side (10x where the real figure may be lower).

**Peaks and pre-emption.** A peak day (a Saturday, or a known wedding's date) peaks from
``peak_start_hour`` to ``peak_end_hour`` local time (10:00-23:00 by default: ceremonies,
receptions and the suppliers' day around them). Its instances are wanted from ``lead_s`` (2 h)
before the peak starts, on the local wall clock, until the peak ends: 08:00-23:00 by default.
That is the *raised window*, exactly what the KEDA cron triggers in `wedsync_otel.ops.keda`
schedule. The season starts and ends at local midnight of its first and last days, with no lead:
it builds up over weeks, not minutes.

**The rates.** ``instance_rps`` is best measured by a load test of one instance (see
`wedsync_otel.capacity.throughput` for the figure live snapshots give). ``base_rps`` is the
fleet's request rate in the busiest hour of an ordinary off-season weekday: the model has no
daily curve, so the base covers every hour that is not a season or peak hour.
"""

from __future__ import annotations

import datetime as dt
import enum
import math
import zoneinfo
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Final

from wedsync_otel.capacity._checks import is_int
from wedsync_otel.config import WeddingConfig

EXAMPLE_BASE_RPS: Final = 40.0
"""Example base load for generated examples and the CLI's default: measure yours."""
EXAMPLE_INSTANCE_RPS: Final = 25.0
"""Example per-instance capacity for generated examples and the CLI's default: measure yours."""

_SATURDAY = 5  # date.weekday()
_INSTANT = dt.timedelta(microseconds=1)
_HOUR = dt.timedelta(hours=1)
_EPSILON = 1e-9  # 40 * 3 / (25 * 0.8) must be 6 instances, not 7


class LoadKind(enum.StrEnum):
    """What sets the load multiplier: the largest factor that applies."""

    BASE = "base"
    SEASON = "season"
    SATURDAY = "saturday"
    WEDDING_DAY = "wedding_day"


# Among equal multipliers, the reason names the most specific cause.
_PRIORITY: Final = {
    LoadKind.BASE: 0,
    LoadKind.SEASON: 1,
    LoadKind.SATURDAY: 2,
    LoadKind.WEDDING_DAY: 3,
}


@dataclass(frozen=True, kw_only=True, slots=True)
class LoadProfile:
    """When traffic peaks and by how much, relative to the base load."""

    season_multiplier: float = 3.0
    saturday_multiplier: float = 10.0
    wedding_day_multiplier: float = 10.0
    peak_start_hour: int = 10
    """Local hour a peak day's peak starts (Saturdays and known wedding days)."""
    peak_end_hour: int = 23
    """Local hour it ends (exclusive)."""
    lead_s: int = 7200
    """How long before the peak starts its instances are wanted; whole minutes."""

    def __post_init__(self) -> None:
        for name in ("season_multiplier", "saturday_multiplier", "wedding_day_multiplier"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise ValueError(f"{name}: must be a number, got {value!r}")
            if not (math.isfinite(value) and value >= 1):
                raise ValueError(f"{name}: must be at least 1 (the base load), got {value!r}")
        start, end = self.peak_start_hour, self.peak_end_hour
        if not (is_int(start) and is_int(end) and 0 <= start < end <= 23):
            raise ValueError(
                f"peak_start_hour, peak_end_hour: need 0 <= start < end <= 23, got {start}, {end}"
            )
        lead = self.lead_s
        if not is_int(lead) or lead < 0 or lead % 60:
            raise ValueError(f"lead_s: must be whole minutes (a multiple of 60), got {lead!r}")
        if lead > start * 3600:
            raise ValueError(
                f"lead_s: {lead} s before {start:02d}:00 is on the previous day; "
                "start the peak later or shorten the lead"
            )

    @property
    def raised_start(self) -> dt.time:
        """Local wall-clock time a peak day's instances are wanted from."""
        minutes = self.peak_start_hour * 60 - self.lead_s // 60
        return dt.time(minutes // 60, minutes % 60)

    @property
    def peak_end(self) -> dt.time:
        """Local wall-clock time a peak day's raised window ends."""
        return dt.time(self.peak_end_hour)

    @property
    def peak_multiplier(self) -> float:
        """The largest multiplier of the profile."""
        return max(self.season_multiplier, self.saturday_multiplier, self.wedding_day_multiplier)


@dataclass(frozen=True, kw_only=True, slots=True)
class Recommendation:
    """Instances wanted from ``start`` (local time) and why."""

    start: dt.datetime
    instances: int
    load_multiplier: float
    driver: LoadKind
    reason: str


@dataclass(frozen=True, kw_only=True, slots=True)
class CapacityPlan:
    """Instances wanted now and in each hour of the next 24, with the reasons."""

    at: dt.datetime
    """When the plan was made, in the platform time zone."""
    now: int
    now_reason: str
    next_24h: tuple[Recommendation, ...]
    """24 hour blocks from the start of the current local hour; each wants the most it needs."""
    reasons: tuple[str, ...]
    """Human lines: now, then each change over the next 24 hours."""

    @property
    def peak_24h(self) -> int:
        """The most instances wanted at any time in the next 24 hours."""
        return max([self.now, *(hour.instances for hour in self.next_24h)])


@dataclass(frozen=True, slots=True)
class _Factor:
    multiplier: float
    kind: LoadKind
    text: str


@dataclass(frozen=True, kw_only=True, slots=True)
class CapacityAdvisor:
    """Turns measured capacity and the wedding calendar into instance counts."""

    base_rps: float
    """Fleet request rate in the busiest hour of an ordinary off-season weekday."""
    instance_rps: float
    """Requests per second one instance sustains with p95 under threshold."""
    config: WeddingConfig = field(default_factory=WeddingConfig.default)
    """Time zone and season months come from here; the KEDA triggers use its catalogue."""
    profile: LoadProfile = field(default_factory=LoadProfile)
    target_utilisation: float = 0.8
    """Share of ``instance_rps`` to plan for: headroom for bursts and a lost instance."""
    min_instances: int = 2
    max_instances: int = 50
    _tz: zoneinfo.ZoneInfo = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        for name in ("base_rps", "instance_rps"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise ValueError(f"{name}: must be a number, got {value!r}")
            if not (math.isfinite(value) and value > 0):
                raise ValueError(f"{name}: must be a positive number, got {value!r}")
        util = self.target_utilisation
        if isinstance(util, bool) or not isinstance(util, int | float) or not 0 < util <= 1:
            raise ValueError(f"target_utilisation: must be in (0, 1], got {util!r}")
        low, high = self.min_instances, self.max_instances
        if not (is_int(low) and is_int(high) and 1 <= low <= high):
            raise ValueError(
                f"min_instances, max_instances: need 1 <= min <= max, got {low!r}, {high!r}"
            )
        object.__setattr__(self, "_tz", zoneinfo.ZoneInfo(self.config.timezone))

    @property
    def timezone(self) -> zoneinfo.ZoneInfo:
        """The platform time zone, where Saturdays, seasons and peak hours are judged."""
        return self._tz

    def raw_instances(self, multiplier: float) -> int:
        """Instances the load ``base_rps x multiplier`` needs, before min and max."""
        needed = self.base_rps * multiplier / (self.instance_rps * self.target_utilisation)
        return max(1, math.ceil(needed - _EPSILON))

    def instances_for(self, multiplier: float) -> int:
        """Instances for a load multiplier, clamped to ``[min_instances, max_instances]``."""
        return min(self.max_instances, max(self.min_instances, self.raw_instances(multiplier)))

    def recommend(
        self,
        at: dt.datetime,
        weddings: Collection[dt.date] = (),
        *,
        until: dt.datetime | None = None,
    ) -> Recommendation:
        """Instances wanted at the instant ``at``, or the most wanted in ``[at, until)``."""
        start = _aware(at).astimezone(dt.UTC)
        end = start + _INSTANT if until is None else _aware(until).astimezone(dt.UTC)
        if end <= start:
            raise ValueError("until: must be after at")
        factor = self._largest_factor(start, end, frozenset(weddings))
        return self._recommendation(start.astimezone(self._tz), factor)

    def plan(self, now: dt.datetime, weddings: Iterable[dt.date] = ()) -> CapacityPlan:
        """Instances wanted now and in each of the next 24 local hours."""
        known = frozenset(weddings)
        local_now = _aware(now).astimezone(self._tz)
        current = self.recommend(local_now, known)
        hour_start = local_now.replace(minute=0, second=0, microsecond=0).astimezone(dt.UTC)
        hours = tuple(
            self.recommend(hour_start + k * _HOUR, known, until=hour_start + (k + 1) * _HOUR)
            for k in range(24)
        )
        reasons = [f"now ({_when(local_now)}): {current.instances} instances: {current.reason}"]
        previous = current.instances
        for hour in hours:
            if hour.instances != previous and hour.start > local_now:
                reasons.append(
                    f"from {_when(hour.start)}: {hour.instances} instances: {hour.reason}"
                )
            previous = hour.instances
        return CapacityPlan(
            at=local_now,
            now=current.instances,
            now_reason=current.reason,
            next_24h=hours,
            reasons=tuple(reasons),
        )

    def raised_window(self, day: dt.date) -> tuple[dt.datetime, dt.datetime]:
        """UTC bounds ``[from, to)`` of a peak day's raised window (lead included)."""
        profile = self.profile
        start = dt.datetime.combine(day, profile.raised_start, tzinfo=self._tz)
        end = dt.datetime.combine(day, profile.peak_end, tzinfo=self._tz)
        return start.astimezone(dt.UTC), end.astimezone(dt.UTC)

    def _largest_factor(
        self, start: dt.datetime, end: dt.datetime, weddings: frozenset[dt.date]
    ) -> _Factor:
        profile = self.profile
        factors = [_Factor(1.0, LoadKind.BASE, "base load")]
        first_day = start.astimezone(self._tz).date()
        last_day = (end - _INSTANT).astimezone(self._tz).date()
        season = self.config.season_months
        for day in _days(first_day, last_day):
            if day.month in season:
                factors.append(
                    _Factor(
                        profile.season_multiplier,
                        LoadKind.SEASON,
                        f"wedding season ({day:%B})",
                    )
                )
        window = f"peak {profile.peak_start_hour:02d}:00-{profile.peak_end:%H:%M}"
        lead = f"raised from {profile.raised_start:%H:%M}"
        for day in _days(first_day - dt.timedelta(days=1), last_day + dt.timedelta(days=1)):
            saturday = day.weekday() == _SATURDAY
            if not saturday and day not in weddings:
                continue
            raised_from, raised_to = self.raised_window(day)
            if not (raised_from < end and raised_to > start):
                continue
            if saturday:
                factors.append(
                    _Factor(
                        profile.saturday_multiplier,
                        LoadKind.SATURDAY,
                        f"Saturday {day.isoformat()} {window}, {lead}",
                    )
                )
            if day in weddings:
                factors.append(
                    _Factor(
                        profile.wedding_day_multiplier,
                        LoadKind.WEDDING_DAY,
                        f"wedding day {day.isoformat()} {window}, {lead}",
                    )
                )
        return max(factors, key=lambda f: (f.multiplier, _PRIORITY[f.kind]))

    def _recommendation(self, start: dt.datetime, factor: _Factor) -> Recommendation:
        raw = self.raw_instances(factor.multiplier)
        instances = self.instances_for(factor.multiplier)
        reason = (
            f"{factor.text}, {factor.multiplier:g}x base: {self.base_rps:g} rps x "
            f"{factor.multiplier:g} / ({self.instance_rps:g} rps x {self.target_utilisation:g})"
            f" -> {raw}"
        )
        if instances > raw:
            reason += f", raised to min_instances {self.min_instances}"
        elif instances < raw:
            reason += f", capped at max_instances {self.max_instances}"
        return Recommendation(
            start=start,
            instances=instances,
            load_multiplier=factor.multiplier,
            driver=factor.kind,
            reason=reason,
        )


def _aware(at: dt.datetime) -> dt.datetime:
    if at.tzinfo is None or at.utcoffset() is None:
        raise ValueError(f"need an aware datetime, got {at!r}")
    return at


def _days(first: dt.date, last: dt.date) -> Sequence[dt.date]:
    return [first + dt.timedelta(days=n) for n in range((last - first).days + 1)]


def _when(local: dt.datetime) -> str:
    return f"{local:%a %d %b %H:%M %Z}"
