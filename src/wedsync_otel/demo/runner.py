"""run(): the WedSync demo end to end, in one process, stopping by itself.

It builds the demo database in a temporary directory, picks a cache backend
(``REDIS_URL``, else a private embedded Redis, else the in-memory fallback),
installs the wedding-aware telemetry, serves the demo API with uvicorn on
127.0.0.1, drives a Saturday-peak load against it and shows what the
telemetry sees while it runs: a live `rich` view on a terminal, a few plain
lines anywhere else. It ends with the wedding-day verdict, the database
advice and where the telemetry went.

What the run is made of lives beside it: `serving` (uvicorn in a thread),
`cache_choice`, `destination` (where the telemetry goes), `breaches` and
`screen` (the live view or plain lines). This module keeps the run and the
closing lines.
"""

from __future__ import annotations

import datetime as dt
import math
import os
import sys
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path
from typing import Final

from rich.console import Console

import wedsync_otel
from wedsync_otel.capacity.advisor import CapacityAdvisor, CapacityPlan
from wedsync_otel.capacity.gauge import recommended_instances_gauge
from wedsync_otel.capacity.throughput import measure_throughput
from wedsync_otel.config import WeddingConfig, load_config
from wedsync_otel.db import QueryAdvisor, Recommendation
from wedsync_otel.demo.app import create_app, demo_config
from wedsync_otel.demo.breaches import BreachCounter
from wedsync_otel.demo.cache_choice import CacheChoice, choose_cache
from wedsync_otel.demo.data import build, connect_untraced, today_for
from wedsync_otel.demo.destination import choose_destination, viewer_destination
from wedsync_otel.demo.load import DEFAULT_RATE_PER_S, SaturdayPeak, drive
from wedsync_otel.demo.screen import LoadProgress, Screen
from wedsync_otel.demo.serving import DRAIN_TIMEOUT_S, BackgroundServer
from wedsync_otel.metrics import PerformanceSnapshot
from wedsync_otel.render import in_catalogue_order, verdict_lines
from wedsync_otel.viewer import Viewer

__all__ = ["DEFAULT_OUTPUT", "BackgroundServer", "BreachCounter", "run"]

DEFAULT_OUTPUT: Final = Path("wedsync-demo-output")
SERVICE_NAME: Final = "wedsync-demo"
METRIC_EXPORT_INTERVAL_MS: Final = 5_000
"""Unless ``OTEL_METRIC_EXPORT_INTERVAL`` says otherwise: a few exports even in a short run."""
ADVISOR_SLOW_MS: Final = 10.0
"""The demo's tables are small, so its scans take milliseconds where production's take
seconds; the advisor's threshold is scaled down with them."""


def _capacity_plan(
    snapshot: PerformanceSnapshot,
    config: WeddingConfig,
    elapsed_s: float,
    wedding_dates: tuple[dt.date, ...],
) -> CapacityPlan | None:
    """The advisor's plan from what this one instance sustained so far (None before traffic)."""
    measured = measure_throughput(snapshot, instances=1, window_s=max(elapsed_s, 1.0))
    if measured is None or not measured.sustainable_rps_per_instance:
        return None
    advisor = CapacityAdvisor(
        config=config,
        base_rps=measured.fleet_rps,
        instance_rps=measured.sustainable_rps_per_instance,
    )
    return advisor.plan(dt.datetime.now(dt.UTC), wedding_dates)


def _advice_lines(advisor: QueryAdvisor) -> list[str]:
    advice: list[Recommendation] = advisor.recommendations()
    if not advice:
        return ["Database advice: none (no slow query or N+1 pattern needed it)"]
    lines = ["Database advice:"]
    for found in advice:
        lines.append(f"  - [{found.kind}] {found.advice}")
        lines.append(f"    because {found.evidence}")
    return lines


def _cache_line(choice: CacheChoice) -> str:
    stats = choice.cache.stats
    looked = stats.hits + stats.misses
    share = f" ({stats.hits / looked:.0%} hits)" if looked else ""
    return (
        f"Cache: {choice.description}, now {choice.cache.backend}; "
        f"{stats.hits} hits, {stats.misses} misses{share}"
    )


def _show_viewer(viewer: Viewer, screen: Screen, *, requests: int, wait: bool) -> None:
    """Say how many requests Phoenix stored and where; with ``wait``, keep it up until Enter."""
    stored = viewer.wait_for_requests(requests)
    screen.say(
        f"Viewer: Phoenix holds {stored} of the {requests} request traces; open {viewer.ui_url}"
    )
    if not wait:
        return
    try:
        input("Press Enter (or Ctrl-C) to stop Phoenix and rotel ")
    except (EOFError, KeyboardInterrupt):
        screen.say("")


def _check(duration_s: float, rate: float | None) -> float:
    if not (math.isfinite(duration_s) and duration_s > 0):
        raise ValueError(f"duration_s must be a positive number of seconds, not {duration_s!r}")
    chosen = DEFAULT_RATE_PER_S if rate is None else rate
    if not (math.isfinite(chosen) and chosen > 0):
        raise ValueError(f"rate must be a positive number of requests per second, not {rate!r}")
    return chosen


