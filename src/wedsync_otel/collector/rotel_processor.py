"""A rotel trace processor: drop health checks, scrub every field with the shared `Scrubber`.

`rotel <https://pypi.org/project/rotel/>`_ (a Rust OTLP collector) runs this file
in its embedded Python when started with ``--otlp-with-trace-processor PATH``
(``ROTEL_OTLP_WITH_TRACE_PROCESSOR``), calling `process_spans` once per
``ResourceSpans`` it receives, before batching and export. The embedded
interpreter is the system's ``libpython3.11`` with the standard library only,
not the application's virtualenv, and it loads this file by its path, so
``wedsync_otel`` (whose ``__init__`` imports OpenTelemetry) cannot be imported.
The privacy package is standard library only and imports its siblings
relatively, so it is loaded by path instead, as ``_wedsync_privacy``, from
``../privacy`` beside this file: the SDK side and the collector run the same
`Scrubber` and cannot drift. `processor_path` gives the path to pass to rotel.

It is defence in depth behind the SDK side:

- **Every field is scrubbed**: the span name (`Scrubber.span_name`), attribute
  keys and values of the span, of its events (exception events included) and
  of its links (`Scrubber.attributes`; a key that is itself personal data is
  removed), event names (`Scrubber.text`) and the status message
  (`Scrubber.message`). Arrays are scrubbed element by element; key-value lists
  are flattened to dotted keys (``app.user.email``), scrubbed as attributes and
  rebuilt, so the key rules apply inside them too. Only changed attributes are
  written back.
- **Health checks are dropped by route only**: a span whose ``http.route`` (else
  ``url.path``, else ``http.target``; query string and trailing slash ignored)
  is one of the configured routes (`HEALTH_CHECK_ROUTES_ENV`, default
  `HEALTH_CHECK_PATHS`), with every span of its trace in the same batch. Never
  by user agent (any client could send ``kube-probe/1.30`` and make its own
  trace vanish), and never a trace in which a span failed (`is_failure`):
  status ``ERROR``, an HTTP status of 500 or more, ``error.type`` set, or
  ``wedding.threshold.breached`` true. Children of a health check exported in
  an earlier batch are not caught.
- **Fail closed**: a span that cannot be read or scrubbed is dropped and the
  first failure of each kind is reported on stderr. An attribute rotel cannot
  read is removed: rotel 0.0.1-alpha10 panics on reading a ``KeyValue`` that
  has no value (``PanicException``, a ``BaseException``) and poisons a lock
  that makes the whole agent exit if the attribute is then forwarded.

Redactions are counted by reason (`redaction_counts`). rotel offers processors
no metrics API, so a one-line summary of the counts goes to stderr (rotel's
log) at most once a minute, and only when they changed.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import sys
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Final, NamedTuple, Protocol, TextIO, cast

__all__ = [
    "HEALTH_CHECK_PATHS",
    "HEALTH_CHECK_ROUTES_ENV",
    "STATUS_CODE_ERROR",
    "SUMMARY_INTERVAL_S",
    "RedactionSummary",
    "RotelProcessor",
    "health_check_routes",
    "is_failure",
    "is_health_check",
    "process_spans",
    "processor_path",
    "redaction_counts",
]

_PRIVACY_PACKAGE: Final = "_wedsync_privacy"


def _load_privacy_scrubber() -> ModuleType:
    """``privacy/scrubber.py`` beside this package, loaded by path as ``_wedsync_privacy``."""
    loaded = sys.modules.get(f"{_PRIVACY_PACKAGE}.scrubber")
    if loaded is not None:
        return loaded
    directory = Path(__file__).resolve().parent.parent / "privacy"
    spec = importlib.util.spec_from_file_location(
        _PRIVACY_PACKAGE, directory / "__init__.py", submodule_search_locations=[str(directory)]
    )
    if spec is None or spec.loader is None:
        raise ImportError(f"wedsync rotel processor: no privacy package in {directory}")
    package = importlib.util.module_from_spec(spec)
    sys.modules[_PRIVACY_PACKAGE] = package  # before exec: its relative imports look it up
    try:
        spec.loader.exec_module(package)
        return importlib.import_module(f"{_PRIVACY_PACKAGE}.scrubber")
    except BaseException:
        sys.modules.pop(_PRIVACY_PACKAGE, None)
        raise


if TYPE_CHECKING or __package__:
    from wedsync_otel.privacy.scrubber import DROP, Scrubber
else:  # run by path (rotel): no wedsync_otel package to import from
    _scrubber_module = _load_privacy_scrubber()
    DROP = _scrubber_module.DROP
    Scrubber = _scrubber_module.Scrubber

HEALTH_CHECK_PATHS: Final = frozenset(
    {"/health", "/healthz", "/health/live", "/health/ready", "/livez", "/readyz", "/ping"}
)
"""The default health-check routes, without query string or trailing slash."""

HEALTH_CHECK_ROUTES_ENV: Final = "WEDSYNC_OTEL_HEALTH_CHECK_ROUTES"
"""Comma-separated routes that replace `HEALTH_CHECK_PATHS`; set and empty turns dropping off."""

SUMMARY_INTERVAL_S: Final = 60.0
"""The shortest time between two redaction summaries on stderr."""

STATUS_CODE_ERROR: Final = 2
"""OTLP ``STATUS_CODE_ERROR``."""

_ROUTE_ATTRIBUTES: Final = ("http.route", "url.path", "http.target")
_HTTP_STATUS_ATTRIBUTES: Final = ("http.response.status_code", "http.status_code")
_ERROR_TYPE: Final = "error.type"
_THRESHOLD_BREACHED: Final = "wedding.threshold.breached"  # attributes.WEDDING_THRESHOLD_BREACHED
_ROTEL_COMMON: Final = "rotel_sdk.open_telemetry.common.v1"
_MAX_DEPTH: Final = 8  # arrays and key-value lists nested deeper are not read: removed


# --- rotel's objects, as this module uses them ---------------------------------------------


class _AnyValue(Protocol):
    value: object


class _KeyValue(Protocol):
    key: str
    value: _AnyValue


class _AttributeList(Protocol):
    """rotel's ``AttributesList``: events and links take no plain list, so it is edited in place."""

    def __iter__(self) -> Iterator[_KeyValue]: ...
    def __len__(self) -> int: ...
    def __setitem__(self, index: int, value: _KeyValue) -> None: ...
    def __delitem__(self, index: int) -> None: ...


