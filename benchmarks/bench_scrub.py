"""Cost of scrubbing: per KB on adversarial inputs (linear or not), and per span.

A client controls most of what the scrubber reads (paths, query strings,
SQL built from form fields, error text), so quadratic behaviour is a
denial of service. For each adversarial input the cost per KB is measured
at 64 KB and at 1 MB in one run: a linear scan costs the same per KB at
both sizes (ratio about 1), a quadratic one sixteen times more. Target: no
input of 1 MB takes more than a few milliseconds per KB.

Doubling: the inputs the unit tests prove linear by counting work
(tests/test_privacy_sql.py, tests/test_privacy_values.py), timed here
instead: the median CPU time at n and 2n (200 and 400 KB for the lexer,
256 and 512 KB for the value scan), the two sizes alternating within each
round, and the median of the rounds' ratios (about 2: linear, about 4:
quadratic). Target: ratio below 4, the bound those tests used to assert on
wall-clock times, and a few ms per KB at most. Only a timing sees the regex
engine backtracking inside one attempt, which the tests' work counts leave out.

Per span: the scrubber over a SERVER span with eight usual HTTP attributes
(its values seen before, and with a new ``url.path`` each time), a database
span and an HTTP CLIENT span.
"""

from __future__ import annotations

import gc
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

from wedsync_otel.privacy import values
from wedsync_otel.privacy.messages import scrub_message
from wedsync_otel.privacy.scrubber import Scrubber
from wedsync_otel.privacy.sql import tokenize

sys.path.insert(0, str(Path(__file__).parent))
sys.path.insert(1, str(Path(__file__).parent.parent / "tests"))
from _harness import interleaved, report
from bench_processor import HTTP_ATTRIBUTES
from test_privacy_sql import ADVERSARIAL as LEXER_INPUTS
from test_privacy_values import HOSTILE_UNITS, hostile

KB = 1024
SIZES = (64 * KB, 1024 * KB)

