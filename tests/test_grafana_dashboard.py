"""The Grafana dashboard: generated, fresh, and every query answered by a real Prometheus.

The demo app serves real traffic with wedsync-otel installed; its metrics reach Debian's
Prometheus 2.42 (``--enable-feature=native-histograms``) through `PrometheusBridge`, which renders
the exponential histograms as native ones in the protobuf scrape format, and Prometheus evaluates
the committed recording rules. Without ``prometheus`` the server test skips, or fails under CI=true.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import http.server
import math
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar

import pytest
import redis
from opentelemetry.instrumentation.sqlite3 import SQLite3Instrumentor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

import wedsync_otel
from prometheus_support import Prometheus, running_prometheus
from test_prometheus_rules import RULES_FILE
from wedsync_otel.cache import WeddingCache
from wedsync_otel.capacity import CapacityAdvisor, recommended_instances_gauge
from wedsync_otel.config import WeddingConfig, load_config
from wedsync_otel.demo.app import PaymentGateway, create_app
from wedsync_otel.demo.data import build, today_for
from wedsync_otel.demo.load import SaturdayPeak, drive
from wedsync_otel.demo.runner import BackgroundServer
from wedsync_otel.instrumentation.redis_hooks import instrument_redis, uninstrument_redis
from wedsync_otel.metrics.prometheus_bridge import CONTENT_TYPE, PrometheusBridge, native_buckets
from wedsync_otel.ops import grafana

ROOT = Path(__file__).resolve().parent.parent
DASHBOARD_FILE = ROOT / "collector-config" / "grafana" / "wedsync-dashboard.json"
DEADLINE_S = 60.0
ROUNDS = 4
REQUESTS_PER_ROUND = 50
DOCUMENT = grafana.dashboard(WeddingConfig.default())
TARGETS = grafana.target_expressions(DOCUMENT)


# --- the generated file --------------------------------------------------------------------


def test_committed_dashboard_matches_the_default_config() -> None:
    """collector-config/grafana/wedsync-dashboard.json is a fresh generation from the defaults."""
    assert DASHBOARD_FILE.read_text() == grafana.render_dashboard(WeddingConfig.default()), (
        f"{DASHBOARD_FILE} is stale: regenerate it with `wedsync-otel dashboard --out "
        f"{DASHBOARD_FILE.relative_to(ROOT)}`"
    )


def test_every_panel_filters_by_the_endpoint_variable_or_needs_no_filter() -> None:
    """Each endpoint-level query honours $endpoint; only whole-API figures go without it."""
    unfiltered = [title for title, expr in TARGETS if "$endpoint" not in expr]
    assert unfiltered == ["Wedding-day readiness/A", "Scaling recommendation/A"]


def test_a_renamed_recording_rule_stops_the_generation(monkeypatch: pytest.MonkeyPatch) -> None:
    """A recorded name the rules no longer produce is refused rather than shipped."""
    monkeypatch.setitem(grafana.RECORDED, "health", "wedding_endpoint:wedding_health:gone")
    with pytest.raises(ValueError, match="wedding_health:gone"):
        grafana.dashboard(WeddingConfig.default())


# --- the bridge's bucket mapping -----------------------------------------------------------


@pytest.mark.parametrize(
    ("scale", "offset", "counts", "expected"),
    [
        (0, 5, [3, 0, 2], (0, {6: 3, 8: 2})),  # OTel (32, 64] is Prometheus bucket 6
        (3, -2, [1, 1], (3, {-1: 1, 0: 1})),
        (10, 0, [1, 1, 1, 1, 1], (8, {1: 4, 2: 1})),  # four scale-10 buckets per scale-8 one
        (10, -1, [1, 1], (8, {0: 1, 1: 1})),  # floor, not truncation, below zero
    ],
)
def test_exponential_buckets_map_to_native_buckets(
    scale: int, offset: int, counts: list[int], expected: tuple[int, dict[int, int]]
) -> None:
    """OTel bucket i is Prometheus bucket i + 1; scales above 8 merge down to schema 8."""
    assert native_buckets(scale, offset, counts) == expected


# --- a real Prometheus scraping the demo ---------------------------------------------------


class _Target(http.server.BaseHTTPRequestHandler):
    """Serves the bridge's latest export and counts the scrapes."""

    bridge: ClassVar[PrometheusBridge]
    scraped: ClassVar[threading.Condition] = threading.Condition()
    scrapes: ClassVar[int] = 0

    def do_GET(self) -> None:
        body = self.bridge.scrape()
        self.send_response(200)
        self.send_header("Content-Type", CONTENT_TYPE)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
        with self.scraped:
            type(self).scrapes += 1
            self.scraped.notify_all()

    def log_message(self, format: str, *args: Any) -> None:
        return None


