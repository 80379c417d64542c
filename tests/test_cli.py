"""The wedsync-otel command line, run as a user runs it: in a subprocess."""

from __future__ import annotations

import argparse
import datetime as dt
import io
import json
import os
import re
import subprocess
import sys
import types
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import pytest
from opentelemetry.trace import SpanKind
from rich.console import Console

import wedsync_otel
from helpers import TUESDAY, FakeClock, distribution_installed
from wedsync_otel import PerformanceSnapshot
from wedsync_otel.catalogue import EndpointSpec
from wedsync_otel.cli import plain_summary, summary_table, verdict_lines
from wedsync_otel.cli.main import build_parser, main
from wedsync_otel.config import DEFAULT_ENDPOINTS
from wedsync_otel.exporters import OtlpJsonFileMetricExporter, OtlpJsonFileSpanExporter

_NS_PER_MS = 1_000_000
_START_NS = int(TUESDAY.timestamp() * 1e9)

# (route, requests, duration ms, HTTP status); one request a second, in this order.
TRAFFIC = [
    ("/api/payments/{payment_id}", 60, 20.0, 200),
    ("/api/payments/{payment_id}", 40, 200.0, 200),
    ("/api/rsvp/{wedding_id}", 9, 250.0, 200),
    ("/api/rsvp/{wedding_id}", 1, 30.0, 503),
    ("/healthz", 5, 2.0, 200),
]

GOOD_CONFIG = """\
timezone = "Europe/London"
saturday_mode = true

[bands]
final_week = 0.75

[endpoints.payments]
patterns = ["/api/payments/**"]
threshold_ms = 150
critical = true

[endpoints.venue_availability]
patterns = ["/api/venues/availability", "/api/venues/{venue_id}/availability"]
threshold_ms = 200
critical = true
"""


@dataclass(frozen=True)
class Recorded:
    """A directory of OTLP JSON files and the live snapshot taken as they were written."""

    directory: Path
    snapshot: PerformanceSnapshot


@pytest.fixture(scope="module")
def recorded(tmp_path_factory: pytest.TempPathFactory) -> Recorded:
    """TRAFFIC through configure() into OTLP JSON files, on a Tuesday in June 2026."""
    directory = tmp_path_factory.mktemp("otlp")
    clock = FakeClock(TUESDAY)
    telemetry = wedsync_otel.configure(
        set_global=False,
        span_exporter=OtlpJsonFileSpanExporter(directory),
        metric_exporter=OtlpJsonFileMetricExporter(directory),
        metric_export_interval_millis=3_600_000,
        clock=clock,
    )
    tracer = telemetry.tracer_provider.get_tracer("cli-tests")
    requests = [(route, ms, status) for route, count, ms, status in TRAFFIC for _ in range(count)]
    newest_end_ns = 0
    for second, (route, duration_ms, status) in enumerate(requests):
        start = _START_NS + second * 1_000 * _NS_PER_MS
        span = tracer.start_span(
            f"GET {route}",
            kind=SpanKind.SERVER,
            start_time=start,
            attributes={"http.route": route, "http.response.status_code": status},
        )
        end = start + int(duration_ms * _NS_PER_MS)
        span.end(end_time=end)
        newest_end_ns = max(newest_end_ns, end)
    # The report measures its windows back from the newest span: take the live one there too.
    clock.now = dt.datetime.fromtimestamp(newest_end_ns / 1e9, tz=dt.UTC)
    snapshot = telemetry.snapshot()
    telemetry.shutdown()
    return Recorded(directory=directory, snapshot=snapshot)


def run_cli_all(*arglists: Sequence[object]) -> list[subprocess.CompletedProcess[str]]:
    """``python -m wedsync_otel.cli.main ARGS`` for each ARGS, side by side.

    Start-up dominates each run, so they share the cores; WEDSYNC_OTEL_* settings are removed.
    """
    env = {key: value for key, value in os.environ.items() if not key.startswith("WEDSYNC_OTEL")}
    commands = [
        [sys.executable, "-m", "wedsync_otel.cli.main", *map(str, args)] for args in arglists
    ]
    running = [
        subprocess.Popen(
            command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env
        )
        for command in commands
    ]
    results = []
    for command, process in zip(commands, running, strict=True):
        stdout, stderr = process.communicate(timeout=60)
        results.append(subprocess.CompletedProcess(command, process.returncode, stdout, stderr))
    return results


