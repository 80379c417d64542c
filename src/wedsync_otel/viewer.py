"""A trace backend to look at: Arize Phoenix on loopback, behind rotel (extra ``viewer``).

`start_viewer` starts two processes, each in its own process group:

- Phoenix (``arize-phoenix``), an OTLP trace store with a web UI, on 127.0.0.1 and free ports,
  with its outbound-network features off (``PHOENIX_ALLOW_EXTERNAL_RESOURCES=false``,
  ``PHOENIX_TELEMETRY_ENABLED=false``, no agent assistant, no MCP server) and its data in a
  private temporary directory. Phoenix binds its OTLP/gRPC receiver to every interface
  (``[::]``, hard-coded in ``phoenix.server.grpc_server``); the launcher here
  (``python -m wedsync_otel.viewer``) rewrites that address to 127.0.0.1 before Phoenix starts.
- rotel through ``collector-config/rotel/run.sh`` (the WedSync trace processor included),
  receiving OTLP on loopback and forwarding traces to Phoenix's OTLP/HTTP endpoint
  (``ROTEL_OTLP_EXPORTER_PROTOCOL=http``). Phoenix stores no metrics, so rotel's metrics and
  logs receivers are off: send metrics elsewhere.

Point the application's OTLP/gRPC span exporter at `Viewer.otlp_endpoint` and open
`Viewer.ui_url`. Every wait is bounded by a deadline; `Viewer.close` ends both process groups.
"""

from __future__ import annotations

import contextlib
import functools
import importlib.metadata
import importlib.util
import json
import os
import shutil
import socket
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

from wedsync_otel._closing import ClosesOnExit
from wedsync_otel._process import EXITED, ChildProcess, free_port, log_tail, spawn, wait_until
from wedsync_otel.errors import ViewerStartError, ViewerUnavailable

LOOPBACK: Final = "127.0.0.1"
DEFAULT_PROJECT: Final = "default"
"""Phoenix's project for spans without ``openinference.project.name`` in their resource."""
START_TIMEOUT_S: Final = 90.0
STOP_TIMEOUT_S: Final = 10.0
DELIVERY_TIMEOUT_S: Final = 30.0
_POLL_S: Final = 0.2
_PAGE_SPANS: Final = 1000
_PORT_ATTEMPTS: Final = 3
_LOG_TAIL_CHARS: Final = 3000

PHOENIX_ENV: Final[Mapping[str, str]] = {
    "PHOENIX_HOST": LOOPBACK,
    "PHOENIX_ALLOW_EXTERNAL_RESOURCES": "false",
    "PHOENIX_TELEMETRY_ENABLED": "false",
    "PHOENIX_DISABLE_AGENT_ASSISTANT": "true",
    "PHOENIX_ENABLE_MCP_SERVER": "false",
    "PHOENIX_ENABLE_PROMETHEUS": "false",
}
"""Loopback, and nothing Phoenix would fetch from or send to the internet on its own."""


def _rotel_run_sh() -> Path:
    """``collector-config/rotel/run.sh`` of this checkout (it is not in the wheel)."""
    candidate = Path(__file__).resolve().parents[2] / "collector-config" / "rotel" / "run.sh"
    if not candidate.is_file():
        raise ViewerUnavailable(f"{candidate} not found: run from a wedsync-otel checkout")
    return candidate


def _rotel_agent() -> Path:
    spec = importlib.util.find_spec("rotel")  # locate without running the package's code
    if spec is None or spec.origin is None:
        raise ViewerUnavailable("the `rotel` package is not installed (pip install rotel)")
    agent = Path(spec.origin).parent / "rotel-agent"
    if not os.access(agent, os.X_OK):
        raise ViewerUnavailable(f"{agent} is missing or not executable")
    return agent


def _require_phoenix() -> None:
    try:  # by distribution: arize-phoenix-client alone also provides a `phoenix` package
        importlib.metadata.version("arize-phoenix")
    except importlib.metadata.PackageNotFoundError:
        raise ViewerUnavailable(
            "Arize Phoenix is not installed: pip install 'wedsync-otel[viewer]'"
        ) from None


