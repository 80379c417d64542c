"""Span export that rides out a collector outage: a sized queue and a retrying exporter.

With the SDK's defaults a short collector outage loses spans: the
`BatchSpanProcessor` queue holds 2,048 spans and drops the oldest beyond that,
and the OTLP/gRPC exporter retries a batch only within its own ``timeout``
(10 s), then gives the batch up. `configure()` therefore builds the batch
processor with a queue sized for an outage budget (30 s at 1,000 spans/s by
default) and wraps the exporter in a `RetryingSpanExporter`, which keeps
retrying a failed batch with capped exponential backoff until the outage has
lasted ``retry_deadline_s``. The waiting happens on the batch processor's
worker thread, never on the application's: ``span.end()`` only appends to the
queue. Shutdown sets an event that ends any wait at once. The exporter reads
time from an injectable clock and waits through an injectable ``wait``, so its
deadline and backoff can be tested on a fake clock.

Settings resolve as argument, then environment, then default. The standard
``OTEL_BSP_*`` variables keep their meaning (and, as in the SDK, a value that
does not parse is logged and the default used); the retry settings are
``WEDSYNC_OTEL_EXPORT_RETRY_DEADLINE_S`` and ``WEDSYNC_OTEL_EXPORT_MAX_BACKOFF_S``.
"""

from __future__ import annotations

import logging
import os
import random
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Final, TypeAlias

from opentelemetry.metrics import MeterProvider
from opentelemetry.sdk.environment_variables import (
    OTEL_BSP_MAX_EXPORT_BATCH_SIZE,
    OTEL_BSP_MAX_QUEUE_SIZE,
    OTEL_BSP_SCHEDULE_DELAY,
)
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult

from wedsync_otel._safety import Monotonic, RateLimitedWarning
from wedsync_otel._settings import NUMBER, WHOLE, declared, from_environment, setting
from wedsync_otel.errors import ConfigError

__all__ = [
    "DEFAULT_MAX_QUEUE_SIZE",
    "DEFAULT_RETRY_DEADLINE_S",
    "EXPORT_SETTINGS",
    "ExportSettings",
    "ExportStats",
    "ExportTuning",
    "RetryingSpanExporter",
    "batch_span_processor",
]

logger = logging.getLogger("wedsync_otel")

DEFAULT_MAX_QUEUE_SIZE: Final = 30_000
"""Spans the batch queue holds: an outage of 30 s at 1,000 spans/s (SDK default: 2,048)."""

DEFAULT_RETRY_DEADLINE_S: Final = 30.0
"""How long a collector outage may last before failed batches are given up."""

DEFAULT_MAX_BACKOFF_S: Final = 5.0
"""The longest wait between two attempts, so a returning collector is found within 5 s."""

INITIAL_BACKOFF_S: Final = 0.5
"""The first wait after a failed attempt; each later wait doubles, up to the cap."""

SDK_SCHEDULE_DELAY_MILLIS: Final = 5_000.0
SDK_MAX_EXPORT_BATCH_SIZE: Final = 512

RETRY_DEADLINE_ENV: Final = "WEDSYNC_OTEL_EXPORT_RETRY_DEADLINE_S"
MAX_BACKOFF_ENV: Final = "WEDSYNC_OTEL_EXPORT_MAX_BACKOFF_S"

_JITTER: Final = 0.2  # +-20 %, as the OTLP exporter's own backoff, so instances do not stampede

Wait: TypeAlias = Callable[[float], bool]
"""Wait up to the given seconds; True when shutdown ended the wait, as `threading.Event.wait`."""


