"""The WedSync demo: a small wedding-planning API, its load and the telemetry it produces."""

from __future__ import annotations

from wedsync_otel.demo.runner import run

__all__ = ["run"]
