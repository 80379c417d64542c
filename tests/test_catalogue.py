"""Tests for wedsync_otel.catalogue: route patterns, the matcher and its bounded cache."""

from __future__ import annotations

import dataclasses
import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from wedsync_otel.catalogue import (
    MAX_PATH_CHARS,
    OTHER,
    Catalogue,
    EndpointSpec,
    bare_path,
    pattern_problem,
    pattern_shape,
)
from wedsync_otel.config import DEFAULT_ENDPOINTS


def name_of(catalogue: Catalogue, path: str) -> str:
    spec = catalogue.match(path)
    return OTHER if spec is None else spec.name


def spec(name: str, *patterns: str, threshold_ms: float = 100.0) -> EndpointSpec:
    return EndpointSpec(name=name, patterns=patterns, threshold_ms=threshold_ms)


@pytest.fixture
def default() -> Catalogue:
    return Catalogue(DEFAULT_ENDPOINTS)


# --- the default catalogue ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "patterns", "threshold_ms", "critical", "from_query"),
    [
        (
            "venue_availability",
            ("/api/venues/availability", "/api/venues/{venue_id}/availability"),
            200,
            True,
            False,
        ),
        (
            "supplier_profiles",
            ("/api/suppliers/profiles/**", "/api/suppliers/{supplier_id}/profile"),
            500,
            False,
            False,
        ),
        (
            "couple_timeline",
            ("/api/couples/timeline/**", "/api/couples/{couple_id}/timeline/**"),
            300,
            True,
            False,
        ),
        ("payments", ("/api/payments/**",), 150, True, False),
        (
            "guest_lists",
            ("/api/guest-lists/**", "/api/weddings/{wedding_id}/guests/**"),
            250,
            False,
            False,
        ),
        ("rsvp", ("/api/rsvp/**",), 200, True, False),
    ],
)
def test_default_catalogue_entries(
    name: str, patterns: tuple[str, ...], threshold_ms: float, critical: bool, from_query: bool
) -> None:
    """Each default endpoint has the report's patterns, threshold, criticality and id source."""
    by_name = {s.name: s for s in DEFAULT_ENDPOINTS}
    assert by_name[name] == EndpointSpec(
        name=name,
        patterns=patterns,
        threshold_ms=threshold_ms,
        critical=critical,
        wedding_id_from_query=from_query,
    )


def test_default_catalogue_has_exactly_six_endpoints() -> None:
    """The default catalogue declares the six report endpoints and nothing else."""
    assert [s.name for s in DEFAULT_ENDPOINTS] == [
        "venue_availability",
        "supplier_profiles",
        "couple_timeline",
        "payments",
        "guest_lists",
        "rsvp",
    ]


