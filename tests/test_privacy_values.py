"""Tests for wedsync_otel.privacy.values: what each detector finds, what it leaves, and its cost."""

from __future__ import annotations

import ast
import importlib.util
import itertools
import re
import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from helpers import CountingText, counting_work
from wedsync_otel.privacy import values
from wedsync_otel.privacy.values import (
    KINDS,
    Finding,
    default_marker,
    find_sensitive,
    is_card_number,
    might_be_sensitive,
    redact,
)

PEM = "-----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEAx\n-----END RSA PRIVATE KEY-----"
JWT = (
    "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0"
    ".SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c"
)

# (text, kind of the one finding, a part of the secret that must not survive redaction)
POSITIVES: list[tuple[str, str, str]] = [
    # email, every spelling of "@" and of "."
    ("anna@example.com", "email", "anna"),
    ("contact anna.smith@example.co.uk today", "email", "anna.smith"),
    ("anna+wedding@example.com", "email", "anna+wedding"),
    ("mailto:anna@example.com?subject=hi", "email", "anna"),
    ("email=anna%40example.com&page=2", "email", "anna"),
    ("email=anna%2540example.com", "email", "anna"),
    ("q=anna%2Bwedding%40example.com", "email", "wedding"),
    ("email=%22anna%40example.com%22", "email", "anna"),
    ("anna\uff20example.com", "email", "anna"),
    ("anna\ufe6bexample.com", "email", "anna"),
    (
        "\uff41\uff4e\uff4e\uff41\uff20\uff45\uff58\uff41\uff4d\uff50\uff4c\uff45\uff0e\uff43\uff4f\uff4d",
        "email",
        "\uff41\uff4e\uff4e\uff41",
    ),
    ("anna\uff20example\uff0ecom", "email", "anna"),
    ("anna%EF%BC%A0example.com", "email", "anna"),
    ("anna&#64;example.com", "email", "anna"),
    ("anna&#064;example.com", "email", "anna"),
    ("anna&#x40;example.com", "email", "anna"),
    ("anna&commat;example.com", "email", "anna"),
    ('{"to": "anna\\u0040example.com"}', "email", "anna"),
    ("b'anna\\x40example.com'", "email", "anna"),
    ("anna@münchen.de", "email", "anna"),
    ("jörg@exämple.co.uk", "email", "jörg"),
    ("anna@xn--mnchen-3ya.de", "email", "anna"),
    ("email=anna%40m%C3%BCnchen.de", "email", "anna"),
    ("анна@пример.рф", "email", "анна"),
    ("用户@例子.中国", "email", "用户"),
    ("anna (at) example (dot) com", "email", "anna"),
    ("anna [at] example [dot] com", "email", "anna"),
    ("ANNA {AT} EXAMPLE {DOT} COM", "email", "ANNA"),
    ("anna(at)example(dot)com", "email", "anna"),
    ("anna@example.com%2Fpath", "email", "anna"),
    # card, every separator
    ("4111111111111111", "card", "4111111111111111"),
    ("card 4111 1111 1111 1111 exp 12/27", "card", "1111 1111 1111"),
    ("4111  1111  1111  1111", "card", "1111  1111"),
    ("4111-1111-1111-1111", "card", "1111-1111"),
    ("4111.1111.1111.1111", "card", "1111.1111"),
    ("4111_1111_1111_1111", "card", "1111_1111"),
    ("pan=5555555555554444&x=1", "card", "5555555555554444"),
    ("5555 5555 5555 4444", "card", "5555 4444"),
    ("378282246310005", "card", "378282246310005"),
    ("3782 822463 10005", "card", "822463"),
    ("6011111111111117", "card", "6011111111111117"),
    ("6011 0009 9013 9424", "card", "0009 9013"),
    ("2221000000000009", "card", "2221000000000009"),
    ("4222222222222", "card", "4222222222222"),
    ("card: 4111111111111111.", "card", "4111111111111111"),
    # phone
    ("+44 7700 900123", "phone", "7700 900123"),
    ("+447700900123", "phone", "447700900123"),
    ("call +1 (415) 555-2671 now", "phone", "555-2671"),
    ("+44 (0)20 7946 0958", "phone", "7946 0958"),
    ("0044 7700 900123", "phone", "7700 900123"),
    ("07700 900123", "phone", "900123"),
    ("07700900123", "phone", "07700900123"),
    ("030 1234 5678", "phone", "1234 5678"),
    ("(030) 1234 5678", "phone", "1234 5678"),
    ("06 12 34 56 78", "phone", "12 34 56 78"),
    ("(415) 555-2671", "phone", "555-2671"),
    ("415-555-2671", "phone", "555-2671"),
    ("415.555.2671", "phone", "555.2671"),
    ("415 555 2671", "phone", "555 2671"),
    ("1-800-555-0199", "phone", "555-0199"),
    ("phone=%2B447700900123", "phone", "447700900123"),
    ("phone=+44+7700+900123", "phone", "7700+900123"),
    ("+44%207700%20900123", "phone", "900123"),
    ("tel:+4930123456", "phone", "4930123456"),
    # bearer
    ("Authorization: Bearer abc123def456ghi789", "bearer", "abc123def456ghi789"),
    ("bearer ABCDEFGH12", "bearer", "ABCDEFGH12"),
    ("BEARER mF_9.B5f-4.1JqM", "bearer", "mF_9.B5f-4.1JqM"),
    ("Basic dXNlcjpwYXNzd29yZA==", "bearer", "dXNlcjpwYXNzd29yZA"),
    ("Basic dXNlcjpwYXNz", "bearer", "dXNlcjpwYXNz"),
    ("Token 9f8e7d6c5b4a3210", "bearer", "9f8e7d6c5b4a3210"),
    ("Negotiate YIIJvwYGKwYBBQUCoIIJ", "bearer", "YIIJvwYGKwYBBQUCoIIJ"),
    ('Digest username="Mufasa", realm="testrealm", response="6629fae4"', "bearer", "Mufasa"),
    ("authorization: Basic abcdefgh", "bearer", "abcdefgh"),
    ("Bearer%20abc123def456", "bearer", "abc123def456"),
    # jwt
    (JWT, "jwt", "SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c"),
    (f"session {JWT} issued", "jwt", "eyJzdWIiOiIxMjM0NTY3ODkwIn0"),
    (f"?jwt={JWT}&x=1", "jwt", "eyJzdWIiOiIxMjM0NTY3ODkwIn0"),
    ("eyJhbGciOiJub25lIn0.eyJzdWIiOiIxIn0.", "jwt", "eyJzdWIiOiIxIn0"),
    # secret: key shapes
    ("AKIAIOSFODNN7EXAMPLE", "secret", "IOSFODNN7EXAMPLE"),
    ("key=ASIAIOSFODNN7EXAMPLE;", "secret", "IOSFODNN7EXAMPLE"),
    ("sk_live_4eC39HqLyjWDarjtT1zdp7dc", "secret", "4eC39HqLyjWDarjtT1zdp7dc"),
    ("using sk_test_4eC39HqLyjWDarjtT1zdp7dc", "secret", "4eC39HqLyjWDarjtT1zdp7dc"),
    ("rk_live_51H8abcdEFGHijkl", "secret", "51H8abcdEFGHijkl"),
    ("ghp_abcdefghijklmnopqrstuvwxyz0123456789", "secret", "abcdefghijklmnopqrstuvwxyz0123456789"),
    ("gho_16C7e42F292c6912E7710c838347Ae178B4a", "secret", "16C7e42F292c6912E7710c838347Ae178B4a"),
    ("github_pat_11ABCDEFG0123456789_abcdefghijkl", "secret", "11ABCDEFG0123456789"),
    ("xoxb-123456789012-abcdefghijkl", "secret", "123456789012"),
    ("AIzaSyA1234567890abcdefghijklmnopqrstuv", "secret", "1234567890abcdefghij"),
    (PEM, "secret", "MIIEowIBAAKCAQEAx"),
    ("-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBgkq", "secret", "MIIEvQIBADANBgkq"),
    # secret: assignments (the name stays)
    ("password=hunter2", "secret", "hunter2"),
    ("login failed passwd: hunter2 for anna", "secret", "hunter2"),
    ("pwd=hunter2&next=/home", "secret", "hunter2"),
    ("secret=s3cr3tvalue", "secret", "s3cr3tvalue"),
    ("?token=abc123xyz&page=1", "secret", "abc123xyz"),
    ("api_key=ZXhhbXBsZWtleQ", "secret", "ZXhhbXBsZWtleQ"),
    ("apikey: ZXhhbXBsZWtleQ", "secret", "ZXhhbXBsZWtleQ"),
    ("access_token=ya29.a0AfH6SMB", "secret", "ya29.a0AfH6SMB"),
    ("client_secret=GOCSPX-abcdef", "secret", "GOCSPX-abcdef"),
    ("DB_PASSWORD=hunter2", "secret", "hunter2"),
    ('{"password": "correct horse battery"}', "secret", "correct horse"),
    ("{'api_key': 'ZXhhbXBsZWtleQ'}", "secret", "ZXhhbXBsZWtleQ"),
    ('{\\"password\\": \\"hunter2\\"}', "secret", "hunter2"),
    ("password%3Dhunter2", "secret", "hunter2"),
    ("%22password%22%3A%22hunter2%22", "secret", "hunter2"),
    ("postgres://anna:hunter2@localhost:5432/db", "secret", "hunter2"),
]

