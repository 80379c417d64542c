"""The one eviction rule every bounded cache here shares: oldest entry first."""

from __future__ import annotations

from collections.abc import MutableMapping
from typing import Any, TypeVar

K = TypeVar("K")
V = TypeVar("V")


def evict_oldest(mapping: MutableMapping[Any, Any]) -> bool:
    """Remove the entry inserted first; False when another thread got there first.

    Dict order is insertion order, so this is FIFO at O(1). Readers do not
    lock, so a concurrent eviction can empty or change the dict between the
    two steps: then the bound still holds and nothing needs doing.
    """
    try:
        del mapping[next(iter(mapping))]
    except (KeyError, RuntimeError, StopIteration):
        return False
    return True


class BoundedDict(dict[K, V]):
    """A dict that `put` keeps within ``max_entries``, evicting the oldest and counting it.

    Reads are the plain dict's (C speed, no lock), so a hot path pays nothing
    for the bound; only insertions go through `put`.
    """

    __slots__ = ("evictions", "max_entries")

    def __init__(self, max_entries: int) -> None:
        super().__init__()
        self.max_entries = max_entries
        self.evictions = 0
        """Entries evicted so far to make room."""

    def put(self, key: K, value: V) -> V:
        """Store ``value`` under ``key``, evicting the oldest entry first when full."""
        if len(self) >= self.max_entries and key not in self and evict_oldest(self):
            self.evictions += 1
        self[key] = value
        return value