@pytest.mark.parametrize(
    ("path", "name"),
    [
        # venue_availability: two exact templates, no glob
        ("/api/venues/availability", "venue_availability"),
        ("/api/venues/v-123/availability", "venue_availability"),
        ("/api/venues/{venue_id}/availability", "venue_availability"),
        ("/api/venues/availability?date=2027-06-05", "venue_availability"),
        ("/api/venues/v-123/availability?from=2027-06-05&to=2027-06-06", "venue_availability"),
        ("/api/venues", OTHER),
        ("/api/venues/v-123", OTHER),
        ("/api/venues/a/b/availability", OTHER),
        ("/api/venues//availability", OTHER),
        ("/api/venues/availability/extra", OTHER),
        ("/api/venues/v-123/availability/extra", OTHER),
        # supplier_profiles
        ("/api/suppliers/profiles", "supplier_profiles"),
        ("/api/suppliers/profiles/s-9", "supplier_profiles"),
        ("/api/suppliers/profiles/s-9/photos/3", "supplier_profiles"),
        ("/api/suppliers/s-9/profile", "supplier_profiles"),
        ("/api/suppliers/{supplier_id}/profile", "supplier_profiles"),
        ("/api/suppliers/s-9/profile/photos", OTHER),
        ("/api/suppliers/profilesX", OTHER),
        ("/api/suppliers", OTHER),
        # couple_timeline
        ("/api/couples/timeline", "couple_timeline"),
        ("/api/couples/timeline/2027", "couple_timeline"),
        ("/api/couples/c-1/timeline", "couple_timeline"),
        ("/api/couples/c-1/timeline/events/9", "couple_timeline"),
        ("/api/couples/{couple_id}/timeline", "couple_timeline"),
        ("/api/couples/{couple_id}/timeline/{event_id}", "couple_timeline"),
        ("/api/couples/c-1", OTHER),
        ("/api/couples/c-1/x/timeline", OTHER),
        # payments
        ("/api/payments", "payments"),
        ("/api/payments/intent/pi_1/confirm", "payments"),
        ("/api/payments?amount=100", "payments"),
        ("/api/payments/{payment_id}/refund", "payments"),
        ("/api/paymentsfoo", OTHER),
        ("/api/payment", OTHER),
        ("/payments", OTHER),
        # guest_lists
        ("/api/guest-lists", "guest_lists"),
        ("/api/guest-lists/42", "guest_lists"),
        ("/api/weddings/w-1/guests", "guest_lists"),
        ("/api/weddings/w-1/guests/g-7/dietary", "guest_lists"),
        ("/api/weddings/{wedding_id}/guests/{guest_id}", "guest_lists"),
        ("/api/weddings/w-1", OTHER),
        ("/api/weddings/w-1/x/guests", OTHER),
        # rsvp
        ("/api/rsvp", "rsvp"),
        ("/api/rsvp/abc/accept", "rsvp"),
        ("/api/rsvpx", OTHER),
        # anything else
        ("/", OTHER),
        ("", OTHER),
        ("/health", OTHER),
        ("api/payments", OTHER),
        ("/v2/api/payments", OTHER),
    ],
)
def test_default_classification(default: Catalogue, path: str, name: str) -> None:
    """Concrete paths and route templates are classified as the contract's table says."""
    assert name_of(default, path) == name


@pytest.mark.parametrize(
    "path",
    ["/api/venues/availability/", "/api/payments/", "/api/suppliers/s-9/profile/"],
)
def test_trailing_slash_is_ignored(default: Catalogue, path: str) -> None:
    """A trailing slash classifies like the same path without it."""
    assert name_of(default, path) == name_of(default, path.rstrip("/"))


def test_fragment_is_ignored(default: Catalogue) -> None:
    """A fragment after '#' does not change the classification."""
    assert name_of(default, "/api/rsvp/abc#top") == "rsvp"


def test_returns_the_declared_spec_object(default: Catalogue) -> None:
    """A match returns the very EndpointSpec the catalogue was built from."""
    payments = next(s for s in DEFAULT_ENDPOINTS if s.name == "payments")
    assert default.match("/api/payments/x") is payments


def test_specs_keep_declaration_order() -> None:
    """The catalogue exposes its specs as a tuple in declaration order."""
    specs = [spec("b", "/b"), spec("a", "/a")]
    assert Catalogue(specs).specs == tuple(specs)


# --- hypothesis: templates, queries, cache ----------------------------------------------------

_SEGMENT = st.text(
    alphabet=st.characters(
        codec="utf-8", exclude_characters="/?#", exclude_categories=("Cs", "Cc")
    ),
    min_size=1,
    max_size=12,
)
_PARAM = re.compile(r"\{[A-Za-z_][A-Za-z0-9_]*\}")
_ALL_PATTERNS = [(s.name, p) for s in DEFAULT_ENDPOINTS for p in s.patterns]


@st.composite
def _concrete_path(draw: st.DrawFn) -> tuple[str, str]:
    """A default pattern and a concrete path it claims, with parameters and glob filled in."""
    name, pattern = draw(st.sampled_from(_ALL_PATTERNS))
    path = _PARAM.sub(lambda _: draw(_SEGMENT), pattern.removesuffix("/**"))
    if pattern.endswith("/**"):
        tail = draw(st.lists(_SEGMENT, max_size=4))
        path = "/".join([path, *tail])
    return name, path


