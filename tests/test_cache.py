"""WeddingCache and AsyncWeddingCache on a real Redis: TTLs, invalidation, warming, fallback."""

from __future__ import annotations

import asyncio
import datetime as dt
import uuid
from collections.abc import Awaitable, Callable, Iterator
from types import MappingProxyType
from typing import TypeVar

import pytest
import redis
import redis.asyncio
from hypothesis import given
from hypothesis import strategies as st
from opentelemetry.instrumentation.redis import RedisInstrumentor
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind
from redis.asyncio.retry import Retry as AsyncRetry
from redis.backoff import NoBackoff
from redis.retry import Retry

from servers import RedisServer, ServerUnavailable, require, start_redis
from wedsync_otel.attributes import CACHE_BACKEND, CACHE_HIT, CACHE_NAMESPACE, CACHE_TTL_S
from wedsync_otel.cache import (
    AsyncWeddingCache,
    CacheStats,
    WeddingCache,
    index_key,
    timeline_ttl_for,
    ttl_for,
)
from wedsync_otel.instrumentation.redis_hooks import instrument_redis, uninstrument_redis

T = TypeVar("T")
TODAY = dt.date(2026, 6, 16)
DAY = dt.timedelta(days=1)
RETRY_S = 5.0


class Ticker:
    """A monotonic clock that moves only when the test says so."""

    def __init__(self) -> None:
        self.now = 1_000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


class Telemetry:
    """A real SDK pipeline into an in-memory exporter, with the Redis hooks installed."""

    def __init__(self) -> None:
        self.exporter = InMemorySpanExporter()
        self.provider = TracerProvider()
        self.provider.add_span_processor(SimpleSpanProcessor(self.exporter))

    def spans(self) -> tuple[ReadableSpan, ...]:
        return self.exporter.get_finished_spans()

    def backends(self) -> list[object]:
        """cache.backend of every finished span that has one, in order."""
        return [
            (span.attributes or {})[CACHE_BACKEND]
            for span in self.spans()
            if CACHE_BACKEND in (span.attributes or {})
        ]

    def named(self, name: str) -> list[ReadableSpan]:
        return [span for span in self.spans() if span.name == name]


class Ids:
    """Unique ids for one test: none may appear in any span attribute."""

    def __init__(self) -> None:
        self.made: list[str] = []

    def __call__(self, prefix: str = "") -> str:
        made = f"{prefix}{uuid.uuid4().hex[:12]}"
        self.made.append(made)
        return made


def sync_client(url: str) -> redis.Redis:
    """Fail fast: redis-py's default retries would keep a call to a dead server busy for seconds."""
    return redis.Redis.from_url(url, retry=Retry(NoBackoff(), 0), socket_timeout=2)


def async_client(url: str) -> redis.asyncio.Redis:
    return redis.asyncio.Redis.from_url(url, retry=AsyncRetry(NoBackoff(), 0), socket_timeout=2)


def leaked_ids(spans: tuple[ReadableSpan, ...], ids: list[str]) -> list[tuple[str, str]]:
    """(span, attribute) for every attribute value of every span that holds an id."""
    return [
        (span.name, name)
        for span in spans
        for name, value in (span.attributes or {}).items()
        if any(made in str(value) for made in ids)
    ]


@pytest.fixture
def telemetry() -> Iterator[Telemetry]:
    assert not RedisInstrumentor().is_instrumented_by_opentelemetry, "Redis left instrumented"
    telemetry = Telemetry()
    instrument_redis(tracer_provider=telemetry.provider)
    yield telemetry
    uninstrument_redis()
    telemetry.provider.shutdown()


@pytest.fixture
def ticker() -> Ticker:
    return Ticker()


@pytest.fixture
def client(redis_url: str, telemetry: Telemetry) -> Iterator[redis.Redis]:
    with sync_client(redis_url) as client:
        yield client


