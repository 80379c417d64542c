"""Prometheus rules and Alertmanager routing from WeddingConfig, proved with promtool and amtool.

The tool tests need Debian's ``promtool`` (package ``prometheus``) and ``amtool``
(``prometheus-alertmanager``); ``scripts/install-prometheus-tools.sh`` installs them. Without
them those tests skip, or fail under ``CI=true``.
"""

from __future__ import annotations

import http.server
import os
import stat
import subprocess
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar

import pytest
import yaml
from opentelemetry.exporter.prometheus import PrometheusMetricReader
from opentelemetry.sdk.metrics.export import (
    MetricsData,
    ResourceMetrics,
    ScopeMetrics,
    Sum,
)
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind
from prometheus_client import CollectorRegistry, generate_latest

from helpers import SATURDAY, CapturingExporter, FakeClock
from prometheus_support import Prometheus, running_prometheus, tool
from wedsync_otel import WeddingConfig, configure
from wedsync_otel import attributes as attr
from wedsync_otel.catalogue import EndpointSpec
from wedsync_otel.metrics import names, prometheus_names
from wedsync_otel.metrics._protowire import (
    bytes_field,
    double_field,
    sint_field,
    uint_field,
    varint,
)
from wedsync_otel.ops import alertmanager_config, render_alertmanager, render_rules, rules_document
from wedsync_otel.ops import prometheus_rules as pr

ROOT = Path(__file__).resolve().parent.parent
PROMETHEUS_DIR = ROOT / "collector-config" / "prometheus"
RULES_FILE = PROMETHEUS_DIR / "wedding-rules.yml"
CLASSIC_RULES_FILE = PROMETHEUS_DIR / "wedding-rules-classic.yml"
ALERTMANAGER_FILE = PROMETHEUS_DIR / "alertmanager.yml"
ALERT_TESTS = PROMETHEUS_DIR / "tests" / "wedding-alerts.test.yml"
UNIT_TEST_FILES = sorted((PROMETHEUS_DIR / "tests").glob("*.test.yml"))
INSTALL_SCRIPT = ROOT / "scripts" / "install-prometheus-tools.sh"
TOOL_TIMEOUT_S = 300.0
MS = 1_000_000


# --- helpers ------------------------------------------------------------------------------


def run(argv: Sequence[str], **kwargs: Any) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        argv, capture_output=True, text=True, timeout=TOOL_TIMEOUT_S, check=False, **kwargs
    )


def alerts(document: dict[str, Any]) -> list[dict[str, Any]]:
    return [rule for rule in document["groups"][1]["rules"] if "alert" in rule]


def alert_labels(config: WeddingConfig, **kwargs: Any) -> list[dict[str, str]]:
    return [rule["labels"] for rule in alerts(rules_document(config, **kwargs))]


def write_rules(directory: Path, config: WeddingConfig, **kwargs: Any) -> Path:
    path = directory / "wedding-rules.yml"
    path.write_text(render_rules(config, **kwargs))
    return path


@pytest.fixture(scope="module")
def promtool() -> str:
    return tool("promtool")


@pytest.fixture(scope="module")
def amtool() -> str:
    return tool("amtool")


# --- the committed copies are what the generator makes now ---------------------------------


def test_committed_rules_match_the_default_config() -> None:
    """collector-config/prometheus/wedding-rules.yml is a fresh generation from the defaults."""
    fresh = render_rules(WeddingConfig.default())
    assert RULES_FILE.read_text() == fresh, (
        f"{RULES_FILE} is stale: regenerate it with `wedsync-otel rules --out {RULES_FILE}`"
    )


def test_committed_classic_rules_match_the_default_config() -> None:
    """The classic-histogram copy is a fresh generation from the defaults."""
    fresh = render_rules(WeddingConfig.default(), histograms="classic")
    assert CLASSIC_RULES_FILE.read_text() == fresh, (
        f"{CLASSIC_RULES_FILE} is stale: regenerate it with "
        f"`wedsync-otel rules --histograms classic --out {CLASSIC_RULES_FILE}`"
    )