def run_main(capsys: pytest.CaptureFixture[str], *args: str | Path) -> tuple[int, str, str]:
    """`main` in this process, for the variants a subprocess per case would make slow."""
    try:
        code = main([str(arg) for arg in args])
    except SystemExit as exit_:  # argparse: --help and usage errors
        code = int(exit_.code or 0)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def _one_line(stderr: str) -> str:
    lines = stderr.splitlines()
    assert len(lines) == 1, stderr
    assert lines[0].startswith("error: "), stderr
    return lines[0]


def _one_error_line(result: subprocess.CompletedProcess[str]) -> str:
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: "), result.stderr
    assert "Traceback" not in result.stderr
    return lines[0]


# --- report ---------------------------------------------------------------------------------


def catalogue_toml(endpoints: Sequence[EndpointSpec]) -> str:
    """A config file holding ``endpoints`` as its catalogue, every other setting the default."""
    lines: list[str] = []
    for spec in endpoints:
        lines += [
            f"[endpoints.{spec.name}]",
            f"patterns = {json.dumps(list(spec.patterns))}",
            f"threshold_ms = {spec.threshold_ms}",
            f"critical = {str(spec.critical).lower()}",
            "",
        ]
    return "\n".join(lines)


@pytest.fixture(scope="module")
def default_catalogue(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The built-in WedSync catalogue, written out as a config file for ``--config``."""
    path = tmp_path_factory.mktemp("catalogue") / "wedsync.toml"
    path.write_text(catalogue_toml(DEFAULT_ENDPOINTS), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def report_runs(
    recorded: Recorded, default_catalogue: Path
) -> dict[str, subprocess.CompletedProcess[str]]:
    """``report DIR``, ``report DIR/traces.jsonl --json`` and both with ``--config``."""
    plain, as_json, plain_config, json_config = run_cli_all(
        ["report", recorded.directory],
        ["report", recorded.directory / "traces.jsonl", "--json"],
        ["report", recorded.directory, "--config", default_catalogue],
        ["report", recorded.directory, "--json", "--config", default_catalogue],
    )
    return {
        "plain": plain,
        "json": as_json,
        "plain+config": plain_config,
        "json+config": json_config,
    }


def _rows(stdout: str) -> dict[str, list[str]]:
    return {line.split()[0]: line.split() for line in stdout.splitlines() if line.strip()}


def test_report_prints_request_count_and_p50_per_endpoint(
    report_runs: dict[str, subprocess.CompletedProcess[str]],
) -> None:
    """The plain report shows payments' 100 requests, p50 20.0 ms and its 40 breaches."""
    result = report_runs["plain"]
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    rows = _rows(result.stdout)
    payments = rows["payments"]
    assert payments[1:3] == ["100", "20.0"]
    assert payments[5:7] == ["150", "40"]  # the threshold its spans carried, breaches
    assert rows["rsvp"][1] == "10"
    assert "Wedding-day readiness: NOT READY" in result.stdout
    assert "2026-06-16T10:01:54Z (the newest span)" in result.stdout
    assert "judged by the spans' own wedding.* attributes (no --config)" in result.stdout


def test_report_without_config_judges_readiness_by_the_thresholds_on_the_spans(
    report_runs: dict[str, subprocess.CompletedProcess[str]],
) -> None:
    """No wedding-day traffic on a Tuesday: readiness uses the tightest threshold carried, noted."""
    stdout = report_runs["plain"].stdout
    assert re.search(r"payments: p95 \d+\.\d ms over the wedding-day threshold 150 ms", stdout)
    assert "no wedding-day traffic in the hour for payments (150 ms), rsvp (200 ms)" in stdout
    assert "venue_availability" not in stdout
    assert "couple_timeline" not in stdout


def test_report_with_config_judges_by_the_catalogue(
    report_runs: dict[str, subprocess.CompletedProcess[str]], default_catalogue: Path
) -> None:
    """--config re-judges: the catalogue's wedding-day threshold, 75 ms for payments."""
    result = report_runs["plain+config"]
    assert result.returncode == 0, result.stderr
    assert re.search(
        r"payments: p95 \d+\.\d ms over the wedding-day threshold 75 ms", result.stdout
    )
    assert f"judged by the catalogue in {default_catalogue}" in result.stdout
    assert "no wedding-day traffic" not in result.stdout


def test_report_without_config_lists_only_the_endpoints_in_the_spans(
    report_runs: dict[str, subprocess.CompletedProcess[str]],
) -> None:
    """Endpoints found in the spans, by name, ``other`` last: none from the built-in catalogue."""
    result = report_runs["json"]
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["judged_by"] == "spans"
    assert report["config"] is None
    assert list(report["endpoints"]) == ["payments", "rsvp", "other"]
    assert report["endpoints"]["other"]["readiness"] is None
    assert report["endpoints"]["payments"]["wedding_day_traffic"] == 0
    assert report["endpoints"]["payments"]["thresholds_ms_by_band"] == {"unknown": 150.0}
    assert {reason.split(":")[0] for reason in report["reasons"]} == {"payments", "rsvp"}


def test_report_with_config_lists_catalogue_endpoints_first_and_other_last(
    report_runs: dict[str, subprocess.CompletedProcess[str]], default_catalogue: Path
) -> None:
    """Rows follow the catalogue (critical endpoints even without traffic), then ``other``."""
    result = report_runs["json+config"]
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["judged_by"] == "catalogue"
    assert report["config"] == str(default_catalogue)
    assert list(report["endpoints"]) == [
        "venue_availability",
        "couple_timeline",
        "payments",
        "rsvp",
        "other",
    ]
    assert report["endpoints"]["venue_availability"]["requests"] == 0
    assert report["endpoints"]["other"]["readiness"] is None
    assert report["reasons"][0].startswith("venue_availability: only 0 requests")
    assert "wedding_day_traffic" not in report["endpoints"]["payments"]


@pytest.mark.parametrize("run", ["json", "json+config"])
def test_report_json_has_the_live_snapshot_figures(
    recorded: Recorded, report_runs: dict[str, subprocess.CompletedProcess[str]], run: str
) -> None:
    """--json figures equal what the live metrics pipeline computed from the same requests."""
    report = json.loads(report_runs[run].stdout)
    assert report["window"] == "1h"
    assert report["requests"] == 115
    assert report["spans"] == 115
    assert report["unenriched_request_spans"] == 0
    read = Path(report["path"])
    files = sorted(read.iterdir()) if read.is_dir() else [read]  # a directory: metrics.jsonl too
    assert report["bytes"] == sum(file.stat().st_size for file in files)
    assert report["readiness"] == recorded.snapshot.readiness == "not_ready"
    for name in ("payments", "rsvp", "other"):
        figures, live = report["endpoints"][name], recorded.snapshot.endpoints[name]
        stats = live.windows["1h"]
        assert figures["requests"] == stats.count
        for key in ("p50_ms", "p90_ms", "p95_ms", "p99_ms", "apdex", "health", "error_rate"):
            assert figures[key] == pytest.approx(getattr(stats, key)), (name, key)
        assert figures["trend"] == live.trend
        assert figures["critical"] == live.critical
        assert figures["threshold_ms"] == live.threshold_ms
    payments = report["endpoints"]["payments"]
    assert payments["requests"] == 100
    assert payments["p50_ms"] == pytest.approx(20.0, rel=0.01)
    assert payments["breaches"] == 40
    assert payments["apdex"] == pytest.approx(0.8)  # 60 satisfied, 40 tolerating
    assert payments["readiness"] == "not_ready"
    assert report["endpoints"]["rsvp"]["error_rate"] == pytest.approx(0.1)
    assert report["endpoints"]["rsvp"]["breaches"] == 9


def test_report_on_missing_or_garbage_input_is_one_error_line(tmp_path: Path) -> None:
    """A missing path or a file that is not JSON exits 1 with one line naming it."""
    garbage = tmp_path / "traces.jsonl"
    garbage.write_text("this is not json\n", encoding="utf-8")
    missing, not_json = run_cli_all(["report", tmp_path / "missing.jsonl"], ["report", garbage])
    assert missing.returncode == 1
    assert "missing.jsonl: no such file or directory" in _one_error_line(missing)
    assert not_json.returncode == 1
    assert "traces.jsonl:1: not valid JSON" in _one_error_line(not_json)


def test_report_window_option_changes_the_window(
    recorded: Recorded, capsys: pytest.CaptureFixture[str]
) -> None:
    """--window 1m shows only the requests of the minute before the newest span."""
    code, out, _err = run_main(capsys, "report", recorded.directory, "--json", "--window", "1m")
    assert code == 0
    report = json.loads(out)
    assert report["window"] == "1m"
    assert 0 < report["endpoints"]["payments"]["requests"] < 100


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        (b"\x00\xff\xfe garbage", "traces.jsonl: not UTF-8 text"),
        (b'{"some": "json"}\n', "traces.jsonl:1: not an OTLP JSON export request"),
        (b"", "no spans"),
    ],
    ids=["binary", "other-json", "empty"],
)
def test_report_on_unusable_files_is_one_error_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], content: bytes, problem: str
) -> None:
    """Binary, non-OTLP and empty files exit 1 with one line saying what is wrong."""
    path = tmp_path / "traces.jsonl"
    path.write_bytes(content)
    code, _out, err = run_main(capsys, "report", path)
    assert code == 1
    assert problem in _one_line(err)


