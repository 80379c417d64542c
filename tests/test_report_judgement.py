"""``report`` without ``--config``: the spans' own wedding.* attributes judge, not a catalogue."""

from __future__ import annotations

import datetime as dt
import json
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.trace import SpanKind, StatusCode

import wedsync_otel
from helpers import TUESDAY, FakeClock
from test_cli import catalogue_toml, run_cli_all, run_main
from wedsync_otel import PerformanceSnapshot, WeddingConfig
from wedsync_otel import attributes as attr
from wedsync_otel.catalogue import EndpointSpec
from wedsync_otel.cli.aggregate import MAX_ENDPOINTS, SpanAggregator
from wedsync_otel.cli.report import performance_report
from wedsync_otel.config import DEFAULT_ENDPOINTS
from wedsync_otel.exporters import OtlpJsonFileSpanExporter, SpanRecord, read_spans

_NS_PER_MS = 1_000_000
_START_NS = int(TUESDAY.timestamp() * 1e9)

# A third-party app's catalogue: nothing the built-in WedSync catalogue knows.
APP_CONFIG = WeddingConfig(
    endpoints=(
        EndpointSpec(name="items", patterns=("/items/**",), threshold_ms=80.0, critical=True),
        EndpointSpec(name="search", patterns=("/search",), threshold_ms=300.0),
    )
)
# (route, requests, duration ms, wedding today?); one request a second, in this order.
TRAFFIC = [
    ("/items/{item_id}", 120, 20.0, False),
    ("/items/{item_id}", 30, 35.0, True),  # wedding-day traffic: threshold 80 * 0.5 = 40 ms
    ("/search", 50, 100.0, False),
    ("/healthz", 5, 2.0, False),
]
UNENRICHED = 7
"""SERVER spans exported straight to the file, never seen by the processor."""


@dataclass(frozen=True)
class Recorded:
    """A directory of OTLP JSON written by the project's exporter, and the app's live snapshot."""

    directory: Path
    snapshot: PerformanceSnapshot


def _write_unenriched(directory: Path, count: int) -> None:
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(OtlpJsonFileSpanExporter(directory)))
    tracer = provider.get_tracer("no-wedding-processor")
    for index in range(count):
        start = _START_NS + index * 1_000 * _NS_PER_MS
        span = tracer.start_span("GET /legacy", kind=SpanKind.SERVER, start_time=start)
        span.end(end_time=start + 5 * _NS_PER_MS)
    provider.shutdown()


@pytest.fixture(scope="module")
def recorded(tmp_path_factory: pytest.TempPathFactory) -> Recorded:
    """TRAFFIC through configure(config=APP_CONFIG) into files, plus spans no processor saw."""
    directory = tmp_path_factory.mktemp("third-party")
    clock = FakeClock(TUESDAY)
    telemetry = wedsync_otel.configure(
        config=APP_CONFIG,
        set_global=False,
        span_exporter=OtlpJsonFileSpanExporter(directory),
        metric_export_interval_millis=3_600_000,
        clock=clock,
    )
    tracer = telemetry.tracer_provider.get_tracer("third-party")
    requests = [(route, ms, today) for route, count, ms, today in TRAFFIC for _ in range(count)]
    newest_end_ns = 0
    for second, (route, duration_ms, today) in enumerate(requests):
        start = _START_NS + second * 1_000 * _NS_PER_MS
        attributes: dict[str, str | int] = {"http.route": route, "http.response.status_code": 200}
        if today:
            attributes[attr.WEDDING_DATE] = TUESDAY.date().isoformat()
        span = tracer.start_span(
            f"GET {route}", kind=SpanKind.SERVER, start_time=start, attributes=attributes
        )
        end = start + int(duration_ms * _NS_PER_MS)
        child = tracer.start_span(
            "render", context=trace.set_span_in_context(span), start_time=start
        )
        child.end(end_time=end)
        span.end(end_time=end)
        newest_end_ns = max(newest_end_ns, end)
    clock.now = dt.datetime.fromtimestamp(newest_end_ns / 1e9, tz=dt.UTC)
    snapshot = telemetry.snapshot()
    telemetry.shutdown()
    _write_unenriched(directory, UNENRICHED)
    return Recorded(directory=directory, snapshot=snapshot)


@pytest.fixture(scope="module")
def runs(
    recorded: Recorded, tmp_path_factory: pytest.TempPathFactory
) -> dict[str, subprocess.CompletedProcess[str]]:
    """``report DIR --json`` as judged by the spans and by the built-in catalogue; plain too."""
    catalogue = tmp_path_factory.mktemp("catalogue") / "wedsync.toml"
    catalogue.write_text(catalogue_toml(DEFAULT_ENDPOINTS), encoding="utf-8")
    spans, by_catalogue, plain = run_cli_all(
        ["report", recorded.directory, "--json"],
        ["report", recorded.directory, "--json", "--config", catalogue],
        ["report", recorded.directory],
    )
    return {"spans": spans, "catalogue": by_catalogue, "plain": plain}


def _json(result: subprocess.CompletedProcess[str]) -> dict[str, object]:
    assert result.returncode == 0, result.stderr
    data: dict[str, object] = json.loads(result.stdout)
    return data


