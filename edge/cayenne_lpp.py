"""CayenneLPP payloads: ``[channel][type][big-endian value]`` entries, back to back.

A small codec of our own (field-protocols.md, "CayenneLPP payloads") so that the gateway
needs no extra wheel; tests check it both ways against pycayennelpp. It knows the original
Cayenne LPP v1 types and the common extended ones (see ``_SPECS`` for where each comes from).
Single values decode to ``float`` when the type is scaled and to ``int`` when it is not;
three-component types (accelerometer, gyrometer, GPS, colour) decode to a tuple of floats.
Encoding rounds a value to the resolution of its type and rejects anything the type cannot carry.

A payload whose last entries are truncated or of an unknown type still has good entries
before them: ``decode_partial`` returns those with the error that stopped it, while
``decode`` is the strict form that raises (a one-entry command must not be half-read).

>>> decode(bytes.fromhex("03670110056700FF"))
[LppValue(channel=3, type=<LppType.TEMPERATURE: 103>, value=27.2), \
LppValue(channel=5, type=<LppType.TEMPERATURE: 103>, value=25.5)]
>>> decode_partial(bytes.fromhex("0367011005FF00"))
DecodeResult(values=[LppValue(channel=3, type=<LppType.TEMPERATURE: 103>, value=27.2)], \
error=LppError('unknown type 255 at offset 5 (channel 5)'))
>>> encode([LppValue(1, LppType.PERCENTAGE, 50)]).hex()
'017832'
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from enum import IntEnum
from typing import NamedTuple

Vector = tuple[float, float, float]
GpsValue = Vector  # kept: the name callers used before accelerometer and gyrometer existed
Value = float | int | Vector


class LppError(ValueError):
    """A payload that cannot be decoded, or a value that cannot be encoded."""


class LppType(IntEnum):
    """The CayenneLPP data types this codec knows (IPSO object id - 3200)."""

    DIGITAL_INPUT = 0
    DIGITAL_OUTPUT = 1
    ANALOG_INPUT = 2
    ANALOG_OUTPUT = 3
    GENERIC = 100
    ILLUMINANCE = 101
    PRESENCE = 102
    TEMPERATURE = 103
    HUMIDITY = 104
    ACCELEROMETER = 113
    BAROMETER = 115
    VOLTAGE = 116
    CURRENT = 117
    FREQUENCY = 118
    PERCENTAGE = 120
    ALTITUDE = 121
    LOAD = 122
    CONCENTRATION = 125
    POWER = 128
    DISTANCE = 130
    ENERGY = 131
    DIRECTION = 132
    UNIXTIME = 133
    GYROMETER = 134
    COLOUR = 135
    GPS = 136
    SWITCH = 142
    PPM = 143
    RGB = 144


@dataclass(frozen=True, slots=True)
class LppValue:
    """One entry of a payload: the channel, the LPP type and the value in natural units."""

    channel: int
    type: int
    value: Value


@dataclass(frozen=True, slots=True)
class _Spec:
    size: int  # bytes of one component
    signed: bool
    # Divisors rather than float scales: raw / 10 gives exactly the float literal 27.2,
    # raw * 0.1 gives 27.200000000000003. One divisor per component; three make a vector.
    divisors: tuple[int, ...]

    @property
    def total(self) -> int:
        return self.size * len(self.divisors)


def _one(size: int, signed: bool, divisor: int = 1) -> _Spec:
    return _Spec(size, signed, (divisor,))


def _three(size: int, signed: bool, *divisors: int) -> _Spec:
    return _Spec(size, signed, divisors if divisors else (1, 1, 1))


# Sources. "Cayenne" is the original myDevices LPP table (docs.mydevices.com/docs/lorawan/cayenne-lpp,
# the README of github.com/myDevicesIoT/CayenneLPP), which field-protocols.md repeats in part; both
# libraries below define those types the same way. "both" marks an extended type that pycayennelpp
# 2.4.0 (cayennelpp/lpp_type.py) and the ElectronicCats/CayenneLPP Arduino library (src/CayenneLPP.h
# _SIZE and _MULT, getTypeSigned in CayenneLPP.cpp) define identically; "pycayennelpp" and
# "ElectronicCats" mark the few only one of them has. They number concentration and colour
# differently (125/135 vs 143/144); both pairs are here, as neither number means anything else.
_SPECS: dict[int, _Spec] = {
    LppType.DIGITAL_INPUT: _one(1, False),  # Cayenne
    LppType.DIGITAL_OUTPUT: _one(1, False),  # Cayenne
    LppType.ANALOG_INPUT: _one(2, True, 100),  # Cayenne: 0.01 signed
    LppType.ANALOG_OUTPUT: _one(2, True, 100),  # Cayenne: 0.01 signed
    LppType.GENERIC: _one(4, False),  # both: 4 B unsigned, no scale
    LppType.ILLUMINANCE: _one(2, False),  # Cayenne: 1 lux unsigned
    LppType.PRESENCE: _one(1, False),  # Cayenne
    LppType.TEMPERATURE: _one(2, True, 10),  # Cayenne: 0.1 C signed
    LppType.HUMIDITY: _one(1, False, 2),  # Cayenne: 0.5 % unsigned
    LppType.ACCELEROMETER: _three(2, True, 1000, 1000, 1000),  # Cayenne: x, y, z, 0.001 G signed
    LppType.BAROMETER: _one(2, False, 10),  # Cayenne: 0.1 hPa unsigned
    LppType.VOLTAGE: _one(2, False, 100),  # both: 0.01 V unsigned
    LppType.CURRENT: _one(2, False, 1000),  # both: 0.001 A unsigned
    LppType.FREQUENCY: _one(4, False),  # both: 1 Hz unsigned
    LppType.PERCENTAGE: _one(1, False),  # both: 1 % unsigned
    LppType.ALTITUDE: _one(2, True),  # both: 1 m signed
    LppType.LOAD: _one(3, True, 1000),  # pycayennelpp: 3 B, 0.001 signed
    LppType.CONCENTRATION: _one(2, False),  # pycayennelpp: 1 ppm unsigned
    LppType.POWER: _one(2, False),  # both: 1 W unsigned
    LppType.DISTANCE: _one(4, False, 1000),  # both: 0.001 m unsigned
    LppType.ENERGY: _one(4, False, 1000),  # both: 0.001 kWh unsigned
    LppType.DIRECTION: _one(2, False),  # both: 1 degree unsigned
    LppType.UNIXTIME: _one(4, False),  # both: seconds, unsigned
    LppType.GYROMETER: _three(2, True, 100, 100, 100),  # Cayenne: x, y, z, 0.01 deg/s signed
    LppType.COLOUR: _three(1, False),  # pycayennelpp: r, g, b, 1 B each
    # Cayenne: latitude, longitude 0.0001 deg, altitude 0.01 m, all signed.
    LppType.GPS: _three(3, True, 10_000, 10_000, 100),
    LppType.SWITCH: _one(1, False),  # both: 0/1
    LppType.PPM: _one(2, False),  # ElectronicCats: 1 ppm unsigned (LPP_PPM)
    LppType.RGB: _three(1, False),  # ElectronicCats: r, g, b, 1 B each (LPP_RGB)
}

# What the components of a vector are, for error messages.
_COMPONENTS: dict[int, str] = {
    LppType.ACCELEROMETER: "(x, y, z)",
    LppType.GYROMETER: "(x, y, z)",
    LppType.GPS: "(latitude, longitude, altitude)",
    LppType.COLOUR: "(red, green, blue)",
    LppType.RGB: "(red, green, blue)",
}


class DecodeResult(NamedTuple):
    """The good entries of a payload up to the first bad one, and the error there (None if none)."""

    values: list[LppValue]
    error: LppError | None


def value_size(lpp_type: int) -> int:
    """The number of value bytes an entry of this type carries; raises LppError for unknown types."""
    spec = _SPECS.get(lpp_type)
    if spec is None:
        raise LppError(f"unknown CayenneLPP type {lpp_type}")
    return spec.total


def _scaled(raw: int, divisor: int) -> float | int:
    return raw if divisor == 1 else raw / divisor


def _decode_value(spec: _Spec, raw: bytes) -> Value:
    if len(spec.divisors) == 1:
        return _scaled(int.from_bytes(raw, "big", signed=spec.signed), spec.divisors[0])
    # Vectors are floats even when unscaled (colour), so a consumer can treat them alike.
    x, y, z = (
        int.from_bytes(raw[i * spec.size:(i + 1) * spec.size], "big", signed=spec.signed) / div
        for i, div in enumerate(spec.divisors)
    )
    return (x, y, z)


def decode_partial(payload: bytes) -> DecodeResult:
    """Decode entries until the payload ends or an entry is bad; never raises for bad bytes.

    An unknown type stops decoding because its size, and so where the next entry starts, is
    unknown; the entries before it are good and are returned with the error.
    """
    values: list[LppValue] = []
    offset = 0
    end = len(payload)
    while offset < end:
        if offset + 2 > end:
            return DecodeResult(values, LppError(
                f"truncated entry header at offset {offset}: {end - offset} byte left"))
        channel, lpp_type = payload[offset], payload[offset + 1]
        spec = _SPECS.get(lpp_type)
        if spec is None:
            return DecodeResult(values, LppError(
                f"unknown type {lpp_type} at offset {offset + 1} (channel {channel})"))
        start = offset + 2
        if start + spec.total > end:
            return DecodeResult(values, LppError(
                f"truncated value of type {lpp_type} at offset {start}: "
                f"needs {spec.total} bytes, {end - start} left"))
        raw = bytes(payload[start:start + spec.total])
        values.append(LppValue(channel, LppType(lpp_type), _decode_value(spec, raw)))
        offset = start + spec.total
    return DecodeResult(values, None)


def decode(payload: bytes) -> list[LppValue]:
    """Decode a whole payload; raises LppError naming the offset and type of the first bad entry."""
    values, error = decode_partial(payload)
    if error is not None:
        raise error
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
    spec = _SPECS.get(item.type)
    if spec is None:
        raise LppError(f"{what}: unknown CayenneLPP type")
    if len(spec.divisors) == 1:
        components: tuple[object, ...] = (item.value,)
    elif isinstance(item.value, tuple) and len(item.value) == len(spec.divisors):
        components = item.value
    else:
        name = "GPS" if item.type == LppType.GPS else LppType(item.type).name.lower()
        raise LppError(f"{what}: {name} value must be a {_COMPONENTS[item.type]} tuple, got {item.value!r}")
    body = b"".join(
        _raw(c, div, spec.size, spec.signed, what).to_bytes(spec.size, "big", signed=spec.signed)
        for c, div in zip(components, spec.divisors, strict=True)
    )
    return bytes((item.channel, item.type)) + body


def encode(values: Iterable[LppValue]) -> bytes:
    """Encode entries back to back into one payload."""
    return b"".join(encode_value(v) for v in values)