def test_report_on_metrics_only_says_so(
    recorded: Recorded, capsys: pytest.CaptureFixture[str]
) -> None:
    """The metrics file alone has no spans to report on: one line says what was found."""
    code, _out, err = run_main(capsys, "report", recorded.directory / "metrics.jsonl")
    assert code == 1
    assert "metrics but no spans" in _one_line(err)


# --- check-config --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def good_config(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A valid config file with two endpoints."""
    path = tmp_path_factory.mktemp("config") / "wedsync.toml"
    path.write_text(GOOD_CONFIG, encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def check_runs(good_config: Path) -> dict[str, subprocess.CompletedProcess[str]]:
    """``check-config FILE`` and ``check-config FILE --json``, run side by side."""
    plain, as_json = run_cli_all(
        ["check-config", good_config], ["check-config", good_config, "--json"]
    )
    return {"plain": plain, "json": as_json}


def _thresholds(stdout: str, endpoint: str) -> tuple[dict[str, str], dict[str, str]]:
    """The weekday and Saturday rows of one endpoint, by column name."""
    lines = stdout.splitlines()
    header = next(line for line in lines if line.startswith("endpoint "))
    names = header.split()
    at = next(i for i, line in enumerate(lines) if line.split()[:1] == [endpoint])
    weekday = dict(zip(names, lines[at].split(), strict=False))
    saturday = dict(zip(names[2:], lines[at + 1].split(), strict=False))
    return weekday, saturday


def test_check_config_prints_thresholds_per_band(
    check_runs: dict[str, subprocess.CompletedProcess[str]],
) -> None:
    """A good file prints each endpoint's threshold per band on a weekday and a Saturday."""
    result = check_runs["plain"]
    assert result.returncode == 0, result.stderr
    payments, payments_saturday = _thresholds(result.stdout, "payments")
    assert payments["critical"] == "yes"
    assert payments["wedding_day"] == "75"
    assert payments["final_week"] == "112.5"
    assert payments["planning"] == "150"
    assert payments["patterns"] == "/api/payments/**"
    assert payments_saturday["planning"] == "75"
    venues, venues_saturday = _thresholds(result.stdout, "venue_availability")
    assert venues["final_week"] == "150"
    assert venues_saturday["final_week"] == "100"  # the critical wedding-day cap
    other, _ = _thresholds(result.stdout, "other")
    assert other["planning"] == "200"
    assert "timezone: Europe/London" in result.stdout
    assert "season months: 5, 6, 7, 8, 9, 10" in result.stdout


def test_check_config_json(check_runs: dict[str, subprocess.CompletedProcess[str]]) -> None:
    """--json gives every threshold by endpoint, kind of day and band, and the calendar."""
    result = check_runs["json"]
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["valid"] is True
    payments = data["endpoints"]["payments"]
    assert payments["thresholds_ms"]["weekday"]["wedding_day"] == 75
    assert payments["thresholds_ms"]["saturday"]["planning"] == 75
    assert payments["patterns"] == ["/api/payments/**"]
    venues = data["endpoints"]["venue_availability"]["thresholds_ms"]["weekday"]
    assert venues["final_week"] == 150
    assert list(data["endpoints"]) == ["payments", "venue_availability", "other"]
    assert data["calendar"]["timezone"] == "Europe/London"
    assert data["calendar"]["bands"]["final_week"] == 0.75


BAD_CONFIGS = {
    "colour": 'colour = "blue"\n',
    "endpoints.payments.threshold_ms": (
        '[endpoints.payments]\npatterns = ["/api/payments/**"]\nthreshold_ms = -5\n'
    ),
    "bands.wedding_day": "[bands]\nwedding_day = 0\n",
    "timezone": 'timezone = "Mars/Olympus"\n',
}
"""Key named in the error -> a file that is wrong about it."""


def test_check_config_bad_file_exits_2_naming_the_key(tmp_path: Path) -> None:
    """An unknown key or a negative threshold exits 2 with one line, 'error: <key>: <problem>'."""
    keys = ["colour", "endpoints.payments.threshold_ms"]
    paths = []
    for number, key in enumerate(keys):
        paths.append(tmp_path / f"bad{number}.toml")
        paths[-1].write_text(BAD_CONFIGS[key], encoding="utf-8")
    for key, result in zip(keys, run_cli_all(*(["check-config", p] for p in paths)), strict=True):
        assert result.returncode == 2, key
        assert _one_error_line(result).startswith(f"error: {key}: ")
        assert result.stdout == ""
    assert "got -5" in result.stderr


@pytest.mark.parametrize("key", ["bands.wedding_day", "timezone"])
def test_check_config_other_bad_values_name_the_key(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], key: str
) -> None:
    """A zero multiplier or an unknown time zone is one line naming the key, exit 2."""
    path = tmp_path / "bad.toml"
    path.write_text(BAD_CONFIGS[key], encoding="utf-8")
    code, out, err = run_main(capsys, "check-config", path)
    assert code == 2
    assert _one_line(err).startswith(f"error: {key}: ")
    assert out == ""


