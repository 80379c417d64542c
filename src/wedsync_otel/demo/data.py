"""The demo's WedSync database: a realistic schema filled deterministically from a seed.

Weddings are spread over every proximity band relative to ``today`` (on the
day, in the final week, the final month, still planning, already past), so
every band shows up in the telemetry. RSVPs are a log, a row per answer with
the latest counting, as they often are in practice.

Some lookups are deliberately left without an index
(``venue_availability.venue_id``, ``rsvps.guest_id``,
``timeline_events.wedding_id``). The tables are just big enough (10,000 to
30,000 rows) for those scans to show in the latencies and for the
`QueryAdvisor` to find them, and small enough to build in about half a second.
"""

from __future__ import annotations

import datetime as dt
import random
import sqlite3
from collections.abc import Iterator, Sequence
from contextlib import closing, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Final
from zoneinfo import ZoneInfo

from wedsync_otel.calendar import Band, band_for_days
from wedsync_otel.config import WeddingConfig

DEFAULT_SEED: Final = 20260620

WEDDINGS: Final = 320
VENUES: Final = 60
SUPPLIERS: Final = 180
AVAILABILITY_DAYS: Final = 400
"""Days of availability per venue, from 30 days ago: 24,000 rows, scanned unindexed."""
GUESTS_PER_WEDDING: Final = (20, 80)
EVENTS_PER_WEDDING: Final = (20, 45)

SHOWCASE_OFFSETS: Final = (0, 3, 20, 90, -30)
"""The first weddings' days from today: one per band, so each band has a known wedding."""

_BAND_OFFSETS: Final = (
    (Band.WEDDING_DAY, 0.06, (0, 0)),
    (Band.FINAL_WEEK, 0.18, (1, 7)),
    (Band.FINAL_MONTH, 0.26, (8, 30)),
    (Band.PLANNING, 0.38, (31, 365)),
    (Band.PAST, 0.12, (-120, -1)),
)
"""(band, share of weddings, range of days from today)."""

SCHEMA: Final = """
CREATE TABLE venues (
    id TEXT PRIMARY KEY, name TEXT NOT NULL, city TEXT NOT NULL,
    capacity INTEGER NOT NULL, price_pence INTEGER NOT NULL
);
CREATE TABLE venue_availability (
    id INTEGER PRIMARY KEY, venue_id TEXT NOT NULL REFERENCES venues(id),
    date TEXT NOT NULL, status TEXT NOT NULL, price_pence INTEGER NOT NULL
);
CREATE TABLE weddings (
    id TEXT PRIMARY KEY, date TEXT NOT NULL, venue_id TEXT NOT NULL REFERENCES venues(id),
    budget_pence INTEGER NOT NULL, status TEXT NOT NULL
);
CREATE TABLE couples (
    id TEXT PRIMARY KEY, wedding_id TEXT NOT NULL UNIQUE REFERENCES weddings(id),
    partner_a TEXT NOT NULL, partner_b TEXT NOT NULL, email TEXT NOT NULL
);
CREATE TABLE suppliers (
    id TEXT PRIMARY KEY, name TEXT NOT NULL, category TEXT NOT NULL,
    city TEXT NOT NULL, rating REAL NOT NULL
);
CREATE TABLE supplier_profiles (
    supplier_id TEXT PRIMARY KEY REFERENCES suppliers(id), bio TEXT NOT NULL,
    price_from_pence INTEGER NOT NULL, review_count INTEGER NOT NULL, services TEXT NOT NULL
);
CREATE TABLE guests (
    id INTEGER PRIMARY KEY, wedding_id TEXT NOT NULL REFERENCES weddings(id),
    name TEXT NOT NULL, email TEXT NOT NULL, party_size INTEGER NOT NULL, dietary TEXT
);
CREATE INDEX ix_guests_wedding_id ON guests (wedding_id);
CREATE TABLE rsvps (
    id INTEGER PRIMARY KEY, guest_id INTEGER NOT NULL REFERENCES guests(id),
    status TEXT NOT NULL, meal TEXT, responded_at TEXT NOT NULL
);
CREATE TABLE payments (
    id INTEGER PRIMARY KEY, reference TEXT NOT NULL UNIQUE,
    wedding_id TEXT NOT NULL REFERENCES weddings(id),
    supplier_id TEXT NOT NULL REFERENCES suppliers(id),
    amount_pence INTEGER NOT NULL, status TEXT NOT NULL, created_at TEXT NOT NULL
);
CREATE INDEX ix_payments_wedding_id ON payments (wedding_id);
CREATE TABLE timeline_events (
    id INTEGER PRIMARY KEY, wedding_id TEXT NOT NULL REFERENCES weddings(id),
    starts_at TEXT NOT NULL, title TEXT NOT NULL, supplier_id TEXT REFERENCES suppliers(id),
    location TEXT NOT NULL
);
"""

