"""A KEDA ``ScaledObject`` that scales WedSync ahead of the wedding calendar and on live load.

Fields are those of KEDA 2.14 (`KEDA_VERSION`; keda.sh/docs/2.14: the ScaledObject
specification and the ``cron`` and ``prometheus`` scalers); the HPA ``behavior`` is Kubernetes
``autoscaling/v2`` ``HorizontalPodAutoscalerBehavior``, which KEDA hands to the HPA it creates.

**Triggers.** The HPA takes the largest replica count any trigger asks for, so each cron trigger
is a floor while it is active (KEDA's cron scaler asks for ``desiredReplicas`` from a ``start``
firing to the next ``end`` firing, and for 1 otherwise):

- ``saturday-peak``: every Saturday from the raised start (peak start minus the lead, 08:00 by
  default) to the peak's end (23:00), in the config's time zone;
- ``wedding-day-YYYY-MM-DD``: the same window on each known wedding day within the horizon that
  the other floors do not already cover (a Saturday wedding is covered by ``saturday-peak``);
- ``wedding-season-MM-MM``: from 00:00 on the 1st of each run of consecutive season months to
  00:00 on the 1st of the month after it;
- ``request-rate-per-instance`` (``prometheus``, ``AverageValue``): the fleet's request rate
  divided by the replica count, against ``instance_rps x target_utilisation``;
- ``p95-to-threshold`` (``prometheus``, ``Value``): the worst p95 / base threshold of the
  critical endpoints, against ``p95_ratio_target`` (0.8: the readiness rule's "at risk" point).

``minReplicaCount`` is the base-load figure and ``maxReplicaCount`` the advisor's maximum, so the
cron floors reproduce `CapacityAdvisor.recommend` at every minute (``tests/test_keda.py`` checks
that, time zone included). A 5-field cron has no year: a wedding-day trigger would fire again on
the same date next year, and bookings made after generation have none, so regenerate the file
at least weekly (past weddings are dropped; dates are kept only within ``horizon_days``).

**Queries** read recording rules from ``collector-config/prometheus/wedding-rules.yml``
(`REQUEST_RATE_RULE`, `P95_RULE`, `THRESHOLD_RULE`); they must keep matching those rules.
``serverAddress`` is a placeholder under ``.invalid`` (RFC 2606) until set.

**HPA behaviour.** Scale-up stabilisation 180 s and scale-down 600 s: an unplanned surge is
answered after about 3 minutes (plus pod start-up), which is why the calendar's peaks are
pre-empted by two hours; instances stay 10 minutes after the need for them goes. ``fallback``
holds the peak replica count when Prometheus cannot be read three times running (KEDA applies it
to ``AverageValue`` triggers only).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Final

import yaml

from wedsync_otel.capacity.advisor import CapacityAdvisor
from wedsync_otel.capacity.schedule_window import (
    MAX_WEDDING_HORIZON_DAYS,
    WeddingWindow,
    wedding_window,
)

KEDA_VERSION: Final = "2.14"
"""KEDA release whose documented fields the generated object uses."""
API_VERSION: Final = "keda.sh/v1alpha1"
KIND: Final = "ScaledObject"

REQUEST_RATE_RULE: Final = "wedding_endpoint:wedding_requests:rate5m"
"""Requests per second per endpoint (every enriched server span is counted once)."""
P95_RULE: Final = "wedding_endpoint:wedding_server_duration_milliseconds:p95_rate5m"
THRESHOLD_RULE: Final = "wedding_endpoint:wedding_threshold_milliseconds:base"
ENDPOINT_LABEL: Final = "wedding_endpoint"
RECORDING_RULES: Final = (REQUEST_RATE_RULE, P95_RULE, THRESHOLD_RULE)
"""Every recording rule the queries read."""

PLACEHOLDER_PROMETHEUS: Final = "http://prometheus.wedsync.invalid:9090"
SCALE_UP_STABILISATION_S: Final = 180
SCALE_DOWN_STABILISATION_S: Final = 600
SATURDAY_TRIGGER: Final = "saturday-peak"

_DNS_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?")
_SATURDAY = 5


@dataclass(frozen=True, kw_only=True, slots=True)
class ScalingOptions:
    """Where the ScaledObject points and how its live triggers are set."""

    target_name: str = "wedsync-api"
    """The Deployment (or other ``/scale`` resource) to scale; also the ScaledObject's name."""
    namespace: str | None = None
    target_kind: str = "Deployment"
    target_api_version: str = "apps/v1"
    prometheus_address: str = PLACEHOLDER_PROMETHEUS
    p95_ratio_target: float = 0.8
    horizon_days: int = 90
    """Known weddings up to this many days ahead get a trigger (at most 365)."""
    polling_interval_s: int = 30
    fallback_failures: int = 3

    def __post_init__(self) -> None:
        for key in ("target_name", "namespace"):
            value = getattr(self, key)
            if value is not None and not _DNS_LABEL.fullmatch(value):
                raise ValueError(
                    f"{key}: must be a Kubernetes name like wedsync-api, got {value!r}"
                )
        if not 0 < self.p95_ratio_target <= 4:
            raise ValueError(f"p95_ratio_target: must be in (0, 4], got {self.p95_ratio_target!r}")
        if not 1 <= self.horizon_days <= MAX_WEDDING_HORIZON_DAYS:
            raise ValueError(
                f"horizon_days: must be 1-{MAX_WEDDING_HORIZON_DAYS} (a cron has no year), "
                f"got {self.horizon_days!r}"
            )
        if self.polling_interval_s < 1 or self.fallback_failures < 1:
            raise ValueError("polling_interval_s and fallback_failures: must be at least 1")
        if not self.prometheus_address.startswith(("http://", "https://")):
            raise ValueError(
                f"prometheus_address: must be an http(s) URL, got {self.prometheus_address!r}"
            )

    def replace(self, **changes: Any) -> ScalingOptions:
        """A copy with some fields changed, validated again."""
        return dataclasses.replace(self, **changes)


