"""Zero-code: a Starlette app under ``opentelemetry-instrument``, in a subprocess."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from opentelemetry import metrics, trace
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.sdk.trace.sampling import ALWAYS_OFF

from helpers import CapturingExporter
from wedsync_otel import WeddingConfig, autoinstrument
from wedsync_otel.sampling import RequestRecordingSampler

APP = textwrap.dedent(
    """
    import sys

    from starlette.applications import Starlette
    from starlette.responses import JSONResponse
    from starlette.routing import Route
    from starlette.testclient import TestClient

    REQUESTS = int(sys.argv[1]) if len(sys.argv) > 1 else 1

    async def charge(request):
        return JSONResponse({"ok": True})

    app = Starlette(routes=[Route("/api/payments/{payment_id}", charge)])
    with TestClient(app) as client:
        for i in range(REQUESTS):
            assert client.get(f"/api/payments/{i}").status_code == 200
    """
)

OURS = {"OTEL_PYTHON_CONFIGURATOR": "wedsync_otel"}
DISTRO = {"OTEL_PYTHON_CONFIGURATOR": "configurator"}  # opentelemetry-distro's entry point
_CUMULATIVE = 2  # AggregationTemporality.CUMULATIVE in the console exporter's JSON


@dataclass(frozen=True)
class Run:
    """What an instrumented run printed: the console exporters' JSON and the log lines."""

    stdout: str
    stderr: str

    def documents(self) -> Iterator[dict[str, Any]]:
        """Each JSON document the console exporters printed, one span or one collection."""
        decoder = json.JSONDecoder()
        index = 0
        while True:
            while index < len(self.stdout) and self.stdout[index].isspace():
                index += 1
            if index == len(self.stdout):
                return
            document, index = decoder.raw_decode(self.stdout, index)
            yield document

    def spans(self) -> list[dict[str, Any]]:
        return [doc for doc in self.documents() if "context" in doc]

    def server_spans(self) -> list[dict[str, Any]]:
        return [span for span in self.spans() if span["kind"] == "SpanKind.SERVER"]

    def metric_names(self) -> set[str]:
        return {metric["name"] for metric in self._metrics()}

    def histogram_count(self, name: str) -> int:
        """Observations of histogram ``name`` over the run, delta or cumulative."""
        total = 0
        for metric in self._metrics():
            if metric["name"] == name:
                count = sum(point["count"] for point in metric["data"]["data_points"])
                cumulative = metric["data"]["aggregation_temporality"] == _CUMULATIVE
                total = count if cumulative else total + count
        return total

    def wedsync_lines(self) -> list[str]:
        return [line for line in self.stderr.splitlines() if "wedsync-otel" in line]

    def _metrics(self) -> Iterator[dict[str, Any]]:
        for doc in self.documents():
            for resource in doc.get("resource_metrics", ()):
                for scope in resource["scope_metrics"]:
                    yield from scope["metrics"]


def instrumented_environment(**env: str) -> dict[str, str]:
    """This process's environment without OTEL_*/WEDSYNC_*, plus console exporters and ``env``."""
    environment = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("OTEL_", "WEDSYNC_")) and key != "PYTEST_CURRENT_TEST"
    }
    environment.update(
        {
            "OTEL_TRACES_EXPORTER": "console",
            "OTEL_METRICS_EXPORTER": "console",
            "OTEL_LOGS_EXPORTER": "none",
            "OTEL_SERVICE_NAME": "zero-code",
            **env,
        }
    )
    return environment