def _wait_for_scrape(deadline: float) -> None:
    """Block until Prometheus has scraped the target once more than now."""
    with _Target.scraped:
        seen = _Target.scrapes
        done = _Target.scraped.wait_for(
            lambda: _Target.scrapes > seen, timeout=max(deadline - time.monotonic(), 0.0)
        )
    assert done, "Prometheus stopped scraping the bridge"


def _query(prometheus: Prometheus, expr: str) -> list[dict[str, Any]]:
    return prometheus.query(expr.replace("$endpoint", grafana.ENDPOINT_ALL))


def _has_data(result: list[dict[str, Any]]) -> bool:
    """At least one series with a number (a NaN shows as no data in Grafana)."""
    return any(math.isfinite(float(series["value"][1])) for series in result)


@pytest.fixture(scope="module")
def answers(
    tmp_path_factory: pytest.TempPathFactory, redis_url: str
) -> Iterator[dict[str, list[dict[str, Any]]]]:
    """Each dashboard query's result once Prometheus has recorded the demo's traffic."""
    root = tmp_path_factory.mktemp("grafana")
    config = load_config()
    data = build(root / "wedsync.db", today=today_for(config))
    bridge = PrometheusBridge()
    telemetry = wedsync_otel.configure(
        config=config,
        span_exporter=InMemorySpanExporter(),
        metric_exporter=bridge,
        metric_export_interval_millis=3_600_000,
        set_global=False,
    )
    advisor = CapacityAdvisor(config=config, base_rps=40.0, instance_rps=25.0)
    weddings = tuple(wedding.date for wedding in data.weddings)
    recommended_instances_gauge(
        telemetry.meter_provider, lambda: advisor.plan(dt.datetime.now(dt.UTC), weddings)
    )
    SQLite3Instrumentor().instrument(tracer_provider=telemetry.tracer_provider)
    instrument_redis(tracer_provider=telemetry.tracer_provider)
    client = redis.Redis.from_url(redis_url, socket_timeout=2.0)
    app = create_app(
        db_path=data.db_path,
        cache=WeddingCache(client, tracer_provider=telemetry.tracer_provider),
        config=config,
        tracer_provider=telemetry.tracer_provider,
        meter_provider=telemetry.meter_provider,
        gateway=PaymentGateway(median_ms=1.0, failure_rate=0.0),
    )
    _Target.bridge = bridge
    target = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Target)
    threading.Thread(target=target.serve_forever, daemon=True).start()
    deadline = time.monotonic() + DEADLINE_S
    try:
        with running_prometheus(
            root,
            target_port=target.server_port,
            job="wedsync-demo",
            deadline=deadline,
            rule_files=(RULES_FILE,),
        ) as prometheus:
            with BackgroundServer(app) as server:
                for _ in range(ROUNDS):  # rate() needs samples that grow between scrapes
                    asyncio.run(
                        drive(
                            server.url,
                            SaturdayPeak(data),
                            duration_s=30.0,
                            rate_per_s=500.0,
                            max_requests=REQUESTS_PER_ROUND,
                        )
                    )
                    assert telemetry.force_flush()
                    _wait_for_scrape(deadline)
            results: dict[str, list[dict[str, Any]]] = {}
            while True:
                results = {title: _query(prometheus, expr) for title, expr in TARGETS}
                if all(_has_data(result) for result in results.values()):
                    break
                if time.monotonic() > deadline or not prometheus.alive():
                    break  # the tests say which queries came back empty
                time.sleep(0.2)  # polling Prometheus' API until the rules have run, bounded
            yield results
    finally:
        target.shutdown()
        target.server_close()
        wedsync_otel.set_wedding_resolver(None)
        uninstrument_redis()
        SQLite3Instrumentor().uninstrument()
        telemetry.shutdown()
        client.close()


@pytest.mark.parametrize(("title", "expr"), TARGETS, ids=[title for title, _ in TARGETS])
def test_dashboard_query_returns_data(
    answers: dict[str, list[dict[str, Any]]], title: str, expr: str
) -> None:
    """The panel query, with $endpoint as All, returns a series with a number from the demo."""
    assert _has_data(answers[title]), f"{title}: {expr} returned {answers[title]}"
