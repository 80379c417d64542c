"""Tables for people: a rich `Table` on a terminal, aligned plain text anywhere else.

Both forms are built from the same rows of cell strings, so a terminal and a
log file always show the same figures. `rich` (the ``cli`` extra) is imported
only when a rich table is asked for; the plain forms need nothing. The CLI
and the demo both show snapshots this way, so it lives below both.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, Final

from wedsync_otel.catalogue import OTHER
from wedsync_otel.metrics.snapshot import EndpointSnapshot, PerformanceSnapshot, WindowStats

if TYPE_CHECKING:
    from rich.table import Table

    from wedsync_otel.cli.report import EndpointThresholds  # a type only: no import at run time
    from wedsync_otel.config import WeddingConfig

_LEFT: Final = frozenset({"endpoint", "trend", "readiness", "critical", "day", "patterns"})
_READINESS_TEXT: Final = {"ready": "READY", "at_risk": "AT RISK", "not_ready": "NOT READY"}
READINESS_STYLE: Final = {"ready": "green", "at_risk": "yellow", "not_ready": "bold red"}
"""Rich style of each readiness verdict."""
_STYLE_BY_TEXT: Final = {_READINESS_TEXT[key]: style for key, style in READINESS_STYLE.items()}
_TREND_STYLE: Final = {"improving": "green", "stable": "", "degrading": "red"}
_NONE: Final = "-"


def _ms(value: float) -> str:
    return f"{value:.1f}"


def _threshold(value: float) -> str:
    return f"{value:.1f}".removesuffix(".0")


def _share(value: float | None) -> str:
    return _NONE if value is None else f"{value:.0%}"


def _summary_headers(breaches: bool) -> list[str]:
    headers = ["endpoint", "requests", "p50 ms", "p95 ms", "p99 ms", "threshold ms"]
    if breaches:
        headers.append("breaches")
    headers += ["errors", "apdex", "health", "trend", "cache hit", "db share", "readiness"]
    return headers


def _summary_cells(
    endpoint: EndpointSnapshot, stats: WindowStats | None, breaches: Mapping[str, int] | None
) -> dict[str, str]:
    """Column -> cell of one endpoint; a window without requests shows ``-`` for its figures."""
    readiness = _READINESS_TEXT.get(endpoint.readiness, endpoint.readiness)
    cells = {
        "endpoint": endpoint.name,
        "requests": "0" if stats is None else str(stats.count),
        "threshold ms": _threshold(endpoint.threshold_ms),
        "breaches": str((breaches or {}).get(endpoint.name, 0)),
        "trend": endpoint.trend,
        "readiness": readiness if endpoint.critical else _NONE,
    }
    if stats is not None:
        cells |= {
            "p50 ms": _ms(stats.p50_ms),
            "p95 ms": _ms(stats.p95_ms),
            "p99 ms": _ms(stats.p99_ms),
            "errors": f"{stats.error_rate:.2%}",
            "apdex": _NONE if stats.apdex is None else f"{stats.apdex:.2f}",
            "health": f"{stats.health:.0f}",
            "cache hit": _share(stats.cache_hit_rate),
            "db share": _share(stats.db_time_share),
        }
    return cells


def _summary(
    snapshot: PerformanceSnapshot, window: str, breaches: Mapping[str, int] | None
) -> tuple[list[str], list[list[str]]]:
    headers = _summary_headers(breaches is not None)
    rows = []
    for endpoint in snapshot.endpoints.values():
        cells = _summary_cells(endpoint, endpoint.windows.get(window), breaches)
        rows.append([cells.get(header, _NONE) for header in headers])
    return headers, rows


def plain_table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """Columns padded to their widest cell, text left and numbers right, two spaces apart."""
    widths = [len(header) for header in headers]
    for row in rows:
        widths = [max(width, len(cell)) for width, cell in zip(widths, row, strict=True)]

    def line(cells: Sequence[str]) -> str:
        padded = (
            cell.ljust(width) if header in _LEFT else cell.rjust(width)
            for header, cell, width in zip(headers, cells, widths, strict=True)
        )
        return "  ".join(padded).rstrip()

    return "\n".join([line(headers), *(line(row) for row in rows)])


def _rich_table(title: str, headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> Table:
    from rich.table import Table  # noqa: PLC0415 - rich is the optional `cli` extra

    table = Table(title=title, title_justify="left")
    for header in headers:
        table.add_column(header, justify="left" if header in _LEFT else "right", overflow="fold")
    for row in rows:
        table.add_row(*row)
    return table


def summary_table(
    snapshot: PerformanceSnapshot,
    *,
    window: str = "1h",
    breaches: Mapping[str, int] | None = None,
) -> Table:
    """The per-endpoint figures of one window as a rich table (rows in the snapshot's order)."""
    from rich.text import Text  # noqa: PLC0415 - rich is the optional `cli` extra

    headers, rows = _summary(snapshot, window, breaches)
    trend, readiness = headers.index("trend"), headers.index("readiness")
    styled: list[list[Any]] = []
    for row in rows:
        cells: list[Any] = list(row)
        cells[trend] = Text(row[trend], style=_TREND_STYLE.get(row[trend], ""))
        cells[readiness] = Text(row[readiness], style=_STYLE_BY_TEXT.get(row[readiness], ""))
        styled.append(cells)
    return _rich_table(f"Wedding performance, last {window}", headers, styled)


def plain_summary(
    snapshot: PerformanceSnapshot,
    *,
    window: str = "1h",
    breaches: Mapping[str, int] | None = None,
) -> str:
    """The same figures as `summary_table`, as aligned plain text."""
    headers, rows = _summary(snapshot, window, breaches)
    return plain_table(headers, rows)


def verdict_lines(snapshot: PerformanceSnapshot) -> list[str]:
    """The wedding-day verdict for the whole API, then one line per reason."""
    verdict = _READINESS_TEXT.get(snapshot.readiness, snapshot.readiness)
    return [f"Wedding-day readiness: {verdict}", *(f"  - {reason}" for reason in snapshot.reasons)]


# --- the effective catalogue (check-config) ------------------------------------------------


def _catalogue(
    entries: Sequence[EndpointThresholds], *, separator: str
) -> tuple[list[str], list[list[str]]]:
    bands = list(entries[0].weekday) if entries else []
    headers = ["endpoint", "critical", "day", *bands, "patterns"]
    rows: list[list[str]] = []
    for entry in entries:
        patterns = separator.join(entry.patterns) or "(every path no pattern claims)"
        critical = "yes" if entry.critical else "no"
        weekday = [_threshold(entry.weekday[band]) for band in bands]
        saturday = [_threshold(entry.saturday[band]) for band in bands]
        rows.append([entry.name, critical, "weekday", *weekday, patterns])
        rows.append(["", "", "saturday", *saturday, ""])
    return headers, rows


def calendar_lines(calendar: Mapping[str, Any]) -> list[str]:
    """The calendar settings, one per line."""
    months = ", ".join(str(month) for month in calendar["season_months"]) or "none"
    bands = ", ".join(f"{band} x{value:g}" for band, value in calendar["bands"].items())
    return [
        f"timezone: {calendar['timezone']}",
        f"saturday mode: {'on' if calendar['saturday_mode'] else 'off'}",
        f"season months: {months}",
        f"default threshold (other): {_threshold(calendar['default_threshold_ms'])} ms",
        f"critical wedding-day cap: {_threshold(calendar['critical_wedding_day_cap_ms'])} ms",
        f"band multipliers: {bands}",
    ]


def catalogue_table(entries: Sequence[EndpointThresholds]) -> Table:
    """Thresholds (ms) per endpoint, band and kind of day, as a rich table."""
    headers, rows = _catalogue(entries, separator="\n")
    return _rich_table("Thresholds (ms) by proximity band", headers, rows)


def plain_catalogue(entries: Sequence[EndpointThresholds]) -> str:
    """The same thresholds as `catalogue_table`, as aligned plain text."""
    headers, rows = _catalogue(entries, separator=", ")
    return plain_table(headers, rows)


def in_catalogue_order(snapshot: PerformanceSnapshot, config: WeddingConfig) -> PerformanceSnapshot:
    """The snapshot with endpoints in catalogue order, then the others by name, ``other`` last."""
    catalogue = [spec.name for spec in config.endpoints if spec.name in snapshot.endpoints]
    rest = sorted(set(snapshot.endpoints) - set(catalogue), key=lambda name: (name == OTHER, name))
    ordered = {name: snapshot.endpoints[name] for name in (*catalogue, *rest)}
    reasons = [reason for snap in ordered.values() if snap.critical for reason in snap.reasons]
    return dataclasses.replace(snapshot, endpoints=ordered, reasons=reasons)
