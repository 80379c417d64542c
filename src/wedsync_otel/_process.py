"""A server as a child process: spawned in its own session, waited for, stopped.

The viewer (Phoenix, rotel), the demo's private Redis and the test servers (Redis,
PostgreSQL, rotel) all run a server this way, so it is written once, here.

The child leads a new session (``start_new_session=True``), so its process id is also
its process group's: Ctrl-C at the terminal reaches the parent, which stops the child,
and one signal to the group reaches everything the child started (PostgreSQL's
backends, the agent a shell script execs). Signals go out only while the leader is
unreaped, so its id cannot have been reused by an unrelated process.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Final

LOOPBACK: Final = "127.0.0.1"
STOP_TIMEOUT_S: Final = 10.0
"""How long a graceful stop may take before the process group is killed."""
KILL_TIMEOUT_S: Final = 10.0
"""How long reaping takes at most after SIGKILL (longer only for a process stuck in the kernel)."""
EXITED: Final = "exited"
"""What `wait_until` returns when the process ended before it was ready."""
_MIN_PROBE_S: Final = 0.1

Probe = Callable[[float], str | None]
"""A readiness check, given the seconds it may take: None when ready, otherwise why not."""


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago (callers retry if it is taken)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((LOOPBACK, 0))
        port: int = sock.getsockname()[1]
        return port


def log_tail(path: Path, chars: int) -> str:
    """The last ``chars`` characters of a log, for an error message: the process's own words."""
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return "(no log)"
    return text[-chars:].strip() or "(empty log)"


@dataclass
class ChildProcess:
    """A child process leading its own session, its output in ``log_path``."""

    popen: subprocess.Popen[bytes]
    log_path: Path

    @property
    def pid(self) -> int:
        """The process id, which is also the process group id."""
        return self.popen.pid

    def alive(self) -> bool:
        """Whether the process is still running (once it has exited, this reaps it)."""
        return self.popen.poll() is None

    def stop(
        self,
        timeout_s: float = STOP_TIMEOUT_S,
        *,
        sig: signal.Signals = signal.SIGTERM,
        whole_group: bool = True,
    ) -> int | None:
        """Send ``sig``, then SIGKILL the group if it outlasts ``timeout_s``; the exit status.

        ``whole_group=False`` sends ``sig`` to the leader alone: PostgreSQL's postmaster
        shuts its backends down itself on SIGINT, which a backend would take as "cancel".
        None only if the process is still there `KILL_TIMEOUT_S` after SIGKILL.
        """
        if self.alive():
            self._signal(sig, whole_group=whole_group)
            with contextlib.suppress(subprocess.TimeoutExpired):
                return self.popen.wait(timeout=timeout_s)
        return self.kill()

    def kill(self) -> int | None:
        """SIGKILL the process group, as a crash would, and reap the leader; the exit status."""
        if self.alive():
            self._signal(signal.SIGKILL, whole_group=True)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.popen.wait(timeout=KILL_TIMEOUT_S)
        return self.popen.returncode

    def _signal(self, sig: signal.Signals, *, whole_group: bool) -> None:
        # Gone meanwhile, or a member runs as another user: nothing more to do for it.
        with contextlib.suppress(ProcessLookupError, PermissionError):
            if whole_group:
                os.killpg(self.popen.pid, sig)
            else:
                os.kill(self.popen.pid, sig)


def spawn(
    argv: Sequence[str],
    *,
    log_path: Path,
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
    fresh_log: bool = False,
    uid: int | None = None,
    gid: int | None = None,
) -> ChildProcess:
    """Start ``argv`` in a new session: no stdin, stdout and stderr appended to ``log_path``.

    ``env`` None inherits ours. ``fresh_log`` empties the log first, so its tail speaks of
    this start alone. ``uid``/``gid`` run the child as another account with no supplementary
    groups (as root, PostgreSQL must run as somebody else).
    """
    switch_user = uid is not None or gid is not None
    with log_path.open("wb" if fresh_log else "ab") as log:
        popen = subprocess.Popen(
            list(argv),
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=cwd,
            env=None if env is None else dict(env),
            start_new_session=True,
            user=uid,
            group=gid,
            extra_groups=[] if switch_user else None,
        )
    return ChildProcess(popen, log_path)


def wait_until(
    ready: Probe,
    process: ChildProcess | None,
    *,
    deadline: float,
    what: str,
    probe_timeout_s: float,
    poll_s: float,
) -> str | None:
    """None once ``ready``; `EXITED` if ``process`` ends first; at the deadline, why not.

    Each probe may take what is left of the deadline, at most ``probe_timeout_s``. Between
    probes it waits on the process, so one that dies is noticed at once (``process`` None:
    a server someone else runs, probed every ``poll_s``). Anything raised meanwhile (Ctrl-C)
    kills the process first, so a start that failed leaves nothing running.
    """
    try:
        while True:
            if process is not None and not process.alive():
                return EXITED
            left_s = deadline - time.monotonic()
            reason = ready(min(max(left_s, _MIN_PROBE_S), probe_timeout_s))
            if reason is None:
                return None
            if process is not None and not process.alive():
                return EXITED  # the probe failed because the server died: say that instead
            if time.monotonic() >= deadline:
                return f"{what} not ready before the deadline: {reason}"
            if process is None:
                time.sleep(poll_s)  # polling a server we cannot wait on, bounded by the deadline
            else:
                with contextlib.suppress(subprocess.TimeoutExpired):
                    process.popen.wait(timeout=poll_s)  # wakes at once if the server dies
    except BaseException:
        if process is not None:
            process.kill()
        raise
