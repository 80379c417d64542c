"""WeddingCache and AsyncWeddingCache: WedSync data in Redis, with a bounded in-memory fallback.

Both classes share one synchronous core, `_CacheCore`: it builds keys, applies
the TTL rules, serialises to JSON, keeps the fallback store and decides where
each operation goes. An operation is a generator that yields the Redis calls
it needs and is sent back each reply (or the error), so the sync and asyncio
classes differ only in how they send a call and in ``await``.

Keys and TTLs (the namespace comes first, so ``cache.key.namespace`` names
the data type and never a wedding, supplier or guest):

====================  ===========================================  ===========================
data                  key                                          TTL
====================  ===========================================  ===========================
supplier profile      ``supplier:{supplier_id}``                   24 h
venue availability    ``venue:{venue_id}:availability:{date}``     15 min
wedding timeline      ``timeline:{wedding_id}``                    30 min; 3 min from the day
                                                                   before to the day after
anything else         ``{namespace}[:{wedding_id}][:{part}]...``   `ttl_for` the wedding date
warmed entry          ``{namespace}:{wedding_id}``                 as above, by namespace
wedding key index     ``wedding:{wedding_id}:keys`` (a set)        24 h from the last write
====================  ===========================================  ===========================

`ttl_for` shrinks the TTL as the wedding approaches (bands from
`wedsync_otel.calendar.band_for_days`):

===========  ======================  =====
band         days until the wedding  TTL
===========  ======================  =====
planning     more than 30            24 h
final_month  8 to 30                 1 h
final_week   1 to 7                  15 min
wedding_day  0                       5 min
past         below 0                 24 h
unknown      no date given           15 min
===========  ======================  =====

Fallback: while Redis is unreachable (``redis.ConnectionError``, its
``TimeoutError``, ``OSError``) reads and writes go to an in-process LRU
(10,000 entries by default, with TTLs, evictions counted), and each such
operation emits an INTERNAL span ``cache GET``/``cache SET``/``cache DEL``
with ``cache.backend = memory``. Redis is tried again at most once per
``retry_interval_s``. When it answers, the keys written and the weddings
invalidated during the outage are first deleted from Redis (so no value from
before the outage is served over a newer write), then the memory entries are
dropped and Redis serves again.

Redis trouble never raises into the application: a failed read is a miss and
a failed write returns False, both counted. Only the caller's own mistakes
raise: ``TypeError`` for a value JSON cannot hold (NaN and cycles included),
``ValueError`` for a bad namespace or ``ttl_s``.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import logging
import math
import threading
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Generator, Iterator, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Final, Generic, Literal, Protocol, TypeAlias, TypeVar

import redis
import redis.asyncio
from opentelemetry import trace
from opentelemetry.trace import SpanKind, TracerProvider

from wedsync_otel import attributes as attr
from wedsync_otel._safety import RateLimitedWarning, log_internal_error
from wedsync_otel.cache_keys import key_namespace
from wedsync_otel.calendar import Band, band_for_days, days_until

__all__ = [
    "DEFAULT_MEMORY_MAX_ENTRIES",
    "DEFAULT_RETRY_INTERVAL_S",
    "SUPPLIER_TTL_S",
    "TIMELINE_NEAR_TTL_S",
    "TIMELINE_TTL_S",
    "TTL_BY_BAND",
    "VENUE_AVAILABILITY_TTL_S",
    "WEDDING_INDEX_TTL_S",
    "AsyncWeddingCache",
    "Backend",
    "CacheStats",
    "WeddingCache",
    "index_key",
    "timeline_ttl_for",
    "ttl_for",
]

_log = logging.getLogger("wedsync_otel")

Backend: TypeAlias = Literal["redis", "memory"]
KeyPart: TypeAlias = str | int | dt.date
JSONObject: TypeAlias = dict[str, object]
T = TypeVar("T")
ClientT = TypeVar("ClientT", redis.Redis, redis.asyncio.Redis)

_MINUTE_S: Final = 60
_HOUR_S: Final = 3600
_DAY_S: Final = 86_400

SUPPLIER: Final = "supplier"
VENUE: Final = "venue"
TIMELINE: Final = "timeline"
_INDEX_NAMESPACE: Final = "wedding"

SUPPLIER_TTL_S: Final = _DAY_S
VENUE_AVAILABILITY_TTL_S: Final = 15 * _MINUTE_S
TIMELINE_TTL_S: Final = 30 * _MINUTE_S
TIMELINE_NEAR_TTL_S: Final = 3 * _MINUTE_S
WEDDING_INDEX_TTL_S: Final = _DAY_S
"""Life of ``wedding:{id}:keys`` after each write, and so the longest a wedding's entry lives."""