def _http_ok(url: str, timeout_s: float) -> str | None:
    """None once ``url`` answers 200, else why not."""
    try:
        with urllib.request.urlopen(url, timeout=timeout_s) as response:
            return None if response.status == 200 else f"HTTP {response.status}"
    except (OSError, urllib.error.URLError) as exc:
        return str(exc)


def _tcp_open(port: int, timeout_s: float) -> str | None:
    """None once something accepts connections on ``port``, else why not."""
    try:
        with socket.create_connection((LOOPBACK, port), timeout=timeout_s):
            return None
    except OSError as exc:
        return str(exc)


@dataclass
class Viewer(ClosesOnExit):
    """Phoenix and rotel in front of it; close() (or the with block) stops both."""

    ui_url: str
    """Phoenix's web UI and REST API (``/v1``), e.g. ``http://127.0.0.1:41234``."""
    otlp_endpoint: str
    """rotel's OTLP/gRPC receiver, for the application's span exporter."""
    otlp_http_endpoint: str
    """rotel's OTLP/HTTP receiver (base URL; traces at ``/v1/traces``)."""
    workdir: Path
    _processes: list[ChildProcess] = field(default_factory=list, repr=False)
    _own_workdir: bool = field(default=False, repr=False)

    @property
    def phoenix_traces_url(self) -> str:
        """Phoenix's own OTLP/HTTP traces endpoint, which rotel forwards to."""
        return f"{self.ui_url}/v1/traces"

    @property
    def pids(self) -> tuple[int, ...]:
        """Process ids (and process-group ids) of Phoenix and rotel."""
        return tuple(process.pid for process in self._processes)

    def spans(self, project: str = DEFAULT_PROJECT, *, limit: int = 1000) -> list[dict[str, Any]]:
        """The spans Phoenix holds in ``project``, newest first, from its REST API."""
        data, _ = self._span_page(project, {"limit": limit})
        return data

    def span_count(
        self, project: str = DEFAULT_PROJECT, *, roots_only: bool = False, cap: int = 100_000
    ) -> int:
        """How many spans (or root spans: requests) ``project`` holds, counted up to ``cap``."""
        query: dict[str, str | int] = {"limit": _PAGE_SPANS}
        if roots_only:
            query["parent_id"] = "null"
        count = 0
        while count < cap:
            data, cursor = self._span_page(project, query)
            count += len(data)
            if cursor is None:
                break
            query["cursor"] = cursor
        return min(count, cap)

    def wait_for_requests(
        self,
        expected: int,
        project: str = DEFAULT_PROJECT,
        *,
        timeout_s: float = DELIVERY_TIMEOUT_S,
    ) -> int:
        """Root spans (requests) stored, once there are ``expected`` or at the deadline.

        rotel batches for 200 ms and Phoenix inserts in bulk every second or so, so
        spans flushed to rotel appear over a few seconds.
        """
        deadline = time.monotonic() + timeout_s
        while True:
            count = self.span_count(project, roots_only=True)
            if count >= expected or time.monotonic() >= deadline:
                return count
            time.sleep(_POLL_S)  # Phoenix offers no change feed: poll, bounded by the deadline

    def _span_page(
        self, project: str, query: Mapping[str, str | int]
    ) -> tuple[list[dict[str, Any]], str | None]:
        encoded = urllib.parse.urlencode(query)
        url = f"{self.ui_url}/v1/projects/{urllib.parse.quote(project, safe='')}/spans?{encoded}"
        try:
            with urllib.request.urlopen(url, timeout=5.0) as response:
                body: dict[str, Any] = json.load(response)
        except urllib.error.HTTPError as exc:
            if exc.code == 404:  # the project appears with its first span
                return [], None
            raise
        data: list[dict[str, Any]] = body.get("data", [])
        cursor = body.get("next_cursor")
        return data, cursor if isinstance(cursor, str) else None

    def wait_for_spans(
        self,
        names: set[str],
        *,
        project: str = DEFAULT_PROJECT,
        timeout_s: float = DELIVERY_TIMEOUT_S,
    ) -> dict[str, dict[str, Any]]:
        """The newest stored span of each name in ``names``, polling Phoenix until all are there.

        Raises TimeoutError naming the missing ones if they are not all stored within
        ``timeout_s`` (rotel batches for 200 ms and Phoenix inserts in bulk every second or so).
        """
        deadline = time.monotonic() + timeout_s
        while True:
            found: dict[str, dict[str, Any]] = {}
            for span in self.spans(project):
                found.setdefault(str(span.get("name")), span)
            if names <= found.keys():
                return {name: found[name] for name in names}
            if time.monotonic() >= deadline:
                missing = ", ".join(sorted(names - found.keys()))
                raise TimeoutError(f"Phoenix at {self.ui_url} has no span named: {missing}")
            time.sleep(_POLL_S)  # Phoenix offers no change feed: poll, bounded by the deadline

    def close(self) -> None:
        """Stop rotel, then Phoenix (each process group); remove a private workdir."""
        for process in reversed(self._processes):
            process.stop(STOP_TIMEOUT_S)
        self._processes.clear()
        if self._own_workdir:
            shutil.rmtree(self.workdir, ignore_errors=True)


