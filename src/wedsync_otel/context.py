"""Which wedding a request concerns: `wedding_context`, the resolver, trusted baggage.

The wedding travels in the OpenTelemetry context, so threads and asyncio
tasks that inherit the context inherit it too. Entering `wedding_context`
also writes ``wedding.id``/``wedding.date`` onto the current span: a server
span ends after the request's context is gone, so the span itself must carry
what the processor needs at the end.
"""

from __future__ import annotations

import asyncio
import contextvars
import datetime as dt
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from contextlib import contextmanager
from dataclasses import dataclass

from opentelemetry import baggage, trace
from opentelemetry import context as otel_context

from wedsync_otel import attributes
from wedsync_otel._safety import RateLimitedWarning
from wedsync_otel.calendar import parse_wedding_date

WeddingResolver = Callable[[str], "dt.date | str | None"]
"""Looks up a wedding's date by its id; may be slow, may raise."""

MAX_WEDDING_ID_CHARS = 128

_WEDDING_KEY = otel_context.create_key("wedsync_otel.wedding")
_bad_date = RateLimitedWarning("wedsync-otel: unusable wedding date ignored")
_resolver_failed = RateLimitedWarning("wedsync-otel: the wedding resolver raised; date unknown")


@dataclass(frozen=True, slots=True)
class Wedding:
    """The wedding in the current context: its id, its date, or both."""

    wedding_id: str | None
    wedding_date: dt.date | None


