"""The Redis hooks: cache attributes on the contrib's spans, sync and asyncio, never a key."""

from __future__ import annotations

import asyncio
import re
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import redis
import redis.asyncio
from hypothesis import given
from hypothesis import strategies as st
from opentelemetry.instrumentation.redis import RedisInstrumentor
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import INVALID_SPAN, INVALID_SPAN_CONTEXT, NonRecordingSpan

from wedsync_otel import _safety
from wedsync_otel.attributes import (
    CACHE_BACKEND,
    CACHE_HIT,
    CACHE_HITS,
    CACHE_MISSES,
    CACHE_NAMESPACE,
    CACHE_TTL_S,
)
from wedsync_otel.instrumentation.redis_hooks import (
    OTHER_NAMESPACE,
    hook_errors,
    instrument_redis,
    key_namespace,
    request_hook,
    response_hook,
    ttl_s,
    uninstrument_redis,
)

Client = redis.Redis


class Keys:
    """Unique keys for one test, remembered so that none may appear in a span attribute."""

    def __init__(self) -> None:
        self.made: list[str] = []

    def __call__(self, namespace: str, *, secret: str = "") -> str:
        key = f"{namespace}:{secret}{uuid.uuid4().hex}"
        self.made.append(key)
        return key


def leaked_keys(spans: tuple[ReadableSpan, ...], keys: list[str]) -> list[tuple[str, str, str]]:
    """(span, attribute, key) for every key found in any attribute value of any span."""
    found = []
    for span in spans:
        for name, value in (span.attributes or {}).items():
            texts = value if isinstance(value, tuple) else (value,)
            for text in (str(item) for item in texts):
                found.extend((span.name, name, key) for key in keys if key in text)
    return found


@pytest.fixture
def exporter() -> Iterator[InMemorySpanExporter]:
    assert not RedisInstrumentor().is_instrumented_by_opentelemetry, "Redis left instrumented"
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    instrument_redis(tracer_provider=provider)
    yield exporter
    uninstrument_redis()
    provider.shutdown()


@pytest.fixture
def client(redis_url: str, exporter: InMemorySpanExporter) -> Iterator[Client]:
    with redis.Redis.from_url(redis_url) as client:
        yield client


@pytest.fixture
def keys(client: Client, exporter: InMemorySpanExporter) -> Iterator[Keys]:
    """Every test's keys: checked against every exported attribute, then deleted."""
    keys = Keys()
    yield keys
    assert leaked_keys(exporter.get_finished_spans(), keys.made) == []
    if keys.made:
        client.delete(*keys.made)


def only(exporter: InMemorySpanExporter, name: str) -> ReadableSpan:
    matching = [span for span in exporter.get_finished_spans() if span.name == name]
    assert len(matching) == 1, [span.name for span in exporter.get_finished_spans()]
    return matching[0]


# --- hits and misses ------------------------------------------------------------------------

Setup = Callable[[Client, str], Any]
READS: dict[str, tuple[Setup, Setup]] = {
    "GET": (lambda c, k: c.set(k, "x"), lambda c, k: c.get(k)),
    "GETEX": (lambda c, k: c.set(k, "x"), lambda c, k: c.getex(k)),
    "HGET": (lambda c, k: c.hset(k, "f", "x"), lambda c, k: c.hget(k, "f")),
    "HEXISTS": (lambda c, k: c.hset(k, "f", "x"), lambda c, k: c.hexists(k, "f")),
    "EXISTS": (lambda c, k: c.set(k, "x"), lambda c, k: c.exists(k)),
}


@pytest.mark.parametrize("present", [True, False], ids=["hit", "miss"])
@pytest.mark.parametrize("command", sorted(READS))
def test_single_key_read_sets_cache_hit(
    command: str, present: bool, client: Client, keys: Keys, exporter: InMemorySpanExporter
) -> None:
    """A single-key read sets cache.hit to whether its key (or field) was there."""
    key = keys("supplier")
    setup, read = READS[command]
    if present:
        setup(client, key)
    exporter.clear()
    read(client, key)
    span = only(exporter, command)
    assert span.attributes is not None
    assert span.attributes[CACHE_HIT] is present
    assert CACHE_HITS not in span.attributes


