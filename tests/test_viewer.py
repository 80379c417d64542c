"""The viewer: enriched traces through rotel into a real Arize Phoenix, read back over REST."""

from __future__ import annotations

import datetime as dt
import io
import ipaddress
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Final

import pytest
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.metrics.export import ConsoleMetricExporter
from opentelemetry.trace import SpanKind
from opentelemetry.util.types import AttributeValue

import wedsync_otel
from helpers import distribution_installed
from servers import require
from wedsync_otel import attributes as attr
from wedsync_otel.errors import ViewerUnavailable
from wedsync_otel.viewer import Viewer, start_viewer

START_TIMEOUT_S: Final = 60.0
DELIVERY_TIMEOUT_S: Final = 20.0

PAYMENT = "GET /api/payments/{payment_id}"
HEALTH = "GET /healthz"
ROUTES: Final = {PAYMENT: "/api/payments/{payment_id}", HEALTH: "/healthz"}


# pip cannot resolve the viewer extra (arize-phoenix) beside the dev extra (botocore, from
# Phoenix, needs python-dateutil < 3, the newest kubernetes >= 3, and the search gives up as too
# deep), so `make test` runs this module in a venv of its own, .venv-viewer (`make test-viewer`),
# and the main run leaves it out. Run anywhere else, it says where it belongs.
pytestmark = pytest.mark.skipif(
    not distribution_installed("arize-phoenix"),
    reason="the viewer extra lives in .venv-viewer: run `make test-viewer`",
)


@pytest.fixture(scope="module")
def viewer() -> Iterator[Viewer]:
    """Phoenix and rotel in front of it, shared by this module; both process groups end after."""
    try:
        started = start_viewer(timeout_s=START_TIMEOUT_S)
    except ViewerUnavailable as exc:
        require("Arize Phoenix with rotel (pip install 'wedsync-otel[viewer]' rotel)", exc)
    with started:
        yield started


@pytest.fixture(scope="module")
def stored(viewer: Viewer) -> dict[str, dict[str, Any]]:
    """A wedding-day payment and a health check sent through rotel, as Phoenix keeps them."""
    telemetry = wedsync_otel.configure(
        service_name="wedsync-api",
        set_global=False,
        span_exporter=OTLPSpanExporter(endpoint=viewer.otlp_endpoint, insecure=True),
        metric_exporter=ConsoleMetricExporter(out=io.StringIO()),  # Phoenix keeps no metrics
    )
    tracer = telemetry.tracer_provider.get_tracer("test_viewer")
    try:
        for name, route in ROUTES.items():
            attributes: dict[str, AttributeValue] = {
                "http.route": route,
                "http.response.status_code": 200,
            }
            with (
                tracer.start_as_current_span(name, kind=SpanKind.SERVER, attributes=attributes),
                wedsync_otel.wedding_context(
                    wedding_id="w-42", wedding_date=dt.date.today().isoformat()
                ),
            ):
                pass
        assert telemetry.force_flush()
    finally:
        telemetry.shutdown()
    return viewer.wait_for_spans({PAYMENT}, timeout_s=DELIVERY_TIMEOUT_S)


def test_enriched_span_arrives_with_wedding_attributes(stored: dict[str, dict[str, Any]]) -> None:
    """The payment span reaches Phoenix with its endpoint, threshold and Apdex class intact."""
    attributes = stored[PAYMENT]["attributes"]
    assert attributes[attr.WEDDING_ENDPOINT] == "payments"
    assert isinstance(attributes[attr.WEDDING_THRESHOLD_MS], float)
    assert attributes[attr.WEDDING_THRESHOLD_MS] > 0
    assert attributes[attr.WEDDING_APDEX] == "satisfied"


def test_spans_pass_through_rotels_wedsync_processor(
    viewer: Viewer, stored: dict[str, dict[str, Any]]
) -> None:
    """The health check sent in the same batch was dropped by rotel, so rotel is in the path."""
    names = {span["name"] for span in viewer.spans()}
    assert PAYMENT in names
    assert HEALTH not in names


def _listening_ports(pid: int) -> list[tuple[str, int]]:
    """(address, port) of every TCP socket ``pid`` listens on, from /proc."""
    inodes = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        target = os.readlink(fd) if fd.is_symlink() else ""
        if target.startswith("socket:["):
            inodes.add(target[len("socket:[") : -1])
    found = []
    for table in ("tcp", "tcp6"):
        for line in Path(f"/proc/{pid}/net/{table}").read_text().splitlines()[1:]:
            fields = line.split()
            local, state, inode = fields[1], fields[3], fields[9]
            if state == "0A" and inode in inodes:  # 0A: LISTEN
                address_hex, port_hex = local.split(":")
                raw = bytes.fromhex(address_hex)
                # /proc prints each 32-bit word in host (little-endian) order.
                words = b"".join(raw[i : i + 4][::-1] for i in range(0, len(raw), 4))
                found.append((str(ipaddress.ip_address(words)), int(port_hex, 16)))
    return found


def _is_loopback(address: str) -> bool:
    ip = ipaddress.ip_address(address)
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_loopback


def test_phoenix_listens_on_loopback_only(viewer: Viewer) -> None:
    """Phoenix's web UI and both OTLP receivers (its gRPC one included) bind to loopback only."""
    phoenix_pid = viewer.pids[0]
    listening = _listening_ports(phoenix_pid)
    assert len(listening) >= 2  # the web UI with OTLP/HTTP, and OTLP/gRPC
    assert [entry for entry in listening if not _is_loopback(entry[0])] == []


def test_demo_viewer_sends_every_request_to_phoenix(tmp_path: Path) -> None:
    """`demo --viewer` stores every request's trace in Phoenix and prints where to look."""
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("OTEL_EXPORTER_OTLP", "WEDSYNC_OTEL_"))
    }
    command = [sys.executable, "-m", "wedsync_otel.cli.main", "demo", "--viewer"]
    finished = subprocess.run(
        [*command, "--duration", "2", "--plain", "--output", str(tmp_path)],
        capture_output=True,
        text=True,
        env=env,
        stdin=subprocess.DEVNULL,  # not a terminal: the viewer stops when the demo ends
        timeout=180,
        check=False,
    )
    assert finished.returncode == 0, finished.stderr[-3000:]
    load = re.search(r"Load done in [\d.]+ s: (\d+) requests", finished.stdout)
    stored = re.search(
        r"Viewer: Phoenix holds (\d+) of the (\d+) request traces; "
        r"open (http://127\.0\.0\.1:\d+)",
        finished.stdout,
    )
    assert load is not None, finished.stdout
    assert stored is not None, finished.stdout
    assert int(load.group(1)) > 0
    assert stored.group(1) == stored.group(2) == load.group(1)
    assert (tmp_path / "metrics.jsonl").stat().st_size > 0  # Phoenix keeps no metrics
