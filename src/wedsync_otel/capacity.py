"""CapacityAdvisor: how many instances the wedding calendar needs, now and over the next 24 h.

Pure: plain values in, a `CapacityPlan` out. Nothing here imports OpenTelemetry at module
level; `recommended_instances_gauge` imports the metrics API when it is called.

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

**Measuring ``instance_rps``.** Best: a load test of one instance with the production catalogue
mix, raising the rate until the p95 of a critical endpoint reaches its base threshold; the rate
there is ``instance_rps``. From live figures, `measure_throughput` divides a snapshot window's
request count by its length and the number of instances reporting; that rate is what the fleet
*did* sustain, a lower bound of what it *can* while p95 stays under threshold (so the advisor errs
towards more instances), and when p95 was over the threshold the rate is divided by the worst
p95/threshold ratio (latency grows faster than load near saturation, so that too errs towards
more instances). ``base_rps`` is the fleet's request rate in the busiest hour of an ordinary
off-season weekday: the model has no daily curve, so the base covers every hour that is not a
season or peak hour.
"""

from __future__ import annotations

import csv
import datetime as dt
import enum
import json
import math
import zoneinfo
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from wedsync_otel._safety import log_internal_error
from wedsync_otel.calendar import parse_wedding_date
from wedsync_otel.config import WeddingConfig
from wedsync_otel.metrics.snapshot import PerformanceSnapshot

if TYPE_CHECKING:
    from opentelemetry.metrics import CallbackOptions, MeterProvider, ObservableGauge, Observation

RECOMMENDED_INSTANCES: Final = "wedding.capacity.recommended_instances"
"""Observable gauge: instances the calendar and measured capacity call for."""
HORIZON: Final = "wedding.capacity.horizon"
"""Attribute of the gauge: ``now``, or ``24h`` for the most needed over the next 24 hours."""
HORIZON_NOW: Final = "now"
HORIZON_24H: Final = "24h"

WINDOW_SECONDS: Final = {"1m": 60.0, "5m": 300.0, "1h": 3600.0}
"""Length of each snapshot window."""
EXAMPLE_BASE_RPS: Final = 40.0
"""Example base load for generated examples and the CLI's default: measure yours."""
EXAMPLE_INSTANCE_RPS: Final = 25.0
"""Example per-instance capacity for generated examples and the CLI's default: measure yours."""
MAX_WEDDING_HORIZON_DAYS: Final = 365
"""A 5-field cron has no year: a date a year or more ahead would fire this year first."""

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
        if not (_is_int(start) and _is_int(end) and 0 <= start < end <= 23):
            raise ValueError(
                f"peak_start_hour, peak_end_hour: need 0 <= start < end <= 23, got {start}, {end}"
            )
        lead = self.lead_s
        if not _is_int(lead) or lead < 0 or lead % 60:
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
        if not (_is_int(low) and _is_int(high) and 1 <= low <= high):
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


@dataclass(frozen=True, kw_only=True, slots=True)
class MeasuredThroughput:
    """What one snapshot window says about throughput per instance."""

    window: str
    window_s: float
    requests: int
    instances: int
    fleet_rps: float
    rps_per_instance: float
    p95_to_threshold: float | None
    """Worst p95 / base threshold over the judged endpoints; None with too few requests."""
    worst_endpoint: str | None
    sustainable_rps_per_instance: float | None
    """``rps_per_instance / max(1, p95_to_threshold)``: an estimate that errs low."""


def measure_throughput(
    snapshot: PerformanceSnapshot,
    *,
    instances: int,
    window: str = "1h",
    window_s: float | None = None,
    min_requests: int = 20,
) -> MeasuredThroughput | None:
    """Throughput per instance from a snapshot window; ``None`` when the window has no requests.

    ``instances`` is how many instances fed the snapshot. ``window_s`` is how much time the
    window really covers: pass the process's age when it is younger than the window (the 1h
    window of a 10-minute-old process holds 10 minutes). p95 is judged on the critical endpoints
    with at least ``min_requests`` requests (every endpoint when no critical one has that many).
    """
    if window not in WINDOW_SECONDS:
        raise ValueError(f"window: one of {', '.join(WINDOW_SECONDS)}, got {window!r}")
    if not _is_int(instances) or instances < 1:
        raise ValueError(f"instances: must be a whole number >= 1, got {instances!r}")
    seconds = WINDOW_SECONDS[window] if window_s is None else min(window_s, WINDOW_SECONDS[window])
    if not (math.isfinite(seconds) and seconds > 0):
        raise ValueError(f"window_s: must be a positive number of seconds, got {window_s!r}")
    requests = 0
    ratios: dict[str, tuple[bool, float]] = {}
    for name, endpoint in snapshot.endpoints.items():
        stats = endpoint.windows.get(window)
        if stats is None:
            continue
        requests += stats.count
        if stats.count >= min_requests and endpoint.threshold_ms > 0:
            ratios[name] = (endpoint.critical, stats.p95_ms / endpoint.threshold_ms)
    if requests == 0:
        return None
    judged = {name: r for name, (critical, r) in ratios.items() if critical} or {
        name: r for name, (_, r) in ratios.items()
    }
    fleet_rps = requests / seconds
    per_instance = fleet_rps / instances
    worst = max(judged, key=lambda name: judged[name]) if judged else None
    ratio = judged[worst] if worst is not None else None
    return MeasuredThroughput(
        window=window,
        window_s=seconds,
        requests=requests,
        instances=instances,
        fleet_rps=fleet_rps,
        rps_per_instance=per_instance,
        p95_to_threshold=ratio,
        worst_endpoint=worst,
        sustainable_rps_per_instance=None if ratio is None else per_instance / max(1.0, ratio),
    )


