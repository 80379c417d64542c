"""Endpoint catalogue: route patterns compiled once into one matcher.

A pattern is a path template: ``{name}`` matches exactly one segment, and a
trailing ``/**`` matches the path itself and anything below it. When several
patterns match, the most specific one wins (more literal segments, then fewer
``**``), ties going to the endpoint declared first.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from wedsync_otel._bounded import BoundedDict

OTHER = "other"
"""Endpoint name of every path the catalogue does not claim."""

_PARAM = re.compile(r"\{[A-Za-z_][A-Za-z0-9_]*\}")
_GLOB_SUFFIX = "/**"
MAX_PATH_CHARS = 2048
"""Longer paths are classified ``other`` without matching or caching."""


@dataclass(frozen=True, kw_only=True, slots=True)
class EndpointSpec:
    """One catalogue entry: its name, route patterns, base threshold and criticality.

    ``wedding_id_from_query``: whether a request to this endpoint may name its
    wedding in the query string (``?wedding_id=``). Off by default: a path id
    is part of the route the application serves, while a query id is chosen
    by the client on any URL, so it could put any request into the
    wedding-day band.
    """

    name: str
    patterns: tuple[str, ...]
    threshold_ms: float
    critical: bool = False
    wedding_id_from_query: bool = False


def pattern_problem(pattern: str) -> str | None:
    """Why ``pattern`` is not a valid route template, or ``None`` if it is."""
    if not pattern.startswith("/"):
        return f"pattern {pattern!r} must start with '/'"
    body = pattern.removesuffix(_GLOB_SUFFIX)
    for segment in body.split("/")[1:]:
        if "**" in segment:
            return f"pattern {pattern!r}: '**' is allowed only as the last segment"
        if ("{" in segment or "}" in segment) and not _PARAM.fullmatch(segment):
            return f"pattern {pattern!r}: a parameter must be a whole segment like {{name}}"
    return None


def pattern_shape(pattern: str) -> str:
    """The pattern with parameter names erased: two patterns with one shape claim the same paths."""
    return _normalise(_PARAM.sub("{}", pattern))


def bare_path(path: str) -> str:
    """``path`` without its query string or fragment: they never decide the endpoint."""
    if "?" in path or "#" in path:
        return path.partition("?")[0].partition("#")[0]
    return path


def _normalise(path: str) -> str:
    return path.rstrip("/") or "/" if len(path) > 1 else path


def _specificity(pattern: str) -> tuple[int, int]:
    body = pattern.removesuffix(_GLOB_SUFFIX)
    literals = sum(1 for s in body.split("/")[1:] if s and not _PARAM.fullmatch(s))
    return (literals, 0 if pattern.endswith(_GLOB_SUFFIX) else 1)


def _to_regex(pattern: str) -> str:
    glob = pattern.endswith(_GLOB_SUFFIX)
    body = _normalise(pattern.removesuffix(_GLOB_SUFFIX)) if glob else _normalise(pattern)
    parts = [
        "[^/]+" if _PARAM.fullmatch(segment) else re.escape(segment) for segment in body.split("/")
    ]
    regex = "/".join(parts)
    if glob:
        regex = "(?:/.*)?" if body == "/" else regex + "(?:/.*)?"
    return regex


class Catalogue:
    """Classifies request paths against the endpoint specs.

    Compiles every pattern into one alternation, ordered by specificity, in the
    constructor; the per-call path strips the query, looks in a bounded cache
    and only then runs the regex. The cache evicts oldest-first and counts it,
    since a client can send a million distinct paths.
    """

    def __init__(self, specs: Sequence[EndpointSpec], *, cache_size: int = 10_000) -> None:
        self.specs = tuple(specs)
        ranked = sorted(
            (
                (index, pattern)
                for index, spec in enumerate(self.specs)
                for pattern in spec.patterns
            ),
            key=lambda item: (-_specificity(item[1])[0], -_specificity(item[1])[1], item[0]),
        )
        self._group_owner = {f"p{n}": index for n, (index, _) in enumerate(ranked)}
        alternatives = "|".join(f"(?P<p{n}>{_to_regex(p)})" for n, (_, p) in enumerate(ranked))
        self._regex = re.compile(alternatives) if alternatives else None
        self._cache: BoundedDict[str, EndpointSpec | None] = BoundedDict(cache_size)

    @property
    def evictions(self) -> int:
        """Paths evicted from the cache so far."""
        return self._cache.evictions

    def match(self, path: str) -> EndpointSpec | None:
        """The spec claiming ``path`` (query string ignored), or ``None`` for ``other``.

        Cached by bare path, so a million query strings share one entry; a route
        (which has none) is found under itself without cutting it first.
        """
        try:
            return self._cache[path]
        except KeyError:
            path = bare_path(path)
        try:
            return self._cache[path]
        except KeyError:
            pass
        if len(path) > MAX_PATH_CHARS:
            return None
        return self._cache.put(path, self._match_uncached(path))

    def _match_uncached(self, path: str) -> EndpointSpec | None:
        bare = _normalise(path)
        if self._regex is None:
            return None
        found = self._regex.fullmatch(bare)
        if found is None or found.lastgroup is None:
            return None
        return self.specs[self._group_owner[found.lastgroup]]
