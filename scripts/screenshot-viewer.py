"""Screenshot Phoenix's UI showing a span enriched by wedsync-otel, for docs/viewer.md.

    .venv/bin/python scripts/screenshot-viewer.py [docs/viewer-span.png]

Starts the viewer (Phoenix behind rotel, loopback only), sends a wedding-day payment request
that breaches its threshold and a few ordinary requests through rotel, waits until Phoenix
stores them, and has Debian's headless ``chromium`` (``apt-get install chromium``) load the
payment span's page. Chromium runs with a throw-away profile and its background networking off.
"""

from __future__ import annotations

import datetime as dt
import io
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Final

from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.metrics.export import ConsoleMetricExporter
from opentelemetry.trace import SpanKind
from opentelemetry.util.types import AttributeValue

import wedsync_otel
from wedsync_otel.viewer import start_viewer

ROOT: Final = Path(__file__).resolve().parent.parent
DEFAULT_OUTPUT: Final = ROOT / "docs" / "viewer-span.png"
CHROMIUM_TIMEOUT_S: Final = 60.0
RENDER_BUDGET_MS: Final = 15_000
"""Virtual time Chromium gives the single-page app to fetch and render before the shot."""

BREACHED: Final = "GET /api/payments/{payment_id}"
REQUESTS: Final = (
    ("GET /api/venues/{venue_id}/availability", "/api/venues/{venue_id}/availability", 0.0),
    ("GET /api/weddings/{wedding_id}/rsvps", "/api/weddings/{wedding_id}/rsvps", 0.0),
    (BREACHED, "/api/payments/{payment_id}", 0.2),
)


def chromium_argv(url: str, output: Path, profile: Path) -> list[str]:
    """Headless Chromium with nothing running in the background and a private profile."""
    executable = shutil.which("chromium") or shutil.which("chromium-browser")
    if executable is None:
        raise SystemExit("chromium not found: apt-get install -y chromium")
    return [
        executable,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--hide-scrollbars",
        f"--user-data-dir={profile}",
        f"--virtual-time-budget={RENDER_BUDGET_MS}",
        "--window-size=1400,1350",  # tall enough for all 21 wedding.* and http.* rows
        f"--screenshot={output}",
        url,
    ]


def send_requests(endpoint: str) -> str:
    """Send the demo requests through rotel; the breached payment span's id, in hex."""
    telemetry = wedsync_otel.configure(
        service_name="wedsync-api",
        set_global=False,
        span_exporter=OTLPSpanExporter(endpoint=endpoint, insecure=True),
        metric_exporter=ConsoleMetricExporter(out=io.StringIO()),
    )
    tracer = telemetry.tracer_provider.get_tracer("screenshot-viewer")
    span_id = ""
    try:
        for name, route, pause_s in REQUESTS:
            attributes: dict[str, AttributeValue] = {
                "http.route": route,
                "http.response.status_code": 200,
            }
            with (
                tracer.start_as_current_span(
                    name, kind=SpanKind.SERVER, attributes=attributes
                ) as span,
                wedsync_otel.wedding_context(
                    wedding_id="w-42", wedding_date=dt.date.today().isoformat()
                ),
            ):
                time.sleep(pause_s)  # the request's work: long enough to breach on a wedding day
                span_id = format(span.get_span_context().span_id, "016x")
        telemetry.force_flush()
    finally:
        telemetry.shutdown()
    return span_id


def main(argv: list[str]) -> int:
    """Take the screenshot; 0 on success."""
    output = Path(argv[1]).resolve() if len(argv) > 1 else DEFAULT_OUTPUT
    output.parent.mkdir(parents=True, exist_ok=True)
    with start_viewer() as viewer, tempfile.TemporaryDirectory(prefix="wedsync-chromium-") as tmp:
        print(f"Phoenix UI: {viewer.ui_url}")
        span_id = send_requests(viewer.otlp_endpoint)
        viewer.wait_for_spans({name for name, _, _ in REQUESTS})
        url = f"{viewer.ui_url}/redirects/spans/{span_id}"
        subprocess.run(
            chromium_argv(url, output, Path(tmp)),
            check=True,
            timeout=CHROMIUM_TIMEOUT_S,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
    print(f"Screenshot of {url}: {output}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
