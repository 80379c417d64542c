"""Screen, LoadProgress: how the run is shown, a live `rich` view on a terminal or plain lines.

Apart from the run because the display decides nothing: it only counts and renders.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Callable, Coroutine, Mapping
from typing import Any, Final, TextIO

from rich.console import Console, Group, RenderableType
from rich.live import Live
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.text import Text

from wedsync_otel.demo.breaches import BreachCounter
from wedsync_otel.demo.load import Completed, LoadSummary
from wedsync_otel.metrics import PerformanceSnapshot
from wedsync_otel.render import plain_summary, summary_table

LIVE_WINDOW: Final = "1m"
"""The live table shows the last minute: what the service is doing now."""
FINAL_WINDOW: Final = "1h"
"""The final table covers the whole run, the window readiness is judged on."""
REFRESH_PER_S: Final = 2.0
_PLAIN_PROGRESS_LINES: Final = 4


class LoadProgress:
    """Counts finished requests; renders the live view, or prints a line each quarter."""

    def __init__(
        self,
        *,
        duration_s: float,
        snapshot: Callable[[], PerformanceSnapshot],
        breaches: BreachCounter,
        out: TextIO | None = None,
    ) -> None:
        self._duration_s = duration_s
        self._snapshot = snapshot
        self._breaches = breaches
        self._out = out
        self._started = time.monotonic()
        self.completed = 0
        self.server_errors = 0
        self.unanswered: Counter[str] = Counter()
        """Requests with no answer, by exception class."""
        self._next_line = 1
        self._progress = Progress(
            TextColumn("[bold]Saturday peak"),
            BarColumn(),
            TimeElapsedColumn(),
            TextColumn("{task.description}"),
        )
        self._task = self._progress.add_task("", total=duration_s)

    def elapsed_s(self) -> float:
        """Seconds since the load began."""
        return time.monotonic() - self._started

    def counts_text(self) -> str:
        """Requests so far, their rate, and the failures."""
        rate = self.completed / max(self.elapsed_s(), 1e-9)
        unanswered = ", ".join(f"{name} x{n}" for name, n in self.unanswered.items())
        return (
            f"{self.completed} requests ({rate:.1f}/s), {self.server_errors} 5xx, "
            f"{self.unanswered.total()} unanswered" + (f" ({unanswered})" if unanswered else "")
        )

    def on_complete(self, done: Completed) -> None:
        """The load generator's callback: count, and in plain mode print now and then."""
        self.completed += 1
        self.server_errors += done.status >= 500
        if done.status == 0:
            self.unanswered[done.error or "no answer"] += 1
        if self._out is not None and self.elapsed_s() >= (
            self._next_line * self._duration_s / _PLAIN_PROGRESS_LINES
        ):
            self._next_line += 1
            print(f"  {self.elapsed_s():5.1f} s  {self.counts_text()}", file=self._out)

    def renderable(self) -> RenderableType:
        """The live view: the progress bar, then the per-endpoint table of the last minute."""
        elapsed = min(self.elapsed_s(), self._duration_s)
        self._progress.update(self._task, completed=elapsed, description=self.counts_text())
        snapshot = self._snapshot()
        if not snapshot.endpoints:
            return Group(self._progress, Text("waiting for the first requests..."))
        table = summary_table(snapshot, window=LIVE_WINDOW, breaches=self._breaches.counts())
        return Group(self._progress, table)


class Screen:
    """Where the run is shown: a rich console with a live view, or plain lines."""

    def __init__(self, *, console: Console | None, out: TextIO) -> None:
        self.console = console
        self.out = out

    def say(self, line: str) -> None:
        """One line of text, shown as is."""
        if self.console is None:
            print(line, file=self.out, flush=True)
        else:
            self.console.print(line, markup=False, highlight=False)

    def run_load(self, load: Coroutine[Any, Any, LoadSummary], progress: LoadProgress) -> bool:
        """Run the load under the live view (or plain lines); True if Ctrl-C cut it short."""
        try:
            if self.console is None:
                asyncio.run(load)
            else:
                with Live(
                    get_renderable=progress.renderable,
                    console=self.console,
                    refresh_per_second=REFRESH_PER_S,
                    transient=True,  # the final table follows: the last frame would repeat it
                ):
                    asyncio.run(load)
        except KeyboardInterrupt:
            self.say("interrupted")
            return True
        self.say(f"Load done in {progress.elapsed_s():.1f} s: {progress.counts_text()}")
        return False

    def table(self, snapshot: PerformanceSnapshot, breaches: Mapping[str, int]) -> None:
        """The per-endpoint figures of the whole run."""
        self.say("")
        if self.console is None:
            self.say(f"Wedding performance, last {FINAL_WINDOW} (the whole run):")
            self.say(plain_summary(snapshot, window=FINAL_WINDOW, breaches=breaches))
        else:
            self.console.print(summary_table(snapshot, window=FINAL_WINDOW, breaches=breaches))
