"""WeddingMiddleware with the contrib Starlette instrumentation, through real ASGI calls."""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Callable, Iterator

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from opentelemetry.instrumentation.asgi import OpenTelemetryMiddleware
from opentelemetry.instrumentation.starlette import StarletteInstrumentor
from starlette.applications import Starlette
from starlette.datastructures import QueryParams
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from helpers import Pipeline
from wedsync_otel import EndpointSpec, WeddingConfig, set_wedding_resolver
from wedsync_otel import attributes as attr
from wedsync_otel.asgi import (
    FORWARDING_HEADERS,
    MAX_QUERY_BYTES,
    QueryWeddingId,
    WeddingMiddleware,
    add_wedding_middleware,
    instrument_asgi_app,
    middleware_stats,
)
from wedsync_otel.context import wedding_id_text
from wedsync_otel.demo.app import demo_config

SECRET = "s3cret-s3cret-s3cret"
TODAY = "2026-06-16"  # the fake clock's Tuesday


async def ok(request: Request) -> JSONResponse:
    return JSONResponse({"ok": True})


QUERY_IDS = demo_config(WeddingConfig())
"""The default catalogue with venue availability and supplier profiles reading ?wedding_id=."""


def make_app() -> Starlette:
    return Starlette(
        routes=[
            Route("/api/couples/{couple_id}/timeline", ok),
            Route("/api/payments/charge", ok, methods=["POST"]),
            Route("/api/weddings/{wedding_id}/guests", ok),
            Route("/api/venues/{venue_id}/availability", ok),
            Route("/health", ok),
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
    """?wedding_id= names the wedding of an endpoint that takes it from the query string."""
    attributes = server_span_attributes(
        serve("GET", "/api/venues/v-1/availability?wedding_id=w-1", config=QUERY_IDS)
    )
    assert attributes[attr.WEDDING_ID] == "w-1"
    assert attributes[attr.WEDDING_PROXIMITY] == "wedding_day"
    assert attributes[attr.WEDDING_THRESHOLD_MS] == 100.0


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


# --- which endpoints take a wedding id from the query string ------------------------------------


def query_ids_ignored() -> int:
    return middleware_stats().query_ids_ignored


@pytest.mark.parametrize(
    ("method", "url"),
    [
        ("POST", "/api/payments/charge?wedding_id=w-1"),
        ("GET", "/health?wedding_id=w-1"),
    ],
)
def test_a_query_id_on_a_path_only_endpoint_changes_nothing_and_is_counted(
    serve: Callable[..., Pipeline], method: str, url: str
) -> None:
    """?wedding_id=<today's wedding> on payments, or on an unknown path, is no wedding-day page."""
    before = query_ids_ignored()
    attributes = server_span_attributes(serve(method, url))
    assert attr.WEDDING_ID not in attributes
    assert attributes[attr.WEDDING_PROXIMITY] != "wedding_day"
    assert query_ids_ignored() == before + 1


def test_payments_take_a_query_id_when_the_catalogue_says_so(
    serve: Callable[..., Pipeline],
) -> None:
    """An endpoint declared with wedding_id_from_query reads ?wedding_id=."""
    payments = EndpointSpec(
        name="payments",
        patterns=("/api/payments/**",),
        threshold_ms=150,
        critical=True,
        wedding_id_from_query=True,
    )
    config = WeddingConfig(endpoints=(payments,))
    attributes = server_span_attributes(
        serve("POST", "/api/payments/charge?wedding_id=w-1", config=config)
    )
    assert attributes[attr.WEDDING_PROXIMITY] == "wedding_day"
    assert attributes[attr.WEDDING_THRESHOLD_MS] == 75.0


def test_the_path_id_wins_over_the_query_id(serve: Callable[..., Pipeline]) -> None:
    """A wedding named in the route is the request's, whatever the query string says."""
    attributes = server_span_attributes(serve("GET", "/api/weddings/w-1/guests?wedding_id=c-7"))
    assert attributes[attr.WEDDING_ID] == "w-1"


def padded(*, before: int, field: str, after: int) -> str:
    """A query of ``before`` filler fields, then ``field``, then ``after`` more."""
    return "&".join(
        [f"f{n}=v" for n in range(before)] + [field] + [f"g{n}=v" for n in range(after)]
    )


ID = "wedding_id=w-1"
QUERY_SHAPES = [
    pytest.param(ID, "w-1", id="alone"),
    pytest.param(padded(before=0, field=ID, after=999), "w-1", id="first-of-1000"),
    pytest.param(padded(before=999, field=ID, after=0), "w-1", id="last-of-1000"),
    pytest.param(padded(before=500, field=ID, after=499), "w-1", id="middle-of-1000"),
    pytest.param(padded(before=500, field="x=1", after=499), None, id="1000-without-id"),
    pytest.param("&".join(["a"] * 3000 + [ID]), "w-1", id="3001-bare-fields"),
    pytest.param("wedding%5Fid=w-1", "w-1", id="percent-encoded-name"),
    pytest.param("wedding%5fid=w%2D1", "w-1", id="lower-case-escapes"),
    pytest.param("%77edding_id=w-1", "w-1", id="encoded-first-letter"),
    pytest.param("wedding_id=w-2&wedding_id=w-1", "w-1", id="repeated-last-wins"),
    pytest.param("wedding_id=w-1&wedding_id=", None, id="repeated-last-blank"),
    pytest.param("wedding_id=w-1&wedding_id", None, id="repeated-last-bare"),
    pytest.param("couple_id=c-7&wedding_id=w-1", "w-1", id="wedding-id-before-couple-id"),
    pytest.param("couple_id=c-7", "c-7", id="couple-id"),
    pytest.param("wedding_id=w+1", "w 1", id="plus-is-space"),
    pytest.param("wedding_id=w%201", "w 1", id="escaped-space"),
    pytest.param("wedding_id==w-1", "=w-1", id="double-equals"),
    pytest.param("wedding_id=w-1;x=1", "w-1;x=1", id="semicolon-is-no-separator"),
    pytest.param("x=1;wedding_id=w-1", None, id="semicolon-before"),
    pytest.param("wedding_id=%ZZ", "%ZZ", id="bad-escape"),
    pytest.param("wedding_id=%E2%82", "\ufffd", id="cut-utf8"),
    pytest.param("wedding_id=w%0A1", None, id="newline"),
    pytest.param("wedding_id=w%00", None, id="nul"),
    pytest.param("wedding_id=" + "w" * 129, None, id="over-long"),
    pytest.param("wedding_id=" + "w" * 128, "w" * 128, id="longest"),
    pytest.param("", None, id="empty"),
    pytest.param("&&&", None, id="only-separators"),
    pytest.param("=&=w-1&==", None, id="blank-names"),
    pytest.param("wedding_id", None, id="bare-name"),
    pytest.param("wedding_id=", None, id="blank-value"),
    pytest.param("Wedding_ID=w-1", None, id="names-are-case-sensitive"),
    pytest.param("xwedding_id=w-1&wedding_idx=w-2", None, id="names-are-whole"),
    pytest.param("wedding_id+=w-1", None, id="plus-in-name"),
    pytest.param("wedding_id\n=w-1", None, id="newline-in-name"),
    pytest.param("wedding_id=w-1\n", None, id="trailing-newline-value"),
    pytest.param("wedding_id=w-1#frag", "w-1#frag", id="hash-is-data"),
]


@pytest.mark.parametrize(("query", "wedding_id"), QUERY_SHAPES)
def test_query_string_shapes(query: str, wedding_id: str | None) -> None:
    """Each shape of query string gives the id the application would read, or none."""
    assert QueryWeddingId(("wedding_id", "couple_id"))(query.encode("latin-1")) == wedding_id


@pytest.mark.parametrize(("query", "wedding_id"), QUERY_SHAPES)
def test_query_string_shapes_agree_with_starlette(query: str, wedding_id: str | None) -> None:
    """The reader and Starlette's own request.query_params read every shape alike."""
    assert starlette_reading(query.encode("latin-1")) == wedding_id


def starlette_reading(query: bytes) -> str | None:
    """What an app reading request.query_params would take as the wedding id."""
    params = QueryParams(query)
    for name in ("wedding_id", "couple_id"):
        if name in params:
            return wedding_id_text(params[name])
    return None


_NAMES = st.sampled_from(
    ["wedding_id", "couple_id", "wedding%5Fid", "%63ouple_id", "wedding_id+", "x", "", "w"]
)
_VALUES = st.text(alphabet="w-1=%+;#&\n é\x00AF2E8", max_size=12)


@settings(max_examples=300)
@given(st.lists(st.tuples(_NAMES, st.booleans(), _VALUES), max_size=12), st.binary(max_size=8))
def test_any_short_query_is_read_as_starlette_reads_it(
    fields: list[tuple[str, bool, str]], tail: bytes
) -> None:
    """For any query under the bound, the reader agrees with Starlette's parser."""
    text = "&".join(name + ("=" + value if has_value else "") for name, has_value, value in fields)
    query = text.encode("utf-8") + tail
    assert QueryWeddingId(("wedding_id", "couple_id"))(query) == starlette_reading(query)


def test_only_the_first_max_query_bytes_are_read() -> None:
    """An id beyond the bound is not seen; one before it is."""
    read = QueryWeddingId(("wedding_id",))
    filler = "x=" + "y" * MAX_QUERY_BYTES
    assert read(f"{ID}&{filler}".encode()) == "w-1"
    assert read(f"{filler}&{ID}".encode()) is None


@pytest.mark.parametrize("cut", range(1, len(ID) + 1))
def test_an_id_cut_by_the_bound_is_dropped_not_shortened(cut: int) -> None:
    """A field that straddles the bound is dropped: a cut id would name another wedding."""
    start = "x=" + "y" * (MAX_QUERY_BYTES - 3 - cut) + "&"
    query = (start + ID + "&z=1").encode()
    assert len(start) + cut == MAX_QUERY_BYTES
    expected = "w-1" if cut == len(ID) else None  # the bound falls just before '&': whole
    assert QueryWeddingId(("wedding_id",))(query) == expected


@given(st.binary(max_size=MAX_QUERY_BYTES * 2))
def test_any_bytes_read_without_raising(query: bytes) -> None:
    """Any bytes at all give an id or None."""
    found = QueryWeddingId(("wedding_id", "couple_id"))(query)
    assert found is None or wedding_id_text(found) == found


def test_a_long_query_is_counted_as_truncated(serve: Callable[..., Pipeline]) -> None:
    """A query string over the bound is counted, and its start still names the wedding."""
    before = middleware_stats().truncated_queries
    url = "/api/venues/v-1/availability?" + ID + "&x=" + "y" * MAX_QUERY_BYTES
    attributes = server_span_attributes(serve("GET", url, config=QUERY_IDS))
    assert attributes[attr.WEDDING_ID] == "w-1"
    assert middleware_stats().truncated_queries == before + 1


@pytest.mark.parametrize(
    "query",
    [
        padded(before=0, field=ID, after=999),
        padded(before=999, field=ID, after=0),
        "wedding%5Fid=w-1&" + "&".join(["a=1"] * 1000),
    ],
    ids=["first-of-1000", "last-of-1000", "encoded-name-then-1000"],
)
def test_many_fields_keep_the_wedding_through_the_middleware(
    serve: Callable[..., Pipeline], query: str
) -> None:
    """A thousand query fields (parse_qsl's max_num_fields would raise) keep the wedding."""
    attributes = server_span_attributes(
        serve("GET", f"/api/venues/v-1/availability?{query}", config=QUERY_IDS)
    )
    assert attributes[attr.WEDDING_ID] == "w-1"
    assert attributes[attr.WEDDING_PROXIMITY] == "wedding_day"


# --- trust and forwarding headers ----------------------------------------------------------------


TRUSTED_NETWORK = WeddingConfig(trusted_networks=("10.0.0.0/8",))
INSIDE = ("10.1.2.3", 5000)


def band_of(pipeline: Pipeline) -> object:
    return server_span_attributes(pipeline)[attr.WEDDING_PROXIMITY]


@pytest.mark.parametrize("header", sorted(name.decode() for name in FORWARDING_HEADERS))
def test_a_trusted_address_with_a_forwarding_header_is_not_trusted_by_default(
    serve: Callable[..., Pipeline], header: str
) -> None:
    """The address may come from that header (uvicorn's proxy headers): no network trust."""
    before = middleware_stats().forwarded_refusals
    headers = {"baggage": f"wedding.date={TODAY}", header: "10.1.2.3"}
    pipeline = serve(
        "POST", "/api/payments/charge", config=TRUSTED_NETWORK, headers=headers, client=INSIDE
    )
    assert band_of(pipeline) == "unknown"
    assert middleware_stats().forwarded_refusals == before + 1


def test_trust_forwarded_client_lets_a_forwarded_address_be_trusted(
    serve: Callable[..., Pipeline],
) -> None:
    """With the explicit setting, the proxy-set address is believed."""
    config = TRUSTED_NETWORK.replace(trust_forwarded_client=True)
    headers = {"baggage": f"wedding.date={TODAY}", "x-forwarded-for": "10.1.2.3"}
    pipeline = serve("POST", "/api/payments/charge", config=config, headers=headers, client=INSIDE)
    assert band_of(pipeline) == "wedding_day"


def test_the_shared_secret_is_trusted_with_forwarding_headers(
    serve: Callable[..., Pipeline],
) -> None:
    """The secret does not depend on any address, so forwarding headers do not matter."""
    config = TRUSTED_NETWORK.replace(trust_secret=SECRET)
    headers = {
        "baggage": f"wedding.date={TODAY}",
        "x-forwarded-for": "10.1.2.3",
        "x-wedsync-trust": SECRET,
    }
    pipeline = serve("POST", "/api/payments/charge", config=config, headers=headers, client=INSIDE)
    assert band_of(pipeline) == "wedding_day"


@pytest.mark.parametrize(
    ("client", "band"),
    [
        (("::ffff:10.1.2.3", 5000), "wedding_day"),
        (("10.255.255.255", 1), "wedding_day"),
        (("11.0.0.1", 5000), "unknown"),
        (("not-an-address", 5000), "unknown"),
        (("", 0), "unknown"),
    ],
)
def test_network_trust_reads_the_peer_address(
    serve: Callable[..., Pipeline], client: tuple[str, int], band: str
) -> None:
    """An IPv4-mapped IPv6 peer is its IPv4 address; anything unreadable is untrusted."""
    headers = {"baggage": f"wedding.date={TODAY}"}
    pipeline = serve(
        "POST", "/api/payments/charge", config=TRUSTED_NETWORK, headers=headers, client=client
    )
    assert band_of(pipeline) == band


@pytest.mark.parametrize("client", [None, [], ["10.1.2.3"], [167838211, 5000], "10.1.2.3"])
def test_odd_client_entries_are_untrusted(client: object) -> None:
    """A scope without a usable client address is never trusted by network."""
    middleware = WeddingMiddleware(make_app(), config=TRUSTED_NETWORK)
    trusted = middleware.trusted({"type": "http", "client": client, "headers": []})
    assert trusted is (client == ["10.1.2.3"])