# Ordinary telemetry: span names, attribute values, routes, ids and SQL that must come through.
NEGATIVES: list[str] = [
    "2026-06-20",
    "20260620",
    "10:00:00",
    "2026-06-20T10:00:00.123456+01:00",
    "2026-06-20 10:00:00",
    "2026-06-20T10:00:00Z",
    "20260620103000",
    "01.02.2026",
    "01.02.2026 10:00",
    "192.168.100.200",
    "10.0.0.12:8080",
    ":8080",
    "1.2.3",
    "2.14.1",
    "v1.40.0",
    "0.61b0",
    "123e4567-e89b-12d3-a456-426614174000",
    "4bf92f3577b34da6a3ce929d0e0e4736",
    "00f067aa0ba902b7",
    "9f86d081884c7d65",
    "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
    "1733570000000",
    "42",
    "/venues/42/availability",
    "/api/guests/1733570000/rsvp",
    "123.456",
    "0.000123456",
    "3.14159265358979",
    "200",
    "503",
    "4294967296",
    "12345678901234567890",
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0",
    "python-httpx/0.27.0",
    "api.wedsync.example",
    "https://api.wedsync.example/v1/guests?page=2&limit=50",
    "/api/venues/{venue_id}/availability",
    "GET /api/venues/{venue_id}/availability",
    "SELECT * FROM guests WHERE id = ?",
    "UPDATE users SET password = ? WHERE id = ?",
    "INSERT INTO users (email, password_hash) VALUES ($1, $2)",
    'File "/app/x.py", line 42, in handler',
    "Traceback (most recent call last):",
    "@app.route('/venues')",
    "logo@2x.png",
    "lodash@4.17.21",
    "user@localhost",
    "wed_0123456789",
    "Token refresh failed",
    "Basic authentication required",
    "Bearer token expired",
    "max_tokens: 100",
    "token_type=bearer",
    "password_reset_requested",
    "password=[redacted:secret]",
    "en-GB,en;q=0.9",
    "a94a8fe5ccb19ba61c4c0873d391e987982fbbd3",
    "2001:db8::1",
    "wedding.proximity.band",
    "duration_ms=1234.5678",
]