def run(
    *,
    duration_s: float = 30.0,
    output: Path | None = None,
    rate: float | None = None,
    plain: bool | None = None,
    viewer: bool = False,
) -> int:
    """Run the demo for ``duration_s`` seconds; 0 on success, 130 when interrupted.

    ``output`` is the folder for the OTLP JSON files (default
    ``./wedsync-demo-output``) unless ``OTEL_EXPORTER_OTLP_ENDPOINT`` is set;
    ``rate`` is requests per second (default `DEFAULT_RATE_PER_S`); ``plain``
    prints text instead of the live view (default: when stdout is not a
    terminal). ``viewer`` sends the traces to Arize Phoenix behind rotel (the
    ``viewer`` extra) and, on a terminal, keeps it open until Enter. The
    telemetry is installed globally, once per process: call this once, as the
    ``wedsync-otel demo`` command does.
    """
    rate_per_s = _check(duration_s, rate)
    plain = not sys.stdout.isatty() if plain is None else plain
    screen = Screen(console=None if plain else Console(), out=sys.stdout)
    config = demo_config(load_config())
    output = output if output is not None else DEFAULT_OUTPUT
    with ExitStack() as stack:
        destination = (
            viewer_destination(stack, output, screen.say) if viewer else choose_destination(output)
        )
        workdir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="wedsync-demo-")))
        started = time.monotonic()
        data = build(workdir / "wedsync.db", today=today_for(config))
        screen.say(
            f"WedSync demo: {len(data.weddings)} weddings built in "
            f"{time.monotonic() - started:.2f} s ({data.db_path})"
        )
        telemetry = wedsync_otel.configure(
            config=config,
            span_exporter=destination.span_exporter,
            metric_exporter=destination.metric_exporter,
            metric_export_interval_millis=(
                None if os.environ.get("OTEL_METRIC_EXPORT_INTERVAL") else METRIC_EXPORT_INTERVAL_MS
            ),
            service_name=None if os.environ.get("OTEL_SERVICE_NAME") else SERVICE_NAME,
            instrument=("sqlite3", "redis"),
            set_global=True,
        )
        stack.callback(telemetry.shutdown)
        advisor = QueryAdvisor(
            lambda: connect_untraced(data.db_path, read_only=True),
            system="sqlite",
            slow_ms=ADVISOR_SLOW_MS,
        )
        stack.callback(advisor.close)
        telemetry.span_processor.add_query_observer(advisor)
        started_serving = time.monotonic()
        wedding_dates = tuple(wedding.date for wedding in data.weddings)

        def capacity_plan() -> CapacityPlan | None:
            return _capacity_plan(
                telemetry.snapshot(), config, time.monotonic() - started_serving, wedding_dates
            )

        recommended_instances_gauge(telemetry.meter_provider, capacity_plan)
        breaches = BreachCounter()
        telemetry.span_processor.add_verdict_listener(breaches)
        choice = choose_cache(stack, workdir, telemetry.tracer_provider)
        screen.say(f"Cache: {choice.description}")
        screen.say(f"Telemetry: {destination.description}")
        app = create_app(
            db_path=data.db_path,
            cache=choice.cache,
            config=config,
            tracer_provider=telemetry.tracer_provider,
            meter_provider=telemetry.meter_provider,
        )
        server = stack.enter_context(BackgroundServer(app))
        screen.say(
            f"Serving the WedSync API on {server.url}; Saturday-peak load at "
            f"{rate_per_s:g} requests/s for {duration_s:g} s"
        )

        def snapshot() -> PerformanceSnapshot:
            return in_catalogue_order(telemetry.snapshot(), config)

        progress = LoadProgress(
            duration_s=duration_s,
            snapshot=snapshot,
            breaches=breaches,
            out=screen.out if plain else None,
        )
        load = drive(
            server.url,
            SaturdayPeak(data),
            duration_s=duration_s,
            rate_per_s=rate_per_s,
            on_complete=progress.on_complete,
            should_stop=lambda: server.stopping,
        )
        interrupted = screen.run_load(load, progress)
        server.stop()  # every request's span has ended, so the snapshot holds them all
        advisor.wait_idle(DRAIN_TIMEOUT_S)
        final = snapshot()
        screen.table(final, breaches.counts())
        for line in ["", *verdict_lines(final), "", *_advice_lines(advisor), ""]:
            screen.say(line)
        plan = capacity_plan()
        if plan is not None:
            screen.say(f"Capacity: {plan.now_reason}")
        screen.say(_cache_line(choice))
        screen.say(f"Telemetry went to: {destination.description}")
        if destination.viewer is not None:
            telemetry.force_flush()
            wait = not interrupted and sys.stdin.isatty()
            _show_viewer(destination.viewer, screen, requests=progress.completed, wait=wait)
    # Leaving the stack shut the telemetry down, which exported what was left.
    return 130 if interrupted else 0
