"""The in-process fallback store: a bounded LRU of serialised entries with expiry times."""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass


@dataclass(slots=True)
class MemoryEntry:
    """A serialised value, when it expires (monotonic seconds) and its wedding, if any."""

    data: str
    expires_at: float
    wedding_id: str | None


class MemoryStore:
    """An LRU of serialised entries with expiry times; the core's lock guards it."""

    def __init__(self, max_entries: int) -> None:
        self._entries: OrderedDict[str, MemoryEntry] = OrderedDict()
        self._max_entries = max_entries
        self.evictions = 0

    def get(self, key: str, now: float) -> str | None:
        """The live entry's data, or None (an expired entry is removed)."""
        entry = self._entries.get(key)
        if entry is None:
            return None
        if entry.expires_at <= now:
            del self._entries[key]
            return None
        self._entries.move_to_end(key)
        return entry.data

    def put(self, key: str, entry: MemoryEntry) -> None:
        """Store an entry, evicting (and counting) the least recently used beyond the bound."""
        self._entries[key] = entry
        self._entries.move_to_end(key)
        while len(self._entries) > self._max_entries:
            self._entries.popitem(last=False)
            self.evictions += 1

    def drop_wedding(self, wedding_id: str, now: float) -> int:
        """Remove a wedding's entries; how many were still live."""
        doomed = [key for key, entry in self._entries.items() if entry.wedding_id == wedding_id]
        live = 0
        for key in doomed:
            live += self._entries.pop(key).expires_at > now
        return live

    def clear(self) -> None:
        """Drop every entry."""
        self._entries.clear()
