"""The demo WedSync API: the six catalogue endpoints over SQLite, with the WeddingCache.

It behaves like the real service where the telemetry has something to find:
supplier profiles, venue availability and timelines go through the
`WeddingCache` (hits and misses); some lookups scan unindexed tables; the
guest list is an N+1 (one RSVP query per guest, on purpose); the payment
gateway has a long tail and fails about 1.5% of charges (502).

Queries run on cursors of a connection opened per request through
``sqlite3.connect``, which the contrib sqlite3 instrumentation traces (it
traces ``cursor.execute``, not ``Connection.execute``). Handlers run the
blocking work in Starlette's thread pool, which copies the request's context,
so database and cache spans are children of the request's server span.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import math
import random
import sqlite3
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import closing, contextmanager
from pathlib import Path
from typing import Any, Final, TypeVar

from opentelemetry.instrumentation.starlette import StarletteInstrumentor
from opentelemetry.metrics import MeterProvider
from opentelemetry.trace import TracerProvider
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from wedsync_otel.asgi import WeddingMiddleware
from wedsync_otel.cache import WeddingCache
from wedsync_otel.config import WeddingConfig, load_config
from wedsync_otel.context import resolve_wedding_date_async, set_wedding_resolver, wedding_context
from wedsync_otel.demo.data import DEFAULT_SEED, connect_untraced

__all__ = ["PaymentGateway", "WedSyncService", "create_app", "wedding_date_resolver"]

JSON = dict[str, Any]
T = TypeVar("T")

RSVP_STATUSES: Final = frozenset({"accepted", "declined", "pending"})
NEARBY_DAYS: Final = 3
"""Venue availability also lists this many days either side of the asked date."""


class PaymentGateway:
    """Stands in for the card processor: ~22 ms median, a lognormal tail, ~1.5% failures."""

    def __init__(
        self,
        *,
        seed: int = DEFAULT_SEED,
        median_ms: float = 22.0,
        sigma: float = 0.6,
        failure_rate: float = 0.015,
    ) -> None:
        self._rng = random.Random(seed)
        self._lock = threading.Lock()
        self._mu = math.log(median_ms / 1000)
        self._sigma = sigma
        self._failure_rate = failure_rate

    def charge(self, amount_pence: int) -> bool:
        """Wait as long as the processor would; True when it accepted the charge."""
        with self._lock:  # one draw at a time: the sequence stays the seed's
            delay_s = self._rng.lognormvariate(self._mu, self._sigma)
            accepted = self._rng.random() >= self._failure_rate
        time.sleep(min(delay_s, 2.0))
        return accepted


class WedSyncService:
    """The blocking domain logic: SQL on a per-call connection, and the cache."""

    def __init__(
        self, db_path: Path, cache: WeddingCache, *, gateway: PaymentGateway | None = None
    ) -> None:
        self.db_path = db_path
        self.cache = cache
        self.gateway = gateway if gateway is not None else PaymentGateway()

    @contextmanager
    def _db(self) -> Iterator[sqlite3.Connection]:
        # sqlite3.connect, looked up at call time: the instrumented one once instrumented.
        with closing(sqlite3.connect(str(self.db_path), timeout=5.0)) as conn:
            conn.row_factory = sqlite3.Row
            yield conn

    @staticmethod
    def _rows(conn: sqlite3.Connection, sql: str, params: Sequence[object]) -> list[sqlite3.Row]:
        cursor = conn.cursor()
        try:
            cursor.execute(sql, params)
            return cursor.fetchall()
        finally:
            cursor.close()

    @classmethod
    def _one(
        cls, conn: sqlite3.Connection, sql: str, params: Sequence[object]
    ) -> sqlite3.Row | None:
        rows = cls._rows(conn, sql, params)
        return rows[0] if rows else None

    def venue_availability(self, venue_id: str, date: dt.date) -> JSON | None:
        """A venue's status on a date and the days around it; cached 15 min."""
        cached = self.cache.get_venue_availability(venue_id, date)
        if cached is not None:
            return cached
        low, high = date - dt.timedelta(NEARBY_DAYS), date + dt.timedelta(NEARBY_DAYS)
        with self._db() as conn:
            venue = self._one(conn, "SELECT name, city FROM venues WHERE id = ?", (venue_id,))
            if venue is None:
                return None
            days = self._rows(  # no index on venue_id: a full scan, on purpose
                conn,
                "SELECT date, status, price_pence FROM venue_availability "
                "WHERE venue_id = ? AND date BETWEEN ? AND ? ORDER BY date",
                (venue_id, low.isoformat(), high.isoformat()),
            )
        asked = next((row for row in days if row["date"] == date.isoformat()), None)
        found: JSON = {
            "venue_id": venue_id,
            "venue": venue["name"],
            "city": venue["city"],
            "date": date.isoformat(),
            "status": asked["status"] if asked else "unknown",
            "price_pence": asked["price_pence"] if asked else None,
            "nearby": [dict(row) for row in days],
        }
        self.cache.set_venue_availability(venue_id, date, found)
        return found

    def supplier_profile(self, supplier_id: str) -> JSON | None:
        """A supplier with its profile and booking count; cached 24 h."""
        cached = self.cache.get_supplier_profile(supplier_id)
        if cached is not None:
            return cached
        with self._db() as conn:
            row = self._one(
                conn,
                "SELECT s.id, s.name, s.category, s.city, s.rating, p.bio, p.price_from_pence, "
                "p.review_count, p.services FROM suppliers s "
                "JOIN supplier_profiles p ON p.supplier_id = s.id WHERE s.id = ?",
                (supplier_id,),
            )
            if row is None:
                return None
            bookings = self._one(  # no index on supplier_id: a scan of every payment
                conn,
                "SELECT COUNT(*) AS n FROM payments WHERE supplier_id = ? AND status = ?",
                (supplier_id, "succeeded"),
            )
        profile = {**dict(row), "services": row["services"].split(",")}
        profile["bookings"] = bookings["n"] if bookings else 0
        self.cache.set_supplier_profile(supplier_id, profile)
        return profile

    def couple_timeline(self, couple_id: str) -> JSON | None:
        """The day's schedule of a couple's wedding and who is coming; cached per wedding."""
        with self._db() as conn:
            couple = self._one(
                conn,
                "SELECT c.wedding_id, c.partner_a, c.partner_b, w.date FROM couples c "
                "JOIN weddings w ON w.id = c.wedding_id WHERE c.id = ?",
                (couple_id,),
            )
            if couple is None:
                return None
            wedding_id = couple["wedding_id"]
            cached = self.cache.get_timeline(wedding_id)
            if cached is not None:
                return cached
            events = self._rows(  # no index on wedding_id: a full scan, on purpose
                conn,
                "SELECT starts_at, title, location, supplier_id FROM timeline_events "
                "WHERE wedding_id = ? ORDER BY starts_at",
                (wedding_id,),
            )
            attending = self._one(  # groups the whole RSVP log to find each latest answer
                conn,
                # SQLite: with MAX(id), the bare `status` comes from the row holding the max.
                "SELECT COALESCE(SUM(g.party_size), 0) AS n FROM guests g "
                "JOIN (SELECT guest_id, status, MAX(id) FROM rsvps GROUP BY guest_id) r "
                "ON r.guest_id = g.id WHERE g.wedding_id = ? AND r.status = ?",
                (wedding_id, "accepted"),
            )
        timeline: JSON = {
            "wedding_id": wedding_id,
            "couple": f"{couple['partner_a']} & {couple['partner_b']}",
            "date": couple["date"],
            "attending": attending["n"] if attending else 0,
            "events": [dict(row) for row in events],
        }
        date = dt.date.fromisoformat(couple["date"])
        self.cache.set_timeline(wedding_id, timeline, wedding_date=date)
        return timeline

    def guest_list(self, wedding_id: str) -> JSON | None:
        """Every guest and their RSVP, one query per guest: the N+1 the telemetry flags."""
        with self._db() as conn:
            wedding = self._one(conn, "SELECT date FROM weddings WHERE id = ?", (wedding_id,))
            if wedding is None:
                return None
            guests = self._rows(
                conn,
                "SELECT id, name, party_size, dietary FROM guests WHERE wedding_id = ? ORDER BY id",
                (wedding_id,),
            )
            listed = []
            for guest in guests:  # the N+1, each a scan of the RSVP log (no index on guest_id)
                rsvp = self._one(
                    conn,
                    "SELECT status, meal FROM rsvps WHERE guest_id = ? ORDER BY id DESC LIMIT 1",
                    (guest["id"],),
                )
                listed.append({**dict(guest), **(dict(rsvp) if rsvp else {"status": None})})
        return {"wedding_id": wedding_id, "date": wedding["date"], "guests": listed}

    def rsvp(self, wedding_id: str, guest_id: int, status: str, meal: str | None) -> JSON | None:
        """Log a guest's answer; drops the wedding's cached timeline (its head count)."""
        answered = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
        with self._db() as conn:
            guest = self._one(
                conn,
                "SELECT id FROM guests WHERE id = ? AND wedding_id = ?",
                (guest_id, wedding_id),
            )
            if guest is None:
                return None
            cursor = conn.cursor()
            try:
                cursor.execute(
                    "INSERT INTO rsvps (guest_id, status, meal, responded_at) VALUES (?, ?, ?, ?)",
                    (guest_id, status, meal, answered),
                )
            finally:
                cursor.close()
            conn.commit()
        self.cache.invalidate_wedding(wedding_id)
        return {"wedding_id": wedding_id, "guest_id": guest_id, "status": status, "meal": meal}

    def charge(self, wedding_id: str, supplier_id: str, amount_pence: int) -> tuple[int, JSON]:
        """Charge a couple for a supplier: 201, 404 for unknown ids, 502 when the gateway fails."""
        with self._db() as conn:
            known = self._one(
                conn,
                "SELECT (SELECT 1 FROM weddings WHERE id = ?) AS wedding, "
                "(SELECT 1 FROM suppliers WHERE id = ?) AS supplier",
                (wedding_id, supplier_id),
            )
            if known is None or not known["wedding"] or not known["supplier"]:
                return 404, {"error": "unknown wedding or supplier"}
            accepted = self.gateway.charge(amount_pence)
            cursor = conn.cursor()
            try:
                cursor.execute(
                    "INSERT INTO payments (reference, wedding_id, supplier_id, amount_pence, "
                    "status, created_at) VALUES (?, ?, ?, ?, ?, ?)",
                    (
                        f"pay-{uuid.uuid4().hex[:20]}",
                        wedding_id,
                        supplier_id,
                        amount_pence,
                        "succeeded" if accepted else "failed",
                        dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
                    ),
                )
                payment_id = cursor.lastrowid
            finally:
                cursor.close()
            conn.commit()
        if not accepted:
            return 502, {"error": "the payment gateway declined to answer", "id": payment_id}
        return 201, {"id": payment_id, "wedding_id": wedding_id, "amount_pence": amount_pence}


