"""A real Prometheus for the tests: one scrape target, started on a free port, stopped after.

The rules, dashboard and exemplar tests all run Debian's ``prometheus``
against a target of their own; this is the one place that writes its
config, starts it, finds its port and stops it.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from servers import require

INSTALL_SCRIPT = "install-prometheus-tools.sh"


def tool(name: str) -> str:
    """The path of a Prometheus tool, or skip (fail under CI=true) when it is not installed."""
    path = shutil.which(name)
    if path is None:
        require(name, FileNotFoundError(f"{name} is not on PATH; run {INSTALL_SCRIPT}"))
    return path


@dataclass(frozen=True)
class Prometheus:
    """A running Prometheus: where it listens and what it logged."""

    port: int
    process: subprocess.Popen[bytes]
    log: Path

    def alive(self) -> bool:
        return self.process.poll() is None

    def log_tail(self) -> str:
        return self.log.read_text()[-2_000:]

    def query(self, expr: str) -> list[dict[str, Any]]:
        """The instant query's result vector."""
        url = f"http://127.0.0.1:{self.port}/api/v1/query?query={urllib.parse.quote(expr)}"
        with urllib.request.urlopen(url, timeout=5) as response:
            result: list[dict[str, Any]] = json.load(response)["data"]["result"]
        return result


def listening_port(log: Path, process: subprocess.Popen[bytes], deadline: float) -> int:
    """The port Prometheus chose (it listens on port 0), read from its log."""
    while time.monotonic() < deadline and process.poll() is None:
        found = re.search(r'msg="Listening on" address=127\.0\.0\.1:(\d+)', log.read_text())
        if found:
            return int(found[1])
        time.sleep(0.05)  # polling its log until it says, bounded by the deadline
    pytest.fail(f"Prometheus did not start listening:\n{log.read_text()[-2_000:]}")


@contextmanager
def running_prometheus(
    root: Path,
    *,
    target_port: int,
    job: str,
    deadline: float,
    features: Sequence[str] = ("native-histograms",),
    rule_files: Sequence[Path] = (),
) -> Iterator[Prometheus]:
    """Prometheus scraping ``127.0.0.1:target_port`` every second, until the block ends."""
    settings: dict[str, Any] = {"scrape_interval": "1s"}
    if rule_files:
        settings["evaluation_interval"] = "1s"
    config = root / "prometheus.yml"
    config.write_text(
        yaml.safe_dump(
            {
                "global": settings,
                **({"rule_files": [str(path) for path in rule_files]} if rule_files else {}),
                "scrape_configs": [
                    {
                        "job_name": job,
                        "scrape_timeout": "1s",
                        "static_configs": [{"targets": [f"127.0.0.1:{target_port}"]}],
                    }
                ],
            }
        )
    )
    log = root / "prometheus.log"
    with log.open("wb") as sink:
        process = subprocess.Popen(
            [
                tool("prometheus"),
                f"--config.file={config}",
                f"--storage.tsdb.path={root / 'data'}",
                "--web.listen-address=127.0.0.1:0",
                f"--enable-feature={','.join(features)}",
            ],
            stdout=sink,
            stderr=subprocess.STDOUT,
        )
    try:
        yield Prometheus(listening_port(log, process, deadline), process, log)
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