def _start_phoenix(workdir: Path, deadline: float) -> tuple[ChildProcess, int]:
    log_path = workdir / "phoenix.log"
    for attempt in range(1, _PORT_ATTEMPTS + 1):
        port, grpc_port = free_port(), free_port()
        env = {
            **os.environ,
            **PHOENIX_ENV,
            "PHOENIX_PORT": str(port),
            "PHOENIX_GRPC_PORT": str(grpc_port),
            "PHOENIX_WORKING_DIR": str(workdir / "phoenix"),
        }
        for name in ("PHOENIX_SQL_DATABASE_URL", "PHOENIX_COLLECTOR_ENDPOINT"):
            env.pop(name, None)  # a private SQLite store, and no self-tracing
        argv = [sys.executable, "-m", "wedsync_otel.viewer"]
        process = spawn(argv, env=env, cwd=workdir, log_path=log_path)
        reason = wait_until(
            functools.partial(_http_ok, f"http://{LOOPBACK}:{port}/healthz"),
            process,
            deadline=deadline,
            what=f"Phoenix on {LOOPBACK}:{port}",
            probe_timeout_s=1.0,
            poll_s=_POLL_S,
        )
        if reason is None:
            return process, port
        process.stop(STOP_TIMEOUT_S)
        tail = log_tail(log_path, _LOG_TAIL_CHARS)
        port_taken = "address already in use" in tail.lower()
        if reason == EXITED and port_taken and attempt < _PORT_ATTEMPTS:
            continue
        raise ViewerStartError(f"{reason}\n--- {log_path} (tail) ---\n{tail}")
    raise AssertionError("unreachable: the last attempt returns or raises")


def _start_rotel(
    workdir: Path, phoenix_port: int, deadline: float
) -> tuple[ChildProcess, int, int]:
    agent, run_sh = _rotel_agent(), _rotel_run_sh()
    log_path = workdir / "rotel.log"
    for attempt in range(1, _PORT_ATTEMPTS + 1):
        grpc_port, http_port = free_port(), free_port()
        env = {
            **os.environ,
            "WEDSYNC_PYTHON": sys.executable,
            "ROTEL_AGENT": str(agent),
            "ROTEL_OTLP_GRPC_ENDPOINT": f"{LOOPBACK}:{grpc_port}",
            "ROTEL_OTLP_HTTP_ENDPOINT": f"{LOOPBACK}:{http_port}",
            "ROTEL_OTLP_RECEIVER_METRICS_DISABLED": "true",
            "ROTEL_OTLP_RECEIVER_LOGS_DISABLED": "true",
            "ROTEL_OTLP_EXPORTER_PROTOCOL": "http",
            "ROTEL_OTLP_EXPORTER_ENDPOINT": f"http://{LOOPBACK}:{phoenix_port}",
            "ROTEL_PID_FILE": str(workdir / "rotel.pid"),
            "ROTEL_LOG_FILE": str(workdir / "rotel-daemon.log"),
        }
        process = spawn(["/bin/sh", str(run_sh)], env=env, cwd=workdir, log_path=log_path)
        reason = wait_until(
            functools.partial(_tcp_open, grpc_port),
            process,
            deadline=deadline,
            what=f"rotel on {LOOPBACK}:{grpc_port}",
            probe_timeout_s=0.5,
            poll_s=_POLL_S,
        )
        if reason is None:
            return process, grpc_port, http_port
        process.stop(STOP_TIMEOUT_S)
        tail = log_tail(log_path, _LOG_TAIL_CHARS)
        port_taken = "address already in use" in tail.lower()
        if reason == EXITED and port_taken and attempt < _PORT_ATTEMPTS:
            continue
        raise ViewerStartError(f"{reason}\n--- {log_path} (tail) ---\n{tail}")
    raise AssertionError("unreachable: the last attempt returns or raises")


