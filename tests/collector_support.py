"""Test helpers for collector-config/: static checks of collector files, rotel and an OTLP sink.

The contrib collector cannot be installed here, so its files are checked statically
(`pipeline_problems`, `wedding_names`) and its tail-sampling policies are evaluated by
`wedsync_otel.collector.tail_sampling` on traces converted with `to_trace`.

rotel can: `start_rotel` runs ``collector-config/rotel/run.sh`` (the script users run)
on loopback with free ports, and `OtlpSink` is a real gRPC OTLP receiver (trace and
metrics services from ``opentelemetry-proto``) that records what rotel forwards. Every
wait is bounded and waits on a real event, never a bare sleep.
"""

from __future__ import annotations

import array
import enum
import gc
import importlib.util
import os
import re
import subprocess
import sys
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent import futures
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any, Final, Self

import grpc
import yaml
from opentelemetry.proto.collector.metrics.v1 import metrics_service_pb2, metrics_service_pb2_grpc
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2, trace_service_pb2_grpc
from opentelemetry.proto.common.v1.common_pb2 import AnyValue
from opentelemetry.proto.metrics.v1.metrics_pb2 import Metric
from opentelemetry.proto.trace.v1.trace_pb2 import Span as ProtoSpan
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.trace import SpanKind, Tracer
from opentelemetry.trace import StatusCode as OtelStatusCode
from opentelemetry.util.types import AttributeValue

from wedsync_otel import attributes as contract
from wedsync_otel._closing import ClosesOnExit
from wedsync_otel._process import EXITED, ChildProcess, free_port, log_tail, spawn, wait_until
from wedsync_otel.collector.tail_sampling import SampledSpan, StatusCode, Trace

ROOT: Final = Path(__file__).resolve().parent.parent
CONFIG_DIR: Final = ROOT / "collector-config"
COLLECTOR_FILES: Final = ("agent.yaml", "gateway.yaml", "loadbalancing.yaml")
ROTEL_DIR: Final = CONFIG_DIR / "rotel"
LOOPBACK: Final = "127.0.0.1"

# --- collector files ---------------------------------------------------------------------

KINDS: Final = ("receivers", "processors", "exporters", "connectors", "extensions")

KNOWN_TYPES: Final = {
    "receivers": frozenset({"otlp"}),
    "processors": frozenset({"memory_limiter", "batch", "tail_sampling", "attributes"}),
    "exporters": frozenset({"otlp", "prometheusremotewrite", "loadbalancing"}),
    "connectors": frozenset({"spanmetrics"}),
    "extensions": frozenset({"health_check", "file_storage"}),
}
"""Contrib component types these files may use; a typo in a type name is not one of them."""

CONNECTOR_SIGNALS: Final = {"spanmetrics": ("traces", "metrics")}
"""Per connector type: the pipeline signal it exports from and the one it receives into."""

SIGNALS: Final = frozenset({"traces", "metrics", "logs"})


def load_yaml(path: Path) -> dict[str, Any]:
    """A YAML file's top-level mapping."""
    loaded = yaml.safe_load(path.read_text())
    if not isinstance(loaded, dict):
        raise TypeError(f"{path}: expected a mapping at the top level, got {type(loaded)}")
    return loaded


def component_type(component_id: str) -> str:
    """``otlp`` for ``otlp/gateway``: the part before the first slash."""
    return component_id.partition("/")[0]


def _defined(config: Mapping[str, Any], kind: str) -> set[str]:
    return set(config.get(kind) or {})


def pipelines(config: Mapping[str, Any]) -> dict[str, dict[str, list[str]]]:
    """``service.pipelines``: pipeline id to its receivers, processors and exporters."""
    service = config.get("service") or {}
    return {str(name): dict(body or {}) for name, body in (service.get("pipelines") or {}).items()}


