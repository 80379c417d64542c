"""Every request measured, whatever the sampler: head sampling decides what is exported only.

The span processor sees only recording spans, so with
``OTEL_TRACES_SAMPLER=traceidratio`` at 0.1 it would count one request in
ten, and every rate, error budget and readiness verdict built on the counts
would be off by the sampling rate. `RequestRecordingSampler` wraps the
user's sampler: a request span (SERVER, or a local root) that sampler drops
is still recorded (``RECORD_ONLY``, never sampled) and carries
`RECORDED_FOR_METRICS`, so the processor judges and measures it but hands it
to no downstream processor: what is exported stays exactly what the user's
sampler chose. Child spans keep the user's decision (a parent-based sampler
drops the children of an unsampled request), so an unsampled request costs
one recording span, not a trace: its cache and database work is not seen.
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from typing import Final

from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.sampling import Decision, Sampler, SamplingResult
from opentelemetry.trace import Link, SpanContext, SpanKind
from opentelemetry.trace.span import TraceState
from opentelemetry.util.types import Attributes

RECORDED_FOR_METRICS: Final = "wedsync.recorded_for_metrics"
"""Set on a request span the user's sampler dropped: measured, never exported."""

_SERVER: Final = SpanKind.SERVER


class RequestRecordingSampler(Sampler):
    """The user's sampler, except that a request span it drops is recorded for the metrics."""

    def __init__(self, inner: Sampler) -> None:
        self.inner = inner
        self._decide = inner.should_sample

    def should_sample(  # noqa: PLR0917 - the SDK's Sampler signature
        self,
        parent_context: Context | None,
        trace_id: int,
        name: str,
        kind: SpanKind | None = None,
        attributes: Attributes = None,
        links: Sequence[Link] | None = None,
        trace_state: TraceState | None = None,
    ) -> SamplingResult:
        """The inner decision; ``RECORD_ONLY`` with the marker for a dropped request span."""
        result = self._decide(parent_context, trace_id, name, kind, attributes, links, trace_state)
        if result.decision is not Decision.DROP or not _is_request(parent_context, kind):
            return result
        return SamplingResult(
            Decision.RECORD_ONLY,
            {**(attributes or {}), RECORDED_FOR_METRICS: True},
            result.trace_state,
        )

    def get_description(self) -> str:
        return f"RequestRecording{{{self.inner.get_description()}}}"


def _is_request(parent_context: Context | None, kind: SpanKind | None) -> bool:
    """A SERVER span or a local root: the spans the processor judges."""
    if kind is _SERVER:
        return True
    return is_local_root(trace.get_current_span(parent_context).get_span_context())


def is_local_root(parent: SpanContext | None) -> bool:
    """Whether a span with this parent starts the process's part of a trace.

    The one spelling of the rule, for the sampler (which sees the parent
    context's span) and the processor (which sees the span's ``parent``).
    """
    return parent is None or not parent.is_valid or parent.is_remote


def record_every_request(
    provider: TracerProvider, *, tracers_exist: bool = False
) -> RequestRecordingSampler:
    """Make ``provider`` record the request spans its sampler drops; idempotent.

    Tracers get the wrapper from ``provider.sampler`` when they are made. With
    ``tracers_exist`` (zero-code setup beside another distro runs after the
    instrumentations took their tracers), the tracers made earlier hold the
    sampler object itself, which has no hook: its ``should_sample`` is routed
    through the wrapper on the instance, so every tracer that shares the
    object (in this process) records dropped requests too.
    """
    sampler = provider.sampler
    if isinstance(sampler, RequestRecordingSampler):
        return sampler
    wrapper = RequestRecordingSampler(sampler)
    provider.sampler = wrapper
    if tracers_exist:
        # A sampler with __slots__ refuses: tracers made earlier then keep its own decisions.
        with contextlib.suppress(AttributeError):
            sampler.should_sample = wrapper.should_sample  # type: ignore[method-assign]
    return wrapper
