"""Quiet warnings: `RateLimitedWarning` logs once per interval and counts every occurrence.

Time comes from a fake clock the test moves, so the interval is exact and nothing waits.
"""

from __future__ import annotations

import logging
import threading
from typing import Final

import pytest

from helpers import FakeSeconds
from wedsync_otel._safety import RAISE_INTERNAL_ERRORS_ENV, RateLimitedWarning, call_guarded

MESSAGE: Final = "wedsync-otel: test condition"
INTERVAL_S: Final = 60.0
THREADS: Final = 4
CALLS_PER_THREAD: Final = 5_000
JOIN_TIMEOUT_S: Final = 30.0


@pytest.fixture
def warnings_logged(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    """Log capture of the wedsync_otel logger at WARNING."""
    caplog.set_level(logging.WARNING, logger="wedsync_otel")
    return caplog


def _ours(caplog: pytest.LogCaptureFixture) -> list[str]:
    """The lines logged with MESSAGE during the test."""
    messages = (record.getMessage() for record in caplog.records)
    return [message for message in messages if MESSAGE in message]


def test_the_first_occurrence_is_logged_with_its_detail(
    warnings_logged: pytest.LogCaptureFixture,
) -> None:
    """The first call logs at once, with the detail and a count of one."""
    warning = RateLimitedWarning(MESSAGE, interval_s=INTERVAL_S, monotonic=FakeSeconds())
    warning("bad date '2026-13-01'")
    assert _ours(warnings_logged) == [f"{MESSAGE} (\"bad date '2026-13-01'\"; 1 so far)"]


def test_occurrences_within_the_interval_are_counted_not_logged(
    warnings_logged: pytest.LogCaptureFixture,
) -> None:
    """Calls until the interval has passed log nothing more, but each one is counted."""
    clock = FakeSeconds()
    warning = RateLimitedWarning(MESSAGE, interval_s=INTERVAL_S, monotonic=clock)
    warning("first")
    for _ in range(9):
        clock.now_s += 5.0  # 45 s in all: still inside the minute
        warning("again")
    assert warning.count == 10
    assert len(_ours(warnings_logged)) == 1


def test_the_next_occurrence_after_the_interval_is_logged_with_the_total(
    warnings_logged: pytest.LogCaptureFixture,
) -> None:
    """Once the interval has passed, the next call logs, reporting every occurrence so far."""
    clock = FakeSeconds()
    warning = RateLimitedWarning(MESSAGE, interval_s=INTERVAL_S, monotonic=clock)
    warning("first")
    clock.now_s += INTERVAL_S - 0.001
    warning("suppressed")
    clock.now_s += 0.001
    warning("logged")
    assert _ours(warnings_logged) == [
        f"{MESSAGE} ('first'; 1 so far)",
        f"{MESSAGE} ('logged'; 3 so far)",
    ]


def test_the_interval_counts_from_the_last_line_logged(
    warnings_logged: pytest.LogCaptureFixture,
) -> None:
    """A steady stream of occurrences, one per 10 s for 5 min, logs one line a minute."""
    clock = FakeSeconds()
    warning = RateLimitedWarning(MESSAGE, interval_s=INTERVAL_S, monotonic=clock)
    for _ in range(30):
        warning("tick")
        clock.now_s += 10.0
    assert warning.count == 30
    assert len(_ours(warnings_logged)) == 5


def test_every_occurrence_is_counted_across_threads(
    warnings_logged: pytest.LogCaptureFixture,
) -> None:
    """Threads calling at once lose no count, and the still clock lets one line through."""
    warning = RateLimitedWarning(MESSAGE, interval_s=INTERVAL_S, monotonic=FakeSeconds())
    start = threading.Barrier(THREADS, timeout=JOIN_TIMEOUT_S)

    def call() -> None:
        start.wait()
        for _ in range(CALLS_PER_THREAD):
            warning("concurrent")

    threads = [threading.Thread(target=call) for _ in range(THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=JOIN_TIMEOUT_S)
    assert not any(thread.is_alive() for thread in threads)
    assert warning.count == THREADS * CALLS_PER_THREAD
    assert len(_ours(warnings_logged)) == 1


def test_the_default_clock_logs_the_first_occurrence(
    warnings_logged: pytest.LogCaptureFixture,
) -> None:
    """Without a clock given (time.monotonic), the first call logs and every call is counted."""
    warning = RateLimitedWarning(MESSAGE)
    warning("first")
    warning("second")
    assert warning.count == 2
    assert _ours(warnings_logged)[0] == f"{MESSAGE} ('first'; 1 so far)"


def _raises(*args: object, **kwargs: object) -> None:
    raise RuntimeError(f"hook failed with {args} {kwargs}")


def test_a_guarded_hook_that_raises_is_logged_not_raised(
    monkeypatch: pytest.MonkeyPatch, warnings_logged: pytest.LogCaptureFixture
) -> None:
    """Outside tests, what a hook raises is logged once at ERROR and the caller goes on."""
    monkeypatch.setenv(RAISE_INTERNAL_ERRORS_ENV, "0")
    call_guarded("a guarded test hook", _raises, 1, key="value")
    call_guarded("a guarded test hook", _raises, 2)
    errors = [r for r in warnings_logged.records if "a guarded test hook" in r.getMessage()]
    assert len(errors) == 1
    assert errors[0].levelno == logging.ERROR


def test_a_guarded_hook_gets_its_arguments() -> None:
    """The guard passes positional and keyword arguments through unchanged."""
    seen: list[tuple[object, ...]] = []
    call_guarded("a recording hook", lambda *a, **k: seen.append((*a, *sorted(k.items()))), 1, b=2)
    assert seen == [(1, ("b", 2))]


def test_a_guarded_hook_that_raises_fails_a_test_run(monkeypatch: pytest.MonkeyPatch) -> None:
    """Under pytest (or when forced), a hook's error is re-raised so bugs do not hide."""
    monkeypatch.setenv(RAISE_INTERNAL_ERRORS_ENV, "1")
    with pytest.raises(RuntimeError, match="hook failed"):
        call_guarded("a raising hook under test", _raises)
