"""A cache key's namespace: the one part of a key safe to export (pure, no Redis import).

`WeddingCache` and the Redis instrumentation hooks both name keys by it, and
the cache must not need the contrib Redis instrumentation to do so.
"""

from __future__ import annotations

import re
from typing import Final

OTHER_NAMESPACE: Final = "other"
"""Namespace reported for a key whose first segment is missing, too long or unsafe."""
MAX_NAMESPACE_CHARS: Final = 64
_SEGMENT = re.compile(r"[A-Za-z0-9_.-]{1,64}")
_SEGMENT_BYTES = re.compile(rb"[A-Za-z0-9_.-]{1,64}")


def key_namespace(key: object) -> str:
    """The first ``:``-separated segment of a key, or ``other``; never the key itself.

    Only the first 65 characters are looked at, so a huge key costs nothing. A
    key without ``:`` has no namespace: its only segment would be the whole key.
    """
    if isinstance(key, str):
        head, colon, _ = key[: MAX_NAMESPACE_CHARS + 1].partition(":")
        return head if colon and _SEGMENT.fullmatch(head) else OTHER_NAMESPACE
    if isinstance(key, bytes | bytearray):
        raw, raw_colon, _ = bytes(key[: MAX_NAMESPACE_CHARS + 1]).partition(b":")
        if raw_colon and _SEGMENT_BYTES.fullmatch(raw):
            return raw.decode("ascii")
    return OTHER_NAMESPACE