@pytest.fixture
def ids(client: redis.Redis, telemetry: Telemetry) -> Iterator[Ids]:
    """Every test's ids: checked against every exported attribute, then their keys deleted."""
    ids = Ids()
    yield ids
    assert leaked_ids(telemetry.spans(), ids.made) == []
    for made in ids.made:
        doomed = list(client.scan_iter(match=f"*{made}*"))
        if doomed:
            client.delete(*doomed)


def make_cache(
    client: redis.Redis, telemetry: Telemetry, ticker: Ticker, **options: int
) -> WeddingCache:
    return WeddingCache(
        client,
        today=lambda: TODAY,
        monotonic=ticker,
        tracer_provider=telemetry.provider,
        retry_interval_s=RETRY_S,
        **options,
    )


@pytest.fixture
def cache(client: redis.Redis, telemetry: Telemetry, ticker: Ticker) -> WeddingCache:
    return make_cache(client, telemetry, ticker)


@pytest.fixture
def own_server() -> Iterator[RedisServer]:
    """A private Redis this test may kill and restart."""
    try:
        server = start_redis()
    except ServerUnavailable as exc:
        require("Redis", exc)
    with server:
        yield server


@pytest.fixture
def own_client(own_server: RedisServer, telemetry: Telemetry) -> Iterator[redis.Redis]:
    with sync_client(own_server.url) as client:
        yield client


@pytest.fixture
def own_cache(own_client: redis.Redis, telemetry: Telemetry, ticker: Ticker) -> WeddingCache:
    return make_cache(own_client, telemetry, ticker)


def run_async(
    url: str,
    telemetry: Telemetry,
    ticker: Ticker,
    scenario: Callable[[AsyncWeddingCache], Awaitable[T]],
) -> T:
    """Run a scenario against an AsyncWeddingCache on a fresh client, closed afterwards."""

    async def main() -> T:
        client = async_client(url)
        try:
            cache = AsyncWeddingCache(
                client,
                today=lambda: TODAY,
                monotonic=ticker,
                tracer_provider=telemetry.provider,
                retry_interval_s=RETRY_S,
            )
            return await scenario(cache)
        finally:
            await client.aclose()

    return asyncio.run(main())


# --- TTL rules (pure) -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("days_until", "ttl_s"),
    [
        (None, 15 * 60),  # unknown date
        (-30, 86_400),  # past
        (-1, 86_400),
        (0, 5 * 60),  # the wedding day
        (1, 15 * 60),  # final week
        (7, 15 * 60),
        (8, 60 * 60),  # final month
        (30, 60 * 60),
        (31, 86_400),  # planning
        (400, 86_400),
    ],
)
def test_ttl_for_table(days_until: int | None, ttl_s: int) -> None:
    """ttl_for follows the documented table of proximity bands."""
    wedding = None if days_until is None else TODAY + days_until * DAY
    assert ttl_for(wedding, TODAY) == ttl_s


@given(st.integers(0, 2_000), st.integers(0, 2_000))
def test_ttl_for_never_grows_as_the_wedding_nears(first: int, second: int) -> None:
    """Up to the wedding, a nearer date never gets a longer TTL."""
    nearer, farther = sorted((first, second))
    assert ttl_for(TODAY + nearer * DAY, TODAY) <= ttl_for(TODAY + farther * DAY, TODAY)


@pytest.mark.parametrize(
    ("days_until", "ttl_s"),
    [(None, 1800), (-2, 1800), (-1, 180), (0, 180), (1, 180), (2, 1800), (60, 1800)],
)
def test_timeline_ttl_table(days_until: int | None, ttl_s: int) -> None:
    """A timeline lives 30 min, and 3 min from the day before the wedding to the day after."""
    wedding = None if days_until is None else TODAY + days_until * DAY
    assert timeline_ttl_for(wedding, TODAY) == ttl_s


# --- typed helpers and TTLs seen in Redis ---------------------------------------------------


def test_supplier_profile_round_trips_with_a_day_ttl(
    cache: WeddingCache, client: redis.Redis, ids: Ids
) -> None:
    """A supplier profile is read back as stored and lives 24 h in Redis."""
    supplier = ids()
    assert cache.set_supplier_profile(supplier, {"name": "Flora's Flowers", "rating": 4.5})
    assert cache.get_supplier_profile(supplier) == {"name": "Flora's Flowers", "rating": 4.5}
    assert 86_399 <= client.ttl(f"supplier:{supplier}") <= 86_400