def test_committed_alertmanager_config_is_fresh() -> None:
    """collector-config/prometheus/alertmanager.yml is a fresh generation."""
    assert ALERTMANAGER_FILE.read_text() == render_alertmanager(), (
        f"{ALERTMANAGER_FILE} is stale: regenerate it with "
        f"`wedsync-otel alertmanager --out {ALERTMANAGER_FILE}`"
    )


# --- names: what Prometheus makes of the OTel metrics --------------------------------------


@pytest.mark.parametrize(
    ("name", "unit", "monotonic_sum", "expected"),
    [
        (names.SERVER_DURATION, "ms", False, "wedding_server_duration_milliseconds"),
        (names.DB_DURATION, "ms", False, "wedding_db_duration_milliseconds"),
        (names.APDEX_REQUESTS, "{request}", True, "wedding_apdex_requests_total"),
        (names.THRESHOLD_BREACHES, "{request}", True, "wedding_threshold_breaches_total"),
        (names.CACHE_REQUESTS, "{request}", True, "wedding_cache_requests_total"),
        ("http.server.request.duration", "s", False, "http_server_request_duration_seconds"),
        ("wedding.score", "1", False, "wedding_score"),
    ],
)
def test_metric_names_follow_the_otel_to_prometheus_rules(
    name: str, unit: str, monotonic_sum: bool, expected: str
) -> None:
    """Dots become underscores, the unit is appended without annotations, sums end in _total."""
    assert (
        prometheus_names.prometheus_metric_name(name, unit, monotonic_sum=monotonic_sum) == expected
    )


@pytest.mark.parametrize(
    ("key", "expected"),
    [
        (attr.WEDDING_ENDPOINT, "wedding_endpoint"),
        (attr.WEDDING_PROXIMITY, "wedding_proximity"),
        (names.STATUS_CLASS, "http_response_status_class"),
        (names.CACHE_RESULT, "cache_result"),
    ],
)
def test_label_names_replace_dots_with_underscores(key: str, expected: str) -> None:
    """Attribute keys become label names with every dot turned into an underscore."""
    assert prometheus_names.prometheus_label_name(key) == expected


def _prometheus_text(data: MetricsData) -> str:
    registry = CollectorRegistry()
    reader = PrometheusMetricReader(registry=registry, disable_target_info=True)
    reader._receive_metrics(data)  # the hook a MeterProvider would call
    try:
        return generate_latest(registry).decode()
    finally:
        reader.shutdown()


def _only_sums(data: MetricsData) -> MetricsData:
    return MetricsData(
        resource_metrics=[
            ResourceMetrics(
                rm.resource,
                [
                    ScopeMetrics(sm.scope, [m for m in sm.metrics if isinstance(m.data, Sum)], "")
                    for sm in rm.scope_metrics
                ],
                rm.schema_url,
            )
            for rm in data.resource_metrics
        ]
    )


@pytest.fixture
def exported_saturday_payments() -> MetricsData:
    """What the real pipeline exports after three payments requests on a Saturday (75 ms cap)."""
    capture = CapturingExporter()
    telemetry = configure(
        span_exporter=InMemorySpanExporter(),
        metric_exporter=capture,
        metric_export_interval_millis=3_600_000,
        clock=FakeClock(SATURDAY),
        set_global=False,
    )
    try:
        tracer = telemetry.tracer_provider.get_tracer("tests")
        start_ns = int(SATURDAY.timestamp()) * 1_000_000_000
        route: dict[str, str | int] = {
            "http.route": "/api/payments/{payment_id}",
            "http.response.status_code": 200,
        }
        for duration_ms in (20, 90, 400):
            span = tracer.start_span(
                "request", kind=SpanKind.SERVER, attributes=route, start_time=start_ns
            )
            span.end(end_time=start_ns + duration_ms * MS)
        assert telemetry.force_flush()
        return capture.exported[-1]
    finally:
        telemetry.shutdown()


def test_rules_read_the_counters_the_exporter_really_emits(
    exported_saturday_payments: MetricsData,
) -> None:
    """The counters as opentelemetry-exporter-prometheus renders them carry the rules' names."""
    text = _prometheus_text(_only_sums(exported_saturday_payments))
    assert (
        f'{pr.THRESHOLD_BREACHES}{{otel_scope_name="wedsync_otel",otel_scope_schema_url="",'
        'otel_scope_version="0.1.0",wedding_critical="true",wedding_endpoint="payments",'
        'wedding_proximity="unknown"} 2.0'
    ) in text
    assert f'{pr.APDEX_REQUESTS}{{otel_scope_name="wedsync_otel"' in text
    assert 'wedding_apdex="frustrated",wedding_endpoint="payments"' in text


