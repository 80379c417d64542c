"""Requests per second of the demo app under a fixed load: no telemetry, contrib, wedsync-otel.

(a) The demo's routes in a plain Starlette app, nothing instrumented.
(b) Plain OpenTelemetry: the contrib Starlette, sqlite3 and Redis
instrumentations (no hooks) into an SDK TracerProvider with a
BatchSpanProcessor and a dropping exporter, and a MeterProvider read every
5 s into a dropping exporter for the HTTP metrics the Starlette
instrumentation records, as (c) has.
(c) The full stack: `wedsync_otel.configure()` (WeddingSpanProcessor,
metrics recording, the performance exporter read every 5 s), the demo's
`create_app()` (WeddingMiddleware, the wedding resolver) and the sqlite3 and
Redis instrumentations with this project's hooks.

The contrib instrumentors are process-wide, so each variant runs in a
subprocess of its own (this script, run with ``--variant``). The parent
builds the demo data once (the seeded build takes about a second here) and
draws the request plan once: the first GETs of the demo's seeded
Saturday-peak mix (the POSTs left out), all answering 200. Each subprocess
copies the database, starts a private Redis and uvicorn on 127.0.0.1, warms
up, drives the fixed closed-loop load with httpx on keep-alive connections
and prints one JSON line. The parent alternates the variant order each
round and reports medians.

CPU per request is ``time.process_time()`` of the subprocess: the server,
its thread pool, the export threads and the load client, which shares the
process (the Redis server's own CPU is not counted). The app's own SQL (the
guest list's N+1 of unindexed scans) is most of every request's cost, in
all three variants. Target: c/b >= 0.90 (rps).
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import itertools
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import httpx
import redis
from opentelemetry import trace
from opentelemetry.instrumentation.redis import RedisInstrumentor
from opentelemetry.instrumentation.sqlite3 import SQLite3Instrumentor
from opentelemetry.instrumentation.starlette import StarletteInstrumentor
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import (
    MetricExporter,
    MetricExportResult,
    MetricsData,
    PeriodicExportingMetricReader,
)
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from starlette.applications import Starlette

import wedsync_otel
from wedsync_otel.cache import WeddingCache
from wedsync_otel.config import load_config
from wedsync_otel.demo.app import WedSyncService, _routes, create_app
from wedsync_otel.demo.data import build, today_for
from wedsync_otel.demo.load import SaturdayPeak
from wedsync_otel.demo.redis_server import EmbeddedRedis
from wedsync_otel.demo.runner import BackgroundServer

sys.path.insert(0, str(Path(__file__).parent))
from _harness import build as package_build
from bench_processor import DroppingExporter

WARMUP_REQUESTS: Final = 100
MEASURED_REQUESTS: Final = 400
"""About 8 s per variant here: five rounds of three stay under four minutes in all."""
CONCURRENCY: Final = 8
ROUNDS: Final = 5
METRIC_EXPORT_INTERVAL_MS: Final = 5_000
REQUEST_TIMEOUT_S: Final = 10.0
CHILD_TIMEOUT_S: Final = 120.0
"""A variant's whole subprocess: imports, Redis, server, warm-up and load."""
DATABASE: Final = "wedsync.db"
PLAN: Final = "paths.json"
GET_ENDPOINTS: Final = frozenset(
    {"venue_availability", "supplier_profiles", "couple_timeline", "guest_lists"}
)

NAMES: Final = {
    "a": "(a) no telemetry",
    "b": "(b) OpenTelemetry contrib + batch",
    "c": "(c) full wedsync-otel stack",
}


class DroppingMetricExporter(MetricExporter):
    """Accepts and forgets every export, so only the pipeline's own cost is measured."""

    def export(
        self,
        metrics_data: MetricsData,
        timeout_millis: float = 10_000,
        **kwargs: Any,  # the SDK's MetricExporter signature
    ) -> MetricExportResult:
        return MetricExportResult.SUCCESS

    def force_flush(self, timeout_millis: float = 10_000) -> bool:
        return True

    def shutdown(
        self,
        timeout_millis: float = 30_000,
        **kwargs: Any,  # the SDK's MetricExporter signature
    ) -> None:
        return None


# --- the variants, each in its own process ---------------------------------------------------

Build = Callable[[ExitStack, Path, redis.Redis], Starlette]
"""(stack for shutdowns, database, Redis client) -> the app to serve."""


def _cache(client: redis.Redis, tracer_provider: trace.TracerProvider | None) -> WeddingCache:
    # The same Redis-backed cache everywhere; its tracer is used only by the memory fallback.
    return WeddingCache(client, tracer_provider=tracer_provider)


