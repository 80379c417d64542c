"""instrument(): run the contrib instrumentors with this project's hooks, once each.

The span processor does the rest: it reads the spans these produce (cache
hits, query fingerprints, literal-free query text) and rolls them up onto
the request span.
"""

from __future__ import annotations

import importlib
import threading
from collections.abc import Callable
from typing import Any, Final

from opentelemetry.trace import TracerProvider

from wedsync_otel.instrumentation.operation_names import protect_operation_names

_lock = threading.Lock()
_instrumented: set[str] = set()


def _redis(tracer_provider: TracerProvider | None) -> None:
    hooks = importlib.import_module("wedsync_otel.instrumentation.redis_hooks")
    hooks.instrument_redis(tracer_provider=tracer_provider)


def _contrib(
    module: str, class_name: str, **options: Any
) -> Callable[[TracerProvider | None], None]:
    def run(tracer_provider: TracerProvider | None) -> None:
        instrumentor = getattr(importlib.import_module(module), class_name)()
        # Part of every contrib instrumentation, not of the core install: imported here.
        from opentelemetry.instrumentation.dependencies import (  # noqa: PLC0415
            DependencyConflictError,
        )

        protect_operation_names()
        try:
            # Without it a missing or unsupported library is logged and nothing is traced.
            instrumentor.instrument(
                tracer_provider=tracer_provider, raise_exception_on_conflict=True, **options
            )
        except DependencyConflictError as exc:
            raise ImportError(str(exc)) from exc

    return run


INSTRUMENTATIONS: Final[dict[str, tuple[str, Callable[[TracerProvider | None], None]]]] = {
    "redis": ("redis", _redis),
    "sqlite3": ("db", _contrib("opentelemetry.instrumentation.sqlite3", "SQLite3Instrumentor")),
    "psycopg": (
        "db",
        # sqlcommenter off: its comments would carry trace ids into the query text and logs.
        _contrib(
            "opentelemetry.instrumentation.psycopg", "PsycopgInstrumentor", enable_commenter=False
        ),
    ),
    # Engines made before this call are not traced: the instrumentor wraps create_engine.
    "sqlalchemy": (
        "sqlalchemy",
        _contrib(
            "opentelemetry.instrumentation.sqlalchemy",
            "SQLAlchemyInstrumentor",
            enable_commenter=False,
        ),
    ),
    "asyncpg": (
        "asyncpg",
        _contrib("opentelemetry.instrumentation.asyncpg", "AsyncPGInstrumentor"),
    ),
}
"""Name -> (extra that installs it, how to turn it on)."""


def instrument(*names: str, tracer_provider: TracerProvider | None = None) -> None:
    """Turn on the named companion instrumentations; idempotent.

    Any of redis, sqlite3, psycopg, sqlalchemy, asyncpg: SQLAlchemy's and a
    driver's together count each statement once (see `wedsync_otel.rollup`).

    Raises `ValueError` for an unknown name and `ImportError`, naming the
    extra to install, when a contrib package is missing: both are setup
    mistakes, found at startup rather than per request.
    """
    for name in names:
        if name not in INSTRUMENTATIONS:
            known = ", ".join(sorted(INSTRUMENTATIONS))
            raise ValueError(f"unknown instrumentation {name!r} (known: {known})")
    with _lock:
        for name in names:
            if name in _instrumented:
                continue
            extra, turn_on = INSTRUMENTATIONS[name]
            try:
                turn_on(tracer_provider)
            except ImportError as exc:
                raise ImportError(
                    f"instrumentation {name!r} needs the {extra!r} extra: "
                    f"pip install 'wedsync-otel[{extra}]' ({exc})"
                ) from exc
            _instrumented.add(name)


def instrumented() -> frozenset[str]:
    """Names turned on so far."""
    return frozenset(_instrumented)
