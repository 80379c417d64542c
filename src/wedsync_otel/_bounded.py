"""The one eviction rule every bounded cache here shares: oldest entry first."""

from __future__ import annotations

from collections.abc import MutableMapping
from typing import Any


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
