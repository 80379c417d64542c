"""The demo's load generator: a Saturday-peak mix of WedSync requests against a live server.

Open loop at a steady rate (requests start on schedule whether or not
earlier ones have finished), with a bound on requests in flight, so a slow
endpoint shows up as latency rather than as a quieter test. It stops by
itself at the deadline or after ``max_requests``, whichever comes first, or
when ``should_stop`` says so. Requests already sent may finish, within
`REQUEST_TIMEOUT_S`, so a run never outlasts its duration by more than that.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import math
import random
import time
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

import httpx

from wedsync_otel.calendar import Band
from wedsync_otel.demo.data import DEFAULT_SEED, DemoData, WeddingRef

DEFAULT_RATE_PER_S: Final = 25.0
"""Enough for each critical endpoint to reach the 100 requests readiness needs in 30 s."""
DEFAULT_CONCURRENCY: Final = 16
REQUEST_TIMEOUT_S: Final = 5.0
KEEPALIVE_EXPIRY_S: Final = 2.0

SATURDAY_PEAK: Final[Mapping[str, float]] = {
    "venue_availability": 0.22,
    "supplier_profiles": 0.20,
    "couple_timeline": 0.22,
    "guest_lists": 0.08,
    "rsvp": 0.14,
    "payments": 0.14,
}
"""Share of requests per catalogue endpoint: mostly reads, some RSVPs and payments."""

BAND_WEIGHTS: Final[Mapping[Band, float]] = {
    Band.WEDDING_DAY: 0.30,
    Band.FINAL_WEEK: 0.28,
    Band.FINAL_MONTH: 0.20,
    Band.PLANNING: 0.17,
    Band.PAST: 0.05,
}
"""Share of requests per proximity band: on a Saturday, today's weddings are the busy ones."""

_RSVP_ANSWERS: Final = (("accepted", "beef"), ("accepted", "fish"), ("declined", None))


@dataclass(frozen=True, slots=True)
class Planned:
    """One request to send."""

    endpoint: str
    """Catalogue name, for progress and checks."""
    method: str
    path: str
    body: dict[str, Any] | None = None


@dataclass(frozen=True, slots=True)
class Completed:
    """One request done: its status (0 when no response came) and client-side latency."""

    endpoint: str
    status: int
    latency_ms: float
    error: str | None = None
    """The exception's class name when no response came."""


OnComplete = Callable[[Completed], None]
"""Called in the event loop after each request; keep it quick."""


@dataclass(frozen=True, slots=True)
class LoadSummary:
    """What was sent and how it went."""

    sent: int
    completed: int
    server_errors: int
    """5xx answers."""
    transport_errors: int
    """Requests with no answer (refused, reset, timed out)."""
    elapsed_s: float
    by_endpoint: Mapping[str, int] = field(default_factory=dict)


def _zipf_weights(count: int, exponent: float = 1.1) -> list[float]:
    """Popularity by rank: a few hot keys (cache hits), a long tail (misses)."""
    return [1.0 / (rank + 1) ** exponent for rank in range(count)]


class SaturdayPeak:
    """Draws requests: endpoints by `SATURDAY_PEAK`, weddings by band, hot keys by Zipf."""

    def __init__(self, data: DemoData, *, seed: int = DEFAULT_SEED) -> None:
        self._rng = random.Random(seed)
        self._data = data
        self._endpoints = list(SATURDAY_PEAK)
        self._endpoint_weights = list(SATURDAY_PEAK.values())
        self._bands: list[tuple[Sequence[WeddingRef], list[float]]] = []
        band_weights = []
        for band, weight in BAND_WEIGHTS.items():
            weddings = data.by_band(band)
            if weddings:
                self._bands.append((weddings, _zipf_weights(len(weddings))))
                band_weights.append(weight)
        if not self._bands:
            raise ValueError("the demo data holds no weddings")
        self._band_weights = band_weights
        self._supplier_weights = _zipf_weights(len(data.supplier_ids))
        self._builders: Mapping[str, Callable[[WeddingRef], Planned]] = {
            "venue_availability": self._venue_availability,
            "supplier_profiles": self._supplier_profile,
            "couple_timeline": self._couple_timeline,
            "guest_lists": self._guest_list,
            "rsvp": self._rsvp,
            "payments": self._payment,
        }

    def _wedding(self) -> WeddingRef:
        rng = self._rng
        weddings, weights = rng.choices(self._bands, weights=self._band_weights)[0]
        return rng.choices(weddings, weights=weights)[0]

    def _supplier(self) -> str:
        return self._rng.choices(self._data.supplier_ids, weights=self._supplier_weights)[0]

    def next(self) -> Planned:
        """The next request of the mix."""
        endpoint = self._rng.choices(self._endpoints, weights=self._endpoint_weights)[0]
        return self._builders[endpoint](self._wedding())

    def _venue_availability(self, wedding: WeddingRef) -> Planned:
        shift = self._rng.choice((0, 0, 0, 0, 1, -1, 7))  # mostly the day itself
        date = wedding.date + dt.timedelta(days=shift)
        path = (
            f"/api/venues/{wedding.venue_id}/availability"
            f"?date={date.isoformat()}&wedding_id={wedding.wedding_id}"
        )
        return Planned("venue_availability", "GET", path)

    def _supplier_profile(self, wedding: WeddingRef) -> Planned:
        path = f"/api/suppliers/{self._supplier()}/profile?wedding_id={wedding.wedding_id}"
        return Planned("supplier_profiles", "GET", path)

    def _couple_timeline(self, wedding: WeddingRef) -> Planned:
        return Planned("couple_timeline", "GET", f"/api/couples/{wedding.couple_id}/timeline")

    def _guest_list(self, wedding: WeddingRef) -> Planned:
        return Planned("guest_lists", "GET", f"/api/weddings/{wedding.wedding_id}/guests")

    def _rsvp(self, wedding: WeddingRef) -> Planned:
        guest_id = wedding.first_guest_id + self._rng.randrange(wedding.guest_count)
        status, meal = self._rng.choice(_RSVP_ANSWERS)
        body = {"guest_id": guest_id, "status": status, "meal": meal}
        return Planned("rsvp", "POST", f"/api/rsvp/{wedding.wedding_id}", body)

    def _payment(self, wedding: WeddingRef) -> Planned:
        body = {
            "wedding_id": wedding.wedding_id,
            "supplier_id": self._supplier(),
            "amount_pence": self._rng.randrange(5_000, 250_000, 500),
        }
        return Planned("payments", "POST", "/api/payments/charge", body)


