"""ASGI integration: find each request's wedding and set the wedding context.

`WeddingMiddleware` works beside `opentelemetry-instrumentation-asgi` (and
its FastAPI and Starlette instrumentations, which set ``http.route`` to the
template), never instead of it. It must sit INSIDE the contrib middleware:
that one attaches the context it extracts from the request headers, which
replaces whatever an outer middleware set. `add_wedding_middleware` puts it
there whatever the order of calls.

Trust: client-sent W3C baggage is read only for callers the configuration
trusts, by network (``trusted_networks``) or by a shared secret in a header
(``trust_header``/``trust_secret``, compared in constant time). The network
is that of ``scope["client"]``, which servers such as uvicorn (proxy headers
on by default, for connections from 127.0.0.1) take from ``X-Forwarded-For``:
a request carrying any forwarding header therefore gets no network trust
unless ``trust_forwarded_client`` says the address is set by the user's own
proxy.

Wedding ids: from the path (the catalogue's ``{wedding_id}``-like
parameters), or from the query string only for endpoints that declare
``wedding_id_from_query``: a query id is chosen by the client on any URL.
"""

from __future__ import annotations

import hmac
import ipaddress
import re
import threading
from collections.abc import Awaitable, Callable, Iterable, MutableMapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final
from urllib.parse import unquote_plus

from opentelemetry import baggage
from opentelemetry.baggage.propagation import W3CBaggagePropagator

from wedsync_otel import attributes as attr
from wedsync_otel._safety import log_internal_error
from wedsync_otel.calendar import parse_wedding_date
from wedsync_otel.catalogue import Catalogue, pattern_problem
from wedsync_otel.config import WeddingConfig, load_config
from wedsync_otel.context import resolve_wedding_date_async, wedding_context, wedding_id_text

if TYPE_CHECKING:
    from starlette.applications import Starlette

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

MAX_QUERY_BYTES = 8192
"""Only the start of a query string is searched for a wedding id.

8 KB is the request line nginx accepts by default (``large_client_header_buffers``),
so a real query string is read whole.
"""

FORWARDING_HEADERS: Final = frozenset(
    {
        b"forwarded",
        b"forwarded-for",
        b"x-forwarded",
        b"x-forwarded-for",
        b"x-original-forwarded-for",
        b"x-real-ip",
        b"x-client-ip",
        b"x-cluster-client-ip",
        b"true-client-ip",
        b"cf-connecting-ip",
        b"fastly-client-ip",
    }
)
"""Headers a proxy (or a client posing as one) uses to name the original client."""

_propagator = W3CBaggagePropagator()


@dataclass(frozen=True, kw_only=True, slots=True)
class MiddlewareStats:
    """What every `WeddingMiddleware` of the process ignored, by reason."""

    forwarded_refusals: int = 0
    """Callers from a trusted network refused trust: the request carried forwarding headers."""
    query_ids_ignored: int = 0
    """Query-string wedding ids ignored: the endpoint takes its wedding id from the path only."""
    truncated_queries: int = 0
    """Query strings longer than `MAX_QUERY_BYTES`, of which only the start was searched."""


