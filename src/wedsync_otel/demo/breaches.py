"""BreachCounter: the threshold breaches the live view and the final table show.

A verdict listener of its own, so the display reads counts without touching the processor.
"""

from __future__ import annotations

import threading
from collections import Counter

from opentelemetry.sdk.trace import ReadableSpan

from wedsync_otel import attributes as attr
from wedsync_otel.rules import Verdict


class BreachCounter:
    """Threshold breaches per endpoint, counted from the enriched spans as they end."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counts: Counter[str] = Counter()

    def __call__(self, span: ReadableSpan, verdict: Verdict) -> None:
        """A verdict listener (`WeddingSpanProcessor.add_verdict_listener`)."""
        attributes = span.attributes or {}
        if attributes.get(attr.WEDDING_THRESHOLD_BREACHED) is True:
            endpoint = str(attributes.get(attr.WEDDING_ENDPOINT, "other"))
            with self._lock:
                self._counts[endpoint] += 1

    def counts(self) -> dict[str, int]:
        """Breaches so far, by endpoint."""
        with self._lock:
            return dict(self._counts)
