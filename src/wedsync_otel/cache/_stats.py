"""What the cache counts: the public `CacheStats` snapshot and the tally the core keeps."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True, kw_only=True)
class CacheStats:
    """Counts since the cache was created."""

    hits: int = 0
    misses: int = 0
    fallback_reads: int = 0
    fallback_writes: int = 0
    evictions: int = 0
    """Fallback entries pushed out by the LRU bound."""
    errors: int = 0
    """Failed Redis calls of any kind, and cached values that would not decode."""
    loader_errors: int = 0
    """`warm` loaders that raised or returned what JSON cannot hold; skipped."""
    reconnections: int = 0
    unreconciled: int = 0
    """Fallback writes and invalidations beyond the bound kept for the reconnection clean-up:
    Redis may serve a value older than these until it expires."""


@dataclass(slots=True)
class Counts:
    """The mutable tally behind `CacheStats` (all but evictions, which the store counts)."""

    hits: int = 0
    misses: int = 0
    fallback_reads: int = 0
    fallback_writes: int = 0
    errors: int = 0
    loader_errors: int = 0
    reconnections: int = 0
    unreconciled: int = 0
