"""The real-server fixtures: Redis and PostgreSQL answer, restart, clean up, and CI never skips."""

from __future__ import annotations

import socket
import uuid

import psycopg
import pytest
import redis

import servers
from servers import (
    PostgresServer,
    RedisServer,
    ServerUnavailable,
    env_redis_url,
    require,
    start_redis,
)

# --- Redis ----------------------------------------------------------------------------------


def test_redis_set_then_get(redis_url: str) -> None:
    """A value SET on the Redis fixture is read back by GET."""
    key = f"wedsync-test:{uuid.uuid4()}"
    with redis.Redis.from_url(redis_url) as client:
        assert client.set(key, b"ceremony", ex=60)
        assert client.get(key) == b"ceremony"
        client.delete(key)


def test_private_redis_listens_on_loopback_only(redis_server: RedisServer) -> None:
    """The private Redis binds 127.0.0.1 and keeps nothing on disk."""
    with redis.Redis.from_url(redis_server.url) as client:
        config = client.config_get("bind")
        assert config["bind"] == "127.0.0.1"
        assert client.config_get("save")["save"] == ""
    assert redis_server.url == f"redis://127.0.0.1:{redis_server.port}/0"


def test_redis_killed_then_started_serves_the_same_url() -> None:
    """After SIGKILL, start() brings Redis back on the same URL, empty, and clients reconnect."""
    try:
        server = start_redis()
    except ServerUnavailable as exc:
        require("Redis", exc)
    with server, redis.Redis.from_url(server.url) as client:
        url, old_pid = server.url, server.pid
        client.set("guest", "Ada")

        server.kill()
        assert not server.running
        with pytest.raises(redis.exceptions.ConnectionError):
            client.get("guest")

        server.start()
        assert server.url == url
        assert server.pid not in {None, old_pid}
        assert client.get("guest") is None  # memory-only: a crash loses the data
        assert client.set("guest", "Grace")


def test_redis_close_stops_it_and_removes_its_directory() -> None:
    """close() ends the process and deletes the temporary directory, and may be repeated."""
    try:
        server = start_redis()
    except ServerUnavailable as exc:
        require("Redis", exc)
    root = server.root
    server.close()
    server.close()
    assert not server.running
    assert not root.exists()
    with pytest.raises(RuntimeError, match="closed"):
        server.start()


def test_redis_start_retries_when_its_port_is_taken(monkeypatch: pytest.MonkeyPatch) -> None:
    """A port taken between choosing it and binding it costs a retry, not a failure."""
    with socket.socket() as squatter:  # bound, not listening: binds fail, connects are refused
        squatter.bind(("127.0.0.1", 0))
        taken = squatter.getsockname()[1]
        choices = iter([taken])
        free_port = servers._free_port
        monkeypatch.setattr(servers, "_free_port", lambda: next(choices, None) or free_port())
        try:
            server = start_redis()
        except ServerUnavailable as exc:
            require("Redis", exc)
        with server:
            assert server.port != taken
            assert "Address already in use" in server.log_path.read_text()


def test_waiting_for_a_silent_port_times_out_with_the_reason() -> None:
    """Nothing listening at the URL ends in ServerUnavailable naming it, within the timeout."""
    with socket.socket() as bound_not_listening:
        bound_not_listening.bind(("127.0.0.1", 0))
        url = f"redis://127.0.0.1:{bound_not_listening.getsockname()[1]}/0"
        with pytest.raises(ServerUnavailable, match=r"127\.0\.0\.1") as excinfo:
            servers.wait_for_redis(url, timeout_s=0.2)
    assert "waited 0.2 s" in str(excinfo.value)


# --- PostgreSQL -----------------------------------------------------------------------------


def test_postgres_select_1(postgres_dsn: str) -> None:
    """SELECT 1 through psycopg on the PostgreSQL fixture returns 1."""
    with psycopg.connect(postgres_dsn) as conn:
        assert conn.execute("SELECT 1").fetchone() == (1,)


def test_postgres_create_table_and_insert(postgres_dsn: str) -> None:
    """A table can be created, written and read, and is dropped afterwards."""
    table = f"wedsync_test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(postgres_dsn, autocommit=True) as conn:
        conn.execute(f"CREATE TABLE {table} (id serial PRIMARY KEY, couple text NOT NULL)")
        try:
            conn.execute(f"INSERT INTO {table} (couple) VALUES (%s), (%s)", ["A&B", "C&D"])
            rows = conn.execute(f"SELECT couple FROM {table} ORDER BY id").fetchall()
            assert rows == [("A&B",), ("C&D",)]
        finally:
            conn.execute(f"DROP TABLE {table}")


def test_private_postgres_is_tuned_for_tests(postgres_server: PostgresServer) -> None:
    """The private cluster listens on loopback only, with no socket file and fsync off."""
    with psycopg.connect(postgres_server.dsn) as conn:
        rows = conn.execute(
            "SELECT name, setting FROM pg_settings WHERE name = ANY(%s)",
            [["listen_addresses", "unix_socket_directories", "fsync", "port"]],
        ).fetchall()
    settings: dict[str, str] = dict(rows)
    assert settings == {
        "listen_addresses": "127.0.0.1",
        "unix_socket_directories": "",
        "fsync": "off",
        "port": str(postgres_server.port),
    }


def test_postgres_scratch_prefers_roomy_tmpfs_unless_tmpdir_is_set(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The cluster goes to /dev/shm only with TMPDIR unset and room to spare."""
    monkeypatch.setenv("TMPDIR", "/tmp")
    assert servers._scratch_parent() is None
    monkeypatch.delenv("TMPDIR")
    assert servers._scratch_parent(min_free_bytes=1 << 62) is None  # 4 EiB free: never


# --- the CI rule -----------------------------------------------------------------------------


@pytest.mark.parametrize("value", ["true", "1", "True", "yes"])
def test_require_fails_under_ci(monkeypatch: pytest.MonkeyPatch, value: str) -> None:
    """With CI set, a missing server fails the test: the outcome is a failure, not a skip."""
    monkeypatch.setenv("CI", value)
    with pytest.raises(pytest.fail.Exception, match="no redis-server") as excinfo:
        require("Redis", ServerUnavailable("no redis-server"))
    assert not isinstance(excinfo.value, pytest.skip.Exception)


@pytest.mark.parametrize("value", [None, "", "false", "0"])
def test_require_skips_outside_ci(monkeypatch: pytest.MonkeyPatch, value: str | None) -> None:
    """Without CI, a missing server skips the test with the reason."""
    if value is None:
        monkeypatch.delenv("CI", raising=False)
    else:
        monkeypatch.setenv("CI", value)
    with pytest.raises(pytest.skip.Exception, match="Redis is not available: no redis-server"):
        require("Redis", ServerUnavailable("no redis-server"))


def test_unreachable_env_url_is_reported_not_replaced(monkeypatch: pytest.MonkeyPatch) -> None:
    """A REDIS_URL that does not answer raises (password redacted) instead of being replaced."""
    with socket.socket() as bound_not_listening:
        bound_not_listening.bind(("127.0.0.1", 0))
        port = bound_not_listening.getsockname()[1]
        monkeypatch.setenv("REDIS_URL", f"redis://app:s3cret@127.0.0.1:{port}/0")
        with pytest.raises(ServerUnavailable, match="REDIS_URL is set but") as excinfo:
            env_redis_url(timeout_s=0.2)
    assert "s3cret" not in str(excinfo.value)
