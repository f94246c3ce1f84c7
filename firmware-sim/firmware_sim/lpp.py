"""The CayenneLPP subset the simulated nodes speak, and our P2P frame layout.

Written independently of ``edge.cayenne_lpp`` on purpose: the serial tests then check the
edge decoder against a second implementation instead of against itself.
"""

from __future__ import annotations

DIGITAL_INPUT = 0
ANALOG_INPUT = 2
PRESENCE = 102
TEMPERATURE = 103
VOLTAGE = 116
PERCENTAGE = 120
POWER = 128
ENERGY = 131

# type -> (value bytes, signed, divisor)
_TYPES: dict[int, tuple[int, bool, int]] = {
    DIGITAL_INPUT: (1, False, 1),
    ANALOG_INPUT: (2, True, 100),
    PRESENCE: (1, False, 1),
    TEMPERATURE: (2, True, 10),
    VOLTAGE: (2, False, 100),
    PERCENTAGE: (1, False, 1),
    POWER: (2, False, 1),
    ENERGY: (4, False, 1000),
}


def entry(channel: int, lpp_type: int, value: float) -> bytes:
    """One ``[channel][type][value]`` entry; the value is rounded and clamped to what the type carries."""
    size, signed, divisor = _TYPES[lpp_type]
    bits = size * 8
    low, high = (-(1 << (bits - 1)), (1 << (bits - 1)) - 1) if signed else (0, (1 << bits) - 1)
    # Firmware saturates rather than failing: a sensor reading past the range reports the limit.
    raw = max(low, min(high, round(value * divisor)))
    return bytes((channel, lpp_type)) + raw.to_bytes(size, "big", signed=signed)


def parse_percentage(payload: bytes, channel: int = 1) -> int | None:
    """The level of a payload that is exactly one percentage entry on channel, else None."""
    if len(payload) != 3 or payload[0] != channel or payload[1] != PERCENTAGE:
        return None
    return payload[2]


def uplink_frame(address: str, fcnt: int, payload: bytes) -> bytes:
    """Address (4 bytes) + frame counter (2 bytes, wraps) + payload, all big-endian."""
    return bytes.fromhex(address) + (fcnt & 0xFFFF).to_bytes(2, "big") + payload


def split_downlink(frame: bytes) -> tuple[str, bytes] | None:
    """(address as 8 upper-case hex digits, payload) of a downlink, or None if too short."""
    if len(frame) < 4:
        return None
    return frame[:4].hex().upper(), frame[4:]