@dataclass(frozen=True, kw_only=True, slots=True)
class CronWindow:
    """One KEDA cron trigger: ``desired_replicas`` from each ``start`` to the next ``end``."""

    name: str
    start: str
    end: str
    desired_replicas: int
    reason: str


def hpa_behavior(
    *,
    scale_up_window_s: int = SCALE_UP_STABILISATION_S,
    scale_down_window_s: int = SCALE_DOWN_STABILISATION_S,
) -> dict[str, Any]:
    """The HPA ``behavior``: 3 min scale-up and 10 min scale-down stabilisation, with policies.

    Up: at most double, or 4 pods, per minute, whichever is more. Down: at most a quarter, or
    2 pods, per minute, whichever is more, once the 10-minute window agrees.
    """
    for key, value in (
        ("scale_up_window_s", scale_up_window_s),
        ("scale_down_window_s", scale_down_window_s),
    ):
        if not 0 <= value <= 3600:  # the Kubernetes API's limit
            raise ValueError(f"{key}: must be 0-3600 s, got {value!r}")
    return {
        "scaleUp": {
            "stabilizationWindowSeconds": scale_up_window_s,
            "selectPolicy": "Max",
            "policies": [
                {"type": "Percent", "value": 100, "periodSeconds": 60},
                {"type": "Pods", "value": 4, "periodSeconds": 60},
            ],
        },
        "scaleDown": {
            "stabilizationWindowSeconds": scale_down_window_s,
            "selectPolicy": "Max",
            "policies": [
                {"type": "Percent", "value": 25, "periodSeconds": 60},
                {"type": "Pods", "value": 2, "periodSeconds": 60},
            ],
        },
    }


def min_replicas(advisor: CapacityAdvisor) -> int:
    """``minReplicaCount``: the base load, or the season's when every month is in season."""
    all_season = len(advisor.config.season_months) == 12
    return advisor.instances_for(advisor.profile.season_multiplier if all_season else 1.0)


def season_runs(months: Iterable[int]) -> tuple[tuple[int, int], ...]:
    """Runs of consecutive months as (first, last), wrapping over December; none for all 12."""
    chosen = set(months)
    if not chosen or len(chosen) == 12:
        return ()
    runs = []
    for month in sorted(chosen):
        previous = 12 if month == 1 else month - 1
        if previous in chosen:
            continue  # inside a run that starts earlier
        last = month
        while (last % 12) + 1 in chosen:
            last = (last % 12) + 1
        runs.append((month, last))
    return tuple(runs)


