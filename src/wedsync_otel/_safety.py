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
from collections.abc import Callable
from typing import TypeAlias

Monotonic: TypeAlias = Callable[[], float]
"""Monotonic seconds, as `time.monotonic` returns them; tests pass a fake one."""

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


def call_guarded(
    where: str, function: Callable[..., object], /, *args: object, **kwargs: object
) -> None:
    """Call user code (a verdict listener, a query observer): what it raises is only logged.

    The one guard around every hook the application registers, so a broken
    hook never breaks a request and each failure is reported the same way.
    """
    try:
        function(*args, **kwargs)
    except Exception as exc:  # noqa: BLE001 - a hook never breaks the request
        log_internal_error(where, exc)


class RateLimitedWarning:
    """A warning logged at most once per interval, counting what it suppressed.

    ``monotonic`` returns monotonic seconds (`time.monotonic` unless given), so a
    test can move time instead of waiting for it. Safe to call from any thread:
    the count is exact, and the lock is held only to count and to decide.
    """

    def __init__(
        self, message: str, *, interval_s: float = 60.0, monotonic: Monotonic = time.monotonic
    ) -> None:
        self._message = message
        self._interval_s = interval_s
        self._monotonic = monotonic
        self._lock = threading.Lock()
        self._next_at_s: float | None = None  # None: nothing logged yet, so the next one is
        self.count = 0
        """How many times the condition occurred, logged or not."""

    def __call__(self, detail: object) -> None:
        """Record one occurrence; log it if the interval has passed."""
        now_s = self._monotonic()
        with self._lock:
            self.count += 1
            count = self.count
            if self._next_at_s is not None and now_s < self._next_at_s:
                return
            self._next_at_s = now_s + self._interval_s
        logger.warning("%s (%s; %d so far)", self._message, brief(detail), count)


_BRIEF_CHARS = 60
_MAX_BRIEF_INT_BITS = 256


def brief(value: object) -> str:
    """A short description of ``value`` for a log line, whatever it is; never raises.

    Log details come from garbage input: an int of 5,000 digits (whose text
    would raise), an object whose ``__repr__`` raises, a megabyte string.
    """
    try:
        if isinstance(value, int) and int.bit_length(value) > _MAX_BRIEF_INT_BITS:
            return f"<{type(value).__name__} of {int.bit_length(value)} bits>"
        if isinstance(value, str):
            value = str.__getitem__(value, slice(0, _BRIEF_CHARS))
        return str.__getitem__(repr(value), slice(0, _BRIEF_CHARS))
    except Exception:  # noqa: BLE001 - an object whose __repr__ raises is still described
        return f"<{type(value).__name__}>"
