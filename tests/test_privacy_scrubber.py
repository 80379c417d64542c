"""The scrubber's policy: structural rewriting, sensitive keys, markers, allow-lists, counts."""

from __future__ import annotations

import pytest

from wedsync_otel.privacy.commands import command_name, scrub_command
from wedsync_otel.privacy.keys import SensitiveKeys
from wedsync_otel.privacy.messages import scrub_message
from wedsync_otel.privacy.scrubber import PrivacyPolicy, Scrubber
from wedsync_otel.privacy.urls import scrub_query, scrub_url

SECRET = "a-hash-secret-of-16+"


@pytest.mark.parametrize(
    "key",
    [
        "http.request.header.authorization",
        "http.request.header.cookie",
        "http.response.header.set-cookie",
        "http.request.header.x-api-key",
        "user.password",
        "db.connection.passwd",
        "session.id",
        "app.jwt",
        "http.request.header.x-csrf-token",
        "payment.card.last4",
        "payment.cvv",
        "aws.secret_access_key",
        "oauth.client_secret",
        "AccessToken",
        "user.ssn",
    ],
)
def test_sensitive_keys_are_recognised(key: str) -> None:
    """Keys that name credentials or card data are sensitive however they are spelled."""
    assert SensitiveKeys().is_sensitive(key)


@pytest.mark.parametrize(
    "key",
    [
        "http.route",
        "url.path",
        "author.name",
        "process.name",
        "gen_ai.usage.input_tokens",
        "db.query.text",
        "wedding.threshold_ms",
        "keyboard.layout",
        "discard.count",
        "server.address",
    ],
)
def test_ordinary_keys_are_not_sensitive(key: str) -> None:
    """Keys that only contain a sensitive word's letters are left to the value scan."""
    assert not SensitiveKeys().is_sensitive(key)


def test_extra_sensitive_words_extend_the_list() -> None:
    """A team can name its own secrets (``guest_note``) as sensitive keys."""
    assert SensitiveKeys(["guest note"]).is_sensitive("app.guest_note")


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("email=anna%40example.com&page=2", "email=?&page=?"),
        ("q=", "q="),
        ("anna@example.com", "?"),
        ("a=1&&b=2", "a=?&&b=?"),
        ("", ""),
    ],
)
def test_query_values_are_replaced_and_names_kept(query: str, expected: str) -> None:
    """Parameter names say what was asked; their values could be anything, so they go."""
    assert scrub_query(query) == expected


def test_kept_query_parameters_keep_their_values() -> None:
    """A parameter a team lists in keep_query_params is exported as sent."""
    assert scrub_query("page=2&email=x", keep={"page"}) == "page=2&email=?"


def test_full_urls_lose_user_info_query_values_and_fragment() -> None:
    """``url.full``: credentials as the conventions' REDACTED, values as ``?``, no fragment."""
    url = "https://anna:hunter2@api.example/v1/rsvp?token=abc&guest=7#section"
    assert scrub_url(url, str) == "https://REDACTED:REDACTED@api.example/v1/rsvp?token=?&guest=?"


@pytest.mark.parametrize(
    ("message", "expected"),
    [
        (
            'duplicate key value violates unique constraint "guests_email_key"\n'
            "DETAIL:  Key (email)=(anna@example.com) already exists.",
            'duplicate key value violates unique constraint "guests_email_key"\n'
            "DETAIL:  Key (email)=(?) already exists.",
        ),
        (
            'new row for relation "guests" violates check constraint "guests_age_check"\n'
            "DETAIL:  Failing row contains (7, Anna Smith, 12).",
            'new row for relation "guests" violates check constraint "guests_age_check"\n'
            "DETAIL:  Failing row contains (?).",
        ),
        (
            'invalid input syntax for type integer: "Anna"',
            'invalid input syntax for type integer: "?"',
        ),
        ("no such column: anna@example.com", "no such column: ?"),
        (
            "unknown command `supplier:42:anna`, with args beginning with: `x`, ",
            "unknown command `?`, with args beginning with: `?`, ",
        ),
        (
            "Duplicate entry 'anna@example.com' for key 'guests.email'",
            "Duplicate entry '?' for key 'guests.email'",
        ),
        ("can't connect to the server", "can't connect to the server"),
        (
            "LINE 1: SELECT * FROM guests WHERE name = 'Anna'",
            "LINE 1: SELECT * FROM guests WHERE name = ?",
        ),
    ],
)
def test_driver_messages_keep_the_error_and_lose_the_values(message: str, expected: str) -> None:
    """The error's wording and schema names stay; whatever the driver echoed goes."""
    assert scrub_message(message) == expected


def test_stack_trace_frames_keep_their_file_names() -> None:
    """``File "/app/x.py", line 3`` is how a reader finds the code: it stays."""
    trace = "Traceback:\n  File \"/app/x.py\", line 3, in f\nValueError: bad 'anna'"
    assert (
        scrub_message(trace)
        == "Traceback:\n  File \"/app/x.py\", line 3, in f\nValueError: bad '?'"
    )


@pytest.mark.parametrize(
    ("statement", "expected"),
    [
        ("GET supplier:42:anna@example.com", "GET ?"),
        ("AUTH default hunter2", "AUTH ? ?"),
        ("SET ? ? ? ?", "SET ? ? ? ?"),
        ("CONFIG SET requirepass x", "CONFIG SET ? ?"),
        ("GET ?\nSET ? ?", "GET ?\nSET ? ?"),
        ("get wedding:7", "GET ?"),
        ("anna@example.com", "?"),
    ],
)
def test_cache_commands_keep_only_the_command(statement: str, expected: str) -> None:
    """A command passed as one string keeps its name; keys, values and passwords go."""
    assert scrub_command(statement) == expected


