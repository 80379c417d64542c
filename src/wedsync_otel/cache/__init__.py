"""WeddingCache and AsyncWeddingCache: WedSync data in Redis, with a bounded in-memory fallback.

This package only re-exports. Both classes (`_clients`) share one synchronous
core (`_core`) that holds the state and decides where each operation goes; it
is built from pure parts: the key layout (`_key_layout`), the TTL rules
(`_ttl`), JSON encoding (`_codec`), the Redis calls an operation asks for
(`_calls`), the fallback store (`_memory_store`) and the counts (`_stats`).

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

from wedsync_otel.cache._clients import (
    DEFAULT_MEMORY_MAX_ENTRIES,
    DEFAULT_RETRY_INTERVAL_S,
    AsyncWeddingCache,
    WeddingCache,
)
from wedsync_otel.cache._core import Backend
from wedsync_otel.cache._key_layout import index_key
from wedsync_otel.cache._stats import CacheStats
from wedsync_otel.cache._ttl import (
    SUPPLIER_TTL_S,
    TIMELINE_NEAR_TTL_S,
    TIMELINE_TTL_S,
    TTL_BY_BAND,
    VENUE_AVAILABILITY_TTL_S,
    WEDDING_INDEX_TTL_S,
    timeline_ttl_for,
    ttl_for,
)

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