def test_venue_availability_lives_fifteen_minutes(
    cache: WeddingCache, client: redis.Redis, ids: Ids
) -> None:
    """Venue availability is stored at venue:{id}:availability:{date} for 15 min."""
    venue, date = ids(), dt.date(2026, 8, 1)
    cache.set_venue_availability(venue, date, {"slots": ["12:00", "15:00"]})
    assert cache.get_venue_availability(venue, date) == {"slots": ["12:00", "15:00"]}
    assert 899 <= client.ttl(f"venue:{venue}:availability:2026-08-01") <= 900


@pytest.mark.parametrize(("days_until", "ttl_s"), [(30, 1800), (1, 180), (0, 180)])
def test_timeline_ttl_in_redis(
    days_until: int, ttl_s: int, cache: WeddingCache, client: redis.Redis, ids: Ids
) -> None:
    """set_timeline's TTL in Redis is 30 min, or 3 min within a day of the wedding."""
    wedding = ids()
    cache.set_timeline(wedding, {"ceremony": "14:00"}, wedding_date=TODAY + days_until * DAY)
    assert cache.get_timeline(wedding) == {"ceremony": "14:00"}
    assert ttl_s - 1 <= client.ttl(f"timeline:{wedding}") <= ttl_s


@pytest.mark.parametrize(
    ("days_until", "ttl_s"),
    [(45, 86_400), (20, 3600), (3, 900), (0, 300), (-3, 86_400), (None, 900)],
)
def test_generic_entry_ttl_follows_the_band(
    days_until: int | None, ttl_s: int, cache: WeddingCache, client: redis.Redis, ids: Ids
) -> None:
    """A generic wedding entry's TTL in Redis is ttl_for its wedding date."""
    wedding = ids()
    date = None if days_until is None else TODAY + days_until * DAY
    cache.set(
        "seating", "table", 4, value=["Ada", "Charles"], wedding_id=wedding, wedding_date=date
    )
    assert cache.get("seating", "table", 4, wedding_id=wedding) == ["Ada", "Charles"]
    assert ttl_s - 1 <= client.ttl(f"seating:{wedding}:table:4") <= ttl_s


def test_explicit_ttl_overrides_the_rule(
    cache: WeddingCache, client: redis.Redis, ids: Ids
) -> None:
    """An explicit ttl_s is used instead of the namespace's rule."""
    key = ids()
    cache.set("menu", key, value={"starter": "soup"}, ttl_s=42)
    assert 41 <= client.ttl(f"menu:{key}") <= 42


def test_wedding_index_outlives_its_keys(
    cache: WeddingCache, client: redis.Redis, ids: Ids
) -> None:
    """The wedding's key index expires no sooner than the longest-lived of its keys."""
    wedding = ids()
    cache.set("budget", value={"total": 1}, wedding_id=wedding, wedding_date=TODAY + 90 * DAY)
    cache.set_timeline(wedding, {"ceremony": "14:00"}, wedding_date=TODAY)
    index_ttl = client.ttl(index_key(wedding))
    assert index_ttl >= client.ttl(f"budget:{wedding}") >= client.ttl(f"timeline:{wedding}") > 0
    assert client.smembers(index_key(wedding)) == {
        f"budget:{wedding}".encode(),
        f"timeline:{wedding}".encode(),
    }


def test_reads_count_hits_and_misses(cache: WeddingCache, ids: Ids) -> None:
    """A miss and then a hit are counted in stats and nothing falls back."""
    supplier = ids()
    assert cache.get_supplier_profile(supplier) is None
    cache.set_supplier_profile(supplier, {"name": "Flora"})
    assert cache.get_supplier_profile(supplier) == {"name": "Flora"}
    stats = cache.stats
    assert (stats.hits, stats.misses, stats.fallback_reads, stats.errors) == (1, 1, 0, 0)
    assert cache.backend == "redis"