def test_check_config_missing_file_is_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A config file that is not there is a config error: exit 2, one line."""
    code, _out, err = run_main(capsys, "check-config", tmp_path / "nowhere.toml")
    assert code == 2
    assert "nowhere.toml: cannot read the file" in _one_line(err)


# --- help, usage and the demo --------------------------------------------------------------


COMMANDS = [[], ["report"], ["check-config"], ["demo"]]


@pytest.fixture(scope="module")
def helps() -> list[subprocess.CompletedProcess[str]]:
    """``--help`` of the program and of each command, run side by side."""
    return run_cli_all(*([*command, "--help"] for command in COMMANDS))


def test_every_command_has_help(helps: list[subprocess.CompletedProcess[str]]) -> None:
    """--help exits 0 and prints the usage of each command."""
    for command, result in zip(COMMANDS, helps, strict=True):
        assert result.returncode == 0, result.stderr
        assert result.stdout.startswith(" ".join(["usage: wedsync-otel", *command]))


def test_report_help_says_windows_end_at_the_newest_span(
    helps: list[subprocess.CompletedProcess[str]],
) -> None:
    """The report's help explains which window matters and where windows end."""
    text = " ".join(helps[COMMANDS.index(["report"])].stdout.split())
    assert "newest span's end" in text
    assert "1h window is the one that matters" in text