def wedding_id_text(value: object) -> str | None:
    """A usable wedding id (a short string or an int), as text; ``None`` otherwise."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str) and 0 < len(value) <= MAX_WEDDING_ID_CHARS:
        return value
    return None


def current_wedding(context: otel_context.Context | None = None) -> Wedding | None:
    """The wedding set by the innermost `wedding_context`, if any."""
    value = otel_context.get_value(_WEDDING_KEY, context)
    return value if isinstance(value, Wedding) else None


def _current_context_reader() -> Callable[[], otel_context.Context]:
    """`opentelemetry.context.get_current`, or the C getter of the context variable behind it.

    Every span start asks for the current context; the default runtime context keeps
    it in one `ContextVar`, whose ``get`` answers without two Python frames.
    """
    runtime = getattr(otel_context, "_RUNTIME_CONTEXT", None)
    variable = getattr(runtime, "_current_context", None)
    if isinstance(variable, contextvars.ContextVar):
        getter: Callable[[], otel_context.Context] = variable.get
        return getter
    return otel_context.get_current


_current_context = _current_context_reader()


def wedding_in_context(context: otel_context.Context | None) -> bool:
    """Whether ``context`` or the current context holds a `wedding_context` (cheap: every span)."""
    if context is not None and context.get(_WEDDING_KEY) is not None:
        return True
    return _current_context().get(_WEDDING_KEY) is not None


@contextmanager
def wedding_context(
    *,
    wedding_id: str | int | None = None,
    wedding_date: dt.date | str | None = None,
    resolve: bool = True,
) -> Iterator[Wedding]:
    """Make every span started inside know the wedding; also mark the current span.

    Without a date, the registered resolver is asked for one (waiting at most
    its timeout) unless ``resolve`` is false (the ASGI middleware has asked
    already, without blocking its event loop). An unusable id or date is ignored with a rate-limited
    warning: this never raises into the application.
    """
    wedding_key = wedding_id_text(wedding_id) if wedding_id is not None else None
    date = parse_wedding_date(wedding_date) if wedding_date is not None else None
    if wedding_date is not None and date is None:
        _bad_date(wedding_date)
    if date is None and wedding_key is not None and resolve:
        resolver = _resolver
        if resolver is not None:
            date = resolver.resolve(wedding_key, wait_s=resolver.timeout_s)
    wedding = Wedding(wedding_key, date)
    _mark_current_span(wedding)
    token = otel_context.attach(otel_context.set_value(_WEDDING_KEY, wedding))
    try:
        yield wedding
    finally:
        otel_context.detach(token)


def _mark_current_span(wedding: Wedding) -> None:
    span = trace.get_current_span()
    if not span.is_recording():
        return
    existing = getattr(span, "attributes", None) or {}
    if wedding.wedding_id is not None and attributes.WEDDING_ID not in existing:
        span.set_attribute(attributes.WEDDING_ID, wedding.wedding_id)
    if wedding.wedding_date is not None and attributes.WEDDING_DATE not in existing:
        span.set_attribute(attributes.WEDDING_DATE, wedding.wedding_date.isoformat())


def inherited_wedding(
    context: otel_context.Context | None, *, trust_baggage: bool
) -> tuple[str | None, str | None]:
    """Wedding id and ISO date a new span inherits: `wedding_context`, then trusted baggage.

    A server span's parent context is extracted from the request headers and
    does not hold what an outer middleware set, so the current context is
    asked too.
    """
    wedding = current_wedding(context)
    if wedding is None and context is not None:
        wedding = current_wedding()
    if wedding is not None:
        date = wedding.wedding_date.isoformat() if wedding.wedding_date else None
        return wedding.wedding_id, date
    if not trust_baggage:
        return None, None
    raw_id = baggage.get_baggage(attributes.BAGGAGE_WEDDING_ID, context)
    parsed = parse_wedding_date(baggage.get_baggage(attributes.BAGGAGE_WEDDING_DATE, context))
    return wedding_id_text(raw_id), parsed.isoformat() if parsed else None


class ResolverCache:
    """Calls a `WeddingResolver` off the caller's thread and caches its answers.

    Bounded (oldest entry evicted first, counted), with a TTL; failures are
    cached briefly too, so a broken resolver is not hammered. Lookups run on
    daemon threads, at most ``max_pending`` at once: a resolver that hangs
    holds its thread, never the request and never interpreter exit.
    """

    def __init__(
        self,
        resolver: WeddingResolver,
        *,
        ttl_s: float = 300.0,
        error_ttl_s: float = 10.0,
        timeout_ms: float = 50.0,
        max_entries: int = 10_000,
        max_pending: int = 32,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._resolver = resolver
        self._ttl_s = ttl_s
        self._error_ttl_s = error_ttl_s
        self.timeout_s = timeout_ms / 1000
        self._max_entries = max_entries
        self._max_pending = max_pending
        self._clock = clock
        self._entries: dict[str, tuple[float, dt.date | None]] = {}
        self._pending: dict[str, Future[dt.date | None]] = {}
        self._lock = threading.Lock()
        self.evictions = 0
        self.errors = 0
        self.timeouts = 0
        self.dropped = 0
        """Lookups refused because ``max_pending`` were already running."""

    def resolve(self, wedding_id: str, *, wait_s: float) -> dt.date | None:
        """The cached date, or start a lookup and wait for it at most ``wait_s`` seconds."""
        found = self._cached_or_lookup(wedding_id)
        if not isinstance(found, Future):
            return found
        if wait_s > 0:
            try:
                return found.result(timeout=wait_s)
            except TimeoutError:
                self.timeouts += 1
                return None
        return found.result() if found.done() else None

    async def resolve_async(self, wedding_id: str) -> dt.date | None:
        """`resolve` for asyncio code: waits (at most the timeout) without blocking the loop."""
        found = self._cached_or_lookup(wedding_id)
        if not isinstance(found, Future):
            return found
        try:
            return await asyncio.wait_for(
                asyncio.shield(asyncio.wrap_future(found)), self.timeout_s
            )
        except TimeoutError:
            self.timeouts += 1
            return None

    def _cached_or_lookup(self, wedding_id: str) -> dt.date | Future[dt.date | None] | None:
        """A fresh cached answer, else the future of a lookup (started if none is running)."""
        entry = self._entries.get(wedding_id)
        if entry is not None and entry[0] > self._clock():
            return entry[1]
        with self._lock:
            future = self._pending.get(wedding_id)
            if future is not None:
                return future
            if len(self._pending) >= self._max_pending:
                self.dropped += 1
                return None
            future = self._pending[wedding_id] = Future()
        threading.Thread(
            target=self._lookup, args=(wedding_id, future), name="wedsync-resolver", daemon=True
        ).start()
        return future

    def _lookup(self, wedding_id: str, future: Future[dt.date | None]) -> None:
        failed = False
        date: dt.date | None = None
        try:
            answer = self._resolver(wedding_id)
        except Exception as exc:  # noqa: BLE001 - a broken resolver must not break requests
            failed = True
            self.errors += 1
            _resolver_failed(exc)
        else:
            date = parse_wedding_date(answer)
            if answer is not None and date is None:
                _bad_date(answer)
        ttl = self._error_ttl_s if failed else self._ttl_s
        with self._lock:
            if wedding_id not in self._entries and len(self._entries) >= self._max_entries:
                del self._entries[next(iter(self._entries))]
                self.evictions += 1
            self._entries[wedding_id] = (self._clock() + ttl, date)
            self._pending.pop(wedding_id, None)
        future.set_result(date)


_resolver: ResolverCache | None = None


def set_wedding_resolver(
    resolver: WeddingResolver | None,
    *,
    ttl_s: float = 300.0,
    timeout_ms: float = 50.0,
    max_entries: int = 10_000,
) -> None:
    """Register how to find a wedding's date from its id (``None`` unregisters).

    Answers are cached for ``ttl_s``; `wedding_context` waits at most
    ``timeout_ms`` for a lookup, and the span processor never waits.
    """
    global _resolver  # noqa: PLW0603 - one resolver per process, like the global tracer provider
    _resolver = (
        None
        if resolver is None
        else ResolverCache(resolver, ttl_s=ttl_s, timeout_ms=timeout_ms, max_entries=max_entries)
    )


async def resolve_wedding_date_async(wedding_id: str) -> dt.date | None:
    """The registered resolver's answer for asyncio code, waiting at most its timeout."""
    resolver = _resolver
    return None if resolver is None else await resolver.resolve_async(wedding_id)


def resolve_wedding_date(wedding_id: str) -> dt.date | None:
    """The registered resolver's cached answer, without waiting; ``None`` when unknown yet."""
    resolver = _resolver
    return None if resolver is None else resolver.resolve(wedding_id, wait_s=0)
