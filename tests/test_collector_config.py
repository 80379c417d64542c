"""collector-config/: the contrib collector files, checked statically and by policy evaluation."""

from __future__ import annotations

import random
import re
from collections.abc import Callable
from typing import Any

import pytest
from opentelemetry import trace as otel_trace
from opentelemetry.trace import SpanKind, Status, StatusCode

from collector_support import (
    COLLECTOR_FILES,
    CONFIG_DIR,
    KNOWN_TYPES,
    component_type,
    contract_names,
    defined_components,
    load_yaml,
    pipeline_problems,
    pipelines,
    strings,
    tail_sampling_config,
    traces_by_root,
    used_components,
    wedding_names,
)
from helpers import TUESDAY, Pipeline
from wedsync_otel import attributes as attr
from wedsync_otel.collector import PolicyError, TailSampler, Trace, UnsupportedPolicy
from wedsync_otel.collector.tail_sampling import (
    MAX_UINT64,
    ProbabilisticPolicy,
    expand_env,
    probabilistic_threshold,
    trace_id_hash,
)

MS = 1_000_000
START = int(TUESDAY.timestamp()) * 1_000_000_000
SHARE_ENV = "WEDSYNC_SAMPLING_PERCENTAGE"
ENV_REFERENCE = re.compile(r"\$\{([^}]*)\}")


@pytest.fixture(params=COLLECTOR_FILES)
def collector_file(request: pytest.FixtureRequest) -> dict[str, Any]:
    name: str = request.param
    return load_yaml(CONFIG_DIR / name)


@pytest.fixture
def gateway() -> dict[str, Any]:
    return load_yaml(CONFIG_DIR / "gateway.yaml")


def sampler(gateway: dict[str, Any], environ: dict[str, str] | None = None) -> TailSampler:
    return TailSampler.from_config(tail_sampling_config(gateway), environ or {})


# --- example traces, made by the real WeddingSpanProcessor --------------------------------


def serve(
    pipeline: Pipeline,
    name: str,
    *,
    route: str,
    duration_ms: float,
    extra: dict[str, Any] | None = None,
    child: str = "GET",
    child_attributes: dict[str, Any] | None = None,
    child_error: bool = False,
) -> None:
    """One request: a SERVER span with one CLIENT child, at fixed times on a Tuesday."""
    server = pipeline.tracer.start_span(
        name,
        kind=SpanKind.SERVER,
        attributes={"http.route": route, "http.response.status_code": 200, **(extra or {})},
        start_time=START,
    )
    context = otel_trace.set_span_in_context(server)
    client = pipeline.tracer.start_span(
        child,
        context=context,
        kind=SpanKind.CLIENT,
        attributes=child_attributes or {"cache.backend": "redis", "cache.hit": True},
        start_time=START + MS,
    )
    if child_error:
        client.set_status(Status(StatusCode.ERROR, "connection reset"))
    client.end(end_time=START + 2 * MS)
    server.end(end_time=START + int(duration_ms * MS))


@pytest.fixture
def examples(make_pipeline: Callable[..., Pipeline]) -> dict[str, Trace]:
    """Four traces: a breach, an error, a wedding-day request and an ordinary fast one."""
    pipeline = make_pipeline()
    serve(pipeline, "breached", route="/api/payments/{payment_id}", duration_ms=400)
    serve(
        pipeline,
        "error",
        route="/api/rsvp/{rsvp_id}",
        duration_ms=20,
        child="SELECT",
        child_attributes={"db.system": "postgresql", "db.statement": "SELECT 1"},
        child_error=True,
    )
    serve(
        pipeline,
        "wedding_day",
        route="/api/guest-lists/{list_id}",
        duration_ms=30,
        extra={attr.WEDDING_DATE: TUESDAY.date().isoformat()},
    )
    serve(
        pipeline,
        "ordinary",
        route="/api/suppliers/{supplier_id}/profile",
        duration_ms=40,
        extra={attr.WEDDING_DATE: "2026-09-30"},
    )
    return traces_by_root(pipeline.spans())


def root(trace: Trace) -> dict[str, object]:
    (span,) = [span for span in trace.spans if attr.WEDDING_ENDPOINT in span.attributes]
    return dict(span.attributes)


