"""One scrubbing policy over every exported field: span names, attribute keys and values, text.

The SDK-side span processor and the rotel collector processor both call
this module, so the two cannot drift. The order is the one users know from
Logfire's scrubbing and the collector's redaction processor:

1. the allow-list: keys and exact values named in `PrivacyPolicy` pass as they are;
2. structural rewriting where the field's shape is known: SQL text, cache
   commands, URL queries and URLs, driver and exception messages, our own
   ``wedding.id`` and ``cache.key.namespace``;
3. sensitive keys (`wedsync_otel.privacy.keys`): the value is redacted whole;
4. sensitive values anywhere else (`wedsync_otel.privacy.values`): emails,
   card numbers, phone numbers, bearer tokens, JWTs, API keys.

The marker never echoes what it hid (``[redacted:email]``); with a
``hash_secret`` it carries an HMAC-SHA256 prefix instead (``[email:3f2a...]``),
so equal values stay joinable across spans without being readable. Every
redaction is counted by reason. Decisions per key, and the values already
known clean, are cached in bounded tables: most attributes repeat.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Final, TypeVar

from . import values
from .commands import command_name, scrub_command
from .keys import SensitiveKeys
from .messages import USER_RAISED_ERRORS, scrub_message, scrub_raised
from .sql import query_summary, sanitize_sql
from .urls import scrub_query, scrub_target, scrub_url

CACHE_SYSTEMS: Final = frozenset({"redis", "valkey", "memcached", "keydb", "dragonfly"})
"""``db.system`` values whose statements are cache commands, not SQL."""

DEFAULT_WEDDING_ID_PATTERN: Final = (
    r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"
    r"|[A-Za-z]{1,12}[-_]?[0-9]{1,12}|[0-9]{1,9}"
)
"""A UUID, a short prefix and a number (``w-1042``, ``wed_7``), or up to nine digits."""

DEFAULT_CACHE_NAMESPACES: Final = frozenset(
    {
        "availability", "booking", "couple", "couples", "guest", "guests", "payment",
        "payments", "rsvp", "session", "supplier", "suppliers", "timeline", "venue",
        "venues", "wedding", "weddings", "profile", "other",
    }
)  # fmt: skip
"""``cache.key.namespace`` values exported as they are; any other becomes ``other``."""

OTHER_NAMESPACE: Final = "other"

REDACTED: Final = "[redacted]"

# Structural fields, by key.
_STATEMENT_KEYS: Final = frozenset({"db.statement", "db.query.text"})
_SUMMARY_KEYS: Final = frozenset({"db.query.summary"})
_OPERATION_KEYS: Final = frozenset({"db.operation.name", "db.operation"})
_QUERY_KEYS: Final = frozenset({"url.query"})
_TARGET_KEYS: Final = frozenset({"http.target"})
_URL_KEYS: Final = frozenset({"url.full", "http.url", "url.original"})
_MESSAGE_KEYS: Final = frozenset(
    {"exception.message", "exception.stacktrace", "error.message", "db.response.message"}
)
_WEDDING_ID: Final = "wedding.id"
_CACHE_NAMESPACE: Final = "cache.key.namespace"
_SEARCH_QUERY: Final = "redis.search.query"
_SEARCH_DOCUMENT: Final = "redis.search.xdoc_"
_DATA_IN_KEY = re.compile(r"\s|^.{256}")
"""Keys with white space, or longer than any real name: data was used as a key."""
_SAFE_OPERATION = re.compile(r"[A-Za-z][A-Za-z0-9_.]{0,63}(?: [A-Za-z][A-Za-z0-9_.]{0,63}){0,2}")

_MAX_CACHED_KEYS: Final = 4096
_MAX_CACHED_VALUES: Final = 8192
_MAX_CACHED_VALUE_CHARS: Final = 512
_MAX_CACHED_STATEMENT_CHARS: Final = 8192
_MIN_CARD_INT: Final = 10**12


_K = TypeVar("_K")
_V = TypeVar("_V")


class Drop:
    """The value of an attribute that must not be exported at all (its key is the leak)."""


DROP: Final = Drop()


@dataclass(frozen=True, kw_only=True, slots=True)
class PrivacyPolicy:
    """What is scrubbed and what may pass; see the README's Privacy section."""

    allow_keys: frozenset[str] = frozenset()
    """Attribute keys exported exactly as set (a team that needs a field)."""
    allow_values: frozenset[str] = frozenset()
    """Exact string values exported as they are wherever they appear."""
    sensitive_keys: tuple[str, ...] = ()
    """More words that make a key sensitive, beside `keys.SENSITIVE_KEY_WORDS`."""
    keep_query_params: frozenset[str] = frozenset()
    """URL query parameters whose values are kept (``page``, ``sort``)."""
    hash_secret: str | None = field(default=None, repr=False)
    """With a secret, redacted values become a keyed hash, joinable but not readable."""
    wedding_id_pattern: str = DEFAULT_WEDDING_ID_PATTERN
    """The shape of a real wedding id; client input of any other shape is not exported."""
    cache_namespaces: frozenset[str] = DEFAULT_CACHE_NAMESPACES
    """Cache key namespaces exported by name; any other is reported as ``other``."""


