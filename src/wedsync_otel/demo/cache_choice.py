"""choose_cache: the cache the demo app uses, Redis when there is one, memory when not.

Apart from the run because the choice has three outcomes, each with its own clean-up.
"""

from __future__ import annotations

import os
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import redis
from opentelemetry.instrumentation.utils import suppress_instrumentation
from opentelemetry.trace import TracerProvider
from redis.backoff import NoBackoff
from redis.retry import Retry

from wedsync_otel.cache import WeddingCache
from wedsync_otel.demo.redis_server import EmbeddedRedis
from wedsync_otel.errors import RedisUnavailable


@dataclass(frozen=True, slots=True)
class CacheChoice:
    """The cache the app uses and how to say which it is."""

    cache: WeddingCache
    description: str


def _quick_failure() -> dict[str, Any]:
    """Short timeouts and one retry, so a dead server hands over to the fallback at once."""
    return {"socket_timeout": 0.5, "socket_connect_timeout": 0.5, "retry": Retry(NoBackoff(), 1)}


def _answers(client: redis.Redis) -> bool:
    try:
        with suppress_instrumentation():  # the check is not the application's traffic
            return bool(client.ping())
    except (redis.ConnectionError, redis.TimeoutError, OSError):
        return False


def choose_cache(
    stack: ExitStack, workdir: Path, tracer_provider: TracerProvider | None
) -> CacheChoice:
    """``REDIS_URL``, else a private embedded Redis, else the in-memory fallback."""
    url = os.environ.get("REDIS_URL", "").strip()
    if url:
        client = stack.enter_context(redis.Redis.from_url(url, **_quick_failure()))
        parts = urlsplit(url)
        where = f"{parts.hostname}:{parts.port or 6379}" if parts.hostname else parts.path
        if _answers(client):
            described = f"Redis at {where} (REDIS_URL)"
        else:
            described = f"in-memory fallback: REDIS_URL ({where}) does not answer"
        return CacheChoice(WeddingCache(client, tracer_provider=tracer_provider), described)
    try:
        server = stack.enter_context(EmbeddedRedis.start())
    except RedisUnavailable as exc:
        # No server at all: a client of a socket that does not exist fails at once, and
        # the cache serves from memory (trying again hourly rather than every few seconds).
        nowhere = str(workdir / "no-redis.sock")
        client = stack.enter_context(redis.Redis(unix_socket_path=nowhere, **_quick_failure()))
        cache = WeddingCache(client, tracer_provider=tracer_provider, retry_interval_s=3600.0)
        return CacheChoice(cache, f"in-memory fallback (no Redis: {exc})")
    client = stack.enter_context(redis.Redis.from_url(server.url, **_quick_failure()))
    cache = WeddingCache(client, tracer_provider=tracer_provider)
    return CacheChoice(cache, f"private embedded Redis at 127.0.0.1:{server.port}")
