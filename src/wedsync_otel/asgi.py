"""ASGI integration: find each request's wedding and set the wedding context.

`WeddingMiddleware` works beside `opentelemetry-instrumentation-asgi` (and
its FastAPI and Starlette instrumentations, which set ``http.route`` to the
template), never instead of it. It must sit INSIDE the contrib middleware:
that one attaches the context it extracts from the request headers, which
replaces whatever an outer middleware set. `add_wedding_middleware` puts it
there whatever the order of calls.

Trust: client-sent W3C baggage is read only for callers the configuration
trusts, by network (``trusted_networks``) or by a shared secret in a header
(``trust_header``/``trust_secret``, compared in constant time).
"""

from __future__ import annotations

import hmac
import ipaddress
import re
from collections.abc import Awaitable, Callable, Iterable, MutableMapping
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl

from opentelemetry import baggage
from opentelemetry.baggage.propagation import W3CBaggagePropagator

from wedsync_otel import attributes as attr
from wedsync_otel._safety import log_internal_error
from wedsync_otel.calendar import parse_wedding_date
from wedsync_otel.catalogue import pattern_problem
from wedsync_otel.config import WeddingConfig, load_config
from wedsync_otel.context import resolve_wedding_date_async, wedding_context, wedding_id_text

if TYPE_CHECKING:
    from starlette.applications import Starlette

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

MAX_QUERY_BYTES = 4096
"""Only the start of a query string is searched for a wedding id."""

_propagator = W3CBaggagePropagator()


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
        self._params = frozenset(self.config.wedding_id_params)
        self._networks = tuple(
            ipaddress.ip_network(network, strict=False) for network in self.config.trusted_networks
        )
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
        wedding_id = self._id_from_path(str(scope.get("path", ""))) or self._id_from_query(
            scope.get("query_string", b"")
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

    def _id_from_query(self, query: object) -> str | None:
        if not isinstance(query, bytes | bytearray) or not query:
            return None
        text = bytes(query[:MAX_QUERY_BYTES]).decode("latin-1")
        for name, value in parse_qsl(text, max_num_fields=50):
            if name in self._params:
                return wedding_id_text(value)
        return None

    def trusted(self, scope: Scope) -> bool:
        """Whether this caller's baggage may be believed: trusted network or shared secret."""
        client = scope.get("client")
        if self._networks and client:
            try:
                address = ipaddress.ip_address(client[0])
            except (ValueError, TypeError, IndexError):
                address = None
            if address is not None and any(address in network for network in self._networks):
                return True
        if self._secret is None:
            return False
        for name, value in scope.get("headers") or ():
            if bytes(name).lower() == self._trust_header:
                return hmac.compare_digest(bytes(value), self._secret)
        return False


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
