"""What the PostgreSQL and SQLite readers share: table facts and index advice.

Both readers look up the same facts about a scanned table, answer with the same
`IndexAdvice` and skip a filter the same way when an existing index already
starts with its columns. Pure: no database, no OpenTelemetry.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import NamedTuple

from wedsync_otel.db._sql import Condition


@dataclass(frozen=True, slots=True)
class RelationFacts:
    """What the catalogue says about one scanned table."""

    name: str
    """As SQL: schema-qualified and quoted where needed (PostgreSQL's ``regclass`` text)."""
    rows: float | None
    """Estimated rows in the whole table; None when unknown."""
    index_keys: tuple[tuple[str, ...], ...]
    """Key columns of each valid, non-partial index ("" for an expression)."""


class IndexAdvice(NamedTuple):
    """One ``CREATE INDEX`` a plan calls for, and what in the plan calls for it."""

    table: str
    columns: tuple[str, ...]
    advice: str
    """The ``CREATE INDEX`` statement, in the database's own dialect."""
    evidence: str


def covered(
    chosen: Sequence[Condition], index_keys: Sequence[Sequence[str]], *, fold: bool
) -> bool:
    """True when an existing index starts with the chosen columns (equalities in any order)."""

    def norm(name: str) -> str:
        return name.lower() if fold else name

    equal = {norm(c.key) for c in chosen if c.equality}
    ranged = [norm(c.key) for c in chosen if not c.equality]
    for keys in index_keys:
        normalised = [norm(key) for key in keys]
        head = normalised[: len(equal)]
        if set(head) != equal or len(head) < len(equal):
            continue
        if not ranged or normalised[len(equal) : len(equal) + 1] == ranged:
            return True
    return False


def rows_text(rows: float | None) -> str:
    """A table's estimated size as the evidence shows it."""
    return f"~{rows:.0f} rows" if rows is not None else "row count unknown"
