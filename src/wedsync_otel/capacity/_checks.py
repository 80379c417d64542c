"""Argument checks the capacity modules share."""

from __future__ import annotations


def is_int(value: object) -> bool:
    """Whether ``value`` is a whole number, and not a bool (``True`` is an ``int`` in Python)."""
    return isinstance(value, int) and not isinstance(value, bool)
