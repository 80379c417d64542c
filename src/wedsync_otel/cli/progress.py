"""Progress of a long read, on stderr: a rich bar on a terminal, plain lines anywhere else.

Nothing is shown for a read that ends within ``delay_s`` (so quick reports,
and their one-line errors, stay as they were) unless progress is asked for.
A plain line every ``interval_s`` says how much of the total was read; the
last one says how long it all took. The rich bar is transient: it is gone
once the report prints.
"""

from __future__ import annotations

import importlib.util
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Final, TextIO

from wedsync_otel._closing import ClosesOnExit

if TYPE_CHECKING:
    from rich.progress import Progress, TaskID

DELAY_S: Final = 1.0
"""A read shows progress once it has taken this long (unless progress is forced)."""
INTERVAL_S: Final = 5.0
"""Seconds between plain progress lines."""
_LABEL_COLUMNS: Final = 40


def size_text(size: int) -> str:
    """Bytes in decimal units, as rich's columns write them: ``475.0 MB``."""
    value = float(size)
    for unit in ("B", "kB", "MB", "GB"):
        if value < 1000 or unit == "GB":
            return f"{size} B" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1000
    raise AssertionError("unreachable")  # pragma: no cover


class ReadProgress(ClosesOnExit):
    """Hears of the bytes a read goes through (call it with each chunk's size); shows them.

    ``show``: None shows progress once the read has taken `DELAY_S`, True from
    the start, False never. ``rich``: a rich bar (on a terminal) rather than
    plain lines. ``monotonic`` returns monotonic seconds; tests pass a fake one.
    """

    def __init__(
        self,
        total_bytes: int,
        *,
        label: str,
        stream: TextIO,
        rich: bool,
        show: bool | None = None,
        delay_s: float = DELAY_S,
        interval_s: float = INTERVAL_S,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.total_bytes = total_bytes
        self.done_bytes = 0
        self._label = label
        self._stream = stream
        self._rich = rich
        self._enabled = show is not False
        self._delay_s = 0.0 if show else delay_s
        self._interval_s = interval_s
        self._monotonic = monotonic
        self._started = monotonic()
        self._next_line: float | None = None
        """When the next plain line is due; None until one has been printed."""
        self._bar: Progress | None = None
        self._task: TaskID | None = None
        self._shown = False
        self._closed = False

    def __call__(self, size: int) -> None:
        """Count ``size`` more bytes read."""
        self.done_bytes += size
        if not self._enabled or self._closed:
            return
        now = self._monotonic()
        if self._bar is not None and self._task is not None:
            self._bar.update(self._task, completed=self.done_bytes)
            return
        if now - self._started < self._delay_s:
            return
        if self._rich:
            self._start_bar()
        elif self._next_line is None or now >= self._next_line:
            self._line(now)

    def _start_bar(self) -> None:
        # rich is the optional `cli` extra; only used when it is installed (see `rich_available`)
        from rich.console import Console  # noqa: PLC0415
        from rich.progress import (  # noqa: PLC0415
            BarColumn,
            DownloadColumn,
            Progress,
            TextColumn,
            TimeRemainingColumn,
            TransferSpeedColumn,
        )
        from rich.table import Column  # noqa: PLC0415

        # A long path gives way (an ellipsis), never the figures beside it.
        label = Column(no_wrap=True, overflow="ellipsis", max_width=_LABEL_COLUMNS)
        self._bar = Progress(
            TextColumn("reading {task.description}", table_column=label),
            BarColumn(),
            DownloadColumn(),
            TransferSpeedColumn(),
            TimeRemainingColumn(),
            console=Console(file=self._stream),
            transient=True,
        )
        self._bar.start()
        self._task = self._bar.add_task(
            self._label, total=max(self.total_bytes, 1), completed=self.done_bytes
        )
        self._shown = True

    def _line(self, now: float) -> None:
        total = max(self.total_bytes, 1)
        share = min(1.0, self.done_bytes / total)
        self._stream.write(
            f"reading {self._label}: {size_text(self.done_bytes)} of "
            f"{size_text(self.total_bytes)} ({share:.0%}){self._speed(now)}\n"
        )
        self._stream.flush()
        self._next_line = now + self._interval_s
        self._shown = True

    def _speed(self, now: float) -> str:
        elapsed = now - self._started
        if elapsed < 1.0:  # too soon to say
            return ""
        return f", {size_text(int(self.done_bytes / elapsed))}/s"

    def close(self) -> None:
        """Stop the bar, or end the plain lines with the total and the time; idempotent."""
        if self._closed:
            return
        self._closed = True
        if self._bar is not None:
            self._bar.stop()
        elif self._shown:
            now = self._monotonic()
            self._stream.write(
                f"read {size_text(self.done_bytes)} in {now - self._started:.1f} s"
                f"{self._speed(now)}\n"
            )
            self._stream.flush()


def rich_available() -> bool:
    """Whether rich (the ``cli`` extra) is installed."""
    return importlib.util.find_spec("rich") is not None
