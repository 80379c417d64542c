"""Spans decoded straight from parsed OTLP/JSON into `SpanRecord`s, without protobuf.

The path a report's spans take: no protobuf message is built per span. It
accepts what protobuf's parser accepts: hex or base64 ids, camelCase or
snake_case field names, int64 as a string or a number, enums as integers or
names. A malformed document raises `TypeError` or `ValueError`.
"""

from __future__ import annotations

import base64
from collections.abc import Callable, Mapping
from typing import Any, Final

from opentelemetry.proto.trace.v1 import trace_pb2
from opentelemetry.trace import SpanKind, StatusCode

from wedsync_otel.exporters._otlp_ids import HEX_ID_LENGTHS
from wedsync_otel.exporters.records import Attributes, AttributeValue, EventRecord, SpanRecord

# OTLP's SpanKind counts from SPAN_KIND_UNSPECIFIED = 0; the API's from INTERNAL = 0.
_SPAN_KINDS: Final[dict[int, SpanKind]] = {
    trace_pb2.Span.SPAN_KIND_UNSPECIFIED: SpanKind.INTERNAL,
    trace_pb2.Span.SPAN_KIND_INTERNAL: SpanKind.INTERNAL,
    trace_pb2.Span.SPAN_KIND_SERVER: SpanKind.SERVER,
    trace_pb2.Span.SPAN_KIND_CLIENT: SpanKind.CLIENT,
    trace_pb2.Span.SPAN_KIND_PRODUCER: SpanKind.PRODUCER,
    trace_pb2.Span.SPAN_KIND_CONSUMER: SpanKind.CONSUMER,
}
_STATUS_CODES: Final[dict[int, StatusCode]] = {
    trace_pb2.Status.STATUS_CODE_UNSET: StatusCode.UNSET,
    trace_pb2.Status.STATUS_CODE_OK: StatusCode.OK,
    trace_pb2.Status.STATUS_CODE_ERROR: StatusCode.ERROR,
}

_KIND_NAMES: Final = {
    "SPAN_KIND_UNSPECIFIED": SpanKind.INTERNAL,
    "SPAN_KIND_INTERNAL": SpanKind.INTERNAL,
    "SPAN_KIND_SERVER": SpanKind.SERVER,
    "SPAN_KIND_CLIENT": SpanKind.CLIENT,
    "SPAN_KIND_PRODUCER": SpanKind.PRODUCER,
    "SPAN_KIND_CONSUMER": SpanKind.CONSUMER,
}
_STATUS_NAMES: Final = {
    "STATUS_CODE_UNSET": StatusCode.UNSET,
    "STATUS_CODE_OK": StatusCode.OK,
    "STATUS_CODE_ERROR": StatusCode.ERROR,
}


def _get(node: Mapping[str, Any], camel: str, snake: str) -> Any:
    """A field by its JSON name or its proto name, as protobuf's parser accepts both."""
    value = node.get(camel)
    return node.get(snake) if value is None else value


def _list(node: Mapping[str, Any], camel: str, snake: str) -> list[Any]:
    value = _get(node, camel, snake)
    if value is None:
        return []
    if not isinstance(value, list):
        raise TypeError(f"{camel} must be a list, got {type(value).__name__}")
    return value


def _object(node: Mapping[str, Any], camel: str, snake: str) -> Mapping[str, Any]:
    value = _get(node, camel, snake)
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise TypeError(f"{camel} must be an object, got {type(value).__name__}")
    return value


def _int64(value: object) -> int:
    """An int64 field: a string (what OTLP/JSON writes) or a number."""
    if value is None:
        return 0
    if isinstance(value, bool):
        raise TypeError("an integer field holds a boolean")
    if isinstance(value, int):
        return value
    if isinstance(value, str):
        return int(value)
    if isinstance(value, float) and value.is_integer():
        return int(value)
    raise TypeError(f"not an integer: {value!r}")


def _double(value: object) -> float:
    """A double field: a number, or the strings ``NaN``/``Infinity`` protobuf writes."""
    if isinstance(value, bool):
        raise TypeError("a number field holds a boolean")
    if isinstance(value, int | float | str):
        return float(value)
    raise TypeError(f"not a number: {value!r}")


def _text(value: object) -> str:
    if value is None:
        return ""
    if not isinstance(value, str):
        raise TypeError(f"not a string: {value!r}")
    return value


def _flag(value: object) -> bool:
    if not isinstance(value, bool):
        raise TypeError(f"not a boolean: {value!r}")
    return value


def _id(value: object) -> str:
    """A trace or span id as lower-case hex: hex as the OTLP/JSON spec writes it, or base64."""
    text = _text(value)
    if len(text) in HEX_ID_LENGTHS:
        try:
            return bytes.fromhex(text).hex()
        except ValueError:
            pass
    return base64.b64decode(text, validate=True).hex()


def _kind(value: object) -> SpanKind:
    """A span kind: the integer OTLP/JSON writes, or the enum's name."""
    if isinstance(value, str):
        return _KIND_NAMES.get(value, SpanKind.INTERNAL)
    return _SPAN_KINDS.get(_int64(value), SpanKind.INTERNAL)


