"""Cached values as compact JSON text: what may be stored, and what a typed getter returns."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import TypeAlias

JSONObject: TypeAlias = dict[str, object]


def _json_default(value: object) -> object:
    if isinstance(value, Mapping):
        return dict(value)
    raise TypeError(f"Object of type {type(value).__name__} is not JSON serializable")


def encode(value: object) -> str:
    """Compact JSON; TypeError for anything JSON cannot hold (NaN and cycles included)."""
    try:
        return json.dumps(value, separators=(",", ":"), allow_nan=False, default=_json_default)
    except ValueError as exc:
        raise TypeError(f"value cannot be cached as JSON: {exc}") from exc


def as_object(value: object) -> JSONObject | None:
    """A decoded value if it is a JSON object, else None."""
    return value if isinstance(value, dict) else None