def run_app(command: list[str], cwd: Path, **env: str) -> Run:
    """Run ``command``; it must exit 0 whatever wedsync-otel thought of its configuration."""
    result = subprocess.run(
        command,
        capture_output=True,
        text=True,
        env=instrumented_environment(**env),
        cwd=cwd,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return Run(result.stdout, result.stderr)


def run_instrumented(tmp_path: Path, requests: int = 1, **env: str) -> Run:
    """The Starlette app making ``requests`` payment requests under ``opentelemetry-instrument``."""
    script = tmp_path / "app.py"
    script.write_text(APP, encoding="utf-8")
    instrument = Path(sys.executable).parent / "opentelemetry-instrument"
    command = [str(instrument), sys.executable, "-W", "ignore::DeprecationWarning", str(script)]
    return run_app([*command, str(requests)], tmp_path, **env)


def wedding_attributes(run: Run) -> list[str]:
    return sorted({key for span in run.spans() for key in span["attributes"] if "wedding" in key})


@pytest.mark.parametrize(
    "env",
    [
        pytest.param(OURS, id="our-configurator"),
        pytest.param({**DISTRO, "WEDSYNC_OTEL_ENABLED": "true"}, id="beside-opentelemetry-distro"),
    ],
)
def test_opentelemetry_instrument_enriches_server_spans(
    tmp_path: Path, env: dict[str, str]
) -> None:
    """The console exporter prints the server span with its wedding attributes and route."""
    out = run_instrumented(tmp_path, **env).stdout
    assert '"http.route": "/api/payments/{payment_id}"' in out
    assert '"wedding.endpoint": "payments"' in out
    assert '"wedding.threshold_ms"' in out
    assert '"wedding.apdex"' in out
    assert '"wedding.server.duration"' in out


# --- issue 15: every request measured under head sampling ----------------------------------

REQUESTS = 40


@pytest.mark.parametrize("sampler", ["always_off", "parentbased_always_off"])
@pytest.mark.parametrize(
    "env",
    [
        pytest.param(OURS, id="our-configurator"),
        pytest.param({**DISTRO, "WEDSYNC_OTEL_ENABLED": "true"}, id="beside-opentelemetry-distro"),
    ],
)
def test_zero_code_measures_every_request_the_sampler_drops(
    tmp_path: Path, env: dict[str, str], sampler: str
) -> None:
    """No span is exported, yet wedding.server.duration counts all 40 requests."""
    run = run_instrumented(tmp_path, REQUESTS, OTEL_TRACES_SAMPLER=sampler, **env)
    assert run.spans() == []
    assert run.histogram_count("wedding.server.duration") == REQUESTS
    assert run.histogram_count("http.server.duration") == REQUESTS  # the contrib's, unchanged
    assert run.wedsync_lines() == []


def test_measure_unsampled_false_measures_only_what_is_sampled(tmp_path: Path) -> None:
    """WEDSYNC_OTEL_MEASURE_UNSAMPLED=false under always_off: no wedding measurement at all."""
    run = run_instrumented(
        tmp_path,
        REQUESTS,
        OTEL_TRACES_SAMPLER="always_off",
        WEDSYNC_OTEL_MEASURE_UNSAMPLED="false",
        **OURS,
    )
    assert run.spans() == []
    assert run.histogram_count("wedding.server.duration") == 0
    assert run.histogram_count("http.server.duration") == REQUESTS


# --- issue 16 point 3: enrich only when asked ----------------------------------------------


@pytest.mark.parametrize(
    "env",
    [
        pytest.param(DISTRO, id="beside-opentelemetry-distro-unset"),
        pytest.param({**OURS, "WEDSYNC_OTEL_ENABLED": "false"}, id="our-configurator-false"),
        pytest.param(
            {**DISTRO, "WEDSYNC_OTEL_ENABLED": "Off"}, id="beside-opentelemetry-distro-off"
        ),
    ],
)
def test_not_asked_leaves_the_sdk_telemetry_as_it_is(tmp_path: Path, env: dict[str, str]) -> None:
    """Not asked: the server span is exported as the SDK made it, no wedding.* anywhere."""
    run = run_instrumented(tmp_path, **env)
    (server,) = run.server_spans()
    assert server["attributes"]["http.route"] == "/api/payments/{payment_id}"
    assert wedding_attributes(run) == []
    assert not any(name.startswith("wedding.") for name in run.metric_names())
    assert "http.server.duration" in run.metric_names()
    assert run.wedsync_lines() == []


@pytest.mark.parametrize(
    ("environ", "expected"),
    [
        ({}, False),
        ({"OTEL_PYTHON_CONFIGURATOR": "wedsync_otel"}, True),
        ({"OTEL_PYTHON_CONFIGURATOR": "configurator"}, False),
        ({"OTEL_PYTHON_CONFIGURATOR": "wedsync_otel", "WEDSYNC_OTEL_ENABLED": ""}, True),
        ({"OTEL_PYTHON_CONFIGURATOR": "wedsync_otel", "WEDSYNC_OTEL_ENABLED": "  "}, True),
        *(
            ({"WEDSYNC_OTEL_ENABLED": on}, True)
            for on in ("true", "1", "yes", "on", " TRUE ", "Yes", "ON")
        ),
        ({"OTEL_PYTHON_CONFIGURATOR": "configurator", "WEDSYNC_OTEL_ENABLED": "true"}, True),
        *(
            ({"OTEL_PYTHON_CONFIGURATOR": "wedsync_otel", "WEDSYNC_OTEL_ENABLED": off}, False)
            for off in ("false", "0", "no", "off", "FALSE", " Off ")
        ),
    ],
)
def test_asked_follows_the_switch_then_the_configurator(
    environ: dict[str, str], expected: bool, caplog: pytest.LogCaptureFixture
) -> None:
    """WEDSYNC_OTEL_ENABLED decides when set; unset, only our configurator asks."""
    with caplog.at_level(logging.WARNING, logger="wedsync_otel"):
        assert autoinstrument.asked(environ) is expected
    assert caplog.records == []


@pytest.mark.parametrize("value", ["maybe", "2", "enabled", "tru"])
def test_asked_with_a_bad_switch_says_so_once_and_is_off(
    value: str, caplog: pytest.LogCaptureFixture
) -> None:
    """A value that will not parse: one warning naming the variable and the value; off."""
    environ = {"OTEL_PYTHON_CONFIGURATOR": "wedsync_otel", "WEDSYNC_OTEL_ENABLED": value}
    with caplog.at_level(logging.WARNING, logger="wedsync_otel"):
        assert autoinstrument.asked(environ) is False
    (record,) = caplog.records
    assert "WEDSYNC_OTEL_ENABLED" in record.getMessage()
    assert repr(value) in record.getMessage()
    assert "wedding enrichment is off" in record.getMessage()


# --- install, in process: what it changes, and that a failure changes nothing --------------


Globals = tuple[TracerProvider, PeriodicExportingMetricReader]


@pytest.fixture
def global_providers(monkeypatch: pytest.MonkeyPatch) -> Iterator[Globals]:
    """SDK providers `install` takes for the global ones, and no installation yet."""
    exporter = InMemorySpanExporter()
    provider = TracerProvider(sampler=ALWAYS_OFF)
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    reader = PeriodicExportingMetricReader(CapturingExporter(), export_interval_millis=3.6e6)
    meter_provider = MeterProvider(metric_readers=[reader])
    monkeypatch.setattr(trace, "get_tracer_provider", lambda: provider)
    monkeypatch.setattr(metrics, "get_meter_provider", lambda: meter_provider)
    monkeypatch.setattr(autoinstrument, "_installed", None)
    yield provider, reader
    provider.shutdown()
    meter_provider.shutdown()


def test_install_wraps_the_sampler_when_measure_unsampled(
    global_providers: Globals,
) -> None:
    """measure_unsampled (the default): the provider's sampler records dropped requests."""
    provider, _ = global_providers
    autoinstrument.install(WeddingConfig.default(), tracers_exist=False)
    assert isinstance(provider.sampler, RequestRecordingSampler)
    assert provider.sampler.inner is ALWAYS_OFF


def test_install_keeps_the_sampler_without_measure_unsampled(
    global_providers: Globals,
) -> None:
    """measure_unsampled=False: the user's sampler is left exactly as it was."""
    provider, _ = global_providers
    config = WeddingConfig(measure_unsampled=False)
    autoinstrument.install(config, tracers_exist=False)
    assert provider.sampler is ALWAYS_OFF


def test_a_failed_install_puts_the_pipeline_back(
    global_providers: Globals, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An internal error midway: span processors, metric exporter and sampler as they were."""
    provider, reader = global_providers
    processors = provider._active_span_processor._span_processors
    exporter = reader._exporter

    def broken(*args: object) -> None:
        raise RuntimeError("boom")

    monkeypatch.setattr(autoinstrument, "register_self_metrics", broken)
    with pytest.raises(RuntimeError, match="boom"):
        autoinstrument.install(WeddingConfig.default())
    assert provider._active_span_processor._span_processors == processors
    assert reader._exporter is exporter
    assert provider.sampler is ALWAYS_OFF
    assert autoinstrument._installed is None