def test_redis_spans_of_reads_say_hit_or_miss(
    cache: WeddingCache, telemetry: Telemetry, ids: Ids
) -> None:
    """On Redis, the contrib's GET spans carry backend redis, the namespace and the hit."""
    supplier = ids()
    cache.get_supplier_profile(supplier)
    cache.set_supplier_profile(supplier, {"name": "Flora"})
    cache.get_supplier_profile(supplier)
    gets = [span.attributes or {} for span in telemetry.named("GET")]
    assert [(a[CACHE_BACKEND], a[CACHE_NAMESPACE], a[CACHE_HIT]) for a in gets] == [
        ("redis", "supplier", False),
        ("redis", "supplier", True),
    ]


def test_values_must_be_json(cache: WeddingCache, ids: Ids) -> None:
    """A value JSON cannot hold raises TypeError, the one error the caller can cause."""
    with pytest.raises(TypeError):
        cache.set("menu", ids(), value=object())
    with pytest.raises(TypeError):
        cache.set("menu", ids(), value={"price": float("nan")})


def test_mappings_are_stored_as_objects(cache: WeddingCache, ids: Ids) -> None:
    """Any Mapping, not only a dict, is stored and read back as a JSON object."""
    supplier = ids()
    cache.set_supplier_profile(supplier, MappingProxyType({"name": "Flora"}))
    assert cache.get_supplier_profile(supplier) == {"name": "Flora"}


@pytest.mark.parametrize("namespace", ["", "wedding", "guest list", "x" * 65, "a:b"])
def test_bad_namespace_is_a_value_error(namespace: str, cache: WeddingCache) -> None:
    """A namespace that is empty, reserved, unsafe or too long is refused with ValueError."""
    with pytest.raises(ValueError, match="namespace"):
        cache.get(namespace, "1")


def test_corrupt_value_reads_as_a_miss(cache: WeddingCache, client: redis.Redis, ids: Ids) -> None:
    """A cached value that is not JSON reads as None and counts an error."""
    supplier = ids()
    client.set(f"supplier:{supplier}", b"\xff not json")
    assert cache.get_supplier_profile(supplier) is None
    assert cache.stats.errors == 1


def test_redis_error_is_skipped_not_a_fallback(
    cache: WeddingCache, client: redis.Redis, ids: Ids
) -> None:
    """A Redis error such as WRONGTYPE reads as None, counts, and keeps the cache on Redis."""
    supplier = ids()
    client.hset(f"supplier:{supplier}", "name", "Flora")
    assert cache.get_supplier_profile(supplier) is None
    assert cache.set("supplier", supplier, "x", value=1)
    assert (cache.stats.errors, cache.backend) == (1, "redis")


# --- invalidation and warming ---------------------------------------------------------------


def test_invalidation_removes_only_that_weddings_keys(
    cache: WeddingCache, client: redis.Redis, ids: Ids
) -> None:
    """invalidate_wedding removes the wedding's keys and index; other weddings' and others stay."""
    wedding, other, supplier, stray = ids(), ids(), ids(), ids()
    cache.set_timeline(wedding, {"ceremony": "14:00"}, wedding_date=TODAY + 10 * DAY)
    cache.set("seating", "table", 1, value=["Ada"], wedding_id=wedding)
    cache.set_timeline(other, {"ceremony": "11:00"}, wedding_date=TODAY + 10 * DAY)
    cache.set_supplier_profile(supplier, {"name": "Flora"})
    client.set(f"notes:{wedding}:{stray}", "not written through the cache")

    assert cache.invalidate_wedding(wedding) == 2

    assert client.exists(f"timeline:{wedding}", f"seating:{wedding}:table:1") == 0
    assert client.exists(index_key(wedding)) == 0
    assert cache.get_timeline(other) == {"ceremony": "11:00"}
    assert cache.get_supplier_profile(supplier) == {"name": "Flora"}
    assert client.exists(f"notes:{wedding}:{stray}", index_key(other)) == 2


