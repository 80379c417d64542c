"""QueryAdvisor: index and batching advice from the queries the application really runs.

The request path only counts: `QueryAdvisor.observe` records a latency under a
short lock and, the first time a fingerprint's p95 passes ``slow_ms``, appends a
job to a bounded queue. One daemon worker drains the queue on its own
connection from ``connect()``, with instrumentation suppressed, and EXPLAINs
each slow read once:

* never a write (`is_read_only` on the sanitised text) and never ``ANALYZE``;
* PostgreSQL: in a ``READ ONLY`` transaction with ``statement_timeout``, always
  rolled back; ``EXPLAIN (GENERIC_PLAN)`` from 16, ``PREPARE`` and ``EXPLAIN
  EXECUTE`` with NULLs under ``force_generic_plan`` before (see `_postgres`);
* SQLite: ``EXPLAIN QUERY PLAN`` with ``None`` for each ``?`` on a connection set
  to ``PRAGMA query_only``; pass a factory that opens ``file:...?mode=ro`` to
  make the file itself read-only (see `_sqlite`).

A plan earns ``CREATE INDEX`` advice when it scans a large table (at least
``min_table_rows``) whose filter compares columns with parameters, the table is
not read through an index elsewhere in the plan, no valid index already starts
with those columns, and (PostgreSQL) the filter keeps at most 10% of the rows.

Bounds: ``max_fingerprints`` series (least recently observed evicted), as many
fingerprints with advice and as many N+1 reports (oldest evicted), ``max_queue``
jobs (newest dropped); all counted in `AdvisorStats`. A failed EXPLAIN is
retried when the fingerprint is slow again, three attempts in all.

This module is the advisor itself; SQL text work is in `_sql`, what both
databases' readers share in `_index`. It re-exports the names tests and callers
import from here.
"""

from __future__ import annotations

import contextlib
import math
import threading
from collections import OrderedDict, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Final, Literal

from opentelemetry import context as otel_context
from opentelemetry.context import _SUPPRESS_INSTRUMENTATION_KEY

from wedsync_otel._safety import RateLimitedWarning, log_internal_error
from wedsync_otel.db._index import RelationFacts
from wedsync_otel.db._postgres import PostgresPlan, explain_postgres, postgres_advice
from wedsync_otel.db._sql import (
    comparisons,
    filter_columns,
    number_placeholders,
    quote,
    table_names,
    tokenize,
    where_clauses,
)
from wedsync_otel.db._sqlite import SqlitePlan, explain_sqlite, set_query_only, sqlite_advice
from wedsync_otel.errors import ConfigError
from wedsync_otel.instrumentation.fingerprint import MAX_QUERY_CHARS, is_read_only, sanitize
from wedsync_otel.metrics.buckets import ExponentialBuckets

__all__ = [
    "AdvisorStats",
    "PostgresPlan",
    "QueryAdvisor",
    "Recommendation",
    "RelationFacts",
    "SqlitePlan",
    "explain_postgres",
    "explain_sqlite",
    "filter_columns",
    "number_placeholders",
]

System = Literal["postgresql", "sqlite"]
Connect = Callable[[], Any]
"""Returns a new DB-API connection; the worker calls it, never the request path."""

_QUANTILE: Final = 0.95
_WINDOW_RUNS: Final = 1024
"""A series that has not turned slow after this many runs starts afresh, so a
query that slows down later is noticed without waiting for a lifetime p95 to move."""
_BUCKETS: Final = 128
"""Buckets per series: about 9% wide over 1 ms to a minute, 1 KiB; evidence only."""
_MAX_ATTEMPTS: Final = 3
"""EXPLAINs of one fingerprint that may fail before it is given up on."""
_CLOSE_TIMEOUT_S: Final = 5.0
_ADVICE_STATEMENT_CHARS: Final = 200


@dataclass(frozen=True, slots=True)
class Recommendation:
    """One piece of advice, with the plan or count that justifies it."""

    fingerprint: str
    statement: str
    kind: Literal["index", "batch"]
    table: str | None
    columns: tuple[str, ...]
    advice: str
    evidence: str


@dataclass(frozen=True, slots=True)
class AdvisorStats:
    """What the advisor has done and what it had to drop, skip or forget."""

    explained: int
    skipped_writes: int
    errors: int
    dropped: int
    evicted: int


# --- the advisor --------------------------------------------------------------------------