def test_exists_over_several_keys_sets_no_hit(
    client: Client, keys: Keys, exporter: InMemorySpanExporter
) -> None:
    """EXISTS over several keys counts keys, not one hit, so it sets no cache.hit."""
    first, second = keys("supplier"), keys("supplier")
    client.set(first, "x")
    exporter.clear()
    assert client.exists(first, second) == 1
    assert CACHE_HIT not in (only(exporter, "EXISTS").attributes or {})


def test_mget_counts_hits_and_misses(
    client: Client, keys: Keys, exporter: InMemorySpanExporter
) -> None:
    """MGET sets cache.hits and cache.misses from the None entries of its reply."""
    found = [keys("supplier"), keys("supplier")]
    client.mset(dict.fromkeys(found, "x"))
    exporter.clear()
    client.mget([*found, keys("supplier")])
    attributes = only(exporter, "MGET").attributes or {}
    assert (attributes[CACHE_HITS], attributes[CACHE_MISSES]) == (2, 1)
    assert CACHE_HIT not in attributes


def test_hmget_counts_hits_and_misses(
    client: Client, keys: Keys, exporter: InMemorySpanExporter
) -> None:
    """HMGET counts each requested field as a hit or a miss."""
    key = keys("venue")
    client.hset(key, mapping={"monday": "free"})
    exporter.clear()
    client.hmget(key, ["monday", "tuesday", "wednesday"])
    attributes = only(exporter, "HMGET").attributes or {}
    assert (attributes[CACHE_HITS], attributes[CACHE_MISSES]) == (1, 2)


# --- namespaces -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("key", "namespace"),
    [
        ("supplier:42", "supplier"),
        (b"supplier:42", "supplier"),
        (bytearray(b"venue:9:availability:2026-06-20"), "venue"),
        ("a.b-c_d:1", "a.b-c_d"),
        ("x" * 64 + ":1", "x" * 64),
        ("x" * 65 + ":1", OTHER_NAMESPACE),
        ("supplier", OTHER_NAMESPACE),
        ("ada@example.com", OTHER_NAMESPACE),
        ("guest list:1", OTHER_NAMESPACE),
        ("gäste:1", OTHER_NAMESPACE),
        (b"\xff\xfe:1", OTHER_NAMESPACE),
        (":1", OTHER_NAMESPACE),
        ("", OTHER_NAMESPACE),
        (42, OTHER_NAMESPACE),
        (None, OTHER_NAMESPACE),
    ],
)
def test_key_namespace_table(key: object, namespace: str) -> None:
    """The namespace is the first segment when it is 1-64 safe characters before a colon."""
    assert key_namespace(key) == namespace


@given(st.one_of(st.text(), st.binary()))
def test_key_namespace_is_never_the_key(key: str | bytes) -> None:
    """Whatever the key, the namespace is bounded, safe, and never the key itself."""
    namespace = key_namespace(key)
    assert re.fullmatch(r"[A-Za-z0-9_.-]{1,64}", namespace)
    assert namespace in {OTHER_NAMESPACE} or namespace not in {key, key_text(key)}


def key_text(key: str | bytes) -> str:
    return key if isinstance(key, str) else key.decode("latin-1")


def test_span_namespace_is_the_keys_first_segment(
    client: Client, keys: Keys, exporter: InMemorySpanExporter
) -> None:
    """A command's span carries the namespace of its key."""
    key = keys("supplier")
    exporter.clear()
    client.get(key.encode())
    assert (only(exporter, "GET").attributes or {})[CACHE_NAMESPACE] == "supplier"


def test_multi_key_namespace_is_the_first_keys(
    client: Client, keys: Keys, exporter: InMemorySpanExporter
) -> None:
    """A multi-key command's span carries the namespace of its first key."""
    exporter.clear()
    client.mget([keys("venue"), keys("supplier")])
    assert (only(exporter, "MGET").attributes or {})[CACHE_NAMESPACE] == "venue"


