"""Which wedding a request concerns: `wedding_context`, the resolver, trusted baggage.

The wedding travels in the OpenTelemetry context, so threads and asyncio
tasks that inherit the context inherit it too. Entering `wedding_context`
also marks the current span with ``wedding.id``/``wedding.date``: a server
span ends after the request's context is gone, so the span must be marked
with what the processor needs at the end. The mark is kept beside the live
span (`_wedding_marks`), never in one of the application's attribute slots.
"""

from __future__ import annotations

import asyncio
import contextvars
import dataclasses
import datetime as dt
import math
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from contextlib import contextmanager
from dataclasses import dataclass

from opentelemetry import baggage, trace
from opentelemetry import context as otel_context

from wedsync_otel import attributes
from wedsync_otel._bounded import evict_oldest
from wedsync_otel._safety import RateLimitedWarning, log_internal_error
from wedsync_otel._sdk import current_context_reader
from wedsync_otel._wedding_marks import mark_span
from wedsync_otel.calendar import parse_wedding_date

WeddingResolver = Callable[[str], "dt.date | str | None"]
"""Looks up a wedding's date by its id; may be slow, may raise."""

MAX_WEDDING_ID_CHARS = 128
_MAX_ID_BITS = math.ceil(MAX_WEDDING_ID_CHARS * math.log2(10))
"""An int of more bits has more than `MAX_WEDDING_ID_CHARS` digits."""

_WEDDING_KEY = otel_context.create_key("wedsync_otel.wedding")
_bad_date = RateLimitedWarning("wedsync-otel: unusable wedding date ignored")
_resolver_failed = RateLimitedWarning("wedsync-otel: the wedding resolver raised; date unknown")
_lookup_not_started = RateLimitedWarning(
    "wedsync-otel: a wedding resolver lookup could not start a thread; date unknown"
)


@dataclass(frozen=True, slots=True)
class Wedding:
    """The wedding in the current context: its id, its date, or both."""

    wedding_id: str | None
    wedding_date: dt.date | None


def wedding_id_text(value: object) -> str | None:
    """A usable wedding id as text, else ``None``; never raises, whatever ``value`` is.

    Usable: a printable string of 1 to `MAX_WEDDING_ID_CHARS` characters, or
    an int whose decimal text is no longer. An int's size is read from its
    bit length first, so a huge one is never converted (``str(10**5000)``
    raises). Control characters and lone surrogates are refused: they are
    not an id, and a surrogate cannot be encoded for export.
    """
    try:
        if isinstance(value, str):
            text = str.__str__(value)  # a plain str: a subclass's own methods are never called
            if 0 < len(text) <= MAX_WEDDING_ID_CHARS and text.isprintable():
                return text
            return None
        if isinstance(value, int) and not isinstance(value, bool):
            if int.bit_length(value) > _MAX_ID_BITS:
                return None
            text = int.__repr__(value)  # the digits, whatever a subclass's __str__ does
            return text if len(text) <= MAX_WEDDING_ID_CHARS else None
    except Exception:  # noqa: BLE001 - e.g. an object whose __class__ raises: not an id
        return None
    return None


def _date_or_none(value: object) -> dt.date | None:
    """`parse_wedding_date`, with anything it cannot read (even a raising object) as ``None``."""
    try:
        return parse_wedding_date(value)
    except Exception:  # noqa: BLE001 - garbage in, no date out
        return None


def current_wedding(context: otel_context.Context | None = None) -> Wedding | None:
    """The wedding set by the innermost `wedding_context`, if any."""
    value = otel_context.get_value(_WEDDING_KEY, context)
    return value if isinstance(value, Wedding) else None


_current_context = current_context_reader()


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
    already, without blocking its event loop). An unusable id or date is
    ignored (a bad date with a rate-limited warning): this never raises into
    the application, and the body's own exceptions pass through untouched.
    """
    wedding = _wedding_of(wedding_id, wedding_date, resolve=resolve)
    token: contextvars.Token[otel_context.Context] | None = None
    try:
        _mark_current_span(wedding)
        token = otel_context.attach(otel_context.set_value(_WEDDING_KEY, wedding))
    except Exception as exc:  # noqa: BLE001 - telemetry never fails a request
        log_internal_error("wedding_context", exc)
    try:
        yield wedding
    finally:
        if token is not None:
            otel_context.detach(token)


def _wedding_of(wedding_id: object, wedding_date: object, *, resolve: bool) -> Wedding:
    """The `Wedding` for `wedding_context`'s arguments: unusable parts become ``None``."""
    wedding_key = wedding_id_text(wedding_id) if wedding_id is not None else None
    date = _date_or_none(wedding_date) if wedding_date is not None else None
    if wedding_date is not None and date is None:
        _bad_date(wedding_date)
    if date is None and wedding_key is not None and resolve:
        resolver = _resolver
        if resolver is not None:
            date = resolver.resolve(wedding_key, wait_s=resolver.timeout_s)
    return Wedding(wedding_key, date)


