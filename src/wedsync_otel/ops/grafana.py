"""The WedSync Grafana dashboard, generated from a `WeddingConfig` and the recording rules.

Every panel reads what `wedsync_otel.ops.prometheus_rules` records (its 5-minute window), so the
dashboard's figures are the alerts' figures: percentiles from merged native histograms, never
averaged across instances. Two panels read gauges the application exports itself: wedding-day
readiness (``wedding.readiness``, from `PerformanceMetricExporter`) and the scaling
recommendation (``wedding.capacity.recommended_instances``, from
`wedsync_otel.capacity.recommended_instances_gauge`).

Every recorded name comes from the rules module's helpers, so the two cannot spell one
differently; `dashboard` still refuses to build if the generated rules no longer record one of
the `RECORDED` series at `WINDOW`.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

from wedsync_otel.capacity.gauge import HORIZON, RECOMMENDED_INSTANCES
from wedsync_otel.config import WeddingConfig
from wedsync_otel.metrics import names
from wedsync_otel.metrics.prometheus_names import prometheus_label_name, prometheus_metric_name
from wedsync_otel.ops import prometheus_rules as pr

__all__ = [
    "DASHBOARD_UID",
    "ENDPOINT_ALL",
    "ENDPOINT_VARIABLE",
    "RECORDED",
    "WINDOW",
    "Panel",
    "Target",
    "dashboard",
    "panels",
    "render_dashboard",
    "target_expressions",
]

DASHBOARD_UID: Final = "wedsync-otel-wedding"
WINDOW: Final = "5m"
"""The recording-rule window every panel reads."""
ENDPOINT_VARIABLE: Final = "endpoint"
ENDPOINT_ALL: Final = ".+"
"""The regex the endpoint variable's "All" stands for."""

_BY_ENDPOINT: Final = (pr.ENDPOINT,)
_BY_BAND: Final = (pr.ENDPOINT, pr.PROXIMITY)
_SELECT: Final = f'{{{pr.ENDPOINT}=~"${ENDPOINT_VARIABLE}"}}'

READINESS: Final = prometheus_metric_name(names.READINESS, names.UNITS[names.READINESS])
SCALING: Final = prometheus_metric_name(RECOMMENDED_INSTANCES, "{instance}")
HORIZON_LABEL: Final = prometheus_label_name(HORIZON)

RECORDED: Final = {
    "apdex": pr.apdex_ratio(_BY_ENDPOINT, WINDOW),
    "health": pr.health_score(WINDOW),
    "cache_hits": pr.cache_hit_ratio(WINDOW),
    "db_time": pr.db_time_ratio(WINDOW),
    "server_errors": pr.server_error_ratio(WINDOW),
}
"""The per-endpoint ratios and scores the panels read; checked against the generated rules."""


@dataclass(frozen=True, kw_only=True, slots=True)
class Target:
    """One PromQL query of a panel and the legend of its series."""

    expr: str
    legend: str


@dataclass(frozen=True, kw_only=True, slots=True)
class Panel:
    """A dashboard panel: what it shows, how, and where on the 24-column grid."""

    title: str
    kind: str
    """Grafana panel type: ``timeseries``, ``stat`` or ``bargauge``."""
    unit: str
    targets: tuple[Target, ...]
    grid: tuple[int, int, int, int]
    """x, y, width, height."""
    description: str
    options: Mapping[str, Any] = field(default_factory=dict)
    defaults: Mapping[str, Any] = field(default_factory=dict)


def _by_endpoint(recorded: str) -> Target:
    return Target(expr=f"{recorded}{_SELECT}", legend="{{" + pr.ENDPOINT + "}}")


def _share(
    title: str,
    target: Target,
    grid: tuple[int, int, int, int],
    description: str,
    *,
    at_most_one: bool = False,
) -> Panel:
    """A share over time (0 up, percent); ``at_most_one`` caps the axis at 100%."""
    return Panel(
        title=title,
        kind="timeseries",
        unit="percentunit",
        targets=(target,),
        grid=grid,
        description=description,
        defaults={"min": 0, "max": 1} if at_most_one else {"min": 0},
    )