def test_python_prometheus_exporter_cannot_render_the_exponential_histograms(
    exported_saturday_payments: MetricsData,
) -> None:
    """opentelemetry-exporter-prometheus fails on an exponential histogram: metrics go by OTLP."""
    with pytest.raises(AttributeError, match="ExponentialHistogramDataPoint"):
        _prometheus_text(exported_saturday_payments)


# --- what the generator writes -------------------------------------------------------------


@pytest.mark.parametrize(
    ("timezone", "offsets_s"),
    [
        ("Europe/London", (0, 3600)),
        ("UTC", (0,)),
        ("Asia/Kolkata", (19800,)),
        ("America/New_York", (-18000, -14400)),
    ],
)
def test_utc_offsets_cover_standard_and_summer_time(
    timezone: str, offsets_s: tuple[int, ...]
) -> None:
    """A zone's Saturday is tested under every UTC offset it uses."""
    assert pr.utc_offsets_s(timezone) == offsets_s


def test_saturday_expression_shifts_time_into_the_platform_zone() -> None:
    """West of UTC the expression subtracts the offset from time()."""
    expression = pr.saturday_expr("America/New_York")
    assert expression == (
        "day_of_week(vector(time() - 18000)) == 6 or day_of_week(vector(time() - 14400)) == 6"
    )


def test_every_endpoint_gets_the_three_burn_rate_pairs() -> None:
    """Each catalogue endpoint has a 1h/5m, a 6h/30m and a 3d/6h latency alert."""
    config = WeddingConfig.default()
    pairs = {
        (labels[pr.ENDPOINT], labels["long_window"], labels["short_window"])
        for labels in alert_labels(config)
        if labels["severity"] != "emergency"
    }
    assert pairs == {
        (spec.name, long, short)
        for spec in config.endpoints
        for long, short in (("1h", "5m"), ("6h", "30m"), ("3d", "6h"))
    }


@pytest.mark.parametrize(
    ("endpoint", "severities"),
    [
        ("payments", ["critical", "critical", "warning"]),
        ("supplier_profiles", ["warning", "warning", "warning"]),
    ],
)
def test_ordinary_severity_follows_the_endpoint_criticality(
    endpoint: str, severities: list[str]
) -> None:
    """Fast and medium burns are critical on a critical endpoint; everything else is a warning."""
    found = [
        labels["severity"]
        for labels in alert_labels(WeddingConfig.default())
        if labels[pr.ENDPOINT] == endpoint and labels["severity"] != "emergency"
    ]
    assert found == severities


def test_emergencies_concern_only_critical_endpoints() -> None:
    """Every emergency alert names a critical endpoint, and every critical endpoint has them."""
    config = WeddingConfig.default()
    emergency = {
        labels[pr.ENDPOINT] for labels in alert_labels(config) if labels["severity"] == "emergency"
    }
    assert emergency == {spec.name for spec in config.endpoints if spec.critical}


def test_emergencies_use_only_the_paging_burn_rates() -> None:
    """Emergencies come from the 1h/5m and 6h/30m pairs, never the slow 3d/6h one."""
    windows = {
        (labels["long_window"], labels["short_window"])
        for labels in alert_labels(WeddingConfig.default())
        if labels["severity"] == "emergency"
    }
    assert windows == {("1h", "5m"), ("6h", "30m")}


def test_saturday_mode_off_leaves_only_wedding_day_band_emergencies() -> None:
    """Without Saturday mode, only the wedding_day band escalates to an emergency."""
    config = WeddingConfig.default().replace(saturday_mode=False)
    traffic = {
        labels["wedding_day_traffic"]
        for labels in alert_labels(config)
        if labels["severity"] == "emergency"
    }
    assert traffic == {"wedding_day"}