ADVERSARIAL: dict[str, Callable[[int], str]] = {
    "digit run then a letter": lambda n: "1" * (n - 1) + "a",
    "letters only": lambda n: "a" * n,
    "hex token": lambda n: ("0123456789abcdef" * (n // 16 + 1))[:n],
    "nested comment openers": lambda n: "/*" * (n // 2),
    "quotes, unterminated": lambda n: "'a" * (n // 2),
    "dollar signs": lambda n: "$a" * (n // 2),
    "at signs and letters": lambda n: "a@" * (n // 2),
    "percent-encoded at": lambda n: "%40a" * (n // 4),
    "digits and spaces": lambda n: "1 " * (n // 2),
    "exponent-like": lambda n: "1e" * (n // 2),
}

SCANNERS: dict[str, Callable[[str], object]] = {
    # sanitize_sql cuts at MAX_QUERY_CHARS; its lexer is timed over the whole input.
    "sql lexer": lambda text: sum(1 for _ in tokenize(text)),
    "find_sensitive": values.find_sensitive,
    "scrub_message": scrub_message,
}

DB_ATTRIBUTES = {
    "db.system.name": "postgresql",
    "db.namespace": "wedsync",
    "db.query.text": "SELECT id, name FROM guests WHERE wedding_id = %s AND rsvp = %s",
    "server.address": "db.internal",
    "server.port": 5432,
}
CLIENT_ATTRIBUTES = {
    "http.request.method": "POST",
    "url.full": "https://api.payments.example/v1/charges?idempotency_key=9f2c",
    "server.address": "api.payments.example",
    "server.port": 443,
    "http.response.status_code": 201,
}


def per_kb_ms(scan: Callable[[str], object], text: str, repeats: int = 3) -> float:
    """Best of ``repeats`` runs, in milliseconds per KB."""
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        scan(text)
        best = min(best, time.perf_counter() - start)
    return best * 1000 / (len(text) / KB)


def adversarial() -> None:
    print("== scrubbing adversarial input: ms per KB at 64 KB and 1 MB (ratio ~1: linear)")
    worst = 0.0
    for scanner_name, scan in SCANNERS.items():
        for input_name, make in ADVERSARIAL.items():
            small, large = (per_kb_ms(scan, make(size)) for size in SIZES)
            worst = max(worst, large)
            print(
                f"  {scanner_name:<15} {input_name:<26} 64 KB {small:8.4f}   1 MB {large:8.4f}"
                f"   ratio {large / small:5.2f}"
            )
    print(f"  worst at 1 MB: {worst:.4f} ms per KB (target: a few ms at most)")


def doubling(
    scan: Callable[[str], object], small: str, large: str, rounds: int = 3
) -> tuple[float, float, float]:
    """Median CPU seconds on ``small`` and on ``large``, and the median of the rounds' ratios."""
    small_s: list[float] = []
    large_s: list[float] = []
    for round_index in range(rounds):
        pair = [small, large] if round_index % 2 == 0 else [large, small]
        for text in pair:
            gc.collect()
            start = time.process_time()
            scan(text)
            (small_s if text is small else large_s).append(time.process_time() - start)
    ratios = [big / max(little, 1e-6) for little, big in zip(small_s, large_s, strict=True)]
    return statistics.median(small_s), statistics.median(large_s), statistics.median(ratios)


def doubling_figures() -> None:
    print(
        "== the unit tests' linearity inputs, timed: median CPU ms at n and 2n, ratio (~2 linear)"
    )
    rows: list[tuple[str, Callable[[str], object], str, str]] = []
    for name, (dialect, build) in LEXER_INPUTS.items():

        def lex(text: str, dialect: str = dialect) -> int:
            return sum(1 for _ in tokenize(text, dialect=dialect))

        rows.append((f"sql lexer   {name}", lex, build(200_000), build(400_000)))
    for name, unit in HOSTILE_UNITS.items():
        rows.append(
            (
                f"values scan {name}",
                values.find_sensitive,
                *(hostile(unit, n) for n in (256 * KB, 512 * KB)),
            )
        )
    worst_ratio, worst_ms_per_kb = 0.0, 0.0
    for label, scan, small, large in rows:
        small_s, large_s, ratio = doubling(scan, small, large)
        worst_ratio = max(worst_ratio, ratio)
        worst_ms_per_kb = max(worst_ms_per_kb, large_s * 1e3 / (len(large) / KB))
        print(
            f"  {label:<36} {len(small) // KB:4} KB {small_s * 1e3:9.2f}"
            f"   {len(large) // KB:4} KB {large_s * 1e3:9.2f}   ratio {ratio:5.2f}"
        )
    print(
        f"  worst ratio {worst_ratio:.2f} (target < 4);"
        f" worst at 2n {worst_ms_per_kb:.3f} ms per KB (target: a few ms at most)"
    )


def span_variants() -> dict[str, Callable[[int], None]]:
    scrubber = Scrubber()
    counter = iter(range(10**12))

    def server_seen(count: int) -> None:
        for _ in range(count):
            scrubber.attributes(HTTP_ATTRIBUTES)
            scrubber.span_name("GET /api/venues/{venue_id}/availability", HTTP_ATTRIBUTES)

    def server_new_path(count: int) -> None:
        for _ in range(count):
            attributes = {**HTTP_ATTRIBUTES, "url.path": f"/api/venues/{next(counter)}/x"}
            scrubber.attributes(attributes)
            scrubber.span_name("GET /api/venues/{venue_id}/availability", attributes)

    def copy_only(count: int) -> None:
        for _ in range(count):
            {**HTTP_ATTRIBUTES, "url.path": f"/api/venues/{next(counter)}/x"}

    def database(count: int) -> None:
        for _ in range(count):
            scrubber.attributes(DB_ATTRIBUTES)
            scrubber.span_name("SELECT", DB_ATTRIBUTES)

    def client(count: int) -> None:
        for _ in range(count):
            scrubber.attributes(CLIENT_ATTRIBUTES)
            scrubber.span_name("POST", CLIENT_ATTRIBUTES)

    return {
        "SERVER span, values seen before": server_seen,
        "SERVER span, new url.path": server_new_path,
        "(the new url.path dict alone)": copy_only,
        "database span": database,
        "HTTP CLIENT span": client,
    }


def main() -> None:
    adversarial()
    doubling_figures()
    figures = interleaved(span_variants(), operations=20_000, rounds=7)
    report("scrubbing per span", list(figures.values()), [])
    new_path = figures["SERVER span, new url.path"].cpu_us
    extra = new_path - figures["(the new url.path dict alone)"].cpu_us
    print(f"  a new url.path costs {extra:.2f} us of scanning (median of 7 rounds)")


if __name__ == "__main__":
    main()
