"""What a cache operation asks of Redis: calls as plain data, so one core serves sync and asyncio.

An operation is a generator (`Op`) that yields each `Call` it needs and is
sent back the reply, or `Failed` with what the call raised.
"""

from __future__ import annotations

from collections.abc import Generator
from dataclasses import dataclass
from typing import TypeAlias, TypeVar

from wedsync_otel.cache._key_layout import EntryKey, index_key
from wedsync_otel.cache._ttl import WEDDING_INDEX_TTL_S

T = TypeVar("T")

Arg: TypeAlias = str | bytes | int
Command: TypeAlias = tuple[Arg, ...]


@dataclass(frozen=True, slots=True)
class Call:
    """Commands to send: one alone, or several in a pipeline (a MULTI/EXEC one if transaction)."""

    commands: tuple[Command, ...]
    transaction: bool = False

    @property
    def single(self) -> bool:
        """Whether the call is one command sent on its own, without a pipeline."""
        return len(self.commands) == 1 and not self.transaction


@dataclass(frozen=True, slots=True)
class Failed:
    """What an operation is sent instead of a reply when the call raised."""

    error: Exception


Op: TypeAlias = Generator[Call, object, T]
"""An operation: yields calls, is sent each reply or `Failed`, returns its result."""


def write_call(key: EntryKey, data: str, ttl_s: int) -> Call:
    """SET with EX; for a wedding's key also SADD to its index and renew the index's expiry.

    Every wedding-scoped TTL is at most WEDDING_INDEX_TTL_S and the index's
    expiry is reset to it in the same transaction, so the index outlives every
    member (Redis 6.2 has no ``EXPIRE ... GT``).
    """
    set_command: Command = ("SET", key.text, data, "EX", ttl_s)
    if key.wedding_id is None:
        return Call((set_command,))
    index = index_key(key.wedding_id)
    return Call(
        (set_command, ("SADD", index, key.text), ("EXPIRE", index, WEDDING_INDEX_TTL_S)),
        transaction=True,
    )


def set_members(reply: object) -> list[Arg]:
    """The string members of an SMEMBERS reply; none if the reply is not a collection."""
    if not isinstance(reply, set | frozenset | list | tuple):
        return []
    return [member for member in reply if isinstance(member, str | bytes)]
