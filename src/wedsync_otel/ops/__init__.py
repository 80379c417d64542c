"""Configuration for the engines that run beside wedsync-otel: Prometheus and Alertmanager."""

from __future__ import annotations

from wedsync_otel.ops.alertmanager import alertmanager_config, render_alertmanager
from wedsync_otel.ops.prometheus_rules import (
    BURN_RATE_PAIRS,
    DEFAULT_SLO_TARGET,
    BurnRatePair,
    HistogramForm,
    render_rules,
    rules_document,
)

__all__ = [
    "BURN_RATE_PAIRS",
    "DEFAULT_SLO_TARGET",
    "BurnRatePair",
    "HistogramForm",
    "alertmanager_config",
    "render_alertmanager",
    "render_rules",
    "rules_document",
]
