"""Trace and span ids between OTLP/JSON's hex and protobuf's base64.

protobuf's JSON mapping writes ``bytes`` fields as base64, but the OTLP/JSON
spec writes trace and span ids as hex (a collector decodes base64 ids into the
wrong bytes). The exporters recode protobuf's output to hex, and the metrics
reader recodes hex back before protobuf parses a document.
"""

from __future__ import annotations

import base64
from collections.abc import Callable
from typing import Final

_ID_KEYS: Final = frozenset(
    {"traceId", "spanId", "parentSpanId", "trace_id", "span_id", "parent_span_id"}
)
HEX_ID_LENGTHS: Final = frozenset({16, 32})  # span id and trace id, in hex digits


def recode_ids(node: object, recode: Callable[[str], str]) -> None:
    """Rewrite every trace/span id in a parsed OTLP JSON document in place."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key in _ID_KEYS and isinstance(value, str):
                node[key] = recode(value)
            elif isinstance(value, dict | list):
                recode_ids(value, recode)
    elif isinstance(node, list):
        for item in node:
            if isinstance(item, dict | list):
                recode_ids(item, recode)


def base64_to_hex(value: str) -> str:
    """A base64 id, as protobuf writes it, in the hex OTLP/JSON writes."""
    return base64.b64decode(value).hex()


def hex_to_base64(value: str) -> str:
    """Hex ids (the OTLP/JSON spec) to protobuf's base64; anything else is left as it is."""
    if len(value) not in HEX_ID_LENGTHS:
        return value
    try:
        return base64.b64encode(bytes.fromhex(value)).decode("ascii")
    except ValueError:
        return value