TTL_BY_BAND: Final[Mapping[Band, int]] = MappingProxyType(
    {
        Band.PLANNING: _DAY_S,
        Band.FINAL_MONTH: _HOUR_S,
        Band.FINAL_WEEK: 15 * _MINUTE_S,
        Band.WEDDING_DAY: 5 * _MINUTE_S,
        Band.PAST: _DAY_S,
        Band.UNKNOWN: 15 * _MINUTE_S,
    }
)
"""`ttl_for`'s table, in seconds."""

DEFAULT_MEMORY_MAX_ENTRIES: Final = 10_000
DEFAULT_RETRY_INTERVAL_S: Final = 5.0
_MAX_PENDING_WEDDINGS: Final = 1_000

_UNREACHABLE: Final = (redis.ConnectionError, redis.TimeoutError, OSError)

_fallback_warning = RateLimitedWarning("WeddingCache: Redis unreachable, serving from memory")
_redis_error_warning = RateLimitedWarning("WeddingCache: Redis error, operation skipped")
_decode_warning = RateLimitedWarning("WeddingCache: cached value is not JSON, treated as a miss")
_loader_warning = RateLimitedWarning("WeddingCache.warm: a loader failed and was skipped")


# --- pure rules -----------------------------------------------------------------------------


def ttl_for(wedding_date: dt.date | None, today: dt.date) -> int:
    """Seconds an entry about a wedding may live: shorter as the day approaches (see the table)."""
    days = None if wedding_date is None else days_until(wedding_date, today)
    return TTL_BY_BAND[band_for_days(days)]


def timeline_ttl_for(wedding_date: dt.date | None, today: dt.date) -> int:
    """30 min, or 3 min from the day before the wedding to the day after, when plans move fast."""
    if wedding_date is not None and abs(days_until(wedding_date, today)) <= 1:
        return TIMELINE_NEAR_TTL_S
    return TIMELINE_TTL_S


def _rule_ttl_s(namespace: str, wedding_date: dt.date | None, today: dt.date) -> int:
    if namespace == SUPPLIER:
        return SUPPLIER_TTL_S
    if namespace == VENUE:
        return VENUE_AVAILABILITY_TTL_S
    if namespace == TIMELINE:
        return timeline_ttl_for(wedding_date, today)
    return ttl_for(wedding_date, today)


@dataclass(frozen=True, slots=True)
class _Key:
    text: str
    namespace: str
    wedding_id: str | None
    """Set for wedding-scoped keys, which `invalidate_wedding` removes."""


def _key(namespace: str, parts: tuple[KeyPart, ...], wedding_id: str | None) -> _Key:
    """``namespace[:wedding_id][:part]...``; a bad namespace is the caller's bug (ValueError)."""
    if namespace == _INDEX_NAMESPACE or key_namespace(f"{namespace}:") != namespace:
        raise ValueError(
            f"cache namespace must be 1-64 of [A-Za-z0-9_.-] and not "
            f"{_INDEX_NAMESPACE!r}: {namespace!r}"
        )
    segments = [namespace] if wedding_id is None else [namespace, str(wedding_id)]
    segments.extend(part.isoformat() if isinstance(part, dt.date) else str(part) for part in parts)
    return _Key(":".join(segments), namespace, None if wedding_id is None else str(wedding_id))


