"""run(): the WedSync demo end to end, in one process, stopping by itself.

It builds the demo database in a temporary directory, picks a cache backend
(``REDIS_URL``, else a private embedded Redis, else the in-memory fallback),
installs the wedding-aware telemetry, serves the demo API with uvicorn on
127.0.0.1, drives a Saturday-peak load against it and shows what the
telemetry sees while it runs: a live `rich` view on a terminal, a few plain
lines anywhere else. It ends with the wedding-day verdict, the database
advice and where the telemetry went.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import importlib.util
import math
import os
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable, Coroutine, Mapping
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any, Final, Self, TextIO
from urllib.parse import urlsplit

import redis
import uvicorn
from opentelemetry.instrumentation.utils import suppress_instrumentation
from opentelemetry.sdk.metrics.export import MetricExporter
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExporter
from opentelemetry.trace import TracerProvider
from redis.backoff import NoBackoff
from redis.retry import Retry
from rich.console import Console, Group, RenderableType
from rich.live import Live
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.text import Text

import wedsync_otel
from wedsync_otel import attributes as attr
from wedsync_otel.cache import WeddingCache
from wedsync_otel.capacity import (
    CapacityAdvisor,
    CapacityPlan,
    measure_throughput,
    recommended_instances_gauge,
)
from wedsync_otel.config import WeddingConfig, load_config
from wedsync_otel.db import QueryAdvisor, Recommendation
from wedsync_otel.demo.app import create_app, demo_config
from wedsync_otel.demo.data import build, connect_untraced, today_for
from wedsync_otel.demo.load import (
    DEFAULT_RATE_PER_S,
    Completed,
    LoadSummary,
    SaturdayPeak,
    drive,
)
from wedsync_otel.demo.redis_server import EmbeddedRedis
from wedsync_otel.errors import RedisUnavailable
from wedsync_otel.exporters import (
    METRICS_FILE,
    TRACES_FILE,
    OtlpJsonFileMetricExporter,
    OtlpJsonFileSpanExporter,
)
from wedsync_otel.metrics import PerformanceSnapshot
from wedsync_otel.render import in_catalogue_order, plain_summary, summary_table, verdict_lines
from wedsync_otel.rules import Verdict
from wedsync_otel.viewer import Viewer, start_viewer

__all__ = ["DEFAULT_OUTPUT", "BackgroundServer", "BreachCounter", "run"]

DEFAULT_OUTPUT: Final = Path("wedsync-demo-output")
SERVICE_NAME: Final = "wedsync-demo"
LIVE_WINDOW: Final = "1m"
"""The live table shows the last minute: what the service is doing now."""
FINAL_WINDOW: Final = "1h"
"""The final table covers the whole run, the window readiness is judged on."""
REFRESH_PER_S: Final = 2.0
METRIC_EXPORT_INTERVAL_MS: Final = 5_000
"""Unless ``OTEL_METRIC_EXPORT_INTERVAL`` says otherwise: a few exports even in a short run."""
ADVISOR_SLOW_MS: Final = 10.0
"""The demo's tables are small, so its scans take milliseconds where production's take
seconds; the advisor's threshold is scaled down with them."""
SERVER_START_TIMEOUT_S: Final = 10.0
DRAIN_TIMEOUT_S: Final = 5.0
_PLAIN_PROGRESS_LINES: Final = 4
_OTLP_ENDPOINT_ENVS: Final = ("OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")


# --- serving ----------------------------------------------------------------------------------