def _endpoints(result: subprocess.CompletedProcess[str]) -> dict[str, dict[str, object]]:
    endpoints = _json(result)["endpoints"]
    assert isinstance(endpoints, dict)
    return endpoints


def test_the_endpoints_are_those_in_the_spans(
    recorded: Recorded, runs: dict[str, subprocess.CompletedProcess[str]]
) -> None:
    """The app's own endpoints, by name, ``other`` last; the ones its live snapshot shows."""
    endpoints = _endpoints(runs["spans"])
    assert list(endpoints) == ["items", "search", "other"]
    assert set(endpoints) == set(recorded.snapshot.endpoints)
    assert _json(runs["spans"])["judged_by"] == "spans"


def test_thresholds_and_critical_flags_come_from_the_spans(
    runs: dict[str, subprocess.CompletedProcess[str]],
) -> None:
    """items: critical, 80 ms, 40 ms on its 30 wedding-day requests; search: not critical."""
    endpoints = _endpoints(runs["spans"])
    items, search = endpoints["items"], endpoints["search"]
    assert items["critical"] is True
    assert items["threshold_ms"] == 80.0
    assert items["wedding_day_threshold_ms"] == 40.0
    assert items["wedding_day_traffic"] == 30
    assert items["thresholds_ms_by_band"] == {"unknown": 80.0, "wedding_day": 40.0}
    assert search["critical"] is False
    assert search["threshold_ms"] == 300.0
    assert search["readiness"] is None


def test_readiness_is_judged_against_the_spans_wedding_day_threshold(
    runs: dict[str, subprocess.CompletedProcess[str]],
) -> None:
    """items' p95 of 35 ms is within 20% of the 40 ms its wedding-day spans carried: at risk."""
    report = _json(runs["spans"])
    assert report["readiness"] == "at_risk"
    reasons = report["reasons"]
    assert isinstance(reasons, list)
    assert len(reasons) == 1
    assert reasons[0].startswith("items: p95 35.")
    assert "wedding-day threshold 40 ms" in reasons[0]


def test_figures_equal_the_apps_live_snapshot_with_no_config_given(
    recorded: Recorded, runs: dict[str, subprocess.CompletedProcess[str]]
) -> None:
    """Without the app's config, the report still says what the app's live metrics said."""
    endpoints = _endpoints(runs["spans"])
    assert _json(runs["spans"])["readiness"] == recorded.snapshot.readiness
    for name, live in recorded.snapshot.endpoints.items():
        figures, stats = endpoints[name], live.windows["1h"]
        for key in ("p50_ms", "p95_ms", "p99_ms", "apdex", "health", "error_rate"):
            assert figures[key] == pytest.approx(getattr(stats, key)), (name, key)
        assert figures["threshold_ms"] == live.threshold_ms, name
        assert figures["critical"] == live.critical, name
        assert figures["readiness"] == (live.readiness if live.critical else None), name
    # Seen on its 30 wedding-day requests; the others had none, so theirs is what they carried.
    assert endpoints["items"]["wedding_day_threshold_ms"] == 40.0
    assert recorded.snapshot.endpoints["items"].wedding_day_threshold_ms == 40.0


def test_request_spans_without_wedding_attributes_are_counted_and_noted(
    runs: dict[str, subprocess.CompletedProcess[str]],
) -> None:
    """The 7 SERVER spans no processor saw are counted; the children of requests are not."""
    report = _json(runs["spans"])
    requests = sum(count for _route, count, _ms, _today in TRAFFIC)
    assert report["requests"] == requests
    assert report["spans"] == 2 * requests + UNENRICHED
    assert report["unenriched_request_spans"] == UNENRICHED
    notes = report["notes"]
    assert isinstance(notes, list)
    assert any(note.startswith(f"{UNENRICHED} request spans (SERVER or root)") for note in notes)
    plain = runs["plain"]
    assert plain.returncode == 0, plain.stderr
    assert f"note: {UNENRICHED} request spans" in plain.stdout


def test_with_config_the_catalogue_judges_instead(
    runs: dict[str, subprocess.CompletedProcess[str]],
) -> None:
    """The built-in catalogue: items is not critical there, its critical endpoints are judged."""
    report = _json(runs["catalogue"])
    assert report["judged_by"] == "catalogue"
    endpoints = _endpoints(runs["catalogue"])
    assert endpoints["items"]["critical"] is False
    assert endpoints["items"]["readiness"] is None
    assert endpoints["payments"]["requests"] == 0
    assert report["readiness"] == "at_risk"  # four critical endpoints with no requests at all


