"""Secrets of every kind, planted anywhere in a span of any kind, never survive export."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st
from opentelemetry.trace import SpanKind

from helpers import TUESDAY, FakeClock, Pipeline
from leak_corpus import LeakClass, SpanCase, emit, exported_texts, leaks
from wedsync_otel import WeddingConfig

# --- secrets ----------------------------------------------------------------------------------

_SEPARATORS = st.sampled_from([" ", ": ", "=", ", ", "\n", "\t", "(", "/", ";"])
"""What stands between a secret and the text around it: never a letter or digit."""


def _luhn_complete(partial: str) -> str:
    """``partial`` with the check digit that makes it Luhn-valid."""
    total = 0
    for index, char in enumerate(reversed(partial)):
        digit = int(char)
        if index % 2 == 0:
            digit = digit * 2 - 9 if digit > 4 else digit * 2
        total += digit
    return partial + str((10 - total % 10) % 10)


@st.composite
def emails(draw: st.DrawFn) -> str:
    """An address in one of the spellings exported strings carry it in."""
    # "zq" keeps the local part from occurring by chance in the span's other fields.
    local = draw(
        st.from_regex(r"zq[a-z0-9]{2,10}(\.[a-z0-9]{1,8})?(\+[a-z]{1,6})?", fullmatch=True)
    )
    domain = draw(
        st.one_of(
            st.from_regex(r"[a-z][a-z0-9-]{0,10}[a-z0-9]\.(com|org|net|de|co\.uk)", fullmatch=True),
            st.sampled_from(["bücher.example", "例え.jp", "xn--bcher-kva.example", "straße.de"]),
        )
    )
    at = draw(st.sampled_from(["@", "%40", "%2540", "\uff20"]))
    address = f"{local}{at}{domain}"
    return address.upper() if draw(st.booleans()) else address


@st.composite
def card_numbers(draw: st.DrawFn) -> str:
    """A Luhn-valid card number in groups, with a random separator."""
    prefix = draw(st.sampled_from(["4", "51", "55", "2221", "6011", "34", "37"]))
    length = 15 if prefix in {"34", "37"} else 16
    body = draw(
        st.text("0123456789", min_size=length - 1 - len(prefix), max_size=length - 1 - len(prefix))
    )
    digits = _luhn_complete(prefix + body)
    groups = (4, 6, 5) if length == 15 else (4, 4, 4, 4)
    parts, start = [], 0
    for size in groups:
        parts.append(digits[start : start + size])
        start += size
    separator = draw(st.sampled_from([" ", "-", ".", "_", "  ", ""]))
    return separator.join(parts)


@st.composite
def phone_numbers(draw: st.DrawFn) -> str:
    """A phone number as people write them: UK, US and German formats."""
    digits = st.text("0123456789", min_size=1, max_size=1)

    def some(count: int) -> str:
        return "".join(draw(digits) for _ in range(count))

    template = draw(st.sampled_from(["uk", "us", "us-dashes", "de"]))
    if template == "uk":
        return f"+44 7700 900{some(3)}"
    if template == "us":
        return f"(415) 555-{some(4)}"
    if template == "us-dashes":
        return f"+1-202-555-{some(4)}"
    return f"+49 30 {some(8)}"


@st.composite
def bearer_tokens(draw: st.DrawFn) -> tuple[str, str]:
    """``Bearer <token>`` and the token, which must not survive."""
    token = draw(st.from_regex(r"[A-Za-z0-9]{20,40}", fullmatch=True))
    return f"Bearer {token}", token


def _planted(secret: st.SearchStrategy[str]) -> st.SearchStrategy[tuple[str, str]]:
    return secret.map(lambda text: (text, text))


SECRETS: dict[str, st.SearchStrategy[tuple[str, str]]] = {
    "email": _planted(emails()),
    "card": _planted(card_numbers()),
    "phone": _planted(phone_numbers()),
    "bearer": bearer_tokens(),
}
"""(what is planted, what must not survive) for each kind of secret."""

# --- where they go ----------------------------------------------------------------------------

_WORDS = st.from_regex(r"[a-z]{0,8}( [a-z]{1,8}){0,2}", fullmatch=True)


@st.composite
def in_text(draw: st.DrawFn, planted: str) -> str:
    """``planted`` inside some words, set apart by a separator on each side."""
    before, after = draw(_WORDS), draw(_WORDS)
    left = f"{before}{draw(_SEPARATORS)}" if before else ""
    right = f"{draw(_SEPARATORS)}{after}" if after else ""
    return f"{left}{planted}{right}"


def _values(draw: st.DrawFn, planted: str) -> Any:
    """An attribute value of any type that carries ``planted``: str, bytes or a sequence."""
    text = draw(in_text(planted))
    shape = draw(st.sampled_from(["str", "bytes", "list", "tuple"]))
    if shape == "str":
        return text
    if shape == "bytes":
        return text.encode()
    items = [draw(_WORDS) for _ in range(draw(st.integers(0, 2)))]
    items.insert(draw(st.integers(0, len(items))), text)
    return items if shape == "list" else tuple(items)


_KEYS = st.from_regex(r"[a-z]{2,8}(\.[a-z_]{2,8}){0,2}", fullmatch=True)


@st.composite
def spans(draw: st.DrawFn, planted: str, secret: str) -> SpanCase:
    """A span of any kind and place in its trace with ``planted`` in one of its fields."""
    where = draw(
        st.sampled_from(
            [
                "name",
                "attribute-key",
                "attribute-value",
                "event-name",
                "event-key",
                "event-value",
                "status",
                "exception",
                "link-value",
            ]
        )
    )
    key = draw(_KEYS)
    spec: dict[str, Any] = {"attributes": {"app.step": draw(_WORDS)}}
    if where == "name":
        spec["name"] = draw(in_text(planted))
    elif where == "attribute-key":
        separator = draw(st.sampled_from([".", "_", ":", " ", "/"]))
        spec["attributes"] = {f"{key}{separator}{planted}": draw(_WORDS)}
    elif where == "attribute-value":
        spec["attributes"] = {key: _values(draw, planted)}
    elif where == "event-name":
        spec["events"] = ((draw(in_text(planted)), {}),)
    elif where == "event-key":
        spec["events"] = (("notify", {f"{key}.{planted}": 1}),)
    elif where == "event-value":
        spec["events"] = (("notify", {key: _values(draw, planted)}),)
    elif where == "status":
        spec["status"] = draw(in_text(planted))
    elif where == "exception":
        spec["exception"] = draw(in_text(planted))
    else:
        spec["links"] = ({key: _values(draw, planted)},)
    return SpanCase(
        id=f"property-{where}",
        leak_class=LeakClass.VALUE,
        secrets=(secret,),
        kind=draw(st.sampled_from(list(SpanKind))),
        parent=draw(st.sampled_from(["root", "request", "remote"])),
        **spec,
    )


@st.composite
def planted_spans(draw: st.DrawFn, kind: str) -> SpanCase:
    planted, secret = draw(SECRETS[kind])
    return draw(spans(planted, secret))


@st.composite
def card_int_spans(draw: st.DrawFn) -> SpanCase:
    """A card number as an int attribute (alone or in a sequence), on a span or an event."""
    digits = card_numbers().map(lambda text: "".join(c for c in text if c.isdigit()))
    number = int(draw(digits))
    value: Any = number if draw(st.booleans()) else (1, number, 2)
    on_event = draw(st.booleans())
    return SpanCase(
        id="property-card-int",
        leak_class=LeakClass.VALUE,
        secrets=(str(number),),
        kind=draw(st.sampled_from(list(SpanKind))),
        parent=draw(st.sampled_from(["root", "request", "remote"])),
        attributes={} if on_event else {draw(_KEYS): value},
        events=((("charged", {draw(_KEYS): value}),) if on_event else ()),
    )


# --- the property -----------------------------------------------------------------------------


def _exported_leaks(case: SpanCase) -> list[str]:
    """Emit ``case`` through `WeddingSpanProcessor`; every secret form found in what it exported."""
    pipeline = Pipeline(WeddingConfig.default(), FakeClock(TUESDAY))
    try:
        emit(pipeline.tracer, case)  # the processor raises here under pytest if it fails
        spans = pipeline.spans()
        assert spans
        return leaks([text for span in spans for text in exported_texts(span)], case.secrets)
    finally:
        pipeline.provider.shutdown()


def _check(case: SpanCase) -> None:
    found = _exported_leaks(case)
    assert not found, f"{case!r}\n" + "\n".join(found)


@settings(max_examples=200, deadline=None)
@given(case=planted_spans("email"))
def test_emails_never_survive_export(case: SpanCase) -> None:
    """An email in any spelling, in any field of any span, is not exported."""
    _check(case)


@settings(max_examples=200, deadline=None)
@given(case=planted_spans("card"))
def test_card_numbers_never_survive_export(case: SpanCase) -> None:
    """A Luhn-valid card number with any separators, in any field, is not exported."""
    _check(case)


@settings(max_examples=200, deadline=None)
@given(case=planted_spans("phone"))
def test_phone_numbers_never_survive_export(case: SpanCase) -> None:
    """A phone number in any field of any span is not exported."""
    _check(case)


@settings(max_examples=200, deadline=None)
@given(case=planted_spans("bearer"))
def test_bearer_tokens_never_survive_export(case: SpanCase) -> None:
    """A bearer token in any field of any span is not exported."""
    _check(case)


@settings(max_examples=200, deadline=None)
@given(case=card_int_spans())
def test_card_numbers_as_ints_never_survive_export(case: SpanCase) -> None:
    """A card number held as an int attribute, alone or in a sequence, is not exported."""
    _check(case)
