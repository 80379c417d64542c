"""The file exporters as OpenTelemetry entry points: zero-code writes what ``report`` reads."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from importlib.metadata import entry_points
from pathlib import Path

import pytest
from opentelemetry.trace import SpanKind

from wedsync_otel.exporters import (
    OtlpJsonFileMetricExporter,
    OtlpJsonFileSpanExporter,
    read_metrics,
    read_spans,
)
from wedsync_otel.exporters.otlp_json import DEFAULT_JSON_DIR, JSON_DIR_ENV

NAME = "wedsync_otlp_json"


@pytest.mark.parametrize(
    ("group", "exporter"),
    [
        ("opentelemetry_traces_exporter", OtlpJsonFileSpanExporter),
        ("opentelemetry_metrics_exporter", OtlpJsonFileMetricExporter),
    ],
)
def test_entry_points_name_the_file_exporters(group: str, exporter: type) -> None:
    """OTEL_TRACES_EXPORTER / OTEL_METRICS_EXPORTER=wedsync_otlp_json load our exporters."""
    (found,) = entry_points(group=group, name=NAME)
    assert found.load() is exporter


def test_exporters_built_without_arguments_write_to_the_variables_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """As the SDK's configurator builds them, with no argument: WEDSYNC_OTEL_JSON_DIR decides."""
    monkeypatch.setenv(JSON_DIR_ENV, str(tmp_path / "telemetry"))
    assert OtlpJsonFileSpanExporter().path == tmp_path / "telemetry" / "traces.jsonl"
    assert OtlpJsonFileMetricExporter().path == tmp_path / "telemetry" / "metrics.jsonl"


@pytest.mark.parametrize("value", [None, "", "  "], ids=["unset", "empty", "blank"])
def test_without_the_variable_they_write_under_the_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, value: str | None
) -> None:
    """Unset or empty: ./wedsync-telemetry, fixed when built, so a later chdir does not move it."""
    if value is None:
        monkeypatch.delenv(JSON_DIR_ENV, raising=False)
    else:
        monkeypatch.setenv(JSON_DIR_ENV, value)
    monkeypatch.chdir(tmp_path)
    exporter = OtlpJsonFileSpanExporter()
    monkeypatch.chdir(tmp_path.parent)
    assert exporter.path == tmp_path / DEFAULT_JSON_DIR / "traces.jsonl"


