"""The sans-I/O core that WeddingCache and AsyncWeddingCache share.

It builds keys, applies the TTL rules, serialises to JSON, keeps the fallback
store and decides where each operation goes. An operation is a generator that
yields the Redis calls it needs (`wedsync_otel.cache._calls`) and is sent back
each reply or the error, so the sync and asyncio clients differ only in how
they send a call and in ``await``. The state lives here, under one lock.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import logging
import math
import threading
from collections.abc import Callable, Generator, Iterator, Mapping
from typing import Final, Literal, TypeAlias

import redis
from opentelemetry import trace
from opentelemetry.trace import SpanKind, TracerProvider

from wedsync_otel import attributes as attr
from wedsync_otel._safety import RateLimitedWarning, log_internal_error
from wedsync_otel.cache._calls import Arg, Call, Failed, Op, set_members, write_call
from wedsync_otel.cache._codec import encode
from wedsync_otel.cache._key_layout import INDEX_NAMESPACE, EntryKey, entry_key, index_key
from wedsync_otel.cache._memory_store import MemoryEntry, MemoryStore
from wedsync_otel.cache._stats import CacheStats, Counts
from wedsync_otel.cache._ttl import WEDDING_INDEX_TTL_S, rule_ttl_s

_log = logging.getLogger("wedsync_otel")

Backend: TypeAlias = Literal["redis", "memory"]

_TRACER_NAME: Final = "wedsync_otel.cache"
"""The package, not this module: the fallback spans' scope name is what it was before the split."""

_MAX_PENDING_WEDDINGS: Final = 1_000

_UNREACHABLE: Final = (redis.ConnectionError, redis.TimeoutError, OSError)

_fallback_warning = RateLimitedWarning("WeddingCache: Redis unreachable, serving from memory")
_redis_error_warning = RateLimitedWarning("WeddingCache: Redis error, operation skipped")
_decode_warning = RateLimitedWarning("WeddingCache: cached value is not JSON, treated as a miss")
_loader_warning = RateLimitedWarning("WeddingCache.warm: a loader failed and was skipped")