Handler = Callable[[object, Mapping[str, object]], object]
"""Scrubs one attribute value, given the span's attributes; returns the value itself if clean."""


class Scrubber:
    """Applies a `PrivacyPolicy` to names, attributes and text; thread-safe."""

    def __init__(self, policy: PrivacyPolicy | None = None) -> None:
        self.policy = policy or PrivacyPolicy()
        self._sensitive = SensitiveKeys(self.policy.sensitive_keys)
        self._wedding_id = re.compile(self.policy.wedding_id_pattern)
        self._secret = (
            self.policy.hash_secret.encode() if self.policy.hash_secret is not None else None
        )
        self._allow_keys = self.policy.allow_keys
        self._allow_values = self.policy.allow_values
        self._handlers: dict[str, Handler] = {}
        self.plain_keys: set[str] = set()
        """Keys with no rule of their own: only the value scan applies to them."""
        self.clean_values: set[str | int] = set()
        """Strings the value scan found clean, and small integers: membership means clean."""
        self._clean = self.clean_values
        # Raw statements are kept in process memory only, where the application holds them.
        self._rewrites: dict[tuple[str, str], str] = {}
        self._summaries: dict[tuple[str, str], str] = {}
        self._url_memo: dict[tuple[str, str], tuple[str, tuple[str, ...]]] = {}
        self._lock = threading.Lock()
        self._counts: dict[str, int] = {}
        self._structural: dict[str, Handler] = {
            **dict.fromkeys(_STATEMENT_KEYS, self._statement),
            **dict.fromkeys(_SUMMARY_KEYS, self._summary),
            **dict.fromkeys(_OPERATION_KEYS, self._operation),
            **dict.fromkeys(_QUERY_KEYS, self._url_query),
            **dict.fromkeys(_TARGET_KEYS, self._target),
            **dict.fromkeys(_URL_KEYS, self._url),
            **dict.fromkeys(_MESSAGE_KEYS, self._message),
            _WEDDING_ID: self._wedding,
            _CACHE_NAMESPACE: self._namespace,
            _SEARCH_QUERY: self._search_query,
        }
        """Fields whose shape is known, each with its rewriting rule."""
        self._plain_rule: Handler = self._plain
        """One bound method, so the hot loop can recognise it by identity."""

    # --- counting ---------------------------------------------------------------------------

    def counts(self) -> dict[str, int]:
        """Redactions so far, by reason (``email``, ``sql``, ``sensitive_key``, ...)."""
        with self._lock:
            return dict(self._counts)

    def _count(self, reason: str, times: int = 1) -> None:
        with self._lock:
            self._counts[reason] = self._counts.get(reason, 0) + times

    def mark(self, kind: str, found: str) -> str:
        """What stands in for a redacted value: never the value itself."""
        if self._secret is None:
            return f"[redacted:{kind}]"
        digest = hmac.new(self._secret, found.encode("utf-8", "replace"), hashlib.sha256)
        return f"[{kind}:{digest.hexdigest()[:16]}]"

    # --- text -------------------------------------------------------------------------------

    def text(self, text: str) -> str:
        """Free text (a value, a status description, an event name) with sensitive values marked."""
        cleaned, kinds = self._scan(text)
        for kind in kinds:
            self._count(kind)
        return cleaned

    def _scan(self, text: str) -> tuple[str, tuple[str, ...]]:
        """``text`` with sensitive values marked, and their kinds; nothing counted."""
        if text in self._allow_values or not values.might_be_sensitive(text):
            return text, ()
        return values.redact(text, self.mark)

    def message(self, text: str) -> str:
        """An error message or stack trace: echoed values out, then sensitive values marked."""
        rewritten = scrub_message(text)
        if rewritten != text:
            self._count("error_value")
        return self.text(rewritten)

    def _remember_clean(self, value: str | int) -> None:
        if isinstance(value, int) or len(value) <= _MAX_CACHED_VALUE_CHARS:
            if len(self._clean) >= _MAX_CACHED_VALUES:
                self._clean.clear()  # start again rather than grow: bounded, follows the traffic
            self._clean.add(value)

    # --- span names -------------------------------------------------------------------------

    def span_name(self, name: str, attributes: Mapping[str, object]) -> str:
        """The span's name as it may be exported.

        A database span is named by its ``db.query.summary`` (the semantic
        conventions' rule), so the statement's first word, which may be a
        literal, never names it; a cache span by its command; any other span
        keeps its name with sensitive values marked.
        """
        system = _system(attributes)
        if system is not None:
            statement = _statement(attributes)
            if statement is not None:
                renamed = self.summary(statement, system)
            elif system in CACHE_SYSTEMS:
                renamed = command_name(name) or system
            else:
                renamed = name if _SAFE_OPERATION.fullmatch(name) else system
            if renamed != name:
                self._count("span_name")
            return renamed
        if name in self._clean:
            return name
        cleaned = self.text(name)
        if cleaned is name:
            self._remember_clean(name)
        else:
            self._count("span_name")
        return cleaned

    # --- attributes -------------------------------------------------------------------------

    def attributes(self, attributes: Mapping[str, object]) -> dict[str, object] | None:
        """The attributes as they may be exported, or ``None`` when every one is clean."""
        try:
            # Most spans: every key plain and every value seen clean before; two C-level loops
            # (the key view compares without building a set).
            if attributes.keys() <= self.plain_keys and self._clean.issuperset(attributes.values()):
                return None
        except TypeError:  # an unhashable value: the long way
            pass
        changed: dict[str, object] | None = None
        handlers = self._handlers
        for key, value in attributes.items():
            handler = handlers.get(key)
            if handler is None:
                handler = self._handler_for(key)
            scrubbed = handler(value, attributes)
            if scrubbed is not value:
                if changed is None:
                    changed = dict(attributes)
                if scrubbed is DROP:
                    del changed[key]
                else:
                    changed[key] = scrubbed
        return changed

    def _handler_for(self, key: str) -> Handler:
        handler = self._choose(key)
        if len(self._handlers) >= _MAX_CACHED_KEYS:
            self._handlers.clear()  # a flood of distinct keys: start again rather than grow
            self.plain_keys.clear()
        self._handlers[key] = handler
        if handler is self._plain_rule:
            self.plain_keys.add(key)
        return handler

    def _choose(self, key: str) -> Handler:
        """The rule for one key, in the policy's order."""
        if not isinstance(key, str):
            return self._drop_named
        if key in self._allow_keys:
            return _keep
        if (
            key.startswith(_SEARCH_DOCUMENT)
            or _DATA_IN_KEY.search(key)
            or values.find_sensitive(key)
        ):
            return self._drop_named
        structural = self._structural.get(key)
        if structural is not None:
            return structural
        if self._sensitive.is_sensitive(key):
            return self._secret_value
        return self._plain_rule

    # --- the rules --------------------------------------------------------------------------

    def _plain(self, value: object, attributes: Mapping[str, object]) -> object:
        """Any other attribute: sensitive values anywhere in it are marked."""
        if isinstance(value, str):
            if value in self._clean or value in self._allow_values:
                return value
            cleaned = self.text(value)
            if cleaned is value:
                self._remember_clean(value)
            return cleaned
        if value is None or isinstance(value, bool | float):
            return value
        if isinstance(value, int):
            if abs(value) >= _MIN_CARD_INT and values.is_card_number(abs(value)):
                self._count("card")
                return self.mark("card", str(value))
            if abs(value) < _MIN_CARD_INT and value.__class__ is int:
                self._remember_clean(value)  # never a float: 4111111111111111.0 == the card
            return value
        return self._other_value(value, attributes, self._plain)

    def _other_value(
        self, value: object, attributes: Mapping[str, object], rule: Handler
    ) -> object:
        """Bytes and sequences, element by element, by the same ``rule``."""
        if isinstance(value, bytes | bytearray):
            decoded = bytes(value).decode("utf-8", "replace")
            cleaned = rule(decoded, attributes)
            return value if cleaned is decoded or cleaned == decoded else cleaned
        if isinstance(value, str):
            return rule(value, attributes)
        if isinstance(value, Sequence):
            items = [rule(item, attributes) for item in value]
            if all(new is old for new, old in zip(items, value, strict=True)):
                return value
            return tuple(item for item in items if item is not DROP)
        if value is None or isinstance(value, bool | int | float):
            return value
        self._count("unsupported_value")
        return DROP

    def _secret_value(self, value: object, attributes: Mapping[str, object]) -> object:
        """A sensitive key: its text is redacted whole; numbers only when they are cards."""
        if value is None or isinstance(value, bool | float):
            return value
        if isinstance(value, int):
            return self._plain(value, attributes)
        if isinstance(value, str | bytes | bytearray):
            if isinstance(value, str) and (value in self._allow_values or is_marker(value)):
                return value  # a marker set upstream (the SDK side) stays joinable at the collector
            self._count("sensitive_key")
            return REDACTED if self._secret is None else self.mark("secret", _as_text(value))
        return self._other_value(value, attributes, self._secret_value)

    def _drop_named(self, value: object, attributes: Mapping[str, object]) -> object:
        """An attribute whose key holds the data (RediSearch document ids, an email as a key)."""
        self._count("attribute_name")
        return DROP

    def _statement(self, value: object, attributes: Mapping[str, object]) -> object:
        """SQL text to the semantic conventions' rules; a cache command to its name and ``?``s."""
        if not isinstance(value, str):
            return self._other_value(value, attributes, self._statement)
        if value in self._clean:
            return value
        system = _system(attributes) or "other_sql"
        known = self._rewrites.get((system, value))
        if known is not None:
            return known
        if system in CACHE_SYSTEMS:
            rewritten = scrub_command(value)
            reason = "cache_argument"
        else:
            rewritten = sanitize_sql(value, dialect=system)
            reason = "sql"
        if rewritten != value:
            self._count(reason)
        cleaned = self.text(rewritten)
        self._remember_clean(cleaned)
        if len(value) <= _MAX_CACHED_STATEMENT_CHARS:
            _bounded_put(self._rewrites, (system, value), cleaned)
        return value if cleaned == value else cleaned

    def summary(self, statement: str, system: str) -> str:
        """``db.query.summary`` of a statement (a cache command's name), cached per statement."""
        known = self._summaries.get((system, statement))
        if known is not None:
            return known
        if system in CACHE_SYSTEMS:
            summary = command_name(statement) or system
        else:
            summary = query_summary(statement, dialect=system) or system
        if len(statement) <= _MAX_CACHED_STATEMENT_CHARS:
            _bounded_put(self._summaries, (system, statement), summary)
        return summary

    def _summary(self, value: object, attributes: Mapping[str, object]) -> object:
        """``db.query.summary``: recomputed from the statement when there is one."""
        statement = _statement(attributes)
        system = _system(attributes) or "other_sql"
        if statement is not None:
            summary = self.summary(statement, system)
        elif isinstance(value, str) and _SAFE_OPERATION.fullmatch(value):
            summary = value
        else:
            summary = system
        if summary == value:
            return value
        self._count("sql")
        return summary

    def _operation(self, value: object, attributes: Mapping[str, object]) -> object:
        """``db.operation.name``: a word like ``SELECT``, never text taken from a literal."""
        if isinstance(value, str) and _SAFE_OPERATION.fullmatch(value) and value.isascii():
            statement = _statement(attributes)
            starts = statement is None or statement.lstrip()[: len(value)].upper() == value.upper()
            if starts and not values.find_sensitive(value):
                return value
        self._count("sql")
        return DROP

    def _url_query(self, value: object, attributes: Mapping[str, object]) -> object:
        if not isinstance(value, str):
            return self._other_value(value, attributes, self._url_query)
        keep = self.policy.keep_query_params
        return self._rewritten("query", value, lambda text, scan: scrub_query(text, keep))

    def _target(self, value: object, attributes: Mapping[str, object]) -> object:
        if not isinstance(value, str):
            return self._other_value(value, attributes, self._target)
        keep = self.policy.keep_query_params
        return self._rewritten("target", value, lambda text, scan: scrub_target(text, scan, keep))

    def _url(self, value: object, attributes: Mapping[str, object]) -> object:
        if not isinstance(value, str):
            return self._other_value(value, attributes, self._url)
        keep = self.policy.keep_query_params
        return self._rewritten("url", value, lambda text, scan: scrub_url(text, scan, keep))

    def _rewritten(
        self, kind: str, value: str, rewrite: Callable[[str, Callable[[str], str]], str]
    ) -> object:
        """A URL-like value rewritten, then scanned; memoised with what it redacted, recounted.

        Clients repeat URLs; the memo spares the scan, and each use still counts.
        """
        known = self._url_memo.get((kind, value))
        if known is None:
            found: list[str] = []

            def scan(text: str) -> str:
                cleaned, kinds = self._scan(text)
                found.extend(kinds)
                return cleaned

            rewritten = rewrite(value, scan)
            if rewritten != value:
                found.append("query_value")
            cleaned = scan(rewritten)
            known = (cleaned, tuple(found))
            if len(value) <= _MAX_CACHED_STATEMENT_CHARS:
                _bounded_put(self._url_memo, (kind, value), known)
        cleaned, reasons = known
        for reason in reasons:
            self._count(reason)
        return value if cleaned == value else cleaned

    def _message(self, value: object, attributes: Mapping[str, object]) -> object:
        if not isinstance(value, str):
            return self._other_value(value, attributes, self._message)
        raised = attributes.get("exception.type")
        if isinstance(raised, str) and raised.rpartition(".")[2] in USER_RAISED_ERRORS:
            self._count("error_value")
            return self.text(scrub_raised(value))
        cleaned = self.message(value)
        return value if cleaned == value else cleaned

    def _wedding(self, value: object, attributes: Mapping[str, object]) -> object:
        """A wedding id is exported only in the configured shape; otherwise hashed or marked."""
        if isinstance(value, str):
            text = value
        elif isinstance(value, int) and not isinstance(value, bool) and value.bit_length() < 256:
            text = str(value)  # a short int; str() of a 5,000-digit one would raise
        else:
            text = ""
        if text and self._wedding_id.fullmatch(text) and not values.find_sensitive(text):
            return value
        if is_marker(text):
            return value
        self._count("wedding_id")
        return self.mark("wedding_id", text)

    def _namespace(self, value: object, attributes: Mapping[str, object]) -> object:
        if isinstance(value, str) and value in self.policy.cache_namespaces:
            return value
        self._count("cache_namespace")
        return OTHER_NAMESPACE

    def _search_query(self, value: object, attributes: Mapping[str, object]) -> object:
        if value == "?":
            return value
        self._count("cache_argument")
        return "?"