def _mark_current_span(wedding: Wedding) -> None:
    """Mark the current span with the wedding, beside it (`_wedding_marks`), not in its slots.

    The processor adds the mark to the copy it exports, where the
    application's own ``wedding.*`` attributes win; the first mark wins too.
    """
    if wedding.wedding_id is None and wedding.wedding_date is None:
        return
    span = trace.get_current_span()
    if not span.is_recording():
        return
    date = wedding.wedding_date.isoformat() if wedding.wedding_date is not None else None
    mark_span(span.get_span_context().span_id, wedding.wedding_id, date)


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


@dataclass(frozen=True, kw_only=True, slots=True)
class ResolverStats:
    """What a `ResolverCache` could not answer, by reason; counts since it was built.

    Each lookup that failed is counted once, under one reason; a request that
    merely found a failure in the cache is not counted again.
    """

    errors: int = 0
    """Lookups whose resolver raised, `BaseException`s included (cancellations)."""
    timeouts: int = 0
    """Waits (`wedding_context`, the ASGI middleware) that ended before the answer came."""
    refusals: int = 0
    """Lookups not started because ``max_pending`` were already running."""
    start_failures: int = 0
    """Lookups whose thread could not be started (e.g. "can't start new thread")."""
    evictions: int = 0
    """Cached answers evicted, oldest first, to stay within ``max_entries``."""

    def __add__(self, other: ResolverStats) -> ResolverStats:
        """Both counts added, reason by reason."""
        return ResolverStats(
            **{
                f.name: getattr(self, f.name) + getattr(other, f.name)
                for f in dataclasses.fields(self)
            }
        )