def test_invalidation_reads_only_the_index(
    cache: WeddingCache, telemetry: Telemetry, ids: Ids
) -> None:
    """Invalidation reads the wedding's index and deletes its members: no KEYS, no SCAN."""
    wedding = ids()
    cache.set_timeline(wedding, {"ceremony": "14:00"}, wedding_date=TODAY + 10 * DAY)
    telemetry.exporter.clear()
    cache.invalidate_wedding(wedding)
    assert [span.name for span in telemetry.spans()] == ["SMEMBERS", "DEL SREM"]


def test_invalidating_an_unknown_wedding_removes_nothing(cache: WeddingCache, ids: Ids) -> None:
    """A wedding with nothing cached invalidates to 0."""
    assert cache.invalidate_wedding(ids()) == 0


def test_warm_stores_each_loaders_value(cache: WeddingCache, client: redis.Redis, ids: Ids) -> None:
    """warm stores each loader's value at {namespace}:{wedding_id} and says how many."""
    wedding = ids()
    loaders = {"timeline": lambda: {"ceremony": "14:00"}, "budget": lambda: {"total": 18_000}}
    assert cache.warm(wedding, loaders, wedding_date=TODAY) == 2
    assert cache.get_timeline(wedding) == {"ceremony": "14:00"}
    assert cache.get("budget", wedding_id=wedding) == {"total": 18_000}
    assert 179 <= client.ttl(f"timeline:{wedding}") <= 180  # the timeline rule, on the day


def test_warm_skips_and_counts_failing_loaders(cache: WeddingCache, ids: Ids) -> None:
    """A loader that raises or returns what JSON cannot hold is skipped and counted, not raised."""
    wedding = ids()

    def broken() -> object:
        raise ConnectionRefusedError("supplier API down")

    loaders = {"timeline": broken, "music": object, "budget": lambda: {"total": 1}}
    assert cache.warm(wedding, loaders) == 1
    assert cache.stats.loader_errors == 2
    assert cache.get("budget", wedding_id=wedding) == {"total": 1}


def test_warmed_entries_are_invalidated_with_their_wedding(cache: WeddingCache, ids: Ids) -> None:
    """Warmed entries are indexed under their wedding and go when it is invalidated."""
    wedding = ids()
    cache.warm(wedding, {"timeline": lambda: {"a": 1}, "budget": lambda: {"b": 2}})
    assert cache.invalidate_wedding(wedding) == 2
    assert cache.get_timeline(wedding) is None


# --- Redis killed and restarted -------------------------------------------------------------


def test_killed_redis_falls_back_to_memory(
    own_cache: WeddingCache, own_server: RedisServer
) -> None:
    """With Redis killed nothing raises, writes go to memory and reads are served from it."""
    own_cache.set_supplier_profile("7", {"name": "Flora"})
    own_server.kill()
    assert own_cache.get_supplier_profile("7") is None  # Redis's copy is out of reach
    assert own_cache.backend == "memory"
    assert own_cache.set_supplier_profile("7", {"name": "Flora II"})
    assert own_cache.get_supplier_profile("7") == {"name": "Flora II"}
    stats = own_cache.stats
    assert (stats.fallback_reads, stats.fallback_writes, stats.errors) == (2, 1, 1)


def test_fallback_spans_say_memory(
    own_cache: WeddingCache, own_server: RedisServer, telemetry: Telemetry
) -> None:
    """On the fallback each operation has an INTERNAL span with backend memory, namespace, hit."""
    own_server.kill()
    own_cache.get_supplier_profile("7")
    telemetry.exporter.clear()
    own_cache.get_supplier_profile("7")
    own_cache.set_supplier_profile("7", {"name": "Flora"})
    own_cache.get_supplier_profile("7")
    own_cache.invalidate_wedding("w1")
    spans = telemetry.spans()
    assert [(span.name, span.kind) for span in spans] == [
        ("cache GET", SpanKind.INTERNAL),
        ("cache SET", SpanKind.INTERNAL),
        ("cache GET", SpanKind.INTERNAL),
        ("cache DEL", SpanKind.INTERNAL),
    ]
    assert [dict(span.attributes or {}) for span in spans] == [
        {CACHE_BACKEND: "memory", CACHE_NAMESPACE: "supplier", CACHE_HIT: False},
        {CACHE_BACKEND: "memory", CACHE_NAMESPACE: "supplier", CACHE_TTL_S: 86_400.0},
        {CACHE_BACKEND: "memory", CACHE_NAMESPACE: "supplier", CACHE_HIT: True},
        {CACHE_BACKEND: "memory", CACHE_NAMESPACE: "wedding"},
    ]