def covered(findings: list[Finding], start: int, end: int) -> bool:
    """Whether one finding covers ``text[start:end]`` entirely."""
    return any(f.start <= start and end <= f.end for f in findings)


# --- what is found -----------------------------------------------------------------------------


@pytest.mark.parametrize(("text", "kind", "secret"), POSITIVES)
def test_positive_is_found_as_its_kind(text: str, kind: str, secret: str) -> None:
    """Each corpus entry gives exactly one finding, of the expected kind."""
    assert [f.kind for f in find_sensitive(text)] == [kind]


@pytest.mark.parametrize(("text", "kind", "secret"), POSITIVES)
def test_positive_secret_does_not_survive_redaction(text: str, kind: str, secret: str) -> None:
    """After redaction neither the secret nor the given part of it is left in the text."""
    assert secret in text
    redacted, kinds = redact(text)
    assert secret not in redacted
    assert kinds == (kind,)
    assert f"[redacted:{kind}]" in redacted


@pytest.mark.parametrize(("text", "kind", "secret"), POSITIVES)
def test_positive_passes_the_pre_check(text: str, kind: str, secret: str) -> None:
    """The cheap pre-check lets every corpus entry through to the full scan."""
    assert might_be_sensitive(text)


@pytest.mark.parametrize(("text", "kind", "secret"), POSITIVES)
def test_redaction_is_idempotent(text: str, kind: str, secret: str) -> None:
    """Redacting already redacted text finds nothing more."""
    once, _ = redact(text)
    assert find_sensitive(once) == []


