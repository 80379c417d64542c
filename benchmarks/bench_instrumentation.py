"""Overhead of the companion hooks per query and per cached GET, against contrib alone.

Each variant is the contrib instrumentation reporting to a TracerProvider
with a batch processor and a dropping exporter; the wedsync variant puts
WeddingSpanProcessor (fingerprinting, literal stripping, roll-up, metrics
recording) in front, and for Redis adds this project's hooks. Operations run
under one request span per round, as in an application. Targets: <= 1.15.
"""

from __future__ import annotations

import sqlite3
import sys
from collections.abc import Callable
from pathlib import Path

import redis
from opentelemetry.instrumentation.redis import RedisInstrumentor
from opentelemetry.instrumentation.sqlite3 import SQLite3Instrumentor
from opentelemetry.sdk.trace import SpanProcessor, TracerProvider
from opentelemetry.trace import SpanKind

from wedsync_otel import WeddingSpanProcessor
from wedsync_otel.instrumentation.redis_hooks import instrument_redis
from wedsync_otel.metrics import WeddingRecorder

sys.path.insert(0, str(Path(__file__).parent))
from _harness import interleaved, report
from bench_processor import batch

sys.path.insert(0, str(Path(__file__).parent.parent / "tests"))
from servers import start_redis

QUERY = "SELECT name, email FROM guests WHERE wedding_id = ? AND id > ?"


def wedding_processor() -> SpanProcessor:
    processor = WeddingSpanProcessor(batch())
    processor.add_verdict_listener(WeddingRecorder())
    return processor


def provider_with(processor: SpanProcessor) -> TracerProvider:
    provider = TracerProvider()
    provider.add_span_processor(processor)
    return provider


def sqlite_variant(provider: TracerProvider) -> Callable[[int], None]:
    """A connection traced by the contrib sqlite3 instrumentation into ``provider``."""
    instrumentor = SQLite3Instrumentor()
    instrumentor.instrument(tracer_provider=provider)
    connection = sqlite3.connect(":memory:")
    instrumentor.uninstrument()  # the connection keeps its tracer; the next one gets another
    cursor = connection.cursor()
    cursor.execute(
        "CREATE TABLE guests (id INTEGER PRIMARY KEY, wedding_id INT, name TEXT, email TEXT)"
    )
    cursor.executemany(
        "INSERT INTO guests (wedding_id, name, email) VALUES (?, ?, ?)",
        [(n % 50, f"Guest {n}", f"g{n}@example.com") for n in range(2000)],
    )
    tracer = provider.get_tracer("bench")

    def run(count: int) -> None:
        with tracer.start_as_current_span(
            "request",
            kind=SpanKind.SERVER,
            attributes={"http.route": "/api/weddings/{wedding_id}/guests"},
        ):
            for n in range(count):
                cursor.execute(QUERY, (n % 50, 1990)).fetchall()
        provider.force_flush()

    return run


def bench_queries() -> None:
    contrib = provider_with(batch())
    wedsync = provider_with(wedding_processor())
    a, b = "(a) contrib sqlite3", "(b) contrib sqlite3 + wedsync"
    figures = interleaved(
        {a: sqlite_variant(contrib), b: sqlite_variant(wedsync)}, operations=5_000, rounds=9
    )
    report(
        "per query (sqlite3, in memory)", list(figures.values()), [("b/a (target <= 1.15)", b, a)]
    )
    contrib.shutdown()
    wedsync.shutdown()


def redis_variant(
    provider: TracerProvider, client: redis.Redis, *, hooks: bool
) -> Callable[[int], None]:
    """GETs (half hits) through the contrib Redis instrumentation into ``provider``."""
    tracer = provider.get_tracer("bench")

    def run(count: int) -> None:
        # The instrumentor is process-wide: switch it to this variant, outside the loop's cost.
        if hooks:
            instrument_redis(tracer_provider=provider)
        else:
            RedisInstrumentor().instrument(tracer_provider=provider)
        try:
            with tracer.start_as_current_span(
                "request",
                kind=SpanKind.SERVER,
                attributes={"http.route": "/api/suppliers/{supplier_id}/profile"},
            ):
                for n in range(count):
                    client.get(f"supplier:{n % 2}")
        finally:
            RedisInstrumentor().uninstrument()
        provider.force_flush()

    return run


def bench_cached_gets() -> None:
    with start_redis() as server, redis.Redis.from_url(server.url) as client:
        client.set("supplier:0", "profile")
        contrib = provider_with(batch())
        wedsync = provider_with(wedding_processor())
        a, b = "(a) contrib redis", "(b) contrib redis + wedsync hooks"
        figures = interleaved(
            {
                a: redis_variant(contrib, client, hooks=False),
                b: redis_variant(wedsync, client, hooks=True),
            },
            operations=3_000,
            rounds=9,
        )
        report(
            "per cached GET (real Redis on loopback)",
            list(figures.values()),
            [("b/a (target <= 1.15)", b, a)],
        )
        contrib.shutdown()
        wedsync.shutdown()


def main() -> None:
    bench_queries()
    bench_cached_gets()


if __name__ == "__main__":
    main()