def index_key(wedding_id: str) -> str:
    """The Redis set listing every key written for a wedding."""
    return f"{_INDEX_NAMESPACE}:{wedding_id}:keys"


def _json_default(value: object) -> object:
    if isinstance(value, Mapping):
        return dict(value)
    raise TypeError(f"Object of type {type(value).__name__} is not JSON serializable")


def _encode(value: object) -> str:
    """Compact JSON; TypeError for anything JSON cannot hold (NaN and cycles included)."""
    try:
        return json.dumps(value, separators=(",", ":"), allow_nan=False, default=_json_default)
    except ValueError as exc:
        raise TypeError(f"value cannot be cached as JSON: {exc}") from exc


def _as_object(value: object) -> JSONObject | None:
    return value if isinstance(value, dict) else None


# --- calls: what an operation asks of Redis -------------------------------------------------

_Arg: TypeAlias = str | bytes | int
_Command: TypeAlias = tuple[_Arg, ...]


@dataclass(frozen=True, slots=True)
class _Call:
    """Commands to send: one alone, or several in a pipeline (a MULTI/EXEC one if transaction)."""

    commands: tuple[_Command, ...]
    transaction: bool = False

    @property
    def single(self) -> bool:
        return len(self.commands) == 1 and not self.transaction


@dataclass(frozen=True, slots=True)
class _Failed:
    """What an operation is sent instead of a reply when the call raised."""

    error: Exception


_Op: TypeAlias = Generator[_Call, object, T]
"""An operation: yields calls, is sent each reply or `_Failed`, returns its result."""


class _Runs(Protocol):
    """A sync client or pipeline, as far as `WeddingCache` uses it (redis-py leaves it untyped)."""

    def execute_command(self, *args: _Arg) -> object: ...


class _AwaitsRuns(Protocol):
    """An asyncio client, as far as `AsyncWeddingCache` uses it (redis-py leaves it untyped)."""

    def execute_command(self, *args: _Arg) -> Awaitable[object]: ...


def _write_call(key: _Key, data: str, ttl_s: int) -> _Call:
    """SET with EX; for a wedding's key also SADD to its index and renew the index's expiry.

    Every wedding-scoped TTL is at most WEDDING_INDEX_TTL_S and the index's
    expiry is reset to it in the same transaction, so the index outlives every
    member (Redis 6.2 has no ``EXPIRE ... GT``).
    """
    set_command: _Command = ("SET", key.text, data, "EX", ttl_s)
    if key.wedding_id is None:
        return _Call((set_command,))
    index = index_key(key.wedding_id)
    return _Call(
        (set_command, ("SADD", index, key.text), ("EXPIRE", index, WEDDING_INDEX_TTL_S)),
        transaction=True,
    )


def _members(reply: object) -> list[_Arg]:
    if not isinstance(reply, set | frozenset | list | tuple):
        return []
    return [member for member in reply if isinstance(member, str | bytes)]


# --- the fallback store ---------------------------------------------------------------------


@dataclass(slots=True)
class _Entry:
    data: str
    expires_at: float
    wedding_id: str | None


class _MemoryStore:
    """An LRU of serialised entries with expiry times; the core's lock guards it."""

    def __init__(self, max_entries: int) -> None:
        self._entries: OrderedDict[str, _Entry] = OrderedDict()
        self._max_entries = max_entries
        self.evictions = 0

    def get(self, key: str, now: float) -> str | None:
        entry = self._entries.get(key)
        if entry is None:
            return None
        if entry.expires_at <= now:
            del self._entries[key]
            return None
        self._entries.move_to_end(key)
        return entry.data

    def put(self, key: str, entry: _Entry) -> None:
        self._entries[key] = entry
        self._entries.move_to_end(key)
        while len(self._entries) > self._max_entries:
            self._entries.popitem(last=False)
            self.evictions += 1

    def drop_wedding(self, wedding_id: str, now: float) -> int:
        """Remove a wedding's entries; how many were still live."""
        doomed = [key for key, entry in self._entries.items() if entry.wedding_id == wedding_id]
        live = 0
        for key in doomed:
            live += self._entries.pop(key).expires_at > now
        return live

    def clear(self) -> None:
        self._entries.clear()


