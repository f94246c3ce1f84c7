"""CayenneLPP payloads: ``[channel][type][big-endian value]`` entries, back to back.

A small codec of our own (field-protocols.md, "CayenneLPP payloads") so that the gateway
needs no extra wheel. Scaled types decode to ``float``, unscaled ones to ``int`` and GPS
to a ``(latitude, longitude, altitude)`` tuple. Encoding rounds a value to the resolution
of its type and rejects anything the type cannot carry.

>>> decode(bytes.fromhex("03670110056700FF"))
[LppValue(channel=3, type=<LppType.TEMPERATURE: 103>, value=27.2), \
LppValue(channel=5, type=<LppType.TEMPERATURE: 103>, value=25.5)]
>>> encode([LppValue(1, LppType.PERCENTAGE, 50)]).hex()
'017832'
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from enum import IntEnum

GpsValue = tuple[float, float, float]
Value = float | int | GpsValue


class LppError(ValueError):
    """A payload that cannot be decoded, or a value that cannot be encoded."""


class LppType(IntEnum):
    """The CayenneLPP data types this codec knows (IPSO object id - 3200)."""

    DIGITAL_INPUT = 0
    DIGITAL_OUTPUT = 1
    ANALOG_INPUT = 2
    ANALOG_OUTPUT = 3
    ILLUMINANCE = 101
    PRESENCE = 102
    TEMPERATURE = 103
    HUMIDITY = 104
    VOLTAGE = 116
    CURRENT = 117
    PERCENTAGE = 120
    POWER = 128
    ENERGY = 131
    UNIXTIME = 133
    GPS = 136
    SWITCH = 142


@dataclass(frozen=True, slots=True)
class LppValue:
    """One entry of a payload: the channel, the LPP type and the value in natural units."""

    channel: int
    type: int
    value: Value


@dataclass(frozen=True, slots=True)
class _Spec:
    size: int  # bytes of the value (per component for GPS)
    signed: bool
    # A divisor rather than a float scale: raw / 10 gives exactly the float literal 27.2,
    # raw * 0.1 gives 27.200000000000003.
    divisor: int


_SPECS: dict[int, _Spec] = {
    LppType.DIGITAL_INPUT: _Spec(1, False, 1),
    LppType.DIGITAL_OUTPUT: _Spec(1, False, 1),
    LppType.ANALOG_INPUT: _Spec(2, True, 100),
    LppType.ANALOG_OUTPUT: _Spec(2, True, 100),
    LppType.ILLUMINANCE: _Spec(2, False, 1),
    LppType.PRESENCE: _Spec(1, False, 1),
    LppType.TEMPERATURE: _Spec(2, True, 10),
    LppType.HUMIDITY: _Spec(1, False, 2),
    LppType.VOLTAGE: _Spec(2, False, 100),
    LppType.CURRENT: _Spec(2, False, 1000),
    LppType.PERCENTAGE: _Spec(1, False, 1),
    LppType.POWER: _Spec(2, False, 1),
    LppType.ENERGY: _Spec(4, False, 1000),
    LppType.UNIXTIME: _Spec(4, False, 1),
    LppType.SWITCH: _Spec(1, False, 1),
}
# GPS: three signed 3-byte components with their own divisors (lat, lon 1e-4 deg; alt 0.01 m).
_GPS_DIVISORS = (10_000, 10_000, 100)
_GPS_COMPONENT = 3


def value_size(lpp_type: int) -> int:
    """The number of value bytes an entry of this type carries; raises LppError for unknown types."""
    if lpp_type == LppType.GPS:
        return _GPS_COMPONENT * 3
    spec = _SPECS.get(lpp_type)
    if spec is None:
        raise LppError(f"unknown CayenneLPP type {lpp_type}")
    return spec.size


def _scaled(raw: int, divisor: int) -> float | int:
    return raw if divisor == 1 else raw / divisor


def decode(payload: bytes) -> list[LppValue]:
    """Decode a whole payload; raises LppError naming the offset and type of the first bad entry."""
    values: list[LppValue] = []
    offset = 0
    while offset < len(payload):
        if offset + 2 > len(payload):
            raise LppError(f"truncated entry header at offset {offset}: {len(payload) - offset} byte left")
        channel, lpp_type = payload[offset], payload[offset + 1]
        try:
            size = value_size(lpp_type)
        except LppError:
            raise LppError(f"unknown type {lpp_type} at offset {offset + 1} (channel {channel})") from None
        start = offset + 2
        if start + size > len(payload):
            raise LppError(f"truncated value of type {lpp_type} at offset {start}: "
                           f"needs {size} bytes, {len(payload) - start} left")
        raw = payload[start:start + size]
        value: Value
        if lpp_type == LppType.GPS:
            lat, lon, alt = (
                int.from_bytes(raw[i:i + _GPS_COMPONENT], "big", signed=True) / div
                for i, div in zip(range(0, size, _GPS_COMPONENT), _GPS_DIVISORS, strict=True)
            )
            value = (lat, lon, alt)
        else:
            spec = _SPECS[lpp_type]
            value = _scaled(int.from_bytes(raw, "big", signed=spec.signed), spec.divisor)
        values.append(LppValue(channel, LppType(lpp_type), value))
        offset = start + size
    return values


def _raw(value: object, divisor: int, size: int, signed: bool, what: str) -> int:
    # bool is an int subclass and a fine digital value (True -> 1); anything else non-numeric is not.
    if not isinstance(value, int | float) or not math.isfinite(value):
        raise LppError(f"{what}: value must be a finite number, got {value!r}")
    raw = round(value * divisor)
    bits = size * 8
    low, high = (-(1 << (bits - 1)), (1 << (bits - 1)) - 1) if signed else (0, (1 << bits) - 1)
    if not low <= raw <= high:
        raise LppError(f"{what}: {value!r} out of range {_scaled(low, divisor)}..{_scaled(high, divisor)}")
    return raw


def encode_value(item: LppValue) -> bytes:
    """Encode one entry; raises LppError for a bad channel, an unknown type or an out-of-range value."""
    what = f"channel {item.channel} type {item.type}"
    if isinstance(item.channel, bool) or not isinstance(item.channel, int) or not 0 <= item.channel <= 255:
        raise LppError(f"{what}: channel must be 0-255")
    if item.type == LppType.GPS:
        if not isinstance(item.value, tuple) or len(item.value) != 3:
            raise LppError(f"{what}: GPS value must be a (latitude, longitude, altitude) tuple")
        body = b"".join(
            _raw(component, div, _GPS_COMPONENT, True, what).to_bytes(_GPS_COMPONENT, "big", signed=True)
            for component, div in zip(item.value, _GPS_DIVISORS, strict=True)
        )
        return bytes((item.channel, item.type)) + body
    spec = _SPECS.get(item.type)
    if spec is None:
        raise LppError(f"{what}: unknown CayenneLPP type")
    raw = _raw(item.value, spec.divisor, spec.size, spec.signed, what)
    return bytes((item.channel, item.type)) + raw.to_bytes(spec.size, "big", signed=spec.signed)


def encode(values: Iterable[LppValue]) -> bytes:
    """Encode entries back to back into one payload."""
    return b"".join(encode_value(v) for v in values)