def wedding_date_resolver(db_path: Path) -> Callable[[str], dt.date | None]:
    """Looks a wedding's date up by wedding id or by couple id, on a connection of its own.

    The connection is untraced: a lookup runs on the resolver's own thread,
    outside any request, and would otherwise report itself as a request.
    """

    def resolve(key: str) -> dt.date | None:
        with closing(connect_untraced(db_path, read_only=True)) as conn:
            row = conn.execute("SELECT date FROM weddings WHERE id = ?", (key,)).fetchone()
            if row is None:
                row = conn.execute(
                    "SELECT w.date FROM couples c JOIN weddings w ON w.id = c.wedding_id "
                    "WHERE c.id = ?",
                    (key,),
                ).fetchone()
        return dt.date.fromisoformat(row[0]) if row else None

    return resolve


def _error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status)


def _found(value: JSON | None, what: str) -> JSONResponse:
    return JSONResponse(value) if value is not None else _error(404, f"unknown {what}")


async def _in_wedding(wedding_id: str, call: Callable[..., T], *args: object) -> T:
    """Run ``call`` in the thread pool inside the wedding's context.

    For endpoints whose path template names no wedding (RSVP, payments), the
    ASGI middleware cannot find it: the handler sets it, as an app would.
    """
    date = await resolve_wedding_date_async(wedding_id)
    with wedding_context(wedding_id=wedding_id, wedding_date=date, resolve=False):
        return await run_in_threadpool(call, *args)


