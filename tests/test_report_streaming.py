"""``report`` on large files: streamed into bounded totals, with progress in bytes on stderr."""

from __future__ import annotations

import datetime as dt
import gc
import io
import json
import os
import select
import struct
import subprocess
import sys
import tracemalloc
from collections.abc import Callable
from pathlib import Path

import pytest
from opentelemetry.trace import SpanKind
from rich import filesize

import wedsync_otel
from helpers import TUESDAY, FakeClock
from test_cli import run_cli_all
from wedsync_otel import attributes as attr
from wedsync_otel.cli.aggregate import SpanAggregator
from wedsync_otel.cli.progress import ReadProgress, size_text
from wedsync_otel.cli.report import PerformanceReport, aggregated_report
from wedsync_otel.exporters import OtlpJsonFileSpanExporter, ReadCounts, iter_spans, read_spans

_NS_PER_MS = 1_000_000
_NS_PER_S = 1_000_000_000
_START_NS = int(TUESDAY.timestamp() * 1e9)
BASE_SPANS = 250
"""Requests the project's own pipeline writes; the files below repeat them, each copy later on."""
SPACING_S = 4
"""Seconds between requests: N spans cover more than the hour the windows keep, 4N four hours."""
BATCH = 25
"""Spans per exported line (a flush every BATCH), so a file holds many lines."""
ROUTES = ("/api/payments/{payment_id}", "/api/rsvp/{wedding_id}", "/items/{item_id}")


@pytest.fixture(scope="module")
def base_lines(tmp_path_factory: pytest.TempPathFactory) -> list[str]:
    """BASE_SPANS requests through configure() and the file exporter, as its lines."""
    directory = tmp_path_factory.mktemp("base")
    telemetry = wedsync_otel.configure(
        set_global=False,
        span_exporter=OtlpJsonFileSpanExporter(directory),
        metric_export_interval_millis=3_600_000,
        clock=FakeClock(TUESDAY),
    )
    tracer = telemetry.tracer_provider.get_tracer("streaming")
    for index in range(BASE_SPANS):
        start = _START_NS + index * SPACING_S * _NS_PER_S
        attributes: dict[str, str | int] = {
            "http.route": ROUTES[index % 3],
            "http.response.status_code": 503 if index % 97 == 0 else 200,
        }
        if index % 5 == 0:
            attributes[attr.WEDDING_DATE] = "2026-06-20"  # the final week
        span = tracer.start_span(
            "GET", kind=SpanKind.SERVER, start_time=start, attributes=attributes
        )
        span.end(end_time=start + (index % 89 + 1) * _NS_PER_MS)
        if index % BATCH == BATCH - 1:
            telemetry.tracer_provider.force_flush()
    telemetry.shutdown()
    return (directory / "traces.jsonl").read_text(encoding="utf-8").splitlines()


def _shifted(line: str, shift_ns: int) -> str:
    document = json.loads(line)
    for resource in document["resourceSpans"]:
        for scope in resource["scopeSpans"]:
            for span in scope["spans"]:
                for key in ("startTimeUnixNano", "endTimeUnixNano"):
                    span[key] = str(int(span[key]) + shift_ns)
    return json.dumps(document, separators=(",", ":"))


def _write_repeated(lines: list[str], path: Path, repeats: int) -> Path:
    """The base file ``repeats`` times over, each copy later by the base's length."""
    with path.open("w", encoding="utf-8") as stream:
        for repeat in range(repeats):
            shift_ns = repeat * BASE_SPANS * SPACING_S * _NS_PER_S
            for line in lines:
                stream.write(_shifted(line, shift_ns) + "\n")
    return path


def _report(path: Path) -> PerformanceReport | None:
    """What ``wedsync-otel report`` computes: a streamed read into the aggregator."""
    aggregator = SpanAggregator()
    for span in iter_spans(path, counts=ReadCounts()):
        aggregator.add(span)
    return aggregated_report(aggregator, None)


def _peak_bytes(work: Callable[[], object]) -> int:
    gc.collect()
    tracemalloc.start()
    try:
        work()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


