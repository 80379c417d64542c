"""The scrubber inside the SDK pipeline: configuration, span names, counts, the contrib's names."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, Status, StatusCode

from wedsync_otel import ConfigError, WeddingConfig, WeddingSpanProcessor, configure, load_config
from wedsync_otel.instrumentation.operation_names import (
    protect_operation_names,
    safe_operation,
)
from wedsync_otel.metrics import WeddingRecorder
from wedsync_otel.metrics.self_metrics import REDACTED, register_self_metrics
from wedsync_otel.privacy.scrubber import PrivacyPolicy

EMAIL = "anna.bergstrom@example.com"


def test_privacy_table_is_read_from_the_file(tmp_path: Path) -> None:
    """``[privacy]`` lists become the policy's sets."""
    path = tmp_path / "wedsync.toml"
    path.write_text('[privacy]\nallow_keys = ["app.support_email"]\nkeep_query_params = ["page"]\n')
    policy = load_config(path=path, environ={}).privacy
    assert policy.allow_keys == frozenset({"app.support_email"})
    assert policy.keep_query_params == frozenset({"page"})


@pytest.mark.parametrize(
    ("text", "key"),
    [
        ("[privacy]\nallow_key = []\n", "privacy.allow_key"),
        ('[privacy]\nhash_secret = "sixteen-characters!"\n', "privacy.hash_secret"),
        ('[privacy]\nwedding_id_pattern = "("\n', "privacy.wedding_id_pattern"),
        ("[privacy]\nallow_values = 3\n", "privacy.allow_values"),
        ('[privacy]\ncache_namespaces = ["a b"]\n', "privacy.cache_namespaces"),
        ('privacy = "on"\n', "privacy"),
    ],
)
def test_a_bad_privacy_table_names_the_key(tmp_path: Path, text: str, key: str) -> None:
    """A mistake in ``[privacy]`` is one ConfigError naming the key."""
    path = tmp_path / "wedsync.toml"
    path.write_text(text)
    with pytest.raises(ConfigError) as raised:
        load_config(path=path, environ={})
    assert raised.value.key == key


def test_hash_secret_comes_from_the_environment() -> None:
    """The keyed hash's secret is read from its variable, never from a file."""
    config = load_config(environ={"WEDSYNC_OTEL_PRIVACY_HASH_SECRET": "s" * 16})
    assert config.privacy.hash_secret == "s" * 16


def test_a_short_hash_secret_is_refused() -> None:
    """A guessable secret would make the hashes reversible by trying values."""
    with pytest.raises(ConfigError, match=r"privacy\.hash_secret"):
        load_config(environ={"WEDSYNC_OTEL_PRIVACY_HASH_SECRET": "short"})


def test_every_span_kind_is_scrubbed_and_the_redactions_counted() -> None:
    """An INTERNAL child's status and event lose the email, and the counter says why."""
    exporter = InMemorySpanExporter()
    reader = InMemoryMetricReader()
    processor = WeddingSpanProcessor(SimpleSpanProcessor(exporter))
    provider = TracerProvider()
    provider.add_span_processor(processor)
    register_self_metrics(MeterProvider(metric_readers=[reader]), processor, WeddingRecorder())
    tracer = provider.get_tracer("tests")
    with (
        tracer.start_as_current_span("GET /api/rsvp", kind=SpanKind.SERVER),
        tracer.start_as_current_span("send confirmation") as child,
    ):
        child.add_event("mailed", {"to": EMAIL})
        child.set_status(Status(StatusCode.ERROR, f"bounce from {EMAIL}"))
    exported = {span.name: span for span in exporter.get_finished_spans()}
    child_span = exported["send confirmation"]
    assert child_span.status.description == "bounce from [redacted:email]"
    assert child_span.events[0].attributes == {"to": "[redacted:email]"}
    data = reader.get_metrics_data()
    points = {
        point.attributes["reason"]: point.value
        for resource in data.resource_metrics
        for scope in resource.scope_metrics
        for metric in scope.metrics
        if metric.name == REDACTED
        for point in metric.data.data_points
    }
    assert points["email"] == 2


def test_database_spans_carry_and_are_named_by_the_summary() -> None:
    """The conventions' db.query.summary names the span; the text keeps one ? per literal."""
    exporter = InMemorySpanExporter()
    telemetry = configure(config=WeddingConfig(), span_exporter=exporter, set_global=False)
    tracer = telemetry.tracer_provider.get_tracer("tests")
    statement = {
        "db.system.name": "postgresql",
        "db.query.text": f"INSERT INTO guests (email) VALUES ('{EMAIL}')",
    }
    with (
        tracer.start_as_current_span("GET /api/rsvp", kind=SpanKind.SERVER),
        tracer.start_as_current_span("INSERT", kind=SpanKind.CLIENT, attributes=statement),
    ):
        pass
    telemetry.force_flush()
    (query,) = [s for s in exporter.get_finished_spans() if s.kind is SpanKind.CLIENT]
    assert query.name == "INSERT guests"
    assert query.attributes is not None
    assert query.attributes["db.query.summary"] == "INSERT guests"
    assert query.attributes["db.query.text"] == "INSERT INTO guests (email) VALUES (?)"
    telemetry.shutdown()


def test_allow_listed_keys_reach_the_exporter_as_set() -> None:
    """A team that needs a field names it, and the processor exports it untouched."""
    exporter = InMemorySpanExporter()
    config = WeddingConfig(privacy=PrivacyPolicy(allow_keys=frozenset({"app.support_email"})))
    telemetry = configure(config=config, span_exporter=exporter, set_global=False)
    tracer = telemetry.tracer_provider.get_tracer("tests")
    with tracer.start_as_current_span("job", attributes={"app.support_email": EMAIL}):
        pass
    telemetry.force_flush()
    (span,) = exporter.get_finished_spans()
    assert span.attributes is not None
    assert span.attributes["app.support_email"] == EMAIL
    telemetry.shutdown()


@pytest.mark.parametrize(
    ("name", "kept"),
    [
        ("SELECT", "SELECT"),
        ("insert", "insert"),
        ("VALUES('anna@x.io')", ""),
        ("anna", ""),
        ("", ""),
    ],
)
def test_operation_names_are_kept_to_sql_keywords(name: str, kept: str) -> None:
    """What the contrib takes as the operation passes only when it is an SQL keyword."""
    assert safe_operation(name) == kept


def test_the_contrib_cursor_tracer_is_wrapped_once() -> None:
    """The guard goes round the contrib's method once, however often it is asked for."""
    from opentelemetry.instrumentation.dbapi import CursorTracer  # noqa: PLC0415

    protect_operation_names()
    assert protect_operation_names() == 0
    tracer = CursorTracer.__new__(CursorTracer)
    tracer._leading_comment_remover = re.compile(r"^/\*.*?\*/")  # what __init__ sets
    assert tracer.get_operation_name(None, ("VALUES('anna@x.io')",)) == ""
    assert tracer.get_operation_name(None, ("SELECT 1",)) == "SELECT"