def test_keyless_command_has_no_namespace(client: Client, exporter: InMemorySpanExporter) -> None:
    """A command whose first argument is not a key (ECHO, AUTH, ...) gets no namespace."""
    exporter.clear()
    client.execute_command("ECHO", "password:hunter2")
    attributes = only(exporter, "ECHO").attributes or {}
    assert CACHE_NAMESPACE not in attributes
    assert attributes[CACHE_BACKEND] == "redis"


# --- TTLs -----------------------------------------------------------------------------------

WRITES: dict[str, tuple[Setup, float]] = {
    "SET EX": (lambda c, k: c.set(k, "x", ex=30), 30.0),
    "SET PX": (lambda c, k: c.set(k, "x", px=1500), 1.5),
    "set ex (bytes, lower case)": (
        lambda c, k: c.execute_command("set", k, "x", b"ex", b"7"),
        7.0,
    ),
    "SET NX EX": (lambda c, k: c.set(k, "x", nx=True, ex=12), 12.0),
    "SETEX": (lambda c, k: c.execute_command("SETEX", k, 45, "x"), 45.0),
    "PSETEX": (lambda c, k: c.execute_command("PSETEX", k, 2500, "x"), 2.5),
    "EXPIRE": (lambda c, k: c.set(k, "x") and c.expire(k, 40), 40.0),
    "PEXPIRE": (lambda c, k: c.set(k, "x") and c.pexpire(k, 500), 0.5),
    "GETEX EX": (lambda c, k: c.set(k, "x") and c.getex(k, ex=20), 20.0),
}


@pytest.mark.parametrize("write", sorted(WRITES))
def test_ttl_attribute_of_expiring_writes(
    write: str, client: Client, keys: Keys, exporter: InMemorySpanExporter
) -> None:
    """SET EX/PX, SETEX, PSETEX, EXPIRE, PEXPIRE and GETEX EX set cache.ttl_s in seconds."""
    run, expected = WRITES[write]
    run(client, keys("timeline"))
    ttls = [
        (span.attributes or {})[CACHE_TTL_S]
        for span in exporter.get_finished_spans()
        if CACHE_TTL_S in (span.attributes or {})
    ]
    assert ttls == [expected]


def test_set_exat_ttl_counts_from_now(
    client: Client, keys: Keys, exporter: InMemorySpanExporter
) -> None:
    """SET EXAT sets cache.ttl_s to the seconds left until the given instant.

    The hook reads the wall clock at some moment during the call, so the TTL
    lies between what was left just before it and just after it, on any machine.
    """
    exporter.clear()
    before_s = time.time()
    expires_at_s = int(before_s) + 100
    client.set(keys("timeline"), "x", exat=expires_at_s)
    after_s = time.time()
    ttl = (only(exporter, "SET").attributes or {})[CACHE_TTL_S]
    assert isinstance(ttl, float)
    assert expires_at_s - after_s <= ttl <= expires_at_s - before_s


def test_set_without_expiry_has_no_ttl(
    client: Client, keys: Keys, exporter: InMemorySpanExporter
) -> None:
    """A SET without an expiry sets no cache.ttl_s."""
    exporter.clear()
    client.set(keys("timeline"), "EX")
    assert CACHE_TTL_S not in (only(exporter, "SET").attributes or {})


@pytest.mark.parametrize(
    "args",
    [
        ("SET", "k:1", "v", "EX"),
        ("SET", "k:1", "v", "EX", "soon"),
        ("SET", "k:1", "v", "EX", float("nan")),
        ("SET", "k:1", "v", "EX", True),
        ("SET", "k:1", "v", "EX", "9" * 40),
        ("SET", "k:1", "EX", "5"),
        ("EXPIRE", "k:1"),
        ("EXPIRE", "k:1", object()),
    ],
)
def test_unreadable_ttl_is_left_out(args: tuple[object, ...]) -> None:
    """A TTL argument that is missing or not a finite number gives no TTL."""
    assert ttl_s(str(args[0]), args) is None


# --- every span, pipelines and asyncio ------------------------------------------------------


