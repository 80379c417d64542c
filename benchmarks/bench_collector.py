"""Spans/s through rotel; request latency with the collector refusing or stalling; a 10 s outage.

Throughput: the application thread ends 10,000 server spans as fast as it can
through `configure()`'s pipeline and flushes; the figure is 10,000 over the
time until the last one reaches a real gRPC receiver that only counts them.
Three variants in interleaved rounds, medians and ratios: (a) through rotel
(``collector-config/rotel/run.sh``, the WedSync processor included) with
configure()'s retrying exporter; (b) the same with retries off, the SDK's
OTLP exporter alone; (c) straight to the receiver, no rotel.

Latency: requests of fixed work inside a server span at 500 requests/s,
through `configure()`'s pipeline to a real gRPC receiver that answers
healthily, refuses every export (``UNAVAILABLE``) or answers after 2 s. Four
phases (healthy, refusing, healthy again, slow) in interleaved rounds, the
order reversed every other round; medians and their ratios to the first
healthy phase. The two healthy phases differ only by the machine's noise, so
their ratio says how much of the others is noise. (This was a test until the
noise failed it; the property behind it, that ``span.end()`` never waits for
the collector, is tested deterministically in
``tests/test_collector_faults.py``.)

Outage: 500 spans/s through rotel, rotel stopped for 10 s, then restarted on
the same port. tracemalloc runs from the moment rotel stops, so what it holds
when rotel comes back is what the outage queued (spans ended during it, the
batch being retried, and the bookkeeping around them). A full garbage
collection is timed before the outage and with the outage queued, because a
deep queue costs pause time as well as memory. The longest ``span.end()``
during the outage is reported with and without the collections inside it.
"""

from __future__ import annotations

import gc
import hashlib
import io
import statistics
import sys
import tempfile
import threading
import time
import tracemalloc
from collections.abc import Callable
from pathlib import Path
from typing import Final

from opentelemetry.exporter.otlp.proto.grpc.metric_exporter import OTLPMetricExporter
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.metrics.export import ConsoleMetricExporter
from opentelemetry.trace import SpanKind, Tracer

import wedsync_otel
from wedsync_otel import WeddingConfig
from wedsync_otel.export_tuning import DEFAULT_MAX_QUEUE_SIZE, ExportTuning, RetryingSpanExporter

sys.path.insert(0, str(Path(__file__).parent.parent / "tests"))
from collector_support import (
    STEADY_ATTRIBUTES,
    STEADY_ROUTE,
    Fault,
    FaultyOtlpReceiver,
    GcPauses,
    Rotel,
    SteadyLoad,
    restart_rotel,
    start_rotel,
)

SPANS_PER_ROUND = 10_000
ROUNDS = 5
DELIVERY_TIMEOUT_S = 60.0
RATE_PER_S = 500
WARM_UP_S = 3.0
OUTAGE_S = 10.0

LATENCY_ROUNDS: Final = 4
PHASE_S: Final = 1.5
REQUESTS_PER_S: Final = 500
WORK_BLOCKS: Final = 40
PAYLOAD: Final = b"wedsync" * 64
SLOW_ANSWER_S: Final = 2.0
PHASES: Final = {
    "healthy": Fault.NONE,
    "unavailable": Fault.UNAVAILABLE,
    "healthy again": Fault.NONE,
    "slow": Fault.SLOW,
}


def _telemetry(endpoint: str, tuning: ExportTuning | None) -> wedsync_otel.WeddingTelemetry:
    return wedsync_otel.configure(
        config=WeddingConfig.default(),
        service_name="wedsync-bench",
        span_exporter=OTLPSpanExporter(endpoint=endpoint, insecure=True),
        metric_exporter=ConsoleMetricExporter(out=io.StringIO()),
        metric_export_interval_millis=3_600_000,
        set_global=False,
        export_tuning=tuning,
    )


