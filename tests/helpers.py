"""Test helpers shared by several test modules: fake clocks, a real SDK pipeline, a work meter."""

from __future__ import annotations

import contextlib
import datetime as dt
import importlib.metadata
import re
import sys
import threading
from collections.abc import Callable, Iterator
from types import FrameType, ModuleType
from typing import Any, SupportsIndex, TypeAlias

from opentelemetry.sdk.metrics import Counter, Histogram
from opentelemetry.sdk.metrics.export import (
    AggregationTemporality,
    MetricExporter,
    MetricExportResult,
    MetricsData,
)
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from wedsync_otel import WeddingConfig, WeddingSpanProcessor


class FakeClock:
    """A clock that returns whatever instant the test set."""

    def __init__(self, now: dt.datetime) -> None:
        self.now = now

    def __call__(self) -> dt.datetime:
        return self.now


class FakeSeconds:
    """A monotonic clock in seconds that moves only when the test or the code under test says.

    Called, it returns ``now_s`` (and sets `read`, which a retrying exporter
    does after a failed attempt). Its `wait` stands in for an ``Event.wait``:
    it records the timeout, moves the clock by exactly that and returns at
    once, never interrupted.
    """

    def __init__(self, now_s: float = 1_000.0) -> None:
        self.now_s = now_s
        self.waits_s: list[float] = []
        self.read = threading.Event()

    def __call__(self) -> float:
        self.read.set()
        return self.now_s

    def wait(self, timeout_s: float) -> bool:
        """Pass ``timeout_s`` at once; False: nothing (no shutdown) ended the wait early."""
        self.waits_s.append(timeout_s)
        self.now_s += timeout_s
        return False


class Pipeline:
    """A TracerProvider with the wedding processor in front of an in-memory exporter."""

    def __init__(self, config: WeddingConfig, clock: FakeClock) -> None:
        self.exporter = InMemorySpanExporter()
        self.clock = clock
        self.processor = WeddingSpanProcessor(
            SimpleSpanProcessor(self.exporter), config=config, clock=clock
        )
        self.provider = TracerProvider()
        self.provider.add_span_processor(self.processor)
        self.tracer = self.provider.get_tracer("tests")

    def spans(self) -> tuple[ReadableSpan, ...]:
        return self.exporter.get_finished_spans()

    def only_span(self, name: str) -> ReadableSpan:
        matching = [span for span in self.spans() if span.name == name]
        assert len(matching) == 1, [span.name for span in self.spans()]
        return matching[0]


# A Tuesday in wedding season, mid-morning in London.
TUESDAY = dt.datetime(2026, 6, 16, 10, 0, tzinfo=dt.UTC)
SATURDAY = dt.datetime(2026, 6, 20, 10, 0, tzinfo=dt.UTC)


def distribution_installed(name: str) -> bool:
    """Whether the distribution ``name`` is installed (a module name can be a namespace)."""
    try:
        importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return False
    return True


class CapturingExporter(MetricExporter):
    """A real MetricExporter that keeps what it is given, like the SDK's in-memory span exporter."""

    def __init__(self, *, delta: bool = False) -> None:
        temporality = AggregationTemporality.DELTA if delta else AggregationTemporality.CUMULATIVE
        super().__init__(preferred_temporality={Histogram: temporality, Counter: temporality})
        self.exported: list[MetricsData] = []

    def export(
        self, metrics_data: MetricsData, timeout_millis: float = 10_000, **kwargs: Any
    ) -> MetricExportResult:
        self.exported.append(metrics_data)
        return MetricExportResult.SUCCESS

    def force_flush(self, timeout_millis: float = 10_000) -> bool:
        return True

    def shutdown(self, timeout_millis: float = 30_000, **kwargs: Any) -> None:
        return None


# --- counting work instead of timing it ----------------------------------------------------------


class WorkMeter:
    """Work done by code under test, counted rather than timed, so a busy machine cannot move it.

    ``opcodes`` are the bytecode instructions run in the measured module's own
    code; ``characters`` are the characters its C-level calls cross: text
    sliced, searched with ``str.find``, and walked by its regular expressions
    (from where each search starts to where its match ends, or to the end of
    the text). What the regex engine re-reads while backtracking inside one
    attempt is not seen: the benchmarks time that.
    """

    def __init__(self) -> None:
        self.opcodes = 0
        self.characters = 0

    @property
    def total(self) -> int:
        return self.opcodes + self.characters