def cron_windows(
    advisor: CapacityAdvisor, *, weddings: Sequence[dt.date] = ()
) -> tuple[CronWindow, ...]:
    """The cron triggers for a calendar; ``weddings`` should already be the upcoming ones."""
    profile = advisor.profile
    floor = min_replicas(advisor)
    raised, end = profile.raised_start, profile.peak_end
    windows = []
    season = advisor.instances_for(profile.season_multiplier)
    season_months = advisor.config.season_months
    if season > floor:
        for first, last in season_runs(season_months):
            after = last % 12 + 1
            windows.append(
                CronWindow(
                    name=f"wedding-season-{first:02d}-{last:02d}",
                    start=f"0 0 1 {first} *",
                    end=f"0 0 1 {after} *",
                    desired_replicas=season,
                    reason=f"wedding season, months {first}-{last}: "
                    f"{profile.season_multiplier:g}x base",
                )
            )
    saturday = advisor.instances_for(profile.saturday_multiplier)
    if saturday > floor:
        windows.append(
            CronWindow(
                name=SATURDAY_TRIGGER,
                start=f"{raised.minute} {raised.hour} * * 6",
                end=f"{end.minute} {end.hour} * * 6",
                desired_replicas=saturday,
                reason=f"Saturday peak {profile.peak_start_hour:02d}:00-{end:%H:%M}, "
                f"{profile.lead_s // 60} min ahead: {profile.saturday_multiplier:g}x base",
            )
        )
    wedding = advisor.instances_for(profile.wedding_day_multiplier)
    for day in sorted(set(weddings)):
        covered = max(
            floor,
            saturday if day.weekday() == _SATURDAY else 0,
            season if day.month in season_months else 0,
        )
        if wedding <= covered:
            continue
        windows.append(
            CronWindow(
                name=f"wedding-day-{day.isoformat()}",
                start=f"{raised.minute} {raised.hour} {day.day} {day.month} *",
                end=f"{end.minute} {end.hour} {day.day} {day.month} *",
                desired_replicas=wedding,
                reason=f"wedding day {day.isoformat()}, peak {profile.peak_start_hour:02d}:00-"
                f"{end:%H:%M}, {profile.lead_s // 60} min ahead: "
                f"{profile.wedding_day_multiplier:g}x base",
            )
        )
    return tuple(windows)


def request_rate_query() -> str:
    """PromQL: the fleet's requests per second (KEDA divides it by the replica count)."""
    return f"sum({REQUEST_RATE_RULE})"


def p95_ratio_query(critical_endpoints: Sequence[str]) -> str:
    """PromQL: the worst p95 / base threshold over the critical endpoints (all when none)."""
    selector = (
        f'{{{ENDPOINT_LABEL}=~"{"|".join(sorted(critical_endpoints))}"}}'
        if critical_endpoints
        else ""
    )
    return f"max({P95_RULE}{selector} / on ({ENDPOINT_LABEL}) {THRESHOLD_RULE})"


def scaled_object(
    advisor: CapacityAdvisor,
    *,
    weddings: Iterable[dt.date] = (),
    today: dt.date | None = None,
    options: ScalingOptions | None = None,
) -> dict[str, Any]:
    """The ScaledObject as plain data, ready for `render_scaled_object`.

    ``today`` (the platform zone's date; required when ``weddings`` are given) drops past
    weddings and those beyond ``options.horizon_days``.
    """
    opts = options or ScalingOptions()
    known = tuple(weddings)
    window = _window(known, today, opts)
    upcoming = window.upcoming if window is not None else ()
    floor = min_replicas(advisor)
    peak = advisor.instances_for(advisor.profile.peak_multiplier)
    timezone = advisor.config.timezone
    triggers: list[dict[str, Any]] = [
        {
            "type": "cron",
            "name": cron.name,
            "metadata": {
                "timezone": timezone,
                "start": cron.start,
                "end": cron.end,
                "desiredReplicas": str(cron.desired_replicas),
            },
        }
        for cron in cron_windows(advisor, weddings=upcoming)
    ]
    critical = [spec.name for spec in advisor.config.endpoints if spec.critical]
    per_instance = advisor.instance_rps * advisor.target_utilisation
    triggers += [
        {
            "type": "prometheus",
            "name": "request-rate-per-instance",
            "metricType": "AverageValue",
            "metadata": {
                "serverAddress": opts.prometheus_address,
                "query": request_rate_query(),
                "threshold": _number(per_instance),
            },
        },
        {
            "type": "prometheus",
            "name": "p95-to-threshold",
            "metricType": "Value",
            "metadata": {
                "serverAddress": opts.prometheus_address,
                "query": p95_ratio_query(critical),
                "threshold": _number(opts.p95_ratio_target),
            },
        },
    ]
    metadata: dict[str, Any] = {"name": opts.target_name}
    if opts.namespace is not None:
        metadata["namespace"] = opts.namespace
    metadata["labels"] = {"app.kubernetes.io/managed-by": "wedsync-otel"}
    if window is not None:
        metadata["annotations"] = {
            "wedsync-otel/weddings-from": window.today.isoformat(),
            "wedsync-otel/weddings-until": (
                window.today + dt.timedelta(days=window.horizon_days)
            ).isoformat(),
        }
    return {
        "apiVersion": API_VERSION,
        "kind": KIND,
        "metadata": metadata,
        "spec": {
            "scaleTargetRef": {
                "apiVersion": opts.target_api_version,
                "kind": opts.target_kind,
                "name": opts.target_name,
            },
            "pollingInterval": opts.polling_interval_s,
            "minReplicaCount": floor,
            "maxReplicaCount": advisor.max_instances,
            "fallback": {"failureThreshold": opts.fallback_failures, "replicas": peak},
            "advanced": {"horizontalPodAutoscalerConfig": {"behavior": hpa_behavior()}},
            "triggers": triggers,
        },
    }


