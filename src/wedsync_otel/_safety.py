"""Telemetry must never break the application: guarded calls and quiet warnings.

Internal errors are logged once per place and swallowed, except under pytest
where they are re-raised so that bugs fail tests instead of hiding. Warnings
about bad input are rate-limited, so a flood of garbage costs one log line a
minute, and every suppressed one is counted.
"""

from __future__ import annotations

import logging
import os
import threading
import time

logger = logging.getLogger("wedsync_otel")

_reported: set[str] = set()
_lock = threading.Lock()

RAISE_INTERNAL_ERRORS_ENV = "WEDSYNC_OTEL_RAISE_INTERNAL_ERRORS"


def raise_internal_errors() -> bool:
    """True under pytest (or when forced by the environment): bugs should fail loudly there."""
    forced = os.environ.get(RAISE_INTERNAL_ERRORS_ENV)
    if forced is not None:
        return forced.strip().lower() in {"1", "true", "yes"}
    return "PYTEST_CURRENT_TEST" in os.environ


def log_internal_error(where: str, exc: BaseException) -> None:
    """Log an internal error once per place; re-raise it under pytest."""
    with _lock:
        first = where not in _reported
        _reported.add(where)
    if first:
        logger.error(
            "wedsync-otel internal error in %s; the application keeps running",
            where,
            exc_info=exc,
        )
    if raise_internal_errors():
        raise exc


class RateLimitedWarning:
    """A warning logged at most once per interval, counting what it suppressed."""

    def __init__(self, message: str, *, interval_s: float = 60.0) -> None:
        self._message = message
        self._interval_s = interval_s
        self._next_at = 0.0
        self.count = 0
        """How many times the condition occurred, logged or not."""

    def __call__(self, detail: object) -> None:
        """Record one occurrence; log it if the interval has passed."""
        self.count += 1
        now = time.monotonic()
        if now < self._next_at:
            return
        self._next_at = now + self._interval_s
        logger.warning("%s (%r; %d so far)", self._message, detail, self.count)
