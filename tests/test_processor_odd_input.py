"""Odd input on a request span: it still gets a verdict, and what was unusable is counted."""

from __future__ import annotations

import math
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from wedsync_otel import WeddingSpanProcessor
from wedsync_otel import attributes as attr

NS_PER_S = 1_000_000_000
NOW_NS = 1_781_600_000 * NS_PER_S  # June 2026

_exporter = InMemorySpanExporter()
_processor = WeddingSpanProcessor(SimpleSpanProcessor(_exporter))
_provider = TracerProvider()
_provider.add_span_processor(_processor)
_tracer = _provider.get_tracer("tests")

attribute_values = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.integers(min_value=10**300, max_value=10**301),
    st.just(10**5000),
    st.just(-(10**5000)),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=300),
    st.binary(max_size=40),
    st.lists(st.integers(), max_size=4),
    st.lists(st.text(max_size=10), max_size=4),
)
instants = st.one_of(
    st.integers(min_value=NOW_NS - 10 * NS_PER_S, max_value=NOW_NS + 10 * NS_PER_S),
    st.integers(min_value=-(2**63), max_value=2**63),
    st.integers(min_value=10**20, max_value=10**30),
    st.just(0),
)
inputs = st.sampled_from(
    [
        attr.WEDDING_ID,
        attr.WEDDING_DATE,
        "http.route",
        "url.path",
        "http.target",
        "http.response.status_code",
        "http.status_code",
        attr.WEDDING_ENDPOINT,
        attr.WEDDING_APDEX,
    ]
)


def _odd_request(attributes: dict[str, Any], start_ns: int, end_ns: int) -> dict[str, Any]:
    _exporter.clear()
    span = _tracer.start_span(
        "request", kind=SpanKind.SERVER, attributes=attributes, start_time=start_ns
    )
    span.end(end_time=end_ns)
    (exported,) = _exporter.get_finished_spans()
    return dict(exported.attributes or {})


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.dictionaries(inputs, attribute_values, max_size=6), instants, instants)
def test_any_request_span_gets_a_verdict(
    attributes: dict[str, Any], start_ns: int, end_ns: int
) -> None:
    """Garbage inputs and absurd times still give an endpoint, a band and an Apdex class."""
    exported = _odd_request(
        {key: value for key, value in attributes.items() if value is not None}, start_ns, end_ns
    )
    assert isinstance(exported[attr.WEDDING_ENDPOINT], str)
    assert isinstance(exported[attr.WEDDING_PROXIMITY], str)
    if attr.WEDDING_DURATION_MS in exported:  # else it ended before it started: no Apdex
        assert exported[attr.WEDDING_APDEX] in {"satisfied", "tolerating", "frustrated"}
    else:
        assert end_ns < start_ns


def test_a_huge_integer_wedding_id_is_counted_and_judged_unknown() -> None:
    """A wedding.id of 5,000 digits is no id: proximity unknown, counted, nothing raised."""
    before = _processor.stats().invalid_wedding_ids
    exported = _odd_request(
        {"http.route": "/api/payments", attr.WEDDING_ID: 10**5000}, NOW_NS, NOW_NS + 1000
    )
    assert exported[attr.WEDDING_PROXIMITY] == "unknown"
    assert _processor.stats().invalid_wedding_ids == before + 1


def test_a_start_time_off_the_calendar_is_judged_now_and_counted() -> None:
    """A start 10^22 ns after the epoch (year 318,000) is judged at the current day, counted."""
    before = _processor.stats().invalid_times
    start = 10**22
    exported = _odd_request({"http.route": "/api/payments"}, start, start + 5_000_000)
    assert exported[attr.WEDDING_ENDPOINT] == "payments"
    assert math.isclose(exported[attr.WEDDING_DURATION_MS], 5.0)
    assert _processor.stats().invalid_times == before + 1