@pytest.mark.parametrize("text", NEGATIVES)
def test_ordinary_telemetry_is_left_alone(text: str) -> None:
    """Timestamps, addresses, versions, ids, routes, user agents and SQL are not flagged."""
    assert find_sensitive(text) == []


def test_corpus_sizes() -> None:
    """The corpus keeps at least 80 positive and 40 negative cases and covers every kind."""
    assert len(POSITIVES) >= 80
    assert len(NEGATIVES) >= 40
    assert {kind for _, kind, _ in POSITIVES} == set(KINDS)


def test_assignment_keeps_the_name() -> None:
    """Only the value after ``=`` is redacted, so the field name stays readable."""
    assert redact("user=anna password=hunter2 ok")[0] == "user=anna password=[redacted:secret] ok"


def test_bearer_keeps_the_scheme() -> None:
    """The scheme stays and the whole credential after it goes."""
    assert redact("Authorization: Bearer abc.def-123/xyz==")[0] == (
        "Authorization: Bearer [redacted:bearer]"
    )


def test_truncated_private_key_is_redacted_to_the_end() -> None:
    """A PEM block cut off by attribute truncation still loses everything after its header."""
    text = "key: -----BEGIN EC PRIVATE KEY-----\nMHcCAQEEIBk"
    assert redact(text)[0] == "key: [redacted:secret]"


def test_card_inside_a_longer_digit_run_is_not_found() -> None:
    """A Luhn-valid 16 digits inside a 20-digit number is not a card."""
    assert find_sensitive("9041111111111111111") == []
    assert find_sensitive("x41111111111111111") == []


def test_card_followed_by_its_expiry_is_found() -> None:
    """A card number followed by a space and an expiry date is still found."""
    assert [f.kind for f in find_sensitive("4111 1111 1111 1111 12/27")] == ["card"]


def test_overlapping_findings_merge_under_the_first_kind() -> None:
    """A JWT sent as a bearer token is one finding, of the kind that starts first (bearer wins)."""
    text = f"authorization: Bearer {JWT}"
    findings = find_sensitive(text)
    assert findings == [Finding(len("authorization: Bearer "), len(text), "bearer")]


def test_findings_are_sorted_and_disjoint() -> None:
    """Several findings come back in order and never overlap."""
    text = "anna@example.com paid with 4111111111111111, call +44 7700 900123, password=x1"
    findings = find_sensitive(text)
    assert [f.kind for f in findings] == ["email", "card", "phone", "secret"]
    assert all(a.end <= b.start for a, b in itertools.pairwise(findings))


# --- redact ------------------------------------------------------------------------------------


def test_redact_returns_the_same_object_when_nothing_is_found() -> None:
    """Clean text comes back as the very same ``str`` object, with no kinds."""
    text = "".join(["GET /api/venues/", "42"])
    result, kinds = redact(text)
    assert result is text
    assert kinds == ()


def test_redact_returns_the_same_object_when_the_full_scan_finds_nothing() -> None:
    """Text that passes the pre-check but holds nothing also comes back unchanged."""
    text = "".join(["2026-06-20 ", "10:00:00"])
    assert might_be_sensitive(text)
    assert redact(text)[0] is text