def test_burn_thresholds_scale_with_the_slo_target() -> None:
    """At 99.9% the fast burn fires above 1.44% of requests over their threshold."""
    document = rules_document(WeddingConfig.default(), slo_target=0.999)
    fast = next(rule for rule in alerts(document) if rule["labels"]["long_window"] == "1h")
    assert "ratio_rate1h" in fast["expr"]
    assert fast["expr"].count("> 0.0144") == 2


@pytest.mark.parametrize("slo_target", [0.0, 1.0, 1.5, -0.5])
def test_slo_target_outside_zero_to_one_is_refused(slo_target: float) -> None:
    """An SLO target must lie strictly between 0 and 1."""
    with pytest.raises(ValueError, match="between 0 and 1"):
        rules_document(WeddingConfig.default(), slo_target=slo_target)


def test_slo_target_too_loose_for_a_fast_burn_is_refused() -> None:
    """At 90% a 14.4x burn would exceed every request, so the fast alert could never fire."""
    with pytest.raises(ValueError, match=r"14\.4x burn"):
        rules_document(WeddingConfig.default(), slo_target=0.9)


def test_unknown_histogram_form_is_refused() -> None:
    """Only native and classic histograms are known."""
    with pytest.raises(ValueError, match="native"):
        rules_document(WeddingConfig.default(), histograms="sparse")  # type: ignore[arg-type]


def test_native_percentiles_read_the_native_histogram() -> None:
    """Native rules merge the histogram series themselves, with no le label."""
    text = render_rules(WeddingConfig.default())
    assert (
        "histogram_quantile(0.95, sum by (wedding_endpoint) "
        "(rate(wedding_server_duration_milliseconds[5m])))"
    ) in text
    assert "_bucket" not in text


def test_classic_percentiles_read_the_buckets() -> None:
    """Classic rules merge _bucket series by le."""
    text = render_rules(WeddingConfig.default(), histograms="classic")
    assert (
        "histogram_quantile(0.95, sum by (le, wedding_endpoint) "
        "(rate(wedding_server_duration_milliseconds_bucket[5m])))"
    ) in text


def test_base_thresholds_are_recorded_from_the_config() -> None:
    """Each endpoint's base threshold is a recorded constant, for health and dashboards."""
    rules = rules_document(WeddingConfig.default())["groups"][0]["rules"]
    constants = {
        rule["labels"][pr.ENDPOINT]: rule["expr"]
        for rule in rules
        if rule["record"] == pr.BASE_THRESHOLD
    }
    assert constants["payments"] == "vector(150)"
    assert constants["supplier_profiles"] == "vector(500)"


def test_alertmanager_rejects_unknown_receivers() -> None:
    """A webhook for a receiver the routing does not use is refused."""
    with pytest.raises(ValueError, match="unknown receivers"):
        alertmanager_config(urls={"wedsync-ops": "https://ops.example.com/hook"})


def test_alertmanager_webhooks_can_be_filled_in() -> None:
    """A receiver's URL given by the caller replaces its placeholder."""
    config = alertmanager_config(urls={"wedsync-emergency-pager": "https://pager.example.com/x"})
    pager = next(r for r in config["receivers"] if r["name"] == "wedsync-emergency-pager")
    assert pager["webhook_configs"][0]["url"] == "https://pager.example.com/x"


# --- promtool ------------------------------------------------------------------------------


@pytest.mark.parametrize("histograms", ["native", "classic"])
def test_generated_rules_pass_promtool_check(
    promtool: str, tmp_path: Path, histograms: pr.HistogramForm
) -> None:
    """promtool check rules accepts the rules generated from the defaults."""
    path = write_rules(tmp_path, WeddingConfig.default(), histograms=histograms)
    result = run([promtool, "check", "rules", str(path)])
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