def _throughput_round(
    receiver: FaultyOtlpReceiver, endpoint: str, tuning: ExportTuning | None
) -> float:
    """Spans per second from the first span ended to the last one received."""
    telemetry = _telemetry(endpoint, tuning)
    tracer = telemetry.tracer_provider.get_tracer("bench.collector")
    target = receiver.accepted_spans + SPANS_PER_ROUND
    gc.collect()
    began = time.perf_counter()
    for _ in range(SPANS_PER_ROUND):
        tracer.start_span(
            f"GET {STEADY_ROUTE}", kind=SpanKind.SERVER, attributes=STEADY_ATTRIBUTES
        ).end()
    telemetry.force_flush()
    arrived = receiver.wait_for_spans(target, timeout_s=DELIVERY_TIMEOUT_S)
    took_s = time.perf_counter() - began
    telemetry.shutdown()
    if not arrived:
        raise SystemExit(f"only {receiver.accepted_spans} of {target} spans arrived")
    return SPANS_PER_ROUND / took_s


def throughput(receiver: FaultyOtlpReceiver, rotel: Rotel) -> None:
    """Median spans/s of the three variants, interleaved."""
    variants: dict[str, Callable[[], float]] = {
        "(a) rotel, retrying exporter": lambda: _throughput_round(receiver, rotel.endpoint, None),
        "(b) rotel, SDK exporter alone": lambda: _throughput_round(
            receiver, rotel.endpoint, ExportTuning(retry_deadline_s=0)
        ),
        "(c) straight to the receiver": lambda: _throughput_round(
            receiver, receiver.endpoint, None
        ),
    }
    names = list(variants)
    rates: dict[str, list[float]] = {name: [] for name in names}
    for round_index in range(ROUNDS):
        for name in names if round_index % 2 == 0 else list(reversed(names)):
            rates[name].append(variants[name]())
    medians = {name: statistics.median(values) for name, values in rates.items()}
    a, b, c = names
    print(f"== spans/s exported to a gRPC receiver ({SPANS_PER_ROUND:,} spans, {ROUNDS} rounds)")
    for name in names:
        spread = f"{min(rates[name]):,.0f}..{max(rates[name]):,.0f}"
        print(f"  {name:<34} median {medians[name]:9,.0f} spans/s   (range {spread})")
    for label, numerator, denominator in (
        ("a/b  retrying wrapper", a, b),
        ("a/c  through rotel", a, c),
    ):
        print(f"  ratio {label:<28} {medians[numerator] / medians[denominator]:6.3f}")


def _request(tracer: Tracer) -> float:
    """One request of fixed work inside a server span; its duration in seconds."""
    started = time.perf_counter()
    with tracer.start_as_current_span(
        f"GET {STEADY_ROUTE}", kind=SpanKind.SERVER, attributes=STEADY_ATTRIBUTES
    ):
        digest = PAYLOAD
        for _ in range(WORK_BLOCKS):
            digest = hashlib.sha256(digest + PAYLOAD).digest()
    return time.perf_counter() - started


def latency() -> None:
    """Median request latency per collector behaviour, interleaved, and ratios to healthy."""
    phases = list(PHASES)
    durations: dict[str, list[float]] = {phase: [] for phase in phases}
    pacer = threading.Event()  # never set: its wait() paces the requests
    with FaultyOtlpReceiver(slow_s=SLOW_ANSWER_S) as receiver:
        telemetry = wedsync_otel.configure(
            config=WeddingConfig.default(),
            service_name="wedsync-latency-bench",
            span_exporter=OTLPSpanExporter(endpoint=receiver.endpoint, insecure=True),
            metric_exporter=OTLPMetricExporter(endpoint=receiver.endpoint, insecure=True),
            metric_export_interval_millis=3_600_000,
            set_global=False,
        )
        tracer = telemetry.tracer_provider.get_tracer("bench.latency")
        try:
            for _ in range(200):
                _request(tracer)  # warm caches and the adaptive interpreter
            for round_index in range(LATENCY_ROUNDS):
                for phase in phases if round_index % 2 == 0 else list(reversed(phases)):
                    receiver.set_fault(PHASES[phase])
                    began = time.monotonic()
                    for index in range(int(PHASE_S * REQUESTS_PER_S)):
                        pacer.wait(max(0.0, began + index / REQUESTS_PER_S - time.monotonic()))
                        durations[phase].append(_request(tracer))
        finally:
            receiver.set_fault(Fault.NONE)
            telemetry.shutdown()
        accepted = receiver.accepted_spans
    medians = {phase: statistics.median(values) for phase, values in durations.items()}
    healthy = medians["healthy"]
    print(
        f"== request latency at {REQUESTS_PER_S} requests/s, collector healthy, refusing "
        f"(UNAVAILABLE) or answering after {SLOW_ANSWER_S:.0f} s "
        f"({LATENCY_ROUNDS} interleaved rounds of {PHASE_S} s per phase)"
    )
    for phase in phases:
        print(
            f"  {phase:<14} median {medians[phase] * 1e6:8.1f} us   ratio to healthy "
            f"{medians[phase] / healthy:6.3f}   ({len(durations[phase])} requests)"
        )
    print(f"  spans the receiver accepted in all: {accepted}")