def _ratio_thresholds(*steps: tuple[str, float | None]) -> dict[str, Any]:
    return {
        "mode": "absolute",
        "steps": [{"color": color, "value": value} for color, value in steps],
    }


def panels() -> tuple[Panel, ...]:
    """The dashboard's panels, top to bottom."""
    latency = tuple(
        Target(
            expr=f"{pr.quantile_name(_BY_ENDPOINT, label, WINDOW)}{_SELECT}",
            legend=f"{label} {{{{{pr.ENDPOINT}}}}}",
        )
        for label, _quantile in pr.QUANTILES
    )
    threshold = Target(
        expr=f"{pr.BASE_THRESHOLD}{_SELECT}", legend=f"threshold {{{{{pr.ENDPOINT}}}}}"
    )
    return (
        Panel(
            title="Latency p50 / p95 / p99 by endpoint",
            kind="timeseries",
            unit="ms",
            targets=(*latency, threshold),
            grid=(0, 0, 16, 9),
            description="Percentiles of the fleet's merged native histograms over 5 minutes, "
            "against each endpoint's base threshold.",
        ),
        Panel(
            title="Health score",
            kind="bargauge",
            unit="none",
            targets=(_by_endpoint(RECORDED["health"]),),
            grid=(16, 0, 8, 9),
            description="100 x Apdex x (1 - 5xx share) x latency factor of p95 against the base "
            "threshold.",
            defaults={
                "min": 0,
                "max": 100,
                "thresholds": _ratio_thresholds(("red", None), ("orange", 50), ("green", 80)),
            },
        ),
        _share(
            "Apdex",
            _by_endpoint(RECORDED["apdex"]),
            (0, 9, 8, 8),
            "(satisfied + tolerating / 2) / requests, wedding-aware thresholds.",
            at_most_one=True,
        ),
        _share(
            "Requests over threshold, by proximity band",
            Target(
                expr=f"{pr.error_ratio(_BY_BAND, WINDOW)}{_SELECT}",
                legend=f"{{{{{pr.ENDPOINT}}}}} {{{{{pr.PROXIMITY}}}}}",
            ),
            (8, 9, 8, 8),
            "Threshold breaches / requests per band: each band's own threshold, "
            "the latency objective's error ratio.",
        ),
        _share(
            "5xx share",
            _by_endpoint(RECORDED["server_errors"]),
            (16, 9, 8, 8),
            "Share of requests answered with a 5xx status.",
        ),
        _share(
            "Cache hit rate",
            _by_endpoint(RECORDED["cache_hits"]),
            (0, 17, 8, 8),
            "Cache hits / cache reads of each endpoint's requests.",
            at_most_one=True,
        ),
        _share(
            "Database time share",
            _by_endpoint(RECORDED["db_time"]),
            (8, 17, 8, 8),
            "Time in the database / request time.",
        ),
        Panel(
            title="Wedding-day readiness",
            kind="stat",
            unit="none",
            targets=(
                Target(expr=f'min({READINESS}{{{pr.ENDPOINT}=""}})', legend="whole API"),
                Target(
                    expr=f"min by ({pr.ENDPOINT}) ({READINESS}{_SELECT})",
                    legend="{{" + pr.ENDPOINT + "}}",
                ),
            ),
            grid=(16, 17, 4, 8),
            description="1 ready, 0 at risk, -1 not ready; the worst instance counts.",
            defaults={
                "mappings": [
                    {
                        "type": "value",
                        "options": {
                            "1": {"text": "ready", "color": "green", "index": 0},
                            "0": {"text": "at risk", "color": "orange", "index": 1},
                            "-1": {"text": "not ready", "color": "red", "index": 2},
                        },
                    }
                ],
                "thresholds": _ratio_thresholds(("red", None), ("orange", 0), ("green", 1)),
            },
            options={"colorMode": "background"},
        ),
        Panel(
            title="Scaling recommendation",
            kind="stat",
            unit="none",
            targets=(
                Target(
                    expr=f"max by ({HORIZON_LABEL}) ({SCALING})",
                    legend="{{" + HORIZON_LABEL + "}}",
                ),
            ),
            grid=(20, 17, 4, 8),
            description="Instances the wedding calendar and measured capacity call for: now and "
            "the peak of the next 24 hours.",
            options={"colorMode": "none"},
        ),
    )


