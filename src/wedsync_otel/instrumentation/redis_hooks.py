"""Hooks for the contrib Redis instrumentation: cache hits, key namespaces and TTLs.

The contrib already names the span after the command and sanitises
``db.statement`` (``GET ?``); these hooks add the ``cache.*`` attributes of
`wedsync_otel.attributes` so the span processor can roll cache work up onto
the request.

Nothing is carried from the request hook to the response hook in memory:
the request hook writes what it learns from the arguments straight onto the
span (namespace and TTL are safe to export), and the response hook reads the
command back from the span name and the key count from
``db.redis.args_length``, both written by the contrib. So there is no table
to bound or to leak when a command raises and the response hook never runs.

Pipelines: the contrib calls only the response hook for ``Pipeline.execute``
(sync and asyncio), with the list of replies and a command stack that redis-py
has already reset, so pipeline spans get ``cache.backend`` and nothing else.
A command run immediately on a watching pipeline goes through the command
path and gets everything.
"""

from __future__ import annotations

import itertools
import math
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Final, TypeAlias

from opentelemetry.instrumentation.redis import RedisInstrumentor
from opentelemetry.trace import Span, TracerProvider

from wedsync_otel import attributes as attr
from wedsync_otel._safety import log_internal_error
from wedsync_otel.cache_keys import OTHER_NAMESPACE, key_namespace

__all__ = [
    "OTHER_NAMESPACE",
    "RequestHook",
    "ResponseHook",
    "hook_errors",
    "instrument_redis",
    "key_namespace",
    "read_result",
    "request_hook",
    "response_hook",
    "ttl_s",
    "uninstrument_redis",
]

RequestHook: TypeAlias = Callable[[Span, object, Sequence[object], Mapping[str, object]], None]
"""``(span, client or pipeline, command arguments, options)``; args[0] is the command."""
ResponseHook: TypeAlias = Callable[[Span, object, object], None]
"""``(span, client or pipeline, reply)``; a pipeline's reply is the list of its replies."""

BACKEND: Final = "redis"

_MAX_TOKEN_CHARS = 32  # longer than any command name, SET option or number: not one
_MAX_SET_OPTIONS = 8  # SET key value [NX|XX] [GET] [EX n|PX n|EXAT n|PXAT n|KEEPTTL]

# Written by the contrib on command spans (not on pipeline spans); not part of our contract.
_CONTRIB_ARGS_LENGTH: Final = "db.redis.args_length"

_HIT_IF_NOT_NONE: Final = frozenset({"GET", "HGET", "GETEX"})
_HIT_IF_POSITIVE: Final = frozenset({"HEXISTS", "EXISTS"})
# EXISTS with several keys counts the keys found, which is not one hit or miss.
_SINGLE_KEY_ONLY: Final = frozenset({"EXISTS"})
_COUNTED: Final = frozenset({"MGET", "HMGET"})

# Commands whose first argument is not a key. Some carry secrets (AUTH, HELLO, ACL,
# CONFIG, MIGRATE), so not even the bounded first segment of it is exported.
_NO_KEY: Final = frozenset(
    {
        "ACL", "AUTH", "BGREWRITEAOF", "BGSAVE", "BITOP", "CLIENT", "CLUSTER", "COMMAND",
        "CONFIG", "DBSIZE", "DEBUG", "DISCARD", "ECHO", "EVAL", "EVALSHA", "EVALSHA_RO",
        "EVAL_RO", "EXEC", "FCALL", "FCALL_RO", "FLUSHALL", "FLUSHDB", "FUNCTION", "HELLO",
        "INFO", "KEYS", "LASTSAVE", "LATENCY", "LCS", "MEMORY", "MIGRATE", "MODULE",
        "MONITOR", "MULTI", "OBJECT", "PING", "PSUBSCRIBE", "PUBSUB", "QUIT", "READONLY",
        "READWRITE", "RESET", "ROLE", "SAVE", "SCAN", "SCRIPT", "SELECT", "SHUTDOWN",
        "SINTERCARD", "SLOWLOG", "SUBSCRIBE", "SWAPDB", "TIME", "UNWATCH", "WAIT", "XREAD",
        "XREADGROUP", "ZDIFF", "ZINTER", "ZINTERCARD", "ZUNION",
    }
)  # fmt: skip

# Commands whose TTL is the argument after the key, with its unit in seconds.
_RELATIVE_TTL_ARG: Final = {"SETEX": 1.0, "PSETEX": 0.001, "EXPIRE": 1.0, "PEXPIRE": 0.001}
_ABSOLUTE_TTL_ARG: Final = {"EXPIREAT": 1.0, "PEXPIREAT": 0.001}
# SET and GETEX options, and where their options start in args.
_OPTIONS_FROM: Final = {"SET": 3, "GETEX": 2}
_RELATIVE_OPTIONS: Final = {"EX": 1.0, "PX": 0.001}
_ABSOLUTE_OPTIONS: Final = {"EXAT": 1.0, "PXAT": 0.001}


class _Counter:
    """A thread-safe count."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._value = 0

    def add(self) -> None:
        with self._lock:
            self._value += 1

    @property
    def value(self) -> int:
        return self._value


_errors = _Counter()


def hook_errors() -> int:
    """How many times a hook caught an error of its own since the process started."""
    return _errors.value


# --- pure helpers ---------------------------------------------------------------------------


def _token(value: object) -> str | None:
    """A command name or option, upper-cased, from str or bytes; ``None`` if it is not one."""
    if isinstance(value, bytes | bytearray) and len(value) <= _MAX_TOKEN_CHARS:
        return bytes(value).decode("ascii", errors="replace").upper()
    if isinstance(value, str) and len(value) <= _MAX_TOKEN_CHARS:
        return value.upper()
    return None


def _number(value: object) -> float | None:
    """A finite number from an int, float, str or bytes argument; ``None`` otherwise."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        number = float(value)
    elif isinstance(value, str | bytes) and len(value) <= _MAX_TOKEN_CHARS:
        try:
            number = float(value)
        except ValueError:
            return None
    else:
        return None
    return number if math.isfinite(number) else None


