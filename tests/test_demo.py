"""The demo: its data, its API behind a live uvicorn with real Redis, and run() end to end."""

from __future__ import annotations

import asyncio
import datetime as dt
import io
import os
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import httpx
import pytest
import redis
from opentelemetry.instrumentation.sqlite3 import SQLite3Instrumentor
from opentelemetry.sdk.metrics.export import ConsoleMetricExporter
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExportResult
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

import wedsync_otel
from servers import ServerUnavailable, require
from wedsync_otel import WeddingTelemetry
from wedsync_otel import attributes as attr
from wedsync_otel.cache import WeddingCache
from wedsync_otel.calendar import Band
from wedsync_otel.config import load_config
from wedsync_otel.demo.app import PaymentGateway, create_app
from wedsync_otel.demo.data import DemoData, WeddingRef, build, today_for
from wedsync_otel.demo.load import Completed, SaturdayPeak, drive
from wedsync_otel.demo.redis_server import EmbeddedRedis
from wedsync_otel.demo.serving import BackgroundServer
from wedsync_otel.errors import RedisUnavailable
from wedsync_otel.export_tuning import ExportTuning
from wedsync_otel.exporters import read_spans
from wedsync_otel.instrumentation.redis_hooks import instrument_redis, uninstrument_redis

TODAY = dt.date(2026, 6, 20)
SPAN_TIMEOUT_S = 60.0
"""The server span ends just after the response is sent: tests wait for it, up to this."""
EXPORT_DELAY_MILLIS = 50
"""The batch processor exports this soon after a span ends, so waits end soon after it does."""
ENDPOINTS = (
    "venue_availability",
    "supplier_profiles",
    "couple_timeline",
    "payments",
    "guest_lists",
    "rsvp",
)


_T = TypeVar("_T")


class NotifyingSpanExporter(InMemorySpanExporter):
    """The SDK's in-memory exporter, waking whoever waits for a span each time a batch arrives."""

    def __init__(self) -> None:
        super().__init__()
        self._arrived = threading.Condition()

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        result = super().export(spans)
        with self._arrived:
            self._arrived.notify_all()
        return result

    def wait_for(self, ready: Callable[[], _T], *, timeout_s: float) -> _T:
        """``ready()`` once it is truthy, re-checked whenever spans arrive; falsy on timeout."""
        with self._arrived:
            return self._arrived.wait_for(ready, timeout_s)


@dataclass(frozen=True)
class Demo:
    """The demo API served on loopback, with the telemetry it reports to."""

    data: DemoData
    telemetry: WeddingTelemetry
    spans: NotifyingSpanExporter
    url: str

    def wedding(self, band: Band) -> WeddingRef:
        return self.data.by_band(band)[0]

    def server_span(self, route: str, wedding_id: str) -> ReadableSpan:
        """The latest server span of ``route`` for ``wedding_id``, once it has been exported."""

        def matching() -> list[ReadableSpan]:
            return [
                span
                for span in self.spans.get_finished_spans()
                if span.kind is SpanKind.SERVER
                and (span.attributes or {}).get("http.route") == route
                and (span.attributes or {}).get(attr.WEDDING_ID) == wedding_id
            ]

        found = self.spans.wait_for(matching, timeout_s=SPAN_TIMEOUT_S)
        assert found, f"no server span for {route} {wedding_id}"
        return found[-1]


def count(attributes: Mapping[str, object], key: str) -> int:
    """An integer attribute of a span, asserted to be one."""
    value = attributes[key]
    assert isinstance(value, int)
    return value


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory, redis_url: str) -> Iterator[Demo]:
    """The demo app on a free loopback port, its spans in memory, its cache on real Redis."""
    today = today_for(load_config())  # the day the processor judges proximity from
    data = build(tmp_path_factory.mktemp("demo") / "wedsync.db", today=today)
    spans = NotifyingSpanExporter()
    telemetry = wedsync_otel.configure(
        span_exporter=spans,
        metric_exporter=ConsoleMetricExporter(out=io.StringIO()),
        metric_export_interval_millis=3_600_000,
        set_global=False,
        export_tuning=ExportTuning(schedule_delay_millis=EXPORT_DELAY_MILLIS),
    )
    # Both contrib instrumentations are process-wide: on for this provider, off afterwards.
    SQLite3Instrumentor().instrument(tracer_provider=telemetry.tracer_provider)
    instrument_redis(tracer_provider=telemetry.tracer_provider)
    client = redis.Redis.from_url(redis_url, socket_timeout=2.0)
    app = create_app(
        db_path=data.db_path,
        cache=WeddingCache(client, tracer_provider=telemetry.tracer_provider),
        tracer_provider=telemetry.tracer_provider,
        meter_provider=telemetry.meter_provider,
        gateway=PaymentGateway(median_ms=1.0, failure_rate=0.0),
    )
    try:
        with BackgroundServer(app) as server:
            yield Demo(data, telemetry, spans, server.url)
    finally:
        wedsync_otel.set_wedding_resolver(None)
        uninstrument_redis()
        SQLite3Instrumentor().uninstrument()
        telemetry.shutdown()
        client.close()