async def _json_body(request: Request) -> JSON | None:
    try:
        body = await request.json()
    except ValueError:
        return None
    return body if isinstance(body, dict) else None


def _routes(service: WedSyncService) -> list[Route]:
    async def health(request: Request) -> Response:
        return JSONResponse({"status": "ok"})

    async def venue_availability(request: Request) -> Response:
        try:
            date = dt.date.fromisoformat(request.query_params.get("date", ""))
        except ValueError:
            return _error(400, "date must be YYYY-MM-DD")
        venue_id = request.path_params["venue_id"]
        found = await run_in_threadpool(service.venue_availability, venue_id, date)
        return _found(found, "venue")

    async def supplier_profile(request: Request) -> Response:
        supplier_id = request.path_params["supplier_id"]
        return _found(await run_in_threadpool(service.supplier_profile, supplier_id), "supplier")

    async def couple_timeline(request: Request) -> Response:
        couple_id = request.path_params["couple_id"]
        return _found(await run_in_threadpool(service.couple_timeline, couple_id), "couple")

    async def guest_list(request: Request) -> Response:
        wedding_id = request.path_params["wedding_id"]
        return _found(await run_in_threadpool(service.guest_list, wedding_id), "wedding")

    async def rsvp(request: Request) -> Response:
        body = await _json_body(request) or {}
        wedding_id = request.path_params["wedding_id"]
        guest_id, status, meal = body.get("guest_id"), body.get("status"), body.get("meal")
        if (
            not isinstance(guest_id, int)
            or isinstance(guest_id, bool)
            or status not in RSVP_STATUSES
        ):
            return _error(400, "need guest_id (int) and status (accepted, declined, pending)")
        if meal is not None and not isinstance(meal, str):
            return _error(400, "meal must be a string")
        found = await _in_wedding(wedding_id, service.rsvp, wedding_id, guest_id, status, meal)
        return _found(found, "guest of this wedding")

    async def charge(request: Request) -> Response:
        body = await _json_body(request) or {}
        wedding_id, supplier_id = body.get("wedding_id"), body.get("supplier_id")
        amount = body.get("amount_pence")
        if not (isinstance(wedding_id, str) and isinstance(supplier_id, str)):
            return _error(400, "need wedding_id and supplier_id")
        if not isinstance(amount, int) or isinstance(amount, bool) or amount <= 0:
            return _error(400, "amount_pence must be a positive integer")
        status, result = await _in_wedding(
            wedding_id, service.charge, wedding_id, supplier_id, amount
        )
        return JSONResponse(result, status_code=status)

    return [
        Route("/health", health),
        Route("/api/venues/{venue_id}/availability", venue_availability),
        Route("/api/suppliers/{supplier_id}/profile", supplier_profile),
        Route("/api/couples/{couple_id}/timeline", couple_timeline),
        Route("/api/weddings/{wedding_id}/guests", guest_list),
        Route("/api/rsvp/{wedding_id}", rsvp, methods=["POST"]),
        Route("/api/payments/charge", charge, methods=["POST"]),
    ]


