"""Reading OTLP JSON files back: every span, or every metric, of a file or a directory.

What ``wedsync-otel report`` and the tests read: the files the exporters in
`wedsync_otel.exporters.otlp_json` write, or a collector's ``file`` exporter
writes. A read streams, a line (JSON lines) or a document (a pretty file) at
a time and never whole, and counts what it went through. Spans are decoded
straight from the parsed JSON; metrics go through protobuf.
"""

from __future__ import annotations

import binascii
import contextlib
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final, TypeAlias

from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
)

from wedsync_otel.exporters._json_documents import documents
from wedsync_otel.exporters._json_spans import spans_of
from wedsync_otel.exporters._proto_records import metrics_of, parse_request
from wedsync_otel.exporters.records import MetricRecord, SpanRecord

_SUFFIXES: Final = frozenset({".json", ".jsonl"})
_SPANS_KEYS: Final = ("resourceSpans", "resource_spans")
_METRICS_KEYS: Final = ("resourceMetrics", "resource_metrics")
_REQUEST_KEYS: Final = frozenset(
    {*_SPANS_KEYS, *_METRICS_KEYS, "resourceLogs", "resource_logs", "resourceProfiles"}
)


Progress: TypeAlias = Callable[[int], None]
"""Called with the number of bytes just read, as a read goes through its files."""


@dataclass(kw_only=True, slots=True)
class ReadCounts:
    """What a read went through: filled in as `iter_spans` streams, complete once it ends."""

    files: int = 0
    """Files read (in a directory, those that held OTLP JSON)."""
    bytes_read: int = 0
    span_requests: int = 0
    """Export requests holding spans."""
    metric_requests: int = 0
    """Export requests holding metrics, passed over by a span read."""
    other_requests: int = 0
    """Logs, profiles and empty documents."""


def otlp_files(path: str | os.PathLike[str]) -> list[Path]:
    """The files a read of ``path`` goes through: the file itself, or a directory's candidates.

    A directory's ``*.json`` and ``*.jsonl`` files, in name order; those that
    turn out not to hold OTLP JSON are skipped as they are read.
    """
    path = Path(path)
    if not path.is_dir():
        return [path]
    return sorted(p for p in path.iterdir() if p.suffix in _SUFFIXES and p.is_file())


def iter_spans(
    path: str | os.PathLike[str],
    *,
    progress: Progress | None = None,
    counts: ReadCounts | None = None,
) -> Iterator[SpanRecord]:
    """Every span in an OTLP JSON file, or in the ``*.json``/``*.jsonl`` files of a directory.

    Streams: one line or document is held at a time, whatever the file's size.
    ``progress`` hears of every chunk of bytes read; ``counts`` is filled in
    as the read goes. Raises `OSError` when the path cannot be read and
    `ValueError` (naming the file and line) when an explicitly named file, or
    the rest of a file that started as OTLP JSON, is not OTLP JSON.
    """
    counts = ReadCounts() if counts is None else counts
    for file, explicit in _files(Path(path)):
        for line, document in _file_requests(
            file, explicit=explicit, counts=counts, progress=progress
        ):
            if not any(key in document for key in _SPANS_KEYS):
                continue
            try:
                spans = spans_of(document)
            except (TypeError, ValueError, AttributeError, KeyError, binascii.Error) as exc:
                raise ValueError(
                    f"{file}:{line}: not a valid ExportTraceServiceRequest ({_problem(exc)})"
                ) from None
            yield from spans


def read_spans(path: str | os.PathLike[str]) -> list[SpanRecord]:
    """Every span of `iter_spans` in a list: for small files; a report streams instead."""
    return list(iter_spans(path))


def read_metrics(path: str | os.PathLike[str]) -> list[MetricRecord]:
    """Every metric of every export in an OTLP JSON file or directory, in file order.

    Cumulative series repeat in each export; the last one holds the totals.
    Summaries are skipped. Raises like `iter_spans`.
    """
    records: list[MetricRecord] = []
    counts = ReadCounts()
    for file, explicit in _files(Path(path)):
        for line, document in _file_requests(file, explicit=explicit, counts=counts, progress=None):
            if not any(key in document for key in _METRICS_KEYS):
                continue
            request = parse_request(file, line, document, ExportMetricsServiceRequest)
            records.extend(metrics_of(request))
    return records


def _files(path: Path) -> Iterator[tuple[Path, bool]]:
    """Each file to read, and whether it was named (a named file must be OTLP JSON)."""
    if not path.is_dir():
        yield path, True
        return
    for file in otlp_files(path):
        yield file, False


def _file_requests(
    file: Path, *, explicit: bool, counts: ReadCounts, progress: Progress | None
) -> Iterator[tuple[int, dict[str, Any]]]:
    """The export requests of one file, with their lines, counted by kind.

    In a directory, a file whose first document is not an OTLP request is
    skipped (other JSON lives there too); a named file must be OTLP JSON, and
    so must the rest of a file that started as OTLP JSON.
    """
    read = 0

    def tally(size: int) -> None:
        nonlocal read
        read += size
        counts.bytes_read += size
        if progress is not None:
            progress(size)

    first = True
    try:
        for line, document in documents(file, tally):
            if not isinstance(document, dict) or (document and not _REQUEST_KEYS & document.keys()):
                raise ValueError(f"{file}:{line}: not an OTLP JSON export request")
            if first:
                counts.files += 1
            first = False
            if any(key in document for key in _SPANS_KEYS):
                counts.span_requests += 1
            elif any(key in document for key in _METRICS_KEYS):
                counts.metric_requests += 1
            else:
                counts.other_requests += 1
            yield line, document
    except ValueError:
        if explicit or not first:
            raise
        if progress is not None:  # passed over: the rest of it counts as done
            with contextlib.suppress(OSError):
                progress(max(0, file.stat().st_size - read))


def _problem(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}" if isinstance(exc, KeyError | TypeError) else str(exc)