_CITIES: Final = ("London", "Bath", "York", "Edinburgh", "Cardiff", "Bristol", "Oxford", "Leeds")
_FIRST: Final = (
    "Ada", "Ben", "Chloe", "Dev", "Elif", "Finn", "Grace", "Hugo", "Isla", "Jamal", "Kate",
    "Leo", "Maya", "Nico", "Olive", "Priya", "Quinn", "Rosa", "Sam", "Tariq", "Uma", "Vik",
)  # fmt: skip
_LAST: Final = (
    "Adeyemi", "Brown", "Chen", "Davies", "Evans", "Fraser", "Garcia", "Hughes", "Iqbal",
    "Jones", "Khan", "Lewis", "Murphy", "Novak", "Owen", "Patel", "Reid", "Singh", "Taylor",
)  # fmt: skip
_CATEGORIES: Final = ("photographer", "florist", "caterer", "band", "cake", "planner", "dj")
_DIETARY: Final = (None, None, None, "vegetarian", "vegan", "gluten-free", "halal")
_ANSWERS: Final = ("accepted", "accepted", "accepted", "declined")
_MEALS: Final = ("beef", "fish", "vegetarian")
_EVENTS: Final = (
    "Hair and make-up", "Photographer arrives", "Ceremony", "Signing of the register",
    "Drinks reception", "Group photos", "Wedding breakfast", "Speeches", "Cake cutting",
    "First dance", "Band", "Evening food", "Carriages",
)  # fmt: skip


@dataclass(frozen=True, slots=True)
class WeddingRef:
    """What the load generator needs to know about one wedding."""

    wedding_id: str
    couple_id: str
    date: dt.date
    band: Band
    venue_id: str
    first_guest_id: int
    guest_count: int


@dataclass(frozen=True, slots=True)
class DemoData:
    """The database file and the ids in it, for the app's callers."""

    db_path: Path
    today: dt.date
    weddings: tuple[WeddingRef, ...]
    venue_ids: tuple[str, ...]
    supplier_ids: tuple[str, ...]

    def by_band(self, band: Band) -> tuple[WeddingRef, ...]:
        """The weddings in one proximity band."""
        return tuple(w for w in self.weddings if w.band is band)


def today_for(config: WeddingConfig) -> dt.date:
    """Today in the platform time zone: the day the span processor measures proximity from."""
    return dt.datetime.now(ZoneInfo(config.timezone)).date()


def connect_untraced(db_path: Path, *, read_only: bool = False) -> sqlite3.Connection:
    """A connection the contrib sqlite3 instrumentation does not trace.

    It wraps the module's ``connect`` function; the `sqlite3.Connection`
    class itself is left alone, so building the data, resolving weddings and
    EXPLAINing queries do not show up as requests of their own.
    """
    if read_only:
        uri = f"{db_path.resolve().as_uri()}?mode=ro"
        return sqlite3.Connection(uri, uri=True, timeout=5.0)
    return sqlite3.Connection(str(db_path), timeout=5.0)


@contextmanager
def _transaction(db_path: Path) -> Iterator[sqlite3.Connection]:
    with closing(connect_untraced(db_path)) as conn, conn:
        yield conn


def _name(rng: random.Random) -> str:
    return f"{rng.choice(_FIRST)} {rng.choice(_LAST)}"


def _offsets(rng: random.Random, count: int) -> list[int]:
    """Days from today per wedding: the showcase first, then drawn by band share."""
    weights = [share for _, share, _ in _BAND_OFFSETS]
    spans = [span for _, _, span in _BAND_OFFSETS]
    drawn = rng.choices(spans, weights=weights, k=max(0, count - len(SHOWCASE_OFFSETS)))
    return [*SHOWCASE_OFFSETS, *(rng.randint(*span) for span in drawn)][:count]