async def _send(client: httpx.AsyncClient, planned: Planned) -> Completed:
    started = time.perf_counter()
    try:
        response = await client.request(planned.method, planned.path, json=planned.body)
    except httpx.HTTPError as exc:
        elapsed_ms = (time.perf_counter() - started) * 1000
        return Completed(planned.endpoint, 0, elapsed_ms, type(exc).__name__)
    return Completed(planned.endpoint, response.status_code, (time.perf_counter() - started) * 1000)


async def drive(
    base_url: str,
    profile: SaturdayPeak,
    *,
    duration_s: float,
    rate_per_s: float = DEFAULT_RATE_PER_S,
    max_requests: int | None = None,
    concurrency: int = DEFAULT_CONCURRENCY,
    on_complete: OnComplete | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> LoadSummary:
    """Send the profile's requests to ``base_url`` at ``rate_per_s`` until a bound is reached."""
    if not (math.isfinite(duration_s) and duration_s > 0):
        raise ValueError(f"duration_s must be a positive number, not {duration_s!r}")
    if not (math.isfinite(rate_per_s) and rate_per_s > 0):
        raise ValueError(f"rate_per_s must be a positive number, not {rate_per_s!r}")
    if concurrency < 1:
        raise ValueError(f"concurrency must be at least 1, not {concurrency!r}")
    limit = max_requests if max_requests is not None else math.ceil(duration_s * rate_per_s)
    slots = asyncio.Semaphore(concurrency)
    counts: Counter[str] = Counter()
    results = {"completed": 0, "server_errors": 0, "transport_errors": 0}

    async def one(planned: Planned) -> None:
        try:
            done = await _send(client, planned)
        finally:
            slots.release()
        results["completed"] += 1
        results["server_errors"] += done.status >= 500
        results["transport_errors"] += done.status == 0
        if on_complete is not None:
            on_complete(done)

    loop = asyncio.get_running_loop()
    start = loop.time()
    deadline = start + duration_s
    sent = 0
    limits = httpx.Limits(
        max_connections=concurrency,
        max_keepalive_connections=concurrency,
        # Below uvicorn's 5 s keep-alive: never reuse a connection the server is closing.
        keepalive_expiry=KEEPALIVE_EXPIRY_S,
    )
    async with (
        httpx.AsyncClient(base_url=base_url, timeout=REQUEST_TIMEOUT_S, limits=limits) as client,
        asyncio.TaskGroup() as group,
    ):
        while sent < limit and not (should_stop is not None and should_stop()):
            due = start + sent / rate_per_s
            if due >= deadline:
                break
            if due > loop.time():
                await asyncio.sleep(due - loop.time())  # pacing, not synchronisation
            await slots.acquire()
            if loop.time() >= deadline:
                slots.release()
                break
            planned = profile.next()
            counts[planned.endpoint] += 1
            group.create_task(one(planned))
            sent += 1
    return LoadSummary(
        sent=sent,
        completed=results["completed"],
        server_errors=results["server_errors"],
        transport_errors=results["transport_errors"],
        elapsed_s=loop.time() - start,
        by_endpoint=dict(counts),
    )