def test_redact_calls_the_marker_with_kind_and_found_text() -> None:
    """A custom marker receives the kind and the exact text it replaces."""
    seen: list[tuple[str, str]] = []

    def marker(kind: str, found: str) -> str:
        seen.append((kind, found))
        return "<*>"

    assert redact("to anna@example.com or 07700 900123", marker) == (
        "to <*> or <*>",
        ("email", "phone"),
    )
    assert seen == [("email", "anna@example.com"), ("phone", "07700 900123")]


def test_default_marker_never_echoes_what_it_hides() -> None:
    """The default marker names the kind only."""
    assert default_marker("email", "anna@example.com") == "[redacted:email]"


# --- is_card_number ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("4111111111111111", True),
        (4111111111111111, True),
        ("378282246310005", True),
        ("2221000000000009", True),
        ("4222222222222", True),
        ("6011000990139424", True),
        ("4111111111111112", False),  # Luhn fails
        ("1111111111111117", False),  # first digit 1
        ("7111111111111116", False),  # first digit 7
        ("411111111111", False),  # 12 digits
        ("41111111111111111110", False),  # 20 digits
        ("4111 1111 1111 1111", False),  # separators are the caller's to remove
        (
            "\uff14\uff11\uff11\uff11\uff11\uff11\uff11\uff11\uff11\uff11\uff11\uff11\uff11\uff11\uff11\uff11",
            False,
        ),  # full-width digits
        (-4111111111111111, False),
        ("", False),
    ],
)
def test_is_card_number(value: int | str, expected: bool) -> None:
    """Digits only, 13-19 of them, first digit 2-6, Luhn-valid."""
    assert is_card_number(value) is expected


# --- properties --------------------------------------------------------------------------------


def luhn_complete(body: str) -> str:
    """``body`` with the check digit that makes it Luhn-valid."""
    for check in "0123456789":
        if is_card_number(body + check):
            return body + check
    raise AssertionError(body)


# A first digit of 3-6, or a Mastercard 2-series prefix: a 14-digit "19..."/"20..." number may be
# a compact timestamp, which the scan deliberately leaves alone.
card_numbers = st.tuples(
    st.one_of(st.sampled_from("3456"), st.integers(2221, 2720).map(str)),
    st.integers(13, 19),
).flatmap(
    lambda prefix_length: st.from_regex(
        f"[0-9]{{{prefix_length[1] - len(prefix_length[0]) - 1}}}", fullmatch=True
    ).map(lambda body: luhn_complete(prefix_length[0] + body))
)


def group(digits: str, separator: str) -> str:
    """Digits in groups of four joined by ``separator``."""
    return separator.join(digits[i : i + 4] for i in range(0, len(digits), 4))


AT_SPELLINGS = [
    "@",
    "\uff20",
    "\ufe6b",
    "%40",
    "%2540",
    "&#64;",
    "&#x40;",
    "\\u0040",
    " (at) ",
    " [at] ",
]
local_parts = st.from_regex(r"[A-Za-z0-9][A-Za-z0-9._+\-]{0,30}", fullmatch=True)
labels = st.from_regex(r"[a-z0-9](?:[a-z0-9\-]{0,20}[a-z0-9])?", fullmatch=True)
tlds = st.from_regex(r"[a-z]{2,6}", fullmatch=True)
emails = st.builds(
    lambda local, at, domain, tld: f"{local}{at}{'.'.join(domain)}.{tld}",
    local_parts,
    st.sampled_from(AT_SPELLINGS),
    st.lists(labels, min_size=1, max_size=3).filter(
        lambda d: not re.fullmatch(r"\d+x|\d+", d[0], re.IGNORECASE)
    ),
    tlds,
)
digit_strings = st.integers(0, 10**12).map(str)
phones = st.one_of(
    st.builds(
        lambda cc, a, b: f"+{cc} {a} {b}",
        st.integers(1, 998),
        st.from_regex(r"[0-9]{3,4}", fullmatch=True),
        st.from_regex(r"[0-9]{4,6}", fullmatch=True),
    ),
    st.builds(
        lambda area, a, b, sep: f"0{area}{sep}{a}{sep}{b}",
        st.from_regex(r"[1-9][0-9]{2,3}", fullmatch=True),
        st.from_regex(r"[0-9]{3,4}", fullmatch=True),
        st.from_regex(r"[0-9]{3}", fullmatch=True),
        st.sampled_from([" ", "-", ""]),
    ),
    st.builds(
        lambda area, exchange, line, style: style.format(area, exchange, line),
        st.integers(200, 999),
        st.integers(200, 999),
        st.from_regex(r"[0-9]{4}", fullmatch=True),
        st.sampled_from(["({}) {}-{}", "{}-{}-{}", "{}.{}.{}", "{} {} {}", "+1 ({}) {}-{}"]),
    ),
)
surroundings = st.text(max_size=40)
PLANT_SETTINGS = settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)


