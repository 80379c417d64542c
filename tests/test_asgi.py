"""WeddingMiddleware with the contrib Starlette instrumentation, through real ASGI calls."""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Callable, Iterator

import httpx
import pytest
from opentelemetry.instrumentation.asgi import OpenTelemetryMiddleware
from opentelemetry.instrumentation.starlette import StarletteInstrumentor
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from helpers import Pipeline
from wedsync_otel import WeddingConfig, set_wedding_resolver
from wedsync_otel import attributes as attr
from wedsync_otel.asgi import WeddingMiddleware, add_wedding_middleware, instrument_asgi_app

SECRET = "s3cret-s3cret-s3cret"
TODAY = "2026-06-16"  # the fake clock's Tuesday


async def ok(request: Request) -> JSONResponse:
    return JSONResponse({"ok": True})


def make_app() -> Starlette:
    return Starlette(
        routes=[
            Route("/api/couples/{couple_id}/timeline", ok),
            Route("/api/payments/charge", ok, methods=["POST"]),
            Route("/api/weddings/{wedding_id}/guests", ok),
        ]
    )


@pytest.fixture(autouse=True)
def _resolver() -> Iterator[None]:
    dates = {"c-7": dt.date(2026, 6, 20), "w-1": dt.date(2026, 6, 16)}
    set_wedding_resolver(dates.get, timeout_ms=5_000)
    yield
    set_wedding_resolver(None)


@pytest.fixture
def serve(make_pipeline: Callable[..., Pipeline]) -> Iterator[Callable[..., Pipeline]]:
    """Build an instrumented app for a config; return a function sending one request."""
    apps: list[Starlette] = []

    def build(config: WeddingConfig | None = None) -> tuple[Pipeline, Starlette]:
        config = config or WeddingConfig()
        pipeline = make_pipeline(config)
        app = make_app()
        StarletteInstrumentor.instrument_app(app, tracer_provider=pipeline.provider)
        add_wedding_middleware(app, config=config)
        apps.append(app)
        return pipeline, app

    def request(
        method: str,
        url: str,
        *,
        config: WeddingConfig | None = None,
        headers: dict[str, str] | None = None,
        client: tuple[str, int] = ("203.0.113.9", 40000),
    ) -> Pipeline:
        pipeline, app = build(config)

        async def call() -> None:
            transport = httpx.ASGITransport(app=app, client=client)
            async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
                response = await http.request(method, url, headers=headers)
                assert response.status_code == 200

        asyncio.run(call())
        return pipeline

    yield request
    for app in apps:
        StarletteInstrumentor.uninstrument_app(app)


def server_span_attributes(pipeline: Pipeline) -> dict[str, object]:
    (span,) = [s for s in pipeline.spans() if s.kind.name == "SERVER"]
    return dict(span.attributes or {})


def test_route_template_and_wedding_from_the_path(serve: Callable[..., Pipeline]) -> None:
    """http.route is the template and the couple id in the path resolves to its wedding."""
    attributes = server_span_attributes(serve("GET", "/api/couples/c-7/timeline"))
    assert attributes["http.route"] == "/api/couples/{couple_id}/timeline"
    assert attributes[attr.WEDDING_ENDPOINT] == "couple_timeline"
    assert attributes[attr.WEDDING_ID] == "c-7"
    assert attributes[attr.WEDDING_PROXIMITY] == "final_week"
    assert attributes[attr.WEDDING_DAYS_UNTIL] == 4


def test_wedding_from_a_query_parameter(serve: Callable[..., Pipeline]) -> None:
    """?wedding_id= names the wedding when the path does not."""
    attributes = server_span_attributes(serve("POST", "/api/payments/charge?wedding_id=w-1"))
    assert attributes[attr.WEDDING_PROXIMITY] == "wedding_day"
    assert attributes[attr.WEDDING_THRESHOLD_MS] == 75.0


def test_spoofed_baggage_from_an_untrusted_client_changes_nothing(
    serve: Callable[..., Pipeline],
) -> None:
    """wedding.date=<today> in baggage from an unknown client leaves the threshold alone."""
    attributes = server_span_attributes(
        serve("POST", "/api/payments/charge", headers={"baggage": f"wedding.date={TODAY}"})
    )
    assert attributes[attr.WEDDING_PROXIMITY] == "unknown"
    assert attributes[attr.WEDDING_THRESHOLD_MS] == 150.0


def test_baggage_from_a_trusted_network_is_believed(serve: Callable[..., Pipeline]) -> None:
    """The same baggage from a trusted network makes it wedding-day traffic."""
    config = WeddingConfig(trusted_networks=("10.0.0.0/8",))
    attributes = server_span_attributes(
        serve(
            "POST",
            "/api/payments/charge",
            config=config,
            headers={"baggage": f"wedding.date={TODAY}"},
            client=("10.1.2.3", 5000),
        )
    )
    assert attributes[attr.WEDDING_PROXIMITY] == "wedding_day"
    assert attributes[attr.WEDDING_THRESHOLD_MS] == 75.0


@pytest.mark.parametrize(
    ("secret", "band"), [(SECRET, "wedding_day"), ("wrong-secret-wrong!!", "unknown")]
)
def test_baggage_with_the_shared_secret_is_believed(
    serve: Callable[..., Pipeline], secret: str, band: str
) -> None:
    """The trust header must carry exactly the shared secret."""
    config = WeddingConfig(trust_secret=SECRET)
    attributes = server_span_attributes(
        serve(
            "POST",
            "/api/payments/charge",
            config=config,
            headers={"baggage": f"wedding.date={TODAY}", "x-wedsync-trust": secret},
        )
    )
    assert attributes[attr.WEDDING_PROXIMITY] == band


def test_instrument_asgi_app_reaches_the_server_span(
    make_pipeline: Callable[..., Pipeline],
) -> None:
    """The plain-ASGI helper puts the contrib middleware outside WeddingMiddleware."""
    pipeline = make_pipeline()
    app = OpenTelemetryMiddleware(
        WeddingMiddleware(make_app(), config=WeddingConfig()), tracer_provider=pipeline.provider
    )

    async def call() -> None:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
            assert (await http.get("/api/weddings/w-1/guests")).status_code == 200

    asyncio.run(call())
    attributes = server_span_attributes(pipeline)
    assert attributes[attr.WEDDING_ENDPOINT] == "guest_lists"
    assert attributes[attr.WEDDING_PROXIMITY] == "wedding_day"


def test_instrument_asgi_app_wraps_with_the_contrib_middleware() -> None:
    """The helper returns the contrib middleware around WeddingMiddleware."""
    wrapped = instrument_asgi_app(make_app(), config=WeddingConfig())
    assert isinstance(wrapped, OpenTelemetryMiddleware)
    assert isinstance(wrapped.app, WeddingMiddleware)


def test_lifespan_scopes_pass_through() -> None:
    """Non-HTTP scopes reach the app untouched."""
    seen: list[str] = []

    async def app(scope: dict[str, object], receive: object, send: object) -> None:
        seen.append(str(scope["type"]))

    middleware = WeddingMiddleware(app, config=WeddingConfig())  # type: ignore[arg-type]
    asyncio.run(middleware({"type": "lifespan"}, None, None))  # type: ignore[arg-type]
    assert seen == ["lifespan"]