@pytest.fixture
def http(demo: Demo) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=demo.url, timeout=10.0) as client:
        yield client


# --- data -----------------------------------------------------------------------------------


def test_build_is_deterministic_and_covers_every_band(tmp_path: Path) -> None:
    """The same seed and day give the same weddings, with some in every proximity band."""
    first = build(tmp_path / "one.db", today=TODAY)
    second = build(tmp_path / "two.db", today=TODAY)
    assert first.weddings == second.weddings
    assert {w.band for w in first.weddings} == set(Band) - {Band.UNKNOWN}
    assert first.weddings[0].date == TODAY  # the showcase wedding is today


def test_build_refuses_to_overwrite(tmp_path: Path) -> None:
    """An existing file is never rebuilt over."""
    (tmp_path / "taken.db").write_bytes(b"")
    with pytest.raises(FileExistsError):
        build(tmp_path / "taken.db", today=TODAY)


# --- the API and its spans ------------------------------------------------------------------


def test_timeline_span_carries_route_template_wedding_and_rollups(
    demo: Demo, http: httpx.Client
) -> None:
    """A couple's timeline: route template, endpoint, wedding from the path, DB and cache work."""
    wedding = demo.wedding(Band.FINAL_WEEK)
    response = http.get(f"/api/couples/{wedding.couple_id}/timeline")
    assert response.status_code == 200
    assert response.json()["wedding_id"] == wedding.wedding_id

    span = demo.server_span("/api/couples/{couple_id}/timeline", wedding.couple_id)
    attributes = span.attributes or {}
    assert attributes[attr.WEDDING_ENDPOINT] == "couple_timeline"
    assert attributes[attr.WEDDING_PROXIMITY] == Band.FINAL_WEEK.value
    assert attributes[attr.WEDDING_DATE] == wedding.date.isoformat()
    assert count(attributes, attr.ROLLUP_DB_QUERIES) > 0
    assert (
        count(attributes, attr.ROLLUP_CACHE_HITS) + count(attributes, attr.ROLLUP_CACHE_MISSES) > 0
    )


def test_second_profile_read_is_a_cache_hit(demo: Demo, http: httpx.Client) -> None:
    """A supplier profile read twice is served from Redis the second time, with no query."""
    wedding = demo.wedding(Band.PLANNING)
    supplier = demo.data.supplier_ids[-1]
    path = f"/api/suppliers/{supplier}/profile?wedding_id={wedding.wedding_id}"
    assert http.get(path).status_code == 200
    demo.server_span("/api/suppliers/{supplier_id}/profile", wedding.wedding_id)
    demo.spans.clear()

    assert http.get(path).json()["id"] == supplier
    attributes = demo.server_span(
        "/api/suppliers/{supplier_id}/profile", wedding.wedding_id
    ).attributes
    assert attributes is not None
    assert attributes[attr.WEDDING_ENDPOINT] == "supplier_profiles"
    assert attributes[attr.WEDDING_PROXIMITY] == Band.PLANNING.value
    assert attributes[attr.ROLLUP_CACHE_HITS] == 1
    assert attributes[attr.ROLLUP_DB_QUERIES] == 0


def test_guest_list_is_flagged_as_n_plus_one(demo: Demo, http: httpx.Client) -> None:
    """The guest list runs one RSVP query per guest, and its span says so."""
    wedding = demo.wedding(Band.WEDDING_DAY)
    response = http.get(f"/api/weddings/{wedding.wedding_id}/guests")
    assert len(response.json()["guests"]) == wedding.guest_count

    span = demo.server_span("/api/weddings/{wedding_id}/guests", wedding.wedding_id)
    attributes = span.attributes or {}
    assert attributes[attr.WEDDING_ENDPOINT] == "guest_lists"
    assert attributes[attr.WEDDING_PROXIMITY] == Band.WEDDING_DAY.value
    assert count(attributes, attr.ROLLUP_DB_QUERIES) > wedding.guest_count
    assert isinstance(attributes[attr.DB_N_PLUS_ONE], str)
    assert attr.DB_N_PLUS_ONE in [event.name for event in span.events]