class _Counts:
    """The process-wide counts behind `middleware_stats` (middleware are built by the app)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.forwarded_refusals = 0
        self.query_ids_ignored = 0
        self.truncated_queries = 0

    def add(self, reason: str) -> None:
        with self.lock:
            setattr(self, reason, getattr(self, reason) + 1)


_counts = _Counts()


def middleware_stats() -> MiddlewareStats:
    """The counts of what the ASGI middleware ignored, over every instance of the process."""
    with _counts.lock:
        values = (_counts.forwarded_refusals, _counts.query_ids_ignored, _counts.truncated_queries)
    forwarded, ignored, truncated = values
    return MiddlewareStats(
        forwarded_refusals=forwarded, query_ids_ignored=ignored, truncated_queries=truncated
    )


class QueryWeddingId:
    """Reads the wedding id a raw query string names, as the application reads it; never raises.

    As Starlette's ``request.query_params`` reads it (``parse_qsl`` on the
    latin-1 text, blank values kept): fields split on ``&`` only, as
    ``urllib`` does since Python 3.10; names and values percent- and
    plus-decoded as UTF-8; the last value of a repeated name wins. Among the
    configured ``names`` the first present wins. Bounded: only the first
    `MAX_QUERY_BYTES` are read, in one pass and with no limit on the number of
    fields in them (``parse_qsl``'s ``max_num_fields`` raises instead); a field
    cut by that bound is dropped, since a cut id would be another id.
    """

    def __init__(self, names: Sequence[str]) -> None:
        self.names = tuple(names)
        self._wanted = frozenset(self.names)
        alternatives = "|".join(re.escape(name) for name in self.names)
        # With no '%' in the text no name needs decoding: one C-speed scan finds every field.
        self._fields = re.compile(rf"(?:^|&)({alternatives})(?:=([^&]*))?(?=&|\Z)")

    def __call__(self, query: bytes | bytearray) -> str | None:
        """The wedding id ``query`` (the ASGI ``query_string``) names, or ``None``."""
        if not self.names:
            return None
        text = bytes(query[:MAX_QUERY_BYTES]).decode("latin-1")
        if len(query) > MAX_QUERY_BYTES and query[MAX_QUERY_BYTES : MAX_QUERY_BYTES + 1] != b"&":
            text = text.rpartition("&")[0]
        if "%" in text:
            values = self._decoded_fields(text)
        elif any(name in text for name in self.names):
            values = dict(self._fields.findall(text))
        else:
            return None  # the usual request: no id named
        for name in self.names:
            raw = values.get(name)
            if raw is not None:
                return wedding_id_text(unquote_plus(raw, errors="replace") if raw else None)
        return None

    def _decoded_fields(self, text: str) -> dict[str, str]:
        """Each wanted name's last raw value, names decoded as ``parse_qsl`` decodes them."""
        values: dict[str, str] = {}
        for field in text.split("&"):
            name, _, value = field.partition("=")
            if "%" in name or "+" in name:
                name = unquote_plus(name, errors="replace")
            if name in self._wanted:
                values[name] = value
        return values


def _id_patterns(config: WeddingConfig) -> tuple[re.Pattern[str], ...]:
    """Regexes capturing a wedding-id parameter from the catalogue's path templates."""
    params = set(config.wedding_id_params)
    found: list[re.Pattern[str]] = []
    for spec in config.endpoints:
        for pattern in spec.patterns:
            if pattern_problem(pattern) is not None:
                continue
            names = re.findall(r"\{([A-Za-z_][A-Za-z0-9_]*)\}", pattern)
            wanted = [name for name in names if name in params]
            if not wanted:
                continue
            body = pattern.removesuffix("/**")
            regex = re.escape(body)
            for name in names:
                group = f"(?P<{name}>[^/]+)" if name == wanted[0] else "[^/]+"
                regex = regex.replace(re.escape("{" + name + "}"), group)
            tail = "(?:/.*)?" if pattern.endswith("/**") else "/?"
            found.append(re.compile(regex + tail))
    return tuple(found)


class WeddingMiddleware:
    """Per request: wedding id from the path or query, its date, and the wedding context."""

    def __init__(self, app: ASGIApp, *, config: WeddingConfig | None = None) -> None:
        self.app = app
        self.config = config if config is not None else load_config()
        self._id_patterns = _id_patterns(self.config)
        self._query_id = QueryWeddingId(self.config.wedding_id_params)
        query_endpoints = [spec for spec in self.config.endpoints if spec.wedding_id_from_query]
        self._query_catalogue = Catalogue(self.config.endpoints) if query_endpoints else None
        self._networks = tuple(
            ipaddress.ip_network(network, strict=False) for network in self.config.trusted_networks
        )
        self._trust_forwarded = self.config.trust_forwarded_client
        self._trust_header = self.config.trust_header.lower().encode("latin-1")
        secret = self.config.trust_secret
        self._secret = None if secret is None else secret.encode()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Run the app inside the request's wedding context (if it has a wedding)."""
        if scope.get("type") != "http":
            await self.app(scope, receive, send)
            return
        wedding_id: str | None = None
        wedding_date = None
        try:
            wedding_id, raw_date = self._find(scope)
            wedding_date = parse_wedding_date(raw_date) if raw_date is not None else None
            if wedding_date is None and wedding_id is not None:
                wedding_date = await resolve_wedding_date_async(wedding_id)
        except Exception as exc:  # noqa: BLE001 - telemetry never fails a request
            log_internal_error("WeddingMiddleware", exc)
        if wedding_id is None and wedding_date is None:
            await self.app(scope, receive, send)
            return
        with wedding_context(wedding_id=wedding_id, wedding_date=wedding_date, resolve=False):
            await self.app(scope, receive, send)

    def _find(self, scope: Scope) -> tuple[str | None, str | None]:
        """Wedding id (path, then query) and, from trusted callers only, baggage."""
        path = scope.get("path")
        path = path if isinstance(path, str) else ""
        wedding_id = self._id_from_path(path) or self._id_from_query(
            path, scope.get("query_string")
        )
        raw_date: str | None = None
        if self.trusted(scope):
            entries = _baggage_entries(scope.get("headers") or ())
            raw_date = entries.get(attr.BAGGAGE_WEDDING_DATE)
            wedding_id = wedding_id or wedding_id_text(entries.get(attr.BAGGAGE_WEDDING_ID))
        return wedding_id, raw_date

    def _id_from_path(self, path: str) -> str | None:
        for pattern in self._id_patterns:
            found = pattern.fullmatch(path)
            if found:
                return wedding_id_text(next(v for v in found.groupdict().values() if v))
        return None

    def _id_from_query(self, path: str, query: object) -> str | None:
        """The query string's wedding id, only for an endpoint that takes one from there."""
        if not isinstance(query, bytes | bytearray) or not query:
            return None
        if len(query) > MAX_QUERY_BYTES:
            _counts.add("truncated_queries")
        wedding_id = self._query_id(query)
        if wedding_id is None:
            return None
        spec = None if self._query_catalogue is None else self._query_catalogue.match(path)
        if spec is None or not spec.wedding_id_from_query:
            _counts.add("query_ids_ignored")
            return None
        return wedding_id

    def trusted(self, scope: Scope) -> bool:
        """Whether this caller's baggage may be believed: trusted network or shared secret.

        A trusted network counts only when the client address is the peer's
        own (no forwarding header) or ``trust_forwarded_client`` is set.
        """
        headers = scope.get("headers") or ()
        refused = False
        if self._networks and self._from_trusted_network(scope.get("client")):
            if self._trust_forwarded or not _forwarded(headers):
                return True
            refused = True
        if self._secret is not None:
            for name, value in headers:
                if bytes(name).lower() == self._trust_header:
                    if hmac.compare_digest(bytes(value), self._secret):
                        return True
                    break
        if refused:
            _counts.add("forwarded_refusals")
        return False

    def _from_trusted_network(self, client: object) -> bool:
        host = client[0] if isinstance(client, list | tuple) and client else None
        if not isinstance(host, str):
            return False
        try:
            address = ipaddress.ip_address(host)
        except ValueError:
            return False
        if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
            address = address.ipv4_mapped  # ::ffff:10.1.2.3 is 10.1.2.3
        return any(address in network for network in self._networks)


def _forwarded(headers: Iterable[tuple[bytes, bytes]]) -> bool:
    """Whether any header names an original client (``X-Forwarded-For``, ``Forwarded``...)."""
    return any(bytes(name).lower() in FORWARDING_HEADERS for name, _ in headers)


def _baggage_entries(headers: Iterable[tuple[bytes, bytes]]) -> dict[str, str]:
    carrier = {
        "baggage": ",".join(
            bytes(value).decode("latin-1")
            for name, value in headers
            if bytes(name).lower() == b"baggage"
        )
    }
    entries = baggage.get_all(_propagator.extract(carrier))
    return {key: value for key, value in entries.items() if isinstance(value, str)}


def add_wedding_middleware(app: Starlette, *, config: WeddingConfig | None = None) -> None:
    """Add `WeddingMiddleware` to a Starlette or FastAPI app as the innermost middleware.

    ``app.add_middleware`` puts a middleware outermost, outside the contrib
    one when the app was instrumented first; appending to the public
    ``user_middleware`` list puts it inside, where the server span is current.
    """
    from starlette.middleware import Middleware  # noqa: PLC0415 - the asgi extra

    app.user_middleware.append(Middleware(WeddingMiddleware, config=config))
    app.middleware_stack = None  # rebuilt on the next request


def instrument_asgi_app(app: ASGIApp, *, config: WeddingConfig | None = None) -> ASGIApp:
    """``OpenTelemetryMiddleware(WeddingMiddleware(app))``: the contrib server spans, our context.

    For FastAPI or Starlette prefer their instrumentations, which also set
    ``http.route``: ``FastAPIInstrumentor.instrument_app(app)`` then
    `add_wedding_middleware` (not ``app.add_middleware``, which would put it
    outside the contrib middleware and lose the wedding).
    """
    from opentelemetry.instrumentation.asgi import (  # noqa: PLC0415 - the asgi extra
        OpenTelemetryMiddleware,
    )

    wrapped: ASGIApp = OpenTelemetryMiddleware(WeddingMiddleware(app, config=config))
    return wrapped
