"""Shared fixtures: a fake clock and real SDK pipelines ending in in-memory exporters."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from helpers import TUESDAY, FakeClock, Pipeline
from servers import (
    PostgresServer,
    RedisServer,
    ServerUnavailable,
    env_database_url,
    env_redis_url,
    require,
    start_postgres,
    start_redis,
)
from wedsync_otel import WeddingConfig, _safety


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(TUESDAY)


@pytest.fixture
def make_pipeline(clock: FakeClock) -> Iterator[Callable[..., Pipeline]]:
    made: list[Pipeline] = []

    def make(config: WeddingConfig | None = None) -> Pipeline:
        pipeline = Pipeline(config or WeddingConfig.default(), clock)
        made.append(pipeline)
        return pipeline

    yield make
    for pipeline in made:
        pipeline.provider.shutdown()


@pytest.fixture
def pipeline(make_pipeline: Callable[..., Pipeline]) -> Pipeline:
    return make_pipeline()


@pytest.fixture(autouse=True)
def _fresh_internal_error_log() -> None:
    """Each test sees internal errors logged afresh: "once per place" is per process."""
    _safety._reported.clear()


# --- real servers (tests/servers.py): REDIS_URL / DATABASE_URL, else private ones --------


@pytest.fixture(scope="session")
def redis_server() -> Iterator[RedisServer]:
    """A private Redis for the session, even when REDIS_URL is set, so tests may kill it."""
    try:
        server = start_redis()
    except ServerUnavailable as exc:
        require("Redis", exc)
    with server:
        yield server


@pytest.fixture(scope="session")
def redis_url(request: pytest.FixtureRequest) -> str:
    """REDIS_URL once it answers, else the URL of the session's private Redis."""
    try:
        url = env_redis_url()
    except ServerUnavailable as exc:
        require("Redis", exc)
    if url is not None:
        return url
    server: RedisServer = request.getfixturevalue("redis_server")
    return server.url


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    """A private PostgreSQL cluster for the session, even when DATABASE_URL is set."""
    try:
        server = start_postgres()
    except ServerUnavailable as exc:
        require("PostgreSQL", exc)
    with server:
        yield server


@pytest.fixture(scope="session")
def postgres_dsn(request: pytest.FixtureRequest) -> str:
    """DATABASE_URL once it answers, else the DSN of the session's private cluster."""
    try:
        dsn = env_database_url()
    except ServerUnavailable as exc:
        require("PostgreSQL", exc)
    if dsn is not None:
        return dsn
    server: PostgresServer = request.getfixturevalue("postgres_server")
    return server.dsn