def _full_collection_ms() -> float:
    """The shortest of three full collections, in ms: the pause one costs now."""
    timings = []
    for _ in range(3):
        began = time.perf_counter()
        gc.collect()
        timings.append(time.perf_counter() - began)
    return min(timings) * 1e3


def outage(receiver: FaultyOtlpReceiver, rotel: Rotel, workdir: Path) -> Rotel:
    """Memory and collection pause of a 10 s outage at 500 spans/s; returns the restarted rotel."""
    telemetry = _telemetry(rotel.endpoint, None)
    retrying = getattr(telemetry.span_processor.downstream, "span_exporter", None)
    assert isinstance(retrying, RetryingSpanExporter)
    load = SteadyLoad(telemetry.tracer_provider.get_tracer("bench.outage"), rate_per_s=RATE_PER_S)
    paced = threading.Event()  # never set: its wait() paces the scenario
    load.start()
    paced.wait(WARM_UP_S)
    pause_before_ms = _full_collection_ms()
    rotel.stop()
    with GcPauses() as gc_pauses:
        load.set_phase("outage")
        tracemalloc.start()
        ended_before = load.ended
        paced.wait(OUTAGE_S)
        ended = load.ended
        stats = retrying.stats()
        held_bytes, peak_bytes = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        load.set_phase("after")
    longest_end_s = load.max_end_s("outage")
    longest_blocked_s = max(
        (
            call.took_s - gc_pauses.overlap(call.started, call.started + call.took_s)
            for call in load.slow_calls("outage")
        ),
        default=longest_end_s,
    )
    pause_with_queue_ms = _full_collection_ms()
    rotel = restart_rotel(rotel, exporter_endpoint=receiver.endpoint, workdir=workdir)
    load.stop()
    delivered = receiver.wait_for_spans(load.ended, timeout_s=DELIVERY_TIMEOUT_S)
    telemetry.shutdown()
    held = ended - stats.exported_spans - stats.dropped_spans
    per_span = held_bytes / held
    print(f"== a {OUTAGE_S:.0f} s rotel outage at {RATE_PER_S} spans/s")
    print(
        f"  spans ended during the outage {ended - ended_before:,}; held at its end {held:,} "
        f"(queue + batch being retried); all delivered after restart: {delivered}"
    )
    print(
        f"  longest span.end() during the outage {longest_end_s * 1e3:6.1f} ms, "
        f"{longest_blocked_s * 1e3:.1f} ms less garbage collection; "
        f"errors raised: {len(load.errors)}"
    )
    print(
        f"  memory held {held_bytes / 1e6:6.1f} MB ({per_span:,.0f} B/span), "
        f"peak {peak_bytes / 1e6:.1f} MB; a full queue of {DEFAULT_MAX_QUEUE_SIZE:,} spans "
        f"would hold about {per_span * DEFAULT_MAX_QUEUE_SIZE / 1e6:.0f} MB"
    )
    print(
        f"  full GC pause {pause_before_ms:6.1f} ms before, {pause_with_queue_ms:6.1f} ms with "
        f"the outage queued   ratio {pause_with_queue_ms / pause_before_ms:6.2f}"
    )
    return rotel


def main() -> None:
    with FaultyOtlpReceiver() as receiver, tempfile.TemporaryDirectory() as scratch:
        workdir = Path(scratch)
        rotel = start_rotel(exporter_endpoint=receiver.endpoint, workdir=workdir)
        try:
            throughput(receiver, rotel)
            latency()
            rotel = outage(receiver, rotel, workdir)
        finally:
            rotel.stop()


if __name__ == "__main__":
    main()
