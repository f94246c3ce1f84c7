"""The CayenneLPP subset the simulated nodes speak, and our P2P frame layout with its AES-CMAC MIC.

Written independently of ``edge.cayenne_lpp`` on purpose: the serial tests then check the
edge decoder against a second implementation instead of against itself.
"""

from __future__ import annotations

import hmac
import time

from cryptography.hazmat.primitives.ciphers import algorithms
from cryptography.hazmat.primitives.cmac import CMAC

DIGITAL_INPUT = 0
DIGITAL_OUTPUT = 1
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
    DIGITAL_OUTPUT: (1, False, 1),
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


def parse_switch(payload: bytes, channel: int = 1) -> bool | None:
    """The on/off of a payload that is exactly one digital-output entry of 0 or 1 on channel, else None."""
    if len(payload) != 3 or payload[0] != channel or payload[1] != DIGITAL_OUTPUT or payload[2] > 1:
        return None
    return payload[2] == 1


def _mic(key: bytes, direction: int, message: bytes) -> bytes:
    # LoRaWAN's B0 block: 0x49, 4 zero bytes, direction, address, 32-bit counter, 0x00, length.
    block = bytearray(16)
    block[0] = 0x49
    block[5] = direction
    block[6:14] = message[:8]
    block[15] = len(message) % 256
    c = CMAC(algorithms.AES(key))
    c.update(bytes(block) + message)
    return c.finalize()[:4]


def uplink_frame(address: str, fcnt: int, payload: bytes, key: bytes) -> bytes:
    """Address (4 bytes) + frame counter (4 bytes) + payload + MIC (4 bytes), big-endian."""
    message = bytes.fromhex(address) + (fcnt & 0xFFFFFFFF).to_bytes(4, "big") + payload
    return message + _mic(key, 0, message)


def downlink_address(frame: bytes) -> str | None:
    """The address (8 upper-case hex digits) a downlink is for, or None if it is too short to be one."""
    if len(frame) < 12:
        return None
    return frame[:4].hex().upper()


def open_downlink(frame: bytes, key: bytes) -> tuple[int, bytes] | None:
    """(counter, payload) of a downlink whose MIC matches key, else None (forged or corrupted)."""
    if len(frame) < 12:
        return None
    message, code = frame[:-4], frame[-4:]
    if not hmac.compare_digest(_mic(key, 1, message), code):
        return None
    return int.from_bytes(message[4:8], "big"), message[8:]


def counter_start() -> int:
    """Where a node's frame counter starts: the clock, as a node that keeps its counter across reboots
    would be ahead of every frame it sent before (the gateway refuses counters it has seen)."""
    return int(time.time()) & 0xFFFFFFFF