def test_a_file_of_unenriched_spans_is_one_error_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Only spans no processor saw: exit 1, one line counting them and saying what is needed."""
    _write_unenriched(tmp_path, 4)
    code, out, err = run_main(capsys, "report", tmp_path)
    assert code == 1
    assert out == ""
    assert err.splitlines() == [
        f"error: {tmp_path}: 4 spans, none with wedding.* figures (4 of them request spans) "
        "(the report reads traces written behind WeddingSpanProcessor)"
    ]


# --- the aggregator on spans the processor would not write ----------------------------------


def _span(end_ns: int, **attributes: object) -> SpanRecord:
    return SpanRecord(
        name="GET",
        kind=SpanKind.SERVER,
        trace_id="0" * 32,
        span_id="0" * 16,
        parent_span_id=None,
        start_ns=end_ns - 10 * _NS_PER_MS,
        end_ns=end_ns,
        status_code=StatusCode.UNSET,
        attributes=attributes,  # type: ignore[arg-type]
        resource={},
        scope="tests",
    )


def _enriched(end_ns: int, **extra: object) -> SpanRecord:
    attributes: dict[str, object] = {
        attr.WEDDING_ENDPOINT: "items",
        attr.WEDDING_DURATION_MS: 10.0,
        attr.WEDDING_THRESHOLD_MS: 80.0,
        attr.WEDDING_APDEX: "satisfied",
        attr.WEDDING_PROXIMITY: "unknown",
        attr.WEDDING_CRITICAL: True,
    }
    attributes.update(extra)
    return _span(end_ns, **{key: value for key, value in attributes.items() if value is not None})


def test_spans_without_a_threshold_are_judged_by_the_default_and_noted() -> None:
    """The span limits can drop wedding.threshold_ms: the default 200 ms stands in, said so."""
    spans = [
        _enriched(_START_NS + i * _NS_PER_MS, **{attr.WEDDING_THRESHOLD_MS: None}) for i in range(5)
    ]
    report = performance_report(spans)
    assert report is not None
    assert report.snapshot.endpoints["items"].threshold_ms == 200.0
    assert report.judgements["items"].from_spans is False
    assert any("no wedding.threshold_ms on the spans of items (200 ms)" in n for n in report.notes)
    assert any(n == "5 requests carry no wedding.threshold_ms" for n in report.notes)


def test_a_saturday_span_of_a_critical_endpoint_is_wedding_day_traffic() -> None:
    """Saturday mode gives critical endpoints the wedding-day threshold: readiness uses it."""
    spans = [_enriched(_START_NS + i * _NS_PER_MS) for i in range(10)]
    spans += [
        _enriched(
            _START_NS + i * _NS_PER_MS,
            **{attr.WEDDING_SATURDAY: True, attr.WEDDING_THRESHOLD_MS: 40.0},
        )
        for i in range(3)
    ]
    report = performance_report(spans)
    assert report is not None
    judged = report.judgements["items"]
    assert (judged.threshold_ms, judged.wedding_day_threshold_ms) == (80.0, 40.0)
    assert judged.wedding_day_traffic == 3
    assert report.snapshot.endpoints["items"].wedding_day_threshold_ms == 40.0


def test_odd_bands_and_apdex_values_are_read_safely() -> None:
    """An unknown band counts as ``unknown``; a missing Apdex class is judged from the threshold."""
    spans = [
        _enriched(_START_NS, **{attr.WEDDING_PROXIMITY: "next_tuesday", attr.WEDDING_APDEX: None}),
        _enriched(_START_NS + 1, **{attr.WEDDING_DURATION_MS: 500.0, attr.WEDDING_APDEX: 7}),
    ]
    report = performance_report(spans)
    assert report is not None
    items = report.snapshot.endpoints["items"]
    assert set(items.bands) == {"unknown"}
    assert items.windows["1h"].apdex == pytest.approx(0.5)  # satisfied, frustrated (500 > 4 x 80)


def test_endpoints_beyond_the_cap_are_counted_not_kept() -> None:
    """A file naming more endpoints than MAX_ENDPOINTS keeps the first ones and counts the rest."""
    aggregator = SpanAggregator()
    for index in range(MAX_ENDPOINTS + 5):
        aggregator.add(_enriched(_START_NS + index, **{attr.WEDDING_ENDPOINT: f"e{index}"}))
    tally = aggregator.tally()
    assert (tally.requests, tally.overflow) == (MAX_ENDPOINTS, 5)


def test_unusable_durations_and_children_are_told_apart() -> None:
    """An absurd duration is unusable; a child span without wedding.* is not a request left out."""
    aggregator = SpanAggregator()
    aggregator.add(_enriched(_START_NS, **{attr.WEDDING_DURATION_MS: -1.0}))
    child = _span(_START_NS)
    aggregator.add(
        SpanRecord(**{**_fields(child), "kind": SpanKind.INTERNAL, "parent_span_id": "1" * 16})
    )
    aggregator.add(_span(_START_NS))
    tally = aggregator.tally()
    assert (tally.spans, tally.requests, tally.unusable, tally.unenriched) == (3, 0, 1, 1)


def _fields(span: SpanRecord) -> dict[str, object]:
    return {name: getattr(span, name) for name in SpanRecord.__slots__}  # type: ignore[attr-defined]


def test_spans_read_back_from_the_file_judge_the_same_as_the_stream(recorded: Recorded) -> None:
    """performance_report on a list gives what the CLI's streamed read gives."""
    report = performance_report(read_spans(recorded.directory))
    assert report is not None
    assert list(report.snapshot.endpoints) == ["items", "search", "other"]
    assert report.unenriched == UNENRICHED
