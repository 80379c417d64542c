"""Zero-code: a Starlette app under ``opentelemetry-instrument``, in a subprocess."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

APP = textwrap.dedent(
    """
    from starlette.applications import Starlette
    from starlette.responses import JSONResponse
    from starlette.routing import Route
    from starlette.testclient import TestClient

    async def charge(request):
        return JSONResponse({"ok": True})

    app = Starlette(routes=[Route("/api/payments/{payment_id}", charge)])
    with TestClient(app) as client:
        assert client.get("/api/payments/42").status_code == 200
    """
)


def run_instrumented(tmp_path: Path, **env: str) -> str:
    script = tmp_path / "app.py"
    script.write_text(APP)
    instrument = Path(sys.executable).parent / "opentelemetry-instrument"
    environment = {
        key: value for key, value in os.environ.items() if not key.startswith(("OTEL_", "WEDSYNC_"))
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
    environment.pop("PYTEST_CURRENT_TEST", None)
    result = subprocess.run(
        [str(instrument), sys.executable, str(script)],
        capture_output=True,
        text=True,
        env=environment,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout


@pytest.mark.parametrize(
    "env",
    [
        pytest.param({"OTEL_PYTHON_CONFIGURATOR": "wedsync_otel"}, id="our-configurator"),
        pytest.param(
            {"OTEL_PYTHON_CONFIGURATOR": "configurator"}, id="beside-opentelemetry-distro"
        ),
    ],
)
def test_opentelemetry_instrument_enriches_server_spans(
    tmp_path: Path, env: dict[str, str]
) -> None:
    """The console exporter prints the server span with its wedding attributes and route."""
    out = run_instrumented(tmp_path, **env)
    assert '"http.route": "/api/payments/{payment_id}"' in out
    assert '"wedding.endpoint": "payments"' in out
    assert '"wedding.threshold_ms"' in out
    assert '"wedding.apdex"' in out
    assert '"wedding.server.duration"' in out