def _status_code(value: object) -> StatusCode:
    """A status code: the integer OTLP/JSON writes, or the enum's name."""
    if isinstance(value, str):
        return _STATUS_NAMES.get(value, StatusCode.UNSET)
    return _STATUS_CODES.get(_int64(value), StatusCode.UNSET)


def _any_array(value: object) -> tuple[AttributeValue, ...]:
    if not isinstance(value, dict):
        raise TypeError("arrayValue must be an object")
    return tuple(_any(item) for item in _list(value, "values", "values"))


def _any_kvlist(value: object) -> dict[str, AttributeValue]:
    if not isinstance(value, dict):
        raise TypeError("kvlistValue must be an object")
    return _json_attributes(_list(value, "values", "values"))


def _any_bytes(value: object) -> bytes:
    return base64.b64decode(_text(value))


_ANY_VALUES: Final[Mapping[str, Callable[[Any], AttributeValue]]] = {
    "stringValue": _text,
    "string_value": _text,
    "boolValue": _flag,
    "bool_value": _flag,
    "intValue": _int64,
    "int_value": _int64,
    "doubleValue": _double,
    "double_value": _double,
    "arrayValue": _any_array,
    "array_value": _any_array,
    "kvlistValue": _any_kvlist,
    "kvlist_value": _any_kvlist,
    "bytesValue": _any_bytes,
    "bytes_value": _any_bytes,
}


def _any(value: object) -> AttributeValue:
    """An OTLP ``AnyValue`` as Python; an empty one (or ``null``) is None."""
    if value is None:
        return None
    if not isinstance(value, dict):
        raise TypeError(f"an attribute value must be an object, got {type(value).__name__}")
    for key, inner in value.items():
        convert = _ANY_VALUES.get(key)
        if convert is not None and inner is not None:
            return convert(inner)
    return None


def _json_attributes(pairs: list[Any]) -> dict[str, AttributeValue]:
    attributes: dict[str, AttributeValue] = {}
    for pair in pairs:
        if not isinstance(pair, dict):
            raise TypeError("an attribute must be an object")
        key, value = pair.get("key"), pair.get("value")
        if type(key) is not str:
            key = _text(key)
        # The hot path: what the exporters write, one exact-typed field per value.
        if type(value) is dict and len(value) == 1:
            ((field_name, inner),) = value.items()
            kind = type(inner)
            if (
                (kind is str and field_name == "stringValue")
                or (kind is bool and field_name == "boolValue")
                or (kind is float and field_name == "doubleValue")
            ):
                attributes[key] = inner
                continue
            if kind is str and field_name == "intValue":
                attributes[key] = int(inner)
                continue
        attributes[key] = _any(value)
    return attributes


def spans_of(document: Mapping[str, Any]) -> list[SpanRecord]:
    """The spans of one parsed ``ExportTraceServiceRequest``; TypeError/ValueError if malformed."""
    records: list[SpanRecord] = []
    for resource_spans in _list(document, "resourceSpans", "resource_spans"):
        if not isinstance(resource_spans, dict):
            raise TypeError("resourceSpans must hold objects")
        resource_node = _object(resource_spans, "resource", "resource")
        resource = _json_attributes(_list(resource_node, "attributes", "attributes"))
        for scope_spans in _list(resource_spans, "scopeSpans", "scope_spans"):
            if not isinstance(scope_spans, dict):
                raise TypeError("scopeSpans must hold objects")
            scope = _text(_object(scope_spans, "scope", "scope").get("name"))
            records.extend(
                _json_span(span, resource, scope) for span in _list(scope_spans, "spans", "spans")
            )
    return records


def _json_span(span: object, resource: Attributes, scope: str) -> SpanRecord:
    if not isinstance(span, dict):
        raise TypeError("spans must hold objects")
    status = _object(span, "status", "status")
    parent = _id(_get(span, "parentSpanId", "parent_span_id"))
    return SpanRecord(
        name=_text(span.get("name")),
        kind=_kind(span.get("kind")),
        trace_id=_id(_get(span, "traceId", "trace_id")),
        span_id=_id(_get(span, "spanId", "span_id")),
        parent_span_id=parent or None,
        start_ns=_int64(_get(span, "startTimeUnixNano", "start_time_unix_nano")),
        end_ns=_int64(_get(span, "endTimeUnixNano", "end_time_unix_nano")),
        status_code=_status_code(status.get("code")),
        attributes=_json_attributes(_list(span, "attributes", "attributes")),
        resource=resource,
        scope=scope,
        events=tuple(_json_event(event) for event in _list(span, "events", "events")),
    )


def _json_event(event: object) -> EventRecord:
    if not isinstance(event, dict):
        raise TypeError("events must hold objects")
    return EventRecord(
        name=_text(event.get("name")),
        time_ns=_int64(_get(event, "timeUnixNano", "time_unix_nano")),
        attributes=_json_attributes(_list(event, "attributes", "attributes")),
    )