@dataclass(frozen=True, kw_only=True, slots=True)
class ExportSettings:
    """The resolved span export settings `configure()` builds the pipeline with.

    Each field is declared once with `setting()`: its variable, parser, default
    and meaning (see `EXPORT_SETTINGS`). The ``OTEL_BSP_*`` ones are lenient, as
    in the SDK: a value that does not parse is logged and the default used.
    """

    max_queue_size: int = setting(
        env=OTEL_BSP_MAX_QUEUE_SIZE,
        kind=WHOLE,
        default=DEFAULT_MAX_QUEUE_SIZE,
        lenient=True,
        doc="Spans the batch queue holds before the oldest is dropped.",
    )
    max_export_batch_size: int = setting(
        env=OTEL_BSP_MAX_EXPORT_BATCH_SIZE,
        kind=WHOLE,
        default=SDK_MAX_EXPORT_BATCH_SIZE,
        lenient=True,
        doc="Spans sent in one export, at most max_queue_size.",
    )
    schedule_delay_millis: float = setting(
        env=OTEL_BSP_SCHEDULE_DELAY,
        kind=WHOLE,
        default=SDK_SCHEDULE_DELAY_MILLIS,
        lenient=True,
        doc="The longest a span waits in the queue before an export starts.",
    )
    retry_deadline_s: float = setting(
        env=RETRY_DEADLINE_ENV,
        kind=NUMBER,
        default=DEFAULT_RETRY_DEADLINE_S,
        doc="How long an outage is retried before batches are given up; 0: no retrying.",
    )
    max_backoff_s: float = setting(
        env=MAX_BACKOFF_ENV,
        kind=NUMBER,
        default=DEFAULT_MAX_BACKOFF_S,
        doc="The longest wait between two attempts.",
    )

    def __post_init__(self) -> None:
        """Reject settings the batch processor or the retry loop cannot work with."""
        if self.max_queue_size <= 0:
            raise ConfigError("max_queue_size", f"must be positive, got {self.max_queue_size}")
        if not 0 < self.max_export_batch_size <= self.max_queue_size:
            raise ConfigError(
                "max_export_batch_size",
                f"must be positive and at most max_queue_size ({self.max_queue_size}), "
                f"got {self.max_export_batch_size}",
            )
        if not self.schedule_delay_millis > 0:
            raise ConfigError(
                "schedule_delay_millis", f"must be positive, got {self.schedule_delay_millis}"
            )
        if not 0 <= self.retry_deadline_s < float("inf"):
            raise ConfigError(
                "retry_deadline_s", f"must be zero or positive, got {self.retry_deadline_s}"
            )
        if not 0 < self.max_backoff_s < float("inf"):
            raise ConfigError("max_backoff_s", f"must be positive, got {self.max_backoff_s}")


EXPORT_SETTINGS: Final = declared(ExportSettings)
"""The span export settings, read back from `ExportSettings`' field declarations."""


@dataclass(frozen=True, kw_only=True, slots=True)
class ExportTuning:
    """Span export settings for `configure()`; a field left None comes from the environment.

    One optional field per `ExportSettings` field, of the same name: variables
    and defaults are declared there (`EXPORT_SETTINGS`; the README's table).
    A ``retry_deadline_s`` of 0 turns the retrying exporter off.
    """

    max_queue_size: int | None = None
    max_export_batch_size: int | None = None
    schedule_delay_millis: float | None = None
    retry_deadline_s: float | None = None
    max_backoff_s: float | None = None

    def resolve(self, environ: Mapping[str, str] | None = None) -> ExportSettings:
        """Argument, then environment (``os.environ`` unless given), then default."""
        env = os.environ if environ is None else environ
        values = from_environment(EXPORT_SETTINGS, env)  # every variable read, as the SDK does
        for item in EXPORT_SETTINGS:
            argument = getattr(self, item.key)
            if argument is not None:
                values[item.key] = argument
        return ExportSettings(**values)


@dataclass(frozen=True, slots=True)
class ExportStats:
    """What a `RetryingSpanExporter` has done so far."""

    exported_spans: int
    """Spans the wrapped exporter accepted."""
    dropped_spans: int
    """Spans given up: their outage outlasted the deadline, or shutdown came first."""
    failed_attempts: int
    """Export attempts that failed (each retry is one)."""
    retrying_spans: int
    """Spans of the batch being retried now (0 when none is)."""
    failing_for_s: float
    """How long exports have been failing, 0 while they succeed."""