class BackgroundServer:
    """uvicorn on 127.0.0.1 and a port the OS picks, in a daemon thread with its own loop.

    The load generator runs on the main thread's loop, so the server's
    latencies are not those of a loop shared with its own client.
    """

    def __init__(self, app: Any, *, host: str = "127.0.0.1") -> None:
        config = uvicorn.Config(
            app,
            host=host,
            port=0,
            log_level="warning",
            access_log=False,
            lifespan="off",
            timeout_graceful_shutdown=int(DRAIN_TIMEOUT_S),
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, name="wedsync-demo-server")
        self._thread.daemon = True
        self.host = host

    def start(self, *, timeout_s: float = SERVER_START_TIMEOUT_S) -> Self:
        """Start serving; return once the socket listens (uvicorn's ``started``)."""
        self._thread.start()
        deadline = time.monotonic() + timeout_s
        while not self._server.started:
            if not self._thread.is_alive():
                raise RuntimeError("uvicorn stopped before it was serving (see its log above)")
            if time.monotonic() >= deadline:
                self.stop()
                raise RuntimeError(f"uvicorn was not serving after {timeout_s:g} s")
            self._thread.join(0.01)  # wakes at once if the server thread dies
        return self

    @property
    def port(self) -> int:
        """The port the server listens on."""
        port: int = self._server.servers[0].sockets[0].getsockname()[1]
        return port

    @property
    def url(self) -> str:
        """``http://127.0.0.1:<port>``."""
        return f"http://{self.host}:{self.port}"

    @property
    def stopping(self) -> bool:
        """Whether the server was asked to stop (by `stop` or a signal it caught)."""
        return bool(self._server.should_exit)

    def stop(self) -> None:
        """Ask uvicorn to finish its requests and exit; wait for it (bounded)."""
        self._server.should_exit = True
        if self._thread.is_alive():
            self._thread.join(DRAIN_TIMEOUT_S + 5.0)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()


# --- what the run is made of -----------------------------------------------------------------


class BreachCounter:
    """Threshold breaches per endpoint, counted from the enriched spans as they end."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counts: Counter[str] = Counter()

    def __call__(self, span: ReadableSpan, verdict: Verdict) -> None:
        """A verdict listener (`WeddingSpanProcessor.add_verdict_listener`)."""
        attributes = span.attributes or {}
        if attributes.get(attr.WEDDING_THRESHOLD_BREACHED) is True:
            endpoint = str(attributes.get(attr.WEDDING_ENDPOINT, "other"))
            with self._lock:
                self._counts[endpoint] += 1

    def counts(self) -> dict[str, int]:
        """Breaches so far, by endpoint."""
        with self._lock:
            return dict(self._counts)


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


@dataclass(frozen=True, slots=True)
class Destination:
    """Where the telemetry goes: the exporters, or None for `configure`'s OTLP defaults."""

    span_exporter: SpanExporter | None
    metric_exporter: MetricExporter | None
    description: str
    viewer: Viewer | None = None


def _otlp_endpoint() -> str | None:
    return next((os.environ[name] for name in _OTLP_ENDPOINT_ENVS if os.environ.get(name)), None)


def choose_destination(output: Path) -> Destination:
    """The OTLP endpoint when one is set (and the exporter installed), else JSON files."""
    endpoint = _otlp_endpoint()
    if endpoint is not None:
        if importlib.util.find_spec("opentelemetry.exporter.otlp.proto.grpc") is not None:
            return Destination(None, None, f"OTLP endpoint {endpoint}")
        note = f"; OTLP endpoint {endpoint} is set, but the 'otlp' extra is not installed"
    else:
        note = ""
    output.mkdir(parents=True, exist_ok=True)
    if any((output / name).exists() for name in (TRACES_FILE, METRICS_FILE)):
        note += "; appended after an earlier run's"  # the exporters append, never truncate
    return Destination(
        OtlpJsonFileSpanExporter(output),
        OtlpJsonFileMetricExporter(output),
        f"{output.resolve()}/ ({TRACES_FILE}, {METRICS_FILE}{note})",
    )


