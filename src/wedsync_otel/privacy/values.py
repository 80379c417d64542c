"""Detectors for personal data and secrets inside arbitrary text, linear in its length.

Every exported string (span names, attribute keys and values, event attributes, status
messages) passes through here, in the application and inside a collector, so two things
matter more than cleverness: no detector may be super-linear on hostile input (every
quantifier is bounded or unambiguous, and emails are grown outwards from their ``@``
instead of matched by a backtracking regex), and ordinary telemetry (routes, user agents,
trace ids, timestamps, versions, SQL) must come through untouched.

Standard library only, and no imports from the package: the collector's embedded
interpreter loads this file by its path.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from typing import Final, NamedTuple
from urllib.parse import unquote

__all__ = [
    "KINDS",
    "Finding",
    "default_marker",
    "find_sensitive",
    "is_card_number",
    "might_be_sensitive",
    "redact",
]

KINDS: Final = ("email", "card", "phone", "bearer", "jwt", "secret")


class Finding(NamedTuple):
    """One sensitive span: ``text[start:end]`` is personal data or a secret of ``kind``."""

    start: int
    end: int
    kind: str


def default_marker(kind: str, found: str) -> str:
    """The replacement for a finding: names the kind and never echoes what it hid."""
    del found
    return f"[redacted:{kind}]"


# --- email -------------------------------------------------------------------------------------

_MAX_LOCAL: Final = 64  # RFC 5321 limits; they also bound the work done per anchor
_MAX_DOMAIN: Final = 255
_MAX_SPACES: Final = 3  # around "(at)" in "anna (at) example (dot) com"

# Every spelling of "@" seen in exported strings: plain, full-width and small, percent-encoded
# once or more (ASGI exports url.query encoded), UTF-8 percent-encoded full-width/small forms,
# HTML entities, JSON/Python escapes and the "(at)" obfuscations.
_AT_ANCHORS: Final = (
    r"@|\uff20|\ufe6b|%(?:25){0,3}40|%(?:25)?ef%(?:25)?(?:bc%(?:25)?a0|b9%(?:25)?ab)"
    r"|&#0{0,4}64(?!\d);?|&#x0{0,4}40;|&commat;|\\u0040|\\x40"
)
_AT_BRACKETED: Final = r"[(\[{]\s{0,3}at\s{0,3}[)\]}]"
_LABEL: Final = r"(?:[^\W_]|-|%(?:25)?[89a-f][0-9a-f]){1,63}"
# After the "@", a label and the first character of a dot (see _DOT_RE): checking that in C keeps
# hostile runs ("a@a@a@...", "@@@...") out of the Python loop.
_DOMAIN_AHEAD: Final = rf"(?={_LABEL}[.\uff0e\u3002\uff61%&\\\s(\[{{])"
# Keywords ignore case in ASCII only ("(?a:"), so that the lower-cased pre-check sees them too.
_AT_RE: Final = re.compile(
    rf"(?a:{_AT_ANCHORS}){_DOMAIN_AHEAD}|(?P<bracket>(?a:{_AT_BRACKETED}))\s{{0,3}}{_DOMAIN_AHEAD}",
    re.IGNORECASE,
)
_DOT_RE: Final = re.compile(
    r"\.|\uff0e|\u3002|\uff61|%(?:25){0,2}2e|&#0{0,4}46;?|&#x0{0,4}2e;|&period;|\\u002e|\\x2e"
    r"|\s{0,3}[(\[{]\s{0,3}dot\s{0,3}[)\]}]\s{0,3}",
    re.IGNORECASE,
)
# A domain label: letters and digits in any script, hyphens, and percent-encoded UTF-8 bytes
# (0x80 and up: "m%C3%BCnchen"); an encoded ASCII byte such as "%2F" ends the label.
_LABEL_RE: Final = re.compile(_LABEL, re.IGNORECASE)
_LOCAL_PUNCTUATION: Final = frozenset("._%+-")
# An encoded ASCII byte inside what looks like a local part ("q%3Danna", "hi%20anna"): the
# local part starts after it unless it encodes a character local parts use.
_ENCODED_ASCII_RE: Final = re.compile(r"%(?:25)*([0-7][0-9a-f])", re.IGNORECASE)
_DIGITS_LABEL_RE: Final = re.compile(r"\d+")
_RETINA_LABEL_RE: Final = re.compile(r"\d+x", re.IGNORECASE)  # "logo@2x.png" is a file


def _is_tld(label: str) -> bool:
    """Whether a label can end a domain: two or more letters (any script) or punycode."""
    if "%" in label:
        label = unquote(unquote(label))
    if label[:4].lower() == "xn--":
        return len(label) > 4 and label[4:].replace("-", "").isalnum()
    return len(label) >= 2 and label.isalpha()


def _domain_end(text: str, pos: int) -> int:
    """The end of the domain starting at ``pos``, or -1 when there is none with a TLD."""
    limit = min(len(text), pos + _MAX_DOMAIN)
    labels: list[tuple[int, int]] = []
    while (label := _LABEL_RE.match(text, pos, limit)) is not None:
        labels.append(label.span())
        dot = _DOT_RE.match(text, label.end(), limit)
        if dot is None:
            break
        pos = dot.end()
    for index in range(len(labels) - 1, 0, -1):
        start, end = labels[index]
        if _is_tld(text[start:end]):
            first = text[labels[0][0] : labels[0][1]]
            second = text[labels[1][0] : labels[1][1]]
            if _RETINA_LABEL_RE.fullmatch(first) or (
                _DIGITS_LABEL_RE.fullmatch(first) and _DIGITS_LABEL_RE.fullmatch(second)
            ):
                return -1  # "logo@2x.png", "lodash@4.17.21-beta.tag": a file, a version
            return end
    return -1


def _local_start(text: str, end: int, floor: int) -> int:
    """The start of the local part ending at ``end``, or -1 when it has no letter or digit."""
    start = end
    lowest = max(floor, end - _MAX_LOCAL)
    while start > lowest and (text[start - 1].isalnum() or text[start - 1] in _LOCAL_PUNCTUATION):
        start -= 1
    if "%" in text[start:end]:
        for encoded in _ENCODED_ASCII_RE.finditer(text, start, end):
            char = chr(int(encoded.group(1), 16))
            if not (char.isalnum() or char in _LOCAL_PUNCTUATION):
                start = encoded.end()
    if not any(char.isalnum() for char in text[start:end]):
        return -1
    return start


def _emails(text: str) -> Iterator[Finding]:
    """Emails in any encoding: locate each "@" spelling, then grow outwards, bounded."""
    floor = 0
    for anchor in _AT_RE.finditer(text):
        if anchor.start() < floor:
            continue
        end = _domain_end(text, anchor.end())
        if end < 0:
            continue
        local_end = anchor.start()
        if anchor.group("bracket") is not None:
            spaces_floor = max(floor, local_end - _MAX_SPACES)
            while local_end > spaces_floor and text[local_end - 1].isspace():
                local_end -= 1
        start = _local_start(text, local_end, floor)
        if start < 0 or start == local_end:
            continue
        yield Finding(start, end, "email")
        floor = end


# --- card --------------------------------------------------------------------------------------

# 13-19 digits, the first 2-6, one or two separators allowed between any two; bounded, so a
# megabyte of digits costs one attempt per run (the lookbehind fails everywhere else).
_CARD_RE: Final = re.compile(r"(?<![0-9A-Za-z])[2-6](?:[ ._-]{0,2}[0-9]){12,18}")
_CARD_SEPARATOR_RE: Final = re.compile(r"[ ._-]+")


def is_card_number(value: int | str) -> bool:
    """Whether ``value`` (digits only) could be a payment card: 13-19 digits, 2-6 first, Luhn."""
    if isinstance(value, int) and not 10**12 <= value < 10**19:  # str() of a huge int raises
        return False
    digits = str(value) if isinstance(value, int) else value
    if not (digits.isascii() and digits.isdigit() and 13 <= len(digits) <= 19):
        return False
    if digits[0] not in "23456":
        return False
    total = 0
    for position, char in enumerate(reversed(digits)):
        digit = ord(char) - 48
        if position % 2:
            digit = digit * 2 - 9 if digit > 4 else digit * 2
        total += digit
    return total % 10 == 0


def _is_timestamp(digits: str) -> bool:
    """Whether 14 digits read as YYYYMMDDhhmmss: a compact timestamp, not a card."""
    if len(digits) != 14 or digits[:2] not in {"19", "20"}:
        return False
    month, day = int(digits[4:6]), int(digits[6:8])
    hour, minute, second = int(digits[8:10]), int(digits[10:12]), int(digits[12:14])
    return 1 <= month <= 12 and 1 <= day <= 31 and hour < 24 and minute < 60 and second < 60


def _card_at(text: str, start: int, candidate: str) -> int:
    """The end of the longest card number at the start of ``candidate``, or -1."""
    positions = [index for index, char in enumerate(candidate) if char.isdigit()]
    for count in range(len(positions), 12, -1):
        end = start + positions[count - 1] + 1
        if end < len(text) and (text[end].isascii() and text[end].isalnum()):
            continue  # ends inside a longer run of digits or a word
        shown = candidate[: positions[count - 1] + 1]
        digits = "".join(candidate[index] for index in positions[:count])
        separators = _CARD_SEPARATOR_RE.findall(shown)
        if len(separators) == 1 and "." in separators[0]:
            continue  # "3.14159265358979": a decimal number
        if not separators and _is_timestamp(digits):
            continue
        if is_card_number(digits):
            return end
    return -1


def _cards(text: str) -> Iterator[Finding]:
    """Luhn-valid card numbers with any separators, never part of a longer digit run."""
    pos = 0
    while (match := _CARD_RE.search(text, pos)) is not None:
        end = _card_at(text, match.start(), match.group())
        if end >= 0:
            yield Finding(match.start(), end, "card")
            pos = end
            continue
        # A card may still start at the next group of digits of this candidate.
        separator = _CARD_SEPARATOR_RE.search(text, match.start(), match.end())
        pos = separator.end() if separator is not None else match.end()


# --- phone -------------------------------------------------------------------------------------

_PHONE_SEP: Final = r"(?:[ ().+\-]|%2[089])"  # "+" and "%20" are spaces in an encoded query
# What may not follow a phone number: a letter or digit, or ".5", ":00", "-12" and the like
# (versions, times, UUID groups) that say it is part of something longer. "guest.+44....rsvp" and
# "phone_+44..." (attribute keys) still count.
_PHONE_END: Final = r"(?![^\W_]|[.:/\-][0-9])"
# Before a national or NANP number: no letter or digit, no "1." (a decimal), no "a-" (a UUID
# group); and before a bare trunk 0 no "_" either ("id_0123456789" is a padded id).
_PHONE_START: Final = r"(?<![^\W_])(?<![+%])(?<![0-9]\.)(?<![0-9A-Fa-f]-)"
_PHONE_INTERNATIONAL_RE: Final = re.compile(
    r"(?:(?<![^\W_])(?<![+%])(?:\+|%(?:25)?2b)|(?<![\w+%])00)"  # "phone_+44...", not "id_0044..."
    rf"[1-9](?:{_PHONE_SEP}{{0,2}}[0-9]){{7,14}}{_PHONE_END}",
    re.IGNORECASE,
)
_PHONE_NATIONAL_RE: Final = re.compile(
    rf"{_PHONE_START}(?<!_)\(?0[1-9](?:{_PHONE_SEP}{{0,2}}[0-9]){{7,10}}{_PHONE_END}",
    re.IGNORECASE,
)
_PHONE_NANP_RE: Final = re.compile(
    rf"{_PHONE_START}(?:1[ .\-])?"
    r"(?:\([2-9][0-9]{2}\)[ .\-]?[2-9][0-9]{2}[ .\-]"
    r"|[2-9][0-9]{2}(?P<sep>[ .\-])[2-9][0-9]{2}(?P=sep))"
    rf"[0-9]{{4}}{_PHONE_END}"
)
_DATE_PREFIX_RE: Final = re.compile(r"\(?[0-9]{1,2}([./-])[0-9]{1,2}\1[0-9]{4}")
_IPV4_RE: Final = re.compile(r"[0-9]{1,3}(?:\.[0-9]{1,3}){3}")


def _phones(text: str) -> Iterator[Finding]:
    """International (+, 00), national (trunk 0) and formatted NANP numbers, not dates or IPs."""
    for pattern in (_PHONE_INTERNATIONAL_RE, _PHONE_NATIONAL_RE, _PHONE_NANP_RE):
        for match in pattern.finditer(text):
            found = match.group()
            if _DATE_PREFIX_RE.match(found) or _IPV4_RE.fullmatch(found):
                continue
            yield Finding(match.start(), match.end(), "phone")


# --- bearer, jwt -------------------------------------------------------------------------------

_SCHEMES: Final = r"bearer|basic|token|digest|negotiate|ntlm"
_SCHEME_GAP: Final = r"(?:\s{1,8}|%20|\+)"
_BEARER_RE: Final = re.compile(
    rf"(?<![A-Za-z0-9])(?:bearer|basic|token|negotiate|ntlm){_SCHEME_GAP}"
    r"(?P<token>[A-Za-z0-9\-._~+/=%]{8,})",
    re.IGNORECASE | re.ASCII,
)
_DIGEST_PARAM: Final = r'\w{1,32}=(?:"[^"\r\n]{0,1024}"|[^\s,"]{1,1024})'
_DIGEST_RE: Final = re.compile(
    rf"(?<![A-Za-z0-9])digest{_SCHEME_GAP}"
    rf"(?P<token>{_DIGEST_PARAM}(?:\s{{0,8}},\s{{0,8}}{_DIGEST_PARAM}){{0,24}})",
    re.IGNORECASE | re.ASCII,
)
_OPAQUE_TOKEN_LENGTH: Final = 24


def _is_credential(token: str) -> bool:
    """Whether a word after "Bearer"/"Basic"/"Token" is a credential rather than prose."""
    if len(token) >= _OPAQUE_TOKEN_LENGTH or any(char.isdigit() for char in token):
        return True
    if any(char in "+/=%" for char in token):
        return True
    return any(char.islower() for char in token) and any(char.isupper() for char in token[1:])


def _bearers(text: str) -> Iterator[Finding]:
    """The credential after an Authorization scheme (the scheme name itself stays)."""
    for match in _BEARER_RE.finditer(text):
        if _is_credential(match.group("token")):
            yield Finding(match.start("token"), match.end("token"), "bearer")
    for match in _DIGEST_RE.finditer(text):
        yield Finding(match.start("token"), match.end("token"), "bearer")


# The lookbehind keeps "eyJeyJeyJ..." linear; "%20eyJ" (an encoded space before) still counts.
_JWT_RE: Final = re.compile(
    r"(?:(?<![\w-])|(?<=%[0-9A-Fa-f]{2}))"
    r"eyJ[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]{4,}(?:\.[A-Za-z0-9_-]*){1,3}"
)


def _jwts(text: str) -> Iterator[Finding]:
    """JSON Web Tokens: three (or five, encrypted) base64url segments, the first "eyJ"."""
    for match in _JWT_RE.finditer(text):
        yield Finding(match.start(), match.end(), "jwt")


# --- secret ------------------------------------------------------------------------------------

_KEY_RE: Final = re.compile(
    r"(?<![A-Za-z0-9])(?:"
    r"(?:AKIA|ASIA|AROA|AIDA)[0-9A-Z]{16}"  # AWS access key ids
    r"|[sr]k_(?:live|test)_[0-9A-Za-z]{10,}"  # Stripe secret and restricted keys
    r"|whsec_[0-9A-Za-z]{16,}"  # Stripe webhook secrets
    r"|gh[pousr]_[0-9A-Za-z]{20,}|github_pat_[0-9A-Za-z_]{20,}"  # GitHub tokens
    r"|xox[baprs]-[0-9A-Za-z-]{10,}"  # Slack tokens
    r"|AIza[0-9A-Za-z_-]{35}"  # Google API keys
    r"|glpat-[0-9A-Za-z_-]{20,}"  # GitLab personal access tokens
    r"|sk-(?:proj-|ant-)?[0-9A-Za-z_-]{20,}"  # OpenAI / Anthropic keys
    r")(?![A-Za-z0-9])"
)
_PEM_BEGIN_RE: Final = re.compile(r"-----BEGIN[A-Z0-9 ]{0,40}PRIVATE KEY(?: BLOCK)?-----")
_PEM_END_RE: Final = re.compile(r"-----END[A-Z0-9 ]{0,60}-----")
_SECRET_NAMES: Final = (
    r"aws_secret_access_key|client[_-]?secret|secret[_-]?key|private[_-]?key|passphrase"
    r"|password|passwd|pwd|pass|secret|access[_-]?token|refresh[_-]?token|id[_-]?token"
    r"|auth[_-]?token|token|x-api-key|api[_-]?key|apikey|authorization"
)
_QUOTE: Final = r"(?:\\?[\"']|%2[27])"
_ASSIGN: Final = rf"{_QUOTE}?\s{{0,4}}(?::=|=>|[=:]|%3[ad])"
_SECRET_ASSIGNMENT_RE: Final = re.compile(
    rf"(?:(?<![A-Za-z0-9])|(?<=%[0-9A-Fa-f]{{2}}))(?:{_SECRET_NAMES}){_ASSIGN}\s{{0,4}}"
    rf"(?P<scheme>(?:{_SCHEMES}){_SCHEME_GAP})?"
    r"(?:\\\"(?P<escaped>(?:[^\"\\\r\n]|\\[^\"])+)"
    r"|\"(?P<double>[^\"\r\n]+)"
    r"|'(?P<single>[^'\r\n]+)"
    r"|%22(?P<encoded_double>(?:(?!%22)[^\s\"])+)"
    r"|%27(?P<encoded_single>(?:(?!%27)[^\s'])+)"
    r"|(?P<bare>(?:(?!%2[0267c]|%3b)[^\s&;,\"'\\<>])+))",
    re.IGNORECASE | re.ASCII,
)
_VALUE_GROUPS: Final = ("escaped", "double", "single", "encoded_double", "encoded_single", "bare")
# Values that are not secrets: SQL and format placeholders, masks, redaction markers, literals.
_PLACEHOLDER_RE: Final = re.compile(
    r"\?|\$\d+|%s|%\(\w+\)s|:[A-Za-z_]\w*|@p\d+|\*+|x{3,}|\.{3}|null|none|nil|true|false"
    r"|undefined|\[[^\]]*\]|<[^>]*>|\{[^}]*\}",
    re.IGNORECASE,
)
_USERINFO_RE: Final = re.compile(r"://[^\s/@:?#]{1,128}:(?P<password>[^\s/@?#]{1,256})@")


def _key_shapes(text: str) -> Iterator[Finding]:
    """Well-known key formats and PEM private key blocks (to the end if cut off)."""
    for match in _KEY_RE.finditer(text):
        yield Finding(match.start(), match.end(), "secret")
    pos = 0
    while (begin := _PEM_BEGIN_RE.search(text, pos)) is not None:
        end_at = text.find("-----END", begin.end())
        if end_at < 0:
            yield Finding(begin.start(), len(text), "secret")  # truncated: still a key
            return
        footer = _PEM_END_RE.match(text, end_at)
        pos = footer.end() if footer is not None else end_at + len("-----END")
        yield Finding(begin.start(), pos, "secret")


def _assignments(text: str) -> Iterator[Finding]:
    """The value in ``password=...``, ``"api_key": "..."``, ``authorization: ...``; not the name."""
    for match in _SECRET_ASSIGNMENT_RE.finditer(text):
        group = next(name for name in _VALUE_GROUPS if match.group(name) is not None)
        value = match.group(group)
        if _PLACEHOLDER_RE.fullmatch(value):
            continue
        kind = "bearer" if match.group("scheme") is not None else "secret"
        yield Finding(match.start(group), match.end(group), kind)
    for match in _USERINFO_RE.finditer(text):
        if not _PLACEHOLDER_RE.fullmatch(match.group("password")):
            yield Finding(match.start("password"), match.end("password"), "secret")


# --- the whole scan ----------------------------------------------------------------------------

# In order of precedence when two findings start at the same place ("Bearer eyJ..." is a bearer
# credential that happens to be a JWT; a phone number that passes Luhn is still a phone).
_DETECTORS: Final[tuple[Callable[[str], Iterator[Finding]], ...]] = (
    _bearers,
    _jwts,
    _key_shapes,
    _assignments,
    _emails,
    _cards,
    _phones,
)

# A superset of what every detector needs to start, in a few C-speed searches (one alternation of
# them all is slower: it defeats the regex engine's prefix scan). Each is a detector's anchor with
# its lookarounds dropped, which only narrow; keywords are looked for in the lower-cased text,
# which is why the detectors ignore case in ASCII only. Eight digits close together cover cards
# and phones. A false positive costs a full scan, a false negative would leak: a property test
# checks there are none.
_MAYBE_PERCENT_RE: Final = re.compile(r"%(?:25)*40|%(?:25)?[eE][fF]%")
_MAYBE_ESCAPE_RE: Final = re.compile(r"\\[uU]0040|\\[xX]40")
# Eight digits, at most two separator characters apart ("%20" counts as "%" and two digits);
# unrolled, because a counted group is several times slower in the regex engine.
_MAYBE_DIGITS_RE: Final = re.compile("[0-9]" + "[ ()._+\\-%]{0,2}[0-9]" * 7)
_MAYBE_KEY_RE: Final = re.compile(
    r"(?<![A-Za-z0-9])(?:A[KS]IA|AROA|AIDA|[sr]k_|whsec_|gh[pousr]_|github_pat_|xox[baprs]-"
    r"|AIza|glpat-|sk-)"
)
_SCHEME_WORDS: Final = ("bearer", "basic", "token", "digest", "negotiate", "ntlm")
_MAYBE_SCHEME_RE: Final = re.compile(rf"(?:{_SCHEMES})(?:\s|%20|\+)")
_NAME_WORDS: Final = ("pass", "pwd", "secret", "token", "key", "authorization")  # in every name
_MAYBE_NAME_RE: Final = re.compile(rf"(?:{_SECRET_NAMES}){_ASSIGN}")
_MAYBE_BRACKET_RE: Final = re.compile(_AT_BRACKETED)


def might_be_sensitive(text: str) -> bool:
    """A cheap pre-check: False means :func:`find_sensitive` would certainly find nothing."""
    if (
        "@" in text
        or "&#" in text
        or "eyJ" in text
        or "\uff20" in text
        or "\ufe6b" in text
        or "-----BEGIN" in text
        or ("%" in text and _MAYBE_PERCENT_RE.search(text) is not None)
        or ("\\" in text and _MAYBE_ESCAPE_RE.search(text) is not None)
        or _MAYBE_DIGITS_RE.search(text) is not None
        or _MAYBE_KEY_RE.search(text) is not None
    ):
        return True
    lowered = text.lower()
    return (
        "&commat;" in lowered
        or (
            any(word in lowered for word in _SCHEME_WORDS)
            and _MAYBE_SCHEME_RE.search(lowered) is not None
        )
        or (
            ("=" in lowered or ":" in lowered or "%3" in lowered)
            and any(word in lowered for word in _NAME_WORDS)
            and _MAYBE_NAME_RE.search(lowered) is not None
        )
        or ("at" in lowered and _MAYBE_BRACKET_RE.search(lowered) is not None)
    )


def find_sensitive(text: str) -> list[Finding]:
    """Every sensitive span in ``text``: sorted, overlaps merged under the first one's kind."""
    ranked = sorted(
        (finding.start, rank, finding.end, finding.kind)
        for rank, detector in enumerate(_DETECTORS)
        for finding in detector(text)
    )
    merged: list[Finding] = []
    for start, _, end, kind in ranked:
        if merged and start < merged[-1].end:
            if end > merged[-1].end:
                merged[-1] = merged[-1]._replace(end=end)
            continue
        merged.append(Finding(start, end, kind))
    return merged


def redact(
    text: str, marker: Callable[[str, str], str] = default_marker
) -> tuple[str, tuple[str, ...]]:
    """``text`` with each finding replaced by ``marker(kind, found)``, and the kinds replaced.

    The same ``str`` object comes back when nothing was found, so callers can skip copying.
    """
    if not might_be_sensitive(text):
        return text, ()
    findings = find_sensitive(text)
    if not findings:
        return text, ()
    parts: list[str] = []
    pos = 0
    for start, end, kind in findings:
        parts.append(text[pos:start])
        parts.append(marker(kind, text[start:end]))
        pos = end
    parts.append(text[pos:])
    return "".join(parts), tuple(finding.kind for finding in findings)