@dataclass(frozen=True, slots=True, kw_only=True)
class CacheStats:
    """Counts since the cache was created."""

    hits: int = 0
    misses: int = 0
    fallback_reads: int = 0
    fallback_writes: int = 0
    evictions: int = 0
    """Fallback entries pushed out by the LRU bound."""
    errors: int = 0
    """Failed Redis calls of any kind, and cached values that would not decode."""
    loader_errors: int = 0
    """`warm` loaders that raised or returned what JSON cannot hold; skipped."""
    reconnections: int = 0
    unreconciled: int = 0
    """Fallback writes and invalidations beyond the bound kept for the reconnection clean-up:
    Redis may serve a value older than these until it expires."""


@dataclass(slots=True)
class _Counts:
    hits: int = 0
    misses: int = 0
    fallback_reads: int = 0
    fallback_writes: int = 0
    errors: int = 0
    loader_errors: int = 0
    reconnections: int = 0
    unreconciled: int = 0


# --- the shared core ------------------------------------------------------------------------


class _CacheCore:
    """Everything but I/O: keys, TTLs, JSON, the fallback and where each operation goes."""

    def __init__(
        self,
        *,
        clock: Callable[[], dt.date],
        monotonic: Callable[[], float],
        tracer_provider: TracerProvider | None,
        retry_interval_s: float,
        memory_max_entries: int,
    ) -> None:
        if not (math.isfinite(retry_interval_s) and retry_interval_s >= 0):
            raise ValueError(f"retry_interval_s must be >= 0, not {retry_interval_s!r}")
        if memory_max_entries < 1:
            raise ValueError(f"memory_max_entries must be >= 1, not {memory_max_entries!r}")
        self._clock = clock
        self._monotonic = monotonic
        self._retry_interval_s = retry_interval_s
        self._tracer = trace.get_tracer(__name__, tracer_provider=tracer_provider)
        self._lock = threading.Lock()
        self._backend: Backend = "redis"
        self._retry_at = 0.0
        self._memory = _MemoryStore(memory_max_entries)
        # Written or invalidated on the fallback: deleted from Redis before it serves again.
        self._pending_keys: set[str] = set()
        self._pending_weddings: set[str] = set()
        self._max_pending_keys = memory_max_entries
        self._counts = _Counts()

    @property
    def backend(self) -> Backend:
        return self._backend

    @property
    def stats(self) -> CacheStats:
        with self._lock:
            counts = dataclasses.asdict(self._counts)
            evictions = self._memory.evictions
        return CacheStats(**counts, evictions=evictions)

    def today(self) -> dt.date:
        now = self._clock()
        return now.date() if isinstance(now, dt.datetime) else now

    def _ttl_s(self, key: _Key, wedding_date: dt.date | None, ttl_s: int | None) -> int:
        if ttl_s is None:
            ttl_s = _rule_ttl_s(key.namespace, wedding_date, self.today())
        elif isinstance(ttl_s, bool) or not isinstance(ttl_s, int) or ttl_s < 1:
            raise ValueError(f"ttl_s must be a whole number of seconds >= 1, not {ttl_s!r}")
        return ttl_s if key.wedding_id is None else min(ttl_s, WEDDING_INDEX_TTL_S)

    # --- operations -------------------------------------------------------------------------

    def read(self, key: _Key) -> _Op[object | None]:
        """The cached value, or None on a miss (a stored JSON null reads as None too)."""
        if (yield from self._redis_available()):
            reply = yield _Call((("GET", key.text),))
            if not isinstance(reply, _Failed):
                return self._decoded(reply)
            if not self._record_failure(reply.error):
                return None
        return self._memory_read(key)

    def write(
        self, key: _Key, value: object, *, wedding_date: dt.date | None, ttl_s: int | None
    ) -> _Op[bool]:
        """Store a value; True once stored in Redis or, during an outage, in memory."""
        data = _encode(value)
        return (yield from self._store(key, data, self._ttl_s(key, wedding_date, ttl_s)))

    def invalidate(self, wedding_id: str) -> _Op[int]:
        """Remove a wedding's keys and its index; how many keys were removed."""
        wedding_id = str(wedding_id)
        if (yield from self._redis_available()):
            removed = yield from self._invalidate_redis(wedding_id)
            if removed is not None:
                return removed
        return self._memory_invalidate(wedding_id)

    def warm(
        self,
        wedding_id: str,
        loaders: Mapping[str, Callable[[], object]],
        wedding_date: dt.date | None,
    ) -> Iterator[_Op[bool]]:
        """One store operation per loader that succeeds, at ``{namespace}:{wedding_id}``."""
        for namespace, load in loaders.items():
            try:
                key = _key(namespace, (), wedding_id)
                data = _encode(load())
                ttl_s = self._ttl_s(key, wedding_date, None)
            except Exception as exc:  # noqa: BLE001 - a failing loader is skipped and counted
                with self._lock:
                    self._counts.loader_errors += 1
                _loader_warning(f"{namespace!r}: {type(exc).__name__}")
                continue
            yield self._store(key, data, ttl_s)

    def _store(self, key: _Key, data: str, ttl_s: int) -> _Op[bool]:
        if (yield from self._redis_available()):
            reply = yield _write_call(key, data, ttl_s)
            if not isinstance(reply, _Failed):
                return True
            if not self._record_failure(reply.error):
                return False
        self._memory_write(key, data, ttl_s)
        return True

    def _invalidate_redis(self, wedding_id: str) -> Generator[_Call, object, int | None]:
        """Keys removed; None when Redis is unreachable (0 after any other error)."""
        index = index_key(wedding_id)
        reply = yield _Call((("SMEMBERS", index),))
        if isinstance(reply, _Failed):
            return None if self._record_failure(reply.error) else 0
        keys = _members(reply)
        if not keys:
            return 0
        # SREM only what is deleted: a key added meanwhile stays indexed. An empty set is gone.
        reply = yield _Call((("DEL", *keys), ("SREM", index, *keys)), transaction=True)
        if isinstance(reply, _Failed):
            return None if self._record_failure(reply.error) else 0
        removed = reply[0] if isinstance(reply, list) and reply else 0
        return removed if isinstance(removed, int) else 0

    # --- choosing the backend ---------------------------------------------------------------

    def _redis_available(self) -> Generator[_Call, object, bool]:
        """Whether this operation may use Redis; after an outage, clean Redis up first."""
        now = self._monotonic()
        with self._lock:
            if self._backend == "redis":
                return True
            if now < self._retry_at:
                return False
            self._retry_at = now + self._retry_interval_s  # this caller retries, others wait
            keys, weddings = frozenset(self._pending_keys), tuple(self._pending_weddings)
        doomed: list[_Arg] = list(keys)
        if weddings:
            reply = yield _Call(tuple(("SMEMBERS", index_key(w)) for w in weddings), True)
            if isinstance(reply, _Failed):
                self._record_failure(reply.error)
                return False
            for members in reply if isinstance(reply, list) else ():
                doomed.extend(_members(members))
            doomed.extend(index_key(w) for w in weddings)
        reply = yield _Call((("DEL", *doomed),) if doomed else (("PING",),))
        if isinstance(reply, _Failed):
            self._record_failure(reply.error)
            return False
        return self._back_on_redis(keys, weddings)

    def _back_on_redis(self, keys: frozenset[str], weddings: tuple[str, ...]) -> bool:
        """Serve from Redis again and drop the memory entries, unless more came in meanwhile."""
        with self._lock:
            self._pending_keys -= keys
            self._pending_weddings.difference_update(weddings)
            if self._pending_keys or self._pending_weddings:
                self._retry_at = 0.0  # written on the fallback during the clean-up: go again
                return False
            self._backend = "redis"
            self._memory.clear()
            self._counts.reconnections += 1
        _log.info("WeddingCache: Redis is back; in-memory fallback entries dropped")
        return True

    def _record_failure(self, error: Exception) -> bool:
        """Count a failed call; True when Redis is unreachable and the fallback takes over."""
        unreachable = isinstance(error, _UNREACHABLE)
        now = self._monotonic()
        with self._lock:
            self._counts.errors += 1
            switched = unreachable and self._backend == "redis"
            if unreachable:
                self._backend = "memory"
                self._retry_at = now + self._retry_interval_s
        if switched:
            _fallback_warning(type(error).__name__)
        elif isinstance(error, redis.RedisError):
            _redis_error_warning(type(error).__name__)
        elif not unreachable:
            log_internal_error("WeddingCache", error)  # not Redis trouble: a bug
        return unreachable

    # --- replies and the fallback -----------------------------------------------------------

    def _decoded(self, data: object) -> object | None:
        if data is None:
            with self._lock:
                self._counts.misses += 1
            return None
        try:
            value: object = json.loads(data)  # type: ignore[arg-type]  # TypeError is caught
        except (TypeError, ValueError) as exc:
            with self._lock:
                self._counts.errors += 1
            _decode_warning(type(exc).__name__)
            return None
        with self._lock:
            self._counts.hits += 1
        return value

    def _memory_span_attributes(self, namespace: str) -> dict[str, str]:
        return {attr.CACHE_BACKEND: "memory", attr.CACHE_NAMESPACE: namespace}

    def _memory_read(self, key: _Key) -> object | None:
        with self._tracer.start_as_current_span(
            "cache GET",
            kind=SpanKind.INTERNAL,
            attributes=self._memory_span_attributes(key.namespace),
        ) as span:
            now = self._monotonic()
            with self._lock:
                data = self._memory.get(key.text, now)
                self._counts.fallback_reads += 1
            span.set_attribute(attr.CACHE_HIT, data is not None)
            return self._decoded(data)

    def _memory_write(self, key: _Key, data: str, ttl_s: int) -> None:
        with self._tracer.start_as_current_span(
            "cache SET",
            kind=SpanKind.INTERNAL,
            attributes=self._memory_span_attributes(key.namespace),
        ) as span:
            span.set_attribute(attr.CACHE_TTL_S, float(ttl_s))
            now = self._monotonic()
            with self._lock:
                self._memory.put(key.text, _Entry(data, now + ttl_s, key.wedding_id))
                self._counts.fallback_writes += 1
                self._remember(self._pending_keys, key.text, self._max_pending_keys)

    def _memory_invalidate(self, wedding_id: str) -> int:
        with self._tracer.start_as_current_span(
            "cache DEL",
            kind=SpanKind.INTERNAL,
            attributes=self._memory_span_attributes(_INDEX_NAMESPACE),
        ):
            now = self._monotonic()
            with self._lock:
                removed = self._memory.drop_wedding(wedding_id, now)
                self._remember(self._pending_weddings, wedding_id, _MAX_PENDING_WEDDINGS)
            return removed

    def _remember(self, pending: set[str], item: str, bound: int) -> None:
        """Add to a pending set under the lock; count what the bound turns away."""
        if item in pending or len(pending) < bound:
            pending.add(item)
        else:
            self._counts.unreconciled += 1