QUERY_ID_ENDPOINTS: Final = ("venue_availability", "supplier_profiles")
"""The demo's endpoints whose paths name a venue or supplier: ``?wedding_id=`` names the wedding."""


def demo_config(config: WeddingConfig) -> WeddingConfig:
    """``config`` with the demo's query-id endpoints taking ``?wedding_id=`` (see the README)."""
    endpoints = tuple(
        dataclasses.replace(spec, wedding_id_from_query=True)
        if spec.name in QUERY_ID_ENDPOINTS
        else spec
        for spec in config.endpoints
    )
    return dataclasses.replace(config, endpoints=endpoints)


def create_app(
    *,
    db_path: Path,
    cache: WeddingCache,
    config: WeddingConfig | None = None,
    tracer_provider: TracerProvider | None = None,
    meter_provider: MeterProvider | None = None,
    gateway: PaymentGateway | None = None,
) -> Starlette:
    """The instrumented demo API over the database at ``db_path``.

    Server spans come from the contrib Starlette instrumentation (so
    ``http.route`` is the template), on ``tracer_provider`` (default: the
    global one); `WeddingMiddleware`, inside the contrib middleware, finds
    each request's wedding and marks the server span with it. The
    wedding resolver is process-wide, like the middleware that asks it: this
    registers one that reads this database.
    """
    effective = config if config is not None else demo_config(load_config())
    set_wedding_resolver(wedding_date_resolver(db_path))
    service = WedSyncService(db_path, cache, gateway=gateway)
    # WeddingMiddleware must run inside the contrib middleware, where the server span is
    # current: instrument_app adds the contrib one outermost, around this one.
    app = Starlette(
        routes=_routes(service), middleware=[Middleware(WeddingMiddleware, config=effective)]
    )
    StarletteInstrumentor.instrument_app(
        app, tracer_provider=tracer_provider, meter_provider=meter_provider
    )
    return app