@pytest.mark.parametrize(
    "args",
    [[], ["report"], ["report", "x", "--window", "2h"], ["demo", "--rate", "-3"], ["bogus"]],
    ids=["no-command", "no-path", "bad-window", "negative-rate", "unknown-command"],
)
def test_usage_errors_are_one_line(capsys: pytest.CaptureFixture[str], args: list[str]) -> None:
    """Bad options exit 2 with one line pointing at --help."""
    code, _out, err = run_main(capsys, *args)
    assert code == 2
    assert "--help" in _one_line(err)


class _FakeDemo(types.ModuleType):
    """Stands in for wedsync_otel.demo, recording how `run` was called."""

    def __init__(self) -> None:
        super().__init__("wedsync_otel.demo")
        self.calls: list[dict[str, object]] = []

    def run(self, **kwargs: object) -> int:
        self.calls.append(kwargs)
        return 3


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        ([], {"output": None, "rate": None, "plain": None, "viewer": False}),
        (
            ["--duration", "5", "--rate", "20", "--output", "out", "--plain", "--viewer"],
            {
                "duration_s": 5.0,
                "output": Path("out"),
                "rate": 20.0,
                "plain": True,
                "viewer": True,
            },
        ),
        (["--live"], {"output": None, "rate": None, "plain": False, "viewer": False}),
    ],
    ids=["defaults", "everything", "live"],
)
def test_demo_passes_its_options_to_demo_run(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    args: list[str],
    expected: dict[str, object],
) -> None:
    """`demo` hands its options to wedsync_otel.demo.run and exits with its code."""
    fake = _FakeDemo()
    monkeypatch.setitem(sys.modules, "wedsync_otel.demo", fake)
    code, _out, _err = run_main(capsys, "demo", *args)
    assert code == 3
    assert fake.calls == [expected]