def start_viewer(*, workdir: Path | None = None, timeout_s: float = START_TIMEOUT_S) -> Viewer:
    """Start Phoenix and rotel in front of it on loopback; raise if either cannot start.

    ``workdir`` holds Phoenix's database and both logs (default: a temporary directory,
    removed by `Viewer.close`). Raises `ViewerUnavailable` when Phoenix or rotel is not
    installed, `ViewerStartError` when one does not answer within ``timeout_s``.
    """
    _require_phoenix()
    _rotel_agent()
    deadline = time.monotonic() + timeout_s
    own = workdir is None
    root = Path(tempfile.mkdtemp(prefix="wedsync-viewer-")) if workdir is None else workdir
    processes: list[ChildProcess] = []
    try:
        phoenix, phoenix_port = _start_phoenix(root, deadline)
        processes.append(phoenix)
        rotel, grpc_port, http_port = _start_rotel(root, phoenix_port, deadline)
        processes.append(rotel)
    except BaseException:
        for process in reversed(processes):
            process.stop(STOP_TIMEOUT_S)
        if own:
            shutil.rmtree(root, ignore_errors=True)
        raise
    return Viewer(
        ui_url=f"http://{LOOPBACK}:{phoenix_port}",
        otlp_endpoint=f"http://{LOOPBACK}:{grpc_port}",
        otlp_http_endpoint=f"http://{LOOPBACK}:{http_port}",
        workdir=root,
        _processes=processes,
        _own_workdir=own,
    )


@contextlib.contextmanager
def running_viewer(*, timeout_s: float = START_TIMEOUT_S) -> Iterator[Viewer]:
    """`start_viewer` as a context manager."""
    viewer = start_viewer(timeout_s=timeout_s)
    try:
        yield viewer
    finally:
        viewer.close()


# --- the Phoenix launcher (runs in the child process) --------------------------------------


def _loopback_address(address: str) -> str:
    """``[::]:4317`` or ``0.0.0.0:4317`` -> ``127.0.0.1:4317``; other addresses unchanged."""
    host, _, port = address.rpartition(":")
    return f"{LOOPBACK}:{port}" if host in ("[::]", "0.0.0.0", "") else address


def _bind_grpc_to_loopback() -> None:
    """Make every gRPC aio server created from now on bind its ports to 127.0.0.1 only."""
    import grpc.aio  # noqa: PLC0415 - only the launcher needs it

    create = grpc.aio.server

    def loopback_server(*args: Any, **kwargs: Any) -> grpc.aio.Server:
        server = create(*args, **kwargs)
        add_insecure = server.add_insecure_port
        add_secure = server.add_secure_port

        def add_insecure_port(address: str) -> int:
            return add_insecure(_loopback_address(address))

        def add_secure_port(address: str, server_credentials: grpc.ServerCredentials) -> int:
            return add_secure(_loopback_address(address), server_credentials)

        server.add_insecure_port = add_insecure_port  # type: ignore[method-assign]
        server.add_secure_port = add_secure_port  # type: ignore[method-assign]
        return server

    grpc.aio.server = loopback_server


def _serve_phoenix() -> int:
    """``phoenix serve`` with its gRPC receiver on loopback; configured by environment."""
    _bind_grpc_to_loopback()
    from phoenix.server.main import main  # noqa: PLC0415 - heavy; the launcher only

    sys.argv = ["phoenix", "serve"]
    main()
    return 0


if __name__ == "__main__":
    sys.exit(_serve_phoenix())