def test_rules_for_another_catalogue_and_zone_pass_promtool_check(
    promtool: str, tmp_path: Path
) -> None:
    """A custom catalogue in a zone west of UTC, at 99.9%, also passes promtool check rules."""
    config = WeddingConfig.default().replace(
        timezone="America/New_York",
        endpoints=(
            EndpointSpec(
                name="checkout", patterns=("/api/checkout/**",), threshold_ms=120.0, critical=True
            ),
            EndpointSpec(name="search", patterns=("/api/search",), threshold_ms=800.0),
        ),
    )
    path = write_rules(tmp_path, config, slo_target=0.999)
    result = run([promtool, "check", "rules", str(path)])
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("test_file", UNIT_TEST_FILES, ids=lambda path: path.name)
def test_promtool_unit_tests_pass(promtool: str, test_file: Path) -> None:
    """The promtool unit tests in collector-config/prometheus/tests pass on the committed rules."""
    result = run([promtool, "test", "rules", test_file.name], cwd=test_file.parent)
    assert result.returncode == 0, result.stdout + result.stderr


def test_unit_tests_catch_a_missing_saturday_escalation(promtool: str, tmp_path: Path) -> None:
    """The Saturday unit test fails against rules generated without Saturday mode."""
    write_rules(tmp_path, WeddingConfig.default().replace(saturday_mode=False))
    suite = yaml.safe_load(ALERT_TESTS.read_text())
    suite["tests"] = [group for group in suite["tests"] if "on a Saturday pages" in group["name"]]
    assert len(suite["tests"]) == 1
    suite["rule_files"] = ["wedding-rules.yml"]
    (tmp_path / "saturday.test.yml").write_text(yaml.safe_dump(suite, sort_keys=False))
    result = run([promtool, "test", "rules", "saturday.test.yml"], cwd=tmp_path)
    assert result.returncode != 0
    assert "WeddingDayLatencyBudgetBurn" in result.stdout + result.stderr


# --- a real Prometheus server: the native-histogram rules -----------------------------------
#
# Debian's promtool 2.42 cannot feed native histograms to a unit test, so the native rules are
# evaluated by Debian's Prometheus 2.42 itself (--enable-feature=native-histograms), scraping a
# target that serves the protobuf exposition format. Per scrape, payments gains 16 requests:
# 10 in the bucket (32, 64] ms and 6 in (128, 256] ms (one of those a 5xx); 100 ms of DB time
# against 1,640 ms of request time; Apdex 10 satisfied and 6 tolerating.

NATIVE_DEADLINE_S = 60.0
PROTOBUF = (
    "application/vnd.google.protobuf; proto=io.prometheus.client.MetricFamily; encoding=delimited"
)
_COUNTER_TYPE, _HISTOGRAM_TYPE = 0, 4  # io.prometheus.client.MetricType


def _metric(labels: Mapping[str, str], field: int, value: bytes) -> bytes:
    pairs = b"".join(
        bytes_field(1, bytes_field(1, key.encode()) + bytes_field(2, text.encode()))
        for key, text in labels.items()
    )
    return pairs + bytes_field(field, value)


def _native_histogram(buckets: Mapping[int, int], total_ms: float) -> bytes:
    """A schema-0 native histogram: bucket i holds (2**(i-1), 2**i]; counts since the start."""
    body = uint_field(1, sum(buckets.values())) + double_field(2, total_ms) + sint_field(5, 0)
    body += double_field(6, 1e-128)  # zero threshold
    previous_end, previous_count = 0, 0
    for index in sorted(buckets):
        body += bytes_field(
            12, sint_field(1, index - previous_end) + uint_field(2, 1)
        )  # a span of one bucket
        body += sint_field(13, buckets[index] - previous_count)
        previous_end, previous_count = index + 1, buckets[index]
    return body


def _family(name: str, kind: int, metrics: Sequence[bytes]) -> bytes:
    family = bytes_field(1, name.encode()) + uint_field(3, kind)
    family += b"".join(bytes_field(4, metric) for metric in metrics)
    return varint(len(family)) + family


def _exposition(scrape: int) -> bytes:
    """The target's metrics after ``scrape`` scrapes, as a Collector would expose them."""
    band = {pr.ENDPOINT: "payments", pr.PROXIMITY: "planning"}
    requests = {**band, "wedding_critical": "true"}
    durations = [
        _metric(
            {**requests, pr.STATUS_CLASS: "2xx"},
            7,
            _native_histogram({6: 10 * scrape, 8: 5 * scrape}, 1_440.0 * scrape),
        ),
        _metric(
            {**requests, pr.STATUS_CLASS: "5xx"}, 7, _native_histogram({8: scrape}, 200.0 * scrape)
        ),
    ]
    apdex = [
        _metric({**band, pr.APDEX: apdex}, 3, double_field(1, float(count * scrape)))
        for apdex, count in (("satisfied", 10), ("tolerating", 6))
    ]
    return (
        _family(pr.SERVER_DURATION, _HISTOGRAM_TYPE, durations)
        + _family(
            pr.DB_DURATION,
            _HISTOGRAM_TYPE,
            [_metric(band, 7, _native_histogram({5: 16 * scrape}, 100.0 * scrape))],
        )
        + _family(pr.APDEX_REQUESTS, _COUNTER_TYPE, apdex)
    )


