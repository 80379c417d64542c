"""BoundedDict: the one bound every cache on a hot path shares."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from wedsync_otel._bounded import BoundedDict


def test_put_evicts_the_oldest_entry_and_counts_it() -> None:
    """A full dict makes room by dropping its oldest entry, one eviction each."""
    cache: BoundedDict[str, int] = BoundedDict(2)
    for key in ("a", "b", "c", "d"):
        cache.put(key, ord(key))
    assert (dict(cache), cache.evictions) == ({"c": 99, "d": 100}, 2)


def test_put_returns_the_value_stored() -> None:
    """put hands back what it stored, so a lookup and its fill read as one expression."""
    cache: BoundedDict[str, list[int]] = BoundedDict(4)
    value = [1]
    assert cache.put("k", value) is value


def test_replacing_a_key_in_a_full_dict_evicts_nothing() -> None:
    """A new value for a key already held needs no room."""
    cache: BoundedDict[str, int] = BoundedDict(2)
    cache.put("a", 1)
    cache.put("b", 2)
    cache.put("b", 3)
    assert (dict(cache), cache.evictions) == ({"a": 1, "b": 3}, 0)


@given(st.lists(st.integers(min_value=0, max_value=50)), st.integers(min_value=1, max_value=10))
def test_size_never_passes_the_bound(keys: list[int], bound: int) -> None:
    """However many keys arrive, the dict holds at most its bound, and reads are plain reads."""
    cache: BoundedDict[int, int] = BoundedDict(bound)
    for key in keys:
        cache.put(key, key)
        assert len(cache) <= bound
        assert cache.get(key) == key