def test_redis_is_retried_at_most_once_per_interval(
    own_cache: WeddingCache, own_server: RedisServer, telemetry: Telemetry, ticker: Ticker
) -> None:
    """While Redis stays down it is tried again only once retry_interval_s has passed."""
    own_server.kill()
    own_cache.get_supplier_profile("7")
    telemetry.exporter.clear()
    for _ in range(3):
        own_cache.get_supplier_profile("7")
    ticker.advance(RETRY_S - 0.1)
    own_cache.get_supplier_profile("7")
    assert set(telemetry.backends()) == {"memory"}
    ticker.advance(0.1)
    own_cache.get_supplier_profile("7")
    own_cache.get_supplier_profile("7")
    assert telemetry.backends().count("redis") == 1  # one failed attempt, then memory again
    assert own_cache.backend == "memory"


def test_back_on_redis_after_restart_and_interval(
    own_cache: WeddingCache, own_server: RedisServer, telemetry: Telemetry, ticker: Ticker
) -> None:
    """Restarted Redis is used again once the retry interval passes, and its spans say redis."""
    own_server.kill()
    own_cache.set_supplier_profile("7", {"name": "Flora"})
    own_server.start()
    telemetry.exporter.clear()
    assert own_cache.get_supplier_profile("7") == {"name": "Flora"}  # not yet retried
    assert telemetry.backends() == ["memory"]
    ticker.advance(RETRY_S)
    telemetry.exporter.clear()
    own_cache.set_supplier_profile("8", {"name": "Bloom"})
    assert own_cache.get_supplier_profile("8") == {"name": "Bloom"}
    assert own_cache.backend == "redis"
    assert set(telemetry.backends()) == {"redis"}
    assert (telemetry.named("GET")[0].attributes or {})[CACHE_HIT] is True
    assert own_cache.stats.reconnections == 1


def test_memory_entries_are_dropped_on_reconnection(
    own_cache: WeddingCache, own_server: RedisServer, ticker: Ticker
) -> None:
    """Entries written to memory during the outage are dropped once Redis is back."""
    own_server.kill()
    own_cache.set_supplier_profile("7", {"name": "Flora"})
    own_server.start()
    ticker.advance(RETRY_S)
    assert own_cache.get_supplier_profile("7") is None
    assert own_cache.backend == "redis"


def test_reconnection_deletes_keys_written_during_the_outage(
    own_cache: WeddingCache, own_server: RedisServer, own_client: redis.Redis, ticker: Ticker
) -> None:
    """A Redis value older than a write made on the fallback is deleted, not served."""
    own_server.kill()
    own_cache.set_supplier_profile("7", {"name": "new"})
    own_server.start()
    own_client.set("supplier:7", '{"name":"stale"}')  # as if it had survived the outage
    ticker.advance(RETRY_S)
    assert own_cache.get_supplier_profile("7") is None
    assert own_client.exists("supplier:7") == 0


def test_reconnection_replays_invalidations(
    own_cache: WeddingCache, own_server: RedisServer, own_client: redis.Redis, ticker: Ticker
) -> None:
    """A wedding invalidated on the fallback is invalidated in Redis before Redis serves again."""
    own_server.kill()
    own_cache.invalidate_wedding("w1")
    own_server.start()
    own_client.set("timeline:w1", '{"stale":true}')  # as if it had survived the outage
    own_client.sadd(index_key("w1"), "timeline:w1")
    own_client.set("timeline:w2", '{"other":true}')
    ticker.advance(RETRY_S)
    assert own_cache.get_timeline("w1") is None
    assert own_client.exists("timeline:w1", index_key("w1")) == 0
    assert own_cache.get_timeline("w2") == {"other": True}