def no_telemetry(stack: ExitStack, db_path: Path, client: redis.Redis) -> Starlette:
    """The demo routes in a bare Starlette app."""
    return Starlette(routes=_routes(WedSyncService(db_path, _cache(client, None))))


def contrib_only(stack: ExitStack, db_path: Path, client: redis.Redis) -> Starlette:
    """Contrib Starlette, sqlite3 and Redis instrumentation into an SDK pipeline."""
    tracer_provider = TracerProvider()
    tracer_provider.add_span_processor(BatchSpanProcessor(DroppingExporter()))
    reader = PeriodicExportingMetricReader(
        DroppingMetricExporter(), export_interval_millis=METRIC_EXPORT_INTERVAL_MS
    )
    meter_provider = MeterProvider(metric_readers=[reader])
    stack.callback(meter_provider.shutdown)
    stack.callback(tracer_provider.shutdown)
    SQLite3Instrumentor().instrument(tracer_provider=tracer_provider)
    RedisInstrumentor().instrument(tracer_provider=tracer_provider)
    app = Starlette(routes=_routes(WedSyncService(db_path, _cache(client, tracer_provider))))
    StarletteInstrumentor.instrument_app(
        app, tracer_provider=tracer_provider, meter_provider=meter_provider
    )
    return app


def wedsync_stack(stack: ExitStack, db_path: Path, client: redis.Redis) -> Starlette:
    """configure(), the instrumentations with wedsync hooks, and the demo's create_app()."""
    config = load_config()
    telemetry = wedsync_otel.configure(
        config=config,
        span_exporter=DroppingExporter(),
        metric_exporter=DroppingMetricExporter(),
        metric_export_interval_millis=METRIC_EXPORT_INTERVAL_MS,
        instrument=("sqlite3", "redis"),
        set_global=False,
    )
    stack.callback(telemetry.shutdown)
    return create_app(
        db_path=db_path,
        cache=_cache(client, telemetry.tracer_provider),
        config=config,
        tracer_provider=telemetry.tracer_provider,
        meter_provider=telemetry.meter_provider,
    )


VARIANTS: Final[dict[str, Build]] = {"a": no_telemetry, "b": contrib_only, "c": wedsync_stack}


def planned_paths(profile: SaturdayPeak, count: int) -> list[str]:
    """The first ``count`` GETs of the demo's seeded Saturday-peak mix."""
    drawn = (profile.next() for _ in itertools.count())
    gets = (planned.path for planned in drawn if planned.endpoint in GET_ENDPOINTS)
    return list(itertools.islice(gets, count))


async def _closed_loop(client: httpx.AsyncClient, paths: Sequence[str]) -> Counter[int]:
    """Send ``paths`` with `CONCURRENCY` workers, each sending its next as the last returns."""
    statuses: Counter[int] = Counter()
    queue: Iterator[str] = iter(paths)

    async def worker() -> None:
        for path in queue:  # shared: each path is taken by exactly one worker
            statuses[(await client.get(path)).status_code] += 1

    async with asyncio.TaskGroup() as group:
        for _ in range(CONCURRENCY):
            group.create_task(worker())
    return statuses


async def _load(base_url: str, warmup: Sequence[str], measured: Sequence[str]) -> dict[str, Any]:
    limits = httpx.Limits(
        max_connections=CONCURRENCY,
        max_keepalive_connections=CONCURRENCY,
        keepalive_expiry=2.0,  # below uvicorn's 5 s keep-alive
    )
    async with httpx.AsyncClient(
        base_url=base_url, timeout=REQUEST_TIMEOUT_S, limits=limits
    ) as client:
        warm = await _closed_loop(client, warmup)
        gc.collect()
        cpu_start, wall_start = time.process_time(), time.perf_counter()
        statuses = await _closed_loop(client, measured)
        cpu_s, wall_s = time.process_time() - cpu_start, time.perf_counter() - wall_start
    return {
        "rps": len(measured) / wall_s,
        "cpu_ms_per_request": cpu_s / len(measured) * 1000,
        "wall_s": wall_s,
        "not_200": sum(n for status, n in (warm + statuses).items() if status != 200),
    }