# --- the files -----------------------------------------------------------------------------


def test_every_collector_file_defines_pipelines(collector_file: dict[str, Any]) -> None:
    """Each collector file parses as YAML into a config with at least one pipeline."""
    assert pipelines(collector_file)


def test_pipelines_name_only_components_the_file_defines(collector_file: dict[str, Any]) -> None:
    """Every receiver, processor, exporter, connector and extension used is defined."""
    assert pipeline_problems(collector_file) == []


def test_every_defined_component_is_used(collector_file: dict[str, Any]) -> None:
    """No component is defined and then left out of every pipeline."""
    assert defined_components(collector_file) - used_components(collector_file) == set()


def test_component_types_are_contrib_components(collector_file: dict[str, Any]) -> None:
    """Every component id starts with a component type the contrib distribution ships."""
    unknown = {
        (kind, name)
        for kind, name in defined_components(collector_file)
        if component_type(name) not in KNOWN_TYPES[kind]
    }
    assert unknown == set()


def test_wedding_names_are_in_the_attribute_contract(collector_file: dict[str, Any]) -> None:
    """Every wedding.* name in a policy, dimension or setting exists in wedsync_otel.attributes."""
    assert wedding_names(collector_file) - contract_names() == set()


def test_environment_references_use_the_env_provider_with_a_default(
    collector_file: dict[str, Any],
) -> None:
    """Every ${...} is ${env:NAME:-default}, so each file starts with no variable set."""
    references = [
        match.group(1) for text in strings(collector_file) for match in ENV_REFERENCE.finditer(text)
    ]
    assert [ref for ref in references if not re.fullmatch(r"env:[A-Z_][A-Z0-9_]*:-.+", ref)] == []


def test_gateway_span_metrics_use_the_wedding_dimensions(gateway: dict[str, Any]) -> None:
    """The spanmetrics connector groups by endpoint, proximity and criticality, exponentially."""
    spanmetrics = gateway["connectors"]["spanmetrics"]
    assert [dimension["name"] for dimension in spanmetrics["dimensions"]] == [
        attr.WEDDING_ENDPOINT,
        attr.WEDDING_PROXIMITY,
        attr.WEDDING_CRITICAL,
    ]
    assert spanmetrics["histogram"]["exponential"]["max_size"] > 0


def test_span_metrics_see_every_span_before_sampling(gateway: dict[str, Any]) -> None:
    """The pipeline feeding spanmetrics has no tail_sampling processor in it."""
    feeding = [
        body for body in pipelines(gateway).values() if "spanmetrics" in body.get("exporters", [])
    ]
    assert feeding
    assert all("tail_sampling" not in body.get("processors", []) for body in feeding)


# --- tail sampling on example traces -------------------------------------------------------


def test_examples_carry_what_the_policies_look_for(examples: dict[str, Trace]) -> None:
    """The real processor marked the breach, the wedding day and nothing on the others."""
    assert root(examples["breached"])[attr.WEDDING_THRESHOLD_BREACHED] is True
    assert root(examples["wedding_day"])[attr.WEDDING_PROXIMITY] == "wedding_day"
    for name in ("error", "wedding_day", "ordinary"):
        assert root(examples[name])[attr.WEDDING_THRESHOLD_BREACHED] is False
    assert root(examples["ordinary"])[attr.WEDDING_PROXIMITY] == "planning"


@pytest.mark.parametrize("share", ["0", "100"])
@pytest.mark.parametrize(
    ("example", "policy"),
    [
        ("breached", "threshold-breached"),
        ("error", "errors"),
        ("wedding_day", "wedding-day"),
    ],
)
def test_important_traces_are_kept_whatever_the_share(
    gateway: dict[str, Any], examples: dict[str, Trace], example: str, policy: str, share: str
) -> None:
    """Breached, failed and wedding-day traces are kept by their own policy at 0% and 100%."""
    decision = sampler(gateway, {SHARE_ENV: share}).decide(examples[example])
    assert decision.sampled
    assert policy in decision.policies