class CacheCore:
    """Everything but I/O: keys, TTLs, JSON, the fallback and where each operation goes."""

    def __init__(
        self,
        *,
        today: Callable[[], dt.date],
        monotonic: Callable[[], float],
        tracer_provider: TracerProvider | None,
        retry_interval_s: float,
        memory_max_entries: int,
    ) -> None:
        if not (math.isfinite(retry_interval_s) and retry_interval_s >= 0):
            raise ValueError(f"retry_interval_s must be >= 0, not {retry_interval_s!r}")
        if memory_max_entries < 1:
            raise ValueError(f"memory_max_entries must be >= 1, not {memory_max_entries!r}")
        self._today = today
        self._monotonic = monotonic
        self._retry_interval_s = retry_interval_s
        self._tracer = trace.get_tracer(_TRACER_NAME, tracer_provider=tracer_provider)
        self._lock = threading.Lock()
        self._backend: Backend = "redis"
        self._retry_at = 0.0
        self._memory = MemoryStore(memory_max_entries)
        # Written or invalidated on the fallback: deleted from Redis before it serves again.
        self._pending_keys: set[str] = set()
        self._pending_weddings: set[str] = set()
        self._max_pending_keys = memory_max_entries
        self._counts = Counts()

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
        now = self._today()
        return now.date() if isinstance(now, dt.datetime) else now

    def _ttl_s(self, key: EntryKey, wedding_date: dt.date | None, ttl_s: int | None) -> int:
        if ttl_s is None:
            ttl_s = rule_ttl_s(key.namespace, wedding_date, self.today())
        elif isinstance(ttl_s, bool) or not isinstance(ttl_s, int) or ttl_s < 1:
            raise ValueError(f"ttl_s must be a whole number of seconds >= 1, not {ttl_s!r}")
        return ttl_s if key.wedding_id is None else min(ttl_s, WEDDING_INDEX_TTL_S)

    def read(self, key: EntryKey) -> Op[object | None]:
        """The cached value, or None on a miss (a stored JSON null reads as None too)."""
        if (yield from self._redis_available()):
            reply = yield Call((("GET", key.text),))
            if not isinstance(reply, Failed):
                return self._decoded(reply)
            if not self._record_failure(reply.error):
                return None
        return self._memory_read(key)

    def write(
        self, key: EntryKey, value: object, *, wedding_date: dt.date | None, ttl_s: int | None
    ) -> Op[bool]:
        """Store a value; True once stored in Redis or, during an outage, in memory."""
        data = encode(value)
        return (yield from self._store(key, data, self._ttl_s(key, wedding_date, ttl_s)))

    def invalidate(self, wedding_id: str) -> Op[int]:
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
    ) -> Iterator[Op[bool]]:
        """One store operation per loader that succeeds, at ``{namespace}:{wedding_id}``."""
        for namespace, load in loaders.items():
            try:
                key = entry_key(namespace, (), wedding_id)
                data = encode(load())
                ttl_s = self._ttl_s(key, wedding_date, None)
            except Exception as exc:  # noqa: BLE001 - a failing loader is skipped and counted
                with self._lock:
                    self._counts.loader_errors += 1
                _loader_warning(f"{namespace!r}: {type(exc).__name__}")
                continue
            yield self._store(key, data, ttl_s)

    def _store(self, key: EntryKey, data: str, ttl_s: int) -> Op[bool]:
        if (yield from self._redis_available()):
            reply = yield write_call(key, data, ttl_s)
            if not isinstance(reply, Failed):
                return True
            if not self._record_failure(reply.error):
                return False
        self._memory_write(key, data, ttl_s)
        return True

    def _invalidate_redis(self, wedding_id: str) -> Generator[Call, object, int | None]:
        """Keys removed; None when Redis is unreachable (0 after any other error)."""
        index = index_key(wedding_id)
        reply = yield Call((("SMEMBERS", index),))
        if isinstance(reply, Failed):
            return None if self._record_failure(reply.error) else 0
        keys = set_members(reply)
        if not keys:
            return 0
        # SREM only what is deleted: a key added meanwhile stays indexed. An empty set is gone.
        reply = yield Call((("DEL", *keys), ("SREM", index, *keys)), transaction=True)
        if isinstance(reply, Failed):
            return None if self._record_failure(reply.error) else 0
        removed = reply[0] if isinstance(reply, list) and reply else 0
        return removed if isinstance(removed, int) else 0

    def _redis_available(self) -> Generator[Call, object, bool]:
        """Whether this operation may use Redis; after an outage, clean Redis up first."""
        now = self._monotonic()
        with self._lock:
            if self._backend == "redis":
                return True
            if now < self._retry_at:
                return False
            self._retry_at = now + self._retry_interval_s  # this caller retries, others wait
            keys, weddings = frozenset(self._pending_keys), tuple(self._pending_weddings)
        doomed: list[Arg] = list(keys)
        if weddings:
            reply = yield Call(tuple(("SMEMBERS", index_key(w)) for w in weddings), True)
            if isinstance(reply, Failed):
                self._record_failure(reply.error)
                return False
            for members in reply if isinstance(reply, list) else ():
                doomed.extend(set_members(members))
            doomed.extend(index_key(w) for w in weddings)
        reply = yield Call((("DEL", *doomed),) if doomed else (("PING",),))
        if isinstance(reply, Failed):
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

    def _memory_read(self, key: EntryKey) -> object | None:
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

    def _memory_write(self, key: EntryKey, data: str, ttl_s: int) -> None:
        with self._tracer.start_as_current_span(
            "cache SET",
            kind=SpanKind.INTERNAL,
            attributes=self._memory_span_attributes(key.namespace),
        ) as span:
            span.set_attribute(attr.CACHE_TTL_S, float(ttl_s))
            now = self._monotonic()
            with self._lock:
                self._memory.put(key.text, MemoryEntry(data, now + ttl_s, key.wedding_id))
                self._counts.fallback_writes += 1
                self._remember(self._pending_keys, key.text, self._max_pending_keys)

    def _memory_invalidate(self, wedding_id: str) -> int:
        with self._tracer.start_as_current_span(
            "cache DEL",
            kind=SpanKind.INTERNAL,
            attributes=self._memory_span_attributes(INDEX_NAMESPACE),
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
