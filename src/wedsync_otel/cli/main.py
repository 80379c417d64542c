"""``wedsync-otel``: report on OTLP JSON files, check a config, run the demo.

Every failure the user can cause (a missing file, a file that is not OTLP
JSON, a bad config, a bad option) ends with one ``error: ...`` line on
stderr and a non-zero exit, never a traceback: 1 for unusable input data, 2
for usage and configuration errors.
"""

from __future__ import annotations

import argparse
import datetime as dt
import importlib
import json
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final, NoReturn

from wedsync_otel._safety import raise_internal_errors
from wedsync_otel.errors import ConfigError

if TYPE_CHECKING:
    from wedsync_otel.cli.report import PerformanceReport
    from wedsync_otel.config import WeddingConfig

EXIT_OK: Final = 0
EXIT_FAILED: Final = 1
"""The input could not be read or holds nothing to report."""
EXIT_USAGE: Final = 2
"""Bad options or a bad configuration."""
EXIT_INTERNAL: Final = 70
"""A bug (sysexits' EX_SOFTWARE)."""

_REPORT_HELP: Final = """\
Summarise enriched server spans from OTLP JSON: what the Collector's `file`
exporter writes, and what wedsync_otel.exporters.OtlpJsonFileSpanExporter
writes (traces.jsonl; OTEL_TRACES_EXPORTER=wedsync_otlp_json under
opentelemetry-instrument). PATH is a file or a directory (its traces.jsonl and
any other *.json / *.jsonl files holding OTLP export requests).

Per endpoint: requests, p50/p95/p99, base threshold, breaches, error rate,
Apdex, health, trend, cache hit rate, DB time share and readiness, then the
wedding-day verdict with its reasons.

Who judges: without --config, the spans. The endpoints are the
wedding.endpoint names found, and each is judged by what its spans carry:
the threshold they carried most often (health), the critical flag
(wedding.critical: readiness only for critical endpoints found), and for
readiness the tightest threshold of its wedding-day traffic (or, with none in
the hour, of all its spans; a note says so). With --config FILE, that
catalogue's thresholds and critical endpoints judge instead, and its critical
endpoints are judged even without traffic. WEDSYNC_OTEL_CONFIG is not read.

Figures come from the spans' wedding.* attributes, fed through the same
windows and formulas as the live metrics. Windows are measured back from the
newest span's end, not from now, so a file from last week still reports. The
1h window is the one that matters: readiness is always judged on it. Spans
without wedding.* attributes are counted and left out.

Files are streamed (a line or document at a time) into bounded totals, so
memory does not grow with their size; a read that takes over a second shows
its progress on stderr, in bytes of the total.

Metrics in the same files are not used: spans carry each request's breach
flag and cache and database time, and place it in its window exactly.
"""


class CliError(Exception):
    """A problem with the user's input, reported as one line; ``exit_code`` says how to exit."""

    def __init__(self, message: str, *, exit_code: int = EXIT_FAILED) -> None:
        super().__init__(message)
        self.exit_code = exit_code


class _Parser(argparse.ArgumentParser):
    """An argument parser whose errors are one line, like every other error here."""

    def error(self, message: str) -> NoReturn:
        """Print ``error: message`` and where to look for help, then exit 2."""
        self.exit(EXIT_USAGE, f"error: {message} (see {self.prog} --help)\n")