def test_demo_without_a_run_function_is_one_line(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """A build whose demo has no `run` says so in one line instead of a traceback."""
    monkeypatch.setitem(sys.modules, "wedsync_otel.demo", types.ModuleType("wedsync_otel.demo"))
    code, _out, err = run_main(capsys, "demo")
    assert code == 1
    assert "demo is not available" in _one_line(err)
    assert "run" in err


@pytest.mark.skipif(
    distribution_installed("arize-phoenix"),
    reason="checks the error without the viewer extra; .venv-viewer runs the viewer itself",
)
def test_demo_viewer_without_the_extra_is_one_line() -> None:
    """`demo --viewer` without Arize Phoenix names the extra in one line and exits 1."""
    (finished,) = run_cli_all(["demo", "--viewer", "--duration", "1", "--plain"])
    assert finished.returncode == 1, finished.stderr
    assert "wedsync-otel[viewer]" in _one_line(finished.stderr)
    assert "Traceback" not in finished.stderr


# --- rendering, shared with the demo's live view -------------------------------------------


def test_summary_table_renders_the_same_figures_as_plain_text(recorded: Recorded) -> None:
    """The rich table and the plain text show the same cells; the verdict leads its reasons."""
    breaches = {"payments": 40}
    console = Console(file=io.StringIO(), width=200, color_system=None)
    console.print(summary_table(recorded.snapshot, breaches=breaches))
    rich_text = console.file.getvalue()  # type: ignore[attr-defined]
    plain = plain_summary(recorded.snapshot, breaches=breaches)
    payments = next(line for line in plain.splitlines() if line.startswith("payments"))
    for cell in payments.split():
        assert cell in rich_text
    assert "breaches" not in plain_summary(recorded.snapshot)
    lines = verdict_lines(recorded.snapshot)
    assert lines[0] == "Wedding-day readiness: NOT READY"
    assert all(line.startswith("  - ") for line in lines[1:])
    assert len(lines) == 1 + len(recorded.snapshot.reasons)


# --- the options several commands share (--config, --out, --json) ---------------------------


SHARED_OPTIONS = {
    "report": ("--json", "--config"),
    "check-config": ("--json",),
    "demo": (),
    "rules": ("--config", "--out"),
    "alertmanager": ("--out",),
    "dashboard": ("--config", "--out"),
    "scaling": ("--config", "--out", "--json"),
}
"""Command -> which of --config, --out and --json it takes."""

_POSITIONAL = {"report": ["traces.jsonl"], "check-config": ["wedsync.toml"]}
_VALUES = {"--config": ["my.toml"], "--out": ["out.yaml"], "--json": []}
_HELP_LINE = {
    "--config": r"--config FILE\s+TOML config",
    "--out": r"--out FILE\s+write (the YAML )?here \(default: stdout\)",
    "--json": r"--json\s+print one JSON object for scripts",
}


def _subcommands() -> dict[str, argparse.ArgumentParser]:
    parser = build_parser()
    (commands,) = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    return dict(commands.choices)


def test_shared_options_table_covers_every_command() -> None:
    """Each command takes exactly the shared options listed for it, no more, no fewer."""
    found = {
        name: {o for a in sub._actions for o in a.option_strings if o in _VALUES}
        for name, sub in _subcommands().items()
    }
    assert found == {name: set(options) for name, options in SHARED_OPTIONS.items()}


@pytest.mark.parametrize("command", [c for c, options in SHARED_OPTIONS.items() if options])
def test_shared_options_parse_to_the_same_values(command: str) -> None:
    """--config FILE and --out FILE are paths, --json a flag; absent, None, None and False."""
    options = SHARED_OPTIONS[command]
    given = [part for option in options for part in [option, *_VALUES[option]]]
    parser = build_parser()
    with_options = parser.parse_args([command, *_POSITIONAL.get(command, []), *given])
    without = parser.parse_args([command, *_POSITIONAL.get(command, [])])
    expected = {"--config": Path("my.toml"), "--out": Path("out.yaml"), "--json": True}
    absent = {"--config": None, "--out": None, "--json": False}
    for option in options:
        dest = option.removeprefix("--")
        assert getattr(with_options, dest) == expected[option], option
        assert getattr(without, dest) is absent[option], option


@pytest.mark.parametrize("command", list(SHARED_OPTIONS))
def test_help_of_each_command_lists_its_shared_options(
    capsys: pytest.CaptureFixture[str], command: str
) -> None:
    """Each command's --help describes the shared options it takes, and only those."""
    code, out, _err = run_main(capsys, command, "--help")
    assert code == 0
    text = " ".join(out.split())
    for option, line in _HELP_LINE.items():
        listed = re.search(line, text) is not None
        assert listed == (option in SHARED_OPTIONS[command]), (command, option, text)


@pytest.mark.parametrize(
    "args",
    [
        ["alertmanager", "--config", "x.toml"],
        ["check-config", "x.toml", "--out", "o"],
        ["demo", "--json"],
    ],
    ids=["alertmanager-config", "check-config-out", "demo-json"],
)
def test_shared_options_are_usage_errors_where_not_taken(
    capsys: pytest.CaptureFixture[str], args: list[str]
) -> None:
    """A shared option given to a command that does not take it exits 2 with one line."""
    code, _out, err = run_main(capsys, *args)
    assert code == 2
    assert "unrecognized arguments" in _one_line(err)


@pytest.mark.parametrize("command", ["rules", "alertmanager", "dashboard", "scaling"])
def test_out_writes_the_file_instead_of_stdout(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], good_config: Path, command: str
) -> None:
    """--out FILE writes the document there: the same text the command prints without it."""
    config = ["--config", good_config] if "--config" in SHARED_OPTIONS[command] else []
    if command == "scaling":  # a fixed day: both runs schedule alike even across midnight
        config += ["--today", "2026-06-01"]
    out = tmp_path / "out.txt"
    code, printed, err = run_main(capsys, command, *config)
    assert code == 0, err
    code, written_out, err = run_main(capsys, command, *config, "--out", out)
    assert code == 0, err
    if command != "scaling":  # scaling prints a one-line summary of the file it wrote
        assert written_out == ""
    assert out.read_text(encoding="utf-8") == printed != ""
