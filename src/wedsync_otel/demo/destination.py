"""choose_destination, viewer_destination: where the demo's telemetry goes.

An OTLP endpoint when one is set, a Phoenix viewer when asked, else OTLP JSON files; apart
from the run because each needs different extras and a different description.
"""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from opentelemetry.sdk.metrics.export import MetricExporter
from opentelemetry.sdk.trace.export import SpanExporter

from wedsync_otel.exporters import (
    METRICS_FILE,
    TRACES_FILE,
    OtlpJsonFileMetricExporter,
    OtlpJsonFileSpanExporter,
)
from wedsync_otel.viewer import Viewer, start_viewer

_OTLP_ENDPOINT_ENVS: Final = ("OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")


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