class _Target(http.server.BaseHTTPRequestHandler):
    """Serves `_exposition`, one scrape further on each request."""

    scrapes: ClassVar[int] = 0

    def do_GET(self) -> None:
        type(self).scrapes += 1
        body = _exposition(self.scrapes)
        self.send_response(200)
        self.send_header("Content-Type", PROTOBUF)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        return None


def _recorded(prometheus: Prometheus) -> dict[str, float]:
    """Every payments series the recording rules wrote, by rule name, at one instant."""
    result = prometheus.query(f'{{__name__=~"wedding_endpoint.*:.+",{pr.ENDPOINT}="payments"}}')
    return {item["metric"]["__name__"]: float(item["value"][1]) for item in result}


@pytest.fixture(scope="module")
def native_recorded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, float]]:
    """What Prometheus 2.42 records from native histograms with the generated rules."""
    root = tmp_path_factory.mktemp("prometheus")
    target = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Target)
    threading.Thread(target=target.serve_forever, daemon=True).start()
    deadline = time.monotonic() + NATIVE_DEADLINE_S
    wanted = {
        pr.quantile_name(("wedding_endpoint",), "p50", "5m"),
        pr.quantile_name(("wedding_endpoint",), "p95", "5m"),
        "wedding_endpoint:wedding_health:score_rate5m",
        "wedding_endpoint:wedding_db_time:ratio_rate5m",
    }
    try:
        with running_prometheus(
            root,
            target_port=target.server_port,
            job="wedsync",
            deadline=deadline,
            rule_files=(RULES_FILE,),
        ) as prometheus:
            recorded: dict[str, float] = {}
            while not wanted <= recorded.keys():
                if time.monotonic() > deadline or not prometheus.alive():
                    pytest.fail(f"no native results: {recorded}\n{prometheus.log_tail()}")
                time.sleep(0.2)  # polling Prometheus' API until the rules have run, bounded
                recorded = _recorded(prometheus)
            yield recorded
    finally:
        target.shutdown()
        target.server_close()


def test_native_median_lies_in_the_bucket_holding_it(native_recorded: dict[str, float]) -> None:
    """Ten of every sixteen requests lie in (32, 64] ms, so the fleet median does too."""
    assert 32 < native_recorded[pr.quantile_name(("wedding_endpoint",), "p50", "5m")] <= 64


def test_native_p95_lies_in_the_slow_bucket(native_recorded: dict[str, float]) -> None:
    """The slowest six of sixteen lie in (128, 256] ms, and so does the p95."""
    assert 128 < native_recorded[pr.quantile_name(("wedding_endpoint",), "p95", "5m")] <= 256


def test_native_error_share_counts_the_5xx_observations(
    native_recorded: dict[str, float],
) -> None:
    """One request in sixteen is a 5xx: histogram_count over the status class gives 0.0625."""
    assert native_recorded["wedding_endpoint:wedding_server_errors:ratio_rate5m"] == (
        pytest.approx(1 / 16)
    )


def test_native_db_time_share_divides_the_histogram_sums(
    native_recorded: dict[str, float],
) -> None:
    """100 ms of DB time per 1,640 ms of requests: histogram_sum of one over the other."""
    assert native_recorded["wedding_endpoint:wedding_db_time:ratio_rate5m"] == pytest.approx(
        100 / 1_640
    )


