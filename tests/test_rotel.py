"""The rotel hop: the WedSync trace processor, alone and inside a real rotel collector."""

from __future__ import annotations

import contextlib
import datetime as dt
import io
import json
import re
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any, Final

import grpc
import pytest
from opentelemetry import trace as otel_trace
from opentelemetry.exporter.otlp.proto.grpc.metric_exporter import OTLPMetricExporter
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2, trace_service_pb2_grpc
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, ArrayValue, KeyValue, KeyValueList
from opentelemetry.proto.metrics.v1.metrics_pb2 import Metric
from opentelemetry.proto.resource.v1.resource_pb2 import Resource
from opentelemetry.proto.trace.v1.trace_pb2 import ResourceSpans, ScopeSpans
from opentelemetry.proto.trace.v1.trace_pb2 import Span as ProtoSpan
from opentelemetry.proto.trace.v1.trace_pb2 import Status as ProtoStatus
from opentelemetry.trace import SpanKind
from opentelemetry.util.types import AttributeValue

import wedsync_otel
from collector_support import (
    ROTEL_DIR,
    OtlpSink,
    ReceivedSpan,
    Rotel,
    RotelUnavailable,
    agent_settings,
    env_file,
    plain,
    rotel_agent,
    start_rotel,
)
from servers import require
from wedsync_otel import WeddingConfig
from wedsync_otel import attributes as attr
from wedsync_otel.collector import rotel_processor, rotel_processor_path
from wedsync_otel.collector.rotel_processor import (
    HEALTH_CHECK_PATHS,
    HEALTH_CHECK_ROUTES_ENV,
    RedactionSummary,
    RotelProcessor,
    health_check_routes,
    is_failure,
    is_health_check,
    process_spans,
    redaction_counts,
)
from wedsync_otel.metrics import names
from wedsync_otel.privacy.scrubber import DROP, Scrubber

MS = 1_000_000
REQUEST_START = dt.datetime(2026, 6, 16, 10, 0, tzinfo=dt.UTC)  # a Tuesday in wedding season
START = int(REQUEST_START.timestamp()) * 1_000_000_000
DELIVERY_TIMEOUT_S = 20.0

REQUEST = "GET /api/suppliers/{supplier_id}/profile"
HEALTH = "GET /healthz"
QUERY = "SELECT suppliers"  # a database span is exported under its db.query.summary
SENSITIVE: Final[dict[str, AttributeValue]] = {
    "enduser.id": "anna.smith@example.com",
    "app.payment.card": "4111 1111 1111 1111",
    "app.payment.card_number": 5555555555554444,
}
KEPT: Final[dict[str, AttributeValue]] = {
    "http.request.method": "GET",
    "http.route": "/api/suppliers/{supplier_id}/profile",
    "http.response.status_code": 200,
    "http.host": "wedsync-api:8443",
}
TAGS = ["vegan", "outdoor", "evening"]


# --- fake rotel objects, for the processor without the agent ----------------------------------

FAKE_ROTEL_SDK: Final = '''
"""Stand-ins for rotel_sdk's objects, with the behaviour the processor relies on.

Like rotel 0.0.1-alpha10: bytes come back as a list of ints, AnyValue(None) holds "",
reading an attribute with no value raises a PanicException (a BaseException), and
attribute lists are edited in place only.
"""


class PanicException(BaseException):
    pass


class AnyValue:
    def __init__(self, value=None):
        self._value = "" if value is None else list(value) if isinstance(value, bytes) else value

    @property
    def value(self):
        return self._value


class EmptyAnyValue:
    @property
    def value(self):
        raise PanicException("called `Option::unwrap()` on a `None` value")


class KeyValue:
    def __init__(self, key, value):
        self.key = key
        self.value = value


class _List:
    def __init__(self, items=()):
        self._items = list(items)

    def append(self, item):
        self._items.append(item)

    def __iter__(self):
        return iter(list(self._items))

    def __len__(self):
        return len(self._items)

    def __getitem__(self, index):
        return self._items[index]

    def __setitem__(self, index, item):
        self._items[index] = item

    def __delitem__(self, index):
        del self._items[index]


class ArrayValue(_List):
    pass


class KeyValueList(_List):
    pass


class AttributesList(_List):
    pass


EMPTY = object()


def any_value(value):
    if value is EMPTY:
        return EmptyAnyValue()
    if isinstance(value, (list, tuple)):
        array = ArrayValue()
        for item in value:
            array.append(any_value(item))
        return AnyValue(array)
    if isinstance(value, dict):
        kvlist = KeyValueList()
        for key, item in value.items():
            kvlist.append(KeyValue(key, any_value(item)))
        return AnyValue(kvlist)
    return AnyValue(value)


def attributes(pairs):
    pairs = pairs.items() if isinstance(pairs, dict) else pairs
    return AttributesList(KeyValue(key, any_value(value)) for key, value in pairs)


class Event:
    def __init__(self, name, attrs):
        self.name = name
        self.attributes = attributes(attrs)


class Link:
    def __init__(self, attrs):
        self.attributes = attributes(attrs)


class Status:
    def __init__(self, code, message):
        self.code = code
        self.message = message


class Span:
    def __init__(self, name, attrs=(), *, trace=1, events=(), links=(), status=None):
        self.trace_id = bytes([trace]) * 16
        self.name = name
        self.attributes = attributes(attrs)
        self.events = [Event(event_name, event_attrs) for event_name, event_attrs in events]
        self.links = [Link(link_attrs) for link_attrs in links]
        self.status = None if status is None else Status(*status)


class ScopeSpans:
    def __init__(self, spans):
        self.spans = list(spans)


class ResourceSpans:
    def __init__(self, spans):
        self.scope_spans = [ScopeSpans(spans)]


def plain(value):
    if isinstance(value, AnyValue):
        value = value.value
    if isinstance(value, ArrayValue):
        return [plain(item) for item in value]
    if isinstance(value, KeyValueList):
        return {item.key: plain(item.value) for item in value}
    if isinstance(value, list):
        return bytes(value)
    return value


def dump(span):
    """Every field the processor may touch, as plain values."""
    return {
        "name": span.name,
        "trace": span.trace_id[0],
        "attributes": {item.key: plain(item.value) for item in span.attributes},
        "events": [
            (event.name, {item.key: plain(item.value) for item in event.attributes})
            for event in span.events
        ],
        "links": [{item.key: plain(item.value) for item in link.attributes} for link in span.links],
        "status": None if span.status is None else (span.status.code, span.status.message),
    }
'''