_WATCHING, _QUEUED, _DONE = "watching", "queued", "done"


def _window() -> ExponentialBuckets:
    return ExponentialBuckets(max_size=_BUCKETS)


@dataclass(slots=True)
class _Series:
    """One fingerprint's latencies in the current window and where it stands."""

    statement: str
    latency: ExponentialBuckets = field(default_factory=_window)
    slow: int = 0
    state: str = _WATCHING
    attempts: int = 0

    def restart(self) -> None:
        self.latency = _window()
        self.slow = 0
        self.state = _WATCHING


@dataclass(frozen=True, slots=True)
class _Job:
    fingerprint: str
    statement: str
    p95_ms: float
    runs: int


@dataclass(slots=True)
class _Batch:
    statement: str
    largest: int
    reports: int


class _Unexplainable(Exception):
    """A statement that no EXPLAIN could take; retrying would not help."""


class QueryAdvisor:
    """EXPLAINs each slow read once, off the request path, and turns plans into advice.

    ``observe`` and ``report_n_plus_one`` are for the request path: they take one
    short lock, never touch the database and never raise. Everything else runs
    on one daemon worker started on first need (and again after a fork).
    """

    def __init__(
        self,
        connect: Connect,
        *,
        system: System,
        slow_ms: float = 50.0,
        min_samples: int = 5,
        max_fingerprints: int = 1000,
        max_queue: int = 100,
        min_table_rows: int = 10_000,
        statement_timeout_ms: int = 2_000,
    ) -> None:
        if system not in {"postgresql", "sqlite"}:
            raise ConfigError("system", f"{system!r} is neither 'postgresql' nor 'sqlite'")
        if not (isinstance(slow_ms, int | float) and math.isfinite(slow_ms) and slow_ms >= 0):
            raise ConfigError("slow_ms", f"{slow_ms!r} is not a finite number >= 0")
        for key, value in (
            ("min_samples", min_samples),
            ("max_fingerprints", max_fingerprints),
            ("max_queue", max_queue),
            ("statement_timeout_ms", statement_timeout_ms),
        ):
            if not isinstance(value, int) or value < 1:
                raise ConfigError(key, f"{value!r} is not an integer >= 1")
        if not isinstance(min_table_rows, int) or min_table_rows < 0:
            raise ConfigError("min_table_rows", f"{min_table_rows!r} is not an integer >= 0")
        self._connect = connect
        self._system = system
        self._slow_ms = float(slow_ms)
        self._min_samples = min_samples
        self._max_fingerprints = max_fingerprints
        self._max_queue = max_queue
        self._min_table_rows = min_table_rows
        self._timeout_ms = statement_timeout_ms
        self._cond = threading.Condition(threading.Lock())
        self._series: OrderedDict[str, _Series] = OrderedDict()
        self._advice: OrderedDict[str, tuple[Recommendation, ...]] = OrderedDict()
        self._batches: OrderedDict[str, _Batch] = OrderedDict()
        self._queue: deque[_Job] = deque()
        self._pending = 0  # queued plus the one in progress
        self._worker: threading.Thread | None = None
        self._closed = False
        self._explained = self._skipped_writes = self._errors = 0
        self._dropped = self._evicted = 0
        self._failure = RateLimitedWarning("wedsync-otel: QueryAdvisor could not EXPLAIN")

    # --- request path -------------------------------------------------------------------

    def observe(self, *, fingerprint: str, statement: str, duration_ms: float) -> None:
        """Count one run of a sanitised statement; queue its EXPLAIN once its p95 is slow."""
        try:
            with self._cond:
                if self._closed:
                    return
                series = self._series.get(fingerprint)
                if series is None:
                    series = self._track(fingerprint, statement)
                else:
                    self._series.move_to_end(fingerprint)
                if series.state != _WATCHING or not series.latency.record(duration_ms):
                    return
                if duration_ms > self._slow_ms:
                    series.slow += 1
                runs = series.latency.count
                # Nearest-rank p95 is above slow_ms exactly when that many runs were slow.
                if runs >= self._min_samples and series.slow >= runs - round(
                    _QUANTILE * (runs - 1)
                ):
                    p95 = series.latency.quantile(_QUANTILE) or duration_ms
                    self._enqueue(_Job(fingerprint, series.statement, p95, runs), series)
                elif runs >= _WINDOW_RUNS:
                    series.restart()
        except Exception as exc:  # noqa: BLE001 - telemetry must not break the request
            log_internal_error("QueryAdvisor.observe", exc)

    def report_n_plus_one(self, *, fingerprint: str, statement: str, count: int) -> None:
        """Note that one request ran this sanitised statement ``count`` times."""
        try:
            with self._cond:
                if self._closed:
                    return
                batch = self._batches.get(fingerprint)
                if batch is None:
                    self._make_room(self._batches, fingerprint)
                    self._batches[fingerprint] = _Batch(statement, count, 1)
                else:
                    batch.largest = max(batch.largest, count)
                    batch.reports += 1
        except Exception as exc:  # noqa: BLE001 - telemetry must not break the request
            log_internal_error("QueryAdvisor.report_n_plus_one", exc)

    def _track(self, fingerprint: str, statement: str) -> _Series:
        """Start a series, evicting the least recently observed one when at the bound."""
        self._make_room(self._series, fingerprint)
        series = _Series(statement)
        if fingerprint in self._advice:  # explained before it was evicted: once is enough
            series.state = _DONE
        self._series[fingerprint] = series
        return series

    def _enqueue(self, job: _Job, series: _Series) -> None:
        """Queue under the lock, or drop and count; a dropped series starts a new window."""
        if len(self._queue) >= self._max_queue:
            self._dropped += 1
            series.restart()
            return
        series.state = _QUEUED
        self._queue.append(job)
        self._pending += 1
        self._ensure_worker()
        self._cond.notify_all()

    def _ensure_worker(self) -> None:
        """Start the worker if there is none; after a fork the child has none."""
        if self._worker is not None and self._worker.is_alive():
            return
        self._pending = len(self._queue)  # a job a dead worker held will never finish
        self._worker = threading.Thread(
            target=self._run, name="wedsync-otel-query-advisor", daemon=True
        )
        self._worker.start()

    # --- reading --------------------------------------------------------------------------

    def recommendations(self) -> list[Recommendation]:
        """Index advice in the order it was found, then batch advice for N+1 patterns."""
        with self._cond:
            found = [rec for recs in self._advice.values() for rec in recs]
            batches = list(self._batches.items())
        return found + [_batch_recommendation(fp, batch) for fp, batch in batches]

    @property
    def stats(self) -> AdvisorStats:
        """Counts of EXPLAINs run, writes skipped, errors, dropped jobs and evictions."""
        with self._cond:
            return AdvisorStats(
                explained=self._explained,
                skipped_writes=self._skipped_writes,
                errors=self._errors,
                dropped=self._dropped,
                evicted=self._evicted,
            )

    def wait_idle(self, timeout_s: float) -> bool:
        """Wait until every queued EXPLAIN has finished; False if ``timeout_s`` passed first."""
        with self._cond:
            return self._cond.wait_for(lambda: self._pending == 0, timeout=timeout_s)

    def close(self) -> None:
        """Drop queued work, stop the worker and close its connection; idempotent."""
        with self._cond:
            if self._closed:
                return
            self._closed = True
            self._dropped += len(self._queue)
            self._pending -= len(self._queue)
            self._queue.clear()
            worker = self._worker
            self._cond.notify_all()
        if worker is not None and worker is not threading.current_thread():
            worker.join(_CLOSE_TIMEOUT_S)

    # --- the worker -----------------------------------------------------------------------

    def _run(self) -> None:
        # Like the SDK's exporters: the advisor's own queries must not become spans that
        # the span processor would feed back into observe().
        token = otel_context.attach(otel_context.set_value(_SUPPRESS_INSTRUMENTATION_KEY, True))
        connection: Any = None
        try:
            while True:
                with self._cond:
                    while not self._queue and not self._closed:
                        self._cond.wait()
                    if self._closed:
                        return
                    job = self._queue.popleft()
                try:
                    connection = self._process(job, connection)
                finally:
                    with self._cond:
                        self._pending -= 1
                        self._cond.notify_all()
        finally:
            _close_quietly(connection)
            otel_context.detach(token)

    def _process(self, job: _Job, connection: Any) -> Any:
        """EXPLAIN one job and keep its advice; returns the connection to reuse (or None)."""
        statement = sanitize(job.statement)
        if not is_read_only(statement):
            with self._cond:
                self._skipped_writes += 1
                self._settle(job.fingerprint, None)
            return connection
        if len(job.statement) > MAX_QUERY_CHARS or statement.endswith(" ..."):
            self._failed(job, _Unexplainable(f"cut at {MAX_QUERY_CHARS} characters"))
            return connection
        try:
            if connection is None:
                connection = self._open()
            plan: PostgresPlan | SqlitePlan
            if self._system == "postgresql":
                plan = explain_postgres(connection, statement, timeout_ms=self._timeout_ms)
            else:
                plan = explain_sqlite(connection, statement)
        except Exception as exc:  # noqa: BLE001 - any driver error is counted, never raised
            self._failed(job, exc)
            _close_quietly(connection)  # a failed connection may be in any state: start anew
            return None
        try:
            found = self._advise(job, statement, plan)
        except Exception as exc:  # noqa: BLE001 - a bug of ours: logged (raised under pytest)
            with self._cond:
                self._errors += 1
                self._settle(job.fingerprint, None)
            log_internal_error("QueryAdvisor plan analysis", exc)
            return connection
        with self._cond:
            self._explained += 1
            self._settle(job.fingerprint, found)
        return connection

    def _open(self) -> Any:
        connection = self._connect()
        if self._system == "sqlite":
            try:
                set_query_only(connection)
            except BaseException:
                _close_quietly(connection)
                raise
        return connection

    def _advise(
        self, job: _Job, statement: str, plan: PostgresPlan | SqlitePlan
    ) -> tuple[Recommendation, ...]:
        if isinstance(plan, PostgresPlan):
            found = postgres_advice(plan, min_table_rows=self._min_table_rows)
        else:
            found = sqlite_advice(plan, statement, min_table_rows=self._min_table_rows)
        runs = f"p95 {job.p95_ms:.0f} ms over {job.runs} runs"
        return tuple(
            Recommendation(
                fingerprint=job.fingerprint,
                statement=job.statement,
                kind="index",
                table=item.table,
                columns=item.columns,
                advice=item.advice,
                evidence=f"{item.evidence}, {runs}",
            )
            for item in found
        )

    def _failed(self, job: _Job, exc: Exception) -> None:
        """Count the error; let the fingerprint be queued again, up to three attempts."""
        with self._cond:
            self._errors += 1
            series = self._series.get(job.fingerprint)
            if series is not None:
                series.attempts += 1
                if series.attempts < _MAX_ATTEMPTS and not isinstance(exc, _Unexplainable):
                    series.restart()
                else:
                    series.state = _DONE
        self._failure(f"{job.fingerprint}: {type(exc).__name__}: {exc}".strip())

    def _settle(self, fingerprint: str, found: tuple[Recommendation, ...] | None) -> None:
        """Mark a fingerprint done and keep its advice (bounded); the caller holds the lock."""
        series = self._series.get(fingerprint)
        if series is not None:
            series.state = _DONE
        if found:
            self._make_room(self._advice, fingerprint)
            self._advice[fingerprint] = found

    def _make_room(self, kept: OrderedDict[str, Any], fingerprint: str) -> None:
        """Evict the oldest entry, and count it, if ``fingerprint`` is new and ``kept`` full."""
        if fingerprint not in kept and len(kept) >= self._max_fingerprints:
            kept.popitem(last=False)
            self._evicted += 1


def _batch_recommendation(fingerprint: str, batch: _Batch) -> Recommendation:
    tokens = tokenize(batch.statement)
    tables = list(dict.fromkeys(table_names(tokens).values()))
    clauses = list(where_clauses(tokens))
    chosen = [c for c in comparisons(clauses[0]) if c.equality] if clauses else []
    columns = tuple(dict.fromkeys(c.column for c in chosen))
    shown = batch.statement
    if len(shown) > _ADVICE_STATEMENT_CHARS:
        shown = shown[:_ADVICE_STATEMENT_CHARS] + "..."
    batched = f"`{columns[0]} IN (...)`" if columns else "`IN (...)`"
    return Recommendation(
        fingerprint=fingerprint,
        statement=batch.statement,
        kind="batch",
        table=quote(tables[0]) if tables else None,
        columns=columns,
        advice=f"run one query with {batched} / a join instead of N queries like: {shown}",
        evidence=(
            f"one request ran it {batch.largest} times; "
            f"reported in {batch.reports} request{'s' if batch.reports != 1 else ''}"
        ),
    )


def _close_quietly(connection: Any) -> None:
    if connection is None:
        return
    with contextlib.suppress(Exception):  # closing a broken connection may fail; no matter
        connection.close()