def pipeline_problems(config: Mapping[str, Any]) -> list[str]:
    """What the collector would refuse to start with: names used but not defined, and so on."""
    problems: list[str] = []
    receivers = _defined(config, "receivers") | _defined(config, "connectors")
    exporters = _defined(config, "exporters") | _defined(config, "connectors")
    processors = _defined(config, "processors")
    for name, body in pipelines(config).items():
        if component_type(name) not in SIGNALS:
            problems.append(f"pipeline {name}: not a traces, metrics or logs pipeline")
        for role, known in (
            ("receivers", receivers),
            ("processors", processors),
            ("exporters", exporters),
        ):
            problems.extend(
                f"pipeline {name}: {role[:-1]} {component!r} is not defined"
                for component in body.get(role) or []
                if component not in known
            )
        if not body.get("receivers") or not body.get("exporters"):
            problems.append(f"pipeline {name}: needs at least one receiver and one exporter")
    service = config.get("service") or {}
    extensions = _defined(config, "extensions")
    problems.extend(
        f"service.extensions: {extension!r} is not defined"
        for extension in service.get("extensions") or []
        if extension not in extensions
    )
    problems.extend(_connector_problems(config))
    problems.extend(_storage_problems(config))
    return problems


def _connector_problems(config: Mapping[str, Any]) -> list[str]:
    problems: list[str] = []
    for connector in _defined(config, "connectors"):
        exporting, receiving = CONNECTOR_SIGNALS.get(component_type(connector), ("?", "?"))
        as_exporter = [
            name
            for name, body in pipelines(config).items()
            if connector in (body.get("exporters") or [])
        ]
        as_receiver = [
            name
            for name, body in pipelines(config).items()
            if connector in (body.get("receivers") or [])
        ]
        if not as_exporter or not as_receiver:
            problems.append(f"connector {connector!r}: must end one pipeline and start another")
        problems.extend(
            f"connector {connector!r}: exports from {exporting} pipelines, not {name}"
            for name in as_exporter
            if component_type(name) != exporting
        )
        problems.extend(
            f"connector {connector!r}: receives into {receiving} pipelines, not {name}"
            for name in as_receiver
            if component_type(name) != receiving
        )
    return problems


def _storage_problems(config: Mapping[str, Any]) -> list[str]:
    """A sending queue's ``storage`` must name an extension the service turns on."""
    enabled = set((config.get("service") or {}).get("extensions") or [])
    problems: list[str] = []
    for exporter, settings in (config.get("exporters") or {}).items():
        queue = (settings or {}).get("sending_queue") or {}
        storage = queue.get("storage")
        if storage is not None and storage not in enabled:
            problems.append(f"exporter {exporter}: storage {storage!r} is not a service extension")
    return problems


def used_components(config: Mapping[str, Any]) -> set[tuple[str, str]]:
    """``(kind, id)`` of every component a pipeline or the service refers to."""
    used: set[tuple[str, str]] = set()
    connectors = _defined(config, "connectors")
    for body in pipelines(config).values():
        for role in ("receivers", "processors", "exporters"):
            for component in body.get(role) or []:
                used.add(("connectors" if component in connectors else role, component))
    for extension in (config.get("service") or {}).get("extensions") or []:
        used.add(("extensions", extension))
    return used


def defined_components(config: Mapping[str, Any]) -> set[tuple[str, str]]:
    """``(kind, id)`` of every component the file defines."""
    return {(kind, name) for kind in KINDS for name in _defined(config, kind)}


def strings(value: object) -> Iterator[str]:
    """Every string in a parsed YAML document, keys and values alike."""
    if isinstance(value, str):
        yield value
    elif isinstance(value, Mapping):
        for key, item in value.items():
            yield from strings(key)
            yield from strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from strings(item)


def wedding_names(config: Mapping[str, Any]) -> set[str]:
    """Every ``wedding.*`` attribute name the document mentions."""
    return {text for text in strings(config) if text.startswith("wedding.")}


def contract_names() -> frozenset[str]:
    """Every attribute name defined in `wedsync_otel.attributes`."""
    return frozenset(
        value for name, value in vars(contract).items() if name.isupper() and isinstance(value, str)
    )


def tail_sampling_config(config: Mapping[str, Any]) -> Mapping[str, object]:
    """The settings of the file's ``tail_sampling`` processor."""
    processors = config.get("processors") or {}
    (name,) = [key for key in processors if component_type(key) == "tail_sampling"]
    settings: Mapping[str, object] = processors[name]
    return settings