# --- the clients ----------------------------------------------------------------------------


class _CacheBase(Generic[ClientT]):
    """Construction and state shared by the sync and asyncio caches."""

    def __init__(
        self,
        client: ClientT,
        *,
        clock: Callable[[], dt.date] = dt.date.today,
        monotonic: Callable[[], float] = time.monotonic,
        tracer_provider: TracerProvider | None = None,
        retry_interval_s: float = DEFAULT_RETRY_INTERVAL_S,
        memory_max_entries: int = DEFAULT_MEMORY_MAX_ENTRIES,
    ) -> None:
        """Wrap a Redis client; ``clock`` gives today (a datetime counts by its own date).

        Give the client a short ``socket_timeout`` and few retries: redis-py's
        default of 10 retries with backoff keeps each call to a dead server
        busy for seconds before the fallback can take over.
        """
        self._client: ClientT = client
        self._core = _CacheCore(
            clock=clock,
            monotonic=monotonic,
            tracer_provider=tracer_provider,
            retry_interval_s=retry_interval_s,
            memory_max_entries=memory_max_entries,
        )

    @property
    def backend(self) -> Backend:
        """``redis``, or ``memory`` while Redis is unreachable."""
        return self._core.backend

    @property
    def stats(self) -> CacheStats:
        """A snapshot of the counts."""
        return self._core.stats