@pytest.mark.parametrize(("share", "kept"), [("0", False), ("100", True)])
def test_ordinary_traces_follow_the_configured_share(
    gateway: dict[str, Any], examples: dict[str, Trace], share: str, kept: bool
) -> None:
    """An ordinary fast trace is kept only by the probabilistic share: never at 0, always at 100."""
    decision = sampler(gateway, {SHARE_ENV: share}).decide(examples["ordinary"])
    assert decision.sampled is kept
    assert decision.policies == (("baseline-share",) if kept else ())


def test_keep_policies_ignore_ordinary_traces(
    gateway: dict[str, Any], examples: dict[str, Trace]
) -> None:
    """Only the probabilistic policy can keep the ordinary trace."""
    keep_all = sampler(gateway, {SHARE_ENV: "100"})
    others = [policy for policy in keep_all.policies if policy.name != "baseline-share"]
    assert not any(policy.samples(examples["ordinary"]) for policy in others)


def test_default_share_is_ten_percent(gateway: dict[str, Any]) -> None:
    """Without WEDSYNC_SAMPLING_PERCENTAGE the file keeps 10% of ordinary traces."""
    policy = sampler(gateway).policy("baseline-share")
    assert isinstance(policy, ProbabilisticPolicy)
    assert policy.sampling_percentage == 10


def test_configured_share_is_what_the_hash_rule_keeps(gateway: dict[str, Any]) -> None:
    """Over 20,000 random trace ids the 10% default keeps 10% +- 0.6 of ordinary traces."""
    policy = sampler(gateway).policy("baseline-share")
    rng = random.Random(20260620)
    kept = sum(policy.samples(Trace(trace_id=rng.randbytes(16), spans=())) for _ in range(20_000))
    assert kept / 20_000 == pytest.approx(0.10, abs=0.006)


# --- the evaluator itself -------------------------------------------------------------------


def test_trace_id_hash_is_fnv1a_64_of_salt_then_id() -> None:
    """The hash matches the published FNV-1a 64 vector for "foobar" split as salt and id."""
    assert trace_id_hash("foo", b"bar") == 0x85944171F73967E8


@pytest.mark.parametrize(
    ("percentage", "threshold"),
    [(-50, 0), (0, 0), (50, (1 << 63) - 1), (100, MAX_UINT64), (150, MAX_UINT64)],
)
def test_threshold_matches_go_big_float(percentage: float, threshold: int) -> None:
    """Thresholds are MaxUint64 * share, truncated and clamped like the contrib code."""
    assert probabilistic_threshold(percentage) == threshold


@pytest.mark.parametrize(
    ("text", "environ", "expanded"),
    [
        ("${env:SHARE:-10}", {}, "10"),
        ("${env:SHARE:-10}", {"SHARE": "25"}, "25"),
        ("${env:SHARE:-10}", {"SHARE": ""}, ""),
        ("${env:SHARE}", {}, ""),
        ("http://${env:HOST:-tempo}:4317 $$5", {}, "http://tempo:4317 $5"),
    ],
)
def test_env_references_expand_like_the_env_provider(
    text: str, environ: dict[str, str], expanded: str
) -> None:
    """The default applies only to an unset variable; $$ is a literal dollar."""
    assert expand_env(text, environ) == expanded


@pytest.mark.parametrize(
    "policy",
    [
        {"name": "slow", "type": "latency", "latency": {"threshold_ms": 500}},
        {
            "name": "not-health",
            "type": "string_attribute",
            "string_attribute": {"key": "url.path", "values": ["/health"], "invert_match": True},
        },
    ],
)
def test_policies_the_evaluator_does_not_model_are_refused(policy: dict[str, Any]) -> None:
    """A policy type or option outside the model raises instead of being ignored."""
    with pytest.raises(UnsupportedPolicy):
        TailSampler.from_config({"policies": [policy]})


def test_bad_status_codes_are_reported_by_policy_name() -> None:
    """A status code the collector does not know names the policy and the key."""
    bad = {"name": "errs", "type": "status_code", "status_code": {"status_codes": ["FAILED"]}}
    with pytest.raises(PolicyError, match=r"policies\[errs\]\.status_code\.status_codes"):
        TailSampler.from_config({"policies": [bad]})