class _Event(Protocol):
    name: str
    attributes: _AttributeList


class _Link(Protocol):
    attributes: _AttributeList


class _Status(Protocol):
    code: int
    message: str


class _Span(Protocol):
    trace_id: bytes
    name: str
    attributes: _AttributeList
    events: Iterable[_Event]
    links: Iterable[_Link]
    status: _Status | None


class _ScopeSpans(Protocol):
    spans: Iterable[_Span]


class _ResourceSpans(Protocol):
    scope_spans: Iterable[_ScopeSpans]


def processor_path() -> str:
    """The absolute path of this file, for ``ROTEL_OTLP_WITH_TRACE_PROCESSOR``."""
    return __file__


# --- pure rules over plain values ----------------------------------------------------------


def _route(path: str) -> str:
    path = path.partition("?")[0].partition("#")[0]
    return path.rstrip("/") or "/"


def health_check_routes(environ: Mapping[str, str] = os.environ) -> frozenset[str]:
    """The routes whose traces are dropped: `HEALTH_CHECK_ROUTES_ENV`, else the default.

    Raises `ValueError` naming the variable for an entry that is not a route, so
    rotel refuses to start rather than drop the wrong traces.
    """
    raw = environ.get(HEALTH_CHECK_ROUTES_ENV)
    if raw is None:
        return HEALTH_CHECK_PATHS
    routes: set[str] = set()
    for entry in raw.split(","):
        route = entry.strip()
        if not route:
            continue
        if not route.startswith("/") or "?" in route:
            raise ValueError(f"{HEALTH_CHECK_ROUTES_ENV}: {route!r} is not a route (like /healthz)")
        routes.add(_route(route))
    return frozenset(routes)