class CountingText(str):
    """A ``str`` that adds to a `WorkMeter` the characters its slicing and searching cross."""

    meter: WorkMeter

    def __new__(cls, text: str, meter: WorkMeter) -> CountingText:
        counted = super().__new__(cls, text)
        counted.meter = meter
        return counted

    def __getitem__(self, key: SupportsIndex | slice) -> str:
        part = str.__getitem__(self, key)
        self.meter.characters += max(len(part), 1)
        return part

    def __contains__(self, key: object) -> bool:
        self.meter.characters += len(self)
        return str.__contains__(self, key)  # type: ignore[operator]

    def find(
        self, sub: str, start: SupportsIndex | None = None, end: SupportsIndex | None = None
    ) -> int:
        found = str.find(self, sub, start, end)
        begin = 0 if start is None else int(start)
        self.meter.characters += 1 + ((len(self) if found < 0 else found + len(sub)) - begin)
        return found

    def lower(self) -> str:
        self.meter.characters += len(self)
        return str.lower(self)


_WHOLE: int = sys.maxsize


class CountingPattern:
    """A compiled pattern's search methods, adding the characters each walks to a `WorkMeter`.

    Only the methods below exist: code calling another one fails loudly
    instead of going uncounted.
    """

    def __init__(self, compiled: re.Pattern[str], meter: WorkMeter) -> None:
        self._compiled = compiled
        self.meter = meter

    def _walked(self, string: str, pos: int, endpos: int, match: re.Match[str] | None) -> None:
        end = min(len(string), endpos) if match is None else match.end()
        self.meter.characters += 1 + max(end - pos, 0)

    def match(self, string: str, pos: int = 0, endpos: int = _WHOLE) -> re.Match[str] | None:
        found = self._compiled.match(string, pos, endpos)
        self.meter.characters += 1 + (0 if found is None else found.end() - pos)
        return found

    def fullmatch(self, string: str, pos: int = 0, endpos: int = _WHOLE) -> re.Match[str] | None:
        found = self._compiled.fullmatch(string, pos, endpos)
        self.meter.characters += 1 + (0 if found is None else found.end() - pos)
        return found

    def search(self, string: str, pos: int = 0, endpos: int = _WHOLE) -> re.Match[str] | None:
        found = self._compiled.search(string, pos, endpos)
        self._walked(string, pos, endpos, found)
        return found

    def finditer(self, string: str, pos: int = 0, endpos: int = _WHOLE) -> Iterator[re.Match[str]]:
        for found in self._compiled.finditer(string, pos, endpos):
            self._walked(string, pos, endpos, found)
            pos = found.end()
            yield found
        self._walked(string, pos, endpos, None)

    def findall(self, string: str, pos: int = 0, endpos: int = _WHOLE) -> list[Any]:
        self._walked(string, pos, endpos, None)
        return self._compiled.findall(string, pos, endpos)


def _counting(value: object, meter: WorkMeter) -> object:
    """``value`` with its compiled patterns (itself, or a dict's values) made counting."""
    if isinstance(value, re.Pattern):
        return CountingPattern(value, meter)
    if isinstance(value, dict) and any(isinstance(item, re.Pattern) for item in value.values()):
        return {key: _counting(item, meter) for key, item in value.items()}
    return value


_Tracer: TypeAlias = Callable[[FrameType, str, Any], "_Tracer | None"]


@contextlib.contextmanager
def counting_work(module: ModuleType) -> Iterator[WorkMeter]:
    """Count the work done in ``module`` while the block runs, on this thread.

    The module's compiled patterns are swapped for `CountingPattern` proxies
    and every frame of its code counts its bytecode instructions
    (``sys.settrace`` opcode events); pass the input as a `CountingText` to
    count slicing and ``str.find`` too. Everything is put back afterwards,
    including a tracer (coverage) that was running.
    """
    meter = WorkMeter()
    originals = dict(vars(module))
    for name, value in originals.items():
        swapped = _counting(value, meter)
        if swapped is not value:
            setattr(module, name, swapped)
    source = module.__file__

    def count_opcodes(frame: FrameType, event: str, arg: object) -> _Tracer:
        if event == "opcode":
            meter.opcodes += 1
        return count_opcodes

    def on_call(frame: FrameType, event: str, arg: object) -> _Tracer | None:
        if frame.f_code.co_filename != source:
            return None
        frame.f_trace_lines = False
        frame.f_trace_opcodes = True
        return count_opcodes

    previous = sys.gettrace()
    sys.settrace(on_call)
    try:
        yield meter
    finally:
        sys.settrace(previous)
        for name, value in originals.items():
            if getattr(module, name) is not value:
                setattr(module, name, value)


RECORDED_METRICS = (
    "wedding.server.duration",
    "wedding.db.duration",
    "wedding.apdex.requests",
    "wedding.cache.requests",
    "wedding.threshold.breaches",
)
"""The recorder's metrics in the order the exporter emits them: the tests' own copy."""