def test_native_health_combines_apdex_errors_and_p95(native_recorded: dict[str, float]) -> None:
    """Health is 100 x Apdex x (1 - 5xx share) x the latency factor of p95 against 150 ms."""
    p95 = native_recorded[pr.quantile_name(("wedding_endpoint",), "p95", "5m")]
    factor = min(1.0, max(0.0, 1 - (p95 / 150 - 1) / 3))
    expected = 100 * (10 + 6 / 2) / 16 * (1 - 1 / 16) * factor
    assert native_recorded["wedding_endpoint:wedding_health:score_rate5m"] == pytest.approx(
        expected
    )


# --- amtool --------------------------------------------------------------------------------


def test_alertmanager_config_passes_amtool_check(amtool: str, tmp_path: Path) -> None:
    """amtool check-config accepts the generated Alertmanager configuration."""
    path = tmp_path / "alertmanager.yml"
    path.write_text(render_alertmanager())
    result = run([amtool, "check-config", str(path)])
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


@pytest.mark.parametrize(
    ("severity", "receivers"),
    [
        ("emergency", "wedsync-emergency-pager,wedsync-management,wedsync-team"),
        ("critical", "wedsync-management,wedsync-team"),
        ("warning", "wedsync-team"),
    ],
)
def test_amtool_routes_each_severity_to_its_audience(
    amtool: str, tmp_path: Path, severity: str, receivers: str
) -> None:
    """Emergency reaches pager, management and team; critical management and team; warning team."""
    path = tmp_path / "alertmanager.yml"
    path.write_text(render_alertmanager())
    result = run(
        [
            amtool,
            "config",
            "routes",
            "test",
            f"--config.file={path}",
            f"--verify.receivers={receivers}",
            f"severity={severity}",
            "wedding_endpoint=payments",
        ]
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.strip() == receivers


# --- scripts/install-prometheus-tools.sh ---------------------------------------------------


def _fake_command(directory: Path, name: str, body: str) -> None:
    path = directory / name
    path.write_text(f"#!/bin/sh\n{body}\n")
    path.chmod(path.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)


def _run_install_script(bin_dir: Path) -> subprocess.CompletedProcess[str]:
    """The script with PATH holding only ``bin_dir``, so no real apt-get can run."""
    return run(["/bin/sh", str(INSTALL_SCRIPT)], env={**os.environ, "PATH": str(bin_dir)})


def test_install_script_does_nothing_when_both_tools_are_there(tmp_path: Path) -> None:
    """With promtool and amtool on PATH the script exits 0 without calling apt-get."""
    log = tmp_path / "apt.log"
    for name in ("promtool", "amtool"):
        _fake_command(tmp_path, name, "exit 0")
    _fake_command(tmp_path, "apt-get", f'echo "$*" >> {log}')
    result = _run_install_script(tmp_path)
    assert result.returncode == 0, result.stderr
    assert "already installed" in result.stdout
    assert not log.exists()


def test_install_script_installs_only_the_missing_package(tmp_path: Path) -> None:
    """With amtool present, it updates apt and installs only prometheus, without recommends."""
    log = tmp_path / "apt.log"
    _fake_command(tmp_path, "amtool", "exit 0")
    _fake_command(tmp_path, "id", "echo 0")
    _fake_command(
        tmp_path,
        "apt-get",
        f'echo "$*" >> {log}\n'
        f'case "$*" in install*) echo exit 0 > {tmp_path}/promtool; '
        f"/bin/chmod +x {tmp_path}/promtool;; esac",
    )
    result = _run_install_script(tmp_path)
    assert result.returncode == 0, result.stderr
    assert log.read_text().splitlines() == [
        "update",
        "install -y --no-install-recommends prometheus",
    ]


def test_install_script_fails_clearly_without_apt(tmp_path: Path) -> None:
    """Without the tools and without apt-get it exits non-zero and says what to do."""
    result = _run_install_script(tmp_path)
    assert result.returncode == 1
    assert "no apt-get here" in result.stderr
    assert "prometheus prometheus-alertmanager" in result.stderr


def test_install_script_fails_when_apt_get_fails(tmp_path: Path) -> None:
    """A failing apt-get update is reported and the script exits non-zero."""
    _fake_command(tmp_path, "id", "echo 0")
    _fake_command(tmp_path, "apt-get", "exit 100")
    result = _run_install_script(tmp_path)
    assert result.returncode == 1
    assert "apt-get update failed" in result.stderr
