"""The few protobuf wire-format encoders the Prometheus exposition needs, written once.

The bridge writes Prometheus' protobuf exposition (native histograms) without a
generated module for it; the tests build the same format to stand in for a Collector.
"""

from __future__ import annotations

import struct


def varint(value: int) -> bytes:
    """A non-negative integer as a base-128 varint."""
    out = bytearray()
    while True:
        low, value = value & 0x7F, value >> 7
        if not value:
            out.append(low)
            return bytes(out)
        out.append(low | 0x80)


def uint_field(number: int, value: int) -> bytes:
    """Field ``number`` as an unsigned varint."""
    return varint(number << 3) + varint(value)


def sint_field(number: int, value: int) -> bytes:
    """Field ``number`` as a zigzag-encoded signed varint."""
    return uint_field(number, value << 1 if value >= 0 else ((-value) << 1) - 1)


def double_field(number: int, value: float) -> bytes:
    """Field ``number`` as a little-endian 64-bit float."""
    return varint(number << 3 | 1) + struct.pack("<d", value)


def bytes_field(number: int, payload: bytes) -> bytes:
    """Field ``number`` as length-delimited bytes (a string or an embedded message)."""
    return varint(number << 3 | 2) + varint(len(payload)) + payload