def build(
    db_path: Path, *, today: dt.date, seed: int = DEFAULT_SEED, weddings: int = WEDDINGS
) -> DemoData:
    """Create and fill the database at ``db_path``; the same seed and day give the same data."""
    if weddings < len(SHOWCASE_OFFSETS):
        raise ValueError(f"weddings must be at least {len(SHOWCASE_OFFSETS)}, not {weddings}")
    if db_path.exists():
        raise FileExistsError(f"{db_path} exists: the demo builds a fresh database")
    rng = random.Random(seed)
    venue_ids = tuple(f"v-{n:03d}" for n in range(1, VENUES + 1))
    supplier_ids = tuple(f"s-{n:03d}" for n in range(1, SUPPLIERS + 1))
    with _transaction(db_path) as conn:
        conn.executescript(SCHEMA)
        _insert_venues(conn, rng, venue_ids, today)
        _insert_suppliers(conn, rng, supplier_ids)
        refs = _insert_weddings(conn, rng, weddings, today, venue_ids)
        _insert_guests(conn, rng, refs, today)
        _insert_timelines(conn, rng, refs, supplier_ids)
        _insert_payments(conn, rng, refs, supplier_ids, today)
    with closing(connect_untraced(db_path)) as conn:
        # WAL: readers on other connections never wait for the RSVP and payment writers.
        conn.execute("PRAGMA journal_mode = WAL")
    return DemoData(
        db_path=db_path,
        today=today,
        weddings=tuple(refs),
        venue_ids=venue_ids,
        supplier_ids=supplier_ids,
    )


