"""Our LoRa point-to-point framing: P2P radios have no addressing and no security, so the frame carries both.

Frame (both directions), big-endian: 4-byte device address, 4-byte frame counter, CayenneLPP
payload, 4-byte message integrity code. As in LoRaWAN, the MIC is the first 4 bytes of AES-CMAC with
the device's key over a block B0 = 0x49, four zero bytes, the direction (0 up, 1 down), the address,
the counter, a zero byte and the message length, followed by the message (address, counter and
payload). A frame whose MIC does not match was forged or corrupted; one whose counter is not above
the last accepted from that device is a replay (edge/converters.py keeps the counters). The whole
32-bit counter is sent, so no counter has to be guessed across a 16-bit wrap.

>>> key = bytes(16)
>>> frame = encode_uplink("0A0B0C0D", 1, bytes.fromhex("017832"), key)
>>> decode_uplink(frame).payload.hex(), verify(decode_uplink(frame), key)
('017832', True)
"""

from __future__ import annotations

import hmac
import re
from dataclasses import dataclass
from enum import IntEnum

# pycryptodomex rather than cryptography: the same AES-CMAC for 3.7 MB less resident memory on the
# gateway (cryptography's extension carries an OpenSSL of its own; bench/README.md, edge agent).
from Cryptodome.Cipher import AES
from Cryptodome.Hash import CMAC

ADDRESS_BYTES = 4
FCNT_BYTES = 4
MIC_BYTES = 4
HEADER_BYTES = ADDRESS_BYTES + FCNT_BYTES
FCNT_MAX = 0xFFFFFFFF
_ADDRESS = re.compile(r"^[0-9A-Fa-f]{8}$")


class Direction(IntEnum):
    """Which way a frame goes; part of the MIC, so an uplink cannot be replayed as a downlink."""

    UP = 0
    DOWN = 1


class FrameError(ValueError):
    """A frame that is too short, or an address, counter or key that cannot be framed."""


@dataclass(frozen=True, slots=True)
class Frame:
    """A frame split into its parts (not yet verified: see verify())."""

    direction: Direction
    address: str
    fcnt: int
    payload: bytes
    mic: bytes
    message: bytes  # address + counter + payload: what the MIC covers


def _address_bytes(address_hex: str) -> bytes:
    if not isinstance(address_hex, str) or not _ADDRESS.match(address_hex):
        raise FrameError(f"device address must be 8 hex digits, got {address_hex!r}")
    return bytes.fromhex(address_hex)


def mic(key: bytes, direction: Direction, message: bytes) -> bytes:
    """The 4-byte AES-CMAC integrity code of a message (address + counter + payload)."""
    if len(key) != 16:
        raise FrameError("a LoRa key is 16 bytes")
    b0 = (b"\x49" + bytes(4) + bytes([direction]) + message[:ADDRESS_BYTES] + message[ADDRESS_BYTES:HEADER_BYTES]
          + b"\x00" + bytes([len(message) & 0xFF]))
    c = CMAC.new(key, ciphermod=AES)
    c.update(b0 + message)
    return c.digest()[:MIC_BYTES]


def _encode(direction: Direction, address_hex: str, fcnt: int, payload: bytes, key: bytes) -> bytes:
    if isinstance(fcnt, bool) or not isinstance(fcnt, int) or not 0 <= fcnt <= FCNT_MAX:
        raise FrameError(f"frame counter must be an integer 0-{FCNT_MAX}, got {fcnt!r}")
    message = _address_bytes(address_hex) + fcnt.to_bytes(FCNT_BYTES, "big") + bytes(payload)
    return message + mic(key, direction, message)


def _decode(direction: Direction, frame: bytes) -> Frame:
    frame = bytes(frame)
    if len(frame) < HEADER_BYTES + MIC_BYTES:
        raise FrameError(f"frame of {len(frame)} bytes is shorter than header + MIC "
                         f"({HEADER_BYTES + MIC_BYTES} bytes)")
    message, code = frame[:-MIC_BYTES], frame[-MIC_BYTES:]
    return Frame(direction, message[:ADDRESS_BYTES].hex().upper(),
                 int.from_bytes(message[ADDRESS_BYTES:HEADER_BYTES], "big"), message[HEADER_BYTES:], code, message)


def encode_uplink(address_hex: str, fcnt: int, lpp_payload: bytes, key: bytes) -> bytes:
    """A node's uplink frame; raises FrameError for a bad address, counter or key."""
    return _encode(Direction.UP, address_hex, fcnt, lpp_payload, key)


def encode_downlink(address_hex: str, fcnt: int, lpp_payload: bytes, key: bytes) -> bytes:
    """The gateway's downlink frame for one node."""
    return _encode(Direction.DOWN, address_hex, fcnt, lpp_payload, key)


def decode_uplink(frame: bytes) -> Frame:
    """Split an uplink frame; raises FrameError if it is too short. Verify it before trusting it."""
    return _decode(Direction.UP, frame)


def decode_downlink(frame: bytes) -> Frame:
    """Split a downlink frame; raises FrameError if it is too short."""
    return _decode(Direction.DOWN, frame)


def verify(frame: Frame, key: bytes) -> bool:
    """True if the frame's MIC is the one its key gives (constant-time comparison)."""
    return hmac.compare_digest(mic(key, frame.direction, frame.message), frame.mic)