class WeddingCache(_CacheBase[redis.Redis]):
    """Typed caching of WedSync data over `redis.Redis`; see the module docstring for keys."""

    def get(
        self, namespace: str, *key_parts: KeyPart, wedding_id: str | None = None
    ) -> object | None:
        """The value at ``namespace[:wedding_id][:part]...``, or None on a miss."""
        return self._run(self._core.read(_key(namespace, key_parts, wedding_id)))

    def set(
        self,
        namespace: str,
        *key_parts: KeyPart,
        value: object,
        wedding_id: str | None = None,
        wedding_date: dt.date | None = None,
        ttl_s: int | None = None,
    ) -> bool:
        """Store a value; TTL from ``ttl_s`` or the namespace's rule. TypeError if not JSON."""
        key = _key(namespace, key_parts, wedding_id)
        return self._run(self._core.write(key, value, wedding_date=wedding_date, ttl_s=ttl_s))

    def get_supplier_profile(self, supplier_id: str | int) -> JSONObject | None:
        """A supplier's profile, or None."""
        return _as_object(self.get(SUPPLIER, supplier_id))

    def set_supplier_profile(self, supplier_id: str | int, profile: Mapping[str, object]) -> bool:
        """Cache a supplier's profile for 24 h."""
        return self.set(SUPPLIER, supplier_id, value=profile)

    def get_venue_availability(self, venue_id: str | int, date: dt.date) -> JSONObject | None:
        """A venue's availability on a date, or None."""
        return _as_object(self.get(VENUE, venue_id, "availability", date))

    def set_venue_availability(
        self, venue_id: str | int, date: dt.date, availability: Mapping[str, object]
    ) -> bool:
        """Cache a venue's availability on a date for 15 min."""
        return self.set(VENUE, venue_id, "availability", date, value=availability)

    def get_timeline(self, wedding_id: str) -> JSONObject | None:
        """A wedding's timeline, or None."""
        return _as_object(self.get(TIMELINE, wedding_id=wedding_id))

    def set_timeline(
        self, wedding_id: str, value: Mapping[str, object], *, wedding_date: dt.date
    ) -> bool:
        """Cache a wedding's timeline: 30 min, 3 min around the day."""
        return self.set(TIMELINE, value=value, wedding_id=wedding_id, wedding_date=wedding_date)

    def invalidate_wedding(self, wedding_id: str) -> int:
        """Remove every key written for a wedding (through its index, no SCAN); how many."""
        return self._run(self._core.invalidate(wedding_id))

    def warm(
        self,
        wedding_id: str,
        loaders: Mapping[str, Callable[[], object]],
        *,
        wedding_date: dt.date | None = None,
    ) -> int:
        """Store each loader's value at ``{namespace}:{wedding_id}``; how many were stored.

        A loader that raises, or returns what JSON cannot hold, is skipped and
        counted in ``stats.loader_errors``.
        """
        return sum(self._run(op) for op in self._core.warm(wedding_id, loaders, wedding_date))

    def _run(self, op: _Op[T]) -> T:
        try:
            call = next(op)
            while True:
                call = op.send(self._send(call))
        except StopIteration as stop:
            result: T = stop.value
            return result

    def _send(self, call: _Call) -> object:
        """The reply to a call, or `_Failed` with what it raised."""
        try:
            if call.single:
                client: _Runs = self._client
                return client.execute_command(*call.commands[0])
            with self._client.pipeline(transaction=call.transaction) as pipe:
                queue: _Runs = pipe
                for command in call.commands:
                    queue.execute_command(*command)
                return pipe.execute()
        except Exception as exc:  # noqa: BLE001 - the core decides: fallback, count or report
            return _Failed(exc)


