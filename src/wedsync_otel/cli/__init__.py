"""The ``wedsync-otel`` command line; the table rendering the demo shares with it.

The entry point is `wedsync_otel.cli.main.main`; it is not re-exported here, so
that ``python -m wedsync_otel.cli.main`` does not import its module twice.
"""

from __future__ import annotations

from wedsync_otel.render import plain_summary, summary_table, verdict_lines

__all__ = ["plain_summary", "summary_table", "verdict_lines"]