def viewer_destination(stack: ExitStack, output: Path, say: Callable[[str], None]) -> Destination:
    """Traces to a Phoenix viewer behind rotel (closed with ``stack``); metrics to JSON files.

    Phoenix stores traces only, so the metrics still go to ``output``. Raises
    `wedsync_otel.viewer.ViewerUnavailable` without the ``viewer`` extra.
    """
    from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import (  # noqa: PLC0415
        OTLPSpanExporter,  # the otlp extra, part of the demo and viewer extras
    )

    say("Viewer: starting Arize Phoenix and rotel on 127.0.0.1 (this takes a few seconds)")
    viewer = stack.enter_context(start_viewer())
    output.mkdir(parents=True, exist_ok=True)
    return Destination(
        OTLPSpanExporter(endpoint=viewer.otlp_endpoint, insecure=True),
        OtlpJsonFileMetricExporter(output),
        f"traces to Phoenix at {viewer.ui_url} through rotel at {viewer.otlp_endpoint}; "
        f"metrics to {output.resolve()}/{METRICS_FILE}",
        viewer,
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


# --- showing it --------------------------------------------------------------------------------


class LoadProgress:
    """Counts finished requests; renders the live view, or prints a line each quarter."""

    def __init__(
        self,
        *,
        duration_s: float,
        snapshot: Callable[[], PerformanceSnapshot],
        breaches: BreachCounter,
        out: TextIO | None = None,
    ) -> None:
        self._duration_s = duration_s
        self._snapshot = snapshot
        self._breaches = breaches
        self._out = out
        self._started = time.monotonic()
        self.completed = 0
        self.server_errors = 0
        self.unanswered: Counter[str] = Counter()
        """Requests with no answer, by exception class."""
        self._next_line = 1
        self._progress = Progress(
            TextColumn("[bold]Saturday peak"),
            BarColumn(),
            TimeElapsedColumn(),
            TextColumn("{task.description}"),
        )
        self._task = self._progress.add_task("", total=duration_s)

    def elapsed_s(self) -> float:
        """Seconds since the load began."""
        return time.monotonic() - self._started

    def counts_text(self) -> str:
        """Requests so far, their rate, and the failures."""
        rate = self.completed / max(self.elapsed_s(), 1e-9)
        unanswered = ", ".join(f"{name} x{n}" for name, n in self.unanswered.items())
        return (
            f"{self.completed} requests ({rate:.1f}/s), {self.server_errors} 5xx, "
            f"{self.unanswered.total()} unanswered" + (f" ({unanswered})" if unanswered else "")
        )

    def on_complete(self, done: Completed) -> None:
        """The load generator's callback: count, and in plain mode print now and then."""
        self.completed += 1
        self.server_errors += done.status >= 500
        if done.status == 0:
            self.unanswered[done.error or "no answer"] += 1
        if self._out is not None and self.elapsed_s() >= (
            self._next_line * self._duration_s / _PLAIN_PROGRESS_LINES
        ):
            self._next_line += 1
            print(f"  {self.elapsed_s():5.1f} s  {self.counts_text()}", file=self._out)

    def renderable(self) -> RenderableType:
        """The live view: the progress bar, then the per-endpoint table of the last minute."""
        elapsed = min(self.elapsed_s(), self._duration_s)
        self._progress.update(self._task, completed=elapsed, description=self.counts_text())
        snapshot = self._snapshot()
        if not snapshot.endpoints:
            return Group(self._progress, Text("waiting for the first requests..."))
        table = summary_table(snapshot, window=LIVE_WINDOW, breaches=self._breaches.counts())
        return Group(self._progress, table)


class Screen:
    """Where the run is shown: a rich console with a live view, or plain lines."""

    def __init__(self, *, console: Console | None, out: TextIO) -> None:
        self.console = console
        self.out = out

    def say(self, line: str) -> None:
        """One line of text, shown as is."""
        if self.console is None:
            print(line, file=self.out, flush=True)
        else:
            self.console.print(line, markup=False, highlight=False)

    def run_load(self, load: Coroutine[Any, Any, LoadSummary], progress: LoadProgress) -> bool:
        """Run the load under the live view (or plain lines); True if Ctrl-C cut it short."""
        try:
            if self.console is None:
                asyncio.run(load)
            else:
                with Live(
                    get_renderable=progress.renderable,
                    console=self.console,
                    refresh_per_second=REFRESH_PER_S,
                    transient=True,  # the final table follows: the last frame would repeat it
                ):
                    asyncio.run(load)
        except KeyboardInterrupt:
            self.say("interrupted")
            return True
        self.say(f"Load done in {progress.elapsed_s():.1f} s: {progress.counts_text()}")
        return False

    def table(self, snapshot: PerformanceSnapshot, breaches: Mapping[str, int]) -> None:
        """The per-endpoint figures of the whole run."""
        self.say("")
        if self.console is None:
            self.say(f"Wedding performance, last {FINAL_WINDOW} (the whole run):")
            self.say(plain_summary(snapshot, window=FINAL_WINDOW, breaches=breaches))
        else:
            self.console.print(summary_table(snapshot, window=FINAL_WINDOW, breaches=breaches))


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


# --- the run -------------------------------------------------------------------------------------


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