def is_health_check(
    attributes: Mapping[str, object], routes: frozenset[str] = HEALTH_CHECK_PATHS
) -> bool:
    """Whether the span serves a health-check route: ``http.route``, else its path.

    The user agent plays no part: a client must not be able to hide its own trace.
    """
    for key in _ROUTE_ATTRIBUTES:
        path = attributes.get(key)
        if isinstance(path, str):
            return _route(path) in routes
    return False


def is_failure(attributes: Mapping[str, object], *, status_code: int = 0) -> bool:
    """Whether the span failed or breached its threshold: its trace is kept, health check or not."""
    if status_code == STATUS_CODE_ERROR:
        return True
    for key in _HTTP_STATUS_ATTRIBUTES:
        status = attributes.get(key)
        if isinstance(status, str) and status.strip().isdigit():
            status = int(status)
        if isinstance(status, int) and not isinstance(status, bool) and status >= 500:
            return True
    error_type = attributes.get(_ERROR_TYPE)
    if error_type is not None and error_type != "":
        return True
    return attributes.get(_THRESHOLD_BREACHED) is True


# --- rotel values <-> plain values ---------------------------------------------------------


class _Unreadable(Exception):
    """An attribute value this module cannot read: nested too deep, of an unknown type."""


_UNREADABLE: Final = object()


def _plain(value: object, depth: int = 0) -> object:
    """The plain Python value of what rotel's ``AnyValue.value`` returned.

    Arrays become tuples, key-value lists dicts; rotel returns bytes as a list of ints.
    """
    if value is None or isinstance(value, str | bool | int | float | bytes):
        return value
    if isinstance(value, list):
        return bytes(value)
    if depth >= _MAX_DEPTH:
        raise _Unreadable(f"nested deeper than {_MAX_DEPTH}")
    kind = type(value).__name__
    if kind == "ArrayValue":
        elements = cast("Iterable[_AnyValue]", value)
        return tuple(_plain(element.value, depth + 1) for element in elements)
    if kind == "KeyValueList":
        items = list(cast("Iterable[_KeyValue]", value))
        pairs = {item.key: _plain(item.value.value, depth + 1) for item in items}
        if len(pairs) != len(items):
            raise _Unreadable("a key-value list that repeats a key")
        return pairs
    raise _Unreadable(f"a value of type {kind}")


def _read_attributes(attributes: _AttributeList) -> list[tuple[str, object]]:
    """``(key, plain value)`` of every attribute in order; `_UNREADABLE` for what cannot be read."""
    entries: list[tuple[str, object]] = []
    for attribute in attributes:
        key = attribute.key
        if not isinstance(key, str):
            raise TypeError(f"an attribute key of type {type(key).__name__}")
        try:
            value = _plain(attribute.value.value)
        except (KeyboardInterrupt, SystemExit):
            raise
        except BaseException:  # noqa: BLE001 - rotel panics (PanicException) on an empty value
            value = _UNREADABLE
        entries.append((key, value))
    return entries


class _RotelValues:
    """Builds rotel ``AnyValue`` and ``KeyValue`` objects from plain values."""

    def __init__(self, common: ModuleType) -> None:
        self._any = common.AnyValue
        self._key_value = common.KeyValue
        self._array = common.ArrayValue
        self._kvlist = common.KeyValueList

    def key_value(self, key: str, value: object) -> _KeyValue:
        key_value: _KeyValue = self._key_value(key, self.any_value(value))
        return key_value

    def any_value(self, value: object) -> _AnyValue:
        if isinstance(value, tuple | list):
            array = self._array()
            for item in value:
                array.append(self.any_value(item))
            value = array
        elif isinstance(value, dict):
            kvlist = self._kvlist()
            for key, item in value.items():
                kvlist.append(self.key_value(key, item))
            value = kvlist
        elif isinstance(value, bytearray):
            value = bytes(value)
        any_value: _AnyValue = self._any(value)
        return any_value