@settings(max_examples=200)
@given(_concrete_path())
def test_concrete_paths_classify_as_their_pattern(case: tuple[str, str]) -> None:
    """Any value in a parameter and anything below a glob gives the pattern's endpoint."""
    name, path = case
    assert name_of(Catalogue(DEFAULT_ENDPOINTS), path) == name


@pytest.mark.parametrize(("name", "pattern"), _ALL_PATTERNS)
def test_templates_classify_as_their_endpoint(default: Catalogue, name: str, pattern: str) -> None:
    """Every default pattern used as an http.route template classifies as its own endpoint."""
    assert name_of(default, pattern.removesuffix("/**")) == name


@settings(max_examples=200)
@given(
    st.one_of(_concrete_path().map(lambda case: case[1]), st.text(max_size=40)),
    st.text(max_size=60),
)
def test_query_string_is_ignored(path: str, query: str) -> None:
    """Whatever follows '?' never changes the classification of the path before it."""
    catalogue = Catalogue(DEFAULT_ENDPOINTS)
    bare = path.partition("?")[0]
    assert catalogue.match(f"{bare}?{query}") == catalogue.match(bare)


def test_long_query_string_is_ignored(default: Catalogue) -> None:
    """A payments path with a query longer than MAX_PATH_CHARS is still payments."""
    assert name_of(default, "/api/payments/charge?token=" + "x" * MAX_PATH_CHARS) == "payments"


@settings(max_examples=100)
@given(st.lists(st.one_of(_concrete_path().map(lambda case: case[1]), st.text(max_size=30))))
def test_cache_never_changes_answers(paths: list[str]) -> None:
    """A small, constantly evicting cache answers exactly like a fresh catalogue per path."""
    small = Catalogue(DEFAULT_ENDPOINTS, cache_size=3)
    for path in paths + paths[::-1]:
        assert small.match(path) == Catalogue(DEFAULT_ENDPOINTS).match(path)


@settings(max_examples=200)
@given(st.text())
def test_match_never_raises(path: str) -> None:
    """Any text, regex metacharacters and unicode included, classifies without raising."""
    assert Catalogue(DEFAULT_ENDPOINTS).match(path) in (None, *DEFAULT_ENDPOINTS)


# --- specificity and ties ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("specs", "path", "name"),
    [
        pytest.param(
            [spec("glob", "/x/**"), spec("param", "/x/{id}")], "/x/1", "param", id="exact-over-glob"
        ),
        pytest.param(
            [spec("glob", "/x/**"), spec("param", "/x/{id}")], "/x/1/2", "glob", id="glob-deeper"
        ),
        pytest.param(
            [spec("glob", "/x/**"), spec("param", "/x/{id}")], "/x", "glob", id="glob-itself"
        ),
        pytest.param(
            [spec("param", "/x/{id}"), spec("me", "/x/me")], "/x/me", "me", id="literal-over-param"
        ),
        pytest.param(
            [spec("me", "/x/me"), spec("param", "/x/{id}")], "/x/me", "me", id="literal-first"
        ),
        pytest.param(
            [spec("param", "/x/{id}"), spec("me", "/x/me")], "/x/you", "param", id="param-others"
        ),
        pytest.param(
            [spec("outer", "/x/**"), spec("inner", "/x/y/**")], "/x/y/z", "inner", id="longer-glob"
        ),
        pytest.param(
            [spec("outer", "/x/**"), spec("inner", "/x/y/**")], "/x/z", "outer", id="shorter-glob"
        ),
        pytest.param(
            [spec("first", "/x/{a}"), spec("second", "/x/{b}")], "/x/1", "first", id="tie-first"
        ),
        pytest.param(
            [spec("second", "/x/{b}"), spec("first", "/x/{a}")], "/x/1", "second", id="tie-order"
        ),
        pytest.param([spec("all", "/**")], "/anything/at/all", "all", id="root-glob"),
        pytest.param([spec("all", "/**")], "/", "all", id="root-glob-root"),
        pytest.param([spec("dot", "/a.b")], "/aXb", OTHER, id="dot-is-literal"),
        pytest.param([spec("plus", "/a+/(b)")], "/a+/(b)", "plus", id="metachars-literal"),
    ],
)
def test_most_specific_pattern_wins(specs: list[EndpointSpec], path: str, name: str) -> None:
    """More literal segments win, then no glob, then the endpoint declared first."""
    assert name_of(Catalogue(specs), path) == name


