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

# Cache spans: set by the Redis instrumentation hooks and by `WeddingCache`.
CACHE_BACKEND: Final = "cache.backend"
"""``redis`` or ``memory`` (the in-process fallback while Redis is unreachable)."""
CACHE_HIT: Final = "cache.hit"
"""A single-key read found its key (bool)."""
CACHE_HITS: Final = "cache.hits"
"""Keys found by a multi-key read (MGET, HMGET) (int)."""
CACHE_MISSES: Final = "cache.misses"
"""Keys not found by a multi-key read (int)."""
CACHE_NAMESPACE: Final = "cache.key.namespace"
"""First ``:``-separated segment of the key, e.g. ``supplier``; never the full key."""
CACHE_TTL_S: Final = "cache.ttl_s"
"""TTL written by SET/SETEX/EXPIRE, in seconds (double)."""

# Database spans: written by `WeddingSpanProcessor` on the copy it forwards.
DB_FINGERPRINT: Final = "wedding.db.fingerprint"
"""16 hex digits naming the query's shape (literals removed, IN-lists collapsed)."""
DB_QUERY_SLOW: Final = "db.query.slow"
"""The query took longer than the slow-query threshold (bool)."""

# Roll-up onto the request's local root span.
ROLLUP_CACHE_HITS: Final = "wedding.cache.hits"
ROLLUP_CACHE_MISSES: Final = "wedding.cache.misses"
ROLLUP_CACHE_DURATION_MS: Final = "wedding.cache.duration_ms"
ROLLUP_DB_QUERIES: Final = "wedding.db.queries"
ROLLUP_DB_CONTROL: Final = "wedding.db.control_operations"
"""Connects and transaction control (BEGIN, COMMIT, ...): round trips, not counted as queries."""
ROLLUP_DB_DURATION_MS: Final = "wedding.db.duration_ms"
"""Wall time with database work in flight, connects and transaction control included."""
ROLLUP_DB_SLOW_QUERIES: Final = "wedding.db.slow_queries"
ROLLUP_APP_DURATION_MS: Final = "wedding.app.duration_ms"
"""The request's duration less its cache and database time (never below 0)."""
DB_N_PLUS_ONE: Final = "wedding.db.n_plus_one"
"""Fingerprint of a query run more than the N+1 limit of times under one request."""
