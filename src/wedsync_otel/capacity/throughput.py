"""measure_throughput: what a performance snapshot says one instance sustains.

Pure: a `PerformanceSnapshot` in, a `MeasuredThroughput` out; kept apart from the advisor
because it reads the metrics' snapshot shape, which the advisor's model never needs.

**Measuring ``instance_rps``.** Best: a load test of one instance with the production catalogue
mix, raising the rate until the p95 of a critical endpoint reaches its base threshold; the rate
there is ``instance_rps``. From live figures, `measure_throughput` divides a snapshot window's
request count by its length and the number of instances reporting; that rate is what the fleet
*did* sustain, a lower bound of what it *can* while p95 stays under threshold (so the advisor errs
towards more instances), and when p95 was over the threshold the rate is divided by the worst
p95/threshold ratio (latency grows faster than load near saturation, so that too errs towards
more instances).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Final

from wedsync_otel.capacity._checks import is_int
from wedsync_otel.metrics.snapshot import PerformanceSnapshot

WINDOW_SECONDS: Final = {"1m": 60.0, "5m": 300.0, "1h": 3600.0}
"""Length of each snapshot window."""


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
    if not is_int(instances) or instances < 1:
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