def _ttl(value: object, unit_s: float, *, absolute: bool) -> float | None:
    number = _number(value)
    if number is None:
        return None
    seconds = number * unit_s
    return max(0.0, seconds - time.time()) if absolute else seconds


def ttl_s(command: str, args: Sequence[object]) -> float | None:
    """The TTL, in seconds, that a SET/GETEX/SETEX/EXPIRE-like command writes; else ``None``."""
    if command in _RELATIVE_TTL_ARG and len(args) > 2:
        return _ttl(args[2], _RELATIVE_TTL_ARG[command], absolute=False)
    if command in _ABSOLUTE_TTL_ARG and len(args) > 2:
        return _ttl(args[2], _ABSOLUTE_TTL_ARG[command], absolute=True)
    start = _OPTIONS_FROM.get(command)
    if start is None:
        return None
    options = args[start : start + _MAX_SET_OPTIONS]
    for option, value in itertools.pairwise(options):
        name = _token(option)
        if name in _RELATIVE_OPTIONS:
            return _ttl(value, _RELATIVE_OPTIONS[name], absolute=False)
        if name in _ABSOLUTE_OPTIONS:
            return _ttl(value, _ABSOLUTE_OPTIONS[name], absolute=True)
    return None


def read_result(command: str, arg_count: int, response: object) -> dict[str, bool | int] | None:
    """``cache.hit``, or ``cache.hits`` and ``cache.misses``, of a read's reply; else ``None``.

    ``arg_count`` is the number of arguments after the command name.
    """
    if command in _HIT_IF_NOT_NONE:
        return {attr.CACHE_HIT: response is not None}
    if command in _HIT_IF_POSITIVE:
        if not isinstance(response, int) or (command in _SINGLE_KEY_ONLY and arg_count != 1):
            return None
        return {attr.CACHE_HIT: response > 0}
    if command in _COUNTED and isinstance(response, list | tuple):
        misses = sum(1 for value in response if value is None)
        return {attr.CACHE_HITS: len(response) - misses, attr.CACHE_MISSES: misses}
    return None


# --- the hooks ------------------------------------------------------------------------------


def _on_request(span: object, args: object) -> None:
    if not isinstance(span, Span) or not span.is_recording():
        return
    span.set_attribute(attr.CACHE_BACKEND, BACKEND)
    if not isinstance(args, Sequence) or isinstance(args, str | bytes) or not args:
        return
    command = _token(args[0])
    if command is None:
        return
    if len(args) > 1 and command not in _NO_KEY:
        span.set_attribute(attr.CACHE_NAMESPACE, key_namespace(args[1]))
    ttl = ttl_s(command, args)
    if ttl is not None:
        span.set_attribute(attr.CACHE_TTL_S, ttl)


def _on_response(span: object, response: object) -> None:
    if not isinstance(span, Span) or not span.is_recording():
        return
    span.set_attribute(attr.CACHE_BACKEND, BACKEND)  # pipeline spans never saw the request hook
    # Both are written by the contrib on command spans; the SDK span exposes them read-only.
    name = getattr(span, "name", None)
    attributes = getattr(span, "attributes", None)
    if not isinstance(name, str) or not isinstance(attributes, Mapping):
        return
    args_length = attributes.get(_CONTRIB_ARGS_LENGTH)
    if not isinstance(args_length, int):
        return  # a pipeline span: its replies cannot be matched to keys
    command = _token(name)
    result = None if command is None else read_result(command, args_length - 1, response)
    if result:
        span.set_attributes(result)


def request_hook(
    span: Span, instance: object, args: Sequence[object], kwargs: Mapping[str, object]
) -> None:
    """Set ``cache.backend``, ``cache.key.namespace`` and ``cache.ttl_s`` from the arguments."""
    try:
        _on_request(span, args)
    except Exception as exc:  # noqa: BLE001 - a hook must never break a Redis call
        _errors.add()
        log_internal_error("redis request_hook", exc)


def response_hook(span: Span, instance: object, response: object) -> None:
    """Set ``cache.hit`` or ``cache.hits``/``cache.misses`` from a read's reply."""
    try:
        _on_response(span, response)
    except Exception as exc:  # noqa: BLE001 - a hook must never break a Redis call
        _errors.add()
        log_internal_error("redis response_hook", exc)


_REQUEST_HOOK: RequestHook = request_hook
_RESPONSE_HOOK: ResponseHook = response_hook
_instrument_lock = threading.Lock()


def instrument_redis(*, tracer_provider: TracerProvider | None = None) -> None:
    """Instrument every Redis client, sync and asyncio, with these hooks; idempotent.

    The contrib instrumentor is a process-wide singleton that ignores a second
    `instrument` call (with a warning), so the first call's provider wins until
    `uninstrument_redis`; this checks first and stays quiet.
    """
    with _instrument_lock:
        instrumentor = RedisInstrumentor()
        if instrumentor.is_instrumented_by_opentelemetry:
            return
        instrumentor.instrument(
            tracer_provider=tracer_provider,
            request_hook=_REQUEST_HOOK,
            response_hook=_RESPONSE_HOOK,
        )


def uninstrument_redis() -> None:
    """Remove the instrumentation; a no-op when it is not installed."""
    with _instrument_lock:
        instrumentor = RedisInstrumentor()
        if instrumentor.is_instrumented_by_opentelemetry:
            instrumentor.uninstrument()
