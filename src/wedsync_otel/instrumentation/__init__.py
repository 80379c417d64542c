"""Companion instrumentations: Redis and database spans in the request's own trace."""

from __future__ import annotations

from wedsync_otel.instrumentation.instrumentors import instrument, instrumented

__all__ = ["instrument", "instrumented"]
