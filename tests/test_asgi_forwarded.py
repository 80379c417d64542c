"""A spoofed X-Forwarded-For through a real uvicorn (proxy headers on, its default) and HTTP.

uvicorn believes ``X-Forwarded-For`` from 127.0.0.1 by default and puts that
address in ``scope["client"]``, so any local caller (a sidecar, a health
checker, a proxy passing the header through) can claim a trusted network.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import httpx
import pytest
import uvicorn
from opentelemetry.context import Context
from opentelemetry.instrumentation.starlette import StarletteInstrumentor
from opentelemetry.sdk.trace import ReadableSpan, Span, SpanProcessor
from opentelemetry.trace import SpanKind
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from helpers import Pipeline
from wedsync_otel import WeddingConfig
from wedsync_otel import attributes as attr
from wedsync_otel.asgi import add_wedding_middleware

TODAY = "2026-06-16"  # the fake clock's day: baggage naming it is wedding-day traffic
SECRET = "s3cret-s3cret-s3cret"
TRUSTED = WeddingConfig(trusted_networks=("10.0.0.0/8",))
SPOOF = {"x-forwarded-for": "10.1.2.3", "baggage": f"wedding.date={TODAY}"}


class ServerSpanEnded(SpanProcessor):
    """Sets an event when a server span ends: the response can reach the client first."""

    def __init__(self) -> None:
        self.ended = threading.Event()

    def on_start(self, span: Span, parent_context: Context | None = None) -> None:
        pass

    def on_end(self, span: ReadableSpan) -> None:
        if span.kind is SpanKind.SERVER:
            self.ended.set()

    def shutdown(self) -> None:
        pass

    def force_flush(self, timeout_millis: int = 30_000) -> bool:
        return True


class StartedServer(uvicorn.Server):
    """uvicorn that says when its socket is listening (or it gave up), with no polling."""

    def __init__(self, config: uvicorn.Config) -> None:
        super().__init__(config)
        self.ready = threading.Event()

    async def startup(self, sockets: list[object] | None = None) -> None:  # type: ignore[override]
        try:
            await super().startup(sockets=sockets)  # type: ignore[arg-type]
        finally:
            self.ready.set()


@dataclass
class Served:
    """One request's answer from the app and its exported server span."""

    client_host: str
    attributes: dict[str, object]


async def client_host(request: Request) -> JSONResponse:
    client = request.client
    return JSONResponse({"client": None if client is None else client.host})


@pytest.fixture
def serve(
    make_pipeline: Callable[..., Pipeline], monkeypatch: pytest.MonkeyPatch
) -> Iterator[Callable[..., Served]]:
    """Serve an instrumented app with uvicorn's defaults; return a function sending one POST."""
    monkeypatch.delenv("FORWARDED_ALLOW_IPS", raising=False)  # uvicorn's default: 127.0.0.1
    running: list[tuple[StartedServer, threading.Thread, Starlette]] = []

    def request(config: WeddingConfig, headers: dict[str, str]) -> Served:
        pipeline = make_pipeline(config)
        ended = ServerSpanEnded()
        pipeline.provider.add_span_processor(ended)
        app = Starlette(routes=[Route("/api/payments/charge", client_host, methods=["POST"])])
        StarletteInstrumentor.instrument_app(app, tracer_provider=pipeline.provider)
        add_wedding_middleware(app, config=config)
        server_config = uvicorn.Config(
            app, host="127.0.0.1", port=0, lifespan="off", log_level="warning", access_log=False
        )
        assert server_config.proxy_headers is True  # the default under test
        server = StartedServer(server_config)
        thread = threading.Thread(target=lambda: asyncio.run(server.serve()), daemon=True)
        thread.start()
        running.append((server, thread, app))
        assert server.ready.wait(30)
        assert server.started, "uvicorn did not start"
        port = server.servers[0].sockets[0].getsockname()[1]
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30) as http:
            response = http.post("/api/payments/charge", headers=headers)
        assert response.status_code == 200
        assert ended.ended.wait(30)
        (span,) = [s for s in pipeline.spans() if s.kind is SpanKind.SERVER]
        return Served(response.json()["client"], dict(span.attributes or {}))

    yield request
    for server, thread, app in running:
        server.should_exit = True
        thread.join(30)
        StarletteInstrumentor.uninstrument_app(app)


def test_uvicorn_takes_the_client_address_from_x_forwarded_for(
    serve: Callable[..., Served],
) -> None:
    """The premise: from loopback, uvicorn hands the app the address the header claims."""
    assert serve(TRUSTED, SPOOF).client_host == "10.1.2.3"


def test_a_spoofed_forwarded_address_is_not_trusted_by_default(
    serve: Callable[..., Served],
) -> None:
    """X-Forwarded-For: 10.1.2.3 and baggage wedding.date=<today> leave payments at 150 ms."""
    served = serve(TRUSTED, SPOOF)
    assert served.attributes[attr.WEDDING_PROXIMITY] == "unknown"
    assert served.attributes[attr.WEDDING_THRESHOLD_MS] == 150.0


def test_a_forwarded_address_is_trusted_only_with_the_explicit_setting(
    serve: Callable[..., Served],
) -> None:
    """trust_forwarded_client = true says the user's own proxy sets the header: then believed."""
    served = serve(TRUSTED.replace(trust_forwarded_client=True), SPOOF)
    assert served.attributes[attr.WEDDING_PROXIMITY] == "wedding_day"
    assert served.attributes[attr.WEDDING_THRESHOLD_MS] == 75.0


def test_a_direct_caller_in_a_trusted_network_is_still_trusted(
    serve: Callable[..., Served],
) -> None:
    """With no forwarding header the address is the peer's own: loopback, trusted as configured."""
    config = WeddingConfig(trusted_networks=("127.0.0.0/8",))
    served = serve(config, {"baggage": f"wedding.date={TODAY}"})
    assert served.client_host == "127.0.0.1"
    assert served.attributes[attr.WEDDING_PROXIMITY] == "wedding_day"


def test_the_shared_secret_is_trusted_through_the_spoof(serve: Callable[..., Served]) -> None:
    """The safe alternative: the secret header is believed whatever the forwarding headers say."""
    served = serve(TRUSTED.replace(trust_secret=SECRET), {**SPOOF, "x-wedsync-trust": SECRET})
    assert served.attributes[attr.WEDDING_PROXIMITY] == "wedding_day"