def _positive(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be positive, got {text}")
    return value


def _use_rich() -> bool:
    """Rich tables on a terminal, when the ``cli`` extra is installed; plain text otherwise."""
    if not sys.stdout.isatty():
        return False
    try:
        importlib.import_module("rich")
    except ImportError:
        return False
    return True


def _print_json(data: object) -> None:
    print(json.dumps(data, indent=2))


def _report(args: argparse.Namespace) -> int:
    from wedsync_otel.cli.aggregate import SpanAggregator  # noqa: PLC0415 - keeps --help fast
    from wedsync_otel.cli.progress import ReadProgress, rich_available  # noqa: PLC0415
    from wedsync_otel.cli.report import aggregated_report, report_json  # noqa: PLC0415
    from wedsync_otel.config import WeddingConfig  # noqa: PLC0415
    from wedsync_otel.exporters.reading import (  # noqa: PLC0415
        ReadCounts,
        iter_spans,
        otlp_files,
    )

    config = None if args.config is None else WeddingConfig.from_file(args.config)
    path: Path = args.path
    if not path.exists():
        raise CliError(f"{path}: no such file or directory")
    total_bytes = sum(_size(file) for file in otlp_files(path))
    counts = ReadCounts()
    aggregator = SpanAggregator()
    rich = sys.stderr.isatty() and rich_available()
    progress = ReadProgress(
        total_bytes, label=str(path), stream=sys.stderr, rich=rich, show=args.progress
    )
    with progress:
        for span in iter_spans(path, progress=progress, counts=counts):
            aggregator.add(span)
    report = aggregated_report(aggregator, config, window=args.window)
    if report is None:
        tally = aggregator.tally()
        if tally.spans:
            what = f"{tally.spans} spans, none with wedding.* figures"
            if tally.unenriched:
                what += f" ({tally.unenriched} of them request spans)"
        else:
            what = "metrics but no spans" if counts.metric_requests else "no spans"
        raise CliError(
            f"{path}: {what} (the report reads traces written behind WeddingSpanProcessor)"
        )
    if args.json:
        source = {
            "path": str(path),
            "bytes": counts.bytes_read,
            "files": counts.files,
            "config": None if args.config is None else str(args.config),
        }
        _print_json({**source, **report_json(report)})
    else:
        _print_report(report, path, counts.bytes_read, args.config)
    return EXIT_OK


def _size(file: Path) -> int:
    try:
        return file.stat().st_size
    except OSError:  # gone since the directory was listed: reading it says so
        return 0


def _print_report(
    report: PerformanceReport, path: Path, size_bytes: int, config: Path | None
) -> None:
    from wedsync_otel import render  # noqa: PLC0415 - keeps --help fast
    from wedsync_otel.cli.progress import size_text  # noqa: PLC0415
    from wedsync_otel.cli.report import iso_time  # noqa: PLC0415

    snapshot = report.snapshot
    judged = (
        "judged by the spans' own wedding.* attributes (no --config)"
        if config is None
        else f"judged by the catalogue in {config}"
    )
    heading = [
        f"{report.requests} requests from {report.spans} spans ({size_text(size_bytes)}) in "
        f"{path}; window {report.window} ending {iso_time(snapshot.taken_at_ns)} "
        "(the newest span)",
        judged,
        *(f"note: {note}" for note in report.notes),
    ]
    verdict = render.verdict_lines(snapshot)
    if _use_rich():
        from rich.console import Console  # noqa: PLC0415 - optional extra

        console = Console()
        for line in heading:
            console.print(line, markup=False, highlight=False)
        console.print(
            render.summary_table(snapshot, window=report.window, breaches=report.breaches)
        )
        style = render.READINESS_STYLE.get(snapshot.readiness)
        console.print(verdict[0], style=style, markup=False, highlight=False)
        for line in verdict[1:]:
            console.print(line, markup=False, highlight=False)
        return
    print("\n".join(heading))
    print()
    print(render.plain_summary(snapshot, window=report.window, breaches=report.breaches))
    print()
    print("\n".join(verdict))


def _load_config(path: Path | None) -> WeddingConfig:
    from wedsync_otel.config import WeddingConfig, load_config  # noqa: PLC0415 - fast --help

    if path is None:
        return load_config()
    return WeddingConfig.from_file(path)


def _check_config(args: argparse.Namespace) -> int:
    from wedsync_otel import render  # noqa: PLC0415 - keeps --help fast
    from wedsync_otel.cli.report import (  # noqa: PLC0415
        calendar_settings,
        catalogue_thresholds,
        config_json,
    )
    from wedsync_otel.config import WeddingConfig  # noqa: PLC0415

    config = WeddingConfig.from_file(args.file)
    if args.json:
        _print_json({"file": str(args.file), "valid": True, **config_json(config)})
        return EXIT_OK
    entries = catalogue_thresholds(config)
    calendar = render.calendar_lines(calendar_settings(config))
    heading = f"{args.file}: valid"
    if _use_rich():
        from rich.console import Console  # noqa: PLC0415 - optional extra

        console = Console()
        console.print(heading, style="green", markup=False, highlight=False)
        for line in calendar:
            console.print(line, markup=False, highlight=False)
        console.print(render.catalogue_table(entries))
        return EXIT_OK
    print(heading)
    print("\n".join(calendar))
    print()
    print("thresholds (ms) by proximity band, on a weekday and on a Saturday:")
    print(render.plain_catalogue(entries))
    return EXIT_OK


def _demo(args: argparse.Namespace) -> int:
    try:
        from wedsync_otel.demo import run  # noqa: PLC0415 - its dependencies are extras
    except ImportError as exc:
        raise CliError(f"the demo is not available in this installation ({exc})") from None
    from wedsync_otel.errors import ViewerStartError, ViewerUnavailable  # noqa: PLC0415

    options: dict[str, Any] = {"output": args.output, "rate": args.rate, "plain": args.plain}
    if args.duration is not None:  # else the demo's own default
        options["duration_s"] = args.duration
    try:
        return run(viewer=args.viewer, **options)
    except ViewerUnavailable as exc:
        raise CliError(f"--viewer: {exc}") from None
    except ViewerStartError as exc:
        reason, _, log_tail = str(exc).partition("\n")
        print(log_tail, file=sys.stderr)  # the processes' own words, before the one-line error
        raise CliError(f"--viewer: {reason}") from None


def _fraction(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not 0 < value < 1:
        raise argparse.ArgumentTypeError(f"must be between 0 and 1, got {text}")
    return value


def _write_output(text: str, out: Path | None) -> None:
    """``text`` into ``out``, or onto stdout when there is no ``--out``."""
    if out is None:
        sys.stdout.write(text)
    else:
        out.write_text(text, encoding="utf-8")


_CONFIG_FROM_ENVIRONMENT: Final = (
    "WEDSYNC_OTEL_CONFIG and WEDSYNC_OTEL_* variables, else the defaults"
)
"""Where the commands that call `_load_config` take their config from without ``--config``."""


def _add_config_option(
    parser: argparse.ArgumentParser, *, uses: str = "", default: str = _CONFIG_FROM_ENVIRONMENT
) -> None:
    """``--config FILE``: "TOML config{uses} (default: {default})" is its help."""
    parser.add_argument(
        "--config", type=Path, metavar="FILE", help=f"TOML config{uses} (default: {default})"
    )


def _add_out_option(parser: argparse.ArgumentParser, *, what: str = "") -> None:
    """``--out FILE``: "write{what} here (default: stdout)" is its help."""
    parser.add_argument(
        "--out", type=Path, metavar="FILE", help=f"write{what} here (default: stdout)"
    )


def _add_json_option(parser: argparse.ArgumentParser) -> None:
    """``--json``: print one JSON object instead of text."""
    parser.add_argument("--json", action="store_true", help="print one JSON object for scripts")


_OPS_EXTRA: Final = "needs PyYAML: pip install 'wedsync-otel[ops]'"


def _rules(args: argparse.Namespace) -> int:
    try:
        from wedsync_otel.ops import render_rules  # noqa: PLC0415 - keeps --help fast
    except ImportError as exc:
        raise CliError(f"rules {_OPS_EXTRA} ({exc})", exit_code=EXIT_USAGE) from None
    config = _load_config(args.config)
    try:
        text = render_rules(config, slo_target=args.slo_target, histograms=args.histograms)
    except ValueError as exc:  # an SLO target too loose for the burn-rate alerts
        raise CliError(str(exc), exit_code=EXIT_USAGE) from None
    _write_output(text, args.out)
    return EXIT_OK


def _dashboard(args: argparse.Namespace) -> int:
    try:
        from wedsync_otel.ops.grafana import render_dashboard  # noqa: PLC0415 - keeps --help fast
    except ImportError as exc:
        raise CliError(f"dashboard {_OPS_EXTRA} ({exc})", exit_code=EXIT_USAGE) from None
    _write_output(render_dashboard(_load_config(args.config)), args.out)
    return EXIT_OK


def _alertmanager(args: argparse.Namespace) -> int:
    try:
        from wedsync_otel.ops import render_alertmanager  # noqa: PLC0415 - keeps --help fast
    except ImportError as exc:
        raise CliError(f"alertmanager {_OPS_EXTRA} ({exc})", exit_code=EXIT_USAGE) from None
    _write_output(render_alertmanager(), args.out)
    return EXIT_OK


def _iso_date(text: str) -> dt.date:
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a date YYYY-MM-DD: {text!r}") from None


def _whole(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {text}")
    return value


_SCALING_HELP: Final = """\
Write a KEDA ScaledObject (KEDA 2.14 fields) that scales the API ahead of the wedding
calendar and on live load: cron triggers raise the replica floor from 2 h before each
Saturday peak (10:00-23:00 local) and each known wedding day, and for the wedding season;
Prometheus triggers follow the request rate per instance and the worst p95/threshold
ratio of the critical endpoints; the HPA waits 3 min to scale up and 10 min to scale down.

Replica counts come from CapacityAdvisor: ceil(base rps x multiplier / (rps per instance x
utilisation)), multiplier 1 (base), 3 (season) or 10 (Saturday peak, wedding day), the
largest that applies. The default rates are examples: measure yours (see the README).
A cron has no year, so regenerate at least weekly; past weddings are dropped.
"""


def _scaling(args: argparse.Namespace) -> int:
    from wedsync_otel.capacity import (  # noqa: PLC0415 - keeps --help fast
        CapacityAdvisor,
        plan_json,
        read_wedding_dates,
        wedding_window,
    )

    try:
        from wedsync_otel.ops.keda import (  # noqa: PLC0415
            ScalingOptions,
            render_scaled_object,
            scaled_object,
            scaling_summary,
        )
    except ImportError as exc:
        raise CliError(f"scaling {_OPS_EXTRA} ({exc})", exit_code=EXIT_USAGE) from None
    config = _load_config(args.config)
    try:
        advisor = CapacityAdvisor(
            config=config,
            base_rps=args.base_rps,
            instance_rps=args.instance_rps,
            target_utilisation=args.utilisation,
            min_instances=args.min,
            max_instances=args.max,
        )
        options = ScalingOptions(
            target_name=args.target,
            namespace=args.namespace,
            prometheus_address=args.prometheus,
            horizon_days=args.horizon_days,
        )
    except ValueError as exc:
        raise CliError(str(exc), exit_code=EXIT_USAGE) from None
    weddings = read_wedding_dates(args.weddings) if args.weddings is not None else ()
    if args.plan:
        plan = advisor.plan(dt.datetime.now(dt.UTC), weddings)
        if args.json:
            _print_json(plan_json(plan))
        else:
            print("\n".join(plan.reasons))
        return EXIT_OK
    today = args.today or dt.datetime.now(advisor.timezone).date()
    window = None
    if args.weddings is not None:
        window = wedding_window(weddings, today=today, horizon_days=options.horizon_days)
    document = scaled_object(
        advisor,
        weddings=weddings,
        today=today if window is not None else None,
        options=options,
    )
    text = render_scaled_object(document, advisor)
    summary = scaling_summary(advisor, document, window)
    if args.json:
        if args.out is not None:
            args.out.write_text(text, encoding="utf-8")
        extra = {"scaled_object": document} if args.out is None else {}
        _print_json({"out": None if args.out is None else str(args.out), **summary, **extra})
        return EXIT_OK
    _write_output(text, args.out)
    if args.out is not None:
        floors = ", ".join(f"{c['name']} {c['desired_replicas']}" for c in summary["cron"])
        print(
            f"{args.out}: replicas {summary['min_replicas']}-{summary['max_replicas']}; "
            f"cron floors: {floors or 'none'}"
        )
    return EXIT_OK


def _add_scaling(commands: Any) -> None:  # argparse's subparsers type is private
    scaling = commands.add_parser(
        "scaling",
        help="write a KEDA ScaledObject that scales ahead of Saturdays and weddings",
        description=_SCALING_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    _add_config_option(scaling, uses=": time zone, season months, critical endpoints")
    _add_out_option(scaling, what=" the YAML")
    scaling.add_argument(
        "--weddings",
        type=Path,
        metavar="FILE",
        help="known wedding dates: CSV with a wedding_date (or date) column, or a JSON list",
    )
    scaling.add_argument(
        "--today",
        type=_iso_date,
        metavar="DATE",
        help="date to schedule from; earlier weddings are dropped (default: today, platform zone)",
    )
    scaling.add_argument(
        "--horizon-days",
        type=_whole,
        default=90,
        metavar="N",
        help="give weddings up to N days ahead a trigger, at most 365 (default: 90)",
    )
    scaling.add_argument(
        "--base-rps",
        type=_positive,
        default=40.0,
        metavar="RPS",
        help="fleet request rate, busiest hour of an off-season weekday (default: 40, an example)",
    )
    scaling.add_argument(
        "--instance-rps",
        type=_positive,
        default=25.0,
        metavar="RPS",
        help="requests/s one instance sustains with p95 under threshold (default: 25, an example)",
    )
    scaling.add_argument(
        "--utilisation",
        type=_positive,
        default=0.8,
        metavar="SHARE",
        help="share of --instance-rps to plan for, at most 1 (default: 0.8)",
    )
    scaling.add_argument("--min", type=_whole, default=2, metavar="N", help="fewest replicas (2)")
    scaling.add_argument("--max", type=_whole, default=50, metavar="N", help="most replicas (50)")
    scaling.add_argument(
        "--target", default="wedsync-api", metavar="NAME", help="Deployment to scale (wedsync-api)"
    )
    scaling.add_argument("--namespace", metavar="NS", help="namespace of the ScaledObject")
    scaling.add_argument(
        "--prometheus",
        default="http://prometheus.wedsync.invalid:9090",
        metavar="URL",
        help="Prometheus server KEDA queries (default: a placeholder that never resolves)",
    )
    scaling.add_argument(
        "--plan",
        action="store_true",
        help="print the advisor's plan for now and the next 24 h instead of writing YAML",
    )
    _add_json_option(scaling)
    scaling.set_defaults(handler=_scaling)


def build_parser() -> argparse.ArgumentParser:
    """The ``wedsync-otel`` argument parser with its commands."""
    parser = _Parser(
        prog="wedsync-otel",
        description="Wedding-aware latency objectives for OpenTelemetry: reports and checks.",
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    report = commands.add_parser(
        "report",
        help="summarise enriched spans from an OTLP JSON file or directory",
        description=_REPORT_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    report.add_argument("path", type=Path, metavar="PATH", help="OTLP JSON file or directory")
    _add_json_option(report)
    report.add_argument(
        "--window",
        choices=("1m", "5m", "1h"),
        default="1h",
        help="window of the figures shown, back from the newest span (default: 1h)",
    )
    _add_config_option(
        report,
        uses=" whose catalogue and thresholds to judge by",
        default="what the spans' wedding.* attributes say; the environment is not read",
    )
    report.add_argument(
        "--progress",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="show reading progress on stderr (default: once a read takes over 1 s; "
        "a bar on a terminal, a line every 5 s otherwise)",
    )
    report.set_defaults(handler=_report)

    check = commands.add_parser(
        "check-config",
        help="validate a TOML config and print the effective catalogue",
        description="Validate a TOML config (the format in the README) and print every "
        "endpoint's patterns, critical flag and threshold per proximity band on a weekday "
        "and on a Saturday, and the calendar settings. A bad file prints one line, "
        "'error: <key>: <problem>', and exits 2. Environment variables are not applied.",
    )
    check.add_argument("file", type=Path, metavar="FILE", help="TOML config file")
    _add_json_option(check)
    check.set_defaults(handler=_check_config)

    demo = commands.add_parser(
        "demo",
        help="run the WedSync demo app under load and watch its wedding figures",
        description="Run the WedSync demo: an instrumented app, a load generator and a live "
        "view of the wedding figures.",
    )
    demo.add_argument(
        "--duration", type=_positive, metavar="S", help="seconds to run (default: the demo's)"
    )
    demo.add_argument(
        "--rate", type=_positive, metavar="N", help="requests per second (default: the demo's)"
    )
    demo.add_argument(
        "--output",
        type=Path,
        metavar="DIR",
        help="folder for traces.jsonl and metrics.jsonl, OTLP JSON that `report` reads "
        "(default: the demo's)",
    )
    view = demo.add_mutually_exclusive_group()
    view.add_argument(
        "--live",
        dest="plain",
        action="store_const",
        const=False,
        help="live rich view (default on a terminal)",
    )
    view.add_argument(
        "--plain",
        dest="plain",
        action="store_const",
        const=True,
        help="plain text lines (default when not on a terminal)",
    )
    demo.add_argument(
        "--viewer",
        action="store_true",
        help="send the traces to Arize Phoenix behind rotel on 127.0.0.1 and print its address "
        "(extra: viewer; run from a source checkout)",
    )
    demo.set_defaults(handler=_demo, plain=None)

    rules = commands.add_parser(
        "rules",
        help="write Prometheus recording and alerting rules for the latency objectives",
        description="Write Prometheus recording rules (fleet-wide p50/p95/p99 per endpoint and "
        "band, Apdex, health, cache hit rate, DB time share) and multiwindow, multi-burn-rate "
        "alerts on each endpoint's latency objective: warning, critical, and emergency for a "
        "critical endpoint during wedding-day traffic. Check the file with `promtool check rules`.",
    )
    _add_config_option(rules, uses=" whose catalogue, thresholds and calendar to use")
    _add_out_option(rules)
    rules.add_argument(
        "--slo-target",
        type=_fraction,
        default=0.99,
        metavar="RATIO",
        help="share of each endpoint's requests that must be within threshold (default: 0.99)",
    )
    rules.add_argument(
        "--histograms",
        choices=("native", "classic"),
        default="native",
        help="how Prometheus holds the duration histograms: native (OTLP exponential "
        "histograms, the default) or classic _bucket series",
    )
    rules.set_defaults(handler=_rules)

    alertmanager = commands.add_parser(
        "alertmanager",
        help="write Alertmanager routing for the alert escalation",
        description="Write an Alertmanager configuration: warning to the team, critical to the "
        "team and management, emergency paged at once and every 5 minutes. The receivers are "
        "webhook placeholders (*.invalid) to fill in. Check it with `amtool check-config`.",
    )
    _add_out_option(alertmanager)
    alertmanager.set_defaults(handler=_alertmanager)
    dashboard = commands.add_parser(
        "dashboard",
        help="write the Grafana dashboard over the recording rules",
        description="Write a Grafana dashboard (JSON model): p50/p95/p99, health, Apdex, "
        "breaches by band, 5xx share, cache hit rate, DB time share, readiness and the scaling "
        "recommendation, all read from the `wedsync-otel rules` recording rules.",
    )
    _add_config_option(dashboard)
    _add_out_option(dashboard)
    dashboard.set_defaults(handler=_dashboard)
    _add_scaling(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; the exit code is returned, never raised, except by ``--help``."""
    args = build_parser().parse_args(argv)
    handler: Callable[[argparse.Namespace], int] = args.handler
    try:
        return handler(args)
    except BrokenPipeError:
        # The reader went away (`| head`): stop quietly, and let the final flush go nowhere.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_FAILED
    except KeyboardInterrupt:
        return 130
    except Exception as exc:  # noqa: BLE001 - one line each; _explain re-raises bugs under pytest
        message, exit_code = _explain(exc)
        print(f"error: {message}", file=sys.stderr)
        return exit_code


def _explain(exc: Exception) -> tuple[str, int]:
    """One line and an exit code for a failure; bugs are re-raised under pytest."""
    if isinstance(exc, ConfigError):
        return str(exc), EXIT_USAGE
    if isinstance(exc, CliError):
        return str(exc), exc.exit_code
    if isinstance(exc, OSError):
        where = f"{exc.filename}: " if exc.filename else ""
        return f"{where}{exc.strerror or exc}", EXIT_FAILED
    if isinstance(exc, ValueError):  # unreadable input, named by file and line
        return str(exc), EXIT_FAILED
    if raise_internal_errors():
        raise exc
    return f"internal error: {type(exc).__name__}: {exc}", EXIT_INTERNAL


if __name__ == "__main__":
    sys.exit(main())