def test_fallback_is_bounded_and_counts_evictions(
    own_client: redis.Redis, own_server: RedisServer, telemetry: Telemetry, ticker: Ticker
) -> None:
    """The memory fallback keeps at most memory_max_entries, evicting the least recently used."""
    cache = make_cache(own_client, telemetry, ticker, memory_max_entries=2)
    own_server.kill()
    for supplier in ("1", "2", "3"):
        cache.set_supplier_profile(supplier, {"id": supplier})
    assert cache.stats.evictions == 1
    assert cache.get_supplier_profile("1") is None
    assert cache.get_supplier_profile("3") == {"id": "3"}


def test_outage_writes_beyond_the_bound_are_counted(
    own_client: redis.Redis, own_server: RedisServer, telemetry: Telemetry, ticker: Ticker
) -> None:
    """Fallback writes beyond the clean-up bound are counted as unreconciled."""
    cache = make_cache(own_client, telemetry, ticker, memory_max_entries=2)
    own_server.kill()
    for supplier in ("1", "2", "3"):
        cache.set_supplier_profile(supplier, {"id": supplier})
    assert cache.stats.unreconciled == 1


def test_datetime_clock_counts_by_its_date(
    client: redis.Redis, telemetry: Telemetry, ticker: Ticker, ids: Ids
) -> None:
    """A clock giving a datetime is read as that datetime's date."""
    cache = WeddingCache(client, today=lambda: dt.datetime(2026, 6, 16, 23, 59))
    wedding = ids()
    cache.set_timeline(wedding, {"a": 1}, wedding_date=dt.date(2026, 6, 17))
    assert 179 <= client.ttl(f"timeline:{wedding}") <= 180


def test_fallback_entries_expire(
    own_cache: WeddingCache, own_server: RedisServer, ticker: Ticker
) -> None:
    """A memory entry is gone once its TTL has passed on the monotonic clock."""
    own_server.kill()
    own_cache.set("menu", "m1", value={"starter": "soup"}, ttl_s=30)
    ticker.advance(29)
    assert own_cache.get("menu", "m1") == {"starter": "soup"}
    ticker.advance(1)
    assert own_cache.get("menu", "m1") is None


def test_fallback_invalidation_removes_only_that_wedding(
    own_cache: WeddingCache, own_server: RedisServer
) -> None:
    """On the fallback, invalidate_wedding removes that wedding's memory entries only."""
    own_server.kill()
    own_cache.set_timeline("w1", {"a": 1}, wedding_date=TODAY + 10 * DAY)
    own_cache.set("seating", value=[1], wedding_id="w1")
    own_cache.set_timeline("w2", {"b": 2}, wedding_date=TODAY + 10 * DAY)
    assert own_cache.invalidate_wedding("w1") == 2
    assert own_cache.get_timeline("w1") is None
    assert own_cache.get_timeline("w2") == {"b": 2}


# --- asyncio --------------------------------------------------------------------------------


def test_async_hit_and_miss(
    redis_url: str, telemetry: Telemetry, ticker: Ticker, client: redis.Redis, ids: Ids
) -> None:
    """AsyncWeddingCache reads a miss then a hit, counted and on redis spans."""
    supplier = ids()

    async def scenario(cache: AsyncWeddingCache) -> list[object]:
        first = await cache.get_supplier_profile(supplier)
        await cache.set_supplier_profile(supplier, {"name": "Flora"})
        return [first, await cache.get_supplier_profile(supplier), cache.stats]

    first, second, stats = run_async(redis_url, telemetry, ticker, scenario)
    assert (first, second) == (None, {"name": "Flora"})
    assert stats == CacheStats(hits=1, misses=1)
    hits = [(span.attributes or {})[CACHE_HIT] for span in telemetry.named("GET")]
    assert hits == [False, True]
    assert 86_399 <= client.ttl(f"supplier:{supplier}") <= 86_400