# --- traces from the SDK, as the tail sampler sees them ----------------------------------

_STATUS: Final = {
    OtelStatusCode.UNSET: StatusCode.UNSET,
    OtelStatusCode.OK: StatusCode.OK,
    OtelStatusCode.ERROR: StatusCode.ERROR,
}


def to_trace(spans: Sequence[ReadableSpan]) -> Trace:
    """The spans of one trace, exported by the SDK, as a tail-sampling `Trace`."""
    trace_ids = {span.context.trace_id for span in spans if span.context is not None}
    (trace_id,) = trace_ids
    return Trace(
        trace_id=trace_id.to_bytes(16, "big"),
        spans=tuple(
            SampledSpan(
                name=span.name,
                attributes=dict(span.attributes or {}),
                status=_STATUS[span.status.status_code],
                resource=dict(span.resource.attributes),
            )
            for span in spans
        ),
    )


def traces_by_root(spans: Sequence[ReadableSpan]) -> dict[str, Trace]:
    """Every trace among ``spans``, keyed by the name of its root span."""
    grouped: dict[int, list[ReadableSpan]] = defaultdict(list)
    for span in spans:
        if span.context is not None:
            grouped[span.context.trace_id].append(span)
    traces: dict[str, Trace] = {}
    for members in grouped.values():
        (root,) = [span for span in members if span.parent is None]
        traces[root.name] = to_trace(members)
    return traces


# --- an OTLP receiver ----------------------------------------------------------------------


def plain(value: AnyValue) -> object:
    """The Python value of an OTLP ``AnyValue``."""
    kind = value.WhichOneof("value")
    if kind is None:
        return None
    if kind == "array_value":
        return [plain(item) for item in value.array_value.values]
    if kind == "kvlist_value":
        return {item.key: plain(item.value) for item in value.kvlist_value.values}
    return getattr(value, kind)


@dataclass(frozen=True, slots=True)
class ReceivedSpan:
    """A span as it reached the sink."""

    name: str
    trace_id: bytes
    span_id: bytes
    parent_span_id: bytes
    attributes: dict[str, object]
    events: tuple[tuple[str, dict[str, object]], ...]


def _received(span: ProtoSpan) -> ReceivedSpan:
    return ReceivedSpan(
        name=span.name,
        trace_id=span.trace_id,
        span_id=span.span_id,
        parent_span_id=span.parent_span_id,
        attributes={item.key: plain(item.value) for item in span.attributes},
        events=tuple(
            (event.name, {item.key: plain(item.value) for item in event.attributes})
            for event in span.events
        ),
    )


class OtlpSink(ClosesOnExit):
    """A gRPC OTLP trace and metrics receiver on 127.0.0.1 that keeps what it is sent."""

    def __init__(self) -> None:
        self._condition = threading.Condition()
        self._spans: list[ReceivedSpan] = []
        self._metrics: list[Metric] = []
        self._server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
        # The generated *_pb2_grpc modules carry no annotations.
        trace_service_pb2_grpc.add_TraceServiceServicer_to_server(  # type: ignore[no-untyped-call]
            _TraceService(self._add_spans), self._server
        )
        metrics_service_pb2_grpc.add_MetricsServiceServicer_to_server(  # type: ignore[no-untyped-call]
            _MetricsService(self._add_metrics), self._server
        )
        self.port = self._server.add_insecure_port(f"{LOOPBACK}:0")
        self._server.start()

    @property
    def endpoint(self) -> str:
        """``http://127.0.0.1:<port>``, for an OTLP/gRPC exporter."""
        return f"http://{LOOPBACK}:{self.port}"

    def _add_spans(self, request: trace_service_pb2.ExportTraceServiceRequest) -> None:
        received = [
            _received(span)
            for resource_spans in request.resource_spans
            for scope_spans in resource_spans.scope_spans
            for span in scope_spans.spans
        ]
        with self._condition:
            self._spans.extend(received)
            self._condition.notify_all()

    def _add_metrics(self, request: metrics_service_pb2.ExportMetricsServiceRequest) -> None:
        received = [
            metric
            for resource_metrics in request.resource_metrics
            for scope_metrics in resource_metrics.scope_metrics
            for metric in scope_metrics.metrics
        ]
        with self._condition:
            self._metrics.extend(received)
            self._condition.notify_all()

    def spans(self) -> list[ReceivedSpan]:
        """Every span received so far."""
        with self._condition:
            return list(self._spans)

    def metrics(self) -> list[Metric]:
        """Every metric received so far, in arrival order."""
        with self._condition:
            return list(self._metrics)

    def wait_until(self, ready: Callable[[OtlpSink], bool], *, timeout_s: float) -> bool:
        """Wait until ``ready(self)`` holds, re-checking whenever data arrives; False on timeout."""
        deadline = time.monotonic() + timeout_s
        with self._condition:
            while not ready(self):
                left_s = deadline - time.monotonic()
                if left_s <= 0:
                    return False
                self._condition.wait(left_s)
        return True

    def close(self) -> None:
        """Stop serving; waits at most 5 s for calls in progress."""
        self._server.stop(grace=5).wait(timeout=10)


