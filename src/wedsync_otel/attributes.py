"""The attribute contract: every ``wedding.*`` name this package reads or writes.

Collector configs, alert rules and dashboards are written against these names,
so they live in one place and nothing else spells them out.
"""

from __future__ import annotations

from typing import Final

# Inputs: set by the application, `wedding_context` or the ASGI integration.
WEDDING_ID: Final = "wedding.id"
"""The wedding a request concerns (string); used to resolve its date."""
WEDDING_DATE: Final = "wedding.date"
"""The wedding's date, ISO ``YYYY-MM-DD``."""

# Outputs: written by `WeddingSpanProcessor` on the copy it forwards.
WEDDING_ENDPOINT: Final = "wedding.endpoint"
"""Catalogue name of the endpoint, or ``other``."""
WEDDING_CRITICAL: Final = "wedding.critical"
"""Whether the endpoint is on the critical path (bool)."""
WEDDING_PROXIMITY: Final = "wedding.proximity"
"""Proximity band of the request's wedding (see `wedsync_otel.calendar.Band`)."""
WEDDING_DAYS_UNTIL: Final = "wedding.days_until"
"""Whole days from the request's date to the wedding date (int); only when known."""
WEDDING_SATURDAY: Final = "wedding.saturday"
"""The request fell on a Saturday in the platform time zone (bool)."""
WEDDING_SEASON: Final = "wedding.season"
"""The request fell in wedding season (bool)."""
WEDDING_THRESHOLD_MS: Final = "wedding.threshold_ms"
"""Latency threshold applied to this span, in milliseconds (double)."""
WEDDING_DURATION_MS: Final = "wedding.duration_ms"
"""Span duration in milliseconds (double)."""
WEDDING_THRESHOLD_BREACHED: Final = "wedding.threshold.breached"
"""Duration exceeded the threshold (bool)."""
WEDDING_APDEX: Final = "wedding.apdex"
"""Apdex class: ``satisfied``, ``tolerating`` or ``frustrated``."""

ENRICHMENT_ATTRIBUTES: Final = (
    WEDDING_ENDPOINT,
    WEDDING_CRITICAL,
    WEDDING_PROXIMITY,
    WEDDING_DAYS_UNTIL,
    WEDDING_SATURDAY,
    WEDDING_SEASON,
    WEDDING_THRESHOLD_MS,
    WEDDING_DURATION_MS,
    WEDDING_THRESHOLD_BREACHED,
    WEDDING_APDEX,
)
"""Every attribute the span processor writes, in contract order."""

# Baggage entry read only when the configuration trusts inbound baggage.
BAGGAGE_WEDDING_DATE: Final = "wedding.date"
BAGGAGE_WEDDING_ID: Final = "wedding.id"
