"""plan_json: a `CapacityPlan` as JSON-ready data."""

from __future__ import annotations

from typing import Any

from wedsync_otel.capacity.advisor import CapacityPlan


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