class _TraceService(trace_service_pb2_grpc.TraceServiceServicer):
    def __init__(
        self, record: Callable[[trace_service_pb2.ExportTraceServiceRequest], None]
    ) -> None:
        self._record = record

    def Export(
        self,
        request: trace_service_pb2.ExportTraceServiceRequest,
        context: grpc.ServicerContext,
    ) -> trace_service_pb2.ExportTraceServiceResponse:
        self._record(request)
        return trace_service_pb2.ExportTraceServiceResponse()


class _MetricsService(metrics_service_pb2_grpc.MetricsServiceServicer):
    def __init__(
        self, record: Callable[[metrics_service_pb2.ExportMetricsServiceRequest], None]
    ) -> None:
        self._record = record

    def Export(
        self,
        request: metrics_service_pb2.ExportMetricsServiceRequest,
        context: grpc.ServicerContext,
    ) -> metrics_service_pb2.ExportMetricsServiceResponse:
        self._record(request)
        return metrics_service_pb2.ExportMetricsServiceResponse()


# --- rotel ---------------------------------------------------------------------------------

ROTEL_START_TIMEOUT_S: Final = 20.0
ROTEL_STOP_TIMEOUT_S: Final = 10.0
_PORT_ATTEMPTS: Final = 3
_PORT_TAKEN: Final = "Address already in use"
_LOG_TAIL_CHARS: Final = 2_000


class RotelUnavailable(RuntimeError):
    """rotel cannot be had here: the package, its agent binary or the agent's runtime is missing."""


class RotelStartError(RuntimeError):
    """rotel is installed and runs, but run.sh did not bring it up: a bug on our side."""


