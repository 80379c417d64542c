"""Zero-code pass-through: a bad wedsync setting costs one line and the enrichment, nothing else."""

from __future__ import annotations

import sys
import textwrap
from pathlib import Path

import pytest

from test_autoinstrument import APP, DISTRO, OURS, Run, run_app, run_instrumented

CONFIGURATORS = [
    pytest.param(OURS, id="our-configurator"),
    pytest.param({**DISTRO, "WEDSYNC_OTEL_ENABLED": "true"}, id="beside-opentelemetry-distro"),
]


def assert_passed_through(run: Run, *named: str) -> str:
    """The SDK's telemetry as without wedsync-otel; one wedsync line naming ``named``; returned."""
    assert "Traceback" not in run.stderr
    (server,) = run.server_spans()
    assert server["attributes"]["http.route"] == "/api/payments/{payment_id}"
    assert not [key for span in run.spans() for key in span["attributes"] if "wedding" in key]
    assert not any(name.startswith("wedding.") for name in run.metric_names())
    assert "http.server.duration" in run.metric_names()
    (line,) = run.wedsync_lines()
    assert line.startswith("wedsync-otel: ")
    for name in named:
        assert name in line
    assert "wedding enrichment is off" in line
    return line


@pytest.mark.parametrize("env", CONFIGURATORS)
def test_an_unknown_key_in_the_file(tmp_path: Path, env: dict[str, str]) -> None:
    """WEDSYNC_OTEL_CONFIG naming a file with an unknown key: the line names key and file."""
    config = tmp_path / "settings.toml"
    config.write_text('colour = "ivory"\n', encoding="utf-8")
    run = run_instrumented(tmp_path, WEDSYNC_OTEL_CONFIG=str(config), **env)
    line = assert_passed_through(run, "colour", "unknown key", str(config))
    assert line.startswith(f"wedsync-otel: bad configuration in {config}: colour: unknown key")


@pytest.mark.parametrize("env", CONFIGURATORS)
def test_a_missing_file(tmp_path: Path, env: dict[str, str]) -> None:
    """WEDSYNC_OTEL_CONFIG naming no file: the line names the variable and the path."""
    missing = tmp_path / "absent.toml"
    run = run_instrumented(tmp_path, WEDSYNC_OTEL_CONFIG=str(missing), **env)
    line = assert_passed_through(run, "WEDSYNC_OTEL_CONFIG", str(missing), "cannot read the file")
    assert line.startswith(f"wedsync-otel: bad configuration in WEDSYNC_OTEL_CONFIG: {missing}: ")


@pytest.mark.parametrize("env", CONFIGURATORS)
@pytest.mark.parametrize(
    ("variable", "value", "problem"),
    [
        ("WEDSYNC_OTEL_SLOW_QUERY_MS", "fast", "must be a number, got 'fast'"),
        ("WEDSYNC_OTEL_TIMEZONE", "Mars/Olympus", "unknown time zone 'Mars/Olympus'"),
    ],
    ids=["unparsable", "invalid"],
)
def test_a_bad_value_in_a_variable(
    tmp_path: Path, env: dict[str, str], variable: str, value: str, problem: str
) -> None:
    """A WEDSYNC_OTEL_* variable that will not parse or is out of range: the line names it."""
    run = run_instrumented(tmp_path, **{variable: value}, **env)
    assert_passed_through(run, variable, problem)


@pytest.mark.parametrize(
    "env",
    [
        pytest.param({**OURS, "WEDSYNC_OTEL_ENABLED": "maybe"}, id="our-configurator"),
        pytest.param({**DISTRO, "WEDSYNC_OTEL_ENABLED": "maybe"}, id="beside-opentelemetry-distro"),
    ],
)
def test_a_bad_switch_is_off(tmp_path: Path, env: dict[str, str]) -> None:
    """WEDSYNC_OTEL_ENABLED=maybe: one line naming the variable and the value; not enriched."""
    run = run_instrumented(tmp_path, **env)
    assert_passed_through(run, "WEDSYNC_OTEL_ENABLED", "'maybe'")


BROKEN = textwrap.dedent(
    """
    import wedsync_otel.autoinstrument

    def broken(*args, **kwargs):
        raise RuntimeError("self-metrics exploded")

    wedsync_otel.autoinstrument.register_self_metrics = broken  # midway through install

    from opentelemetry.instrumentation.auto_instrumentation import initialize

    initialize()  # what opentelemetry-instrument's sitecustomize does
    """
)


@pytest.mark.parametrize("env", CONFIGURATORS)
def test_an_internal_error_in_install(tmp_path: Path, env: dict[str, str]) -> None:
    """install fails after wiring half the pipeline: undone, one line, the app runs on."""
    script = tmp_path / "app.py"
    script.write_text(BROKEN + APP, encoding="utf-8")
    run = run_app(
        [sys.executable, "-W", "ignore::DeprecationWarning", str(script)], tmp_path, **env
    )
    line = assert_passed_through(run, "RuntimeError", "self-metrics exploded")
    assert line.startswith("wedsync-otel: zero-code setup failed (RuntimeError: ")


def test_the_line_reaches_stderr_beside_the_sdks_log_handler(tmp_path: Path) -> None:
    """With the SDK's logging handler the only one, the line is exported and printed once."""
    config = tmp_path / "settings.toml"
    config.write_text('colour = "ivory"\n', encoding="utf-8")
    run = run_instrumented(
        tmp_path,
        WEDSYNC_OTEL_CONFIG=str(config),
        OTEL_LOGS_EXPORTER="console",
        OTEL_PYTHON_LOGGING_AUTO_INSTRUMENTATION_ENABLED="true",
        **OURS,
    )
    line = assert_passed_through(run, "colour", str(config))
    (record,) = [doc for doc in run.documents() if "body" in doc]
    assert record["body"] == line
