"""recommended_instances_gauge: a plan as the ``wedding.capacity.recommended_instances`` gauge.

The capacity package's one OpenTelemetry edge: `plan_observations` gives the data points as plain
values, and the gauge reports them at each collection.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Final

from opentelemetry.metrics import Observation

from wedsync_otel._safety import log_internal_error
from wedsync_otel.capacity.advisor import CapacityPlan

if TYPE_CHECKING:
    from opentelemetry.metrics import CallbackOptions, MeterProvider, ObservableGauge

RECOMMENDED_INSTANCES: Final = "wedding.capacity.recommended_instances"
"""Observable gauge: instances the calendar and measured capacity call for."""
HORIZON: Final = "wedding.capacity.horizon"
"""Attribute of the gauge: ``now``, or ``24h`` for the most needed over the next 24 hours."""
HORIZON_NOW: Final = "now"
HORIZON_24H: Final = "24h"


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