# --- the wedding calendar as a file ---------------------------------------------------------

_DATE_KEYS: Final = ("wedding_date", "date")


def read_wedding_dates(path: str | Path) -> tuple[dt.date, ...]:
    """Wedding dates from a CSV or JSON file, sorted and without repeats.

    CSV: a header row with a ``wedding_date`` or ``date`` column (other columns are ignored).
    JSON: a list of ``"YYYY-MM-DD"`` strings, or of objects with a ``wedding_date`` or ``date``
    key. A bad value raises `ValueError` naming the file and the line or item.
    """
    file = Path(path)
    suffix = file.suffix.lower()
    if suffix == ".csv":
        return _dates_from_csv(file)
    if suffix == ".json":
        return _dates_from_json(file)
    raise ValueError(f"{file}: a weddings file must be .csv or .json")


def _dates_from_csv(file: Path) -> tuple[dt.date, ...]:
    with file.open(newline="", encoding="utf-8") as stream:
        reader = csv.reader(stream)
        header = next(reader, None)
        if header is None:
            raise ValueError(f"{file}: empty; expected a header with a wedding_date column")
        columns = [name.strip().lower() for name in header]
        column = next((columns.index(key) for key in _DATE_KEYS if key in columns), None)
        if column is None:
            raise ValueError(f"{file}:1: no wedding_date or date column in the header")
        dates = set()
        for row in reader:
            if not any(cell.strip() for cell in row):
                continue
            value = row[column].strip() if column < len(row) else ""
            dates.add(_date(value, f"{file}:{reader.line_num}"))
    return tuple(sorted(dates))


def _dates_from_json(file: Path) -> tuple[dt.date, ...]:
    try:
        data = json.loads(file.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise ValueError(f"{file}:{exc.lineno}: not valid JSON ({exc.msg})") from None
    if not isinstance(data, list):
        raise ValueError(f"{file}: expected a JSON list of dates or of objects with a date")
    dates = set()
    for index, item in enumerate(data):
        where = f"{file}: item {index}"
        value: object = item
        if isinstance(item, Mapping):
            key = next((k for k in _DATE_KEYS if k in item), None)
            if key is None:
                raise ValueError(f"{where}: no wedding_date or date key")
            value = item[key]
        dates.add(_date(value, where))
    return tuple(sorted(dates))


def _date(value: object, where: str) -> dt.date:
    parsed = parse_wedding_date(value)
    if parsed is None:
        raise ValueError(f"{where}: not a date YYYY-MM-DD: {value!r}")
    return parsed


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
    if not _is_int(horizon_days) or not 1 <= horizon_days <= MAX_WEDDING_HORIZON_DAYS:
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


# --- the gauge ---------------------------------------------------------------------------------


def plan_observations(plan: CapacityPlan) -> tuple[tuple[int, Mapping[str, str]], ...]:
    """The gauge's data points as plain values: (instances, attributes)."""
    return ((plan.now, {HORIZON: HORIZON_NOW}), (plan.peak_24h, {HORIZON: HORIZON_24H}))


def recommended_instances_gauge(
    meter_provider: MeterProvider, advisor_callable: Callable[[], CapacityPlan | None]
) -> ObservableGauge:
    """Register ``wedding.capacity.recommended_instances`` on ``meter_provider``.

    At each collection ``advisor_callable()`` gives the current plan (or ``None`` for no data
    points); the gauge reports ``plan.now`` with ``wedding.capacity.horizon=now`` and
    ``plan.peak_24h`` with ``horizon=24h``. A callable that raises is logged once and yields
    nothing: it never breaks the export.
    """
    from opentelemetry.metrics import Observation  # noqa: PLC0415 - keeps the module pure

    def observe(options: CallbackOptions) -> Iterable[Observation]:
        try:
            plan = advisor_callable()
        except Exception as exc:  # noqa: BLE001 - telemetry never breaks the application
            log_internal_error("capacity gauge callback", exc)
            return []
        if plan is None:
            return []
        return [Observation(value, dict(attrs)) for value, attrs in plan_observations(plan)]

    meter = meter_provider.get_meter("wedsync_otel.capacity")
    return meter.create_observable_gauge(
        RECOMMENDED_INSTANCES,
        callbacks=[observe],
        unit="{instance}",
        description="Instances the wedding calendar and measured capacity call for",
    )


# --- helpers -------------------------------------------------------------------------------------


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _aware(at: dt.datetime) -> dt.datetime:
    if at.tzinfo is None or at.utcoffset() is None:
        raise ValueError(f"need an aware datetime, got {at!r}")
    return at


def _days(first: dt.date, last: dt.date) -> Sequence[dt.date]:
    return [first + dt.timedelta(days=n) for n in range((last - first).days + 1)]


def _when(local: dt.datetime) -> str:
    return f"{local:%a %d %b %H:%M %Z}"


def plan_json(plan: CapacityPlan) -> dict[str, Any]:
    """A plan as JSON-ready data, for ``--json`` output and the demo."""
    return {
        "at": plan.at.isoformat(),
        "now": plan.now,
        "now_reason": plan.now_reason,
        "peak_24h": plan.peak_24h,
        "next_24h": [
            {
                "start": hour.start.isoformat(),
                "instances": hour.instances,
                "load_multiplier": hour.load_multiplier,
                "driver": hour.driver.value,
                "reason": hour.reason,
            }
            for hour in plan.next_24h
        ],
        "reasons": list(plan.reasons),
    }