_MARKER = re.compile(r"\[(?:redacted(?::[a-z_]{1,32})?|[a-z_]{1,32}:[0-9a-f]{16})\]")


def is_marker(text: str) -> bool:
    """Whether ``text`` is a marker this module writes (``[redacted:email]``, ``[email:3f...]``)."""
    return _MARKER.fullmatch(text) is not None


def _bounded_put(table: dict[_K, _V], key: _K, value: _V) -> None:
    """Store in a cache that starts again when full: bounded, and it follows the traffic."""
    if len(table) >= _MAX_CACHED_VALUES:
        table.clear()
    table[key] = value


def _keep(value: object, attributes: Mapping[str, object]) -> object:
    return value


def _as_text(value: str | bytes | bytearray) -> str:
    return value if isinstance(value, str) else bytes(value).decode("utf-8", "replace")


def _system(attributes: Mapping[str, object]) -> str | None:
    """The span's database system (``postgresql``, ``redis``, ...), in either convention."""
    system = attributes.get("db.system.name")
    if not isinstance(system, str):
        system = attributes.get("db.system")
    return system.lower() if isinstance(system, str) else None


def _statement(attributes: Mapping[str, object]) -> str | None:
    for key in ("db.query.text", "db.statement"):
        statement = attributes.get(key)
        if isinstance(statement, str):
            return statement
    return None