def test_pipeline_span_carries_backend_only(
    client: Client, keys: Keys, exporter: InMemorySpanExporter
) -> None:
    """A pipeline's span gets cache.backend but no hit: its replies cannot be matched to keys."""
    key = keys("supplier")
    exporter.clear()
    with client.pipeline() as pipe:
        pipe.set(key, "x")
        pipe.get(key)
        pipe.execute()
    attributes = only(exporter, "SET GET").attributes or {}
    assert attributes[CACHE_BACKEND] == "redis"
    assert not {CACHE_HIT, CACHE_HITS, CACHE_MISSES, CACHE_NAMESPACE} & set(attributes)


def test_every_redis_span_carries_the_backend(
    client: Client, keys: Keys, exporter: InMemorySpanExporter
) -> None:
    """Every span the contrib makes for Redis, commands and pipelines, says cache.backend=redis."""
    key = keys("supplier")
    client.set(key, "x")
    client.get(key)
    client.delete(key)
    with client.pipeline(transaction=False) as pipe:
        pipe.get(key)
        pipe.execute()
    spans = exporter.get_finished_spans()
    assert len(spans) >= 4
    assert {(span.attributes or {}).get(CACHE_BACKEND) for span in spans} == {"redis"}


def test_async_get_sets_cache_hit(
    redis_url: str, keys: Keys, exporter: InMemorySpanExporter
) -> None:
    """The asyncio client's GET spans say hit for a present key and miss for an absent one."""
    present, absent = keys("supplier"), keys("supplier")

    async def scenario() -> None:
        client = redis.asyncio.Redis.from_url(redis_url)
        try:
            await client.set(present, "x")
            exporter.clear()
            await client.get(present)
            await client.get(absent)
        finally:
            await client.aclose()

    asyncio.run(scenario())
    gets = [span for span in exporter.get_finished_spans() if span.name == "GET"]
    assert [(span.attributes or {})[CACHE_HIT] for span in gets] == [True, False]
    assert {(span.attributes or {})[CACHE_NAMESPACE] for span in gets} == {"supplier"}


def test_async_mget_and_pipeline_spans(
    redis_url: str, keys: Keys, exporter: InMemorySpanExporter
) -> None:
    """The asyncio client's MGET counts hits and misses and its pipeline span names the backend."""
    present, absent = keys("supplier"), keys("supplier")

    async def scenario() -> None:
        client = redis.asyncio.Redis.from_url(redis_url)
        try:
            await client.set(present, "x")
            exporter.clear()
            await client.mget([present, absent])
            async with client.pipeline() as pipe:
                pipe.get(present)
                pipe.get(absent)
                await pipe.execute()
        finally:
            await client.aclose()

    asyncio.run(scenario())
    mget = only(exporter, "MGET").attributes or {}
    assert (mget[CACHE_HITS], mget[CACHE_MISSES]) == (1, 1)
    assert (only(exporter, "GET GET").attributes or {})[CACHE_BACKEND] == "redis"


def test_no_key_appears_in_any_attribute(
    redis_url: str, client: Client, keys: Keys, exporter: InMemorySpanExporter
) -> None:
    """Keys holding ids and e-mail addresses appear in no attribute of any span, sync or async."""
    guest = keys("guest", secret="ada.lovelace@example.com:")
    supplier = keys("supplier", secret="42:")
    client.set(guest, "x", ex=60)
    client.get(guest)
    client.mget([guest, supplier])
    client.hset(supplier, "name", "Flora")
    client.hget(supplier, "name")
    client.hmget(supplier, ["name", "phone"])
    client.exists(guest, supplier)
    client.expire(supplier, 60)
    with client.pipeline() as pipe:
        pipe.get(guest)
        pipe.set(supplier, "y")
        pipe.execute()

    async def scenario() -> None:
        async_client = redis.asyncio.Redis.from_url(redis_url)
        try:
            await async_client.get(guest)
            await async_client.set(supplier, "z", px=5000)
        finally:
            await async_client.aclose()

    asyncio.run(scenario())
    spans = exporter.get_finished_spans()
    assert len(spans) >= 10
    secrets = [*keys.made, "ada.lovelace@example.com", "ada.lovelace"]
    assert leaked_keys(spans, secrets) == []
    assert not [span.name for span in spans if any(secret in span.name for secret in secrets)]


