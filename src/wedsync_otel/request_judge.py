"""The request judge: the wedding rules applied to one request span's attributes and times.

`WeddingRules` decides everything that depends only on the configuration;
this stage decides what depends on the request: its endpoint (through the
catalogue's one route cache), its day (the span's own start, so a replayed
or delayed span is judged on the day it happened), its wedding's proximity,
and its duration against the judgement's threshold. It reads plain values,
never an SDK span, so it is tested without one; what it cannot use (a
date that is no date, a span without a duration) is counted, never raised.
"""

from __future__ import annotations

import datetime as dt
import math
import time
from collections.abc import Mapping
from typing import Any, Final

from opentelemetry.semconv._incubating.attributes.http_attributes import (
    HTTP_STATUS_CODE,
    HTTP_TARGET,
)
from opentelemetry.semconv.attributes.http_attributes import (
    HTTP_RESPONSE_STATUS_CODE,
    HTTP_ROUTE,
)
from opentelemetry.semconv.attributes.url_attributes import URL_PATH

from wedsync_otel._safety import RateLimitedWarning
from wedsync_otel.attributes import (
    WEDDING_APDEX,
    WEDDING_DATE,
    WEDDING_DAYS_UNTIL,
    WEDDING_DURATION_MS,
    WEDDING_ID,
    WEDDING_THRESHOLD_BREACHED,
)
from wedsync_otel.calendar import Band, Clock, DayFacts, parse_wedding_date
from wedsync_otel.context import resolve_wedding_date, wedding_id_text
from wedsync_otel.rules import Verdict, WeddingRules

SERVER_ERRORS: Final = frozenset(range(500, 600))
"""HTTP statuses that fail a request."""
_UNKNOWN: Final = Band.UNKNOWN
"""Read once: an enum member lookup goes through the metaclass, a Python call each time."""
_NS_PER_MS: Final = 1_000_000
_NS_PER_S: Final = 1_000_000_000


class RequestJudge:
    """Judges request spans against one `WeddingRules`.

    ``clock`` returns "now" as an aware datetime; without one, a span is
    judged at its own start time.
    """

    def __init__(self, rules: WeddingRules, *, clock: Clock | None = None) -> None:
        self.rules = rules
        self._clock = clock
        self.bad_date = RateLimitedWarning("wedsync-otel: span has an unusable wedding.date")
        self.bad_id = RateLimitedWarning("wedsync-otel: span has an unusable wedding.id")
        self.bad_duration = RateLimitedWarning("wedsync-otel: span has an unusable duration")
        self.bad_time = RateLimitedWarning(
            "wedsync-otel: span time is not on the calendar; judged at the current time"
        )

    def judge(
        self,
        attrs: Mapping[str, Any],
        start_ns: int | None,
        end_ns: int | None,
        *,
        error_status: bool,
    ) -> tuple[Verdict, dict[str, Any]]:
        """The verdict on one request, and the ``wedding.*`` attributes that say it on its span.

        ``error_status`` is whether the span's status is ERROR; a 5xx status
        code fails the request too. A request without a usable duration is
        frustrated and gets no duration, Apdex or breach attributes.
        """
        route = attrs.get(HTTP_ROUTE)
        spec = self.rules.endpoint(route if type(route) is str else _fallback_route(attrs))
        day = self._day_at(self._judged_at(start_ns, end_ns))
        if WEDDING_DATE in attrs or WEDDING_ID in attrs:
            band, days = self.rules.proximity(self._wedding_date(attrs), day)
        else:
            band, days = _UNKNOWN, None
        judgement = self.rules.judge(spec, band, day)
        status_code = attrs.get(HTTP_RESPONSE_STATUS_CODE)
        if type(status_code) is not int:
            status_code = _status_code(attrs)
        failed = error_status or status_code in SERVER_ERRORS
        marks = dict(judgement.span_attributes)
        duration_ms = _duration_ms(start_ns, end_ns)
        if math.isnan(duration_ms):
            self.bad_duration((start_ns, end_ns))
        else:
            marks[WEDDING_DURATION_MS] = duration_ms
            marks[WEDDING_THRESHOLD_BREACHED] = judgement.breached(duration_ms)
        apdex = judgement.apdex(duration_ms, failed=failed)
        if not math.isnan(duration_ms):
            marks[WEDDING_APDEX] = str(apdex)  # a StrEnum's text, in one C call
        if days is not None:
            marks[WEDDING_DAYS_UNTIL] = days
        return Verdict(judgement, days, duration_ms, apdex, failed, status_code), marks

    def _judged_at(self, start_ns: int | None, end_ns: int | None) -> int:
        """The instant a span is judged at: the clock's now, else its start, else its end."""
        if self._clock is not None:
            return int(self._clock().timestamp() * _NS_PER_S)
        if start_ns is not None:
            return start_ns
        return time.time_ns() if end_ns is None else end_ns

    def _day_at(self, epoch_ns: int) -> DayFacts:
        """The calendar day of an instant; an instant off the calendar is judged as now, counted."""
        try:
            return self.rules.calendar.day_of(epoch_ns)
        except (OverflowError, ValueError, OSError, TypeError):
            self.bad_time(epoch_ns)
            return self.rules.calendar.day_of(time.time_ns())

    def _wedding_date(self, attrs: Mapping[str, Any]) -> dt.date | None:
        raw = attrs.get(WEDDING_DATE)
        if raw is not None:
            date = parse_wedding_date(raw)
            if date is None:
                self.bad_date(raw)
            return date
        wedding_id = attrs.get(WEDDING_ID)
        if wedding_id is None:
            return None
        key = wedding_id_text(wedding_id)
        if key is None:
            self.bad_id(wedding_id)
            return None
        return resolve_wedding_date(key)


def _duration_ms(start_ns: int | None, end_ns: int | None) -> float:
    """A span's duration in milliseconds; NaN when it has none (or none a float can hold)."""
    if start_ns is None or end_ns is None or end_ns < start_ns:
        return math.nan
    try:
        return (end_ns - start_ns) / _NS_PER_MS
    except OverflowError:
        return math.nan


def _fallback_route(attrs: Mapping[str, Any]) -> str | None:
    """Without an ``http.route``: ``url.path``, then the older ``http.target``."""
    for key in (URL_PATH, HTTP_TARGET):
        route = attrs.get(key)
        if type(route) is str:
            return route
    return None


def _status_code(attrs: Mapping[str, Any]) -> int | None:
    """The response status: an int, or three digits as text (what some servers record)."""
    status = attrs.get(HTTP_RESPONSE_STATUS_CODE)
    if status is None:
        status = attrs.get(HTTP_STATUS_CODE)
    if type(status) is int:
        return status
    if isinstance(status, str) and len(status) == 3 and status.isascii() and status.isdigit():
        return int(status)
    return None