def _insert_venues(
    conn: sqlite3.Connection, rng: random.Random, venue_ids: Sequence[str], today: dt.date
) -> None:
    venues = []
    availability = []
    first_day = today - dt.timedelta(days=30)
    for venue_id in venue_ids:
        price = rng.randrange(200_000, 2_500_000, 5_000)
        venues.append(
            (
                venue_id,
                f"{rng.choice(_LAST)} Hall",
                rng.choice(_CITIES),
                rng.randrange(40, 400, 10),
                price,
            )
        )
        for day in range(AVAILABILITY_DAYS):
            date = first_day + dt.timedelta(days=day)
            weekend = date.weekday() >= 4
            status = "booked" if rng.random() < (0.55 if weekend else 0.15) else "available"
            availability.append(
                (venue_id, date.isoformat(), status, price * (13 if weekend else 10) // 10)
            )
    conn.executemany("INSERT INTO venues VALUES (?, ?, ?, ?, ?)", venues)
    conn.executemany(
        "INSERT INTO venue_availability (venue_id, date, status, price_pence) VALUES (?, ?, ?, ?)",
        availability,
    )


def _insert_suppliers(
    conn: sqlite3.Connection, rng: random.Random, supplier_ids: Sequence[str]
) -> None:
    suppliers = []
    profiles = []
    for supplier_id in supplier_ids:
        category = rng.choice(_CATEGORIES)
        name = f"{rng.choice(_LAST)} {category.title()}s"
        suppliers.append(
            (supplier_id, name, category, rng.choice(_CITIES), round(rng.uniform(3.2, 5.0), 1))
        )
        services = ",".join(
            sorted(
                rng.sample(
                    ("full day", "half day", "travel", "extras", "consultation", "rehearsal"), 3
                )
            )
        )
        profiles.append(
            (
                supplier_id,
                f"{name}: {category} for weddings across the UK.",
                rng.randrange(30_000, 400_000, 1_000),
                rng.randrange(0, 400),
                services,
            )
        )
    conn.executemany("INSERT INTO suppliers VALUES (?, ?, ?, ?, ?)", suppliers)
    conn.executemany("INSERT INTO supplier_profiles VALUES (?, ?, ?, ?, ?)", profiles)


def _insert_weddings(
    conn: sqlite3.Connection,
    rng: random.Random,
    count: int,
    today: dt.date,
    venue_ids: Sequence[str],
) -> list[WeddingRef]:
    refs = []
    next_guest = 1
    for number, offset in enumerate(_offsets(rng, count), start=1):
        date = today + dt.timedelta(days=offset)
        guests = rng.randint(*GUESTS_PER_WEDDING)
        refs.append(
            WeddingRef(
                wedding_id=f"w-{number:04d}",
                couple_id=f"c-{number:04d}",
                date=date,
                band=band_for_days(offset),
                venue_id=rng.choice(venue_ids),
                first_guest_id=next_guest,
                guest_count=guests,
            )
        )
        next_guest += guests
    conn.executemany(
        "INSERT INTO weddings VALUES (?, ?, ?, ?, ?)",
        [
            (
                ref.wedding_id,
                ref.date.isoformat(),
                ref.venue_id,
                rng.randrange(1_000_000, 6_000_000, 10_000),
                "married" if ref.date < today else "planning",
            )
            for ref in refs
        ],
    )
    conn.executemany(
        "INSERT INTO couples VALUES (?, ?, ?, ?, ?)",
        [
            (
                ref.couple_id,
                ref.wedding_id,
                _name(rng),
                _name(rng),
                f"couple{ref.couple_id[2:]}@example.org",
            )
            for ref in refs
        ],
    )
    return refs


def _insert_guests(
    conn: sqlite3.Connection, rng: random.Random, refs: Sequence[WeddingRef], today: dt.date
) -> None:
    guests = []
    rsvps = []
    for ref in refs:
        for guest_id in range(ref.first_guest_id, ref.first_guest_id + ref.guest_count):
            name = _name(rng)
            guests.append(
                (
                    guest_id,
                    ref.wedding_id,
                    name,
                    f"guest{guest_id}@example.org",
                    rng.choice((1, 1, 1, 2)),
                    rng.choice(_DIETARY),
                )
            )
            rsvps.extend(_rsvp_history(rng, guest_id, today))
    conn.executemany("INSERT INTO guests VALUES (?, ?, ?, ?, ?, ?)", guests)
    conn.executemany(
        "INSERT INTO rsvps (guest_id, status, meal, responded_at) VALUES (?, ?, ?, ?)", rsvps
    )


def _rsvp_history(
    rng: random.Random, guest_id: int, today: dt.date
) -> list[tuple[int, str, str | None, str]]:
    """A guest's RSVP log, oldest first: invited, usually answered, sometimes changed."""
    invited = today - dt.timedelta(days=rng.randint(60, 200))
    history: list[tuple[int, str, str | None, str]] = [
        (guest_id, "pending", None, invited.isoformat())
    ]
    answered = invited
    for chance in (0.8, 0.15):
        if rng.random() >= chance:
            break
        answered += dt.timedelta(days=rng.randint(1, 40))
        status = rng.choice(_ANSWERS)
        meal = rng.choice(_MEALS) if status == "accepted" else None
        history.append((guest_id, status, meal, min(answered, today).isoformat()))
    return history


def _insert_timelines(
    conn: sqlite3.Connection,
    rng: random.Random,
    refs: Sequence[WeddingRef],
    supplier_ids: Sequence[str],
) -> None:
    events = []
    for ref in refs:
        start = dt.datetime.combine(ref.date, dt.time(8, 0))
        for _ in range(rng.randint(*EVENTS_PER_WEDDING)):
            start += dt.timedelta(minutes=rng.choice((10, 15, 20, 30, 45)))
            events.append(
                (
                    ref.wedding_id,
                    start.isoformat(timespec="minutes"),
                    rng.choice(_EVENTS),
                    rng.choice(supplier_ids),
                    rng.choice(("Ceremony room", "Garden", "Great hall", "Terrace")),
                )
            )
    conn.executemany(
        "INSERT INTO timeline_events (wedding_id, starts_at, title, supplier_id, location) "
        "VALUES (?, ?, ?, ?, ?)",
        events,
    )


def _insert_payments(
    conn: sqlite3.Connection,
    rng: random.Random,
    refs: Sequence[WeddingRef],
    supplier_ids: Sequence[str],
    today: dt.date,
) -> None:
    payments: list[tuple[str, str, str, int, str, str]] = []
    for ref in refs:
        for _ in range(rng.randint(2, 12)):
            created = today - dt.timedelta(days=rng.randint(1, 300))
            payments.append(
                (
                    f"pay-{len(payments) + 1:06d}",
                    ref.wedding_id,
                    rng.choice(supplier_ids),
                    rng.randrange(5_000, 500_000, 500),
                    rng.choice(("succeeded", "succeeded", "succeeded", "refunded")),
                    created.isoformat(),
                )
            )
    conn.executemany(
        "INSERT INTO payments (reference, wedding_id, supplier_id, amount_pence, status, "
        "created_at) VALUES (?, ?, ?, ?, ?, ?)",
        payments,
    )