@pytest.fixture(scope="module")
def files(base_lines: list[str], tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """N spans (over an hour of them) and 4N (over four hours) in one file each."""
    directory = tmp_path_factory.mktemp("sizes")
    return {
        "N": _write_repeated(base_lines, directory / "n.jsonl", 4),
        "4N": _write_repeated(base_lines, directory / "4n.jsonl", 16),
    }


def test_memory_does_not_grow_with_the_file(files: dict[str, Path]) -> None:
    """tracemalloc's peak for 4N spans stays under twice that for N: nothing is kept per span."""
    _report(files["N"])  # warm: imports, caches and the adaptive interpreter
    small = _peak_bytes(lambda: _report(files["N"]))
    large = _peak_bytes(lambda: _report(files["4N"]))
    assert large < 2 * small, (size_text(small), size_text(large))
    report = _report(files["4N"])
    assert report is not None
    assert report.requests == 16 * BASE_SPANS


def test_the_memory_check_would_catch_a_reader_that_keeps_every_span(
    files: dict[str, Path],
) -> None:
    """Control: holding the spans in a list, as the old reader did, fails the same bound."""
    small = _peak_bytes(lambda: read_spans(files["N"]))
    large = _peak_bytes(lambda: read_spans(files["4N"]))
    assert large > 2 * small


def test_a_long_file_reports_the_last_hour(files: dict[str, Path]) -> None:
    """Four hours of spans: the window holds the last hour's requests, and the totals are exact."""
    report = _report(files["4N"])
    assert report is not None
    assert report.spans == 16 * BASE_SPANS
    hour = sum(
        endpoint.windows["1h"].count
        for endpoint in report.snapshot.endpoints.values()
        if "1h" in endpoint.windows
    )
    assert 3_500 // SPACING_S <= hour <= 3_600 // SPACING_S  # to the minute slot


# --- progress ------------------------------------------------------------------------------


class _Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_plain_progress_waits_for_a_long_read_then_prints_a_line_every_interval() -> None:
    """Nothing in the first second; then the share of the total, every 5 s; the time at the end."""
    clock, stream = _Clock(), io.StringIO()
    progress = ReadProgress(
        4_000_000, label="traces.jsonl", stream=stream, rich=False, monotonic=clock
    )
    progress(500_000)
    clock.now += 0.5
    progress(500_000)
    assert stream.getvalue() == ""
    clock.now += 1.5
    progress(1_000_000)
    clock.now += 1.0
    progress(1_000_000)  # within the interval: no line
    clock.now += 5.0
    progress(1_000_000)
    progress.close()
    progress.close()
    assert stream.getvalue().splitlines() == [
        "reading traces.jsonl: 2.0 MB of 4.0 MB (50%), 1.0 MB/s",
        "reading traces.jsonl: 4.0 MB of 4.0 MB (100%), 500.0 kB/s",
        "read 4.0 MB in 8.0 s, 500.0 kB/s",
    ]


@pytest.mark.parametrize(("show", "lines"), [(True, 2), (False, 0)], ids=["forced", "off"])
def test_progress_can_be_forced_or_turned_off(show: bool, lines: int) -> None:
    """--progress prints from the first chunk; --no-progress never prints."""
    clock, stream = _Clock(), io.StringIO()
    with ReadProgress(
        10, label="x", stream=stream, rich=False, show=show, monotonic=clock
    ) as progress:
        progress(10)
    assert len(stream.getvalue().splitlines()) == lines
    assert progress.done_bytes == 10


def test_a_quick_read_shows_nothing() -> None:
    """A read that ends within the delay leaves stderr empty, so errors stay one line."""
    clock, stream = _Clock(), io.StringIO()
    with ReadProgress(10, label="x", stream=stream, rich=True, monotonic=clock) as progress:
        progress(10)
    assert stream.getvalue() == ""


@pytest.mark.parametrize(
    ("size", "text"),
    [(0, "0 B"), (999, "999 B"), (1_000, "1.0 kB"), (475_000_000, "475.0 MB"), (2e12, "2000.0 GB")],
)
def test_sizes_are_written_in_decimal_units(size: float, text: str) -> None:
    """Bytes as rich's download column writes them."""
    assert size_text(int(size)) == text


def test_report_progress_goes_to_stderr_and_leaves_stdout_alone(files: dict[str, Path]) -> None:
    """--progress off a terminal: plain lines on stderr with the size; --no-progress: none."""
    shown, quiet = run_cli_all(
        ["report", files["N"], "--progress"], ["report", files["N"], "--no-progress"]
    )
    size = size_text(files["N"].stat().st_size)
    assert shown.returncode == 0, shown.stderr
    lines = shown.stderr.splitlines()
    assert lines[0].startswith(f"reading {files['N']}: ")
    assert f" of {size} (" in lines[0]
    assert lines[-1].startswith(f"read {size} in ")
    assert shown.stdout == quiet.stdout
    assert f"spans ({size}) in {files['N']}" in shown.stdout
    assert quiet.stderr == ""


@pytest.mark.skipif(not hasattr(os, "openpty"), reason="needs a pseudo-terminal")
def test_on_a_terminal_progress_is_a_rich_bar_that_clears_itself(files: dict[str, Path]) -> None:
    """stderr a terminal: a rich bar in bytes of the total, removed when the read ends."""
    fcntl = pytest.importorskip("fcntl")
    termios = pytest.importorskip("termios")
    primary, secondary = os.openpty()
    fcntl.ioctl(secondary, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 120, 0, 0))
    process = subprocess.Popen(
        [sys.executable, "-m", "wedsync_otel.cli.main", "report", str(files["N"]), "--progress"],
        stdout=subprocess.PIPE,
        stderr=secondary,
        stdin=subprocess.DEVNULL,
        env={key: value for key, value in os.environ.items() if key != "PYTEST_CURRENT_TEST"},
    )
    os.close(secondary)
    seen = bytearray()
    while True:
        ready, _, _ = select.select([primary], [], [], 0.2)
        if ready:
            try:
                data = os.read(primary, 65_536)
            except OSError:  # the other end closed
                break
            if not data:
                break
            seen += data
        elif process.poll() is not None:
            break
    os.close(primary)
    assert process.stdout is not None
    stdout = process.stdout.read().decode()
    process.stdout.close()
    assert process.wait(timeout=60) == 0
    text = seen.decode("utf-8", errors="replace")
    assert "reading " in text
    assert f"/{filesize.decimal(files['N'].stat().st_size)}" in text  # the bar states the size
    assert text.endswith("\x1b[2K")  # transient: the bar erases its line
    assert "requests from" in stdout


def test_bytes_and_time_are_in_the_json_report(files: dict[str, Path]) -> None:
    """--json says how many bytes it read, of how many files."""
    (result,) = run_cli_all(["report", files["N"], "--json"])
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["bytes"] == files["N"].stat().st_size
    assert report["files"] == 1
    assert report["window_end"] == (
        dt.datetime.fromtimestamp(report["window_end_unix_nano"] / 1e9, tz=dt.UTC)
        .isoformat(timespec="seconds")
        .replace("+00:00", "Z")
    )
