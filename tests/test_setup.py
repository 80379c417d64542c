"""configure(): the pipeline it builds, the environment it honours, and its lifecycle."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from opentelemetry.exporter.otlp.proto.grpc.metric_exporter import OTLPMetricExporter
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.metrics.export import ConsoleMetricExporter
from opentelemetry.sdk.trace.export import ConsoleSpanExporter
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from wedsync_otel import WeddingConfig, configure
from wedsync_otel import attributes as attr
from wedsync_otel.setup import UnexportedMetrics, default_metric_exporter, default_span_exporter


def test_configure_puts_the_wedding_processor_in_front_of_the_exporter() -> None:
    """Spans reach the given exporter enriched, after a flush."""
    exporter = InMemorySpanExporter()
    telemetry = configure(span_exporter=exporter, set_global=False)
    tracer = telemetry.tracer_provider.get_tracer("t")
    tracer.start_span("s", kind=SpanKind.SERVER, attributes={"http.route": "/api/rsvp"}).end()
    assert telemetry.force_flush()
    (span,) = exporter.get_finished_spans()
    assert (span.attributes or {})[attr.WEDDING_ENDPOINT] == "rsvp"
    telemetry.shutdown()


def test_service_name_argument_wins_over_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """service_name overrides OTEL_SERVICE_NAME; OTEL_RESOURCE_ATTRIBUTES still applies."""
    monkeypatch.setenv("OTEL_SERVICE_NAME", "from-env")
    monkeypatch.setenv("OTEL_RESOURCE_ATTRIBUTES", "deployment.environment=staging")
    telemetry = configure(
        span_exporter=InMemorySpanExporter(), service_name="wedsync-api", set_global=False
    )
    resource = telemetry.tracer_provider.resource.attributes
    assert resource["service.name"] == "wedsync-api"
    assert resource["deployment.environment"] == "staging"
    telemetry.shutdown()


def test_otel_service_name_is_honoured(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without an argument the service name comes from OTEL_SERVICE_NAME."""
    monkeypatch.setenv("OTEL_SERVICE_NAME", "from-env")
    telemetry = configure(span_exporter=InMemorySpanExporter(), set_global=False)
    assert telemetry.tracer_provider.resource.attributes["service.name"] == "from-env"
    telemetry.shutdown()


def test_config_file_named_in_the_environment_is_read(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """WEDSYNC_OTEL_CONFIG names the file configure() reads when no config is passed."""
    path = tmp_path / "wedsync.toml"
    path.write_text('[endpoints.health]\npatterns = ["/health"]\nthreshold_ms = 20\n')
    monkeypatch.setenv("WEDSYNC_OTEL_CONFIG", str(path))
    exporter = InMemorySpanExporter()
    telemetry = configure(span_exporter=exporter, set_global=False)
    tracer = telemetry.tracer_provider.get_tracer("t")
    tracer.start_span("s", kind=SpanKind.SERVER, attributes={"http.route": "/health"}).end()
    telemetry.force_flush()
    attributes = exporter.get_finished_spans()[0].attributes or {}
    assert attributes[attr.WEDDING_ENDPOINT] == "health"
    assert attributes[attr.WEDDING_THRESHOLD_MS] == 20.0
    telemetry.shutdown()


def test_an_explicit_config_ignores_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """A config passed as an argument is used as is."""
    monkeypatch.setenv("WEDSYNC_OTEL_TIMEZONE", "Mars/Base")
    telemetry = configure(
        config=WeddingConfig(timezone="UTC"), span_exporter=InMemorySpanExporter(), set_global=False
    )
    assert telemetry.config.timezone == "UTC"
    telemetry.shutdown()


def test_shutdown_twice_is_harmless() -> None:
    """A second shutdown does nothing and raises nothing."""
    telemetry = configure(span_exporter=InMemorySpanExporter(), set_global=False)
    telemetry.shutdown()
    telemetry.shutdown()


def test_default_exporter_is_the_console_without_an_endpoint() -> None:
    """With no OTLP endpoint set, spans go to the console."""
    assert isinstance(default_span_exporter({}), ConsoleSpanExporter)


def test_default_exporter_is_otlp_when_an_endpoint_is_set() -> None:
    """OTEL_EXPORTER_OTLP_ENDPOINT selects OTLP over gRPC (the otlp extra is installed here)."""
    exporter = default_span_exporter({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4317"})
    assert isinstance(exporter, OTLPSpanExporter)
    exporter.shutdown()


def test_configure_twice_installs_one_global_pipeline() -> None:
    """In a fresh process, a second configure() returns the pipeline already installed."""
    script = textwrap.dedent(
        """
        from opentelemetry import trace
        from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
        import wedsync_otel

        first = wedsync_otel.configure(span_exporter=InMemorySpanExporter())
        second = wedsync_otel.configure(span_exporter=InMemorySpanExporter())
        assert first is second
        assert trace.get_tracer_provider() is first.tracer_provider
        assert len(first.tracer_provider._active_span_processor._span_processors) == 1
        assert first.meter_provider is second.meter_provider
        print("one pipeline")
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=False, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[0] == "one pipeline"
    assert "configure() called again" in result.stderr


def test_metrics_are_not_printed_without_an_endpoint(capsys: pytest.CaptureFixture[str]) -> None:
    """A span exporter chosen, no metric exporter, no endpoint: stdout stays empty."""
    telemetry = configure(span_exporter=InMemorySpanExporter(), set_global=False)
    tracer = telemetry.tracer_provider.get_tracer("t")
    tracer.start_span("s", kind=SpanKind.SERVER, attributes={"http.route": "/api/rsvp"}).end()
    assert telemetry.force_flush()
    assert telemetry.snapshot().endpoints["rsvp"].windows["1m"].count == 1
    telemetry.shutdown()
    assert capsys.readouterr().out == ""


@pytest.mark.parametrize(
    ("environ", "expected"),
    [
        ({}, UnexportedMetrics),
        ({"OTEL_METRICS_EXPORTER": "console"}, ConsoleMetricExporter),
        ({"OTEL_METRICS_EXPORTER": " Console "}, ConsoleMetricExporter),
        ({"OTEL_METRICS_EXPORTER": "none"}, UnexportedMetrics),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4317"}, OTLPMetricExporter),
        ({"OTEL_EXPORTER_OTLP_METRICS_ENDPOINT": "http://127.0.0.1:4317"}, OTLPMetricExporter),
    ],
)
def test_the_default_metric_exporter_follows_the_environment(
    environ: dict[str, str], expected: type
) -> None:
    """OTLP with an endpoint, the console only when asked for, else nothing exported."""
    exporter = default_metric_exporter(environ)
    assert type(exporter) is expected
    exporter.shutdown()
