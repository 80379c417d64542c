"""OTel metrics as a Prometheus protobuf scrape, exponential histograms as native histograms.

The Python ``opentelemetry-exporter-prometheus`` cannot render an exponential histogram (its
whole scrape fails), and the wedding durations are exponential. This module renders them the way
the Collector's native-histogram path does, for a Prometheus started with
``--enable-feature=native-histograms`` (2.x) scraping the ``application/vnd.google.protobuf``
exposition format:

- an exponential histogram becomes a native histogram: OTel scale ``s`` is schema ``s`` (scales
  above 8 are downscaled to 8, Prometheus' finest); OTel bucket ``i`` covers ``(b**i, b**(i+1)]``
  and Prometheus bucket ``i + 1`` the same range;
- its exemplars (``trace_id`` and ``span_id`` labels, value, timestamp) go twice: all of them,
  oldest first, in ``Histogram.exemplars``, which Prometheus reads since early 2024
  (prometheus/prometheus#13488); and the slowest on one classic ``+Inf`` bucket (cumulative
  count = the whole count, so it is a true classic bucket with a label value that never
  changes), the only place Prometheus 2.42 (Debian 12) looks. Up to 2.45 it ingests just the
  first bucket exemplar of a native histogram per scrape (prometheus/prometheus#12553),
  hence the slowest one there, and no other. Newer versions ignore the classic
  exemplar once ``Histogram.exemplars`` has one;
- a monotonic sum becomes a counter (``_total``), any other sum or gauge a gauge;
- explicit-bucket histograms and summaries are left out (`PrometheusBridge.skipped` counts them).

Names and labels follow `wedsync_otel.ops.prometheus_rules` (the names the rules read). Data must
be cumulative: `PrometheusBridge` asks for cumulative temporality and keeps the latest export.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Final

from opentelemetry.sdk.metrics import (
    Counter,
    Exemplar,
    Histogram,
    ObservableCounter,
    ObservableGauge,
    ObservableUpDownCounter,
    UpDownCounter,
)
from opentelemetry.sdk.metrics.export import (
    AggregationTemporality,
    ExponentialHistogram,
    ExponentialHistogramDataPoint,
    Gauge,
    MetricExporter,
    MetricExportResult,
    MetricsData,
    Sum,
)

from wedsync_otel.metrics._protowire import (
    bytes_field,
    double_field,
    sint_field,
    uint_field,
    varint,
)
from wedsync_otel.metrics.prometheus_names import prometheus_label_name, prometheus_metric_name

__all__ = ["CONTENT_TYPE", "MAX_SCHEMA", "PrometheusBridge", "encode_metrics"]

CONTENT_TYPE: Final = (
    "application/vnd.google.protobuf; proto=io.prometheus.client.MetricFamily; encoding=delimited"
)
"""The scrape's Content-Type: length-delimited ``MetricFamily`` messages."""

MAX_SCHEMA: Final = 8
"""Prometheus' finest native-histogram schema; finer OTel scales are merged down to it."""

_MIN_SCHEMA: Final = -4
_ZERO_THRESHOLD: Final = 2.0**-128  # Prometheus' default: the zero bucket holds exact zeros
_COUNTER, _GAUGE, _HISTOGRAM = 0, 1, 4  # io.prometheus.client.MetricType
_GAUGE_FIELD, _COUNTER_FIELD, _HISTOGRAM_FIELD = 2, 3, 7  # io.prometheus.client.Metric
_BUCKET_FIELD, _EXEMPLARS_FIELD = 3, 16  # io.prometheus.client.Histogram
_NS_PER_S: Final = 1_000_000_000


# --- conversion ----------------------------------------------------------------------------


