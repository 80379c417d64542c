"""Metrics read back through protobuf: OTLP/JSON parsed by ``ParseDict``, then made records.

Metric documents are few and small beside span files, so they take protobuf's
own parser, which knows every data point type, after the ids are recoded to
the base64 it expects. The messages are then turned into `MetricRecord`s;
summaries, which nothing here reads, are skipped.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any, Final, TypeVar

from google.protobuf import json_format
from google.protobuf.message import Message
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
)
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.metrics.v1 import metrics_pb2
from opentelemetry.sdk.metrics.export import AggregationTemporality

from wedsync_otel.exporters._otlp_ids import hex_to_base64, recode_ids
from wedsync_otel.exporters.records import (
    Attributes,
    AttributeValue,
    ExponentialHistogramPoint,
    HistogramPoint,
    MetricPoint,
    MetricRecord,
    NumberPoint,
)

_M = TypeVar("_M", bound=Message)


def parse_request(file: Path, line: int, document: dict[str, Any], message_type: type[_M]) -> _M:
    """``document`` as a ``message_type``, its hex ids recoded in place first.

    Raises `ValueError` naming the file and line when protobuf will not parse it.
    """
    recode_ids(document, hex_to_base64)
    message = message_type()
    try:
        json_format.ParseDict(document, message, ignore_unknown_fields=True)
    except json_format.ParseError as exc:
        name = message.DESCRIPTOR.name
        raise ValueError(f"{file}:{line}: not a valid {name} ({exc})") from None
    return message


def metrics_of(request: ExportMetricsServiceRequest) -> list[MetricRecord]:
    """The metrics of one export request, in order; summaries are skipped."""
    records: list[MetricRecord] = []
    for resource_metrics in request.resource_metrics:
        resource = attributes_of(resource_metrics.resource.attributes)
        for scope_metrics in resource_metrics.scope_metrics:
            scope = scope_metrics.scope.name
            for metric in scope_metrics.metrics:
                record = _metric(metric, resource, scope)
                if record is not None:
                    records.append(record)
    return records


_SCALAR_FIELDS: Final = frozenset(
    {"string_value", "bool_value", "int_value", "double_value", "bytes_value"}
)


def _value(value: AnyValue) -> AttributeValue:
    which = value.WhichOneof("value")
    if which in _SCALAR_FIELDS:
        scalar: str | bool | int | float | bytes = getattr(value, which)
        return scalar
    if which == "array_value":
        return tuple(_value(item) for item in value.array_value.values)
    if which == "kvlist_value":
        return {item.key: _value(item.value) for item in value.kvlist_value.values}
    return None


def attributes_of(pairs: Sequence[KeyValue]) -> dict[str, AttributeValue]:
    """The ``KeyValue`` pairs of a protobuf message as a plain dict."""
    return {pair.key: _value(pair.value) for pair in pairs}


def _temporality(value: int) -> AggregationTemporality:
    try:
        return AggregationTemporality(value)
    except ValueError:
        return AggregationTemporality.UNSPECIFIED


def _metric(metric: metrics_pb2.Metric, resource: Attributes, scope: str) -> MetricRecord | None:
    which = metric.WhichOneof("data")
    temporality: AggregationTemporality | None = None
    monotonic: bool | None = None
    points: tuple[MetricPoint, ...]
    if which == "gauge":
        points = tuple(_number(point) for point in metric.gauge.data_points)
    elif which == "sum":
        temporality = _temporality(metric.sum.aggregation_temporality)
        monotonic = metric.sum.is_monotonic
        points = tuple(_number(point) for point in metric.sum.data_points)
    elif which == "exponential_histogram":
        data = metric.exponential_histogram
        temporality = _temporality(data.aggregation_temporality)
        points = tuple(_exponential(point) for point in data.data_points)
    elif which == "histogram":
        temporality = _temporality(metric.histogram.aggregation_temporality)
        points = tuple(_histogram(point) for point in metric.histogram.data_points)
    else:
        return None  # a summary, or no data
    return MetricRecord(
        name=metric.name,
        description=metric.description,
        unit=metric.unit,
        type=which,
        temporality=temporality,
        monotonic=monotonic,
        resource=resource,
        scope=scope,
        points=points,
    )


def _number(point: metrics_pb2.NumberDataPoint) -> NumberPoint:
    value: int | float = point.as_int if point.WhichOneof("value") == "as_int" else point.as_double
    return NumberPoint(
        attributes=attributes_of(point.attributes),
        start_ns=point.start_time_unix_nano,
        time_ns=point.time_unix_nano,
        value=value,
    )


def _exponential(point: metrics_pb2.ExponentialHistogramDataPoint) -> ExponentialHistogramPoint:
    return ExponentialHistogramPoint(
        attributes=attributes_of(point.attributes),
        start_ns=point.start_time_unix_nano,
        time_ns=point.time_unix_nano,
        count=point.count,
        sum=point.sum if point.HasField("sum") else None,
        min=point.min if point.HasField("min") else None,
        max=point.max if point.HasField("max") else None,
        scale=point.scale,
        zero_count=point.zero_count,
        offset=point.positive.offset,
        bucket_counts=tuple(point.positive.bucket_counts),
    )


def _histogram(point: metrics_pb2.HistogramDataPoint) -> HistogramPoint:
    return HistogramPoint(
        attributes=attributes_of(point.attributes),
        start_ns=point.start_time_unix_nano,
        time_ns=point.time_unix_nano,
        count=point.count,
        sum=point.sum if point.HasField("sum") else None,
        min=point.min if point.HasField("min") else None,
        max=point.max if point.HasField("max") else None,
        bucket_counts=tuple(point.bucket_counts),
        explicit_bounds=tuple(point.explicit_bounds),
    )