# --- robustness -----------------------------------------------------------------------------


def recording_span(exporter: InMemorySpanExporter, name: str, args_length: int) -> Any:
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    return provider.get_tracer("tests").start_span(
        name, attributes={"db.redis.args_length": args_length}
    )


GARBAGE_ARGS: list[object] = [
    None,
    "GET supplier:1",
    b"GET",
    42,
    (),
    (None,),
    (None, None),
    (object(), object()),
    (b"\xff" * 100, b"\xfe" * 100),
    ("GET",),
    ("SET", "k:1", "v", "EX"),
    ("SET", "k:1", "v", "PX", float("inf")),
    ("EXPIRE", ["k:1"], {"ttl": 1}),
    ["MGET", 1, 2.5, None],
]


@pytest.mark.parametrize("args", GARBAGE_ARGS, ids=repr)
def test_request_hook_ignores_garbage(args: Any, exporter: InMemorySpanExporter) -> None:
    """The request hook handed garbage arguments, spans or instances neither raises nor counts."""
    errors = hook_errors()
    span = recording_span(exporter, "GET", 2)
    for target in (span, INVALID_SPAN, None, "span"):
        request_hook(target, object(), args, None)  # type: ignore[arg-type]
        request_hook(target, None, args, {"weird": object()})
    span.end()
    assert hook_errors() == errors


@pytest.mark.parametrize(
    ("name", "args_length", "response"),
    [
        ("GET", 2, object()),
        ("EXISTS", 2, "yes"),
        ("EXISTS", "two", 1),
        ("MGET", 3, 7),
        ("MGET", 3, {"a": None}),
        ("HMGET", 3, None),
        ("\x00" * 100, 2, None),
        ("FT.SEARCH", 3, [1, 2]),
    ],
)
def test_response_hook_ignores_garbage(
    name: str, args_length: Any, response: object, exporter: InMemorySpanExporter
) -> None:
    """The response hook handed unexpected replies or spans neither raises nor counts."""
    errors = hook_errors()
    span = recording_span(exporter, name, args_length)
    for target in (span, INVALID_SPAN, None, 3.5):
        response_hook(target, None, response)  # type: ignore[arg-type]
    span.end()
    assert hook_errors() == errors


class _ExplodingSpan(NonRecordingSpan):
    """A span that claims to record and then fails to, as a broken SDK might."""

    def is_recording(self) -> bool:
        return True

    def set_attribute(self, key: str, value: object) -> None:
        raise RuntimeError("exporter on fire")


def test_a_failing_hook_is_counted_not_raised(monkeypatch: pytest.MonkeyPatch) -> None:
    """An error inside a hook is counted in hook_errors() and never reaches the caller."""
    monkeypatch.setenv(_safety.RAISE_INTERNAL_ERRORS_ENV, "0")
    errors = hook_errors()
    span = _ExplodingSpan(INVALID_SPAN_CONTEXT)
    request_hook(span, None, ("GET", "supplier:1"), {})
    response_hook(span, None, b"x")
    assert hook_errors() == errors + 2


# --- instrument / uninstrument --------------------------------------------------------------


def test_instrument_redis_is_idempotent(
    client: Client, keys: Keys, exporter: InMemorySpanExporter
) -> None:
    """A second instrument_redis changes nothing: one span per command, to the first provider."""
    other = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(other))
    instrument_redis(tracer_provider=provider)
    exporter.clear()
    client.get(keys("supplier"))
    assert [span.name for span in exporter.get_finished_spans()] == ["GET"]
    assert other.get_finished_spans() == ()


def test_uninstrument_redis_stops_the_spans(
    client: Client, keys: Keys, exporter: InMemorySpanExporter
) -> None:
    """After uninstrument_redis, commands make no spans; a second call is a no-op."""
    uninstrument_redis()
    uninstrument_redis()
    exporter.clear()
    client.get(keys("supplier"))
    assert exporter.get_finished_spans() == ()
    assert not RedisInstrumentor().is_instrumented_by_opentelemetry