class _Empty:
    """An attribute sent with no value at all (OTLP ``KeyValue`` without ``value``)."""


EMPTY: Final = _Empty()


@dataclass(frozen=True)
class SpanSpec:
    """One span to send, as plain values: built as fake rotel objects or as OTLP protobuf."""

    name: str
    trace: int
    attributes: dict[str, object] = field(default_factory=dict)
    events: tuple[tuple[str, dict[str, object]], ...] = ()
    links: tuple[dict[str, object], ...] = ()
    status: tuple[int, str] | None = None


ERROR = 2
PAYMENT_ROUTE = "/api/payments/{payment_id}"

# Every planted secret carries an "annaNN" local part or one of SECRET_WORDS, so a search of
# everything received finds any survivor, whatever field it ended up in.
PLANTED: Final = (
    SpanSpec(
        name="checkout for anna01%40example.com",
        trace=1,
        attributes={
            "http.request.method": "POST",
            "http.route": PAYMENT_ROUTE,
            "app.plan": "gold",
            "app.retries": 3,
            "app.contact": "anna02@bücher.example",
            "app.contact.fullwidth": "anna03\uff20example.com",  # a full-width at sign
            "app.contact.punycode": "write to anna04@xn--bcher-kva.example today",
            "app.note.bytes": b"contact anna05@example.com",
            "app.tags": ("vip", "anna06@example.com", "4111-1111-1111-1111"),
            "app.context": {
                "user": {"email": "anna07@example.com", "password": "kv-password-123"},
                "tier": "gold",
                "anna08@example.com": "as-key",
            },
            "guest.anna09@example.com": "yes",
            "app.card.dots": "paid with 4111.1111.1111.1111",
            "app.card.underscores": "4111_1111_1111_1111",
            "app.card.spaces": "5555  5555  5555  4444",
            "app.card.int": 4111111111111111,
            "app.card.ints": (5555555555554444, 7),
            "url.full": "https://api.wedsync.test/rsvp?email=anna17%40example.com&page=2",
            "app.empty": EMPTY,
        },
        events=(
            ("reminder sent to anna10@example.com", {"attempt": 2}),
            (
                "exception",
                {
                    "exception.type": "psycopg.errors.UniqueViolation",
                    "exception.message": "Key (email)=(anna11@example.com) already exists.",
                    "exception.stacktrace": "Traceback (most recent call last):\n"
                    "ValueError: card 4111 1111 1111 1111 for anna12@example.com",
                },
            ),
        ),
        links=({"link.note": "from anna14@example.com", "link.kind": "follows"},),
        status=(ERROR, "payment failed for anna13@example.com"),
    ),
    SpanSpec(
        name="SET session:anna15@example.com s3cr3t-redis EX 60",
        trace=1,
        attributes={
            "db.system": "redis",
            "db.statement": "SET session:anna15@example.com s3cr3t-redis EX 60",
        },
    ),
    SpanSpec(
        name="SELECT * FROM guests WHERE email = 'anna16@example.com'",
        trace=1,
        attributes={
            "db.system": "postgresql",
            "db.statement": "SELECT * FROM guests WHERE email = 'anna16@example.com' "
            "AND code = 'sql-literal-xyz'",
        },
    ),
    # A client claiming to be a probe, on a real route, failing: kept.
    SpanSpec(
        name="POST /api/payments/charge",
        trace=3,
        attributes={
            "http.route": "/api/payments/charge",
            "user_agent.original": "kube-probe/1.0",
            "http.response.status_code": 500,
        },
        status=(ERROR, "upstream timeout"),
    ),
    # A healthy health check and its query: dropped.
    SpanSpec(name="GET /healthz", trace=4, attributes={"http.route": "/healthz"}),
    SpanSpec(
        name="SELECT 1",
        trace=4,
        attributes={"db.system": "postgresql", "db.statement": "SELECT 1"},
    ),
    # A health check by path alone (trailing slash, query): dropped.
    SpanSpec(name="GET", trace=6, attributes={"url.path": "/livez/", "http.target": "/livez/?v"}),
    # A health check that failed: kept.
    SpanSpec(
        name="GET /readyz",
        trace=5,
        attributes={"http.route": "/readyz", "http.response.status_code": 503},
    ),
    # A health check whose database ping failed: the whole trace is kept.
    SpanSpec(name="GET /health/ready", trace=7, attributes={"http.route": "/health/ready"}),
    SpanSpec(
        name="SELECT 1",
        trace=7,
        attributes={"db.system": "postgresql", "db.statement": "SELECT 1"},
        status=(ERROR, "connection refused"),
    ),
)
KEPT_TRACES: Final = frozenset({1, 3, 5, 7})
DROPPED_TRACES: Final = frozenset({4, 6})
SECRET_WORDS: Final = ("kv-password-123", "s3cr3t-redis", "sql-literal-xyz", "session:")
CARDS: Final = ("4111111111111111", "5555555555554444")


