"""How many instances the wedding calendar needs, now and over the next 24 hours.

`advisor` holds the pure model (`CapacityAdvisor` and the values it works with); the other
modules are its edges: `throughput` (per-instance rates from a snapshot), `calendar_file`
(known weddings from a file), `schedule_window` (which of them a schedule covers), `gauge` (the
OpenTelemetry gauge) and `json_output` (a plan as JSON-ready data).
"""

from __future__ import annotations

from wedsync_otel.capacity.advisor import (
    EXAMPLE_BASE_RPS,
    EXAMPLE_INSTANCE_RPS,
    CapacityAdvisor,
    CapacityPlan,
    LoadKind,
    LoadProfile,
    Recommendation,
)
from wedsync_otel.capacity.calendar_file import read_wedding_dates
from wedsync_otel.capacity.gauge import (
    HORIZON,
    HORIZON_24H,
    HORIZON_NOW,
    RECOMMENDED_INSTANCES,
    plan_observations,
    recommended_instances_gauge,
)
from wedsync_otel.capacity.json_output import plan_json
from wedsync_otel.capacity.schedule_window import (
    MAX_WEDDING_HORIZON_DAYS,
    WeddingWindow,
    wedding_window,
)
from wedsync_otel.capacity.throughput import WINDOW_SECONDS, MeasuredThroughput, measure_throughput

__all__ = [
    "EXAMPLE_BASE_RPS",
    "EXAMPLE_INSTANCE_RPS",
    "HORIZON",
    "HORIZON_24H",
    "HORIZON_NOW",
    "MAX_WEDDING_HORIZON_DAYS",
    "RECOMMENDED_INSTANCES",
    "WINDOW_SECONDS",
    "CapacityAdvisor",
    "CapacityPlan",
    "LoadKind",
    "LoadProfile",
    "MeasuredThroughput",
    "Recommendation",
    "WeddingWindow",
    "measure_throughput",
    "plan_json",
    "plan_observations",
    "read_wedding_dates",
    "recommended_instances_gauge",
    "wedding_window",
]