def rotel_agent() -> Path:
    """The ``rotel-agent`` binary shipped in the ``rotel`` wheel, once it is known to run.

    The agent links the system's ``libpython3.11``; where that is missing it cannot
    start, which is the machine's lack rather than a failure of ours.
    """
    spec = importlib.util.find_spec("rotel")  # locate without running the package's code
    if spec is None or spec.origin is None:
        raise RotelUnavailable("the `rotel` package is not installed (pip install rotel)")
    agent = Path(spec.origin).parent / "rotel-agent"
    if not os.access(agent, os.X_OK):
        raise RotelUnavailable(f"{agent} is missing or not executable")
    try:
        probe = subprocess.run(
            [str(agent), "version"],
            capture_output=True,
            text=True,
            timeout=ROTEL_STOP_TIMEOUT_S,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise RotelUnavailable(f"{agent} does not run: {exc}") from exc
    if probe.returncode != 0:
        raise RotelUnavailable(f"{agent} does not run: {probe.stderr.strip()[-_LOG_TAIL_CHARS:]}")
    return agent


def agent_settings(agent: Path) -> frozenset[str]:
    """Every ``ROTEL_*`` variable that ``rotel-agent start`` reads, from its own help text."""
    help_text = subprocess.run(
        [str(agent), "start", "--help"],
        capture_output=True,
        text=True,
        timeout=ROTEL_STOP_TIMEOUT_S,
        check=True,
    ).stdout
    return frozenset(re.findall(r"\[env: (ROTEL_[A-Z0-9_]+)=", help_text))


def env_file(path: Path) -> dict[str, str]:
    """The ``KEY=value`` lines of an env file (comments and blank lines skipped)."""
    settings: dict[str, str] = {}
    for line in path.read_text().splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            key, _, value = line.partition("=")
            settings[key] = value
    return settings


class Rotel(ClosesOnExit):
    """``collector-config/rotel/run.sh`` running in its own process group."""

    def __init__(self, process: ChildProcess, *, grpc_port: int) -> None:
        self.process = process
        self.grpc_port = grpc_port

    @property
    def log_path(self) -> Path:
        """rotel's combined stdout and stderr."""
        return self.process.log_path

    @property
    def endpoint(self) -> str:
        """``127.0.0.1:<port>`` of rotel's OTLP/gRPC receiver."""
        return f"{LOOPBACK}:{self.grpc_port}"

    def log(self) -> str:
        """The tail of rotel's output."""
        return log_tail(self.log_path, _LOG_TAIL_CHARS)

    def stop(self, *, timeout_s: float = ROTEL_STOP_TIMEOUT_S) -> int | None:
        """SIGTERM the process group (rotel flushes what it holds), SIGKILL after the timeout."""
        return self.process.stop(timeout_s)

    def close(self) -> None:
        """`stop` with its default timeout: the end of a ``with`` block."""
        self.stop()


def _wait_ready(rotel: Rotel, deadline: float) -> str | None:
    """None once rotel's gRPC port answers, else why not (`EXITED` if the process ended)."""
    with grpc.insecure_channel(rotel.endpoint) as channel:
        connected = grpc.channel_ready_future(channel)

        def ready(timeout_s: float) -> str | None:
            try:
                connected.result(timeout=timeout_s)
            except grpc.FutureTimeoutError:
                return "no answer"
            return None

        try:
            return wait_until(
                ready,
                rotel.process,
                deadline=deadline,
                what=f"rotel on {rotel.endpoint}",
                probe_timeout_s=0.5,
                poll_s=0,  # the probe itself waits for the connection
            )
        finally:
            connected.cancel()


def start_rotel(
    *, exporter_endpoint: str, workdir: Path, timeout_s: float = ROTEL_START_TIMEOUT_S
) -> Rotel:
    """Start rotel through run.sh on free loopback ports, forwarding to ``exporter_endpoint``."""
    agent = rotel_agent()
    deadline = time.monotonic() + timeout_s
    log_path = workdir / "rotel.log"
    for attempt in range(1, _PORT_ATTEMPTS + 1):
        rotel = _spawn_rotel(
            agent,
            grpc_port=free_port(),
            exporter_endpoint=exporter_endpoint,
            workdir=workdir,
            log_path=log_path,
        )
        reason = _wait_ready(rotel, deadline)
        if reason is None:
            return rotel
        status = rotel.stop(timeout_s=0 if reason == EXITED else ROTEL_STOP_TIMEOUT_S)
        tail = rotel.log()
        if reason == EXITED and _PORT_TAKEN in tail and attempt < _PORT_ATTEMPTS:
            continue
        if reason == EXITED:
            reason = f"rotel exited with status {status}"
        raise RotelStartError(f"{reason}\n--- {log_path} (tail) ---\n{tail}")
    raise AssertionError("unreachable: the last attempt returns or raises")


def _spawn_rotel(
    agent: Path, *, grpc_port: int, exporter_endpoint: str, workdir: Path, log_path: Path
) -> Rotel:
    """Run run.sh with rotel's OTLP/gRPC receiver on ``grpc_port`` (HTTP on a free port)."""
    env = {
        **os.environ,
        "WEDSYNC_PYTHON": sys.executable,
        "ROTEL_AGENT": str(agent),
        "ROTEL_OTLP_GRPC_ENDPOINT": f"{LOOPBACK}:{grpc_port}",
        "ROTEL_OTLP_HTTP_ENDPOINT": f"{LOOPBACK}:{free_port()}",
        "ROTEL_OTLP_EXPORTER_ENDPOINT": exporter_endpoint,
        "ROTEL_PID_FILE": str(workdir / "rotel.pid"),
        "ROTEL_LOG_FILE": str(workdir / "rotel-daemon.log"),
    }
    process = spawn(["/bin/sh", str(ROTEL_DIR / "run.sh")], env=env, log_path=log_path)
    return Rotel(process, grpc_port=grpc_port)


def restart_rotel(
    stopped: Rotel,
    *,
    exporter_endpoint: str,
    workdir: Path,
    timeout_s: float = ROTEL_START_TIMEOUT_S,
) -> Rotel:
    """Start rotel again through run.sh on the gRPC port ``stopped`` listened on.

    The application's exporter keeps its endpoint, as it would when a collector
    restarts. ``stopped`` must have exited; if its port was taken meanwhile this
    raises `RotelStartError` rather than moving to another port.
    """
    if stopped.process.alive():
        raise RotelStartError(f"rotel (pid {stopped.process.pid}) is still running")
    agent = rotel_agent()
    deadline = time.monotonic() + timeout_s
    rotel = _spawn_rotel(
        agent,
        grpc_port=stopped.grpc_port,
        exporter_endpoint=exporter_endpoint,
        workdir=workdir,
        log_path=stopped.log_path,
    )
    reason = _wait_ready(rotel, deadline)
    if reason is None:
        return rotel
    status = rotel.stop(timeout_s=0 if reason == EXITED else ROTEL_STOP_TIMEOUT_S)
    if reason == EXITED:
        reason = f"rotel exited with status {status} on port {stopped.grpc_port}"
    raise RotelStartError(f"{reason}\n--- {rotel.log_path} (tail) ---\n{rotel.log()}")


# --- a collector that misbehaves on demand ---------------------------------------------------


class Fault(enum.Enum):
    """How a `FaultyOtlpReceiver` answers an export."""

    NONE = "healthy"
    UNAVAILABLE = "unavailable"
    """Refuses every export with ``UNAVAILABLE``, as an overloaded or restarting collector."""
    SLOW = "slow"
    """Accepts every export, but only after ``slow_s``."""


class FaultyOtlpReceiver(ClosesOnExit):
    """A real gRPC OTLP trace and metrics receiver on 127.0.0.1 whose answers can be switched.

    It counts what it accepts and keeps nothing else, so it can take a flood.
    A slow answer waits on an event that `close` sets, so closing never waits
    for the slow calls in progress.
    """

    def __init__(self, *, slow_s: float = 2.0) -> None:
        self.slow_s = slow_s
        self._condition = threading.Condition()
        self._fault = Fault.NONE
        self._accepted_spans = 0
        self._requests = 0
        self._closing = threading.Event()
        self._server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
        trace_service_pb2_grpc.add_TraceServiceServicer_to_server(  # type: ignore[no-untyped-call]
            _FaultyTraceService(self), self._server
        )
        metrics_service_pb2_grpc.add_MetricsServiceServicer_to_server(  # type: ignore[no-untyped-call]
            _FaultyMetricsService(self), self._server
        )
        self.port = self._server.add_insecure_port(f"{LOOPBACK}:0")
        self._server.start()

    @property
    def endpoint(self) -> str:
        """``http://127.0.0.1:<port>``, for an OTLP/gRPC exporter."""
        return f"http://{LOOPBACK}:{self.port}"

    def set_fault(self, fault: Fault) -> None:
        """Answer every later export this way."""
        with self._condition:
            self._fault = fault

    @property
    def accepted_spans(self) -> int:
        """Spans in the trace exports this receiver accepted."""
        with self._condition:
            return self._accepted_spans

    @property
    def requests(self) -> int:
        """Trace export requests received, accepted or not."""
        with self._condition:
            return self._requests

    def wait_for_requests(self, count: int, *, timeout_s: float) -> bool:
        """Wait until ``count`` trace export requests have arrived; False on timeout."""
        deadline = time.monotonic() + timeout_s
        with self._condition:
            while self._requests < count:
                left_s = deadline - time.monotonic()
                if left_s <= 0:
                    return False
                self._condition.wait(left_s)
        return True

    def wait_for_spans(self, count: int, *, timeout_s: float) -> bool:
        """Wait until ``count`` spans have been accepted in all; False on timeout."""
        deadline = time.monotonic() + timeout_s
        with self._condition:
            while self._accepted_spans < count:
                left_s = deadline - time.monotonic()
                if left_s <= 0:
                    return False
                self._condition.wait(left_s)
        return True

    def answer(self, context: grpc.ServicerContext, *, spans: int) -> None:
        """Apply the current fault to one export of ``spans`` spans (0 for metrics)."""
        with self._condition:
            fault = self._fault
            if spans:
                self._requests += 1
            self._condition.notify_all()
        if fault is Fault.UNAVAILABLE:
            context.abort(grpc.StatusCode.UNAVAILABLE, "test collector: unavailable")
        if fault is Fault.SLOW:
            self._closing.wait(self.slow_s)
        with self._condition:
            self._accepted_spans += spans
            self._condition.notify_all()

    def close(self) -> None:
        """End slow answers now and stop serving; waits at most 5 s for calls in progress."""
        self._closing.set()
        self._server.stop(grace=5).wait(timeout=10)


class _FaultyTraceService(trace_service_pb2_grpc.TraceServiceServicer):
    def __init__(self, receiver: FaultyOtlpReceiver) -> None:
        self._receiver = receiver

    def Export(
        self,
        request: trace_service_pb2.ExportTraceServiceRequest,
        context: grpc.ServicerContext,
    ) -> trace_service_pb2.ExportTraceServiceResponse:
        spans = sum(
            len(scope_spans.spans)
            for resource_spans in request.resource_spans
            for scope_spans in resource_spans.scope_spans
        )
        self._receiver.answer(context, spans=spans)
        return trace_service_pb2.ExportTraceServiceResponse()


class _FaultyMetricsService(metrics_service_pb2_grpc.MetricsServiceServicer):
    def __init__(self, receiver: FaultyOtlpReceiver) -> None:
        self._receiver = receiver

    def Export(
        self,
        request: metrics_service_pb2.ExportMetricsServiceRequest,
        context: grpc.ServicerContext,
    ) -> metrics_service_pb2.ExportMetricsServiceResponse:
        self._receiver.answer(context, spans=0)
        return metrics_service_pb2.ExportMetricsServiceResponse()


# --- an application under steady load ---------------------------------------------------------

STEADY_ROUTE: Final = "/api/payments/{payment_id}"
STEADY_ATTRIBUTES: Final[dict[str, AttributeValue]] = {
    "http.request.method": "GET",
    "http.route": STEADY_ROUTE,
    "http.response.status_code": 200,
    "url.path": "/api/payments/p-1042",
}
SLOW_CALL_S: Final = 0.005
"""A ``span.end()`` at least this long is kept with its start time, to be explained."""


class GcPauses:
    """The interpreter's garbage collections while installed, as (start, stop) perf_counter pairs.

    A collection holds the GIL, so every thread stands still for its length,
    whichever thread ran it; `overlap` says how much of an interval it took.
    """

    def __init__(self) -> None:
        self._pauses: list[tuple[float, float, int]] = []
        self._started = 0.0

    def _callback(self, phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            self._started = time.perf_counter()
        else:
            self._pauses.append((self._started, time.perf_counter(), info["generation"]))

    def __enter__(self) -> Self:
        gc.callbacks.append(self._callback)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        gc.callbacks.remove(self._callback)

    def overlap(self, start: float, stop: float) -> float:
        """Seconds of ``[start, stop]`` spent in garbage collection."""
        return sum(
            max(0.0, min(stop, paused_until) - max(start, paused_at))
            for paused_at, paused_until, _ in list(self._pauses)
        )

    def longest(self, start: float, stop: float) -> float:
        """The longest collection that began within ``[start, stop]``, in seconds."""
        return max(
            (until - at for at, until, _ in list(self._pauses) if start <= at <= stop),
            default=0.0,
        )


@dataclass(frozen=True, slots=True)
class SlowCall:
    """A ``span.end()`` that took at least `SLOW_CALL_S`."""

    phase: str
    started: float
    took_s: float


class SteadyLoad:
    """An application thread ending ``rate_per_s`` server spans a second, on schedule.

    Every ``tick_s`` it ends the spans that fall due (catching up if it was held
    up), so the rate holds whatever the telemetry does. It records each span id,
    the longest ``span.end()`` per phase (``set_phase`` names them), every slow
    one, and anything raised. Pacing waits on the stop event, so `stop` ends it
    at once.
    """

    def __init__(self, tracer: Tracer, *, rate_per_s: float, tick_s: float = 0.01) -> None:
        self._tracer = tracer
        self._rate_per_s = rate_per_s
        self._tick_s = tick_s
        self._lock = threading.Lock()
        self._ids = array.array("Q")
        self._phase = "warm-up"
        self._ended_by_phase: dict[str, int] = defaultdict(int)
        self._max_end_s: dict[str, float] = defaultdict(float)
        self._slow: list[SlowCall] = []
        self._errors: list[BaseException] = []
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, name="steady-load", daemon=True)

    def start(self) -> None:
        """Start ending spans."""
        self._thread.start()

    def stop(self) -> None:
        """Stop and wait for the thread (bounded: it only ever waits on the stop event)."""
        self._stopping.set()
        self._thread.join(timeout=ROTEL_STOP_TIMEOUT_S)

    def set_phase(self, phase: str) -> None:
        """Attribute the spans ended from now on to ``phase``."""
        with self._lock:
            self._phase = phase

    @property
    def ended(self) -> int:
        """Spans ended so far."""
        with self._lock:
            return len(self._ids)

    def span_ids(self) -> frozenset[bytes]:
        """The ids of every span ended, as OTLP carries them (8 bytes, big-endian)."""
        with self._lock:
            return frozenset(span_id.to_bytes(8, "big") for span_id in self._ids)

    def ended_in(self, phase: str) -> int:
        """Spans ended during ``phase``."""
        with self._lock:
            return self._ended_by_phase[phase]

    def max_end_s(self, phase: str) -> float:
        """The longest ``span.end()`` call during ``phase``, in seconds."""
        with self._lock:
            return self._max_end_s[phase]

    def slow_calls(self, phase: str) -> list[SlowCall]:
        """Every ``span.end()`` during ``phase`` that took at least `SLOW_CALL_S`."""
        with self._lock:
            return [call for call in self._slow if call.phase == phase]

    @property
    def errors(self) -> tuple[BaseException, ...]:
        """Whatever starting or ending a span raised."""
        with self._lock:
            return tuple(self._errors)

    def _run(self) -> None:
        began = time.monotonic()
        done = 0
        while not self._stopping.is_set():
            due = int((time.monotonic() - began) * self._rate_per_s)
            for _ in range(due - done):
                self._one()
            done = max(done, due)
            self._stopping.wait(self._tick_s)  # pacing the load, not waiting for a result

    def _one(self) -> None:
        try:
            span = self._tracer.start_span(
                f"GET {STEADY_ROUTE}", kind=SpanKind.SERVER, attributes=STEADY_ATTRIBUTES
            )
            started = time.perf_counter()
            span.end()
            took_s = time.perf_counter() - started
            span_id = span.get_span_context().span_id
        except BaseException as exc:  # noqa: BLE001 - recorded: the test asserts there is none
            with self._lock:
                self._errors.append(exc)
            return
        with self._lock:
            self._ids.append(span_id)
            phase = self._phase
            self._ended_by_phase[phase] += 1
            self._max_end_s[phase] = max(self._max_end_s[phase], took_s)
            if took_s >= SLOW_CALL_S:
                self._slow.append(SlowCall(phase, started, took_s))