def assert_planted_is_hidden(before: str, planted: str, after: str) -> None:
    """``planted`` between two texts is covered by one finding and gone after redaction."""
    text = f"{before} | {planted} | {after}"
    start = len(before) + 3
    assert covered(find_sensitive(text), start, start + len(planted)), text
    redacted, _ = redact(text)
    assert planted not in redacted


@PLANT_SETTINGS
@given(before=surroundings, email=emails, after=surroundings)
def test_planted_email_is_always_found(before: str, email: str, after: str) -> None:
    """An email in any spelling, inside random text, is found and redacted."""
    assert_planted_is_hidden(before, email, after)


@PLANT_SETTINGS
@given(
    before=surroundings,
    card=card_numbers,
    separator=st.sampled_from(["", " ", "  ", "-", ".", "_"]),
    after=surroundings,
)
def test_planted_card_is_always_found(before: str, card: str, separator: str, after: str) -> None:
    """A Luhn-valid card number with any separator, inside random text, is found and redacted."""
    assert_planted_is_hidden(before, group(card, separator), after)


@PLANT_SETTINGS
@given(before=surroundings, phone=phones, after=surroundings)
def test_planted_phone_is_always_found(before: str, phone: str, after: str) -> None:
    """An international, national or NANP phone number inside random text is found and redacted."""
    assert_planted_is_hidden(before, phone, after)


FRAGMENTS = [
    "@",
    "\uff20",
    "\ufe6b",
    "%40",
    "%25",
    "%2B",
    "%20",
    "%3D",
    "%22",
    "&#64;",
    "&#x40;",
    "\\u0040",
    "\\x40",
    "&commat;",
    "(at)",
    "[dot]",
    "(dot)",
    ".",
    "\uff0e",
    "-",
    "_",
    " ",
    "  ",
    "(",
    ")",
    "+",
    "=",
    ":",
    "'",
    '"',
    "&",
    ";",
    ",",
    "/",
    "0",
    "00",
    "1",
    "4",
    "7",
    "9",
    "0123",
    "4111",
    "555",
    "a",
    "Z",
    "ü",
    "example",
    "com",
    "de",
    "xn--",
    "Bearer ",
    "basic ",
    "TOKEN ",
    "Digest ",
    "eyJ",
    "eyJhbGci",
    "password",
    "Passwd",
    "token",
    "api_key",
    "authorization",
    "AKIA",
    "sk_live_",
    "ghp_",
    "xoxb-",
    "AIza",
    "-----BEGIN RSA PRIVATE KEY-----",
    "-----END",
    "://",
    "\u017f",  # long s: folds to "s"
    "\u212a",  # Kelvin sign: folds to "k" under Unicode IGNORECASE
    "İ",
    "\u0131",
    "\n",
    "\t",
]
fragment_texts = st.lists(st.sampled_from(FRAGMENTS), max_size=30).map("".join)
any_text = st.one_of(st.text(max_size=200), fragment_texts)


@settings(max_examples=2000, deadline=None)
@given(text=any_text)
@example(text="anna (at) example (dot) com")
@example(text="PASSWORD: x")
def test_pre_check_has_no_false_negatives(text: str) -> None:
    """Whenever the full scan finds something, the cheap pre-check says it might."""
    if find_sensitive(text):
        assert might_be_sensitive(text)