def test_empty_catalogue_claims_nothing() -> None:
    """A catalogue without specs classifies every path as other."""
    assert Catalogue(()).match("/api/payments") is None


# --- bounded cache and MAX_PATH_CHARS ----------------------------------------------------------


def test_cache_stays_within_its_bound() -> None:
    """Ten thousand distinct paths never grow a 100-entry cache past 100 entries."""
    catalogue = Catalogue(DEFAULT_ENDPOINTS, cache_size=100)
    sizes = set()
    for n in range(10_000):
        catalogue.match(f"/api/payments/{n}")
        sizes.add(len(catalogue._cache))
    assert max(sizes) == 100


def test_evictions_are_counted() -> None:
    """Every path pushed out of a full cache counts one eviction."""
    catalogue = Catalogue(DEFAULT_ENDPOINTS, cache_size=100)
    for n in range(10_000):
        catalogue.match(f"/api/unknown/{n}")
    assert catalogue.evictions == 10_000 - 100


def test_eviction_is_oldest_first() -> None:
    """The path evicted from a full cache is the oldest one."""
    catalogue = Catalogue(DEFAULT_ENDPOINTS, cache_size=2)
    for path in ("/a", "/b", "/c"):
        catalogue.match(path)
    assert list(catalogue._cache) == ["/b", "/c"]


def test_repeated_paths_do_not_evict() -> None:
    """Asking for the same paths again is a cache hit and evicts nothing."""
    catalogue = Catalogue(DEFAULT_ENDPOINTS, cache_size=2)
    for _ in range(1_000):
        catalogue.match("/api/payments")
        catalogue.match("/api/rsvp")
    assert catalogue.evictions == 0


def test_new_catalogue_has_no_evictions() -> None:
    """The evictions counter starts at zero."""
    assert Catalogue(DEFAULT_ENDPOINTS).evictions == 0


def test_path_at_the_limit_is_matched() -> None:
    """A path exactly MAX_PATH_CHARS long is still classified."""
    path = "/api/payments/" + "x" * (MAX_PATH_CHARS - len("/api/payments/"))
    assert (len(path), name_of(Catalogue(DEFAULT_ENDPOINTS), path)) == (MAX_PATH_CHARS, "payments")


def test_path_over_the_limit_is_other() -> None:
    """A path one character over MAX_PATH_CHARS is other."""
    path = "/api/payments/" + "x" * (MAX_PATH_CHARS + 1 - len("/api/payments/"))
    assert Catalogue(DEFAULT_ENDPOINTS).match(path) is None


def test_path_over_the_limit_is_not_cached() -> None:
    """Over-long paths never enter the cache, so they cannot evict real ones."""
    catalogue = Catalogue(DEFAULT_ENDPOINTS, cache_size=1)
    catalogue.match("/api/payments")
    for n in range(10):
        catalogue.match(f"/api/payments/{n}" + "x" * MAX_PATH_CHARS)
    assert (list(catalogue._cache), catalogue.evictions) == (["/api/payments"], 0)


def test_max_path_chars_value() -> None:
    """The limit on classified path length is 2048 characters."""
    assert MAX_PATH_CHARS == 2048


# --- pattern_problem and pattern_shape ---------------------------------------------------------


@pytest.mark.parametrize(
    "pattern",
    ["/", "/a", "/a/b", "/a/{id}", "/a/{_x1}", "/a/**", "/**", "/a/{id}/b/**", "/a-b/c_d.e"],
)
def test_valid_patterns_have_no_problem(pattern: str) -> None:
    """Well-formed route templates are accepted."""
    assert pattern_problem(pattern) is None


