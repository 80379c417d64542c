"""A rotel trace processor: drop health checks, remove attributes that look like secrets.

`rotel <https://pypi.org/project/rotel/>`_ (a Rust OTLP collector) runs this file
in its embedded Python when started with ``--otlp-with-trace-processor PATH``
(``ROTEL_OTLP_WITH_TRACE_PROCESSOR``), calling `process_spans` once per
``ResourceSpans`` it receives, before batching and export. The embedded
interpreter is the system's, not the application's virtualenv, so this module
imports only the standard library; `processor_path` gives the path to pass.

It is defence in depth behind the SDK side (the span processor already strips
SQL literals and never writes a full cache key), so it catches what an
instrumentation or a careless ``set_attribute`` lets through:

- **Health checks** are dropped: a span whose ``http.route``, ``url.path`` or
  ``http.target`` (query string and trailing slash ignored) is one of
  `HEALTH_CHECK_PATHS`, or whose user agent is a load balancer's or
  Kubernetes' probe, and every span of the same trace in the same batch.
  Children of a health check exported in an earlier batch are not caught.
- **Attributes** of spans and span events are removed whole when a value (or
  any element of an array or key-value list) contains an email address, a
  card number (13 to 19 digits, spaces or dashes allowed, starting 2-6, passing
  the Luhn check; also as an integer), or a full cache key: a word made of a
  namespace and at least one ``:segment``, such as ``supplier:42`` or
  ``venue:v-9:availability:2026-06-20`` (see `looks_like_cache_key`). Network
  attributes that hold ``host:port`` (`NETWORK_ATTRIBUTES`) are not read as
  cache keys.

A span that cannot be inspected is dropped rather than forwarded unchecked.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Iterable, Mapping, MutableSequence
from typing import Final, Protocol, cast

__all__ = [
    "HEALTH_CHECK_PATHS",
    "HEALTH_CHECK_USER_AGENTS",
    "NETWORK_ATTRIBUTES",
    "is_health_check",
    "looks_like_cache_key",
    "process_spans",
    "processor_path",
    "sensitive_kind",
]

HEALTH_CHECK_PATHS: Final = frozenset(
    {"/health", "/healthz", "/health/live", "/health/ready", "/livez", "/readyz", "/ping"}
)
"""Paths of liveness and readiness probes, without query string or trailing slash."""

HEALTH_CHECK_USER_AGENTS: Final = ("kube-probe/", "ELB-HealthChecker/", "GoogleHC/")
"""User-agent prefixes of Kubernetes, AWS ELB and Google Cloud load-balancer probes."""

NETWORK_ATTRIBUTES: Final = frozenset(
    {
        "client.address",
        "http.host",
        "net.host.name",
        "net.peer.name",
        "network.local.address",
        "network.peer.address",
        "server.address",
    }
)
"""Attributes whose ``host:port`` values are addresses, never cache keys."""

_PATH_ATTRIBUTES: Final = ("http.route", "url.path", "http.target")
_USER_AGENT_ATTRIBUTES: Final = ("user_agent.original", "http.user_agent")

_EMAIL = re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}")
_CARD_CANDIDATE = re.compile(r"(?<!\d)(?:\d[ -]?){12,18}\d(?!\d)")
# A namespace (a letter, then letters, digits, _ or -) and one or more :segments, as a
# whole word: not inside a path, a URL (https://), an IPv6 address (::) or a timestamp.
_CACHE_KEY = re.compile(
    r"(?<![\w.:/@-])[A-Za-z][A-Za-z0-9_-]{0,63}(?::(?!/)[^\s:'\"(){}\[\]<>,;]+)+(?![\w:/])"
)
_CARD_DIGITS: Final = range(13, 20)
_CARD_FIRST_DIGITS: Final = frozenset("23456")
_LOOPBACK_HOSTS: Final = frozenset({"localhost"})
_MAX_DEPTH: Final = 8  # nested arrays and key-value lists deeper than this are judged unsafe


class _AnyValue(Protocol):
    value: object


class _KeyValue(Protocol):
    key: str
    value: _AnyValue | None


class _Event(Protocol):
    attributes: MutableSequence[_KeyValue]


class _Span(Protocol):
    trace_id: bytes
    name: str
    attributes: MutableSequence[_KeyValue]
    events: MutableSequence[_Event]


class _ScopeSpans(Protocol):
    spans: MutableSequence[_Span]


class _ResourceSpans(Protocol):
    scope_spans: MutableSequence[_ScopeSpans]


def processor_path() -> str:
    """The absolute path of this file, for ``ROTEL_OTLP_WITH_TRACE_PROCESSOR``."""
    return __file__


# --- pure checks over plain values -------------------------------------------------------


def _luhn_valid(digits: str) -> bool:
    total = 0
    for position, char in enumerate(reversed(digits)):
        digit = int(char)
        if position % 2 == 1:
            digit = digit * 2 - 9 if digit > 4 else digit * 2
        total += digit
    return total % 10 == 0


def _is_card_number(digits: str) -> bool:
    return len(digits) in _CARD_DIGITS and digits[0] in _CARD_FIRST_DIGITS and _luhn_valid(digits)


def _has_card_number(text: str) -> bool:
    for match in _CARD_CANDIDATE.finditer(text):
        if _is_card_number(match.group(0).replace(" ", "").replace("-", "")):
            return True
    return False


def looks_like_cache_key(text: str) -> bool:
    """Whether ``text`` contains a word shaped like a full cache key (``namespace:part...``).

    ``localhost:<port>`` is an address, not a key.
    """
    for match in _CACHE_KEY.finditer(text):
        namespace, _, rest = match.group(0).partition(":")
        if namespace in _LOOPBACK_HOSTS and rest.isdigit():
            continue
        return True
    return False


def _text_kind(text: str, *, addresses: bool) -> str | None:
    if _EMAIL.search(text):
        return "email"
    if _has_card_number(text):
        return "card_number"
    if not addresses and looks_like_cache_key(text):
        return "cache_key"
    return None


def _unwrap(value: object) -> object:
    """The Python value inside a rotel ``AnyValue`` (or the value itself if it is plain)."""
    inner = getattr(value, "value", value)
    return value if inner is value else inner


def sensitive_kind(value: object, *, key: str = "", depth: int = 0) -> str | None:
    """``email``, ``card_number``, ``cache_key`` or ``nested``: why ``value`` must go; else None.

    ``value`` is a plain value (str, int, float, bool, bytes, list) or a rotel
    ``AnyValue``, ``ArrayValue`` or ``KeyValueList``; arrays and key-value lists are
    searched element by element. ``key`` names the attribute, so that addresses
    in `NETWORK_ATTRIBUTES` are not mistaken for cache keys.
    """
    if depth > _MAX_DEPTH:
        return "nested"
    value = _unwrap(value)
    if isinstance(value, str):
        return _text_kind(value, addresses=key in NETWORK_ATTRIBUTES)
    if isinstance(value, int) and not isinstance(value, bool):
        return "card_number" if _is_card_number(str(abs(value))) else None
    if value is None or isinstance(value, bool | float | bytes):
        return None
    return _sequence_kind(value, key=key, depth=depth)


def _sequence_kind(value: object, *, key: str, depth: int) -> str | None:
    """`sensitive_kind` of the first sensitive element of an array or key-value list."""
    try:
        items = iter(cast("Iterable[object]", value))
    except TypeError:
        return None
    for item in items:
        item_key = getattr(item, "key", None)
        inner = getattr(item, "value", item) if isinstance(item_key, str) else item
        kind = sensitive_kind(
            inner, key=item_key if isinstance(item_key, str) else key, depth=depth + 1
        )
        if kind is not None:
            return kind
    return None


def _route(path: str) -> str:
    path = path.partition("?")[0]
    return path.rstrip("/") or "/"


def is_health_check(attributes: Mapping[str, object]) -> bool:
    """Whether a span with these attributes serves (or is) a liveness or readiness probe."""
    for key in _PATH_ATTRIBUTES:
        path = attributes.get(key)
        if isinstance(path, str) and _route(path) in HEALTH_CHECK_PATHS:
            return True
    for key in _USER_AGENT_ATTRIBUTES:
        agent = attributes.get(key)
        if isinstance(agent, str) and agent.startswith(HEALTH_CHECK_USER_AGENTS):
            return True
    return False


def _strings(attributes: Iterable[_KeyValue]) -> dict[str, object]:
    """The string-valued attributes of a rotel span, as a plain mapping."""
    return {
        attribute.key: attribute.value.value
        for attribute in attributes
        if attribute.value is not None and isinstance(attribute.value.value, str)
    }


# --- the rotel entry point ---------------------------------------------------------------

_reported: set[str] = set()


def _report_once(where: str, exc: BaseException) -> None:
    if where not in _reported:
        _reported.add(where)
        print(f"wedsync rotel processor: {where}: {exc!r}; span dropped", file=sys.stderr)


def _remove_sensitive(attributes: MutableSequence[_KeyValue]) -> None:
    """Delete, in place, every attribute whose value looks sensitive.

    In place because rotel's ``Event.attributes`` accepts no plain list, and
    deleting by index works on spans and events alike.
    """
    for index in reversed(range(len(attributes))):
        attribute = attributes[index]
        if attribute.value is not None and sensitive_kind(attribute.value, key=attribute.key):
            del attributes[index]


def _clean(span: _Span) -> None:
    _remove_sensitive(span.attributes)
    for event in span.events:
        _remove_sensitive(event.attributes)


def process_spans(resource_spans: _ResourceSpans) -> None:
    """Rotel's hook: drop health-check traces and remove sensitive attributes, in place."""
    # Rotel hands out new wrapper objects on every attribute access, so each scope's
    # spans are read once and judged by position.
    scopes = [(scope, list(scope.spans)) for scope in resource_spans.scope_spans]
    health_traces: set[bytes] = set()
    unreadable: set[tuple[int, int]] = set()
    for scope_index, (_, spans) in enumerate(scopes):
        for span_index, span in enumerate(spans):
            try:
                if is_health_check(_strings(span.attributes)):
                    health_traces.add(bytes(span.trace_id))
            except Exception as exc:  # noqa: BLE001 - fail closed: an unreadable span is dropped
                _report_once("reading a span", exc)
                unreadable.add((scope_index, span_index))
    for scope_index, (scope, spans) in enumerate(scopes):
        kept: list[_Span] = []
        for span_index, span in enumerate(spans):
            if (scope_index, span_index) in unreadable:
                continue
            try:
                if bytes(span.trace_id) in health_traces:
                    continue
                _clean(span)
            except Exception as exc:  # noqa: BLE001 - fail closed, as above
                _report_once("cleaning a span", exc)
                continue
            kept.append(span)
        if len(kept) != len(spans):
            scope.spans = kept