def _label_value(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _labels(attributes: Mapping[str, Any] | None) -> bytes:
    pairs = sorted(
        (prometheus_label_name(key), _label_value(value))
        for key, value in (attributes or {}).items()
    )
    return b"".join(
        bytes_field(1, bytes_field(1, key.encode()) + bytes_field(2, text.encode()))
        for key, text in pairs
    )


def _exemplar(exemplar: Exemplar, trace_id: int, span_id: int) -> bytes:
    """An ``io.prometheus.client.Exemplar``: trace and span id labels, value, timestamp."""
    labels = bytes_field(
        1, bytes_field(1, b"span_id") + bytes_field(2, f"{span_id:016x}".encode())
    ) + bytes_field(1, bytes_field(1, b"trace_id") + bytes_field(2, f"{trace_id:032x}".encode()))
    seconds, nanos = divmod(exemplar.time_unix_nano, _NS_PER_S)
    timestamp = uint_field(1, seconds) + uint_field(2, nanos)
    return labels + double_field(2, float(exemplar.value)) + bytes_field(3, timestamp)


def _exemplar_fields(point: ExponentialHistogramDataPoint) -> bytes:
    """Every exemplar in ``Histogram.exemplars``, and the slowest on a classic +Inf bucket.

    Only exemplars with a trace and a span id: they are what a dashboard links from.
    """
    encoded = sorted(
        (exemplar.time_unix_nano, exemplar.value, _exemplar(exemplar, trace_id, span_id))
        for exemplar in point.exemplars or ()
        if (trace_id := exemplar.trace_id) is not None and (span_id := exemplar.span_id) is not None
    )
    if not encoded:
        return b""
    slowest = max(reversed(encoded), key=lambda item: item[1])[2]  # of equal values, the latest
    bucket = uint_field(1, point.count) + double_field(2, math.inf) + bytes_field(3, slowest)
    fields = bytes_field(_BUCKET_FIELD, bucket)
    return fields + b"".join(bytes_field(_EXEMPLARS_FIELD, item[2]) for item in encoded)


def native_buckets(scale: int, offset: int, counts: Sequence[int]) -> tuple[int, dict[int, int]]:
    """The schema and the non-empty Prometheus buckets (index -> count) of OTel positive buckets."""
    if scale < _MIN_SCHEMA:
        raise ValueError(f"scale {scale} is below Prometheus' coarsest schema {_MIN_SCHEMA}")
    shift = max(scale - MAX_SCHEMA, 0)
    merged: dict[int, int] = {}
    for position, count in enumerate(counts):
        if count:
            index = ((offset + position) >> shift) + 1  # floor: (b**i, b**(i+1)] lies inside
            merged[index] = merged.get(index, 0) + count
    return scale - shift, merged


def _native_histogram(point: ExponentialHistogramDataPoint) -> bytes:
    if point.negative.bucket_counts and any(point.negative.bucket_counts):
        raise ValueError("negative observations are not supported")
    schema, buckets = native_buckets(
        point.scale, point.positive.offset, point.positive.bucket_counts
    )
    body = uint_field(1, point.count) + double_field(2, point.sum) + sint_field(5, schema)
    body += double_field(6, _ZERO_THRESHOLD) + uint_field(7, point.zero_count)
    previous_end: int | None = None
    previous_count = 0
    spans = b""
    deltas = b""
    span_start, span_length = 0, 0
    for index in sorted(buckets):
        if previous_end is not None and index == previous_end:
            span_length += 1
        else:
            if span_length:
                spans += bytes_field(12, sint_field(1, span_start) + uint_field(2, span_length))
            span_start = index - (previous_end if previous_end is not None else 0)
            span_length = 1
        deltas += sint_field(13, buckets[index] - previous_count)  # counts are delta-encoded
        previous_end, previous_count = index + 1, buckets[index]
    if span_length:
        spans += bytes_field(12, sint_field(1, span_start) + uint_field(2, span_length))
    return body + spans + deltas + _exemplar_fields(point)


def _families(data: MetricsData) -> tuple[dict[str, tuple[int, list[bytes]]], int]:
    """Family name -> (type, encoded metrics), merged across resources and scopes; and skips."""
    families: dict[str, tuple[int, list[bytes]]] = {}
    skipped = 0

    def add(name: str, kind: int, metric: bytes) -> None:
        families.setdefault(name, (kind, []))[1].append(metric)

    for resource_metrics in data.resource_metrics:
        for scope_metrics in resource_metrics.scope_metrics:
            for metric in scope_metrics.metrics:
                points: Iterable[Any] = getattr(metric.data, "data_points", ())
                if isinstance(metric.data, ExponentialHistogram):
                    name = prometheus_metric_name(metric.name, metric.unit or "")
                    for point in points:
                        add(
                            name,
                            _HISTOGRAM,
                            _labels(point.attributes)
                            + bytes_field(_HISTOGRAM_FIELD, _native_histogram(point)),
                        )
                elif isinstance(metric.data, Sum) and metric.data.is_monotonic:
                    name = prometheus_metric_name(
                        metric.name, metric.unit or "", monotonic_sum=True
                    )
                    for point in points:
                        value = bytes_field(_COUNTER_FIELD, double_field(1, float(point.value)))
                        add(name, _COUNTER, _labels(point.attributes) + value)
                elif isinstance(metric.data, Sum | Gauge):
                    name = prometheus_metric_name(metric.name, metric.unit or "")
                    for point in points:
                        value = bytes_field(_GAUGE_FIELD, double_field(1, float(point.value)))
                        add(name, _GAUGE, _labels(point.attributes) + value)
                else:
                    skipped += 1
    return families, skipped


def _encode(families: Mapping[str, tuple[int, list[bytes]]]) -> bytes:
    out = bytearray()
    for name, (kind, metrics) in families.items():
        family = bytes_field(1, name.encode()) + uint_field(3, kind)
        family += b"".join(bytes_field(4, metric) for metric in metrics)
        out += varint(len(family)) + family
    return bytes(out)


def encode_metrics(data: MetricsData) -> bytes:
    """``data`` (cumulative) as a protobuf scrape body: one delimited MetricFamily per name."""
    return _encode(_families(data)[0])


_INSTRUMENTS: Final[tuple[type, ...]] = (
    Counter,
    UpDownCounter,
    Histogram,
    ObservableCounter,
    ObservableUpDownCounter,
    ObservableGauge,
)


class PrometheusBridge(MetricExporter):
    """A cumulative `MetricExporter` that keeps the latest export, rendered for a scrape.

    Wrap it in `PerformanceMetricExporter` (``configure(metric_exporter=...)`` does) and serve
    `scrape` with `CONTENT_TYPE` from any HTTP server.
    """

    def __init__(self) -> None:
        super().__init__(
            preferred_temporality=dict.fromkeys(_INSTRUMENTS, AggregationTemporality.CUMULATIVE)
        )
        self._lock = threading.Lock()
        self._body = b""
        self._skipped = 0

    @property
    def skipped(self) -> int:
        """Metrics of the latest export with no Prometheus form here (explicit histograms)."""
        with self._lock:
            return self._skipped

    def scrape(self) -> bytes:
        """The latest export as a protobuf scrape body (empty before the first export)."""
        with self._lock:
            return self._body

    def export(
        self,
        metrics_data: MetricsData,
        timeout_millis: float = 10_000,
        **kwargs: Any,  # the SDK's MetricExporter signature
    ) -> MetricExportResult:
        """Render ``metrics_data`` now; a scrape serves it until the next export."""
        families, skipped = _families(metrics_data)
        body = _encode(families)
        with self._lock:
            self._body, self._skipped = body, skipped
        return MetricExportResult.SUCCESS

    def force_flush(self, timeout_millis: float = 10_000) -> bool:
        """Nothing is buffered."""
        return True

    def shutdown(
        self,
        timeout_millis: float = 30_000,
        **kwargs: Any,  # the SDK's MetricExporter signature
    ) -> None:
        """Nothing to release."""