def render_scaled_object(document: dict[str, Any], advisor: CapacityAdvisor) -> str:
    """YAML for `scaled_object`'s document, under a header saying where the figures come from."""
    spec = document["spec"]
    header = [
        f"# KEDA {KEDA_VERSION} ScaledObject generated by `wedsync-otel scaling`.",
        f"# Time zone {advisor.config.timezone}. Capacity: base load {advisor.base_rps:g} rps;",
        f"# {advisor.instance_rps:g} rps per instance with p95 under threshold, planned at "
        f"{advisor.target_utilisation:g} of that.",
        f"# Replicas: {spec['minReplicaCount']} at base load, at most {spec['maxReplicaCount']}; "
        "cron triggers raise the floor",
        "# ahead of Saturday peaks and wedding days, and for the wedding season.",
        "# Regenerate at least weekly: a cron has no year, and new bookings need triggers.",
        "# serverAddress is a placeholder until set; the queries read the recording rules",
        "# in collector-config/prometheus/wedding-rules.yml.",
    ]
    body = yaml.safe_dump(document, sort_keys=False, default_flow_style=False, width=4096)
    return "\n".join(header) + "\n" + body


def scaling_summary(
    advisor: CapacityAdvisor,
    document: dict[str, Any],
    window: WeddingWindow | None = None,
) -> dict[str, Any]:
    """What a generated object does, as JSON-ready data (for ``--json``)."""
    spec = document["spec"]
    triggers = {t["name"]: t for t in spec["triggers"]}
    crons = [t for t in spec["triggers"] if t["type"] == "cron"]
    summary: dict[str, Any] = {
        "keda_version": KEDA_VERSION,
        "timezone": advisor.config.timezone,
        "min_replicas": spec["minReplicaCount"],
        "max_replicas": spec["maxReplicaCount"],
        "fallback_replicas": spec["fallback"]["replicas"],
        "requests_per_instance_target": float(
            triggers["request-rate-per-instance"]["metadata"]["threshold"]
        ),
        "p95_to_threshold_target": float(triggers["p95-to-threshold"]["metadata"]["threshold"]),
        "cron": [
            {
                "name": t["name"],
                "start": t["metadata"]["start"],
                "end": t["metadata"]["end"],
                "desired_replicas": int(t["metadata"]["desiredReplicas"]),
            }
            for t in crons
        ],
    }
    if window is not None:
        summary["weddings"] = {
            "today": window.today.isoformat(),
            "horizon_days": window.horizon_days,
            "upcoming": len(window.upcoming),
            "with_own_trigger": sum(t["name"].startswith("wedding-day-") for t in crons),
            "past_skipped": len(window.past),
            "beyond_horizon": len(window.beyond),
        }
    return summary


def _window(
    weddings: Sequence[dt.date], today: dt.date | None, options: ScalingOptions
) -> WeddingWindow | None:
    if today is None:
        if weddings:
            raise ValueError("today: needed to drop past weddings")
        return None
    return wedding_window(weddings, today=today, horizon_days=options.horizon_days)


def _number(value: float) -> str:
    """A KEDA metadata number: metadata values are strings."""
    return f"{value:.6g}"