def test_rsvp_and_payment_take_their_wedding_from_the_handler(
    demo: Demo, http: httpx.Client
) -> None:
    """RSVP and payment paths name no wedding: the handlers set it, and the spans carry it."""
    wedding = demo.wedding(Band.FINAL_MONTH)
    answer = {"guest_id": wedding.first_guest_id, "status": "accepted", "meal": "fish"}
    assert http.post(f"/api/rsvp/{wedding.wedding_id}", json=answer).status_code == 200
    charge = {"wedding_id": wedding.wedding_id, "supplier_id": "s-001", "amount_pence": 25_000}
    assert http.post("/api/payments/charge", json=charge).status_code == 201

    for route, endpoint in (
        ("/api/rsvp/{wedding_id}", "rsvp"),
        ("/api/payments/charge", "payments"),
    ):
        attributes = demo.server_span(route, wedding.wedding_id).attributes or {}
        assert attributes[attr.WEDDING_ENDPOINT] == endpoint
        assert attributes[attr.WEDDING_PROXIMITY] == Band.FINAL_MONTH.value
        assert count(attributes, attr.ROLLUP_DB_QUERIES) > 0


def test_unknown_ids_and_bad_input_are_client_errors(http: httpx.Client) -> None:
    """Unknown weddings are 404 and malformed bodies 400, never a server error."""
    assert http.get("/api/weddings/w-9999/guests").status_code == 404
    assert http.get("/api/venues/v-001/availability?date=tomorrow").status_code == 400
    assert http.post("/api/rsvp/w-0001", json={"status": "maybe"}).status_code == 400
    assert http.post("/api/payments/charge", content=b"not json").status_code == 400


def test_load_reaches_every_endpoint_and_the_snapshot_counts_them(demo: Demo) -> None:
    """A short Saturday-peak load stops at its bound, and the snapshot has every endpoint."""
    done: list[Completed] = []
    summary = asyncio.run(
        drive(
            demo.url,
            SaturdayPeak(demo.data),
            duration_s=30.0,
            rate_per_s=200.0,
            max_requests=60,
            on_complete=done.append,
        )
    )
    assert summary.sent == summary.completed == len(done) == 60
    assert summary.transport_errors == summary.server_errors == 0
    assert set(summary.by_endpoint) == set(ENDPOINTS)

    def counted() -> dict[str, int]:
        endpoints = demo.telemetry.snapshot().endpoints
        return {name: e.windows["1h"].count for name, e in endpoints.items() if "1h" in e.windows}

    def all_counted() -> bool:
        # A request is measured as its span ends, before the span is queued for export.
        counts = counted()
        return all(counts.get(name, 0) >= summary.by_endpoint[name] for name in ENDPOINTS)

    assert demo.spans.wait_for(all_counted, timeout_s=SPAN_TIMEOUT_S), (
        f"snapshot counts {counted()} < {summary.by_endpoint}"
    )


# --- the embedded Redis ---------------------------------------------------------------------


def test_embedded_redis_answers_on_loopback_and_cleans_up() -> None:
    """The private Redis answers PING on 127.0.0.1, keeps nothing, and close() removes it."""
    try:
        server = EmbeddedRedis.start()
    except RedisUnavailable as exc:
        require("redis-server", ServerUnavailable(str(exc)))
    with server, redis.Redis.from_url(server.url) as client:
        assert client.ping()
        assert client.config_get("save")["save"] == ""
        assert server.url.startswith("redis://127.0.0.1:")
    assert not server.running
    assert not server.root.exists()


# --- run() end to end -----------------------------------------------------------------------


def test_run_prints_figures_and_verdict_and_writes_traces(tmp_path: Path) -> None:
    """run() in a fresh process exits 0, prints the table and verdict, and leaves traces.jsonl."""
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("OTEL_EXPORTER_OTLP", "WEDSYNC_OTEL_"))
    }
    code = (
        "import sys; from pathlib import Path; from wedsync_otel.demo import run; "
        f"sys.exit(run(duration_s=3, output=Path({str(tmp_path)!r}), plain=True))"
    )
    finished = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )
    assert finished.returncode == 0, finished.stderr[-3000:]
    out = finished.stdout
    assert "p95 ms" in out
    assert "Wedding-day readiness:" in out
    for endpoint in ENDPOINTS:
        assert endpoint in out
    assert f"Telemetry went to: {tmp_path.resolve()}" in out
    spans = read_spans(tmp_path / "traces.jsonl")
    endpoints = {span.attributes.get(attr.WEDDING_ENDPOINT) for span in spans}
    assert set(ENDPOINTS) <= endpoints