class ResolverCache:
    """Calls a `WeddingResolver` off the caller's thread and caches its answers.

    Bounded (oldest entry evicted first, counted), with a TTL; failures are
    cached for ``error_ttl_s`` only, so a broken resolver is not hammered and
    recovers soon. Lookups run on daemon threads, at most ``max_pending`` at
    once: a resolver that hangs holds its thread, never the request and never
    interpreter exit. Whatever the resolver does (raise, even a `BaseException`
    such as a cancellation) and whatever the OS does (refuse a thread), the
    lookup's future is completed, its pending slot freed, the failure counted,
    and the caller gets "no date". The public counters are those of `stats`.
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
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._resolver = resolver
        self._ttl_s = ttl_s
        self._error_ttl_s = error_ttl_s
        self.timeout_s = timeout_ms / 1000
        self._max_entries = max_entries
        self._max_pending = max_pending
        self._monotonic = monotonic
        self._entries: dict[str, tuple[float, dt.date | None]] = {}
        self._pending: dict[str, Future[dt.date | None]] = {}
        self._lock = threading.Lock()  # held only to count, store or swap: never around a call
        self.errors = 0
        """`ResolverStats.errors`."""
        self.timeouts = 0
        """`ResolverStats.timeouts`."""
        self.refusals = 0
        """`ResolverStats.refusals`."""
        self.start_failures = 0
        """`ResolverStats.start_failures`."""
        self.evictions = 0
        """`ResolverStats.evictions`."""

    def stats(self) -> ResolverStats:
        """The counters, read together."""
        with self._lock:
            counts = (
                self.errors,
                self.timeouts,
                self.refusals,
                self.start_failures,
                self.evictions,
            )
        errors, timeouts, refusals, start_failures, evictions = counts
        return ResolverStats(
            errors=errors,
            timeouts=timeouts,
            refusals=refusals,
            start_failures=start_failures,
            evictions=evictions,
        )

    def resolve(self, wedding_id: str, *, wait_s: float) -> dt.date | None:
        """The cached date, or start a lookup and wait for it at most ``wait_s`` seconds."""
        try:
            found = self._cached_or_lookup(wedding_id)
            if not isinstance(found, Future):
                return found
            if wait_s <= 0 or found.done():
                return found.result() if found.done() else None
            try:
                return found.result(timeout=wait_s)
            except TimeoutError:
                self._count_timeout()
                return None
        except Exception as exc:  # noqa: BLE001 - never raise into the application
            log_internal_error("ResolverCache.resolve", exc)
            return None

    async def resolve_async(self, wedding_id: str) -> dt.date | None:
        """`resolve` for asyncio code: waits (at most the timeout) without blocking the loop.

        Cancelling the awaiting task cancels only its wait: the lookup goes on
        and fills the cache.
        """
        try:
            found = self._cached_or_lookup(wedding_id)
            if not isinstance(found, Future):
                return found
            if found.done():
                return found.result()
            try:
                return await asyncio.wait_for(
                    asyncio.shield(asyncio.wrap_future(found)), self.timeout_s
                )
            except TimeoutError:
                self._count_timeout()
                return None
        except Exception as exc:  # noqa: BLE001 - never raise into the application
            log_internal_error("ResolverCache.resolve_async", exc)
            return None

    def _count_timeout(self) -> None:
        with self._lock:
            self.timeouts += 1

    def _cached_or_lookup(self, wedding_id: str) -> dt.date | Future[dt.date | None] | None:
        """A fresh cached answer, else the future of a lookup (started if none is running)."""
        entry = self._entries.get(wedding_id)
        if entry is not None and entry[0] > self._monotonic():
            return entry[1]
        with self._lock:
            future = self._pending.get(wedding_id)
            if future is not None:
                return future
            if len(self._pending) >= self._max_pending:
                self.refusals += 1
                return None
            future = self._pending[wedding_id] = Future()
        try:
            threading.Thread(
                target=self._lookup,
                args=(wedding_id, future),
                name="wedsync-resolver",
                daemon=True,
            ).start()
        except Exception as exc:  # noqa: BLE001 - "can't start new thread": no date, no error
            with self._lock:
                self.start_failures += 1
            _lookup_not_started(exc)
            self._finish(wedding_id, future, None, failed=True)
            return None
        return future

    def _lookup(self, wedding_id: str, future: Future[dt.date | None]) -> None:
        """Run the resolver on this (our own) thread; whatever happens, finish the lookup."""
        failed = True
        date: dt.date | None = None
        try:
            answer = self._resolver(wedding_id)
            date = _date_or_none(answer)
            if answer is not None and date is None:
                _bad_date(answer)
            failed = False
        except BaseException as exc:  # noqa: BLE001 - see below
            # A resolver's cancellation (CancelledError, GreenletExit, trio's Cancelled)
            # has nothing to cancel on this thread of ours: it is one more failed lookup.
            with self._lock:
                self.errors += 1
            _resolver_failed(exc)
        finally:
            self._finish(wedding_id, future, date, failed=failed)

    def _finish(
        self, wedding_id: str, future: Future[dt.date | None], date: dt.date | None, *, failed: bool
    ) -> None:
        """Cache the answer (a failure for ``error_ttl_s``), free the slot, complete the future."""
        try:
            expires_at = self._monotonic() + (self._error_ttl_s if failed else self._ttl_s)
            with self._lock:
                if (
                    wedding_id not in self._entries
                    and len(self._entries) >= self._max_entries
                    and evict_oldest(self._entries)
                ):
                    self.evictions += 1
                self._entries[wedding_id] = (expires_at, date)
        except Exception as exc:  # noqa: BLE001 - e.g. a broken injected monotonic clock: answer not cached
            log_internal_error("ResolverCache._finish", exc)
        finally:
            with self._lock:
                if self._pending.get(wedding_id) is future:
                    del self._pending[wedding_id]
            future.set_result(date)


_resolver: ResolverCache | None = None
_retired = ResolverStats()
"""The counts of resolvers registered before the current one, so `resolver_stats` only grows."""
_ever_registered = False
_registry_lock = threading.Lock()


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
    global _resolver, _retired, _ever_registered  # noqa: PLW0603 - one per process, like the tracer provider
    cache = (
        None
        if resolver is None
        else ResolverCache(resolver, ttl_s=ttl_s, timeout_ms=timeout_ms, max_entries=max_entries)
    )
    with _registry_lock:
        previous, _resolver = _resolver, cache
        _ever_registered = _ever_registered or cache is not None
        if previous is not None:
            _retired = _retired + previous.stats()


def resolver_stats() -> ResolverStats | None:
    """The counters of every resolver registered in this process, added up.

    ``None`` until a resolver is first registered. From then on they never go
    down, so they export as monotonic counters: unregistering or replacing a
    resolver keeps what it counted (up to that moment).
    """
    with _registry_lock:
        current, retired, ever = _resolver, _retired, _ever_registered
    if current is None:
        return retired if ever else None
    return retired + current.stats()


async def resolve_wedding_date_async(wedding_id: str) -> dt.date | None:
    """The registered resolver's answer for asyncio code, waiting at most its timeout."""
    resolver = _resolver
    return None if resolver is None else await resolver.resolve_async(wedding_id)


def resolve_wedding_date(wedding_id: str) -> dt.date | None:
    """The registered resolver's cached answer, without waiting; ``None`` when unknown yet."""
    resolver = _resolver
    return None if resolver is None else resolver.resolve(wedding_id, wait_s=0)
