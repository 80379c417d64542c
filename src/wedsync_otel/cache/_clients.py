"""The clients: `WeddingCache` over `redis.Redis` and `AsyncWeddingCache` over `redis.asyncio`.

Each is a thin I/O edge over `wedsync_otel.cache._core.CacheCore`: it builds
the key, hands the core's operation its replies, and nothing more.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Final, Generic, Protocol, TypeVar

import redis
import redis.asyncio
from opentelemetry.trace import TracerProvider

from wedsync_otel.cache._calls import Arg, Call, Failed, Op
from wedsync_otel.cache._codec import JSONObject, as_object
from wedsync_otel.cache._core import Backend, CacheCore
from wedsync_otel.cache._key_layout import SUPPLIER, TIMELINE, VENUE, KeyPart, entry_key
from wedsync_otel.cache._stats import CacheStats

T = TypeVar("T")
ClientT = TypeVar("ClientT", redis.Redis, redis.asyncio.Redis)

DEFAULT_MEMORY_MAX_ENTRIES: Final = 10_000
DEFAULT_RETRY_INTERVAL_S: Final = 5.0


class _Runs(Protocol):
    """A sync client or pipeline, as far as `WeddingCache` uses it (redis-py leaves it untyped)."""

    def execute_command(self, *args: Arg) -> object: ...


class _AwaitsRuns(Protocol):
    """An asyncio client, as far as `AsyncWeddingCache` uses it (redis-py leaves it untyped)."""

    def execute_command(self, *args: Arg) -> Awaitable[object]: ...


class _CacheBase(Generic[ClientT]):
    """Construction and state shared by the sync and asyncio caches."""

    def __init__(
        self,
        client: ClientT,
        *,
        today: Callable[[], dt.date] = dt.date.today,
        monotonic: Callable[[], float] = time.monotonic,
        tracer_provider: TracerProvider | None = None,
        retry_interval_s: float = DEFAULT_RETRY_INTERVAL_S,
        memory_max_entries: int = DEFAULT_MEMORY_MAX_ENTRIES,
    ) -> None:
        """Wrap a Redis client; ``today`` gives the date (a datetime counts by its own date).

        Give the client a short ``socket_timeout`` and few retries: redis-py's
        default of 10 retries with backoff keeps each call to a dead server
        busy for seconds before the fallback can take over.
        """
        self._client: ClientT = client
        self._core = CacheCore(
            today=today,
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
    """Typed caching of WedSync data over `redis.Redis`; see `wedsync_otel.cache` for keys."""

    def get(
        self, namespace: str, *key_parts: KeyPart, wedding_id: str | None = None
    ) -> object | None:
        """The value at ``namespace[:wedding_id][:part]...``, or None on a miss."""
        return self._run(self._core.read(entry_key(namespace, key_parts, wedding_id)))

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
        key = entry_key(namespace, key_parts, wedding_id)
        return self._run(self._core.write(key, value, wedding_date=wedding_date, ttl_s=ttl_s))

    def get_supplier_profile(self, supplier_id: str | int) -> JSONObject | None:
        """A supplier's profile, or None."""
        return as_object(self.get(SUPPLIER, supplier_id))

    def set_supplier_profile(self, supplier_id: str | int, profile: Mapping[str, object]) -> bool:
        """Cache a supplier's profile for 24 h."""
        return self.set(SUPPLIER, supplier_id, value=profile)

    def get_venue_availability(self, venue_id: str | int, date: dt.date) -> JSONObject | None:
        """A venue's availability on a date, or None."""
        return as_object(self.get(VENUE, venue_id, "availability", date))

    def set_venue_availability(
        self, venue_id: str | int, date: dt.date, availability: Mapping[str, object]
    ) -> bool:
        """Cache a venue's availability on a date for 15 min."""
        return self.set(VENUE, venue_id, "availability", date, value=availability)

    def get_timeline(self, wedding_id: str) -> JSONObject | None:
        """A wedding's timeline, or None."""
        return as_object(self.get(TIMELINE, wedding_id=wedding_id))

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

    def _run(self, op: Op[T]) -> T:
        try:
            call = next(op)
            while True:
                call = op.send(self._send(call))
        except StopIteration as stop:
            result: T = stop.value
            return result

    def _send(self, call: Call) -> object:
        """The reply to a call, or `Failed` with what it raised."""
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
            return Failed(exc)


class AsyncWeddingCache(_CacheBase[redis.asyncio.Redis]):
    """`WeddingCache` over `redis.asyncio.Redis`: the same core, keys and rules, awaited."""

    async def get(
        self, namespace: str, *key_parts: KeyPart, wedding_id: str | None = None
    ) -> object | None:
        """The value at ``namespace[:wedding_id][:part]...``, or None on a miss."""
        return await self._run(self._core.read(entry_key(namespace, key_parts, wedding_id)))

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
        key = entry_key(namespace, key_parts, wedding_id)
        return await self._run(self._core.write(key, value, wedding_date=wedding_date, ttl_s=ttl_s))

    async def get_supplier_profile(self, supplier_id: str | int) -> JSONObject | None:
        """A supplier's profile, or None."""
        return as_object(await self.get(SUPPLIER, supplier_id))

    async def set_supplier_profile(
        self, supplier_id: str | int, profile: Mapping[str, object]
    ) -> bool:
        """Cache a supplier's profile for 24 h."""
        return await self.set(SUPPLIER, supplier_id, value=profile)

    async def get_venue_availability(self, venue_id: str | int, date: dt.date) -> JSONObject | None:
        """A venue's availability on a date, or None."""
        return as_object(await self.get(VENUE, venue_id, "availability", date))

    async def set_venue_availability(
        self, venue_id: str | int, date: dt.date, availability: Mapping[str, object]
    ) -> bool:
        """Cache a venue's availability on a date for 15 min."""
        return await self.set(VENUE, venue_id, "availability", date, value=availability)

    async def get_timeline(self, wedding_id: str) -> JSONObject | None:
        """A wedding's timeline, or None."""
        return as_object(await self.get(TIMELINE, wedding_id=wedding_id))

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

    async def _run(self, op: Op[T]) -> T:
        try:
            call = next(op)
            while True:
                call = op.send(await self._send(call))
        except StopIteration as stop:
            result: T = stop.value
            return result

    async def _send(self, call: Call) -> object:
        """The reply to a call, or `Failed` with what it raised."""
        try:
            if call.single:
                client: _AwaitsRuns = self._client
                return await client.execute_command(*call.commands[0])
            async with self._client.pipeline(transaction=call.transaction) as pipe:
                for command in call.commands:
                    pipe.execute_command(*command)
                return await pipe.execute()
        except Exception as exc:  # noqa: BLE001 - the core decides: fallback, count or report
            return Failed(exc)