def test_an_argument_wins_over_the_variable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A directory given in code is used whatever the environment says."""
    monkeypatch.setenv(JSON_DIR_ENV, str(tmp_path / "ignored"))
    assert OtlpJsonFileSpanExporter(tmp_path).path == tmp_path / "traces.jsonl"


# --- end to end: a third-party FastAPI + sqlite3 app under opentelemetry-instrument ---------


APP = textwrap.dedent(
    """
    import sqlite3

    from fastapi import FastAPI
    from starlette.testclient import TestClient

    app = FastAPI()
    db = sqlite3.connect(":memory:", check_same_thread=False)
    db.execute("create table items (id integer primary key, name text)")
    db.executemany("insert into items values (?, ?)", [(i, f"item {i}") for i in range(10)])

    @app.get("/items/{item_id}")
    def item(item_id: int):
        cursor = db.cursor()  # cursors, as SQLAlchemy uses them: what the dbapi wrapper traces
        cursor.execute("select name from items where id = ?", (item_id,))
        row = cursor.fetchone()
        return {"name": row[0] if row else None}

    @app.post("/api/payments/{payment_id}")
    def pay(payment_id: int):
        cursor = db.cursor()
        cursor.execute("select count(*) from items")
        cursor.fetchone()
        return {"ok": True}

    with TestClient(app) as client:
        for i in range(ITEMS):
            assert client.get(f"/items/{i % 10}").status_code == 200
        for i in range(PAYMENTS):
            assert client.post(f"/api/payments/{i}").status_code == 200
    """
)
ITEMS, PAYMENTS = 30, 20


def _clean_environment(**extra: str) -> dict[str, str]:
    environment = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("OTEL_", "WEDSYNC_")) and key != "PYTEST_CURRENT_TEST"
    }
    environment.update(extra)
    return environment


def _run_instrumented(tmp_path: Path, out: Path, setup: dict[str, str]) -> None:
    script = tmp_path / "app.py"
    script.write_text(f"ITEMS, PAYMENTS = {ITEMS}, {PAYMENTS}\n{APP}", encoding="utf-8")
    instrument = Path(sys.executable).parent / "opentelemetry-instrument"
    environment = _clean_environment(
        **setup,
        OTEL_TRACES_EXPORTER=NAME,
        OTEL_METRICS_EXPORTER=NAME,
        OTEL_LOGS_EXPORTER="none",
        OTEL_SERVICE_NAME="third-party",
        WEDSYNC_OTEL_JSON_DIR=str(out),
    )
    result = subprocess.run(
        [str(instrument), sys.executable, "-W", "ignore::DeprecationWarning", str(script)],
        capture_output=True,
        text=True,
        env=environment,
        cwd=tmp_path,
        timeout=180,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]


@pytest.fixture(
    scope="module",
    params=[
        pytest.param({"OTEL_PYTHON_CONFIGURATOR": "wedsync_otel"}, id="our-configurator"),
        pytest.param(
            {"OTEL_PYTHON_CONFIGURATOR": "configurator", "WEDSYNC_OTEL_ENABLED": "true"},
            id="beside-opentelemetry-distro",  # another distro's configurator: asked explicitly
        ),
    ],
)
def zero_code_output(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Path:
    """The directory the app wrote through the entry points, with no code of ours in it."""
    tmp_path = tmp_path_factory.mktemp("zero-code")
    out = tmp_path / "telemetry"
    _run_instrumented(tmp_path, out, request.param)
    return out


def test_zero_code_writes_enriched_traces_and_wedding_metrics(zero_code_output: Path) -> None:
    """traces.jsonl holds every request enriched; metrics.jsonl the wedding duration histogram."""
    assert sorted(path.name for path in zero_code_output.iterdir()) == [
        "metrics.jsonl",
        "traces.jsonl",
    ]
    requests = [
        span for span in read_spans(zero_code_output) if "wedding.endpoint" in span.attributes
    ]
    assert len(requests) == ITEMS + PAYMENTS
    queries = [span for span in read_spans(zero_code_output) if span.kind is SpanKind.CLIENT]
    assert len(queries) == ITEMS + PAYMENTS  # one sqlite3 query per request, in its trace
    assert all(span.attributes["wedding.db.queries"] == 1 for span in requests)
    names = {record.name for record in read_metrics(zero_code_output)}
    assert "wedding.server.duration" in names


def test_report_reads_what_zero_code_wrote(zero_code_output: Path) -> None:
    """``wedsync-otel report DIR``: the app's endpoints, judged by its spans, no --config."""
    result = subprocess.run(
        [sys.executable, "-m", "wedsync_otel.cli.main", "report", str(zero_code_output), "--json"],
        capture_output=True,
        text=True,
        env=_clean_environment(),
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["judged_by"] == "spans"
    assert report["requests"] == ITEMS + PAYMENTS
    assert report["unenriched_request_spans"] == 0
    endpoints = report["endpoints"]
    assert list(endpoints) == ["payments", "other"]  # no catalogue endpoint the app lacks
    assert endpoints["payments"]["requests"] == PAYMENTS
    assert endpoints["payments"]["critical"] is True
    assert endpoints["payments"]["readiness"] == "at_risk"  # 20 requests: too few to judge
    assert endpoints["other"]["requests"] == ITEMS
    assert endpoints["other"]["readiness"] is None
    assert report["reasons"] == ["payments: only 20 requests in the last hour (need 100 to judge)"]
