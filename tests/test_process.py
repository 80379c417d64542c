"""Server child processes: spawned in their own session, waited for, stopped as a group."""

from __future__ import annotations

import os
import pwd
import signal
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from wedsync_otel._process import EXITED, ChildProcess, spawn, wait_until

WAIT_S = 10.0


def _python(code: str) -> list[str]:
    return [sys.executable, "-c", code]


def _wait_for(condition: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + WAIT_S
    while not condition():
        assert time.monotonic() < deadline, what
        time.sleep(0.01)  # polling the outside world (a file, /proc), bounded by the deadline


def _gone(pid: int) -> bool:
    """Whether ``pid`` has ended (an unreaped orphan counts: PID 1 may never reap it)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return True
    return stat.rpartition(")")[2].split()[0] == "Z"


def _logged(process: ChildProcess, text: str) -> Callable[[], bool]:
    return lambda: text in process.log_path.read_text()


def _grandchild(tmp_path: Path) -> tuple[ChildProcess, int]:
    """A shell leading its group, and the pid of the ``sleep`` it started in that group."""
    pid_file = tmp_path / "sleep.pid"
    script = f"sleep 60 & echo $! > {pid_file}; wait"
    process = spawn(["/bin/sh", "-c", script], log_path=tmp_path / "sh.log")
    _wait_for(lambda: pid_file.exists() and pid_file.read_text().strip() != "", "no sleep pid")
    return process, int(pid_file.read_text())


def test_spawn_leads_a_new_session_with_output_in_the_log(tmp_path: Path) -> None:
    """The child is its own session and group leader; stdout and stderr go to the log."""
    code = (
        "import os, sys; print(os.getsid(0), os.getpgid(0), flush=True); "
        "print('oops', file=sys.stderr)"
    )
    process = spawn(_python(code), log_path=tmp_path / "child.log")
    assert process.popen.wait(timeout=WAIT_S) == 0
    session, group = process.log_path.read_text().split()[:2]
    assert int(session) == int(group) == process.pid != os.getsid(0)
    assert "oops" in process.log_path.read_text()


def test_spawn_appends_to_the_log_unless_asked_for_a_fresh_one(tmp_path: Path) -> None:
    """Restarts keep earlier output; ``fresh_log`` keeps only this start's."""
    log_path = tmp_path / "child.log"
    for word, fresh in (("first", False), ("second", False), ("third", True)):
        spawn(_python(f"print({word!r})"), log_path=log_path, fresh_log=fresh).popen.wait(WAIT_S)
        if word == "second":
            assert log_path.read_text().split() == ["first", "second"]
    assert log_path.read_text().split() == ["third"]


@pytest.mark.skipif(os.geteuid() != 0, reason="switching user needs root")
def test_spawn_runs_the_child_as_another_account(tmp_path: Path) -> None:
    """With ``uid``/``gid`` the child runs as that account, with no supplementary groups."""
    nobody = pwd.getpwnam("nobody")
    argv = ["/bin/sh", "-c", "id -u; id -g; id -G"]  # sh, as nobody may not reach our Python
    process = spawn(argv, log_path=tmp_path / "id.log", uid=nobody.pw_uid, gid=nobody.pw_gid)
    assert process.popen.wait(timeout=WAIT_S) == 0, process.log_path.read_text()
    uid, gid, *groups = process.log_path.read_text().split()
    assert (int(uid), int(gid), groups) == (nobody.pw_uid, nobody.pw_gid, [gid])


def test_stop_sigterms_the_whole_group(tmp_path: Path) -> None:
    """stop() reaches what the child started, and returns the leader's exit status."""
    process, sleep_pid = _grandchild(tmp_path)
    assert process.stop(WAIT_S) == -signal.SIGTERM
    _wait_for(lambda: _gone(sleep_pid), "the sleep in the group outlived stop()")
    assert not process.alive()


def test_stop_with_whole_group_false_signals_the_leader_alone(tmp_path: Path) -> None:
    """``whole_group=False`` leaves the rest of the group to the leader (as a postmaster's)."""
    process, sleep_pid = _grandchild(tmp_path)
    try:
        assert process.stop(WAIT_S, whole_group=False) == -signal.SIGTERM
        assert not _gone(sleep_pid)
    finally:
        os.kill(sleep_pid, signal.SIGKILL)


def test_stop_kills_a_child_that_ignores_sigterm(tmp_path: Path) -> None:
    """A child still there ``timeout_s`` after SIGTERM is SIGKILLed and reaped."""
    code = (
        "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); "
        "print('ignoring', flush=True); time.sleep(60)"
    )
    process = spawn(_python(code), log_path=tmp_path / "child.log")
    _wait_for(_logged(process, "ignoring"), "the child never installed its handler")
    assert process.stop(0.2) == -signal.SIGKILL


def test_stop_and_kill_after_exit_return_the_status(tmp_path: Path) -> None:
    """Stopping a process that already ended signals nothing and gives its exit status."""
    process = spawn(_python("raise SystemExit(3)"), log_path=tmp_path / "child.log")
    process.popen.wait(timeout=WAIT_S)
    assert process.stop() == 3
    assert process.kill() == 3


def test_wait_until_returns_none_once_ready(tmp_path: Path) -> None:
    """A probe that says ready ends the wait with None, the process left running."""
    code = "import time; print('up', flush=True); time.sleep(60)"
    process = spawn(_python(code), log_path=tmp_path / "child.log")
    try:
        reason = wait_until(
            lambda _: None if "up" in process.log_path.read_text() else "not up",
            process,
            deadline=time.monotonic() + WAIT_S,
            what="child",
            probe_timeout_s=1.0,
            poll_s=0.01,
        )
        assert reason is None
        assert process.alive()
    finally:
        process.kill()


def test_wait_until_says_exited_when_the_process_ends_first(tmp_path: Path) -> None:
    """A child that dies before it is ready ends the wait with `EXITED`, not at the deadline."""
    process = spawn(_python("raise SystemExit(3)"), log_path=tmp_path / "child.log")
    reason = wait_until(
        lambda _: "not listening",
        process,
        deadline=time.monotonic() + WAIT_S,
        what="child",
        probe_timeout_s=1.0,
        poll_s=0.01,
    )
    assert reason == EXITED
    assert process.kill() == 3


def test_wait_until_gives_the_last_reason_at_the_deadline() -> None:
    """At the deadline the answer names what was waited for and the probe's last reason."""
    timeouts: list[float] = []

    def refused(timeout_s: float) -> str:
        timeouts.append(timeout_s)
        return "connection refused"

    reason = wait_until(
        refused,
        None,
        deadline=time.monotonic() + 0.05,
        what="redis://127.0.0.1:1",
        probe_timeout_s=2.0,
        poll_s=0.01,
    )
    assert reason == "redis://127.0.0.1:1 not ready before the deadline: connection refused"
    assert timeouts
    assert all(0.1 <= timeout_s <= 2.0 for timeout_s in timeouts)  # what is left, floored


def test_wait_until_kills_the_process_when_interrupted(tmp_path: Path) -> None:
    """Anything raised while waiting (Ctrl-C) kills the process before it propagates."""
    process = spawn(_python("import time; time.sleep(60)"), log_path=tmp_path / "child.log")

    def interrupted(_: float) -> str:
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        wait_until(
            interrupted,
            process,
            deadline=time.monotonic() + WAIT_S,
            what="child",
            probe_timeout_s=1.0,
            poll_s=0.01,
        )
    assert process.popen.returncode == -signal.SIGKILL