# --- nested values: flattened to dotted keys, scrubbed, rebuilt ----------------------------


def _is_flat(value: object) -> bool:
    """A scalar, bytes, or an array of those: what `Scrubber.attributes` takes as it is."""
    if isinstance(value, tuple):
        return all(not isinstance(item, tuple | dict) for item in value)
    return not isinstance(value, dict)


def _children(value: object) -> list[tuple[str, object]]:
    """``(name, child)`` of a key-value list (its keys) or an array (its indexes)."""
    if isinstance(value, dict):
        return [(str(name), child) for name, child in value.items()]
    if isinstance(value, tuple):
        return [(str(index), child) for index, child in enumerate(value)]
    return []


def _flatten(path: str, value: object, leaves: dict[str, object]) -> None:
    """Every leaf under ``path``; an empty container is a leaf ``""`` so its key is judged too."""
    children = [] if _is_flat(value) else _children(value)
    if children:
        for name, child in children:
            _flatten(f"{path}.{name}", child, leaves)
        return
    if path in leaves:
        raise _Unreadable("two nested keys flatten to the same name")
    leaves[path] = value if _is_flat(value) else ""


def _rebuild(path: str, value: object, scrubbed: Mapping[str, object]) -> object:
    """``value`` with each leaf as scrubbed; `DROP` when nothing of it may stay."""
    if _is_flat(value):
        return scrubbed.get(path, DROP)
    children = _children(value)
    if not children:
        return value if scrubbed.get(path, DROP) == "" else DROP
    rebuilt = [(name, _rebuild(f"{path}.{name}", child, scrubbed)) for name, child in children]
    kept = [(name, child) for name, child in rebuilt if child is not DROP]
    if not kept:
        return DROP
    if isinstance(value, dict):
        return dict(kept)
    return tuple(child for _, child in kept)


# --- the processor ---------------------------------------------------------------------------


class RedactionSummary:
    """Writes the redaction counts as one line, at most once per interval and only when changed."""

    def __init__(
        self,
        *,
        interval_s: float = SUMMARY_INTERVAL_S,
        monotonic: Callable[[], float] = time.monotonic,
        stream: TextIO | None = None,
    ) -> None:
        self._interval_s = interval_s
        self._monotonic = monotonic
        self._stream = stream
        self._last_at: float | None = None
        self._last: dict[str, int] = {}

    def maybe_report(self, counts: Mapping[str, int]) -> bool:
        """Report ``counts`` if they changed and the interval has passed; whether it did."""
        if dict(counts) == self._last:
            return False
        now = self._monotonic()
        if self._last_at is not None and now - self._last_at < self._interval_s:
            return False
        self._last_at = now
        self._last = dict(counts)
        summary = " ".join(f"{reason}={count}" for reason, count in sorted(counts.items()))
        print(
            f"wedsync rotel processor: redactions so far: {summary}",
            file=self._stream if self._stream is not None else sys.stderr,
        )
        return True


class _Reading(NamedTuple):
    """One span as read in the first pass: plain values, and the rotel objects to write to."""

    span: _Span
    trace_id: bytes
    name: str
    attributes: list[tuple[str, object]]
    events: list[tuple[_Event, str, list[tuple[str, object]]]]
    links: list[tuple[_Link, list[tuple[str, object]]]]
    status: _Status | None
    status_code: int
    status_message: str

    def plain_attributes(self) -> dict[str, object]:
        return _last_readable(self.attributes)


def _last_readable(entries: list[tuple[str, object]]) -> dict[str, object]:
    return {key: value for key, value in entries if value is not _UNREADABLE}


