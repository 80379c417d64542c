"""Attribute keys whose values are secrets whatever they look like.

A key is sensitive when, lower-cased and with every character that is not a
letter or digit removed, it contains one of `SENSITIVE_KEY_WORDS`: so
``http.request.header.authorization``, ``user.password``, ``X-Api-Key`` and
``session_id`` are all caught, however an instrumentation spells them.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Final

SENSITIVE_KEY_WORDS: Final = (
    "password",
    "passwd",
    "passphrase",
    "secret",
    "token",
    "authorization",
    "cookie",
    "session",
    "apikey",
    "accesskey",
    "privatekey",
    "creditcard",
    "cardnumber",
    "credential",
    "signature",
    "bearer",
    "csrf",
    "xsrf",
)
"""Words that make a key sensitive wherever they stand in it, punctuation removed."""

SENSITIVE_KEY_SEGMENTS: Final = frozenset(
    {"auth", "pwd", "pass", "pin", "jwt", "card", "cvv", "cvc", "iban", "ssn", "otp"}
)
"""Short words that make a key sensitive only as a whole segment (``card.last4``, ``x-api-key``)."""

NOT_SENSITIVE_KEYS: Final = frozenset(
    {
        "gen_ai.usage.input_tokens",
        "gen_ai.usage.output_tokens",
        "messaging.kafka.message.key",
        "messaging.kafka.destination.partition",
    }
)
"""Keys that contain a sensitive word but hold a count or a public name."""

_SEGMENT_SPLIT = re.compile(r"[^a-z0-9]+")


def squeeze(key: str) -> str:
    """``key`` lower-cased with everything but letters and digits removed."""
    return _SEGMENT_SPLIT.sub("", key.lower())


class SensitiveKeys:
    """Decides whether the value under a key must be redacted whatever it holds."""

    def __init__(self, extra_words: Iterable[str] = ()) -> None:
        words = {*SENSITIVE_KEY_WORDS, *(squeeze(word) for word in extra_words)}
        words.discard("")
        self._words = re.compile("|".join(sorted(map(re.escape, words), key=len, reverse=True)))

    def is_sensitive(self, key: str) -> bool:
        """Whether the value under ``key`` is a secret by its name alone."""
        if key in NOT_SENSITIVE_KEYS:
            return False
        lowered = key.lower()
        if self._words.search(_SEGMENT_SPLIT.sub("", lowered)):
            return True
        return not SENSITIVE_KEY_SEGMENTS.isdisjoint(_SEGMENT_SPLIT.split(lowered))