def run_variant(variant: str, shared: Path) -> dict[str, Any]:
    """Serve one variant on a copy of the shared database, drive the plan, return the figures."""
    paths: list[str] = json.loads((shared / PLAN).read_text())
    with ExitStack() as stack:
        workdir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="bench-asgi-")))
        db_path = Path(shutil.copy(shared / DATABASE, workdir / DATABASE))
        server = stack.enter_context(EmbeddedRedis.start())
        client = stack.enter_context(
            redis.Redis.from_url(server.url, socket_timeout=5.0, socket_connect_timeout=5.0)
        )
        app = VARIANTS[variant](stack, db_path, client)
        served = stack.enter_context(BackgroundServer(app))
        figures = asyncio.run(_load(served.url, paths[:WARMUP_REQUESTS], paths[WARMUP_REQUESTS:]))
    return {"variant": variant, **figures}


# --- the parent: rounds, medians, ratios -------------------------------------------------------


@dataclass(frozen=True)
class Throughput:
    """Median figures of one variant over the rounds."""

    name: str
    rps: float
    cpu_ms: float
    rps_low: float
    rps_high: float


def _child(variant: str, shared: Path) -> dict[str, Any]:
    command = [sys.executable, __file__, "--variant", variant, "--shared", str(shared)]
    done = subprocess.run(
        command, capture_output=True, text=True, timeout=CHILD_TIMEOUT_S, check=False
    )
    lines = done.stdout.strip().splitlines()
    if done.returncode != 0 or not lines:
        raise RuntimeError(f"variant {variant} failed ({done.returncode}):\n{done.stderr[-3000:]}")
    figures: dict[str, Any] = json.loads(lines[-1])
    if figures["not_200"]:
        raise RuntimeError(f"variant {variant}: {figures['not_200']} answers were not 200")
    return figures


def main() -> None:
    runs: dict[str, list[dict[str, Any]]] = {variant: [] for variant in VARIANTS}
    names = list(VARIANTS)
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="bench-asgi-") as directory:
        shared = Path(directory)
        data = build(shared / DATABASE, today=today_for(load_config()))
        plan = planned_paths(SaturdayPeak(data), WARMUP_REQUESTS + MEASURED_REQUESTS)
        (shared / PLAN).write_text(json.dumps(plan))
        for round_index in range(ROUNDS):
            order = names if round_index % 2 == 0 else list(reversed(names))
            for variant in order:
                runs[variant].append(_child(variant, shared))
    elapsed_s = time.monotonic() - started
    medians = {
        variant: Throughput(
            NAMES[variant],
            statistics.median(run["rps"] for run in runs[variant]),
            statistics.median(run["cpu_ms_per_request"] for run in runs[variant]),
            min(run["rps"] for run in runs[variant]),
            max(run["rps"] for run in runs[variant]),
        )
        for variant in names
    }
    print(
        f"== demo app: requests per second, {MEASURED_REQUESTS} GETs at concurrency "
        f"{CONCURRENCY} after {WARMUP_REQUESTS} warm-up, {ROUNDS} rounds ({elapsed_s:.0f} s)"
        f" [{package_build()}]"
    )
    for figure in medians.values():
        print(
            f"  {figure.name:<40} rps {figure.rps:8.1f}   cpu {figure.cpu_ms:6.2f} ms/request"
            f"   (rps {figure.rps_low:.1f} to {figure.rps_high:.1f})"
        )
    for label, numerator, denominator in (("b/a", "b", "a"), ("c/b (target >= 0.90)", "c", "b")):
        top, bottom = medians[numerator], medians[denominator]
        # Also the median of the ratios within each round, seconds apart rather than minutes.
        paired = statistics.median(
            mine["rps"] / theirs["rps"]
            for mine, theirs in zip(runs[numerator], runs[denominator], strict=True)
        )
        print(
            f"  ratio {label:<34} rps {top.rps / bottom.rps:8.3f}   "
            f"cpu {top.cpu_ms / bottom.cpu_ms:6.3f}               (rps per round {paired:.3f})"
        )
    for variant in names:  # the machine is noisy: show what the medians were taken over
        per_round = " ".join(f"{run['rps']:5.1f}" for run in runs[variant])
        print(f"  rps by round, {variant}: {per_round}")
    print("  (cpu: the whole subprocess, load client included; Redis's own CPU not counted;")
    print("   rps per round: the median of the ratios within each round)")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--variant", choices=sorted(VARIANTS), help="run one variant (internal)")
    parser.add_argument("--shared", type=Path, help="the parent's database and plan (internal)")
    arguments = parser.parse_args()
    if arguments.variant is None:
        main()
    elif arguments.shared is None:
        parser.error("--variant needs --shared")
    else:
        print(json.dumps(run_variant(arguments.variant, arguments.shared)))