def leaks(received: object) -> list[str]:
    """The planted secrets found anywhere in ``received`` (its ``repr``), separators tolerated."""
    text = repr(received)
    found = re.findall(r"anna\d\d", text)
    found += [word for word in SECRET_WORDS if word in text]
    found += [card for card in CARDS if re.search(r"[^0-9A-Za-z]{0,3}".join(card), text)]
    return found


def fake_span(sdk: ModuleType, spec: SpanSpec) -> Any:
    """``spec`` as fake rotel objects."""
    attributes = [
        (key, sdk.EMPTY if value is EMPTY else value) for key, value in spec.attributes.items()
    ]
    return sdk.Span(
        spec.name,
        attributes,
        trace=spec.trace,
        events=spec.events,
        links=spec.links,
        status=spec.status,
    )


@pytest.fixture
def sdk(monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    """The fake rotel_sdk common module, installed where the processor imports it."""
    module = ModuleType("fake_rotel_sdk")
    exec(FAKE_ROTEL_SDK, module.__dict__)  # our own source, defined above
    monkeypatch.setitem(sys.modules, "rotel_sdk.open_telemetry.common.v1", module)
    return module


@pytest.fixture
def stderr() -> io.StringIO:
    return io.StringIO()


@pytest.fixture
def processor(stderr: io.StringIO) -> RotelProcessor:
    return RotelProcessor(stream=stderr)


def run(processor: RotelProcessor, sdk: ModuleType, *spans: Any) -> list[dict[str, Any]]:
    """Process one batch of fake spans; every span that is left, dumped."""
    batch = sdk.ResourceSpans(spans)
    processor.process_spans(batch)
    return [sdk.dump(span) for scope in batch.scope_spans for span in scope.spans]


# --- the processor's rules, on plain values ------------------------------------------------


@pytest.mark.parametrize(
    ("attributes", "health"),
    [
        ({"http.route": "/healthz"}, True),
        ({"http.route": "/healthz/"}, True),
        ({"url.path": "/health/"}, True),
        ({"http.target": "/readyz?verbose=1"}, True),
        ({"http.route": "/api/rsvp/{rsvp_id}", "user_agent.original": "kube-probe/1.30"}, False),
        ({"http.route": "/api/rsvp/{rsvp_id}", "url.path": "/healthz"}, False),
        ({"url.path": "/api/health-checks/venue"}, False),
        ({"user_agent.original": "ELB-HealthChecker/2.0"}, False),
        ({}, False),
    ],
)
def test_health_checks_are_recognised_by_route(attributes: dict[str, object], health: bool) -> None:
    """http.route decides, else the path; a probe's user agent alone never does."""
    assert is_health_check(attributes) is health


def test_health_check_routes_come_from_the_environment() -> None:
    """The variable replaces the default routes; set and empty, it turns dropping off."""
    assert health_check_routes({}) == HEALTH_CHECK_PATHS
    configured = {HEALTH_CHECK_ROUTES_ENV: " /status/ , /internal/alive"}
    assert health_check_routes(configured) == {"/status", "/internal/alive"}
    assert health_check_routes({HEALTH_CHECK_ROUTES_ENV: ""}) == frozenset()
    assert is_health_check({"http.route": "/status"}, health_check_routes(configured))


def test_a_health_check_route_that_is_not_a_route_is_refused() -> None:
    """An entry without a leading slash raises, naming the variable."""
    with pytest.raises(ValueError, match=HEALTH_CHECK_ROUTES_ENV):
        health_check_routes({HEALTH_CHECK_ROUTES_ENV: "/healthz,healthz"})


@pytest.mark.parametrize(
    ("attributes", "status_code", "failed"),
    [
        ({}, ERROR, True),
        ({"http.response.status_code": 500}, 0, True),
        ({"http.status_code": "503"}, 0, True),
        ({"error.type": "timeout"}, 0, True),
        ({"wedding.threshold.breached": True}, 0, True),
        ({"http.response.status_code": 404, "wedding.threshold.breached": False}, 1, False),
        ({"error.type": ""}, 0, False),
    ],
)
def test_failures_are_recognised(
    attributes: dict[str, object], status_code: int, failed: bool
) -> None:
    """Status ERROR, 5xx, error.type and a breached threshold keep a trace."""
    assert is_failure(attributes, status_code=status_code) is failed


# --- the processor, on fake rotel objects --------------------------------------------------


def test_no_planted_secret_survives_the_processor(
    processor: RotelProcessor, sdk: ModuleType
) -> None:
    """Names, keys, values, events, status and links of the planted batch all come out clean."""
    left = run(processor, sdk, *(fake_span(sdk, spec) for spec in PLANTED))
    assert {span["trace"] for span in left} == KEPT_TRACES
    assert leaks(left) == []


def test_every_field_is_scrubbed_in_place(processor: RotelProcessor, sdk: ModuleType) -> None:
    """Sensitive parts are marked, a key that is personal data goes, the rest stays."""
    (span,) = run(processor, sdk, fake_span(sdk, PLANTED[0]))
    attributes = span["attributes"]
    assert span["name"] == "checkout for [redacted:email]"
    assert {key: attributes[key] for key in ("http.route", "app.plan", "app.retries")} == {
        "http.route": PAYMENT_ROUTE,
        "app.plan": "gold",
        "app.retries": 3,
    }
    assert attributes["app.note.bytes"] == "contact [redacted:email]"
    assert attributes["app.card.int"] == "[redacted:card]"
    assert sorted(attributes["app.tags"]) == ["[redacted:card]", "[redacted:email]", "vip"]
    assert attributes["app.context"] == {
        "user": {"email": "[redacted:email]", "password": "[redacted]"},
        "tier": "gold",
    }
    assert "app.empty" not in attributes
    assert not any("guest" in key for key in attributes)
    assert span["events"][0] == ("reminder sent to [redacted:email]", {"attempt": 2})
    assert span["events"][1][1]["exception.type"] == "psycopg.errors.UniqueViolation"
    assert span["links"] == [{"link.note": "from [redacted:email]", "link.kind": "follows"}]
    assert span["status"] == (ERROR, "payment failed for [redacted:email]")


def test_clean_attributes_are_not_rewritten(processor: RotelProcessor, sdk: ModuleType) -> None:
    """Only a changed attribute is replaced: the others keep their rotel objects."""
    span = sdk.Span("GET /api/venues", {"http.route": "/api/venues", "note": "anna@example.com"})
    before = list(span.attributes)
    run(processor, sdk, span)
    after = list(span.attributes)
    assert after[0] is before[0]
    assert after[1] is not before[1]


def test_an_attribute_without_a_value_is_removed_and_the_span_kept(
    processor: RotelProcessor, sdk: ModuleType
) -> None:
    """rotel panics on reading it, and forwarding it would poison the agent: it goes alone."""
    span = sdk.Span("GET /api/venues", [("app.empty", sdk.EMPTY), ("http.route", "/api/venues")])
    (left,) = run(processor, sdk, span)
    assert left["attributes"] == {"http.route": "/api/venues"}
    assert processor.counts()["unreadable_attribute"] == 1


def test_a_repeated_key_keeps_only_its_last_value(
    processor: RotelProcessor, sdk: ModuleType
) -> None:
    """An earlier duplicate cannot smuggle a value past the scrubber, which sees one per key."""
    span = sdk.Span("GET", [("note", "anna@example.com"), ("note", "fine")])
    (left,) = run(processor, sdk, span)
    assert left["attributes"] == {"note": "fine"}


def test_values_nested_too_deep_are_removed(processor: RotelProcessor, sdk: ModuleType) -> None:
    """A key-value list nested beyond the bound is not read, so it is not forwarded."""
    deep: object = "anna@example.com"
    for _ in range(20):
        deep = {"level": deep}
    (left,) = run(processor, sdk, sdk.Span("GET", {"deep": deep, "ok": 1}))
    assert left["attributes"] == {"ok": 1}


def test_a_key_value_list_left_empty_by_scrubbing_goes(
    processor: RotelProcessor, sdk: ModuleType
) -> None:
    """Keys that are emails go; a list with nothing left goes with them rather than stay empty."""
    span = sdk.Span("GET", {"app.by_email": {"anna@example.com": 1}, "app.none": {}})
    (left,) = run(processor, sdk, span)
    assert left["attributes"] == {"app.none": {}}


def test_an_unreadable_span_is_dropped_and_reported_once(
    processor: RotelProcessor, sdk: ModuleType, stderr: io.StringIO
) -> None:
    """A span whose fields cannot be read is not forwarded; stderr says so once."""

    class Broken(sdk.Span):
        @property
        def events(self) -> list[Any]:
            raise RuntimeError("rotel could not convert the events")

        @events.setter
        def events(self, value: list[Any]) -> None:
            pass

    left = run(processor, sdk, Broken("a"), Broken("b"), sdk.Span("fine"))
    assert [span["name"] for span in left] == ["fine"]
    assert stderr.getvalue().count("reading a span") == 1
    assert processor.counts()["unreadable_span"] == 2


def test_a_batch_that_cannot_be_walked_is_emptied(
    processor: RotelProcessor, sdk: ModuleType
) -> None:
    """If the batch itself cannot be read, nothing of it is forwarded."""

    class BrokenScope:
        @property
        def spans(self) -> list[Any]:
            raise RuntimeError("poisoned")

    batch = sdk.ResourceSpans([sdk.Span("GET")])
    batch.scope_spans.append(BrokenScope())
    processor.process_spans(batch)
    assert batch.scope_spans == []


def test_redactions_are_counted_by_reason(processor: RotelProcessor, sdk: ModuleType) -> None:
    """The scrubber's counts and the processor's own removals are both reported."""
    run(processor, sdk, *(fake_span(sdk, spec) for spec in PLANTED))
    counts = processor.counts()
    assert counts["email"] >= 10
    assert counts["card"] >= 4
    assert counts["health_check_span"] == 3
    assert counts["unreadable_attribute"] == 1


def test_the_module_hook_counts_what_it_redacts(sdk: ModuleType) -> None:
    """process_spans, rotel's entry point, feeds redaction_counts()."""
    before = redaction_counts().get("email", 0)
    with contextlib.redirect_stderr(io.StringIO()):
        process_spans(sdk.ResourceSpans([sdk.Span("mail anna@example.com")]))
    assert redaction_counts()["email"] == before + 1


def test_the_summary_is_written_at_most_once_a_minute_and_only_on_change() -> None:
    """A fake clock shows the rate limit: changed counts wait for the minute to pass."""
    now = [0.0]
    stream = io.StringIO()
    summary = RedactionSummary(monotonic=lambda: now[0], stream=stream)
    assert summary.maybe_report({"email": 1})
    assert not summary.maybe_report({"email": 1})
    now[0] = 59.0
    assert not summary.maybe_report({"email": 2})
    now[0] = 60.0
    assert summary.maybe_report({"email": 2, "card": 1})
    now[0] = 500.0
    assert not summary.maybe_report({"email": 2, "card": 1})
    assert stream.getvalue().splitlines() == [
        "wedsync rotel processor: redactions so far: email=1",
        "wedsync rotel processor: redactions so far: card=1 email=2",
    ]


def test_inside_the_package_the_packages_scrubber_is_used() -> None:
    """Imported normally, the module uses wedsync_otel.privacy, not a copy loaded by path."""
    assert rotel_processor.Scrubber is Scrubber
    assert rotel_processor.DROP is DROP


BY_PATH_SCRIPT: Final = """
import importlib.util, json, sys
processor_file, fake_file = sys.argv[1], sys.argv[2]
fake_spec = importlib.util.spec_from_file_location("fake_rotel_sdk", fake_file)
sdk = importlib.util.module_from_spec(fake_spec)
fake_spec.loader.exec_module(sdk)
sys.modules["rotel_sdk.open_telemetry.common.v1"] = sdk
spec = importlib.util.spec_from_file_location("rotel_processor_0", processor_file)
module = importlib.util.module_from_spec(spec)
sys.modules[spec.name] = module  # as rotel does
spec.loader.exec_module(module)
span = sdk.Span(
    "mail anna01@example.com",
    {"app.card": "4111 1111 1111 1111", "http.route": "/api/x",
     "db.system": "redis", "db.statement": "AUTH default s3cr3t-redis"},
    events=[("sent to anna02@example.com", {"exception.message": "bad anna03@example.com"})],
    status=(2, "failed for anna04@example.com"),
)
health = sdk.Span("GET /healthz", {"http.route": "/healthz"}, trace=2)
batch = sdk.ResourceSpans([span, health])
module.process_spans(batch)
print(json.dumps({
    "spans": [repr(sdk.dump(s)) for scope in batch.scope_spans for s in scope.spans],
    "counts": module.redaction_counts(),
    "third_party": sorted(
        name for name in sys.modules if name.split(".")[0] in {"wedsync_otel", "opentelemetry"}
    ),
    "privacy": sorted(name for name in sys.modules if name.startswith("_wedsync_privacy")),
    "site": [entry for entry in sys.path if "-packages" in entry],
}))
"""
SYSTEM_PYTHON: Final = Path("/usr/bin/python3")


@pytest.mark.parametrize(
    "python",
    [
        pytest.param(Path(sys.executable), id="this-python"),
        pytest.param(
            SYSTEM_PYTHON,
            id="system-python",
            marks=pytest.mark.skipif(
                not SYSTEM_PYTHON.exists(), reason="no /usr/bin/python3 (rotel's libpython)"
            ),
        ),
    ],
)
def test_run_by_path_without_site_packages_it_scrubs(python: Path, tmp_path: Path) -> None:
    """As rotel runs it (by path, standard library only), the file loads the privacy package."""
    fake = tmp_path / "fake_rotel_sdk.py"
    fake.write_text(FAKE_ROTEL_SDK)
    result = subprocess.run(
        [str(python), "-I", "-S", "-c", BY_PATH_SCRIPT, rotel_processor_path(), str(fake)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["third_party"] == []
    assert report["site"] == []
    assert "_wedsync_privacy.scrubber" in report["privacy"]
    (span,) = report["spans"]
    assert leaks(span) == []
    assert "[redacted:email]" in span
    assert report["counts"]["health_check_span"] == 1


def test_processor_path_is_this_packages_module() -> None:
    """rotel is given the installed module's file, which exists."""
    path = Path(rotel_processor_path())
    assert path.name == "rotel_processor.py"
    assert path.is_file()


# --- through a real rotel ----------------------------------------------------------------------


@pytest.fixture(scope="module")
def agent() -> Path:
    """The rotel-agent binary, once it is known to run here."""
    try:
        return rotel_agent()
    except RotelUnavailable as exc:
        require("rotel", exc)


def test_rotel_env_sets_only_variables_the_agent_reads(agent: Path) -> None:
    """Every ROTEL_* line in rotel.env (and the processor run.sh adds) is one rotel-agent reads."""
    settings = {*env_file(ROTEL_DIR / "rotel.env"), "ROTEL_OTLP_WITH_TRACE_PROCESSOR"}
    assert settings - agent_settings(agent) == set()


@dataclass(frozen=True)
class Delivered:
    """What reached the receiver behind rotel."""

    spans: list[ReceivedSpan]
    metrics: list[Metric]

    @property
    def trace_id(self) -> bytes:
        """The trace of the supplier-profile request: every span that may arrive."""
        return self.span(REQUEST).trace_id

    def span(self, name: str) -> ReceivedSpan:
        matching = [span for span in self.spans if span.name == name]
        assert len(matching) == 1, [span.name for span in self.spans]
        return matching[0]

    def points(self, name: str, **attributes: object) -> list[Any]:
        """Data points of metric ``name`` in its last export whose attributes include these."""
        exports = [metric for metric in self.metrics if metric.name == name]
        if not exports:
            return []
        latest = exports[-1]  # cumulative: the last export holds everything
        data = getattr(latest, latest.WhichOneof("data") or "")
        return [
            point
            for point in data.data_points
            if all(
                {item.key: plain(item.value) for item in point.attributes}.get(key) == value
                for key, value in attributes.items()
            )
        ]


def _run_app(endpoint: str) -> None:
    """One supplier-profile request (a cache hit and a query) and one health check, exported."""
    telemetry = wedsync_otel.configure(
        config=WeddingConfig.default(),
        service_name="wedsync-rotel-test",
        span_exporter=OTLPSpanExporter(endpoint=endpoint, insecure=True),
        metric_exporter=OTLPMetricExporter(endpoint=endpoint, insecure=True),
        metric_export_interval_millis=3_600_000,  # exported by force_flush, not by the timer
        set_global=False,
    )
    tracer = telemetry.tracer_provider.get_tracer("tests.rotel")
    try:
        request = tracer.start_span(
            REQUEST,
            kind=SpanKind.SERVER,
            attributes={
                **KEPT,
                **SENSITIVE,
                "url.query": "page=2&sort=rating",
                "app.tags": TAGS,
                attr.WEDDING_ID: "w-42",
                attr.WEDDING_DATE: "2026-09-30",
            },
            start_time=START,
        )
        request.add_event(
            "profile cache refreshed",
            {"exception.message": "stale profile for anna.smith@example.com", "retry": 1},
            timestamp=START + 5 * MS,
        )
        inside = otel_trace.set_span_in_context(request)
        cache = tracer.start_span(
            "GET",
            context=inside,
            kind=SpanKind.CLIENT,
            attributes={
                "db.system": "redis",
                "db.statement": "GET ?",
                attr.CACHE_BACKEND: "redis",
                attr.CACHE_HIT: True,
                attr.CACHE_NAMESPACE: "supplier",
            },
            start_time=START + 1 * MS,
        )
        cache.end(end_time=START + 3 * MS)
        query = tracer.start_span(
            "SELECT",
            context=inside,
            kind=SpanKind.CLIENT,
            attributes={
                "db.system": "postgresql",
                "db.statement": "SELECT name FROM suppliers WHERE id = 42",
            },
            start_time=START + 10 * MS,
        )
        query.end(end_time=START + 40 * MS)
        request.end(end_time=START + 80 * MS)

        probe = tracer.start_span(
            HEALTH,
            kind=SpanKind.SERVER,
            attributes={"http.route": "/healthz", "user_agent.original": "kube-probe/1.30"},
            start_time=START,
        )
        ping = tracer.start_span(
            "SELECT 1",
            context=otel_trace.set_span_in_context(probe),
            kind=SpanKind.CLIENT,
            attributes={"db.system": "postgresql", "db.statement": "SELECT 1"},
            start_time=START + MS,
        )
        ping.end(end_time=START + 2 * MS)
        probe.end(end_time=START + 3 * MS)
        assert telemetry.force_flush(timeout_millis=10_000)
    finally:
        telemetry.shutdown()


def _rotel_to(exporter_endpoint: str, workdir: Path) -> Rotel:
    """A running rotel forwarding to ``exporter_endpoint``; fails under CI=true when it cannot."""
    try:
        return start_rotel(exporter_endpoint=exporter_endpoint, workdir=workdir)
    except RotelUnavailable as exc:
        require("rotel", exc)


def _arrived(sink: OtlpSink) -> bool:
    names_seen = {span.name for span in sink.spans()}
    return {REQUEST, "GET", QUERY} <= names_seen and any(
        metric.name == names.SERVER_DURATION for metric in sink.metrics()
    )


@pytest.fixture(scope="module")
def delivered(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Delivered]:
    """Run the app against rotel once; rotel is stopped (and so drained) before any assertion."""
    with OtlpSink() as sink:
        with _rotel_to(sink.endpoint, tmp_path_factory.mktemp("rotel")) as rotel:
            _run_app(rotel.endpoint)
            arrived = sink.wait_until(_arrived, timeout_s=DELIVERY_TIMEOUT_S)
            status = rotel.stop()
            assert arrived, f"rotel forwarded {[s.name for s in sink.spans()]}\n{rotel.log()}"
            assert status == 0, rotel.log()
        yield Delivered(spans=sink.spans(), metrics=sink.metrics())


def test_wedding_attributes_arrive_intact(delivered: Delivered) -> None:
    """The request span's wedding.* verdict is forwarded exactly as the processor wrote it."""
    attributes = delivered.span(REQUEST).attributes
    assert {
        key: value for key, value in attributes.items() if key in attr.ENRICHMENT_ATTRIBUTES
    } == {
        attr.WEDDING_ENDPOINT: "supplier_profiles",
        attr.WEDDING_CRITICAL: False,
        attr.WEDDING_PROXIMITY: "planning",
        attr.WEDDING_DAYS_UNTIL: 106,
        attr.WEDDING_SATURDAY: False,
        attr.WEDDING_SEASON: True,
        attr.WEDDING_THRESHOLD_MS: 500.0,
        attr.WEDDING_DURATION_MS: 80.0,
        attr.WEDDING_THRESHOLD_BREACHED: False,
        attr.WEDDING_APDEX: "satisfied",
    }
    assert (attributes[attr.WEDDING_ID], attributes[attr.WEDDING_DATE]) == ("w-42", "2026-09-30")


def test_cache_and_db_rollups_arrive_intact(delivered: Delivered) -> None:
    """The request span carries its cache hit, its query and the time split between them."""
    rollups = {
        attr.ROLLUP_CACHE_HITS: 1,
        attr.ROLLUP_CACHE_MISSES: 0,
        attr.ROLLUP_CACHE_DURATION_MS: 2.0,
        attr.ROLLUP_DB_QUERIES: 1,
        attr.ROLLUP_DB_DURATION_MS: 30.0,
        attr.ROLLUP_DB_SLOW_QUERIES: 0,
        attr.ROLLUP_APP_DURATION_MS: 48.0,
    }
    attributes = delivered.span(REQUEST).attributes
    assert {key: attributes.get(key) for key in rollups} == rollups


def test_child_spans_arrive_under_their_request(delivered: Delivered) -> None:
    """The cache and database spans are forwarded, sanitised SQL and namespace included."""
    request, cache, query = (delivered.span(name) for name in (REQUEST, "GET", QUERY))
    assert {cache.trace_id, query.trace_id} == {request.trace_id}
    assert {cache.parent_span_id, query.parent_span_id} == {request.span_id}
    assert cache.attributes[attr.CACHE_NAMESPACE] == "supplier"
    assert query.attributes["db.statement"] == "SELECT name FROM suppliers WHERE id = ?"
    assert len(str(query.attributes[attr.DB_FINGERPRINT])) == 16


def test_health_check_traces_are_dropped(delivered: Delivered) -> None:
    """Neither the probe's server span nor its query reaches the receiver."""
    assert [span.name for span in delivered.spans if span.trace_id != delivered.trace_id] == []


def test_sensitive_values_do_not_arrive(delivered: Delivered) -> None:
    """Email and card values arrive as markers, query values as ?; ordinary attributes intact."""
    attributes = delivered.span(REQUEST).attributes
    for key, value in SENSITIVE.items():
        assert str(value) not in repr(delivered.spans)
        assert str(attributes[key]).startswith("[redacted"), key
    assert {key: attributes.get(key) for key in KEPT} == KEPT
    assert attributes["url.query"] == "page=?&sort=?"


def test_sensitive_event_values_do_not_arrive(delivered: Delivered) -> None:
    """An event keeps its name and harmless attributes; the email in its message is marked."""
    assert delivered.span(REQUEST).events == (
        (
            "profile cache refreshed",
            {"exception.message": "stale profile for [redacted:email]", "retry": 1},
        ),
    )


@pytest.mark.xfail(
    reason="rotel 0.0.1-alpha10 (pyrotel 0.0.1a15) reverses array attributes of every span a "
    "Python processor reads: py_transform.rs convert_value() pops the array back into a Vec",
    strict=True,
)
def test_array_attributes_keep_their_order(delivered: Delivered) -> None:
    """An array attribute arrives in the order the application wrote it."""
    assert delivered.span(REQUEST).attributes["app.tags"] == TAGS


def test_duration_histogram_arrives_intact(delivered: Delivered) -> None:
    """wedding.server.duration arrives as an exponential histogram holding the one request."""
    (point,) = delivered.points(
        names.SERVER_DURATION,
        **{attr.WEDDING_ENDPOINT: "supplier_profiles", attr.WEDDING_PROXIMITY: "planning"},
    )
    assert (point.count, point.sum, point.min, point.max) == (1, 80.0, 80.0, 80.0)
    assert sum(point.positive.bucket_counts) == 1


def test_cache_and_db_metrics_arrive_intact(delivered: Delivered) -> None:
    """The cache hit and the request's database time are counted per endpoint."""
    endpoint = {attr.WEDDING_ENDPOINT: "supplier_profiles"}
    (hits,) = delivered.points(names.CACHE_REQUESTS, **endpoint, **{names.CACHE_RESULT: "hit"})
    (db_time,) = delivered.points(names.DB_DURATION, **endpoint)
    assert hits.as_int == 1
    assert (db_time.count, db_time.sum) == (1, 30.0)


def test_apdex_counts_and_gauges_arrive(delivered: Delivered) -> None:
    """The Apdex counter and the derived p95 gauge arrive for the endpoint."""
    endpoint = {attr.WEDDING_ENDPOINT: "supplier_profiles"}
    (satisfied,) = delivered.points(
        names.APDEX_REQUESTS, **endpoint, **{attr.WEDDING_APDEX: "satisfied"}
    )
    assert satisfied.as_int == 1
    p95 = delivered.points(names.LATENCY_P95, **endpoint)
    assert p95
    assert {point.as_double for point in p95} == {80.0}


# --- planted secrets, sent as raw OTLP straight to rotel ----------------------------------------

AFTER: Final = SpanSpec(name="GET /api/after", trace=9, attributes={"http.route": "/api/after"})
"""Sent after the planted batch: it arrives only if rotel survived the batch."""


class RecordingSink(OtlpSink):
    """An `OtlpSink` that also keeps every span as received, status and links included."""

    def __init__(self) -> None:
        self._raw: list[ProtoSpan] = []
        super().__init__()

    def _add_spans(self, request: trace_service_pb2.ExportTraceServiceRequest) -> None:
        spans = [
            span
            for resource_spans in request.resource_spans
            for scope_spans in resource_spans.scope_spans
            for span in scope_spans.spans
        ]
        with self._condition:
            self._raw.extend(spans)
        super()._add_spans(request)

    def raw_spans(self) -> list[ProtoSpan]:
        with self._condition:
            return list(self._raw)


SCALAR_FIELDS: Final = ((bool, "bool_value"), (int, "int_value"), (float, "double_value"))


def proto_value(value: object) -> AnyValue:
    """A plain value as an OTLP ``AnyValue``."""
    for kind, name in SCALAR_FIELDS:  # bool first: it is an int too
        if isinstance(value, kind):
            return AnyValue(**{name: value})
    if isinstance(value, bytes):
        return AnyValue(bytes_value=value)
    if isinstance(value, tuple):
        return AnyValue(array_value=ArrayValue(values=[proto_value(item) for item in value]))
    if isinstance(value, dict):
        return AnyValue(kvlist_value=KeyValueList(values=proto_attributes(value)))
    return AnyValue(string_value=str(value))


def proto_attributes(attributes: dict[str, object]) -> list[KeyValue]:
    """Attributes as OTLP; `EMPTY` becomes a ``KeyValue`` with no value at all."""
    return [
        KeyValue(key=key) if value is EMPTY else KeyValue(key=key, value=proto_value(value))
        for key, value in attributes.items()
    ]


def proto_request(specs: tuple[SpanSpec, ...]) -> trace_service_pb2.ExportTraceServiceRequest:
    """One export request holding ``specs`` as the spans of one resource and scope."""
    spans = [
        ProtoSpan(
            trace_id=bytes([spec.trace]) * 16,
            span_id=(index + 1).to_bytes(8, "big"),
            name=spec.name,
            kind=ProtoSpan.SPAN_KIND_SERVER,
            start_time_unix_nano=START,
            end_time_unix_nano=START + 5 * MS,
            attributes=proto_attributes(spec.attributes),
            events=[
                ProtoSpan.Event(
                    name=name, time_unix_nano=START + MS, attributes=proto_attributes(attributes)
                )
                for name, attributes in spec.events
            ],
            links=[
                ProtoSpan.Link(
                    trace_id=bytes([spec.trace + 100]) * 16,
                    span_id=b"\x01" * 8,
                    attributes=proto_attributes(attributes),
                )
                for attributes in spec.links
            ],
            status=ProtoStatus(code=spec.status[0], message=spec.status[1])
            if spec.status is not None
            else None,
        )
        for index, spec in enumerate(specs)
    ]
    return trace_service_pb2.ExportTraceServiceRequest(
        resource_spans=[
            ResourceSpans(
                resource=Resource(attributes=proto_attributes({"service.name": "planted"})),
                scope_spans=[ScopeSpans(spans=spans)],
            )
        ]
    )


def received(span: ProtoSpan) -> dict[str, Any]:
    """Every field of a received span that could carry what was planted, as plain values."""
    return {
        "name": span.name,
        "trace": span.trace_id[0],
        "attributes": {item.key: plain(item.value) for item in span.attributes},
        "events": [
            (event.name, {item.key: plain(item.value) for item in event.attributes})
            for event in span.events
        ],
        "links": [{item.key: plain(item.value) for item in link.attributes} for link in span.links],
        "status": (span.status.code, span.status.message),
    }


@dataclass(frozen=True)
class Planted:
    """What reached the receiver of the planted batch, and rotel's log."""

    spans: list[dict[str, Any]]
    log: str

    def traces(self) -> set[int]:
        return {span["trace"] for span in self.spans}

    def of_trace(self, trace: int) -> list[dict[str, Any]]:
        return [span for span in self.spans if span["trace"] == trace]


@pytest.fixture(scope="module")
def planted(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Planted]:
    """Send the planted batch, then `AFTER`, as raw OTLP to rotel; stop rotel, then assert."""
    with RecordingSink() as sink:
        with _rotel_to(sink.endpoint, tmp_path_factory.mktemp("planted")) as rotel:
            with grpc.insecure_channel(rotel.endpoint) as channel:
                stub = trace_service_pb2_grpc.TraceServiceStub(channel)  # type: ignore[no-untyped-call]
                stub.Export(proto_request(PLANTED), timeout=DELIVERY_TIMEOUT_S)
                stub.Export(proto_request((AFTER,)), timeout=DELIVERY_TIMEOUT_S)
            expected = KEPT_TRACES | {AFTER.trace}
            arrived = sink.wait_until(
                lambda sink: expected <= {span.trace_id[0] for span in sink.spans()},
                timeout_s=DELIVERY_TIMEOUT_S,
            )
            status = rotel.stop()
            assert arrived, f"rotel forwarded {[s.name for s in sink.spans()]}\n{rotel.log()}"
            assert status == 0, rotel.log()
            log = rotel.log()
        yield Planted(spans=[received(span) for span in sink.raw_spans()], log=log)


def test_no_planted_secret_arrives_through_rotel(planted: Planted) -> None:
    """Nothing planted in any field of any span survives the real rotel agent."""
    assert leaks(planted.spans) == []


def test_rotel_marks_what_it_redacts_and_keeps_the_rest(planted: Planted) -> None:
    """The planted request arrives scrubbed field by field, its ordinary attributes intact."""
    (request,) = [span for span in planted.of_trace(1) if span["name"].startswith("checkout")]
    attributes = request["attributes"]
    assert request["name"] == "checkout for [redacted:email]"
    assert {key: attributes[key] for key in ("http.route", "app.plan", "app.retries")} == {
        "http.route": PAYMENT_ROUTE,
        "app.plan": "gold",
        "app.retries": 3,
    }
    assert attributes["app.card.int"] == "[redacted:card]"
    assert attributes["app.note.bytes"] == "contact [redacted:email]"
    assert attributes["app.context"] == {
        "user": {"email": "[redacted:email]", "password": "[redacted]"},
        "tier": "gold",
    }
    assert "app.empty" not in attributes
    assert not any("guest" in key for key in attributes)
    assert request["events"][0] == ("reminder sent to [redacted:email]", {"attempt": 2})
    assert request["links"] == [{"link.note": "from [redacted:email]", "link.kind": "follows"}]
    assert request["status"] == (ERROR, "payment failed for [redacted:email]")


def test_cache_and_sql_spans_arrive_without_their_arguments(planted: Planted) -> None:
    """A Redis command string and a SQL statement lose their keys, values and literals."""
    by_system = {span["attributes"].get("db.system"): span for span in planted.of_trace(1)}
    assert by_system["redis"]["attributes"]["db.statement"] == "SET ? ? ? ?"
    assert by_system["redis"]["name"] == "SET"
    assert by_system["postgresql"]["attributes"]["db.statement"] == (
        "SELECT * FROM guests WHERE email = ? AND code = ?"
    )


def test_a_probe_user_agent_does_not_hide_a_failing_request(planted: Planted) -> None:
    """kube-probe/1.0 on an erroring /api/payments/charge is forwarded, user agent and all."""
    (charge,) = planted.of_trace(3)
    assert charge["attributes"]["user_agent.original"] == "kube-probe/1.0"
    assert charge["status"] == (ERROR, "upstream timeout")


def test_health_check_traces_are_dropped_by_route(planted: Planted) -> None:
    """/healthz with its query, and /livez/ by path, are dropped with every span of the trace."""
    assert planted.traces() & DROPPED_TRACES == set()


def test_a_health_check_that_failed_is_kept(planted: Planted) -> None:
    """A 503 from /readyz, and a /health/ready whose ping failed, arrive whole."""
    assert [span["attributes"]["http.route"] for span in planted.of_trace(5)] == ["/readyz"]
    assert len(planted.of_trace(7)) == 2


def test_an_attribute_without_a_value_does_not_stop_rotel(planted: Planted) -> None:
    """rotel panics on reading it (and logs so); the processor removes it and rotel goes on."""
    assert AFTER.trace in planted.traces()
    assert "early exit" not in planted.log
    assert "PoisonError" not in planted.log


def test_rotel_logs_a_redaction_summary(planted: Planted) -> None:
    """With no metrics API for processors, the counts reach rotel's log as one line."""
    (line,) = [line for line in planted.log.splitlines() if "redactions so far" in line]
    assert "email=" in line
    assert "health_check_span=3" in line
