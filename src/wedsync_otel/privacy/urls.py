"""URLs and query strings with their values gone and their shape kept.

Query parameter names stay (they say what the request asked for), every
value becomes ``?``, user info in the authority becomes ``REDACTED:REDACTED``
as the semantic conventions ask for ``url.full``, and the fragment is
dropped. Path segments are left to the value scanner, which finds emails,
phone and card numbers in them.
"""

from __future__ import annotations

from collections.abc import Callable, Container
from typing import Final

VALUE_MARK: Final = "?"
USER_INFO_MARK: Final = "REDACTED:REDACTED"


def scrub_query(query: str, keep: Container[str] = ()) -> str:
    """``query`` (no leading ``?``) with every value replaced, names in ``keep`` excepted."""
    if not query:
        return query
    parts: list[str] = []
    for pair in query.split("&"):
        name, equals, value = pair.partition("=")
        if not equals:
            # A bare word carries the value itself (``?anna@example.com``).
            parts.append(VALUE_MARK if name else name)
        elif name in keep:
            parts.append(pair)
        else:
            parts.append(f"{name}={VALUE_MARK}" if value else f"{name}=")
    return "&".join(parts)


def scrub_target(
    target: str, path_scrubber: Callable[[str], str], keep: Container[str] = ()
) -> str:
    """A path with an optional query (``http.target``): path scanned, query values replaced."""
    path, question, query = target.partition("?")
    path = path.partition("#")[0]
    query = query.partition("#")[0]
    cleaned = path_scrubber(path)
    return f"{cleaned}?{scrub_query(query, keep)}" if question else cleaned


def scrub_url(url: str, path_scrubber: Callable[[str], str], keep: Container[str] = ()) -> str:
    """A full URL: user info replaced, path scanned, query values replaced, fragment dropped."""
    scheme, separator, rest = url.partition("://")
    if not separator:
        return scrub_target(url, path_scrubber, keep)
    cut = min((index for index in (rest.find(c) for c in "/?#") if index >= 0), default=len(rest))
    authority, remainder = rest[:cut], rest[cut:]
    user_info, at, host = authority.rpartition("@")
    if at:
        authority = f"{USER_INFO_MARK}@{host}" if user_info else host
    return f"{scheme}://{path_scrubber(authority)}{scrub_target(remainder, path_scrubber, keep)}"