class RotelProcessor:
    """Drops health-check traces and scrubs every field of every span, in place."""

    def __init__(
        self,
        *,
        routes: frozenset[str] = HEALTH_CHECK_PATHS,
        scrubber: Scrubber | None = None,
        summary: RedactionSummary | None = None,
        stream: TextIO | None = None,
    ) -> None:
        self.routes = routes
        self.scrubber = scrubber if scrubber is not None else Scrubber()
        self._summary = summary if summary is not None else RedactionSummary(stream=stream)
        self._stream = stream
        self._values: _RotelValues | None = None
        self._lock = threading.Lock()
        self._counts: dict[str, int] = {}
        self._reported: set[str] = set()

    # --- counting and reporting -------------------------------------------------------------

    def counts(self) -> dict[str, int]:
        """The scrubber's redactions by reason, with this processor's own removals and drops."""
        counts = self.scrubber.counts()
        with self._lock:
            for reason, count in self._counts.items():
                counts[reason] = counts.get(reason, 0) + count
        return counts

    def _count(self, reason: str, times: int = 1) -> None:
        with self._lock:
            self._counts[reason] = self._counts.get(reason, 0) + times

    def _report_once(self, where: str, exc: BaseException, *, dropped: str = "span") -> None:
        if where not in self._reported:
            self._reported.add(where)
            print(
                f"wedsync rotel processor: {where}: {exc!r}; {dropped} dropped",
                file=self._stream if self._stream is not None else sys.stderr,
            )

    # --- the hook ---------------------------------------------------------------------------

    def process_spans(self, resource_spans: _ResourceSpans) -> None:
        """Rotel's hook: drop health-check traces and scrub what is left, in place."""
        try:
            self._process(resource_spans)
        except (KeyboardInterrupt, SystemExit):
            raise
        except BaseException as exc:  # noqa: BLE001 - fail closed: nothing unscrubbed goes on
            self._report_once("processing a batch", exc, dropped="batch")
            self._count("unreadable_batch")
            resource_spans.scope_spans = []
        self._summary.maybe_report(self.counts())

    def _process(self, resource_spans: _ResourceSpans) -> None:
        # Rotel hands out new wrapper objects on every access, so each scope's spans are
        # read once and judged by position.
        scopes = [(scope, list(scope.spans)) for scope in resource_spans.scope_spans]
        readings = [[self._read(span) for span in spans] for _, spans in scopes]
        health: set[bytes] = set()
        failed: set[bytes] = set()
        for reading in (reading for row in readings for reading in row):
            if reading is None:
                continue
            attributes = reading.plain_attributes()
            if is_health_check(attributes, self.routes):
                health.add(reading.trace_id)
            if is_failure(attributes, status_code=reading.status_code):
                failed.add(reading.trace_id)
        dropped_traces = health - failed
        for (scope, spans), row in zip(scopes, readings, strict=True):
            kept: list[_Span] = []
            for span, reading in zip(spans, row, strict=True):
                if reading is None:
                    continue
                if reading.trace_id in dropped_traces:
                    self._count("health_check_span")
                    continue
                if self._scrub(reading):
                    kept.append(span)
            if len(kept) != len(spans):
                scope.spans = kept

    def _read(self, span: _Span) -> _Reading | None:
        try:
            return _read(span)
        except (KeyboardInterrupt, SystemExit):
            raise
        except BaseException as exc:  # noqa: BLE001 - fail closed: an unreadable span is dropped
            self._report_once("reading a span", exc)
            self._count("unreadable_span")
            return None

    def _scrub(self, reading: _Reading) -> bool:
        """Scrub one span in place; False (the span must go) if that failed."""
        try:
            self._scrub_span(reading)
        except (KeyboardInterrupt, SystemExit):
            raise
        except BaseException as exc:  # noqa: BLE001 - fail closed, as above
            self._report_once("scrubbing a span", exc)
            self._count("unreadable_span")
            return False
        return True

    def _scrub_span(self, reading: _Reading) -> None:
        scrubber = self.scrubber
        span = reading.span
        name = scrubber.span_name(reading.name, reading.plain_attributes())
        if name != reading.name:
            span.name = name
        self._scrub_attributes(span.attributes, reading.attributes)
        for event, event_name, attributes in reading.events:
            cleaned = scrubber.text(event_name)
            if cleaned != event_name:
                event.name = cleaned
            self._scrub_attributes(event.attributes, attributes)
        for link, attributes in reading.links:
            self._scrub_attributes(link.attributes, attributes)
        if reading.status is not None and reading.status_message:
            message = scrubber.message(reading.status_message)
            if message != reading.status_message:
                reading.status.message = message

    # --- attributes -------------------------------------------------------------------------

    def _scrub_attributes(self, target: _AttributeList, entries: list[tuple[str, object]]) -> None:
        """Write back, in place and by position, only the attributes the scrubber changed.

        Unreadable attributes and all but the last of a repeated key are removed.
        """
        plain = _last_readable(entries)
        last = {
            key: index for index, (key, value) in enumerate(entries) if value is not _UNREADABLE
        }
        scrubbed = self._scrub_mapping(plain)
        for index in reversed(range(len(entries))):
            key, value = entries[index]
            if value is _UNREADABLE:
                self._count("unreadable_attribute")
                del target[index]
            elif last[key] != index:
                self._count("duplicate_attribute")
                del target[index]
            elif key not in scrubbed:
                del target[index]
            elif scrubbed[key] is not value:
                target[index] = self._rotel_values().key_value(key, scrubbed[key])

    def _scrub_mapping(self, plain: Mapping[str, object]) -> dict[str, object]:
        """The attributes as they may be exported: a removed key is absent."""
        flat = {key: value for key, value in plain.items() if _is_flat(value)}
        scrubbed = self.scrubber.attributes(flat)
        result = dict(flat) if scrubbed is None else scrubbed
        for key, value in plain.items():
            if key in flat:
                continue
            cleaned = self._scrub_nested(key, value)
            if cleaned is not DROP:
                result[key] = value if cleaned == value else cleaned
        return result

    def _scrub_nested(self, key: str, value: object) -> object:
        """A key-value list, or an array holding them: its leaves scrubbed under dotted keys."""
        leaves: dict[str, object] = {}
        try:
            _flatten(key, value, leaves)
        except _Unreadable:
            self._count("unreadable_attribute")
            return DROP
        scrubbed = self.scrubber.attributes(leaves)
        return _rebuild(key, value, leaves if scrubbed is None else scrubbed)

    def _rotel_values(self) -> _RotelValues:
        if self._values is None:
            self._values = _RotelValues(importlib.import_module(_ROTEL_COMMON))
        return self._values


def _read(span: _Span) -> _Reading:
    """Everything the processor judges and scrubs, read from rotel once."""
    status = span.status
    return _Reading(
        span=span,
        trace_id=bytes(span.trace_id),
        name=span.name,
        attributes=_read_attributes(span.attributes),
        events=[(event, event.name, _read_attributes(event.attributes)) for event in span.events],
        links=[(link, _read_attributes(link.attributes)) for link in span.links],
        status=status,
        status_code=int(status.code) if status is not None else 0,
        status_message=status.message if status is not None else "",
    )


def _fresh_processor() -> RotelProcessor:
    return RotelProcessor(routes=health_check_routes())


_PROCESSOR = _fresh_processor()


def process_spans(resource_spans: _ResourceSpans) -> None:
    """Rotel's hook: drop health-check traces and scrub every span, in place."""
    _PROCESSOR.process_spans(resource_spans)


def redaction_counts() -> dict[str, int]:
    """What this module's processor has redacted or dropped so far, by reason."""
    return _PROCESSOR.counts()