def _check_recorded(config: WeddingConfig) -> None:
    records = {
        rule["record"]
        for group in pr.rules_document(config)["groups"]
        for rule in group["rules"]
        if "record" in rule
    }
    missing = sorted(set(RECORDED.values()) - records)
    if missing:
        raise ValueError(f"the recording rules no longer record {', '.join(missing)}")


_DATASOURCE: Final = {"type": "prometheus", "uid": "${datasource}"}


def _panel_json(panel_id: int, panel: Panel) -> dict[str, Any]:
    x, y, width, height = panel.grid
    return {
        "id": panel_id,
        "type": panel.kind,
        "title": panel.title,
        "description": panel.description,
        "datasource": _DATASOURCE,
        "gridPos": {"x": x, "y": y, "w": width, "h": height},
        "fieldConfig": {"defaults": {"unit": panel.unit, **panel.defaults}, "overrides": []},
        "options": dict(panel.options),
        "targets": [
            {
                "refId": chr(ord("A") + index),
                "datasource": _DATASOURCE,
                "expr": target.expr,
                "legendFormat": target.legend,
            }
            for index, target in enumerate(panel.targets)
        ],
    }


def _variables() -> Iterator[dict[str, Any]]:
    yield {
        "name": "datasource",
        "label": "Prometheus",
        "type": "datasource",
        "query": "prometheus",
    }
    yield {
        "name": ENDPOINT_VARIABLE,
        "label": "Endpoint",
        "type": "query",
        "datasource": _DATASOURCE,
        "query": f"label_values({pr.requests_rate(_BY_ENDPOINT, WINDOW)}, {pr.ENDPOINT})",
        "refresh": 2,
        "multi": True,
        "includeAll": True,
        "allValue": ENDPOINT_ALL,
        "current": {"text": "All", "value": "$__all"},
        "sort": 1,
    }


def dashboard(config: WeddingConfig) -> dict[str, Any]:
    """The dashboard as Grafana's JSON model (import it, or provision it from a file)."""
    _check_recorded(config)
    return {
        "uid": DASHBOARD_UID,
        "title": "WedSync: wedding-aware performance",
        "description": (
            f"Generated by wedsync_otel.ops.grafana from WeddingConfig ({config.timezone}); "
            "reads the recording rules of collector-config/prometheus/wedding-rules.yml."
        ),
        "tags": ["wedsync", "wedding", "opentelemetry"],
        "timezone": config.timezone,
        "schemaVersion": 39,
        "version": 1,
        "editable": True,
        "refresh": "30s",
        "time": {"from": "now-6h", "to": "now"},
        "templating": {"list": list(_variables())},
        "annotations": {"list": []},
        "panels": [_panel_json(index, panel) for index, panel in enumerate(panels(), start=1)],
    }


def render_dashboard(config: WeddingConfig) -> str:
    """The dashboard as stable, indented JSON with a trailing newline."""
    return json.dumps(dashboard(config), indent=2) + "\n"


def target_expressions(document: Mapping[str, Any]) -> Sequence[tuple[str, str]]:
    """Every panel query of a dashboard document: (``panel title/refId``, expr)."""
    return [
        (f"{panel['title']}/{target['refId']}", target["expr"])
        for panel in document["panels"]
        for target in panel["targets"]
    ]