def test_async_timeline_invalidation_and_warming(
    redis_url: str, telemetry: Telemetry, ticker: Ticker, ids: Ids
) -> None:
    """AsyncWeddingCache warms, reads and invalidates a wedding's entries like the sync one."""
    wedding = ids()

    async def scenario(cache: AsyncWeddingCache) -> tuple[int, object, int, object]:
        warmed = await cache.warm(wedding, {"budget": lambda: {"total": 1}})
        await cache.set_timeline(wedding, {"ceremony": "14:00"}, wedding_date=TODAY)
        timeline = await cache.get_timeline(wedding)
        removed = await cache.invalidate_wedding(wedding)
        return warmed, timeline, removed, await cache.get("budget", wedding_id=wedding)

    assert run_async(redis_url, telemetry, ticker, scenario) == (
        1,
        {"ceremony": "14:00"},
        2,
        None,
    )


def test_async_fallback_and_reconnection(
    own_server: RedisServer, telemetry: Telemetry, ticker: Ticker
) -> None:
    """AsyncWeddingCache serves from memory while Redis is down and returns to it afterwards."""

    async def scenario(cache: AsyncWeddingCache) -> list[object]:
        seen: list[object] = []
        await cache.set_venue_availability("v1", TODAY, {"free": True})
        own_server.kill()
        seen.append(await cache.get_venue_availability("v1", TODAY))
        seen.append(await cache.set_venue_availability("v1", TODAY, {"free": False}))
        seen.append(await cache.get_venue_availability("v1", TODAY))
        seen.append(cache.backend)
        own_server.start()
        ticker.advance(RETRY_S)
        seen.append(await cache.get_venue_availability("v1", TODAY))
        seen.append(await cache.set_venue_availability("v1", TODAY, {"free": True}))
        seen.append(await cache.get_venue_availability("v1", TODAY))
        seen.append(cache.backend)
        return seen

    seen = run_async(own_server.url, telemetry, ticker, scenario)
    assert seen == [None, True, {"free": False}, "memory", None, True, {"free": True}, "redis"]
    memory = [s for s in telemetry.spans() if (s.attributes or {}).get(CACHE_BACKEND) == "memory"]
    assert [span.name for span in memory] == ["cache GET", "cache SET", "cache GET"]
    last_get = telemetry.named("GET")[-1].attributes or {}
    assert (last_get[CACHE_BACKEND], last_get[CACHE_HIT]) == ("redis", True)


# --- what the spans never carry -------------------------------------------------------------


def test_no_key_or_id_appears_in_any_attribute(
    cache: WeddingCache,
    own_cache: WeddingCache,
    own_server: RedisServer,
    telemetry: Telemetry,
    ids: Ids,
    ticker: Ticker,
) -> None:
    """No key, wedding id, supplier id or e-mail appears in any attribute of any span."""
    wedding, supplier, guest = ids("w-"), ids("s-"), ids("ada.lovelace@example.com-")
    for each in (cache, own_cache):
        each.set_supplier_profile(supplier, {"name": "Flora"})
        each.get_supplier_profile(supplier)
        each.set("guest", guest, value={"rsvp": True}, wedding_id=wedding, wedding_date=TODAY)
        each.get("guest", guest, wedding_id=wedding)
        each.set_timeline(wedding, {"ceremony": "14:00"}, wedding_date=TODAY)
        each.warm(wedding, {"budget": lambda: {"total": 1}})
        each.invalidate_wedding(wedding)
    own_server.kill()
    own_cache.set("guest", guest, value={"rsvp": True}, wedding_id=wedding)
    own_cache.get("guest", guest, wedding_id=wedding)
    own_cache.invalidate_wedding(wedding)
    own_server.start()
    ticker.advance(RETRY_S)
    own_cache.get_timeline(wedding)
    spans = telemetry.spans()
    assert {"memory", "redis"} <= set(telemetry.backends())
    keys = [f"supplier:{supplier}", f"guest:{wedding}:{guest}", f"timeline:{wedding}"]
    assert leaked_ids(spans, [*ids.made, *keys, "ada.lovelace"]) == []