def test_command_name_refuses_a_literal() -> None:
    """Text that does not start with a command word has no command name."""
    assert command_name("'anna' GET") is None


def test_sensitive_key_values_are_redacted_whole() -> None:
    """An Authorization header goes whatever it holds; its count is kept."""
    scrubber = Scrubber()
    out = scrubber.attributes({"http.request.header.authorization": ("Basic YW5uYTpwdw==",)})
    assert out == {"http.request.header.authorization": ("[redacted]",)}
    assert scrubber.counts() == {"sensitive_key": 1}


def test_hash_secret_makes_markers_joinable_but_unreadable() -> None:
    """With a secret, the same value gives the same marker, and the marker is not the value."""
    scrubber = Scrubber(PrivacyPolicy(hash_secret=SECRET))
    first = scrubber.text("mail anna@example.com")
    second = scrubber.text("again anna@example.com")
    other = scrubber.text("mail bob@example.com")
    marker = first.removeprefix("mail ")
    assert marker == second.removeprefix("again ")
    assert marker != other.removeprefix("mail ")
    assert "anna" not in marker
    assert marker.startswith("[email:")


def test_allow_listed_keys_and_values_pass() -> None:
    """A key or an exact value on the allow-list is exported as it is."""
    scrubber = Scrubber(
        PrivacyPolicy(allow_keys=frozenset({"support.email"}), allow_values=frozenset({"ops@x.io"}))
    )
    attributes = {"support.email": "help@wedsync.example", "contact": "ops@x.io"}
    assert scrubber.attributes(attributes) is None


@pytest.mark.parametrize(
    ("wedding_id", "exported"),
    [
        ("w-1042", True),
        ("1042", True),
        ("3f2b8c1e-9a7d-4c6b-8e5f-0a1b2c3d4e5f", True),
        ("anna@example.com", False),
        ("+44 7700 900123", False),
        ("07700900123", False),
        ("Anna Smith", False),
        ("x" * 200, False),
    ],
)
def test_wedding_ids_are_exported_only_in_their_shape(wedding_id: str, exported: bool) -> None:
    """Client input that is not shaped like a wedding id never leaves as it was sent."""
    out = Scrubber().attributes({"wedding.id": wedding_id})
    if exported:
        assert out is None
    else:
        assert out == {"wedding.id": "[redacted:wedding_id]"}


def test_unknown_cache_namespaces_become_other() -> None:
    """A namespace that is a person's name or number is not exported; a configured one is."""
    scrubber = Scrubber(PrivacyPolicy(cache_namespaces=frozenset({"venue"})))
    assert scrubber.attributes({"cache.key.namespace": "venue"}) is None
    assert scrubber.attributes({"cache.key.namespace": "Anna"}) == {"cache.key.namespace": "other"}


def test_rediseach_document_attributes_are_dropped() -> None:
    """The contrib names RediSearch document attributes by their key: the key is the leak."""
    out = Scrubber().attributes(
        {"redis.search.index": "guests", "redis.search.xdoc_guest:anna@x.io.name": "Anna"}
    )
    assert out == {"redis.search.index": "guests"}


def test_attribute_keys_holding_data_are_dropped() -> None:
    """A key that is an email (``set_attribute(email, ...)``) does not reach the exporter."""
    scrubber = Scrubber()
    assert scrubber.attributes({"guest.anna@example.com": True}) == {}
    assert scrubber.counts() == {"attribute_name": 1}


def test_cache_statements_are_rewritten_by_system() -> None:
    """Memcached, Valkey and Redis statements are commands, not SQL."""
    out = Scrubber().attributes({"db.system": "memcached", "db.statement": "get guest:anna"})
    assert out == {"db.system": "memcached", "db.statement": "GET ?"}


def test_database_span_names_come_from_the_summary() -> None:
    """A statement that starts with a literal never names its span."""
    scrubber = Scrubber()
    attributes = {"db.system": "sqlite", "db.statement": "VALUES('anna@example.com')"}
    name = scrubber.span_name("VALUES('anna@example.com')", attributes)
    assert "anna" not in name


def test_card_numbers_as_integers_are_redacted() -> None:
    """A Luhn-valid card number stored as an int is still a card number."""
    out = Scrubber().attributes({"order.reference": 4111111111111111})
    assert out == {"order.reference": "[redacted:card]"}


def test_clean_attributes_are_returned_as_none() -> None:
    """Nothing to scrub: no copy, so the processor forwards the span untouched."""
    attributes = {
        "http.request.method": "GET",
        "http.route": "/api/venues/{venue_id}/availability",
        "url.path": "/api/venues/42/availability",
        "server.port": 443,
        "http.response.status_code": 200,
    }
    scrubber = Scrubber()
    assert scrubber.attributes(attributes) is None
    assert scrubber.attributes(attributes) is None  # and again, from the caches


def test_a_query_parameter_named_by_an_email_is_marked() -> None:
    """``?anna@example.com=`` has no value to replace; its name is still scanned."""
    out = Scrubber().attributes({"url.query": "anna@example.com="})
    assert out == {"url.query": "[redacted:email]="}


def test_a_repeated_url_is_counted_every_time() -> None:
    """The URL memo spares the scan, not the count."""
    scrubber = Scrubber()
    for _ in range(3):
        scrubber.attributes({"url.full": "https://api.example/v1?email=anna%40example.com"})
    assert scrubber.counts() == {"query_value": 3}