class AsyncWeddingCache(_CacheBase[redis.asyncio.Redis]):
    """`WeddingCache` over `redis.asyncio.Redis`: the same core, keys and rules, awaited."""

    async def get(
        self, namespace: str, *key_parts: KeyPart, wedding_id: str | None = None
    ) -> object | None:
        """The value at ``namespace[:wedding_id][:part]...``, or None on a miss."""
        return await self._run(self._core.read(_key(namespace, key_parts, wedding_id)))

    async def set(
        self,
        namespace: str,
        *key_parts: KeyPart,
        value: object,
        wedding_id: str | None = None,
        wedding_date: dt.date | None = None,
        ttl_s: int | None = None,
    ) -> bool:
        """Store a value; TTL from ``ttl_s`` or the namespace's rule. TypeError if not JSON."""
        key = _key(namespace, key_parts, wedding_id)
        return await self._run(self._core.write(key, value, wedding_date=wedding_date, ttl_s=ttl_s))

    async def get_supplier_profile(self, supplier_id: str | int) -> JSONObject | None:
        """A supplier's profile, or None."""
        return _as_object(await self.get(SUPPLIER, supplier_id))

    async def set_supplier_profile(
        self, supplier_id: str | int, profile: Mapping[str, object]
    ) -> bool:
        """Cache a supplier's profile for 24 h."""
        return await self.set(SUPPLIER, supplier_id, value=profile)

    async def get_venue_availability(self, venue_id: str | int, date: dt.date) -> JSONObject | None:
        """A venue's availability on a date, or None."""
        return _as_object(await self.get(VENUE, venue_id, "availability", date))

    async def set_venue_availability(
        self, venue_id: str | int, date: dt.date, availability: Mapping[str, object]
    ) -> bool:
        """Cache a venue's availability on a date for 15 min."""
        return await self.set(VENUE, venue_id, "availability", date, value=availability)

    async def get_timeline(self, wedding_id: str) -> JSONObject | None:
        """A wedding's timeline, or None."""
        return _as_object(await self.get(TIMELINE, wedding_id=wedding_id))

    async def set_timeline(
        self, wedding_id: str, value: Mapping[str, object], *, wedding_date: dt.date
    ) -> bool:
        """Cache a wedding's timeline: 30 min, 3 min around the day."""
        return await self.set(
            TIMELINE, value=value, wedding_id=wedding_id, wedding_date=wedding_date
        )

    async def invalidate_wedding(self, wedding_id: str) -> int:
        """Remove every key written for a wedding (through its index, no SCAN); how many."""
        return await self._run(self._core.invalidate(wedding_id))

    async def warm(
        self,
        wedding_id: str,
        loaders: Mapping[str, Callable[[], object]],
        *,
        wedding_date: dt.date | None = None,
    ) -> int:
        """`WeddingCache.warm`; the loaders are plain callables here too, not coroutines."""
        stored = 0
        for op in self._core.warm(wedding_id, loaders, wedding_date):
            stored += await self._run(op)
        return stored

    async def _run(self, op: _Op[T]) -> T:
        try:
            call = next(op)
            while True:
                call = op.send(await self._send(call))
        except StopIteration as stop:
            result: T = stop.value
            return result

    async def _send(self, call: _Call) -> object:
        """The reply to a call, or `_Failed` with what it raised."""
        try:
            if call.single:
                client: _AwaitsRuns = self._client
                return await client.execute_command(*call.commands[0])
            async with self._client.pipeline(transaction=call.transaction) as pipe:
                for command in call.commands:
                    pipe.execute_command(*command)
                return await pipe.execute()
        except Exception as exc:  # noqa: BLE001 - the core decides: fallback, count or report
            return _Failed(exc)