class RetryingSpanExporter(SpanExporter):
    """Retries failed batches with capped backoff for as long as an outage lasts, up to a deadline.

    The deadline counts from the first failure of an outage, not per batch: a
    collector away for longer than ``retry_deadline_s`` costs the batch being
    retried, and from then on each batch gets one attempt until one succeeds,
    so the worker keeps draining the (bounded) queue instead of waiting a full
    deadline per batch. Every span given up is counted in `stats`.

    ``monotonic`` returns monotonic seconds (default `time.monotonic`); the deadline,
    `ExportStats.failing_for_s` and the rate limit of the drop warning read it.
    ``wait`` is how the retry loop waits between attempts; by default it is the
    shutdown event's own ``wait``, so `shutdown` ends a wait at once. A ``wait``
    given instead (a test's fake clock, which moves time by what it is asked to
    wait) cannot be interrupted, but the loop stops after it when shutdown came.
    """

    def __init__(
        self,
        inner: SpanExporter,
        *,
        retry_deadline_s: float = DEFAULT_RETRY_DEADLINE_S,
        initial_backoff_s: float = INITIAL_BACKOFF_S,
        max_backoff_s: float = DEFAULT_MAX_BACKOFF_S,
        monotonic: Monotonic = time.monotonic,
        wait: Wait | None = None,
    ) -> None:
        self._inner = inner
        self._retry_deadline_s = retry_deadline_s
        self._initial_backoff_s = min(initial_backoff_s, max_backoff_s)
        self._max_backoff_s = max_backoff_s
        self._monotonic = monotonic
        self._stopping = threading.Event()
        self._wait: Wait = self._stopping.wait if wait is None else wait
        self._lock = threading.Lock()
        self._exported = 0
        self._dropped = 0
        self._failed_attempts = 0
        self._retrying = 0
        self._failing_since: float | None = None
        self._drop_warning = RateLimitedWarning(
            "wedsync-otel: spans dropped after the collector stayed unreachable",
            monotonic=monotonic,
        )

    @property
    def inner(self) -> SpanExporter:
        """The wrapped exporter."""
        return self._inner

    def stats(self) -> ExportStats:
        """Counts so far; safe to call from any thread."""
        now_s = self._monotonic()  # before the lock: the clock may be anyone's code
        with self._lock:
            since = self._failing_since
            return ExportStats(
                exported_spans=self._exported,
                dropped_spans=self._dropped,
                failed_attempts=self._failed_attempts,
                retrying_spans=self._retrying,
                failing_for_s=0.0 if since is None else max(0.0, now_s - since),
            )

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        """Export ``spans``, retrying until the outage deadline; called on the worker thread."""
        backoff_s = self._initial_backoff_s
        while not self._stopping.is_set():
            if self._attempt(spans):
                with self._lock:
                    recovered_after = self._failing_since
                    self._failing_since = None
                    self._exported += len(spans)
                    self._retrying = 0
                if recovered_after is not None:
                    logger.warning(
                        "wedsync-otel: span export recovered after %.1f s",
                        self._monotonic() - recovered_after,
                    )
                return SpanExportResult.SUCCESS
            now = self._monotonic()
            with self._lock:
                self._failed_attempts += 1
                outage_began = self._failing_since is None
                if self._failing_since is None:
                    self._failing_since = now
                left_s = self._failing_since + self._retry_deadline_s - now
                self._retrying = len(spans)
            if outage_began:
                logger.warning(
                    "wedsync-otel: span export failed; retrying for up to %.0f s while the "
                    "queue holds new spans",
                    self._retry_deadline_s,
                )
            wait_s = min(backoff_s * random.uniform(1 - _JITTER, 1 + _JITTER), left_s)
            if wait_s <= 0 or self._wait(wait_s) or self._stopping.is_set():
                break
            backoff_s = min(backoff_s * 2, self._max_backoff_s)
        with self._lock:
            self._dropped += len(spans)
            self._retrying = 0
            dropped = self._dropped
        self._drop_warning(f"{dropped} spans in all")
        return SpanExportResult.FAILURE

    def _attempt(self, spans: Sequence[ReadableSpan]) -> bool:
        try:
            return self._inner.export(spans) is SpanExportResult.SUCCESS
        except Exception:  # an exporter that raises has failed this attempt; retry it
            logger.warning("wedsync-otel: span exporter raised; will retry", exc_info=True)
            return False

    def force_flush(self, timeout_millis: int = 30_000) -> bool:
        """Flush the wrapped exporter."""
        return self._inner.force_flush(timeout_millis)

    def shutdown(self) -> None:
        """Stop retrying at once, then shut the wrapped exporter down; idempotent."""
        if self._stopping.is_set():
            return
        self._stopping.set()
        self._inner.shutdown()


def batch_span_processor(
    exporter: SpanExporter,
    settings: ExportSettings,
    *,
    meter_provider: MeterProvider | None = None,
) -> BatchSpanProcessor:
    """A `BatchSpanProcessor` with ``settings``' queue, around a `RetryingSpanExporter`.

    A ``retry_deadline_s`` of 0 leaves ``exporter`` unwrapped (the SDK's behaviour).
    ``meter_provider`` receives the SDK's own processor metrics (queue size,
    capacity, spans dropped because the queue was full) when
    ``OTEL_PYTHON_SDK_INTERNAL_METRICS_ENABLED=true``.
    """
    if settings.retry_deadline_s > 0:
        exporter = RetryingSpanExporter(
            exporter,
            retry_deadline_s=settings.retry_deadline_s,
            max_backoff_s=settings.max_backoff_s,
        )
    return BatchSpanProcessor(
        exporter,
        max_queue_size=settings.max_queue_size,
        schedule_delay_millis=settings.schedule_delay_millis,
        max_export_batch_size=settings.max_export_batch_size,
        meter_provider=meter_provider,
    )