@settings(max_examples=1000, deadline=None)
@given(text=any_text)
def test_scan_never_raises_and_findings_are_well_formed(text: str) -> None:
    """Any text scans without error into sorted, disjoint, non-empty findings of known kinds."""
    findings = find_sensitive(text)
    previous_end = 0
    for finding in findings:
        assert previous_end <= finding.start < finding.end <= len(text)
        assert finding.kind in KINDS
        previous_end = finding.end
    redacted, kinds = redact(text)
    assert kinds == tuple(f.kind for f in findings)
    assert (redacted is text) == (not findings)


# --- cost --------------------------------------------------------------------------------------

HOSTILE_UNITS = {
    # Runs that the detectors' regular expressions must pass over in one sweep.
    "letters": "abcdefghijklmnopqrstuvwxyz",
    "digits": "0123456789",
    "one-space": "1 ",
    "a-at": "a@",
    "at": "@",
    "percent-40": "%40",
    "hex": "0123456789abcdef",
    "bearer": "Bearer ",
    "eyj-dots": "eyJ.",
    # Runs that reach the Python side at every repeat: an anchor to grow from, a candidate to
    # check, a finding to merge, a key block left open.
    "emails": "a@b.cd ",
    "email-anchors": "a@a.",
    "bracketed-at": "a (at) b (dot) cd ",
    "card-candidates": "2 ",
    "luhn-cards": "4242424242424242 ",
    "phones": "+44 20 7946 0958 ",
    "bearer-tokens": "Bearer abcdefgh1 ",
    "open-pem-blocks": "-----BEGIN RSA PRIVATE KEY-----",
}
"""Units repeated into hostile text; benchmarks/bench_scrub.py times the scan of 1 and 2 MB."""

LINEARITY_CHARS = 4096
"""Characters in the smaller of the two texts compared; the larger has twice as many."""


def hostile(unit: str, size: int) -> str:
    """``unit`` repeated to exactly ``size`` characters."""
    return (unit * (size // len(unit) + 1))[:size]


def scan_work_per_character(text: str) -> float:
    """The counted work (`helpers.WorkMeter`) of one full scan of ``text``, per character."""
    with counting_work(values) as meter:
        find_sensitive(CountingText(text, meter))
    return meter.total / len(text)


@pytest.mark.parametrize("unit", list(HOSTILE_UNITS.values()), ids=list(HOSTILE_UNITS))
def test_scan_is_linear_on_hostile_input(unit: str) -> None:
    """Doubling a hostile text at most doubles the scan's work, counted, not timed.

    The work (bytecode run in values.py, characters its searches and slices
    cross) is the same on every machine. Linear work costs no more per
    character on a longer text; a quadratic part an eighth of the linear one
    would already cost over 10 % more. The regex engine's backtracking within
    one attempt is not counted: the benchmark times that.
    """
    small = scan_work_per_character(hostile(unit, LINEARITY_CHARS))
    large = scan_work_per_character(hostile(unit, 2 * LINEARITY_CHARS))
    assert large <= 1.1 * small


def test_module_loads_by_file_path() -> None:
    """Loaded by path, outside the package (as a collector does), the module works on its own."""
    spec = importlib.util.spec_from_file_location("standalone_values", values.__file__)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclass-like NamedTuple creation looks the module up
    try:
        spec.loader.exec_module(module)
        assert module.redact("anna@example.com") == ("[redacted:email]", ("email",))
    finally:
        del sys.modules[spec.name]


def test_module_imports_only_the_standard_library() -> None:
    """The module imports nothing but the standard library, as a collector's interpreter needs."""
    tree = ast.parse(Path(values.__file__).read_text(encoding="utf-8"))
    imported = {
        alias.name.split(".")[0]
        for node in ast.walk(tree)
        if isinstance(node, ast.Import)
        for alias in node.names
    } | {
        (node.module or "").split(".")[0]
        for node in ast.walk(tree)
        if isinstance(node, ast.ImportFrom)
    }
    assert imported <= {"__future__", "re", "collections", "typing", "urllib"}