@pytest.mark.parametrize(
    "pattern",
    [
        "",
        "a",
        "api/payments",
        "/a/**/b",
        "/a/b**",
        "/a/**x",
        "/a/**/**",
        "/a/{id",
        "/a/id}",
        "/a/x{id}",
        "/a/{id}x",
        "/a/{1id}",
        "/a/{}",
        "/a/{a-b}",
        "/a/{{id}}",
    ],
)
def test_invalid_patterns_have_a_problem(pattern: str) -> None:
    """A template without a leading '/', a misplaced '**' or a partial parameter is refused."""
    problem = pattern_problem(pattern)
    assert problem is not None
    assert repr(pattern) in problem


@given(st.text(max_size=30))
def test_pattern_problem_never_raises(pattern: str) -> None:
    """Any text gets a problem string or None, never an exception."""
    assert pattern_problem(pattern) is None or isinstance(pattern_problem(pattern), str)


@pytest.mark.parametrize(
    ("first", "second"),
    [
        ("/a/{x}", "/a/{y}"),
        ("/a/{x}/**", "/a/{y}/**"),
        ("/a/{x}/b/{y}", "/a/{p}/b/{q}"),
        ("/a/", "/a"),
    ],
)
def test_patterns_claiming_the_same_paths_share_a_shape(first: str, second: str) -> None:
    """Renaming parameters or adding a trailing slash keeps the shape."""
    assert pattern_shape(first) == pattern_shape(second)


@pytest.mark.parametrize(
    ("first", "second"),
    [
        ("/a/{x}", "/a/b"),
        ("/a/{x}", "/a/{x}/**"),
        ("/a/{x}", "/a/{x}/{y}"),
        ("/a", "/b"),
    ],
)
def test_different_patterns_have_different_shapes(first: str, second: str) -> None:
    """Patterns that claim different paths have different shapes."""
    assert pattern_shape(first) != pattern_shape(second)


# --- EndpointSpec --------------------------------------------------------------------------------


def test_endpoint_spec_defaults_to_not_critical() -> None:
    """An EndpointSpec is not critical unless it says so."""
    assert spec("a", "/a").critical is False


def test_endpoint_spec_takes_wedding_ids_from_the_path_only_by_default() -> None:
    """An EndpointSpec takes no wedding id from the query string unless it says so."""
    assert spec("a", "/a").wedding_id_from_query is False


def test_no_default_endpoint_takes_a_wedding_id_from_the_query() -> None:
    """The default catalogue reads wedding ids from paths only: clients cannot pick the band."""
    assert [s.name for s in DEFAULT_ENDPOINTS if s.wedding_id_from_query] == []


def test_endpoint_spec_is_frozen() -> None:
    """An EndpointSpec cannot be changed after it is built."""
    entry = spec("a", "/a")
    with pytest.raises(dataclasses.FrozenInstanceError):
        entry.threshold_ms = 1.0  # type: ignore[misc]


def test_endpoint_spec_is_keyword_only() -> None:
    """An EndpointSpec refuses positional arguments."""
    with pytest.raises(TypeError):
        EndpointSpec("a", ("/a",), 100.0)  # type: ignore[call-arg]


def test_endpoint_specs_compare_by_value() -> None:
    """Two EndpointSpecs with the same fields are equal and hash alike."""
    assert {spec("a", "/a"), spec("a", "/a")} == {spec("a", "/a")}


@pytest.mark.parametrize(
    ("path", "bare"),
    [
        ("/api/rsvp", "/api/rsvp"),
        ("/api/rsvp?token=1", "/api/rsvp"),
        ("/api/rsvp#top", "/api/rsvp"),
        ("/api/rsvp?next=/a#b?c", "/api/rsvp"),
        ("?only=query", ""),
    ],
)
def test_bare_path_drops_query_and_fragment(path: str, bare: str) -> None:
    """The query string and fragment are cut at the first ? or #."""
    assert bare_path(path) == bare


def test_match_caches_no_over_long_path() -> None:
    """A path over MAX_PATH_CHARS is other, and not kept: the cache stays small in bytes."""
    catalogue = Catalogue(DEFAULT_ENDPOINTS)
    assert catalogue.match("/api/payments/" + "x" * MAX_PATH_CHARS) is None
    assert len(catalogue._cache) == 0
