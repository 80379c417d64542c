"""The README's quickstart really runs."""

from __future__ import annotations

import datetime as dt
import json
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from wedsync_otel.calendar import band_for_days

README = Path(__file__).parent.parent / "README.md"


def quickstart() -> str:
    text = README.read_text()
    found = re.search(r"<!-- quickstart[^>]*-->\n```python\n(.*?)```", text, re.DOTALL)
    assert found, "README lost its quickstart block"
    return found.group(1)


def json_documents(text: str) -> Iterator[dict[str, Any]]:
    """The console exporters print one JSON document after another."""
    decoder = json.JSONDecoder()
    index = 0
    while index < len(text):
        if text[index].isspace():
            index += 1
            continue
        document, index = decoder.raw_decode(text, index)
        yield document


def test_quickstart_is_about_ten_lines() -> None:
    """The quickstart stays short enough to copy."""
    lines = [line for line in quickstart().splitlines() if line.strip()]
    assert len(lines) <= 14


def test_quickstart_prints_an_enriched_span() -> None:
    """Run as a script, the quickstart prints a span judged as a payment, and no metrics."""
    today_before = dt.datetime.now(ZoneInfo("Europe/London")).date()
    result = subprocess.run(
        [sys.executable, "-c", quickstart()],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    documents = list(json_documents(result.stdout))
    (span,) = [doc for doc in documents if "kind" in doc]
    attributes = span["attributes"]
    assert attributes["wedding.endpoint"] == "payments"
    assert attributes["wedding.critical"] is True
    assert attributes["wedding.id"] == "w-42"
    today_after = dt.datetime.now(ZoneInfo("Europe/London")).date()
    wedding = dt.date(2026, 6, 20)
    assert attributes["wedding.days_until"] in {
        (wedding - today_before).days,
        (wedding - today_after).days,
    }
    assert attributes["wedding.proximity"] == band_for_days(attributes["wedding.days_until"])
    assert span["resource"]["attributes"]["service.name"] == "wedsync-api"
    printed_metrics = [doc for doc in documents if "resource_metrics" in doc]
    assert printed_metrics == []  # no metrics endpoint: computed for snapshot(), not printed
